//! A GitHub delivery as a CloudEvent (docs/architecture.md, "A delivery as a CloudEvent"): `id` the
//! delivery id, `type` `dev.chainguard.github.<event>`, `subject` the repository, and the
//! extensions routes key on (`pullrequesturl`, `issueurl`, `action`, `githubhook`, `headbranch`,
//! `merged`).

use std::time::SystemTime;

use axum::body::Bytes;
use axum::http::HeaderMap;
use axum::http::header::{CONTENT_TYPE, HOST, USER_AGENT};
use github::Target;

use crate::events::starts_with_ignoring_case;
use crate::incoming::{GitHubPayload, Incoming};
use crate::payload::Payload;

/// The prefix of the CloudEvent types of GitHub deliveries.
pub const TYPE_PREFIX: &str = "dev.chainguard.github.";

/// A delivery that cannot be turned into an event.
#[derive(Debug, thiserror::Error)]
pub enum DeliveryError {
    /// A required header is missing.
    #[error("the delivery has no {0} header")]
    MissingHeader(&'static str),
    /// The body is not the payload JSON (or a form with it in `payload`).
    #[error("the delivery's payload is not valid JSON")]
    Payload(#[source] serde_json::Error),
    /// A form-encoded delivery has no `payload` field.
    #[error("the delivery is a form with no payload field")]
    NoFormPayload,
}

/// Turns a verified delivery into an event. `source` is the configured event source; without
/// one, the request's host. The delivery's headers are kept (for the event's data) only when
/// `keep_headers`.
pub fn to_incoming(
    headers: &HeaderMap,
    body: Bytes,
    source: Option<&str>,
    keep_headers: bool,
) -> Result<Incoming, DeliveryError> {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let event = header("x-github-event")
        .filter(|e| !e.is_empty())
        .ok_or(DeliveryError::MissingHeader("X-GitHub-Event"))?;
    let id = header("x-github-delivery")
        .filter(|e| !e.is_empty())
        .ok_or(DeliveryError::MissingHeader("X-GitHub-Delivery"))?;
    let form = header(CONTENT_TYPE.as_str())
        .is_some_and(|ct| starts_with_ignoring_case(ct, "application/x-www-form-urlencoded"));
    let body = if form { form_payload(&body)? } else { body };
    let payload: Payload<'_> = serde_json::from_slice(&body).map_err(DeliveryError::Payload)?;
    let mut extensions = extensions_of(event, &payload);
    if let Some(hook) = header("x-github-hook-id").filter(|h| !h.is_empty()) {
        extensions.push(("githubhook".to_owned(), hook.to_owned()));
    }
    let source = source
        .or_else(|| header(HOST.as_str()))
        .unwrap_or("github.com")
        .to_owned();
    let subject = payload.repository.as_ref().map(|r| r.full_name.to_string());
    let kept = if keep_headers {
        headers
            .iter()
            .filter(|(name, _)| name.as_str().starts_with("x-github-") || *name == USER_AGENT)
            .filter_map(|(name, value)| {
                Some((name.as_str().to_owned(), value.to_str().ok()?.to_owned()))
            })
            .collect()
    } else {
        Vec::new()
    };
    Ok(Incoming {
        id: id.to_owned(),
        ty: format!("{TYPE_PREFIX}{event}"),
        source,
        subject,
        extensions,
        github: Some(GitHubPayload {
            event: event.to_owned(),
            body,
            headers: kept,
            received: SystemTime::now(),
        }),
    })
}

/// The JSON in a form-encoded delivery's `payload` field.
fn form_payload(body: &[u8]) -> Result<Bytes, DeliveryError> {
    form_urlencoded::parse(body)
        .find(|(name, _)| name == "payload")
        .map(|(_, value)| Bytes::from(value.into_owned()))
        .ok_or(DeliveryError::NoFormPayload)
}

/// The extensions a payload yields for `event`.
pub(crate) fn extensions_of(event: &str, payload: &Payload<'_>) -> Vec<(String, String)> {
    let mut extensions = Vec::new();
    let mut add = |name: &str, value: String| extensions.push((name.to_owned(), value));
    if let Some(action) = &payload.action {
        add("action", action.to_string());
    }
    let Some(repository) = &payload.repository else {
        return extensions;
    };
    // Keys name the repository's own host; a payload whose repository cannot name one (an
    // unreadable html_url) makes no key, rather than one on the wrong host.
    let key = |target| repository.keyed().map(|repo| repo.key(target).to_string());
    let pull_request = match event {
        "pull_request"
        | "pull_request_review"
        | "pull_request_review_comment"
        | "pull_request_review_thread" => payload.pull_request.as_ref().map(|pr| pr.number),
        "issue_comment" | "issues" => payload
            .issue
            .as_ref()
            .filter(|issue| issue.pull_request.is_some())
            .map(|issue| issue.number),
        "check_run" => payload
            .check_run
            .as_ref()
            .and_then(|run| run.pull_requests.first())
            .map(|pr| pr.number),
        "check_suite" => payload
            .check_suite
            .as_ref()
            .and_then(|suite| suite.pull_requests.first())
            .map(|pr| pr.number),
        _ => None,
    };
    let issue = payload
        .issue
        .as_ref()
        .filter(|_| matches!(event, "issues" | "issue_comment"));
    match (pull_request, issue) {
        (Some(number), _) => {
            if let Some(url) = key(Target::PullRequest(number)) {
                add("pullrequesturl", url);
            }
        }
        (None, Some(issue)) => {
            if let Some(url) = key(Target::Issue(issue.number)) {
                add("issueurl", url);
            }
        }
        (None, None) => {}
    }
    // A check run's own key: a route for re-run requests (`check_run`, action `rerequested`)
    // sends it to the reconciler that made the run.
    if let Some(run) = payload.check_run.as_ref().filter(|_| event == "check_run")
        && let Some(url) = key(Target::CheckRun(run.id))
    {
        add("checkrunurl", url);
    }
    let head_branch = match event {
        "check_suite" => payload
            .check_suite
            .as_ref()
            .and_then(|s| s.head_branch.as_deref()),
        "check_run" => payload
            .check_run
            .as_ref()
            .and_then(|r| r.check_suite.as_ref())
            .and_then(|s| s.head_branch.as_deref()),
        _ => payload
            .pull_request
            .as_ref()
            .and_then(|pr| pr.head.as_ref())
            .map(|h| h.name.as_ref()),
    };
    if let Some(branch) = head_branch {
        add("headbranch", branch.to_owned());
    }
    let merged = payload
        .pull_request
        .as_ref()
        .is_some_and(|pr| pr.merged == Some(true))
        && payload.action.as_deref() == Some("closed");
    if merged {
        add("merged", "true".to_owned());
    }
    extensions
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(event: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert("x-github-event", HeaderValue::from_str(event).unwrap());
        h.insert("x-github-delivery", HeaderValue::from_static("d-1"));
        h.insert("x-github-hook-id", HeaderValue::from_static("42"));
        h.insert(HOST, HeaderValue::from_static("hooks.example.com"));
        h
    }

    const PR: &str = r#"{"action":"closed","number":7,
        "pull_request":{"number":7,"merged":true,"head":{"ref":"fix"}},
        "repository":{"full_name":"o/r","html_url":"https://github.com/o/r"}}"#;

    #[test]
    fn a_pull_request_should_carry_its_url_branch_and_merge() {
        let event = to_incoming(&headers("pull_request"), Bytes::from(PR), None, true).unwrap();
        assert_eq!(
            (event.id.as_str(), event.ty.as_str(), event.source.as_str()),
            (
                "d-1",
                "dev.chainguard.github.pull_request",
                "hooks.example.com"
            )
        );
        assert_eq!(event.subject.as_deref(), Some("o/r"));
        for (name, value) in [
            ("pullrequesturl", "https://github.com/o/r/pull/7"),
            ("action", "closed"),
            ("headbranch", "fix"),
            ("merged", "true"),
            ("githubhook", "42"),
        ] {
            assert_eq!(event.extension(name), Some(value), "{name}");
        }
    }

    #[tokio::test]
    async fn keys_on_github_enterprise_should_all_name_its_host() {
        const GHE: &str = r#"{"action":"opened","number":3,"pull_request":{"number":3},
            "repository":{"full_name":"o/r","html_url":"http://ghe.example.com/o/r"}}"#;
        let event = to_incoming(&headers("pull_request"), Bytes::from(GHE), None, false).unwrap();
        assert_eq!(
            event.extension("pullrequesturl"),
            Some("https://ghe.example.com/o/r/pull/3")
        );
        const PUSH: &str = r#"{"ref":"refs/heads/main","before":"0000000000000000000000000000000000000001",
            "after":"0000000000000000000000000000000000000002",
            "commits":[{"added":["config/a.yaml"],"removed":[],"modified":[]}],
            "repository":{"full_name":"o/r","html_url":"https://ghe.example.com/o/r","default_branch":"main"}}"#;
        let push = to_incoming(&headers("push"), Bytes::from(PUSH), None, false).unwrap();
        let route = crate::route::Route {
            key: crate::route::path_rule("o/r", &["config/(.+)\\.yaml"]).unwrap(),
            ..crate::route::Route::extension("paths", "unused")
        };
        let keys = crate::keys::keys_for(&route, &push, None).await.unwrap();
        assert_eq!(keys, ["https://ghe.example.com/o/r/blob/main/a"]);
        const ODD: &str = r#"{"action":"opened","number":3,"pull_request":{"number":3},
            "repository":{"full_name":"o/r","html_url":"ghe.example.com/o/r"}}"#;
        let odd = to_incoming(&headers("pull_request"), Bytes::from(ODD), None, false).unwrap();
        assert_eq!(
            odd.extension("pullrequesturl"),
            None,
            "an unreadable page makes no key on a guessed host"
        );
    }

    #[test]
    fn a_form_encoded_delivery_should_read_its_payload_field() {
        let mut h = headers("pull_request");
        h.insert(
            CONTENT_TYPE,
            HeaderValue::from_static("Application/X-WWW-Form-Urlencoded"),
        );
        let form: String = form_urlencoded::Serializer::new(String::new())
            .append_pair("payload", PR)
            .finish();
        let event = to_incoming(&h, Bytes::from(form), Some("src"), true).unwrap();
        assert_eq!(
            event.extension("pullrequesturl"),
            Some("https://github.com/o/r/pull/7")
        );
        assert_eq!(event.source, "src");
    }

    #[test]
    fn comments_should_key_on_the_pull_request_or_the_issue() {
        let on_pr = r#"{"action":"created","issue":{"number":3,"pull_request":{"url":"x"}},
            "repository":{"full_name":"o/r"}}"#;
        let event = to_incoming(&headers("issue_comment"), Bytes::from(on_pr), None, true).unwrap();
        assert_eq!(
            event.extension("pullrequesturl"),
            Some("https://github.com/o/r/pull/3")
        );
        assert_eq!(event.extension("issueurl"), None);
        let on_issue =
            r#"{"action":"created","issue":{"number":4},"repository":{"full_name":"o/r"}}"#;
        let event =
            to_incoming(&headers("issue_comment"), Bytes::from(on_issue), None, true).unwrap();
        assert_eq!(
            event.extension("issueurl"),
            Some("https://github.com/o/r/issues/4")
        );
        assert_eq!(event.extension("pullrequesturl"), None);
    }

    #[test]
    fn bad_deliveries_should_say_what_is_wrong() {
        let mut h = headers("pull_request");
        h.remove("x-github-event");
        let err = to_incoming(&h, Bytes::from(PR), None, true).unwrap_err();
        assert!(err.to_string().contains("X-GitHub-Event"), "{err}");
        let err = to_incoming(&headers("push"), Bytes::from("{not json"), None, true).unwrap_err();
        assert!(matches!(err, DeliveryError::Payload(_)), "{err}");
    }
}
