//! A claim: the owned, in-progress run of one key. Only a claim can complete, requeue, fail or
//! release its key, and it keeps its lease alive with a heartbeat while the run lasts.

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing::{error, warn};

use crate::clock::{from_millis, to_millis};
use crate::entry::{DeadLetter, InProgressEntry, KeyRecord, NotBefore};
use crate::queue::{
    MAX_WRITE_TRIES, Permit, Queue, QueueError, Read, due_after, key_name, lease_margin,
};
use crate::storage::{Generation, PutMode};

/// What this process knows of its key's record: the generation its writes are pinned to and
/// the record at that generation (a twin may have joined the run), and whether the heartbeat
/// found the run taken over.
#[derive(Clone, Debug)]
struct Held {
    generation: Generation,
    record: KeyRecord,
    lost: bool,
}

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
        self.finish("complete", |record| {
            record.run = None;
            record.dead = None;
        })
        .await
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
            self.finish("dead-letter", move |record| {
                record.run = None;
                record.dead = Some(letter.clone());
            })
            .await?;
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
        .await
    }

    /// Ends the run with one write of its key's record, pinned to the generation held: the
    /// record `change` makes, or a delete when nothing is left. If the record changed (a twin
    /// arrived) it is read again and the change made over, while the run is still this one.
    async fn finish(
        mut self,
        action: &'static str,
        change: impl Fn(&mut KeyRecord),
    ) -> Result<(), QueueError> {
        let held = self.stop_heartbeat().await;
        self.token.cancel();
        let lost = || QueueError::Lost {
            key: self.run.key.clone(),
        };
        if held.lost {
            return Err(lost());
        }
        let key = &self.run.key;
        let name = key_name(key);
        let (mut record, mut generation) = (held.record, held.generation);
        for _ in 0..MAX_WRITE_TRIES {
            let mut next = record.clone();
            change(&mut next);
            let storage = self.queue.storage();
            let since = self.queue.view_seq();
            let written = if next.is_empty() {
                storage.delete(&name, generation).await.map(|()| None)
            } else {
                let metadata = next.to_metadata();
                let put = storage.put(&name, &metadata, PutMode::Replace(generation));
                put.await.map(|g| Some((next, g)))
            };
            match written {
                Ok(Some(state)) => {
                    self.queue.observe(&name, Some(state), since);
                    return Ok(());
                }
                Ok(None) => {
                    self.queue.observe_deleted(&name, generation, since);
                    return Ok(());
                }
                Err(e) if e.is_conflict() => match self.queue.read(&name, key, action).await? {
                    Read::Found(current, current_generation) if current.runs(&self.run.id) => {
                        record = current;
                        generation = current_generation;
                    }
                    _ => return Err(lost()),
                },
                Err(e) => return Err(QueueError::storage(action, key, e)),
            }
        }
        Err(QueueError::Contention {
            action,
            key: key.clone(),
        })
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

/// Renews the lease every third of its length. When the claim is lost, or when no renewal
/// lands before the lease is about to lapse, it fires the claim's token so the run stops
/// before another dispatcher may take the key over.
async fn heartbeat(
    queue: Queue,
    run: InProgressEntry,
    held: Arc<Mutex<Held>>,
    token: CancellationToken,
    stop: CancellationToken,
) {
    let lease = queue.config().lease;
    let every = lease / 3;
    let name = key_name(&run.key);
    let mut lease_expires = run.lease_expires;
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(every) => {}
        }
        let give_up_at = lease_expires - lease_margin(lease);
        loop {
            let left = give_up_at.duration_since(queue.now()).unwrap_or_default();
            if left.is_zero() {
                error!(key = %run.key, "could not renew the lease in time; stopping the run");
                token.cancel();
                return;
            }
            let Held {
                generation,
                mut record,
                ..
            } = held.lock().unwrap_or_else(|p| p.into_inner()).clone();
            let renewed_until = queue.now() + lease;
            if let Some(r) = record.run.as_mut() {
                r.lease_expires = renewed_until;
            }
            let metadata = record.to_metadata();
            let since = queue.view_seq();
            let put = queue
                .storage()
                .put(&name, &metadata, PutMode::Replace(generation));
            match tokio::time::timeout(left, put).await {
                Ok(Ok(next)) => {
                    queue.observe(&name, Some((record.clone(), next)), since);
                    *held.lock().unwrap_or_else(|p| p.into_inner()) = Held {
                        generation: next,
                        record,
                        lost: false,
                    };
                    queue.metrics().observe_lease_age(&run, queue.now());
                    lease_expires = renewed_until;
                    break;
                }
                Ok(Err(e)) if e.is_conflict() => match queue.read(&name, &run.key, "renew").await {
                    // A twin arrived: renew over the newer record.
                    Ok(Read::Found(current, current_generation)) if current.runs(&run.id) => {
                        let mut held = held.lock().unwrap_or_else(|p| p.into_inner());
                        held.record = current;
                        held.generation = current_generation;
                    }
                    Ok(_) => {
                        warn!(key = %run.key, "lost the claim: another dispatcher took the key over");
                        held.lock().unwrap_or_else(|p| p.into_inner()).lost = true;
                        token.cancel();
                        return;
                    }
                    Err(e) => {
                        warn!(key = %run.key, error = %e, "failed to read the key's record; retrying");
                        if stopped(&stop, every).await {
                            return;
                        }
                    }
                },
                Ok(Err(e)) => {
                    warn!(key = %run.key, error = %e, "failed to renew the lease; retrying");
                    if stopped(&stop, every).await {
                        return;
                    }
                }
                // The deadline check at the top of the loop gives up.
                Err(_elapsed) => {}
            }
        }
    }
}

/// A short wait between renewal attempts; true when the heartbeat was stopped meanwhile.
async fn stopped(stop: &CancellationToken, every: Duration) -> bool {
    tokio::select! {
        _ = stop.cancelled() => true,
        _ = tokio::time::sleep((every / 10).min(Duration::from_secs(5))) => false,
    }
}
