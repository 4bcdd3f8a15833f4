//! Where a route's keys go: a workqueue receiver over gRPC (`http://` or, for a Cloud Run
//! service, `https://` with a Google ID token), or the queue of this very process (`dev`).

use std::time::Duration;

use async_trait::async_trait;
use tonic::Code;
use workqueue::Queue;
use workqueue::client::{CallError, ServiceClient};
use workqueue::proto::ProcessRequest;

/// A workqueue that takes keys.
#[async_trait]
pub trait Enqueue: Send + Sync + std::fmt::Debug {
    /// Enqueues `key` at `priority`, due after `delay` (zero: now); returns once it is
    /// durably stored.
    async fn enqueue(&self, key: &str, priority: i64, delay: Duration) -> Result<(), EnqueueError>;
}

/// Why a key was not enqueued.
#[derive(Debug, thiserror::Error)]
pub enum EnqueueError {
    /// The workqueue refused the key itself (too long, say): retrying cannot help.
    #[error("the workqueue refused key {key:?}: {reason}")]
    Refused {
        /// The key.
        key: String,
        /// What the workqueue said.
        reason: String,
    },
    /// The workqueue could not be reached or failed: a retry may succeed.
    #[error("the workqueue is unavailable: {0}")]
    Unavailable(String),
}

/// A receiver reached over gRPC.
#[derive(Clone, Debug)]
pub struct RemoteWorkqueue {
    client: ServiceClient,
}

impl RemoteWorkqueue {
    /// A client of the receiver at `url`; each call fails after `timeout`.
    pub fn new(url: &str, timeout: Duration) -> Result<Self, workqueue::client::InvalidAddress> {
        Ok(Self {
            client: ServiceClient::new(url, timeout)?,
        })
    }
}

#[async_trait]
impl Enqueue for RemoteWorkqueue {
    async fn enqueue(&self, key: &str, priority: i64, delay: Duration) -> Result<(), EnqueueError> {
        let request = ProcessRequest {
            key: key.to_owned(),
            priority,
            // Whole seconds, as the contract carries them; a part second rounds up.
            delay_seconds: i64::try_from(delay.as_secs() + u64::from(delay.subsec_nanos() > 0))
                .unwrap_or(i64::MAX),
        };
        match self.client.process(request).await {
            Ok(_) => Ok(()),
            Err(CallError::Status(status)) if status.code() == Code::InvalidArgument => {
                Err(EnqueueError::Refused {
                    key: key.to_owned(),
                    reason: status.message().to_owned(),
                })
            }
            Err(e) => Err(EnqueueError::Unavailable(e.to_string())),
        }
    }
}

/// The queue of this process.
#[derive(Clone, Debug)]
pub struct LocalWorkqueue {
    queue: Queue,
}

impl LocalWorkqueue {
    /// Keys go straight into `queue`.
    pub fn new(queue: Queue) -> Self {
        Self { queue }
    }
}

#[async_trait]
impl Enqueue for LocalWorkqueue {
    async fn enqueue(&self, key: &str, priority: i64, delay: Duration) -> Result<(), EnqueueError> {
        match self.queue.enqueue(key, priority, delay).await {
            Ok(_) => Ok(()),
            Err(workqueue::QueueError::InvalidKey(e)) => Err(EnqueueError::Refused {
                key: key.to_owned(),
                reason: e.to_string(),
            }),
            Err(e) => Err(EnqueueError::Unavailable(e.to_string())),
        }
    }
}
