//! The storage seam: a handful of conditional object operations that every backend provides.
//!
//! The queue keeps all of its state in small, empty-bodied objects whose data lives in a
//! metadata map, and coordinates processes only through the generation preconditions below.
//! That is the whole contract a backend must honour; GCS, a local directory and memory all can.

mod counting;
mod dir;
mod faulty;
mod gcs;
mod memory;

use std::collections::BTreeMap;
use std::fmt::Debug;

use async_trait::async_trait;

pub use counting::{CountingStorage, OpCounts};
pub use dir::DirStorage;
pub use faulty::{FaultyStorage, Landed, Operation};
pub use gcs::{GcsStorage, RetryPolicy};
pub use memory::MemoryStorage;

/// The small string map an object carries (GCS custom metadata).
pub type Metadata = BTreeMap<String, String>;

/// The largest object name any backend must accept, in bytes (GCS's limit).
pub const MAX_NAME_BYTES: usize = 1024;

/// How many objects a list page holds unless the caller asks for fewer (GCS's maximum).
pub const DEFAULT_PAGE_SIZE: usize = 1000;

/// A version of one object, assigned by the backend: it changes on every write and is never
/// reused for the same name, so a write pinned to it cannot touch a newer object.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Generation(pub i64);

/// One stored object: its name, its current generation and its metadata.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Object {
    /// The full object name.
    pub name: String,
    /// The generation that a pinned write must match.
    pub generation: Generation,
    /// The object's data.
    pub metadata: Metadata,
}

/// The condition a write must meet to take effect.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PutMode {
    /// Create the object only if no object has that name (GCS `ifGenerationMatch=0`).
    Create,
    /// Replace the object only if it still has this generation.
    Replace(Generation),
}

/// One page of a prefix listing, in ascending name order.
#[derive(Clone, Debug, Default)]
pub struct ListPage {
    /// The objects of this page.
    pub objects: Vec<Object>,
    /// Where the next page starts, if there is one.
    pub next_page_token: Option<String>,
}

/// What can go wrong at the seam, in terms every backend can map to.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// The object does not exist.
    #[error("object {name:?} not found")]
    NotFound {
        /// The object name.
        name: String,
    },
    /// A precondition failed: the object exists (create) or has another generation (replace,
    /// delete).
    #[error("precondition failed for object {name:?}")]
    Precondition {
        /// The object name.
        name: String,
    },
    /// The name cannot be stored (empty, too long, or with a forbidden character).
    #[error("invalid object name {name:?}: {reason}")]
    InvalidName {
        /// The object name.
        name: String,
        /// Why it was refused.
        reason: &'static str,
    },
    /// The backend failed; `transient` says whether retrying may help.
    #[error("failed to {op} {name:?}")]
    Backend {
        /// The operation that failed.
        op: &'static str,
        /// The object name or prefix.
        name: String,
        /// Whether a retry may succeed.
        transient: bool,
        /// The underlying error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

impl StorageError {
    /// Whether the error means the object is gone or was changed by someone else: for a
    /// claim, that its owner lost it.
    pub fn is_conflict(&self) -> bool {
        matches!(self, Self::NotFound { .. } | Self::Precondition { .. })
    }
}

/// The operations the queue needs from a store. Names are `/`-separated, non-empty segments of
/// UTF-8 up to [`MAX_NAME_BYTES`] bytes, without control characters.
#[async_trait]
pub trait Storage: Send + Sync + Debug + 'static {
    /// Reads one object, or `None` when it does not exist.
    async fn get(&self, name: &str) -> Result<Option<Object>, StorageError>;

    /// Writes an object (an empty body with `metadata`) if `mode` holds, returning its new
    /// generation. A failed condition is [`StorageError::Precondition`].
    async fn put(
        &self,
        name: &str,
        metadata: &Metadata,
        mode: PutMode,
    ) -> Result<Generation, StorageError>;

    /// Deletes an object if it still has `generation`: [`StorageError::NotFound`] when it is
    /// gone, [`StorageError::Precondition`] when it changed.
    async fn delete(&self, name: &str, generation: Generation) -> Result<(), StorageError>;

    /// Lists up to `max_results` objects whose names start with `prefix`, in name order,
    /// continuing after `page_token` when given.
    async fn list(
        &self,
        prefix: &str,
        page_token: Option<&str>,
        max_results: usize,
    ) -> Result<ListPage, StorageError>;

    /// The seam's name for `object` in `bucket`, as a bucket notification names them, when it
    /// is one of this store's objects. Stores without notifications have none.
    fn notified_name(&self, _bucket: &str, _object: &str) -> Option<String> {
        None
    }
}

/// Lists every object under `prefix`, following pages.
pub async fn list_all(storage: &dyn Storage, prefix: &str) -> Result<Vec<Object>, StorageError> {
    let mut objects = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let page = storage
            .list(prefix, token.as_deref(), DEFAULT_PAGE_SIZE)
            .await?;
        objects.extend(page.objects);
        match page.next_page_token {
            Some(next) => token = Some(next),
            None => return Ok(objects),
        }
    }
}

/// Checks that `name` is one every backend can store.
pub fn validate_name(name: &str) -> Result<(), StorageError> {
    let refuse = |reason| {
        Err(StorageError::InvalidName {
            name: name.chars().take(80).collect(),
            reason,
        })
    };
    if name.is_empty() {
        return refuse("it is empty");
    }
    if name.len() > MAX_NAME_BYTES {
        return refuse("it is longer than 1024 bytes");
    }
    if name.split('/').any(str::is_empty) {
        return refuse("it has an empty segment");
    }
    if name.chars().any(char::is_control) {
        return refuse("it has a control character");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validate_name_should_refuse_what_a_backend_cannot_store() {
        assert!(validate_name("queued/abc").is_ok());
        assert!(validate_name("").is_err());
        assert!(validate_name("a//b").is_err());
        assert!(validate_name("a/").is_err());
        assert!(validate_name("a\nb").is_err());
        assert!(validate_name(&"x".repeat(1025)).is_err());
        assert!(validate_name(&"x".repeat(1024)).is_ok());
    }
}
