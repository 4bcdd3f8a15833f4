//! Serving a [`Reconciler`] as the gRPC `WorkqueueService`, the contract dispatchers call.

use std::future::Future;
use std::net::SocketAddr;

use tonic::{Request, Response, Status};
use tracing::warn;

use super::Reconciler;
use super::wire::{action_to_response, error_to_status};
use crate::proto::workqueue_service_server::{WorkqueueService, WorkqueueServiceServer};
use crate::proto::{GetKeyStateRequest, KeyState, ProcessRequest, ProcessResponse};

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
    tonic::transport::Server::builder()
        .add_service(health_service)
        .add_service(service(reconciler))
        .serve_with_shutdown(addr, shutdown)
        .await
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
