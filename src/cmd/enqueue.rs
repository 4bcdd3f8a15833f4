//! `reconcilers enqueue`: a gRPC client of a receiver, for trying things out and for scripts.

use std::time::Duration;

use anyhow::Context;
use clap::Args;

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

/// How long one enqueue may take: a person or a script waits, and a Cloud Run receiver may
/// be starting from cold.
const CALL_TIMEOUT: Duration = Duration::from_secs(30);

/// Enqueues the keys through the receiver, one call each.
pub(crate) async fn run(args: EnqueueArgs) -> anyhow::Result<()> {
    let workqueue = args.workqueue.remote(CALL_TIMEOUT)?;
    for key in args.keys {
        workqueue
            .enqueue(&key, args.priority, args.delay)
            .await
            .with_context(|| format!("failed to enqueue {key:?} at {}", args.workqueue.url))?;
        println!("enqueued {key}");
    }
    Ok(())
}
