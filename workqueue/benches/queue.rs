//! Queue throughput, latency and storage cost per key on `memory://` and `file://`.
//!
//! `cargo bench -p workqueue --bench queue` prints a Markdown table (the README's figures).
//! Everything runs in one process with an in-process reconciler that does nothing, so the
//! figures are the queue's own cost: storage operations (counted at the seam), fsyncs for
//! `file://`, and the dispatcher's passes.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use reconciler::{Action, ReconcileError, Reconciler};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use workqueue::storage::{CountingStorage, DirStorage, MemoryStorage, OpCounts, Storage};
use workqueue::{Dispatcher, DispatcherConfig, Queue, QueueConfig};

const KEYS: usize = 2000;
const CONCURRENCY: usize = 32;

struct Count(Arc<AtomicUsize>, Option<mpsc::UnboundedSender<()>>);

#[async_trait]
impl Reconciler for Count {
    async fn reconcile(&self, _key: &str, _priority: i64) -> Result<Action, ReconcileError> {
        self.0.fetch_add(1, Ordering::SeqCst);
        if let Some(done) = &self.1 {
            let _ = done.send(());
        }
        Ok(Action::done())
    }
}

fn per_key(counts: OpCounts, keys: usize) -> String {
    let k = keys as f64;
    format!(
        "{:.2} create, {:.2} replace, {:.2} delete, {:.2} get, {:.3} list pages ({:.2} mutations)",
        counts.create as f64 / k,
        counts.replace as f64 / k,
        counts.delete as f64 / k,
        counts.get as f64 / k,
        counts.list_pages as f64 / k,
        counts.mutations() as f64 / k
    )
}

fn dispatcher_config() -> DispatcherConfig {
    DispatcherConfig {
        concurrency: CONCURRENCY,
        batch_size: CONCURRENCY,
        poll_interval: Duration::from_millis(20),
        pass_interval: Duration::from_millis(1),
        shutdown_timeout: Duration::from_secs(5),
    }
}

struct Figures {
    enqueue_serial: f64,
    enqueue_parallel: f64,
    cycle: f64,
    enqueue_ops: OpCounts,
    dispatch_ops: OpCounts,
    latency_p50: Duration,
    latency_p99: Duration,
}

async fn measure(storage: Arc<dyn Storage>) -> Figures {
    let counting = Arc::new(CountingStorage::new(storage));
    let queue = Queue::new(counting.clone(), QueueConfig::default());

    // Enqueue: one at a time, then 16 concurrent clients.
    let start = Instant::now();
    for i in 0..KEYS / 2 {
        queue
            .enqueue(&format!("serial-{i}"), 0, Duration::ZERO)
            .await
            .unwrap();
    }
    let enqueue_serial = (KEYS / 2) as f64 / start.elapsed().as_secs_f64();
    let start = Instant::now();
    let mut clients = Vec::new();
    for c in 0..16 {
        let queue = queue.clone();
        clients.push(tokio::spawn(async move {
            for i in (c..KEYS / 2).step_by(16) {
                queue
                    .enqueue(&format!("parallel-{i}"), 0, Duration::ZERO)
                    .await
                    .unwrap();
            }
        }));
    }
    for client in clients {
        client.await.unwrap();
    }
    let enqueue_parallel = (KEYS / 2) as f64 / start.elapsed().as_secs_f64();
    let enqueue_ops = counting.counts();

    // Full cycle: dispatch every queued key through a reconciler that does nothing.
    let done = Arc::new(AtomicUsize::new(0));
    let dispatcher = Dispatcher::new(
        queue.clone(),
        Arc::new(Count(done.clone(), None)),
        dispatcher_config(),
    );
    let shutdown = CancellationToken::new();
    let start = Instant::now();
    let running = tokio::spawn(dispatcher.run(shutdown.clone()));
    while done.load(Ordering::SeqCst) < KEYS {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let cycle = KEYS as f64 / start.elapsed().as_secs_f64();
    // Let the last completions land before counting.
    while !queue.snapshot().await.unwrap().in_progress.is_empty() {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let dispatch_ops = counting.counts().since(enqueue_ops);
    shutdown.cancel();
    running.await.unwrap();

    // Latency when idle: enqueue one key (with the receiver's nudge) and wait for its run.
    let (tx, mut rx) = mpsc::unbounded_channel();
    let dispatcher = Dispatcher::new(
        queue.clone(),
        Arc::new(Count(Arc::new(AtomicUsize::new(0)), Some(tx))),
        dispatcher_config(),
    );
    let trigger = dispatcher.trigger();
    let shutdown = CancellationToken::new();
    let running = tokio::spawn(dispatcher.run(shutdown.clone()));
    tokio::time::sleep(Duration::from_millis(50)).await;
    let mut latencies = Vec::new();
    for i in 0..200 {
        let start = Instant::now();
        queue
            .enqueue(&format!("latency-{i}"), 0, Duration::ZERO)
            .await
            .unwrap();
        trigger.fire();
        rx.recv().await.unwrap();
        latencies.push(start.elapsed());
        // Idle between keys, as the figure claims.
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    shutdown.cancel();
    running.await.unwrap();
    latencies.sort();
    Figures {
        enqueue_serial,
        enqueue_parallel,
        cycle,
        enqueue_ops,
        dispatch_ops,
        latency_p50: latencies[latencies.len() / 2],
        latency_p99: latencies[latencies.len() * 99 / 100],
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let dir = tempfile::tempdir().unwrap();
    let backends: Vec<(&str, Arc<dyn Storage>)> = vec![
        ("memory://", Arc::new(MemoryStorage::new())),
        (
            "file://",
            Arc::new(DirStorage::open(dir.path().to_owned()).await.unwrap()),
        ),
    ];
    println!(
        "| backend | enqueue, 1 client | enqueue, 16 clients | full cycle ({KEYS} keys, concurrency {CONCURRENCY}) | idle enqueue→reconcile p50 / p99 |"
    );
    println!("|---|---|---|---|---|");
    let mut costs = Vec::new();
    for (name, storage) in backends {
        let f = measure(storage).await;
        println!(
            "| `{name}` | {:.0} keys/s | {:.0} keys/s | {:.0} keys/s | {:.2} ms / {:.2} ms |",
            f.enqueue_serial,
            f.enqueue_parallel,
            f.cycle,
            f.latency_p50.as_secs_f64() * 1e3,
            f.latency_p99.as_secs_f64() * 1e3
        );
        costs.push((name, f.enqueue_ops, f.dispatch_ops));
    }
    println!();
    println!("Storage operations per processed key, counted at the seam:");
    for (name, enqueue, dispatch) in costs {
        println!("* `{name}` enqueue: {}", per_key(enqueue, KEYS));
        println!("* `{name}` claim + complete: {}", per_key(dispatch, KEYS));
    }
}
