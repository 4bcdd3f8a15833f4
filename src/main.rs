//! `reconcilers`: one binary for every process of the system. This file is wiring only: the
//! command line, logging and signals; each subcommand hands a typed configuration to a library.

mod args;
mod cmd;
mod logging;

use clap::{Parser, Subcommand};
use tokio_util::sync::CancellationToken;

/// GitHub webhooks and CloudEvents into a durable workqueue, dispatched to reconcilers.
#[derive(Debug, Parser)]
#[command(name = "reconcilers", version, about, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
#[allow(clippy::large_enum_variant)] // parsed once, at startup
enum Command {
    /// Everything in one process on local storage: receiver, dispatcher, gateway (and the
    /// resync of a path route).
    Dev(cmd::dev::DevArgs),
    /// The gRPC receiver clients enqueue keys through.
    Receiver(cmd::receiver::ReceiverArgs),
    /// The dispatcher that runs due keys against a reconciler.
    Dispatcher(cmd::dispatcher::DispatcherArgs),
    /// Inspect and repair a queue's storage.
    Queue(cmd::queue::QueueArgs),
    /// Enqueue keys through a receiver (a gRPC client).
    Enqueue(cmd::enqueue::EnqueueArgs),
    /// GitHub webhooks and CloudEvents in, routed keys out to a workqueue.
    Gateway(cmd::gateway::GatewayArgs),
    /// Replay a webhook payload as GitHub would send it.
    Webhook(cmd::webhook::WebhookArgs),
    /// Sweep a repository's files into a workqueue at priority 0, once or on a schedule.
    Resync(cmd::resync::ResyncArgs),
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    logging::init();
    let shutdown = CancellationToken::new();
    // Only the commands that watch `shutdown` take the signals over: for the others, Ctrl-C
    // must go on ending the process at once.
    let watches_shutdown = !matches!(
        cli.command,
        Command::Queue(_) | Command::Enqueue(_) | Command::Webhook(_)
    );
    if watches_shutdown {
        tokio::spawn(cancel_on_signal(shutdown.clone()));
    }
    let long_running =
        watches_shutdown && !matches!(&cli.command, Command::Resync(args) if args.once());
    let result = match cli.command {
        Command::Dev(args) => cmd::dev::run(args, shutdown).await,
        Command::Receiver(args) => cmd::receiver::run(args, shutdown).await,
        Command::Dispatcher(args) => cmd::dispatcher::run(args, shutdown).await,
        Command::Queue(args) => cmd::queue::run(args).await,
        Command::Enqueue(args) => cmd::enqueue::run(args).await,
        Command::Gateway(args) => cmd::gateway::run(args, shutdown).await,
        Command::Webhook(args) => cmd::webhook::run(args).await,
        Command::Resync(args) => cmd::resync::run(args, shutdown).await,
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            if long_running {
                tracing::error!(error = format!("{e:#}"), "exiting");
            }
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// Fires `shutdown` on SIGTERM (Cloud Run, Kubernetes) or SIGINT (Ctrl-C).
async fn cancel_on_signal(shutdown: CancellationToken) {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).expect("install the SIGTERM handler");
    let mut int = signal(SignalKind::interrupt()).expect("install the SIGINT handler");
    tokio::select! {
        _ = term.recv() => tracing::info!("SIGTERM: shutting down"),
        _ = int.recv() => tracing::info!("SIGINT: shutting down"),
    }
    shutdown.cancel();
}
