//! A sweep of a 100,000-file tree with 10,000 matching files against the fake GitHub API
//! (served by a child process, so its memory is not the sweep's): wall time, peak memory (the
//! high-water RSS of a process of its own per case) and GitHub calls, for a tree GitHub answers
//! whole, one cut at GitHub's limit of 100,000 entries, and one cut at 1,000 entries per
//! answer. Keys go into a memory queue.
//!
//! `cargo bench -p resync --bench sweep` prints a Markdown table (the README's figures).

#[path = "../tests/fake_github/mod.rs"]
mod fake_github;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Instant, SystemTime};

use fake_github::{FakeGitHub, REPOSITORY};
use github::api::GitHubApi;
use resync::{Period, Sweep};
use workqueue::client::LocalWorkqueue;
use workqueue::storage::MemoryStorage;
use workqueue::{Queue, QueueConfig};

/// A line of /proc/self/status, in MB (Linux).
fn status_mb(field: &str) -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|line| line.strip_prefix(field))
        .and_then(|rest| {
            rest.trim()
                .trim_end_matches("kB")
                .trim()
                .parse::<f64>()
                .ok()
        })
        .map_or(f64::NAN, |kb| kb / 1e3)
}

const FILES: usize = 100_000;
const PATTERN: &str = r"(teams/.+/k8s/[^/]+)\.yaml";

/// 100,000 files in 2,000 service directories of 50 teams; one in ten is a manifest under
/// `k8s/` that the pattern matches.
fn files() -> Vec<String> {
    (0..FILES)
        .map(|i| {
            let (team, service) = (i % 50, (i / 50) % 40);
            if i % 10 == 0 {
                format!("teams/t{team}/svc{service}/k8s/m{i}.yaml")
            } else {
                format!("teams/t{team}/svc{service}/src/module{}/file{i}.rs", i % 7)
            }
        })
        .collect()
}

/// In the child: serve the fake with recursive answers cut beyond `limit`; print its URL.
fn serve_fake(limit: usize) {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let fake = Arc::new(FakeGitHub::new(&files(), limit));
        println!("{}", fake.serve().await);
        std::future::pending::<()>().await;
    });
}

/// In a process of its own: one sweep against a fake cut beyond `limit`; prints its row.
fn run_case(name: &str, limit: usize) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let mut child = Command::new(std::env::current_exe().unwrap())
        .env("RESYNC_BENCH_FAKE_LIMIT", limit.to_string())
        .stdout(Stdio::piped())
        .spawn()
        .expect("start the fake GitHub API");
    let mut url = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut url)
        .unwrap();
    let (report, took, before) = runtime.block_on(async {
        let queue = Queue::new(Arc::new(MemoryStorage::new()), QueueConfig::default());
        let api = GitHubApi::from_env(Some(url.trim())).unwrap();
        let sweep = Sweep::new(
            api,
            REPOSITORY,
            &[PATTERN],
            Period::from_hours(24).unwrap(),
            Arc::new(LocalWorkqueue::new(queue)),
        )
        .unwrap();
        let before = status_mb("VmRSS:");
        let started = Instant::now();
        let report = sweep.run(SystemTime::now()).await.unwrap();
        (report, started.elapsed(), before)
    });
    child.kill().ok();
    child.wait().ok();
    assert_eq!(report.files as usize, FILES);
    assert_eq!(report.enqueued, FILES / 10);
    println!(
        "| {name} | {} | {} | {} | {:.2} s | {:.1} MB ({:.1} MB before) |",
        report.files,
        report.enqueued,
        report.github_calls,
        took.as_secs_f64(),
        status_mb("VmHWM:"),
        before,
    );
}

fn main() {
    if let Ok(limit) = std::env::var("RESYNC_BENCH_FAKE_LIMIT") {
        serve_fake(limit.parse().unwrap());
        return;
    }
    if let Ok(case) = std::env::var("RESYNC_BENCH_CASE") {
        let (limit, name) = case.split_once(' ').unwrap();
        run_case(name, limit.parse().unwrap());
        return;
    }
    println!(
        "| tree answers | files listed | keys enqueued | GitHub calls | wall time | peak RSS |"
    );
    println!("|---|---|---|---|---|---|");
    for (name, limit) in [
        ("whole", usize::MAX),
        ("cut at 100,000 entries (GitHub's limit)", 100_000),
        ("cut at 1,000 entries", 1_000),
    ] {
        let status = Command::new(std::env::current_exe().unwrap())
            .env("RESYNC_BENCH_CASE", format!("{limit} {name}"))
            .status()
            .expect("run a case");
        assert!(status.success());
    }
}
