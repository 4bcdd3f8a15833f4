//! A reconciler written with the SDK: it parses GitHub keys and reports what it would do.
//!
//! ```text
//! cargo run -p examples --example github_reconciler   # 127.0.0.1:8082; 0.0.0.0:$PORT with PORT
//! cargo run -- dev --reconciler http://127.0.0.1:8082
//! cargo run -- enqueue https://github.com/octo-org/octo-repo/pull/1
//! ```

use std::net::SocketAddr;
use std::time::Duration;

use async_trait::async_trait;
use reconciler::{Action, GitHubKey, ReconcileError, Reconciler, Target, serve};
use tracing::info;

/// Checks pull requests and config files named by GitHub keys.
struct Example;

#[async_trait]
impl Reconciler for Example {
    async fn reconcile(&self, key: &str, priority: i64) -> Result<Action, ReconcileError> {
        // A key this reconciler cannot read will never become readable: drop it.
        let parsed: GitHubKey = key
            .parse()
            .map_err(|e: reconciler::InvalidGitHubKey| ReconcileError::no_retry(e.to_string()))?;
        let repo = format!("{}/{}", parsed.owner, parsed.repo);
        match parsed.target {
            Target::PullRequest(number) => {
                info!(%repo, number, priority, "checking the pull request");
                // Look again in ten minutes: a level-based check of a moving target.
                Ok(Action::requeue_after(Duration::from_secs(600)))
            }
            Target::Blob { git_ref, path } => {
                info!(%repo, %git_ref, %path, "syncing the file");
                Ok(Action::done())
            }
            other => Err(ReconcileError::no_retry(format!(
                "this example does not handle {other:?}"
            ))),
        }
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt().with_env_filter("info").init();
    // On Cloud Run, PORT is set and the service must listen on every interface.
    let addr = match std::env::var("PORT") {
        Ok(port) => SocketAddr::from(([0, 0, 0, 0], port.parse()?)),
        Err(_) => SocketAddr::from(([127, 0, 0, 1], 8082)),
    };
    info!(%addr, "serving the example reconciler");
    serve(Example, addr, async {
        let _ = tokio::signal::ctrl_c().await;
    })
    .await?;
    Ok(())
}
