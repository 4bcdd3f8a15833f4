//! Shutdown is bounded whatever the storage does: `reconcilers dev` on a GCS emulator that no
//! longer answers (stopped with SIGSTOP), with keys in flight and capacity slots held, exits
//! within its shutdown timeout, and a second signal exits at once.

mod common;

use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use common::{Proc, TestStorage, eventually, free_addr, http_get, serve_reconciler};
use reconciler::{Action, ReconcileError, Reconciler};
use workqueue::client::{Enqueue, RemoteWorkqueue};

/// Counts its calls and never answers: every key stays in flight until shutdown.
struct Hang(Arc<AtomicUsize>);

#[async_trait]
impl Reconciler for Hang {
    async fn reconcile(&self, _key: &str, _priority: i64) -> Result<Action, ReconcileError> {
        self.0.fetch_add(1, Ordering::SeqCst);
        std::future::pending().await
    }
}

const KEYS: usize = 20;

/// Sends `signal` to process `pid`.
fn kill(signal: &str, pid: u32) {
    let status = Command::new("kill")
        .args([signal, &pid.to_string()])
        .status()
        .expect("run kill");
    assert!(status.success(), "kill {signal} {pid}");
}

/// `dev` on a fresh emulator bucket with [`KEYS`] keys in flight, the emulator then frozen;
/// the process, its HTTP address and the emulator's pid (to thaw it).
async fn dev_with_frozen_storage(
    storage: &TestStorage,
    calls: &Arc<AtomicUsize>,
    flags: &[&str],
) -> (Proc, std::net::SocketAddr, u32) {
    let TestStorage::Gcs { emulator, .. } = storage else {
        unreachable!("the storage is an emulator's bucket")
    };
    let (http, grpc, reconciler) = (free_addr(), free_addr(), free_addr());
    let served = serve_reconciler(Hang(calls.clone()), reconciler);
    let concurrency = KEYS.to_string();
    let mut args = vec!["--concurrency", &concurrency];
    args.extend(flags);
    let mut dev = storage.dev(http, grpc, reconciler, &args);
    dev.wait_healthy(http).await;
    let receiver =
        RemoteWorkqueue::new(&format!("http://{grpc}"), Duration::from_secs(10)).unwrap();
    for n in 0..KEYS {
        let key = format!("https://github.com/o/r/pull/{n}");
        receiver.enqueue(&key, 100, Duration::ZERO).await.unwrap();
    }
    eventually("every key in flight", Duration::from_secs(60), async || {
        (calls.load(Ordering::SeqCst) == KEYS).then_some(())
    })
    .await;
    // The reconciler goes on serving (its calls hang) until the test ends: not stopped, as
    // stopping would wait for those calls.
    drop(served);
    kill("-STOP", emulator.pid());
    (dev, http, emulator.pid())
}

#[tokio::test]
async fn shutdown_should_end_within_its_timeout_when_the_storage_stops_answering() {
    let storage = TestStorage::gcs().await;
    let calls = Arc::new(AtomicUsize::new(0));
    let timeout = Duration::from_secs(3);
    let (mut dev, _, emulator) =
        dev_with_frozen_storage(&storage, &calls, &["--shutdown-timeout", "3s"]).await;
    let stopping = Instant::now();
    dev.signal(15);
    let status = tokio::task::spawn_blocking(move || dev.wait_exit(Duration::from_secs(60)))
        .await
        .unwrap();
    let took = stopping.elapsed();
    kill("-CONT", emulator);
    assert!(
        status.success(),
        "the process stopped by itself, not by the backstop: {status}"
    );
    // The timeout, and the time a process takes to start stopping and to exit.
    assert!(
        took < timeout + Duration::from_secs(2),
        "stopped after {took:?}"
    );
}

#[tokio::test]
async fn a_second_signal_should_exit_at_once() {
    let storage = TestStorage::gcs().await;
    let calls = Arc::new(AtomicUsize::new(0));
    // A shutdown that would wait for the frozen storage for most of a minute.
    let (mut dev, http, emulator) =
        dev_with_frozen_storage(&storage, &calls, &["--shutdown-timeout", "60s"]).await;
    dev.signal(15);
    // The first signal is taken once the servers stop accepting.
    eventually(
        "the servers to stop accepting",
        Duration::from_secs(10),
        async || http_get(http, "/healthz").await.is_none().then_some(()),
    )
    .await;
    let second = Instant::now();
    dev.signal(15);
    let status = tokio::task::spawn_blocking(move || dev.wait_exit(Duration::from_secs(30)))
        .await
        .unwrap();
    let took = second.elapsed();
    kill("-CONT", emulator);
    assert_eq!(
        status.code(),
        Some(128 + 15),
        "exited on the second SIGTERM: {status}"
    );
    assert!(took < Duration::from_secs(5), "exited {took:?} after it");
}
