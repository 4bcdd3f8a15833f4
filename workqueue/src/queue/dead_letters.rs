//! Dead letters: keys that failed too often, kept until they are re-enqueued and complete.

use super::snapshot::parse_all;
use super::{DEAD_LETTER, MAX_WRITE_TRIES, Queue, QueueError, dead_letter_name};
use crate::entry::DeadLetter;
use crate::storage::{PutMode, list_all};

impl Queue {
    /// Every dead-lettered key.
    pub async fn dead_letters(&self) -> Result<Vec<DeadLetter>, QueueError> {
        let objects = list_all(self.storage(), DEAD_LETTER)
            .await
            .map_err(|e| QueueError::storage("list", DEAD_LETTER, e))?;
        Ok(parse_all(objects, DeadLetter::from_object)
            .0
            .into_iter()
            .map(|l| l.record)
            .collect())
    }

    /// Enqueues every dead-lettered key again with a fresh attempt count; returns how many.
    /// Each dead letter is removed when its key next completes.
    pub async fn reenqueue_dead_letters(&self) -> Result<usize, QueueError> {
        let dead = self.dead_letters().await?;
        for letter in &dead {
            self.enqueue_with(&letter.key, letter.priority, None)
                .await?;
        }
        Ok(dead.len())
    }

    pub(crate) async fn dead_letter(&self, letter: &DeadLetter) -> Result<(), QueueError> {
        let name = dead_letter_name(&letter.key);
        for _ in 0..MAX_WRITE_TRIES {
            let mode = match self.storage().get(&name).await {
                Ok(None) => PutMode::Create,
                Ok(Some(existing)) => PutMode::Replace(existing.generation),
                Err(e) => return Err(QueueError::storage("dead-letter", &letter.key, e)),
            };
            match self.storage().put(&name, &letter.to_metadata(), mode).await {
                Ok(_) => return Ok(()),
                Err(e) if e.is_conflict() => continue,
                Err(e) => return Err(QueueError::storage("dead-letter", &letter.key, e)),
            }
        }
        Err(QueueError::Contention {
            action: "dead-letter",
            key: letter.key.clone(),
        })
    }

    /// Removes `key`'s dead letter, if it has one (after the key completes).
    pub(crate) async fn clear_dead_letter(&self, key: &str) -> Result<(), QueueError> {
        let name = dead_letter_name(key);
        match self.storage().get(&name).await {
            Ok(Some(object)) => match self.storage().delete(&name, object.generation).await {
                Ok(()) => Ok(()),
                Err(e) if e.is_conflict() => Ok(()),
                Err(e) => Err(QueueError::storage("clear dead letter", key, e)),
            },
            Ok(None) => Ok(()),
            Err(e) => Err(QueueError::storage("clear dead letter", key, e)),
        }
    }
}
