//! The dispatcher: passes that claim due keys under the global concurrency limit and run
//! each claim against a [`Reconciler`], then act on its answer (docs/architecture.md, "The wire
//! contract" and "Queue rules").

mod run;
mod trigger;

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use tokio::time::sleep_until;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{debug, error, info};

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
    /// How long shutdown waits for in-flight keys to be handed back.
    pub shutdown_grace: Duration,
}

impl Default for DispatcherConfig {
    fn default() -> Self {
        Self {
            concurrency: 20,
            batch_size: 20,
            poll_interval: Duration::from_secs(10),
            pass_interval: Duration::from_secs(1),
            shutdown_grace: Duration::from_secs(8),
        }
    }
}

/// Runs keys from a queue against a reconciler.
pub struct Dispatcher {
    queue: Queue,
    reconciler: Arc<dyn Reconciler>,
    config: DispatcherConfig,
    trigger: Trigger,
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
        loop {
            tokio::select! {
                biased;
                _ = shutdown.cancelled() => break,
                _ = self.trigger.requested() => {}
                _ = sleep_until(next_wake.into()) => {}
            }
            if let Some(last) = last_pass {
                let earliest = last + self.config.pass_interval;
                tokio::select! {
                    biased;
                    _ = shutdown.cancelled() => break,
                    _ = sleep_until(earliest.into()) => {}
                }
            }
            self.trigger.serve();
            let now = Instant::now();
            last_pass = Some(now);
            next_wake = now + self.config.poll_interval;
            // A pass is never cut short: dropping it inside a claim would strand the claims it
            // started until their leases lapse. Every storage call it makes is bounded (the
            // GCS backend times calls out), and it claims nothing once shutdown begins.
            match self.pass(&runs, &stop_runs, &shutdown).await {
                Ok(Some(due)) => {
                    let wait = due.duration_since(self.queue.now()).unwrap_or_default();
                    next_wake = next_wake.min(Instant::now() + wait);
                }
                Ok(None) => {}
                Err(e) => error!(error = %e, chain = %chain(&e), "dispatch pass failed"),
            }
        }
        info!(
            in_flight = runs.len(),
            "dispatcher stopping: handing in-flight keys back"
        );
        stop_runs.cancel();
        runs.close();
        if tokio::time::timeout(self.config.shutdown_grace, runs.wait())
            .await
            .is_err()
        {
            error!(
                "in-flight keys were not handed back in time; their leases will lapse and they will be recovered"
            );
        }
        self.queue.release_capacity().await;
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
            ));
        }
        Ok(started.view.next_due_at)
    }
}
