//! `memory://`: a store in one process's memory that enforces every precondition strictly,
//! the referee for the queue's race paths.

use std::collections::BTreeMap;
use std::ops::Bound;
use std::sync::Mutex;

use async_trait::async_trait;

use super::{
    Generation, ListPage, Metadata, Object, PutMode, Storage, StorageError, validate_name,
};

/// An in-memory store; generations come from one counter, so none is ever reused.
#[derive(Debug, Default)]
pub struct MemoryStorage {
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    objects: BTreeMap<String, (Generation, Metadata)>,
    last_generation: i64,
}

impl MemoryStorage {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        // A panic while holding the lock cannot leave a half-written map (each operation is
        // one map call), so the data behind a poisoned lock is still consistent.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

#[async_trait]
impl Storage for MemoryStorage {
    async fn get(&self, name: &str) -> Result<Option<Object>, StorageError> {
        validate_name(name)?;
        Ok(self
            .state()
            .objects
            .get(name)
            .map(|(generation, metadata)| Object {
                name: name.to_owned(),
                generation: *generation,
                metadata: metadata.clone(),
            }))
    }

    async fn put(
        &self,
        name: &str,
        metadata: &Metadata,
        mode: PutMode,
    ) -> Result<Generation, StorageError> {
        validate_name(name)?;
        let mut state = self.state();
        let current = state.objects.get(name).map(|(generation, _)| *generation);
        let allowed = match mode {
            PutMode::Create => current.is_none(),
            PutMode::Replace(expected) => current == Some(expected),
        };
        if !allowed {
            return Err(StorageError::Precondition {
                name: name.to_owned(),
            });
        }
        state.last_generation += 1;
        let generation = Generation(state.last_generation);
        state
            .objects
            .insert(name.to_owned(), (generation, metadata.clone()));
        Ok(generation)
    }

    async fn delete(&self, name: &str, generation: Generation) -> Result<(), StorageError> {
        validate_name(name)?;
        let mut state = self.state();
        match state.objects.get(name) {
            None => Err(StorageError::NotFound {
                name: name.to_owned(),
            }),
            Some((current, _)) if *current != generation => Err(StorageError::Precondition {
                name: name.to_owned(),
            }),
            Some(_) => {
                state.objects.remove(name);
                Ok(())
            }
        }
    }

    async fn list(
        &self,
        prefix: &str,
        page_token: Option<&str>,
        max_results: usize,
    ) -> Result<ListPage, StorageError> {
        let state = self.state();
        let start = match page_token {
            Some(after) => Bound::Excluded(after.to_owned()),
            None => Bound::Included(prefix.to_owned()),
        };
        let mut objects = Vec::new();
        let mut more = false;
        for (name, (generation, metadata)) in state
            .objects
            .range((start, Bound::Unbounded))
            .take_while(|(name, _)| name.starts_with(prefix))
        {
            if objects.len() == max_results.max(1) {
                more = true;
                break;
            }
            objects.push(Object {
                name: name.clone(),
                generation: *generation,
                metadata: metadata.clone(),
            });
        }
        let next_page_token = more
            .then(|| objects.last().map(|o| o.name.clone()))
            .flatten();
        Ok(ListPage {
            objects,
            next_page_token,
        })
    }
}
