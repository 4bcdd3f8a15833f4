//! Claiming due keys: one create per key that a single contender wins, the global limit held
//! by counting the claims once they landed, then taking each key off the queue.

use tracing::warn;

use super::{
    IN_PROGRESS, Listed, MAX_WRITE_TRIES, Queue, QueueError, in_progress_name, queued_name,
};
use crate::claim::Claim;
use crate::entry::{InProgressEntry, QueuedEntry};
use crate::storage::{Generation, PutMode, list_all};

impl Queue {
    /// Claims up to `want` of `candidates` (in order, skipping any that another dispatcher
    /// wins), never letting the number of claims in storage exceed `limit`.
    pub async fn claim(
        &self,
        candidates: &[&Listed<QueuedEntry>],
        want: usize,
        limit: usize,
    ) -> Result<Vec<Claim>, QueueError> {
        let now = self.now();
        let mut created = Vec::new();
        for candidate in candidates {
            if created.len() == want {
                break;
            }
            let entry = &candidate.record;
            let run = InProgressEntry {
                key: entry.key.clone(),
                priority: entry.priority,
                attempts: entry.attempts,
                queued_at: entry.queued_at,
                claimed_at: now,
                owner: self.inner.owner.clone(),
                lease_expires: now + self.config().lease,
            };
            let name = in_progress_name(&entry.key);
            match self
                .storage()
                .put(&name, &run.to_metadata(), PutMode::Create)
                .await
            {
                Ok(generation) => created.push((*candidate, run, generation)),
                Err(e) if e.is_conflict() => continue,
                Err(e) => {
                    self.withdraw_all(&created).await;
                    return Err(QueueError::storage("claim", &entry.key, e));
                }
            }
        }
        if created.is_empty() {
            return Ok(Vec::new());
        }
        // Hold the global limit: whoever created a claim last sees every earlier one, so the
        // claims beyond the limit are always withdrawn before they run.
        let claims = match list_all(self.storage(), IN_PROGRESS).await {
            Ok(all) => all.len(),
            Err(e) => {
                self.withdraw_all(&created).await;
                return Err(QueueError::storage("count claims", IN_PROGRESS, e));
            }
        };
        let surplus = claims.saturating_sub(limit).min(created.len());
        let keep = created.len() - surplus;
        self.withdraw_all(&created[keep..]).await;
        created.truncate(keep);

        let mut claims = Vec::new();
        for (candidate, run, generation) in created {
            match self.take_queued(candidate, run, generation).await {
                Ok(Some(claim)) => claims.push(claim),
                Ok(None) => {}
                Err(e) => {
                    warn!(error = %e, "failed to take a claimed key off the queue; it will be retried")
                }
            }
        }
        Ok(claims)
    }

    /// Deletes the claimed key's queued entry (pinned to what was listed); if a new enqueue
    /// changed it meanwhile, absorbs it while it is still due.
    async fn take_queued(
        &self,
        listed: &Listed<QueuedEntry>,
        run: InProgressEntry,
        generation: Generation,
    ) -> Result<Option<Claim>, QueueError> {
        let name = queued_name(&run.key);
        let mut entry = listed.record.clone();
        let mut queued_generation = listed.generation;
        for _ in 0..MAX_WRITE_TRIES {
            match self.storage().delete(&name, queued_generation).await {
                Ok(()) => return Ok(Some(self.start_run(entry, run, generation).await)),
                Err(e) if e.is_conflict() => {
                    match self
                        .get_record(&name, &run.key, "claim", QueuedEntry::from_object)
                        .await
                    {
                        Ok(Some((newer, newer_generation))) if newer.is_due(self.now()) => {
                            entry = newer;
                            queued_generation = newer_generation;
                        }
                        // Run by someone else since the listing, or no longer due.
                        Ok(_) => break,
                        Err(e) => {
                            self.withdraw(&run.key, generation).await;
                            return Err(e);
                        }
                    }
                }
                Err(e) => {
                    // A delete can land and still report an error (a timeout on the way back):
                    // look before deciding, and never withdraw a claim whose entry may be gone.
                    return match self.storage().get(&name).await {
                        Ok(None) => Ok(Some(self.start_run(entry, run, generation).await)),
                        Ok(Some(object)) if object.generation == queued_generation => {
                            self.withdraw(&run.key, generation).await;
                            Err(QueueError::storage("claim", &run.key, e))
                        }
                        // Unknown: the claim stays and lapses, and orphan recovery requeues it.
                        _ => Err(QueueError::storage("claim", &run.key, e)),
                    };
                }
            }
        }
        self.withdraw(&run.key, generation).await;
        Ok(None)
    }

    /// Starts the run of a key taken off the queue. If an enqueue changed the entry after it
    /// was listed, the claim's record takes the newer data.
    async fn start_run(
        &self,
        entry: QueuedEntry,
        mut run: InProgressEntry,
        mut generation: Generation,
    ) -> Claim {
        let listed = (run.priority, run.attempts, run.queued_at);
        if (entry.priority, entry.attempts, entry.queued_at) != listed {
            run.priority = entry.priority;
            run.attempts = entry.attempts;
            run.queued_at = entry.queued_at;
            let name = in_progress_name(&run.key);
            match self
                .storage()
                .put(&name, &run.to_metadata(), PutMode::Replace(generation))
                .await
            {
                Ok(next) => generation = next,
                // Storage keeps the listed data until the first renewal writes the newer; should
                // this write have landed after all, the heartbeat meets a conflict, stops the run,
                // and the key is recovered.
                Err(e) => warn!(key = %run.key, error = %e, "failed to update a claim's record"),
            }
        }
        self.metrics().observe_wait(&entry, run.claimed_at);
        Claim::start(self.clone(), run, generation)
    }

    /// Deletes a claim that will not run. Left in place (the delete failed), it lapses and is
    /// recovered as an orphan: nothing is lost.
    async fn withdraw(&self, key: &str, generation: Generation) {
        if let Err(e) = self
            .storage()
            .delete(&in_progress_name(key), generation)
            .await
        {
            warn!(%key, error = %e, "failed to withdraw a claim");
        }
    }

    async fn withdraw_all(&self, created: &[(&Listed<QueuedEntry>, InProgressEntry, Generation)]) {
        for (_, run, generation) in created {
            self.withdraw(&run.key, *generation).await;
        }
    }

    /// Claims the next due keys: a pass snapshot, then up to
    /// `min(batch, concurrency - in progress)` claims in dispatch order.
    pub async fn start(&self, concurrency: usize, batch: usize) -> Result<Vec<Claim>, QueueError> {
        let snapshot = self.pass_snapshot().await?;
        let want = snapshot.launchable(concurrency, batch);
        if want == 0 {
            return Ok(Vec::new());
        }
        self.claim(&snapshot.due(), want, concurrency).await
    }
}
