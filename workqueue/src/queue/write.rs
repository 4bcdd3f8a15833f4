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
use crate::storage::{Generation, PutMode};

/// What a step writes over the record it saw.
#[allow(clippy::large_enum_variant)] // short-lived, and almost always `Put`
pub(crate) enum Write<T> {
    /// Store this record (create it when there was no object); `T` once it landed.
    Put(KeyRecord, T),
    /// Delete the object (only over a record that was found); `T` once it is gone.
    Delete(T),
    /// Write nothing: the step is over with `T`.
    Done(T),
}

/// How a write that failed for another reason than a conflict is handled.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum OnError {
    /// Fail with it.
    Fail,
    /// Read the record first: a write can land and still report an error (a timeout on the
    /// way back), so the step may find its own write there; if it decides [`Write::Done`]
    /// from what it reads, that is the outcome, else the error is.
    LookFirst,
}

/// A step's outcome, and the record it wrote with its new generation (for a put).
pub(crate) struct Landed<T> {
    /// What the step decided.
    pub(crate) value: T,
    /// The record stored and its generation, when the step put one.
    pub(crate) stored: Option<(KeyRecord, Generation)>,
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
                Write::Done(value) => {
                    return Ok(Landed {
                        value,
                        stored: None,
                    });
                }
                Write::Put(record, value) => {
                    let put = self.storage().put(&name, &record.to_metadata(), mode).await;
                    put.map(|generation| {
                        self.observe(&name, Some((record.clone(), generation)), since);
                        Landed {
                            value,
                            stored: Some((record, generation)),
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
                        Write::Done(value) => Ok(Landed {
                            value,
                            stored: None,
                        }),
                        Write::Put(..) | Write::Delete(_) => Err(failed),
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
