//! The one way a key's record changes: a read-modify-write pinned to the generation read.
//!
//! Every step of the queue (an enqueue, a claim, a run's end, an orphan's recovery) decides
//! what to write from the record it last saw, and writes it only if the object is still at
//! that generation (or, for a key with no object, only if none appeared meanwhile). When
//! another writer got there first the precondition fails; the record is read again and the
//! step decides again from what is there now, which may be to write nothing at all. No step
//! can thus overwrite a change it has not seen, on any backend.

use super::{MAX_WRITE_TRIES, Queue, QueueError, Read, key_name};
use crate::entry::KeyRecord;
#[cfg(test)]
use crate::storage::Storage as _;
use crate::storage::{Generation, PutMode};

/// What a step writes over the record it saw.
#[allow(clippy::large_enum_variant)] // short-lived, and almost always `Put`
pub(crate) enum Write<T> {
    /// Store this record (create it when there was no object); `T` once it landed.
    Put(KeyRecord, T),
    /// Delete the object (over a record that was found; over none, there is nothing to
    /// delete); `T` once it is gone.
    Delete(T),
    /// Write nothing: the step is over with `T`.
    Done(T),
    /// Write nothing: this step's own earlier write is there (it landed although it reported
    /// an error, or a retry met it), so the step is over with `T`.
    Mine(T),
}

/// How a write that failed for another reason than a conflict is handled.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum OnError {
    /// Fail with it.
    Fail,
    /// Read the record first: a write can land and still report an error (a timeout on the
    /// way back), so the step may find its own write there; if it decides [`Write::Mine`]
    /// from what it reads, that is the outcome, else the error is.
    LookFirst,
}

/// A step's outcome, and the generation it wrote (for a put).
pub(crate) struct Landed<T> {
    /// What the step decided.
    pub(crate) value: T,
    /// The generation of the record stored, when the step put one.
    pub(crate) stored: Option<Generation>,
}

impl Queue {
    /// Runs one step on `key`'s record: `decide` says what to write over `seen` (what the
    /// caller last knew of it: [`Read::Missing`] to try a create first), and is asked again
    /// over a fresh read each time another writer changed the record first, up to
    /// [`MAX_WRITE_TRIES`] times. What is written goes into the view.
    pub(crate) async fn write_pinned<T>(
        &self,
        key: &str,
        action: &'static str,
        on_error: OnError,
        mut seen: Read,
        mut decide: impl FnMut(&Read) -> Result<Write<T>, QueueError>,
    ) -> Result<Landed<T>, QueueError> {
        let name = key_name(key);
        for _ in 0..MAX_WRITE_TRIES {
            let mode = match &seen {
                Read::Missing => PutMode::Create,
                Read::Found(_, generation) | Read::Corrupt(generation) => {
                    PutMode::Replace(*generation)
                }
            };
            let since = self.view_seq();
            let written = match decide(&seen)? {
                Write::Done(value) | Write::Mine(value) => {
                    return Ok(Landed {
                        value,
                        stored: None,
                    });
                }
                Write::Put(record, value) => {
                    let put = self.storage().put(&name, &record.to_metadata(), mode).await;
                    put.map(|generation| {
                        self.observe(&name, Some((record, generation)), since);
                        Landed {
                            value,
                            stored: Some(generation),
                        }
                    })
                }
                Write::Delete(value) => {
                    let PutMode::Replace(generation) = mode else {
                        return Ok(Landed {
                            value,
                            stored: None,
                        });
                    };
                    let deleted = self.storage().delete(&name, generation).await;
                    deleted.map(|()| {
                        self.observe_deleted(&name, generation, since);
                        Landed {
                            value,
                            stored: None,
                        }
                    })
                }
            };
            match written {
                Ok(landed) => return Ok(landed),
                Err(e) if e.is_conflict() => seen = self.read(&name, key, action).await?,
                Err(e) if on_error == OnError::LookFirst => {
                    let failed = QueueError::storage(action, key, e);
                    let Ok(now) = self.read(&name, key, action).await else {
                        return Err(failed);
                    };
                    return match decide(&now)? {
                        Write::Mine(value) => Ok(Landed {
                            value,
                            stored: None,
                        }),
                        Write::Put(..) | Write::Delete(_) | Write::Done(_) => Err(failed),
                    };
                }
                Err(e) => return Err(QueueError::storage(action, key, e)),
            }
        }
        Err(QueueError::Contention {
            action,
            key: key.to_owned(),
        })
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::UNIX_EPOCH;

    use super::*;
    use crate::entry::QueuedEntry;
    use crate::queue::QueueConfig;
    use crate::storage::{FaultyStorage, Landed as Effect, MemoryStorage, Operation};

    fn record(key: &str, priority: i64) -> KeyRecord {
        KeyRecord::queued(QueuedEntry::new(key, priority, None, UNIX_EPOCH))
    }

    /// Puts `record(key, 1)` over what is there, taking it as its own write when it finds it,
    /// and as nothing to do when it finds anything else after its first decision.
    async fn put_once(queue: &Queue, key: &str, seen: Read) -> Result<&'static str, QueueError> {
        let mine = record(key, 1);
        let mut decided = 0;
        let decide = |seen: &Read| {
            decided += 1;
            Ok(match seen {
                Read::Found(r, _) if *r == mine => Write::Mine("mine"),
                _ if decided > 1 => Write::Done("someone else's"),
                _ => Write::Put(mine.clone(), "put"),
            })
        };
        let landed = queue
            .write_pinned(key, "test", OnError::LookFirst, seen, decide)
            .await?;
        Ok(landed.value)
    }

    #[tokio::test]
    async fn look_first_should_take_only_its_own_write_as_the_outcome_of_an_error() {
        let faulty = Arc::new(FaultyStorage::new(Arc::new(MemoryStorage::new())));
        let queue = Queue::new(faulty.clone(), QueueConfig::default());

        faulty.fail(Operation::Put, "k/landed", Effect::Yes, 1);
        let outcome = put_once(&queue, "landed", Read::Missing).await;
        assert_eq!(
            outcome.unwrap(),
            "mine",
            "the write landed: it is the outcome"
        );

        faulty.fail(Operation::Put, "k/lost", Effect::No, 1);
        let outcome = put_once(&queue, "lost", Read::Missing).await;
        assert!(
            outcome.is_err(),
            "the write did not land: the error is the outcome"
        );

        let theirs = record("taken", 5);
        let generation = faulty
            .put(
                "k/taken",
                &theirs.to_metadata(),
                crate::storage::PutMode::Create,
            )
            .await
            .unwrap();
        faulty.fail(Operation::Put, "k/taken", Effect::No, 1);
        let outcome = put_once(&queue, "taken", Read::Found(theirs, generation)).await;
        assert!(
            outcome.is_err(),
            "finding another's record after an error is no success: {outcome:?}"
        );
        assert_eq!(faulty.pending(), 0);
    }
}
