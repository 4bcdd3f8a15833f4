//! `reconcilers enqueue`: a gRPC client of a receiver, for trying things out and for scripts.

use std::time::Duration;

use anyhow::Context;
use clap::Args;
use workqueue::client::ServiceClient;
use workqueue::proto::ProcessRequest;

use crate::args::{WorkqueueServiceArgs, duration};

/// Options of `reconcilers enqueue`.
#[derive(Debug, Args)]
pub(crate) struct EnqueueArgs {
    /// The keys to enqueue.
    #[arg(required = true)]
    keys: Vec<String>,
    #[command(flatten)]
    workqueue: WorkqueueServiceArgs,
    /// Higher runs first.
    #[arg(long, default_value_t = 0, allow_negative_numbers = true)]
    priority: i64,
    /// How long before the keys are due (whole seconds on the wire).
    #[arg(long, default_value = "0s", value_parser = duration)]
    delay: Duration,
}

/// Enqueues the keys through the receiver, one call each.
pub(crate) async fn run(args: EnqueueArgs) -> anyhow::Result<()> {
    let client = ServiceClient::new(&args.workqueue.url, Duration::from_secs(30))?;
    let delay_seconds =
        i64::try_from(args.delay.as_secs() + u64::from(args.delay.subsec_nanos() > 0))?;
    for key in args.keys {
        let request = ProcessRequest {
            key: key.clone(),
            priority: args.priority,
            delay_seconds,
        };
        client
            .process(request)
            .await
            .with_context(|| format!("failed to enqueue {key:?} at {}", args.workqueue.url))?;
        println!("enqueued {key}");
    }
    Ok(())
}
