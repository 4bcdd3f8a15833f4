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
        };
        for (record, generation) in records {
            fn listed<T>(record: T, generation: Generation) -> Listed<T> {
                Listed { record, generation }
            }
            if let Some(run) = &record.run {
                snapshot.in_progress.push(listed(run.clone(), generation));
            }
            if let Some(queued) = &record.queued {
                snapshot.queued.push(listed(queued.clone(), generation));
            }
            if let Some(dead) = &record.dead {
                snapshot.dead.push(dead.clone());
            }
        }
        snapshot
            .queued
            .sort_by(|a, b| a.record.dispatch_order(&b.record));
        snapshot
    }

    /// How many keys may run now: due, and not running already.
    pub fn due(&self) -> usize {
        let running: std::collections::HashSet<&str> = self
            .in_progress
            .iter()
            .map(|r| r.record.key.as_str())
            .collect();
        self.queued
            .iter()
            .filter(|q| q.record.is_due(self.taken_at) && !running.contains(q.record.key.as_str()))
            .count()
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
