//! A GitHub API client for one scope (an org, or one repository).
//!
//! Written on reqwest rather than octocrab (which the gateway's client uses) because this one
//! must (1) take its token from a source that changes under it (Octo STS, an App's
//! installation) on every call, (2) send `If-None-Match` and serve a 304 from its own memory,
//! and (3) hand a rate-limited answer back to the caller with its reset time, to become a
//! requeue rather than a wait; octocrab's typed calls hide the headers all three need.

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use http::{HeaderMap, StatusCode};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::auth::Auth;
use crate::error::Error;
use crate::etag::{EtagCache, Remembered};
use crate::metrics::Metrics;
use crate::token::Scope;

/// How long one call may take.
const CALL_TIMEOUT: Duration = Duration::from_secs(30);
/// How much of an error answer's message an error carries.
const MESSAGE_LIMIT: usize = 500;
/// JSON, as the REST API documents it.
pub(crate) const JSON: &str = "application/vnd.github+json";

/// Calls made by a set of clients, for tests, benchmarks and metrics.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RequestCounts {
    /// Reads (GETs) answered, 304s included.
    pub reads: u64,
    /// Reads answered 304 Not Modified from remembered answers.
    pub not_modified: u64,
    /// Writes (POSTs, PATCHes) answered.
    pub writes: u64,
    /// Calls answered with a rate limit.
    pub rate_limited: u64,
}

/// A client of the GitHub API for one scope; cheap to clone.
#[derive(Clone, Debug)]
pub struct GitHubClient {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    http: reqwest::Client,
    base: String,
    auth: Arc<Auth>,
    scope: Scope,
    /// Remembered answers, when conditional requests are on.
    etags: Option<Mutex<EtagCache>>,
    metrics: Arc<Metrics>,
}

/// GitHub's error body.
#[derive(serde::Deserialize)]
struct Message {
    message: String,
}

impl GitHubClient {
    pub(crate) fn new(
        http: reqwest::Client,
        base: &str,
        auth: Arc<Auth>,
        scope: Scope,
        conditional: bool,
        metrics: Arc<Metrics>,
    ) -> Self {
        Self {
            inner: Arc::new(Inner {
                http,
                base: base.trim_end_matches('/').to_owned(),
                auth,
                scope,
                etags: conditional.then(Mutex::default),
                metrics,
            }),
        }
    }

    /// Whether it remembers answers by ETag (conditional requests).
    pub fn is_conditional(&self) -> bool {
        self.inner.etags.is_some()
    }

    /// The scope its tokens are for.
    pub fn scope(&self) -> &Scope {
        &self.inner.scope
    }

    /// GETs `path` (`/repos/...`, with its query) and parses the JSON answer.
    pub async fn get_json<T: DeserializeOwned>(&self, path: &str) -> Result<T, Error> {
        let body = self.call(reqwest::Method::GET, path, JSON, None).await?;
        decode("GET", path, &body)
    }

    /// GETs `path` with `accept` (a media type such as `application/vnd.github.raw+json`):
    /// the answer's body as it is.
    pub async fn get_bytes(&self, path: &str, accept: &str) -> Result<Arc<[u8]>, Error> {
        self.call(reqwest::Method::GET, path, accept, None).await
    }

    /// POSTs `body` as JSON to `path` and parses the JSON answer.
    pub async fn post_json<B: Serialize, T: DeserializeOwned>(
        &self,
        path: &str,
        body: &B,
    ) -> Result<T, Error> {
        self.write_json(reqwest::Method::POST, path, body).await
    }

    /// PATCHes `path` with `body` as JSON and parses the JSON answer.
    pub async fn patch_json<B: Serialize, T: DeserializeOwned>(
        &self,
        path: &str,
        body: &B,
    ) -> Result<T, Error> {
        self.write_json(reqwest::Method::PATCH, path, body).await
    }

    async fn write_json<B: Serialize, T: DeserializeOwned>(
        &self,
        method: reqwest::Method,
        path: &str,
        body: &B,
    ) -> Result<T, Error> {
        let name = method_name(&method);
        let body = serde_json::to_vec(body).map_err(|source| Error::Decode {
            method: name,
            path: path.to_owned(),
            source,
        })?;
        let answer = self.call(method, path, JSON, Some(body)).await?;
        decode(name, path, &answer)
    }

    /// One call: the token of the scope, `If-None-Match` for a remembered GET, and the answer
    /// sorted into a body, a rate limit, or an error.
    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        accept: &str,
        body: Option<Vec<u8>>,
    ) -> Result<Arc<[u8]>, Error> {
        let inner = &*self.inner;
        let name = method_name(&method);
        let url = format!("{}{path}", inner.base);
        let read = method == reqwest::Method::GET;
        let token = inner.auth.token(&inner.scope).await?;
        // Remembered per URL and media type: the same URL answers differently per `Accept`.
        let memo_key = format!("{accept} {url}");
        let remembered = match (&inner.etags, read) {
            (Some(etags), true) => etags.lock().expect("the ETag cache").get(&memo_key),
            _ => None,
        };
        let mut request = inner
            .http
            .request(method, &url)
            .header("accept", accept)
            .header("x-github-api-version", "2022-11-28")
            .header("user-agent", "reconcilers-github-reconciler")
            .timeout(CALL_TIMEOUT);
        if let Some(token) = &token {
            request = request.bearer_auth(token.secret());
        }
        if let Some(remembered) = &remembered {
            request = request.header("if-none-match", &remembered.etag);
        }
        if let Some(body) = body {
            request = request
                .header("content-type", "application/json")
                .body(body);
        }
        let failed = |source| Error::Call {
            method: name,
            path: path.to_owned(),
            source,
        };
        let response = request.send().await.map_err(failed)?;
        let status = response.status();
        let headers = response.headers().clone();
        let answer = response.bytes().await.map_err(failed)?;
        inner.metrics.answered(read);
        if status == StatusCode::NOT_MODIFIED
            && let Some(remembered) = remembered
        {
            inner.metrics.not_modified();
            return Ok(remembered.body);
        }
        if status.is_success() {
            let body: Arc<[u8]> = Arc::from(&answer[..]);
            if let (Some(etags), true, Some(etag)) = (&inner.etags, read, etag_of(&headers)) {
                let remembered = Remembered {
                    etag,
                    body: body.clone(),
                };
                etags
                    .lock()
                    .expect("the ETag cache")
                    .put(memo_key, remembered);
            }
            return Ok(body);
        }
        let text = String::from_utf8_lossy(&answer);
        let wait = github::rate_limit::rate_limit_wait(status, &headers, &text, SystemTime::now());
        if let Some(wait) = wait {
            inner.metrics.rate_limited();
            return Err(Error::RateLimited {
                method: name,
                path: path.to_owned(),
                wait,
            });
        }
        Err(Error::Status {
            method: name,
            path: path.to_owned(),
            status: status.as_u16(),
            message: message_of(&text),
        })
    }
}

fn method_name(method: &reqwest::Method) -> &'static str {
    match *method {
        reqwest::Method::GET => "GET",
        reqwest::Method::POST => "POST",
        reqwest::Method::PATCH => "PATCH",
        reqwest::Method::PUT => "PUT",
        reqwest::Method::DELETE => "DELETE",
        _ => "HTTP",
    }
}

fn etag_of(headers: &HeaderMap) -> Option<String> {
    let etag = headers.get("etag")?.to_str().ok()?;
    Some(etag.to_owned())
}

/// GitHub's message from an error body, or the body itself, cut to a readable length.
fn message_of(body: &str) -> String {
    let message = serde_json::from_str::<Message>(body)
        .map(|m| m.message)
        .unwrap_or_else(|_| body.trim().to_owned());
    if message.len() <= MESSAGE_LIMIT {
        return message;
    }
    let cut = (0..=MESSAGE_LIMIT)
        .rev()
        .find(|&i| message.is_char_boundary(i))
        .unwrap_or(0);
    format!("{}…", &message[..cut])
}

fn decode<T: DeserializeOwned>(method: &'static str, path: &str, body: &[u8]) -> Result<T, Error> {
    serde_json::from_slice(body).map_err(|source| Error::Decode {
        method,
        path: path.to_owned(),
        source,
    })
}
