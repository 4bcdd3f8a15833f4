//! Where a client's GitHub tokens come from, chosen from the environment.

use github::api::{AppCredentials, SetupError};

use crate::app::GitHubApp;
use crate::octo_sts::{DEFAULT_OCTO_STS_URL, OctoSts};
use crate::token::{Scope, Token};

/// How tokens are had.
#[derive(Debug)]
pub enum Auth {
    /// One token for everything (`GITHUB_TOKEN`).
    Token(Token),
    /// A GitHub App: an installation token per owner.
    App(GitHubApp),
    /// Octo STS: a token per scope for one identity.
    OctoSts {
        /// The exchange.
        sts: OctoSts,
        /// Whether tokens are asked per org rather than per repository.
        org_scoped: bool,
    },
    /// No token: public repositories only, at a low rate limit.
    Anonymous,
}

/// A token could not be had. Retrying may help (the metadata server, Octo STS or GitHub may
/// answer next time, a trust policy may be fixed), except for [`AuthError::Setup`]. No variant
/// carries a token.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// The environment names credentials that cannot be used.
    #[error(transparent)]
    Setup(#[from] SetupError),
    /// No ID token to present to Octo STS.
    #[error("failed to get an ID token for Octo STS (identity {identity:?}, scope {scope})")]
    IdToken {
        /// The trust policy's name.
        identity: String,
        /// The scope asked for.
        scope: String,
        /// Why.
        #[source]
        source: reconciler::IdTokenError,
    },
    /// Octo STS did not answer.
    #[error("failed to reach Octo STS at {url} (identity {identity:?}, scope {scope})")]
    Exchange {
        /// The trust policy's name.
        identity: String,
        /// The scope asked for.
        scope: String,
        /// The exchange's address.
        url: String,
        /// Why.
        #[source]
        source: reqwest::Error,
    },
    /// Octo STS refused the exchange (no trust policy, or one that does not match).
    #[error("Octo STS refused identity {identity:?} for scope {scope} ({status}): {message}")]
    Refused {
        /// The trust policy's name.
        identity: String,
        /// The scope asked for.
        scope: String,
        /// The answer's status.
        status: u16,
        /// Octo STS's message.
        message: String,
    },
    /// Octo STS answered a success that holds no token.
    #[error("Octo STS answered identity {identity:?} for scope {scope} without a token")]
    Unexpected {
        /// The trust policy's name.
        identity: String,
        /// The scope asked for.
        scope: String,
    },
    /// The GitHub App is not installed on the scope's owner, or the lookup failed.
    #[error("failed to find the GitHub App's installation for {scope}")]
    Installation {
        /// The scope asked for.
        scope: String,
        /// Why.
        #[source]
        source: octocrab::Error,
    },
    /// The installation gave no token.
    #[error("failed to get a GitHub App installation token for {scope}")]
    AppToken {
        /// The scope asked for.
        scope: String,
        /// Why.
        #[source]
        source: octocrab::Error,
    },
}

impl Auth {
    /// The credentials the environment names, for the API at `base`, the first found of:
    /// * `GITHUB_TOKEN`: one token;
    /// * `GITHUB_APP_ID` with `GITHUB_APP_PRIVATE_KEY` (or `GITHUB_APP_PRIVATE_KEY_FILE`): a
    ///   GitHub App, its installation looked up per owner;
    /// * `OCTO_IDENTITY`: Octo STS at `OCTO_STS_URL` (the public one unless set), tokens per
    ///   repository, or per org with `OCTO_STS_SCOPE=org`;
    /// * none: anonymous.
    pub fn from_env(base: &str) -> Result<Self, AuthError> {
        Self::from_vars(base, |name| {
            std::env::var(name).ok().filter(|v| !v.is_empty())
        })
    }

    /// The same, reading variables through `var`.
    pub fn from_vars(base: &str, var: impl Fn(&str) -> Option<String>) -> Result<Self, AuthError> {
        if let Some(token) = var("GITHUB_TOKEN") {
            return Ok(Self::Token(Token::new(token)));
        }
        if let Some(app) = AppCredentials::from_vars(&var)? {
            return Ok(Self::App(GitHubApp::new(app.app_id, &app.pem, base)?));
        }
        if let Some(identity) = var("OCTO_IDENTITY") {
            let url = var("OCTO_STS_URL").unwrap_or_else(|| DEFAULT_OCTO_STS_URL.to_owned());
            let org_scoped = match var("OCTO_STS_SCOPE").as_deref() {
                None | Some("repo") => false,
                Some("org") => true,
                Some(other) => {
                    return Err(SetupError::new(format!(
                        "OCTO_STS_SCOPE is {other:?}: it takes \"repo\" or \"org\""
                    ))
                    .into());
                }
            };
            return Ok(Self::OctoSts {
                sts: OctoSts::new(identity, &url),
                org_scoped,
            });
        }
        Ok(Self::Anonymous)
    }

    /// The scope a token for `owner/repo` is asked for: the org for org-scoped Octo STS, the
    /// repository otherwise (a token or an App's installation ignores the repository).
    pub fn scope_of(&self, owner: &str, repo: &str) -> Scope {
        match self {
            Self::OctoSts {
                org_scoped: true, ..
            } => Scope::org(owner),
            _ => Scope::repo(owner, repo),
        }
    }

    /// A token for `scope`, or none for anonymous calls.
    pub async fn token(&self, scope: &Scope) -> Result<Option<Token>, AuthError> {
        match self {
            Self::Token(token) => Ok(Some(token.clone())),
            Self::App(app) => app.token(scope).await.map(Some),
            Self::OctoSts { sts, .. } => sts.token(scope).await.map(Some),
            Self::Anonymous => Ok(None),
        }
    }
}
