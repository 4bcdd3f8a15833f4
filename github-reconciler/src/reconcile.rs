//! A GitHub reconciler and what the queue makes of its result.

use std::cell::RefCell;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use reconciler::{Action, GitHubKey, ReconcileError, Reconciler, Target};
use tracing::{Instrument, info, info_span, warn};

use crate::client::GitHubClient;
use crate::clients::Clients;
use crate::error::Error;
use crate::metrics::Outcome;
use crate::rerun::rerun;

/// The longest a rate limit snoozes a key: GitHub's primary limits reset within the hour.
pub const DEFAULT_MAX_SNOOZE: Duration = Duration::from_secs(60 * 60);

tokio::task_local! {
    /// The commit SHA the current reconcile is about, once known: for its log line.
    static SHA: RefCell<Option<String>>;
}

/// Records the commit SHA the current reconcile is about, for its log line (the status
/// manager's session does this itself). Does nothing outside a reconcile.
pub fn record_sha(sha: &str) {
    let _ = SHA.try_with(|cell| *cell.borrow_mut() = Some(sha.to_owned()));
}

/// A reconciler of GitHub resources: given a parsed key and a client for its repository.
#[async_trait]
pub trait GitHubReconciler: Send + Sync + 'static {
    /// Reconciles the resource `key` names, calling GitHub through `client`.
    async fn reconcile(&self, key: &GitHubKey, client: &GitHubClient) -> Result<Action, Error>;
}

/// A [`GitHubReconciler`] as a [`Reconciler`] the SDK serves: it parses the key (a key of an
/// unknown form is dropped), picks the client for its repository, and turns the result into
/// what the queue does:
///
/// | result | the key |
/// |---|---|
/// | `Ok(action)` | as the action says |
/// | a rate limit ([`Error::RateLimited`]) | snoozed until it lifts (at most an hour): not a failed attempt |
/// | [`Error::NoRetry`] | dropped |
/// | any other error | retried with backoff |
///
/// A check-run key (a re-run request) is handled here, not by the reconciler: see
/// [`GitHub::with_identity`].
///
/// Each reconcile logs one line with the key, the SHA ([`record_sha`]) and the outcome.
#[derive(Debug)]
pub struct GitHub<R> {
    reconciler: R,
    clients: Arc<Clients>,
    max_snooze: Duration,
    identity: Option<String>,
}

impl<R: GitHubReconciler> GitHub<R> {
    /// `reconciler`, calling GitHub through `clients`.
    pub fn new(reconciler: R, clients: Arc<Clients>) -> Self {
        Self {
            reconciler,
            clients,
            max_snooze: DEFAULT_MAX_SNOOZE,
            identity: None,
        }
    }

    /// The same, answering check-run keys (re-run requests) for runs named `identity` or
    /// `identity (path)`: each gets a fresh queued run and its resources are enqueued again
    /// (`rerun`). Without an identity, check-run keys are dropped.
    pub fn with_identity(self, identity: impl Into<String>) -> Self {
        Self {
            identity: Some(identity.into()),
            ..self
        }
    }

    /// The same, snoozing a rate-limited key for at most `max_snooze`.
    pub fn max_snooze(self, max_snooze: Duration) -> Self {
        Self { max_snooze, ..self }
    }

    /// Its clients (and their request counts).
    pub fn clients(&self) -> &Clients {
        &self.clients
    }
}

#[async_trait]
impl<R: GitHubReconciler> Reconciler for GitHub<R> {
    async fn reconcile(&self, key: &str, _priority: i64) -> Result<Action, ReconcileError> {
        let started = Instant::now();
        let parsed: GitHubKey = match key.parse() {
            Ok(parsed) => parsed,
            Err(e) => {
                self.clients.metrics().reconciled(Outcome::Dropped);
                warn!(key, outcome = Outcome::Dropped.label(), error = %e, "not a GitHub key");
                return Err(ReconcileError::no_retry(e.to_string()));
            }
        };
        let client = self.clients.for_key(&parsed);
        let span = info_span!("reconcile", key);
        let (result, sha) = SHA
            .scope(RefCell::new(None), async {
                let result = match (&parsed.target, &self.identity) {
                    (Target::CheckRun(id), Some(identity)) => {
                        rerun(identity, &parsed, *id, &client).await
                    }
                    (Target::CheckRun(_), None) => Err(Error::no_retry(
                        "a check-run key, and this reconciler has no identity to own runs by",
                    )),
                    _ => self.reconciler.reconcile(&parsed, &client).await,
                };
                (result, SHA.with(|cell| cell.borrow_mut().take()))
            })
            .instrument(span)
            .await;
        let sha = sha.unwrap_or_default();
        let elapsed_ms = started.elapsed().as_millis() as u64;
        let outcome = match &result {
            Ok(_) => Outcome::Done,
            Err(e) if e.rate_limit().is_some() => Outcome::RateLimited,
            Err(Error::NoRetry(_)) => Outcome::Dropped,
            Err(_) => Outcome::Failed,
        };
        self.clients.metrics().reconciled(outcome);
        let outcome = outcome.label();
        match result {
            Ok(action) => {
                info!(key, sha, outcome, elapsed_ms, requeue = ?action.requeue(), "reconciled");
                Ok(action)
            }
            Err(e) => match e.rate_limit() {
                Some(wait) => {
                    let snooze = wait.min(self.max_snooze);
                    warn!(key, sha, outcome, elapsed_ms, ?snooze, error = %e, "rate limited: snoozing the key");
                    Ok(Action::requeue_after(snooze))
                }
                None => {
                    let error = reconciler::error_chain(&e);
                    if let Error::NoRetry(message) = e {
                        warn!(key, sha, outcome, elapsed_ms, error, "not retriable");
                        Err(ReconcileError::no_retry(message))
                    } else {
                        warn!(key, sha, outcome, elapsed_ms, error, "will retry");
                        Err(ReconcileError::retry(e))
                    }
                }
            },
        }
    }
}
