//! Storage URLs (`memory://`, `file://DIR`, `gs://BUCKET[/PREFIX]`), parsed once into a typed
//! choice of backend, and opened. The one place that names every backend: it sits beside the
//! storage seam, which names none, so the queue rules see only the seam.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;
use std::sync::Arc;

use crate::storage::{DirStorage, GcsStorage, MemoryStorage, Storage, StorageError};

/// Where the queue keeps its objects.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StorageUrl {
    /// `memory://`: this process only, gone when it exits.
    Memory,
    /// `file://DIR`: a local directory (relative or absolute), durable and shared by every
    /// process on the machine.
    Dir(PathBuf),
    /// `gs://BUCKET[/PREFIX]`: a Google Cloud Storage bucket.
    Gcs {
        /// The bucket name.
        bucket: String,
        /// A name prefix inside the bucket, empty for the whole bucket.
        prefix: String,
        /// A GCS emulator to reach it through (`http://HOST:PORT`); `None`: the one
        /// `STORAGE_EMULATOR_HOST` names, if any, else Google Cloud Storage.
        emulator: Option<String>,
    },
}

/// A storage URL that could not be parsed.
#[derive(Debug, thiserror::Error)]
#[error(
    "invalid storage URL {url:?}: {reason} (expected memory://, file://DIR or gs://BUCKET[/PREFIX])"
)]
pub struct InvalidStorageUrl {
    url: String,
    reason: &'static str,
}

impl FromStr for StorageUrl {
    type Err = InvalidStorageUrl;

    fn from_str(url: &str) -> Result<Self, Self::Err> {
        let invalid = |reason| InvalidStorageUrl {
            url: url.to_owned(),
            reason,
        };
        if url == "memory://" || url == "memory:" {
            return Ok(Self::Memory);
        }
        if let Some(path) = url.strip_prefix("file://") {
            if path.is_empty() {
                return Err(invalid("the directory is missing"));
            }
            return Ok(Self::Dir(PathBuf::from(path)));
        }
        if let Some(rest) = url.strip_prefix("gs://") {
            let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
            if bucket.is_empty() {
                return Err(invalid("the bucket is missing"));
            }
            return Ok(Self::Gcs {
                bucket: bucket.to_owned(),
                prefix: prefix.trim_end_matches('/').to_owned(),
                emulator: None,
            });
        }
        Err(invalid("unknown scheme"))
    }
}

impl fmt::Display for StorageUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Memory => write!(f, "memory://"),
            Self::Dir(path) => write!(f, "file://{}", path.display()),
            Self::Gcs { bucket, prefix, .. } if prefix.is_empty() => write!(f, "gs://{bucket}"),
            Self::Gcs { bucket, prefix, .. } => write!(f, "gs://{bucket}/{prefix}"),
        }
    }
}

impl StorageUrl {
    /// Opens the backend this URL names.
    pub async fn open(&self) -> Result<Arc<dyn Storage>, StorageError> {
        match self {
            Self::Memory => Ok(Arc::new(MemoryStorage::new())),
            Self::Dir(path) => Ok(Arc::new(DirStorage::open(path.clone()).await?)),
            Self::Gcs {
                bucket,
                prefix,
                emulator: Some(host),
            } => Ok(Arc::new(GcsStorage::emulator(host, bucket, prefix).await?)),
            Self::Gcs {
                bucket,
                prefix,
                emulator: None,
            } => Ok(Arc::new(GcsStorage::connect(bucket, prefix).await?)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_should_accept_each_scheme() {
        assert_eq!(
            "memory://".parse::<StorageUrl>().unwrap(),
            StorageUrl::Memory
        );
        assert_eq!(
            "file://.reconcilers".parse::<StorageUrl>().unwrap(),
            StorageUrl::Dir(".reconcilers".into())
        );
        assert_eq!(
            "file:///var/lib/q".parse::<StorageUrl>().unwrap(),
            StorageUrl::Dir("/var/lib/q".into())
        );
        assert_eq!(
            "gs://b/p/".parse::<StorageUrl>().unwrap(),
            StorageUrl::Gcs {
                bucket: "b".into(),
                prefix: "p".into(),
                emulator: None,
            }
        );
    }

    #[test]
    fn parse_should_refuse_unknown_or_incomplete_urls() {
        for bad in ["s3://b", "file://", "gs://", "/tmp/x", ""] {
            let err = bad.parse::<StorageUrl>().unwrap_err().to_string();
            assert!(err.contains("expected memory://"), "{err}");
        }
    }
}
