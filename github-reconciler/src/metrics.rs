//! A reconciler's own metrics, as Prometheus text on `/metrics`: GitHub calls (reads, 304s,
//! writes, rate limits) and reconciles by outcome.
//!
//! Served on a port of its own (`METRICS_PORT`, default 2112) rather than beside gRPC on
//! `PORT`: Cloud Run routes `PORT` as HTTP/2 to the reconciler, while a Prometheus scraper
//! (a sidecar on the same instance) speaks HTTP/1.1 to `localhost`.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::registry::Registry;

use crate::client::RequestCounts;

/// The port `/metrics` is served on when `METRICS_PORT` is not set.
pub const DEFAULT_METRICS_PORT: u16 = 2112;

const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// How a reconcile ended, as its log line and its metric name it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// The reconciler answered an action (done, or a requeue it asked for).
    Done,
    /// A GitHub rate limit: the key is snoozed until it lifts.
    RateLimited,
    /// Not retriable: the key is dropped.
    Dropped,
    /// Failed: the key is retried with backoff.
    Failed,
}

impl Outcome {
    /// Its name in logs and in the `outcome` label.
    pub(crate) fn label(self) -> &'static str {
        match self {
            Self::Done => "done",
            Self::RateLimited => "rate_limited",
            Self::Dropped => "dropped",
            Self::Failed => "failed",
        }
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabels {
    outcome: &'static str,
}

/// The counters of one reconciler (shared by all its clients); cheap to clone.
#[derive(Clone, Debug, Default)]
pub struct Metrics {
    reads: Counter,
    not_modified: Counter,
    writes: Counter,
    rate_limited: Counter,
    reconciles: Family<OutcomeLabels, Counter>,
}

impl Metrics {
    /// Counts one GitHub call answered: a read (GET) or a write.
    pub(crate) fn answered(&self, read: bool) {
        if read { &self.reads } else { &self.writes }.inc();
    }

    /// Counts a read answered 304 from a remembered answer.
    pub(crate) fn not_modified(&self) {
        self.not_modified.inc();
    }

    /// Counts a call answered with a rate limit.
    pub(crate) fn rate_limited(&self) {
        self.rate_limited.inc();
    }

    /// Counts a reconcile that ended with `outcome`.
    pub(crate) fn reconciled(&self, outcome: Outcome) {
        self.reconciles
            .get_or_create(&OutcomeLabels {
                outcome: outcome.label(),
            })
            .inc();
    }

    /// The GitHub calls counted so far.
    pub fn counts(&self) -> RequestCounts {
        RequestCounts {
            reads: self.reads.get(),
            not_modified: self.not_modified.get(),
            writes: self.writes.get(),
            rate_limited: self.rate_limited.get(),
        }
    }

    /// Adds these counters to `registry`: `github_api_reads_total`,
    /// `github_api_not_modified_total`, `github_api_writes_total`,
    /// `github_api_rate_limited_total` and `reconciles_total{outcome}`.
    pub fn register(&self, registry: &mut Registry) {
        registry.register(
            "github_api_reads",
            "GitHub API reads (GETs) answered, 304s included",
            self.reads.clone(),
        );
        registry.register(
            "github_api_not_modified",
            "GitHub API reads answered 304 from a remembered answer (free of rate limit)",
            self.not_modified.clone(),
        );
        registry.register(
            "github_api_writes",
            "GitHub API writes (POSTs, PATCHes) answered",
            self.writes.clone(),
        );
        registry.register(
            "github_api_rate_limited",
            "GitHub API calls answered with a rate limit (each snoozes its key)",
            self.rate_limited.clone(),
        );
        registry.register(
            "reconciles",
            "Reconciles by outcome: done, rate_limited (snoozed), dropped, failed (retried)",
            self.reconciles.clone(),
        );
    }

    /// The counters as OpenMetrics text, as `/metrics` serves them.
    pub fn render(&self) -> String {
        let mut registry = Registry::default();
        self.register(&mut registry);
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &registry)
            .expect("writing to a String cannot fail");
        out
    }
}

/// Serves `GET /metrics` (and `GET /healthz`) on `listener` until `shutdown` completes.
pub async fn serve_metrics(
    listener: tokio::net::TcpListener,
    metrics: Arc<Metrics>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let router = Router::new()
        .route("/metrics", get(render))
        .route("/healthz", get(|| async { "ok" }))
        .with_state(metrics);
    axum::serve(listener, router)
        .with_graceful_shutdown(shutdown)
        .await
}

async fn render(State(metrics): State<Arc<Metrics>>) -> impl IntoResponse {
    ([(header::CONTENT_TYPE, CONTENT_TYPE)], metrics.render())
}

/// The address `/metrics` is served on: `METRICS_PORT` (default 2112), on every interface
/// when `deployed` (`PORT` set), else on loopback.
pub(crate) fn metrics_addr(port: Option<&str>, deployed: bool) -> Result<SocketAddr, String> {
    let port = match port {
        Some(port) => port
            .parse::<u16>()
            .map_err(|_| format!("METRICS_PORT is {port:?}, not a port number"))?,
        None => DEFAULT_METRICS_PORT,
    };
    let ip = if deployed {
        [0, 0, 0, 0]
    } else {
        [127, 0, 0, 1]
    };
    Ok(SocketAddr::from((ip, port)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn render_should_name_every_counter() {
        let metrics = Metrics::default();
        metrics.answered(true);
        metrics.not_modified();
        metrics.rate_limited();
        metrics.reconciled(Outcome::RateLimited);
        let text = metrics.render();
        for line in [
            "github_api_reads_total 1",
            "github_api_not_modified_total 1",
            "github_api_writes_total 0",
            "github_api_rate_limited_total 1",
            "reconciles_total{outcome=\"rate_limited\"} 1",
        ] {
            assert!(text.contains(line), "{line} in {text}");
        }
    }

    #[test]
    fn the_metrics_port_should_default_and_follow_the_deployment() {
        assert_eq!(
            metrics_addr(None, false).unwrap(),
            SocketAddr::from(([127, 0, 0, 1], 2112))
        );
        assert_eq!(
            metrics_addr(Some("9090"), true).unwrap(),
            SocketAddr::from(([0, 0, 0, 0], 9090))
        );
        assert!(
            metrics_addr(Some("x"), true)
                .unwrap_err()
                .contains("METRICS_PORT")
        );
    }
}
