//! The wire contract against an independently written client and reconciler: a Python
//! program generated from the proto drives `reconcilers dev` on `file://` and `gs://` storage.

mod common;

use std::process::Command;
use std::time::Duration;

use common::{Proc, TestStorage, free_addr, python, repo};

#[tokio::test]
async fn python_client_and_reconciler_should_interoperate_through_dev_on_a_directory() {
    interoperate(TestStorage::dir()).await;
}

#[tokio::test]
async fn python_client_and_reconciler_should_interoperate_through_dev_on_a_bucket() {
    interoperate(TestStorage::gcs().await).await;
}

async fn interoperate(backend: TestStorage) {
    let (http, grpc, reconciler) = (free_addr(), free_addr(), free_addr());
    let mut dev = backend.dev(
        http,
        grpc,
        reconciler,
        &[
            "--concurrency",
            "1",
            "--max-retry",
            "3",
            "--backoff-base",
            "1s",
            "--backoff-max",
            "10s",
            "--poll-interval",
            "100ms",
            "--pass-interval",
            "10ms",
        ],
    );
    dev.wait_healthy(http).await;
    let mut client = Proc::spawn(
        "interop.py",
        Command::new(python())
            .arg(repo().join("tests/python/interop.py"))
            .args([
                "--receiver",
                &grpc.to_string(),
                "--reconciler-port",
                &reconciler.port().to_string(),
            ])
            .arg("--proto-dir")
            .arg(repo().join("proto")),
    );
    let status = tokio::task::spawn_blocking(move || client.wait_exit(Duration::from_secs(180)))
        .await
        .unwrap();
    assert!(
        status.success(),
        "the Python interop checks failed: {status}"
    );
}
