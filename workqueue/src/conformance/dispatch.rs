//! The dispatcher case: two dispatchers on one store hold the global limit under load.

use super::*;

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
