//! A wrapper store that injects faults, for proving the queue's race and error paths: an
//! operation can fail before it reaches the inner store, reach it and still report a failure
//! (a timeout on the way back), or never answer.

use std::sync::{Arc, Mutex};

use async_trait::async_trait;

use super::{Generation, ListPage, Metadata, Object, PutMode, Storage, StorageError};

/// Which operation a fault applies to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Operation {
    /// `get`.
    Get,
    /// `put`, either mode.
    Put,
    /// `delete`.
    Delete,
    /// `list`.
    List,
}

/// Whether a faulty operation took effect.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Landed {
    /// The operation failed before reaching the store.
    No,
    /// The operation took effect, but its caller sees a failure.
    Yes,
    /// The operation took effect, but its caller sees what a client's own retry of it meets:
    /// a precondition failure for a put, not found for a delete.
    YesThenConflict,
    /// The operation never answers: storage that cannot be reached, with nothing to time the
    /// call out (what only a deadline of the caller's ends).
    Hangs,
}

#[derive(Debug)]
struct Fault {
    operation: Operation,
    prefix: String,
    landed: Landed,
    remaining: usize,
}

/// Wraps a store and fails chosen operations on names under a prefix.
#[derive(Debug)]
pub struct FaultyStorage {
    inner: Arc<dyn Storage>,
    faults: Mutex<Vec<Fault>>,
}

impl FaultyStorage {
    /// A wrapper that passes everything through until faults are added.
    pub fn new(inner: Arc<dyn Storage>) -> Self {
        Self {
            inner,
            faults: Mutex::default(),
        }
    }

    /// Fails the next `times` calls of `operation` on names starting with `prefix`.
    pub fn fail(&self, operation: Operation, prefix: &str, landed: Landed, times: usize) {
        self.faults
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(Fault {
                operation,
                prefix: prefix.to_owned(),
                landed,
                remaining: times,
            });
    }

    /// How many injected failures have not happened yet: a test shows its fault was met.
    pub fn pending(&self) -> usize {
        let faults = self.faults.lock().unwrap_or_else(|p| p.into_inner());
        faults.iter().map(|f| f.remaining).sum()
    }

    /// The fault to apply to this call, if any (and counts it).
    fn take(&self, operation: Operation, name: &str) -> Option<Landed> {
        let mut faults = self.faults.lock().unwrap_or_else(|p| p.into_inner());
        let fault = faults
            .iter_mut()
            .find(|f| f.operation == operation && f.remaining > 0 && name.starts_with(&f.prefix))?;
        fault.remaining -= 1;
        Some(fault.landed)
    }
}

fn injected(op: &'static str, name: &str) -> StorageError {
    StorageError::Backend {
        op,
        name: name.to_owned(),
        transient: true,
        source: "injected fault".into(),
    }
}

#[async_trait]
impl Storage for FaultyStorage {
    async fn get(&self, name: &str) -> Result<Option<Object>, StorageError> {
        match self.take(Operation::Get, name) {
            None => self.inner.get(name).await,
            Some(Landed::Hangs) => std::future::pending().await,
            Some(Landed::No) => Err(injected("read", name)),
            Some(Landed::Yes | Landed::YesThenConflict) => {
                self.inner.get(name).await.and(Err(injected("read", name)))
            }
        }
    }

    async fn put(
        &self,
        name: &str,
        metadata: &Metadata,
        mode: PutMode,
    ) -> Result<Generation, StorageError> {
        match self.take(Operation::Put, name) {
            None => self.inner.put(name, metadata, mode).await,
            Some(Landed::Hangs) => std::future::pending().await,
            Some(Landed::No) => Err(injected("write", name)),
            Some(Landed::Yes) => self
                .inner
                .put(name, metadata, mode)
                .await
                .and(Err(injected("write", name))),
            Some(Landed::YesThenConflict) => {
                self.inner.put(name, metadata, mode).await?;
                Err(StorageError::Precondition {
                    name: name.to_owned(),
                })
            }
        }
    }

    async fn delete(&self, name: &str, generation: Generation) -> Result<(), StorageError> {
        match self.take(Operation::Delete, name) {
            None => self.inner.delete(name, generation).await,
            Some(Landed::Hangs) => std::future::pending().await,
            Some(Landed::No) => Err(injected("delete", name)),
            Some(Landed::Yes) => self
                .inner
                .delete(name, generation)
                .await
                .and(Err(injected("delete", name))),
            Some(Landed::YesThenConflict) => {
                self.inner.delete(name, generation).await?;
                Err(StorageError::NotFound {
                    name: name.to_owned(),
                })
            }
        }
    }

    async fn list(
        &self,
        prefix: &str,
        page_token: Option<&str>,
        max_results: usize,
    ) -> Result<ListPage, StorageError> {
        match self.take(Operation::List, prefix) {
            None => self.inner.list(prefix, page_token, max_results).await,
            Some(Landed::Hangs) => std::future::pending().await,
            Some(_) => Err(injected("list", prefix)),
        }
    }

    fn notified_name(&self, bucket: &str, object: &str) -> Option<String> {
        self.inner.notified_name(bucket, object)
    }
}
