//! The queue rules (docs/architecture.md, "Queue rules"), written once on top of the storage
//! seam.
//!
//! # Storage layout
//! One empty object per key, `k/<key>`, its data in metadata (see [`crate::entry`]): the
//! queued entry, the run in progress and the dead letter are parts of that one record, so a
//! key moves between states by rewriting one object in place, pinned to its generation.
//! `<key>` is the key percent-encoded (or hashed when very long), so any key stays inside the
//! prefix. Capacity slots `slot/<n>` (`n` below the concurrency) hold the global limit.
//! Dead letters are also listed as `dead-letter/<key>` objects (`dead_letters.rs`).
//!
//! * **Enqueue**: create `k/<key>` if absent. If it exists, read it and merge the entry in
//!   with a pinned replace (nothing is written when the merge changes nothing). A key in
//!   progress gets a queued part beside its run: that is its twin, which runs after the run.
//! * **Claim**: a pinned replace that turns the queued part into a run (owner, run id,
//!   lease), from the generation the dispatcher last saw: one contender wins, the others get a
//!   precondition failure, re-read, and skip the key.
//! * **Global limit**: a dispatcher holds a capacity slot for each key it runs. Slots are
//!   leased objects, created or taken over once expired, renewed by one heartbeat per
//!   process, and kept while they are used, so a steady stream of keys costs no slot writes.
//! * **Run**: a heartbeat renews the run's lease with pinned replaces; if the record changed
//!   (a twin arrived) it re-reads and goes on while the run id is still its own; if the run is
//!   gone, the claim was lost and its cancellation token fires.
//! * **Finish**: one pinned write: complete deletes the object (or drops the run and the dead
//!   letter when a twin waits); requeue, retry and hand-back turn the run back into a queued
//!   part (merged into a twin); a dead letter replaces the run by a dead-letter part.
//! * **Passes** read one page of a rolling scan of `k/` per pass and keep a view of every
//!   record from it, from their own writes and from storage notifications; the view gives
//!   the dispatch order, the due keys and the orphans (runs whose lease lapsed), which a pass
//!   re-reads and requeues with their attempts. A fresh process lists `k/` once whole.
//!
//! # What it costs
//! | step | mutations | reads |
//! |---|---|---|
//! | enqueue a new key | 1 create | none |
//! | enqueue a queued or running key | 1 replace (none if nothing changes) | 1 get, after the create's precondition failure |
//! | claim | 1 replace | none (the view has the record) |
//! | complete | 1 delete (1 replace when a twin waits) | none |
//! | requeue, retry, hand back | 1 replace | none |
//! | dead-letter | 1 replace, 1 create of its `dead-letter/` entry | none |
//! | complete a key that held a dead letter | as complete, 1 delete of the entry | 1 get |
//! | renew a lease (every third of it) | 1 replace | none |
//! | a pass | none | 1 list page (a fresh process: the whole listing once) |
//! | capacity | 1 create per slot when a process first needs it, 1 replace per held slot per third of a lease, 1 delete when it goes idle or the process stops | 1 list page of `slot/` when a process needs more slots |
//!
//! A processed key thus costs three mutations in the common case (create, replace, delete)
//! and no gets, and a pass reads one list page whatever the queue's length. The reference
//! layout spends about five mutations per key and lists the whole bucket on every pass. A
//! write that meets a record changed since it was seen costs one failed precondition and one
//! get before it is made again.
//!
//! The view is as fresh as its last page: with more than one page of keys, a key enqueued by
//! another process is seen once the scan reaches it, or at once through a notification;
//! a record changed since it was seen costs a failed precondition and a read, never a wrong
//! write.
//!
//! # Where each rule lives
//! * `write.rs`: the pinned read-modify-write every step below is made of.
//! * here: [`Queue`], enqueue (the merge into a record) and [`Queue::state`].
//! * `start.rs`: [`Queue::start`], the one path from due keys to claims (the dispatcher's and
//!   the conformance suite's); `pass.rs`: the pass it begins with (scan, orphans, due keys).
//! * `claim.rs`: [`Claim`], a run and how it ends; `lease.rs`: its heartbeat.
//! * `capacity.rs`: the slots that hold the global limit; `view.rs`: what a process knows of
//!   every record.
//! * `snapshot.rs`: whole listings for tools; `dead_letters.rs`: the dead letters, their
//!   `dead-letter/` listing and their re-enqueue; `error.rs`: [`QueueError`].

mod capacity;
mod claim;
mod dead_letters;
mod error;
mod lease;
mod pass;
mod snapshot;
mod start;
mod view;
mod write;

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use tracing::warn;

use crate::backoff::Backoff;
use crate::clock::{Clock, SystemClock};
use crate::entry::{CorruptRecord, KeyRecord, NotBefore, QueuedEntry};
use crate::key::{encode_key, validate_key};
use crate::metrics::Metrics;
use crate::storage::{Generation, Object, Storage};

pub(crate) use capacity::{Capacity, Permit};
pub use claim::{Claim, Failure};
pub use error::QueueError;
pub use pass::PassView;
pub use snapshot::{Listed, Snapshot};
pub use start::Started;
pub use view::Change;
pub(crate) use view::View;
use write::{OnError, Write};

/// The prefix of the key records.
pub(crate) const KEYS: &str = "k/";
/// The prefix of the capacity slots.
pub(crate) const SLOTS: &str = "slot/";

/// The longest delay the queue keeps: ten years. Longer delays (a reconciler's answer, say)
/// are shortened to it, and the receiver refuses them.
pub const MAX_DELAY: Duration = Duration::from_secs(10 * 365 * 24 * 3600);

/// How long before a lease lapses its holder gives it up (a claim or a capacity slot): a tenth
/// of the lease, so its runs stop before any other process may take over.
pub(crate) fn lease_margin(lease: Duration) -> Duration {
    lease / 10
}

/// The time `delay` after `now`, with the delay capped at [`MAX_DELAY`].
pub(crate) fn due_after(now: SystemTime, delay: Duration) -> SystemTime {
    now.checked_add(delay.min(MAX_DELAY)).unwrap_or(now)
}

/// How often a read-modify-write is retried when other writers keep changing the object.
pub(crate) const MAX_WRITE_TRIES: usize = 16;

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
    /// What this process knows of every key record (filled by dispatch passes).
    view: Mutex<View>,
    /// The capacity slots this process holds.
    capacity: Arc<Capacity>,
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
        let capacity = Arc::new(Capacity::new(
            storage.clone(),
            clock.clone(),
            owner.clone(),
            config.lease,
        ));
        Self {
            inner: Arc::new(Inner {
                storage,
                config,
                clock,
                metrics,
                owner,
                view: Mutex::new(View::default()),
                capacity,
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

    /// The name this process writes into its claims and slots.
    pub fn owner(&self) -> &str {
        &self.inner.owner
    }

    pub(crate) fn storage(&self) -> &dyn Storage {
        self.inner.storage.as_ref()
    }

    pub(crate) fn capacity(&self) -> &Arc<Capacity> {
        &self.inner.capacity
    }

    /// Gives back every capacity slot this process holds (at shutdown, once its runs ended or
    /// had their time), all at once, until `deadline`; returns how many were not given back by
    /// then (they lapse with their lease).
    pub async fn release_capacity(&self, deadline: tokio::time::Instant) -> usize {
        self.inner.capacity.release_all_by(deadline).await
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
        let fresh = || QueuedEntry::new(key, priority, not_before, self.now());
        let enqueued = self
            .upsert(key, fresh, |entry| entry.merged(priority, not_before))
            .await?;
        match enqueued {
            Enqueued::Added => self.metrics().added_keys.inc(),
            Enqueued::Merged | Enqueued::Unchanged => self.metrics().deduped_keys.inc(),
        };
        Ok(enqueued)
    }

    /// Writes `key`'s queued part: `fresh()` when it has none (a new key, a twin, a dead letter
    /// enqueued again, an unreadable record), else `merge` of the one there. The first try is
    /// a create, which is all a new key costs; an existing record is read and replaced pinned
    /// to its generation, decided again while other writers change it.
    async fn upsert(
        &self,
        key: &str,
        fresh: impl Fn() -> QueuedEntry,
        merge: impl Fn(&QueuedEntry) -> QueuedEntry,
    ) -> Result<Enqueued, QueueError> {
        let decide = |seen: &Read| {
            Ok(match seen {
                Read::Missing | Read::Corrupt(_) => {
                    Write::Put(KeyRecord::queued(fresh()), Enqueued::Added)
                }
                Read::Found(record, _) => match &record.queued {
                    Some(queued) => {
                        let merged = merge(queued);
                        if merged == *queued {
                            return Ok(Write::Done(Enqueued::Unchanged));
                        }
                        let record = KeyRecord {
                            queued: Some(merged),
                            ..record.clone()
                        };
                        Write::Put(record, Enqueued::Merged)
                    }
                    None => {
                        let record = KeyRecord {
                            queued: Some(fresh()),
                            ..record.clone()
                        };
                        Write::Put(record, Enqueued::Added)
                    }
                },
            })
        };
        let landed = self
            .write_pinned(key, "enqueue", OnError::Fail, Read::Missing, decide)
            .await?;
        Ok(landed.value)
    }

    /// Where `key` is, or `None` when the queue does not know it: one read of its record.
    pub async fn state(&self, key: &str) -> Result<Option<KeyState>, QueueError> {
        validate_key(key)?;
        let Read::Found(record, _) = self.read(&key_name(key), key, "read").await? else {
            return Ok(None);
        };
        let now = self.now();
        let state = |status, priority, attempts, queued_at, not_before| KeyState {
            key: record.key.clone(),
            status,
            priority,
            attempts,
            queued_at,
            not_before,
        };
        Ok(Some(match (&record.run, &record.queued, &record.dead) {
            (Some(run), _, _) => state(
                KeyStatus::InProgress,
                run.priority,
                run.attempts,
                run.queued_at,
                None,
            ),
            (None, Some(q), _) => state(
                KeyStatus::Queued,
                q.priority,
                q.attempts,
                q.queued_at,
                q.not_before.map(|nb| nb.at).filter(|at| *at > now),
            ),
            (None, None, Some(dead)) => state(
                KeyStatus::DeadLetter,
                dead.priority,
                dead.attempts,
                dead.queued_at,
                None,
            ),
            (None, None, None) => return Ok(None),
        }))
    }

    /// Reads one key's record: missing, readable, or unreadable (replaced by an enqueue, so it
    /// never blocks the key). What it finds goes into the view.
    pub(crate) async fn read(
        &self,
        name: &str,
        key: &str,
        action: &'static str,
    ) -> Result<Read, QueueError> {
        let since = self.view_seq();
        match self.storage().get(name).await {
            Ok(None) => {
                self.observe(name, None, since);
                Ok(Read::Missing)
            }
            Ok(Some(object)) => match KeyRecord::from_object(&object) {
                Ok(record) => {
                    self.observe(name, Some((record.clone(), object.generation)), since);
                    Ok(Read::Found(record, object.generation))
                }
                Err(corrupt) => {
                    warn!(error = %corrupt, "found an unreadable queue record");
                    self.observe(name, None, since);
                    Ok(Read::Corrupt(object.generation))
                }
            },
            Err(e) => Err(QueueError::storage(action, key, e)),
        }
    }
}

/// What a read of one key's record found.
#[allow(clippy::large_enum_variant)] // short-lived, and almost always `Found`
pub(crate) enum Read {
    /// No object.
    Missing,
    /// A record and its generation.
    Found(KeyRecord, Generation),
    /// An object that is not a record of this queue, at this generation.
    Corrupt(Generation),
}

/// The object that holds `key`'s record.
pub(crate) fn key_name(key: &str) -> String {
    format!("{KEYS}{}", encode_key(key))
}

/// Parses a listed or notified object into a record; unreadable ones are logged.
pub(crate) fn parse(object: &Object) -> Result<KeyRecord, CorruptRecord> {
    KeyRecord::from_object(object).inspect_err(|corrupt| {
        warn!(error = %corrupt, "skipping an unreadable queue record");
    })
}

fn hostname() -> String {
    std::env::var("HOSTNAME")
        .ok()
        .or_else(|| std::fs::read_to_string("/proc/sys/kernel/hostname").ok())
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "host".to_owned())
}
