//! Helpers for the end-to-end tests: free loopback ports, real `reconcilers` processes that
//! are killed when dropped, polling with a deadline, and the Python interpreter of the test
//! environment.

#![allow(dead_code, unreachable_pub)]

use std::net::{SocketAddr, TcpListener};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A reconciler served over gRPC until [`Served::stop`].
pub struct Served {
    stop: tokio_util::sync::CancellationToken,
    task: tokio::task::JoinHandle<Result<(), tonic::transport::Error>>,
}

/// Serves `reconciler` on `addr` with the SDK, as a reconciler service of a user's would be.
pub fn serve_reconciler<R: reconciler::Reconciler>(reconciler: R, addr: SocketAddr) -> Served {
    let stop = tokio_util::sync::CancellationToken::new();
    let until = stop.clone();
    let task = tokio::spawn(reconciler::serve(reconciler, addr, async move {
        until.cancelled().await
    }));
    Served { stop, task }
}

impl Served {
    /// Stops serving, and fails if the server failed.
    pub async fn stop(self) {
        self.stop.cancel();
        self.task
            .await
            .expect("the server task")
            .expect("the server");
    }
}

/// A loopback address with a port that was free a moment ago.
pub fn free_addr() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    listener.local_addr().expect("local address")
}

/// A child process killed (SIGKILL) and reaped when dropped.
pub struct Proc {
    pub name: String,
    pub child: Child,
}

impl Proc {
    /// Starts `reconcilers ARGS` with its output in the test's output.
    pub fn reconcilers(name: &str, args: &[&str]) -> Self {
        Self::spawn(
            name,
            Command::new(env!("CARGO_BIN_EXE_reconcilers")).args(args),
        )
    }

    pub fn spawn(name: &str, command: &mut Command) -> Self {
        let child = command
            .env(
                "RUST_LOG",
                std::env::var("RUST_LOG").unwrap_or_else(|_| "info".into()),
            )
            // Loopback calls stay on loopback, whatever proxy the environment names.
            .env("NO_PROXY", "127.0.0.1,localhost")
            .env("no_proxy", "127.0.0.1,localhost")
            .stdin(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("failed to start {name}: {e}"));
        Self {
            name: name.to_owned(),
            child,
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends a signal by number (9 = SIGKILL, 15 = SIGTERM).
    pub fn signal(&self, signal: i32) {
        let status = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(self.pid().to_string())
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -{signal} {} failed", self.name);
    }

    /// Waits until this process answers `GET /healthz` with 200 on `addr`, failing at once
    /// with its exit status if it ends first (a port taken between choosing and binding it),
    /// and checking that the listener on `addr` is this process's, not another test's.
    pub async fn wait_healthy(&mut self, addr: SocketAddr) {
        let pid = self.pid();
        let name = self.name.clone();
        let child = &mut self.child;
        eventually(
            &format!("{name} to be healthy on {addr}"),
            Duration::from_secs(30),
            async || {
                if let Some(status) = child.try_wait().expect("try_wait") {
                    panic!("{name} exited before it was healthy on {addr}: {status}");
                }
                let (status, _) = http_get(addr, "/healthz").await?;
                (status == 200).then_some(())
            },
        )
        .await;
        assert!(
            listens_on(pid, addr),
            "{addr} answers, but not from {name} (pid {pid}): another process has the port"
        );
    }

    /// Waits for the process to exit, up to `timeout`.
    pub fn wait_exit(&mut self, timeout: Duration) -> std::process::ExitStatus {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "{} did not exit within {timeout:?}",
                self.name
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Whether a finished command succeeded, and all it printed (stdout, then stderr).
pub fn outcome(out: &std::process::Output) -> (bool, String) {
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

/// Polls `check` every 20 ms until it returns `Some`, failing the test after `timeout`.
pub async fn eventually<T>(
    what: &str,
    timeout: Duration,
    mut check: impl AsyncFnMut() -> Option<T>,
) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Whether process `pid` holds a listening IPv4 TCP socket on `addr`'s port, read from `/proc`:
/// the socket's inode in `/proc/net/tcp`, among the process's descriptors (the port is what
/// tells two listeners apart here: every test listens on 127.0.0.1).
pub fn listens_on(pid: u32, addr: SocketAddr) -> bool {
    let Ok(table) = std::fs::read_to_string("/proc/net/tcp") else {
        return false;
    };
    let port = format!(":{:04X}", addr.port());
    let inodes: Vec<String> = table
        .lines()
        .skip(1)
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            // local address, state 0A (LISTEN), inode.
            let local = fields.get(1)?;
            (local.ends_with(&port) && fields.get(3) == Some(&"0A"))
                .then(|| fields.get(9).map(|inode| format!("socket:[{inode}]")))?
        })
        .collect();
    let Ok(descriptors) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
        return false;
    };
    descriptors.flatten().any(|fd| {
        std::fs::read_link(fd.path())
            .is_ok_and(|target| inodes.iter().any(|i| target.as_os_str() == i.as_str()))
    })
}

/// A minimal HTTP/1.1 GET over loopback: `(status, body)`, or `None` when nothing answers.
pub async fn http_get(addr: SocketAddr, path: &str) -> Option<(u16, String)> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(addr).await.ok()?;
    let request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.ok()?;
    let mut response = Vec::new();
    stream.read_to_end(&mut response).await.ok()?;
    let text = String::from_utf8_lossy(&response).into_owned();
    let status = text.split_whitespace().nth(1)?.parse().ok()?;
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    Some((status, body))
}

/// The value of the series `series` (a name with its labels, as printed) on a `/metrics` page.
pub fn counter(metrics: &str, series: &str) -> Option<u64> {
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))?
        .trim()
        .parse()
        .ok()
}

/// The Python interpreter with the test requirements (`tests/requirements.txt`): `$PYTHON`,
/// else the repository's `.venv`.
pub fn python() -> PathBuf {
    if let Some(python) = std::env::var_os("PYTHON") {
        return python.into();
    }
    let venv = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(".venv/bin/python");
    assert!(
        venv.exists(),
        "no Python test environment: run scripts/test (it creates .venv with tests/requirements.txt) or set PYTHON"
    );
    venv
}

/// The repository root.
pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The storage of an end-to-end test: a temporary directory, or a fresh bucket on a GCS
/// emulator of its own.
pub enum TestStorage {
    Dir(tempfile::TempDir),
    Gcs {
        emulator: workqueue::conformance::Emulator,
        bucket: String,
    },
}

impl TestStorage {
    pub fn dir() -> Self {
        Self::Dir(tempfile::tempdir().expect("a temporary directory"))
    }

    pub async fn gcs() -> Self {
        let emulator = workqueue::conformance::Emulator::start().await;
        let bucket = emulator.bucket().await;
        Self::Gcs { emulator, bucket }
    }

    /// The `--storage` URL for processes.
    pub fn url(&self) -> String {
        match self {
            Self::Dir(dir) => format!("file://{}", dir.path().display()),
            Self::Gcs { bucket, .. } => format!("gs://{bucket}"),
        }
    }

    /// The environment processes need to reach it.
    pub fn envs(&self) -> Vec<(&'static str, String)> {
        match self {
            Self::Dir(_) => Vec::new(),
            Self::Gcs { emulator, .. } => {
                vec![("STORAGE_EMULATOR_HOST", emulator.endpoint.clone())]
            }
        }
    }

    /// A queue on it, for the test's own checks.
    pub async fn queue(&self) -> workqueue::Queue {
        use std::sync::Arc;
        use workqueue::storage::{DirStorage, GcsStorage, Storage};
        let storage: Arc<dyn Storage> = match self {
            Self::Dir(dir) => Arc::new(
                DirStorage::open(dir.path().to_owned())
                    .await
                    .expect("open the directory"),
            ),
            Self::Gcs { emulator, bucket } => Arc::new(
                GcsStorage::emulator(&emulator.endpoint, bucket, "")
                    .await
                    .expect("connect to the emulator"),
            ),
        };
        workqueue::Queue::new(storage, workqueue::QueueConfig::default())
    }

    /// Starts a receiver on it: health and metrics on `http`, the workqueue service on `grpc`.
    pub fn receiver(&self, name: &str, http: SocketAddr, grpc: SocketAddr) -> Proc {
        let (url, http, grpc) = (self.url(), http.to_string(), grpc.to_string());
        self.reconcilers(
            name,
            &[
                "receiver",
                "--storage",
                &url,
                "--listen",
                &http,
                "--grpc-listen",
                &grpc,
            ],
        )
    }

    /// Starts `reconcilers dev` on it: HTTP on `http`, the receiver on `grpc`, keys dispatched
    /// to the reconciler at `reconciler`, and `flags` besides.
    pub fn dev(
        &self,
        http: SocketAddr,
        grpc: SocketAddr,
        reconciler: SocketAddr,
        flags: &[&str],
    ) -> Proc {
        let (url, http, grpc) = (self.url(), http.to_string(), grpc.to_string());
        let reconciler = format!("http://{reconciler}");
        let listen = ["--listen", &http, "--grpc-listen", &grpc];
        let mut args = vec!["dev", "--storage", &url, "--reconciler", &reconciler];
        args.extend(listen.iter().chain(flags));
        self.reconcilers("dev", &args)
    }

    /// Starts `reconcilers ARGS` with this storage's environment.
    pub fn reconcilers(&self, name: &str, args: &[&str]) -> Proc {
        let mut command = Command::new(env!("CARGO_BIN_EXE_reconcilers"));
        command.args(args).envs(self.envs());
        Proc::spawn(name, &mut command)
    }
}
