//! Sweeps against the fake GitHub API: which keys, at what priority and delay, through
//! truncated trees, rate limits and a failing workqueue.

mod fake_github;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use fake_github::{BRANCH, COMMIT, FakeGitHub, REPOSITORY};
use github::api::GitHubApi;
use resync::{Period, Sweep, SweepError};
use workqueue::client::{Enqueue, EnqueueError};

/// A workqueue that records what it is given; it fails the first `failures` calls, and
/// refuses keys containing `refuse`.
#[derive(Debug, Default)]
struct Recorder {
    keys: Mutex<Vec<(String, i64, Duration)>>,
    failures: AtomicUsize,
    refuse: Option<&'static str>,
}

#[async_trait]
impl Enqueue for Recorder {
    async fn enqueue(&self, key: &str, priority: i64, delay: Duration) -> Result<(), EnqueueError> {
        if self
            .failures
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok()
        {
            return Err(EnqueueError::Unavailable("connection refused".into()));
        }
        if self.refuse.is_some_and(|r| key.contains(r)) {
            return Err(EnqueueError::Refused {
                key: key.to_owned(),
                source: "too long".into(),
            });
        }
        self.keys
            .lock()
            .unwrap()
            .push((key.to_owned(), priority, delay));
        Ok(())
    }
}

impl Recorder {
    /// A workqueue that fails (as unavailable) its first `n` enqueues.
    fn failing(n: usize) -> Self {
        Self {
            failures: AtomicUsize::new(n),
            ..Self::default()
        }
    }

    fn keys(&self) -> BTreeMap<String, (i64, Duration)> {
        let keys = self.keys.lock().unwrap();
        let map: BTreeMap<_, _> = keys.iter().map(|(k, p, d)| (k.clone(), (*p, *d))).collect();
        assert_eq!(map.len(), keys.len(), "each key once: {keys:?}");
        map
    }
}

const FILES: &[&str] = &[
    "config/a.yaml",
    "config/b.yaml",
    "config/team/c.yaml",
    "config/a.yml",
    "config/a.yaml.bak",
    "docs/readme.md",
    "apps/web/deploy.yaml",
    "apps/web/service.yaml",
    "apps/api/deploy.yaml",
    "README.md",
];

fn key(captured: &str) -> String {
    format!("https://github.com/{REPOSITORY}/blob/{BRANCH}/{captured}")
}

async fn sweep_of(
    fake: &Arc<FakeGitHub>,
    patterns: &[&str],
    period_hours: u32,
    workqueue: Arc<Recorder>,
) -> Sweep {
    let api = GitHubApi::from_env(Some(&fake.serve().await)).unwrap();
    Sweep::new(
        api,
        REPOSITORY,
        patterns,
        Period::from_hours(period_hours).unwrap(),
        workqueue,
    )
    .unwrap()
    .with_retries(3, Duration::from_millis(1))
}

#[tokio::test]
async fn matching_files_should_become_keys_once_at_priority_zero_within_the_period() {
    let fake = Arc::new(FakeGitHub::new(FILES, 100_000));
    let recorder = Arc::new(Recorder::default());
    let sweep = sweep_of(
        &fake,
        &["config/(.+)\\.yaml", "(apps/[^/]+)/.*"],
        6,
        recorder.clone(),
    )
    .await;
    let report = sweep.run(SystemTime::now()).await.unwrap();
    let keys = recorder.keys();
    let expected: Vec<String> = ["a", "b", "team/c", "apps/web", "apps/api"]
        .iter()
        .map(|c| key(c))
        .collect();
    let mut expected_sorted = expected.clone();
    expected_sorted.sort();
    assert_eq!(keys.keys().cloned().collect::<Vec<_>>(), expected_sorted);
    for (key, (priority, delay)) in &keys {
        assert_eq!(*priority, 0, "{key}");
        assert!(*delay < Duration::from_secs(6 * 3600), "{key}: {delay:?}");
        assert_eq!(delay.as_secs() % 60, 0, "{key}: whole minutes");
    }
    assert_eq!(
        (report.branch.as_str(), report.commit.as_str()),
        (BRANCH, COMMIT)
    );
    assert_eq!(
        (report.files, report.matched, report.keys, report.enqueued),
        (10, 6, 5, 5)
    );
    // The repository, the branch, one recursive tree.
    assert_eq!(report.github_calls, 3);
    assert_eq!(fake.calls.load(Ordering::SeqCst), 3);
}

#[tokio::test]
async fn delays_should_spread_keys_across_the_period() {
    let files: Vec<String> = (0..2_000).map(|i| format!("config/f{i}.yaml")).collect();
    let fake = Arc::new(FakeGitHub::new(&files, 100_000));
    let recorder = Arc::new(Recorder::default());
    let sweep = sweep_of(&fake, &["config/(.+)\\.yaml"], 24, recorder.clone()).await;
    let run_time = SystemTime::UNIX_EPOCH + Duration::from_secs(1_767_225_600);
    sweep.run(run_time).await.unwrap();
    let mut per_hour = [0usize; 24];
    for (_, delay) in recorder.keys().values() {
        per_hour[(delay.as_secs() / 3600) as usize] += 1;
    }
    // 2,000 keys over 24 hours: about 83 an hour.
    for count in per_hour {
        assert!((40..140).contains(&count), "{per_hour:?}");
    }
}

#[tokio::test]
async fn a_truncated_tree_should_still_yield_every_file() {
    let files: Vec<String> = (0..3_000)
        .map(|i| format!("team{}/svc{}/config/f{i}.yaml", i % 7, i % 40))
        .collect();
    let whole = Arc::new(FakeGitHub::new(&files, 100_000));
    let cut = Arc::new(FakeGitHub::new(&files, 500));
    let (all, partial) = (Arc::new(Recorder::default()), Arc::new(Recorder::default()));
    let pattern = ["(team\\d+/svc\\d+/config/.+)\\.yaml"];
    let report_whole = sweep_of(&whole, &pattern, 1, all.clone())
        .await
        .run(SystemTime::now())
        .await
        .unwrap();
    let report_cut = sweep_of(&cut, &pattern, 1, partial.clone())
        .await
        .run(SystemTime::now())
        .await
        .unwrap();
    assert_eq!(all.keys().len(), 3_000);
    assert_eq!(
        all.keys().keys().collect::<Vec<_>>(),
        partial.keys().keys().collect::<Vec<_>>()
    );
    assert_eq!(report_cut.files, 3_000);
    assert!(cut.truncated_answers.load(Ordering::SeqCst) >= 1);
    assert!(
        report_cut.github_calls > report_whole.github_calls,
        "sub-trees were listed: {} vs {}",
        report_cut.github_calls,
        report_whole.github_calls
    );
}

#[tokio::test]
async fn a_rate_limited_answer_should_be_waited_out() {
    let fake = Arc::new(FakeGitHub::new(FILES, 100_000));
    fake.rate_limited.store(2, Ordering::SeqCst);
    let recorder = Arc::new(Recorder::default());
    let sweep = sweep_of(&fake, &["config/(.+)\\.yaml"], 1, recorder.clone()).await;
    let started = std::time::Instant::now();
    let report = sweep.run(SystemTime::now()).await.unwrap();
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "it waited for the reset"
    );
    assert_eq!(report.enqueued, 3);
    assert_eq!(report.github_calls, 5, "two limited calls, then three");
}

#[tokio::test]
async fn bad_patterns_should_be_refused_naming_them() {
    let fake = Arc::new(FakeGitHub::new(FILES, 100_000));
    let api = GitHubApi::from_env(Some(&fake.serve().await)).unwrap();
    for (pattern, expect) in [
        ("config/.+", "0 capture groups"),
        ("(config)/(.+)", "2 capture groups"),
        ("config/(.+", "invalid path pattern"),
    ] {
        let err = Sweep::new(
            api.clone(),
            REPOSITORY,
            &[pattern],
            Period::from_hours(1).unwrap(),
            Arc::new(Recorder::default()),
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains(pattern) && err.contains(expect), "{err}");
    }
    let err = Sweep::new(
        api,
        "not-a-repository",
        &["(x)"],
        Period::from_hours(1).unwrap(),
        Arc::new(Recorder::default()),
    )
    .unwrap_err();
    assert!(err.to_string().contains("OWNER/REPO"), "{err}");
}

#[tokio::test]
async fn workqueue_failures_should_be_retried_then_fail_the_sweep() {
    let fake = Arc::new(FakeGitHub::new(FILES, 100_000));
    let flaky = Arc::new(Recorder::failing(2));
    let sweep = sweep_of(&fake, &["config/(.+)\\.yaml"], 1, flaky.clone()).await;
    let report = sweep
        .with_concurrency(1)
        .run(SystemTime::now())
        .await
        .unwrap();
    assert_eq!(
        (report.enqueued, flaky.keys().len()),
        (3, 3),
        "retried through"
    );

    let down = Arc::new(Recorder::failing(usize::MAX));
    let sweep = sweep_of(&fake, &["config/(.+)\\.yaml"], 1, down).await;
    let err = sweep.run(SystemTime::now()).await.unwrap_err();
    assert!(matches!(err, SweepError::Workqueue { .. }), "{err}");
    assert!(err.is_transient(), "the workqueue may be back");
    let message = workqueue::error_chain(&err);
    assert!(
        message.contains("connection refused") && message.contains("3 times"),
        "{message}"
    );

    let picky = Arc::new(Recorder {
        refuse: Some("team"),
        ..Recorder::default()
    });
    let sweep = sweep_of(&fake, &["config/(.+)\\.yaml"], 1, picky.clone()).await;
    let err = sweep.run(SystemTime::now()).await.unwrap_err();
    assert!(matches!(err, SweepError::Refused { .. }), "{err}");
    assert!(!err.is_transient(), "refused again on a new try");
    assert_eq!(err.report().enqueued, 2, "the others were enqueued");
    assert_eq!(picky.keys().len(), 2);
}

#[tokio::test]
async fn github_errors_should_fail_the_sweep_loudly() {
    let fake = Arc::new(FakeGitHub::new(FILES, 100_000));
    let api = GitHubApi::from_env(Some(&fake.serve().await)).unwrap();
    let sweep = Sweep::new(
        api,
        "octo/missing",
        &["(.+)"],
        Period::from_hours(1).unwrap(),
        Arc::new(Recorder::default()),
    )
    .unwrap();
    let err = sweep.run(SystemTime::now()).await.unwrap_err();
    assert!(matches!(err, SweepError::GitHub { .. }), "{err}");
    assert!(
        !err.is_transient(),
        "a missing repository stays missing: {err}"
    );
    let message = workqueue::error_chain(&err);
    assert!(
        message.contains("404") && message.contains("octo/missing"),
        "{message}"
    );
}

#[tokio::test]
async fn a_failed_sweep_should_be_tried_again_within_its_turn() {
    let fake = Arc::new(FakeGitHub::new(FILES, 100_000));
    // The first sweep's first key fails all of its 3 tries; the workqueue is back after.
    let flaky = Arc::new(Recorder::failing(3));
    let sweep = sweep_of(&fake, &["config/(.+)\\.yaml"], 24, flaky.clone())
        .await
        .with_concurrency(1);
    let metrics = resync::ResyncMetrics::default();
    let retry_waits = [Duration::from_millis(10)];
    assert!(resync::schedule::run_retrying(&sweep, &retry_waits, &metrics).await);
    assert_eq!(flaky.keys().len(), 3, "the second try stored every key");
    let text = rendered(&metrics);
    for line in [
        r#"resync_runs_total{result="failure"} 1"#,
        r#"resync_runs_total{result="success"} 1"#,
    ] {
        assert!(text.contains(line), "{line} in\n{text}");
    }
    // A turn whose every try fails says so.
    let failing = Arc::new(Recorder::failing(usize::MAX));
    let sweep = sweep_of(&fake, &["config/(.+)\\.yaml"], 24, failing)
        .await
        .with_concurrency(1);
    assert!(!resync::schedule::run_retrying(&sweep, &retry_waits, &metrics).await);

    // Keys the workqueue refuses would be refused again: one run, not tried again.
    let picky = Arc::new(Recorder {
        refuse: Some("team"),
        ..Recorder::default()
    });
    let sweep = sweep_of(&fake, &["config/(.+)\\.yaml"], 24, picky.clone()).await;
    let metrics = resync::ResyncMetrics::default();
    assert!(!resync::schedule::run_retrying(&sweep, &retry_waits, &metrics).await);
    assert_eq!(picky.keys().len(), 2, "each of the others enqueued once");
    let text = rendered(&metrics);
    assert!(
        text.contains(r#"resync_runs_total{result="failure"} 1"#),
        "one run: {text}"
    );
}

/// The resync's metrics in the text format.
fn rendered(metrics: &resync::ResyncMetrics) -> String {
    let mut registry = prometheus_client::registry::Registry::default();
    metrics.register(&mut registry);
    workqueue::metrics::render(&registry)
}
