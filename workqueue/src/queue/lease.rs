//! A claim's lease: one heartbeat per run renews it every third of its length, pinned to the
//! generation of the key's record the run last wrote or read.
//!
//! The protocol: a renewal is a pinned replace of the record with a later lease expiry. If it
//! fails its precondition, something else wrote the record: a twin enqueued beside the run
//! (the run is still ours: renew over the newer record) or another dispatcher that found the
//! lease lapsed and took the key over (the run is lost: stop it, and never write for the key
//! again). Other failures are tried again until the lease is about to lapse; then the run is
//! stopped a margin before any other process may take the key over, so two runs of one key
//! never overlap.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio_util::sync::CancellationToken;
use tracing::{error, warn};

use super::{Queue, Read, key_name, lease_margin};
use crate::entry::{InProgressEntry, KeyRecord};
use crate::storage::{Generation, PutMode};

/// What this process knows of its key's record: the generation its writes are pinned to and
/// the record at that generation (a twin may have joined the run), and whether the heartbeat
/// found the run taken over.
#[derive(Clone, Debug)]
pub(super) struct Held {
    pub(super) generation: Generation,
    pub(super) record: KeyRecord,
    pub(super) lost: bool,
}

/// Renews the lease every third of its length. When the claim is lost, or when no renewal
/// lands before the lease is about to lapse, it fires the claim's token so the run stops
/// before another dispatcher may take the key over.
pub(super) async fn heartbeat(
    queue: Queue,
    run: InProgressEntry,
    held: Arc<Mutex<Held>>,
    token: CancellationToken,
    stop: CancellationToken,
) {
    let lease = queue.config().lease;
    let every = lease / 3;
    let name = key_name(&run.key);
    let mut lease_expires = run.lease_expires;
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(every) => {}
        }
        let give_up_at = lease_expires - lease_margin(lease);
        loop {
            let left = give_up_at.duration_since(queue.now()).unwrap_or_default();
            if left.is_zero() {
                error!(key = %run.key, "could not renew the lease in time; stopping the run");
                token.cancel();
                return;
            }
            let Held {
                generation,
                mut record,
                ..
            } = held.lock().unwrap_or_else(|p| p.into_inner()).clone();
            let renewed_until = queue.now() + lease;
            if let Some(r) = record.run.as_mut() {
                r.lease_expires = renewed_until;
            }
            let metadata = record.to_metadata();
            let since = queue.view_seq();
            let put = queue
                .storage()
                .put(&name, &metadata, PutMode::Replace(generation));
            match tokio::time::timeout(left, put).await {
                Ok(Ok(next)) => {
                    queue.observe(&name, Some((record.clone(), next)), since);
                    *held.lock().unwrap_or_else(|p| p.into_inner()) = Held {
                        generation: next,
                        record,
                        lost: false,
                    };
                    queue.metrics().observe_lease_age(&run, queue.now());
                    lease_expires = renewed_until;
                    break;
                }
                Ok(Err(e)) if e.is_conflict() => match queue.read(&name, &run.key, "renew").await {
                    // A twin arrived: renew over the newer record.
                    Ok(Read::Found(current, current_generation)) if current.runs(&run.id) => {
                        let mut held = held.lock().unwrap_or_else(|p| p.into_inner());
                        held.record = current;
                        held.generation = current_generation;
                    }
                    Ok(_) => {
                        warn!(key = %run.key, "lost the claim: another dispatcher took the key over");
                        held.lock().unwrap_or_else(|p| p.into_inner()).lost = true;
                        token.cancel();
                        return;
                    }
                    Err(e) => {
                        warn!(key = %run.key, error = %e, "failed to read the key's record; retrying");
                        if stopped(&stop, every).await {
                            return;
                        }
                    }
                },
                Ok(Err(e)) => {
                    warn!(key = %run.key, error = %e, "failed to renew the lease; retrying");
                    if stopped(&stop, every).await {
                        return;
                    }
                }
                // The deadline check at the top of the loop gives up.
                Err(_elapsed) => {}
            }
        }
    }
}

/// A short wait between renewal attempts; true when the heartbeat was stopped meanwhile.
async fn stopped(stop: &CancellationToken, every: Duration) -> bool {
    tokio::select! {
        _ = stop.cancelled() => true,
        _ = tokio::time::sleep((every / 10).min(Duration::from_secs(5))) => false,
    }
}
