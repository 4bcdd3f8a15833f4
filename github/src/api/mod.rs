//! The GitHub API, for what a payload does not say: a repository's default branch and its
//! whole file tree (a push's changes when its commit list may be cut short; the resync's
//! sweep). Auth is `GITHUB_TOKEN`, or a GitHub App installation (`GITHUB_APP_ID`,
//! `GITHUB_APP_PRIVATE_KEY` or `GITHUB_APP_PRIVATE_KEY_FILE`, `GITHUB_INSTALLATION_ID`), or
//! none (public repositories, at a low rate limit).

mod call;
mod error;
mod setup;
mod token_source;
mod trees;

pub use error::GitHubError;
pub use setup::{AppCredentials, NOT_AN_RSA_KEY, SetupError};
pub use token_source::{TokenError, TokenFuture, TokenSource};

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use octocrab::Octocrab;
use serde::Deserialize;

use crate::key::{GITHUB_HOST, Repository};

/// An octocrab builder for `base` (`https://api.github.com` when `None`) without retries: our
/// own calls wait out rate limits, within a bound (`call.rs`), where octocrab's retry would
/// call again at once on a 429.
fn builder(
    base: Option<&str>,
) -> Result<
    octocrab::OctocrabBuilder<
        octocrab::NoSvc,
        octocrab::DefaultOctocrabBuilderConfig,
        octocrab::NoAuth,
        octocrab::NotLayerReady,
    >,
    GitHubError,
> {
    let builder = Octocrab::builder()
        .add_retry_config(octocrab::service::middleware::retry::RetryConfig::None);
    match base {
        Some(base) => Ok(builder.base_uri(base).map_err(SetupError::caused(format!(
            "invalid GitHub API address {base:?}"
        )))?),
        None => Ok(builder),
    }
}

/// A commit SHA as GitHub writes it (40 hex digits): anything else must not reach a URL.
pub fn check_sha(sha: &str) -> Result<(), GitHubError> {
    if sha.len() == 40 && sha.bytes().all(|b| b.is_ascii_hexdigit()) {
        Ok(())
    } else {
        Err(GitHubError::NotASha(sha.to_owned()))
    }
}

/// How long, in all, one call waits out rate limits by default.
pub const DEFAULT_MAX_RATE_LIMIT_WAIT: Duration = Duration::from_secs(60);

/// A client of the GitHub API.
#[derive(Clone, Debug)]
pub struct GitHubApi {
    /// Behind an `Arc` so clones share one installation token: cloning an `Octocrab` copies
    /// its token cache, and a token a clone fetched would be lost to the others.
    client: Arc<Octocrab>,
    /// How long, in all, one call waits out rate limits before it fails.
    max_wait: Duration,
    /// Calls made (answers received), rate-limited ones included; shared by clones.
    calls: Arc<AtomicU64>,
    /// The most time one try of a call may take.
    call_timeout: Duration,
    /// Where each call's token comes from, when it is not the client's own.
    tokens: Option<Arc<dyn TokenSource>>,
}

/// A repository as the API describes it.
#[derive(Clone, Debug, Deserialize)]
pub struct RepositoryInfo {
    /// `owner/name` in GitHub's own spelling (keys are made of it, so every path to a key
    /// spells it the same).
    pub full_name: String,
    /// The default branch.
    pub default_branch: String,
    /// Its web page, `https://HOST/OWNER/REPO`: the host keys name.
    #[serde(default)]
    pub html_url: Option<String>,
}

impl RepositoryInfo {
    /// The repository keys are made in: its page's host (GitHub Enterprise's too), or
    /// github.com when the answer gives no page.
    pub fn repository(&self) -> Result<Repository, GitHubError> {
        match self.html_url.as_deref().filter(|url| !url.is_empty()) {
            Some(url) => Repository::from_url(url),
            None => Repository::new(GITHUB_HOST, &self.full_name),
        }
        .map_err(GitHubError::Unkeyable)
    }
}

#[derive(Deserialize)]
struct Branch {
    commit: BranchCommit,
}

#[derive(Deserialize)]
struct BranchCommit {
    sha: String,
}

/// What a branch name may not carry into a URL path as is (its `/`s stay: GitHub reads
/// `branches/a/b` as the branch `a/b`).
const BRANCH_SEGMENT: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'/')
    .remove(b'-')
    .remove(b'_')
    .remove(b'.');

impl GitHubApi {
    /// A client of `base` (`https://api.github.com` when `None`; a GitHub Enterprise or a
    /// local fake otherwise) with the credentials the environment gives.
    pub fn from_env(base: Option<&str>) -> Result<Self, GitHubError> {
        Self::from_env_or(base, None)
    }

    /// The same, and when the environment gives no credentials (neither a GitHub App nor
    /// `GITHUB_TOKEN`), every call carries a token from `tokens` (Octo STS, say), asked for
    /// before the call; without either, calls are anonymous.
    pub fn from_env_or(
        base: Option<&str>,
        tokens: Option<Arc<dyn TokenSource>>,
    ) -> Result<Self, GitHubError> {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
        let builder = builder(base)?;
        if let Some(app) = AppCredentials::from_vars(var)? {
            let installation: u64 = var("GITHUB_INSTALLATION_ID")
                .ok_or_else(|| {
                    SetupError::new("GITHUB_APP_ID is set but GITHUB_INSTALLATION_ID is not")
                })?
                .parse()
                .map_err(SetupError::caused("GITHUB_INSTALLATION_ID is not a number"))?;
            let client = builder
                .app_from_rsa_pem(app.app_id.into(), app.pem)
                .map_err(SetupError::caused(NOT_AN_RSA_KEY))?
                .build()
                .map_err(SetupError::caused(CLIENT_FAILED))?
                .installation(installation.into())
                .map_err(SetupError::caused(
                    "failed to set up the GitHub App installation",
                ))?;
            return Ok(Self::new(client, None));
        }
        if let Some(token) = var("GITHUB_TOKEN") {
            let client = builder
                .personal_token(token)
                .build()
                .map_err(SetupError::caused(CLIENT_FAILED))?;
            return Ok(Self::new(client, None));
        }
        let client = builder.build().map_err(SetupError::caused(CLIENT_FAILED))?;
        Ok(Self::new(client, tokens))
    }

    /// Whether its calls carry tokens from a token source.
    pub fn has_token_source(&self) -> bool {
        self.tokens.is_some()
    }

    fn new(client: Octocrab, tokens: Option<Arc<dyn TokenSource>>) -> Self {
        Self {
            client: Arc::new(client),
            max_wait: DEFAULT_MAX_RATE_LIMIT_WAIT,
            calls: Arc::default(),
            call_timeout: call::CALL_TIMEOUT,
            tokens,
        }
    }

    /// The same client, each try of a call bounded by `call_timeout`.
    pub fn with_call_timeout(self, call_timeout: Duration) -> Self {
        Self {
            call_timeout,
            ..self
        }
    }

    /// The same client, waiting out rate limits for up to `max_wait` per call.
    pub fn with_max_rate_limit_wait(self, max_wait: Duration) -> Self {
        Self { max_wait, ..self }
    }

    /// The calls this client (and its clones) made to the API so far.
    pub fn calls(&self) -> u64 {
        self.calls.load(Ordering::Relaxed)
    }

    /// The repository: its name as GitHub spells it, its default branch.
    pub async fn repository(&self, repository: &str) -> Result<RepositoryInfo, GitHubError> {
        self.get_json(&format!("/repos/{repository}"))
            .await
            .map_err(GitHubError::during(format!(
                "failed to get the repository {repository}"
            )))
    }

    /// The repository's default branch.
    pub async fn default_branch(&self, repository: &str) -> Result<String, GitHubError> {
        Ok(self.repository(repository).await?.default_branch)
    }

    /// The commit SHA at the head of `branch`.
    pub async fn branch_head(&self, repository: &str, branch: &str) -> Result<String, GitHubError> {
        let name = percent_encoding::utf8_percent_encode(branch, BRANCH_SEGMENT);
        let found: Branch = self
            .get_json(&format!("/repos/{repository}/branches/{name}"))
            .await
            .map_err(GitHubError::during(format!(
                "failed to get the branch {branch} of {repository}"
            )))?;
        check_sha(&found.commit.sha)?;
        Ok(found.commit.sha)
    }
}

const CLIENT_FAILED: &str = "failed to set up the GitHub client";

#[cfg(test)]
mod tests {
    use super::call::tests::api_of;

    #[tokio::test]
    async fn branch_names_should_reach_github_as_written() {
        let router = axum::Router::new().route(
            "/repos/o/r/branches/{*name}",
            axum::routing::get(
                |axum::extract::Path(name): axum::extract::Path<String>| async move {
                    let sha = if name == "release/a+b#c%d" {
                        "0123456789abcdef0123456789abcdef01234567"
                    } else {
                        "not this one"
                    };
                    format!(r#"{{"name":"{name}","commit":{{"sha":"{sha}"}}}}"#)
                },
            ),
        );
        let api = api_of(router).await;
        assert_eq!(
            api.branch_head("o/r", "release/a+b#c%d").await.unwrap(),
            "0123456789abcdef0123456789abcdef01234567"
        );
        let err = api.branch_head("o/r", "other").await.unwrap_err();
        assert!(err.to_string().contains("not a commit SHA"), "{err}");
    }
}
