//! The resync as users run it: `reconcilers resync --once` (the Cloud Run job) listing a
//! repository from a fake GitHub API, cut-short tree included, into a real receiver; the
//! scheduled resync running and counting its runs, and `dev` serving its metrics; bad input
//! refused with a clear message; and a sweep with an Octo STS identity reading GitHub with the
//! tokens a fake exchange gives for a fake metadata server's ID token.

mod common;
#[path = "../resync/tests/fake_github/mod.rs"]
mod fake_github;

use std::collections::BTreeSet;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use common::{Proc, TestStorage, counter, eventually, free_addr, http_get, outcome};
use fake_github::{BRANCH, FakeGitHub, REPOSITORY};

/// Runs `reconcilers resync ARGS` to its end, off the runtime (the fake GitHub API is served
/// on it).
async fn resync(args: &[&str]) -> (bool, String) {
    let args: Vec<String> = args.iter().map(|a| (*a).to_owned()).collect();
    let out = tokio::task::spawn_blocking(move || {
        Command::new(env!("CARGO_BIN_EXE_reconcilers"))
            .arg("resync")
            .args(&args)
            .env_remove("GITHUB_TOKEN")
            .env_remove("GITHUB_APP_ID")
            .output()
            .expect("run reconcilers resync")
    })
    .await
    .unwrap();
    outcome(&out)
}

#[tokio::test]
async fn resync_once_should_enqueue_every_matching_file_through_a_receiver() {
    // 1,200 files in 30 directories; recursive answers are cut beyond 100 entries.
    let files: Vec<String> = (0..1_200)
        .map(|i| format!("services/s{}/k8s/{i}.yaml", i % 30))
        .chain(["README.md".to_owned(), "services/notes.txt".to_owned()])
        .collect();
    let fake = Arc::new(FakeGitHub::new(&files, 100));
    let github = fake.serve().await;
    let storage = TestStorage::dir();
    let (http, grpc) = (free_addr(), free_addr());
    let mut receiver = storage.receiver("receiver", http, grpc);
    receiver.wait_healthy(http).await;
    let started = SystemTime::now();
    // GitHub spells the repository its own way; keys use its spelling, as the gateway's do.
    let (ok, output) = resync(&[
        "--once",
        "--repository",
        "Octo/Configs",
        "--path-pattern",
        "services/(s\\d+)/k8s/.+\\.yaml",
        "--period-hours",
        "24",
        "--workqueue",
        &format!("http://{grpc}"),
        "--github-api",
        &github,
    ])
    .await;
    assert!(ok, "{output}");
    assert!(
        fake.truncated_answers
            .load(std::sync::atomic::Ordering::SeqCst)
            >= 1,
        "the tree was cut short"
    );
    let snapshot = storage.queue().await.snapshot().await.unwrap();
    let keys: BTreeSet<&str> = snapshot
        .queued
        .iter()
        .map(|l| l.record.key.as_str())
        .collect();
    let expected: BTreeSet<String> = (0..30)
        .map(|s| format!("https://github.com/{REPOSITORY}/blob/{BRANCH}/s{s}"))
        .collect();
    assert_eq!(
        keys,
        expected.iter().map(String::as_str).collect::<BTreeSet<_>>()
    );
    // Each key waits its spread delay, whole minutes within the period (0 minutes, no wait,
    // comes to one key in 1,440).
    let latest = started + Duration::from_secs(24 * 3600 + 60);
    let mut delayed = 0;
    for listed in &snapshot.queued {
        let entry = &listed.record;
        assert_eq!(entry.priority, 0, "{}", entry.key);
        if let Some(not_before) = &entry.not_before {
            delayed += 1;
            assert!(
                not_before.at >= started && not_before.at <= latest,
                "{}: {:?}",
                entry.key,
                not_before.at
            );
        }
    }
    assert!(delayed >= 25, "only {delayed} of 30 keys were delayed");
    assert!(
        output.contains("resync done") && output.contains(r#""enqueued":30"#),
        "{output}"
    );
}

/// Serves `router` on a loopback port; its address.
async fn serve(router: axum::Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await });
    addr.to_string()
}

#[tokio::test]
async fn resync_should_read_github_with_octo_sts_tokens_when_given_an_identity() {
    use axum::extract::Query;
    use axum::http::{HeaderMap, StatusCode};
    use axum::routing::get;
    use std::collections::HashMap;

    let fake = Arc::new(FakeGitHub::new(
        &["config/a.yaml", "config/b.yaml"],
        usize::MAX,
    ));
    let github = fake.serve().await;
    // The metadata server hands out `id-token-for-<audience>`; the exchange trusts that token
    // (audience: its own host) for the identity config-sync, scoped to one repository.
    let metadata = serve(axum::Router::new().route(
        "/computeMetadata/v1/instance/service-accounts/default/identity",
        get(|Query(q): Query<HashMap<String, String>>| async move {
            format!("id-token-for-{}", q["audience"])
        }),
    ))
    .await;
    let exchanges: Arc<std::sync::Mutex<Vec<String>>> = Arc::default();
    let seen = exchanges.clone();
    let exchange = serve(axum::Router::new().route(
        "/sts/exchange",
        get(
            move |headers: HeaderMap, Query(q): Query<HashMap<String, String>>| async move {
                let bearer = headers.get("authorization").and_then(|v| v.to_str().ok());
                seen.lock()
                    .unwrap()
                    .push(format!("{} {}", q["identity"], q["scope"]));
                if bearer != Some("Bearer id-token-for-127.0.0.1") || q["identity"] != "config-sync"
                {
                    return (
                        StatusCode::FORBIDDEN,
                        r#"{"message":"no trust policy"}"#.to_owned(),
                    );
                }
                (
                    StatusCode::OK,
                    format!(r#"{{"token":"ghs-sts-{}"}}"#, q["scope"]),
                )
            },
        ),
    ))
    .await;
    let storage = TestStorage::dir();
    let (http, grpc) = (free_addr(), free_addr());
    let mut receiver = storage.receiver("receiver", http, grpc);
    receiver.wait_healthy(http).await;
    let workqueue = format!("http://{grpc}");
    let sts_url = format!("http://{exchange}");
    let args = [
        "resync",
        "--once",
        "--repository",
        REPOSITORY,
        "--path-pattern",
        "config/(.+)\\.yaml",
        "--period-hours",
        "24",
        "--workqueue",
        &workqueue,
        "--github-api",
        &github,
        "--octo-sts-url",
        &sts_url,
    ]
    .map(str::to_owned);
    let out = tokio::task::spawn_blocking(move || {
        Command::new(env!("CARGO_BIN_EXE_reconcilers"))
            .args(&args)
            .env_remove("GITHUB_TOKEN")
            .env_remove("GITHUB_APP_ID")
            .env("OCTO_IDENTITY", "config-sync")
            .env("GCE_METADATA_HOST", &metadata)
            .output()
            .expect("run reconcilers resync")
    })
    .await
    .unwrap();
    let (ok, output) = outcome(&out);
    assert!(ok, "{output}");
    assert!(output.contains(r#""enqueued":2"#), "{output}");
    let authorizations = fake.authorizations.lock().unwrap().clone();
    assert!(!authorizations.is_empty());
    let want = format!("Bearer ghs-sts-{REPOSITORY}");
    assert!(
        authorizations.iter().all(|a| *a == want),
        "{authorizations:?}"
    );
    assert_eq!(
        *exchanges.lock().unwrap(),
        [format!("config-sync {REPOSITORY}")],
        "one exchange, reused for every call"
    );
    assert!(
        !output.contains("ghs-sts"),
        "no token in the logs: {output}"
    );
}

#[tokio::test]
async fn bad_input_should_stop_the_resync_with_a_clear_message() {
    let fake = Arc::new(FakeGitHub::new(&["a/b.yaml"], 100));
    let github = fake.serve().await;
    let base = |pattern: &'static str, period: &'static str, repository: &'static str| {
        vec![
            "--once",
            "--repository",
            repository,
            "--path-pattern",
            pattern,
            "--period-hours",
            period,
            "--workqueue",
            "http://127.0.0.1:1",
            "--github-api",
            github.as_str(),
        ]
    };
    // Without `--once`: a schedule the scheduler cannot read, refused before anything listens.
    let mut scheduled = base("a/(.+)", "24", REPOSITORY);
    scheduled.splice(0..1, ["--schedule", "every now and then"]);
    for (args, expect) in [
        (scheduled, "invalid resync schedule \"every now and then\""),
        (
            base("a/.+", "24", REPOSITORY),
            "`a/.+` has 0 capture groups",
        ),
        (
            base("(a)/(.+)", "24", REPOSITORY),
            "`(a)/(.+)` has 2 capture groups",
        ),
        (
            base("a/(.+", "24", REPOSITORY),
            "invalid path pattern `a/(.+`",
        ),
        (base("a/(.+)", "30", REPOSITORY), "multiple of 24"),
        (base("a/(.+)", "0", REPOSITORY), "1 to 744 hours"),
        (base("a/(.+)", "24", "octo/missing"), "404"),
        // The repository lists a match, and the workqueue cannot be reached.
        (
            base("a/(.+)\\.yaml", "24", REPOSITORY),
            "the workqueue failed key",
        ),
    ] {
        let (ok, output) = resync(&args).await;
        assert!(!ok && output.contains(expect), "{args:?}: {output}");
    }
    // dev refuses a schedule its resync could not run, before it opens its storage (here one
    // that cannot be opened, so that a dev that went on would fail otherwise, not hang).
    let out = Command::new(env!("CARGO_BIN_EXE_reconcilers"))
        .args(["dev", "--storage", "gs://none"])
        .args(["--storage-emulator-host", "http://127.0.0.1:1"])
        .args(["--repository", REPOSITORY, "--path-pattern", "a/(.+)"])
        .args(["--resync-schedule", "every now and then"])
        .env_remove("PORT")
        .env_remove("WORKQUEUE_LISTEN")
        .output()
        .unwrap();
    let (ok, output) = outcome(&out);
    assert!(
        !ok && output.contains("invalid resync schedule \"every now and then\""),
        "{output}"
    );
}

#[tokio::test]
async fn scheduled_resyncs_should_serve_their_metrics() {
    let fake = Arc::new(FakeGitHub::new(&["a/b.yaml"], 100));
    let github = fake.serve().await;
    let http = free_addr();
    let mut command = Command::new(env!("CARGO_BIN_EXE_reconcilers"));
    // Every second, and nothing matches (so no workqueue is needed): runs to count.
    command.args([
        "resync",
        "--repository",
        REPOSITORY,
        "--path-pattern",
        "nothing/(.+)",
        "--period-hours",
        "24",
        "--schedule",
        "* * * * * *",
        "--github-api",
        &github,
        "--listen",
        &http.to_string(),
    ]);
    let mut resync = Proc::spawn("resync", &mut command);
    resync.wait_healthy(http).await;
    let metrics = eventually("a scheduled run", Duration::from_secs(30), async || {
        let (_, metrics) = http_get(http, "/metrics").await?;
        (successful_runs(&metrics)? >= 2).then_some(metrics)
    })
    .await;
    for line in [
        "resync_files_listed_total ",
        "resync_keys_enqueued_total 0",
        "resync_github_calls_total ",
        "resync_last_success_timestamp_seconds ",
    ] {
        assert!(metrics.contains(line), "{line} in {metrics}");
    }
    assert!(
        !metrics.contains("resync_files_listed_total 0"),
        "{metrics}"
    );

    // dev with path routes (here from a routes file) runs a resync for each, on its schedule,
    // into the workqueue its route sends keys to: dev's own, or a receiver the route names.
    let other = TestStorage::dir();
    let (other_http, other_grpc) = (free_addr(), free_addr());
    let mut receiver = other.receiver("receiver", other_http, other_grpc);
    receiver.wait_healthy(other_http).await;
    let storage = TestStorage::dir();
    let (dev_http, dev_grpc) = (free_addr(), free_addr());
    let routes = format!(
        "[[route]]\nrepository = '{REPOSITORY}'\npath_patterns = ['a/(.+)']\n\n\
         [[route]]\nrepository = '{REPOSITORY}'\npath_patterns = ['(a)/.+']\n\
         workqueue = 'http://{other_grpc}'\n"
    );
    let mut dev = storage.reconcilers(
        "dev",
        &[
            "dev",
            "--storage",
            &storage.url(),
            "--listen",
            &dev_http.to_string(),
            "--grpc-listen",
            &dev_grpc.to_string(),
            "--routes-toml",
            &routes,
            "--github-api",
            &github,
            "--resync-schedule",
            "* * * * * *",
        ],
    );
    dev.wait_healthy(dev_http).await;
    eventually(
        "dev's scheduled resync",
        Duration::from_secs(30),
        async || {
            let (_, metrics) = http_get(dev_http, "/metrics").await?;
            (successful_runs(&metrics)? >= 1).then_some(())
        },
    )
    .await;
    // Each key where its route sends it (dev's built-in reconciler may have run its own key
    // if its spread delay was 0: the next sweep, a second later, enqueues it again).
    let key = |capture: &str| format!("https://github.com/{REPOSITORY}/blob/{BRANCH}/{capture}");
    let (dev_queue, other_queue) = (storage.queue().await, other.queue().await);
    let keys = async |queue: &workqueue::Queue| -> Option<BTreeSet<String>> {
        let snapshot = queue.snapshot().await.ok()?;
        let queued = snapshot.queued.into_iter().map(|l| l.record.key);
        let running = snapshot.in_progress.into_iter().map(|l| l.record.key);
        Some(queued.chain(running).collect())
    };
    let expected = (BTreeSet::from([key("b.yaml")]), BTreeSet::from([key("a")]));
    eventually(
        "each route's keys in its workqueue",
        Duration::from_secs(30),
        async || {
            let got = (keys(&dev_queue).await?, keys(&other_queue).await?);
            (got == expected).then_some(())
        },
    )
    .await;
}

/// The count of successful sweeps on a `/metrics` page.
fn successful_runs(metrics: &str) -> Option<u64> {
    counter(metrics, r#"resync_runs_total{result="success"}"#)
}
