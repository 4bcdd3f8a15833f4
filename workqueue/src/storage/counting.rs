//! A wrapper store that counts operations by kind: the queue's cost, measured at the seam.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use async_trait::async_trait;

use super::{Generation, ListPage, Metadata, Object, PutMode, Storage, StorageError};

/// Counts of storage operations, failed ones included (they cost the same).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct OpCounts {
    /// Create-if-absent writes.
    pub create: u64,
    /// Generation-pinned replacements.
    pub replace: u64,
    /// Generation-pinned deletes.
    pub delete: u64,
    /// Single-object reads.
    pub get: u64,
    /// List pages read.
    pub list_pages: u64,
}

impl OpCounts {
    /// Writes of any kind: the operations that GCS rate-limits per object and bills as class A.
    pub fn mutations(&self) -> u64 {
        self.create + self.replace + self.delete
    }

    /// The operations counted since `earlier` was taken.
    pub fn since(&self, earlier: OpCounts) -> OpCounts {
        OpCounts {
            create: self.create - earlier.create,
            replace: self.replace - earlier.replace,
            delete: self.delete - earlier.delete,
            get: self.get - earlier.get,
            list_pages: self.list_pages - earlier.list_pages,
        }
    }
}

/// Wraps any store and counts what passes through it.
#[derive(Debug)]
pub struct CountingStorage {
    inner: Arc<dyn Storage>,
    create: AtomicU64,
    replace: AtomicU64,
    delete: AtomicU64,
    get: AtomicU64,
    list_pages: AtomicU64,
}

impl CountingStorage {
    /// Counts the operations sent to `inner`.
    pub fn new(inner: Arc<dyn Storage>) -> Self {
        Self {
            inner,
            create: AtomicU64::new(0),
            replace: AtomicU64::new(0),
            delete: AtomicU64::new(0),
            get: AtomicU64::new(0),
            list_pages: AtomicU64::new(0),
        }
    }

    /// The counts so far.
    pub fn counts(&self) -> OpCounts {
        OpCounts {
            create: self.create.load(Ordering::Relaxed),
            replace: self.replace.load(Ordering::Relaxed),
            delete: self.delete.load(Ordering::Relaxed),
            get: self.get.load(Ordering::Relaxed),
            list_pages: self.list_pages.load(Ordering::Relaxed),
        }
    }
}

#[async_trait]
impl Storage for CountingStorage {
    async fn get(&self, name: &str) -> Result<Option<Object>, StorageError> {
        self.get.fetch_add(1, Ordering::Relaxed);
        self.inner.get(name).await
    }

    async fn put(
        &self,
        name: &str,
        metadata: &Metadata,
        mode: PutMode,
    ) -> Result<Generation, StorageError> {
        let counter = match mode {
            PutMode::Create => &self.create,
            PutMode::Replace(_) => &self.replace,
        };
        counter.fetch_add(1, Ordering::Relaxed);
        self.inner.put(name, metadata, mode).await
    }

    async fn delete(&self, name: &str, generation: Generation) -> Result<(), StorageError> {
        self.delete.fetch_add(1, Ordering::Relaxed);
        self.inner.delete(name, generation).await
    }

    async fn list(
        &self,
        prefix: &str,
        page_token: Option<&str>,
        max_results: usize,
    ) -> Result<ListPage, StorageError> {
        self.list_pages.fetch_add(1, Ordering::Relaxed);
        self.inner.list(prefix, page_token, max_results).await
    }

    fn notified_name(&self, bucket: &str, object: &str) -> Option<String> {
        self.inner.notified_name(bucket, object)
    }
}
