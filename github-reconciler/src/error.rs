//! What a GitHub reconcile fails with, and what the queue does about it.

use std::time::Duration;

use crate::auth::AuthError;

/// A failed call, or a failed reconcile. How the queue takes each (see
/// [`crate::GitHub`]): a rate limit is a snooze until it lifts, [`Error::NoRetry`] drops the
/// key, anything else is retried with backoff.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// No token for the call.
    #[error("no GitHub token")]
    Auth(#[from] AuthError),
    /// The call got no answer.
    #[error("failed to call GitHub: {method} {path}")]
    Call {
        /// The method.
        method: &'static str,
        /// The route called.
        path: String,
        /// Why.
        #[source]
        source: reqwest::Error,
    },
    /// GitHub answered with an error that is not a rate limit.
    #[error("GitHub answered {status} for {method} {path}: {message}")]
    Status {
        /// The method.
        method: &'static str,
        /// The route called.
        path: String,
        /// The answer's status.
        status: u16,
        /// GitHub's message.
        message: String,
    },
    /// A rate limit (primary or secondary) that lifts after `wait`.
    #[error("GitHub's rate limit for {method} {path} lifts in {wait:?}")]
    RateLimited {
        /// The method.
        method: &'static str,
        /// The route called.
        path: String,
        /// When it lifts.
        wait: Duration,
    },
    /// The answer is not what the API documents.
    #[error("unexpected answer from GitHub for {method} {path}")]
    Decode {
        /// The method.
        method: &'static str,
        /// The route called.
        path: String,
        /// Why it does not parse.
        #[source]
        source: serde_json::Error,
    },
    /// A read-only status manager was asked to write.
    #[error("the status manager of {identity:?} is read-only")]
    ReadOnly {
        /// Its identity.
        identity: String,
    },
    /// A failure that retrying cannot fix: the key is dropped.
    #[error("{0}")]
    NoRetry(String),
    /// Any other failure of the reconciler's own: retried.
    #[error(transparent)]
    Other(Box<dyn std::error::Error + Send + Sync>),
}

impl Error {
    /// A failure retrying cannot fix (the key is dropped).
    pub fn no_retry(message: impl Into<String>) -> Self {
        Self::NoRetry(message.into())
    }

    /// Any other failure (the key is retried with backoff).
    pub fn other(error: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        Self::Other(error.into())
    }

    /// GitHub's answer's status, for an error answer.
    pub fn status(&self) -> Option<u16> {
        match self {
            Self::Status { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// Whether GitHub answered 404 Not Found (or 410 Gone).
    pub fn is_not_found(&self) -> bool {
        matches!(self.status(), Some(404 | 410))
    }

    /// How long until a rate limit lifts, for a rate limit.
    pub fn rate_limit(&self) -> Option<Duration> {
        match self {
            Self::RateLimited { wait, .. } => Some(*wait),
            _ => None,
        }
    }
}
