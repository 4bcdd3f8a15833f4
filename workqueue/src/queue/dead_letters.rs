//! Dead letters: keys that failed too often, kept in their key's record until they are
//! re-enqueued and complete.

use super::{Queue, QueueError};
use crate::entry::DeadLetter;

impl Queue {
    /// Every dead-lettered key (a full listing).
    pub async fn dead_letters(&self) -> Result<Vec<DeadLetter>, QueueError> {
        Ok(self.snapshot().await?.dead)
    }

    /// Enqueues every dead-lettered key that is not queued or running again already with a
    /// fresh attempt count; returns how many. Each dead letter is removed when its key next
    /// completes.
    pub async fn reenqueue_dead_letters(&self) -> Result<usize, QueueError> {
        let snapshot = self.snapshot().await?;
        let mut count = 0;
        for letter in &snapshot.dead {
            let queued = snapshot.queued.iter().any(|q| q.record.key == letter.key);
            let running = snapshot
                .in_progress
                .iter()
                .any(|r| r.record.key == letter.key);
            if !queued && !running {
                self.enqueue_with(&letter.key, letter.priority, None)
                    .await?;
                count += 1;
            }
        }
        Ok(count)
    }
}
