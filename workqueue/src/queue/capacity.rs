//! Capacity slots: the global concurrency limit as leased objects `slot/<n>`, `n` below the
//! limit. A process runs a key only while it holds a slot for it, and no two processes hold
//! one slot, so no more keys run at once than there are slots, across every process and
//! region sharing the storage.
//!
//! # The protocol
//! * **A slot** is an empty object whose metadata names its owner and its lease expiry. It is
//!   taken by a create (no object yet) or by a replace pinned to the generation listed, when
//!   the listed lease has lapsed: of several processes trying, exactly one write lands.
//! * **Holding** a slot means this process's last write to it landed and its lease has not
//!   lapsed. Each held slot lends one [`Permit`] at a time to a run; dropping the permit
//!   frees the slot for the next run of this process, at no storage cost.
//! * **Renewal**: one heartbeat per process rewrites every held slot every third of the
//!   lease, each write pinned to the generation this process wrote. A renewal that meets a
//!   newer generation means another process took the slot over (this one was too slow): every
//!   permit is **revoked** (the runs under them stop) and the slots are forgotten. A renewal
//!   that cannot land before the earliest held lease is a tenth from lapsing revokes too, so
//!   runs always stop before another process may take their slots.
//! * **Giving back**: a slot no run used since the last beat is deleted (pinned), and a
//!   process whose pass finds nothing due gives back what it does not use after a grace; at
//!   shutdown every slot goes. A process that dies gives nothing back: its slots lapse and are
//!   taken over.
//! * **Acquiring** lists `slot/` (a page per thousand slots) only when the slots held cannot
//!   serve the runs wanted, starting at a random index so processes acquiring at once rarely
//!   race for one slot; after finding none free it waits [`STARVED_RETRY`] before listing
//!   again.
//!
//! A steady stream of keys thus costs no slot writes beyond the renewals; writes happen when
//! the demand of a process changes.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, SystemTime};

use tokio_util::sync::CancellationToken;
use tracing::{error, warn};

use super::{QueueError, SLOTS, lease_margin};
use crate::clock::{Clock, from_millis, to_millis};
use crate::storage::{Generation, Metadata, PutMode, Storage, StorageError, list_all};

/// After finding every slot taken, a process looks again no sooner than this.
const STARVED_RETRY: Duration = Duration::from_secs(2);

const OWNER: &str = "owner";
const LEASE_EXPIRATION: &str = "lease-expiration";

/// The slots one process holds, and how many of them its runs use.
pub(crate) struct Capacity {
    storage: Arc<dyn Storage>,
    clock: Arc<dyn Clock>,
    owner: String,
    lease: Duration,
    state: Mutex<Slots>,
    /// One acquisition (a listing and a few creates) at a time.
    acquiring: tokio::sync::Mutex<()>,
    /// One renewal or give-back at a time, so no two writes race on one slot. Each renewal
    /// is bounded by the leases it keeps, so this is never held past them.
    writing: tokio::sync::Mutex<()>,
}

impl std::fmt::Debug for Capacity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Capacity")
            .field("state", &self.state)
            .finish_non_exhaustive()
    }
}

#[derive(Debug)]
struct Slots {
    held: BTreeMap<u32, Held>,
    /// Slots in use by runs.
    busy: usize,
    /// The most slots in use at once since the last heartbeat.
    peak: usize,
    /// Fires when the slots were lost: every run under them must stop.
    revoked: CancellationToken,
    heartbeat: bool,
    starved_until: Option<SystemTime>,
    /// When a permit was last handed out.
    last_used: Option<SystemTime>,
    /// Set when every slot is being given back at shutdown: renewals stop writing. Never
    /// reset: a process gives all its slots back only as it stops.
    closing: bool,
}

#[derive(Clone, Copy, Debug)]
struct Held {
    generation: Generation,
    lease_expires: SystemTime,
}

/// One slot's worth of capacity, held by a run; dropping it frees the slot for the next run.
#[derive(Debug)]
pub(crate) struct Permit {
    capacity: Arc<Capacity>,
    revoked: CancellationToken,
}

impl Permit {
    /// Fires when this process lost its slots: the run must stop.
    pub(crate) fn revoked(&self) -> &CancellationToken {
        &self.revoked
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        let mut slots = self.capacity.slots();
        slots.busy = slots.busy.saturating_sub(1);
    }
}

impl Capacity {
    pub(crate) fn new(
        storage: Arc<dyn Storage>,
        clock: Arc<dyn Clock>,
        owner: String,
        lease: Duration,
    ) -> Self {
        Self {
            storage,
            clock,
            owner,
            lease,
            state: Mutex::new(Slots {
                held: BTreeMap::new(),
                busy: 0,
                peak: 0,
                revoked: CancellationToken::new(),
                heartbeat: false,
                starved_until: None,
                last_used: None,
                closing: false,
            }),
            acquiring: tokio::sync::Mutex::new(()),
            writing: tokio::sync::Mutex::new(()),
        }
    }

    fn slots(&self) -> std::sync::MutexGuard<'_, Slots> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// How many slots this process holds.
    #[cfg(test)]
    pub(crate) fn held(&self) -> usize {
        self.slots().held.len()
    }

    /// How many more runs this process could start now without acquiring a slot.
    #[cfg(test)]
    pub(crate) fn free(&self, limit: usize) -> usize {
        let slots = self.slots();
        slots.held.len().min(limit).saturating_sub(slots.busy)
    }

    /// Up to `want` permits under a global limit of `limit` slots: free slots this process
    /// holds first, then slots acquired from storage. Trouble acquiring more is logged, and
    /// the slots already held still serve.
    pub(crate) async fn reserve(self: &Arc<Self>, want: usize, limit: usize) -> Vec<Permit> {
        if want == 0 {
            return Vec::new();
        }
        {
            let _writing = self.writing.lock().await;
            self.renew(false).await;
        }
        let free = |slots: &Slots| slots.held.len().min(limit).saturating_sub(slots.busy);
        let needs_more = |slots: &Slots, now| {
            free(slots) < want
                && slots.held.len() < limit
                && slots.starved_until.is_none_or(|until| now >= until)
        };
        if needs_more(&self.slots(), self.clock.now()) {
            let _acquiring = self.acquiring.lock().await;
            let now = self.clock.now();
            let short = {
                let slots = self.slots();
                needs_more(&slots, now).then(|| want - free(&slots))
            };
            if let Some(short) = short {
                let got = self.acquire(short, limit, now).await.unwrap_or_else(|e| {
                    warn!(error = %crate::error_chain(&e), "failed to acquire capacity slots");
                    0
                });
                self.slots().starved_until = (got < short).then(|| now + STARVED_RETRY);
            }
        }
        let mut slots = self.slots();
        if !slots.held.is_empty() && !slots.heartbeat {
            slots.heartbeat = true;
            tokio::spawn(heartbeat(Arc::downgrade(self), self.lease));
        }
        let n = want.min(free(&slots));
        if n > 0 {
            slots.last_used = Some(self.clock.now());
        }
        slots.busy += n;
        slots.peak = slots.peak.max(slots.busy);
        let revoked = slots.revoked.clone();
        drop(slots);
        (0..n)
            .map(|_| Permit {
                capacity: self.clone(),
                revoked: revoked.clone(),
            })
            .collect()
    }

    /// Takes up to `n` slots below `limit` that no live process holds: absent ones are
    /// created, lapsed ones (and this process's own, forgotten when its slots were revoked)
    /// taken over with a pinned replace. Returns how many it took.
    async fn acquire(&self, n: usize, limit: usize, now: SystemTime) -> Result<usize, QueueError> {
        let listed = list_all(self.storage.as_ref(), SLOTS)
            .await
            .map_err(|e| QueueError::storage("list", SLOTS, e))?;
        let mut existing = HashMap::new();
        for object in listed {
            let Some(index) = slot_index(&object.name) else {
                continue;
            };
            let lease = object
                .metadata
                .get(LEASE_EXPIRATION)
                .and_then(|v| v.parse().ok())
                .map(from_millis);
            let ours = object.metadata.get(OWNER) == Some(&self.owner);
            if lease.is_none() {
                warn!(object = %object.name, "a capacity slot is unreadable; counting it as held");
            }
            existing.insert(index, (object.generation, lease, ours));
        }
        let mine: Vec<u32> = self.slots().held.keys().copied().collect();
        let limit = u32::try_from(limit).unwrap_or(u32::MAX);
        // Start at a random slot, so processes looking at once rarely race for the same one.
        let start = rand::random_range(0..limit.max(1));
        let mut got = 0;
        for offset in 0..limit {
            if got == n {
                break;
            }
            let index = (start + offset) % limit;
            if mine.contains(&index) {
                continue;
            }
            let mode = match existing.get(&index) {
                None => PutMode::Create,
                Some((generation, Some(lease), ours)) if *lease <= now || *ours => {
                    PutMode::Replace(*generation)
                }
                Some(_) => continue,
            };
            let lease_expires = now + self.lease;
            let (name, metadata) = (slot_name(index), self.slot_metadata(lease_expires));
            match self.storage.put(&name, &metadata, mode).await {
                Ok(generation) => {
                    self.slots().held.insert(
                        index,
                        Held {
                            generation,
                            lease_expires,
                        },
                    );
                    got += 1;
                }
                Err(e) if e.is_conflict() => {}
                Err(e) if got == 0 => return Err(QueueError::storage("acquire", &name, e)),
                Err(e) => {
                    warn!(error = %e, "failed to acquire a capacity slot");
                    break;
                }
            }
        }
        Ok(got)
    }

    /// Renews the held slots (all of them, or those renewed more than a third of a lease ago);
    /// the caller holds `writing`. Every write is bounded by the earliest lease it must keep,
    /// less a margin: a slot taken over, or leases that could not be renewed in time, revoke
    /// the slots, so the runs under them stop before anyone else may use them. Returns whether
    /// every renewal landed.
    async fn renew(&self, all: bool) -> bool {
        let started = self.clock.now();
        let due: Vec<(u32, Held)> = self
            .slots()
            .held
            .iter()
            .filter(|(_, h)| all || h.lease_expires < started + self.lease * 2 / 3)
            .map(|(i, h)| (*i, *h))
            .collect();
        let mut landed = true;
        // Slots are given back only under `writing`, which the caller holds: every slot due
        // stays held while this runs (unless a revocation here ends it).
        for (index, held) in due {
            // Every slot is being given back (shutdown): nothing more to renew.
            if self.slots().closing {
                return landed;
            }
            let earliest = self.slots().held.values().map(|h| h.lease_expires).min();
            let deadline = earliest.unwrap_or(held.lease_expires) - lease_margin(self.lease);
            let now = self.clock.now();
            let left = deadline.duration_since(now).unwrap_or_default();
            if left.is_zero() {
                error!("could not renew the capacity slots in time; stopping every run");
                self.revoke();
                return false;
            }
            let lease_expires = now + self.lease;
            let (name, metadata) = (slot_name(index), self.slot_metadata(lease_expires));
            let put = self
                .storage
                .put(&name, &metadata, PutMode::Replace(held.generation));
            match tokio::time::timeout(left, put).await {
                Ok(Ok(generation)) => {
                    if let Some(h) = self.slots().held.get_mut(&index) {
                        *h = Held {
                            generation,
                            lease_expires,
                        };
                    }
                }
                // Given back under this renewal at shutdown: nothing is wrong.
                Ok(Err(e)) if e.is_conflict() && self.slots().closing => return false,
                Ok(Err(e)) if e.is_conflict() => {
                    error!(
                        slot = index,
                        "a capacity slot was taken over; stopping every run"
                    );
                    self.revoke();
                    return false;
                }
                Ok(Err(e)) => {
                    warn!(slot = index, error = %e, "failed to renew a capacity slot");
                    landed = false;
                }
                Err(_elapsed) => {
                    error!("could not renew the capacity slots in time; stopping every run");
                    self.revoke();
                    return false;
                }
            }
        }
        landed
    }

    /// Gives back the slots no run used since the last beat, renews the rest, and says
    /// whether the heartbeat should go on, and how soon.
    async fn beat(&self) -> Option<Duration> {
        let writing = self.writing.lock().await;
        let idle: Vec<(u32, Held)> = {
            let mut slots = self.slots();
            let keep = slots.busy.max(slots.peak);
            slots.peak = slots.busy;
            let surplus = slots.held.len().saturating_sub(keep);
            let idle: Vec<u32> = slots.held.keys().rev().take(surplus).copied().collect();
            idle.into_iter()
                .filter_map(|i| slots.held.remove(&i).map(|h| (i, h)))
                .collect()
        };
        let landed = self.renew(true).await;
        // The idle slots are out of `held` already and their deletes are pinned: giving them
        // back must not hold up the next renewal.
        drop(writing);
        self.delete(idle).await;
        let mut slots = self.slots();
        if slots.held.is_empty() {
            slots.heartbeat = false;
            return None;
        }
        Some(if landed {
            self.lease / 3
        } else {
            self.lease / 20
        })
    }

    /// Gives back the slots no run uses, once none was handed out for `grace` (a pass found
    /// nothing due): other processes may need them. A steady stream of keys keeps them.
    pub(crate) async fn trim(&self, grace: Duration) {
        // Not while a renewal is writing: it would find a slot it is renewing deleted under
        // it and stop every run. A later pass trims instead of this one waiting.
        let Ok(writing) = self.writing.try_lock() else {
            return;
        };
        let idle: Vec<(u32, Held)> = {
            let mut slots = self.slots();
            let quiet = slots
                .last_used
                .is_none_or(|at| at + grace <= self.clock.now());
            let surplus = slots.held.len().saturating_sub(slots.busy);
            if !quiet || surplus == 0 {
                return;
            }
            slots.peak = slots.busy;
            let idle: Vec<u32> = slots.held.keys().rev().take(surplus).copied().collect();
            idle.into_iter()
                .filter_map(|i| slots.held.remove(&i).map(|h| (i, h)))
                .collect()
        };
        drop(writing);
        self.delete(idle).await;
    }

    /// Gives back every slot at shutdown, all at once, until `deadline`; returns how many
    /// were not given back by then (they lapse with their lease). Not under `writing`: a
    /// renewal stuck on unreachable storage must not hold the give-back up. Renewals stop once
    /// `closing` is set; one already writing either lands first (the delete then fails its
    /// precondition and the slot lapses, counted as not given back) or second (it fails its
    /// own, quietly).
    pub(crate) async fn release_all_by(&self, deadline: tokio::time::Instant) -> usize {
        let held: Vec<(u32, Held)> = {
            let mut slots = self.slots();
            slots.closing = true;
            std::mem::take(&mut slots.held).into_iter().collect()
        };
        let total = held.len();
        let mut deletes = tokio::task::JoinSet::new();
        for (index, held) in held {
            let storage = self.storage.clone();
            deletes.spawn(async move { storage.delete(&slot_name(index), held.generation).await });
        }
        let mut given_back = 0;
        let all = async {
            while let Some(deleted) = deletes.join_next().await {
                // Gone either way; a precondition failure (a renewal that was already writing
                // landed first) leaves the slot to lapse.
                if matches!(deleted, Ok(Ok(()) | Err(StorageError::NotFound { .. }))) {
                    given_back += 1;
                }
            }
        };
        // What is not done by the deadline is dropped with the set.
        let _ = tokio::time::timeout_at(deadline, all).await;
        total - given_back
    }

    async fn delete(&self, slots: Vec<(u32, Held)>) {
        for (index, held) in slots {
            if let Err(e) = self
                .storage
                .delete(&slot_name(index), held.generation)
                .await
                && !e.is_conflict()
            {
                warn!(slot = index, error = %e, "failed to give a capacity slot back; it will lapse");
            }
        }
    }

    /// Stops the runs under the slots held and forgets the slots. They are not given back:
    /// runs stop at their next await, not at once, so the slots lapse (or this process takes
    /// them back, its stopping runs still counted).
    fn revoke(&self) {
        let mut slots = self.slots();
        slots.revoked.cancel();
        slots.revoked = CancellationToken::new();
        slots.held.clear();
    }

    fn slot_metadata(&self, lease_expires: SystemTime) -> Metadata {
        Metadata::from([
            (OWNER.to_owned(), self.owner.clone()),
            (
                LEASE_EXPIRATION.to_owned(),
                to_millis(lease_expires).to_string(),
            ),
        ])
    }
}

async fn heartbeat(capacity: Weak<Capacity>, lease: Duration) {
    let mut wait = lease / 3;
    loop {
        tokio::time::sleep(wait).await;
        let Some(capacity) = capacity.upgrade() else {
            return;
        };
        match capacity.beat().await {
            Some(next) => wait = next,
            None => return,
        }
    }
}

fn slot_name(index: u32) -> String {
    format!("{SLOTS}{index:05}")
}

fn slot_index(name: &str) -> Option<u32> {
    name.strip_prefix(SLOTS)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;
    use crate::storage::MemoryStorage;

    const LEASE: Duration = Duration::from_secs(60);

    fn capacity(
        storage: &Arc<MemoryStorage>,
        clock: &Arc<ManualClock>,
        owner: &str,
    ) -> Arc<Capacity> {
        Arc::new(Capacity::new(
            storage.clone(),
            clock.clone(),
            owner.into(),
            LEASE,
        ))
    }

    #[tokio::test]
    async fn reserve_should_share_the_limit_between_processes() {
        let storage = Arc::new(MemoryStorage::new());
        let clock = Arc::new(ManualClock::new(SystemTime::UNIX_EPOCH + LEASE * 100));
        let (a, b) = (
            capacity(&storage, &clock, "a"),
            capacity(&storage, &clock, "b"),
        );
        let held_by_a = a.reserve(2, 3).await;
        assert_eq!(held_by_a.len(), 2);
        let held_by_b = b.reserve(5, 3).await;
        assert_eq!(held_by_b.len(), 1);
        clock.advance(STARVED_RETRY);
        assert!(b.reserve(1, 3).await.is_empty(), "all three are held");
        drop(held_by_a);
        assert_eq!(a.free(3), 2, "a keeps its slots for its next runs");
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        assert_eq!(a.release_all_by(deadline).await, 0);
        clock.advance(STARVED_RETRY);
        assert_eq!(b.reserve(5, 3).await.len(), 2);
        assert_eq!(b.held(), 3);
    }

    #[tokio::test]
    async fn reserve_should_take_over_lapsed_slots_and_the_loser_revokes() {
        let storage = Arc::new(MemoryStorage::new());
        let clock = Arc::new(ManualClock::new(SystemTime::UNIX_EPOCH + LEASE * 100));
        let (a, b) = (
            capacity(&storage, &clock, "a"),
            capacity(&storage, &clock, "b"),
        );
        let permit = a.reserve(1, 1).await.pop().unwrap();
        clock.advance(LEASE);
        assert_eq!(b.reserve(1, 1).await.len(), 1);
        assert!(!permit.revoked().is_cancelled());
        assert!(a.reserve(1, 1).await.is_empty());
        assert!(permit.revoked().is_cancelled(), "a's runs must stop");
        assert_eq!(a.held(), 0);
    }

    #[tokio::test]
    async fn trim_should_give_idle_slots_back_after_the_grace_unless_a_renewal_writes() {
        let storage = Arc::new(MemoryStorage::new());
        let clock = Arc::new(ManualClock::new(SystemTime::UNIX_EPOCH + LEASE * 100));
        let a = capacity(&storage, &clock, "a");
        let mut permits = a.reserve(3, 3).await;
        permits.pop();
        a.trim(Duration::from_secs(30)).await;
        assert_eq!(a.held(), 3, "used moments ago");
        clock.advance(Duration::from_secs(30));
        let renewing = a.writing.lock().await;
        a.trim(Duration::from_secs(30)).await;
        assert_eq!(a.held(), 3, "a renewal may be writing any of them");
        drop(renewing);
        a.trim(Duration::from_secs(30)).await;
        assert_eq!(a.held(), 2, "the idle one goes, the busy ones stay");
        assert_eq!(list_all(storage.as_ref(), SLOTS).await.unwrap().len(), 2);
        assert!(a.renew(true).await, "every renewal lands");
        assert!(!permits[0].revoked().is_cancelled());
    }
}
