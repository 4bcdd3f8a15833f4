//! `reconcilers`: one binary for every process of the system. This file is wiring only: the
//! command line, logging and signals; each subcommand hands a typed configuration to a library.

mod args;
mod cmd;
mod logging;

use std::time::Duration;

use clap::{Parser, Subcommand};
use tokio::signal::unix::{Signal, SignalKind, signal};
use tokio_util::sync::CancellationToken;

/// GitHub webhooks and CloudEvents into a durable workqueue, dispatched to reconcilers.
#[derive(Debug, Parser)]
#[command(name = "reconcilers", version, about, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
    /// How long a process may take to stop once SIGTERM or Ctrl-C arrives: in-flight keys
    /// handed back, capacity slots given back, open requests finished. What is not done by
    /// then is left (keys are retried when their leases lapse). A second signal exits at once.
    #[arg(
        long,
        env = "SHUTDOWN_TIMEOUT",
        default_value = "8s",
        value_parser = shutdown_timeout,
        global = true
    )]
    shutdown_timeout: Duration,
}

/// A shutdown timeout: a duration of an hour at most.
fn shutdown_timeout(text: &str) -> Result<Duration, String> {
    let timeout = args::duration(text)?;
    if timeout > Duration::from_secs(3600) {
        return Err(format!("{text} is over an hour"));
    }
    Ok(timeout)
}

/// How long past the shutdown timeout the process waits for its own parts before it exits
/// anyway: they keep the timeout themselves, so this is only a backstop.
const SHUTDOWN_BACKSTOP: Duration = Duration::from_secs(1);

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

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    logging::init();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("start the Tokio runtime");
    let code = runtime.block_on(run(cli));
    // Work that outlived its deadline (a blocking file lock, a DNS lookup on the blocking
    // pool) must not hold the exit up: the runtime waits for it a moment at most.
    runtime.shutdown_timeout(SHUTDOWN_BACKSTOP);
    code
}

/// Runs the command; its exit code.
async fn run(cli: Cli) -> std::process::ExitCode {
    let shutdown = CancellationToken::new();
    // Only the commands that watch `shutdown` take the signals over: for the others, Ctrl-C
    // must go on ending the process at once.
    let watches_shutdown = !matches!(
        cli.command,
        Command::Queue(_) | Command::Enqueue(_) | Command::Webhook(_)
    );
    let timeout = cli.shutdown_timeout;
    if watches_shutdown {
        tokio::spawn(cancel_on_signal(shutdown.clone(), timeout));
    }
    let long_running =
        watches_shutdown && !matches!(&cli.command, Command::Resync(args) if args.once());
    let result = match cli.command {
        Command::Dev(args) => cmd::dev::run(args, shutdown, timeout).await,
        Command::Receiver(args) => cmd::receiver::run(args, shutdown, timeout).await,
        Command::Dispatcher(args) => cmd::dispatcher::run(args, shutdown, timeout).await,
        Command::Queue(args) => cmd::queue::run(args).await,
        Command::Enqueue(args) => cmd::enqueue::run(args).await,
        Command::Gateway(args) => cmd::gateway::run(args, shutdown, timeout).await,
        Command::Webhook(args) => cmd::webhook::run(args).await,
        Command::Resync(args) => cmd::resync::run(args, shutdown, timeout).await,
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

/// Fires `shutdown` on SIGTERM (Cloud Run, Kubernetes) or SIGINT (Ctrl-C). Then a second
/// signal exits at once, as does a shutdown still running past its timeout (a backstop: the
/// parts keep the timeout themselves).
async fn cancel_on_signal(shutdown: CancellationToken, timeout: Duration) {
    let mut term = signal(SignalKind::terminate()).expect("install the SIGTERM handler");
    let mut int = signal(SignalKind::interrupt()).expect("install the SIGINT handler");
    let first = next_signal(&mut term, &mut int).await;
    tracing::info!(signal = first.name, ?timeout, "shutting down");
    shutdown.cancel();
    tokio::select! {
        second = next_signal(&mut term, &mut int) => {
            tracing::warn!(signal = second.name, "a second signal: exiting now");
            std::process::exit(second.exit_code);
        }
        () = tokio::time::sleep(timeout + SHUTDOWN_BACKSTOP) => {
            tracing::error!(?timeout, "shutdown did not end in time: exiting now");
            std::process::exit(1);
        }
    }
}

/// A signal that ends the process, and the exit code of a process it ended (128 + its number).
struct Received {
    name: &'static str,
    exit_code: i32,
}

async fn next_signal(term: &mut Signal, int: &mut Signal) -> Received {
    tokio::select! {
        _ = term.recv() => Received { name: "SIGTERM", exit_code: 128 + 15 },
        _ = int.recv() => Received { name: "SIGINT", exit_code: 128 + 2 },
    }
}
