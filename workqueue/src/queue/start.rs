//! Starting due keys: the one path from a queued key to a running claim, taken by the
//! dispatcher and by the conformance suite alike.
//!
//! A start is a pass (the next scan page read into the view, orphans recovered, the first due
//! keys in dispatch order), then capacity slots for as many of them as the batch and the
//! global limit allow, then one pinned replace per key that turns its queued part into a run
//! of this process. Another process may have claimed a key since the view saw it: its write
//! then fails its precondition, the record is read again, and the key is skipped unless it is
//! still claimable, so one contender wins each key.

use std::time::Duration;

use tokio_util::sync::CancellationToken;
use tracing::warn;

use super::write::{OnError, Write};
use super::{Claim, Listed, PassView, Permit, Queue, QueueError, Read};
use crate::entry::{InProgressEntry, KeyRecord, QueuedEntry};

/// How many due keys a pass copies out of the view per key it may claim: enough to go on
/// down the order when another process claimed the first ones since the view saw them.
const DUE_PER_CLAIM: usize = 4;

/// How long a process keeps capacity slots it has no use for once nothing is due, so that a
/// trickle of keys reuses them while another process with work can soon have them.
const IDLE_SLOT_GRACE: Duration = Duration::from_secs(30);

/// What one start did.
#[derive(Debug)]
pub struct Started {
    /// The pass it decided from: the queue's measure when it began.
    pub view: PassView,
    /// The keys claimed, in dispatch order; each is this process's to run and finish.
    pub claims: Vec<Claim>,
    /// Whether due keys are left that capacity was granted for (a full batch, or keys another
    /// process took first): starting again soon may claim them.
    pub more_due: bool,
}

impl Queue {
    /// Claims the next due keys: up to `batch` of them in dispatch order, never more keys in
    /// progress than `concurrency` across every process sharing the storage. When nothing is
    /// due, capacity slots idle for a while are given back.
    pub async fn start(&self, concurrency: usize, batch: usize) -> Result<Started, QueueError> {
        self.start_unless(concurrency, batch, &CancellationToken::new())
            .await
    }

    /// [`Queue::start`], claiming nothing if `shutdown` fired while the pass was read. (The
    /// dispatcher lets a start in progress at shutdown end within a bound; one cut short leaves
    /// its claims to lapse and be recovered.)
    pub async fn start_unless(
        &self,
        concurrency: usize,
        batch: usize,
        shutdown: &CancellationToken,
    ) -> Result<Started, QueueError> {
        let view = self.pass(batch.saturating_mul(DUE_PER_CLAIM)).await?;
        let due = view.due();
        if due.is_empty() || shutdown.is_cancelled() {
            if due.is_empty() {
                self.capacity().trim(IDLE_SLOT_GRACE).await;
            }
            return Ok(Started {
                view,
                claims: Vec::new(),
                more_due: false,
            });
        }
        let permits = self
            .capacity()
            .reserve(batch.min(due.len()), concurrency)
            .await;
        let granted = permits.len();
        let (claims, tried) = self.claim(due, permits).await?;
        let more_due = granted > 0 && view.due_total > tried;
        Ok(Started {
            view,
            claims,
            more_due,
        })
    }

    /// Claims `candidates` in order, one per permit, skipping any that another process claimed
    /// or changed so that it is no longer due. Returns the claims and how many candidates it
    /// tried.
    async fn claim(
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

    /// Turns one record's queued part into a run of this process, from the generation the
    /// view saw. Returns the record written, its generation and the entry that was claimed;
    /// `None` when the key is no longer claimable.
    ///
    /// A claim that failed with an error other than a conflict is looked for first: a write
    /// can land and still report an error, and a run of this process found there is its own
    /// to go on with (the GCS backend checks its own retries; another backend's retry may
    /// meet its own write as a conflict, which the re-read resolves the same way).
    async fn claim_one(
        &self,
        candidate: &Listed<KeyRecord>,
    ) -> Result<Option<(KeyRecord, super::Generation, QueuedEntry)>, QueueError> {
        let key = &candidate.record.key;
        let id = format!("{:016x}", rand::random::<u64>());
        let mut claimed_entry = None;
        let decide = |seen: &Read| {
            let record = match seen {
                Read::Found(record, generation) if record.runs(&id) => {
                    let entry = claimed_entry
                        .clone()
                        .expect("a run of ours follows a claim");
                    return Ok(Write::Mine(Some((
                        record.clone(),
                        Some(*generation),
                        entry,
                    ))));
                }
                Read::Found(record, _) => record,
                Read::Missing | Read::Corrupt(_) => return Ok(Write::Done(None)),
            };
            let now = self.now();
            let Some(entry) = record.claimable(now).cloned() else {
                return Ok(Write::Done(None));
            };
            let run = InProgressEntry {
                key: key.clone(),
                id: id.clone(),
                priority: entry.priority,
                attempts: entry.attempts,
                queued_at: entry.queued_at,
                claimed_at: now,
                owner: self.owner().to_owned(),
                lease_expires: now + self.config().lease,
            };
            let claimed = KeyRecord {
                queued: None,
                run: Some(run),
                ..record.clone()
            };
            claimed_entry = Some(entry.clone());
            Ok(Write::Put(claimed.clone(), Some((claimed, None, entry))))
        };
        let seen = Read::Found(candidate.record.clone(), candidate.generation);
        let landed = match self
            .write_pinned(key, "claim", OnError::LookFirst, seen, decide)
            .await
        {
            Ok(landed) => landed,
            // Other processes kept changing it: skip it, as one that another process claimed.
            Err(QueueError::Contention { .. }) => return Ok(None),
            Err(e) => return Err(e),
        };
        // A claim put now has the generation it landed at; one found has its own.
        Ok(landed.value.map(|(record, found, entry)| {
            let generation = found
                .or(landed.stored)
                .expect("a claim's record has a generation");
            (record, generation, entry)
        }))
    }
}
