//! CPU per already-reconciled key: `pr_title_check` asked again about a pull request whose
//! head it has checked (two reads, no write), in process, against the fake GitHub API served
//! by a child process (so the fake's CPU is not counted). The pull request is the real
//! 16 KB API answer of `fixtures/github/pull_request/00-opened.json`.
//!
//! `cargo bench -p examples --bench already_reconciled` prints a Markdown table (the figures
//! in docs/benchmarks.md). Run it pinned to one core (`taskset -c 0`) for stable figures.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use examples::pr_title_check::PrTitleCheck;
use github_reconciler::fake::FakeGitHub;
use github_reconciler::{Auth, Clients, GitHub, RequestCounts, Token};
use reconciler::{Action, Reconciler};

const KEY: &str = "https://github.com/Codertocat/Hello-World/pull/2";
const IDENTITY: &str = "pr-title";
/// Reconciles measured per case, after as many to warm up.
const ROUNDS: u64 = 5_000;

/// CPU time of this process so far, all its threads (Linux: the first field of each thread's
/// `schedstat`, in nanoseconds; `getrusage` would need `unsafe`, which this workspace forbids).
fn cpu() -> Duration {
    let threads = std::fs::read_dir("/proc/self/task").expect("Linux /proc");
    let nanos = threads
        .filter_map(|entry| {
            let stat = std::fs::read_to_string(entry.ok()?.path().join("schedstat")).ok()?;
            stat.split_whitespace().next()?.parse::<u64>().ok()
        })
        .sum();
    Duration::from_nanos(nanos)
}

/// In the child: serve the fake with the fixture's pull request (title fixed to pass the
/// check); print its URL.
fn serve_fake() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../fixtures/github/pull_request/00-opened.json"
    );
    let delivery: serde_json::Value =
        serde_json::from_slice(&std::fs::read(path).expect("the fixture")).unwrap();
    let mut pr = delivery["pull_request"].clone();
    pr["title"] = "docs: update the README".into();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let fake = FakeGitHub::new();
        fake.set_pull_json("Codertocat/Hello-World", 2, pr);
        println!("{}", fake.serve().await);
        std::future::pending::<()>().await;
    });
}

fn per_key(total: u64) -> String {
    format!("{:.2}", total as f64 / ROUNDS as f64)
}

/// One case: `ROUNDS` reconciles of the already-checked key; prints its row.
async fn case(url: &str, conditional: bool) {
    let clients = Arc::new(
        Clients::new(url, Auth::Token(Token::new("bench-token"))).conditional_requests(conditional),
    );
    let reconciler =
        GitHub::new(PrTitleCheck::new(IDENTITY), clients.clone()).with_identity(IDENTITY);
    for _ in 0..ROUNDS {
        assert_eq!(reconciler.reconcile(KEY, 0).await.unwrap(), Action::done());
    }
    let before = clients.counts();
    let (cpu_before, started) = (cpu(), Instant::now());
    for _ in 0..ROUNDS {
        assert_eq!(reconciler.reconcile(KEY, 0).await.unwrap(), Action::done());
    }
    let (cpu_used, took) = (cpu() - cpu_before, started.elapsed());
    let after = clients.counts();
    let delta = RequestCounts {
        reads: after.reads - before.reads,
        not_modified: after.not_modified - before.not_modified,
        writes: after.writes - before.writes,
        rate_limited: after.rate_limited - before.rate_limited,
    };
    assert_eq!(delta.writes, 0, "an already-checked head is never written");
    println!(
        "| {} | {} | {} | {} | {:.0} µs | {:.0} µs |",
        if conditional {
            "pr_title_check, conditional requests on"
        } else {
            "pr_title_check, conditional requests off"
        },
        per_key(delta.reads),
        per_key(delta.not_modified),
        per_key(delta.writes),
        cpu_used.as_secs_f64() * 1e6 / ROUNDS as f64,
        took.as_secs_f64() * 1e6 / ROUNDS as f64,
    );
}

/// The floor: the same two reads by a bare reqwest client, answers read and not parsed.
async fn floor(url: &str) {
    let http = reqwest::Client::new();
    let sha = "ec26c3e57ca3a959ca5aad62de7213c562f8c821";
    let paths = [
        format!("{url}/repos/Codertocat/Hello-World/pulls/2"),
        format!(
            "{url}/repos/Codertocat/Hello-World/commits/{sha}/check-runs?check_name={IDENTITY}&filter=latest"
        ),
    ];
    let get = async |path: &str| {
        let answer = http
            .get(path)
            .bearer_auth("bench-token")
            .send()
            .await
            .unwrap();
        assert!(answer.status().is_success());
        answer.bytes().await.unwrap().len()
    };
    let mut bytes = 0;
    for _ in 0..ROUNDS {
        for path in &paths {
            bytes += get(path).await;
        }
    }
    let (cpu_before, started) = (cpu(), Instant::now());
    for _ in 0..ROUNDS {
        for path in &paths {
            get(path).await;
        }
    }
    let (cpu_used, took) = (cpu() - cpu_before, started.elapsed());
    println!(
        "| floor: the two GETs by a bare reqwest client ({:.1} KB answered) | 2.00 | 0.00 | 0.00 | {:.0} µs | {:.0} µs |",
        bytes as f64 / ROUNDS as f64 / 1e3,
        cpu_used.as_secs_f64() * 1e6 / ROUNDS as f64,
        took.as_secs_f64() * 1e6 / ROUNDS as f64,
    );
}

fn main() {
    if std::env::var_os("TOOLKIT_BENCH_FAKE").is_some() {
        serve_fake();
        return;
    }
    let mut child = Command::new(std::env::current_exe().unwrap())
        .env("TOOLKIT_BENCH_FAKE", "1")
        .stdout(Stdio::piped())
        .spawn()
        .expect("start the fake GitHub API");
    let mut url = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut url)
        .unwrap();
    // One thread: the CPU measured is the reconciler's, its client's and the runtime's.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    println!(
        "| reconcile of an already-checked pull request | reads per key | of which 304 | writes per key | CPU per key | wall per key |"
    );
    println!("|---|---|---|---|---|---|");
    runtime.block_on(async {
        case(url.trim(), true).await;
        case(url.trim(), false).await;
        floor(url.trim()).await;
    });
    child.kill().ok();
    child.wait().ok();
}
