//! The `reconcilers` command line as scripts and Terraform use it: the queue subcommands, one
//! port for HTTP and gRPC, SIGTERM handing in-flight keys back, clear errors.

mod common;

use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use common::{Proc, eventually, free_addr, http_get, listens_on, serve_reconciler};
use reconciler::proto::workqueue_service_client::WorkqueueServiceClient;
use reconciler::proto::{GetKeyStateRequest, ProcessRequest};
use workqueue::conformance::{Emulator, Hang};
use workqueue::storage::{DirStorage, list_all};
use workqueue::{KeyStatus, Queue, QueueConfig};

fn reconcilers(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_reconcilers"))
        .args(args)
        .output()
        .expect("run reconcilers");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into(),
        String::from_utf8_lossy(&out.stderr).into(),
    )
}

async fn queue_in(dir: &std::path::Path, max_retry: u32) -> Queue {
    let storage = DirStorage::open(dir.to_owned()).await.unwrap();
    Queue::new(
        Arc::new(storage),
        QueueConfig {
            max_retry,
            ..QueueConfig::default()
        },
    )
}

#[tokio::test]
async fn queue_subcommands_should_list_show_and_reenqueue() {
    let dir = tempfile::tempdir().unwrap();
    let storage = format!("file://{}", dir.path().display());
    let queue = queue_in(dir.path(), 1).await;
    queue
        .enqueue("https://github.com/o/r/pull/1", 100, Duration::ZERO)
        .await
        .unwrap();
    queue
        .enqueue("later", 0, Duration::from_secs(3600))
        .await
        .unwrap();
    queue.enqueue("broken", 5, Duration::ZERO).await.unwrap();
    let claim = queue.start(1, 1).await.unwrap().claims.pop().unwrap();
    assert_eq!(claim.key(), "https://github.com/o/r/pull/1");
    let dead = queue.start(2, 1).await.unwrap().claims.pop().unwrap();
    assert_eq!(dead.key(), "broken");
    dead.fail("it broke").await.unwrap();

    let (ok, out, err) = reconcilers(&["queue", "list", "--storage", &storage]);
    assert!(ok, "{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert!(
        lines[0].starts_with("KEY") && lines[0].contains("STATE") && lines[0].contains("DUE"),
        "{out}"
    );
    assert!(
        out.contains("https://github.com/o/r/pull/1") && out.contains("in-progress"),
        "{out}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("later") && l.contains("queued")),
        "{out}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("broken") && l.contains("dead-letter")),
        "{out}"
    );

    let (ok, out, _) = reconcilers(&["queue", "state", "later", "--storage", &storage]);
    assert!(
        ok && out.contains("state:     queued") && out.contains("due:"),
        "{out}"
    );
    let (ok, _, err) = reconcilers(&["queue", "state", "nope", "--storage", &storage]);
    assert!(!ok && err.contains("\"nope\" is not in the queue"), "{err}");

    let (ok, out, _) = reconcilers(&["queue", "dead-letters", "--storage", &storage]);
    assert!(
        ok && out.contains("broken") && out.contains("it broke"),
        "{out}"
    );
    // Listed as the reference's runbook expects (`gsutil ls gs://BUCKET/dead-letter/`).
    async fn listed(storage: &DirStorage) -> Vec<String> {
        let objects = list_all(storage, "dead-letter/").await.unwrap();
        objects.into_iter().map(|o| o.name).collect()
    }
    let listing = DirStorage::open(dir.path().to_owned()).await.unwrap();
    assert_eq!(listed(&listing).await, ["dead-letter/broken"]);
    let (ok, out, _) = reconcilers(&["queue", "reenqueue", "--storage", &storage]);
    assert!(
        ok && out.contains("re-enqueued 1 dead-lettered key"),
        "{out}"
    );
    let state = queue.state("broken").await.unwrap().unwrap();
    assert_eq!((state.status, state.attempts), (KeyStatus::Queued, 0));
    assert!(listed(&listing).await.is_empty(), "unlisted by reenqueue");
    drop(claim);
}

#[tokio::test]
async fn storage_errors_should_be_clear() {
    let emulator = Emulator::start().await;
    // Through the variables, then through the flags that stand for WORKQUEUE_BUCKET and
    // STORAGE_EMULATOR_HOST (without the emulator, the bucket would be looked for on Google
    // Cloud Storage).
    let by_env: [(&str, &str); 2] = [
        ("WORKQUEUE_BUCKET", "no-such-bucket"),
        ("STORAGE_EMULATOR_HOST", &emulator.endpoint),
    ];
    let by_flags = [
        "--bucket",
        "no-such-bucket",
        "--storage-emulator-host",
        &emulator.endpoint,
    ];
    for (args, env) in [(&[][..], &by_env[..]), (&by_flags[..], &[][..])] {
        let mut command = Command::new(env!("CARGO_BIN_EXE_reconcilers"));
        command
            .args(["queue", "list"])
            .args(args)
            .env_remove("STORAGE_EMULATOR_HOST")
            .env_remove("WORKQUEUE_BUCKET")
            .env_remove("WORKQUEUE_STORAGE")
            .envs(env.iter().copied());
        let out = command.output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            !out.status.success() && err.contains("bucket \"no-such-bucket\" does not exist"),
            "{args:?}: {err}"
        );
    }
    let (ok, _, err) = reconcilers(&["queue", "list", "--storage", "s3://x"]);
    assert!(
        !ok && err.contains("expected memory://, file://DIR or gs://BUCKET"),
        "{err}"
    );
    let (ok, _, err) = reconcilers(&["queue", "list"]);
    assert!(!ok && err.contains("no storage given"), "{err}");
}

#[test]
fn help_should_name_every_flag_and_its_environment_variable() {
    let dispatch = [
        "--storage",
        "--bucket",
        "--storage-emulator-host",
        "--reconciler",
        "--listen",
        "--port",
        "WORKQUEUE_BUCKET",
        "STORAGE_EMULATOR_HOST",
        "PORT",
        "--concurrency",
        "--batch-size",
        "--max-retry",
        "--backoff-base",
        "--backoff-max",
        "--lease",
        "WORKQUEUE_CONCURRENCY",
        "WORKQUEUE_BATCH_SIZE",
        "WORKQUEUE_MAX_RETRY",
        "WORKQUEUE_TARGET",
        "--shutdown-timeout",
        "SHUTDOWN_TIMEOUT",
    ];
    let routes = [
        "--routes",
        "--extension-key",
        "--filter",
        "--priority",
        "--repository",
        "--path-pattern",
        "--github-api",
        "--sink",
        "K_SINK",
        "GITHUB_API_URL",
    ];
    let dev: Vec<&str> = dispatch
        .iter()
        .chain(&routes)
        .copied()
        .chain([
            "--grpc-listen",
            "--period-hours",
            "RESYNC_PERIOD_HOURS",
            "--resync-schedule",
            "RESYNC_SCHEDULE",
            "--webhook-secret",
        ])
        .collect();
    let gateway: Vec<&str> = routes
        .iter()
        .copied()
        .chain([
            "--listen",
            "--workqueue",
            "WORKQUEUE_SERVICE",
            "--check",
            "--webhook-only",
            "GATEWAY_WEBHOOK_ONLY",
            "--routes-toml",
            "GATEWAY_ROUTES_TOML",
            "--webhook-secret",
        ])
        .collect();
    let expectations: [(&str, &[&str]); 7] = [
        ("dev", &dev),
        (
            "resync",
            &[
                "--once",
                "--repository",
                "--path-pattern",
                "--period-hours",
                "--workqueue",
                "--github-api",
                "--concurrency",
                "--listen",
                "RESYNC_PERIOD_HOURS",
                "--schedule",
                "RESYNC_SCHEDULE",
                "WORKQUEUE_SERVICE",
                "GITHUB_API_URL",
            ],
        ),
        ("gateway", &gateway),
        ("webhook", &["send"]),
        (
            "receiver",
            &[
                "--storage",
                "--grpc-listen",
                "--listen",
                "--shutdown-timeout",
                "SHUTDOWN_TIMEOUT",
            ],
        ),
        ("dispatcher", &dispatch),
        (
            "queue",
            &["list", "state", "dead-letters", "reenqueue", "--storage"],
        ),
    ];
    for (command, flags) in expectations {
        let (ok, out, err) = reconcilers(&[command, "--help"]);
        assert!(ok, "{command} --help: {err}");
        for flag in flags {
            // A variable as clap names it, not a word of some help text ("0.0.0.0:PORT").
            let shown = if flag.starts_with(|c: char| c.is_ascii_uppercase()) {
                format!("[env: {flag}=")
            } else {
                flag.to_string()
            };
            assert!(
                out.contains(&shown),
                "`reconcilers {command} --help` lacks {flag}:\n{out}"
            );
        }
    }
}

/// One address for both, as Cloud Run's `PORT` gives (`PORT` itself means every interface,
/// which a test must not listen on: `args.rs` tests that mapping).
#[tokio::test]
async fn one_address_should_serve_http_and_grpc() {
    let dir = tempfile::tempdir().unwrap();
    let local = free_addr();
    let mut command = Command::new(env!("CARGO_BIN_EXE_reconcilers"));
    command
        .args([
            "receiver",
            "--storage",
            &format!("file://{}", dir.path().display()),
        ])
        .args(["--listen", &local.to_string()])
        .args(["--grpc-listen", &local.to_string()])
        .env_remove("PORT")
        .env("K_SERVICE", "wq-rcv")
        .env("K_REVISION", "wq-rcv-00001");
    let mut receiver = Proc::spawn("receiver", &mut command);
    receiver.wait_healthy(local).await;
    let (status, metrics) = http_get(local, "/metrics").await.unwrap();
    assert_eq!(status, 200);
    let added = r#"workqueue_added_keys_total{service_name="wq-rcv",revision_name="wq-rcv-00001"}"#;
    assert!(metrics.contains(&format!("{added} 0")), "{metrics}");
    let mut client = WorkqueueServiceClient::connect(format!("http://{local}"))
        .await
        .unwrap();
    client
        .process(ProcessRequest {
            key: "k".into(),
            priority: 1,
            delay_seconds: 0,
        })
        .await
        .unwrap();
    let state = client
        .get_key_state(GetKeyStateRequest { key: "k".into() })
        .await
        .unwrap()
        .into_inner();
    assert_eq!((state.key.as_str(), state.priority), ("k", 1));
    let channel = tonic::transport::Endpoint::from_shared(format!("http://{local}"))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut health = tonic_health::pb::health_client::HealthClient::new(channel);
    let serving = health
        .check(tonic_health::pb::HealthCheckRequest {
            service: String::new(),
        })
        .await
        .unwrap();
    assert_eq!(
        serving.into_inner().status,
        tonic_health::pb::health_check_response::ServingStatus::Serving as i32
    );
    let (_, metrics) = http_get(local, "/metrics").await.unwrap();
    assert!(metrics.contains(&format!("{added} 1")), "{metrics}");

    // `reconcilers enqueue` is a client of the same port.
    let url = format!("http://{local}");
    let (ok, out, err) = reconcilers(&[
        "enqueue",
        "a",
        "b",
        "--workqueue",
        &url,
        "--priority",
        "-3",
        "--delay",
        "90s",
    ]);
    assert!(
        ok && out.contains("enqueued a") && out.contains("enqueued b"),
        "{out}{err}"
    );
    let state = client
        .get_key_state(GetKeyStateRequest { key: "b".into() })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(state.priority, -3);
    assert!(state.not_before_time > state.queued_time + 80, "{state:?}");
    let (ok, _, err) = reconcilers(&["enqueue", "", "--workqueue", &url]);
    assert!(!ok && err.contains("the key is empty"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_should_hand_in_flight_keys_back_without_burning_an_attempt() {
    let dir = tempfile::tempdir().unwrap();
    let hang = Arc::new(Hang::default());
    let reconciler = free_addr();
    let serving = serve_reconciler(hang.clone(), reconciler);
    let (http, grpc) = (free_addr(), free_addr());
    let mut dev = Proc::reconcilers(
        "dev",
        &[
            "dev",
            "--storage",
            &format!("file://{}", dir.path().display()),
            "--listen",
            &http.to_string(),
            "--grpc-listen",
            &grpc.to_string(),
            "--reconciler",
            &format!("http://{reconciler}"),
        ],
    );
    dev.wait_healthy(http).await;
    let mut client = WorkqueueServiceClient::connect(format!("http://{grpc}"))
        .await
        .unwrap();
    client
        .process(ProcessRequest {
            key: "k".into(),
            priority: 0,
            delay_seconds: 0,
        })
        .await
        .unwrap();
    eventually("the key to start", Duration::from_secs(20), async || {
        (hang.calls() == 1).then_some(())
    })
    .await;
    let before = SystemTime::now();
    dev.signal(15);
    assert!(
        dev.wait_exit(Duration::from_secs(20)).success(),
        "dev exits cleanly on SIGTERM"
    );
    let after = SystemTime::now();
    let state = queue_in(dir.path(), 100)
        .await
        .state("k")
        .await
        .unwrap()
        .expect("the key is kept");
    assert_eq!(
        (state.status, state.attempts),
        (KeyStatus::Queued, 0),
        "handed back, no attempt burnt"
    );
    // Handed back between the signal and the exit: due 15 s later, plus under 30 s of jitter
    // (stored in whole milliseconds).
    let due = state.not_before.expect("a short requeue");
    let ms = Duration::from_millis(1);
    assert!(
        due + ms >= before + Duration::from_secs(15) && due <= after + Duration::from_secs(45),
        "due {due:?}, signalled {before:?}, exited {after:?}"
    );
    serving.stop().await;
}

#[test]
fn the_listener_check_should_tell_whose_port_it_is() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    assert!(
        listens_on(std::process::id(), addr),
        "this process holds it"
    );
    // A process of ours (its descriptors readable) that does not hold it.
    let mut other = Proc::spawn("sleep", Command::new("sleep").arg("30"));
    assert!(!listens_on(other.pid(), addr), "another process does not");
    other.signal(9);
    other.wait_exit(Duration::from_secs(10));
    drop(listener);
    assert!(!listens_on(std::process::id(), addr), "nobody holds it now");
}
