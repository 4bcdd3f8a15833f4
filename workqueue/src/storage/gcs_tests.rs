//! The retry and read-back paths, against the real emulator behind a proxy that injects
//! HTTP faults before or after forwarding a request.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{Method, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::*;
use crate::conformance::Emulator;

#[derive(Clone, Copy, Debug)]
enum Fault {
    /// Answer this status without forwarding.
    Before(u16),
    /// Answer this status with a plain-text body (a proxy's error page), not forwarding.
    BeforePlain(u16),
    /// Forward, then answer this status instead of GCS's answer.
    After(u16),
    /// Forward, then never answer.
    HangAfter,
}

struct Proxy {
    upstream: String,
    client: reqwest::Client,
    faults: Mutex<Vec<(Method, Fault)>>,
    requests: AtomicUsize,
}

fn gcs_error(code: u16) -> Response {
    let body = format!(r#"{{"error":{{"code":{code},"message":"injected","errors":[]}}}}"#);
    (
        StatusCode::from_u16(code).unwrap(),
        [(header::CONTENT_TYPE, "application/json")],
        body,
    )
        .into_response()
}

async fn forward(State(proxy): State<Arc<Proxy>>, request: Request) -> Response {
    proxy.requests.fetch_add(1, Ordering::SeqCst);
    let fault = {
        let mut faults = proxy.faults.lock().unwrap();
        let found = faults
            .iter()
            .position(|(method, _)| method == request.method());
        found.map(|i| faults.remove(i).1)
    };
    match fault {
        Some(Fault::Before(code)) => return gcs_error(code),
        Some(Fault::BeforePlain(code)) => {
            return (
                StatusCode::from_u16(code).unwrap(),
                "<html>upstream error</html>",
            )
                .into_response();
        }
        _ => {}
    }
    let (parts, body) = request.into_parts();
    let body: Bytes = axum::body::to_bytes(body, usize::MAX).await.unwrap();
    let url = format!("{}{}", proxy.upstream, parts.uri.path_and_query().unwrap());
    let mut upstream = proxy.client.request(parts.method.clone(), url).body(body);
    if let Some(content_type) = parts.headers.get(header::CONTENT_TYPE) {
        upstream = upstream.header(header::CONTENT_TYPE, content_type);
    }
    let answer = upstream.send().await.unwrap();
    match fault {
        Some(Fault::After(code)) => gcs_error(code),
        Some(Fault::HangAfter) => std::future::pending().await,
        _ => {
            let status = answer.status();
            let content_type = answer.headers().get(header::CONTENT_TYPE).cloned();
            let bytes = answer.bytes().await.unwrap();
            let mut response = Response::new(Body::from(bytes));
            *response.status_mut() = status;
            if let Some(content_type) = content_type {
                response
                    .headers_mut()
                    .insert(header::CONTENT_TYPE, content_type);
            }
            response
        }
    }
}

struct Setup {
    storage: GcsStorage,
    direct: GcsStorage,
    proxy: Arc<Proxy>,
    proxy_addr: std::net::SocketAddr,
    _emulator: Emulator,
}

impl Setup {
    async fn new() -> Self {
        let emulator = Emulator::start().await;
        let bucket = emulator.bucket().await;
        let proxy = Arc::new(Proxy {
            upstream: emulator.endpoint.clone(),
            client: reqwest::Client::new(),
            faults: Mutex::default(),
            requests: AtomicUsize::new(0),
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let proxy_addr = listener.local_addr().unwrap();
        let endpoint = format!("http://{proxy_addr}");
        let app = axum::Router::new()
            .fallback(forward)
            .with_state(proxy.clone());
        tokio::spawn(async move { axum::serve(listener, app).await });
        let retry = RetryPolicy {
            call_timeout: Duration::from_millis(500),
            attempts: 4,
            base: Duration::from_millis(10),
        };
        let storage = GcsStorage::emulator(&endpoint, &bucket, "wq")
            .await
            .unwrap()
            .with_retry(retry);
        let direct = GcsStorage::emulator(&emulator.endpoint, &bucket, "wq")
            .await
            .unwrap();
        Self {
            storage,
            direct,
            proxy,
            proxy_addr,
            _emulator: emulator,
        }
    }

    fn inject(&self, method: Method, fault: Fault) {
        self.proxy.faults.lock().unwrap().push((method, fault));
    }

    fn requests(&self) -> usize {
        self.proxy.requests.load(Ordering::SeqCst)
    }
}

fn meta(value: &str) -> Metadata {
    Metadata::from([("v".to_owned(), value.to_owned())])
}

fn is_permanent(error: &StorageError) -> bool {
    matches!(
        error,
        StorageError::Backend {
            transient: false,
            ..
        }
    )
}

#[tokio::test]
async fn transient_errors_should_be_retried() {
    let s = Setup::new().await;
    s.direct
        .put("q/a", &meta("1"), PutMode::Create)
        .await
        .unwrap();
    s.inject(Method::GET, Fault::Before(503));
    s.inject(Method::GET, Fault::Before(429));
    assert_eq!(
        s.storage.get("q/a").await.unwrap().unwrap().metadata,
        meta("1")
    );
    s.inject(Method::GET, Fault::Before(500));
    assert_eq!(
        s.storage.list("q/", None, 10).await.unwrap().objects.len(),
        1
    );
    s.inject(Method::POST, Fault::Before(503));
    s.storage
        .put("q/b", &meta("2"), PutMode::Create)
        .await
        .unwrap();
    assert_eq!(
        s.direct.get("q/b").await.unwrap().unwrap().metadata,
        meta("2")
    );
}

#[tokio::test]
async fn a_retried_write_should_recognise_its_own_landed_write() {
    let s = Setup::new().await;
    s.inject(Method::POST, Fault::After(503));
    let generation = s
        .storage
        .put("q/a", &meta("mine"), PutMode::Create)
        .await
        .unwrap();
    let stored = s.direct.get("q/a").await.unwrap().unwrap();
    assert_eq!(
        (stored.generation, stored.metadata),
        (generation, meta("mine"))
    );
    s.inject(Method::POST, Fault::After(502));
    let next = s
        .storage
        .put("q/a", &meta("again"), PutMode::Replace(generation))
        .await
        .unwrap();
    assert_eq!(s.direct.get("q/a").await.unwrap().unwrap().generation, next);
}

#[tokio::test]
async fn a_timeout_that_landed_should_be_read_back() {
    let s = Setup::new().await;
    s.inject(Method::POST, Fault::HangAfter);
    let generation = s
        .storage
        .put("q/a", &meta("mine"), PutMode::Create)
        .await
        .unwrap();
    assert_eq!(
        s.direct.get("q/a").await.unwrap().unwrap().generation,
        generation
    );
}

#[tokio::test]
async fn a_retried_write_that_lost_a_race_should_still_fail() {
    let s = Setup::new().await;
    s.direct
        .put("q/a", &meta("theirs"), PutMode::Create)
        .await
        .unwrap();
    s.inject(Method::POST, Fault::Before(503));
    let err = s
        .storage
        .put("q/a", &meta("mine"), PutMode::Create)
        .await
        .unwrap_err();
    assert!(matches!(err, StorageError::Precondition { .. }), "{err:?}");
    assert_eq!(
        s.direct.get("q/a").await.unwrap().unwrap().metadata,
        meta("theirs")
    );
}

#[tokio::test]
async fn a_retried_delete_should_take_not_found_as_its_own() {
    let s = Setup::new().await;
    let generation = s
        .direct
        .put("q/a", &meta("1"), PutMode::Create)
        .await
        .unwrap();
    s.inject(Method::DELETE, Fault::After(503));
    s.storage.delete("q/a", generation).await.unwrap();
    assert!(s.direct.get("q/a").await.unwrap().is_none());
    // Without an earlier attempt that may have landed, not found is not found.
    let err = s.storage.delete("q/a", generation).await.unwrap_err();
    assert!(matches!(err, StorageError::NotFound { .. }), "{err:?}");
}

#[tokio::test]
async fn errors_without_a_gcs_body_should_be_classified_by_status() {
    let s = Setup::new().await;
    let generation = s
        .direct
        .put("q/a", &meta("1"), PutMode::Create)
        .await
        .unwrap();
    s.inject(Method::GET, Fault::BeforePlain(502));
    assert!(
        s.storage.get("q/a").await.unwrap().is_some(),
        "a 502 page is retried"
    );
    s.inject(Method::DELETE, Fault::BeforePlain(412));
    let err = s.storage.delete("q/a", generation).await.unwrap_err();
    assert!(matches!(err, StorageError::Precondition { .. }), "{err:?}");
    s.inject(Method::GET, Fault::BeforePlain(404));
    assert!(s.storage.get("q/a").await.unwrap().is_none());
    s.inject(Method::GET, Fault::BeforePlain(403));
    let err = s.storage.get("q/a").await.unwrap_err();
    assert!(is_permanent(&err), "{err:?}");
}

#[tokio::test]
async fn startup_should_name_a_bucket_that_is_missing_or_forbidden() {
    let s = Setup::new().await;
    let missing = GcsStorage::emulator(&s.proxy.upstream, "no-such-bucket", "")
        .await
        .unwrap_err();
    let reason = |e: &StorageError| {
        std::error::Error::source(e)
            .map(|s| s.to_string())
            .unwrap_or_default()
    };
    assert!(
        reason(&missing).contains("bucket \"no-such-bucket\" does not exist"),
        "{missing:?}"
    );
    let proxied = format!("http://{}", s.proxy_addr);
    s.inject(Method::GET, Fault::Before(403));
    let denied = GcsStorage::emulator(&proxied, &s.direct.bucket, "")
        .await
        .unwrap_err();
    let text = reason(&denied);
    assert!(
        text.contains("access to bucket") && text.contains(&s.direct.bucket),
        "{text}"
    );
}

#[tokio::test]
async fn permanent_errors_should_not_be_retried() {
    let s = Setup::new().await;
    let before = s.requests();
    s.inject(Method::GET, Fault::Before(400));
    let err = s.storage.get("q/a").await.unwrap_err();
    assert!(is_permanent(&err), "{err:?}");
    assert_eq!(s.requests() - before, 1);
}

#[tokio::test]
async fn names_should_stay_under_the_prefix() {
    let s = Setup::new().await;
    s.storage
        .put("q/a b%2F..", &meta("1"), PutMode::Create)
        .await
        .unwrap();
    let page = s.storage.list("q/", None, 10).await.unwrap();
    assert_eq!(page.objects[0].name, "q/a b%2F..");
    let everything = GcsStorage::emulator(&s.proxy.upstream, &s.direct.bucket, "")
        .await
        .unwrap();
    let all = everything.list("", None, 10).await.unwrap();
    assert_eq!(all.objects[0].name, "wq/q/a b%2F..");
}
