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
//! A processed key thus costs four mutations (create, create, delete, delete), one get
//! and its share of list pages; the reference layout spends about five.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tracing::warn;

use crate::backoff::Backoff;
use crate::claim::Claim;
use crate::clock::{Clock, SystemClock};
use crate::entry::{DeadLetter, InProgressEntry, NotBefore, QueuedEntry};
use crate::key::{InvalidKey, encode_key, validate_key};
use crate::metrics::Metrics;
use crate::storage::{Generation, Object, PutMode, Storage, StorageError, list_all};

pub(crate) const QUEUED: &str = "queued/";
pub(crate) const IN_PROGRESS: &str = "in-progress/";
pub(crate) const DEAD_LETTER: &str = "dead-letter/";

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

/// A record listed in a snapshot, with the generation a pinned write needs.
#[derive(Clone, Debug)]
pub struct Listed<T> {
    /// The record.
    pub record: T,
    pub(crate) generation: Generation,
}

/// Everything queued and in progress at one moment: what a dispatch pass decides from.
#[derive(Clone, Debug)]
pub struct Snapshot {
    /// When the listing was taken.
    pub taken_at: SystemTime,
    /// Keys being run, with live and lapsed leases.
    pub in_progress: Vec<Listed<InProgressEntry>>,
    /// Queued keys (twins included), in dispatch order.
    pub queued: Vec<Listed<QueuedEntry>>,
    running: HashSet<String>,
}

impl Snapshot {
    /// In-progress keys whose lease has lapsed: their dispatcher is gone.
    pub fn orphans(&self) -> impl Iterator<Item = &Listed<InProgressEntry>> {
        self.in_progress
            .iter()
            .filter(|ip| ip.record.lease_expires <= self.taken_at)
    }

    /// In-progress keys with a live lease.
    pub fn live(&self) -> usize {
        self.in_progress.len() - self.orphans().count()
    }

    /// Queued keys that may run now (due, and not running already), in dispatch order.
    pub fn due(&self) -> Vec<&Listed<QueuedEntry>> {
        self.queued
            .iter()
            .filter(|q| q.record.is_due(self.taken_at) && !self.running.contains(&q.record.key))
            .collect()
    }

    /// Queued keys that are not due yet.
    pub fn waiting(&self) -> usize {
        self.queued
            .iter()
            .filter(|q| !q.record.is_due(self.taken_at))
            .count()
    }

    /// When the next waiting key becomes due.
    pub fn next_due_at(&self) -> Option<SystemTime> {
        self.queued
            .iter()
            .filter_map(|q| q.record.not_before.map(|nb| nb.at))
            .filter(|at| *at > self.taken_at)
            .min()
    }

    /// How many keys a pass may launch: `min(batch, concurrency - live in-progress)`.
    pub fn launchable(&self, concurrency: usize, batch: usize) -> usize {
        batch.min(concurrency.saturating_sub(self.live()))
    }

    /// The highest attempt count among queued keys.
    pub fn max_attempts(&self) -> u32 {
        self.queued
            .iter()
            .map(|q| q.record.attempts)
            .max()
            .unwrap_or(0)
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
        let not_before = (!delay.is_zero()).then(|| NotBefore::plain(self.now() + delay));
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
        let name = queued_name(key);
        let metrics = self.metrics();
        for _ in 0..MAX_WRITE_TRIES {
            let existing = self
                .get_record(&name, key, "read", QueuedEntry::from_object)
                .await?;
            let result = match existing {
                None => {
                    let entry = QueuedEntry::new(key, priority, not_before, self.now());
                    self.storage()
                        .put(&name, &entry.to_metadata(), PutMode::Create)
                        .await
                        .map(|_| Enqueued::Added)
                }
                Some((entry, generation)) => {
                    let merged = entry.merged(priority, not_before);
                    if merged == entry {
                        metrics.deduped_keys.inc();
                        return Ok(Enqueued::Unchanged);
                    }
                    self.storage()
                        .put(&name, &merged.to_metadata(), PutMode::Replace(generation))
                        .await
                        .map(|_| Enqueued::Merged)
                }
            };
            match result {
                Ok(Enqueued::Added) => {
                    metrics.added_keys.inc();
                    return Ok(Enqueued::Added);
                }
                Ok(done) => {
                    metrics.deduped_keys.inc();
                    return Ok(done);
                }
                Err(e) if e.is_conflict() => continue,
                Err(e) => return Err(QueueError::storage("enqueue", key, e)),
            }
        }
        Err(QueueError::Contention {
            action: "enqueue",
            key: key.to_owned(),
        })
    }

    /// Puts a run's entry back in the queue, merging into a twin if one arrived meanwhile (the
    /// twin keeps its own attempt count and age).
    pub(crate) async fn put_back(&self, entry: QueuedEntry) -> Result<(), QueueError> {
        let name = queued_name(&entry.key);
        for _ in 0..MAX_WRITE_TRIES {
            let twin = self
                .get_record(&name, &entry.key, "read", QueuedEntry::from_object)
                .await?;
            let result = match twin {
                None => {
                    self.storage()
                        .put(&name, &entry.to_metadata(), PutMode::Create)
                        .await
                }
                Some((twin, generation)) => {
                    let mut merged = twin.merged(entry.priority, entry.not_before);
                    merged.last_attempted = entry.last_attempted.or(twin.last_attempted);
                    if merged == twin {
                        return Ok(());
                    }
                    self.storage()
                        .put(&name, &merged.to_metadata(), PutMode::Replace(generation))
                        .await
                }
            };
            match result {
                Ok(_) => return Ok(()),
                Err(e) if e.is_conflict() => continue,
                Err(e) => return Err(QueueError::storage("requeue", &entry.key, e)),
            }
        }
        Err(QueueError::Contention {
            action: "requeue",
            key: entry.key,
        })
    }

    /// Where `key` is, or `None` when the queue does not know it.
    pub async fn state(&self, key: &str) -> Result<Option<KeyState>, QueueError> {
        validate_key(key)?;
        let names = (
            in_progress_name(key),
            queued_name(key),
            dead_letter_name(key),
        );
        let (running, queued, dead) = tokio::join!(
            self.get_record(&names.0, key, "read", InProgressEntry::from_object),
            self.get_record(&names.1, key, "read", QueuedEntry::from_object),
            self.get_record(&names.2, key, "read", DeadLetter::from_object),
        );
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
        if let Some((entry, _)) = queued? {
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

    /// Lists everything queued and in progress.
    pub async fn snapshot(&self) -> Result<Snapshot, QueueError> {
        let (running, queued) = tokio::join!(
            list_all(self.storage(), IN_PROGRESS),
            list_all(self.storage(), QUEUED)
        );
        let running = running.map_err(|e| QueueError::storage("list", IN_PROGRESS, e))?;
        let queued = queued.map_err(|e| QueueError::storage("list", QUEUED, e))?;
        let in_progress: Vec<_> = parse_all(running, InProgressEntry::from_object);
        let mut queued: Vec<_> = parse_all(queued, QueuedEntry::from_object);
        queued.sort_by(|a, b| a.record.dispatch_order(&b.record));
        let running = in_progress.iter().map(|ip| ip.record.key.clone()).collect();
        Ok(Snapshot {
            taken_at: self.now(),
            in_progress,
            queued,
            running,
        })
    }

    /// Requeues the snapshot's orphans (keeping their attempt counts); returns how many.
    pub async fn recover_orphans(&self, snapshot: &Snapshot) -> Result<usize, QueueError> {
        let mut recovered = 0;
        for orphan in snapshot.orphans() {
            let run = &orphan.record;
            warn!(key = %run.key, owner = %run.owner, "recovering a key whose lease lapsed");
            self.put_back(run.requeued(run.attempts, None)).await?;
            match self
                .storage()
                .delete(&in_progress_name(&run.key), orphan.generation)
                .await
            {
                Ok(()) => {
                    recovered += 1;
                    self.metrics().expired_leases.inc();
                }
                // Renewed or finished meanwhile: the queued copy just runs once more.
                Err(e) if e.is_conflict() => {}
                Err(e) => return Err(QueueError::storage("recover", &run.key, e)),
            }
        }
        Ok(recovered)
    }

    /// Claims up to `want` of `candidates` (in order, skipping any that another dispatcher
    /// wins), never letting the number of claims in storage exceed `limit`.
    pub async fn claim(
        &self,
        candidates: &[&Listed<QueuedEntry>],
        want: usize,
        limit: usize,
    ) -> Result<Vec<Claim>, QueueError> {
        let now = self.now();
        let mut created = Vec::new();
        for candidate in candidates {
            if created.len() == want {
                break;
            }
            let entry = &candidate.record;
            let run = InProgressEntry {
                key: entry.key.clone(),
                priority: entry.priority,
                attempts: entry.attempts,
                queued_at: entry.queued_at,
                claimed_at: now,
                owner: self.inner.owner.clone(),
                lease_expires: now + self.config().lease,
            };
            let name = in_progress_name(&entry.key);
            match self
                .storage()
                .put(&name, &run.to_metadata(), PutMode::Create)
                .await
            {
                Ok(generation) => created.push((*candidate, run, generation)),
                Err(e) if e.is_conflict() => continue,
                Err(e) => {
                    self.withdraw(&created).await;
                    return Err(QueueError::storage("claim", &entry.key, e));
                }
            }
        }
        if created.is_empty() {
            return Ok(Vec::new());
        }
        // Hold the global limit: whoever created a claim last sees every earlier one, so the
        // claims beyond the limit are always withdrawn before they run.
        let claims = match list_all(self.storage(), IN_PROGRESS).await {
            Ok(all) => all.len(),
            Err(e) => {
                self.withdraw(&created).await;
                return Err(QueueError::storage("count claims", IN_PROGRESS, e));
            }
        };
        let surplus = claims.saturating_sub(limit).min(created.len());
        let keep = created.len() - surplus;
        self.withdraw(&created[keep..]).await;
        created.truncate(keep);

        let mut claims = Vec::new();
        for (candidate, run, generation) in created {
            match self.take_queued(candidate, run, generation).await {
                Ok(Some(claim)) => claims.push(claim),
                Ok(None) => {}
                Err(e) => {
                    warn!(error = %e, "failed to take a claimed key off the queue; it will be retried")
                }
            }
        }
        Ok(claims)
    }

    /// Deletes the claimed key's queued entry (pinned to what was listed); if a new enqueue
    /// changed it meanwhile, absorbs it while it is still due.
    async fn take_queued(
        &self,
        listed: &Listed<QueuedEntry>,
        mut run: InProgressEntry,
        mut generation: Generation,
    ) -> Result<Option<Claim>, QueueError> {
        let name = queued_name(&run.key);
        let mut entry = listed.record.clone();
        let mut queued_generation = listed.generation;
        for _ in 0..MAX_WRITE_TRIES {
            match self.storage().delete(&name, queued_generation).await {
                Ok(()) => {
                    if entry.priority != run.priority || entry.attempts != run.attempts {
                        run.priority = entry.priority;
                        run.attempts = entry.attempts;
                        let ip = in_progress_name(&run.key);
                        generation = self
                            .storage()
                            .put(&ip, &run.to_metadata(), PutMode::Replace(generation))
                            .await
                            .map_err(|e| QueueError::storage("claim", &run.key, e))?;
                    }
                    self.metrics().observe_wait(&entry, run.claimed_at);
                    return Ok(Some(Claim::start(self.clone(), run, generation)));
                }
                Err(e) if e.is_conflict() => {
                    match self
                        .get_record(&name, &run.key, "claim", QueuedEntry::from_object)
                        .await?
                    {
                        Some((newer, newer_generation)) if newer.is_due(self.now()) => {
                            entry = newer;
                            queued_generation = newer_generation;
                        }
                        // Run by someone else since the listing, or no longer due.
                        _ => break,
                    }
                }
                Err(e) => {
                    self.withdraw(&[(listed, run.clone(), generation)]).await;
                    return Err(QueueError::storage("claim", &run.key, e));
                }
            }
        }
        self.withdraw(&[(listed, run, generation)]).await;
        Ok(None)
    }

    async fn withdraw(&self, created: &[(&Listed<QueuedEntry>, InProgressEntry, Generation)]) {
        for (_, run, generation) in created {
            if let Err(e) = self
                .storage()
                .delete(&in_progress_name(&run.key), *generation)
                .await
            {
                // Left in place, it lapses and is recovered as an orphan: nothing is lost.
                warn!(key = %run.key, error = %e, "failed to withdraw a claim");
            }
        }
    }

    /// A snapshot for a dispatch pass: orphans found in it are recovered first, and the
    /// snapshot is taken again if there were any, so the recovered keys can run at once.
    pub async fn pass_snapshot(&self) -> Result<Snapshot, QueueError> {
        let snapshot = self.snapshot().await?;
        if self.recover_orphans(&snapshot).await? == 0 {
            return Ok(snapshot);
        }
        self.snapshot().await
    }

    /// Claims the next due keys: a pass snapshot, then up to
    /// `min(batch, concurrency - in progress)` claims in dispatch order.
    pub async fn start(&self, concurrency: usize, batch: usize) -> Result<Vec<Claim>, QueueError> {
        let snapshot = self.pass_snapshot().await?;
        let want = snapshot.launchable(concurrency, batch);
        if want == 0 {
            return Ok(Vec::new());
        }
        self.claim(&snapshot.due(), want, concurrency).await
    }

    /// Every dead-lettered key.
    pub async fn dead_letters(&self) -> Result<Vec<DeadLetter>, QueueError> {
        let objects = list_all(self.storage(), DEAD_LETTER)
            .await
            .map_err(|e| QueueError::storage("list", DEAD_LETTER, e))?;
        Ok(parse_all(objects, DeadLetter::from_object)
            .into_iter()
            .map(|l| l.record)
            .collect())
    }

    /// Enqueues every dead-lettered key again with a fresh attempt count; returns how many.
    /// Each dead letter is removed when its key next completes.
    pub async fn reenqueue_dead_letters(&self) -> Result<usize, QueueError> {
        let dead = self.dead_letters().await?;
        for letter in &dead {
            self.enqueue_with(&letter.key, letter.priority, None)
                .await?;
        }
        Ok(dead.len())
    }

    pub(crate) async fn dead_letter(&self, letter: &DeadLetter) -> Result<(), QueueError> {
        let name = dead_letter_name(&letter.key);
        for _ in 0..MAX_WRITE_TRIES {
            let mode = match self.storage().get(&name).await {
                Ok(None) => PutMode::Create,
                Ok(Some(existing)) => PutMode::Replace(existing.generation),
                Err(e) => return Err(QueueError::storage("dead-letter", &letter.key, e)),
            };
            match self.storage().put(&name, &letter.to_metadata(), mode).await {
                Ok(_) => return Ok(()),
                Err(e) if e.is_conflict() => continue,
                Err(e) => return Err(QueueError::storage("dead-letter", &letter.key, e)),
            }
        }
        Err(QueueError::Contention {
            action: "dead-letter",
            key: letter.key.clone(),
        })
    }

    /// Removes `key`'s dead letter, if it has one (after the key completes).
    pub(crate) async fn clear_dead_letter(&self, key: &str) -> Result<(), QueueError> {
        let name = dead_letter_name(key);
        match self.storage().get(&name).await {
            Ok(Some(object)) => match self.storage().delete(&name, object.generation).await {
                Ok(()) => Ok(()),
                Err(e) if e.is_conflict() => Ok(()),
                Err(e) => Err(QueueError::storage("clear dead letter", key, e)),
            },
            Ok(None) => Ok(()),
            Err(e) => Err(QueueError::storage("clear dead letter", key, e)),
        }
    }

    async fn get_record<T>(
        &self,
        name: &str,
        key: &str,
        action: &'static str,
        parse: fn(&Object) -> Result<T, crate::entry::CorruptRecord>,
    ) -> Result<Option<(T, Generation)>, QueueError> {
        match self.storage().get(name).await {
            Ok(None) => Ok(None),
            Ok(Some(object)) => match parse(&object) {
                Ok(record) => Ok(Some((record, object.generation))),
                Err(corrupt) => {
                    // A record this queue cannot read is replaced rather than blocking the key.
                    warn!(error = %corrupt, "ignoring an unreadable queue record");
                    Ok(None)
                }
            },
            Err(e) => Err(QueueError::storage(action, key, e)),
        }
    }
}

fn parse_all<T>(
    objects: Vec<Object>,
    parse: fn(&Object) -> Result<T, crate::entry::CorruptRecord>,
) -> Vec<Listed<T>> {
    objects
        .into_iter()
        .filter_map(|object| match parse(&object) {
            Ok(record) => Some(Listed {
                record,
                generation: object.generation,
            }),
            Err(corrupt) => {
                warn!(error = %corrupt, "skipping an unreadable queue record");
                None
            }
        })
        .collect()
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
