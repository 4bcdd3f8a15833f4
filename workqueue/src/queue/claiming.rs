//! Claiming due keys: one pinned replace per key turns its queued part into a run, under a
//! capacity slot that holds the global limit.

use tracing::warn;

use super::{Listed, MAX_WRITE_TRIES, Permit, Queue, QueueError, Read, key_name};
use crate::claim::Claim;
use crate::entry::{InProgressEntry, KeyRecord, QueuedEntry};
use crate::storage::{Generation, PutMode};

/// How many due keys a pass copies out of the view per key it may claim: enough to go on
/// down the order when another process claimed the first ones since the view saw them.
pub(crate) const DUE_PER_CLAIM: usize = 4;

impl Queue {
    /// Claims the next due keys: a pass snapshot, then up to `batch` claims in dispatch order,
    /// never more keys in progress than `concurrency` across every process.
    pub async fn start(&self, concurrency: usize, batch: usize) -> Result<Vec<Claim>, QueueError> {
        let pass = self.pass(batch.saturating_mul(DUE_PER_CLAIM)).await?;
        let due = pass.due();
        let permits = self
            .capacity()
            .reserve(batch.min(due.len()), concurrency)
            .await;
        Ok(self.claim(due, permits).await?.0)
    }

    /// Claims `candidates` in order, one per permit, skipping any that another process claimed
    /// or changed so that it is no longer due. Returns the claims and how many candidates it
    /// tried.
    pub(crate) async fn claim(
        &self,
        candidates: &[Listed<KeyRecord>],
        mut permits: Vec<Permit>,
    ) -> Result<(Vec<Claim>, usize), QueueError> {
        let mut claims = Vec::new();
        let mut tried = 0;
        for candidate in candidates {
            if permits.is_empty() {
                break;
            }
            tried += 1;
            match self.claim_one(candidate).await {
                Ok(Some((record, generation, entry))) => {
                    let Some(permit) = permits.pop() else { break };
                    let claim = Claim::start(self.clone(), record, generation, permit);
                    self.metrics().observe_wait(&entry, claim.claimed_at());
                    claims.push(claim);
                }
                Ok(None) => {}
                Err(e) if claims.is_empty() => return Err(e),
                Err(e) => {
                    warn!(error = %e, "failed to claim a key; it stays queued");
                    break;
                }
            }
        }
        Ok((claims, tried))
    }

    /// Turns one record's queued part into a run of this process, pinned to the generation
    /// seen; when the record changed, reads it and tries again while it is still claimable.
    /// Returns the record written, its generation and the entry that was claimed.
    async fn claim_one(
        &self,
        candidate: &Listed<KeyRecord>,
    ) -> Result<Option<(KeyRecord, Generation, QueuedEntry)>, QueueError> {
        let key = &candidate.record.key;
        let name = key_name(key);
        let mut record = candidate.record.clone();
        let mut generation = candidate.generation;
        for _ in 0..MAX_WRITE_TRIES {
            let now = self.now();
            let Some(entry) = record.claimable(now).cloned() else {
                return Ok(None);
            };
            let run = InProgressEntry {
                key: key.clone(),
                id: format!("{:016x}", rand::random::<u64>()),
                priority: entry.priority,
                attempts: entry.attempts,
                queued_at: entry.queued_at,
                claimed_at: now,
                owner: self.inner.owner.clone(),
                lease_expires: now + self.config().lease,
            };
            let claimed = KeyRecord {
                queued: None,
                run: Some(run.clone()),
                ..record.clone()
            };
            let metadata = claimed.to_metadata();
            let since = self.view_seq();
            let put = self
                .storage()
                .put(&name, &metadata, PutMode::Replace(generation));
            match put.await {
                Ok(next) => {
                    self.observe(&name, Some((claimed.clone(), next)), since);
                    return Ok(Some((claimed, next, entry)));
                }
                Err(e) => {
                    // A write can land and still report an error: a timeout on the way back,
                    // or, from a backend that retries without checking (the GCS one checks),
                    // a precondition failure when its retry meets its own write. So look
                    // first: if the run stored is this one, it is this one's to make.
                    // Otherwise a conflict means the record changed (try again while it is
                    // claimable); any other error leaves a run that did land to lapse and be
                    // recovered.
                    let conflict = e.is_conflict();
                    match self.read(&name, key, "claim").await {
                        Ok(Read::Found(current, current_generation)) if current.runs(&run.id) => {
                            return Ok(Some((current, current_generation, entry)));
                        }
                        Ok(Read::Found(newer, newer_generation)) if conflict => {
                            record = newer;
                            generation = newer_generation;
                        }
                        Ok(Read::Missing | Read::Corrupt(_)) if conflict => return Ok(None),
                        Err(read_failed) if conflict => return Err(read_failed),
                        _ => return Err(QueueError::storage("claim", key, e)),
                    }
                }
            }
        }
        Ok(None)
    }
}
