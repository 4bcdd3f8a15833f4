//! GitHub for the workqueue's parts: the keys that name GitHub resources, the path patterns
//! that turn a repository's files into keys, and the API client for what an event does not say.
//!
//! # Layout
//! * [`key`]: [`GitHubKey`], made by the gateway and the resync and parsed by reconcilers, one
//!   type for both; [`Repository`], what keys are made in (its host from the event).
//! * [`paths`]: [`PathPatterns`], which files become keys, shared by the gateway's path routes
//!   and the resync.
//! * [`rate_limit`]: how long an answer asks a client to wait, read one way for every client.
//! * [`api`] (feature `api`, on by default): [`api::GitHubApi`], calls with retries, rate
//!   limits waited out, and token or GitHub App auth; trees and default branches.

#[cfg(feature = "api")]
pub mod api;
pub mod key;
pub mod paths;
pub mod rate_limit;

pub use key::{GitHubKey, InvalidGitHubKey, InvalidRepository, Repository, Target};
pub use paths::{PathPatterns, PatternError};
