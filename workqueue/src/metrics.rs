//! The `workqueue_*` metrics (docs/architecture.md, "Metrics"), named as the reference dashboards
//! chart them.
//!
//! `prometheus-client` writes OpenMetrics text, in which every counter's samples end in
//! `_total`: `workqueue_added_keys` is exposed as `workqueue_added_keys_total`.

use std::time::{Duration, SystemTime};

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use crate::entry::{InProgressEntry, QueuedEntry};

/// A latency histogram's label: the priority class, `"<priority/100>xx"`, the division
/// truncating toward zero as the reference's Go does (-50 is `0xx`, -150 is `-1xx`).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PriorityClass {
    priority_class: String,
}

impl PriorityClass {
    fn of(priority: i64) -> Self {
        Self {
            priority_class: format!("{}xx", priority / 100),
        }
    }
}

/// How a key left the queue.
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq)]
pub enum CompletionStatus {
    /// The reconciler succeeded.
    Success,
    /// The reconciler said not to retry; the key was dropped.
    Dropped,
    /// The key failed too often.
    DeadLetter,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CompletionLabels {
    status: String,
    priority_class: String,
}

/// Whether a dispatch trigger started a pass or was shed.
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq)]
pub enum TriggerResult {
    /// A pass will run for it.
    Dispatched,
    /// A pass was already pending; the trigger was dropped.
    Shed,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TriggerLabels {
    result: String,
}

impl CompletionStatus {
    fn label(self) -> String {
        match self {
            Self::Success => "success",
            Self::Dropped => "dropped",
            Self::DeadLetter => "dead_letter",
        }
        .to_owned()
    }
}

impl TriggerResult {
    fn label(self) -> String {
        match self {
            Self::Dispatched => "dispatched",
            Self::Shed => "shed",
        }
        .to_owned()
    }
}

type HistogramFamily<L> = Family<L, Histogram, fn() -> Histogram>;

/// How deep the queue is: what its gauges show.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Depth {
    /// Keys in progress.
    pub in_progress: usize,
    /// Queued keys, twins included.
    pub queued: usize,
    /// Queued keys that are not due yet.
    pub waiting: usize,
    /// Dead-lettered keys.
    pub dead: usize,
    /// The highest attempt count among queued keys.
    pub max_attempts: u32,
}

/// The queue's metrics; clones share the same series.
#[derive(Clone, Debug)]
pub struct Metrics {
    in_progress_keys: Gauge,
    queued_keys: Gauge,
    notbefore_keys: Gauge,
    max_attempts: Gauge,
    dead_lettered_keys: Gauge,
    process_latency: HistogramFamily<PriorityClass>,
    wait_latency: HistogramFamily<PriorityClass>,
    time_to_completion: HistogramFamily<CompletionLabels>,
    attempts_at_completion: Histogram,
    lease_age: Histogram,
    enumerate_latency: Histogram,
    pub(crate) added_keys: Counter,
    pub(crate) deduped_keys: Counter,
    pub(crate) expired_leases: Counter,
    dispatch_triggers: Family<TriggerLabels, Counter>,
}

fn latency_buckets() -> Histogram {
    // 5 ms to about 45 minutes.
    Histogram::new(exponential_buckets(0.005, 2.0, 20))
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Fresh, unregistered metrics.
    pub fn new() -> Self {
        Self {
            in_progress_keys: Gauge::default(),
            queued_keys: Gauge::default(),
            notbefore_keys: Gauge::default(),
            max_attempts: Gauge::default(),
            dead_lettered_keys: Gauge::default(),
            process_latency: Family::new_with_constructor(latency_buckets),
            wait_latency: Family::new_with_constructor(latency_buckets),
            time_to_completion: Family::new_with_constructor(latency_buckets),
            attempts_at_completion: Histogram::new(exponential_buckets(1.0, 2.0, 10)),
            lease_age: Histogram::new(exponential_buckets(1.0, 2.0, 14)),
            enumerate_latency: Histogram::new(exponential_buckets(0.001, 2.0, 16)),
            added_keys: Counter::default(),
            deduped_keys: Counter::default(),
            expired_leases: Counter::default(),
            dispatch_triggers: Family::default(),
        }
    }

    /// Adds every series to `registry`.
    pub fn register(&self, registry: &mut Registry) {
        let r = registry;
        r.register(
            "workqueue_in_progress_keys",
            "Keys being processed",
            self.in_progress_keys.clone(),
        );
        r.register(
            "workqueue_queued_keys",
            "Keys waiting to be processed",
            self.queued_keys.clone(),
        );
        r.register(
            "workqueue_notbefore_keys",
            "Queued keys not due yet",
            self.notbefore_keys.clone(),
        );
        r.register(
            "workqueue_max_attempts",
            "Highest attempt count among queued keys",
            self.max_attempts.clone(),
        );
        r.register(
            "workqueue_dead_lettered_keys",
            "Keys in the dead-letter queue",
            self.dead_lettered_keys.clone(),
        );
        r.register(
            "workqueue_process_latency_seconds",
            "Time spent reconciling a key",
            self.process_latency.clone(),
        );
        r.register(
            "workqueue_wait_latency_seconds",
            "Time a due key waited before it started",
            self.wait_latency.clone(),
        );
        r.register(
            "workqueue_time_to_completion_seconds",
            "Time from first enqueue to leaving the queue",
            self.time_to_completion.clone(),
        );
        r.register(
            "workqueue_attempts_at_completion",
            "Attempts a key took to leave the queue",
            self.attempts_at_completion.clone(),
        );
        r.register(
            "workqueue_lease_age_seconds",
            "Age of a claim when its lease is renewed",
            self.lease_age.clone(),
        );
        r.register(
            "workqueue_enumerate_latency_seconds",
            "Time to list the queue for a dispatch pass",
            self.enumerate_latency.clone(),
        );
        r.register(
            "workqueue_added_keys",
            "Keys added to the queue",
            self.added_keys.clone(),
        );
        r.register(
            "workqueue_deduped_keys",
            "Enqueues merged into a queued key",
            self.deduped_keys.clone(),
        );
        r.register(
            "workqueue_expired_leases",
            "In-progress keys recovered after their lease lapsed",
            self.expired_leases.clone(),
        );
        r.register(
            "workqueue_dispatch_triggers",
            "Dispatch triggers by result",
            self.dispatch_triggers.clone(),
        );
    }

    /// Records the gauges of the queue's depth, as a pass measured it.
    pub fn observe_depth(&self, depth: Depth) {
        let gauge = |n: usize| i64::try_from(n).unwrap_or(i64::MAX);
        self.in_progress_keys.set(gauge(depth.in_progress));
        self.queued_keys.set(gauge(depth.queued));
        self.notbefore_keys.set(gauge(depth.waiting));
        self.max_attempts.set(i64::from(depth.max_attempts));
        self.dead_lettered_keys.set(gauge(depth.dead));
    }

    /// Records how long a pass took to list the queue.
    pub fn observe_enumerate(&self, took: Duration) {
        self.enumerate_latency.observe(took.as_secs_f64());
    }

    /// Records one reconcile call.
    pub fn observe_process(&self, priority: i64, took: Duration) {
        self.process_latency
            .get_or_create(&PriorityClass::of(priority))
            .observe(took.as_secs_f64());
    }

    /// Records a key leaving the queue.
    pub fn observe_completion(
        &self,
        status: CompletionStatus,
        priority: i64,
        queued_at: SystemTime,
        attempts: u32,
        now: SystemTime,
    ) {
        let labels = CompletionLabels {
            status: status.label(),
            priority_class: PriorityClass::of(priority).priority_class,
        };
        let age = now.duration_since(queued_at).unwrap_or_default();
        self.time_to_completion
            .get_or_create(&labels)
            .observe(age.as_secs_f64());
        self.attempts_at_completion.observe(f64::from(attempts));
    }

    /// Records a trigger of a dispatch pass.
    pub fn observe_trigger(&self, result: TriggerResult) {
        self.dispatch_triggers
            .get_or_create(&TriggerLabels {
                result: result.label(),
            })
            .inc();
    }

    pub(crate) fn observe_wait(&self, entry: &QueuedEntry, started: SystemTime) {
        let due_since = entry
            .not_before
            .map_or(entry.queued_at, |nb| nb.at.max(entry.queued_at));
        let waited = started.duration_since(due_since).unwrap_or_default();
        self.wait_latency
            .get_or_create(&PriorityClass::of(entry.priority))
            .observe(waited.as_secs_f64());
    }

    pub(crate) fn observe_lease_age(&self, run: &InProgressEntry, now: SystemTime) {
        self.lease_age.observe(
            now.duration_since(run.claimed_at)
                .unwrap_or_default()
                .as_secs_f64(),
        );
    }
}

/// A registry whose series carry the labels the reference dashboards select by:
/// `service_name` and `revision_name`, from the `K_SERVICE` and `K_REVISION` variables Cloud
/// Run sets.
pub fn labelled_registry() -> Registry {
    let labels = [
        ("service_name", "K_SERVICE"),
        ("revision_name", "K_REVISION"),
    ]
    .into_iter()
    .filter_map(|(label, variable)| {
        let value = std::env::var(variable).ok().filter(|v| !v.is_empty())?;
        Some((
            std::borrow::Cow::Borrowed(label),
            std::borrow::Cow::Owned(value),
        ))
    });
    Registry::with_labels(labels)
}

/// Renders `registry` as OpenMetrics text.
pub fn render(registry: &Registry) -> String {
    let mut out = String::new();
    prometheus_client::encoding::text::encode(&mut out, registry)
        .expect("writing to a String cannot fail");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn priority_classes_should_truncate_as_go_does() {
        for (priority, class) in [(150, "1xx"), (0, "0xx"), (-50, "0xx"), (-150, "-1xx")] {
            assert_eq!(PriorityClass::of(priority).priority_class, class);
        }
    }

    #[test]
    fn render_should_expose_the_reference_names() {
        let metrics = Metrics::new();
        metrics.added_keys.inc();
        metrics.observe_process(150, Duration::from_millis(20));
        metrics.observe_trigger(TriggerResult::Shed);
        let mut registry = Registry::default();
        metrics.register(&mut registry);
        let text = render(&registry);
        for name in [
            "workqueue_in_progress_keys ",
            "workqueue_added_keys_total 1",
            "workqueue_process_latency_seconds_bucket{le=\"0.005\",priority_class=\"1xx\"}",
            "workqueue_dispatch_triggers_total{result=\"shed\"} 1",
            "workqueue_expired_leases_total 0",
        ] {
            assert!(text.contains(name), "{name} missing from:\n{text}");
        }
    }
}
