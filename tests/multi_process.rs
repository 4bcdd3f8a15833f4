//! One receiver and three dispatcher processes on one `file://` directory or `gs://` bucket, calling a
//! reconciler served by this test: no key runs twice at once, the global concurrency holds,
//! nothing is lost, and a dispatcher killed with SIGKILL mid-run loses no key.

mod common;

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use common::{TestStorage, counter, eventually, free_addr, http_get, serve_reconciler};
use reconciler::proto::ProcessRequest;
use reconciler::proto::workqueue_service_client::WorkqueueServiceClient;
use reconciler::{Action, ReconcileError, Reconciler};
use workqueue::conformance::Recorder;

const CONCURRENCY: usize = 4;

/// The runs of ordinary keys, recorded; and a key named `hang` whose first run hangs until its
/// dispatcher is killed.
struct Reconcilers {
    recorder: Recorder,
    hang_calls: AtomicUsize,
}

#[async_trait]
impl Reconciler for Reconcilers {
    async fn reconcile(&self, key: &str, priority: i64) -> Result<Action, ReconcileError> {
        if key != "hang" {
            return self.recorder.reconcile(key, priority).await;
        }
        if self.hang_calls.fetch_add(1, Ordering::SeqCst) == 0 {
            std::future::pending::<()>().await;
        }
        Ok(Action::done())
    }
}

async fn queue_is_empty(storage: &TestStorage) -> bool {
    let snapshot = storage.queue().await.snapshot().await.unwrap();
    snapshot.queued.is_empty() && snapshot.in_progress.is_empty()
}

async fn running_owner(storage: &TestStorage) -> Option<String> {
    let snapshot = storage.queue().await.snapshot().await.unwrap();
    snapshot
        .in_progress
        .first()
        .map(|run| run.record.owner.clone())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn dispatchers_should_share_a_directory_safely_and_survive_sigkill() {
    dispatchers_should_share_storage_safely_and_survive_sigkill(TestStorage::dir()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn dispatchers_should_share_a_bucket_safely_and_survive_sigkill() {
    dispatchers_should_share_storage_safely_and_survive_sigkill(TestStorage::gcs().await).await;
}

async fn dispatchers_should_share_storage_safely_and_survive_sigkill(backend: TestStorage) {
    let storage = backend.url();
    let watch = Arc::new(Reconcilers {
        recorder: Recorder::new(Duration::from_millis(40)),
        hang_calls: AtomicUsize::new(0),
    });
    let reconciler_addr = free_addr();
    let serving = serve_reconciler(watch.clone(), reconciler_addr);

    let (receiver_http, receiver_grpc) = (free_addr(), free_addr());
    let mut receiver = backend.receiver("receiver", receiver_http, receiver_grpc);
    let reconciler_url = format!("http://{reconciler_addr}");
    let mut dispatchers = Vec::new();
    for i in 0..3 {
        let http = free_addr();
        let proc = backend.reconcilers(
            &format!("dispatcher-{i}"),
            &[
                "dispatcher",
                "--storage",
                &storage,
                "--reconciler",
                &reconciler_url,
                "--listen",
                &http.to_string(),
                "--concurrency",
                &CONCURRENCY.to_string(),
                "--batch-size",
                "3",
                "--lease",
                "5s",
                "--poll-interval",
                "50ms",
                "--pass-interval",
                "10ms",
                "--max-retry",
                "0",
            ],
        );
        dispatchers.push((http, proc));
    }
    receiver.wait_healthy(receiver_http).await;
    for (http, proc) in &mut dispatchers {
        proc.wait_healthy(*http).await;
    }

    let mut client = WorkqueueServiceClient::connect(format!("http://{receiver_grpc}"))
        .await
        .unwrap();
    let mut distinct = HashSet::new();
    for i in 0..90 {
        let key = format!("key-{}", i % 70);
        distinct.insert(key.clone());
        client
            .process(ProcessRequest {
                key,
                priority: i % 4,
                delay_seconds: 0,
            })
            .await
            .unwrap();
        // A burst first, so that demand stays over the limit a while; then a trickle.
        if i >= 30 {
            tokio::time::sleep(Duration::from_millis(3)).await;
        }
    }
    eventually(
        "every key to run once and the queue to drain",
        Duration::from_secs(90),
        async || {
            let ran = watch.recorder.ran();
            (ran == distinct && queue_is_empty(&backend).await).then_some(())
        },
    )
    .await;
    let max = watch.recorder.max_in_flight();
    assert!(
        max <= CONCURRENCY,
        "{max} keys ran at once with a global limit of {CONCURRENCY}"
    );
    assert!(
        max >= 2,
        "keys should run concurrently (max in flight {max})"
    );
    assert_eq!(watch.recorder.overlaps(), 0, "a key ran twice at once");

    // Kill the dispatcher that runs a key, mid-run.
    client
        .process(ProcessRequest {
            key: "hang".into(),
            priority: 0,
            delay_seconds: 0,
        })
        .await
        .unwrap();
    let owner = eventually(
        "the hanging key to start",
        Duration::from_secs(30),
        async || {
            if watch.hang_calls.load(Ordering::SeqCst) == 0 {
                return None;
            }
            running_owner(&backend).await
        },
    )
    .await;
    let pid: u32 = owner
        .rsplit('-')
        .nth(1)
        .and_then(|p| p.parse().ok())
        .expect("owner names a pid");
    let victim = dispatchers
        .iter()
        .position(|(_, p)| p.pid() == pid)
        .expect("the owner is one of ours");
    let (_, mut killed) = dispatchers.remove(victim);
    killed.signal(9);
    killed.wait_exit(Duration::from_secs(10));

    eventually(
        "the killed dispatcher's key to be recovered and completed",
        Duration::from_secs(30),
        async || {
            (watch.hang_calls.load(Ordering::SeqCst) >= 2 && queue_is_empty(&backend).await)
                .then_some(())
        },
    )
    .await;
    assert_eq!(
        watch.hang_calls.load(Ordering::SeqCst),
        2,
        "recovered once, run once more"
    );
    let mut expired = 0;
    for (http, _) in &dispatchers {
        let (_, metrics) = http_get(*http, "/metrics").await.expect("metrics");
        expired += counter(&metrics, "workqueue_expired_leases_total")
            .expect("the expired leases counter");
    }
    assert_eq!(expired, 1, "one lapsed lease was recovered");

    // SIGTERM: the survivors exit cleanly.
    for (_, proc) in &mut dispatchers {
        proc.signal(15);
        assert!(
            proc.wait_exit(Duration::from_secs(15)).success(),
            "{} exited badly",
            proc.name
        );
    }
    serving.stop().await;
}
