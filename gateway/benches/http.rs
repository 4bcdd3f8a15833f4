//! Deliveries per second on one core, and latency under load, through the whole gateway
//! (verify, CloudEvent, route, enqueue into a memory queue) over real HTTP, beside the peer a
//! user would otherwise pick: `@octokit/webhooks-methods`' `verify` and `JSON.parse` behind
//! `node:http` (benches/node/). The server under test is pinned to core 0, the load generator
//! (`wrk`, Debian's package) to core 1; both servers get the same payloads and the same load.
//! Two ceilings run beside them, under the same load: the floor of docs/benchmarks.md (HMAC plus a
//! typed parse, no CloudEvent, route or enqueue) behind axum, and the same floor behind a bare TCP
//! loop with no HTTP framework: what any gateway on this stack, or on none, could reach here.
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

/// Serves `server` on `addr` on one thread (a current-thread runtime), until killed.
fn serve(addr: SocketAddr, server: &str) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind(addr).await.unwrap();
        match server {
            "gateway" => axum::serve(listener, delivery::router()).await.unwrap(),
            "floor-axum" => axum::serve(listener, floor_router()).await.unwrap(),
            "floor-tcp" => floor_tcp(listener).await,
            other => panic!("no server {other}"),
        }
    });
}

/// The floor (HMAC + typed parse) behind axum: what any handler on this HTTP stack costs.
fn floor_router() -> axum::Router {
    use axum::http::{HeaderMap, StatusCode};
    async fn handle(headers: HeaderMap, body: axum::body::Bytes) -> StatusCode {
        let signature = headers
            .get("x-hub-signature-256")
            .map(|v| v.as_bytes())
            .unwrap_or_default();
        if delivery::floor(&body, signature) {
            StatusCode::ACCEPTED
        } else {
            StatusCode::UNAUTHORIZED
        }
    }
    axum::Router::new().route("/webhook", axum::routing::post(handle))
}

/// The floor behind the least HTTP that wrk accepts (one read of the head, the body by its
/// Content-Length, a fixed answer): what the kernel's loopback TCP plus the floor cost, with
/// no HTTP framework at all. Written by hand on purpose: it is the ceiling, not a server.
async fn floor_tcp(listener: tokio::net::TcpListener) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    loop {
        let (mut stream, _) = listener.accept().await.unwrap();
        tokio::spawn(async move {
            let mut buf = Vec::with_capacity(64 * 1024);
            loop {
                let head_end = loop {
                    if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                        break i + 4;
                    }
                    buf.reserve(64 * 1024);
                    if stream.read_buf(&mut buf).await.unwrap_or(0) == 0 {
                        return;
                    }
                };
                let head = std::str::from_utf8(&buf[..head_end]).unwrap().to_owned();
                let header = |name: &str| {
                    head.lines()
                        .find_map(|l| {
                            let (n, v) = l.split_once(':')?;
                            n.eq_ignore_ascii_case(name).then(|| v.trim().to_owned())
                        })
                        .unwrap_or_default()
                };
                let length: usize = header("content-length").parse().unwrap();
                let signature = header("x-hub-signature-256");
                while buf.len() < head_end + length {
                    buf.reserve(head_end + length - buf.len());
                    if stream.read_buf(&mut buf).await.unwrap_or(0) == 0 {
                        return;
                    }
                }
                let ok = delivery::floor(&buf[head_end..head_end + length], signature.as_bytes());
                let answer: &[u8] = if ok {
                    b"HTTP/1.1 202 Accepted\r\ncontent-length: 0\r\n\r\n"
                } else {
                    b"HTTP/1.1 401 Unauthorized\r\ncontent-length: 0\r\n\r\n"
                };
                if stream.write_all(answer).await.is_err() {
                    return;
                }
                buf.drain(..head_end + length);
            }
        });
    }
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

fn ours(addr: SocketAddr, server: &str) -> Server {
    let exe = std::env::current_exe().unwrap();
    let child = Command::new("taskset")
        .args(["-c", "0"])
        .arg(exe)
        .env("GATEWAY_BENCH_SERVE", addr.to_string())
        .env("GATEWAY_BENCH_SERVER", server)
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

/// Loads one server with one payload for `seconds`.
fn measure(server: &str, event: &str, name: &str, body: &[u8], seconds: u64) -> Load {
    let addr = free_addr();
    let process = if server == "node" {
        node(addr)
    } else {
        ours(addr, server)
    };
    wait_listening(addr);
    let load = wrk(addr, event, body, seconds);
    drop(process);
    if !load.errors.is_empty() {
        eprintln!("{name}, {server}: {}", load.errors);
    }
    load
}

fn main() {
    if let Ok(addr) = std::env::var("GATEWAY_BENCH_SERVE") {
        let server = std::env::var("GATEWAY_BENCH_SERVER").unwrap_or("gateway".into());
        serve(addr.parse().unwrap(), &server);
        return;
    }
    let seconds: u64 = std::env::var("BENCH_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(10);
    println!(
        "| payload | gateway: deliveries/s | p50 / p99 | Node peer: deliveries/s | p50 / p99 | gateway / peer | floor behind axum / peer | floor on bare TCP / peer |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    for (event, name, body) in delivery::payloads() {
        let gateway = measure("gateway", event, name, &body, seconds);
        let peer = measure("node", event, name, &body, seconds);
        let axum_floor = measure("floor-axum", event, name, &body, seconds);
        let tcp_floor = measure("floor-tcp", event, name, &body, seconds);
        println!(
            "| {name} | {:.0} | {} / {} | {:.0} | {} / {} | {:.2} | {:.0} ({:.2}) | {:.0} ({:.2}) |",
            gateway.rate,
            gateway.p50,
            gateway.p99,
            peer.rate,
            peer.p50,
            peer.p99,
            gateway.rate / peer.rate,
            axum_floor.rate,
            axum_floor.rate / peer.rate,
            tcp_floor.rate,
            tcp_floor.rate / peer.rate,
        );
    }
}
