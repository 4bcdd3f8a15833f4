//! The gateway: its routes with their workqueues, the secrets, the sink, and what it does with
//! one event (route it, enqueue its keys, forward it).

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::{StreamExt, TryStreamExt};
use prometheus_client::metrics::counter::Counter;
use tracing::{debug, warn};

use github::api::{GitHubApi, GitHubError};
use workqueue::client::{Enqueue, EnqueueError, RemoteWorkqueue};

use crate::incoming::Incoming;
use crate::keys::{KeysError, keys_for};
use crate::metrics::GatewayMetrics;
use crate::route::{KeyRule, Route};
use crate::signature::Secrets;
use crate::sink::{Sink, SinkError};

/// How many keys of one event are enqueued at once.
const ENQUEUE_CONCURRENCY: usize = 16;

/// What the gateway is made of.
#[derive(Debug)]
pub struct GatewayConfig {
    /// The routes, in order.
    pub routes: Vec<Route>,
    /// Where keys go for routes that name no workqueue of their own.
    pub workqueue: Arc<dyn Enqueue>,
    /// The webhook secrets.
    pub secrets: Secrets,
    /// The `source` of GitHub events; `None` for the request's host.
    pub source: Option<String>,
    /// The GitHub API's base URL; `None` for api.github.com.
    pub github_api: Option<String>,
    /// Where converted GitHub events are forwarded, if anywhere.
    pub sink: Option<String>,
    /// How long one call to a workqueue or the sink, or one try of a GitHub API call, may take.
    pub call_timeout: Duration,
    /// Requests handled at once; more are answered 503 at once (bodies are up to 25 MiB, so
    /// this bounds the memory they take).
    pub max_in_flight: usize,
    /// Whether `POST /events` is served; off for a gateway open to the internet, whose
    /// `/events` would take unauthenticated events.
    pub serve_events: bool,
}

/// The default for [`GatewayConfig::max_in_flight`].
pub const DEFAULT_MAX_IN_FLIGHT: usize = 256;

/// The default for [`GatewayConfig::call_timeout`].
pub const DEFAULT_CALL_TIMEOUT: Duration = Duration::from_secs(5);

/// The longest rate limit a path route's GitHub call waits out: a request has 8 s in all.
const GITHUB_RATE_LIMIT_WAIT: Duration = Duration::from_secs(2);

impl GatewayConfig {
    /// `routes` sending keys to `workqueue`, deliveries checked against `secrets`; no sink, the
    /// request's host as the source, api.github.com, and the default limits.
    pub fn new(routes: Vec<Route>, workqueue: Arc<dyn Enqueue>, secrets: Secrets) -> Self {
        Self {
            routes,
            workqueue,
            secrets,
            source: None,
            github_api: None,
            sink: None,
            call_timeout: DEFAULT_CALL_TIMEOUT,
            max_in_flight: DEFAULT_MAX_IN_FLIGHT,
            serve_events: true,
        }
    }
}

/// A running gateway; shared by its handlers.
#[derive(Debug)]
pub struct Gateway {
    routes: Vec<(Route, Arc<dyn Enqueue>, Counter)>,
    pub(crate) secrets: Secrets,
    pub(crate) source: Option<String>,
    github: Option<GitHubApi>,
    sink: Option<Sink>,
    pub(crate) metrics: GatewayMetrics,
    /// One permit per request being handled, `max_in_flight` in all.
    pub(crate) in_flight: tokio::sync::Semaphore,
    pub(crate) serve_events: bool,
}

/// What came of one event.
#[derive(Debug, Default)]
pub struct Handled {
    /// Keys stored.
    pub enqueued: usize,
    /// Keys the workqueue refused as invalid (left out).
    pub refused: Vec<EnqueueError>,
    /// Whether the event was forwarded to the sink (then it was accepted, whatever its keys).
    pub forwarded: bool,
}

/// Why an event was not handled: something the gateway needs failed, and a retry may succeed.
#[derive(Debug, thiserror::Error)]
pub enum HandleError {
    /// A route could not make the event's keys (the GitHub API failed, say).
    #[error("route {route} could not make the event's keys")]
    Keys {
        /// The route.
        route: String,
        /// Why.
        #[source]
        source: KeysError,
    },
    /// A workqueue could not store a key.
    #[error("route {route} could not enqueue a key")]
    Enqueue {
        /// The route.
        route: String,
        /// Why.
        #[source]
        source: EnqueueError,
    },
    /// The sink did not take the event.
    #[error(transparent)]
    Sink(#[from] SinkError),
}

/// Why the gateway could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    /// A route's workqueue address is not usable.
    #[error("route {route}")]
    Workqueue {
        /// The route.
        route: String,
        /// Why.
        #[source]
        source: workqueue::client::InvalidAddress,
    },
    /// A path route needs the GitHub API, whose client could not be set up.
    #[error(transparent)]
    GitHub(#[from] GitHubError),
    /// The sink's client could not be set up.
    #[error("failed to set up the client of the sink {url}")]
    Sink {
        /// The sink.
        url: String,
        /// Why.
        #[source]
        source: reqwest::Error,
    },
}

impl Gateway {
    /// Sets up the gateway: a client per distinct route workqueue, the GitHub API when a path
    /// route needs it, the sink. Call it within a Tokio runtime (the GitHub client starts a
    /// task).
    pub fn new(config: GatewayConfig, metrics: GatewayMetrics) -> Result<Self, SetupError> {
        let mut remotes: Vec<(String, Arc<dyn Enqueue>)> = Vec::new();
        let mut routes = Vec::new();
        for route in config.routes {
            let target = match &route.workqueue {
                None => config.workqueue.clone(),
                Some(url) => match remotes.iter().find(|(u, _)| u == url) {
                    Some((_, target)) => target.clone(),
                    None => {
                        let remote =
                            RemoteWorkqueue::new(url, config.call_timeout).map_err(|source| {
                                SetupError::Workqueue {
                                    route: route.name.clone(),
                                    source,
                                }
                            })?;
                        let target: Arc<dyn Enqueue> = Arc::new(remote);
                        remotes.push((url.clone(), target.clone()));
                        target
                    }
                },
            };
            let keys = metrics.keys(&route.name);
            routes.push((route, target, keys));
        }
        let needs_github = routes
            .iter()
            .any(|(r, _, _)| matches!(r.key, KeyRule::Path { .. }));
        let github = needs_github
            .then(|| GitHubApi::from_env(config.github_api.as_deref()))
            .transpose()?
            .map(|api| {
                api.with_call_timeout(config.call_timeout)
                    .with_max_rate_limit_wait(GITHUB_RATE_LIMIT_WAIT)
            });
        let sink = config
            .sink
            .map(|url| {
                Sink::new(&url, config.call_timeout).map_err(|source| SetupError::Sink {
                    url: url.clone(),
                    source,
                })
            })
            .transpose()?;
        Ok(Self {
            routes,
            secrets: config.secrets,
            source: config.source,
            github,
            sink,
            metrics,
            in_flight: tokio::sync::Semaphore::new(
                config
                    .max_in_flight
                    .clamp(1, tokio::sync::Semaphore::MAX_PERMITS),
            ),
            serve_events: config.serve_events,
        })
    }

    /// Routes one event and enqueues its keys (and forwards it to the sink, for a GitHub
    /// delivery), once they are all stored. A key the workqueue refuses (too long, say) is
    /// logged and left out; the others are still enqueued.
    pub async fn handle(&self, event: &Incoming, forward: bool) -> Result<Handled, HandleError> {
        let started = Instant::now();
        let sending = async {
            match (&self.sink, forward) {
                (Some(sink), true) => sink.send(event).await.map(|()| true),
                _ => Ok(false),
            }
        };
        let (handled, sent) = tokio::join!(self.enqueue_keys(event), sending);
        let forwarded = sent.map_err(HandleError::Sink)?;
        let handled = Handled {
            forwarded,
            ..handled?
        };
        if handled.enqueued > 0 {
            self.metrics
                .enqueue_latency(started.elapsed().as_secs_f64());
        }
        Ok(handled)
    }

    async fn enqueue_keys(&self, event: &Incoming) -> Result<Handled, HandleError> {
        let mut handled = Handled::default();
        for (route, target, counter) in &self.routes {
            let keys = keys_for(route, event, self.github.as_ref())
                .await
                .map_err(|source| HandleError::Keys {
                    route: route.name.clone(),
                    source,
                })?;
            if keys.is_empty() {
                continue;
            }
            debug!(route = %route.name, keys = keys.len(), event = %event.id, "routing");
            let refused: Vec<EnqueueError> = match keys.as_slice() {
                [key] => enqueue_one(route, target.as_ref(), key)
                    .await?
                    .into_iter()
                    .collect(),
                _ => {
                    let target = target.as_ref();
                    futures::stream::iter(keys.clone())
                        .map(|key| async move { enqueue_one(route, target, &key).await })
                        .buffer_unordered(ENQUEUE_CONCURRENCY)
                        .try_filter_map(|refused| async move { Ok(refused) })
                        .try_collect()
                        .await?
                }
            };
            counter.inc_by((keys.len() - refused.len()) as u64);
            handled.enqueued += keys.len() - refused.len();
            handled.refused.extend(refused);
        }
        Ok(handled)
    }

    /// Whether deliveries are forwarded to a sink.
    pub fn has_sink(&self) -> bool {
        self.sink.is_some()
    }

    /// The routes, in order.
    pub fn routes(&self) -> impl Iterator<Item = &Route> {
        self.routes.iter().map(|(r, _, _)| r)
    }

    /// The routes, in order, each with the workqueue its keys go to.
    pub fn route_targets(&self) -> impl Iterator<Item = (&Route, &Arc<dyn Enqueue>)> {
        self.routes.iter().map(|(r, target, _)| (r, target))
    }
}

/// Enqueues one key: `Ok(Some(_))` when the workqueue refused it as invalid.
async fn enqueue_one(
    route: &Route,
    target: &dyn Enqueue,
    key: &str,
) -> Result<Option<EnqueueError>, HandleError> {
    match target.enqueue(key, route.priority, Duration::ZERO).await {
        Ok(()) => Ok(None),
        Err(refused @ EnqueueError::Refused { .. }) => {
            warn!(route = %route.name, error = %workqueue::error_chain(&refused), "a key was refused");
            Ok(Some(refused))
        }
        Err(source) => Err(HandleError::Enqueue {
            route: route.name.clone(),
            source,
        }),
    }
}
