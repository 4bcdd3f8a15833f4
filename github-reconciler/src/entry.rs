//! The entry point a reconciler's `main` calls: the environment read, JSON logs, the gRPC
//! service served (with health checks) on `PORT` and drained within 8 s of SIGTERM, metrics
//! on `METRICS_PORT`; or, given keys on the command line, each reconciled once without a
//! queue.

use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use reconciler::{Action, ReconcileError, Reconciler, Requeue};
use tracing::{error, info, warn};

use crate::auth::AuthError;
use crate::clients::Clients;
use crate::metrics::{metrics_addr, serve_metrics};
use crate::reconcile::{GitHub, GitHubReconciler};

/// How long in-flight reconciles may finish after SIGTERM: inside Cloud Run's 10 s grace.
pub const DRAIN: Duration = Duration::from_secs(8);

/// The address served when `PORT` is not set (a workstation).
const LOCAL_ADDR: ([u8; 4], u16) = ([127, 0, 0, 1], 8080);

/// What a reconciler is made from: its identity (`OCTO_IDENTITY`) and GitHub clients.
#[derive(Debug)]
pub struct Setup {
    /// The reconciler's identity: its check runs' name, and its Octo STS trust policy.
    pub identity: String,
    /// GitHub clients per org/repo.
    pub clients: Arc<Clients>,
}

/// The environment does not describe a reconciler that can run.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    /// `OCTO_IDENTITY` is not set.
    #[error(
        "OCTO_IDENTITY is not set: it names the reconciler (its check runs and its Octo STS trust policy)"
    )]
    NoIdentity,
    /// The credentials cannot be used.
    #[error("the GitHub credentials in the environment cannot be used")]
    Auth(#[from] AuthError),
    /// `PORT` is not a port.
    #[error("PORT is {0:?}, not a port number")]
    Port(String),
}

impl Setup {
    /// Reads `OCTO_IDENTITY`, `GITHUB_API_URL` and the credentials ([`Clients::from_env`]).
    pub fn from_env() -> Result<Self, SetupError> {
        let identity = std::env::var("OCTO_IDENTITY")
            .ok()
            .filter(|v| !v.is_empty())
            .ok_or(SetupError::NoIdentity)?;
        Ok(Self {
            identity,
            clients: Arc::new(Clients::from_env()?),
        })
    }
}

/// Runs the reconciler `make` builds from the environment's [`Setup`]: with keys as
/// arguments, reconciles each once and exits (non-zero if any failed); with none, serves it
/// on `0.0.0.0:$PORT` (`127.0.0.1:8080` without `PORT`) until SIGTERM or Ctrl-C, then lets
/// in-flight reconciles finish for up to [`DRAIN`].
pub async fn run<R: GitHubReconciler>(make: impl FnOnce(&Setup) -> R) -> ExitCode {
    let keys: Vec<String> = std::env::args().skip(1).collect();
    if keys.iter().any(|a| a == "-h" || a == "--help") {
        println!("{USAGE}");
        return ExitCode::SUCCESS;
    }
    let local = !keys.is_empty();
    init_logs(local);
    let setup = match Setup::from_env() {
        Ok(setup) => setup,
        Err(e) => {
            error!(error = reconciler::error_chain(&e), "cannot start");
            return ExitCode::from(2);
        }
    };
    let reconciler =
        GitHub::new(make(&setup), setup.clients.clone()).with_identity(setup.identity.clone());
    if local {
        return run_once(&reconciler, &keys).await;
    }
    let addr = match listen_addr() {
        Ok(addr) => addr,
        Err(e) => {
            error!(error = %e, "cannot start");
            return ExitCode::from(2);
        }
    };
    serve_metrics_in_background(&setup);
    match serve(reconciler, addr, shutdown_signal()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            error!(error = reconciler::error_chain(&e), %addr, "the server failed");
            ExitCode::FAILURE
        }
    }
}

const USAGE: &str = "usage: RECONCILER [KEY...]

Without keys: serves the reconciler over gRPC on 0.0.0.0:$PORT (127.0.0.1:8080 without PORT).
With keys (https://github.com/OWNER/REPO/pull/N, ...): reconciles each once, then exits.

Environment: OCTO_IDENTITY (required), GITHUB_API_URL, and GITHUB_TOKEN, or GITHUB_APP_ID with
GITHUB_APP_PRIVATE_KEY[_FILE], or Octo STS (OCTO_STS_URL, OCTO_STS_SCOPE=repo|org).
Prometheus text on http://localhost:$METRICS_PORT/metrics (default 2112).";

/// Serves `reconciler` on `addr` until `shutdown` completes, then for up to [`DRAIN`] while
/// in-flight reconciles finish.
pub async fn serve<R: GitHubReconciler>(
    reconciler: GitHub<R>,
    addr: SocketAddr,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), tonic::transport::Error> {
    let (stopping, mut stopped) = tokio::sync::watch::channel(false);
    let signal = async move {
        shutdown.await;
        let _ = stopping.send(true);
    };
    info!(%addr, "serving the reconciler");
    let server = reconciler::serve(reconciler, addr, signal);
    tokio::pin!(server);
    let drained = async {
        let _ = stopped.wait_for(|stopping| *stopping).await;
        info!(drain = ?DRAIN, "shutting down: finishing in-flight reconciles");
        tokio::time::sleep(DRAIN).await;
    };
    tokio::select! {
        result = &mut server => result,
        () = drained => {
            warn!(drain = ?DRAIN, "in-flight reconciles outlasted the drain: stopping without them (their keys run again)");
            Ok(())
        }
    }
}

/// Serves `/metrics` on `METRICS_PORT` (default 2112) while the process lives. Metrics are not
/// worth failing a reconciler for: a port that cannot be had is a warning.
fn serve_metrics_in_background(setup: &Setup) {
    let port = std::env::var("METRICS_PORT").ok().filter(|v| !v.is_empty());
    let deployed = std::env::var_os("PORT").is_some();
    let addr = match metrics_addr(port.as_deref(), deployed) {
        Ok(addr) => addr,
        Err(e) => {
            warn!(error = e, "not serving /metrics");
            return;
        }
    };
    let metrics = setup.clients.metrics().clone();
    tokio::spawn(async move {
        let served = match tokio::net::TcpListener::bind(addr).await {
            Ok(listener) => {
                info!(%addr, "serving /metrics");
                serve_metrics(listener, metrics, std::future::pending()).await
            }
            Err(e) => Err(e),
        };
        if let Err(e) = served {
            warn!(%addr, error = %e, "not serving /metrics");
        }
    });
}

/// `0.0.0.0:$PORT` when `PORT` is set (Cloud Run), else `127.0.0.1:8080`.
fn listen_addr() -> Result<SocketAddr, SetupError> {
    match std::env::var("PORT").ok().filter(|v| !v.is_empty()) {
        Some(port) => {
            let port: u16 = port.parse().map_err(|_| SetupError::Port(port.clone()))?;
            Ok(SocketAddr::from(([0, 0, 0, 0], port)))
        }
        None => Ok(SocketAddr::from(LOCAL_ADDR)),
    }
}

/// Reconciles each key once, printing what the queue would do with it.
async fn run_once<R: GitHubReconciler>(reconciler: &GitHub<R>, keys: &[String]) -> ExitCode {
    let mut failed = false;
    for key in keys {
        match reconciler.reconcile(key, 0).await {
            Ok(action) => println!("{key}: {}", describe(&action)),
            Err(ReconcileError::NonRetriable(message)) => {
                failed = true;
                println!("{key}: dropped (not retriable): {message}");
            }
            Err(ReconcileError::Retriable(e)) => {
                failed = true;
                println!(
                    "{key}: failed (would retry): {}",
                    reconciler::error_chain(&*e)
                );
            }
        }
    }
    let counts = reconciler.clients().counts();
    println!(
        "GitHub requests: {} reads ({} answered 304), {} writes, {} rate-limited",
        counts.reads, counts.not_modified, counts.writes, counts.rate_limited
    );
    if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

fn describe(action: &Action) -> String {
    let mut text = match action.requeue() {
        None => "done".to_owned(),
        Some(Requeue::After(delay)) => format!("requeue after {delay:?}"),
        Some(Requeue::Floor(delay)) => format!("requeue no sooner than {delay:?}"),
    };
    for queued in action.queue_keys() {
        text.push_str(&format!("; enqueue {}", queued.key));
    }
    text
}

/// JSON lines on stdout for Cloud Logging (each reconcile's line carries `key` and `sha` as
/// top-level fields); readable text on stderr for a run on the command line. `RUST_LOG`
/// filters (default `info`).
fn init_logs(local: bool) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let logs = tracing_subscriber::fmt().with_env_filter(filter);
    let _ = if local {
        logs.with_writer(std::io::stderr).try_init()
    } else {
        logs.json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(false)
            .try_init()
    };
}

/// SIGTERM (Cloud Run stopping an instance) or Ctrl-C.
async fn shutdown_signal() {
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        () = terminate => {}
    }
}
