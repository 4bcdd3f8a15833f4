//! Idle latency through `reconcilers dev` on `file://`, with its default flags: from a key's
//! arrival to the reconcile call, for a gRPC enqueue and for a signed webhook delivery.
//!
//! `cargo bench --bench latency` starts the real binary (this build's) and a reconciler served
//! here with the SDK, then sends one key at a time and waits for its reconcile call. Each key
//! arrives at an idle system: the next one is sent [`GAP`] after the previous call, longer
//! than the dispatcher's pass interval, so no pass is pending when it lands. Prints Markdown
//! (docs/benchmarks.md). `LATENCY_KEYS=N` sets the keys per path (default 200).

#[path = "../tests/common/mod.rs"]
mod common;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use common::{TestStorage, free_addr, serve_reconciler};
use reconciler::{Action, ReconcileError, Reconciler};
use tokio::sync::Notify;
use workqueue::client::{Enqueue, RemoteWorkqueue};

/// The pause after a reconcile call before the next key is sent: the system is idle again.
const GAP: Duration = Duration::from_millis(150);
/// How long one key may take before the benchmark gives up.
const PATIENCE: Duration = Duration::from_secs(10);
const SECRET: &str = "latency-bench";

/// Records when each key's reconcile call arrived.
#[derive(Default)]
struct Arrivals {
    at: Mutex<HashMap<String, Instant>>,
    arrived: Notify,
}

#[async_trait]
impl Reconciler for Arrivals {
    async fn reconcile(&self, key: &str, _priority: i64) -> Result<Action, ReconcileError> {
        self.at
            .lock()
            .unwrap()
            .entry(key.to_owned())
            .or_insert_with(Instant::now);
        self.arrived.notify_waiters();
        Ok(Action::done())
    }
}

impl Arrivals {
    /// When `key`'s call arrived, waiting for it up to [`PATIENCE`].
    async fn wait_for(&self, key: &str) -> Instant {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let notified = self.arrived.notified();
            if let Some(at) = self.at.lock().unwrap().get(key) {
                return *at;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(
                !left.is_zero(),
                "no reconcile call for {key} within {PATIENCE:?}"
            );
            let _ = tokio::time::timeout(left, notified).await;
        }
    }
}

/// p50 and p99 of `samples`, in milliseconds.
fn percentiles(mut samples: Vec<Duration>) -> (f64, f64) {
    samples.sort();
    let at = |q: f64| {
        let i = ((samples.len() as f64 - 1.0) * q).round() as usize;
        samples[i].as_secs_f64() * 1000.0
    };
    (at(0.50), at(0.99))
}

/// A `pull_request` delivery for PR `n` of `o/r`, signed.
fn delivery(n: usize) -> (String, String) {
    let body = format!(
        r#"{{"action":"synchronize","number":{n},"pull_request":{{"number":{n}}},"repository":{{"full_name":"o/r","html_url":"https://github.com/o/r"}}}}"#
    );
    let signature = gateway::signature::sign(SECRET.as_bytes(), body.as_bytes());
    (body, signature)
}

/// Sends `keys` keys one at a time through `send` (which returns the key it sent), each at an
/// idle system; the latencies from send to reconcile call.
async fn measure<F, Fut>(arrivals: &Arrivals, keys: usize, mut send: F) -> Vec<Duration>
where
    F: FnMut(usize) -> Fut,
    Fut: Future<Output = String>,
{
    let mut samples = Vec::with_capacity(keys);
    for i in 0..keys {
        tokio::time::sleep(GAP).await;
        let started = Instant::now();
        let key = send(i).await;
        let arrived = arrivals.wait_for(&key).await;
        samples.push(arrived.duration_since(started));
    }
    samples
}

#[tokio::main]
async fn main() {
    let keys: usize = std::env::var("LATENCY_KEYS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(200);
    let storage = TestStorage::dir();
    let (http, grpc, reconciler_addr) = (free_addr(), free_addr(), free_addr());
    let arrivals = Arc::new(Arrivals::default());
    let serving = serve_reconciler(arrivals.clone(), reconciler_addr);
    let mut dev = storage.dev(http, grpc, reconciler_addr, &["--webhook-secret", SECRET]);
    dev.wait_healthy(http).await;

    let workqueue = RemoteWorkqueue::new(&format!("http://{grpc}"), PATIENCE).unwrap();
    let grpc_samples = measure(&arrivals, keys, |i| {
        let workqueue = &workqueue;
        async move {
            let key = format!("https://github.com/o/r/pull/{i}");
            workqueue
                .enqueue(&key, 100, Duration::ZERO)
                .await
                .expect("enqueue");
            key
        }
    })
    .await;

    let client = reqwest::Client::new();
    let webhook = format!("http://{http}/webhook");
    let webhook_samples = measure(&arrivals, keys, |i| {
        let (client, webhook) = (&client, &webhook);
        async move {
            let n = 100_000 + i;
            let (body, signature) = delivery(n);
            let answer = client
                .post(webhook)
                .header("content-type", "application/json")
                .header("x-github-event", "pull_request")
                .header("x-github-delivery", format!("bench-{n}"))
                .header("x-hub-signature-256", signature)
                .body(body)
                .send()
                .await
                .expect("deliver");
            assert_eq!(answer.status(), 202, "the delivery was taken");
            format!("https://github.com/o/r/pull/{n}")
        }
    })
    .await;

    dev.signal(15);
    dev.wait_exit(Duration::from_secs(10));
    serving.stop().await;

    println!(
        "| path (`reconcilers dev`, `file://`, default flags; {keys} keys each, {GAP:?} apart) | p50 | p99 |"
    );
    println!("|---|---|---|");
    for (path, samples) in [
        ("gRPC enqueue → reconcile call", grpc_samples),
        ("signed webhook → reconcile call", webhook_samples),
    ] {
        let (p50, p99) = percentiles(samples);
        println!("| {path} | {p50:.1} ms | {p99:.1} ms |");
    }
}
