//! The records the queue stores for a key, their metadata encoding, and the pure rules that
//! merge, order and time them (DESIGN §3.2, §3.3).

use std::cmp::{Ordering, Reverse};
use std::time::SystemTime;

use crate::clock::{from_millis, to_millis};
use crate::storage::{Metadata, Object};

/// When a queued key becomes due, and whether that time is a floor.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NotBefore {
    /// The earliest time the key may run.
    pub at: SystemTime,
    /// A floor is a minimum that later plain enqueues cannot bring forward.
    pub floor: bool,
}

impl NotBefore {
    /// A plain not-before: a later enqueue without a delay makes the key due at once.
    pub fn plain(at: SystemTime) -> Self {
        Self { at, floor: false }
    }

    /// A floor: the key does not run before `at`, whatever is enqueued meanwhile.
    pub fn floor(at: SystemTime) -> Self {
        Self { at, floor: true }
    }
}

/// Merges an arriving not-before into an existing one (`None` means due now):
/// two plain values keep the earlier; a floor over a plain value replaces it; two floors keep
/// the later; a plain value over a floor changes nothing.
pub fn merge_not_before(
    existing: Option<NotBefore>,
    arriving: Option<NotBefore>,
) -> Option<NotBefore> {
    match (existing, arriving) {
        (Some(e), Some(a)) if e.floor && a.floor => Some(if a.at > e.at { a } else { e }),
        (Some(e), _) if e.floor => existing,
        (_, Some(a)) if a.floor => arriving,
        (Some(e), Some(a)) => Some(if a.at < e.at { a } else { e }),
        // Either side is due now, and now is the earlier.
        _ => None,
    }
}

/// A key waiting in the queue.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QueuedEntry {
    /// The key.
    pub key: String,
    /// Higher runs first.
    pub priority: i64,
    /// When it becomes due; `None` when it is due now.
    pub not_before: Option<NotBefore>,
    /// Failed runs so far.
    pub attempts: u32,
    /// When the key was first enqueued: its place among equal priorities.
    pub queued_at: SystemTime,
    /// When it last started running, if it has.
    pub last_attempted: Option<SystemTime>,
}

impl QueuedEntry {
    /// A new entry for a key enqueued at `now`.
    pub fn new(key: &str, priority: i64, not_before: Option<NotBefore>, now: SystemTime) -> Self {
        Self {
            key: key.to_owned(),
            priority,
            not_before,
            attempts: 0,
            queued_at: now,
            last_attempted: None,
        }
    }

    /// This entry after an enqueue of the same key: the higher priority, the merged not-before;
    /// the age and attempts stay this entry's.
    pub fn merged(&self, priority: i64, not_before: Option<NotBefore>) -> Self {
        Self {
            priority: self.priority.max(priority),
            not_before: merge_not_before(self.not_before, not_before),
            ..self.clone()
        }
    }

    /// Whether the key may run at `now`.
    pub fn is_due(&self, now: SystemTime) -> bool {
        self.not_before.is_none_or(|nb| nb.at <= now)
    }

    /// Dispatch order: higher priority first, then older first, then by key.
    pub fn dispatch_order(&self, other: &Self) -> Ordering {
        (Reverse(self.priority), self.queued_at, &self.key).cmp(&(
            Reverse(other.priority),
            other.queued_at,
            &other.key,
        ))
    }

    pub(crate) fn to_metadata(&self) -> Metadata {
        let mut m = common_metadata(&self.key, self.priority, self.attempts, self.queued_at);
        if let Some(nb) = self.not_before {
            m.insert(NOT_BEFORE.into(), to_millis(nb.at).to_string());
            if nb.floor {
                m.insert(NOT_BEFORE_FLOOR.into(), "true".into());
            }
        }
        if let Some(at) = self.last_attempted {
            m.insert(LAST_ATTEMPTED.into(), to_millis(at).to_string());
        }
        m
    }

    pub(crate) fn from_object(object: &Object) -> Result<Self, CorruptRecord> {
        let r = Reader(object);
        Ok(Self {
            key: r.string(KEY)?,
            priority: r.int(PRIORITY)?,
            not_before: r.optional_time(NOT_BEFORE)?.map(|at| NotBefore {
                at,
                floor: object
                    .metadata
                    .get(NOT_BEFORE_FLOOR)
                    .is_some_and(|v| v == "true"),
            }),
            attempts: r.int(ATTEMPTS)?,
            queued_at: r.time(QUEUED_TIME)?,
            last_attempted: r.optional_time(LAST_ATTEMPTED)?,
        })
    }
}

/// A key that a dispatcher has claimed and is running.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InProgressEntry {
    /// The key.
    pub key: String,
    /// Its priority.
    pub priority: i64,
    /// Failed runs before this one.
    pub attempts: u32,
    /// When it was first enqueued.
    pub queued_at: SystemTime,
    /// When this run was claimed.
    pub claimed_at: SystemTime,
    /// Which dispatcher runs it.
    pub owner: String,
    /// When the claim lapses unless renewed.
    pub lease_expires: SystemTime,
}

impl InProgressEntry {
    pub(crate) fn to_metadata(&self) -> Metadata {
        let mut m = common_metadata(&self.key, self.priority, self.attempts, self.queued_at);
        m.insert(
            LAST_ATTEMPTED.into(),
            to_millis(self.claimed_at).to_string(),
        );
        m.insert(OWNER.into(), self.owner.clone());
        m.insert(
            LEASE_EXPIRATION.into(),
            to_millis(self.lease_expires).to_string(),
        );
        m
    }

    pub(crate) fn from_object(object: &Object) -> Result<Self, CorruptRecord> {
        let r = Reader(object);
        Ok(Self {
            key: r.string(KEY)?,
            priority: r.int(PRIORITY)?,
            attempts: r.int(ATTEMPTS)?,
            queued_at: r.time(QUEUED_TIME)?,
            claimed_at: r.time(LAST_ATTEMPTED)?,
            owner: r.string(OWNER)?,
            lease_expires: r.time(LEASE_EXPIRATION)?,
        })
    }

    /// The queued entry this run goes back to when it is requeued with `not_before`.
    pub(crate) fn requeued(&self, attempts: u32, not_before: Option<NotBefore>) -> QueuedEntry {
        QueuedEntry {
            key: self.key.clone(),
            priority: self.priority,
            not_before,
            attempts,
            queued_at: self.queued_at,
            last_attempted: Some(self.claimed_at),
        }
    }
}

/// A key that failed too often and waits for a re-enqueue.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeadLetter {
    /// The key.
    pub key: String,
    /// Its priority when it failed.
    pub priority: i64,
    /// Failed runs.
    pub attempts: u32,
    /// When it was first enqueued.
    pub queued_at: SystemTime,
    /// When it was dead-lettered.
    pub failed_at: SystemTime,
    /// The last error, shortened.
    pub error: String,
}

/// The most of an error message a dead letter keeps (metadata is small).
const MAX_ERROR_BYTES: usize = 1024;

impl DeadLetter {
    pub(crate) fn new(
        run: &InProgressEntry,
        attempts: u32,
        failed_at: SystemTime,
        error: &str,
    ) -> Self {
        let mut end = error.len().min(MAX_ERROR_BYTES);
        while !error.is_char_boundary(end) {
            end -= 1;
        }
        Self {
            key: run.key.clone(),
            priority: run.priority,
            attempts,
            queued_at: run.queued_at,
            failed_at,
            error: error[..end].to_owned(),
        }
    }

    pub(crate) fn to_metadata(&self) -> Metadata {
        let mut m = common_metadata(&self.key, self.priority, self.attempts, self.queued_at);
        m.insert(FAILED_TIME.into(), to_millis(self.failed_at).to_string());
        m.insert(ERROR.into(), self.error.clone());
        m
    }

    pub(crate) fn from_object(object: &Object) -> Result<Self, CorruptRecord> {
        let r = Reader(object);
        Ok(Self {
            key: r.string(KEY)?,
            priority: r.int(PRIORITY)?,
            attempts: r.int(ATTEMPTS)?,
            queued_at: r.time(QUEUED_TIME)?,
            failed_at: r.time(FAILED_TIME)?,
            error: object.metadata.get(ERROR).cloned().unwrap_or_default(),
        })
    }
}

/// The fields every record has.
fn common_metadata(key: &str, priority: i64, attempts: u32, queued_at: SystemTime) -> Metadata {
    Metadata::from([
        (KEY.to_owned(), key.to_owned()),
        (PRIORITY.to_owned(), priority.to_string()),
        (ATTEMPTS.to_owned(), attempts.to_string()),
        (QUEUED_TIME.to_owned(), to_millis(queued_at).to_string()),
    ])
}

const KEY: &str = "key";
const PRIORITY: &str = "priority";
const ATTEMPTS: &str = "attempts";
const QUEUED_TIME: &str = "queued-time";
const NOT_BEFORE: &str = "not-before";
const NOT_BEFORE_FLOOR: &str = "not-before-floor";
const LAST_ATTEMPTED: &str = "last-attempted";
const OWNER: &str = "owner";
const LEASE_EXPIRATION: &str = "lease-expiration";
const FAILED_TIME: &str = "failed-time";
const ERROR: &str = "error";

/// An object whose metadata is not a record of the queue's.
#[derive(Debug, thiserror::Error)]
#[error("object {name:?} is not a queue record: field {field:?} is missing or malformed")]
pub struct CorruptRecord {
    name: String,
    field: &'static str,
}

struct Reader<'a>(&'a Object);

impl Reader<'_> {
    fn corrupt(&self, field: &'static str) -> CorruptRecord {
        CorruptRecord {
            name: self.0.name.clone(),
            field,
        }
    }

    fn string(&self, field: &'static str) -> Result<String, CorruptRecord> {
        self.0
            .metadata
            .get(field)
            .cloned()
            .ok_or_else(|| self.corrupt(field))
    }

    fn int<T: std::str::FromStr>(&self, field: &'static str) -> Result<T, CorruptRecord> {
        self.0
            .metadata
            .get(field)
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| self.corrupt(field))
    }

    fn time(&self, field: &'static str) -> Result<SystemTime, CorruptRecord> {
        self.int(field).map(from_millis)
    }

    fn optional_time(&self, field: &'static str) -> Result<Option<SystemTime>, CorruptRecord> {
        match self.0.metadata.get(field) {
            None => Ok(None),
            Some(_) => self.time(field).map(Some),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, UNIX_EPOCH};

    use super::*;
    use crate::storage::Generation;

    fn at(secs: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(secs)
    }

    #[test]
    fn merge_not_before_should_keep_the_earlier_of_two_plain_values() {
        let (early, late) = (
            Some(NotBefore::plain(at(10))),
            Some(NotBefore::plain(at(20))),
        );
        assert_eq!(merge_not_before(late, early), early);
        assert_eq!(merge_not_before(early, late), early);
        assert_eq!(merge_not_before(early, None), None);
        assert_eq!(merge_not_before(None, late), None);
    }

    #[test]
    fn merge_not_before_should_let_a_floor_replace_a_plain_value_either_way() {
        let floor = Some(NotBefore::floor(at(30)));
        assert_eq!(
            merge_not_before(Some(NotBefore::plain(at(10))), floor),
            floor
        );
        assert_eq!(
            merge_not_before(Some(NotBefore::plain(at(90))), floor),
            floor
        );
        assert_eq!(merge_not_before(None, floor), floor);
    }

    #[test]
    fn merge_not_before_should_keep_the_later_of_two_floors() {
        let (early, late) = (
            Some(NotBefore::floor(at(10))),
            Some(NotBefore::floor(at(20))),
        );
        assert_eq!(merge_not_before(early, late), late);
        assert_eq!(merge_not_before(late, early), late);
    }

    #[test]
    fn merge_not_before_should_ignore_a_plain_value_over_a_floor() {
        let floor = Some(NotBefore::floor(at(30)));
        assert_eq!(
            merge_not_before(floor, Some(NotBefore::plain(at(10)))),
            floor
        );
        assert_eq!(merge_not_before(floor, None), floor);
    }

    #[test]
    fn merged_should_take_max_priority_and_keep_age() {
        let entry = QueuedEntry::new("k", 5, None, at(1));
        let merged = entry.merged(3, Some(NotBefore::plain(at(9))));
        assert_eq!(
            (merged.priority, merged.queued_at, merged.not_before),
            (5, at(1), None)
        );
        assert_eq!(entry.merged(7, None).priority, 7);
    }

    #[test]
    fn dispatch_order_should_rank_priority_then_age_then_key() {
        let mut entries = [
            QueuedEntry::new("b", 1, None, at(1)),
            QueuedEntry::new("a", 1, None, at(1)),
            QueuedEntry::new("c", 1, None, at(0)),
            QueuedEntry::new("d", 9, None, at(5)),
        ];
        entries.sort_by(QueuedEntry::dispatch_order);
        let keys: Vec<&str> = entries.iter().map(|e| e.key.as_str()).collect();
        assert_eq!(keys, ["d", "c", "a", "b"]);
    }

    #[test]
    fn records_should_round_trip_through_metadata() {
        let mut queued = QueuedEntry::new("k/é", -3, Some(NotBefore::floor(at(7))), at(2));
        queued.attempts = 4;
        queued.last_attempted = Some(at(3));
        let object = |metadata| Object {
            name: "x".into(),
            generation: Generation(1),
            metadata,
        };
        assert_eq!(
            QueuedEntry::from_object(&object(queued.to_metadata())).unwrap(),
            queued
        );
        let run = InProgressEntry {
            key: "k".into(),
            priority: 1,
            attempts: 2,
            queued_at: at(1),
            claimed_at: at(2),
            owner: "me".into(),
            lease_expires: at(3),
        };
        assert_eq!(
            InProgressEntry::from_object(&object(run.to_metadata())).unwrap(),
            run
        );
        let dead = DeadLetter::new(&run, 3, at(4), &"é".repeat(1000));
        assert!(dead.error.len() <= MAX_ERROR_BYTES);
        assert_eq!(
            DeadLetter::from_object(&object(dead.to_metadata())).unwrap(),
            dead
        );
    }

    #[test]
    fn from_object_should_name_the_bad_field() {
        let object = Object {
            name: "q/x".into(),
            generation: Generation(1),
            metadata: Metadata::new(),
        };
        let err = QueuedEntry::from_object(&object).unwrap_err().to_string();
        assert!(err.contains("\"key\""), "{err}");
    }
}
