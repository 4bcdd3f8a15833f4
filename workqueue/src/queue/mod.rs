//! The queue rules of DESIGN §3, written once on top of the storage seam.
//!
//! # Storage layout
//! One empty object per key and state, its data in metadata (see [`crate::entry`]):
//! `queued/<key>`, `in-progress/<key>` and `dead-letter/<key>`, where `<key>` is the
//! key percent-encoded (or hashed when very long), so any key stays inside its prefix.
//!
//! * **Enqueue**: read `queued/<key>`; create it if absent, else merge into it with a
//!   generation-pinned replace (or nothing, if the merge changes nothing). A key that is in
//!   progress gets a `queued/<key>` too: that is its twin, which runs after the current run.
//! * **Claim**: create `in-progress/<key>` if absent (only one contender wins), list
//!   `in-progress/` once to hold the global concurrency (a claimer that sees more claims than
//!   the limit withdraws its own), then delete `queued/<key>` pinned to the generation that
//!   was listed (absorbing an enqueue that landed meanwhile).
//! * **Run**: a heartbeat renews the lease with pinned replaces; a conflict means the claim was
//!   lost, and the claim's cancellation token fires.
//! * **Finish**: complete = delete `in-progress/<key>` pinned; requeue and retry write
//!   `queued/<key>` (merging into a twin) first and then delete the claim, so a crash between
//!   the two leaves an orphan to recover, never a lost key.
//!
//! A processed key thus costs four mutations (create, create, delete, delete), two gets (the
//! enqueue's read, and the completion's look for a dead letter to clear) and its share of list
//! pages; the reference layout spends about five mutations.

mod claiming;
mod dead_letters;
mod snapshot;

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tracing::warn;

use crate::backoff::Backoff;
use crate::clock::{Clock, SystemClock};
use crate::entry::{CorruptRecord, DeadLetter, InProgressEntry, NotBefore, QueuedEntry};
use crate::key::{InvalidKey, encode_key, validate_key};
use crate::metrics::Metrics;
use crate::storage::{Generation, Object, PutMode, Storage, StorageError};

pub use snapshot::{Listed, Snapshot};

pub(crate) const QUEUED: &str = "queued/";
pub(crate) const IN_PROGRESS: &str = "in-progress/";
pub(crate) const DEAD_LETTER: &str = "dead-letter/";

/// The longest delay the queue keeps: ten years. Longer delays (a reconciler's answer, say)
/// are shortened to it, and the receiver refuses them.
pub const MAX_DELAY: Duration = Duration::from_secs(10 * 365 * 24 * 3600);

/// The time `delay` after `now`, with the delay capped at [`MAX_DELAY`].
pub(crate) fn due_after(now: SystemTime, delay: Duration) -> SystemTime {
    now.checked_add(delay.min(MAX_DELAY)).unwrap_or(now)
}

/// How often a read-modify-write is retried when other writers keep changing the object.
const MAX_WRITE_TRIES: usize = 16;

/// The knobs of the queue rules.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct QueueConfig {
    /// How long a claim lasts without renewal; the heartbeat renews it every third of this.
    pub lease: Duration,
    /// Failed runs after which a key is dead-lettered; 0 retries forever.
    pub max_retry: u32,
    /// The delay before retrying a failed key.
    pub backoff: Backoff,
}

impl Default for QueueConfig {
    /// The reference figures: a 15-minute lease, 100 retries, 30 s to 10 min backoff.
    fn default() -> Self {
        Self {
            lease: Duration::from_secs(15 * 60),
            max_retry: 100,
            backoff: Backoff::default(),
        }
    }
}

/// What an enqueue did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Enqueued {
    /// The key was not queued; now it is.
    Added,
    /// The key was queued; the entry was updated (priority or due time).
    Merged,
    /// The key was queued and the enqueue changed nothing.
    Unchanged,
}

/// Where a key is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyStatus {
    /// Waiting to run.
    Queued,
    /// Running (possibly with a queued twin).
    InProgress,
    /// Failed too often; waiting for a re-enqueue.
    DeadLetter,
}

/// The state of one key, as GetKeyState reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyState {
    /// The key.
    pub key: String,
    /// In progress wins over queued, which wins over dead-lettered.
    pub status: KeyStatus,
    /// Its priority.
    pub priority: i64,
    /// Failed runs so far.
    pub attempts: u32,
    /// When it was first enqueued.
    pub queued_at: SystemTime,
    /// When it becomes due, for a queued key that is not due yet.
    pub not_before: Option<SystemTime>,
}

/// What can go wrong in a queue operation.
#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    /// The key cannot be queued.
    #[error("invalid key: {0}")]
    InvalidKey(#[from] InvalidKey),
    /// Storage failed.
    #[error("failed to {action} key {key:?}")]
    Storage {
        /// What the queue was doing.
        action: &'static str,
        /// The key (or prefix) concerned.
        key: String,
        /// The storage error.
        #[source]
        source: StorageError,
    },
    /// Other writers kept changing the key's object.
    #[error("failed to {action} key {key:?}: it kept changing under concurrent writers")]
    Contention {
        /// What the queue was doing.
        action: &'static str,
        /// The key.
        key: String,
    },
    /// The claim was taken over (its lease lapsed and another dispatcher recovered the key).
    #[error("lost the claim on key {key:?}: its lease lapsed and another dispatcher took it over")]
    Lost {
        /// The key.
        key: String,
    },
}

impl QueueError {
    pub(crate) fn storage(action: &'static str, key: &str, source: StorageError) -> Self {
        Self::Storage {
            action,
            key: key.to_owned(),
            source,
        }
    }

    /// Whether retrying the operation may succeed (storage trouble, not bad input).
    pub fn is_transient(&self) -> bool {
        match self {
            Self::InvalidKey(_) => false,
            Self::Storage {
                source: StorageError::Backend { transient, .. },
                ..
            } => *transient,
            Self::Storage {
                source: StorageError::InvalidName { .. },
                ..
            } => false,
            _ => true,
        }
    }
}

/// A handle on one queue; cheap to clone, shared by the receiver and the dispatcher.
#[derive(Clone, Debug)]
pub struct Queue {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    storage: Arc<dyn Storage>,
    config: QueueConfig,
    clock: Arc<dyn Clock>,
    metrics: Metrics,
    owner: String,
    /// Unreadable claim records seen by passes: name -> (generation, first seen). One is
    /// removed only after a whole lease unchanged, so a live claim written by a newer
    /// version (whose renewals change its generation) is never taken for debris.
    unreadable_claims:
        std::sync::Mutex<std::collections::HashMap<String, (Generation, SystemTime)>>,
}

impl Queue {
    /// A queue over `storage` with the real clock and its own metrics.
    pub fn new(storage: Arc<dyn Storage>, config: QueueConfig) -> Self {
        Self::with_parts(storage, config, Arc::new(SystemClock), Metrics::new())
    }

    /// A queue with an explicit clock and metrics (tests move the clock; the binary registers
    /// the metrics).
    pub fn with_parts(
        storage: Arc<dyn Storage>,
        config: QueueConfig,
        clock: Arc<dyn Clock>,
        metrics: Metrics,
    ) -> Self {
        let owner = format!(
            "{}-{}-{:06x}",
            hostname(),
            std::process::id(),
            rand::random::<u32>() >> 8
        );
        Self {
            inner: Arc::new(Inner {
                storage,
                config,
                clock,
                metrics,
                owner,
                unreadable_claims: Default::default(),
            }),
        }
    }

    /// The queue's rules.
    pub fn config(&self) -> &QueueConfig {
        &self.inner.config
    }

    /// The queue's metrics.
    pub fn metrics(&self) -> &Metrics {
        &self.inner.metrics
    }

    /// The current time on the queue's clock.
    pub fn now(&self) -> SystemTime {
        self.inner.clock.now()
    }

    pub(crate) fn storage(&self) -> &dyn Storage {
        self.inner.storage.as_ref()
    }

    /// Enqueues `key` at `priority`, due after `delay` (zero: due now), merging into an entry
    /// that is already queued.
    pub async fn enqueue(
        &self,
        key: &str,
        priority: i64,
        delay: Duration,
    ) -> Result<Enqueued, QueueError> {
        let not_before = (!delay.is_zero()).then(|| NotBefore::plain(due_after(self.now(), delay)));
        self.enqueue_with(key, priority, not_before).await
    }

    /// Enqueues `key` with an explicit not-before (a floor, for instance).
    pub async fn enqueue_with(
        &self,
        key: &str,
        priority: i64,
        not_before: Option<NotBefore>,
    ) -> Result<Enqueued, QueueError> {
        validate_key(key)?;
        let enqueued = self
            .upsert_queued(
                key,
                "enqueue",
                || QueuedEntry::new(key, priority, not_before, self.now()),
                |entry| entry.merged(priority, not_before),
            )
            .await?;
        match enqueued {
            Enqueued::Added => self.metrics().added_keys.inc(),
            Enqueued::Merged | Enqueued::Unchanged => self.metrics().deduped_keys.inc(),
        };
        Ok(enqueued)
    }

    /// Puts a run's entry back in the queue, merging into a twin if one arrived meanwhile (the
    /// twin keeps its own attempt count and age).
    pub(crate) async fn put_back(&self, entry: QueuedEntry) -> Result<(), QueueError> {
        self.upsert_queued(
            &entry.key,
            "requeue",
            || entry.clone(),
            |twin| QueuedEntry {
                last_attempted: entry.last_attempted.or(twin.last_attempted),
                ..twin.merged(entry.priority, entry.not_before)
            },
        )
        .await
        .map(|_| ())
    }

    /// Writes `key`'s queued entry: `fresh()` when there is none (or it is unreadable), else
    /// `merge` of the one there, pinned to its generation and retried while other writers
    /// change it. Nothing is written when the merge changes nothing.
    async fn upsert_queued(
        &self,
        key: &str,
        action: &'static str,
        fresh: impl Fn() -> QueuedEntry,
        merge: impl Fn(&QueuedEntry) -> QueuedEntry,
    ) -> Result<Enqueued, QueueError> {
        let name = queued_name(key);
        for _ in 0..MAX_WRITE_TRIES {
            let (metadata, mode, outcome) = match self
                .read(&name, key, "read", QueuedEntry::from_object)
                .await?
            {
                Read::Missing => (fresh().to_metadata(), PutMode::Create, Enqueued::Added),
                Read::Corrupt(generation) => (
                    fresh().to_metadata(),
                    PutMode::Replace(generation),
                    Enqueued::Added,
                ),
                Read::Found(entry, generation) => {
                    let merged = merge(&entry);
                    if merged == entry {
                        return Ok(Enqueued::Unchanged);
                    }
                    (
                        merged.to_metadata(),
                        PutMode::Replace(generation),
                        Enqueued::Merged,
                    )
                }
            };
            match self.storage().put(&name, &metadata, mode).await {
                Ok(_) => return Ok(outcome),
                Err(e) if e.is_conflict() => continue,
                Err(e) => return Err(QueueError::storage(action, key, e)),
            }
        }
        Err(QueueError::Contention {
            action,
            key: key.to_owned(),
        })
    }

    /// Where `key` is, or `None` when the queue does not know it.
    pub async fn state(&self, key: &str) -> Result<Option<KeyState>, QueueError> {
        validate_key(key)?;
        let (ip, queued, dead_name) = (
            in_progress_name(key),
            queued_name(key),
            dead_letter_name(key),
        );
        let (mut running, mut waiting, mut dead) = tokio::join!(
            self.get_record(&ip, key, "read", InProgressEntry::from_object),
            self.get_record(&queued, key, "read", QueuedEntry::from_object),
            self.get_record(&dead_name, key, "read", DeadLetter::from_object),
        );
        if matches!((&running, &waiting), (Ok(None), Ok(None))) {
            // The reads ran side by side, so they can fall on either side of a move between
            // the states: a claim creates its record and then deletes the queued one; a
            // requeue or a dead letter is written and then the claim deleted. Reading the
            // claim, the queue, the claim again and the dead letters, one after the other,
            // cannot miss a key that is there through any one of those moves.
            running = self
                .get_record(&ip, key, "read", InProgressEntry::from_object)
                .await;
            if matches!(running, Ok(None)) {
                waiting = self
                    .get_record(&queued, key, "read", QueuedEntry::from_object)
                    .await;
            }
            if matches!((&running, &waiting), (Ok(None), Ok(None))) {
                running = self
                    .get_record(&ip, key, "read", InProgressEntry::from_object)
                    .await;
            }
            if matches!((&running, &waiting), (Ok(None), Ok(None))) {
                dead = self
                    .get_record(&dead_name, key, "read", DeadLetter::from_object)
                    .await;
            }
        }
        if let Some((run, _)) = running? {
            return Ok(Some(KeyState {
                key: run.key,
                status: KeyStatus::InProgress,
                priority: run.priority,
                attempts: run.attempts,
                queued_at: run.queued_at,
                not_before: None,
            }));
        }
        if let Some((entry, _)) = waiting? {
            let now = self.now();
            return Ok(Some(KeyState {
                key: entry.key,
                status: KeyStatus::Queued,
                priority: entry.priority,
                attempts: entry.attempts,
                queued_at: entry.queued_at,
                not_before: entry.not_before.map(|nb| nb.at).filter(|at| *at > now),
            }));
        }
        Ok(dead?.map(|(dead, _)| KeyState {
            key: dead.key,
            status: KeyStatus::DeadLetter,
            priority: dead.priority,
            attempts: dead.attempts,
            queued_at: dead.queued_at,
            not_before: None,
        }))
    }

    /// Reads one record: missing, readable, or unreadable (replaced by writers, so it never
    /// blocks the key).
    pub(crate) async fn read<T>(
        &self,
        name: &str,
        key: &str,
        action: &'static str,
        parse: fn(&Object) -> Result<T, CorruptRecord>,
    ) -> Result<Read<T>, QueueError> {
        match self.storage().get(name).await {
            Ok(None) => Ok(Read::Missing),
            Ok(Some(object)) => match parse(&object) {
                Ok(record) => Ok(Read::Found(record, object.generation)),
                Err(corrupt) => {
                    warn!(error = %corrupt, "found an unreadable queue record");
                    Ok(Read::Corrupt(object.generation))
                }
            },
            Err(e) => Err(QueueError::storage(action, key, e)),
        }
    }

    /// [`Queue::read`] where an unreadable record counts as missing.
    pub(crate) async fn get_record<T>(
        &self,
        name: &str,
        key: &str,
        action: &'static str,
        parse: fn(&Object) -> Result<T, CorruptRecord>,
    ) -> Result<Option<(T, Generation)>, QueueError> {
        Ok(match self.read(name, key, action, parse).await? {
            Read::Found(record, generation) => Some((record, generation)),
            Read::Missing | Read::Corrupt(_) => None,
        })
    }
}

/// What a read of one record found.
pub(crate) enum Read<T> {
    /// No object.
    Missing,
    /// A record and its generation.
    Found(T, Generation),
    /// An object that is not a record of this queue, at this generation.
    Corrupt(Generation),
}

pub(crate) fn queued_name(key: &str) -> String {
    format!("{QUEUED}{}", encode_key(key))
}

pub(crate) fn in_progress_name(key: &str) -> String {
    format!("{IN_PROGRESS}{}", encode_key(key))
}

pub(crate) fn dead_letter_name(key: &str) -> String {
    format!("{DEAD_LETTER}{}", encode_key(key))
}

fn hostname() -> String {
    std::env::var("HOSTNAME")
        .ok()
        .or_else(|| std::fs::read_to_string("/proc/sys/kernel/hostname").ok())
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "host".to_owned())
}
