//! GitHub's rate limits as its answers state them, read one way for every client here: the
//! API client of the gateway and the resync (which waits them out) and the reconciler
//! toolkit (which turns them into requeues).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use http::{HeaderMap, StatusCode};

/// How long GitHub asks a client to wait after a secondary rate limit that gives no hint.
pub const SECONDARY_LIMIT_WAIT: Duration = Duration::from_secs(60);

/// How long a GitHub answer asks to wait before calling again, if it is a rate limit: its
/// `Retry-After`; else, with `X-RateLimit-Remaining: 0`, until `X-RateLimit-Reset` (and a
/// second); else, for a 429 or a 403 that says "rate limit", [`SECONDARY_LIMIT_WAIT`]. `None`
/// for any other answer (a plain 403 is a refusal).
pub fn rate_limit_wait(
    status: StatusCode,
    headers: &HeaderMap,
    body: &str,
    now: SystemTime,
) -> Option<Duration> {
    if status != StatusCode::FORBIDDEN && status != StatusCode::TOO_MANY_REQUESTS {
        return None;
    }
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    if let Some(seconds) = header("retry-after").and_then(|v| v.trim().parse::<u64>().ok()) {
        return Some(Duration::from_secs(seconds.max(1)));
    }
    if header("x-ratelimit-remaining") == Some("0")
        && let Some(reset) = header("x-ratelimit-reset").and_then(|v| v.parse::<u64>().ok())
    {
        let now = now.duration_since(UNIX_EPOCH).unwrap_or_default().as_secs();
        return Some(Duration::from_secs(reset.saturating_sub(now) + 1));
    }
    // A secondary rate limit without a hint (a 429, or a 403 that says so): GitHub asks for
    // at least a minute. Any other 403 is a refusal.
    let says_rate_limit = body.to_ascii_lowercase().contains("rate limit");
    (status == StatusCode::TOO_MANY_REQUESTS || says_rate_limit).then_some(SECONDARY_LIMIT_WAIT)
}

#[cfg(test)]
mod tests {
    use http::HeaderValue;

    use super::*;

    #[test]
    fn rate_limit_wait_should_read_githubs_hints() {
        let now = UNIX_EPOCH + Duration::from_secs(1_000);
        let headers = |pairs: &[(&'static str, &'static str)]| {
            let mut h = HeaderMap::new();
            for (n, v) in pairs {
                h.insert(*n, HeaderValue::from_static(v));
            }
            h
        };
        let forbidden = StatusCode::FORBIDDEN;
        let wait = |status, headers: &HeaderMap, body| rate_limit_wait(status, headers, body, now);
        assert_eq!(
            wait(forbidden, &headers(&[("retry-after", "7")]), ""),
            Some(Duration::from_secs(7))
        );
        let exhausted = headers(&[
            ("x-ratelimit-remaining", "0"),
            ("x-ratelimit-reset", "1030"),
        ]);
        assert_eq!(
            wait(forbidden, &exhausted, ""),
            Some(Duration::from_secs(31))
        );
        let refused = r#"{"message":"Resource not accessible by integration"}"#;
        assert_eq!(wait(forbidden, &headers(&[]), refused), None, "a plain 403");
        let secondary = r#"{"message":"You have exceeded a secondary rate limit."}"#;
        assert_eq!(
            wait(forbidden, &headers(&[]), secondary),
            Some(SECONDARY_LIMIT_WAIT)
        );
        assert_eq!(
            wait(StatusCode::TOO_MANY_REQUESTS, &headers(&[]), ""),
            Some(SECONDARY_LIMIT_WAIT)
        );
        assert_eq!(wait(StatusCode::NOT_FOUND, &exhausted, secondary), None);
    }
}
