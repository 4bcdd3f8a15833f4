//! The queue's cost on GCS, measured on the emulator (fake-gcs-server from `.venv`, as
//! `scripts/test` installs it), beside the reference's layout (docs/architecture.md, "What each
//! step costs") computed from its rules. `cargo bench --bench gcs` prints Markdown (the README's
//! figures).
//!
//! * operations per processed key, by kind, counted at the storage seam;
//! * list pages per dispatch pass with 1k, 10k and 100k keys queued;
//! * keys per second through `reconcilers dev --storage gs://...`, enqueued over gRPC and
//!   reconciled by a reconciler served here.

use std::collections::HashSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use reconciler::proto::ProcessRequest;
use reconciler::proto::workqueue_service_client::WorkqueueServiceClient;
use reconciler::{Action, ReconcileError, Reconciler, serve};
use tokio_util::sync::CancellationToken;
use workqueue::conformance::Emulator;
use workqueue::storage::{CountingStorage, GcsStorage, MemoryStorage, OpCounts};
use workqueue::{Dispatcher, DispatcherConfig, Queue, QueueConfig};

struct Count(AtomicUsize, Mutex<HashSet<String>>);

#[async_trait]
impl Reconciler for Count {
    async fn reconcile(&self, key: &str, _priority: i64) -> Result<Action, ReconcileError> {
        self.1.lock().unwrap().insert(key.to_owned());
        self.0.fetch_add(1, Ordering::SeqCst);
        Ok(Action::done())
    }
}

fn config() -> DispatcherConfig {
    DispatcherConfig {
        concurrency: 32,
        batch_size: 32,
        poll_interval: Duration::from_millis(50),
        pass_interval: Duration::from_millis(5),
        shutdown_timeout: Duration::from_secs(5),
    }
}

async fn bucket(emulator: &Emulator) -> Arc<CountingStorage> {
    let name = emulator.bucket().await;
    let gcs = GcsStorage::emulator(&emulator.endpoint, &name, "")
        .await
        .expect("connect");
    Arc::new(CountingStorage::new(Arc::new(gcs)))
}

/// Enqueues `n` keys, drains them through a dispatcher, and returns the operations per key.
async fn per_key(emulator: &Emulator, n: usize) -> OpCounts {
    let storage = bucket(emulator).await;
    let queue = Queue::new(storage.clone(), QueueConfig::default());
    for i in 0..n {
        queue
            .enqueue(
                &format!("https://github.com/o/r/pull/{i}"),
                100,
                Duration::ZERO,
            )
            .await
            .unwrap();
    }
    let count = Arc::new(Count(AtomicUsize::new(0), Mutex::default()));
    let dispatcher = Dispatcher::new(queue.clone(), count.clone(), config());
    let shutdown = CancellationToken::new();
    let running = tokio::spawn(dispatcher.run(shutdown.clone()));
    while count.0.load(Ordering::SeqCst) < n
        || !queue.snapshot().await.unwrap().in_progress.is_empty()
    {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    shutdown.cancel();
    running.await.unwrap();
    storage.counts()
}

/// What dispatch passes cost with `n` keys queued (none due, so passes only look).
struct PassCost {
    /// List pages of the first pass of a fresh process, which lists everything once.
    warm_up_pages: u64,
    /// List pages per pass after that, averaged over [`PASSES`] passes.
    pages: f64,
    /// Wall time per pass after that.
    millis: f64,
}

/// How many passes the steady state is averaged over.
const PASSES: u32 = 200;

async fn pass_cost(storage: Arc<CountingStorage>, n: usize) -> PassCost {
    let queue = Queue::new(storage.clone(), QueueConfig::default());
    let mut writers = Vec::new();
    for w in 0..32 {
        let queue = queue.clone();
        writers.push(tokio::spawn(async move {
            for i in (w..n).step_by(32) {
                queue
                    .enqueue(&format!("key-{i:06}"), 0, Duration::from_secs(3600))
                    .await
                    .unwrap();
            }
        }));
    }
    for writer in writers {
        writer.await.unwrap();
    }
    // A dispatcher in another process: its view starts empty.
    let dispatcher = Queue::new(storage.clone(), QueueConfig::default());
    let before = storage.counts();
    let pass = dispatcher.start(32, 32).await.unwrap().view;
    assert_eq!(pass.queued, n);
    let warm_up_pages = storage.counts().since(before).list_pages;
    let before = storage.counts();
    let started = Instant::now();
    for _ in 0..PASSES {
        let pass = dispatcher.start(32, 32).await.unwrap().view;
        assert_eq!(pass.waiting, n);
    }
    let millis = started.elapsed().as_secs_f64() * 1000.0 / f64::from(PASSES);
    let pages = storage.counts().since(before).list_pages as f64 / f64::from(PASSES);
    PassCost {
        warm_up_pages,
        pages,
        millis,
    }
}

/// Keys per second through `reconcilers dev` on a bucket.
async fn through_dev(emulator: &Emulator, n: usize) -> f64 {
    let name = emulator.bucket().await;
    let reconciler_addr = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let count = Arc::new(Count(AtomicUsize::new(0), Mutex::default()));
    let stop = CancellationToken::new();
    let serving = tokio::spawn(serve(count.clone(), reconciler_addr, {
        let stop = stop.clone();
        async move { stop.cancelled().await }
    }));
    let port = |_| {
        std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .to_string()
    };
    let (http, grpc) = (port(0), port(1));
    let mut dev = std::process::Command::new(env!("CARGO_BIN_EXE_reconcilers"))
        .args([
            "dev",
            "--storage",
            &format!("gs://{name}"),
            "--listen",
            &http,
            "--grpc-listen",
            &grpc,
        ])
        .args([
            "--reconciler",
            &format!("http://{reconciler_addr}"),
            "--concurrency",
            "32",
        ])
        .args(["--pass-interval", "5ms", "--poll-interval", "100ms"])
        .env("STORAGE_EMULATOR_HOST", &emulator.endpoint)
        .env("RUST_LOG", "warn")
        .spawn()
        .expect("start reconcilers dev");
    let client = loop {
        match WorkqueueServiceClient::connect(format!("http://{grpc}")).await {
            Ok(client) => break client,
            Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    };
    let start = Instant::now();
    let mut senders = Vec::new();
    for s in 0..16 {
        let mut client = client.clone();
        senders.push(tokio::spawn(async move {
            for i in (s..n).step_by(16) {
                let request = ProcessRequest {
                    key: format!("dev-{i}"),
                    priority: 0,
                    delay_seconds: 0,
                };
                client.process(request).await.unwrap();
            }
        }));
    }
    for sender in senders {
        sender.await.unwrap();
    }
    while count.1.lock().unwrap().len() < n {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let rate = n as f64 / start.elapsed().as_secs_f64();
    let _ = dev.kill();
    let _ = dev.wait();
    stop.cancel();
    let _ = serving.await;
    rate
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let emulator = Emulator::start().await;
    let keys = 500;
    let ours = per_key(&emulator, keys).await;
    let k = keys as f64;
    println!(
        "Operations per processed key ({keys} keys, enqueue to completion, on the emulator):\n"
    );
    println!("| layout | create | replace/copy | delete | get | list pages | mutations |");
    println!("|---|---|---|---|---|---|---|");
    println!(
        "| ours (measured) | {:.2} | {:.2} | {:.2} | {:.2} | {:.3} | {:.2} |",
        ours.create as f64 / k,
        ours.replace as f64 / k,
        ours.delete as f64 / k,
        ours.get as f64 / k,
        ours.list_pages as f64 / k,
        ours.mutations() as f64 / k
    );
    // The reference's layout: create queued/<key>; claim = copy to in-progress/<key> + delete the
    // queued object; at least one lease metadata update; complete = delete in-progress/<key>. Ours
    // includes the capacity slots (created once per process and given back at shutdown).
    println!(
        "| reference (from its rules) | 1 | 2 (copy, lease update) | 2 | 0 | a full listing per pass | 5 |"
    );
    println!();
    println!("List pages read by one dispatch pass ({PASSES} passes averaged):\n");
    println!(
        "| keys queued | ours: pages per pass | ours: ms per pass | ours: first pass of a new process | reference: pages per pass | ratio |"
    );
    println!("|---|---|---|---|---|---|");
    for n in [1_000, 10_000, 100_000] {
        // The emulator's in-memory backend slows down more than linearly as a bucket grows,
        // so 100,000 keys go through the same seam (same 1,000-object pages) in memory.
        let (cost, on) = if n <= 10_000 {
            (pass_cost(bucket(&emulator).await, n).await, "emulator")
        } else {
            let memory = Arc::new(CountingStorage::new(Arc::new(MemoryStorage::new())));
            (pass_cost(memory, n).await, "memory://")
        };
        let reference = n.div_ceil(1000) as f64;
        println!(
            "| {n} ({on}) | {:.2} | {:.1} | {} | {reference} | {:.3} |",
            cost.pages,
            cost.millis,
            cost.warm_up_pages,
            cost.pages / reference
        );
    }
    println!();
    let rate = through_dev(&emulator, 2_000).await;
    println!(
        "Through `reconcilers dev --storage gs://` (2,000 keys over gRPC, concurrency 32): {rate:.0} keys/s"
    );
}
