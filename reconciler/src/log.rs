//! The built-in reconciler of `reconcilers dev`: it logs each key and completes it.

use async_trait::async_trait;
use tracing::info;

use crate::{Action, ReconcileError, Reconciler};

/// Logs every key it is given and reports it done; for trying the queue out.
#[derive(Clone, Copy, Debug, Default)]
pub struct LogReconciler;

#[async_trait]
impl Reconciler for LogReconciler {
    async fn reconcile(&self, key: &str, priority: i64) -> Result<Action, ReconcileError> {
        info!(%key, priority, "reconciled");
        Ok(Action::done())
    }
}
