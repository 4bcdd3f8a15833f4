//! The conformance suites every storage backend runs: the seam's preconditions and listing,
//! and the queue rules of DESIGN §3 on top of it. A backend crate runs them all with
//! [`conformance_suite!`](crate::conformance_suite), given a [`Fixture`] per test.
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
use crate::claim::{Claim, Failure};
use crate::clock::{ManualClock, SystemClock};
use crate::dispatcher::{Dispatcher, DispatcherConfig};
use crate::entry::NotBefore;
use crate::metrics::Metrics;
use crate::queue::{Enqueued, KeyStatus, Queue, QueueConfig, QueueError};
use crate::reconciler::{Action, ReconcileError, Reconciler};
use crate::storage::{
    DirStorage, MemoryStorage, Metadata, PutMode, Storage, StorageError, list_all,
};

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
/// `$fixture` (an expression evaluating to a future of [`Fixture`]).
#[macro_export]
macro_rules! conformance_suite {
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
            key_state_should_report_each_state,
            any_key_should_round_trip,
            orphans_should_be_recovered_with_their_attempts,
            lost_claim_should_refuse_to_complete,
            lost_claim_should_cancel_its_token,
            release_should_keep_attempts,
            durable_backend_should_keep_keys_across_instances,
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
        self.queue.start(n, n).await.expect("start")
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

/// Creating a name that exists fails with a precondition error.
pub async fn storage_create_should_refuse_an_existing_name(f: Fixture) {
    let s = f.storage;
    s.put("a/b", &meta("1"), PutMode::Create)
        .await
        .expect("create");
    let err = s.put("a/b", &meta("2"), PutMode::Create).await.unwrap_err();
    assert!(matches!(err, StorageError::Precondition { .. }), "{err:?}");
    assert_eq!(s.get("a/b").await.unwrap().unwrap().metadata, meta("1"));
}

/// Replace and delete take effect only at the current generation.
pub async fn storage_pinned_writes_should_refuse_a_stale_generation(f: Fixture) {
    let s = f.storage;
    let g1 = s.put("x/k", &meta("1"), PutMode::Create).await.unwrap();
    let g2 = s
        .put("x/k", &meta("2"), PutMode::Replace(g1))
        .await
        .unwrap();
    assert_ne!(g1, g2);
    assert!(
        s.put("x/k", &meta("3"), PutMode::Replace(g1))
            .await
            .unwrap_err()
            .is_conflict()
    );
    assert!(matches!(
        s.delete("x/k", g1).await.unwrap_err(),
        StorageError::Precondition { .. }
    ));
    let object = s.get("x/k").await.unwrap().unwrap();
    assert_eq!((object.generation, object.metadata), (g2, meta("2")));
    s.delete("x/k", g2).await.unwrap();
    assert!(s.get("x/k").await.unwrap().is_none());
    assert!(matches!(
        s.delete("x/k", g2).await.unwrap_err(),
        StorageError::NotFound { .. }
    ));
    assert!(
        s.put("x/k", &meta("4"), PutMode::Replace(g2))
            .await
            .unwrap_err()
            .is_conflict()
    );
}

/// A re-created object never gets an old generation back, so stale pinned writes stay stale.
pub async fn storage_generations_should_never_be_reused(f: Fixture) {
    let s = f.storage;
    let mut seen = HashSet::new();
    for _ in 0..20 {
        let g = s.put("y/k", &meta("v"), PutMode::Create).await.unwrap();
        assert!(seen.insert(g), "generation {g:?} reused");
        s.delete("y/k", g).await.unwrap();
    }
}

/// Listing returns exactly the prefix's objects, in name order, page by page.
pub async fn storage_list_should_page_in_name_order_within_the_prefix(f: Fixture) {
    let s = f.storage;
    let names = ["p/c", "p/a", "p/b%20x", "p/é", "p/d/e", "q/a", "pa"];
    for name in names {
        s.put(name, &meta(name), PutMode::Create).await.unwrap();
    }
    let mut listed = Vec::new();
    let mut token = None;
    let mut pages = 0;
    loop {
        let page = s.list("p/", token.as_deref(), 2).await.unwrap();
        assert!(page.objects.len() <= 2);
        pages += 1;
        for object in page.objects {
            assert_eq!(object.metadata, meta(&object.name));
            listed.push(object.name);
        }
        match page.next_page_token {
            Some(next) => token = Some(next),
            None => break,
        }
    }
    assert_eq!(listed, ["p/a", "p/b%20x", "p/c", "p/d/e", "p/é"]);
    assert!(pages >= 3);
    assert_eq!(list_all(s.as_ref(), "p/d").await.unwrap().len(), 1);
    assert!(list_all(s.as_ref(), "none/").await.unwrap().is_empty());
}

/// Keys of equal priority run in the order they were enqueued.
pub async fn queue_should_run_equal_priorities_first_in_first_out(f: Fixture) {
    let h = Harness::new(f.storage, 0);
    for key in ["c", "a", "b", "e", "d"] {
        h.enqueue(key, 0).await;
    }
    assert_eq!(h.run_all().await, ["c", "a", "b", "e", "d"]);
}

/// With more keys than the concurrency limit, a pass exposes only the first N.
pub async fn queue_should_expose_only_the_first_n_beyond_the_concurrency_limit(f: Fixture) {
    let h = Harness::new(f.storage, 0);
    for i in 0..10 {
        h.enqueue(&format!("k{i}"), 0).await;
    }
    let first = h.queue.start(3, 10).await.unwrap();
    assert_eq!(keys(&first), ["k0", "k1", "k2"]);
    assert!(
        h.queue.start(3, 10).await.unwrap().is_empty(),
        "the limit is taken"
    );
    let snapshot = h.queue.snapshot().await.unwrap();
    assert_eq!((snapshot.in_progress.len(), snapshot.due().len()), (3, 7));
    first.into_iter().next().unwrap().complete().await.unwrap();
    assert_eq!(keys(&h.queue.start(3, 10).await.unwrap()), ["k3"]);
}

/// A key enqueued twice is queued and run once.
pub async fn queue_should_dedup_a_repeated_key(f: Fixture) {
    let h = Harness::new(f.storage, 0);
    assert_eq!(h.enqueue("k", 0).await, Enqueued::Added);
    assert_eq!(h.enqueue("k", 0).await, Enqueued::Unchanged);
    assert_eq!(h.enqueue("k", 5).await, Enqueued::Merged);
    assert_eq!(h.queue.snapshot().await.unwrap().queued.len(), 1);
    assert_eq!(h.queue.state("k").await.unwrap().unwrap().priority, 5);
    assert_eq!(h.run_all().await, ["k"]);
}

/// Higher priority first; among equals, the older first.
pub async fn queue_should_order_by_priority_then_age(f: Fixture) {
    let h = Harness::new(f.storage, 0);
    h.enqueue("low-old", 1).await;
    h.enqueue("high-old", 5).await;
    h.enqueue("high-new", 5).await;
    h.enqueue("low-new", 1).await;
    h.enqueue("negative", -7).await;
    // A merge raises priority but keeps the entry's age.
    h.enqueue("low-old", 5).await;
    assert_eq!(
        h.run_all().await,
        ["low-old", "high-old", "high-new", "low-new", "negative"]
    );
}

/// A claim's cancellation token is live while the claim runs and fires once it completes.
pub async fn claim_token_should_stay_live_until_complete(f: Fixture) {
    let h = Harness::new(f.storage, 0);
    h.enqueue("k", 0).await;
    let claim = h.start_one().await.expect("claimed");
    let token = claim.cancelled();
    assert!(!token.is_cancelled());
    tokio::task::yield_now().await;
    assert!(!token.is_cancelled());
    claim.complete().await.unwrap();
    assert!(token.is_cancelled());
    assert_eq!(h.status("k").await, None);
}

/// A requeue without a delay makes the key due at once.
pub async fn plain_requeue_should_be_immediate(f: Fixture) {
    let h = Harness::new(f.storage, 0);
    h.enqueue("k", 3).await;
    let claim = h.start_one().await.unwrap();
    claim.requeue_after(Duration::ZERO).await.unwrap();
    let again = h.start_one().await.expect("due at once");
    assert_eq!(
        (again.key(), again.priority(), again.attempts()),
        ("k", 3, 0)
    );
}

/// Enqueueing a running key leaves a queued twin, which runs after the current run.
pub async fn enqueue_while_in_progress_should_leave_a_twin_that_runs_after(f: Fixture) {
    let h = Harness::new(f.storage, 0);
    h.enqueue("k", 0).await;
    let running = h.start_one().await.unwrap();
    assert_eq!(h.enqueue("k", 2).await, Enqueued::Added);
    assert_eq!(h.status("k").await, Some(KeyStatus::InProgress));
    let snapshot = h.queue.snapshot().await.unwrap();
    assert_eq!((snapshot.in_progress.len(), snapshot.queued.len()), (1, 1));
    assert!(
        h.start(5).await.is_empty(),
        "the twin must wait for the run"
    );
    running.complete().await.unwrap();
    assert_eq!(h.status("k").await, Some(KeyStatus::Queued));
    let twin = h.start_one().await.expect("the twin runs after");
    assert_eq!((twin.key(), twin.priority()), ("k", 2));
    twin.complete().await.unwrap();
    assert_eq!(h.status("k").await, None);
}

/// Failed runs back off P, then 2P, ... up to the cap, each with less than half again of
/// jitter.
pub async fn failures_should_back_off_p_then_2p_capped(f: Fixture) {
    let h = Harness::new(f.storage, 0);
    h.enqueue("k", 0).await;
    for (attempt, base) in [(1, P), (2, 2 * P), (3, 4 * P), (4, P_MAX), (5, P_MAX)] {
        let claim = h.start_one().await.expect("due");
        assert_eq!(claim.attempts(), attempt - 1);
        let now = h.clock.now_for_test();
        let Failure::Retrying { at } = claim.fail("boom").await.unwrap() else {
            panic!("no dead letter")
        };
        let delay = at.duration_since(now).unwrap();
        assert!(
            delay >= base && delay < base + base / 2,
            "attempt {attempt}: {delay:?}"
        );
        assert_eq!(h.not_before("k").await, Some(at));
        assert!(h.start_one().await.is_none(), "not due during the backoff");
        h.clock.advance(delay);
    }
}

/// A not-before hides a key until due; of two plain not-befores the earlier wins, and a later
/// one cannot push the due time back.
pub async fn not_before_should_hide_a_key_until_due(f: Fixture) {
    let h = Harness::new(f.storage, 0);
    let now = h.clock.now_for_test();
    h.queue
        .enqueue("k", 0, Duration::from_secs(60))
        .await
        .unwrap();
    h.queue
        .enqueue("k", 0, Duration::from_secs(30))
        .await
        .unwrap();
    h.queue
        .enqueue("k", 0, Duration::from_secs(90))
        .await
        .unwrap();
    assert_eq!(h.not_before("k").await, Some(now + Duration::from_secs(30)));
    assert!(h.start_one().await.is_none());
    let snapshot = h.queue.snapshot().await.unwrap();
    assert_eq!(
        (snapshot.waiting(), snapshot.next_due_at()),
        (1, Some(now + Duration::from_secs(30)))
    );
    h.clock.advance(Duration::from_secs(29));
    assert!(h.start_one().await.is_none());
    h.clock.advance(Duration::from_secs(1));
    assert_eq!(h.start_one().await.expect("due").key(), "k");
}

/// Floors: a requeue with a floor and an enqueue with a floor hold against plain enqueues; a
/// later floor extends it; a floor replaces a plain not-before; a plain requeue clears it.
pub async fn floors_should_hold_against_plain_enqueues(f: Fixture) {
    let h = Harness::new(f.storage, 0);
    let s = Duration::from_secs;
    // Requeue with a floor, then a plain enqueue: still not due.
    h.enqueue("a", 0).await;
    let start = h.clock.now_for_test();
    h.start_one()
        .await
        .unwrap()
        .requeue_floor(s(60))
        .await
        .unwrap();
    h.enqueue("a", 0).await;
    assert_eq!(h.not_before("a").await, Some(start + s(60)));
    // Enqueue with a floor; a later floor extends it; a plain delay cannot shorten it.
    let now = h.clock.now_for_test();
    h.queue
        .enqueue_with("b", 0, Some(NotBefore::floor(now + s(30))))
        .await
        .unwrap();
    h.queue
        .enqueue_with("b", 0, Some(NotBefore::floor(now + s(45))))
        .await
        .unwrap();
    h.queue
        .enqueue_with("b", 0, Some(NotBefore::floor(now + s(20))))
        .await
        .unwrap();
    h.queue.enqueue("b", 0, s(1)).await.unwrap();
    assert_eq!(h.not_before("b").await, Some(now + s(45)));
    // A floor replaces a plain not-before, even an earlier one.
    h.queue.enqueue("c", 0, s(10)).await.unwrap();
    h.queue
        .enqueue_with("c", 0, Some(NotBefore::floor(now + s(50))))
        .await
        .unwrap();
    assert_eq!(h.not_before("c").await, Some(now + s(50)));
    // Nothing is due before its floor.
    h.clock.advance(s(44));
    assert!(h.start(5).await.is_empty());
    h.clock.advance(s(20));
    let mut claims = h.start(5).await;
    claims.sort_by(|x, y| x.key().cmp(y.key()));
    assert_eq!(keys(&claims), ["a", "b", "c"]);
    // A plain requeue clears the floor: a plain enqueue makes the key due again.
    let a = claims.remove(0);
    a.requeue_after(s(600)).await.unwrap();
    h.enqueue("a", 0).await;
    assert_eq!(h.not_before("a").await, None);
}

/// A floor from the run replaces a plain twin that arrived meanwhile.
pub async fn floor_should_replace_a_plain_twin(f: Fixture) {
    let h = Harness::new(f.storage, 0);
    h.enqueue("k", 0).await;
    let claim = h.start_one().await.unwrap();
    h.enqueue("k", 0).await;
    let now = h.clock.now_for_test();
    claim.requeue_floor(Duration::from_secs(120)).await.unwrap();
    assert_eq!(
        h.not_before("k").await,
        Some(now + Duration::from_secs(120))
    );
    assert!(h.start_one().await.is_none());
}

/// Backoff keeps the attempt count, so the retry limit is reached.
pub async fn backoff_should_keep_attempts_until_the_dead_letter(f: Fixture) {
    let h = Harness::new(f.storage, 3);
    h.enqueue("k", 4).await;
    for attempt in 1..=2 {
        let claim = h.start_one().await.expect("due");
        assert!(matches!(
            claim.fail("boom").await.unwrap(),
            Failure::Retrying { .. }
        ));
        assert_eq!(h.queue.state("k").await.unwrap().unwrap().attempts, attempt);
        h.clock.advance(P_MAX * 2);
    }
    let claim = h.start_one().await.expect("due");
    assert_eq!(claim.attempts(), 2);
    assert_eq!(
        claim.fail("still broken").await.unwrap(),
        Failure::DeadLettered
    );
    let state = h.queue.state("k").await.unwrap().unwrap();
    assert_eq!(
        (state.status, state.attempts, state.priority),
        (KeyStatus::DeadLetter, 3, 4)
    );
    h.clock.advance(P_MAX * 10);
    assert!(h.start_one().await.is_none(), "dead letters never run");
    let dead = h.queue.dead_letters().await.unwrap();
    assert_eq!(dead.len(), 1);
    assert_eq!(
        (dead[0].key.as_str(), dead[0].error.as_str()),
        ("k", "still broken")
    );
}

/// A re-enqueued dead letter starts over with no attempts; its record goes when it completes.
pub async fn dead_letter_should_be_reenqueued_and_cleared_on_completion(f: Fixture) {
    let h = Harness::new(f.storage, 1);
    h.enqueue("k", 0).await;
    h.enqueue("other", 0).await;
    assert_eq!(
        h.start_one().await.unwrap().fail("boom").await.unwrap(),
        Failure::DeadLettered
    );
    assert_eq!(h.queue.reenqueue_dead_letters().await.unwrap(), 1);
    let state = h.queue.state("k").await.unwrap().unwrap();
    assert_eq!((state.status, state.attempts), (KeyStatus::Queued, 0));
    assert_eq!(h.run_all().await, ["other", "k"]);
    assert_eq!(h.status("k").await, None);
    assert!(h.queue.dead_letters().await.unwrap().is_empty());
}

/// GetKeyState: missing, queued (priority, queued time), in progress, completed, and in
/// progress with a twin.
pub async fn key_state_should_report_each_state(f: Fixture) {
    let h = Harness::new(f.storage, 0);
    assert_eq!(h.queue.state("k").await.unwrap(), None);
    let queued_at = h.clock.now_for_test();
    h.enqueue("k", 7).await;
    let state = h.queue.state("k").await.unwrap().unwrap();
    assert_eq!(
        (
            state.status,
            state.priority,
            state.queued_at,
            state.attempts
        ),
        (KeyStatus::Queued, 7, queued_at, 0)
    );
    let claim = h.start_one().await.unwrap();
    assert_eq!(h.status("k").await, Some(KeyStatus::InProgress));
    h.enqueue("k", 1).await;
    assert_eq!(
        h.status("k").await,
        Some(KeyStatus::InProgress),
        "in progress wins over its twin"
    );
    claim.complete().await.unwrap();
    assert_eq!(h.status("k").await, Some(KeyStatus::Queued));
    h.start_one().await.unwrap().complete().await.unwrap();
    assert_eq!(h.queue.state("k").await.unwrap(), None);
    assert!(matches!(
        h.queue.state("").await,
        Err(QueueError::InvalidKey(_))
    ));
}

/// Keys of any bytes (slashes, `%`, spaces, unicode, `..`, 1,024 bytes) round-trip exactly and
/// stay distinct.
pub async fn any_key_should_round_trip(f: Fixture) {
    let h = Harness::new(f.storage.clone(), 0);
    let long = "x".repeat(1024);
    let long_unicode = "é".repeat(512);
    let weird = [
        "https://github.com/o/r/blob/main/a b/c%2Fd.yaml",
        "../../escape",
        "..",
        ".",
        "a/b",
        "a%2Fb",
        "日本語 キー",
        "tab\there",
        "~tilde",
        long.as_str(),
        long_unicode.as_str(),
    ];
    for key in weird {
        assert_eq!(h.enqueue(key, 0).await, Enqueued::Added, "{key:?}");
    }
    let mut listed: Vec<String> = h
        .queue
        .snapshot()
        .await
        .unwrap()
        .queued
        .into_iter()
        .map(|q| q.record.key)
        .collect();
    listed.sort();
    let mut expected: Vec<String> = weird.iter().map(|k| k.to_string()).collect();
    expected.sort();
    assert_eq!(listed, expected);
    for object in list_all(f.storage.as_ref(), "").await.unwrap() {
        assert!(
            object.name.starts_with("queued/") && object.name.matches('/').count() == 1,
            "{}",
            object.name
        );
    }
    let mut ran = h.run_all().await;
    ran.sort();
    assert_eq!(ran, expected);
    assert!(matches!(
        h.queue.enqueue(&"x".repeat(1025), 0, Duration::ZERO).await,
        Err(QueueError::InvalidKey(_))
    ));
}

/// A key whose dispatcher vanished is requeued by any pass once its lease lapses, keeping its
/// attempt count.
pub async fn orphans_should_be_recovered_with_their_attempts(f: Fixture) {
    let h = Harness::new(f.storage, 0);
    h.enqueue("k", 0).await;
    h.start_one().await.unwrap().fail("boom").await.unwrap();
    h.clock.advance(P_MAX * 2);
    let crashed = h.start_one().await.unwrap();
    // The process dies: nothing is written, the claim stays in storage.
    drop(crashed);
    assert_eq!(h.status("k").await, Some(KeyStatus::InProgress));
    let peer = h.peer();
    assert!(
        peer.start(5, 5).await.unwrap().is_empty(),
        "the lease is still live"
    );
    h.clock.advance(LEASE);
    let recovered = peer.start(5, 5).await.unwrap();
    assert_eq!(keys(&recovered), ["k"]);
    assert_eq!(recovered[0].attempts(), 1);
}

/// A claim that another dispatcher recovered cannot complete, and the key is not lost.
pub async fn lost_claim_should_refuse_to_complete(f: Fixture) {
    let h = Harness::new(f.storage, 0);
    h.enqueue("k", 0).await;
    let slow = h.start_one().await.unwrap();
    h.clock.advance(LEASE + Duration::from_secs(1));
    let peer = h.peer();
    let taken = peer.start(5, 5).await.unwrap();
    assert_eq!(keys(&taken), ["k"]);
    assert!(matches!(
        slow.complete().await,
        Err(QueueError::Lost { .. })
    ));
    assert_eq!(h.status("k").await, Some(KeyStatus::InProgress));
    taken.into_iter().next().unwrap().complete().await.unwrap();
    assert_eq!(h.status("k").await, None);
}

/// The heartbeat notices a lost claim and fires the token, so the run stops.
pub async fn lost_claim_should_cancel_its_token(f: Fixture) {
    let lease = Duration::from_millis(600);
    let config = QueueConfig { lease, ..config(0) };
    let queue = Queue::with_parts(
        f.storage.clone(),
        config,
        Arc::new(SystemClock),
        Metrics::new(),
    );
    queue.enqueue("k", 0, Duration::ZERO).await.unwrap();
    let claim = queue.start(1, 1).await.unwrap().pop().unwrap();
    let token = claim.cancelled();
    // Renewals keep it alive well past one lease.
    tokio::time::sleep(lease * 2).await;
    assert!(!token.is_cancelled(), "the heartbeat keeps the claim");
    // Another dispatcher whose clock runs an hour ahead sees the lease lapsed and takes over.
    let ahead = Arc::new(ManualClock::new(
        SystemTime::now() + Duration::from_secs(3600),
    ));
    let peer = Queue::with_parts(f.storage.clone(), config, ahead, Metrics::new());
    let taken = peer.start(1, 1).await.unwrap();
    assert_eq!(keys(&taken), ["k"]);
    tokio::time::timeout(Duration::from_secs(10), token.cancelled())
        .await
        .expect("the token fires");
    drop(claim);
}

/// A key handed back at shutdown keeps its attempt count.
pub async fn release_should_keep_attempts(f: Fixture) {
    let h = Harness::new(f.storage, 0);
    h.enqueue("k", 0).await;
    h.start_one().await.unwrap().fail("boom").await.unwrap();
    h.clock.advance(P_MAX * 2);
    let now = h.clock.now_for_test();
    h.start_one()
        .await
        .unwrap()
        .release(Duration::from_secs(15))
        .await
        .unwrap();
    let state = h.queue.state("k").await.unwrap().unwrap();
    assert_eq!(
        (state.attempts, state.not_before),
        (1, Some(now + Duration::from_secs(15)))
    );
}

/// A durable backend keeps queued, running and dead keys for a new instance.
pub async fn durable_backend_should_keep_keys_across_instances(f: Fixture) {
    let Some(reopen) = &f.reopen else { return };
    let h = Harness::new(f.storage.clone(), 1);
    h.enqueue("running", 0).await;
    h.enqueue("dead", 0).await;
    h.enqueue("queued", 0).await;
    let mut claims = h.start(2).await;
    assert_eq!(keys(&claims), ["running", "dead"]);
    claims.pop().unwrap().fail("boom").await.unwrap();
    // The process dies with "running" in progress.
    std::mem::forget(claims);
    let again = Harness::new(reopen().await, 1);
    assert_eq!(again.status("running").await, Some(KeyStatus::InProgress));
    assert_eq!(again.status("dead").await, Some(KeyStatus::DeadLetter));
    assert_eq!(again.status("queued").await, Some(KeyStatus::Queued));
}

#[derive(Default)]
struct Watch {
    running: Mutex<HashSet<String>>,
    in_flight: AtomicUsize,
    max_in_flight: AtomicUsize,
    overlaps: AtomicUsize,
    runs: Mutex<Vec<String>>,
}

struct Sleepy(Arc<Watch>);

#[async_trait]
impl Reconciler for Sleepy {
    async fn reconcile(&self, key: &str, _priority: i64) -> Result<Action, ReconcileError> {
        let w = &self.0;
        if !w.running.lock().unwrap().insert(key.to_owned()) {
            w.overlaps.fetch_add(1, Ordering::SeqCst);
        }
        let now = w.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        w.max_in_flight.fetch_max(now, Ordering::SeqCst);
        tokio::time::sleep(Duration::from_millis(15)).await;
        w.in_flight.fetch_sub(1, Ordering::SeqCst);
        w.running.lock().unwrap().remove(key);
        w.runs.lock().unwrap().push(key.to_owned());
        Ok(Action::done())
    }
}

/// Two dispatchers with a limit of 5 share the storage while keys (some repeated) arrive every
/// few milliseconds: never more than 5 run at once, never one key twice at once, all run.
pub async fn dispatchers_should_hold_the_global_limit_and_never_overlap_a_key(f: Fixture) {
    let watch = Arc::new(Watch::default());
    let config = DispatcherConfig {
        concurrency: 5,
        batch_size: 5,
        poll_interval: Duration::from_millis(20),
        pass_interval: Duration::from_millis(2),
        shutdown_grace: Duration::from_secs(5),
    };
    let shutdown = CancellationToken::new();
    let mut dispatchers = Vec::new();
    for _ in 0..2 {
        let queue = Queue::with_parts(
            f.storage.clone(),
            QueueConfig::default(),
            Arc::new(SystemClock),
            Metrics::new(),
        );
        let dispatcher = Dispatcher::new(queue, Arc::new(Sleepy(watch.clone())), config);
        dispatchers.push(tokio::spawn(dispatcher.run(shutdown.clone())));
    }
    let queue = Queue::new(f.storage.clone(), QueueConfig::default());
    let mut distinct = HashSet::new();
    for i in 0..60 {
        let key = format!("key-{}", i % 45);
        distinct.insert(key.clone());
        queue.enqueue(&key, i % 3, Duration::ZERO).await.unwrap();
        tokio::time::sleep(Duration::from_millis(3)).await;
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let ran: HashSet<String> = watch.runs.lock().unwrap().iter().cloned().collect();
        let empty = list_all(f.storage.as_ref(), "queued/")
            .await
            .unwrap()
            .is_empty()
            && list_all(f.storage.as_ref(), "in-progress/")
                .await
                .unwrap()
                .is_empty();
        if ran == distinct && empty {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "not every key ran: {} of {}",
            ran.len(),
            distinct.len()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    shutdown.cancel();
    for d in dispatchers {
        d.await.unwrap();
    }
    assert!(
        watch.max_in_flight.load(Ordering::SeqCst) <= 5,
        "max in flight {}",
        watch.max_in_flight.load(Ordering::SeqCst)
    );
    assert!(
        watch.max_in_flight.load(Ordering::SeqCst) >= 2,
        "the test should run keys concurrently"
    );
    assert_eq!(
        watch.overlaps.load(Ordering::SeqCst),
        0,
        "a key ran twice at once"
    );
}

trait NowForTest {
    fn now_for_test(&self) -> SystemTime;
}

impl NowForTest for ManualClock {
    fn now_for_test(&self) -> SystemTime {
        crate::clock::Clock::now(self)
    }
}

#[cfg(test)]
mod memory {
    crate::conformance_suite!(async { super::Fixture::memory() });
}

#[cfg(test)]
mod dir {
    crate::conformance_suite!(super::Fixture::dir());
}
