//! Google ID tokens from the metadata server, which Cloud Run requires of service-to-service
//! calls: the dispatcher presents one, for the reconciler service's URL, on every call.

use std::time::{Duration, Instant};

use tokio::sync::Mutex;

/// Tokens last an hour; one is reused for a little less.
const REUSE_FOR: Duration = Duration::from_secs(50 * 60);
/// How long a token request may take.
const FETCH_TIMEOUT: Duration = Duration::from_secs(10);

/// A cached source of ID tokens for one audience.
#[derive(Debug)]
pub struct IdTokenSource {
    audience: String,
    url: String,
    client: reqwest::Client,
    cached: Mutex<Option<(String, Instant)>>,
}

/// An ID token could not be had.
#[derive(Debug, thiserror::Error)]
#[error("failed to get an ID token for {audience:?} from the metadata server at {url}")]
pub struct IdTokenError {
    audience: String,
    url: String,
    /// The request's failure, or the metadata server's refusal.
    #[source]
    source: Box<dyn std::error::Error + Send + Sync>,
}

impl IdTokenSource {
    /// Tokens for `audience` (a Cloud Run service's URL) from the metadata server:
    /// `GCE_METADATA_HOST` when set, else `metadata.google.internal`.
    pub fn new(audience: impl Into<String>) -> Self {
        let host = std::env::var("GCE_METADATA_HOST")
            .ok()
            .filter(|h| !h.is_empty())
            .unwrap_or_else(|| "metadata.google.internal".to_owned());
        Self::with_metadata_host(audience, &host)
    }

    /// Tokens for `audience` from the metadata server at `host` (`HOST:PORT`).
    pub fn with_metadata_host(audience: impl Into<String>, host: &str) -> Self {
        Self {
            audience: audience.into(),
            url: format!(
                "http://{host}/computeMetadata/v1/instance/service-accounts/default/identity"
            ),
            client: reqwest::Client::new(),
            cached: Mutex::new(None),
        }
    }

    /// A token, fetched or reused.
    pub async fn token(&self) -> Result<String, IdTokenError> {
        let mut cached = self.cached.lock().await;
        if let Some((token, fetched)) = cached.as_ref()
            && fetched.elapsed() < REUSE_FOR
        {
            return Ok(token.clone());
        }
        let token = self.fetch().await?;
        *cached = Some((token.clone(), Instant::now()));
        Ok(token)
    }

    async fn fetch(&self) -> Result<String, IdTokenError> {
        let failed = |source: Box<dyn std::error::Error + Send + Sync>| IdTokenError {
            audience: self.audience.clone(),
            url: self.url.clone(),
            source,
        };
        let response = self
            .client
            .get(&self.url)
            .query(&[("audience", self.audience.as_str()), ("format", "full")])
            .header("Metadata-Flavor", "Google")
            .timeout(FETCH_TIMEOUT)
            .send()
            .await
            .map_err(|e| failed(e.into()))?;
        let status = response.status();
        let body = response.text().await.map_err(|e| failed(e.into()))?;
        if !status.is_success() {
            return Err(failed(
                format!("it answered {status}: {}", body.trim()).into(),
            ));
        }
        Ok(body.trim().to_owned())
    }
}

/// The audience Cloud Run expects for a service at `url`: its scheme and host.
pub(crate) fn audience_of(url: &str) -> String {
    match url.split_once("://") {
        Some((scheme, rest)) => {
            let host = rest.split('/').next().unwrap_or(rest);
            format!("{scheme}://{host}")
        }
        None => url.to_owned(),
    }
}
