//! What a reconcile returns: an [`Action`] on success, a [`ReconcileError`] on failure.

use std::time::Duration;

/// When a key should run again after a successful reconcile.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Requeue {
    /// Run again after this delay; an enqueue meanwhile may bring it forward.
    After(Duration),
    /// Run again no sooner than this delay, even if the key is enqueued meanwhile.
    Floor(Duration),
}

/// Another key to enqueue, as part of an [`Action`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QueueKey {
    /// The key.
    pub key: String,
    /// Its priority.
    pub priority: i64,
    /// How long before it is due.
    pub delay: Duration,
}

impl QueueKey {
    /// A key due now.
    pub fn new(key: impl Into<String>, priority: i64) -> Self {
        Self {
            key: key.into(),
            priority,
            delay: Duration::ZERO,
        }
    }

    /// The same key, due after `delay`.
    pub fn with_delay(self, delay: Duration) -> Self {
        Self { delay, ..self }
    }
}

/// What the queue does with a key after its reconcile succeeded. Made only through the
/// constructors below.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[must_use]
pub struct Action {
    requeue: Option<Requeue>,
    queue_keys: Vec<QueueKey>,
}

impl Action {
    /// The key is reconciled; it leaves the queue.
    pub fn done() -> Self {
        Self::default()
    }

    /// Run the key again after `delay`. This is a snooze, not a failure: the attempt count
    /// resets. On the wire the delay is whole seconds, rounded up.
    pub fn requeue_after(delay: Duration) -> Self {
        Self {
            requeue: Some(Requeue::After(delay)),
            queue_keys: Vec::new(),
        }
    }

    /// Run the key again no sooner than `delay`, even if events arrive meanwhile: use it to
    /// pace work (the dispatcher caps it at one hour). Events that arrive during the floor are
    /// not lost: the key runs once the floor has passed.
    pub fn requeue_floor(delay: Duration) -> Self {
        Self {
            requeue: Some(Requeue::Floor(delay)),
            queue_keys: Vec::new(),
        }
    }

    /// Enqueue these keys, then complete this one. If enqueueing fails, this key is retried.
    pub fn queue(keys: impl IntoIterator<Item = QueueKey>) -> Self {
        Self {
            requeue: None,
            queue_keys: keys.into_iter().collect(),
        }
    }

    /// This action, also enqueueing `keys` first.
    pub fn and_queue(mut self, keys: impl IntoIterator<Item = QueueKey>) -> Self {
        self.queue_keys.extend(keys);
        self
    }

    /// When to run the key again, if at all.
    pub fn requeue(&self) -> Option<Requeue> {
        self.requeue
    }

    /// Keys to enqueue before this one completes.
    pub fn queue_keys(&self) -> &[QueueKey] {
        &self.queue_keys
    }
}

/// A failed reconcile.
#[derive(Debug, thiserror::Error)]
pub enum ReconcileError {
    /// A failure worth retrying: the key backs off and runs again, up to the retry limit.
    #[error("{0}")]
    Retriable(Box<dyn std::error::Error + Send + Sync>),
    /// A failure that retrying cannot fix (bad input, a deleted resource): the key is dropped.
    /// On the wire this is a status carrying `NoRetryDetails`.
    #[error("not retriable: {0}")]
    NonRetriable(String),
}

impl ReconcileError {
    /// A failure worth retrying.
    pub fn retry(error: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        Self::Retriable(error.into())
    }

    /// A failure not worth retrying; the key is dropped.
    pub fn no_retry(message: impl Into<String>) -> Self {
        Self::NonRetriable(message.into())
    }
}
