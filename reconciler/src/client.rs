//! A gRPC client of the `WorkqueueService`: a receiver, to enqueue keys, or a reconciler, to
//! call it. An `https://` address (a Cloud Run service) is reached over TLS, and every call
//! carries a Google ID token for the service, from the metadata server.

use std::sync::Arc;
use std::time::Duration;

use tonic::metadata::MetadataValue;
use tonic::transport::{Channel, ClientTlsConfig, Endpoint};

use crate::proto::workqueue_service_client::WorkqueueServiceClient;
use crate::proto::{ProcessRequest, ProcessResponse};
use crate::{IdTokenError, IdTokenSource, audience_of};

/// A client of one service address; the connection is made lazily and kept. Cheap to clone.
#[derive(Clone, Debug)]
pub struct ServiceClient {
    client: WorkqueueServiceClient<Channel>,
    id_tokens: Option<Arc<IdTokenSource>>,
}

/// An address that cannot be called.
#[derive(Debug, thiserror::Error)]
#[error("invalid gRPC address {url:?}")]
pub struct InvalidAddress {
    url: String,
    #[source]
    source: tonic::transport::Error,
}

/// Why a call failed.
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    /// No ID token could be had for an `https://` service.
    #[error(transparent)]
    Token(#[from] IdTokenError),
    /// The service answered with an error, or could not be reached (the status's code and
    /// message say it all; its own display repeats them).
    #[error("{}: {}", .0.code(), .0.message())]
    Status(tonic::Status),
}

impl From<tonic::Status> for CallError {
    fn from(status: tonic::Status) -> Self {
        Self::Status(status)
    }
}

impl ServiceClient {
    /// A client for the service at `url` (`http://host:port`, or `https://` with TLS and ID
    /// tokens); each call fails after `timeout`.
    pub fn new(url: &str, timeout: Duration) -> Result<Self, InvalidAddress> {
        let invalid = |source| InvalidAddress {
            url: url.to_owned(),
            source,
        };
        let mut endpoint = Endpoint::from_shared(url.to_owned())
            .map_err(invalid)?
            .timeout(timeout)
            .connect_timeout(Duration::from_secs(10))
            .tcp_nodelay(true)
            .http2_keep_alive_interval(Duration::from_secs(30));
        let secure = url.starts_with("https://");
        if secure {
            endpoint = endpoint
                .tls_config(ClientTlsConfig::new().with_webpki_roots())
                .map_err(invalid)?;
        }
        let id_tokens = secure.then(|| Arc::new(IdTokenSource::new(audience_of(url))));
        Ok(Self {
            client: WorkqueueServiceClient::new(endpoint.connect_lazy()),
            id_tokens,
        })
    }

    /// The same client, presenting ID tokens from `source` on every call.
    pub fn with_id_tokens(self, source: IdTokenSource) -> Self {
        Self {
            id_tokens: Some(Arc::new(source)),
            ..self
        }
    }

    /// Whether calls carry ID tokens.
    pub fn uses_id_tokens(&self) -> bool {
        self.id_tokens.is_some()
    }

    /// Calls `Process`.
    pub async fn process(&self, request: ProcessRequest) -> Result<ProcessResponse, CallError> {
        let mut request = tonic::Request::new(request);
        if let Some(source) = &self.id_tokens {
            let token = source.token().await?;
            let value = MetadataValue::try_from(format!("Bearer {token}")).map_err(|_| {
                tonic::Status::unauthenticated("the metadata server returned a malformed token")
            })?;
            request.metadata_mut().insert("authorization", value);
        }
        Ok(self.client.clone().process(request).await?.into_inner())
    }
}
