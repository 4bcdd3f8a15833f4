//! The dispatcher: passes that claim due keys under the global concurrency limit and run
//! each claim against a [`Reconciler`], then act on its answer (docs/architecture.md, "The wire
//! contract" and "Queue rules").

mod run;
mod trigger;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, SystemTime};

use tokio::time::{Instant, sleep_until};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{debug, error, info, warn};

use crate::error_chain as chain;
use crate::queue::{Queue, QueueError};
use reconciler::Reconciler;

pub use trigger::Trigger;

/// How a dispatcher paces its passes and runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DispatcherConfig {
    /// Keys in progress at once, across every dispatcher sharing the storage.
    pub concurrency: usize,
    /// Keys one pass may launch.
    pub batch_size: usize,
    /// A pass runs at least this often, even with no trigger.
    pub poll_interval: Duration,
    /// Passes start no closer together than this (the rate limit).
    pub pass_interval: Duration,
    /// How long shutdown may take in all: in-flight keys handed back first (for up to three
    /// quarters of it), then the capacity slots given back; what is not done by then is left
    /// to lapse.
    pub shutdown_timeout: Duration,
}

/// The default [`DispatcherConfig::shutdown_timeout`]: inside the 10 s Cloud Run gives a
/// container between SIGTERM and SIGKILL.
pub const DEFAULT_SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(8);

impl Default for DispatcherConfig {
    fn default() -> Self {
        Self {
            concurrency: 20,
            batch_size: 20,
            poll_interval: Duration::from_secs(10),
            pass_interval: Duration::from_secs(1),
            shutdown_timeout: DEFAULT_SHUTDOWN_TIMEOUT,
        }
    }
}

/// Runs keys from a queue against a reconciler.
pub struct Dispatcher {
    queue: Queue,
    reconciler: Arc<dyn Reconciler>,
    config: DispatcherConfig,
    trigger: Trigger,
    /// Keys whose hand-back at shutdown failed, counted by their runs.
    not_handed_back: Arc<AtomicUsize>,
}

impl std::fmt::Debug for Dispatcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Dispatcher")
            .field("queue", &self.queue)
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl Dispatcher {
    /// A dispatcher for `queue` that calls `reconciler`.
    pub fn new(queue: Queue, reconciler: Arc<dyn Reconciler>, config: DispatcherConfig) -> Self {
        let trigger = Trigger::new(queue.metrics().clone(), Some(queue.clone()));
        Self {
            queue,
            reconciler,
            config,
            trigger,
            not_handed_back: Arc::default(),
        }
    }

    /// The handle that asks this dispatcher for a pass.
    pub fn trigger(&self) -> Trigger {
        self.trigger.clone()
    }

    /// Runs passes until `shutdown` fires; then stops claiming and hands in-flight keys back
    /// as short requeues that keep their attempt counts.
    pub async fn run(self, shutdown: CancellationToken) {
        let runs = TaskTracker::new();
        let stop_runs = CancellationToken::new();
        let mut next_wake = Instant::now();
        let mut last_pass: Option<Instant> = None;
        info!(
            concurrency = self.config.concurrency,
            batch = self.config.batch_size,
            "dispatcher started"
        );
        let timeout = self.config.shutdown_timeout;
        let mut pass_cut = false;
        let deadline = loop {
            tokio::select! {
                biased;
                _ = shutdown.cancelled() => break Instant::now() + timeout,
                _ = self.trigger.requested() => {}
                _ = sleep_until(next_wake) => {}
            }
            if let Some(last) = last_pass {
                let earliest = last + self.config.pass_interval;
                tokio::select! {
                    biased;
                    _ = shutdown.cancelled() => break Instant::now() + timeout,
                    _ = sleep_until(earliest) => {}
                }
            }
            self.trigger.serve();
            let now = Instant::now();
            last_pass = Some(now);
            next_wake = now + self.config.poll_interval;
            let pass = self.pass(&runs, &stop_runs, &shutdown);
            tokio::pin!(pass);
            let outcome = tokio::select! {
                outcome = &mut pass => outcome,
                () = shutdown.cancelled() => {
                    // The pass claims nothing more now. Cut in half, it would strand the claims
                    // it made until their leases lapse, so it may end while the shutdown can
                    // spare the time (half of it); storage that does not answer is not waited
                    // for longer.
                    let deadline = Instant::now() + timeout;
                    let spare = deadline - timeout / 2;
                    pass_cut = tokio::time::timeout_at(spare, &mut pass).await.is_err();
                    break deadline;
                }
            };
            match outcome {
                Ok(Some(due)) => {
                    let wait = due.duration_since(self.queue.now()).unwrap_or_default();
                    next_wake = next_wake.min(Instant::now() + wait);
                }
                Ok(None) => {}
                Err(e) => error!(error = %e, chain = %chain(&e), "dispatch pass failed"),
            }
        };
        self.stop(runs, stop_runs, deadline, pass_cut).await;
    }

    /// Shutdown, bounded whatever the storage does: every run hands its key back at once
    /// (concurrently, each one write) until three quarters of the timeout have passed; then
    /// every capacity slot is given back at once until the `deadline`. What is not done by then
    /// (or failed) is left, and said in one line: the keys are retried when their leases lapse,
    /// the slots lapse, and so do the claims of a pass that was cut short (`pass_cut`).
    async fn stop(
        &self,
        runs: TaskTracker,
        stop_runs: CancellationToken,
        deadline: Instant,
        pass_cut: bool,
    ) {
        let timeout = self.config.shutdown_timeout;
        info!(
            in_flight = runs.len(),
            "dispatcher stopping: handing in-flight keys back"
        );
        stop_runs.cancel();
        runs.close();
        let _ = tokio::time::timeout_at(deadline - timeout / 4, runs.wait()).await;
        let keys_left = runs.len() + self.not_handed_back.load(Ordering::SeqCst);
        let slots_left = self.queue.release_capacity(deadline).await;
        if keys_left > 0 || slots_left > 0 || pass_cut {
            warn!(
                keys_not_handed_back = keys_left,
                slots_not_given_back = slots_left,
                pass_cut,
                ?timeout,
                "shutdown left work undone: the keys will be retried when their leases lapse, the slots and a cut pass's claims will lapse"
            );
        }
    }

    /// One pass: due keys started through [`Queue::start_unless`], their runs spawned.
    /// Returns when the next waiting key becomes due.
    async fn pass(
        &self,
        runs: &TaskTracker,
        stop_runs: &CancellationToken,
        shutdown: &CancellationToken,
    ) -> Result<Option<SystemTime>, QueueError> {
        let (concurrency, batch) = (self.config.concurrency, self.config.batch_size);
        let started = self
            .queue
            .start_unless(concurrency, batch, shutdown)
            .await?;
        debug!(
            due = started.view.due_total,
            in_progress = started.view.in_progress,
            claimed = started.claims.len(),
            "dispatch pass"
        );
        // Due keys this pass did not get to, with capacity granted: go again, rate-limited,
        // instead of waiting for a run to end or the poll.
        if started.more_due {
            self.trigger.pass_again();
        }
        for claim in started.claims {
            runs.spawn(run::run(
                self.queue.clone(),
                self.reconciler.clone(),
                claim,
                stop_runs.clone(),
                self.trigger.clone(),
                self.not_handed_back.clone(),
            ));
        }
        Ok(started.view.next_due_at)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::conformance::Hang;
    use crate::queue::{KeyStatus, QueueConfig};
    use crate::storage::{FaultyStorage, Landed, MemoryStorage, Operation, Storage};

    const KEYS: usize = 5;
    const TIMEOUT: Duration = Duration::from_secs(8);

    /// Attempts each key has failed before the test: a hand-back must keep them.
    const ATTEMPTS: u32 = 2;

    /// A dispatcher over `storage` with [`KEYS`] keys in flight (each failed [`ATTEMPTS`] times
    /// before, and their slots held), and the signal that stops it.
    async fn running(
        storage: Arc<dyn Storage>,
    ) -> (tokio::task::JoinHandle<()>, CancellationToken) {
        for n in 0..KEYS {
            let key = format!("k{n}");
            let entry = crate::entry::QueuedEntry {
                attempts: ATTEMPTS,
                ..crate::entry::QueuedEntry::new(&key, 0, None, std::time::UNIX_EPOCH)
            };
            let record = crate::entry::KeyRecord::queued(entry).to_metadata();
            let name = crate::queue::key_name(&key);
            let create = crate::storage::PutMode::Create;
            storage.put(&name, &record, create).await.unwrap();
        }
        let queue = Queue::new(storage, QueueConfig::default());
        let hang = Arc::new(Hang::default());
        let config = DispatcherConfig {
            concurrency: KEYS,
            batch_size: KEYS,
            poll_interval: Duration::from_millis(10),
            pass_interval: Duration::from_millis(1),
            shutdown_timeout: TIMEOUT,
        };
        let dispatcher = Dispatcher::new(queue, hang.clone(), config);
        let shutdown = CancellationToken::new();
        let task = tokio::spawn(dispatcher.run(shutdown.clone()));
        for _ in 0..1_000 {
            if hang.calls() == KEYS {
                return (task, shutdown);
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("the keys did not all start");
    }

    #[tokio::test(start_paused = true)]
    async fn shutdown_should_end_by_its_timeout_when_the_storage_hangs() {
        let memory = Arc::new(MemoryStorage::new());
        let faulty = Arc::new(FaultyStorage::new(memory.clone()));
        let (task, shutdown) = running(faulty.clone()).await;
        for operation in [
            Operation::Get,
            Operation::Put,
            Operation::Delete,
            Operation::List,
        ] {
            faulty.fail(operation, "", Landed::Hangs, usize::MAX);
        }
        let stopping = Instant::now();
        shutdown.cancel();
        tokio::time::timeout(TIMEOUT * 10, task)
            .await
            .expect("the dispatcher stopped")
            .unwrap();
        // It tried (the hand-backs had three quarters of the time, the slots the rest), and
        // stopped on time.
        let took = stopping.elapsed();
        assert!(
            took >= TIMEOUT * 3 / 4 && took <= TIMEOUT,
            "stopped after {took:?}"
        );
        // Nothing handed back, nothing lost: the keys are still in progress, to be recovered
        // once their leases lapse.
        let snapshot = Queue::new(memory, QueueConfig::default())
            .snapshot()
            .await
            .unwrap();
        assert_eq!(snapshot.in_progress.len(), KEYS);
    }

    #[tokio::test(start_paused = true)]
    async fn shutdown_should_hand_every_key_back_and_give_every_slot_back() {
        let memory = Arc::new(MemoryStorage::new());
        let (task, shutdown) = running(memory.clone()).await;
        shutdown.cancel();
        task.await.unwrap();
        let queue = Queue::new(memory.clone(), QueueConfig::default());
        for n in 0..KEYS {
            let state = queue.state(&format!("k{n}")).await.unwrap().unwrap();
            assert_eq!(
                (state.status, state.attempts),
                (KeyStatus::Queued, ATTEMPTS)
            );
        }
        let slots = memory.list(crate::queue::SLOTS, None, 100).await.unwrap();
        assert!(slots.objects.is_empty(), "{:?}", slots.objects);
    }
}
