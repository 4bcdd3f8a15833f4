//! A claim: the owned, in-progress run of one key. Only a claim can complete, requeue, fail or
//! release its key, and it keeps its lease alive with a heartbeat while the run lasts.
//!
//! # How a run ends
//! The key's record holds the run (its id, owner and lease) beside any queued twin that
//! arrived meanwhile. Every outcome is one pinned write of that record (`write.rs`), made over
//! the generation the run last wrote or read:
//! * **complete** drops the run and the dead letter: the object is deleted, or kept for the
//!   twin when one waits;
//! * **requeue**, **retry** and **release** turn the run back into a queued part with the
//!   attempts the outcome says (reset by a snooze, one more after a failure, unchanged after a
//!   hand-back); when a twin waits, the run merges into it by the enqueue rules and the twin
//!   keeps its own attempts and age, since a fresh event starts afresh;
//! * **dead-letter** replaces the run with a dead-letter part, keeping any twin queued.
//!
//! When the write meets a newer generation, the record is read again: still this run (a twin
//! joined) and the change is made over it; another run, or no record, and the claim was lost
//! (its lease lapsed and another dispatcher took the key over), which is reported and nothing
//! is written. The heartbeat (`lease.rs`) stops before the final write, so the two never race.

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing::warn;

use super::lease::{Held, heartbeat};
use super::write::{OnError, Write};
use super::{Permit, Queue, QueueError, Read, due_after};
use crate::clock::{from_millis, to_millis};
use crate::entry::{DeadLetter, InProgressEntry, KeyRecord, NotBefore};
use crate::storage::Generation;

/// How a failed run ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Failure {
    /// The key is queued again and becomes due at this time.
    Retrying {
        /// When the next attempt may start.
        at: SystemTime,
    },
    /// The key reached the retry limit and moved to the dead-letter queue.
    DeadLettered,
}

/// An in-progress key owned by this process.
///
/// Dropping a claim without finishing it leaves the key in progress until its lease lapses;
/// then any dispatcher recovers it, so nothing is lost.
#[derive(Debug)]
pub struct Claim {
    queue: Queue,
    run: InProgressEntry,
    held: Arc<Mutex<Held>>,
    /// Fires when the claim is lost (the run must stop) or finished.
    token: CancellationToken,
    /// Stops the heartbeat between renewals, so a renewal in flight is never cut in half.
    stop: CancellationToken,
    heartbeat: Option<JoinHandle<()>>,
    /// The capacity slot this run holds; freed when the claim is dropped.
    _permit: Permit,
}

impl Claim {
    pub(crate) fn start(
        queue: Queue,
        record: KeyRecord,
        generation: Generation,
        permit: Permit,
    ) -> Self {
        let run = record.run.clone().expect("a claimed record holds its run");
        let held = Arc::new(Mutex::new(Held {
            generation,
            record,
            lost: false,
        }));
        // Losing the capacity slots stops the run as surely as losing the key.
        let token = permit.revoked().child_token();
        let stop = CancellationToken::new();
        let heartbeat = tokio::spawn(heartbeat(
            queue.clone(),
            run.clone(),
            held.clone(),
            token.clone(),
            stop.clone(),
        ));
        Self {
            queue,
            run,
            held,
            token,
            stop,
            heartbeat: Some(heartbeat),
            _permit: permit,
        }
    }

    /// The claimed key.
    pub fn key(&self) -> &str {
        &self.run.key
    }

    /// Its priority.
    pub fn priority(&self) -> i64 {
        self.run.priority
    }

    /// Failed runs before this one.
    pub fn attempts(&self) -> u32 {
        self.run.attempts
    }

    /// When the key was first enqueued.
    pub fn queued_at(&self) -> SystemTime {
        self.run.queued_at
    }

    /// When this run was claimed.
    pub fn claimed_at(&self) -> SystemTime {
        self.run.claimed_at
    }

    /// A token that fires when the run must stop: the claim was lost (someone else owns the
    /// key now), its lease could not be renewed in time, or this process lost its capacity
    /// slots; and when the claim is finished.
    pub fn cancelled(&self) -> CancellationToken {
        self.token.clone()
    }

    /// Whether the heartbeat found the key taken over by another run (nothing may be written
    /// for it any more).
    pub fn is_lost(&self) -> bool {
        self.held.lock().unwrap_or_else(|p| p.into_inner()).lost
    }

    /// The key is done: it leaves the queue (a twin, if one arrived, stays queued), and its
    /// dead letter, if any, goes with it.
    pub async fn complete(self) -> Result<(), QueueError> {
        let (queue, key) = (self.queue.clone(), self.run.key.clone());
        let had_dead_letter = self
            .finish("complete", |record| {
                record.run = None;
                record.dead = None;
            })
            .await?;
        if had_dead_letter {
            queue.unlist_dead_letter(&key).await;
        }
        Ok(())
    }

    /// Snoozes the key: it runs again after `delay` (at once when zero) with its attempt count
    /// reset, since this is not a failure.
    pub async fn requeue_after(self, delay: Duration) -> Result<(), QueueError> {
        let now = self.queue.now();
        let not_before = (!delay.is_zero()).then(|| NotBefore::plain(due_after(now, delay)));
        self.put_back(0, not_before).await
    }

    /// Snoozes the key with a floor: it does not run before `delay` has passed, even if it is
    /// enqueued again meanwhile. The attempt count resets.
    pub async fn requeue_floor(self, delay: Duration) -> Result<(), QueueError> {
        let at = due_after(self.queue.now(), delay);
        self.put_back(0, Some(NotBefore::floor(at))).await
    }

    /// Gives the key back without counting an attempt (a shutdown, not a failure of the key).
    pub async fn release(self, delay: Duration) -> Result<(), QueueError> {
        let at = due_after(self.queue.now(), delay);
        let attempts = self.run.attempts;
        self.put_back(attempts, Some(NotBefore::plain(at))).await
    }

    /// Records a failed run: the key retries after a backoff, or is dead-lettered once it has
    /// failed `max_retry` times.
    pub async fn fail(self, error: &str) -> Result<Failure, QueueError> {
        let config = *self.queue.config();
        let attempts = self.run.attempts + 1;
        let now = self.queue.now();
        if config.max_retry > 0 && attempts >= config.max_retry {
            let letter = DeadLetter::new(&self.run, attempts, now, error);
            // Listed first (dead_letters.rs): a dead letter is never missing from the listing.
            let queue = self.queue.clone();
            queue.list_dead_letter(&letter).await?;
            let key = letter.key.clone();
            let written = self
                .finish("dead-letter", move |record| {
                    record.run = None;
                    record.dead = Some(letter.clone());
                })
                .await;
            if let Err(e) = written {
                // Not dead-lettered after all (the claim was lost, or the write failed).
                queue.unlist_unless_dead(&key).await;
                return Err(e);
            }
            return Ok(Failure::DeadLettered);
        }
        // Whole milliseconds, the precision storage keeps.
        let at = from_millis(to_millis(
            now + config.backoff.delay_with_jitter(attempts, &mut rand::rng()),
        ));
        self.put_back(attempts, Some(NotBefore::plain(at))).await?;
        Ok(Failure::Retrying { at })
    }

    /// Turns the run back into a queued entry, merged into a twin if one arrived meanwhile.
    async fn put_back(
        self,
        attempts: u32,
        not_before: Option<NotBefore>,
    ) -> Result<(), QueueError> {
        let run = self.run.clone();
        self.finish("requeue", move |record| {
            let twin = record.queued.take();
            record.queued = Some(run.requeued_into(twin, attempts, not_before));
            record.run = None;
        })
        .await?;
        Ok(())
    }

    /// Ends the run with one write of its key's record, pinned to the generation held: the
    /// record `change` makes, or a delete when nothing is left. If the record changed (a twin
    /// arrived) it is read again and the change made over, while the run is still this one.
    /// Answers whether the record held a dead letter that the change let go.
    async fn finish(
        mut self,
        action: &'static str,
        change: impl Fn(&mut KeyRecord),
    ) -> Result<bool, QueueError> {
        let held = self.stop_heartbeat().await;
        self.token.cancel();
        let lost = || QueueError::Lost {
            key: self.run.key.clone(),
        };
        if held.lost {
            return Err(lost());
        }
        let decide = |seen: &Read| match seen {
            Read::Found(record, _) if record.runs(&self.run.id) => {
                let mut next = record.clone();
                change(&mut next);
                let let_go = record.dead.is_some() && next.dead.is_none();
                Ok(if next.is_empty() {
                    Write::Delete(let_go)
                } else {
                    Write::Put(next, let_go)
                })
            }
            _ => Err(lost()),
        };
        let seen = Read::Found(held.record, held.generation);
        let landed = self
            .queue
            .write_pinned(&self.run.key, action, OnError::Fail, seen, decide)
            .await?;
        Ok(landed.value)
    }

    async fn stop_heartbeat(&mut self) -> Held {
        self.stop.cancel();
        if let Some(heartbeat) = self.heartbeat.take()
            && let Err(e) = heartbeat.await
        {
            warn!(key = %self.key(), error = %e, "a claim's heartbeat ended abnormally");
        }
        self.held.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

impl Drop for Claim {
    fn drop(&mut self) {
        self.stop.cancel();
        self.token.cancel();
        if let Some(heartbeat) = self.heartbeat.take() {
            heartbeat.abort();
        }
    }
}
