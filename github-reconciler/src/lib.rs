//! The reconciler toolkit for GitHub, beside the SDK (`reconciler`): what a reconciler of
//! pull requests or repository files needs besides its own logic.
//!
//! ```no_run
//! use github_reconciler::{Action, Error, GitHubClient, GitHubKey, GitHubReconciler};
//!
//! struct Hello;
//!
//! #[async_trait::async_trait]
//! impl GitHubReconciler for Hello {
//!     async fn reconcile(&self, key: &GitHubKey, client: &GitHubClient) -> Result<Action, Error> {
//!         let reconciler::Target::PullRequest(number) = key.target else {
//!             return Err(Error::no_retry("only pull requests"));
//!         };
//!         match client.pull_request(&key.owner, &key.repo, number).await? {
//!             Some(pr) => tracing::info!(title = pr.title, "hello"),
//!             None => tracing::info!("gone"),
//!         }
//!         Ok(Action::done())
//!     }
//! }
//!
//! #[tokio::main]
//! async fn main() -> std::process::ExitCode {
//!     github_reconciler::run(|_setup| Hello).await
//! }
//! ```
//!
//! # Layout
//! * [`run`], [`serve`] (`entry`): the entry point: environment, JSON logs, `PORT`, health,
//!   an 8 s drain; keys on the command line run once without a queue.
//! * [`GitHubReconciler`], [`GitHub`] (`reconcile`): the trait, and what the queue makes of
//!   its result (a rate limit is a snooze, not a failure).
//! * [`Metrics`] (`metrics`): GitHub calls, 304s, rate limits and reconciles by outcome, on
//!   `/metrics` at `METRICS_PORT`.
//! * [`Clients`], [`GitHubClient`]: a client per org/repo; conditional requests (`etag`);
//!   typed reads of pull requests, commits and files (`resources`).
//! * [`Auth`]: tokens from `GITHUB_TOKEN`, a GitHub App (`app`) or Octo STS (`octo_sts`).
//! * [`StatusManager`] (`status`, `marker`): the observed state kept in a Check Run; re-run
//!   requests reset it (`rerun`).

mod app;
mod auth;
mod client;
mod clients;
mod entry;
mod error;
mod etag;
#[cfg(feature = "fake")]
pub mod fake;
mod marker;
mod metrics;
mod octo_sts;
mod reconcile;
mod rerun;
mod resources;
mod status;
mod token;

pub use app::GitHubApp;
pub use auth::{Auth, AuthError};
pub use client::{GitHubClient, RequestCounts};
pub use clients::{Clients, DEFAULT_API_URL};
pub use entry::{DRAIN, Setup, SetupError, run, serve};
pub use error::Error;
pub use metrics::{DEFAULT_METRICS_PORT, Metrics, serve_metrics};
pub use octo_sts::{DEFAULT_OCTO_STS_URL, OctoSts, ScopedTokens};
pub use reconcile::{DEFAULT_MAX_SNOOZE, GitHub, GitHubReconciler, record_sha};
pub use reconciler::{Action, GitHubKey, Target};
pub use resources::{Head, PullRequest};
pub use status::{
    Annotation, Conclusion, Details, DetailsLink, RunStatus, Session, Status, StatusManager,
};
pub use token::{Scope, Token};
