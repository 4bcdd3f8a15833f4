//! `reconcilers resync`: the periodic sweep that enqueues every matching file of a
//! repository at priority 0 (one sweep with `--once`: the Cloud Run job).

use std::sync::Arc;
use std::time::Duration;

use clap::Args;
use github::PathPatterns;
use github::api::GitHubApi;
use resync::sweep::DEFAULT_CONCURRENCY;
use resync::{Period, ResyncMetrics, Sweep};
use tokio_util::sync::CancellationToken;
use tracing::info;
use workqueue::client::Enqueue;

use crate::args::{ListenArgs, WorkqueueServiceArgs};

/// How long one GitHub call of a sweep may wait out rate limits: past the hour a primary
/// limit resets within.
const RATE_LIMIT_WAIT: Duration = Duration::from_secs(65 * 60);

/// What to sweep and how often.
#[derive(Debug, Args)]
pub(crate) struct SweepArgs {
    /// OWNER/REPO: the repository whose default branch is swept.
    #[arg(long)]
    repository: String,
    /// An anchored regular expression with one capture group: matching paths become the key
    /// `https://github.com/OWNER/REPO/blob/BRANCH/GROUP` (the gateway's path route's keys).
    #[arg(long = "path-pattern", value_name = "REGEX", required = true)]
    path_patterns: Vec<String>,
    /// Hours between sweeps (1 to 744; above 24, whole days); keys are spread across it.
    #[arg(long, env = "RESYNC_PERIOD_HOURS")]
    period_hours: u32,
    /// The GitHub API's base URL (GitHub Enterprise; a local fake in tests). Auth:
    /// GITHUB_TOKEN, or GITHUB_APP_ID with GITHUB_APP_PRIVATE_KEY(_FILE) and
    /// GITHUB_INSTALLATION_ID, or Octo STS (--octo-identity), or none.
    #[arg(long, env = "GITHUB_API_URL")]
    github_api: Option<String>,
    /// Without GITHUB_TOKEN or a GitHub App: the Octo STS identity (a trust policy in the
    /// repository) whose tokens, exchanged for the workload's Google ID token, read it.
    #[arg(long, env = "OCTO_IDENTITY")]
    octo_identity: Option<String>,
    /// The Octo STS exchange.
    #[arg(long, env = "OCTO_STS_URL", default_value = github_reconciler::DEFAULT_OCTO_STS_URL)]
    octo_sts_url: String,
    /// Keys enqueued at once.
    #[arg(long, default_value_t = DEFAULT_CONCURRENCY)]
    concurrency: usize,
    /// When to sweep, as a cron expression with seconds first (UTC), instead of the period's
    /// schedule (`0 0 */N * * *` under a day, else `0 0 0 */D * *`).
    #[arg(long, env = "RESYNC_SCHEDULE")]
    schedule: Option<String>,
}

impl SweepArgs {
    /// The sweep's GitHub client: the environment's token or App, else Octo STS tokens for
    /// the repository when an identity is given, else anonymous.
    fn github(&self) -> anyhow::Result<GitHubApi> {
        let tokens = match &self.octo_identity {
            Some(identity) => {
                let (owner, repo) = github::key::split_full_name(&self.repository)?;
                let sts = github_reconciler::OctoSts::new(identity, &self.octo_sts_url);
                Some(Arc::new(sts).tokens_for(github_reconciler::Scope::repo(owner, repo)))
            }
            None => None,
        };
        let api = GitHubApi::from_env_or(self.github_api.as_deref(), tokens)?;
        if api.has_token_source() {
            info!(identity = ?self.octo_identity, repository = %self.repository, "GitHub tokens from Octo STS");
        }
        Ok(api.with_max_rate_limit_wait(RATE_LIMIT_WAIT))
    }

    /// The schedule: `--schedule` once checked, else the period's.
    fn schedule(&self) -> anyhow::Result<String> {
        let period = Period::from_hours(self.period_hours)?;
        Ok(resync::schedule::resolve(self.schedule.as_deref(), period)?)
    }

    /// The sweep these options make, enqueueing into `workqueue`. Call it within a Tokio
    /// runtime (the GitHub client starts a task).
    fn sweep(&self, workqueue: Arc<dyn Enqueue>) -> anyhow::Result<Sweep> {
        let period = Period::from_hours(self.period_hours)?;
        Ok(Sweep::new(
            self.github()?,
            &self.repository,
            &self.path_patterns,
            period,
            workqueue,
        )?
        .with_concurrency(self.concurrency))
    }
}

/// Options of `reconcilers resync`.
#[derive(Debug, Args)]
pub(crate) struct ResyncArgs {
    /// Sweep once and exit (non-zero when the sweep failed); without it, sweep on the
    /// period's schedule, serving /healthz and /metrics.
    #[arg(long)]
    once: bool,
    #[command(flatten)]
    sweep: SweepArgs,
    #[command(flatten)]
    workqueue: WorkqueueServiceArgs,
    #[command(flatten)]
    listen: ListenArgs,
}

impl ResyncArgs {
    /// Whether this is one sweep (a job) rather than a long-running process.
    pub(crate) fn once(&self) -> bool {
        self.once
    }
}

/// Sweeps once (`--once`), or on the schedule until `shutdown`.
pub(crate) async fn run(
    args: ResyncArgs,
    shutdown: CancellationToken,
    shutdown_timeout: Duration,
) -> anyhow::Result<()> {
    let workqueue = args
        .workqueue
        .remote(gateway::gateway::DEFAULT_CALL_TIMEOUT)?;
    let sweep = args.sweep.sweep(workqueue)?;
    let metrics = ResyncMetrics::default();
    if args.once {
        return tokio::select! {
            result = resync::schedule::run_once(&sweep, &metrics) => Ok(result?),
            () = shutdown.cancelled() => anyhow::bail!("stopped before the sweep ended"),
        };
    }
    // Checked before anything listens.
    let schedule = args.sweep.schedule()?;
    let mut registry = workqueue::metrics::labelled_registry();
    metrics.register(&mut registry);
    let http = workqueue::http::router(Arc::new(registry), None);
    let addr = args.listen.http("127.0.0.1:8080")?;
    info!(workqueue = %args.workqueue.url, %addr, "resync running");
    // Either half ending (a failed bind, a scheduler that would not start) stops the other.
    let scheduled = async {
        let result =
            resync::schedule::run(Arc::new(sweep), &schedule, metrics, shutdown.clone()).await;
        shutdown.cancel();
        result
    };
    let served = async {
        let drain = shutdown_timeout;
        let result =
            workqueue::server::serve(Some((addr, http)), None, shutdown.clone(), drain).await;
        shutdown.cancel();
        result
    };
    let (scheduled, served) = tokio::join!(scheduled, served);
    scheduled?;
    served?;
    Ok(())
}

/// The GitHub API client of a sweep (`api`: another base URL), which is not in a hurry: it
/// waits for a primary rate limit's reset (an hour at most) rather than fail.
fn sweep_github(api: Option<&str>) -> anyhow::Result<GitHubApi> {
    Ok(GitHubApi::from_env(api)?.with_max_rate_limit_wait(RATE_LIMIT_WAIT))
}

/// The sweep `reconcilers dev` runs beside a path route of `repository` and `patterns`.
pub(crate) fn dev_sweep(
    repository: &str,
    patterns: &PathPatterns,
    period: Period,
    github_api: Option<&str>,
    workqueue: Arc<dyn Enqueue>,
) -> anyhow::Result<Sweep> {
    Ok(Sweep::for_rule(
        sweep_github(github_api)?,
        repository.to_owned(),
        patterns.clone(),
        period,
        workqueue,
    ))
}
