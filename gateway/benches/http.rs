//! Deliveries per second on one core, and latency under load, through the whole gateway
//! (verify, CloudEvent, route, enqueue into a memory queue) over real HTTP, beside the peer a
//! user would otherwise pick: `@octokit/webhooks-methods`' `verify` and `JSON.parse` behind
//! `node:http` (benches/node/). The server under test is pinned to core 0, the load generator
//! (`wrk`, Debian's package) to core 1; both servers get the same payloads and the same load.
//!
//! `cargo bench -p gateway --bench http` prints a Markdown table (the README's figures). It
//! needs `wrk`, `taskset`, `node` and `npm` (it installs the Node peer's one dependency into
//! benches/node/node_modules); `BENCH_SECONDS=N` sets each run's length (default 10).

#[path = "delivery.rs"]
#[allow(dead_code)]
mod delivery;

use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use gateway::signature::sign;

const CONNECTIONS: &str = "32";

/// Serves the gateway on `addr` on one thread (a current-thread runtime), until killed.
fn serve(addr: SocketAddr) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind(addr).await.unwrap();
        axum::serve(listener, delivery::router()).await.unwrap();
    });
}

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_addr() -> SocketAddr {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
}

fn wait_listening(addr: SocketAddr) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::net::TcpStream::connect(addr).is_err() {
        assert!(
            Instant::now() < deadline,
            "the server at {addr} did not start"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn ours(addr: SocketAddr) -> Server {
    let exe = std::env::current_exe().unwrap();
    let child = Command::new("taskset")
        .args(["-c", "0"])
        .arg(exe)
        .env("GATEWAY_BENCH_SERVE", addr.to_string())
        .stdout(Stdio::null())
        .spawn()
        .expect("start the gateway under taskset");
    Server(child)
}

fn node(addr: SocketAddr) -> Server {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/benches/node");
    if !std::path::Path::new(dir).join("node_modules").exists() {
        let status = Command::new("npm")
            .args(["install", "--silent", "--no-audit", "--no-fund"])
            .current_dir(dir)
            .status()
            .expect("run npm");
        assert!(status.success(), "npm install failed");
    }
    let child = Command::new("taskset")
        .args([
            "-c",
            "0",
            "node",
            "server.mjs",
            &addr.port().to_string(),
            delivery::SECRET,
        ])
        .current_dir(dir)
        .spawn()
        .expect("start the Node peer under taskset");
    Server(child)
}

/// What wrk measured.
struct Load {
    rate: f64,
    p50: String,
    p99: String,
    errors: String,
}

fn wrk(addr: SocketAddr, event: &str, body: &[u8], seconds: u64) -> Load {
    let dir = tempfile::tempdir().unwrap();
    let body_path = dir.path().join("body.json");
    std::fs::write(&body_path, body).unwrap();
    let script = dir.path().join("post.lua");
    std::fs::write(
        &script,
        format!(
            r#"local f = io.open("{}", "rb")
wrk.method = "POST"
wrk.body = f:read("*a")
f:close()
wrk.headers["Content-Type"] = "application/json"
wrk.headers["X-GitHub-Event"] = "{event}"
wrk.headers["X-GitHub-Delivery"] = "72d3162e-cc78-11e3-81ab-4c9367dc0958"
wrk.headers["X-Hub-Signature-256"] = "{}"
"#,
            body_path.display(),
            sign(delivery::SECRET.as_bytes(), body)
        ),
    )
    .unwrap();
    let out = Command::new("taskset")
        .args(["-c", "1", "wrk", "-t1", "-c", CONNECTIONS, "--latency"])
        .arg(format!("-d{seconds}s"))
        .arg("-s")
        .arg(&script)
        .arg(format!("http://{addr}/webhook"))
        .output()
        .expect("run wrk (apt-get install wrk)");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let field = |prefix: &str| {
        text.lines()
            .find(|l| l.trim_start().starts_with(prefix))
            .map(|l| l.split_whitespace().nth(1).unwrap_or("?").to_owned())
            .unwrap_or_else(|| "?".to_owned())
    };
    let errors = text
        .lines()
        .filter(|l| l.contains("Non-2xx") || l.contains("Socket errors"))
        .map(str::trim)
        .collect::<Vec<_>>()
        .join("; ");
    Load {
        rate: field("Requests/sec:").parse().unwrap_or(0.0),
        p50: field("50%"),
        p99: field("99%"),
        errors,
    }
}

fn main() {
    if let Ok(addr) = std::env::var("GATEWAY_BENCH_SERVE") {
        serve(addr.parse().unwrap());
        return;
    }
    let seconds: u64 = std::env::var("BENCH_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(10);
    println!(
        "| payload | gateway: deliveries/s | p50 / p99 | Node peer: deliveries/s | p50 / p99 | gateway / peer |"
    );
    println!("|---|---|---|---|---|---|");
    for (event, name, body) in delivery::payloads() {
        let addr = free_addr();
        let server = ours(addr);
        wait_listening(addr);
        let gateway = wrk(addr, event, &body, seconds);
        drop(server);
        let addr = free_addr();
        let server = node(addr);
        wait_listening(addr);
        let peer = wrk(addr, event, &body, seconds);
        drop(server);
        for (who, load) in [("gateway", &gateway), ("peer", &peer)] {
            if !load.errors.is_empty() {
                eprintln!("{name}, {who}: {}", load.errors);
            }
        }
        println!(
            "| {name} | {:.0} | {} / {} | {:.0} | {} / {} | {:.2} |",
            gateway.rate,
            gateway.p50,
            gateway.p99,
            peer.rate,
            peer.p50,
            peer.p99,
            gateway.rate / peer.rate
        );
    }
}
