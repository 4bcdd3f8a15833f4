//! One claimed key's run: call the reconciler, then complete, requeue, retry, dead-letter or
//! drop the key according to its answer.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;
use tracing::{debug, error, info, warn};

use super::Trigger;
use crate::backoff::jitter;
use crate::error_chain as chain;
use crate::metrics::CompletionStatus;
use crate::queue::{Claim, Failure};
use crate::queue::{Queue, QueueError};
use reconciler::{Action, ReconcileError, Reconciler, Requeue};

/// The longest floor a reconciler may ask for.
pub(crate) const MAX_FLOOR: Duration = Duration::from_secs(3600);
/// A key handed back (at shutdown, or when its run had to stop without losing the key) waits
/// this long, plus up to [`SHUTDOWN_JITTER`].
const SHUTDOWN_REQUEUE: Duration = Duration::from_secs(15);
const SHUTDOWN_JITTER: Duration = Duration::from_secs(30);

/// Runs one claim; at shutdown (`stop`), hands its key back instead, counting in
/// `not_handed_back` a hand-back that failed (the dispatcher says the count in one line).
pub(super) async fn run(
    queue: Queue,
    reconciler: Arc<dyn Reconciler>,
    claim: Claim,
    stop: CancellationToken,
    trigger: Trigger,
    not_handed_back: Arc<AtomicUsize>,
) {
    let key = claim.key().to_owned();
    let priority = claim.priority();
    let cancelled = claim.cancelled();
    let started = Instant::now();
    // Biased: a run started as shutdown began never calls the reconciler.
    let answer = tokio::select! {
        biased;
        _ = stop.cancelled() => None,
        _ = cancelled.cancelled() => None,
        answer = reconciler.reconcile(&key, priority) => Some(answer),
    };
    queue.metrics().observe_process(priority, started.elapsed());
    match answer {
        Some(answer) => settle(&queue, claim, answer).await,
        None if claim.is_lost() => warn!(%key, "stopped reconciling: the claim was lost"),
        // Shutdown, capacity slots lost, or a lease that could not be renewed: the key is
        // still this run's, so it goes back without counting an attempt.
        None => {
            let delay = SHUTDOWN_REQUEUE + jitter(SHUTDOWN_JITTER, &mut rand::rng());
            let released = claim.release(delay).await;
            match released {
                Err(e) if stop.is_cancelled() => {
                    not_handed_back.fetch_add(1, Ordering::SeqCst);
                    debug!(%key, error = %chain(&e), "could not hand the key back at shutdown");
                }
                released => {
                    report(&key, "hand back", released);
                }
            }
        }
    }
    trigger.pass_again();
}

async fn settle(queue: &Queue, claim: Claim, answer: Result<Action, ReconcileError>) {
    let key = claim.key().to_owned();
    let (priority, queued_at, attempts) = (claim.priority(), claim.queued_at(), claim.attempts());
    let complete = |status| {
        queue
            .metrics()
            .observe_completion(status, priority, queued_at, attempts + 1, queue.now())
    };
    match answer {
        Ok(action) => {
            if let Err(e) = enqueue_all(queue, &action).await {
                let message = format!(
                    "failed to enqueue the keys the reconciler asked for: {}",
                    chain(&e)
                );
                warn!(%key, error = %message, "retrying the key");
                report(&key, "retry", claim.fail(&message).await.map(|_| ()));
                return;
            }
            match action.requeue() {
                None => {
                    if report(&key, "complete", claim.complete().await) {
                        complete(CompletionStatus::Success);
                    }
                }
                Some(Requeue::After(delay)) => {
                    report(&key, "requeue", claim.requeue_after(delay).await);
                }
                Some(Requeue::Floor(delay)) => {
                    report(
                        &key,
                        "requeue",
                        claim.requeue_floor(delay.min(MAX_FLOOR)).await,
                    );
                }
            }
        }
        Err(ReconcileError::NonRetriable(message)) => {
            warn!(%key, %message, "dropping the key: the reconciler said not to retry");
            if report(&key, "drop", claim.complete().await) {
                complete(CompletionStatus::Dropped);
            }
        }
        Err(ReconcileError::Retriable(e)) => {
            let e = chain(e.as_ref());
            match claim.fail(&e).await {
                Ok(Failure::Retrying { at }) => {
                    let wait = at.duration_since(queue.now()).unwrap_or_default();
                    info!(%key, error = %e, attempts = attempts + 1, retry_in = ?wait, "reconcile failed; will retry");
                }
                Ok(Failure::DeadLettered) => {
                    error!(%key, error = %e, attempts = attempts + 1, "reconcile failed too often; dead-lettered");
                    complete(CompletionStatus::DeadLetter);
                }
                Err(qe) => {
                    report(&key, "retry", Err(qe));
                }
            }
        }
    }
}

async fn enqueue_all(queue: &Queue, action: &Action) -> Result<(), QueueError> {
    for next in action.queue_keys() {
        queue.enqueue(&next.key, next.priority, next.delay).await?;
    }
    Ok(())
}

/// Logs a failed queue operation; returns whether it succeeded.
fn report(key: &str, what: &str, result: Result<(), QueueError>) -> bool {
    match result {
        Ok(()) => true,
        Err(e @ QueueError::Lost { .. }) => {
            warn!(%key, error = %e, "could not {what} the key");
            false
        }
        Err(e) => {
            error!(%key, error = %chain(&e), "could not {what} the key; its lease will lapse and it will run again");
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::SystemTime;

    use async_trait::async_trait;

    use super::*;
    use crate::dispatcher::{Dispatcher, DispatcherConfig};
    use crate::queue::{KeyState, KeyStatus, QueueConfig};
    use crate::storage::MemoryStorage;
    use reconciler::QueueKey;

    struct Answer(fn() -> Result<Action, ReconcileError>);

    #[async_trait]
    impl Reconciler for Answer {
        async fn reconcile(&self, _key: &str, _priority: i64) -> Result<Action, ReconcileError> {
            (self.0)()
        }
    }

    /// Runs `answer` for one key until the key is queued again, and returns its state and the
    /// times before the key was enqueued and after it was seen queued again (the run, and so
    /// the time its due time counts from, lies between).
    async fn requeued_after(
        answer: fn() -> Result<Action, ReconcileError>,
    ) -> (KeyState, SystemTime, SystemTime) {
        let queue = Queue::new(Arc::new(MemoryStorage::new()), QueueConfig::default());
        let config = DispatcherConfig {
            poll_interval: Duration::from_millis(10),
            pass_interval: Duration::from_millis(1),
            ..DispatcherConfig::default()
        };
        let dispatcher = Dispatcher::new(queue.clone(), Arc::new(Answer(answer)), config);
        let shutdown = CancellationToken::new();
        let running = tokio::spawn(dispatcher.run(shutdown.clone()));
        let started = SystemTime::now();
        queue.enqueue("k", 0, Duration::ZERO).await.unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        let state = loop {
            let state = queue.state("k").await.unwrap();
            // Queued with a due time or an attempt: it ran and was put back.
            let put_back = |s: &KeyState| {
                s.status == KeyStatus::Queued && (s.not_before.is_some() || s.attempts > 0)
            };
            if let Some(state) = state.filter(put_back) {
                break state;
            }
            assert!(Instant::now() < deadline, "the key was not requeued");
            tokio::time::sleep(Duration::from_millis(5)).await;
        };
        let seen = SystemTime::now();
        shutdown.cancel();
        running.await.unwrap();
        (state, started, seen)
    }

    #[tokio::test]
    async fn floor_answers_should_be_capped_at_one_hour() {
        let (state, started, seen) =
            requeued_after(|| Ok(Action::requeue_floor(Duration::from_secs(7200)))).await;
        let floor = state.not_before.unwrap();
        // Stored in whole milliseconds, so a millisecond either way.
        let ms = Duration::from_millis(1);
        assert!(
            floor + ms >= started + MAX_FLOOR && floor <= seen + MAX_FLOOR + ms,
            "{floor:?} not within {MAX_FLOOR:?} of the run"
        );
        assert_eq!(state.attempts, 0);
    }

    #[tokio::test]
    async fn failing_to_enqueue_follow_up_keys_should_retry_the_key() {
        let (state, _, _) = requeued_after(|| Ok(Action::queue([QueueKey::new("", 1)]))).await;
        assert_eq!(state.attempts, 1, "a failed attempt");
    }

    #[tokio::test]
    async fn retriable_errors_should_count_attempts_and_back_off() {
        let (state, started, seen) = requeued_after(|| Err(ReconcileError::retry("flaky"))).await;
        assert_eq!(state.attempts, 1);
        // The first backoff is the base (30 s) plus a jitter under half of it, from the run.
        let due = state.not_before.unwrap();
        let ms = Duration::from_millis(1);
        assert!(
            due + ms >= started + Duration::from_secs(30) && due < seen + Duration::from_secs(45),
            "{due:?} is not 30-45 s after the run"
        );
    }
}
