//! The status manager: a reconciler's observed state kept in a GitHub Check Run, so that a
//! key already reconciled at its head SHA costs two reads and no write.
//!
//! One manager per reconciler identity and state type `T`. A [`Session`] is one resource at
//! one commit: opening it lists that commit's check runs named for the identity (the identity
//! for a pull request, `identity (path)` for a file or directory) and reads the [`Status`]
//! embedded in the newest one's summary ([`crate::marker`]). Setting a status updates that
//! run, or creates one on the commit. A run without a readable marker is "nothing observed",
//! and the next write heals it. A re-run request ([`Session::reset`]) makes a fresh queued run
//! without a marker: a completed run's conclusion cannot be moved back, and the fresh run is
//! now the newest, so the next reconcile does the work again.

use std::marker::PhantomData;

use reconciler::{GitHubKey, Target};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::client::GitHubClient;
use crate::error::Error;
use crate::marker;
use crate::resources::seg;

/// A check run's summary may hold 65,535 characters; the rendering is cut to leave room for
/// the marker.
const SUMMARY_LIMIT: usize = 65_535;
/// GitHub takes at most 50 annotations per request.
const ANNOTATION_LIMIT: usize = 50;

/// Where a check run is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    /// Waiting to run.
    Queued,
    /// Running.
    InProgress,
    /// Done; it has a conclusion.
    Completed,
}

/// How a completed check run ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Conclusion {
    /// Passed.
    Success,
    /// Failed.
    Failure,
    /// Neither.
    Neutral,
    /// Cancelled.
    Cancelled,
    /// Skipped.
    Skipped,
    /// Timed out.
    TimedOut,
    /// Needs a person.
    ActionRequired,
}

/// What a reconciler observed of a resource at one generation (the head SHA).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Status<T> {
    /// The commit SHA the status is for.
    pub observed_generation: String,
    /// The run's status.
    pub status: RunStatus,
    /// Its conclusion, once completed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conclusion: Option<Conclusion>,
    /// The reconciler's own state.
    pub details: T,
}

impl<T> Status<T> {
    /// A completed status at `sha`.
    pub fn completed(sha: impl Into<String>, conclusion: Conclusion, details: T) -> Self {
        Self {
            observed_generation: sha.into(),
            status: RunStatus::Completed,
            conclusion: Some(conclusion),
            details,
        }
    }

    /// An in-progress status at `sha`.
    pub fn in_progress(sha: impl Into<String>, details: T) -> Self {
        Self {
            observed_generation: sha.into(),
            status: RunStatus::InProgress,
            conclusion: None,
            details,
        }
    }

    /// Whether this is a completed status at `sha`: the work for that SHA is done.
    pub fn is_completed_at(&self, sha: &str) -> bool {
        self.status == RunStatus::Completed && self.observed_generation == sha
    }
}

/// A line or range of a file a check run points at.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Annotation {
    /// The file's path in the repository.
    pub path: String,
    /// The first line.
    pub start_line: u64,
    /// The last line.
    pub end_line: u64,
    /// `notice`, `warning` or `failure`.
    pub annotation_level: &'static str,
    /// What is wrong.
    pub message: String,
}

/// A reconciler's state, as a check run shows it to people.
pub trait Details: Serialize + DeserializeOwned + Send + Sync {
    /// The run's title.
    fn title(&self) -> String;
    /// The run's summary, in Markdown.
    fn markdown(&self) -> String;
    /// Lines of files to point at; none unless given.
    fn annotations(&self) -> Vec<Annotation> {
        Vec::new()
    }
}

/// Where a check run's "Details" link points.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DetailsLink {
    /// The Cloud Logging query for this service (`K_SERVICE`, in `GOOGLE_CLOUD_PROJECT`), the
    /// key and the SHA; no link when `K_SERVICE` is not set (not on Cloud Run).
    CloudLogging,
    /// No link.
    Off,
}

/// Keeps a reconciler's [`Status`] in check runs named for its identity.
#[derive(Debug)]
pub struct StatusManager<T> {
    identity: String,
    read_only: bool,
    link: DetailsLink,
    state: PhantomData<fn() -> T>,
}

/// A check run as listed.
#[derive(Deserialize)]
struct Run {
    id: u64,
    name: String,
    #[serde(default)]
    output: Option<RunOutput>,
}

#[derive(Deserialize)]
struct RunOutput {
    #[serde(default)]
    summary: Option<String>,
}

#[derive(Deserialize)]
struct Runs {
    check_runs: Vec<Run>,
}

/// What a write sends.
#[derive(Serialize)]
struct RunWrite<'a> {
    name: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    head_sha: Option<&'a str>,
    status: RunStatus,
    #[serde(skip_serializing_if = "Option::is_none")]
    conclusion: Option<Conclusion>,
    #[serde(skip_serializing_if = "Option::is_none")]
    details_url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    output: Option<Output>,
}

#[derive(Serialize)]
struct Output {
    title: String,
    summary: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    annotations: Vec<Annotation>,
}

#[derive(Deserialize)]
struct Written {
    id: u64,
}

impl<T: Details> StatusManager<T> {
    /// A manager for `identity`, with Cloud Logging details links.
    pub fn new(identity: impl Into<String>) -> Self {
        Self {
            identity: identity.into(),
            read_only: false,
            link: DetailsLink::CloudLogging,
            state: PhantomData,
        }
    }

    /// A manager that reads another reconciler's status and refuses to write.
    pub fn read_only(identity: impl Into<String>) -> Self {
        Self {
            read_only: true,
            ..Self::new(identity)
        }
    }

    /// The same manager, with `link` as its details links.
    pub fn details_link(self, link: DetailsLink) -> Self {
        Self { link, ..self }
    }

    /// The identity: the check run's name.
    pub fn identity(&self) -> &str {
        &self.identity
    }

    /// The name of the check runs for `key`: the identity for a pull request, `identity
    /// (path)` for a file or directory. Issues have no commit to report on.
    pub fn check_name(&self, key: &GitHubKey) -> Result<String, Error> {
        match &key.target {
            Target::PullRequest(_) => Ok(self.identity.clone()),
            Target::Blob { path, .. } | Target::Tree { path, .. } => {
                Ok(format!("{} ({path})", self.identity))
            }
            Target::Issue(_) | Target::CheckRun(_) => Err(Error::no_retry(format!(
                "the status manager reports on pull requests and paths; {key} is neither"
            ))),
        }
    }

    /// Opens `key` at commit `sha` through `client`: one read, the check runs of that commit
    /// named for the identity.
    pub async fn session<'a>(
        &'a self,
        client: &'a GitHubClient,
        key: &'a GitHubKey,
        sha: &str,
    ) -> Result<Session<'a, T>, Error> {
        if !(sha.len() == 40 && sha.bytes().all(|b| b.is_ascii_hexdigit())) {
            return Err(Error::no_retry(format!("{sha:?} is not a commit SHA")));
        }
        let name = self.check_name(key)?;
        crate::reconcile::record_sha(sha);
        let path = format!(
            "/repos/{}/{}/commits/{sha}/check-runs?check_name={}&filter=latest",
            seg(&key.owner),
            seg(&key.repo),
            seg(&name)
        );
        let runs: Runs = client.get_json(&path).await?;
        let newest = runs
            .check_runs
            .into_iter()
            .filter(|run| run.name == name)
            .max_by_key(|run| run.id);
        let observed = newest
            .as_ref()
            .and_then(|run| run.output.as_ref()?.summary.as_deref())
            .and_then(marker::decode::<Status<T>>)
            .filter(|status| status.observed_generation == sha);
        Ok(Session {
            manager: self,
            client,
            key,
            sha: sha.to_owned(),
            name,
            run: newest.map(|run| run.id),
            listing: path,
            observed,
        })
    }
}

/// One resource at one commit, opened by [`StatusManager::session`].
#[derive(Debug)]
pub struct Session<'a, T> {
    manager: &'a StatusManager<T>,
    client: &'a GitHubClient,
    key: &'a GitHubKey,
    sha: String,
    name: String,
    /// The newest run of that name on the commit, if any.
    run: Option<u64>,
    /// The route the session's runs were listed at.
    listing: String,
    observed: Option<Status<T>>,
}

impl<T: Details> Session<'_, T> {
    /// The status last set at this commit; `None` when nothing was observed (no run, a run
    /// without a readable marker, or a fresh run after a re-run request).
    pub fn observed(&self) -> Option<&Status<T>> {
        self.observed.as_ref()
    }

    /// Whether the work at this commit is done: a completed status is observed.
    pub fn is_done(&self) -> bool {
        self.observed
            .as_ref()
            .is_some_and(|status| status.is_completed_at(&self.sha))
    }

    /// The commit SHA.
    pub fn sha(&self) -> &str {
        &self.sha
    }

    /// Sets the status: one write, updating the run found or creating one on the commit
    /// (and, with conditional requests on, one read after it: see `remember_listing`).
    pub async fn set(&mut self, status: Status<T>) -> Result<(), Error> {
        self.writable()?;
        let marker = marker::encode(&status).map_err(|source| Error::Decode {
            method: "POST",
            path: "(the status marker)".to_owned(),
            source,
        })?;
        let mut summary = status.details.markdown();
        let room = SUMMARY_LIMIT.saturating_sub(marker.len() + 2);
        if summary.len() > room {
            let cut = (0..=room)
                .rev()
                .find(|&i| summary.is_char_boundary(i))
                .unwrap_or(0);
            summary.truncate(cut);
        }
        summary.push_str("\n\n");
        summary.push_str(&marker);
        let mut annotations = status.details.annotations();
        annotations.truncate(ANNOTATION_LIMIT);
        let output = Output {
            title: status.details.title(),
            summary,
            annotations,
        };
        let write = RunWrite {
            name: &self.name,
            head_sha: None,
            status: status.status,
            conclusion: status.conclusion,
            details_url: self.details_url(),
            output: Some(output),
        };
        self.run = Some(self.write(write, self.run).await?);
        self.observed = Some(status);
        self.remember_listing().await;
        Ok(())
    }

    /// With conditional requests on, lists the runs again after a write: one read that makes
    /// the listing's remembered answer the one with this write in it, so every later
    /// reconcile of this commit is answered 304 rather than in full (a 304 does not count
    /// against the rate limit). Best effort: a failure only costs that saving.
    async fn remember_listing(&self) {
        if self.client.is_conditional()
            && let Err(e) = self
                .client
                .get_bytes(&self.listing, crate::client::JSON)
                .await
        {
            tracing::debug!(error = %e, "failed to list the check runs again after a write");
        }
    }

    /// Answers a re-run request: a fresh queued run without a marker, so nothing is observed
    /// and the next reconcile of this commit does the work again. One write. (A check-run
    /// key does this by itself: see [`crate::GitHub::with_identity`].)
    pub async fn reset(&mut self) -> Result<(), Error> {
        self.writable()?;
        let fresh = queue_fresh_run(self.client, self.key, &self.name, &self.sha).await?;
        self.run = Some(fresh);
        self.observed = None;
        Ok(())
    }

    fn writable(&self) -> Result<(), Error> {
        if self.manager.read_only {
            return Err(Error::ReadOnly {
                identity: self.manager.identity.clone(),
            });
        }
        Ok(())
    }

    /// Updates the run `onto`, or creates one on the commit: the run written.
    async fn write(&self, mut write: RunWrite<'_>, onto: Option<u64>) -> Result<u64, Error> {
        let repo = format!("/repos/{}/{}", seg(&self.key.owner), seg(&self.key.repo));
        let written: Written = match onto {
            Some(id) => {
                let path = format!("{repo}/check-runs/{id}");
                self.client.patch_json(&path, &write).await?
            }
            None => {
                write.head_sha = Some(&self.sha);
                let path = format!("{repo}/check-runs");
                self.client.post_json(&path, &write).await?
            }
        };
        Ok(written.id)
    }

    fn details_url(&self) -> Option<String> {
        match self.manager.link {
            DetailsLink::Off => None,
            DetailsLink::CloudLogging => {
                let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
                let service = var("K_SERVICE")?;
                let project = var("GOOGLE_CLOUD_PROJECT").or_else(|| var("CLOUDSDK_CORE_PROJECT"));
                Some(cloud_logging_url(
                    &service,
                    project.as_deref(),
                    &self.key.to_string(),
                    &self.sha,
                ))
            }
        }
    }
}

/// Creates a queued run `name` on commit `sha` of `key`'s repository, with no marker: always a
/// new run, since a completed one cannot be moved back. The new run's id.
pub(crate) async fn queue_fresh_run(
    client: &GitHubClient,
    key: &GitHubKey,
    name: &str,
    sha: &str,
) -> Result<u64, Error> {
    let write = RunWrite {
        name,
        head_sha: Some(sha),
        status: RunStatus::Queued,
        conclusion: None,
        details_url: None,
        output: None,
    };
    let path = format!("/repos/{}/{}/check-runs", seg(&key.owner), seg(&key.repo));
    let written: Written = client.post_json(&path, &write).await?;
    Ok(written.id)
}

/// The Cloud Logging query for `service`'s lines about `key` at `sha` (the reconcile's own
/// line carries both as top-level fields).
fn cloud_logging_url(service: &str, project: Option<&str>, key: &str, sha: &str) -> String {
    let query = format!(
        "resource.type=\"cloud_run_revision\"\nresource.labels.service_name=\"{service}\"\njsonPayload.key=\"{key}\"\njsonPayload.sha=\"{sha}\""
    );
    let query = percent_encoding::utf8_percent_encode(&query, percent_encoding::NON_ALPHANUMERIC);
    let project = project
        .map(|p| format!("?project={}", seg(p)))
        .unwrap_or_default();
    format!("https://console.cloud.google.com/logs/query;query={query}{project}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_details_link_should_query_the_service_key_and_sha() {
        let url = cloud_logging_url(
            "pr-check",
            Some("proj"),
            "https://github.com/o/r/pull/1",
            "abc",
        );
        assert!(url.starts_with("https://console.cloud.google.com/logs/query;query="));
        assert!(url.ends_with("?project=proj"));
        let query = percent_encoding::percent_decode_str(&url[url.find('=').unwrap() + 1..])
            .decode_utf8()
            .unwrap()
            .into_owned();
        assert!(query.contains("service_name=\"pr-check\""), "{query}");
        assert!(query.contains("jsonPayload.key=\"https://github.com/o/r/pull/1\""));
        assert!(query.contains("jsonPayload.sha=\"abc\""));
    }
}
