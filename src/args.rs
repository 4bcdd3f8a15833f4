//! Options shared by several subcommands, each also read from the environment names the
//! reference deployments use (docs/architecture.md, "Configuration names").

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::Args;
use workqueue::backoff::Backoff;
use workqueue::storage_url::StorageUrl;
use workqueue::{DispatcherConfig, QueueConfig};

/// Parses `500ms`, `1s`, `10m`, `1h30m`.
pub(crate) fn duration(text: &str) -> Result<Duration, String> {
    humantime::parse_duration(text).map_err(|e| format!("{e} (expected e.g. 500ms, 30s, 10m)"))
}

/// Where the queue lives.
#[derive(Debug, Args)]
pub(crate) struct StorageArgs {
    /// Queue storage: file://DIR, memory:// or gs://BUCKET[/PREFIX].
    #[arg(long, env = "WORKQUEUE_STORAGE", global = true)]
    storage: Option<StorageUrl>,
    /// A GCS bucket: stands for --storage gs://NAME when that is not given.
    #[arg(long, env = "WORKQUEUE_BUCKET", value_name = "NAME", global = true)]
    bucket: Option<String>,
    /// A GCS emulator (fake-gcs-server, http://HOST:PORT) to reach gs:// storage through.
    #[arg(long, env = "STORAGE_EMULATOR_HOST", value_name = "URL", global = true)]
    storage_emulator_host: Option<String>,
}

impl StorageArgs {
    /// The storage URL: `--storage`, else `--bucket`, else `default`; a `gs://` one through
    /// `--storage-emulator-host` when given.
    pub(crate) fn resolve(&self, default: Option<&str>) -> anyhow::Result<StorageUrl> {
        let url = if let Some(url) = &self.storage {
            url.clone()
        } else if let Some(bucket) = self.bucket.as_deref().filter(|b| !b.is_empty()) {
            format!("gs://{bucket}")
                .parse()
                .context("--bucket (WORKQUEUE_BUCKET)")?
        } else {
            match default {
                Some(url) => url.parse()?,
                None => bail!(
                    "no storage given: pass --storage URL or --bucket NAME (or set WORKQUEUE_STORAGE or WORKQUEUE_BUCKET)"
                ),
            }
        };
        Ok(match url {
            StorageUrl::Gcs {
                bucket,
                prefix,
                emulator: None,
            } => StorageUrl::Gcs {
                bucket,
                prefix,
                emulator: self.storage_emulator_host.clone().filter(|h| !h.is_empty()),
            },
            other => other,
        })
    }
}

/// Where keys are enqueued: a workqueue receiver's gRPC address.
#[derive(Debug, Args)]
pub(crate) struct WorkqueueServiceArgs {
    /// The workqueue receiver keys go to: http://HOST:PORT, or an https:// Cloud Run service
    /// (called with a Google ID token from the metadata server).
    #[arg(
        long = "workqueue",
        env = "WORKQUEUE_SERVICE",
        default_value = "http://127.0.0.1:8081"
    )]
    pub(crate) url: String,
}

impl WorkqueueServiceArgs {
    /// A client of the receiver, each call bounded by `call_timeout`.
    pub(crate) fn remote(
        &self,
        call_timeout: Duration,
    ) -> anyhow::Result<std::sync::Arc<dyn workqueue::client::Enqueue>> {
        Ok(std::sync::Arc::new(
            workqueue::client::RemoteWorkqueue::new(&self.url, call_timeout)?,
        ))
    }
}

/// The secrets GitHub deliveries may be signed with.
#[derive(Args)]
pub(crate) struct WebhookSecretArgs {
    /// A secret deliveries may be signed with, besides every WEBHOOK_SECRET* variable (repeat
    /// it to rotate). A process's arguments are visible to the machine's other users: prefer
    /// the variables where that matters.
    #[arg(long = "webhook-secret", value_name = "SECRET")]
    secrets: Vec<String>,
}

impl std::fmt::Debug for WebhookSecretArgs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "WebhookSecretArgs({} given)", self.secrets.len())
    }
}

impl WebhookSecretArgs {
    /// The flags' secrets and the `WEBHOOK_SECRET*` variables' together.
    pub(crate) fn secrets(&self) -> gateway::signature::Secrets {
        gateway::signature::Secrets::from_env().with(&self.secrets)
    }
}

/// The HTTP and gRPC listen addresses.
#[derive(Debug, Args)]
pub(crate) struct ListenArgs {
    /// HTTP address: /healthz, /metrics, and what the command serves over HTTP (a
    /// dispatcher's triggers, a gateway's /webhook and /events). Default 127.0.0.1:8080, or
    /// 0.0.0.0:PORT with --port.
    #[arg(long, env = "WORKQUEUE_LISTEN")]
    listen: Option<SocketAddr>,
    /// Serve HTTP and gRPC on this port of every interface (Cloud Run sets PORT), where
    /// --listen and --grpc-listen are not given.
    #[arg(long, env = "PORT")]
    port: Option<u16>,
}

impl ListenArgs {
    /// The HTTP address: the flag, else `0.0.0.0:PORT`, else `default`.
    pub(crate) fn http(&self, default: &str) -> anyhow::Result<SocketAddr> {
        address(self.listen, self.port, default)
    }

    /// The port both servers take when no address is given (`--port`, `PORT`).
    pub(crate) fn port(&self) -> Option<u16> {
        self.port
    }
}

/// The gRPC listen address.
#[derive(Debug, Args)]
pub(crate) struct GrpcListenArgs {
    /// gRPC address (the receiver and gRPC health). The same address as --listen serves both
    /// on one port. Default 127.0.0.1:8081, or 0.0.0.0:PORT with --port.
    #[arg(long, env = "WORKQUEUE_GRPC_LISTEN")]
    grpc_listen: Option<SocketAddr>,
}

impl GrpcListenArgs {
    /// The gRPC address: the flag, else `0.0.0.0:port`, else `default`.
    pub(crate) fn grpc(&self, port: Option<u16>, default: &str) -> anyhow::Result<SocketAddr> {
        address(self.grpc_listen, port, default)
    }
}

/// The flag's address, else every interface on `port` (Cloud Run's `PORT`), else `default`.
fn address(
    flag: Option<SocketAddr>,
    port: Option<u16>,
    default: &str,
) -> anyhow::Result<SocketAddr> {
    if let Some(addr) = flag {
        return Ok(addr);
    }
    if let Some(port) = port {
        return Ok(SocketAddr::from(([0, 0, 0, 0], port)));
    }
    Ok(default.parse()?)
}

/// How keys are dispatched and retried.
#[derive(Debug, Args)]
pub(crate) struct DispatchArgs {
    /// Keys in progress at once, across every dispatcher sharing the storage.
    #[arg(long, env = "WORKQUEUE_CONCURRENCY", default_value_t = 20)]
    concurrency: usize,
    /// Keys one dispatch pass may launch (default: the concurrency).
    #[arg(long, env = "WORKQUEUE_BATCH_SIZE")]
    batch_size: Option<usize>,
    /// Failed attempts before a key is dead-lettered; 0 retries forever.
    #[arg(long, env = "WORKQUEUE_MAX_RETRY", default_value_t = 100)]
    max_retry: u32,
    /// Retry delay after the first failure; it doubles with each failure.
    #[arg(long, env = "WORKQUEUE_BACKOFF_BASE", default_value = "30s", value_parser = duration)]
    backoff_base: Duration,
    /// The cap on the retry delay.
    #[arg(long, env = "WORKQUEUE_BACKOFF_MAX", default_value = "10m", value_parser = duration)]
    backoff_max: Duration,
    /// How long a claim lasts unless renewed (renewed every third of it).
    #[arg(long, env = "WORKQUEUE_LEASE", default_value = "15m", value_parser = duration)]
    lease: Duration,
    /// Passes run at least this often without a trigger (default: 1s on local storage, 10s on
    /// GCS, where bucket notifications trigger passes).
    #[arg(long, env = "WORKQUEUE_POLL_INTERVAL", value_parser = duration)]
    poll_interval: Option<Duration>,
    /// Passes start no closer together than this (default: 50ms on local storage, 1s on GCS,
    /// where each pass costs list calls).
    #[arg(long, env = "WORKQUEUE_PASS_INTERVAL", value_parser = duration)]
    pass_interval: Option<Duration>,
    /// A reconcile call that takes longer fails (and is retried).
    #[arg(long, env = "WORKQUEUE_RECONCILE_TIMEOUT", default_value = "10m", value_parser = duration)]
    pub(crate) reconcile_timeout: Duration,
}

impl DispatchArgs {
    /// The queue rules these options give.
    pub(crate) fn queue(&self) -> anyhow::Result<QueueConfig> {
        if self.lease < Duration::from_secs(1) {
            bail!("--lease must be at least 1s, got {:?}", self.lease);
        }
        if self.backoff_base.is_zero() || self.backoff_max < self.backoff_base {
            bail!("--backoff-base must be positive and at most --backoff-max");
        }
        Ok(QueueConfig {
            lease: self.lease,
            max_retry: self.max_retry,
            backoff: Backoff {
                base: self.backoff_base,
                max: self.backoff_max,
            },
        })
    }

    /// The dispatcher pacing these options give, for `storage`, stopping within
    /// `shutdown_timeout`.
    pub(crate) fn dispatcher(
        &self,
        storage: &StorageUrl,
        shutdown_timeout: Duration,
    ) -> anyhow::Result<DispatcherConfig> {
        if self.concurrency == 0 {
            bail!("--concurrency must be at least 1");
        }
        let remote = matches!(storage, StorageUrl::Gcs { .. });
        let (poll, pass) = if remote {
            (Duration::from_secs(10), Duration::from_secs(1))
        } else {
            (Duration::from_secs(1), Duration::from_millis(50))
        };
        Ok(DispatcherConfig {
            concurrency: self.concurrency,
            batch_size: self.batch_size.unwrap_or(self.concurrency).max(1),
            poll_interval: self.poll_interval.unwrap_or(poll),
            pass_interval: self.pass_interval.unwrap_or(pass),
            shutdown_timeout,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn storage_should_come_from_the_url_else_the_bucket_through_any_emulator() {
        let args =
            |storage: Option<&str>, bucket: Option<&str>, emulator: Option<&str>| StorageArgs {
                storage: storage.map(|s| s.parse().unwrap()),
                bucket: bucket.map(str::to_owned),
                storage_emulator_host: emulator.map(str::to_owned),
            };
        let gcs = |bucket: &str, prefix: &str, emulator: Option<&str>| StorageUrl::Gcs {
            bucket: bucket.into(),
            prefix: prefix.into(),
            emulator: emulator.map(str::to_owned),
        };
        let emulator = Some("http://127.0.0.1:4443");
        assert_eq!(
            args(None, Some("b"), emulator).resolve(None).unwrap(),
            gcs("b", "", emulator)
        );
        assert_eq!(
            args(Some("gs://u/p"), Some("b"), None)
                .resolve(None)
                .unwrap(),
            gcs("u", "p", None),
            "--storage wins"
        );
        assert_eq!(
            args(None, Some(""), emulator)
                .resolve(Some("memory://"))
                .unwrap(),
            StorageUrl::Memory,
            "an empty bucket is none; the emulator only concerns gs://"
        );
        let err = args(None, None, None)
            .resolve(None)
            .unwrap_err()
            .to_string();
        assert!(err.contains("--bucket NAME"), "{err}");
    }

    #[test]
    fn port_should_mean_every_interface_unless_a_flag_says_otherwise() {
        let flag: SocketAddr = "127.0.0.1:9000".parse().unwrap();
        let default = "127.0.0.1:8080";
        assert_eq!(address(Some(flag), Some(8081), default).unwrap(), flag);
        assert_eq!(
            address(None, Some(8081), default).unwrap(),
            "0.0.0.0:8081".parse::<SocketAddr>().unwrap()
        );
        assert_eq!(
            address(None, None, default).unwrap(),
            default.parse::<SocketAddr>().unwrap()
        );
    }
}
