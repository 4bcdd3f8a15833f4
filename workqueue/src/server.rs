//! Serving HTTP and gRPC on their addresses, on one port when both name the same address
//! (Cloud Run gives a container one port), until shutdown, then draining open requests for a
//! bounded time.

use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use axum::Router;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

/// Serves `http` and `grpc` (an axum router made from tonic routes) until `shutdown` fires,
/// then lets open requests finish for up to `drain` and stops waiting for what is left (it
/// ends with the process). Binding happens before this returns its future's first poll
/// result, so a busy port is an immediate error.
pub async fn serve(
    http: Option<(SocketAddr, Router)>,
    grpc: Option<(SocketAddr, Router)>,
    shutdown: CancellationToken,
    drain: Duration,
) -> io::Result<()> {
    let servers: Vec<(SocketAddr, Router, &str)> = match (http, grpc) {
        (Some((h, http)), Some((g, grpc))) if h == g => vec![(h, http.merge(grpc), "http+grpc")],
        (http, grpc) => http
            .map(|(a, r)| (a, r, "http"))
            .into_iter()
            .chain(grpc.map(|(a, r)| (a, r, "grpc")))
            .collect(),
    };
    let mut bound = Vec::new();
    for (addr, router, what) in servers {
        let listener = TcpListener::bind(addr).await.map_err(|e| {
            io::Error::new(
                e.kind(),
                format!("failed to listen on {addr} ({what}): {e}"),
            )
        })?;
        info!(addr = %listener.local_addr()?, serves = what, "listening");
        bound.push((listener, router));
    }
    let mut tasks = tokio::task::JoinSet::new();
    for (listener, router) in bound {
        let shutdown = shutdown.clone();
        tasks.spawn(async move {
            axum::serve(listener, router)
                .with_graceful_shutdown(async move { shutdown.cancelled().await })
                .await
        });
    }
    let mut drain_until = None;
    loop {
        let drained = async {
            match drain_until {
                Some(at) => tokio::time::sleep_until(at).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            done = tasks.join_next() => match done {
                Some(done) => done.map_err(io::Error::other)??,
                None => return Ok(()),
            },
            () = shutdown.cancelled(), if drain_until.is_none() => {
                drain_until = Some(tokio::time::Instant::now() + drain);
            }
            () = drained => {
                warn!(?drain, "requests still open at the shutdown deadline: no longer waiting for them");
                tasks.abort_all();
                return Ok(());
            }
        }
    }
}
