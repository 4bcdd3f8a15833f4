//! What the gateway refuses and how it answers: bad signatures, malformed and oversized
//! requests enqueue nothing; a workqueue or sink that is down gets 503 so the sender retries.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use gateway::metrics::GatewayMetrics;
use gateway::route::Route;
use gateway::server::MAX_BODY;
use gateway::signature::{Secrets, sign};
use gateway::{Gateway, GatewayConfig};
use tower::ServiceExt;
use workqueue::client::{Enqueue, LocalWorkqueue, RemoteWorkqueue};
use workqueue::storage::MemoryStorage;
use workqueue::{Queue, QueueConfig};

const PR: &str =
    r#"{"action":"opened","pull_request":{"number":9},"repository":{"full_name":"o/r"}}"#;
const KEY: &str = "https://github.com/o/r/pull/9";

fn build(workqueue: Arc<dyn Enqueue>, sink: Option<String>) -> axum::Router {
    let max_in_flight = gateway::gateway::DEFAULT_MAX_IN_FLIGHT;
    build_measured(workqueue, sink, max_in_flight, GatewayMetrics::default())
}

fn build_measured(
    workqueue: Arc<dyn Enqueue>,
    sink: Option<String>,
    max_in_flight: usize,
    metrics: GatewayMetrics,
) -> axum::Router {
    let gateway = Gateway::new(
        GatewayConfig {
            sink,
            call_timeout: Duration::from_secs(2),
            max_in_flight,
            ..GatewayConfig::new(
                vec![Route::extension("prs", "pullrequesturl")],
                workqueue,
                Secrets::new(["old", "new"]),
            )
        },
        metrics,
    )
    .unwrap();
    gateway::server::router(Arc::new(gateway))
}

fn local() -> (axum::Router, Queue) {
    let queue = Queue::new(Arc::new(MemoryStorage::new()), QueueConfig::default());
    (
        build(Arc::new(LocalWorkqueue::new(queue.clone())), None),
        queue,
    )
}

fn delivery(body: impl Into<Body>, signature: Option<String>) -> Request<Body> {
    let mut request = Request::post("/webhook")
        .header("content-type", "application/json")
        .header("x-github-event", "pull_request")
        .header("x-github-delivery", "d");
    if let Some(signature) = signature {
        request = request.header("x-hub-signature-256", signature);
    }
    request.body(body.into()).unwrap()
}

async fn status(router: &axum::Router, request: Request<Body>) -> (StatusCode, String) {
    let response = router.clone().oneshot(request).await.unwrap();
    let status = response.status();
    let body = axum::body::to_bytes(response.into_body(), 1 << 20)
        .await
        .unwrap();
    (status, String::from_utf8_lossy(&body).into_owned())
}

async fn keys(queue: &Queue) -> Vec<String> {
    let snapshot = queue.snapshot().await.unwrap();
    snapshot.queued.into_iter().map(|q| q.record.key).collect()
}

#[tokio::test]
async fn signatures_should_be_checked_against_every_secret() {
    let (router, queue) = local();
    let signed = |secret: &str, body: &str| Some(sign(secret.as_bytes(), body.as_bytes()));
    for (name, request) in [
        ("unsigned", delivery(PR, None)),
        ("forged", delivery(PR, signed("guess", PR))),
        (
            "tampered",
            delivery(PR.replace('9', "8"), signed("new", PR)),
        ),
        ("malformed", delivery(PR, Some("sha256=xyz".into()))),
    ] {
        let (code, body) = status(&router, request).await;
        assert_eq!(code, StatusCode::UNAUTHORIZED, "{name}: {body}");
        assert!(
            !body.contains("old") && !body.contains("new"),
            "no secret in {body:?}"
        );
    }
    assert!(keys(&queue).await.is_empty(), "nothing enqueued");
    for secret in ["old", "new"] {
        let (code, body) = status(&router, delivery(PR, signed(secret, PR))).await;
        assert_eq!(
            (code, body.as_str()),
            (StatusCode::ACCEPTED, ""),
            "{secret}"
        );
    }
    assert_eq!(keys(&queue).await, [KEY]);
}

#[tokio::test]
async fn malformed_deliveries_should_get_400_and_enqueue_nothing() {
    let (router, queue) = local();
    let body = "{\"action\":";
    let (code, _) = status(&router, delivery(body, Some(sign(b"new", body.as_bytes())))).await;
    assert_eq!(code, StatusCode::BAD_REQUEST);
    let mut no_event = delivery(PR, Some(sign(b"new", PR.as_bytes())));
    no_event.headers_mut().remove("x-github-event");
    let (code, text) = status(&router, no_event).await;
    assert_eq!(code, StatusCode::BAD_REQUEST);
    assert!(text.contains("X-GitHub-Event"), "{text}");
    assert!(keys(&queue).await.is_empty());
}

#[tokio::test]
async fn oversized_bodies_should_get_413_even_when_chunked() {
    let (router, queue) = local();
    let big = vec![b' '; MAX_BODY + 1];
    let (code, _) = status(&router, delivery(big.clone(), None)).await;
    assert_eq!(code, StatusCode::PAYLOAD_TOO_LARGE);
    // A chunked body has no length up front: the limit holds while it is read.
    let chunks = big
        .chunks(1 << 20)
        .map(|c| Ok::<_, std::io::Error>(axum::body::Bytes::copy_from_slice(c)))
        .collect::<Vec<_>>();
    let stream = Body::from_stream(futures::stream::iter(chunks));
    let (code, _) = status(&router, delivery(stream, None)).await;
    assert_eq!(code, StatusCode::PAYLOAD_TOO_LARGE);
    // Just under the limit is read (and then refused for its signature only).
    let (code, _) = status(&router, delivery(vec![b' '; MAX_BODY - 1], None)).await;
    assert_eq!(code, StatusCode::UNAUTHORIZED);
    assert!(keys(&queue).await.is_empty());
}

#[tokio::test]
async fn a_workqueue_or_sink_that_is_down_should_get_503() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let down = RemoteWorkqueue::new(&format!("http://{closed}"), Duration::from_secs(2)).unwrap();
    let router = build(Arc::new(down), None);
    let signature = Some(sign(b"new", PR.as_bytes()));
    let (code, _) = status(&router, delivery(PR, signature.clone())).await;
    assert_eq!(code, StatusCode::SERVICE_UNAVAILABLE);
    let events = Request::post("/events")
        .header("ce-specversion", "1.0")
        .header("ce-id", "1")
        .header("ce-source", "s")
        .header("ce-type", "t")
        .header("ce-pullrequesturl", KEY)
        .body(Body::empty())
        .unwrap();
    let (code, _) = status(&router, events).await;
    assert_eq!(code, StatusCode::SERVICE_UNAVAILABLE);

    let queue = Queue::new(Arc::new(MemoryStorage::new()), QueueConfig::default());
    let sink_down = build(
        Arc::new(LocalWorkqueue::new(queue)),
        Some(format!("http://{closed}/")),
    );
    let (code, _) = status(&sink_down, delivery(PR, signature)).await;
    assert_eq!(code, StatusCode::SERVICE_UNAVAILABLE);
}

#[tokio::test]
async fn cloudevents_without_a_key_should_be_accepted_and_dropped() {
    let (router, queue) = local();
    let event = |key: Option<&str>| {
        let mut request = Request::post("/events")
            .header("ce-specversion", "1.0")
            .header("ce-id", "1")
            .header("ce-source", "s")
            .header("ce-type", "t");
        if let Some(key) = key {
            request = request.header("ce-pullrequesturl", key);
        }
        request.body(Body::empty()).unwrap()
    };
    assert_eq!(status(&router, event(None)).await.0, StatusCode::ACCEPTED);
    assert!(keys(&queue).await.is_empty());
    assert_eq!(
        status(&router, event(Some(KEY))).await,
        (StatusCode::ACCEPTED, String::new())
    );
    assert_eq!(keys(&queue).await, [KEY]);
    let bad = Request::post("/events")
        .header("content-type", "application/cloudevents+json")
        .body(Body::from("{\"specversion\":\"1.0\"}"))
        .unwrap();
    assert_eq!(status(&router, bad).await.0, StatusCode::BAD_REQUEST);
    let too_long = event(Some(&"x".repeat(2000)));
    assert_eq!(status(&router, too_long).await.0, StatusCode::BAD_REQUEST);
    // In a batch, a refused key leaves the others be.
    let batch = format!(
        r#"[{{"specversion":"1.0","id":"1","source":"s","type":"t","pullrequesturl":"{}"}},
            {{"specversion":"1.0","id":"2","source":"s","type":"t","pullrequesturl":"https://github.com/o/r/pull/10"}}]"#,
        "x".repeat(2000)
    );
    let request = Request::post("/events")
        .header("content-type", "application/cloudevents-batch+json")
        .body(Body::from(batch))
        .unwrap();
    assert_eq!(status(&router, request).await.0, StatusCode::ACCEPTED);
    let mut got = keys(&queue).await;
    got.sort();
    assert_eq!(got, ["https://github.com/o/r/pull/10", KEY]);
}

#[tokio::test]
async fn requests_beyond_the_limit_in_flight_should_get_503_at_once() {
    let (router, _, metrics) = one_at_a_time();
    // A delivery whose body is still arriving holds the one place.
    let (sender, slow) = streamed();
    let held = tokio::spawn(router.clone().oneshot(delivery(slow, None)));
    let signature = Some(sign(b"new", PR.as_bytes()));
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let (code, body) = status(&router, delivery(PR, signature.clone())).await;
        if code == StatusCode::SERVICE_UNAVAILABLE {
            assert!(body.contains("busy"), "{body}");
            break;
        }
        // The slow request may not have taken its place yet.
        assert!(
            tokio::time::Instant::now() < deadline,
            "never refused: {code}"
        );
        tokio::task::yield_now().await;
    }
    drop(sender);
    let _ = held.await.unwrap();
    let (code, _) = status(&router, delivery(PR, signature)).await;
    assert_eq!(code, StatusCode::ACCEPTED, "the place is free again");
    let text = rendered(&metrics);
    assert!(
        text.contains(r#"gateway_webhook_deliveries_total{event="pull_request",outcome="busy"} 1"#),
        "{text}"
    );
}

#[tokio::test(start_paused = true)]
async fn a_body_that_stalls_should_get_408_and_free_its_place() {
    let (router, queue, metrics) = one_at_a_time();
    let (sender, stalled) = streamed();
    sender.send(Ok(PR[..10].into())).await.unwrap();
    let signature = Some(sign(b"new", PR.as_bytes()));
    // Paused, the clock jumps to the next timer once every task waits: the body timeout's.
    let started = tokio::time::Instant::now();
    let answered = status(&router, delivery(stalled, signature.clone()));
    let (code, body) = tokio::time::timeout(2 * gateway::server::BODY_TIMEOUT, answered)
        .await
        .expect("answered when the body timed out");
    assert_eq!(code, StatusCode::REQUEST_TIMEOUT, "{body}");
    assert_eq!(started.elapsed(), gateway::server::BODY_TIMEOUT);
    assert!(keys(&queue).await.is_empty(), "nothing enqueued");
    let (code, _) = status(&router, delivery(PR, signature)).await;
    assert_eq!(code, StatusCode::ACCEPTED, "the place is free again");
    let text = rendered(&metrics);
    assert!(
        text.contains(
            r#"gateway_webhook_deliveries_total{event="pull_request",outcome="timed_out"} 1"#
        ),
        "{text}"
    );
    drop(sender);
}

/// The gateway's metrics in the text format.
fn rendered(metrics: &GatewayMetrics) -> String {
    let mut registry = prometheus_client::registry::Registry::default();
    metrics.register(&mut registry);
    workqueue::metrics::render(&registry)
}

/// A gateway on a memory queue with one place for a delivery in flight, and its metrics.
fn one_at_a_time() -> (axum::Router, Queue, GatewayMetrics) {
    let queue = Queue::new(Arc::new(MemoryStorage::new()), QueueConfig::default());
    let metrics = GatewayMetrics::default();
    let workqueue = Arc::new(LocalWorkqueue::new(queue.clone()));
    let router = build_measured(workqueue, None, 1, metrics.clone());
    (router, queue, metrics)
}

/// A body whose chunks arrive as the sender sends them; it ends when the sender is dropped.
fn streamed() -> (
    tokio::sync::mpsc::Sender<Result<axum::body::Bytes, std::io::Error>>,
    Body,
) {
    let (sender, mut chunks) = tokio::sync::mpsc::channel(1);
    let body = Body::from_stream(futures::stream::poll_fn(move |cx| chunks.poll_recv(cx)));
    (sender, body)
}

#[tokio::test]
async fn a_webhook_only_gateway_should_not_serve_events() {
    let queue = Queue::new(Arc::new(MemoryStorage::new()), QueueConfig::default());
    let gateway = Gateway::new(
        GatewayConfig {
            serve_events: false,
            ..GatewayConfig::new(
                vec![Route::extension("prs", "pullrequesturl")],
                Arc::new(LocalWorkqueue::new(queue.clone())),
                Secrets::new(["old", "new"]),
            )
        },
        GatewayMetrics::default(),
    )
    .unwrap();
    let router = gateway::server::router(Arc::new(gateway));
    let event = Request::post("/events")
        .header("ce-specversion", "1.0")
        .header("ce-id", "1")
        .header("ce-type", "t")
        .header("ce-source", "s")
        .header("ce-pullrequesturl", KEY)
        .body(Body::empty())
        .unwrap();
    assert_eq!(status(&router, event).await.0, StatusCode::NOT_FOUND);
    assert!(keys(&queue).await.is_empty());
    let signature = sign(b"new", PR.as_bytes());
    let (code, _) = status(&router, delivery(PR, Some(signature))).await;
    assert_eq!(code, StatusCode::ACCEPTED, "webhooks still served");
    assert_eq!(keys(&queue).await, vec![KEY.to_owned()]);
}
