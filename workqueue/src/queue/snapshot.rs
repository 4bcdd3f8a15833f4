//! Snapshots: every key record at one moment, sorted by state and dispatch order (for tools,
//! tests and a look at the whole queue; passes use the lighter [`super::PassView`]).

use std::time::SystemTime;

use super::{KEYS, Queue, QueueError, parse};
use crate::entry::{DeadLetter, InProgressEntry, KeyRecord, QueuedEntry};
use crate::storage::{Generation, list_all};

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
}
