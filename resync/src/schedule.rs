//! Sweeps on the period's cron schedule, each run's outcome logged and counted.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio_cron_scheduler::{Job, JobScheduler, JobSchedulerError};
use tokio_util::sync::CancellationToken;
use tracing::{error, info, warn};

use crate::metrics::ResyncMetrics;
use crate::period::Period;
use crate::sweep::{Sweep, SweepError};

/// Why the schedule could not run.
#[derive(Debug, thiserror::Error)]
pub enum ScheduleError {
    /// The cron expression is not valid.
    #[error("invalid resync schedule {schedule:?}")]
    Invalid {
        /// The expression.
        schedule: String,
        /// Why.
        #[source]
        source: JobSchedulerError,
    },
    /// The scheduler failed.
    #[error("failed to {action} the resync's scheduler")]
    Scheduler {
        /// What it was asked to do.
        action: &'static str,
        /// Why.
        #[source]
        source: JobSchedulerError,
    },
}

/// Checks a cron expression (seconds first) as the scheduler reads it, without running it.
pub fn check(schedule: &str) -> Result<(), ScheduleError> {
    Job::new_async(schedule, |_, _| Box::pin(async {}))
        .map(drop)
        .map_err(invalid(schedule))
}

/// The scheduler's refusal of `schedule`.
fn invalid(schedule: &str) -> impl FnOnce(JobSchedulerError) -> ScheduleError {
    let schedule = schedule.to_owned();
    move |source| ScheduleError::Invalid { schedule, source }
}

/// The schedule to run: `explicit` once checked, else the period's (always valid).
pub fn resolve(explicit: Option<&str>, period: Period) -> Result<String, ScheduleError> {
    match explicit {
        Some(schedule) => check(schedule).map(|()| schedule.to_owned()),
        None => Ok(period.cron()),
    }
}

/// A scheduler failure while doing `action`.
fn scheduler_failed(action: &'static str) -> impl FnOnce(JobSchedulerError) -> ScheduleError {
    move |source| ScheduleError::Scheduler { action, source }
}

/// Runs one sweep now, logging and counting its outcome; `Err` when it failed.
pub async fn run_once(sweep: &Sweep, metrics: &ResyncMetrics) -> Result<(), SweepError> {
    let started = SystemTime::now();
    let clock = std::time::Instant::now();
    info!(repository = %sweep.repository(), "resync starting");
    match sweep.run(started).await {
        Ok(report) => {
            let ended = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap_or_default()
                .as_secs();
            metrics.succeeded(&report, i64::try_from(ended).unwrap_or(i64::MAX));
            info!(
                repository = %sweep.repository(),
                branch = %report.branch,
                files = report.files,
                matched = report.matched,
                enqueued = report.enqueued,
                github_calls = report.github_calls,
                took = ?clock.elapsed(),
                "resync done"
            );
            Ok(())
        }
        Err(e) => {
            metrics.failed(e.report());
            error!(repository = %sweep.repository(), error = %workqueue::error_chain(&e), took = ?clock.elapsed(), "resync failed");
            Err(e)
        }
    }
}

/// Marks a sweep as running until dropped, a panicking sweep included.
struct Running(Arc<AtomicBool>);

impl Running {
    /// `None` when a sweep is already running.
    fn start(flag: &Arc<AtomicBool>) -> Option<Self> {
        (!flag.swap(true, Ordering::AcqRel)).then(|| Self(flag.clone()))
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.0.store(false, Ordering::Release);
    }
}

/// How long a scheduled sweep that failed waits before each new try: a passing outage of
/// GitHub or the workqueue then costs minutes, not a period.
pub const RETRY_WAITS: [Duration; 3] = [
    Duration::from_secs(60),
    Duration::from_secs(5 * 60),
    Duration::from_secs(15 * 60),
];

/// One turn: [`run_once`], then again after each of `retry_waits` while it fails for a reason
/// that may pass ([`SweepError::is_transient`]). Returns whether a run succeeded.
pub async fn run_retrying(
    sweep: &Sweep,
    retry_waits: &[Duration],
    metrics: &ResyncMetrics,
) -> bool {
    let mut waits = (1..).zip(retry_waits);
    loop {
        match run_once(sweep, metrics).await {
            Ok(()) => return true,
            Err(e) if !e.is_transient() => {
                warn!(repository = %sweep.repository(), "not trying the resync again this turn: it would fail the same way");
                return false;
            }
            Err(_) => {}
        }
        let Some((tried, wait)) = waits.next() else {
            return false;
        };
        warn!(repository = %sweep.repository(), ?wait, tried, "trying the resync again");
        tokio::time::sleep(*wait).await;
    }
}

/// Runs `sweep` on `schedule` (a cron expression with seconds first, in UTC: the period's
/// [`Period::cron`](crate::Period::cron) unless overridden) until `shutdown`, each turn a
/// [`run_retrying`] with [`RETRY_WAITS`]. A run still going (or waiting to try again) when the
/// next is due makes that one skip (logged and counted).
pub async fn run(
    sweep: Arc<Sweep>,
    schedule: &str,
    metrics: ResyncMetrics,
    shutdown: CancellationToken,
) -> Result<(), ScheduleError> {
    let mut scheduler = JobScheduler::new()
        .await
        .map_err(scheduler_failed("start"))?;
    let running = Arc::new(AtomicBool::new(false));
    let running_at_shutdown = running.clone();
    let repository = sweep.repository().to_owned();
    let job = Job::new_async(schedule, move |_, _| {
        let (sweep, metrics, running) = (sweep.clone(), metrics.clone(), running.clone());
        Box::pin(async move {
            let Some(_running) = Running::start(&running) else {
                warn!(repository = %sweep.repository(), "the previous resync is still running: skipping this one");
                metrics.skipped();
                return;
            };
            // Each outcome is logged and counted; the schedule goes on either way.
            run_retrying(&sweep, &RETRY_WAITS, &metrics).await;
        })
    })
    .map_err(invalid(schedule))?;
    scheduler
        .add(job)
        .await
        .map_err(scheduler_failed("add the job to"))?;
    scheduler.start().await.map_err(scheduler_failed("start"))?;
    info!(%schedule, "resync scheduled (UTC)");
    shutdown.cancelled().await;
    if running_at_shutdown.load(Ordering::Acquire) {
        // Not waited for: a sweep can take minutes, and stopping it loses nothing stored.
        warn!(%repository, "a resync was running at shutdown: the keys it stored are kept, the rest come with the next sweep");
    }
    scheduler
        .shutdown()
        .await
        .map_err(scheduler_failed("stop"))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Period;

    #[tokio::test]
    async fn every_period_should_make_a_schedule_the_scheduler_takes() {
        let hours = (1..24).chain((24..=744).step_by(24));
        for h in hours {
            let cron = Period::from_hours(h).unwrap().cron();
            assert!(
                Job::new_async(cron.as_str(), |_, _| Box::pin(async {})).is_ok(),
                "{h} hours: {cron}"
            );
        }
    }

    #[test]
    fn the_running_mark_should_clear_even_when_a_sweep_panics() {
        let flag = Arc::new(AtomicBool::new(false));
        let first = Running::start(&flag).expect("free");
        assert!(Running::start(&flag).is_none(), "taken");
        drop(first);
        let caught = std::panic::catch_unwind({
            let flag = flag.clone();
            move || {
                let _running = Running::start(&flag).expect("free again");
                panic!("a sweep that panics");
            }
        });
        assert!(caught.is_err());
        assert!(Running::start(&flag).is_some(), "cleared by the unwinding");
    }
}
