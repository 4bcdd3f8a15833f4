//! Octo STS: GitHub tokens for a workload that has no GitHub secret of its own.
//!
//! The exchange, as Octo STS defines it: the workload presents an OIDC token (here a Google ID
//! token from the metadata server, whose audience is the Octo STS domain) as a bearer token to
//! `GET <OCTO_STS_URL>/sts/exchange?scope=<org or org/repo>&identity=<name>`. Octo STS checks it
//! against the trust policy `.github/chainguard/<name>.sts.yaml` in the scope and answers
//! `{"token": "..."}`: a GitHub installation token, valid for an hour. A refusal answers an
//! error status with `{"message": "..."}`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use github::api::{TokenFuture, TokenSource};
use reconciler::IdTokenSource;
use serde::Deserialize;

use crate::auth::AuthError;
use crate::token::{Scope, Token};

/// The public Octo STS.
pub const DEFAULT_OCTO_STS_URL: &str = "https://octo-sts.dev";

/// GitHub installation tokens last an hour; one is reused for 50 minutes, so no call starts
/// with a token about to expire.
const REUSE_FOR: Duration = Duration::from_secs(50 * 60);
/// How long one exchange may take.
const EXCHANGE_TIMEOUT: Duration = Duration::from_secs(30);
/// How much of a refusal's message an error carries.
const MESSAGE_LIMIT: usize = 300;

/// Tokens from Octo STS for one identity, cached per scope.
#[derive(Debug)]
pub struct OctoSts {
    identity: String,
    exchange_url: String,
    id_tokens: IdTokenSource,
    http: reqwest::Client,
    reuse_for: Duration,
    /// Per scope, its own lock: an exchange for one repository does not hold up another's.
    cache: Mutex<HashMap<Scope, Arc<Slot>>>,
}

/// One scope's token and when it was had, behind the lock its exchange holds.
type Slot = tokio::sync::Mutex<Option<(Token, Instant)>>;

#[derive(Deserialize)]
struct Exchanged {
    token: String,
}

#[derive(Deserialize)]
struct Refusal {
    message: String,
}

impl OctoSts {
    /// Tokens for `identity` from the Octo STS at `url` (`https://octo-sts.dev` or another),
    /// presenting ID tokens from the metadata server (`GCE_METADATA_HOST` when set) for the
    /// audience Octo STS expects: its host name.
    pub fn new(identity: impl Into<String>, url: &str) -> Self {
        let audience = audience_of(url);
        Self::with_id_tokens(identity, url, IdTokenSource::new(audience))
    }

    /// The same, with ID tokens from `id_tokens`.
    pub fn with_id_tokens(
        identity: impl Into<String>,
        url: &str,
        id_tokens: IdTokenSource,
    ) -> Self {
        Self {
            identity: identity.into(),
            exchange_url: format!("{}/sts/exchange", url.trim_end_matches('/')),
            id_tokens,
            http: reqwest::Client::new(),
            reuse_for: REUSE_FOR,
            cache: Mutex::default(),
        }
    }

    /// The same, reusing a token for `reuse_for` (50 minutes unless set).
    pub fn reuse_for(self, reuse_for: Duration) -> Self {
        Self { reuse_for, ..self }
    }

    /// The identity: the trust policy's name.
    pub fn identity(&self) -> &str {
        &self.identity
    }

    /// A token for `scope`, reused while fresh.
    pub async fn token(&self, scope: &Scope) -> Result<Token, AuthError> {
        let slot = {
            let mut cache = self.cache.lock().expect("the token cache");
            cache.entry(scope.clone()).or_default().clone()
        };
        // Held across the exchange so that concurrent reconciles of one scope exchange once.
        // If the caller is dropped midway the lock is released and the next caller exchanges:
        // the cache is not bound to any one reconcile's lifetime.
        let mut slot = slot.lock().await;
        if let Some((token, fetched)) = slot.as_ref()
            && fetched.elapsed() < self.reuse_for
        {
            return Ok(token.clone());
        }
        let token = self.exchange(scope).await?;
        *slot = Some((token.clone(), Instant::now()));
        Ok(token)
    }

    async fn exchange(&self, scope: &Scope) -> Result<Token, AuthError> {
        let (identity, scope_text) = (self.identity.clone(), scope.to_string());
        let id_token = self
            .id_tokens
            .token()
            .await
            .map_err(|source| AuthError::IdToken {
                identity: identity.clone(),
                scope: scope_text.clone(),
                source,
            })?;
        let unreachable = |source| AuthError::Exchange {
            identity: identity.clone(),
            scope: scope_text.clone(),
            url: self.exchange_url.clone(),
            source,
        };
        let response = self
            .http
            .get(&self.exchange_url)
            .query(&[("scope", scope_text.as_str()), ("identity", &self.identity)])
            .bearer_auth(id_token)
            .timeout(EXCHANGE_TIMEOUT)
            .send()
            .await
            .map_err(unreachable)?;
        let status = response.status();
        let body = response.text().await.map_err(unreachable)?;
        if !status.is_success() {
            let message = serde_json::from_str::<Refusal>(&body)
                .map(|r| r.message)
                .unwrap_or(body);
            let mut message = message.trim().to_owned();
            if message.len() > MESSAGE_LIMIT {
                let cut = (0..=MESSAGE_LIMIT)
                    .rev()
                    .find(|&i| message.is_char_boundary(i))
                    .unwrap_or(0);
                message.truncate(cut);
                message.push('…');
            }
            return Err(AuthError::Refused {
                identity,
                scope: scope_text,
                status: status.as_u16(),
                message,
            });
        }
        // The body holds the token: a parse error must not quote it, so it is not a source.
        let exchanged: Exchanged =
            serde_json::from_str(&body).map_err(|_| AuthError::Unexpected {
                identity,
                scope: scope_text,
            })?;
        Ok(Token::new(exchanged.token))
    }
}

/// The audience of ID tokens for the Octo STS at `url`: its host name.
fn audience_of(url: &str) -> String {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    let host = rest.split(['/', '?']).next().unwrap_or(rest);
    host.rsplit_once(':')
        .filter(|(_, port)| port.chars().all(|c| c.is_ascii_digit()))
        .map_or(host, |(name, _)| name)
        .to_owned()
}

/// Octo STS tokens of one scope, as the github crate's [`TokenSource`]: what the resync's
/// API client calls with, so a sweep needs no stored GitHub secret.
#[derive(Debug)]
pub struct ScopedTokens {
    sts: Arc<OctoSts>,
    scope: Scope,
}

impl OctoSts {
    /// Its tokens for `scope`, as a [`TokenSource`] (reused and renewed as [`OctoSts::token`]
    /// does).
    pub fn tokens_for(self: Arc<Self>, scope: Scope) -> Arc<dyn TokenSource> {
        Arc::new(ScopedTokens { sts: self, scope })
    }
}

impl TokenSource for ScopedTokens {
    fn token(&self) -> TokenFuture<'_> {
        Box::pin(async move {
            let token = self.sts.token(&self.scope).await?;
            Ok(token.secret().to_owned())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_audience_should_be_the_host_name() {
        assert_eq!(audience_of("https://octo-sts.dev"), "octo-sts.dev");
        assert_eq!(audience_of("https://octo-sts.dev/"), "octo-sts.dev");
        assert_eq!(audience_of("http://127.0.0.1:8080/x"), "127.0.0.1");
    }
}
