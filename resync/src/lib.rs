//! The resync: events get lost, so every file of a repository that matches the path patterns
//! is enqueued at priority 0 once per period anyway, each key delayed by an amount derived
//! from the key and the run time so the keys spread across the period (docs/architecture.md,
//! "Resync").
//!
//! A [`Sweep`] is one run: the default branch's tree listed through the GitHub API (the
//! `github` crate's client, rate limits waited out), its paths matched with the
//! [`PathPatterns`](github::PathPatterns) the gateway's path routes use too, each distinct key
//! enqueued through the workqueue's `Enqueue` seam with a bounded
//! number in flight and retries. [`schedule::run`] repeats sweeps on the period's cron
//! schedule.

pub mod metrics;
pub mod period;
pub mod schedule;
pub mod sweep;

pub use metrics::ResyncMetrics;
pub use period::Period;
pub use sweep::{SetupError, Sweep, SweepError, SweepReport};
