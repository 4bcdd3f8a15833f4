//! The verify, parse and route path with arbitrary input: a delivery (signed, so the parser
//! and the routes are reached, or with arbitrary signature bytes) or a CloudEvent in any mode.
//! Nothing may panic, and every answer must be one the gateway documents.

#![no_main]

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use axum::body::Body;
use axum::http::Request;
use workqueue::client::LocalWorkqueue;
use gateway::metrics::GatewayMetrics;
use gateway::route::{Filter, KeyRule, Route, path_rule};
use gateway::signature::{Secrets, sign};
use gateway::{Gateway, GatewayConfig};
use libfuzzer_sys::fuzz_target;
use tower::ServiceExt;
use workqueue::storage::MemoryStorage;
use workqueue::{Queue, QueueConfig};

const SECRET: &[u8] = b"fuzz";
const EVENTS: [&str; 8] = [
    "pull_request",
    "pull_request_review",
    "issue_comment",
    "check_run",
    "check_suite",
    "push",
    "ping",
    "issues",
];
const CONTENT_TYPES: [&str; 4] = [
    "application/json",
    "application/x-www-form-urlencoded",
    "application/cloudevents+json",
    "application/cloudevents-batch+json",
];

struct Target {
    runtime: tokio::runtime::Runtime,
    router: axum::Router,
}

fn target() -> &'static Target {
    static TARGET: OnceLock<Target> = OnceLock::new();
    TARGET.get_or_init(|| {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        // The GitHub client starts a task of its own: it is made inside the runtime.
        let _inside = runtime.enter();
        let queue = Queue::new(Arc::new(MemoryStorage::new()), QueueConfig::default());
        let route = |name: &str, key| Route {
            name: name.to_owned(),
            filters: vec![Filter::default()],
            key,
            priority: 1,
            workqueue: None,
        };
        let gateway = Gateway::new(
            GatewayConfig {
                call_timeout: Duration::from_secs(1),
                ..GatewayConfig::new(
                    vec![
                        route("prs", KeyRule::Extension("pullrequesturl".into())),
                        route("paths", path_rule("o/r", &["^(.+)\\.yaml$"]).unwrap()),
                    ],
                    Arc::new(LocalWorkqueue::new(queue)),
                    Secrets::new([SECRET]),
                )
            },
            GatewayMetrics::default(),
        )
        .unwrap();
        let router = gateway::server::router(Arc::new(gateway));
        drop(_inside);
        Target { runtime, router }
    })
}

fuzz_target!(|data: &[u8]| {
    let Some((&selector, body)) = data.split_first() else {
        return;
    };
    let target = target();
    let request = if selector & 0x80 == 0 {
        let event = EVENTS[usize::from(selector) % EVENTS.len()];
        let content_type = CONTENT_TYPES[usize::from(selector >> 3) % 2];
        let signature = if selector & 0x40 == 0 {
            sign(SECRET, body)
        } else {
            String::from_utf8_lossy(&body[..body.len().min(71)]).into_owned()
        };
        Request::post("/webhook")
            .header("content-type", content_type)
            .header("x-github-event", event)
            .header("x-github-delivery", "fuzz")
            .header("x-hub-signature-256", signature)
            .body(Body::from(body.to_vec()))
    } else {
        let content_type = CONTENT_TYPES[usize::from(selector) % CONTENT_TYPES.len()];
        let mut builder = Request::post("/events").header("content-type", content_type);
        if selector & 0x40 != 0 {
            builder = builder
                .header("ce-specversion", "1.0")
                .header("ce-id", "1")
                .header("ce-source", "s")
                .header("ce-type", "dev.chainguard.github.push");
        }
        builder.body(Body::from(body.to_vec()))
    };
    let Ok(request) = request else { return };
    let response = target
        .runtime
        .block_on(target.router.clone().oneshot(request))
        .unwrap();
    let status = response.status().as_u16();
    assert!(
        matches!(status, 202 | 400 | 401 | 413),
        "undocumented answer {status}"
    );
});
