//! The gateway's metrics (docs/architecture.md, "Metrics"): deliveries by event and outcome,
//! CloudEvents by outcome, signature failures, keys by route, enqueue latency.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

/// How a request ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Keys were enqueued.
    Enqueued,
    /// No route made a key of it.
    Skipped,
    /// Not a valid delivery or event.
    Malformed,
    /// The signature was bad or missing.
    Unauthorized,
    /// The body was over the limit.
    TooLarge,
    /// The body did not arrive in time.
    TimedOut,
    /// The workqueue, the sink or the GitHub API failed, or the deadline passed.
    Unavailable,
    /// Refused at once: the gateway had its most requests in flight.
    Busy,
}

impl Outcome {
    fn label(self) -> &'static str {
        match self {
            Self::Enqueued => "enqueued",
            Self::Skipped => "skipped",
            Self::Malformed => "malformed",
            Self::Unauthorized => "unauthorized",
            Self::TooLarge => "too_large",
            Self::TimedOut => "timed_out",
            Self::Unavailable => "unavailable",
            Self::Busy => "busy",
        }
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DeliveryLabels {
    event: &'static str,
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabels {
    outcome: &'static str,
}

/// The events GitHub sends that are counted by name; others count as `other`, so a sender
/// cannot grow the series without bound.
const EVENTS: &[&str] = &[
    "check_run",
    "check_suite",
    "create",
    "delete",
    "deployment",
    "deployment_status",
    "issue_comment",
    "issues",
    "label",
    "merge_group",
    "ping",
    "pull_request",
    "pull_request_review",
    "pull_request_review_comment",
    "pull_request_review_thread",
    "push",
    "release",
    "repository",
    "status",
    "workflow_job",
    "workflow_run",
];

fn event_label(event: &str) -> &'static str {
    match EVENTS.binary_search(&event) {
        Ok(i) => EVENTS[i],
        Err(_) if event.is_empty() => "none",
        Err(_) => "other",
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabels {
    route: String,
}

/// The gateway's series; clones share them.
#[derive(Clone, Debug)]
pub struct GatewayMetrics {
    deliveries: Family<DeliveryLabels, Counter>,
    events: Family<OutcomeLabels, Counter>,
    signature_failures: Counter,
    keys: Family<RouteLabels, Counter>,
    enqueue_latency: Histogram,
}

impl Default for GatewayMetrics {
    fn default() -> Self {
        Self {
            deliveries: Family::default(),
            events: Family::default(),
            signature_failures: Counter::default(),
            keys: Family::default(),
            // 0.1 ms to about 13 s.
            enqueue_latency: Histogram::new(exponential_buckets(0.0001, 2.0, 18)),
        }
    }
}

impl GatewayMetrics {
    /// Adds every series to `registry`.
    pub fn register(&self, registry: &mut Registry) {
        registry.register(
            "gateway_webhook_deliveries",
            "GitHub deliveries by event and outcome",
            self.deliveries.clone(),
        );
        registry.register(
            "gateway_cloudevents",
            "CloudEvents requests by outcome",
            self.events.clone(),
        );
        registry.register(
            "gateway_signature_failures",
            "GitHub deliveries refused for a bad or missing signature",
            self.signature_failures.clone(),
        );
        registry.register(
            "gateway_keys",
            "Keys extracted, by route",
            self.keys.clone(),
        );
        registry.register(
            "gateway_enqueue_latency_seconds",
            "Time to enqueue the keys of one request",
            self.enqueue_latency.clone(),
        );
    }

    pub(crate) fn delivery(&self, event: &str, outcome: Outcome) {
        if outcome == Outcome::Unauthorized {
            self.signature_failures.inc();
        }
        self.deliveries
            .get_or_create(&DeliveryLabels {
                event: event_label(event),
                outcome: outcome.label(),
            })
            .inc();
    }

    pub(crate) fn cloudevents(&self, outcome: Outcome) {
        self.events
            .get_or_create(&OutcomeLabels {
                outcome: outcome.label(),
            })
            .inc();
    }

    /// The counter of keys extracted by `route` (kept by the route, so counting is cheap).
    pub(crate) fn keys(&self, route: &str) -> Counter {
        self.keys
            .get_or_create(&RouteLabels {
                route: route.to_owned(),
            })
            .clone()
    }

    pub(crate) fn enqueue_latency(&self, seconds: f64) {
        self.enqueue_latency.observe(seconds);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_labels_should_be_bounded() {
        assert!(
            EVENTS.windows(2).all(|w| w[0] < w[1]),
            "sorted for the search"
        );
        assert_eq!(event_label("push"), "push");
        assert_eq!(event_label("made-up"), "other");
        assert_eq!(event_label(""), "none");
    }
}
