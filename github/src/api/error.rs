//! Why a GitHub API call, or setting up its client, failed.

use std::time::Duration;

use http::StatusCode;

use super::setup::SetupError;
use crate::key::InvalidRepository;

/// A GitHub API failure; the message names the call, and the sources say why.
#[derive(Debug, thiserror::Error)]
pub enum GitHubError {
    /// The environment's address or credentials cannot be used.
    #[error(transparent)]
    Setup(#[from] SetupError),
    /// No token could be had for the call (its source's error says why; never a token).
    #[error("failed to get a GitHub token for {route}")]
    Token {
        /// The route to be called.
        route: String,
        /// Why.
        #[source]
        source: super::TokenError,
    },
    /// The call got no answer.
    #[error("failed to call the GitHub API at {route}")]
    Call {
        /// The route called.
        route: String,
        /// Why.
        #[source]
        source: octocrab::Error,
    },
    /// A try of the call took longer than allowed.
    #[error("the GitHub API did not answer {route} within {after:?}")]
    TimedOut {
        /// The route called.
        route: String,
        /// The time allowed.
        after: Duration,
    },
    /// The answer's body could not be read.
    #[error("failed to read GitHub's answer for {route}")]
    Read {
        /// The route called.
        route: String,
        /// Why.
        #[source]
        source: octocrab::Error,
    },
    /// GitHub answered with an error (not a rate limit).
    #[error("GitHub answered {status} for {route}: {message}")]
    Status {
        /// The route called.
        route: String,
        /// The answer's status.
        status: StatusCode,
        /// The answer's body.
        message: String,
    },
    /// A rate limit lifts later than a call waits.
    #[error(
        "GitHub's rate limit for {route} lifts in {wait:?}, beyond the {max_wait:?} a call waits"
    )]
    RateLimited {
        /// The route called.
        route: String,
        /// When the limit lifts.
        wait: Duration,
        /// How long a call waits in all.
        max_wait: Duration,
    },
    /// The answer is not what the API documents.
    #[error("unexpected answer from GitHub for {what}")]
    Unexpected {
        /// What was asked for.
        what: String,
        /// Why it does not parse.
        #[source]
        source: serde_json::Error,
    },
    /// The API named a repository no key can be made in.
    #[error("GitHub's answer names a repository no key can be made in")]
    Unkeyable(#[source] InvalidRepository),
    /// A value that must be a commit SHA is not one.
    #[error("{0:?} is not a commit SHA")]
    NotASha(String),
    /// GitHub cut short a listing of a single tree level.
    #[error("GitHub cut short a single tree level of {repository} at {prefix:?}")]
    TreeCut {
        /// `owner/repo`.
        repository: String,
        /// The level's path prefix.
        prefix: String,
    },
    /// A push's diff would take more calls than allowed.
    #[error("the push touched more than {limit} directories of {repository}")]
    TooManyDirectories {
        /// `owner/repo`.
        repository: String,
        /// The most tree listings a diff may take.
        limit: usize,
    },
    /// What was being done when the failure in `source` happened.
    #[error("{what}")]
    During {
        /// What was being done.
        what: String,
        /// The failure.
        #[source]
        source: Box<GitHubError>,
    },
}

impl GitHubError {
    /// Whether the same call may succeed later: no answer, a stalled or unread one, a server
    /// error (5xx) or a rate limit; not a refusal, a setup error or an answer that does not
    /// parse.
    pub fn is_transient(&self) -> bool {
        match self {
            Self::Call { .. } | Self::TimedOut { .. } | Self::Read { .. } | Self::Token { .. } => {
                true
            }
            Self::RateLimited { .. } => true,
            Self::Status { status, .. } => status.is_server_error(),
            Self::During { source, .. } => source.is_transient(),
            Self::Setup(_)
            | Self::Unexpected { .. }
            | Self::Unkeyable(_)
            | Self::NotASha(_)
            | Self::TreeCut { .. }
            | Self::TooManyDirectories { .. } => false,
        }
    }

    /// Wraps a failure with what was being done.
    pub(crate) fn during(what: impl Into<String>) -> impl FnOnce(Self) -> Self {
        let what = what.into();
        move |source| Self::During {
            what,
            source: Box::new(source),
        }
    }
}
