//! What a dispatch pass decides from: the next page of the scan read into the view, orphans
//! recovered, counts over every key, and the first due keys in dispatch order. Only those are
//! copied out of the view, so a pass stays cheap however long the queue is.

use std::cmp::Ordering;
use std::time::{Instant, SystemTime};

use tracing::warn;

use super::write::{OnError, Write};
use super::{Listed, Queue, QueueError, Read, key_name};
use crate::entry::KeyRecord;
use crate::error_chain as chain;
use crate::metrics::Depth;

/// A dispatch pass's view of the queue.
#[derive(Clone, Debug)]
pub struct PassView {
    /// When it was taken.
    pub taken_at: SystemTime,
    /// Keys in progress (lapsed leases included).
    pub in_progress: usize,
    /// Queued keys, twins included.
    pub queued: usize,
    /// Queued keys that are not due yet.
    pub waiting: usize,
    /// Dead-lettered keys.
    pub dead: usize,
    /// The highest attempt count among queued keys.
    pub max_attempts: u32,
    /// When the next waiting key becomes due.
    pub next_due_at: Option<SystemTime>,
    /// How many keys may run now.
    pub due_total: usize,
    /// The first of those, in dispatch order.
    due: Vec<Listed<KeyRecord>>,
    /// Keys whose run's lease lapsed.
    orphans: Vec<String>,
}

impl PassView {
    /// Takes the view's measure at `now`, copying out the first `due_limit` due keys.
    fn new<'a>(
        now: SystemTime,
        records: impl Iterator<Item = (&'a KeyRecord, crate::storage::Generation)>,
        due_limit: usize,
    ) -> Self {
        let mut view = Self {
            taken_at: now,
            in_progress: 0,
            queued: 0,
            waiting: 0,
            dead: 0,
            max_attempts: 0,
            next_due_at: None,
            due_total: 0,
            due: Vec::new(),
            orphans: Vec::new(),
        };
        let mut due = Vec::new();
        for (record, generation) in records {
            if let Some(run) = &record.run {
                view.in_progress += 1;
                if run.lease_expires <= now {
                    view.orphans.push(record.key.clone());
                }
            }
            if let Some(queued) = &record.queued {
                view.queued += 1;
                view.max_attempts = view.max_attempts.max(queued.attempts);
                if let Some(at) = queued.not_before.map(|nb| nb.at).filter(|at| *at > now) {
                    view.waiting += 1;
                    view.next_due_at = Some(view.next_due_at.map_or(at, |next| next.min(at)));
                }
            }
            view.dead += usize::from(record.dead.is_some());
            if let Some(queued) = record.claimable(now) {
                due.push((queued, record, generation));
            }
        }
        view.due_total = due.len();
        let order = |a: &(&crate::entry::QueuedEntry, _, _),
                     b: &(&crate::entry::QueuedEntry, _, _)|
         -> Ordering { a.0.dispatch_order(b.0) };
        if due.len() > due_limit {
            if due_limit == 0 {
                due.clear();
            } else {
                due.select_nth_unstable_by(due_limit - 1, order);
                due.truncate(due_limit);
            }
        }
        due.sort_by(order);
        view.due = due
            .into_iter()
            .map(|(_, record, generation)| Listed {
                record: record.clone(),
                generation,
            })
            .collect();
        view
    }

    /// The first due keys, in dispatch order.
    pub fn due(&self) -> &[Listed<KeyRecord>] {
        &self.due
    }

    /// The queue's depth, for its gauges.
    pub fn depth(&self) -> Depth {
        Depth {
            in_progress: self.in_progress,
            queued: self.queued,
            waiting: self.waiting,
            dead: self.dead,
            max_attempts: self.max_attempts,
        }
    }
}

impl Queue {
    /// A pass: the next page of the scan read into the view, the orphans in it recovered (then
    /// the view is measured again, so they can run at once), and up to `due_limit` due keys.
    /// When the scan fails, a view that was filled once still serves.
    pub(super) async fn pass(&self, due_limit: usize) -> Result<PassView, QueueError> {
        let started = Instant::now();
        if let Err(e) = self.scan().await {
            if !self.view_filled() {
                return Err(e);
            }
            warn!(error = %chain(&e), "failed to list the queue; dispatching from what is known");
        }
        let mut view = self.pass_view(due_limit);
        if self.recover_orphans(&view.orphans).await > 0 {
            view = self.pass_view(due_limit);
        }
        // The whole pass counts as its enumeration: the listing, the orphans, the measure.
        self.metrics().observe_enumerate(started.elapsed());
        self.metrics().observe_depth(view.depth());
        Ok(view)
    }

    fn pass_view(&self, due_limit: usize) -> PassView {
        let now = self.now();
        self.with_view_records(|records| PassView::new(now, records, due_limit))
    }

    /// Requeues orphans, keeping their attempt counts; returns how many keys were recovered.
    /// An orphan that cannot be recovered now is left for the next pass rather than stopping
    /// this one.
    async fn recover_orphans(&self, keys: &[String]) -> usize {
        let mut recovered = 0;
        for key in keys {
            match self.recover(key).await {
                Ok(true) => {
                    recovered += 1;
                    self.metrics().expired_leases.inc();
                }
                Ok(false) => {}
                Err(e) => {
                    warn!(%key, error = %e, "failed to recover a key; retrying next pass")
                }
            }
        }
        recovered
    }

    /// Recovers one orphan after reading its record again: unless its run was renewed,
    /// finished or recovered meanwhile, the run goes back to the queue (merged into a twin,
    /// keeping its attempts) with one pinned write.
    async fn recover(&self, key: &str) -> Result<bool, QueueError> {
        let seen = self.read(&key_name(key), key, "recover").await?;
        let decide = |seen: &Read| {
            let Read::Found(record, _) = seen else {
                return Ok(Write::Done(None));
            };
            let Some(run) = record
                .run
                .as_ref()
                .filter(|r| r.lease_expires <= self.now())
            else {
                return Ok(Write::Done(None));
            };
            let mut record = record.clone();
            record.queued = Some(run.requeued_into(record.queued.take(), run.attempts, None));
            record.run = None;
            Ok(Write::Put(record, Some(run.owner.clone())))
        };
        let landed = self
            .write_pinned(key, "recover", OnError::Fail, seen, decide)
            .await?;
        let Some(owner) = landed.value else {
            return Ok(false);
        };
        warn!(%key, %owner, "recovered a key whose lease lapsed");
        Ok(true)
    }
}
