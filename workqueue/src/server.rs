//! Serving HTTP and gRPC on their addresses, on one port when both name the same address
//! (Cloud Run gives a container one port), until shutdown.

use std::io;
use std::net::SocketAddr;

use axum::Router;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tracing::info;

/// Serves `http` and `grpc` (an axum router made from tonic routes) until `shutdown` fires.
/// Binding happens before this returns its future's first poll result, so a busy port is an
/// immediate error.
pub async fn serve(
    http: Option<(SocketAddr, Router)>,
    grpc: Option<(SocketAddr, Router)>,
    shutdown: CancellationToken,
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
    while let Some(done) = tasks.join_next().await {
        done.map_err(io::Error::other)??;
    }
    Ok(())
}
