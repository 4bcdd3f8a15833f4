//! `reconcilers gateway`: GitHub webhooks and CloudEvents in, keys out to a workqueue.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::Args;
use gateway::metrics::GatewayMetrics;
use gateway::route::{
    DEFAULT_EXTENSION_KEY, DEFAULT_PRIORITY, Filter, KeyRule, Route, load_routes, parse_routes,
    path_rule,
};
use gateway::signature::Secrets;
use gateway::{Gateway, GatewayConfig};
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};
use workqueue::client::Enqueue;

use crate::args::{ListenArgs, WebhookSecretArgs, WorkqueueServiceArgs};

/// The routes: a routes file, or the one route the flags make.
#[derive(Debug, Args)]
pub(crate) struct RouteArgs {
    /// A TOML file of `[[route]]` tables, each with its own filters, key rule, priority and
    /// workqueue (instead of the flags below).
    #[arg(long, env = "GATEWAY_ROUTES")]
    routes: Option<PathBuf>,
    /// The routes file's text itself (where mounting a file is awkward, as on Cloud Run).
    #[arg(long, env = "GATEWAY_ROUTES_TOML", conflicts_with = "routes")]
    routes_toml: Option<String>,
    /// The extension attribute whose value is the key.
    #[arg(long, default_value = DEFAULT_EXTENSION_KEY)]
    extension_key: String,
    /// Only events with this attribute value (type, source, subject or an extension);
    /// repeated filters must all match.
    #[arg(long = "filter", value_name = "KEY=VALUE")]
    filters: Vec<String>,
    /// The keys' priority.
    #[arg(long, default_value_t = DEFAULT_PRIORITY, allow_negative_numbers = true)]
    priority: i64,
    /// OWNER/REPO: make keys of the files pushes to its default branch change (with
    /// --path-pattern) instead of an extension.
    #[arg(long)]
    repository: Option<String>,
    /// An anchored regular expression with one capture group: matching paths become the key
    /// `https://github.com/OWNER/REPO/blob/BRANCH/GROUP`.
    #[arg(long = "path-pattern", value_name = "REGEX")]
    path_patterns: Vec<String>,
    /// The GitHub API's base URL (GitHub Enterprise; a local fake in tests). Auth:
    /// GITHUB_TOKEN, or GITHUB_APP_ID with GITHUB_APP_PRIVATE_KEY(_FILE) and
    /// GITHUB_INSTALLATION_ID.
    #[arg(long, env = "GITHUB_API_URL")]
    pub(crate) github_api: Option<String>,
    /// Also forward each GitHub delivery, as a CloudEvent in binary mode, to this URL.
    #[arg(long, env = "K_SINK")]
    pub(crate) sink: Option<String>,
    /// The source of GitHub events (default: the request's host).
    #[arg(long, env = "EVENT_SOURCE")]
    pub(crate) source: Option<String>,
    /// Requests handled at once; more get 503 at once (bodies are up to 25 MiB each).
    #[arg(long, env = "GATEWAY_MAX_IN_FLIGHT", default_value_t = gateway::gateway::DEFAULT_MAX_IN_FLIGHT)]
    pub(crate) max_in_flight: usize,
    /// Serve /webhook only, not /events: for a gateway open to the internet (events on
    /// /events are not authenticated by the gateway).
    #[arg(long, env = "GATEWAY_WEBHOOK_ONLY")]
    pub(crate) webhook_only: bool,
}

impl RouteArgs {
    /// The routes the options declare.
    pub(crate) fn routes(&self) -> anyhow::Result<Vec<Route>> {
        let declared = match (&self.routes, &self.routes_toml) {
            (Some(path), _) => Some(load_routes(path).map_err(anyhow::Error::from)),
            (None, Some(text)) => {
                Some(parse_routes(text).context("invalid --routes-toml (GATEWAY_ROUTES_TOML)"))
            }
            (None, None) => None,
        };
        if let Some(declared) = declared {
            if !self.filters.is_empty()
                || self.repository.is_some()
                || !self.path_patterns.is_empty()
            {
                bail!(
                    "--routes and --routes-toml declare every route: drop --filter, --repository and --path-pattern"
                );
            }
            return declared;
        }
        let key = match (&self.repository, self.path_patterns.is_empty()) {
            (Some(repository), false) => path_rule(repository, &self.path_patterns)?,
            (Some(_), true) => bail!("--repository needs at least one --path-pattern"),
            (None, false) => bail!("--path-pattern needs --repository"),
            (None, true) => KeyRule::Extension(self.extension_key.clone()),
        };
        let name = match &key {
            KeyRule::Extension(_) => "extension",
            KeyRule::Path { .. } => "paths",
        };
        let filters = if self.filters.is_empty() {
            Vec::new()
        } else {
            vec![Filter::from_pairs(&self.filters)?]
        };
        Ok(vec![Route {
            name: name.to_owned(),
            filters,
            key,
            priority: self.priority,
            workqueue: None,
        }])
    }

    /// The gateway of `routes` (from [`RouteArgs::routes`]) and these options, sending keys to
    /// `workqueue` by default.
    pub(crate) fn gateway(
        &self,
        routes: Vec<Route>,
        workqueue: Arc<dyn Enqueue>,
        secrets: Secrets,
        metrics: GatewayMetrics,
    ) -> anyhow::Result<Gateway> {
        if secrets.is_empty() {
            warn!(
                "no webhook secret is set (WEBHOOK_SECRET* or --webhook-secret): /webhook refuses every delivery"
            );
        }
        let gateway = Gateway::new(
            GatewayConfig {
                source: self.source.clone(),
                github_api: self.github_api.clone(),
                sink: self.sink.clone(),
                max_in_flight: self.max_in_flight,
                serve_events: !self.webhook_only,
                ..GatewayConfig::new(routes, workqueue, secrets)
            },
            metrics,
        )?;
        for route in gateway.routes() {
            info!(route = %route.name, priority = route.priority, key = ?route.key, "route");
        }
        Ok(gateway)
    }
}

/// Options of `reconcilers gateway`.
#[derive(Debug, Args)]
pub(crate) struct GatewayArgs {
    #[command(flatten)]
    listen: ListenArgs,
    #[command(flatten)]
    workqueue: WorkqueueServiceArgs,
    #[command(flatten)]
    routes: RouteArgs,
    #[command(flatten)]
    secrets: WebhookSecretArgs,
    /// Check the routes (their files, filters and path patterns) and exit: prints one line per
    /// route, or the error.
    #[arg(long)]
    check: bool,
}

/// Serves the gateway until `shutdown` (or, with `--check`, prints the routes and exits).
pub(crate) async fn run(
    args: GatewayArgs,
    shutdown: CancellationToken,
    shutdown_timeout: Duration,
) -> anyhow::Result<()> {
    if args.check {
        for route in args.routes.routes()? {
            let target = route.workqueue.as_deref().unwrap_or(&args.workqueue.url);
            println!(
                "route {}: priority {}, {:?}, {} filter(s), into {target}",
                route.name,
                route.priority,
                route.key,
                route.filters.len()
            );
        }
        return Ok(());
    }
    let workqueue = args
        .workqueue
        .remote(gateway::gateway::DEFAULT_CALL_TIMEOUT)?;
    let metrics = GatewayMetrics::default();
    let mut registry = workqueue::metrics::labelled_registry();
    metrics.register(&mut registry);
    let routes = args.routes.routes()?;
    let gateway = args
        .routes
        .gateway(routes, workqueue, args.secrets.secrets(), metrics)?;
    let http = workqueue::http::router(Arc::new(registry), None)
        .merge(gateway::server::router(Arc::new(gateway)));
    let addr = args.listen.http("127.0.0.1:8080")?;
    info!(workqueue = %args.workqueue.url, "gateway running");
    workqueue::server::serve(Some((addr, http)), None, shutdown, shutdown_timeout).await?;
    Ok(())
}
