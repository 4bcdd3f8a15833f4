//! The reconciler SDK: what a reconciler author compiles, without the workqueue's server.
//!
//! A reconciler implements [`Reconciler`] and returns an [`Action`]; [`serve`] exposes it as
//! the gRPC `WorkqueueService` that dispatchers call (the contract of `proto/workqueue.proto`,
//! which the Go framework's dispatchers and reconcilers speak too). Keys that name GitHub
//! resources parse into a [`GitHubKey`].
//!
//! ```no_run
//! use reconciler::{serve, Action, GitHubKey, ReconcileError, Reconciler};
//!
//! struct Hello;
//!
//! #[async_trait::async_trait]
//! impl Reconciler for Hello {
//!     async fn reconcile(&self, key: &str, _priority: i64) -> Result<Action, ReconcileError> {
//!         let key: GitHubKey = key.parse().map_err(|e| ReconcileError::no_retry(format!("{e}")))?;
//!         println!("reconciling {key}");
//!         Ok(Action::done())
//!     }
//! }
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! serve(Hello, "0.0.0.0:8080".parse()?, std::future::pending()).await?;
//! # Ok(()) }
//! ```
//!
//! # Layout
//! * [`Reconciler`] (here) and [`Action`], [`ReconcileError`] (`action`): the contract.
//! * [`serve`], [`service`] (`server`): a reconciler as the gRPC service, with health checks.
//! * [`client`]: a gRPC client of the service, a receiver's or a reconciler's, with Google ID
//!   tokens ([`IdTokenSource`]) for Cloud Run; [`RemoteReconciler`] (`remote`): a reconciler
//!   reached through it, as a dispatcher calls one.
//! * `wire`: [`Action`] and errors to and from the wire messages, in one place.
//! * [`proto`]: the generated messages and services.
//! * [`LogReconciler`]: logs each key; what `reconcilers dev` runs when given no reconciler.

mod action;
pub mod client;
mod id_token;
mod log;
mod remote;
mod server;
mod wire;

/// The generated types of `proto/workqueue.proto` (package `chainguard.workqueue`).
#[allow(missing_docs, unreachable_pub, clippy::all)]
pub mod proto {
    tonic::include_proto!("chainguard.workqueue");
}

use async_trait::async_trait;

pub use action::{Action, QueueKey, ReconcileError, Requeue};
pub use client::InvalidAddress;
pub use github::{GitHubKey, InvalidGitHubKey, Target};
pub(crate) use id_token::audience_of;
pub use id_token::{IdTokenError, IdTokenSource};
pub use log::LogReconciler;
pub use remote::RemoteReconciler;
pub use server::{ReconcilerService, serve, service};

/// Makes the world match the desired state of one key.
///
/// Reconcilers are level-based: they look at the whole current state of the resource the key
/// names and make idempotent changes, so running a key twice, or after many events collapsed
/// into one, is always safe.
#[async_trait]
pub trait Reconciler: Send + Sync + 'static {
    /// Reconciles `key`, queued at `priority`.
    async fn reconcile(&self, key: &str, priority: i64) -> Result<Action, ReconcileError>;
}

#[async_trait]
impl<R: Reconciler + ?Sized> Reconciler for std::sync::Arc<R> {
    async fn reconcile(&self, key: &str, priority: i64) -> Result<Action, ReconcileError> {
        (**self).reconcile(key, priority).await
    }
}

/// An error and its causes, `: `-separated (as `anyhow` prints a chain with `{:#}`): for one
/// log field, or a message that leaves a library as text.
pub fn error_chain(error: &dyn std::error::Error) -> String {
    let mut out = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        out.push_str(": ");
        out.push_str(&cause.to_string());
        source = cause.source();
    }
    out
}
