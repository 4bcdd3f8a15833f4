//! CloudEvents over HTTP (spec v1.0.2; docs/architecture.md, "CloudEvents"): binary, structured and
//! batch modes, read from headers and an already size-limited body with `cloudevents-sdk` (its HTTP
//! binding for binary mode, its JSON form of an event for the others).

use std::time::SystemTime;

use axum::body::Bytes;
use axum::http::HeaderMap;
use axum::http::header::CONTENT_TYPE;
use cloudevents::event::ExtensionValue;
use cloudevents::{AttributesReader, Data, Event};
use percent_encoding::percent_decode_str;
use serde_json::Value;
use tracing::warn;

use crate::incoming::{GitHubPayload, Incoming};
use crate::webhook::TYPE_PREFIX;

/// A request that is not a valid CloudEvent (or batch of them).
#[derive(Debug, thiserror::Error)]
pub enum EventError {
    /// A batch's body is not a JSON array of events.
    #[error("not a valid CloudEvents batch")]
    Batch(#[source] serde_json::Error),
    /// A structured event's body is not an event in JSON.
    #[error("not a valid structured CloudEvent")]
    Structured(#[source] serde_json::Error),
    /// A binary event's headers and body are not an event (the SDK's message already says
    /// its own cause, so it is not a `source` too).
    #[error("not a valid CloudEvent: {0}")]
    Binary(cloudevents::message::Error),
    /// A percent-encoded header value does not decode to UTF-8.
    #[error("not a valid CloudEvent: a header value is not UTF-8: {0:?}")]
    NotUtf8(String),
}

/// The events of one request, in the mode its `Content-Type` names.
pub fn parse(headers: &HeaderMap, body: Bytes) -> Result<Vec<Incoming>, EventError> {
    let content_type = headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if starts_with_ignoring_case(content_type, "application/cloudevents-batch") {
        let events: Vec<Event> = serde_json::from_slice(&body).map_err(EventError::Batch)?;
        return events.into_iter().map(|e| to_incoming(e, false)).collect();
    }
    // Structured mode read here, not by the SDK's binding: its test of the media type is
    // case-sensitive, and would read `Application/CloudEvents+JSON` as binary mode.
    if starts_with_ignoring_case(content_type, "application/cloudevents+json") {
        let event: Event = serde_json::from_slice(&body).map_err(EventError::Structured)?;
        return Ok(vec![to_incoming(event, false)?]);
    }
    let event =
        cloudevents::binding::http::to_event(headers, body.to_vec()).map_err(EventError::Binary)?;
    Ok(vec![to_incoming(event, true)?])
}

/// Whether `value` starts with `prefix`, in any case (media types are case-insensitive).
pub(crate) fn starts_with_ignoring_case(value: &str, prefix: &str) -> bool {
    value
        .get(..prefix.len())
        .is_some_and(|start| start.eq_ignore_ascii_case(prefix))
}

/// The attributes routes match on; in binary mode, header values are percent-decoded first.
fn to_incoming(event: Event, binary: bool) -> Result<Incoming, EventError> {
    let text = |value: &str| -> Result<String, EventError> {
        if binary {
            percent_decode_str(value)
                .decode_utf8()
                .map(|v| v.into_owned())
                .map_err(|_| EventError::NotUtf8(value.to_owned()))
        } else {
            Ok(value.to_owned())
        }
    };
    let extensions = event
        .iter_extensions()
        .map(|(name, value)| {
            let value = match value {
                ExtensionValue::String(s) => text(s)?,
                other => other.to_string(),
            };
            Ok((name.to_ascii_lowercase(), value))
        })
        .collect::<Result<_, EventError>>()?;
    let ty = text(event.ty())?;
    let github = (ty.strip_prefix(TYPE_PREFIX) == Some("push"))
        .then(|| carried_push(&event))
        .flatten();
    Ok(Incoming {
        id: text(event.id())?,
        ty,
        source: text(event.source())?,
        subject: event.subject().map(text).transpose()?,
        extensions,
        github,
    })
}

/// The push a broker's `dev.chainguard.github.push` event carries, so path routes make the
/// same keys of it as of the delivery itself. Its data is what the GitHub bridge (this
/// gateway's sink among them) writes: `{"when": ..., "headers": {...}, "body": <payload>}`.
/// `/events` trusts its callers (Cloud Run IAM), so the payload is taken as GitHub's.
///
/// Only pushes are read: a path route is the one reader of a payload, and copying every
/// event's body out of its data would cost each event for nothing.
fn carried_push(event: &Event) -> Option<GitHubPayload> {
    let parsed;
    let data: &Value = match event.data() {
        Some(Data::Json(value)) => value,
        Some(Data::Binary(bytes)) => {
            parsed = serde_json::from_slice(bytes).ok();
            parsed.as_ref()?
        }
        Some(Data::String(text)) => {
            parsed = serde_json::from_str(text).ok();
            parsed.as_ref()?
        }
        None => return None,
    };
    let Some(body) = data.get("body").filter(|body| body.is_object()) else {
        warn!(
            id = event.id(),
            "a push event whose data holds no GitHub payload under \"body\": no path keys"
        );
        return None;
    };
    let headers = data
        .get("headers")
        .and_then(Value::as_object)
        .map(|headers| {
            headers
                .iter()
                .filter_map(|(name, value)| Some((name.clone(), value.as_str()?.to_owned())))
                .collect()
        })
        .unwrap_or_default();
    let received = data
        .get("when")
        .and_then(Value::as_str)
        .and_then(|when| humantime::parse_rfc3339_weak(when).ok())
        .unwrap_or_else(SystemTime::now);
    Some(GitHubPayload {
        event: "push".to_owned(),
        body: Bytes::from(serde_json::to_vec(body).ok()?),
        headers,
        received,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (name, value) in pairs {
            h.insert(*name, HeaderValue::from_static(value));
        }
        h
    }

    #[test]
    fn binary_mode_should_percent_decode_header_values() {
        let h = headers(&[
            ("ce-specversion", "1.0"),
            ("ce-id", "1"),
            ("ce-source", "//src"),
            ("ce-type", "t"),
            ("ce-subject", "a%20b"),
            (
                "ce-pullrequesturl",
                "https://github.com/o/r/pull/1%E2%9C%93",
            ),
            ("content-type", "application/json"),
        ]);
        let events = parse(&h, Bytes::from_static(b"{}")).unwrap();
        assert_eq!(events[0].subject.as_deref(), Some("a b"));
        assert_eq!(
            events[0].extension("pullrequesturl"),
            Some("https://github.com/o/r/pull/1\u{2713}")
        );
    }

    #[test]
    fn structured_and_batch_modes_should_parse() {
        let one =
            r#"{"specversion":"1.0","id":"1","source":"s","type":"t","k":"v","data":{"x":1}}"#;
        for media_type in [
            "application/cloudevents+json",
            "Application/CloudEvents+JSON; charset=utf-8",
        ] {
            let h = headers(&[("content-type", media_type)]);
            let events = parse(&h, Bytes::from(one)).unwrap();
            assert_eq!(events[0].extension("k"), Some("v"), "{media_type}");
        }
        let h = headers(&[("content-type", "Application/CloudEvents-Batch+JSON")]);
        let events = parse(&h, Bytes::from(format!("[{one},{one}]"))).unwrap();
        assert_eq!(events.len(), 2);
    }

    #[test]
    fn malformed_events_should_be_refused() {
        let h = headers(&[("content-type", "application/cloudevents+json")]);
        assert!(parse(&h, Bytes::from_static(b"{\"id\":\"1\"}")).is_err());
        assert!(parse(&h, Bytes::from_static(b"not json")).is_err());
        let h = headers(&[("ce-specversion", "1.0"), ("ce-id", "1")]);
        assert!(parse(&h, Bytes::new()).is_err(), "no source or type");
        let h = headers(&[("content-type", "application/cloudevents-batch+json")]);
        assert!(
            parse(&h, Bytes::from_static(b"{}")).is_err(),
            "a batch is an array"
        );
    }
}
