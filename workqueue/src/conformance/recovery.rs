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
    if !f.strict_deletes {
        // The stale claim's pinned delete is what refuses; see `Fixture::strict_deletes`.
        return;
    }
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

/// A claim whose delete of the queued entry landed but reported an error still runs the key
/// (the entry is gone: withdrawing would lose it).
pub async fn claim_should_run_a_key_whose_queued_delete_landed_but_failed(f: Fixture) {
    let faulty = Arc::new(FaultyStorage::new(f.storage.clone()));
    let h = Harness::new(faulty.clone(), 0);
    h.enqueue("k", 0).await;
    faulty.fail(Operation::Delete, "queued/", Landed::Yes, 1);
    let claim = h.start_one().await.expect("the key runs");
    claim.complete().await.unwrap();
    assert_eq!(h.status("k").await, None);
}

/// A claim whose delete of the queued entry failed without landing is withdrawn and the key
/// stays queued.
pub async fn claim_should_keep_a_key_whose_queued_delete_failed(f: Fixture) {
    let faulty = Arc::new(FaultyStorage::new(f.storage.clone()));
    let h = Harness::new(faulty.clone(), 0);
    h.enqueue("k", 0).await;
    faulty.fail(Operation::Delete, "queued/", Landed::No, 1);
    assert!(h.start_one().await.is_none());
    assert_eq!(h.status("k").await, Some(KeyStatus::Queued));
    assert_eq!(h.start_one().await.expect("claimed next time").key(), "k");
}

/// A run that wrote its dead letter and crashed before dropping its claim is not requeued
/// when its lease lapses: dead-lettered keys never run.
pub async fn orphan_of_a_dead_lettered_run_should_stay_dead(f: Fixture) {
    let h = Harness::new(f.storage, 1);
    h.enqueue("k", 0).await;
    let claim = h.start_one().await.unwrap();
    let run = InProgressEntry {
        key: "k".into(),
        priority: 0,
        attempts: 0,
        queued_at: claim.queued_at(),
        claimed_at: claim.claimed_at(),
        owner: "crashed".into(),
        lease_expires: claim.claimed_at() + LEASE,
    };
    let letter = DeadLetter::new(&run, 1, h.clock.now(), "boom");
    h.queue.dead_letter(&letter).await.unwrap();
    drop(claim);
    h.clock.advance(LEASE);
    assert!(
        h.start(5).await.is_empty(),
        "a dead-lettered key must not run"
    );
    assert_eq!(h.status("k").await, Some(KeyStatus::DeadLetter));
    assert!(h.queue.snapshot().await.unwrap().in_progress.is_empty());
}

/// A run that answers when its lease is about to lapse writes nothing outside its claim: the
/// key may already belong to another dispatcher.
pub async fn settling_near_the_lease_end_should_write_nothing(f: Fixture) {
    let h = Harness::new(f.storage, 0);
    h.enqueue("k", 0).await;
    let claim = h.start_one().await.unwrap();
    h.clock.advance(LEASE - LEASE / 20);
    assert!(matches!(
        claim.requeue_after(Duration::ZERO).await,
        Err(QueueError::Lost { .. })
    ));
    let snapshot = h.queue.snapshot().await.unwrap();
    assert_eq!((snapshot.in_progress.len(), snapshot.queued.len()), (1, 0));
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
    let claim = queue.start(1, 1).await.unwrap().pop().unwrap();
    faulty.fail(Operation::Put, "in-progress/", Landed::No, usize::MAX);
    let token = claim.cancelled();
    tokio::time::timeout(Duration::from_secs(10), token.cancelled())
        .await
        .expect("the run is stopped");
    drop(claim);
}

/// An unreadable claim record (debris, or a newer version's live claim) is left alone while it
/// may be live, and removed once it stayed unchanged for a whole lease, so it cannot block its
/// key forever.
pub async fn unreadable_claim_should_be_removed_after_a_lease(f: Fixture) {
    let h = Harness::new(f.storage.clone(), 0);
    h.enqueue("k", 0).await;
    f.storage
        .put("in-progress/k", &meta("garbage"), PutMode::Create)
        .await
        .unwrap();
    assert!(
        h.start(5).await.is_empty(),
        "blocked while the record may be live"
    );
    h.clock.advance(LEASE / 2);
    assert!(h.start(5).await.is_empty());
    h.clock.advance(LEASE);
    let claim = h
        .start_one()
        .await
        .expect("claimable once the record is removed");
    assert_eq!(claim.key(), "k");
}
