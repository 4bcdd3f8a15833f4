//! A claim: the owned, in-progress run of one key. Only a claim can complete, requeue, fail or
//! release its key, and it keeps its lease alive with a heartbeat while the run lasts.

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing::{error, warn};

use crate::clock::{from_millis, to_millis};
use crate::entry::{DeadLetter, InProgressEntry, NotBefore, QueuedEntry};
use crate::queue::{Queue, QueueError, due_after, in_progress_name};
use crate::storage::{Generation, PutMode};

/// What this process holds of its claim: the generation its writes are pinned to, and when
/// the lease it last wrote lapses.
#[derive(Clone, Copy, Debug)]
struct Held {
    generation: Generation,
    lease_expires: SystemTime,
    /// The heartbeat found the claim taken over.
    lost: bool,
}

/// Where a run's key goes when the run ends without completing it.
enum Outcome {
    /// Back to the queue (merging into a twin).
    Queue(QueuedEntry),
    /// To the dead letters.
    DeadLetter(DeadLetter),
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
}

impl Claim {
    pub(crate) fn start(queue: Queue, run: InProgressEntry, generation: Generation) -> Self {
        let held = Arc::new(Mutex::new(Held {
            generation,
            lease_expires: run.lease_expires,
            lost: false,
        }));
        let token = CancellationToken::new();
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

    /// A token that fires when the claim is lost (stop the run: someone else owns the key now)
    /// or finished.
    pub fn cancelled(&self) -> CancellationToken {
        self.token.clone()
    }

    /// The key is done: it leaves the queue (a twin, if one arrived, stays queued), and its
    /// dead letter, if any, is removed.
    pub async fn complete(mut self) -> Result<(), QueueError> {
        let held = self.stop_heartbeat().await;
        let result = self.delete_claim(held.generation).await;
        if result.is_ok()
            && let Err(e) = self.queue.clear_dead_letter(&self.run.key).await
        {
            warn!(key = %self.run.key, error = %e, "failed to remove the key's dead letter");
        }
        self.token.cancel();
        result
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
            return self
                .hand_over(Outcome::DeadLetter(letter))
                .await
                .map(|()| Failure::DeadLettered);
        }
        // Whole milliseconds, the precision storage keeps.
        let at = from_millis(to_millis(
            now + config.backoff.delay_with_jitter(attempts, &mut rand::rng()),
        ));
        self.put_back(attempts, Some(NotBefore::plain(at))).await?;
        Ok(Failure::Retrying { at })
    }

    async fn put_back(
        self,
        attempts: u32,
        not_before: Option<NotBefore>,
    ) -> Result<(), QueueError> {
        let entry = self.run.requeued(attempts, not_before);
        self.hand_over(Outcome::Queue(entry)).await
    }

    /// Ends the run by writing its outcome outside the claim, then dropping the claim: a crash
    /// in between leaves an orphan to recover, never a lost key.
    async fn hand_over(mut self, outcome: Outcome) -> Result<(), QueueError> {
        let held = self.stop_heartbeat().await;
        self.token.cancel();
        self.still_held(held)?;
        match outcome {
            Outcome::Queue(entry) => self.queue.put_back(entry).await?,
            Outcome::DeadLetter(letter) => self.queue.dead_letter(&letter).await?,
        }
        self.delete_claim(held.generation).await
    }

    /// Writes outside the claim's own object (the queue, the dead letters) are not pinned to
    /// it, so they are made only while the lease is surely still this process's: the
    /// heartbeat gives a claim up a margin before its lease lapses, and so does this check.
    fn still_held(&self, held: Held) -> Result<(), QueueError> {
        let margin = lease_margin(self.queue.config().lease);
        if !held.lost && self.queue.now() + margin < held.lease_expires {
            Ok(())
        } else {
            Err(QueueError::Lost {
                key: self.run.key.clone(),
            })
        }
    }

    async fn delete_claim(&self, generation: Generation) -> Result<(), QueueError> {
        let name = in_progress_name(&self.run.key);
        match self.queue.storage().delete(&name, generation).await {
            Ok(()) => Ok(()),
            Err(e) if e.is_conflict() => Err(QueueError::Lost {
                key: self.run.key.clone(),
            }),
            Err(e) => Err(QueueError::storage("finish", &self.run.key, e)),
        }
    }

    async fn stop_heartbeat(&mut self) -> Held {
        self.stop.cancel();
        if let Some(heartbeat) = self.heartbeat.take() {
            let _ = heartbeat.await;
        }
        *self.held.lock().unwrap_or_else(|p| p.into_inner())
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

/// How long before its lease lapses a claim is given up: a tenth of the lease, so that the
/// run stops before any other dispatcher may recover the key.
fn lease_margin(lease: Duration) -> Duration {
    lease / 10
}

/// Renews the lease every third of its length. When the claim is lost, or when no renewal
/// lands before the lease is about to lapse, it fires the claim's token so the run stops
/// before another dispatcher may take the key over.
async fn heartbeat(
    queue: Queue,
    mut run: InProgressEntry,
    held: Arc<Mutex<Held>>,
    token: CancellationToken,
    stop: CancellationToken,
) {
    let lease = queue.config().lease;
    let every = lease / 3;
    let name = in_progress_name(&run.key);
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(every) => {}
        }
        let give_up_at = run.lease_expires - lease_margin(lease);
        loop {
            let left = give_up_at.duration_since(queue.now()).unwrap_or_default();
            if left.is_zero() {
                error!(key = %run.key, "could not renew the lease in time; stopping the run");
                token.cancel();
                return;
            }
            let mut renewed = run.clone();
            renewed.lease_expires = queue.now() + lease;
            let current = held.lock().unwrap_or_else(|p| p.into_inner()).generation;
            let metadata = renewed.to_metadata();
            let put = queue
                .storage()
                .put(&name, &metadata, PutMode::Replace(current));
            match tokio::time::timeout(left, put).await {
                Ok(Ok(next)) => {
                    *held.lock().unwrap_or_else(|p| p.into_inner()) = Held {
                        generation: next,
                        lease_expires: renewed.lease_expires,
                        lost: false,
                    };
                    queue.metrics().observe_lease_age(&renewed, queue.now());
                    run = renewed;
                    break;
                }
                Ok(Err(e)) if e.is_conflict() => {
                    warn!(key = %run.key, "lost the claim: another dispatcher took the key over");
                    held.lock().unwrap_or_else(|p| p.into_inner()).lost = true;
                    token.cancel();
                    return;
                }
                Ok(Err(e)) => {
                    warn!(key = %run.key, error = %e, "failed to renew the lease; retrying");
                    tokio::select! {
                        _ = stop.cancelled() => return,
                        _ = tokio::time::sleep((every / 10).min(Duration::from_secs(5))) => {}
                    }
                }
                // The deadline check at the top of the loop gives up.
                Err(_elapsed) => {}
            }
        }
    }
}
