//! The first layout (one object per key and state: `queued/`, `in-progress/`,
//! `dead-letter/`): found at startup, and moved into the current one by `migrate_legacy`, so
//! that upgrading never silently drops what an older version stored.

use super::{KEYS, Queue, QueueError, Read, key_name};
use crate::entry::{DeadLetter, KeyRecord};
use crate::storage::{Object, PutMode, StorageError, list_all};

/// The prefixes of the first layout.
const LEGACY: [&str; 3] = ["queued/", "in-progress/", "dead-letter/"];

/// What a migration moved.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Migrated {
    /// Queued entries, and runs of the old layout (queued again with their attempts).
    pub queued: usize,
    /// Dead letters.
    pub dead_letters: usize,
    /// Objects that were not readable records, left in place.
    pub left: Vec<String>,
}

impl Queue {
    /// An object of the first layout, if the storage holds any: this version does not read
    /// them, so the processes refuse to start until they are migrated.
    pub async fn legacy_object(&self) -> Result<Option<String>, QueueError> {
        for prefix in LEGACY {
            let page = self
                .storage()
                .list(prefix, None, 1)
                .await
                .map_err(|e| QueueError::storage("list", prefix, e))?;
            if let Some(object) = page.objects.into_iter().next() {
                return Ok(Some(object.name));
            }
        }
        Ok(None)
    }

    /// Moves every object of the first layout into the current one, then deletes it: queued
    /// entries merge into the key's record, runs are queued again keeping their attempts
    /// (stop the older version's processes first, or a run of theirs may run twice), and dead
    /// letters become the record's dead-letter part.
    pub async fn migrate_legacy(&self) -> Result<Migrated, QueueError> {
        let mut migrated = Migrated::default();
        for prefix in LEGACY {
            let objects = list_all(self.storage(), prefix)
                .await
                .map_err(|e| QueueError::storage("list", prefix, e))?;
            for object in objects {
                let moved = if prefix == "dead-letter/" {
                    self.migrate_dead_letter(&object).await?
                } else {
                    self.migrate_entry(&object).await?
                };
                match moved {
                    false => migrated.left.push(object.name.clone()),
                    true if prefix == "dead-letter/" => migrated.dead_letters += 1,
                    true => migrated.queued += 1,
                }
                if moved {
                    match self.storage().delete(&object.name, object.generation).await {
                        Ok(()) | Err(StorageError::NotFound { .. }) => {}
                        Err(e) => return Err(QueueError::storage("migrate", &object.name, e)),
                    }
                }
            }
        }
        Ok(migrated)
    }

    /// A queued entry or a run: both kept the queued fields the current record uses.
    async fn migrate_entry(&self, object: &Object) -> Result<bool, QueueError> {
        let Some(mut entry) = KeyRecord::from_object(object).ok().and_then(|r| r.queued) else {
            return Ok(false);
        };
        if object.name.starts_with("in-progress/") {
            entry.not_before = None;
        }
        let (priority, not_before) = (entry.priority, entry.not_before);
        self.upsert(
            &entry.key.clone(),
            || entry.clone(),
            |existing| existing.merged(priority, not_before),
        )
        .await?;
        Ok(true)
    }

    async fn migrate_dead_letter(&self, object: &Object) -> Result<bool, QueueError> {
        let field = |name: &str| object.metadata.get(name);
        let number = |name: &str| field(name).and_then(|v| v.parse::<i64>().ok());
        let (Some(key), Some(priority), Some(attempts), Some(queued), Some(failed)) = (
            field("key"),
            number("priority"),
            number("attempts").and_then(|a| u32::try_from(a).ok()),
            number("queued-time"),
            number("failed-time"),
        ) else {
            return Ok(false);
        };
        let letter = DeadLetter {
            key: key.clone(),
            priority,
            attempts,
            queued_at: crate::clock::from_millis(queued),
            failed_at: crate::clock::from_millis(failed),
            error: field("error").cloned().unwrap_or_default(),
        };
        let name = key_name(key);
        for _ in 0..super::MAX_WRITE_TRIES {
            let (record, mode) = match self.read(&name, key, "migrate").await? {
                Read::Found(record, _) if record.dead.is_some() => return Ok(true),
                Read::Found(record, generation) => (
                    KeyRecord {
                        dead: Some(letter.clone()),
                        ..record
                    },
                    PutMode::Replace(generation),
                ),
                Read::Missing => (
                    KeyRecord {
                        key: key.clone(),
                        queued: None,
                        run: None,
                        dead: Some(letter.clone()),
                    },
                    PutMode::Create,
                ),
                Read::Corrupt(_) => return Ok(false),
            };
            match self.storage().put(&name, &record.to_metadata(), mode).await {
                Ok(_) => return Ok(true),
                Err(e) if e.is_conflict() => continue,
                Err(e) => return Err(QueueError::storage("migrate", KEYS, e)),
            }
        }
        Err(QueueError::Contention {
            action: "migrate",
            key: key.clone(),
        })
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use super::*;
    use crate::queue::{KeyStatus, QueueConfig};
    use crate::storage::{MemoryStorage, Metadata, Storage};

    fn legacy(fields: &[(&str, &str)]) -> Metadata {
        fields
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[tokio::test]
    async fn migrate_legacy_should_move_every_state_and_keep_attempts() {
        let storage = Arc::new(MemoryStorage::new());
        let queue = Queue::new(storage.clone(), QueueConfig::default());
        let common = [
            ("priority", "5"),
            ("attempts", "2"),
            ("queued-time", "1000"),
        ];
        let put = |name: &'static str, key: &'static str, extra: &'static [(&str, &str)]| {
            let storage = storage.clone();
            async move {
                let mut fields = legacy(&common);
                fields.insert("key".into(), key.into());
                fields.extend(legacy(extra));
                storage.put(name, &fields, PutMode::Create).await.unwrap();
            }
        };
        put("queued/a", "a", &[]).await;
        put(
            "in-progress/b",
            "b",
            &[
                ("last-attempted", "2000"),
                ("owner", "old"),
                ("lease-expiration", "3000"),
            ],
        )
        .await;
        put(
            "dead-letter/c",
            "c",
            &[("failed-time", "4000"), ("error", "boom")],
        )
        .await;
        storage
            .put("queued/junk", &Metadata::new(), PutMode::Create)
            .await
            .unwrap();
        assert_eq!(
            queue.legacy_object().await.unwrap().as_deref(),
            Some("queued/a")
        );
        let migrated = queue.migrate_legacy().await.unwrap();
        assert_eq!(
            migrated,
            Migrated {
                queued: 2,
                dead_letters: 1,
                left: vec!["queued/junk".to_owned()],
            }
        );
        for (key, status) in [
            ("a", KeyStatus::Queued),
            ("b", KeyStatus::Queued),
            ("c", KeyStatus::DeadLetter),
        ] {
            let state = queue.state(key).await.unwrap().unwrap();
            assert_eq!(
                (state.status, state.attempts, state.priority),
                (status, 2, 5)
            );
        }
        assert_eq!(queue.dead_letters().await.unwrap()[0].error, "boom");
        let claims = queue.start(5, 5).await.unwrap();
        assert_eq!(claims.len(), 2);
        queue.enqueue("d", 0, Duration::ZERO).await.unwrap();
        assert_eq!(
            queue.legacy_object().await.unwrap().as_deref(),
            Some("queued/junk"),
            "what cannot be read is left for a person to look at"
        );
    }
}
