//! The records the queue stores for a key, their metadata encoding, and the pure rules that
//! merge, order and time them (docs/architecture.md, "Queue rules").

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

    fn write(&self, m: &mut Metadata) {
        m.insert(PRIORITY.into(), self.priority.to_string());
        m.insert(ATTEMPTS.into(), self.attempts.to_string());
        put_time(m, QUEUED_TIME, self.queued_at);
        if let Some(nb) = self.not_before {
            put_time(m, NOT_BEFORE, nb.at);
            if nb.floor {
                m.insert(NOT_BEFORE_FLOOR.into(), "true".into());
            }
        }
        if let Some(at) = self.last_attempted {
            put_time(m, LAST_ATTEMPTED, at);
        }
    }

    fn read(r: &Reader<'_>, key: &str) -> Result<Self, CorruptRecord> {
        Ok(Self {
            key: key.to_owned(),
            priority: r.int(PRIORITY)?,
            not_before: r.optional_time(NOT_BEFORE)?.map(|at| NotBefore {
                at,
                floor: r
                    .0
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
    /// This run's identity: writes by the run check that the record still holds it.
    pub id: String,
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
    fn write(&self, m: &mut Metadata) {
        m.insert(RUN_ID.into(), self.id.clone());
        m.insert(RUN_PRIORITY.into(), self.priority.to_string());
        m.insert(RUN_ATTEMPTS.into(), self.attempts.to_string());
        put_time(m, RUN_QUEUED_TIME, self.queued_at);
        put_time(m, RUN_CLAIMED_TIME, self.claimed_at);
        m.insert(RUN_OWNER.into(), self.owner.clone());
        put_time(m, RUN_LEASE_EXPIRATION, self.lease_expires);
    }

    fn read(r: &Reader<'_>, key: &str) -> Result<Self, CorruptRecord> {
        Ok(Self {
            key: key.to_owned(),
            id: r.string(RUN_ID)?,
            priority: r.int(RUN_PRIORITY)?,
            attempts: r.int(RUN_ATTEMPTS)?,
            queued_at: r.time(RUN_QUEUED_TIME)?,
            claimed_at: r.time(RUN_CLAIMED_TIME)?,
            owner: r.string(RUN_OWNER)?,
            lease_expires: r.time(RUN_LEASE_EXPIRATION)?,
        })
    }

    /// The queued entry this run goes back to when it is requeued with `attempts` and
    /// `not_before`, merged into `twin` when an enqueue arrived during the run (the twin keeps
    /// its own attempt count and age).
    pub(crate) fn requeued_into(
        &self,
        twin: Option<QueuedEntry>,
        attempts: u32,
        not_before: Option<NotBefore>,
    ) -> QueuedEntry {
        match twin {
            None => QueuedEntry {
                key: self.key.clone(),
                priority: self.priority,
                not_before,
                attempts,
                queued_at: self.queued_at,
                last_attempted: Some(self.claimed_at),
            },
            Some(twin) => QueuedEntry {
                last_attempted: Some(self.claimed_at),
                ..twin.merged(self.priority, not_before)
            },
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

    fn write(&self, m: &mut Metadata) {
        m.insert(DEAD_PRIORITY.into(), self.priority.to_string());
        m.insert(DEAD_ATTEMPTS.into(), self.attempts.to_string());
        put_time(m, DEAD_QUEUED_TIME, self.queued_at);
        put_time(m, DEAD_FAILED_TIME, self.failed_at);
        m.insert(DEAD_ERROR.into(), self.error.clone());
    }

    fn read(r: &Reader<'_>, key: &str) -> Result<Self, CorruptRecord> {
        Ok(Self {
            key: key.to_owned(),
            priority: r.int(DEAD_PRIORITY)?,
            attempts: r.int(DEAD_ATTEMPTS)?,
            queued_at: r.time(DEAD_QUEUED_TIME)?,
            failed_at: r.time(DEAD_FAILED_TIME)?,
            error: r.0.metadata.get(DEAD_ERROR).cloned().unwrap_or_default(),
        })
    }
}

/// Everything the queue holds for one key, stored as one object: a queued entry, a run, a
/// dead letter, or several at once (a run with its queued twin; a re-enqueued dead letter).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyRecord {
    /// The key.
    pub key: String,
    /// The entry waiting to run (the twin, when a run is in progress too).
    pub queued: Option<QueuedEntry>,
    /// The run in progress.
    pub run: Option<InProgressEntry>,
    /// The dead letter, kept until the key is re-enqueued or next completes.
    pub dead: Option<DeadLetter>,
}

impl KeyRecord {
    /// Whether the record's run is the one with this id (a run this process wrote).
    pub fn runs(&self, run_id: &str) -> bool {
        self.run.as_ref().is_some_and(|r| r.id == run_id)
    }

    /// A record holding only `entry`.
    pub fn queued(entry: QueuedEntry) -> Self {
        Self {
            key: entry.key.clone(),
            queued: Some(entry),
            run: None,
            dead: None,
        }
    }

    /// Whether nothing is left: the object should be deleted rather than written.
    pub fn is_empty(&self) -> bool {
        self.queued.is_none() && self.run.is_none() && self.dead.is_none()
    }

    /// The queued entry, when it may be claimed at `now`: due, and no run in progress.
    pub fn claimable(&self, now: SystemTime) -> Option<&QueuedEntry> {
        self.queued
            .as_ref()
            .filter(|q| self.run.is_none() && q.is_due(now))
    }

    pub(crate) fn to_metadata(&self) -> Metadata {
        let mut m = Metadata::from([(KEY.to_owned(), self.key.clone())]);
        if let Some(q) = &self.queued {
            q.write(&mut m);
        }
        if let Some(run) = &self.run {
            run.write(&mut m);
        }
        if let Some(dead) = &self.dead {
            dead.write(&mut m);
        }
        m
    }

    pub(crate) fn from_object(object: &Object) -> Result<Self, CorruptRecord> {
        let r = Reader(object);
        let key = r.string(KEY)?;
        let has = |field: &str| object.metadata.contains_key(field);
        let record = Self {
            queued: has(QUEUED_TIME)
                .then(|| QueuedEntry::read(&r, &key))
                .transpose()?,
            run: has(RUN_ID)
                .then(|| InProgressEntry::read(&r, &key))
                .transpose()?,
            dead: has(DEAD_FAILED_TIME)
                .then(|| DeadLetter::read(&r, &key))
                .transpose()?,
            key,
        };
        if record.is_empty() {
            return Err(r.corrupt(QUEUED_TIME));
        }
        Ok(record)
    }
}

const KEY: &str = "key";
const PRIORITY: &str = "priority";
const ATTEMPTS: &str = "attempts";
const QUEUED_TIME: &str = "queued-time";
const NOT_BEFORE: &str = "not-before";
const NOT_BEFORE_FLOOR: &str = "not-before-floor";
const LAST_ATTEMPTED: &str = "last-attempted";
const RUN_ID: &str = "run-id";
const RUN_PRIORITY: &str = "run-priority";
const RUN_ATTEMPTS: &str = "run-attempts";
const RUN_QUEUED_TIME: &str = "run-queued-time";
const RUN_CLAIMED_TIME: &str = "run-claimed-time";
const RUN_OWNER: &str = "owner";
const RUN_LEASE_EXPIRATION: &str = "lease-expiration";
const DEAD_PRIORITY: &str = "dead-priority";
const DEAD_ATTEMPTS: &str = "dead-attempts";
const DEAD_QUEUED_TIME: &str = "dead-queued-time";
const DEAD_FAILED_TIME: &str = "failed-time";
const DEAD_ERROR: &str = "error";

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

fn put_time(m: &mut Metadata, field: &str, at: SystemTime) {
    m.insert(field.into(), to_millis(at).to_string());
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
        let run = InProgressEntry {
            key: "k/é".into(),
            id: "r1".into(),
            priority: 1,
            attempts: 2,
            queued_at: at(1),
            claimed_at: at(2),
            owner: "me".into(),
            lease_expires: at(3),
        };
        let dead = DeadLetter::new(&run, 3, at(4), &"é".repeat(1000));
        assert!(dead.error.len() <= MAX_ERROR_BYTES);
        let object = |record: &KeyRecord| Object {
            name: "x".into(),
            generation: Generation(1),
            metadata: record.to_metadata(),
        };
        let parts = [
            (Some(queued.clone()), None, None),
            (None, Some(run.clone()), None),
            (None, None, Some(dead.clone())),
            (Some(queued), Some(run), Some(dead)),
        ];
        for (queued, run, dead) in parts {
            let record = KeyRecord {
                key: "k/é".into(),
                queued,
                run,
                dead,
            };
            assert_eq!(KeyRecord::from_object(&object(&record)).unwrap(), record);
        }
    }

    #[test]
    fn from_object_should_name_the_bad_field() {
        let mut object = Object {
            name: "k/x".into(),
            generation: Generation(1),
            metadata: Metadata::new(),
        };
        let err = KeyRecord::from_object(&object).unwrap_err().to_string();
        assert!(err.contains("\"key\""), "{err}");
        object.metadata.insert(KEY.into(), "x".into());
        assert!(
            KeyRecord::from_object(&object).is_err(),
            "a record with no part"
        );
        object.metadata.insert(QUEUED_TIME.into(), "soon".into());
        let err = KeyRecord::from_object(&object).unwrap_err().to_string();
        assert!(err.contains("\"priority\""), "{err}");
    }
}
