//! Queue cases on when keys run: claims' tokens, requeues, backoff, not-befores and floors.

use super::*;

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

/// Failed runs back off P, then 2P, ... up to the cap, each with less than half again of
/// jitter.
pub async fn failures_should_back_off_p_then_2p_capped(f: Fixture) {
    let h = Harness::new(f.storage, 0);
    h.enqueue("k", 0).await;
    for (attempt, base) in [(1, P), (2, 2 * P), (3, 4 * P), (4, P_MAX), (5, P_MAX)] {
        let claim = h.start_one().await.expect("due");
        assert_eq!(claim.attempts(), attempt - 1);
        let now = h.clock.now();
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
    let now = h.clock.now();
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
    let start = h.clock.now();
    h.start_one()
        .await
        .unwrap()
        .requeue_floor(s(60))
        .await
        .unwrap();
    h.enqueue("a", 0).await;
    assert_eq!(h.not_before("a").await, Some(start + s(60)));
    // Enqueue with a floor; a later floor extends it; a plain delay cannot shorten it.
    let now = h.clock.now();
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
    let now = h.clock.now();
    claim.requeue_floor(Duration::from_secs(120)).await.unwrap();
    assert_eq!(
        h.not_before("k").await,
        Some(now + Duration::from_secs(120))
    );
    assert!(h.start_one().await.is_none());
}
