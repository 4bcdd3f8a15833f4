//! The gateway as users run it: `reconcilers dev` taking a replayed fixture from
//! `reconcilers webhook send` through to the reconciler; `reconcilers gateway` in front of a
//! receiver, taking CloudEvents from an independent client (the Python SDK) in every mode and
//! deliveries signed with either of two secrets; a bad route refused at startup.

mod common;

use std::collections::BTreeSet;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use common::{
    Proc, TestStorage, eventually, free_addr, http_get, outcome, python, repo, serve_reconciler,
};
use reconciler::{Action, ReconcileError, Reconciler};

#[derive(Default)]
struct Seen(Mutex<Vec<(String, i64)>>);

#[async_trait]
impl Reconciler for Seen {
    async fn reconcile(&self, key: &str, priority: i64) -> Result<Action, ReconcileError> {
        self.0.lock().unwrap().push((key.to_owned(), priority));
        Ok(Action::done())
    }
}

fn send(url: &str, file: &str, event: &str, secret: Option<&str>) -> (bool, String) {
    let mut command = Command::new(env!("CARGO_BIN_EXE_reconcilers"));
    command
        .args(["webhook", "send", file, "--event", event, "--url", url])
        .current_dir(repo())
        .env_remove("WEBHOOK_SECRET");
    if let Some(secret) = secret {
        command.env("WEBHOOK_SECRET", secret);
    }
    let out = command.output().expect("run webhook send");
    outcome(&out)
}

#[tokio::test]
async fn dev_should_take_a_replayed_delivery_to_the_reconciler() {
    let storage = TestStorage::dir();
    let (http, grpc, reconciler) = (free_addr(), free_addr(), free_addr());
    let seen = Arc::new(Seen::default());
    let serving = serve_reconciler(seen.clone(), reconciler);
    let (http_s, grpc_s, url) = (
        http.to_string(),
        grpc.to_string(),
        format!("http://{reconciler}"),
    );
    let mut command = Command::new(env!("CARGO_BIN_EXE_reconcilers"));
    command
        .args([
            "dev",
            "--storage",
            &storage.url(),
            "--listen",
            &http_s,
            "--grpc-listen",
            &grpc_s,
        ])
        .args(["--reconciler", &url, "--poll-interval", "100ms"])
        .env_remove("WEBHOOK_SECRET");
    let mut dev = Proc::spawn("dev", &mut command);
    dev.wait_healthy(http).await;

    let webhook = format!("http://{http}/webhook");
    let fixture = "fixtures/github/pull_request/00-opened.json";
    let (ok, out) = send(&webhook, fixture, "pull_request", Some("wrong"));
    assert!(
        !ok && out.contains("401"),
        "a wrong secret is refused: {out}"
    );
    let (ok, out) = send(&webhook, fixture, "pull_request", None);
    assert!(ok, "{out}");
    let key = "https://github.com/Codertocat/Hello-World/pull/2".to_owned();
    eventually(
        "the key to be reconciled",
        Duration::from_secs(30),
        async || {
            seen.0
                .lock()
                .unwrap()
                .contains(&(key.clone(), 100))
                .then_some(())
        },
    )
    .await;
    assert_eq!(seen.0.lock().unwrap().len(), 1);
    // The refused delivery has the same key as the accepted one, so the counts tell that it
    // enqueued nothing, not the deduplicated queue.
    let (_, metrics) = http_get(http, "/metrics").await.expect("metrics");
    for line in [
        "gateway_webhook_deliveries_total{event=\"pull_request\",outcome=\"unauthorized\"} 1",
        "gateway_webhook_deliveries_total{event=\"pull_request\",outcome=\"enqueued\"} 1",
        "gateway_keys_total{route=\"extension\"} 1",
    ] {
        assert!(metrics.contains(line), "{line} in\n{metrics}");
    }
    serving.stop().await;
}

#[tokio::test]
async fn gateway_should_take_cloudevents_and_rotated_secrets_into_a_receiver() {
    let storage = TestStorage::dir();
    let (receiver_http, receiver_grpc, gateway_http) = (free_addr(), free_addr(), free_addr());
    let mut receiver = storage.receiver("receiver", receiver_http, receiver_grpc);
    let mut command = Command::new(env!("CARGO_BIN_EXE_reconcilers"));
    command
        .args(["gateway", "--listen", &gateway_http.to_string()])
        .args(["--workqueue", &format!("http://{receiver_grpc}")])
        .args(["--webhook-secret", "by-flag"])
        .env("WEBHOOK_SECRET", "first")
        .env("WEBHOOK_SECRET_NEXT", "second");
    let mut gateway = Proc::spawn("gateway", &mut command);
    receiver.wait_healthy(receiver_http).await;
    gateway.wait_healthy(gateway_http).await;

    let status = Command::new(python())
        .arg(repo().join("tests/python/cloudevents_client.py"))
        .args(["--url", &format!("http://{gateway_http}/events")])
        .status()
        .expect("run the Python CloudEvents client");
    assert!(status.success(), "the Python client saw a wrong answer");

    let webhook = format!("http://{gateway_http}/webhook");
    let comment = "fixtures/github/handmade/issue_comment-on-pull-request.json";
    for secret in ["first", "second", "by-flag"] {
        let (ok, out) = send(&webhook, comment, "issue_comment", Some(secret));
        assert!(ok, "{secret}: {out}");
    }
    let (ok, out) = send(&webhook, comment, "issue_comment", Some("third"));
    assert!(!ok && out.contains("401"), "{out}");
    let (_, metrics) = http_get(gateway_http, "/metrics").await.expect("metrics");
    for line in [
        "gateway_webhook_deliveries_total{event=\"issue_comment\",outcome=\"enqueued\"} 3",
        "gateway_webhook_deliveries_total{event=\"issue_comment\",outcome=\"unauthorized\"} 1",
        "gateway_signature_failures_total 1",
        "gateway_keys_total{route=\"extension\"} 7",
        "gateway_cloudevents_total{outcome=\"malformed\"} 1",
    ] {
        assert!(metrics.contains(line), "{line} in\n{metrics}");
    }

    let queue = storage.queue().await;
    let keys: BTreeSet<String> = queue
        .snapshot()
        .await
        .unwrap()
        .queued
        .into_iter()
        .map(|q| q.record.key)
        .collect();
    let want: BTreeSet<String> = (1..=4)
        .map(|n| format!("https://github.com/o/r/pull/{n}"))
        .chain(["https://github.com/Codertocat/Hello-World/pull/2".to_owned()])
        .collect();
    assert_eq!(keys, want);
}

#[test]
fn bad_routes_should_stop_the_gateway_at_startup_naming_them() {
    let inline = "[[route]]\nrepository = \"o/r\"\npath_patterns = [\"(a)/(b)\"]\n";
    let flags = ["--repository", "o/r", "--path-pattern", "config/.+\\.yaml"];
    for (args, env, expect) in [
        (&[][..], Some(inline), &["GATEWAY_ROUTES_TOML", "(a)/(b)"]),
        (&flags[..], None, &["config/.+\\.yaml", "capture group"]),
    ] {
        let mut command = Command::new(env!("CARGO_BIN_EXE_reconcilers"));
        command
            .args(["gateway", "--listen", &free_addr().to_string()])
            .args(args)
            .env_remove("GATEWAY_ROUTES_TOML");
        if let Some(routes) = env {
            command.env("GATEWAY_ROUTES_TOML", routes);
        }
        let (ok, output) = outcome(&command.output().expect("run the gateway"));
        assert!(
            !ok && expect.iter().all(|e| output.contains(e)),
            "{args:?}: {output}"
        );
    }
}
