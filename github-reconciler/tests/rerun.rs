//! Re-run requests: a check-run key resets the reconciler's own run (a fresh queued run, no
//! marker) and enqueues its resources again; another reconciler's run is left alone.

use std::sync::Arc;

use async_trait::async_trait;
use github_reconciler::fake::FakeGitHub;
use github_reconciler::{
    Action, Auth, Clients, Error, GitHub, GitHubClient, GitHubKey, GitHubReconciler, Token,
};
use reconciler::{QueueKey, ReconcileError, Reconciler};
use serde_json::json;

const SHA: &str = "0123456789abcdef0123456789abcdef01234567";

/// Never called: check-run keys are the toolkit's.
struct Unreached;

#[async_trait]
impl GitHubReconciler for Unreached {
    async fn reconcile(&self, key: &GitHubKey, _: &GitHubClient) -> Result<Action, Error> {
        panic!("{key} reached the reconciler");
    }
}

/// The fake, with runs 1 (`checker`, pull request 5's head), 2 (`checker (configs/a.yaml)`)
/// and 3 (`someone-else`), all on SHA.
async fn setup() -> (FakeGitHub, Arc<Clients>) {
    let fake = FakeGitHub::new();
    let base = fake.serve().await;
    let clients = Arc::new(Clients::new(&base, Auth::Token(Token::new("t"))));
    fake.set_pull("o/r", 5, "feat: x", SHA);
    let client = clients.for_repo("o", "r");
    for name in ["checker", "checker (configs/a.yaml)", "someone-else"] {
        let run =
            json!({"name": name, "head_sha": SHA, "status": "completed", "conclusion": "failure"});
        let _: serde_json::Value = client
            .post_json("/repos/o/r/check-runs", &run)
            .await
            .unwrap();
    }
    (fake, clients)
}

#[tokio::test]
async fn a_rerun_of_our_run_should_reset_it_and_enqueue_its_resources() {
    let (fake, clients) = setup().await;
    let reconciler = GitHub::new(Unreached, clients).with_identity("checker");
    let action = reconciler
        .reconcile("https://github.com/o/r/runs/1", 0)
        .await
        .unwrap();
    assert_eq!(
        action,
        Action::queue([QueueKey::new("https://github.com/o/r/pull/5", 100)])
    );
    let runs = fake.runs();
    assert_eq!(runs.len(), 4);
    assert_eq!(
        (runs[3].name.as_str(), runs[3].status.as_str()),
        ("checker", "queued")
    );
    assert_eq!(runs[3].summary, None, "no marker");

    let action = reconciler
        .reconcile("https://github.com/o/r/runs/2", 0)
        .await
        .unwrap();
    let key = format!("https://github.com/o/r/blob/{SHA}/configs/a.yaml");
    assert_eq!(action, Action::queue([QueueKey::new(key, 100)]));
    assert_eq!(fake.runs()[4].name, "checker (configs/a.yaml)");
}

#[tokio::test]
async fn a_rerun_of_another_run_or_a_missing_one_should_change_nothing() {
    let (fake, clients) = setup().await;
    let reconciler = GitHub::new(Unreached, clients.clone()).with_identity("checker");
    for key in [
        "https://github.com/o/r/runs/3",
        "https://github.com/o/r/runs/99",
    ] {
        assert_eq!(
            reconciler.reconcile(key, 0).await.unwrap(),
            Action::done(),
            "{key}"
        );
    }
    assert_eq!(fake.runs().len(), 3);
    let anonymous = GitHub::new(Unreached, clients);
    let err = anonymous
        .reconcile("https://github.com/o/r/runs/1", 0)
        .await
        .unwrap_err();
    assert!(matches!(err, ReconcileError::NonRetriable(_)), "{err}");
}
