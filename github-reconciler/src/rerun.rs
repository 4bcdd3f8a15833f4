//! Re-run requests. Someone pressed "Re-run" on a check run: GitHub sends `check_run` with
//! action `rerequested` to the App that made the run, and changes nothing itself. The gateway
//! gives that event the run's own key (`https://HOST/OWNER/REPO/runs/ID`, extension
//! `checkrunurl`); a route sends it here. If the run is this reconciler's (named its identity,
//! or `identity (path)`), a fresh queued run without a marker goes on the same commit, so the
//! status manager observes nothing there, and the run's resources are enqueued to do the work
//! again: its pull requests, or the path at that commit.

use reconciler::{Action, GitHubKey, QueueKey, Target};
use serde::Deserialize;
use tracing::info;

use crate::client::GitHubClient;
use crate::error::Error;
use crate::reconcile::record_sha;
use crate::resources::seg;
use crate::status::queue_fresh_run;

/// The priority of the keys a re-run enqueues: as an event's.
const RERUN_PRIORITY: i64 = 100;

#[derive(Deserialize)]
struct Run {
    name: String,
    head_sha: String,
    #[serde(default)]
    pull_requests: Vec<PullRequestRef>,
}

#[derive(Deserialize)]
struct PullRequestRef {
    number: u64,
}

/// Handles the check-run key `key` (run `id`) for the reconciler `identity`: two calls (the
/// run, the fresh run) when the run is its own, one otherwise.
pub(crate) async fn rerun(
    identity: &str,
    key: &GitHubKey,
    id: u64,
    client: &GitHubClient,
) -> Result<Action, Error> {
    let path = format!(
        "/repos/{}/{}/check-runs/{id}",
        seg(&key.owner),
        seg(&key.repo)
    );
    let run: Run = match client.get_json(&path).await {
        Ok(run) => run,
        Err(e) if e.is_not_found() => return Ok(Action::done()),
        Err(e) => return Err(e),
    };
    record_sha(&run.head_sha);
    let repository = key.repository();
    let targets: Vec<Target> = if run.name == identity {
        run.pull_requests
            .iter()
            .map(|pr| Target::PullRequest(pr.number))
            .collect()
    } else if let Some(path) = run
        .name
        .strip_prefix(identity)
        .and_then(|rest| rest.strip_prefix(" ("))
        .and_then(|rest| rest.strip_suffix(')'))
    {
        // The path at the run's commit: the reconciler reads the file there.
        vec![Target::Blob {
            git_ref: run.head_sha.clone(),
            path: path.to_owned(),
        }]
    } else {
        info!(%key, run = run.name, identity, "a re-run request for another reconciler's run: ignored");
        return Ok(Action::done());
    };
    queue_fresh_run(client, key, &run.name, &run.head_sha).await?;
    let keys = targets
        .into_iter()
        .map(|target| QueueKey::new(repository.key(target).to_string(), RERUN_PRIORITY));
    Ok(Action::queue(keys))
}
