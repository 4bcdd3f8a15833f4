//! The example reconcilers end to end: real GitHub deliveries (signed webhooks) into
//! `reconcilers dev`, its gateway and queue, dispatched to `pr_title_check` and `config_sync`
//! served with the toolkit, against the fake GitHub API, which records every write.

mod common;

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use common::{Proc, TestStorage, eventually, free_addr, repo, serve_reconciler};
use examples::config_sync::ConfigSync;
use examples::pr_title_check::PrTitleCheck;
use github_reconciler::fake::{FakeGitHub, epoch_in};
use github_reconciler::{Auth, Clients, DetailsLink, GitHub, StatusManager, Token};
use serde_json::{Value, json};

const SECRET: &str = "toolkit-secret";
/// How long any one step may take.
const PATIENCE: Duration = Duration::from_secs(30);
const SHA1: &str = "1111111111111111111111111111111111111111";
const SHA2: &str = "2222222222222222222222222222222222222222";
const REPO: &str = "Codertocat/Hello-World";
const PR_KEY: &str = "https://github.com/Codertocat/Hello-World/pull/2";

/// Pull requests and re-run requests, each by its own route.
const ROUTES: &str = r#"
[[route]]
name = "pull-requests"
extension_key = "pullrequesturl"
filters = [{ type = "dev.chainguard.github.pull_request" }]

[[route]]
name = "re-runs"
extension_key = "checkrunurl"
filters = [{ type = "dev.chainguard.github.check_run", action = "rerequested" }]

[[route]]
name = "configs"
repository = "Codertocat/Hello-World"
path_patterns = ['(config/.+\.yaml)']
"#;

fn fixture(path: &str) -> Value {
    let text = std::fs::read_to_string(repo().join("fixtures/github").join(path)).unwrap();
    serde_json::from_str(&text).unwrap()
}

/// Signs and delivers `payload` as the GitHub event `event`.
async fn deliver(http: std::net::SocketAddr, event: &str, payload: &Value) {
    let body = payload.to_string();
    let signature = gateway::signature::sign(SECRET.as_bytes(), body.as_bytes());
    let answer = reqwest::Client::new()
        .post(format!("http://{http}/webhook"))
        .header("content-type", "application/json")
        .header("x-github-event", event)
        .header(
            "x-github-delivery",
            format!("{event}-{}", rand::random::<u64>()),
        )
        .header("x-hub-signature-256", signature)
        .body(body)
        .send()
        .await
        .expect("deliver");
    assert_eq!(answer.status(), 202, "{event} was taken");
}

/// The system under test: the fake GitHub, `reconcilers dev` with the routes above, and a
/// reconciler served with the toolkit.
struct System {
    fake: FakeGitHub,
    clients: Arc<Clients>,
    storage: TestStorage,
    http: std::net::SocketAddr,
    _dev: Proc,
    served: common::Served,
}

async fn start<R: github_reconciler::GitHubReconciler>(
    identity: &str,
    make: impl FnOnce() -> R,
) -> System {
    let fake = FakeGitHub::new();
    let base = fake.serve().await;
    let clients = Arc::new(Clients::new(&base, Auth::Token(Token::new("t"))));
    let reconciler = GitHub::new(make(), clients.clone()).with_identity(identity);
    let storage = TestStorage::dir();
    let (http, grpc, target) = (free_addr(), free_addr(), free_addr());
    let served = serve_reconciler(reconciler, target);
    let flags = [
        "--webhook-secret",
        SECRET,
        "--routes-toml",
        ROUTES,
        "--github-api",
        &base,
    ];
    let mut dev = storage.dev(http, grpc, target, &flags);
    dev.wait_healthy(http).await;
    System {
        fake,
        clients,
        storage,
        http,
        _dev: dev,
        served,
    }
}

impl System {
    /// Sets pull request 2 to `title` at `sha` in the fake, and delivers its `action` event.
    async fn pr_event(&self, action: &str, title: &str, sha: &str) {
        self.fake.set_pull(REPO, 2, title, sha);
        deliver(self.http, "pull_request", &pull_request(action, title, sha)).await;
    }

    /// Waits until `key` has left the queue.
    async fn settled(&self, key: &str) {
        let queue = self.storage.queue().await;
        eventually(
            &format!("{key} reconciled and gone from the queue"),
            PATIENCE,
            async || queue.state(key).await.unwrap().is_none().then_some(()),
        )
        .await;
    }
}

fn pull_request(action: &str, title: &str, sha: &str) -> Value {
    let mut payload = fixture("pull_request/00-opened.json");
    payload["action"] = json!(action);
    payload["pull_request"]["title"] = json!(title);
    payload["pull_request"]["head"]["sha"] = json!(sha);
    payload
}

#[tokio::test(flavor = "multi_thread")]
async fn pr_title_check_should_write_once_per_head_sha_and_snooze_on_rate_limits() {
    let status = || StatusManager::new("pr-title").details_link(DetailsLink::Off);
    let system = start("pr-title", || PrTitleCheck::with_status(status())).await;
    let (fake, http) = (&system.fake, system.http);

    // The first delivery: one check run, a failure for this title.
    system.pr_event("opened", "Update the README", SHA1).await;
    eventually("a check run", PATIENCE, async || {
        (fake.runs().len() == 1).then_some(())
    })
    .await;
    system.settled(PR_KEY).await;
    let run = &fake.runs()[0];
    assert_eq!(
        (run.name.as_str(), run.head_sha.as_str()),
        ("pr-title", SHA1)
    );
    assert_eq!(run.conclusion.as_deref(), Some("failure"));
    assert_eq!(fake.writes().len(), 1);

    // The same head again: two reads, both answered 304, and no write.
    let before = fake.reads();
    system.pr_event("labeled", "Update the README", SHA1).await;
    eventually("two more reads", PATIENCE, async || {
        (fake.reads().0 >= before.0 + 2).then_some(())
    })
    .await;
    system.settled(PR_KEY).await;
    assert_eq!(
        fake.writes().len(),
        1,
        "no write for a head already checked"
    );
    assert_eq!(fake.reads().0, before.0 + 2, "two reads");
    assert_eq!(fake.reads().1, before.1 + 2, "both reads answered 304");

    // A push: a new head, a new check run.
    system
        .pr_event("synchronize", "Update the README", SHA2)
        .await;
    eventually("a run on the new head", PATIENCE, async || {
        (fake.runs().len() == 2).then_some(())
    })
    .await;
    system.settled(PR_KEY).await;
    assert_eq!(fake.runs()[1].head_sha, SHA2);

    // The title fixed on the same head: nothing happens until someone asks for a re-run.
    let before = fake.reads();
    system
        .pr_event("edited", "docs: update the README", SHA2)
        .await;
    eventually("two more reads", PATIENCE, async || {
        (fake.reads().0 >= before.0 + 2).then_some(())
    })
    .await;
    system.settled(PR_KEY).await;
    assert_eq!(fake.writes().len(), 2);
    let mut rerun = fixture("check_run/07-rerequested.json");
    rerun["repository"] = pull_request("opened", "", SHA2)["repository"].clone();
    rerun["check_run"]["id"] = json!(2);
    rerun["check_run"]["name"] = json!("pr-title");
    rerun["check_run"]["head_sha"] = json!(SHA2);
    deliver(http, "check_run", &rerun).await;
    eventually("the fresh run, passing", PATIENCE, async || {
        let runs = fake.runs();
        (runs.len() == 3 && runs[2].conclusion.as_deref() == Some("success")).then_some(())
    })
    .await;
    system.settled(PR_KEY).await;
    let runs = fake.runs();
    assert_eq!(runs[2].head_sha, SHA2);
    assert_eq!(
        runs[1].conclusion.as_deref(),
        Some("failure"),
        "the old run stays"
    );
    let writes: Vec<String> = fake.writes().iter().map(|w| w.method.clone()).collect();
    assert_eq!(
        writes,
        ["POST", "POST", "POST", "PATCH"],
        "create, create, fresh, update"
    );

    // A rate limit: the key waits for the reset, with no attempt counted.
    fake.rate_limit(1, epoch_in(Duration::from_secs(3600)));
    system
        .pr_event("labeled", "docs: update the README", SHA2)
        .await;
    let queue = system.storage.queue().await;
    let state = eventually("the key snoozed", PATIENCE, async || {
        let state = queue.state(PR_KEY).await.unwrap()?;
        let later = SystemTime::now() + Duration::from_secs(3000);
        state.not_before.filter(|due| *due > later).map(|_| state)
    })
    .await;
    assert_eq!(state.attempts, 0);
    let url = system.storage.url();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_reconcilers"))
        .args(["queue", "state", PR_KEY, "--storage", &url])
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&out.stdout);
    assert!(out.contains("attempts:  0"), "{out}");
    assert_eq!(system.clients.counts().rate_limited, 1);
    assert_eq!(fake.writes().len(), 4);
    system.served.stop().await;
}

/// The files the push of `config_sync_should_report_each_pushed_file_once` adds, changes or
/// removes under `config/`.
const PUSHED: [&str; 4] = [
    "config/new.yaml",
    "config/team/a.yaml",
    "config/team/b.yaml",
    "config/old.yaml",
];

#[tokio::test(flavor = "multi_thread")]
async fn config_sync_should_report_each_pushed_file_once() {
    let status = || StatusManager::new("config-sync").details_link(DetailsLink::Off);
    let system = start("config-sync", || ConfigSync::with_status(status())).await;
    let fake = &system.fake;
    let push = fixture("handmade/push-several-files.json");
    // After the push: a.yaml valid, b.yaml broken, new.yaml valid; old.yaml deleted.
    fake.set_ref(REPO, "master", SHA1);
    fake.set_file(REPO, SHA1, "config/new.yaml", "name: new\n");
    fake.set_file(
        REPO,
        SHA1,
        "config/team/a.yaml",
        "team: a\nmembers: [x, y]\n",
    );
    fake.set_file(
        REPO,
        SHA1,
        "config/team/b.yaml",
        "team: b\nmembers: [x, y\n",
    );
    deliver(system.http, "push", &push).await;
    eventually("four check runs", PATIENCE, async || {
        (fake.runs().len() == 4).then_some(())
    })
    .await;
    let key = |path: &str| format!("https://github.com/{REPO}/blob/master/{path}");
    for path in PUSHED {
        system.settled(&key(path)).await;
    }
    let mut runs: Vec<(String, Option<String>)> = fake
        .runs()
        .into_iter()
        .inspect(|r| assert_eq!(r.head_sha, SHA1))
        .map(|r| (r.name, r.conclusion))
        .collect();
    runs.sort();
    let ok = Some("success".to_owned());
    assert_eq!(
        runs,
        [
            ("config-sync (config/new.yaml)".to_owned(), ok.clone()),
            ("config-sync (config/old.yaml)".to_owned(), ok.clone()),
            ("config-sync (config/team/a.yaml)".to_owned(), ok.clone()),
            (
                "config-sync (config/team/b.yaml)".to_owned(),
                Some("failure".to_owned())
            ),
        ]
    );
    let broken = fake
        .runs()
        .into_iter()
        .find(|r| r.name.ends_with("b.yaml)"))
        .unwrap();
    assert!(broken.title.unwrap().starts_with("Invalid YAML at line"));

    // The same push again: every file already reported at that commit; no write.
    let before = fake.reads().0;
    deliver(system.http, "push", &push).await;
    eventually("eight more reads", PATIENCE, async || {
        (fake.reads().0 >= before + 8).then_some(())
    })
    .await;
    for path in PUSHED {
        system.settled(&key(path)).await;
    }
    assert_eq!(fake.writes().len(), 4);
    system.served.stop().await;
}
