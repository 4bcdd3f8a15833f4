//! `reconcilers dispatcher`: the dispatcher alone, calling a reconciler over gRPC.

use std::sync::Arc;
use std::time::Duration;

use clap::Args;
use reconciler::RemoteReconciler;
use tokio_util::sync::CancellationToken;
use workqueue::service::{Service, run as run_service};

use crate::args::{DispatchArgs, ListenArgs, StorageArgs};

/// Options of `reconcilers dispatcher`.
#[derive(Debug, Args)]
pub(crate) struct DispatcherArgs {
    #[command(flatten)]
    storage: StorageArgs,
    /// The reconciler's gRPC address: http://HOST:PORT, or an https:// Cloud Run service (called
    /// over TLS with a Google ID token from the metadata server).
    #[arg(long, env = "WORKQUEUE_TARGET")]
    reconciler: String,
    #[command(flatten)]
    listen: ListenArgs,
    #[command(flatten)]
    dispatch: DispatchArgs,
}

/// Dispatches due keys to the reconciler until `shutdown`.
pub(crate) async fn run(
    args: DispatcherArgs,
    shutdown: CancellationToken,
    shutdown_timeout: Duration,
) -> anyhow::Result<()> {
    let storage = args.storage.resolve(None)?;
    let reconciler = Arc::new(RemoteReconciler::new(
        &args.reconciler,
        args.dispatch.reconcile_timeout,
    )?);
    let service = Service {
        extra_http: None,
        queue: args.dispatch.queue()?,
        dispatcher: Some((
            reconciler,
            args.dispatch.dispatcher(&storage, shutdown_timeout)?,
        )),
        shutdown_timeout,
        http: args.listen.http("127.0.0.1:8080")?,
        grpc: None,
        storage,
    };
    Ok(run_service(service, shutdown).await?)
}
