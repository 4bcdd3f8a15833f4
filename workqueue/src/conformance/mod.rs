//! The conformance suites every storage backend runs: the seam's preconditions and listing,
//! and the queue rules on top of it (docs/architecture.md, "Queue rules"). A backend crate runs
//! them all with [`conformance_suite!`](crate::conformance_suite), given a [`Fixture`] per test.
//!
//! Time is a [`ManualClock`] (no sleeps); P, the backoff base, is [`P`].

use std::any::Any;
use std::collections::HashSet;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use tokio_util::sync::CancellationToken;

use crate::backoff::Backoff;
use crate::clock::{Clock, ManualClock, SystemClock};
use crate::dispatcher::{Dispatcher, DispatcherConfig};
use crate::entry::NotBefore;
use crate::metrics::Metrics;
use crate::queue::{Claim, Failure};
use crate::queue::{Enqueued, KeyStatus, Queue, QueueConfig, QueueError, key_name};
use crate::storage::{
    CountingStorage, DirStorage, FaultyStorage, Landed, MemoryStorage, Metadata, Operation,
    PutMode, Storage, StorageError, list_all,
};
use reconciler::{Action, ReconcileError, Reconciler};

/// The test backoff base.
pub const P: Duration = Duration::from_secs(10);
/// The test backoff cap.
pub const P_MAX: Duration = Duration::from_secs(40);
/// The test lease.
const LEASE: Duration = Duration::from_secs(60);

type Reopen = Box<dyn Fn() -> Pin<Box<dyn Future<Output = Arc<dyn Storage>> + Send>> + Send + Sync>;

/// A fresh, empty backend for one test.
pub struct Fixture {
    /// The store under test.
    pub storage: Arc<dyn Storage>,
    /// Opens a second instance on the same data, for durable backends.
    pub reopen: Option<Reopen>,
    _guard: Box<dyn Any + Send + Sync>,
}

impl Fixture {
    /// A fixture for any store; `reopen` when it is durable, `guard` kept alive as long.
    pub fn new(
        storage: Arc<dyn Storage>,
        reopen: Option<Reopen>,
        guard: Box<dyn Any + Send + Sync>,
    ) -> Self {
        Self {
            storage,
            reopen,
            _guard: guard,
        }
    }

    /// `memory://`.
    pub fn memory() -> Self {
        Self::new(Arc::new(MemoryStorage::new()), None, Box::new(()))
    }

    /// `file://` in a fresh temporary directory.
    pub async fn dir() -> Self {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let path = dir.path().to_owned();
        let storage = DirStorage::open(path.clone())
            .await
            .expect("open the directory store");
        let reopen: Reopen = Box::new(move || {
            let path = path.clone();
            Box::pin(async move {
                Arc::new(DirStorage::open(path).await.expect("reopen")) as Arc<dyn Storage>
            })
        });
        Self::new(Arc::new(storage), Some(reopen), Box::new(dir))
    }
}

/// Generates one `#[tokio::test]` per conformance case, each on a fresh fixture from
/// `$fixture` (an expression evaluating to a future of [`Fixture`]); `durable $fixture` adds
/// the cases of a store that outlives its process (the fixture must be reopenable).
#[macro_export]
macro_rules! conformance_suite {
    (durable $fixture:expr) => {
        $crate::conformance_suite!($fixture);
        $crate::conformance_suite!(@cases $fixture;
            durable_backend_should_keep_keys_across_instances,
        );
    };
    ($fixture:expr) => {
        $crate::conformance_suite!(@cases $fixture;
            storage_create_should_refuse_an_existing_name,
            storage_pinned_writes_should_refuse_a_stale_generation,
            storage_generations_should_never_be_reused,
            storage_list_should_page_in_name_order_within_the_prefix,
            queue_should_run_equal_priorities_first_in_first_out,
            queue_should_expose_only_the_first_n_beyond_the_concurrency_limit,
            queue_should_dedup_a_repeated_key,
            queue_should_order_by_priority_then_age,
            claim_token_should_stay_live_until_complete,
            plain_requeue_should_be_immediate,
            enqueue_while_in_progress_should_leave_a_twin_that_runs_after,
            failures_should_back_off_p_then_2p_capped,
            not_before_should_hide_a_key_until_due,
            floors_should_hold_against_plain_enqueues,
            floor_should_replace_a_plain_twin,
            backoff_should_keep_attempts_until_the_dead_letter,
            dead_letter_should_be_reenqueued_and_cleared_on_completion,
            reenqueue_should_skip_dead_letters_queued_or_running,
            dead_letter_listing_should_cost_only_keys_that_dead_letter,
            key_state_should_report_each_state,
            any_key_should_round_trip,
            unreadable_record_should_be_replaced_by_an_enqueue,
            orphans_should_be_recovered_with_their_attempts,
            lost_claim_should_refuse_to_complete,
            lost_claim_should_cancel_its_token,
            release_should_keep_attempts,
            claim_should_run_a_key_whose_write_landed_but_failed,
            claim_should_keep_a_key_whose_write_failed,
            dead_letter_should_keep_a_waiting_twin,
            lapsed_claim_should_settle_while_no_one_took_it_over,
            failing_renewals_should_cancel_the_run,
            capacity_should_hold_the_limit_across_processes,
            revoked_capacity_should_stop_runs_that_can_still_hand_back,
            failed_listing_should_dispatch_from_the_view,
            dispatchers_should_hold_the_global_limit_and_never_overlap_a_key
        );
    };
    (@cases $fixture:expr; $($case:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn $case() {
                $crate::conformance::$case($fixture.await).await;
            }
        )*
    };
}

mod dispatch;
mod emulator;
mod order;
mod recovery;
mod storage;
mod timing;

pub use dispatch::*;
pub use emulator::Emulator;
pub use order::*;
pub use recovery::*;
pub use storage::*;
pub use timing::*;

fn t0() -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(1_800_000_000)
}

fn config(max_retry: u32) -> QueueConfig {
    QueueConfig {
        lease: LEASE,
        max_retry,
        backoff: Backoff {
            base: P,
            max: P_MAX,
        },
    }
}

struct Harness {
    queue: Queue,
    clock: Arc<ManualClock>,
    storage: Arc<dyn Storage>,
}

impl Harness {
    fn new(storage: Arc<dyn Storage>, max_retry: u32) -> Self {
        let clock = Arc::new(ManualClock::new(t0()));
        let queue = Queue::with_parts(
            storage.clone(),
            config(max_retry),
            clock.clone(),
            Metrics::new(),
        );
        Self {
            queue,
            clock,
            storage,
        }
    }

    /// Another dispatcher on the same storage and clock.
    fn peer(&self) -> Queue {
        Queue::with_parts(
            self.storage.clone(),
            *self.queue.config(),
            self.clock.clone(),
            Metrics::new(),
        )
    }

    async fn enqueue(&self, key: &str, priority: i64) -> Enqueued {
        let result = self
            .queue
            .enqueue(key, priority, Duration::ZERO)
            .await
            .expect("enqueue");
        // Distinct enqueue times make age order observable.
        self.clock.advance(Duration::from_millis(1));
        result
    }

    async fn start(&self, n: usize) -> Vec<Claim> {
        self.queue.start(n, n).await.expect("start").claims
    }

    async fn start_one(&self) -> Option<Claim> {
        let mut claims = self.start(1).await;
        assert!(claims.len() <= 1);
        claims.pop()
    }

    async fn run_all(&self) -> Vec<String> {
        let mut order = Vec::new();
        while let Some(claim) = self.start_one().await {
            order.push(claim.key().to_owned());
            claim.complete().await.expect("complete");
        }
        order
    }

    /// The keys listed under `dead-letter/`, as `gsutil ls` would show them, read back from
    /// each entry's metadata.
    async fn listed_dead_letters(&self) -> Vec<String> {
        let listed = list_all(self.storage.as_ref(), "dead-letter/")
            .await
            .expect("list dead-letter/");
        let mut keys: Vec<String> = listed
            .iter()
            .map(|object| {
                let record = crate::entry::KeyRecord::from_object(object).expect("a dead letter");
                let dead = record.dead.expect("the entry holds the dead letter");
                assert_eq!(
                    object.name,
                    format!("dead-letter/{}", dead.key.replace('/', "%2F"))
                );
                dead.key
            })
            .collect();
        keys.sort();
        keys
    }

    async fn status(&self, key: &str) -> Option<KeyStatus> {
        self.queue
            .state(key)
            .await
            .expect("state")
            .map(|s| s.status)
    }

    async fn not_before(&self, key: &str) -> Option<SystemTime> {
        self.queue
            .state(key)
            .await
            .expect("state")
            .and_then(|s| s.not_before)
    }
}

fn keys(claims: &[Claim]) -> Vec<&str> {
    claims.iter().map(Claim::key).collect()
}

fn meta(value: &str) -> Metadata {
    Metadata::from([("v".to_owned(), value.to_owned())])
}

#[cfg(test)]
mod memory {
    crate::conformance_suite!(async { super::Fixture::memory() });
}

#[cfg(test)]
mod dir {
    crate::conformance_suite!(durable super::Fixture::dir());
}

#[cfg(test)]
mod gcs {
    crate::conformance_suite!(durable super::Fixture::gcs_emulator());
}
