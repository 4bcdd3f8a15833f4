//! Every real payload of `fixtures/github` (from @octokit/webhooks-examples, plus hand-made
//! ones) through the whole pipeline: signature, CloudEvent, routes, enqueue into a queue, and
//! the sink. The keys and extensions expected are in `fixtures/github/expected.json`, written
//! by an implementation of the rules apart from this one (`fixtures/expected.py`). Each event
//! the sink is sent is then posted to another gateway's `/events`, as a broker would deliver
//! it, and must make the same keys there (path keys of pushes included).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, Request, StatusCode};
use axum::routing::{get, post};
use gateway::metrics::GatewayMetrics;
use gateway::route::{Filter, Route, path_rule};
use gateway::signature::{Secrets, sign};
use gateway::{Gateway, GatewayConfig};
use tower::ServiceExt;
use workqueue::client::LocalWorkqueue;
use workqueue::storage::MemoryStorage;
use workqueue::{Queue, QueueConfig};

const SECRET: &str = "fixture-secret";

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../fixtures/github")
}

type Seen = Arc<Mutex<Vec<(HeaderMap, Bytes)>>>;

async fn listen(router: axum::Router) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await });
    addr
}

/// A sink that records what it is sent.
async fn sink() -> (SocketAddr, Seen) {
    let seen: Seen = Arc::default();
    let router = axum::Router::new()
        .route(
            "/",
            post(
                |State(seen): State<Seen>, headers: HeaderMap, body: Bytes| async move {
                    seen.lock().unwrap().push((headers, body));
                    StatusCode::ACCEPTED
                },
            ),
        )
        .with_state(seen.clone());
    (listen(router).await, seen)
}

/// A GitHub API with the trees of two commits, `b…b` before a push and `c…c` after it,
/// sharing an unchanged `docs` tree; it records which trees were asked for.
async fn github_api() -> (SocketAddr, Arc<Mutex<Vec<String>>>) {
    type Asked = Arc<Mutex<Vec<String>>>;
    async fn tree(
        State(asked): State<Asked>,
        Path((_owner, _repo, sha)): Path<(String, String, String)>,
    ) -> String {
        asked.lock().unwrap().push(sha.clone());
        let entries = match sha.as_str() {
            s if s.starts_with('b') => {
                r#"[{"path":"config","type":"tree","sha":"t-old"},
                                           {"path":"docs","type":"tree","sha":"t-docs"}]"#
            }
            s if s.starts_with('c') => {
                r#"[{"path":"config","type":"tree","sha":"t-new"},
                                           {"path":"docs","type":"tree","sha":"t-docs"}]"#
            }
            "t-old" => {
                r#"[{"path":"same.yaml","type":"blob","sha":"1"},
                           {"path":"changed.yaml","type":"blob","sha":"2"},
                           {"path":"gone.yaml","type":"blob","sha":"3"}]"#
            }
            "t-new" => {
                r#"[{"path":"same.yaml","type":"blob","sha":"1"},
                           {"path":"changed.yaml","type":"blob","sha":"22"},
                           {"path":"added.yaml","type":"blob","sha":"4"}]"#
            }
            _ => r#"[{"path":"x.md","type":"blob","sha":"5"}]"#,
        };
        format!(r#"{{"sha":"{sha}","tree":{entries},"truncated":false}}"#)
    }
    let asked: Asked = Arc::default();
    let router = axum::Router::new()
        .route("/repos/{owner}/{repo}/git/trees/{sha}", get(tree))
        .with_state(asked.clone());
    (listen(router).await, asked)
}

fn routes() -> Vec<Route> {
    vec![
        Route::extension("prs", "pullrequesturl"),
        Route {
            priority: 50,
            ..Route::extension("issues", "issueurl")
        },
        Route {
            name: "config".to_owned(),
            filters: vec![Filter::default()],
            key: path_rule("Codertocat/Hello-World", &["^config/(.+)\\.yaml$"]).unwrap(),
            priority: 0,
            workqueue: None,
        },
    ]
}

async fn gateway(sink: SocketAddr, api: SocketAddr) -> (axum::Router, Queue) {
    let queue = Queue::new(Arc::new(MemoryStorage::new()), QueueConfig::default());
    let gateway = Gateway::new(
        GatewayConfig {
            github_api: Some(format!("http://{api}")),
            sink: Some(format!("http://{sink}/")),
            ..GatewayConfig::new(
                routes(),
                Arc::new(LocalWorkqueue::new(queue.clone())),
                Secrets::new(["rotated-out", SECRET]),
            )
        },
        GatewayMetrics::default(),
    )
    .unwrap();
    (gateway::server::router(Arc::new(gateway)), queue)
}

fn delivery(event: &str, id: &str, body: Vec<u8>) -> Request<Body> {
    Request::post("/webhook")
        .header("host", "hooks.example.com")
        .header("content-type", "application/json")
        .header("x-github-event", event)
        .header("x-github-delivery", id)
        .header("x-github-hook-id", "1234")
        .header("x-hub-signature-256", sign(SECRET.as_bytes(), &body))
        .body(Body::from(body))
        .unwrap()
}

async fn queued(queue: &Queue) -> BTreeMap<String, i64> {
    queue
        .snapshot()
        .await
        .unwrap()
        .queued
        .into_iter()
        .map(|q| (q.record.key, q.record.priority))
        .collect()
}

#[tokio::test]
async fn every_fixture_should_yield_exactly_its_keys_and_extensions() {
    let expected: BTreeMap<String, serde_json::Value> =
        serde_json::from_str(&std::fs::read_to_string(fixtures().join("expected.json")).unwrap())
            .unwrap();
    assert!(expected.len() >= 70, "the fixtures are there");
    let (sink, seen) = sink().await;
    let (api, asked) = github_api().await;
    for (file, want) in &expected {
        let (router, queue) = gateway(sink, api).await;
        let body = std::fs::read(fixtures().join(file)).unwrap();
        let event = want["event"].as_str().unwrap();
        let response = router.oneshot(delivery(event, file, body)).await.unwrap();
        assert_eq!(response.status(), StatusCode::ACCEPTED, "{file}");

        let extensions = want["extensions"].as_object().unwrap();
        let mut keys = BTreeMap::new();
        if let Some(url) = extensions.get("pullrequesturl") {
            keys.insert(url.as_str().unwrap().to_owned(), 100);
        }
        if let Some(url) = extensions.get("issueurl") {
            keys.insert(url.as_str().unwrap().to_owned(), 50);
        }
        let path_keys: Vec<String> = match &want["path_keys"] {
            serde_json::Value::Null => ["added", "changed", "gone"]
                .iter()
                .map(|k| format!("https://github.com/Codertocat/Hello-World/blob/master/{k}"))
                .collect(),
            keys => serde_json::from_value(keys.clone()).unwrap(),
        };
        for key in path_keys {
            keys.insert(key, 0);
        }
        assert_eq!(queued(&queue).await, keys, "{file}");
        if want["path_keys"].is_null() {
            let asked = std::mem::take(&mut *asked.lock().unwrap());
            assert!(
                asked.contains(&"t-new".to_owned()) && !asked.contains(&"t-docs".to_owned()),
                "only the changed directories are listed: {asked:?}"
            );
        }

        let (headers, data) = seen.lock().unwrap().pop().expect("forwarded to the sink");
        let header = |name: &str| headers.get(name).map(|v| v.to_str().unwrap().to_owned());
        assert_eq!(header("ce-id").as_deref(), Some(file.as_str()));
        assert_eq!(
            header("ce-type"),
            Some(format!("dev.chainguard.github.{event}"))
        );
        assert_eq!(header("ce-source").as_deref(), Some("hooks.example.com"));
        assert_eq!(header("ce-githubhook").as_deref(), Some("1234"));
        let mut got: BTreeMap<String, String> = headers
            .iter()
            .filter_map(|(n, v)| {
                let name = n.as_str().strip_prefix("ce-")?;
                let known = [
                    "action",
                    "pullrequesturl",
                    "issueurl",
                    "checkrunurl",
                    "headbranch",
                    "merged",
                ];
                known
                    .contains(&name)
                    .then(|| (name.to_owned(), v.to_str().unwrap().to_owned()))
            })
            .collect();
        let mut want_ext: BTreeMap<String, String> = extensions
            .iter()
            .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_owned()))
            .collect();
        // Header values are percent-encoded on the wire; these payloads need no encoding.
        got.retain(|_, v| !v.is_empty());
        want_ext.retain(|_, v| !v.is_empty());
        assert_eq!(got, want_ext, "{file}");

        // The same event from a broker: what the sink got, posted to another gateway's
        // `/events`, makes the same keys.
        let (router, brokered) = gateway(sink, api).await;
        let mut request = Request::post("/events");
        for (name, value) in &headers {
            if name.as_str().starts_with("ce-") || name == "content-type" {
                request = request.header(name, value);
            }
        }
        let response = router
            .oneshot(request.body(Body::from(data)).unwrap())
            .await
            .unwrap();
        assert_eq!(
            response.status(),
            StatusCode::ACCEPTED,
            "{file} from a broker"
        );
        assert_eq!(queued(&brokered).await, keys, "{file} from a broker");
        asked.lock().unwrap().clear();
    }
}

#[tokio::test]
async fn an_http2_delivery_should_take_its_source_from_the_authority() {
    let (sink, seen) = sink().await;
    let (api, _) = github_api().await;
    let (router, _) = gateway(sink, api).await;
    let file = "pull_request/00-opened.json";
    let mut request = delivery(
        "pull_request",
        file,
        std::fs::read(fixtures().join(file)).unwrap(),
    );
    // HTTP/2 carries the host as the request's authority, with no Host header.
    request.headers_mut().remove("host");
    *request.version_mut() = axum::http::Version::HTTP_2;
    *request.uri_mut() = "https://h2.example.com/webhook".parse().unwrap();
    let response = router.oneshot(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::ACCEPTED);
    let (headers, _) = seen.lock().unwrap().pop().expect("forwarded to the sink");
    assert_eq!(headers.get("ce-source").unwrap(), "h2.example.com");
}
