//! Two reconcilers written with the toolkit (`github-reconciler`), as a user writes them:
//!
//! * [`pr_title_check`]: a pull request's title against Conventional Commits, reported as a
//!   Check Run on its head commit.
//! * [`config_sync`]: a repository's YAML files validated, each reported as a Check Run
//!   `identity (path)` on the commit, in the shape of the reference's path reconcilers.
//!
//! Each is a module here and a ten-line `main` beside it (`pr_title_check.rs`,
//! `config_sync.rs`), so that the end-to-end tests can serve the very same reconciler.

pub mod config_sync;
pub mod pr_title_check;
