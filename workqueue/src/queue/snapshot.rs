//! Snapshots: every key record at one moment, sorted into what a dispatch pass decides from,
//! and the orphan recovery every pass runs.

use std::time::SystemTime;

use tracing::warn;

use super::{KEYS, Queue, QueueError, Read, key_name, parse};
use crate::entry::{DeadLetter, InProgressEntry, KeyRecord, QueuedEntry};
use crate::storage::{Generation, PutMode, list_all};

/// A record seen in a snapshot, with the generation of its key's object that a pinned write
/// needs.
#[derive(Clone, Debug)]
pub struct Listed<T> {
    /// The record.
    pub record: T,
    pub(crate) generation: Generation,
}

/// Every key record at one moment: what a dispatch pass decides from.
#[derive(Clone, Debug)]
pub struct Snapshot {
    /// When the snapshot was taken.
    pub taken_at: SystemTime,
    /// Keys being run, with live and lapsed leases.
    pub in_progress: Vec<Listed<InProgressEntry>>,
    /// Queued keys (twins included), in dispatch order.
    pub queued: Vec<Listed<QueuedEntry>>,
    /// Dead-lettered keys (some may be queued again, waiting to complete).
    pub dead: Vec<DeadLetter>,
    /// Records with a due queued part and no run, in dispatch order.
    claimable: Vec<Listed<KeyRecord>>,
    /// Records whose run's lease lapsed.
    orphans: Vec<Listed<KeyRecord>>,
}

impl Snapshot {
    pub(crate) fn new<'a>(
        taken_at: SystemTime,
        records: impl Iterator<Item = (&'a KeyRecord, Generation)>,
    ) -> Self {
        let mut snapshot = Self {
            taken_at,
            in_progress: Vec::new(),
            queued: Vec::new(),
            dead: Vec::new(),
            claimable: Vec::new(),
            orphans: Vec::new(),
        };
        for (record, generation) in records {
            fn listed<T>(record: T, generation: Generation) -> Listed<T> {
                Listed { record, generation }
            }
            if let Some(run) = &record.run {
                snapshot.in_progress.push(listed(run.clone(), generation));
                if run.lease_expires <= taken_at {
                    snapshot.orphans.push(listed(record.clone(), generation));
                }
            }
            if let Some(queued) = &record.queued {
                snapshot.queued.push(listed(queued.clone(), generation));
            }
            if let Some(dead) = &record.dead {
                snapshot.dead.push(dead.clone());
            }
            if record.claimable(taken_at).is_some() {
                snapshot.claimable.push(listed(record.clone(), generation));
            }
        }
        snapshot
            .queued
            .sort_by(|a, b| a.record.dispatch_order(&b.record));
        snapshot.claimable.sort_by(|a, b| {
            let (a, b) = (&a.record.queued, &b.record.queued);
            a.as_ref()
                .zip(b.as_ref())
                .map_or(std::cmp::Ordering::Equal, |(a, b)| a.dispatch_order(b))
        });
        snapshot
    }

    /// Records of in-progress keys whose lease has lapsed: their dispatcher is gone.
    pub fn orphans(&self) -> &[Listed<KeyRecord>] {
        &self.orphans
    }

    /// In-progress keys with a live lease.
    pub fn live(&self) -> usize {
        self.in_progress.len() - self.orphans.len()
    }

    /// Keys that may run now (due, and not running already), in dispatch order.
    pub fn due(&self) -> &[Listed<KeyRecord>] {
        &self.claimable
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
    /// Lists every key record (a full listing, for tools and tests; passes use the view).
    pub async fn snapshot(&self) -> Result<Snapshot, QueueError> {
        let objects = list_all(self.storage(), KEYS)
            .await
            .map_err(|e| QueueError::storage("list", KEYS, e))?;
        let records: Vec<(KeyRecord, Generation)> = objects
            .iter()
            .filter_map(|o| parse(o).ok().map(|r| (r, o.generation)))
            .collect();
        Ok(Snapshot::new(
            self.now(),
            records.iter().map(|(r, g)| (r, *g)),
        ))
    }

    /// Requeues the snapshot's orphans, keeping their attempt counts; returns how many keys
    /// were recovered. An orphan that cannot be recovered now is left for the next pass
    /// rather than stopping this one.
    pub async fn recover_orphans(&self, snapshot: &Snapshot) -> usize {
        let mut recovered = 0;
        for orphan in snapshot.orphans() {
            match self.recover(&orphan.record.key).await {
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
        recovered
    }

    /// Recovers one orphan after reading its record again: unless its run was renewed,
    /// finished or recovered meanwhile, the run goes back to the queue (merged into a twin)
    /// with one pinned write.
    async fn recover(&self, key: &str) -> Result<bool, QueueError> {
        let name = key_name(key);
        let Read::Found(mut record, generation) = self.read(&name, key, "recover").await? else {
            return Ok(false);
        };
        let Some(run) = record.run.take() else {
            return Ok(false);
        };
        if run.lease_expires > self.now() {
            return Ok(false);
        }
        warn!(%key, owner = %run.owner, "recovering a key whose lease lapsed");
        record.queued = Some(run.requeued_into(record.queued.take(), run.attempts, None));
        let since = self.view_seq();
        match self
            .storage()
            .put(&name, &record.to_metadata(), PutMode::Replace(generation))
            .await
        {
            Ok(next) => {
                self.observe(&name, Some((record, next)), since);
                Ok(true)
            }
            // Renewed or finished meanwhile: the next pass sees it.
            Err(e) if e.is_conflict() => Ok(false),
            Err(e) => Err(QueueError::storage("recover", key, e)),
        }
    }

    /// A snapshot for a dispatch pass: the next page of the scan read into the view, and the
    /// orphans in it recovered (then the snapshot is taken again, so they can run at once).
    /// When the scan fails, a view that was filled once still serves.
    pub async fn pass_snapshot(&self) -> Result<Snapshot, QueueError> {
        if let Err(e) = self.scan().await {
            if !self.view_filled() {
                return Err(e);
            }
            warn!(error = %crate::dispatcher::chain(&e), "failed to list the queue; dispatching from what is known");
        }
        let snapshot = self.view_snapshot();
        if self.recover_orphans(&snapshot).await == 0 {
            return Ok(snapshot);
        }
        Ok(self.view_snapshot())
    }
}
