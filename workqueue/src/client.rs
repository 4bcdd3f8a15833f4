//! The `Enqueue` seam: how the parts that only enqueue (the receiver, the gateway, the resync)
//! hand keys to a workqueue, either a receiver reached over gRPC ([`RemoteWorkqueue`]: `http://`,
//! or a Cloud Run service's `https://` with a Google ID token) or the queue of this very process
//! ([`LocalWorkqueue`], which nudges this process's dispatcher through what it is handed).

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
pub use reconciler::client::InvalidAddress;
use reconciler::client::{CallError, ServiceClient};
use reconciler::proto::ProcessRequest;
use tonic::Code;

use crate::queue::{Enqueued, Queue, QueueError};

/// A workqueue that takes keys.
#[async_trait]
pub trait Enqueue: Send + Sync + fmt::Debug {
    /// Enqueues `key` at `priority`, due after `delay` (zero: now); returns once it is
    /// durably stored.
    async fn enqueue(&self, key: &str, priority: i64, delay: Duration) -> Result<(), EnqueueError>;
}

/// The cause an [`EnqueueError`] carries: a queue's, or a gRPC call's.
pub type Cause = Box<dyn std::error::Error + Send + Sync>;

/// Why a key was not enqueued.
#[derive(Debug, thiserror::Error)]
pub enum EnqueueError {
    /// The workqueue refused the key itself (too long, say): retrying cannot help.
    #[error("the workqueue refused key {key:?}")]
    Refused {
        /// The key.
        key: String,
        /// What the workqueue said.
        #[source]
        source: Cause,
    },
    /// The workqueue could not be reached or failed: a retry may succeed.
    #[error("the workqueue is unavailable")]
    Unavailable(#[source] Cause),
}

/// Told after each key stored in this process's queue: the dispatcher of this process, which
/// then runs a pass at once rather than at its next poll.
pub trait Nudge: Send + Sync + fmt::Debug {
    /// A key was just stored.
    fn nudge(&self);
}

/// A receiver reached over gRPC.
#[derive(Clone, Debug)]
pub struct RemoteWorkqueue {
    client: ServiceClient,
}

impl RemoteWorkqueue {
    /// A client of the receiver at `url`; each call fails after `timeout`.
    pub fn new(url: &str, timeout: Duration) -> Result<Self, InvalidAddress> {
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
            // What the receiver said is the whole cause: a message from across the network.
            Err(CallError::Status(status)) if status.code() == Code::InvalidArgument => {
                Err(EnqueueError::Refused {
                    key: key.to_owned(),
                    source: status.message().into(),
                })
            }
            Err(e) => Err(EnqueueError::Unavailable(Box::new(e))),
        }
    }
}

/// The queue of this process, and the dispatcher to nudge when a key is stored.
#[derive(Clone, Debug)]
pub struct LocalWorkqueue {
    queue: Queue,
    nudge: Option<Arc<dyn Nudge>>,
}

impl LocalWorkqueue {
    /// Keys go straight into `queue`; nobody is nudged.
    pub fn new(queue: Queue) -> Self {
        Self { queue, nudge: None }
    }

    /// The same, nudging `nudge` (this process's dispatcher) after each key stored.
    pub fn with_nudge(self, nudge: Arc<dyn Nudge>) -> Self {
        Self {
            nudge: Some(nudge),
            ..self
        }
    }

    /// The queue keys go to.
    pub fn queue(&self) -> &Queue {
        &self.queue
    }

    /// Stores `key` (see [`Queue::enqueue`]), then nudges the dispatcher.
    pub async fn store(
        &self,
        key: &str,
        priority: i64,
        delay: Duration,
    ) -> Result<Enqueued, QueueError> {
        let enqueued = self.queue.enqueue(key, priority, delay).await?;
        if let Some(nudge) = &self.nudge {
            nudge.nudge();
        }
        Ok(enqueued)
    }
}

#[async_trait]
impl Enqueue for LocalWorkqueue {
    async fn enqueue(&self, key: &str, priority: i64, delay: Duration) -> Result<(), EnqueueError> {
        match self.store(key, priority, delay).await {
            Ok(_) => Ok(()),
            Err(QueueError::InvalidKey(invalid)) => Err(EnqueueError::Refused {
                key: key.to_owned(),
                source: Box::new(invalid),
            }),
            Err(e) => Err(EnqueueError::Unavailable(Box::new(e))),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;
    use crate::queue::QueueConfig;
    use crate::storage::MemoryStorage;

    #[derive(Debug, Default)]
    struct Count(AtomicUsize);

    impl Nudge for Count {
        fn nudge(&self) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    #[tokio::test]
    async fn local_enqueue_should_nudge_once_stored_and_keep_the_cause_of_a_refusal() {
        let queue = Queue::new(Arc::new(MemoryStorage::new()), QueueConfig::default());
        let count = Arc::new(Count::default());
        let local = LocalWorkqueue::new(queue).with_nudge(count.clone());
        local.enqueue("k", 1, Duration::ZERO).await.unwrap();
        assert_eq!(count.0.load(Ordering::SeqCst), 1);
        let refused = local.enqueue("", 1, Duration::ZERO).await.unwrap_err();
        assert!(matches!(refused, EnqueueError::Refused { .. }), "{refused}");
        let cause = std::error::Error::source(&refused).expect("a cause");
        assert!(cause.to_string().contains("empty"), "{cause}");
        assert_eq!(
            count.0.load(Ordering::SeqCst),
            1,
            "nothing stored, no nudge"
        );
    }
}
