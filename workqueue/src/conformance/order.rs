//! Queue cases on what runs and in which order: FIFO, limits, dedup, priority, twins, key
//! state, any key.

use super::*;

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
    let mut first = h.queue.start(3, 10).await.unwrap().claims;
    assert_eq!(keys(&first), ["k0", "k1", "k2"]);
    assert!(
        h.queue.start(3, 10).await.unwrap().claims.is_empty(),
        "the limit is taken"
    );
    let snapshot = h.queue.snapshot().await.unwrap();
    assert_eq!((snapshot.in_progress.len(), snapshot.due()), (3, 7));
    first.remove(0).complete().await.unwrap();
    assert_eq!(keys(&h.queue.start(3, 10).await.unwrap().claims), ["k3"]);
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
    h.enqueue("max", i64::MAX).await;
    h.enqueue("min", i64::MIN).await;
    // A merge raises priority but keeps the entry's age.
    h.enqueue("low-old", 5).await;
    assert_eq!(
        h.run_all().await,
        [
            "max", "low-old", "high-old", "high-new", "low-new", "negative", "min"
        ]
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

/// GetKeyState: missing, queued (priority, queued time), in progress, completed, and in
/// progress with a twin.
pub async fn key_state_should_report_each_state(f: Fixture) {
    let h = Harness::new(f.storage, 0);
    assert_eq!(h.queue.state("k").await.unwrap(), None);
    let queued_at = h.clock.now();
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
            object.name.starts_with("k/") && object.name.matches('/').count() == 1,
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

/// An object at a key's name that is not a queue record (a foreign write, a torn upgrade) is
/// skipped by passes and replaced by the next enqueue, never blocking the key.
pub async fn unreadable_record_should_be_replaced_by_an_enqueue(f: Fixture) {
    let h = Harness::new(f.storage.clone(), 0);
    f.storage
        .put("k/k", &meta("garbage"), PutMode::Create)
        .await
        .unwrap();
    assert!(h.queue.snapshot().await.unwrap().queued.is_empty());
    assert_eq!(h.status("k").await, None);
    h.enqueue("other", 0).await;
    assert_eq!(
        h.run_all().await,
        ["other"],
        "passes skip the unreadable record"
    );
    assert_eq!(h.enqueue("k", 1).await, Enqueued::Added);
    assert_eq!(h.run_all().await, ["k"]);
}
