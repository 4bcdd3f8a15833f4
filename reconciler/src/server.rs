//! Serving a [`Reconciler`] as the gRPC `WorkqueueService`, the contract dispatchers call.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll};

use tonic::body::Body;
use tonic::codegen::{Service, http};
use tonic::server::NamedService;
use tonic::{Request, Response, Status};
use tonic_health::pb::health_server::HealthServer;
use tracing::warn;

use crate::Reconciler;
use crate::proto::workqueue_service_server::{WorkqueueService, WorkqueueServiceServer};
use crate::proto::{GetKeyStateRequest, KeyState, ProcessRequest, ProcessResponse};
use crate::wire::{action_to_response, error_to_status};

/// A reconciler behind the gRPC service: `Process` reconciles the key.
#[derive(Debug)]
pub struct ReconcilerService<R> {
    reconciler: R,
}

/// The gRPC service for `reconciler`, to mount on a server of your own.
pub fn service<R: Reconciler>(reconciler: R) -> WorkqueueServiceServer<ReconcilerService<R>> {
    WorkqueueServiceServer::new(ReconcilerService { reconciler })
}

/// Serves `reconciler` (and the standard gRPC health service) on `addr` until `shutdown`
/// completes.
pub async fn serve<R: Reconciler>(
    reconciler: R,
    addr: SocketAddr,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), tonic::transport::Error> {
    let (health, health_service) = tonic_health::server::health_reporter();
    health
        .set_serving::<WorkqueueServiceServer<ReconcilerService<R>>>()
        .await;
    let services = ByPath {
        prefix: health_prefix::<HealthServer<()>>(),
        matching: health_service,
        other: service(reconciler),
    };
    tonic::transport::Server::builder()
        .serve_with_shutdown(addr, services, shutdown)
        .await
}

/// `/<package>.<Service>/`: the path prefix of a gRPC service's methods.
fn health_prefix<S: NamedService>() -> String {
    format!("/{}/", S::NAME)
}

/// Two gRPC services on one server, told apart by the path prefix of the first one's methods.
/// Written here because tonic's own router brings in axum, which this crate does not compile.
#[derive(Clone, Debug)]
struct ByPath<A, B> {
    prefix: String,
    matching: A,
    other: B,
}

/// A generated gRPC server's answer to one call.
type Answer = Pin<Box<dyn Future<Output = Result<http::Response<Body>, Infallible>> + Send>>;

impl<A, B> Service<http::Request<Body>> for ByPath<A, B>
where
    A: Service<http::Request<Body>, Response = http::Response<Body>, Error = Infallible>,
    A::Future: Send + 'static,
    B: Service<http::Request<Body>, Response = http::Response<Body>, Error = Infallible>,
    B::Future: Send + 'static,
{
    type Response = http::Response<Body>;
    type Error = Infallible;
    type Future = Answer;

    /// Generated servers are always ready: each call is its own task.
    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<Body>) -> Answer {
        if request.uri().path().starts_with(&self.prefix) {
            Box::pin(self.matching.call(request))
        } else {
            Box::pin(self.other.call(request))
        }
    }
}

#[tonic::async_trait]
impl<R: Reconciler> WorkqueueService for ReconcilerService<R> {
    async fn process(
        &self,
        request: Request<ProcessRequest>,
    ) -> Result<Response<ProcessResponse>, Status> {
        let request = request.into_inner();
        if request.key.is_empty() {
            return Err(Status::invalid_argument("key must not be empty"));
        }
        match self
            .reconciler
            .reconcile(&request.key, request.priority)
            .await
        {
            Ok(action) => Ok(Response::new(action_to_response(&action))),
            Err(error) => {
                warn!(key = %request.key, %error, "reconcile failed");
                Err(error_to_status(&error))
            }
        }
    }

    async fn get_key_state(
        &self,
        _: Request<GetKeyStateRequest>,
    ) -> Result<Response<KeyState>, Status> {
        Err(Status::unimplemented(
            "a reconciler does not hold keys; ask the workqueue receiver",
        ))
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use tonic_health::pb::HealthCheckRequest;
    use tonic_health::pb::health_check_response::ServingStatus;
    use tonic_health::pb::health_client::HealthClient;

    use super::*;
    use crate::LogReconciler;
    use crate::proto::workqueue_service_client::WorkqueueServiceClient;

    #[tokio::test]
    async fn serve_should_answer_health_checks_and_calls_on_one_port() {
        let addr = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap();
        let stop = tokio::sync::oneshot::channel::<()>();
        let served = tokio::spawn(serve(LogReconciler, addr, async {
            let _ = stop.1.await;
        }));
        let url = format!("http://{addr}");
        let mut channel = None;
        for _ in 0..100 {
            if let Ok(connected) = tonic::transport::Endpoint::from_shared(url.clone())
                .unwrap()
                .connect()
                .await
            {
                channel = Some(connected);
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let channel = channel.expect("the server listens");
        let health = HealthClient::new(channel.clone())
            .check(HealthCheckRequest {
                service: "chainguard.workqueue.WorkqueueService".into(),
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(health.status, ServingStatus::Serving as i32);
        let answer = WorkqueueServiceClient::new(channel.clone())
            .process(ProcessRequest {
                key: "k".into(),
                priority: 1,
                delay_seconds: 0,
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(answer, ProcessResponse::default(), "done");
        let unknown = HealthClient::new(channel)
            .check(HealthCheckRequest {
                service: "no.such.Service".into(),
            })
            .await
            .unwrap_err();
        assert_eq!(unknown.code(), tonic::Code::NotFound);
        stop.0.send(()).unwrap();
        served.await.unwrap().unwrap();
    }
}
