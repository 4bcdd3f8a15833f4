//! One sweep: the default branch's files, matched against the path patterns, each distinct key
//! enqueued at priority 0 with its spread delay.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use futures::{StreamExt, TryStreamExt};
use github::api::{GitHubApi, GitHubError};
use github::key::split_full_name;
use github::{InvalidRepository, PathPatterns, PatternError};
use tracing::{info, warn};
use workqueue::backoff::Backoff;
use workqueue::client::{Enqueue, EnqueueError};

use crate::period::{Period, spread_delay};

/// The priority of the resync's keys: below every event's.
pub const RESYNC_PRIORITY: i64 = 0;

/// Keys enqueued at once by default.
pub const DEFAULT_CONCURRENCY: usize = 32;

/// Tries per key by default before the workqueue counts as unavailable.
const DEFAULT_ATTEMPTS: u32 = 5;

/// The pause between tries of one key by default: 250 ms, doubling, up to 8 s.
const DEFAULT_BACKOFF: Backoff = Backoff {
    base: Duration::from_millis(250),
    max: Duration::from_secs(8),
};

/// A repository's resync: what to list, what to match, where keys go.
#[derive(Debug)]
pub struct Sweep {
    github: GitHubApi,
    repository: String,
    patterns: PathPatterns,
    period: Period,
    workqueue: Arc<dyn Enqueue>,
    concurrency: usize,
    attempts: u32,
    /// The pause after a key's failed try: doubling from the first, capped.
    backoff: Backoff,
}

/// How far a sweep got.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SweepReport {
    /// The default branch swept.
    pub branch: String,
    /// The commit its tree was listed at.
    pub commit: String,
    /// Files (blobs) listed.
    pub files: u64,
    /// Files that matched a pattern.
    pub matched: u64,
    /// Distinct keys those files make.
    pub keys: usize,
    /// Keys stored by the workqueue.
    pub enqueued: usize,
    /// Calls made to the GitHub API.
    pub github_calls: u64,
}

/// A resync that cannot be set up; the message names the culprit.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    /// The repository is not `OWNER/REPO`.
    #[error(transparent)]
    Repository(#[from] InvalidRepository),
    /// A path pattern that cannot be used.
    #[error(transparent)]
    Pattern(#[from] PatternError),
}

/// Why a sweep failed; each carries how far it got.
#[derive(Debug, thiserror::Error)]
pub enum SweepError {
    /// The GitHub API failed (rate limits are waited out first, within a bound).
    #[error("failed to list the files of {repository}")]
    GitHub {
        /// The repository.
        repository: String,
        /// What failed.
        #[source]
        cause: GitHubError,
        /// How far the sweep got.
        report: SweepReport,
    },
    /// The workqueue failed a key on every try: the sweep stops there.
    #[error(
        "the workqueue failed key {key:?} {attempts} times ({} of {} keys enqueued)",
        report.enqueued, report.keys
    )]
    Workqueue {
        /// The key.
        key: String,
        /// Tries made.
        attempts: u32,
        /// The last failure.
        #[source]
        cause: EnqueueError,
        /// How far the sweep got.
        report: SweepReport,
    },
    /// The workqueue refused some keys as invalid (the others were enqueued).
    #[error(
        "the workqueue refused {} of {} keys; the first: {}",
        refused.len(), report.keys, workqueue::error_chain(&refused[0])
    )]
    Refused {
        /// Each refusal.
        refused: Vec<EnqueueError>,
        /// How far the sweep got.
        report: SweepReport,
    },
}

impl SweepError {
    /// Whether the sweep may succeed if run again soon: GitHub or the workqueue failed for a
    /// reason that may pass; not keys the workqueue refused, nor GitHub's refusal.
    pub fn is_transient(&self) -> bool {
        match self {
            Self::GitHub { cause, .. } => cause.is_transient(),
            Self::Workqueue { .. } => true,
            Self::Refused { .. } => false,
        }
    }

    /// How far the sweep got before it failed.
    pub fn report(&self) -> &SweepReport {
        match self {
            Self::GitHub { report, .. }
            | Self::Workqueue { report, .. }
            | Self::Refused { report, .. } => report,
        }
    }
}

/// What came of enqueueing one key.
enum KeyOutcome {
    Stored,
    Refused(EnqueueError),
}

impl Sweep {
    /// The resync of `repository` (`OWNER/REPO`) for files matching `patterns` (anchored, one
    /// capture group each: refused otherwise, naming the pattern), enqueueing into
    /// `workqueue`.
    pub fn new<S: AsRef<str>>(
        github: GitHubApi,
        repository: &str,
        patterns: &[S],
        period: Period,
        workqueue: Arc<dyn Enqueue>,
    ) -> Result<Self, SetupError> {
        split_full_name(repository)?;
        let patterns = PathPatterns::new(patterns)?;
        Ok(Self::for_rule(
            github,
            repository.to_owned(),
            patterns,
            period,
            workqueue,
        ))
    }

    /// The resync of a path route's `repository` (`OWNER/REPO`, checked) and its compiled
    /// `patterns`, enqueueing into `workqueue`.
    pub fn for_rule(
        github: GitHubApi,
        repository: String,
        patterns: PathPatterns,
        period: Period,
        workqueue: Arc<dyn Enqueue>,
    ) -> Self {
        Self {
            github,
            repository,
            patterns,
            period,
            workqueue,
            concurrency: DEFAULT_CONCURRENCY,
            attempts: DEFAULT_ATTEMPTS,
            backoff: DEFAULT_BACKOFF,
        }
    }

    /// The same sweep with at most `concurrency` keys in flight.
    pub fn with_concurrency(self, concurrency: usize) -> Self {
        Self {
            concurrency: concurrency.max(1),
            ..self
        }
    }

    /// The same sweep trying each key up to `attempts` times, pausing `first_backoff` (then
    /// twice as long each time) between tries.
    pub fn with_retries(self, attempts: u32, first_backoff: Duration) -> Self {
        Self {
            attempts: attempts.max(1),
            backoff: Backoff {
                base: first_backoff,
                ..self.backoff
            },
            ..self
        }
    }

    /// The repository swept.
    pub fn repository(&self) -> &str {
        &self.repository
    }

    /// Runs one sweep; `started` is the run time the delays derive from.
    pub async fn run(&self, started: SystemTime) -> Result<SweepReport, SweepError> {
        let calls_before = self.github.calls();
        let mut report = SweepReport::default();
        let listed = self.list(&mut report).await;
        report.github_calls = self.github.calls() - calls_before;
        let keys = listed.map_err(|cause| SweepError::GitHub {
            repository: self.repository.clone(),
            cause,
            report: report.clone(),
        })?;
        report.keys = keys.len();
        info!(
            repository = %self.repository,
            branch = %report.branch,
            files = report.files,
            matched = report.matched,
            keys = report.keys,
            github_calls = report.github_calls,
            "listed the tree"
        );
        let run_unix = started
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs();
        self.enqueue_all(&keys, run_unix, &mut report).await?;
        Ok(report)
    }

    /// The distinct keys of the default branch's matching files, named with the repository
    /// as GitHub spells it (as the gateway's keys are, whatever case `--repository` has).
    async fn list(&self, report: &mut SweepReport) -> Result<BTreeSet<String>, GitHubError> {
        let info = self.github.repository(&self.repository).await?;
        let keyed = info.repository()?;
        report.branch = info.default_branch;
        report.commit = self
            .github
            .branch_head(&info.full_name, &report.branch)
            .await?;
        let mut keys = BTreeSet::new();
        let (mut files, mut matched) = (0, 0);
        self.github
            .for_each_file(&info.full_name, &report.commit, |path| {
                files += 1;
                if let Some(key) = self.patterns.key(&keyed, &report.branch, path) {
                    matched += 1;
                    keys.insert(key.to_string());
                }
            })
            .await?;
        (report.files, report.matched) = (files, matched);
        Ok(keys)
    }

    /// Enqueues `keys` with at most `concurrency` in flight; stops at the first key the
    /// workqueue fails on every try, and reports refused keys once the rest are stored.
    async fn enqueue_all(
        &self,
        keys: &BTreeSet<String>,
        run_unix: u64,
        report: &mut SweepReport,
    ) -> Result<(), SweepError> {
        let total = keys.len();
        let mut refused = Vec::new();
        let mut next_progress = total.div_ceil(10).max(1);
        // Owned keys: a stream of futures borrowing the set's items is not provably `Send` to
        // the scheduler (rust-lang/rust#102211), and a key is small beside its gRPC call.
        let stored = futures::stream::iter(keys.iter().cloned())
            .map(|key: String| async move {
                let delay = spread_delay(&key, run_unix, self.period);
                self.enqueue_one(&key, delay).await
            })
            .buffer_unordered(self.concurrency)
            .try_for_each(|outcome| {
                match outcome {
                    KeyOutcome::Stored => {
                        report.enqueued += 1;
                        if report.enqueued >= next_progress && report.enqueued < total {
                            info!(enqueued = report.enqueued, total, "enqueueing");
                            next_progress += total.div_ceil(10).max(1);
                        }
                    }
                    KeyOutcome::Refused(e) => {
                        warn!(error = %workqueue::error_chain(&e), "the workqueue refused a key");
                        refused.push(e);
                    }
                }
                futures::future::ready(Ok(()))
            })
            .await;
        if let Err((key, cause)) = stored {
            return Err(SweepError::Workqueue {
                key,
                attempts: self.attempts,
                cause,
                report: report.clone(),
            });
        }
        if !refused.is_empty() {
            return Err(SweepError::Refused {
                refused,
                report: report.clone(),
            });
        }
        Ok(())
    }

    /// One key, tried up to `attempts` times while the workqueue is unavailable.
    async fn enqueue_one(
        &self,
        key: &str,
        delay: Duration,
    ) -> Result<KeyOutcome, (String, EnqueueError)> {
        let mut attempt = 1;
        loop {
            match self.workqueue.enqueue(key, RESYNC_PRIORITY, delay).await {
                Ok(()) => return Ok(KeyOutcome::Stored),
                Err(refused @ EnqueueError::Refused { .. }) => {
                    return Ok(KeyOutcome::Refused(refused));
                }
                Err(unavailable) if attempt >= self.attempts => {
                    return Err((key.to_owned(), unavailable));
                }
                Err(unavailable) => {
                    let reason = workqueue::error_chain(&unavailable);
                    warn!(key, attempt, %reason, "the workqueue failed a key; trying again");
                    tokio::time::sleep(self.backoff.delay(attempt)).await;
                    attempt += 1;
                }
            }
        }
    }
}
