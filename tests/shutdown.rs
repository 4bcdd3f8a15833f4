//! Shutdown is bounded whatever the storage does: `reconcilers dev` on a GCS emulator that no
//! longer answers (stopped with SIGSTOP), with keys in flight and capacity slots held, exits
//! within its shutdown timeout, and a second signal exits at once.

mod common;

use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{Proc, TestStorage, eventually, free_addr, http_get, serve_reconciler};
use workqueue::client::{Enqueue, RemoteWorkqueue};
use workqueue::conformance::Hang;

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
    flags: &[&str],
) -> (Proc, std::net::SocketAddr, u32) {
    let hang = Arc::new(Hang::default());
    let TestStorage::Gcs { emulator, .. } = storage else {
        unreachable!("the storage is an emulator's bucket")
    };
    let (http, grpc, reconciler) = (free_addr(), free_addr(), free_addr());
    let served = serve_reconciler(hang.clone(), reconciler);
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
        (hang.calls() == KEYS).then_some(())
    })
    .await;
    // The reconciler goes on serving (its calls hang) until the test ends: not stopped, as
    // stopping would wait for those calls.
    drop(served);
    kill("-STOP", emulator.pid());
    (dev, http, emulator.pid())
}

/// Sends SIGTERM to `dev` and waits for it to exit (a minute at most), then thaws the
/// emulator: the exit status, and how long it took.
async fn terminate(mut dev: Proc, emulator: u32) -> (std::process::ExitStatus, Duration) {
    let signalled = Instant::now();
    dev.signal(15);
    let status = tokio::task::spawn_blocking(move || dev.wait_exit(Duration::from_secs(60)))
        .await
        .unwrap();
    let took = signalled.elapsed();
    kill("-CONT", emulator);
    (status, took)
}

#[tokio::test]
async fn shutdown_should_end_within_its_timeout_when_the_storage_stops_answering() {
    let storage = TestStorage::gcs().await;
    let timeout = Duration::from_secs(3);
    let (dev, _, emulator) = dev_with_frozen_storage(&storage, &["--shutdown-timeout", "3s"]).await;
    let (status, took) = terminate(dev, emulator).await;
    assert!(
        status.success(),
        "the process stopped by itself, not by the backstop: {status}"
    );
    // No key lost: each is still in progress (or handed back), to be recovered once its lease
    // lapses.
    let snapshot = storage.queue().await.snapshot().await.unwrap();
    let kept: std::collections::HashSet<String> = snapshot
        .in_progress
        .iter()
        .map(|run| run.record.key.clone())
        .chain(
            snapshot
                .queued
                .iter()
                .map(|queued| queued.record.key.clone()),
        )
        .collect();
    assert_eq!(kept.len(), KEYS, "{kept:?}");
    // The timeout, and the time a process takes to start stopping and to exit.
    assert!(
        took < timeout + Duration::from_secs(2),
        "stopped after {took:?}"
    );
}

#[tokio::test]
async fn a_second_signal_should_exit_at_once() {
    let storage = TestStorage::gcs().await;
    // A shutdown that would wait for the frozen storage for most of a minute.
    let (dev, http, emulator) =
        dev_with_frozen_storage(&storage, &["--shutdown-timeout", "60s"]).await;
    dev.signal(15);
    // The first signal is taken once the servers stop accepting.
    eventually(
        "the servers to stop accepting",
        Duration::from_secs(10),
        async || http_get(http, "/healthz").await.is_none().then_some(()),
    )
    .await;
    let (status, took) = terminate(dev, emulator).await;
    assert_eq!(
        status.code(),
        Some(128 + 15),
        "exited on the second SIGTERM: {status}"
    );
    assert!(took < Duration::from_secs(5), "exited {took:?} after it");
}
