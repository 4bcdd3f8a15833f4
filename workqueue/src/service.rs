//! Running the queue's processes: a receiver, a dispatcher, or both in one (`dev`), each with
//! its HTTP side (`/healthz`, `/metrics`, triggers) and gRPC side (the receiver and the
//! standard health service), until shutdown.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use prometheus_client::registry::Registry;
use tokio_util::sync::CancellationToken;
use tonic::service::Routes;
use tracing::{error, info};

use crate::client::LocalWorkqueue;
use crate::dispatcher::{Dispatcher, DispatcherConfig};
use crate::metrics::Metrics;
use crate::queue::{Queue, QueueConfig};
use crate::receiver::Receiver;
use crate::storage::StorageError;
use crate::storage_url::StorageUrl;
use reconciler::Reconciler;
use reconciler::proto::workqueue_service_server::WorkqueueServiceServer;

/// What one process runs.
pub struct Service {
    /// Where the queue lives.
    pub storage: StorageUrl,
    /// The queue rules.
    pub queue: QueueConfig,
    /// The HTTP address (health, metrics, triggers).
    pub http: SocketAddr,
    /// The gRPC address of the receiver, when this process receives; may equal `http`.
    pub grpc: Option<SocketAddr>,
    /// The dispatcher, when this process dispatches.
    pub dispatcher: Option<(Arc<dyn Reconciler>, DispatcherConfig)>,
    /// More HTTP routes, made once the queue is open (the gateway, in `dev`).
    pub extra_http: Option<ExtraRoutes>,
    /// How long the servers may take to finish their open requests once shutdown begins (the
    /// dispatcher's own is in its config).
    pub shutdown_timeout: Duration,
}

/// Makes extra HTTP routes that enqueue into the process's queue (nudging its dispatcher),
/// registering their metrics.
pub type ExtraRoutes = Box<
    dyn FnOnce(
            &LocalWorkqueue,
            &mut Registry,
        ) -> Result<axum::Router, Box<dyn std::error::Error + Send + Sync>>
        + Send,
>;

/// Why a service could not run.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// The storage could not be opened.
    #[error(transparent)]
    Storage(StorageError),
    /// The extra HTTP routes could not be set up.
    #[error(transparent)]
    Setup(Box<dyn std::error::Error + Send + Sync>),
    /// A listener could not be bound or failed.
    #[error(transparent)]
    Serve(#[from] std::io::Error),
    /// The dispatcher stopped while the process was meant to run.
    #[error("the dispatcher stopped")]
    Dispatcher(#[source] DispatcherStopped),
}

/// Runs `service` until `shutdown` fires, then drains: the dispatcher hands its in-flight keys
/// back and the servers finish their requests.
pub async fn run(service: Service, shutdown: CancellationToken) -> Result<(), ServiceError> {
    let storage = service
        .storage
        .open()
        .await
        .map_err(ServiceError::Storage)?;
    let metrics = Metrics::new();
    let mut registry = crate::metrics::labelled_registry();
    metrics.register(&mut registry);
    let queue = Queue::with_parts(
        storage,
        service.queue,
        Arc::new(crate::clock::SystemClock),
        metrics,
    );

    let dispatcher = service
        .dispatcher
        .map(|(reconciler, config)| Dispatcher::new(queue.clone(), reconciler, config));
    let trigger = dispatcher.as_ref().map(Dispatcher::trigger);
    // What this process enqueues through (its receiver, its gateway) nudges its dispatcher.
    let mut local = LocalWorkqueue::new(queue.clone());
    if let Some(trigger) = &trigger {
        local = local.with_nudge(Arc::new(trigger.clone()));
    }

    let grpc = match service.grpc {
        Some(addr) => {
            let receiver = Receiver::new(local.clone());
            let (health, health_service) = tonic_health::server::health_reporter();
            health
                .set_serving::<WorkqueueServiceServer<Receiver>>()
                .await;
            let routes = Routes::new(health_service).add_service(receiver.into_service());
            Some((addr, routes.into_axum_router()))
        }
        None => None,
    };
    let extra = match service.extra_http {
        Some(make) => Some(make(&local, &mut registry).map_err(ServiceError::Setup)?),
        None => None,
    };
    let mut http = crate::http::router(Arc::new(registry), trigger);
    if let Some(extra) = extra {
        http = http.merge(extra);
    }

    let dispatching = dispatcher.map(|d| tokio::spawn(d.run(shutdown.clone())));
    info!(storage = %service.storage, "workqueue running");
    // Either half ending stops the other: a server that failed (a busy port) stops the
    // process, and so does a dispatcher that stopped early (a panic), rather than the process
    // answering health checks while no key is dispatched.
    let served = async {
        let drain = service.shutdown_timeout;
        let served =
            crate::server::serve(Some((service.http, http)), grpc, shutdown.clone(), drain).await;
        shutdown.cancel();
        served
    };
    let dispatched = async {
        let Some(dispatching) = dispatching else {
            return Ok(());
        };
        let dispatched = dispatching.await;
        let early = !shutdown.is_cancelled();
        shutdown.cancel();
        match dispatched {
            Ok(()) if early => Err(DispatcherStopped::Early),
            Ok(()) => Ok(()),
            Err(e) => Err(DispatcherStopped::Task(e)),
        }
    };
    let (served, dispatched) = tokio::join!(served, dispatched);
    // The error returned is the caller's to log; a second failure is logged here.
    match (served, dispatched) {
        (Ok(()), Ok(())) => Ok(()),
        (Ok(()), Err(why)) => Err(ServiceError::Dispatcher(why)),
        (Err(e), Ok(())) => Err(e.into()),
        (Err(e), Err(why)) => {
            error!(error = %crate::error_chain(&why), "the dispatcher stopped too");
            Err(e.into())
        }
    }
}

/// Why the dispatcher's task ended while the process was meant to run.
#[derive(Debug, thiserror::Error)]
pub enum DispatcherStopped {
    /// It returned before shutdown.
    #[error("it returned before shutdown")]
    Early,
    /// It panicked or was cancelled (a panic's message is in the source).
    #[error(transparent)]
    Task(tokio::task::JoinError),
}
