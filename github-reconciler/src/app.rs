//! A GitHub App: an installation token per owner, the installation looked up once and its
//! client kept. octocrab signs the App's JWT and caches each installation's token, renewing it
//! before it expires.

use std::collections::HashMap;
use std::sync::Arc;

use github::api::{NOT_AN_RSA_KEY, SetupError};
use octocrab::Octocrab;
use octocrab::secrecy::ExposeSecret;
use tokio::sync::Mutex;

use crate::auth::AuthError;
use crate::token::{Scope, Token};

/// Installation tokens of one GitHub App.
#[derive(Debug)]
pub struct GitHubApp {
    app: Octocrab,
    /// Per owner, the installation's own client (it holds the token and renews it). Behind an
    /// `Arc`: cloning an `Octocrab` copies its token cache, so a token a clone fetched would
    /// be lost and every call would mint a new one.
    installations: Mutex<HashMap<String, Arc<Octocrab>>>,
}

impl GitHubApp {
    /// The App `app_id`, signing with the RSA private key `pem`, at the API `base`.
    pub fn new(app_id: u64, pem: &str, base: &str) -> Result<Self, AuthError> {
        let app = Octocrab::builder()
            .base_uri(base)
            .map_err(SetupError::caused(format!(
                "invalid GitHub API address {base:?}"
            )))?
            .app_from_rsa_pem(app_id.into(), pem)
            .map_err(SetupError::caused(NOT_AN_RSA_KEY))?
            .build()
            .map_err(SetupError::caused("failed to set up the GitHub App client"))?;
        Ok(Self {
            app,
            installations: Mutex::default(),
        })
    }

    /// A token of the installation on `scope`'s owner.
    pub async fn token(&self, scope: &Scope) -> Result<Token, AuthError> {
        let installation = self.installation(scope).await?;
        let token =
            installation
                .installation_token()
                .await
                .map_err(|source| AuthError::AppToken {
                    scope: scope.to_string(),
                    source,
                })?;
        Ok(Token::new(token.expose_secret()))
    }

    /// The installation's client, looked up on first use: through the repository when the
    /// scope names one (that works for user accounts too), else through the org.
    async fn installation(&self, scope: &Scope) -> Result<Arc<Octocrab>, AuthError> {
        let mut installations = self.installations.lock().await;
        if let Some(found) = installations.get(&scope.owner) {
            return Ok(found.clone());
        }
        let apps = self.app.apps();
        let found = match &scope.repo {
            Some(repo) => apps.get_repository_installation(&scope.owner, repo).await,
            None => apps.get_org_installation(&scope.owner).await,
        }
        .map_err(|source| AuthError::Installation {
            scope: scope.to_string(),
            source,
        })?;
        let client = self
            .app
            .installation(found.id)
            .map_err(|source| AuthError::Installation {
                scope: scope.to_string(),
                source,
            })?;
        let client = Arc::new(client);
        installations.insert(scope.owner.clone(), client.clone());
        Ok(client)
    }
}
