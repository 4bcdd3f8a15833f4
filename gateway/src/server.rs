//! The HTTP front: `POST /webhook` for GitHub, `POST /events` for CloudEvents, with the
//! answers of docs/architecture.md ("The gateway"): 400 malformed, 401 bad signature, 413 too
//! large, 202 accepted (whether or not keys came of it), 503 when the workqueue, the sink or
//! the GitHub API failed, time ran out, or the gateway is busy; and 408 for a body that does
//! not arrive. Accepted answers have no body; keys are stored before the answer, within a
//! deadline under GitHub's 10 seconds.
//!
//! Each handler returns `Result<Accepted, Refused>`; [`Refused`] alone says which status and
//! counted outcome each refusal gets, and what its sender is told.

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

use workqueue::client::EnqueueError;
use workqueue::error_chain;

use crate::events::EventError;
use crate::gateway::{Gateway, HandleError, Handled};
use crate::metrics::Outcome;
use crate::signature::SignatureError;
use crate::webhook::DeliveryError;
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

/// A request that was taken: keys were stored, or none came of it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Accepted {
    /// Keys were stored.
    Enqueued,
    /// No route made a key of it.
    Skipped,
}

/// Every way a request is not taken, each with its status, its counted outcome, and what its
/// sender is told (the cause of a 503 goes to the log, not to the sender).
#[derive(Debug, thiserror::Error)]
enum Refused {
    /// Every place is taken.
    #[error("the gateway is busy")]
    Busy,
    /// The body did not arrive in time.
    #[error("the body did not arrive within {BODY_TIMEOUT:?}")]
    BodyTimedOut,
    /// The body is over the limit.
    #[error("the body is over the limit of {MAX_BODY} bytes")]
    TooLarge,
    /// The body could not be read.
    #[error("{0}")]
    Unreadable(String),
    /// The delivery's signature is missing or wrong.
    #[error(transparent)]
    Signature(#[from] SignatureError),
    /// Not a GitHub delivery.
    #[error(transparent)]
    Delivery(#[from] DeliveryError),
    /// Not a CloudEvent.
    #[error(transparent)]
    Event(#[from] EventError),
    /// The workqueue refused every key the event made, as invalid.
    #[error("the workqueue refused every key")]
    EveryKey(Vec<EnqueueError>),
    /// Something the gateway needs failed.
    #[error("failed to handle event {event}")]
    Unavailable {
        /// The event's id.
        event: String,
        /// What failed.
        #[source]
        source: HandleError,
    },
    /// The keys were not stored within the deadline.
    #[error("the keys were not stored within {DEADLINE:?}")]
    Deadline {
        /// The event's id.
        event: String,
    },
}

impl Refused {
    /// The outcome counted for it.
    fn outcome(&self) -> Outcome {
        match self {
            Self::Busy => Outcome::Busy,
            Self::BodyTimedOut => Outcome::TimedOut,
            Self::TooLarge => Outcome::TooLarge,
            Self::Signature(_) => Outcome::Unauthorized,
            Self::Unreadable(_) | Self::Delivery(_) | Self::Event(_) | Self::EveryKey(_) => {
                Outcome::Malformed
            }
            Self::Unavailable { .. } | Self::Deadline { .. } => Outcome::Unavailable,
        }
    }

    /// The answer's status.
    fn status(&self) -> StatusCode {
        match self.outcome() {
            Outcome::Busy | Outcome::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            Outcome::TimedOut => StatusCode::REQUEST_TIMEOUT,
            Outcome::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Outcome::Unauthorized => StatusCode::UNAUTHORIZED,
            Outcome::Malformed | Outcome::Enqueued | Outcome::Skipped => StatusCode::BAD_REQUEST,
        }
    }

    /// Logs what the sender is not told: a service's failure (addresses, a peer's answer), a
    /// deadline passed, a delivery refused for its signature.
    fn log(&self) {
        match self {
            Self::Unavailable { event, source } => {
                warn!(%event, error = %error_chain(source), "failed to handle an event");
            }
            Self::Deadline { event } => warn!(%event, "handling an event took too long"),
            Self::Signature(e) => warn!(error = %e, "refused a webhook delivery"),
            _ => {}
        }
    }

    /// What the sender is told: why its request is wrong (with the causes), or that it may
    /// retry.
    fn message(&self) -> String {
        match self {
            Self::Unavailable { .. } => {
                "a service the gateway needs is unavailable; retry later".to_owned()
            }
            Self::Deadline { .. } | Self::Signature(_) => self.to_string(),
            Self::EveryKey(refused) => refused
                .iter()
                .map(|e| error_chain(e))
                .collect::<Vec<_>>()
                .join("\n"),
            other => error_chain(other),
        }
    }
}

/// The outcome a request's end counts.
fn outcome(result: &Result<Accepted, Refused>) -> Outcome {
    match result {
        Ok(Accepted::Enqueued) => Outcome::Enqueued,
        Ok(Accepted::Skipped) => Outcome::Skipped,
        Err(refused) => refused.outcome(),
    }
}

/// The answer: an empty 202 for a request taken, else the refusal's status and message (and
/// its log line).
fn respond(result: Result<Accepted, Refused>) -> Response {
    let refused = match result {
        Ok(_) => return StatusCode::ACCEPTED.into_response(),
        Err(refused) => refused,
    };
    refused.log();
    match refused.message() {
        message if message.is_empty() => refused.status().into_response(),
        message => (refused.status(), format!("{message}\n")).into_response(),
    }
}

/// What a body rejection means: too large (413), or not readable (400).
fn rejected(rejection: BytesRejection) -> Refused {
    if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
        Refused::TooLarge
    } else {
        Refused::Unreadable(rejection.body_text())
    }
}

/// A request's headers, and its body read within the size limit and [`BODY_TIMEOUT`], once it
/// holds one of the `max_in_flight` places (the permit); refused at once when every place is
/// taken, or when the body does not arrive whole.
async fn admit(
    gateway: &Gateway,
    request: Request,
) -> Result<(tokio::sync::SemaphorePermit<'_>, HeaderMap, Bytes), Refused> {
    let Ok(place) = gateway.in_flight.try_acquire() else {
        return Err(Refused::Busy);
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
        Err(_) => return Err(Refused::BodyTimedOut),
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
    let result = match admit(&gateway, request).await {
        Ok((_place, headers, body)) => webhook(&gateway, &headers, body).await,
        Err(refused) => Err(refused),
    };
    gateway.metrics.delivery(&event_name, outcome(&result));
    respond(result)
}

async fn webhook(gateway: &Gateway, headers: &HeaderMap, body: Bytes) -> Result<Accepted, Refused> {
    let signature = |name: &str| headers.get(name).map(|v| v.as_bytes());
    gateway.secrets.verify(
        signature("x-hub-signature-256"),
        signature("x-hub-signature"),
        &body,
    )?;
    let keep_headers = gateway.has_sink();
    let event = webhook::to_incoming(headers, body, gateway.source.as_deref(), keep_headers)?;
    let accepted = within_deadline(gateway.handle(&event, true), &event.id).await?;
    debug!(delivery = %event.id, event = %event.ty, outcome = ?accepted, "webhook delivery");
    Ok(accepted)
}

async fn on_events(State(gateway): State<Arc<Gateway>>, request: Request) -> Response {
    let result = match admit(&gateway, request).await {
        Ok((_place, headers, body)) => cloudevents(&gateway, &headers, body).await,
        Err(refused) => Err(refused),
    };
    gateway.metrics.cloudevents(outcome(&result));
    respond(result)
}

async fn cloudevents(
    gateway: &Gateway,
    headers: &HeaderMap,
    body: Bytes,
) -> Result<Accepted, Refused> {
    let incoming = events::parse(headers, body)?;
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

/// What handling that must end within the deadline comes to: keys stored (or none to store),
/// every key refused as invalid (unless the event went on to the sink), a failure of what the
/// gateway needs, or time run out.
async fn within_deadline(
    handling: impl Future<Output = Result<Handled, HandleError>>,
    id: &str,
) -> Result<Accepted, Refused> {
    let Ok(handled) = tokio::time::timeout(DEADLINE, handling).await else {
        return Err(Refused::Deadline {
            event: id.to_owned(),
        });
    };
    let handled = handled.map_err(|source| Refused::Unavailable {
        event: id.to_owned(),
        source,
    })?;
    match handled {
        Handled {
            enqueued: 0,
            refused,
            forwarded: false,
        } if !refused.is_empty() => Err(Refused::EveryKey(refused)),
        Handled { enqueued: 0, .. } => Ok(Accepted::Skipped),
        Handled { .. } => Ok(Accepted::Enqueued),
    }
}
