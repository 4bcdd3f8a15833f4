//! The dispatcher case: two dispatchers on one store hold the global limit under load.

use super::*;

/// A reconciler for concurrency tests: each run sleeps, and it records the most runs at once,
/// runs of one key that overlapped, and every key that ran.
#[derive(Debug)]
pub struct Recorder {
    work: Duration,
    running: Mutex<HashSet<String>>,
    in_flight: AtomicUsize,
    max_in_flight: AtomicUsize,
    overlaps: AtomicUsize,
    ran: Mutex<HashSet<String>>,
}

impl Recorder {
    /// A recorder whose runs take `work`.
    pub fn new(work: Duration) -> Self {
        Self {
            work,
            running: Mutex::default(),
            in_flight: AtomicUsize::new(0),
            max_in_flight: AtomicUsize::new(0),
            overlaps: AtomicUsize::new(0),
            ran: Mutex::default(),
        }
    }

    /// The most runs at once so far.
    pub fn max_in_flight(&self) -> usize {
        self.max_in_flight.load(Ordering::SeqCst)
    }

    /// How often a run started while the same key was running.
    pub fn overlaps(&self) -> usize {
        self.overlaps.load(Ordering::SeqCst)
    }

    /// Every key that ran to the end.
    pub fn ran(&self) -> HashSet<String> {
        self.ran.lock().unwrap().clone()
    }
}

/// A reconciler that never answers, and counts its calls: every key it is given stays in
/// flight until the dispatcher stops (for shutdown tests).
#[derive(Debug, Default)]
pub struct Hang {
    calls: AtomicUsize,
}

impl Hang {
    /// How many calls it has taken.
    pub fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }
}

#[async_trait]
impl Reconciler for Hang {
    async fn reconcile(&self, _key: &str, _priority: i64) -> Result<Action, ReconcileError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        std::future::pending().await
    }
}

#[async_trait]
impl Reconciler for Recorder {
    async fn reconcile(&self, key: &str, _priority: i64) -> Result<Action, ReconcileError> {
        if !self.running.lock().unwrap().insert(key.to_owned()) {
            self.overlaps.fetch_add(1, Ordering::SeqCst);
        }
        let now = self.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        self.max_in_flight.fetch_max(now, Ordering::SeqCst);
        tokio::time::sleep(self.work).await;
        self.in_flight.fetch_sub(1, Ordering::SeqCst);
        self.running.lock().unwrap().remove(key);
        self.ran.lock().unwrap().insert(key.to_owned());
        Ok(Action::done())
    }
}

/// Two dispatchers with a limit of 5 share the storage while a burst of keys waits and more
/// (some repeated) arrive every few milliseconds: never more than 5 run at once, never one key
/// twice at once, all run.
pub async fn dispatchers_should_hold_the_global_limit_and_never_overlap_a_key(f: Fixture) {
    let watch = Arc::new(Recorder::new(Duration::from_millis(50)));
    let config = DispatcherConfig {
        concurrency: 5,
        batch_size: 5,
        poll_interval: Duration::from_millis(20),
        pass_interval: Duration::from_millis(2),
        shutdown_timeout: Duration::from_secs(5),
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
        let dispatcher = Dispatcher::new(queue, watch.clone(), config);
        dispatchers.push(tokio::spawn(dispatcher.run(shutdown.clone())));
    }
    let queue = Queue::new(f.storage.clone(), QueueConfig::default());
    let mut distinct = HashSet::new();
    // A burst first, four times the limit, so that demand stays over the limit a while.
    for i in 0..60 {
        let key = format!("key-{}", i % 45);
        distinct.insert(key.clone());
        queue.enqueue(&key, i % 3, Duration::ZERO).await.unwrap();
        if i >= 20 {
            tokio::time::sleep(Duration::from_millis(3)).await;
        }
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let ran = watch.ran();
        let empty = list_all(f.storage.as_ref(), "k/").await.unwrap().is_empty();
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
    let max = watch.max_in_flight();
    assert!(max <= 5, "{max} keys ran at once with a limit of 5");
    assert!(
        max >= 2,
        "the test should run keys concurrently (max {max})"
    );
    assert_eq!(watch.overlaps(), 0, "a key ran twice at once");
}
