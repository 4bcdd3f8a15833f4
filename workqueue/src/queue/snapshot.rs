//! Snapshots: everything queued and in progress at one moment, what a dispatch pass decides
//! from, and the orphan recovery every pass runs.

use std::collections::HashSet;
use std::time::SystemTime;

use tracing::warn;

use super::{IN_PROGRESS, QUEUED, Queue, QueueError, dead_letter_name, in_progress_name};
use crate::entry::{CorruptRecord, DeadLetter, InProgressEntry, QueuedEntry};
use crate::storage::{Generation, Object, list_all};

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
    /// The keys in progress, which their twins wait for.
    running: HashSet<String>,
    /// Claim records that are not readable: they would block their key and hold a
    /// concurrency slot forever, so passes remove those that stay unchanged for a lease.
    unreadable_claims: Vec<(String, Generation)>,
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

impl Queue {
    /// Lists everything queued and in progress.
    pub async fn snapshot(&self) -> Result<Snapshot, QueueError> {
        let (running, queued) = tokio::join!(
            list_all(self.storage(), IN_PROGRESS),
            list_all(self.storage(), QUEUED)
        );
        let running = running.map_err(|e| QueueError::storage("list", IN_PROGRESS, e))?;
        let queued = queued.map_err(|e| QueueError::storage("list", QUEUED, e))?;
        let (in_progress, unreadable_claims) = parse_all(running, InProgressEntry::from_object);
        let (mut queued, _) = parse_all(queued, QueuedEntry::from_object);
        queued.sort_by(|a, b| a.record.dispatch_order(&b.record));
        let running = in_progress.iter().map(|ip| ip.record.key.clone()).collect();
        Ok(Snapshot {
            taken_at: self.now(),
            in_progress,
            queued,
            running,
            unreadable_claims,
        })
    }

    /// Requeues the snapshot's orphans (keeping their attempt counts) and clears unreadable
    /// claim records that stayed unchanged for a lease; returns how many keys were recovered.
    /// An orphan that cannot be recovered now is left for the next pass rather than stopping
    /// this one.
    pub async fn recover_orphans(&self, snapshot: &Snapshot) -> Result<usize, QueueError> {
        let mut recovered = 0;
        for orphan in snapshot.orphans() {
            match self.recover(orphan).await {
                Ok(true) => {
                    recovered += 1;
                    self.metrics().expired_leases.inc();
                }
                Ok(false) => {}
                Err(e) => {
                    warn!(key = %orphan.record.key, error = %e, "failed to recover a key; retrying next pass")
                }
            }
        }
        for (name, generation) in self.stale_unreadable_claims(&snapshot.unreadable_claims) {
            warn!(object = %name, "removing an unreadable claim record unchanged for a lease");
            if let Err(e) = self.storage().delete(&name, generation).await {
                warn!(object = %name, error = %e, "failed to remove an unreadable claim record");
            }
        }
        Ok(recovered)
    }

    /// Recovers one orphan, unless it changed since the snapshot (renewed, finished, or
    /// recovered by another pass) or its run already ended in a dead letter.
    async fn recover(&self, orphan: &Listed<InProgressEntry>) -> Result<bool, QueueError> {
        let run = &orphan.record;
        let name = in_progress_name(&run.key);
        let current = self.storage().get(&name).await;
        match current.map_err(|e| QueueError::storage("recover", &run.key, e))? {
            Some(object) if object.generation == orphan.generation => {}
            _ => return Ok(false),
        }
        let dead = self
            .get_record(
                &dead_letter_name(&run.key),
                &run.key,
                "recover",
                DeadLetter::from_object,
            )
            .await?;
        // A run that failed for good wrote its dead letter, then crashed before dropping
        // its claim: requeueing it would dispatch a dead-lettered key.
        let dead_lettered = dead.is_some_and(|(dead, _)| dead.failed_at >= run.claimed_at);
        if !dead_lettered {
            warn!(key = %run.key, owner = %run.owner, "recovering a key whose lease lapsed");
            self.put_back(run.requeued(run.attempts, None)).await?;
        }
        match self.storage().delete(&name, orphan.generation).await {
            Ok(()) => Ok(!dead_lettered),
            // Renewed or finished meanwhile: the queued copy just runs once more.
            Err(e) if e.is_conflict() => Ok(false),
            Err(e) => Err(QueueError::storage("recover", &run.key, e)),
        }
    }

    /// Of the unreadable claim records in a snapshot, those seen unchanged for a whole lease.
    fn stale_unreadable_claims(&self, seen: &[(String, Generation)]) -> Vec<(String, Generation)> {
        let now = self.now();
        let lease = self.config().lease;
        let mut known = self
            .inner
            .unreadable_claims
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        known.retain(|name, _| seen.iter().any(|(n, _)| n == name));
        let mut stale = Vec::new();
        for (name, generation) in seen {
            let entry = known.entry(name.clone()).or_insert((*generation, now));
            if entry.0 != *generation {
                *entry = (*generation, now);
            } else if now.duration_since(entry.1).unwrap_or_default() >= lease {
                stale.push((name.clone(), *generation));
            }
        }
        stale
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
}

/// Parses listed objects into records; unreadable ones are logged and returned apart, by
/// name and generation.
pub(crate) fn parse_all<T>(
    objects: Vec<Object>,
    parse: fn(&Object) -> Result<T, CorruptRecord>,
) -> (Vec<Listed<T>>, Vec<(String, Generation)>) {
    let mut records = Vec::with_capacity(objects.len());
    let mut unreadable = Vec::new();
    for object in objects {
        match parse(&object) {
            Ok(record) => records.push(Listed {
                record,
                generation: object.generation,
            }),
            Err(corrupt) => {
                warn!(error = %corrupt, "skipping an unreadable queue record");
                unreadable.push((object.name, object.generation));
            }
        }
    }
    (records, unreadable)
}
