//! The status manager and the client against the fake GitHub: what each reconcile reads and
//! writes, conditional reads, and bad input (a malformed marker, a read-only manager).

use std::sync::Arc;

use github_reconciler::fake::FakeGitHub;
use github_reconciler::{
    Auth, Clients, Conclusion, Details, DetailsLink, Error, GitHubClient, GitHubKey, Status,
    StatusManager, Token,
};
use serde::{Deserialize, Serialize};

const SHA: &str = "0123456789abcdef0123456789abcdef01234567";

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct Checked {
    findings: u32,
}

impl Details for Checked {
    fn title(&self) -> String {
        format!("{} findings", self.findings)
    }
    fn markdown(&self) -> String {
        format!("Found **{}** things.", self.findings)
    }
}

async fn setup() -> (FakeGitHub, Arc<Clients>) {
    let fake = FakeGitHub::new();
    let base = fake.serve().await;
    let clients = Clients::new(&base, Auth::Token(Token::new("t0ken")));
    (fake, Arc::new(clients))
}

/// The fake, pull request 1's key, and a client for its repository.
async fn setup_pull_1() -> (FakeGitHub, GitHubKey, GitHubClient) {
    let (fake, clients) = setup().await;
    let key: GitHubKey = "https://github.com/o/r/pull/1".parse().unwrap();
    let client = clients.for_key(&key);
    (fake, key, client)
}

/// A completed status on `SHA` with `findings`.
fn completed(conclusion: Conclusion, findings: u32) -> Status<Checked> {
    Status::completed(SHA, conclusion, Checked { findings })
}

fn manager() -> StatusManager<Checked> {
    StatusManager::new("checker").details_link(DetailsLink::Off)
}

#[tokio::test]
async fn a_status_set_once_should_be_read_back_without_a_write() {
    let (fake, clients) = setup().await;
    let key: GitHubKey = "github.com/o/r/pull/7".parse().unwrap();
    let client = clients.for_key(&key);
    let status = manager();

    let mut session = status.session(&client, &key, SHA).await.unwrap();
    assert!(session.observed().is_none(), "no run yet");
    assert!(!session.is_done());
    let done = completed(Conclusion::Success, 2);
    session.set(done.clone()).await.unwrap();
    let runs = fake.runs();
    assert_eq!(runs.len(), 1);
    assert_eq!(runs[0].name, "checker");
    assert_eq!(runs[0].conclusion.as_deref(), Some("success"));
    assert_eq!(runs[0].title.as_deref(), Some("2 findings"));
    assert!(
        runs[0]
            .summary
            .as_deref()
            .unwrap()
            .starts_with("Found **2** things.")
    );
    assert_eq!(fake.writes().len(), 1);

    // The write was followed by one listing, so the next reconcile's read is answered 304,
    // and it makes no write.
    let counts = clients.counts();
    assert_eq!(
        (counts.reads, counts.not_modified, counts.writes),
        (2, 0, 1)
    );
    let session = status.session(&client, &key, SHA).await.unwrap();
    assert_eq!(session.observed(), Some(&done));
    assert!(session.is_done());
    assert_eq!(fake.writes().len(), 1);
    let counts = clients.counts();
    assert_eq!(
        (counts.reads, counts.not_modified, counts.writes),
        (3, 1, 1)
    );
    assert_eq!(fake.reads().1, 1);

    // Setting again updates the same run.
    let mut session = status.session(&client, &key, SHA).await.unwrap();
    session
        .set(completed(Conclusion::Failure, 3))
        .await
        .unwrap();
    assert_eq!(fake.runs().len(), 1);
    assert_eq!(fake.runs()[0].conclusion.as_deref(), Some("failure"));
    assert_eq!(fake.writes()[1].method, "PATCH");
}

#[tokio::test]
async fn a_path_key_should_report_as_identity_and_path() {
    let (fake, clients) = setup().await;
    let key: GitHubKey = "https://github.com/o/r/blob/main/configs/a.yaml"
        .parse()
        .unwrap();
    let client = clients.for_key(&key);
    let status = manager();
    let mut session = status.session(&client, &key, SHA).await.unwrap();
    session
        .set(completed(Conclusion::Success, 0))
        .await
        .unwrap();
    assert_eq!(fake.runs()[0].name, "checker (configs/a.yaml)");
    let issue: GitHubKey = "https://github.com/o/r/issues/3".parse().unwrap();
    let err = manager().session(&client, &issue, SHA).await.unwrap_err();
    assert!(matches!(err, Error::NoRetry(_)), "{err}");
    let err = manager().session(&client, &key, "main").await.unwrap_err();
    assert!(matches!(err, Error::NoRetry(_)), "not a SHA: {err}");
}

#[tokio::test]
async fn a_malformed_marker_should_read_as_nothing_observed_and_heal() {
    let (fake, key, client) = setup_pull_1().await;
    let status = manager();
    let mut session = status.session(&client, &key, SHA).await.unwrap();
    session
        .set(completed(Conclusion::Success, 1))
        .await
        .unwrap();
    for broken in [
        "edited by hand",
        "<!-- reconcilers-status:v1:%%% -->",
        "<!-- reconcilers-status:v1:eyJ4IjoxfQ== -->",
    ] {
        fake.set_summary(1, broken);
        let session = status.session(&client, &key, SHA).await.unwrap();
        assert!(session.observed().is_none(), "{broken}");
    }
    let mut session = status.session(&client, &key, SHA).await.unwrap();
    session
        .set(completed(Conclusion::Success, 1))
        .await
        .unwrap();
    assert_eq!(fake.runs().len(), 1, "the same run, healed");
    assert!(status.session(&client, &key, SHA).await.unwrap().is_done());
}

#[tokio::test]
async fn a_reset_should_make_a_fresh_run_so_the_work_is_done_again() {
    let (fake, key, client) = setup_pull_1().await;
    let status = manager();
    let mut session = status.session(&client, &key, SHA).await.unwrap();
    session
        .set(completed(Conclusion::Failure, 1))
        .await
        .unwrap();
    session.reset().await.unwrap();
    let runs = fake.runs();
    assert_eq!(runs.len(), 2);
    assert_eq!(runs[1].status, "queued");
    let mut session = status.session(&client, &key, SHA).await.unwrap();
    assert!(session.observed().is_none(), "the fresh run has no marker");
    session
        .set(completed(Conclusion::Success, 0))
        .await
        .unwrap();
    let runs = fake.runs();
    assert_eq!(runs.len(), 2, "the fresh run was updated");
    assert_eq!(runs[1].conclusion.as_deref(), Some("success"));
    assert_eq!(
        runs[0].conclusion.as_deref(),
        Some("failure"),
        "the old run stays"
    );
}

#[tokio::test]
async fn a_read_only_manager_should_refuse_writes() {
    let (fake, key, client) = setup_pull_1().await;
    let status = StatusManager::<Checked>::read_only("someone-else");
    let mut session = status.session(&client, &key, SHA).await.unwrap();
    let err = session
        .set(completed(Conclusion::Success, 0))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::ReadOnly { .. }), "{err}");
    assert!(err.to_string().contains("someone-else"));
    assert!(fake.writes().is_empty());
}

#[tokio::test]
async fn without_conditional_requests_every_read_should_be_a_full_answer() {
    let fake = FakeGitHub::new();
    let base = fake.serve().await;
    let clients = Clients::new(&base, Auth::Anonymous).conditional_requests(false);
    fake.set_pull("o/r", 1, "feat: x", SHA);
    let client = clients.for_repo("o", "r");
    for _ in 0..3 {
        let pr = client.pull_request("o", "r", 1).await.unwrap().unwrap();
        assert_eq!(pr.head.sha, SHA);
    }
    assert_eq!(fake.reads(), (3, 0));
    assert!(
        fake.authorizations().iter().all(String::is_empty),
        "anonymous"
    );
}
