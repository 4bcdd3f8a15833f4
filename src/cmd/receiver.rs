//! `reconcilers receiver`: the gRPC receiver alone.

use std::time::Duration;

use clap::Args;
use tokio_util::sync::CancellationToken;
use workqueue::QueueConfig;
use workqueue::service::{Service, run as run_service};

use crate::args::{GrpcListenArgs, ListenArgs, StorageArgs};

/// Options of `reconcilers receiver`.
#[derive(Debug, Args)]
pub(crate) struct ReceiverArgs {
    #[command(flatten)]
    storage: StorageArgs,
    #[command(flatten)]
    grpc_listen: GrpcListenArgs,
    #[command(flatten)]
    listen: ListenArgs,
}

/// Serves the gRPC receiver until `shutdown`.
pub(crate) async fn run(
    args: ReceiverArgs,
    shutdown: CancellationToken,
    shutdown_timeout: Duration,
) -> anyhow::Result<()> {
    let service = Service {
        extra_http: None,
        storage: args.storage.resolve(None)?,
        queue: QueueConfig::default(),
        http: args.listen.http("127.0.0.1:8080")?,
        grpc: Some(
            args.grpc_listen
                .grpc(args.listen.port(), "127.0.0.1:8081")?,
        ),
        dispatcher: None,
        shutdown_timeout,
    };
    Ok(run_service(service, shutdown).await?)
}
