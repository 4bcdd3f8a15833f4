//! The resync's counters on `/metrics`, when it runs on a schedule.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use crate::sweep::SweepReport;

/// The label of a run's outcome.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RunLabels {
    result: &'static str,
}

/// Counters over every sweep of this process; clones share them.
#[derive(Clone, Debug, Default)]
pub struct ResyncMetrics {
    runs: Family<RunLabels, Counter>,
    files_listed: Counter,
    files_matched: Counter,
    keys_enqueued: Counter,
    github_calls: Counter,
    last_success: Gauge,
}

impl ResyncMetrics {
    /// Adds the metrics to `registry`.
    pub fn register(&self, registry: &mut Registry) {
        // Every result from the start, so a dashboard sees zeros rather than no series.
        for result in ["success", "failure", "skipped"] {
            let _ = self.runs.get_or_create(&RunLabels { result });
        }
        registry.register(
            "resync_runs",
            "Sweeps run, by result (success, failure, skipped: the previous one still running)",
            self.runs.clone(),
        );
        registry.register(
            "resync_files_listed",
            "Files (blobs) listed in the repository's tree",
            self.files_listed.clone(),
        );
        registry.register(
            "resync_files_matched",
            "Files that matched a path pattern",
            self.files_matched.clone(),
        );
        registry.register(
            "resync_keys_enqueued",
            "Distinct keys enqueued at priority 0",
            self.keys_enqueued.clone(),
        );
        registry.register(
            "resync_github_calls",
            "Calls made to the GitHub API",
            self.github_calls.clone(),
        );
        registry.register(
            "resync_last_success_timestamp_seconds",
            "When the last successful sweep ended (Unix time)",
            self.last_success.clone(),
        );
    }

    /// Counts a sweep that ended with `report`.
    pub fn succeeded(&self, report: &SweepReport, ended_unix: i64) {
        self.runs
            .get_or_create(&RunLabels { result: "success" })
            .inc();
        self.add_progress(report);
        self.last_success.set(ended_unix);
    }

    /// Counts a sweep that failed after getting as far as `report`.
    pub fn failed(&self, report: &SweepReport) {
        self.runs
            .get_or_create(&RunLabels { result: "failure" })
            .inc();
        self.add_progress(report);
    }

    /// Counts a run skipped because the previous one was still going.
    pub fn skipped(&self) {
        self.runs
            .get_or_create(&RunLabels { result: "skipped" })
            .inc();
    }

    fn add_progress(&self, report: &SweepReport) {
        self.files_listed.inc_by(report.files);
        self.files_matched.inc_by(report.matched);
        self.keys_enqueued.inc_by(report.enqueued as u64);
        self.github_calls.inc_by(report.github_calls);
    }
}
