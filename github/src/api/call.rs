//! One GET against the GitHub API, made until it answers: rate limits waited out (within a
//! bound), server errors, dropped connections and stalled calls tried again a few times, and
//! every try bounded in time so that nothing waits on GitHub forever.

use std::error::Error as _;
use std::sync::atomic::Ordering;
use std::time::{Duration, SystemTime};

use http::{HeaderMap, StatusCode};
use serde::de::DeserializeOwned;
use tracing::warn;

use super::{GitHubApi, GitHubError};
use crate::rate_limit::rate_limit_wait;

/// The most time one try (the answer's body included) may take: a 100,000-entry tree is some
/// 15 MB of JSON.
pub(super) const CALL_TIMEOUT: Duration = Duration::from_secs(120);

/// Tries of a call that fails for a reason that may pass (a 5xx, a dropped connection, a
/// stalled call); the waits between them grow by [`TRANSIENT_WAIT`] each: 1 s, then 2 s.
const TRANSIENT_TRIES: u32 = 3;
const TRANSIENT_WAIT: Duration = Duration::from_secs(1);

/// What one try got: the status, the headers and the body.
struct Answer {
    status: StatusCode,
    headers: HeaderMap,
    body: String,
}

impl GitHubApi {
    /// GETs `route` (with its query) and parses the JSON answer.
    pub(super) async fn get_json<T: DeserializeOwned>(
        &self,
        route: &str,
    ) -> Result<T, GitHubError> {
        let body = self.get_text(route).await?;
        serde_json::from_str(&body).map_err(|source| GitHubError::Unexpected {
            what: route.to_owned(),
            source,
        })
    }

    /// GETs `route` (with its query): the body of a success. A rate limit (403 or 429 with
    /// `Retry-After`, or `X-RateLimit-Remaining: 0` and its reset time; a secondary limit
    /// without either: a minute) is waited out and the call made again, for up to `max_wait`
    /// in all; a failure that may pass ([`GitHubError::is_transient`]: a 5xx, a failed
    /// connection, a try over the client's call timeout, [`CALL_TIMEOUT`] unless
    /// [`GitHubApi::with_call_timeout`] set another) is tried [`TRANSIENT_TRIES`] times in all;
    /// anything else fails with GitHub's message.
    pub(super) async fn get_text(&self, route: &str) -> Result<String, GitHubError> {
        let mut waited = Duration::ZERO;
        let mut failures = 0;
        loop {
            let failure = match self.try_once(route).await {
                Ok(answer) if answer.status.is_success() => return Ok(answer.body),
                Ok(answer) => {
                    let limit = rate_limit_wait(
                        answer.status,
                        &answer.headers,
                        &answer.body,
                        SystemTime::now(),
                    );
                    match limit {
                        Some(wait) if waited + wait <= self.max_wait => {
                            warn!(%route, ?wait, "GitHub rate limit: waiting it out");
                            tokio::time::sleep(wait).await;
                            waited += wait;
                            continue;
                        }
                        // It lifts beyond the wait allowed: not tried again here.
                        Some(wait) => {
                            return Err(GitHubError::RateLimited {
                                route: route.to_owned(),
                                wait,
                                max_wait: self.max_wait,
                            });
                        }
                        None => GitHubError::Status {
                            route: route.to_owned(),
                            status: answer.status,
                            message: answer.body.trim().to_owned(),
                        },
                    }
                }
                Err(e) => e,
            };
            failures += 1;
            if !failure.is_transient() || failures >= TRANSIENT_TRIES {
                return Err(failure);
            }
            let retry_in = TRANSIENT_WAIT * failures;
            let causes: Vec<String> = std::iter::successors(failure.source(), |e| (*e).source())
                .map(ToString::to_string)
                .collect();
            warn!(%route, error = %failure, ?causes, ?retry_in, "GitHub call failed: trying again");
            tokio::time::sleep(retry_in).await;
        }
    }

    /// One try, bounded by the client's call timeout.
    async fn try_once(&self, route: &str) -> Result<Answer, GitHubError> {
        let unanswered = |source| GitHubError::Call {
            route: route.to_owned(),
            source,
        };
        let unread = |source| GitHubError::Read {
            route: route.to_owned(),
            source,
        };
        let attempt = async {
            let no_token = |source| GitHubError::Token {
                route: route.to_owned(),
                source,
            };
            let headers = match &self.tokens {
                Some(tokens) => {
                    Some(bearer(tokens.token().await.map_err(no_token)?).map_err(no_token)?)
                }
                None => None,
            };
            let response = self
                .client
                ._get_with_headers(route, headers)
                .await
                .map_err(unanswered)?;
            self.calls.fetch_add(1, Ordering::Relaxed);
            let status = response.status();
            // Only a refusal's headers are read (for rate limits).
            let headers = if status.is_success() {
                HeaderMap::new()
            } else {
                response.headers().clone()
            };
            let body = self.client.body_to_string(response).await.map_err(unread)?;
            Ok(Answer {
                status,
                headers,
                body,
            })
        };
        tokio::time::timeout(self.call_timeout, attempt)
            .await
            .unwrap_or_else(|_| {
                Err(GitHubError::TimedOut {
                    route: route.to_owned(),
                    after: self.call_timeout,
                })
            })
    }
}

/// The `Authorization` header of a token from a token source, marked sensitive so it is
/// never printed; a token that cannot be a header value is an error (naming no token).
fn bearer(token: String) -> Result<HeaderMap, super::TokenError> {
    let mut value = http::HeaderValue::from_str(&format!("Bearer {token}"))
        .map_err(|_| "the token source gave a token that is not a valid header value")?;
    value.set_sensitive(true);
    Ok(HeaderMap::from_iter([(http::header::AUTHORIZATION, value)]))
}

#[cfg(test)]
pub(super) mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;
    use axum::response::IntoResponse;

    /// Serves `router` on a loopback port; a client of it.
    pub(in super::super) async fn api_of(router: axum::Router) -> GitHubApi {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, router).await });
        GitHubApi::from_env(Some(&format!("http://{addr}"))).unwrap()
    }

    /// A route that answers with `first` the first `times` calls, then with `then`; and the
    /// count of its calls.
    fn flaky(
        times: usize,
        first: fn() -> axum::response::Response,
        then: &'static str,
    ) -> (axum::routing::MethodRouter, Arc<AtomicUsize>) {
        let calls = Arc::new(AtomicUsize::new(0));
        let seen = calls.clone();
        let route = axum::routing::get(move || {
            let seen = seen.clone();
            async move {
                if seen.fetch_add(1, Ordering::SeqCst) < times {
                    first()
                } else {
                    then.into_response()
                }
            }
        });
        (route, calls)
    }

    const REPO: &str = r#"{"full_name":"o/r","default_branch":"trunk"}"#;

    /// An error and its causes, as a person reads them.
    fn chain(error: &dyn std::error::Error) -> String {
        let causes = std::iter::successors(Some(error), |e| (*e).source());
        causes.map(|e| e.to_string()).collect::<Vec<_>>().join(": ")
    }

    #[tokio::test]
    async fn calls_should_wait_out_a_rate_limit_and_fail_on_other_errors() {
        fn limited() -> axum::response::Response {
            (
                StatusCode::TOO_MANY_REQUESTS,
                [("retry-after", "1")],
                "slow down",
            )
                .into_response()
        }
        let (route, calls) = flaky(1, limited, REPO);
        let router = axum::Router::new().route("/repos/o/r", route).route(
            "/repos/o/missing",
            axum::routing::get(|| async { (StatusCode::NOT_FOUND, r#"{"message":"Not Found"}"#) }),
        );
        let api = api_of(router).await;
        let started = std::time::Instant::now();
        assert_eq!(api.default_branch("o/r").await.unwrap(), "trunk");
        assert!(started.elapsed() >= Duration::from_secs(1), "it waited");
        assert_eq!(calls.load(Ordering::SeqCst), 2);
        let before = api.calls();
        let missing = api.default_branch("o/missing").await.unwrap_err();
        assert!(!missing.is_transient(), "{missing}");
        let err = chain(&missing);
        assert!(err.contains("404") && err.contains("Not Found"), "{err}");
        assert_eq!(api.calls(), before + 1, "a 404 is not tried again");
        let impatient = api.with_max_rate_limit_wait(Duration::ZERO);
        calls.store(0, Ordering::SeqCst);
        let err = impatient.default_branch("o/r").await.unwrap_err();
        assert!(chain(&err).contains("rate limit"), "{err:?}");
    }

    #[tokio::test]
    async fn server_errors_should_be_tried_again_a_few_times() {
        fn broken() -> axum::response::Response {
            (StatusCode::BAD_GATEWAY, "upstream hiccup").into_response()
        }
        let (route, calls) = flaky(TRANSIENT_TRIES as usize - 1, broken, REPO);
        let api = api_of(axum::Router::new().route("/repos/o/r", route)).await;
        assert_eq!(api.default_branch("o/r").await.unwrap(), "trunk");
        assert_eq!(calls.load(Ordering::SeqCst), TRANSIENT_TRIES as usize);
        let (route, calls) = flaky(usize::MAX, broken, REPO);
        let api = api_of(axum::Router::new().route("/repos/o/r", route)).await;
        let broken = api.default_branch("o/r").await.unwrap_err();
        assert!(broken.is_transient(), "{broken}");
        let err = chain(&broken);
        assert!(
            err.contains("502") && err.contains("upstream hiccup"),
            "{err}"
        );
        assert_eq!(calls.load(Ordering::SeqCst), TRANSIENT_TRIES as usize);
    }

    #[tokio::test]
    async fn a_stalled_call_should_time_out_and_be_tried_again() {
        let calls = Arc::new(AtomicUsize::new(0));
        let seen = calls.clone();
        let route = axum::routing::get(move || {
            let seen = seen.clone();
            async move {
                if seen.fetch_add(1, Ordering::SeqCst) == 0 {
                    // Never answers within the call timeout.
                    std::future::pending::<()>().await;
                }
                REPO
            }
        });
        let api = api_of(axum::Router::new().route("/repos/o/r", route))
            .await
            .with_call_timeout(Duration::from_millis(300));
        assert_eq!(api.default_branch("o/r").await.unwrap(), "trunk");
        assert_eq!(
            calls.load(Ordering::SeqCst),
            2,
            "the stalled try, then one more"
        );
    }
}
