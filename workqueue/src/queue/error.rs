//! What can go wrong in a queue operation, and whether trying again may help.

use crate::key::InvalidKey;
use crate::storage::StorageError;

/// What can go wrong in a queue operation.
#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    /// The key cannot be queued.
    #[error("invalid key: {0}")]
    InvalidKey(#[from] InvalidKey),
    /// Storage failed.
    #[error("failed to {action} key {key:?}")]
    Storage {
        /// What the queue was doing.
        action: &'static str,
        /// The key (or prefix) concerned.
        key: String,
        /// The storage error.
        #[source]
        source: StorageError,
    },
    /// Other writers kept changing the key's object.
    #[error("failed to {action} key {key:?}: it kept changing under concurrent writers")]
    Contention {
        /// What the queue was doing.
        action: &'static str,
        /// The key.
        key: String,
    },
    /// The claim was taken over (its lease lapsed and another dispatcher recovered the key).
    #[error("lost the claim on key {key:?}: its lease lapsed and another dispatcher took it over")]
    Lost {
        /// The key.
        key: String,
    },
}

impl QueueError {
    pub(crate) fn storage(action: &'static str, key: &str, source: StorageError) -> Self {
        Self::Storage {
            action,
            key: key.to_owned(),
            source,
        }
    }

    /// Whether retrying the operation may succeed (storage trouble, not bad input).
    pub fn is_transient(&self) -> bool {
        match self {
            Self::InvalidKey(_) => false,
            Self::Storage {
                source: StorageError::Backend { transient, .. },
                ..
            } => *transient,
            Self::Storage {
                source: StorageError::InvalidName { .. },
                ..
            } => false,
            _ => true,
        }
    }
}
