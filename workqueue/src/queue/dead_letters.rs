//! Dead letters: keys that failed too often. The dead letter is a part of its key's record,
//! kept until the key is re-enqueued by `reenqueue_dead_letters` or next completes; and each
//! is also listed as an object of its own, `dead-letter/<key>` (its metadata the dead letter),
//! so that `gsutil ls gs://BUCKET/dead-letter/` shows them as the reference's runbook expects.
//!
//! The listing follows the records, never the other way round: an entry is written before
//! its record is dead-lettered and removed after the record lets its dead letter go. A crash
//! between the two leaves an entry too many (a key that is not dead), which the next
//! re-enqueue removes; never a dead letter missing from the listing. Keys that never
//! dead-letter never touch it.

use std::collections::HashSet;

use tracing::warn;

use super::write::{OnError, Write};
use super::{MAX_WRITE_TRIES, Queue, QueueError, Read, key_name};
use crate::entry::{DeadLetter, KeyRecord, QueuedEntry};
use crate::key::encode_key;
use crate::storage::{PutMode, list_all};

/// The prefix dead letters are listed under.
pub(crate) const DEAD_LETTERS: &str = "dead-letter/";

/// The object that lists `key`'s dead letter.
pub(crate) fn dead_letter_name(key: &str) -> String {
    format!("{DEAD_LETTERS}{}", encode_key(key))
}

impl Queue {
    /// Every dead-lettered key, from the records (a full listing).
    pub async fn dead_letters(&self) -> Result<Vec<DeadLetter>, QueueError> {
        Ok(self.snapshot().await?.dead)
    }

    /// Enqueues again every dead-lettered key that is not queued or running already, with a
    /// fresh attempt count, and lets its dead letter go; returns how many. A dead letter whose
    /// key is queued or running again stays until that run completes. Every listing entry
    /// left without a dead letter in its record goes.
    pub async fn reenqueue_dead_letters(&self) -> Result<usize, QueueError> {
        let listed = list_all(self.storage(), DEAD_LETTERS)
            .await
            .map_err(|e| QueueError::storage("list", DEAD_LETTERS, e))?;
        let snapshot = self.snapshot().await?;
        let busy: HashSet<&str> = (snapshot.queued.iter().map(|q| q.record.key.as_str()))
            .chain(snapshot.in_progress.iter().map(|r| r.record.key.as_str()))
            .collect();
        let mut count = 0;
        let mut kept = HashSet::new();
        for letter in &snapshot.dead {
            if !busy.contains(letter.key.as_str()) && self.revive(letter).await? {
                count += 1;
            } else {
                kept.insert(dead_letter_name(&letter.key));
            }
        }
        for entry in listed.iter().filter(|entry| !kept.contains(&entry.name)) {
            match self.storage().delete(&entry.name, entry.generation).await {
                // Gone, or written again by a key dead-lettered meanwhile: either way, not ours.
                Err(e) if e.is_conflict() => {}
                deleted => deleted.map_err(|e| QueueError::storage("unlist", &entry.name, e))?,
            }
        }
        Ok(count)
    }

    /// Turns `letter`'s record into a fresh queued entry, if it still holds only the dead
    /// letter; whether it did.
    async fn revive(&self, letter: &DeadLetter) -> Result<bool, QueueError> {
        let now = self.now();
        let decide = |seen: &Read| {
            Ok(match seen {
                Read::Found(record, _)
                    if record.dead.is_some() && record.queued.is_none() && record.run.is_none() =>
                {
                    let fresh = QueuedEntry::new(&letter.key, letter.priority, None, now);
                    Write::Put(KeyRecord::queued(fresh), true)
                }
                _ => Write::Done(false),
            })
        };
        let seen = self
            .read(&key_name(&letter.key), &letter.key, "reenqueue")
            .await?;
        let landed = self
            .write_pinned(&letter.key, "reenqueue", OnError::Fail, seen, decide)
            .await?;
        if landed.value {
            self.metrics().added_keys.inc();
        }
        Ok(landed.value)
    }

    /// Lists `letter` under `dead-letter/`, replacing an entry of the key's earlier dead
    /// letter if one is still there.
    pub(crate) async fn list_dead_letter(&self, letter: &DeadLetter) -> Result<(), QueueError> {
        let name = dead_letter_name(&letter.key);
        let entry = KeyRecord {
            key: letter.key.clone(),
            queued: None,
            run: None,
            dead: Some(letter.clone()),
        }
        .to_metadata();
        let failed = |e| QueueError::storage("list as a dead letter", &letter.key, e);
        let mut mode = PutMode::Create;
        let mut tries = 0;
        loop {
            match self.storage().put(&name, &entry, mode).await {
                Ok(_) => return Ok(()),
                // An entry there already (an earlier dead letter's), or one changed or removed
                // meanwhile: read what is there and write over it, a few times at most.
                Err(e) if e.is_conflict() && tries + 1 < MAX_WRITE_TRIES => {
                    tries += 1;
                    mode = match self.storage().get(&name).await.map_err(failed)? {
                        Some(there) => PutMode::Replace(there.generation),
                        None => PutMode::Create,
                    };
                }
                Err(e) => return Err(failed(e)),
            }
        }
    }

    /// Removes `key`'s entry under `dead-letter/`, after its record let the dead letter go.
    /// A failure is logged, not returned: the record is what counts, and the next re-enqueue
    /// removes the entry.
    pub(crate) async fn unlist_dead_letter(&self, key: &str) {
        let name = dead_letter_name(key);
        let removed = match self.storage().get(&name).await {
            Ok(Some(entry)) => match self.storage().delete(&name, entry.generation).await {
                Err(e) if e.is_conflict() => Ok(()),
                deleted => deleted,
            },
            Ok(None) => Ok(()),
            Err(e) => Err(e),
        };
        if let Err(e) = removed {
            warn!(%key, error = %e, "failed to remove a dead letter's listing entry; the next re-enqueue removes it");
        }
    }

    /// Removes `key`'s entry under `dead-letter/` unless its record holds a dead letter (an
    /// earlier one, when a dead-lettering write did not land). Logged, not returned, as
    /// [`Queue::unlist_dead_letter`].
    pub(crate) async fn unlist_unless_dead(&self, key: &str) {
        match self.read(&key_name(key), key, "unlist").await {
            Ok(Read::Found(record, _)) if record.dead.is_some() => {}
            Ok(_) => self.unlist_dead_letter(key).await,
            Err(e) => {
                warn!(%key, error = %e, "failed to read a key whose dead-lettering did not land; its listing entry stays until the next re-enqueue");
            }
        }
    }
}
