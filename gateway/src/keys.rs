//! Keys from events: a route's rule applied to one event.

use std::collections::BTreeSet;

use tracing::warn;

use github::PathPatterns;
use github::api::{GitHubApi, GitHubError, check_sha};

use crate::incoming::Incoming;
use crate::payload::Payload;
use crate::route::{KeyRule, Route};
use crate::webhook::TYPE_PREFIX;

/// A push payload lists at most this many commits; one that lists this many may have been
/// cut short, and its changes are read from the API instead.
const MAX_PUSH_COMMITS: usize = 20;
const ZERO_SHA: &str = "0000000000000000000000000000000000000000";

/// Why a route could not make an event's keys.
#[derive(Debug, thiserror::Error)]
pub enum KeysError {
    /// The push's payload does not parse.
    #[error("the push's payload is not valid")]
    Payload(#[from] serde_json::Error),
    /// The GitHub API failed.
    #[error(transparent)]
    GitHub(#[from] GitHubError),
}

/// The keys `route` makes of `event` (none when its filters do not match or it has no key).
/// The API is asked only for a push whose commit list may be incomplete.
pub(crate) async fn keys_for(
    route: &Route,
    event: &Incoming,
    github: Option<&GitHubApi>,
) -> Result<Vec<String>, KeysError> {
    if !route.accepts(|name| event.attribute(name).map(str::to_owned)) {
        return Ok(Vec::new());
    }
    match &route.key {
        KeyRule::Extension(name) => Ok(event
            .extension(name)
            .filter(|v| !v.is_empty())
            .map(|v| vec![v.to_owned()])
            .unwrap_or_default()),
        KeyRule::Path {
            repository,
            patterns,
        } => {
            // Boxed: the GitHub API calls make this future some 7 KB, which every event's
            // future would otherwise carry (and copy) for the common extension routes.
            Box::pin(push_keys(repository, patterns, event, github)).await
        }
    }
}

async fn push_keys(
    repository: &str,
    patterns: &PathPatterns,
    event: &Incoming,
    github: Option<&GitHubApi>,
) -> Result<Vec<String>, KeysError> {
    let Some(delivery) = &event.github else {
        return Ok(Vec::new());
    };
    if event.ty != format!("{TYPE_PREFIX}push") {
        return Ok(Vec::new());
    }
    let payload: Payload<'_> = serde_json::from_slice(&delivery.body)?;
    let Some(repo) = &payload.repository else {
        return Ok(Vec::new());
    };
    if !repo.full_name.eq_ignore_ascii_case(repository) || payload.deleted {
        return Ok(Vec::new());
    }
    let Some(keyed) = repo.keyed() else {
        return Ok(Vec::new());
    };
    let branch = match &repo.default_branch {
        Some(branch) => branch.to_string(),
        None => match github {
            Some(api) => api.default_branch(&repo.full_name).await?,
            None => return Ok(Vec::new()),
        },
    };
    if payload.git_ref.as_deref() != Some(&format!("refs/heads/{branch}")) {
        return Ok(Vec::new());
    }
    let commits = payload.commits.as_deref().unwrap_or_default();
    let before = payload.before.as_deref().unwrap_or(ZERO_SHA);
    let after = payload.after.as_deref().unwrap_or(ZERO_SHA);
    let maybe_cut = commits.len() >= MAX_PUSH_COMMITS || payload.forced;
    let files: Vec<String> = match (maybe_cut, github) {
        // A branch created by the push: every file of its tree is new.
        (true, Some(api)) if before == ZERO_SHA => {
            check_sha(after)?;
            api.files(&repo.full_name, after).await?
        }
        (true, Some(api)) => api.changed_files(&repo.full_name, before, after).await?,
        (cut, _) => {
            if cut {
                warn!(repository = %repo.full_name, "a push may list only some of its commits, and no GitHub API is configured: keys come from the commits it lists");
            }
            commits
                .iter()
                .flat_map(|c| c.added.iter().chain(&c.removed).chain(&c.modified))
                .map(|p| p.to_string())
                .collect()
        }
    };
    let keys: BTreeSet<String> = files
        .iter()
        .filter_map(|path| patterns.key(&keyed, &branch, path))
        .map(|key| key.to_string())
        .collect();
    Ok(keys.into_iter().collect())
}
