//! `gs://BUCKET[/PREFIX]`: Google Cloud Storage over its JSON API (`gcloud-storage`).
//!
//! Every conditional write is a multipart upload with `ifGenerationMatch` (0 to create), and
//! every delete is pinned with the same precondition, so GCS itself arbitrates races between
//! processes and regions. Calls time out and are retried on 408, 429, 5xx and transport errors
//! with bounded, jittered backoff. A retried call whose earlier attempt may have landed is
//! read back rather than misreported: a 412 on a retried write is checked against the object
//! (our own write landed), and a 404 on a retried delete means the first attempt deleted it.
//!
//! Credentials are Application Default Credentials (the metadata server on Cloud Run,
//! `GOOGLE_APPLICATION_CREDENTIALS`, or gcloud's ADC file). `STORAGE_EMULATOR_HOST`
//! (for instance `http://127.0.0.1:4443`) switches to that endpoint with anonymous access.

use std::collections::HashMap;
use std::future::Future;
use std::time::Duration;

use async_trait::async_trait;
use gcloud_storage::client::{Client, ClientConfig};
use gcloud_storage::http::Error as GcsError;
use gcloud_storage::http::objects::Object as GcsObject;
use gcloud_storage::http::objects::delete::DeleteObjectRequest;
use gcloud_storage::http::objects::get::GetObjectRequest;
use gcloud_storage::http::objects::list::ListObjectsRequest;
use gcloud_storage::http::objects::upload::{UploadObjectRequest, UploadType};
use tracing::debug;

use super::{
    Generation, ListPage, Metadata, Object, PutMode, Storage, StorageError, validate_name,
};
use crate::backoff::jitter;

/// How calls to GCS are timed out and retried.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RetryPolicy {
    /// How long one call may take before it is abandoned (and retried).
    pub call_timeout: Duration,
    /// Attempts per operation, the first included.
    pub attempts: u32,
    /// The first retry waits about this long (plus jitter); each further one twice as long.
    pub base: Duration,
}

impl Default for RetryPolicy {
    /// 30 s per call, 5 attempts, retries after about 0.2, 0.4, 0.8 and 1.6 s.
    fn default() -> Self {
        Self {
            call_timeout: Duration::from_secs(30),
            attempts: 5,
            base: Duration::from_millis(200),
        }
    }
}

/// A store in a GCS bucket, under an optional name prefix.
#[derive(Clone)]
pub struct GcsStorage {
    client: Client,
    bucket: String,
    /// Prepended to every object name: empty, or ends in `/`.
    prefix: String,
    retry: RetryPolicy,
    /// Whether deletes read the generation first: the emulator ignores a delete's
    /// precondition (real GCS enforces it), so against it a pinned delete checks the
    /// generation itself. That check is not atomic, but it makes the emulator refuse every
    /// stale delete that is not racing a write.
    check_delete_generation: bool,
}

impl std::fmt::Debug for GcsStorage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GcsStorage")
            .field("bucket", &self.bucket)
            .field("prefix", &self.prefix)
            .finish()
    }
}

/// How one attempt failed.
/// What a failed call's error is kept as.
type Cause = Box<dyn std::error::Error + Send + Sync>;

enum Failure {
    /// 404.
    NotFound,
    /// 412 (or 409 on create).
    Precondition,
    /// Worth retrying; `maybe_landed` when the request may have taken effect.
    Transient { maybe_landed: bool, error: Cause },
    /// Not worth retrying.
    Permanent(Cause),
}

impl GcsStorage {
    /// Connects to `bucket` (or the emulator at `STORAGE_EMULATOR_HOST`, when set) and checks,
    /// before any key is handled, that it exists and can be listed with these credentials.
    pub async fn connect(bucket: &str, prefix: &str) -> Result<Self, StorageError> {
        if let Some(host) = std::env::var("STORAGE_EMULATOR_HOST")
            .ok()
            .filter(|h| !h.is_empty())
        {
            return Self::emulator(&host, bucket, prefix).await;
        }
        let config = ClientConfig::default().with_auth().await.map_err(|e| {
            open_failed(
                bucket,
                format!("no Google credentials (Application Default Credentials): {e}"),
            )
        })?;
        Self::open(config, bucket, prefix).await
    }

    /// Connects anonymously to a GCS emulator at `host` (`http://127.0.0.1:4443`, or without
    /// the scheme).
    pub async fn emulator(host: &str, bucket: &str, prefix: &str) -> Result<Self, StorageError> {
        let host = host.trim_end_matches('/');
        let endpoint = if host.contains("://") {
            host.to_owned()
        } else {
            format!("http://{host}")
        };
        let mut storage = Self::open(
            ClientConfig {
                storage_endpoint: endpoint,
                ..ClientConfig::default()
            }
            .anonymous(),
            bucket,
            prefix,
        )
        .await?;
        storage.check_delete_generation = true;
        Ok(storage)
    }

    async fn open(config: ClientConfig, bucket: &str, prefix: &str) -> Result<Self, StorageError> {
        let prefix = match prefix.trim_matches('/') {
            "" => String::new(),
            p => format!("{p}/"),
        };
        let storage = Self {
            client: Client::new(config),
            bucket: bucket.to_owned(),
            prefix,
            retry: RetryPolicy::default(),
            check_delete_generation: false,
        };
        storage
            .check()
            .await
            .map_err(|reason| open_failed(bucket, reason))?;
        Ok(storage)
    }

    /// The same store with another retry policy.
    pub fn with_retry(self, retry: RetryPolicy) -> Self {
        Self { retry, ..self }
    }

    async fn check(&self) -> Result<(), String> {
        let request = ListObjectsRequest {
            bucket: self.bucket.clone(),
            prefix: Some(self.prefix.clone()),
            max_results: Some(1),
            ..Default::default()
        };
        let timeout = self.retry.call_timeout;
        match tokio::time::timeout(timeout, self.client.list_objects(&request)).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(GcsError::Response(e))) if e.code == 404 => {
                Err(format!("bucket {:?} does not exist", self.bucket))
            }
            Ok(Err(GcsError::Response(e))) if e.code == 401 || e.code == 403 => Err(format!(
                "access to bucket {:?} was denied ({}): the credentials need storage.objects.* on it",
                self.bucket, e.message
            )),
            Ok(Err(e)) => Err(format!("bucket {:?} could not be listed: {e}", self.bucket)),
            Err(_) => Err(format!(
                "bucket {:?} did not answer within {:?}",
                self.bucket, self.retry.call_timeout
            )),
        }
    }

    fn full(&self, name: &str) -> String {
        format!("{}{name}", self.prefix)
    }

    /// Checks `name` as the seam does, and that it still fits GCS's limit once prefixed.
    fn validate(&self, name: &str) -> Result<(), StorageError> {
        validate_name(name)?;
        if self.prefix.len() + name.len() > super::MAX_NAME_BYTES {
            return Err(StorageError::InvalidName {
                name: name.chars().take(80).collect(),
                reason: "it is longer than 1024 bytes with the bucket prefix",
            });
        }
        Ok(())
    }

    fn object(&self, object: GcsObject) -> Object {
        let name = object
            .name
            .strip_prefix(&self.prefix)
            .unwrap_or(&object.name)
            .to_owned();
        let metadata = object.metadata.unwrap_or_default().into_iter().collect();
        Object {
            name,
            generation: Generation(object.generation),
            metadata,
        }
    }

    /// Runs `call` with a timeout, retrying transient failures; reports whether an attempt
    /// before the final one may have landed.
    async fn retry<T, F, Fut>(&self, call: F) -> (Result<T, Failure>, bool)
    where
        F: Fn() -> Fut,
        Fut: Future<Output = Result<T, GcsError>>,
    {
        let mut maybe_landed_before = false;
        let mut attempt = 0;
        loop {
            attempt += 1;
            let timeout = self.retry.call_timeout;
            let outcome = match tokio::time::timeout(timeout, call()).await {
                Ok(Ok(value)) => return (Ok(value), maybe_landed_before),
                Ok(Err(e)) => classify(e),
                Err(_) => Failure::Transient {
                    maybe_landed: true,
                    error: format!("timed out after {timeout:?}").into(),
                },
            };
            match outcome {
                Failure::Transient {
                    maybe_landed,
                    error,
                } if attempt < self.retry.attempts => {
                    maybe_landed_before |= maybe_landed;
                    let delay = self.retry.base.saturating_mul(1 << (attempt - 1).min(16));
                    let error = crate::error_chain(error.as_ref());
                    debug!(bucket = %self.bucket, attempt, %error, "retrying a GCS call");
                    let pause = delay + jitter(delay, &mut rand::rng());
                    tokio::time::sleep(pause).await;
                }
                other => return (Err(other), maybe_landed_before),
            }
        }
    }

    fn error(&self, op: &'static str, name: &str, failure: Failure) -> StorageError {
        let name = name.to_owned();
        match failure {
            Failure::NotFound => StorageError::NotFound { name },
            Failure::Precondition => StorageError::Precondition { name },
            Failure::Transient { error, .. } => StorageError::Backend {
                op,
                name,
                transient: true,
                source: error,
            },
            Failure::Permanent(error) => StorageError::Backend {
                op,
                name,
                transient: false,
                source: error,
            },
        }
    }
}

fn open_failed(bucket: &str, reason: String) -> StorageError {
    StorageError::Backend {
        op: "open",
        name: format!("gs://{bucket}"),
        transient: false,
        source: reason.into(),
    }
}

fn classify(error: GcsError) -> Failure {
    let status = match &error {
        GcsError::Response(e) => Some(e.code),
        // An error answer whose body is not GCS's JSON (a proxy's page, say).
        GcsError::HttpClient(e) | GcsError::RawResponse(e, _) => e.status().map(|s| s.as_u16()),
        _ => None,
    };
    if let Some(code) = status {
        return by_status(code, error);
    }
    let maybe_landed = match &error {
        // A request that failed to connect never reached GCS; anything later may have.
        GcsError::HttpClient(e) | GcsError::RawResponse(e, _) => !e.is_connect(),
        GcsError::HttpMiddleware(_) => true,
        // Fetching a token (the metadata server on Cloud Run) fails transiently at times; the
        // request itself was never sent.
        GcsError::TokenSource(_) => false,
        _ => return Failure::Permanent(error.into()),
    };
    Failure::Transient {
        maybe_landed,
        error: error.into(),
    }
}

/// An error answer from GCS, with its status.
#[derive(Debug, thiserror::Error)]
#[error("GCS answered {code}")]
struct Answered {
    code: u16,
    #[source]
    source: GcsError,
}

fn by_status(code: u16, source: GcsError) -> Failure {
    let error = Box::new(Answered { code, source });
    match code {
        404 => Failure::NotFound,
        409 | 412 => Failure::Precondition,
        // A 429 is refused before anything happens; the others may have landed.
        408 | 429 | 500..=599 => Failure::Transient {
            maybe_landed: code != 429,
            error,
        },
        _ => Failure::Permanent(error),
    }
}

#[async_trait]
impl Storage for GcsStorage {
    async fn get(&self, name: &str) -> Result<Option<Object>, StorageError> {
        self.validate(name)?;
        let request = GetObjectRequest {
            bucket: self.bucket.clone(),
            object: self.full(name),
            ..Default::default()
        };
        match self.retry(|| self.client.get_object(&request)).await.0 {
            Ok(object) => Ok(Some(self.object(object))),
            Err(Failure::NotFound) => Ok(None),
            Err(failure) => Err(self.error("read", name, failure)),
        }
    }

    async fn put(
        &self,
        name: &str,
        metadata: &Metadata,
        mode: PutMode,
    ) -> Result<Generation, StorageError> {
        self.validate(name)?;
        let if_generation_match = match mode {
            PutMode::Create => 0,
            PutMode::Replace(generation) => generation.0,
        };
        let request = UploadObjectRequest {
            bucket: self.bucket.clone(),
            if_generation_match: Some(if_generation_match),
            ..Default::default()
        };
        let object = GcsObject {
            name: self.full(name),
            content_type: Some("application/octet-stream".into()),
            metadata: Some(
                metadata
                    .iter()
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect::<HashMap<_, _>>(),
            ),
            ..Default::default()
        };
        let upload = UploadType::Multipart(Box::new(object));
        let (result, maybe_landed) = self
            .retry(|| {
                self.client
                    .upload_object(&request, Vec::<u8>::new(), &upload)
            })
            .await;
        match result {
            Ok(object) => Ok(Generation(object.generation)),
            Err(Failure::Precondition) if maybe_landed => {
                // An earlier attempt may have written this very object: if so, it is ours.
                match self.get(name).await? {
                    Some(current) if current.metadata == *metadata => Ok(current.generation),
                    _ => Err(StorageError::Precondition {
                        name: name.to_owned(),
                    }),
                }
            }
            Err(failure) => Err(self.error("write", name, failure)),
        }
    }

    async fn delete(&self, name: &str, generation: Generation) -> Result<(), StorageError> {
        self.validate(name)?;
        if self.check_delete_generation {
            match self.get(name).await? {
                None => {
                    return Err(StorageError::NotFound {
                        name: name.to_owned(),
                    });
                }
                Some(object) if object.generation != generation => {
                    return Err(StorageError::Precondition {
                        name: name.to_owned(),
                    });
                }
                Some(_) => {}
            }
        }
        let request = DeleteObjectRequest {
            bucket: self.bucket.clone(),
            object: self.full(name),
            if_generation_match: Some(generation.0),
            ..Default::default()
        };
        let (result, maybe_landed) = self.retry(|| self.client.delete_object(&request)).await;
        match result {
            Ok(()) => Ok(()),
            // An earlier attempt deleted it.
            Err(Failure::NotFound) if maybe_landed => Ok(()),
            // After an attempt that may have landed, a 412 is ambiguous: ours deleted the object
            // and the name was written again, or ours did not land and the object changed. Gone
            // now means an attempt of ours deleted it; an object there is reported as the conflict.
            Err(Failure::Precondition) if maybe_landed => match self.get(name).await? {
                None => Ok(()),
                Some(_) => Err(StorageError::Precondition {
                    name: name.to_owned(),
                }),
            },
            Err(failure) => Err(self.error("delete", name, failure)),
        }
    }

    async fn list(
        &self,
        prefix: &str,
        page_token: Option<&str>,
        max_results: usize,
    ) -> Result<ListPage, StorageError> {
        let request = ListObjectsRequest {
            bucket: self.bucket.clone(),
            prefix: Some(self.full(prefix)),
            page_token: page_token.map(str::to_owned),
            max_results: Some(i32::try_from(max_results.clamp(1, 1000)).unwrap_or(1000)),
            ..Default::default()
        };
        match self.retry(|| self.client.list_objects(&request)).await.0 {
            Ok(response) => Ok(ListPage {
                objects: response
                    .items
                    .unwrap_or_default()
                    .into_iter()
                    .map(|o| self.object(o))
                    .collect(),
                next_page_token: response.next_page_token.filter(|t| !t.is_empty()),
            }),
            Err(failure) => Err(self.error("list", prefix, failure)),
        }
    }

    fn notified_name(&self, bucket: &str, object: &str) -> Option<String> {
        (bucket == self.bucket)
            .then(|| object.strip_prefix(&self.prefix))
            .flatten()
            .map(str::to_owned)
    }
}

#[cfg(test)]
#[path = "gcs_tests.rs"]
mod tests;
