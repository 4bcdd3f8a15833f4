//! Sweeps on the period's cron schedule, each run's outcome logged and counted.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::Context;
use tokio_cron_scheduler::{Job, JobScheduler};
use tokio_util::sync::CancellationToken;
use tracing::{error, info, warn};

use crate::metrics::ResyncMetrics;
use crate::sweep::Sweep;

/// Runs one sweep now, logging and counting its outcome; `Err` when it failed.
pub async fn run_once(sweep: &Sweep, metrics: &ResyncMetrics) -> anyhow::Result<()> {
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
            error!(repository = %sweep.repository(), error = %e, took = ?clock.elapsed(), "resync failed");
            Err(e.into())
        }
    }
}

/// Runs `sweep` on its period's schedule (UTC) until `shutdown`. A run still going when the
/// next is due makes that one skip (logged).
pub async fn run(
    sweep: Arc<Sweep>,
    metrics: ResyncMetrics,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let cron = sweep.period().cron();
    let mut scheduler = JobScheduler::new()
        .await
        .context("failed to start the resync's scheduler")?;
    let running = Arc::new(AtomicBool::new(false));
    let job = Job::new_async(cron.as_str(), move |_, _| {
        let (sweep, metrics, running) = (sweep.clone(), metrics.clone(), running.clone());
        Box::pin(async move {
            if running.swap(true, Ordering::AcqRel) {
                warn!(repository = %sweep.repository(), "the previous resync is still running: skipping this one");
                return;
            }
            // The outcome is logged and counted; the schedule goes on either way.
            let _ = run_once(&sweep, &metrics).await;
            running.store(false, Ordering::Release);
        })
    })
    .with_context(|| format!("invalid resync schedule {cron:?}"))?;
    scheduler
        .add(job)
        .await
        .context("failed to schedule the resync")?;
    scheduler
        .start()
        .await
        .context("failed to start the resync's scheduler")?;
    info!(schedule = %cron, "resync scheduled (UTC)");
    shutdown.cancelled().await;
    scheduler
        .shutdown()
        .await
        .context("failed to stop the resync's scheduler")?;
    Ok(())
}
