//! The HTTP front: `POST /webhook` for GitHub, `POST /events` for CloudEvents, with the
//! answers DESIGN §4 asks for: 400 malformed, 401 bad signature, 413 too large, 202 accepted
//! (whether or not keys came of it), 503 when the workqueue, the sink or the GitHub API failed,
//! time ran out, or the gateway is busy; and 408 for a body that does not arrive. Accepted
//! answers have no body; keys are stored before the answer, within a deadline under GitHub's
//! 10 seconds.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, FromRequest, Request, State};
use axum::http::header::HOST;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use tracing::{debug, warn};

use crate::gateway::{Gateway, HandleError, Handled};
use crate::metrics::Outcome;
use crate::{events, webhook};

/// The largest body taken (GitHub's payload limit is 25 MB), enforced while reading, chunked
/// bodies included.
pub const MAX_BODY: usize = 25 * 1024 * 1024;

/// How long one request may take to enqueue its keys: GitHub gives up after 10 s.
const DEADLINE: Duration = Duration::from_secs(8);

/// How long a request's body may take to arrive once it holds a place: a sender that stalls
/// (or trickles) gets 408 and gives its place back, so slow senders cannot hold every place.
/// 25 MB at 1 MB/s fits.
pub const BODY_TIMEOUT: Duration = Duration::from_secs(30);

/// The gateway's routes: `POST /webhook` and (unless the gateway is webhook-only) `POST
/// /events`, at most the gateway's `max_in_flight` requests at once (the others get 503 at
/// once, before their bodies are read, and their senders retry).
pub fn router(gateway: Arc<Gateway>) -> Router {
    let mut router = Router::new().route("/webhook", post(on_webhook));
    if gateway.serve_events {
        router = router.route("/events", post(on_events));
    }
    router
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .with_state(gateway)
}

fn answer(status: StatusCode, message: impl Into<String>) -> Response {
    let message = message.into();
    if message.is_empty() {
        status.into_response()
    } else {
        (status, format!("{message}\n")).into_response()
    }
}

/// A 400: the request is not a valid delivery or event, and retrying it cannot help.
fn malformed(message: impl Into<String>) -> (Outcome, Response) {
    (Outcome::Malformed, answer(StatusCode::BAD_REQUEST, message))
}

/// What a body rejection means: too large (413), or not readable (400).
fn rejected(rejection: BytesRejection) -> (Outcome, Response) {
    if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
        let message = format!("the body is over the limit of {MAX_BODY} bytes");
        (
            Outcome::TooLarge,
            answer(StatusCode::PAYLOAD_TOO_LARGE, message),
        )
    } else {
        malformed(rejection.body_text())
    }
}

/// A request's headers, and its body read within the size limit and [`BODY_TIMEOUT`], once it
/// holds one of the `max_in_flight` places (the permit); `Err` is the refusal to answer: 503 at
/// once when every place is taken, 408, 413 or 400 for the body.
async fn admit(
    gateway: &Gateway,
    request: Request,
) -> Result<(tokio::sync::SemaphorePermit<'_>, HeaderMap, Bytes), (Outcome, Response)> {
    let Ok(place) = gateway.in_flight.try_acquire() else {
        let busy = answer(StatusCode::SERVICE_UNAVAILABLE, "the gateway is busy");
        return Err((Outcome::Busy, busy));
    };
    let (mut parts, body) = request.into_parts();
    let mut headers = std::mem::take(&mut parts.headers);
    // HTTP/2 carries the host as the URI's authority, not a Host header: the event's source
    // is read from the header either way.
    if !headers.contains_key(HOST)
        && let Some(host) = parts
            .uri
            .authority()
            .and_then(|a| HeaderValue::from_str(a.as_str()).ok())
    {
        headers.insert(HOST, host);
    }
    let read = Bytes::from_request(Request::from_parts(parts, body), &());
    let body = match tokio::time::timeout(BODY_TIMEOUT, read).await {
        Ok(read) => read.map_err(rejected)?,
        Err(_) => {
            let message = format!("the body did not arrive within {BODY_TIMEOUT:?}");
            return Err((
                Outcome::TimedOut,
                answer(StatusCode::REQUEST_TIMEOUT, message),
            ));
        }
    };
    Ok((place, headers, body))
}

async fn on_webhook(State(gateway): State<Arc<Gateway>>, request: Request) -> Response {
    let event_name = request
        .headers()
        .get("x-github-event")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    // The place is held until the answer is made.
    let (outcome, response) = match admit(&gateway, request).await {
        Ok((_place, headers, body)) => webhook(&gateway, &headers, body).await,
        Err(refusal) => refusal,
    };
    gateway.metrics.delivery(&event_name, outcome);
    response
}

async fn webhook(gateway: &Gateway, headers: &HeaderMap, body: Bytes) -> (Outcome, Response) {
    let signature = |name: &str| headers.get(name).map(|v| v.as_bytes());
    if let Err(e) = gateway.secrets.verify(
        signature("x-hub-signature-256"),
        signature("x-hub-signature"),
        &body,
    ) {
        warn!(error = %e, "refused a webhook delivery");
        return (
            Outcome::Unauthorized,
            answer(StatusCode::UNAUTHORIZED, e.to_string()),
        );
    }
    let keep_headers = gateway.has_sink();
    let event = match webhook::to_incoming(headers, body, gateway.source.as_deref(), keep_headers) {
        Ok(event) => event,
        Err(e) => return malformed(e.to_string()),
    };
    let outcome = handle(gateway, &event, true).await;
    if let (Outcome::Enqueued | Outcome::Skipped, _) = &outcome {
        debug!(delivery = %event.id, event = %event.ty, outcome = ?outcome.0, "webhook delivery");
    }
    outcome
}

async fn on_events(State(gateway): State<Arc<Gateway>>, request: Request) -> Response {
    let (outcome, response) = match admit(&gateway, request).await {
        Ok((_place, headers, body)) => cloudevents(&gateway, &headers, body).await,
        Err(refusal) => refusal,
    };
    gateway.metrics.cloudevents(outcome);
    response
}

async fn cloudevents(gateway: &Gateway, headers: &HeaderMap, body: Bytes) -> (Outcome, Response) {
    let incoming = match events::parse(headers, body) {
        Ok(events) => events,
        Err(e) => return malformed(e.to_string()),
    };
    // One deadline for the whole request, a batch included.
    let all = async {
        let mut total = Handled::default();
        for event in &incoming {
            let handled = gateway.handle(event, false).await?;
            total.enqueued += handled.enqueued;
            total.refused.extend(handled.refused);
        }
        Ok(total)
    };
    within_deadline(all, incoming.first().map_or("", |e| e.id.as_str())).await
}

/// Routes and enqueues one event within the deadline.
async fn handle(gateway: &Gateway, event: &crate::Incoming, forward: bool) -> (Outcome, Response) {
    within_deadline(gateway.handle(event, forward), &event.id).await
}

/// The answer for handling that must end within the deadline: 202 with keys stored (or none
/// to store), 400 when every key was refused as invalid (unless the event went on to the
/// sink), 503 when the workqueue, the sink or the GitHub API failed, or time ran out.
async fn within_deadline(
    handling: impl Future<Output = Result<Handled, HandleError>>,
    id: &str,
) -> (Outcome, Response) {
    match tokio::time::timeout(DEADLINE, handling).await {
        Ok(Ok(handled))
            if handled.enqueued == 0 && !handled.refused.is_empty() && !handled.forwarded =>
        {
            let reasons: Vec<String> = handled.refused.iter().map(|e| e.to_string()).collect();
            malformed(reasons.join("\n"))
        }
        Ok(Ok(handled)) if handled.enqueued == 0 => {
            (Outcome::Skipped, answer(StatusCode::ACCEPTED, ""))
        }
        Ok(Ok(_)) => (Outcome::Enqueued, answer(StatusCode::ACCEPTED, "")),
        Ok(Err(HandleError::Unavailable(e))) => {
            // The cause (addresses, a peer's answer) goes to the log, not to the caller.
            warn!(event = %id, error = %e, "failed to handle an event");
            (
                Outcome::Unavailable,
                answer(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "a service the gateway needs is unavailable; retry later",
                ),
            )
        }
        Err(_) => {
            warn!(event = %id, "handling an event took too long");
            let message = format!("the keys were not stored within {DEADLINE:?}");
            (
                Outcome::Unavailable,
                answer(StatusCode::SERVICE_UNAVAILABLE, message),
            )
        }
    }
}
