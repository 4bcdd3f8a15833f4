//! `reconcilers dev`: receiver, dispatcher and gateway in one process, on local storage by
//! default.

use std::sync::Arc;
use std::time::Duration;

use clap::Args;
use reconciler::{LogReconciler, Reconciler, RemoteReconciler};
use tokio_util::sync::CancellationToken;
use workqueue::service::{Service, run as run_service};

use gateway::metrics::GatewayMetrics;
use gateway::route::KeyRule;
use gateway::signature::Secrets;
use resync::ResyncMetrics;
use tracing::{error, info, warn};

use crate::args::{DispatchArgs, GrpcListenArgs, ListenArgs, StorageArgs, WebhookSecretArgs};
use crate::cmd::gateway::RouteArgs;
use crate::cmd::resync::dev_sweep;
use crate::cmd::webhook::DEV_SECRET;

/// Options of `reconcilers dev`.
#[derive(Debug, Args)]
pub(crate) struct DevArgs {
    #[command(flatten)]
    storage: StorageArgs,
    #[command(flatten)]
    listen: ListenArgs,
    #[command(flatten)]
    grpc_listen: GrpcListenArgs,
    /// The reconciler's gRPC address: http://HOST:PORT, or an https:// Cloud Run service (called
    /// over TLS with a Google ID token from the metadata server). Without it, a built-in
    /// reconciler logs each key.
    #[arg(long, env = "WORKQUEUE_TARGET")]
    reconciler: Option<String>,
    #[command(flatten)]
    dispatch: DispatchArgs,
    #[command(flatten)]
    routes: RouteArgs,
    #[command(flatten)]
    secrets: WebhookSecretArgs,
    /// Hours between resync sweeps of --repository's files matching --path-pattern (1 to 744;
    /// above 24, whole days).
    #[arg(long, env = "RESYNC_PERIOD_HOURS", default_value_t = 24)]
    period_hours: u32,
    /// When to sweep, as a cron expression with seconds first (UTC), instead of the period's
    /// schedule.
    #[arg(long, env = "RESYNC_SCHEDULE")]
    resync_schedule: Option<String>,
}

/// Runs receiver, dispatcher and gateway (and a path route's resync) in one process until `shutdown`.
pub(crate) async fn run(
    args: DevArgs,
    shutdown: CancellationToken,
    shutdown_timeout: Duration,
) -> anyhow::Result<()> {
    let storage = args.storage.resolve(Some("file://.reconcilers"))?;
    let reconciler: Arc<dyn Reconciler> = match &args.reconciler {
        Some(url) => Arc::new(RemoteReconciler::new(url, args.dispatch.reconcile_timeout)?),
        None => Arc::new(LogReconciler),
    };
    let http = args.listen.http("127.0.0.1:8080")?;
    let mut secrets = args.secrets.secrets();
    if secrets.is_empty() {
        // A known secret is only for a machine's own loopback.
        if !http.ip().is_loopback() {
            anyhow::bail!(
                "dev listens on {http}, beyond this machine: set WEBHOOK_SECRET or --webhook-secret (the secret \"dev\" is only used on a loopback address)"
            );
        }
        info!(
            "no webhook secret is set (WEBHOOK_SECRET or --webhook-secret): /webhook accepts deliveries signed with the secret \"dev\""
        );
        secrets = Secrets::new([DEV_SECRET]);
    }
    // Checked now, so a bad route, period or schedule is an error before anything listens.
    let gateway_routes = args.routes.routes()?;
    let has_path_route = gateway_routes
        .iter()
        .any(|route| matches!(route.key, KeyRule::Path { .. }));
    let resync_plan = if has_path_route {
        let period = resync::Period::from_hours(args.period_hours)?;
        let schedule = resync::schedule::resolve(args.resync_schedule.as_deref(), period)?;
        Some((period, schedule))
    } else {
        if args.resync_schedule.is_some() {
            warn!("a resync schedule is set, and no route is a path route: no resync runs");
        }
        None
    };
    let routes = args.routes;
    let resync_shutdown = shutdown.clone();
    let service = Service {
        extra_http: Some(Box::new(move |local, registry| {
            let metrics = GatewayMetrics::default();
            metrics.register(registry);
            // The gateway's keys go through the same local workqueue as the receiver's, so
            // they nudge the dispatcher too.
            let local = Arc::new(local.clone());
            let gateway = routes.gateway(gateway_routes, local, secrets, metrics)?;
            // One resync per path route (from the flags or a routes file), counted together,
            // into the workqueue the route's pushes go to.
            if let Some((period, schedule)) = resync_plan {
                let metrics = ResyncMetrics::default();
                metrics.register(registry);
                for (route, target) in gateway.route_targets() {
                    let KeyRule::Path {
                        repository,
                        patterns,
                    } = &route.key
                    else {
                        continue;
                    };
                    let sweep = dev_sweep(
                        repository,
                        patterns,
                        period,
                        routes.github_api.as_deref(),
                        target.clone(),
                    )?;
                    info!(%repository, %schedule, "resync on its schedule");
                    let (schedule, metrics, shutdown) =
                        (schedule.clone(), metrics.clone(), resync_shutdown.clone());
                    tokio::spawn(async move {
                        let scheduled =
                            resync::schedule::run(Arc::new(sweep), &schedule, metrics, shutdown)
                                .await;
                        if let Err(e) = scheduled {
                            error!(
                                error = workqueue::error_chain(&e),
                                "the resync's schedule stopped"
                            );
                        }
                    });
                }
            }
            Ok(gateway::server::router(Arc::new(gateway)))
        })),
        queue: args.dispatch.queue()?,
        dispatcher: Some((
            reconciler,
            args.dispatch.dispatcher(&storage, shutdown_timeout)?,
        )),
        shutdown_timeout,
        http,
        grpc: Some(
            args.grpc_listen
                .grpc(args.listen.port(), "127.0.0.1:8081")?,
        ),
        storage,
    };
    Ok(run_service(service, shutdown).await?)
}
