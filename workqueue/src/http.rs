//! The HTTP side of every long-running process: `/healthz`, `/metrics`, and (for a
//! dispatcher) the trigger that Pub/Sub push and Cloud Scheduler call.

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use prometheus_client::registry::Registry;

use crate::dispatcher::Trigger;
use crate::metrics::render;

const METRICS_CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

#[derive(Clone)]
struct AppState {
    registry: Arc<Registry>,
    trigger: Option<Trigger>,
}

/// The router: `GET /healthz`, `GET /metrics`, and `GET|POST /` to trigger a dispatch pass
/// when `trigger` is given; a POSTed bucket notification also updates the dispatcher's view
/// (the answer is always an empty 200, so Pub/Sub acks it).
pub fn router(registry: Arc<Registry>, trigger: Option<Trigger>) -> Router {
    let mut router = Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/metrics", get(metrics));
    if trigger.is_some() {
        router = router.route("/", get(fire).post(fire));
    }
    router.with_state(AppState { registry, trigger })
}

async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, METRICS_CONTENT_TYPE)],
        render(&state.registry),
    )
}

async fn fire(State(state): State<AppState>, body: Bytes) -> StatusCode {
    if let Some(trigger) = &state.trigger {
        trigger.push(&body);
    }
    StatusCode::OK
}
