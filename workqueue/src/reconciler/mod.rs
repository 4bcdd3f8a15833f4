//! The reconciler SDK: the trait a user implements, the [`Action`] it returns, and the two
//! ways it meets the wire: [`serve`] exposes any reconciler as the gRPC `WorkqueueService`,
//! and [`RemoteReconciler`] is how a dispatcher calls one (in any language) over gRPC.
//!
//! ```no_run
//! use workqueue::reconciler::{serve, Action, ReconcileError, Reconciler};
//!
//! struct Hello;
//!
//! #[async_trait::async_trait]
//! impl Reconciler for Hello {
//!     async fn reconcile(&self, key: &str, _priority: i64) -> Result<Action, ReconcileError> {
//!         println!("reconciling {key}");
//!         Ok(Action::done())
//!     }
//! }
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! serve(Hello, "127.0.0.1:8082".parse()?, std::future::pending()).await?;
//! # Ok(()) }
//! ```

mod action;
mod id_token;
mod log;
mod remote;
mod server;
mod wire;

use async_trait::async_trait;

pub use crate::client::InvalidAddress;
pub use action::{Action, QueueKey, ReconcileError, Requeue};
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
