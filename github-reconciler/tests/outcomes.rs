//! What the queue makes of a GitHub reconcile: a rate limit is a snooze until it lifts, a
//! server error a retry, a key of an unknown form a drop; and a pull request that 404s reads
//! as `None`. Each is counted on `/metrics`.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use github_reconciler::fake::{FakeGitHub, epoch_in};
use github_reconciler::{
    Action, Auth, Clients, Error, GitHub, GitHubClient, GitHubKey, GitHubReconciler, Target, Token,
    serve_metrics,
};
use http::StatusCode;
use reconciler::{ReconcileError, Reconciler, Requeue};

const SHA: &str = "0123456789abcdef0123456789abcdef01234567";

/// Reads the pull request: done if it exists or is gone.
struct ReadsPull;

#[async_trait]
impl GitHubReconciler for ReadsPull {
    async fn reconcile(&self, key: &GitHubKey, client: &GitHubClient) -> Result<Action, Error> {
        let Target::PullRequest(number) = key.target else {
            return Err(Error::no_retry("only pull requests"));
        };
        let _found = client.pull_request(&key.owner, &key.repo, number).await?;
        Ok(Action::done())
    }
}

async fn setup() -> (FakeGitHub, GitHub<ReadsPull>) {
    let fake = FakeGitHub::new();
    let base = fake.serve().await;
    let clients = Arc::new(Clients::new(&base, Auth::Token(Token::new("t"))));
    fake.set_pull("o/r", 1, "feat: x", SHA);
    (fake, GitHub::new(ReadsPull, clients))
}

#[tokio::test]
async fn a_rate_limit_should_snooze_the_key_until_it_lifts_capped() {
    let (fake, reconciler) = setup().await;
    fake.rate_limit(1, epoch_in(Duration::from_secs(600)));
    let action = reconciler
        .reconcile("https://github.com/o/r/pull/1", 0)
        .await
        .expect("a snooze, not a failure");
    let Some(Requeue::After(snooze)) = action.requeue() else {
        panic!("{action:?}");
    };
    assert!(
        snooze > Duration::from_secs(590) && snooze <= Duration::from_secs(602),
        "{snooze:?}"
    );
    assert_eq!(reconciler.clients().counts().rate_limited, 1);
    let capped = reconciler.max_snooze(Duration::from_secs(60));
    fake.rate_limit(1, epoch_in(Duration::from_secs(600)));
    let action = capped
        .reconcile("https://github.com/o/r/pull/1", 0)
        .await
        .unwrap();
    assert_eq!(
        action.requeue(),
        Some(Requeue::After(Duration::from_secs(60)))
    );
    assert_eq!(
        capped
            .reconcile("https://github.com/o/r/pull/1", 0)
            .await
            .unwrap(),
        Action::done()
    );

    // Both limits and the three reconciles are on `/metrics`.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let metrics = capped.clients().metrics().clone();
    tokio::spawn(serve_metrics(listener, metrics, std::future::pending()));
    let text = reqwest::get(format!("http://{addr}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for line in [
        "github_api_rate_limited_total 2",
        "reconciles_total{outcome=\"rate_limited\"} 2",
        "reconciles_total{outcome=\"done\"} 1",
    ] {
        assert!(text.contains(line), "{line} in {text}");
    }
}

#[tokio::test]
async fn a_server_error_should_be_retried_and_a_missing_pull_request_read_as_none() {
    let (fake, reconciler) = setup().await;
    fake.fail(1, StatusCode::BAD_GATEWAY);
    let err = reconciler
        .reconcile("https://github.com/o/r/pull/1", 0)
        .await
        .unwrap_err();
    assert!(matches!(err, ReconcileError::Retriable(_)), "{err}");
    assert!(err.to_string().contains("502"), "{err}");
    let gone = reconciler
        .reconcile("https://github.com/o/r/pull/404", 0)
        .await;
    assert_eq!(gone.unwrap(), Action::done());
    let clients = reconciler.clients();
    let client = clients.for_repo("o", "r");
    assert!(client.pull_request("o", "r", 404).await.unwrap().is_none());
}

#[tokio::test]
async fn keys_of_unknown_form_or_kind_should_be_dropped() {
    let (fake, reconciler) = setup().await;
    for key in [
        "not a key",
        "https://github.com/o/r/wiki/Home",
        "https://github.com/o/r/issues/2",
    ] {
        let err = reconciler.reconcile(key, 0).await.unwrap_err();
        assert!(
            matches!(err, ReconcileError::NonRetriable(_)),
            "{key}: {err}"
        );
    }
    // The reference's scheme-less form is a key like any other.
    assert_eq!(
        reconciler
            .reconcile("github.com/o/r/pull/1", 0)
            .await
            .unwrap(),
        Action::done()
    );
    assert_eq!(fake.reads().0, 1, "only the valid key called GitHub");
}

#[tokio::test]
async fn the_token_should_be_sent_and_never_shown() {
    let (fake, reconciler) = setup().await;
    fake.fail(1, StatusCode::INTERNAL_SERVER_ERROR);
    let err = reconciler
        .reconcile("https://github.com/o/r/pull/1", 0)
        .await
        .unwrap_err();
    assert!(!format!("{err:?}").contains("Bearer"), "{err:?}");
    assert_eq!(fake.authorizations(), ["Bearer t"]);
}
