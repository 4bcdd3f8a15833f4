//! A reconciler reached over gRPC: how the dispatcher calls user code in any language.

use std::time::Duration;

use async_trait::async_trait;

use crate::client::{CallError, InvalidAddress, ServiceClient};
use crate::proto::ProcessRequest;
use crate::wire::{response_to_action, status_to_error};
use crate::{Action, IdTokenSource, ReconcileError, Reconciler};

/// A reconciler at a gRPC address; the connection is made lazily and kept.
///
/// An `https://` address (a Cloud Run service) is reached over TLS, and every call carries a
/// Google ID token for the service, from the metadata server.
#[derive(Clone, Debug)]
pub struct RemoteReconciler {
    client: ServiceClient,
}

impl RemoteReconciler {
    /// A client for the reconciler at `url` (`http://host:port`, or `https://` with TLS and ID
    /// tokens); each call fails after `timeout`.
    pub fn new(url: &str, timeout: Duration) -> Result<Self, InvalidAddress> {
        Ok(Self {
            client: ServiceClient::new(url, timeout)?,
        })
    }

    /// The same client, presenting ID tokens from `source` on every call.
    pub fn with_id_tokens(self, source: IdTokenSource) -> Self {
        Self {
            client: self.client.with_id_tokens(source),
        }
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
        match self.client.process(request).await {
            Ok(response) => Ok(response_to_action(response)),
            // Without a token the call cannot succeed; it is a failed attempt, retried.
            Err(CallError::Token(e)) => Err(ReconcileError::retry(e)),
            Err(CallError::Status(status)) => Err(status_to_error(status)),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use axum::extract::{Query, State};
    use axum::http::{HeaderMap, StatusCode};

    use super::*;
    use crate::{LogReconciler, audience_of, service};
    use std::sync::Arc;

    #[derive(Default)]
    struct Metadata {
        requests: AtomicUsize,
        audiences: Mutex<Vec<String>>,
    }

    async fn identity(
        State(seen): State<Arc<Metadata>>,
        headers: HeaderMap,
        Query(query): Query<std::collections::HashMap<String, String>>,
    ) -> Result<String, StatusCode> {
        if headers.get("metadata-flavor").and_then(|v| v.to_str().ok()) != Some("Google") {
            return Err(StatusCode::FORBIDDEN);
        }
        let n = seen.requests.fetch_add(1, Ordering::SeqCst) + 1;
        seen.audiences
            .lock()
            .unwrap()
            .push(query.get("audience").cloned().unwrap_or_default());
        Ok(format!("token-{n}\n"))
    }

    async fn listen(router: axum::Router) -> std::net::SocketAddr {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, router).await });
        addr
    }

    #[tokio::test]
    async fn calls_should_carry_a_cached_id_token_for_the_service() {
        let seen = Arc::new(Metadata::default());
        let route = "/computeMetadata/v1/instance/service-accounts/default/identity";
        let metadata = listen(
            axum::Router::new()
                .route(route, axum::routing::get(identity))
                .with_state(seen.clone()),
        )
        .await;

        let tokens = Arc::new(Mutex::new(Vec::new()));
        let recorded = tokens.clone();
        let check = move |request: tonic::Request<()>| {
            let header = request
                .metadata()
                .get("authorization")
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned);
            recorded.lock().unwrap().push(header);
            Ok(request)
        };
        let reconciler = listen(
            tonic::service::Routes::new(tonic::service::interceptor::InterceptedService::new(
                service(LogReconciler),
                check,
            ))
            .into_axum_router(),
        )
        .await;
        let remote = RemoteReconciler::new(&format!("http://{reconciler}"), Duration::from_secs(5))
            .unwrap()
            .with_id_tokens(IdTokenSource::with_metadata_host(
                "https://rec-abc.a.run.app",
                &metadata.to_string(),
            ));
        for key in ["a", "b"] {
            assert_eq!(remote.reconcile(key, 0).await.unwrap(), Action::done());
        }
        let bearer = Some("Bearer token-1".to_owned());
        assert_eq!(*tokens.lock().unwrap(), [bearer.clone(), bearer]);
        assert_eq!(
            seen.requests.load(Ordering::SeqCst),
            1,
            "the token is reused"
        );
        assert_eq!(
            *seen.audiences.lock().unwrap(),
            ["https://rec-abc.a.run.app"]
        );
    }

    #[tokio::test]
    async fn a_missing_token_should_fail_the_attempt_clearly() {
        // Nothing listens there once the listener is gone: the token fetch is refused at once.
        let unreachable = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap();
        let remote = RemoteReconciler::new("http://127.0.0.1:9", Duration::from_secs(5))
            .unwrap()
            .with_id_tokens(IdTokenSource::with_metadata_host(
                "https://rec.a.run.app",
                &unreachable.to_string(),
            ));
        match remote.reconcile("k", 0).await {
            Err(ReconcileError::Retriable(e)) => {
                let text = e.to_string();
                assert!(
                    text.contains("ID token") && text.contains("https://rec.a.run.app"),
                    "{text}"
                );
            }
            other => panic!("expected a retriable error, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn https_addresses_should_get_id_tokens_for_their_audience() {
        assert_eq!(
            audience_of("https://rec-abc.a.run.app/some/path"),
            "https://rec-abc.a.run.app"
        );
        assert_eq!(audience_of("https://rec:443"), "https://rec:443");
        let remote =
            RemoteReconciler::new("https://rec-abc.a.run.app", Duration::from_secs(5)).unwrap();
        assert!(remote.client.uses_id_tokens());
        let plain = RemoteReconciler::new("http://127.0.0.1:1", Duration::from_secs(5)).unwrap();
        assert!(!plain.client.uses_id_tokens());
    }
}
