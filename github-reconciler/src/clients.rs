//! Clients per org/repo: one per token scope, made on first use and kept.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use github::api::SetupError;
use reconciler::GitHubKey;

use crate::auth::{Auth, AuthError};
use crate::client::{GitHubClient, RequestCounts};
use crate::metrics::Metrics;

/// The public GitHub API.
pub const DEFAULT_API_URL: &str = "https://api.github.com";

/// The clients of one reconciler, one per scope its tokens are asked for.
#[derive(Debug)]
pub struct Clients {
    http: reqwest::Client,
    base: String,
    auth: Arc<Auth>,
    conditional: bool,
    metrics: Arc<Metrics>,
    by_scope: Mutex<HashMap<crate::Scope, GitHubClient>>,
}

impl Clients {
    /// Clients of the API at `base` with tokens from `auth`, conditional requests on.
    pub fn new(base: &str, auth: Auth) -> Self {
        Self {
            http: reqwest::Client::new(),
            base: base.to_owned(),
            auth: Arc::new(auth),
            conditional: true,
            metrics: Arc::default(),
            by_scope: Mutex::default(),
        }
    }

    /// Clients of the API at `GITHUB_API_URL` (the public API unless set) with the credentials
    /// the environment names ([`Auth::from_env`]); conditional requests on unless
    /// `GITHUB_CONDITIONAL_REQUESTS=false`.
    pub fn from_env() -> Result<Self, AuthError> {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
        let base = var("GITHUB_API_URL").unwrap_or_else(|| DEFAULT_API_URL.to_owned());
        let conditional = match var("GITHUB_CONDITIONAL_REQUESTS").as_deref() {
            None | Some("true") => true,
            Some("false") => false,
            Some(other) => {
                return Err(SetupError::new(format!(
                    "GITHUB_CONDITIONAL_REQUESTS is {other:?}: it takes \"true\" or \"false\""
                ))
                .into());
            }
        };
        Ok(Self::new(&base, Auth::from_env(&base)?).conditional_requests(conditional))
    }

    /// The same clients, remembering answers by ETag (`true`) or not.
    pub fn conditional_requests(self, on: bool) -> Self {
        Self {
            conditional: on,
            ..self
        }
    }

    /// The client for `owner/repo`.
    pub fn for_repo(&self, owner: &str, repo: &str) -> GitHubClient {
        let scope = self.auth.scope_of(owner, repo);
        let mut by_scope = self.by_scope.lock().expect("the clients");
        by_scope
            .entry(scope.clone())
            .or_insert_with(|| {
                GitHubClient::new(
                    self.http.clone(),
                    &self.base,
                    self.auth.clone(),
                    scope,
                    self.conditional,
                    self.metrics.clone(),
                )
            })
            .clone()
    }

    /// The client for the repository `key` names.
    pub fn for_key(&self, key: &GitHubKey) -> GitHubClient {
        self.for_repo(&key.owner, &key.repo)
    }

    /// The calls all these clients made so far.
    pub fn counts(&self) -> RequestCounts {
        self.metrics.counts()
    }

    /// Their metrics (GitHub calls, and reconciles by outcome when served by [`crate::GitHub`]).
    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.metrics
    }
}
