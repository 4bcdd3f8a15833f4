//! The mapping between [`Action`]/[`ReconcileError`] and the gRPC messages and statuses of the
//! wire contract, both directions in one place.

use std::time::Duration;

use prost::Message;
use tonic::{Code, Status};

use crate::proto::{NoRetryDetails, ProcessResponse, QueueKeyRequest};
use crate::{Action, QueueKey, ReconcileError, Requeue};

/// The `Any` type URL of `NoRetryDetails`, as Go's `status.WithDetails` writes it.
const NO_RETRY_TYPE_URL: &str = "type.googleapis.com/chainguard.workqueue.NoRetryDetails";

/// `google.rpc.Status`, the envelope of gRPC status details (`grpc-status-details-bin`).
/// Declared here because it is three fields and no crate in the build carries it.
#[derive(Clone, PartialEq, Message)]
struct RpcStatus {
    #[prost(int32, tag = "1")]
    code: i32,
    #[prost(string, tag = "2")]
    message: String,
    #[prost(message, repeated, tag = "3")]
    details: Vec<prost_types::Any>,
}

/// Whole seconds for the wire, rounded up so that a short delay never becomes "no delay".
pub(crate) fn to_seconds(delay: Duration) -> i64 {
    let secs = delay.as_secs() + u64::from(delay.subsec_nanos() > 0);
    i64::try_from(secs).unwrap_or(i64::MAX)
}

fn from_seconds(secs: i64) -> Duration {
    Duration::from_secs(secs.max(0).unsigned_abs())
}

pub(crate) fn action_to_response(action: &Action) -> ProcessResponse {
    let (requeue_after_seconds, requeue_floor) = match action.requeue() {
        None => (0, false),
        Some(Requeue::After(delay)) => (to_seconds(delay), false),
        Some(Requeue::Floor(delay)) => (to_seconds(delay), true),
    };
    ProcessResponse {
        requeue_after_seconds,
        requeue_floor,
        queue_keys: action
            .queue_keys()
            .iter()
            .map(|k| QueueKeyRequest {
                key: k.key.clone(),
                priority: k.priority,
                delay_seconds: to_seconds(k.delay),
            })
            .collect(),
    }
}

pub(crate) fn response_to_action(response: ProcessResponse) -> Action {
    let keys = response
        .queue_keys
        .into_iter()
        .map(|k| QueueKey::new(k.key, k.priority).with_delay(from_seconds(k.delay_seconds)));
    let delay = from_seconds(response.requeue_after_seconds);
    let action = match (response.requeue_after_seconds > 0, response.requeue_floor) {
        (false, _) => Action::done(),
        (true, false) => Action::requeue_after(delay),
        (true, true) => Action::requeue_floor(delay),
    };
    action.and_queue(keys)
}

pub(crate) fn error_to_status(error: &ReconcileError) -> Status {
    match error {
        ReconcileError::Retriable(e) => Status::internal(crate::error_chain(e.as_ref())),
        ReconcileError::NonRetriable(message) => {
            let details = RpcStatus {
                code: Code::FailedPrecondition as i32,
                message: message.clone(),
                details: vec![prost_types::Any {
                    type_url: NO_RETRY_TYPE_URL.to_owned(),
                    value: NoRetryDetails {
                        message: message.clone(),
                    }
                    .encode_to_vec(),
                }],
            };
            Status::with_details(
                Code::FailedPrecondition,
                message.clone(),
                details.encode_to_vec().into(),
            )
        }
    }
}

pub(crate) fn status_to_error(status: Status) -> ReconcileError {
    match no_retry_message(&status) {
        Some(message) => ReconcileError::NonRetriable(message),
        None => ReconcileError::Retriable(Box::new(status)),
    }
}

/// The message of a `NoRetryDetails` detail, if the status carries one.
fn no_retry_message(status: &Status) -> Option<String> {
    if status.details().is_empty() {
        return None;
    }
    let envelope = RpcStatus::decode(status.details()).ok()?;
    let detail = envelope.details.iter().find(|any| {
        any.type_url.rsplit('/').next() == Some("chainguard.workqueue.NoRetryDetails")
    })?;
    let details = NoRetryDetails::decode(detail.value.as_slice()).ok()?;
    Some(if details.message.is_empty() {
        status.message().to_owned()
    } else {
        details.message
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn to_seconds_should_round_up() {
        assert_eq!(to_seconds(Duration::ZERO), 0);
        assert_eq!(to_seconds(Duration::from_millis(1)), 1);
        assert_eq!(to_seconds(Duration::from_millis(1500)), 2);
        assert_eq!(to_seconds(Duration::from_secs(60)), 60);
    }

    #[test]
    fn actions_should_round_trip_through_the_wire() {
        let keys = vec![
            QueueKey::new("a", 3).with_delay(Duration::from_secs(5)),
            QueueKey::new("b", -1),
        ];
        for action in [
            Action::done(),
            Action::requeue_after(Duration::from_secs(30)),
            Action::requeue_floor(Duration::from_secs(90)),
            Action::queue(keys.clone()),
            Action::requeue_after(Duration::from_secs(1)).and_queue(keys),
        ] {
            assert_eq!(response_to_action(action_to_response(&action)), action);
        }
    }

    #[test]
    fn no_retry_should_survive_the_status_round_trip() {
        let status = error_to_status(&ReconcileError::no_retry("repository is archived"));
        match status_to_error(status) {
            ReconcileError::NonRetriable(message) => assert_eq!(message, "repository is archived"),
            other => panic!("expected non-retriable, got {other:?}"),
        }
        let plain = error_to_status(&ReconcileError::retry("rate limited"));
        assert!(matches!(
            status_to_error(plain),
            ReconcileError::Retriable(_)
        ));
    }
}
