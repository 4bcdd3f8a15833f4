//! The sink gets each delivery as a binary-mode CloudEvent, header values percent-encoded; fed
//! back into `/events`, it routes to the same key with the same extensions.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, Request, StatusCode};
use axum::routing::post;
use gateway::metrics::GatewayMetrics;
use gateway::route::Route;
use gateway::signature::{Secrets, sign};
use gateway::{Gateway, GatewayConfig};
use tower::ServiceExt;
use workqueue::client::LocalWorkqueue;
use workqueue::storage::MemoryStorage;
use workqueue::{Queue, QueueConfig};

type Seen = Arc<Mutex<Vec<(HeaderMap, Bytes)>>>;

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
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await });
    (addr, seen)
}

fn gateway(sink: Option<String>) -> (axum::Router, Queue) {
    let queue = Queue::new(Arc::new(MemoryStorage::new()), QueueConfig::default());
    let gateway = Gateway::new(
        GatewayConfig {
            source: Some("github.example".into()),
            sink,
            ..GatewayConfig::new(
                vec![Route::extension("branches", "headbranch")],
                Arc::new(LocalWorkqueue::new(queue.clone())),
                Secrets::new(["s"]),
            )
        },
        GatewayMetrics::default(),
    )
    .unwrap();
    (gateway::server::router(Arc::new(gateway)), queue)
}

async fn keys(queue: &Queue) -> Vec<String> {
    let snapshot = queue.snapshot().await.unwrap();
    snapshot.queued.into_iter().map(|q| q.record.key).collect()
}

#[tokio::test]
async fn the_sink_should_get_an_event_that_routes_the_same_way() {
    let (addr, seen) = sink().await;
    let (router, queue) = gateway(Some(format!("http://{addr}/")));
    let branch = "feature/✓ \"quoted\" 100%";
    let payload = serde_json::json!({
        "action": "opened",
        "pull_request": {"number": 5, "head": {"ref": branch}},
        "repository": {"full_name": "o/r"}
    })
    .to_string();
    let request = Request::post("/webhook")
        .header("content-type", "application/json")
        .header("x-github-event", "pull_request")
        .header("x-github-delivery", "d-5")
        .header("x-hub-signature-256", sign(b"s", payload.as_bytes()))
        .body(Body::from(payload.clone()))
        .unwrap();
    assert_eq!(
        router.oneshot(request).await.unwrap().status(),
        StatusCode::ACCEPTED
    );
    assert_eq!(keys(&queue).await, [branch]);

    let (headers, body) = seen.lock().unwrap().pop().expect("the sink got the event");
    let header = |name: &str| headers.get(name).unwrap().to_str().unwrap().to_owned();
    assert_eq!(
        header("ce-headbranch"),
        "feature/%E2%9C%93%20%22quoted%22%20100%25"
    );
    assert_eq!(header("ce-type"), "dev.chainguard.github.pull_request");
    assert_eq!(header("ce-source"), "github.example");
    let data: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(
        data["body"],
        serde_json::from_str::<serde_json::Value>(&payload).unwrap()
    );
    assert_eq!(data["headers"]["x-github-delivery"], "d-5");

    // The same event, into another gateway's /events, keys the same way.
    let (router, queue) = gateway(None);
    let mut request = Request::post("/events").body(Body::from(body)).unwrap();
    *request.headers_mut() = headers;
    assert_eq!(
        router.oneshot(request).await.unwrap().status(),
        StatusCode::ACCEPTED
    );
    assert_eq!(keys(&queue).await, [branch]);
}

#[tokio::test]
async fn a_forwarded_delivery_should_be_accepted_even_when_its_key_is_refused() {
    let payload = serde_json::json!({
        "action": "opened",
        "pull_request": {"number": 5, "head": {"ref": "b".repeat(2000)}},
        "repository": {"full_name": "o/r"}
    })
    .to_string();
    let request = || {
        Request::post("/webhook")
            .header("content-type", "application/json")
            .header("x-github-event", "pull_request")
            .header("x-github-delivery", "d-6")
            .header("x-hub-signature-256", sign(b"s", payload.as_bytes()))
            .body(Body::from(payload.clone()))
            .unwrap()
    };
    // Without a sink, a delivery whose only key is refused is malformed...
    let (router, queue) = gateway(None);
    let response = router.oneshot(request()).await.unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert!(keys(&queue).await.is_empty());
    // ...with one, the event was taken: a redelivery would only forward it twice.
    let (addr, seen) = sink().await;
    let (router, queue) = gateway(Some(format!("http://{addr}/")));
    let response = router.oneshot(request()).await.unwrap();
    assert_eq!(response.status(), StatusCode::ACCEPTED);
    assert!(keys(&queue).await.is_empty());
    assert_eq!(seen.lock().unwrap().len(), 1);
}
