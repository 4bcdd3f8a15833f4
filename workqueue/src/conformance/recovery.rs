//! Queue cases on failures: dead letters, orphans, lost claims, shutdown hand-back, durability.

use super::*;

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
    assert_eq!(
        h.listed_dead_letters().await,
        ["k"],
        "listed under dead-letter/"
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
    assert_eq!(h.listed_dead_letters().await, ["k"]);
    assert_eq!(h.queue.reenqueue_dead_letters().await.unwrap(), 1);
    let state = h.queue.state("k").await.unwrap().unwrap();
    assert_eq!((state.status, state.attempts), (KeyStatus::Queued, 0));
    assert!(h.queue.dead_letters().await.unwrap().is_empty(), "let go");
    assert!(h.listed_dead_letters().await.is_empty(), "unlisted");
    assert_eq!(h.run_all().await, ["other", "k"]);
    assert_eq!(h.status("k").await, None);
    assert!(h.queue.dead_letters().await.unwrap().is_empty());
}

/// The `dead-letter/` listing costs nothing to a key that never dead-letters (three
/// mutations: create, claim, complete; no gets) and one create to one that does.
pub async fn dead_letter_listing_should_cost_only_keys_that_dead_letter(f: Fixture) {
    let counting = Arc::new(CountingStorage::new(f.storage));
    let h = Harness::new(counting.clone(), 1);
    h.enqueue("warm-up", 0).await;
    assert_eq!(h.run_all().await, ["warm-up"], "takes the capacity slot");

    let before = counting.counts();
    h.enqueue("fine", 0).await;
    h.start_one().await.unwrap().complete().await.unwrap();
    let fine = counting.counts().since(before);
    assert_eq!((fine.mutations(), fine.get), (3, 0), "{fine:?}");

    let before = counting.counts();
    h.enqueue("broken", 0).await;
    let failed = h.start_one().await.unwrap().fail("boom").await.unwrap();
    assert_eq!(failed, Failure::DeadLettered);
    let dead = counting.counts().since(before);
    assert_eq!(
        (dead.create, dead.replace, dead.delete, dead.get),
        (2, 2, 0, 0),
        "the record's create, claim and dead letter, and the listing entry: {dead:?}"
    );
    assert_eq!(h.listed_dead_letters().await, ["broken"]);
}

/// Re-enqueueing leaves alone a dead letter whose key is queued or running again already: its
/// key would otherwise run twice.
pub async fn reenqueue_should_skip_dead_letters_queued_or_running(f: Fixture) {
    let h = Harness::new(f.storage, 1);
    h.enqueue("k", 0).await;
    assert_eq!(
        h.start_one().await.unwrap().fail("boom").await.unwrap(),
        Failure::DeadLettered
    );
    h.enqueue("k", 0).await;
    assert_eq!(h.queue.reenqueue_dead_letters().await.unwrap(), 0, "queued");
    let running = h.start_one().await.expect("the fresh enqueue runs");
    assert_eq!(
        h.queue.reenqueue_dead_letters().await.unwrap(),
        0,
        "running"
    );
    assert_eq!(
        h.listed_dead_letters().await,
        ["k"],
        "kept while it runs again"
    );
    running.complete().await.unwrap();
    assert_eq!(h.status("k").await, None, "no twin left to run again");
    assert!(h.queue.dead_letters().await.unwrap().is_empty());
    assert!(
        h.listed_dead_letters().await.is_empty(),
        "unlisted on completion"
    );
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
        peer.start(5, 5).await.unwrap().claims.is_empty(),
        "the lease is still live"
    );
    h.clock.advance(LEASE);
    let recovered = peer.start(5, 5).await.unwrap().claims;
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
    let taken = peer.start(5, 5).await.unwrap().claims;
    assert_eq!(keys(&taken), ["k"]);
    assert!(matches!(
        slow.complete().await,
        Err(QueueError::Lost { .. })
    ));
    assert_eq!(h.status("k").await, Some(KeyStatus::InProgress));
    taken.into_iter().next().unwrap().complete().await.unwrap();
    assert_eq!(h.status("k").await, None);
}

/// The real clock, an hour ahead: a peer whose clock is wrong but still moves.
#[derive(Debug)]
struct HourAhead;

impl Clock for HourAhead {
    fn now(&self) -> SystemTime {
        SystemTime::now() + Duration::from_secs(3600)
    }
}

/// The heartbeat notices a lost claim and fires the token, so the run stops.
pub async fn lost_claim_should_cancel_its_token(f: Fixture) {
    let lease = Duration::from_secs(2);
    let config = QueueConfig { lease, ..config(0) };
    let queue = Queue::with_parts(
        f.storage.clone(),
        config,
        Arc::new(SystemClock),
        Metrics::new(),
    );
    queue.enqueue("k", 0, Duration::ZERO).await.unwrap();
    let claim = queue.start(1, 1).await.unwrap().claims.pop().unwrap();
    let token = claim.cancelled();
    // Renewals keep it alive past its first lease: wait (on the real clock the heartbeat runs
    // on) until that lease is over and the stored one has moved beyond it.
    let first_lease = lease_of(&queue).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while SystemTime::now() <= first_lease || lease_of(&queue).await <= SystemTime::now() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the lease was never renewed past {first_lease:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(!token.is_cancelled(), "the heartbeat keeps the claim");
    // Another dispatcher whose clock runs an hour ahead sees the lease lapsed and takes over.
    let peer = Queue::with_parts(
        f.storage.clone(),
        config,
        Arc::new(HourAhead),
        Metrics::new(),
    );
    // A takeover can lose the race with a renewal landing first (its pinned write then fails):
    // a later pass takes over, once the peer's clock has moved past its wait after finding
    // every slot taken (a stopped clock would make that wait last forever).
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let taken = loop {
        let taken = peer.start(1, 1).await.unwrap().claims;
        if !taken.is_empty() {
            break taken;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the peer never took the key over"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(keys(&taken), ["k"]);
    tokio::time::timeout(Duration::from_secs(10), token.cancelled())
        .await
        .expect("the token fires");
    // The peer took the capacity slot over too, which also stops the run: the heartbeat must
    // still find the key itself taken over.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !claim.is_lost() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the heartbeat sees the loss"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(matches!(
        claim.complete().await,
        Err(QueueError::Lost { .. })
    ));
}

/// The stored lease of the one key in progress.
async fn lease_of(queue: &Queue) -> SystemTime {
    let snapshot = queue.snapshot().await.unwrap();
    snapshot.in_progress[0].record.lease_expires
}

/// A key handed back at shutdown keeps its attempt count.
pub async fn release_should_keep_attempts(f: Fixture) {
    let h = Harness::new(f.storage, 0);
    h.enqueue("k", 0).await;
    h.start_one().await.unwrap().fail("boom").await.unwrap();
    h.clock.advance(P_MAX * 2);
    let now = h.clock.now();
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
    let reopen = f
        .reopen
        .as_ref()
        .expect("a durable fixture can be reopened");
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

/// A claim whose write landed but reported an error still runs the key: the run written is
/// this one. So does one whose write came back as a precondition failure (a client's retry
/// meeting its own write), instead of leaving the key in progress unrun.
pub async fn claim_should_run_a_key_whose_write_landed_but_failed(f: Fixture) {
    let faulty = Arc::new(FaultyStorage::new(f.storage.clone()));
    let h = Harness::new(faulty.clone(), 0);
    for (key, landed) in [("k", Landed::Yes), ("c", Landed::YesThenConflict)] {
        h.enqueue(key, 0).await;
        faulty.fail(Operation::Put, &key_name(key), landed, 1);
        let claim = h.start_one().await.expect("the key runs");
        assert_eq!(faulty.pending(), 0, "the claim met the {landed:?} fault");
        assert_eq!(claim.key(), key);
        claim.complete().await.unwrap();
        assert_eq!(h.status(key).await, None, "{landed:?}");
    }
}

/// A claim whose write failed without landing leaves the key queued for the next pass.
pub async fn claim_should_keep_a_key_whose_write_failed(f: Fixture) {
    let faulty = Arc::new(FaultyStorage::new(f.storage.clone()));
    let h = Harness::new(faulty.clone(), 0);
    h.enqueue("k", 0).await;
    faulty.fail(Operation::Put, "k/", Landed::No, 1);
    assert!(h.queue.start(1, 1).await.is_err());
    assert_eq!(h.status("k").await, Some(KeyStatus::Queued));
    assert_eq!(h.start_one().await.expect("claimed next time").key(), "k");
}

/// A key dead-lettered while a twin waits keeps the twin queued; the twin runs, and its
/// completion clears the dead letter.
pub async fn dead_letter_should_keep_a_waiting_twin(f: Fixture) {
    let h = Harness::new(f.storage, 1);
    h.enqueue("k", 0).await;
    let claim = h.start_one().await.unwrap();
    h.enqueue("k", 3).await;
    assert_eq!(claim.fail("boom").await.unwrap(), Failure::DeadLettered);
    assert_eq!(h.status("k").await, Some(KeyStatus::Queued));
    assert_eq!(h.queue.dead_letters().await.unwrap().len(), 1);
    assert_eq!(h.listed_dead_letters().await, ["k"]);
    let twin = h.start_one().await.expect("the twin runs");
    assert_eq!((twin.priority(), twin.attempts()), (3, 0));
    twin.complete().await.unwrap();
    assert_eq!(h.status("k").await, None);
    assert!(h.queue.dead_letters().await.unwrap().is_empty());
    assert!(h.listed_dead_letters().await.is_empty());
}

/// A run that answers after its lease lapsed still settles while no other dispatcher took the
/// key over: its write is pinned to the record it holds.
pub async fn lapsed_claim_should_settle_while_no_one_took_it_over(f: Fixture) {
    let h = Harness::new(f.storage, 0);
    h.enqueue("k", 0).await;
    let claim = h.start_one().await.unwrap();
    h.clock.advance(LEASE * 2);
    claim.requeue_after(Duration::ZERO).await.unwrap();
    let snapshot = h.queue.snapshot().await.unwrap();
    assert_eq!((snapshot.in_progress.len(), snapshot.queued.len()), (0, 1));
    assert_eq!(h.run_all().await, ["k"]);
}

/// When renewals keep failing, the heartbeat stops the run before the lease lapses.
pub async fn failing_renewals_should_cancel_the_run(f: Fixture) {
    let lease = Duration::from_millis(600);
    let config = QueueConfig { lease, ..config(0) };
    let faulty = Arc::new(FaultyStorage::new(f.storage.clone()));
    let queue = Queue::with_parts(
        faulty.clone(),
        config,
        Arc::new(SystemClock),
        Metrics::new(),
    );
    queue.enqueue("k", 0, Duration::ZERO).await.unwrap();
    let claim = queue.start(1, 1).await.unwrap().claims.pop().unwrap();
    faulty.fail(Operation::Put, "k/", Landed::No, usize::MAX);
    let token = claim.cancelled();
    tokio::time::timeout(Duration::from_secs(10), token.cancelled())
        .await
        .expect("the run is stopped");
    drop(claim);
}

/// Two processes share the global limit through the capacity slots: what one holds, the
/// other cannot run, until it gives the slots back or they lapse.
pub async fn capacity_should_hold_the_limit_across_processes(f: Fixture) {
    let h = Harness::new(f.storage, 0);
    for i in 0..6 {
        h.enqueue(&format!("k{i}"), 0).await;
    }
    let peer = h.peer();
    let mine = h.queue.start(3, 2).await.unwrap().claims;
    assert_eq!(keys(&mine), ["k0", "k1"]);
    let theirs = peer.start(3, 5).await.unwrap().claims;
    assert_eq!(keys(&theirs), ["k2"], "one slot of three was left");
    h.clock.advance(Duration::from_secs(5));
    assert!(
        peer.start(3, 5).await.unwrap().claims.is_empty(),
        "the limit is held"
    );
    drop(mine);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    assert_eq!(
        h.queue.release_capacity(deadline).await,
        0,
        "every slot given back"
    );
    h.clock.advance(Duration::from_secs(5));
    let more = peer.start(3, 5).await.unwrap().claims;
    assert_eq!(more.len(), 2, "the slots given back are taken");
    // The slots of a process that vanished lapse with their lease.
    drop(theirs);
    drop(more);
    h.clock.advance(LEASE);
    let third = h.peer();
    assert_eq!(third.start(3, 5).await.unwrap().claims.len(), 3);
}

/// A process whose capacity slot was taken over (another process's clock ran ahead) stops its
/// runs, but their keys are still its own: they go back to the queue, losing nothing.
pub async fn revoked_capacity_should_stop_runs_that_can_still_hand_back(f: Fixture) {
    let h = Harness::new(f.storage.clone(), 0);
    h.enqueue("k", 0).await;
    let claim = h.start_one().await.unwrap();
    let slots = list_all(f.storage.as_ref(), "slot/").await.unwrap();
    assert_eq!(slots.len(), 1);
    let taken_over = Metadata::from([
        ("owner".to_owned(), "ahead".to_owned()),
        ("lease-expiration".to_owned(), "99999999999999".to_owned()),
    ]);
    f.storage
        .put(
            &slots[0].name,
            &taken_over,
            PutMode::Replace(slots[0].generation),
        )
        .await
        .unwrap();
    // The next reservation renews the slot, finds it taken and revokes.
    h.clock.advance(LEASE / 2);
    h.enqueue("other", 0).await;
    assert!(h.start(1).await.is_empty(), "no slot is left");
    assert!(claim.cancelled().is_cancelled(), "the run is stopped");
    assert!(!claim.is_lost());
    claim.release(Duration::ZERO).await.unwrap();
    assert_eq!(h.status("k").await, Some(KeyStatus::Queued));
}

/// A listing that fails does not stop dispatch: a pass goes on from the view it has.
pub async fn failed_listing_should_dispatch_from_the_view(f: Fixture) {
    let faulty = Arc::new(FaultyStorage::new(f.storage.clone()));
    let h = Harness::new(faulty.clone(), 0);
    h.enqueue("a", 0).await;
    assert!(h.start(1).await.pop().unwrap().complete().await.is_ok());
    h.enqueue("b", 0).await;
    faulty.fail(Operation::List, "k/", Landed::No, 1);
    assert_eq!(keys(&h.start(1).await), ["b"]);
}
