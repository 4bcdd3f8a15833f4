//! The receiver: the gRPC `WorkqueueService` through which clients enqueue keys and ask where
//! a key is. It answers OK only once the key is durably stored.

use std::time::Duration;

use tonic::{Request, Response, Status};
use tracing::warn;

use crate::client::LocalWorkqueue;
use crate::clock::unix_seconds;
use crate::error_chain as chain;
use crate::queue::{KeyStatus, MAX_DELAY, QueueError};
use reconciler::proto::key_state::Status as WireStatus;
use reconciler::proto::workqueue_service_server::{WorkqueueService, WorkqueueServiceServer};
use reconciler::proto::{GetKeyStateRequest, KeyState, ProcessRequest, ProcessResponse};

/// The longest delay an enqueue may ask for, in seconds.
const MAX_DELAY_SECONDS: i64 = MAX_DELAY.as_secs() as i64;

/// The receiving side of the queue.
#[derive(Clone, Debug)]
pub struct Receiver {
    /// Where keys are stored, and the dispatcher of this process (if any) nudged.
    local: LocalWorkqueue,
}

impl Receiver {
    /// A receiver that stores keys through `local`.
    pub fn new(local: LocalWorkqueue) -> Self {
        Self { local }
    }

    /// The gRPC service.
    pub fn into_service(self) -> WorkqueueServiceServer<Self> {
        WorkqueueServiceServer::new(self)
    }
}

/// The one place queue errors become gRPC statuses: bad input is INVALID_ARGUMENT, storage
/// trouble that may pass is UNAVAILABLE (clients retry), anything else INTERNAL.
fn status_of(error: &QueueError) -> Status {
    match error {
        QueueError::InvalidKey(e) => Status::invalid_argument(e.to_string()),
        e => {
            warn!(error = %chain(e), "workqueue request failed");
            if e.is_transient() {
                Status::unavailable(chain(e))
            } else {
                Status::internal(chain(e))
            }
        }
    }
}

#[tonic::async_trait]
impl WorkqueueService for Receiver {
    async fn process(
        &self,
        request: Request<ProcessRequest>,
    ) -> Result<Response<ProcessResponse>, Status> {
        let request = request.into_inner();
        if request.delay_seconds < 0 {
            return Err(Status::invalid_argument(format!(
                "delay_seconds must not be negative, got {}",
                request.delay_seconds
            )));
        }
        if request.delay_seconds > MAX_DELAY_SECONDS {
            return Err(Status::invalid_argument(format!(
                "delay_seconds must be at most {MAX_DELAY_SECONDS} (ten years), got {}",
                request.delay_seconds
            )));
        }
        let delay = Duration::from_secs(request.delay_seconds.unsigned_abs());
        self.local
            .store(&request.key, request.priority, delay)
            .await
            .map_err(|e| status_of(&e))?;
        Ok(Response::new(ProcessResponse::default()))
    }

    async fn get_key_state(
        &self,
        request: Request<GetKeyStateRequest>,
    ) -> Result<Response<KeyState>, Status> {
        let key = request.into_inner().key;
        let state = self
            .local
            .queue()
            .state(&key)
            .await
            .map_err(|e| status_of(&e))?;
        let Some(state) = state else {
            return Err(Status::not_found(format!(
                "key {key:?} is not in the queue"
            )));
        };
        let status = match state.status {
            KeyStatus::Queued => WireStatus::Queued,
            KeyStatus::InProgress => WireStatus::InProgress,
            KeyStatus::DeadLetter => WireStatus::DeadLetter,
        };
        Ok(Response::new(KeyState {
            key: state.key,
            status: status as i32,
            priority: state.priority,
            attempts: i32::try_from(state.attempts).unwrap_or(i32::MAX),
            queued_time: unix_seconds(state.queued_at),
            not_before_time: state.not_before.map_or(0, unix_seconds),
        }))
    }
}

#[cfg(test)]
mod tests {
    use tonic::Code;

    use super::*;
    use crate::key::InvalidKey;
    use crate::storage::StorageError;

    fn backend(transient: bool) -> QueueError {
        let source = StorageError::Backend {
            op: "write",
            name: "k/k".into(),
            transient,
            source: "boom".into(),
        };
        QueueError::storage("enqueue", "k", source)
    }

    #[test]
    fn status_of_should_tell_clients_whether_to_retry() {
        assert_eq!(
            status_of(&QueueError::InvalidKey(InvalidKey::Empty)).code(),
            Code::InvalidArgument
        );
        assert_eq!(status_of(&backend(true)).code(), Code::Unavailable);
        let permanent = status_of(&backend(false));
        assert_eq!(permanent.code(), Code::Internal);
        assert!(
            permanent.message().contains("boom"),
            "{}",
            permanent.message()
        );
    }
}
