//! CPU per delivery, in process: the whole path (verify, CloudEvent, route, enqueue into a
//! memory queue, the answer) beside its floor (docs/benchmarks.md: HMAC-SHA256 over the body plus a
//! typed parse), on real pull_request payloads of about 2.4 KB, 21 KB and 1 MB.
//!
//! `cargo bench -p gateway --bench delivery` prints a Markdown table (the README's figures).
//! Run it pinned to one core (`taskset -c 0`) for stable figures; `ONLY=21` runs one size.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::Request;
use gateway::metrics::GatewayMetrics;
use gateway::route::Route;
use gateway::signature::{Secrets, sign};
use gateway::{Gateway, GatewayConfig};
use hmac::{Hmac, Mac};
use sha2::Sha256;
use tower::ServiceExt;
use workqueue::client::LocalWorkqueue;
use workqueue::storage::MemoryStorage;
use workqueue::{Queue, QueueConfig};

/// The secret deliveries are signed with.
pub(crate) const SECRET: &str = "bench-secret";

/// The payloads: a small real one, a real pull_request, and that one grown to ~1 MB by a
/// long PR description (a real shape: bodies are where the size is).
pub(crate) fn payloads() -> Vec<(&'static str, &'static str, Vec<u8>)> {
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../fixtures/github/");
    let read = |path: &str| std::fs::read(format!("{root}{path}")).expect("fixture");
    let pr = read("pull_request/00-opened.json");
    let mut big: serde_json::Value = serde_json::from_slice(&pr).unwrap();
    big["pull_request"]["body"] = serde_json::Value::String("lorem ipsum ".repeat(87_000));
    vec![
        ("ping", "2.4 KB ping", read("ping/03-event.json")),
        ("pull_request", "21 KB pull_request", pr),
        (
            "pull_request",
            "1 MB pull_request",
            serde_json::to_vec(&big).unwrap(),
        ),
    ]
}

/// The floor: the HMAC over the body and a typed parse of the fields a router needs.
pub(crate) fn floor(body: &[u8], signature: &[u8]) -> bool {
    #[derive(serde::Deserialize)]
    struct Min<'a> {
        #[serde(borrow, default)]
        action: Option<&'a str>,
        #[serde(default)]
        number: Option<u64>,
    }
    let mut mac = Hmac::<Sha256>::new_from_slice(SECRET.as_bytes()).unwrap();
    mac.update(body);
    let expected = hex::decode(&signature[7..]).unwrap();
    let ok = mac.verify_slice(&expected).is_ok();
    let min: Min<'_> = serde_json::from_slice(body).unwrap();
    std::hint::black_box((min.action, min.number));
    ok
}

/// The gateway under test: one extension route into a memory queue.
pub(crate) fn router() -> axum::Router {
    let queue = Queue::new(Arc::new(MemoryStorage::new()), QueueConfig::default());
    let gateway = Gateway::new(
        GatewayConfig::new(
            vec![Route::extension("prs", "pullrequesturl")],
            Arc::new(LocalWorkqueue::new(queue)),
            Secrets::new([SECRET]),
        ),
        GatewayMetrics::default(),
    )
    .unwrap();
    gateway::server::router(Arc::new(gateway))
}

fn per_op(iterations: u32, mut op: impl FnMut()) -> Duration {
    for _ in 0..iterations.min(50) {
        op();
    }
    let start = Instant::now();
    for _ in 0..iterations {
        op();
    }
    start.elapsed() / iterations
}

/// Rounds of each measurement, interleaved so both sides see the same machine; the medians
/// are reported (a shared machine's noise moves single runs by 10-40%).
const ROUNDS: usize = 9;

fn median(mut times: Vec<Duration>) -> Duration {
    times.sort();
    times[times.len() / 2]
}

fn main() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let router = router();
    println!(
        "| payload | floor (HMAC + typed parse) | whole path in process | whole / floor | deliveries/s per core |"
    );
    println!("|---|---|---|---|---|");
    let only = std::env::var("ONLY").ok();
    for (event, name, body) in payloads() {
        if only.as_deref().is_some_and(|o| !name.contains(o)) {
            continue;
        }
        let signature = sign(SECRET.as_bytes(), &body);
        let iterations = (200_000_000 / body.len().max(1)).clamp(20, 20_000) as u32;
        let bytes = axum::body::Bytes::from(body.clone());
        let deliver = || {
            let request = Request::post("/webhook")
                .header("content-type", "application/json")
                .header("x-github-event", event)
                .header("x-github-delivery", "72d3162e-cc78-11e3-81ab-4c9367dc0958")
                .header("x-github-hook-id", "1")
                .header("x-hub-signature-256", signature.as_str())
                .body(Body::from(bytes.clone()))
                .unwrap();
            let response = runtime.block_on(router.clone().oneshot(request)).unwrap();
            assert_eq!(response.status(), 202);
        };
        let (mut floors, mut wholes) = (Vec::new(), Vec::new());
        for _ in 0..ROUNDS {
            floors.push(per_op(iterations / 4, || {
                assert!(floor(&body, signature.as_bytes()));
            }));
            wholes.push(per_op(iterations / 4, deliver));
        }
        let (floor_time, whole) = (median(floors), median(wholes));
        println!(
            "| {name} | {:.1} µs | {:.1} µs | {:.2} | {:.0} |",
            floor_time.as_secs_f64() * 1e6,
            whole.as_secs_f64() * 1e6,
            whole.as_secs_f64() / floor_time.as_secs_f64(),
            1.0 / whole.as_secs_f64()
        );
    }
}
