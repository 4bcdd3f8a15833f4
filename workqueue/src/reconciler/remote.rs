//! A reconciler reached over gRPC: how the dispatcher calls user code in any language.

use std::time::Duration;

use async_trait::async_trait;
use tonic::transport::{Channel, Endpoint};

use super::wire::{response_to_action, status_to_error};
use super::{Action, ReconcileError, Reconciler};
use crate::proto::ProcessRequest;
use crate::proto::workqueue_service_client::WorkqueueServiceClient;

/// A reconciler at a gRPC address; the connection is made lazily and kept.
#[derive(Clone, Debug)]
pub struct RemoteReconciler {
    client: WorkqueueServiceClient<Channel>,
}

/// The address of a reconciler could not be used.
#[derive(Debug, thiserror::Error)]
#[error("invalid reconciler address {url:?}")]
pub struct InvalidAddress {
    url: String,
    #[source]
    source: tonic::transport::Error,
}

impl RemoteReconciler {
    /// A client for the reconciler at `url` (`http://host:port`); each call fails after
    /// `timeout`.
    pub fn new(url: &str, timeout: Duration) -> Result<Self, InvalidAddress> {
        let endpoint = Endpoint::from_shared(url.to_owned())
            .map_err(|source| InvalidAddress {
                url: url.to_owned(),
                source,
            })?
            .timeout(timeout)
            .connect_timeout(Duration::from_secs(10))
            .tcp_nodelay(true)
            .http2_keep_alive_interval(Duration::from_secs(30));
        Ok(Self {
            client: WorkqueueServiceClient::new(endpoint.connect_lazy()),
        })
    }
}

#[async_trait]
impl Reconciler for RemoteReconciler {
    async fn reconcile(&self, key: &str, priority: i64) -> Result<Action, ReconcileError> {
        let request = ProcessRequest {
            key: key.to_owned(),
            priority,
            delay_seconds: 0,
        };
        match self.client.clone().process(request).await {
            Ok(response) => Ok(response_to_action(response.into_inner())),
            Err(status) => Err(status_to_error(status)),
        }
    }
}
