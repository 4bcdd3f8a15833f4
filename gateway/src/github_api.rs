//! The GitHub API, for what a payload does not say: a repository's default branch and its
//! whole file tree (a push's changes when its commit list may be cut short; the resync's
//! sweep). Auth is `GITHUB_TOKEN`, or a GitHub App installation (`GITHUB_APP_ID`,
//! `GITHUB_APP_PRIVATE_KEY` or `GITHUB_APP_PRIVATE_KEY_FILE`, `GITHUB_INSTALLATION_ID`), or
//! none (public repositories, at a low rate limit).

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context, bail};
use axum::http::{HeaderMap, StatusCode};
use octocrab::Octocrab;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use tracing::warn;

/// The most tree listings one push's diff may take.
const MAX_DIFF_CALLS: usize = 200;

/// A commit SHA as GitHub writes it (40 hex digits): anything else must not reach a URL.
pub fn check_sha(sha: &str) -> anyhow::Result<()> {
    if sha.len() == 40 && sha.bytes().all(|b| b.is_ascii_hexdigit()) {
        Ok(())
    } else {
        bail!("{sha:?} is not a commit SHA")
    }
}

/// How long, in all, one call waits out rate limits by default.
pub const DEFAULT_MAX_RATE_LIMIT_WAIT: Duration = Duration::from_secs(60);

/// A client of the GitHub API.
#[derive(Clone, Debug)]
pub struct GitHubApi {
    client: Octocrab,
    /// How long, in all, one call waits out rate limits before it fails.
    max_wait: Duration,
}

#[derive(Deserialize)]
struct Repository {
    default_branch: String,
}

#[derive(Deserialize)]
struct Tree {
    #[serde(default)]
    tree: Vec<TreeEntry>,
    #[serde(default)]
    truncated: bool,
}

#[derive(Deserialize)]
struct TreeEntry {
    path: String,
    #[serde(rename = "type")]
    kind: String,
    sha: String,
}

impl GitHubApi {
    /// A client of `base` (`https://api.github.com` when `None`; a GitHub Enterprise or a
    /// local fake otherwise) with the credentials the environment gives.
    pub fn from_env(base: Option<&str>) -> anyhow::Result<Self> {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
        // Our own calls wait out rate limits, within a bound (`get_json`); octocrab's retry
        // would call again at once on a 429.
        let mut builder = Octocrab::builder()
            .add_retry_config(octocrab::service::middleware::retry::RetryConfig::None);
        if let Some(base) = base {
            builder = builder
                .base_uri(base)
                .with_context(|| format!("invalid GitHub API address {base:?}"))?;
        }
        let client = if let Some(app_id) = var("GITHUB_APP_ID") {
            let key = match (
                var("GITHUB_APP_PRIVATE_KEY"),
                var("GITHUB_APP_PRIVATE_KEY_FILE"),
            ) {
                (Some(key), _) => key,
                (None, Some(path)) => std::fs::read_to_string(&path).with_context(|| {
                    format!("failed to read GITHUB_APP_PRIVATE_KEY_FILE {path}")
                })?,
                (None, None) => bail!(
                    "GITHUB_APP_ID is set but neither GITHUB_APP_PRIVATE_KEY nor GITHUB_APP_PRIVATE_KEY_FILE is"
                ),
            };
            let installation: u64 = var("GITHUB_INSTALLATION_ID")
                .context("GITHUB_APP_ID is set but GITHUB_INSTALLATION_ID is not")?
                .parse()
                .context("GITHUB_INSTALLATION_ID is not a number")?;
            let app_id: u64 = app_id.parse().context("GITHUB_APP_ID is not a number")?;
            builder
                .app_from_rsa_pem(app_id.into(), key)
                .context("GITHUB_APP_PRIVATE_KEY is not an RSA private key in PEM")?
                .build()
                .context("failed to set up the GitHub client")?
                .installation(installation.into())
                .context("failed to set up the GitHub App installation")?
        } else if let Some(token) = var("GITHUB_TOKEN") {
            builder
                .personal_token(token)
                .build()
                .context("failed to set up the GitHub client")?
        } else {
            builder
                .build()
                .context("failed to set up the GitHub client")?
        };
        Ok(Self {
            client,
            max_wait: DEFAULT_MAX_RATE_LIMIT_WAIT,
        })
    }

    /// The same client, waiting out rate limits for up to `max_wait` per call.
    pub fn with_max_rate_limit_wait(self, max_wait: Duration) -> Self {
        Self { max_wait, ..self }
    }

    /// GETs `route` (with its query) and parses the JSON answer. A rate limit (403 or 429
    /// with `Retry-After`, or `X-RateLimit-Remaining: 0` and its reset time; a bare 429) is
    /// waited out and the call made again, for up to `max_wait` in all; anything else that
    /// is not a success fails with GitHub's message.
    async fn get_json<T: DeserializeOwned>(&self, route: &str) -> anyhow::Result<T> {
        let mut waited = Duration::ZERO;
        loop {
            let response = self
                .client
                ._get(route)
                .await
                .with_context(|| format!("failed to call the GitHub API at {route}"))?;
            let status = response.status();
            let wait = rate_limit_wait(status, response.headers(), SystemTime::now());
            let body = self
                .client
                .body_to_string(response)
                .await
                .with_context(|| format!("failed to read GitHub's answer for {route}"))?;
            if status.is_success() {
                return serde_json::from_str(&body)
                    .with_context(|| format!("unexpected answer from GitHub for {route}"));
            }
            match wait {
                Some(wait) if waited + wait <= self.max_wait => {
                    warn!(%route, ?wait, "GitHub rate limit: waiting it out");
                    tokio::time::sleep(wait).await;
                    waited += wait;
                }
                Some(wait) => bail!(
                    "GitHub's rate limit for {route} lifts in {wait:?}, beyond the {:?} a call waits",
                    self.max_wait
                ),
                None => bail!("GitHub answered {status} for {route}: {}", body.trim()),
            }
        }
    }

    /// The repository's default branch.
    pub async fn default_branch(&self, repository: &str) -> anyhow::Result<String> {
        let repo: Repository = self
            .get_json(&format!("/repos/{repository}"))
            .await
            .with_context(|| format!("failed to get the repository {repository}"))?;
        Ok(repo.default_branch)
    }

    /// Every file (blob) in the tree of `tree_ish` (a commit, branch or tree SHA), by path,
    /// with its blob SHA. One recursive call; when GitHub cuts that answer short, the tree is
    /// walked level by level instead, so no file is missed.
    pub async fn files(
        &self,
        repository: &str,
        tree_ish: &str,
    ) -> anyhow::Result<BTreeMap<String, String>> {
        let whole = self.tree(repository, tree_ish, true).await?;
        let mut files = BTreeMap::new();
        if !whole.truncated {
            for entry in whole.tree {
                if entry.kind == "blob" {
                    files.insert(entry.path, entry.sha);
                }
            }
            return Ok(files);
        }
        let mut pending = vec![(String::new(), tree_ish.to_owned())];
        while let Some((prefix, sha)) = pending.pop() {
            let level = self.tree(repository, &sha, false).await?;
            if level.truncated {
                bail!("GitHub cut short a single tree level of {repository} at {prefix:?}");
            }
            for entry in level.tree {
                let path = format!("{prefix}{}", entry.path);
                match entry.kind.as_str() {
                    "blob" => {
                        files.insert(path, entry.sha);
                    }
                    "tree" => pending.push((format!("{path}/"), entry.sha)),
                    _ => {}
                }
            }
        }
        Ok(files)
    }

    /// The files that differ between two commits: added, removed or changed. Both trees are
    /// walked together from the root, going only into sub-trees whose SHA differs, so a push
    /// costs API calls for the directories it touched, not for the whole repository.
    pub async fn changed_files(
        &self,
        repository: &str,
        before: &str,
        after: &str,
    ) -> anyhow::Result<Vec<String>> {
        check_sha(before)?;
        check_sha(after)?;
        let mut changed = Vec::new();
        let mut pending = vec![(String::new(), before.to_owned(), after.to_owned())];
        let mut calls = 0;
        while let Some((prefix, old_sha, new_sha)) = pending.pop() {
            calls += 2;
            if calls > MAX_DIFF_CALLS {
                bail!("the push touched more than {MAX_DIFF_CALLS} directories of {repository}");
            }
            let (old, new) = tokio::try_join!(
                self.tree(repository, &old_sha, false),
                self.tree(repository, &new_sha, false)
            )?;
            if old.truncated || new.truncated {
                bail!("GitHub cut short a single tree level of {repository} at {prefix:?}");
            }
            let old: std::collections::HashMap<&str, &TreeEntry> =
                old.tree.iter().map(|e| (e.path.as_str(), e)).collect();
            let mut seen = std::collections::HashSet::new();
            for entry in &new.tree {
                seen.insert(entry.path.as_str());
                let path = format!("{prefix}{}", entry.path);
                match (old.get(entry.path.as_str()), entry.kind.as_str()) {
                    (Some(o), _) if o.sha == entry.sha && o.kind == entry.kind => {}
                    (Some(o), "tree") if o.kind == "tree" => {
                        pending.push((format!("{path}/"), o.sha.clone(), entry.sha.clone()));
                    }
                    (previous, kind) => {
                        // Added, or changed kind: everything under both sides changed.
                        if let Some(o) = previous {
                            self.collect(repository, o, &path, &mut changed).await?;
                        }
                        if kind == "tree" || kind == "blob" {
                            self.collect(repository, entry, &path, &mut changed).await?;
                        }
                    }
                }
            }
            for (name, entry) in &old {
                if !seen.contains(name) {
                    let path = format!("{prefix}{name}");
                    self.collect(repository, entry, &path, &mut changed).await?;
                }
            }
        }
        changed.sort();
        changed.dedup();
        Ok(changed)
    }

    /// Adds `entry` at `path` to `out`: the file itself, or every file under a tree.
    async fn collect(
        &self,
        repository: &str,
        entry: &TreeEntry,
        path: &str,
        out: &mut Vec<String>,
    ) -> anyhow::Result<()> {
        match entry.kind.as_str() {
            "blob" => out.push(path.to_owned()),
            "tree" => {
                let files = self.files(repository, &entry.sha).await?;
                out.extend(files.into_keys().map(|f| format!("{path}/{f}")));
            }
            _ => {}
        }
        Ok(())
    }

    async fn tree(&self, repository: &str, sha: &str, recursive: bool) -> anyhow::Result<Tree> {
        let query = if recursive { "?recursive=1" } else { "" };
        self.get_json(&format!("/repos/{repository}/git/trees/{sha}{query}"))
            .await
            .with_context(|| format!("failed to list the tree {sha} of {repository}"))
    }
}

/// How long a GitHub answer asks to wait before calling again, if it is a rate limit.
fn rate_limit_wait(status: StatusCode, headers: &HeaderMap, now: SystemTime) -> Option<Duration> {
    if status != StatusCode::FORBIDDEN && status != StatusCode::TOO_MANY_REQUESTS {
        return None;
    }
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    if let Some(seconds) = header("retry-after").and_then(|v| v.trim().parse::<u64>().ok()) {
        return Some(Duration::from_secs(seconds.max(1)));
    }
    if header("x-ratelimit-remaining") == Some("0")
        && let Some(reset) = header("x-ratelimit-reset").and_then(|v| v.parse::<u64>().ok())
    {
        let now = now.duration_since(UNIX_EPOCH).unwrap_or_default().as_secs();
        return Some(Duration::from_secs(reset.saturating_sub(now) + 1));
    }
    // A secondary rate limit without a hint: GitHub asks for at least a minute.
    (status == StatusCode::TOO_MANY_REQUESTS).then_some(Duration::from_secs(60))
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use axum::http::HeaderValue;
    use axum::response::IntoResponse;

    use super::*;

    #[test]
    fn rate_limit_wait_should_read_githubs_hints() {
        let now = UNIX_EPOCH + Duration::from_secs(1_000);
        let headers = |pairs: &[(&'static str, &'static str)]| {
            let mut h = HeaderMap::new();
            for (n, v) in pairs {
                h.insert(*n, HeaderValue::from_static(v));
            }
            h
        };
        let forbidden = StatusCode::FORBIDDEN;
        assert_eq!(
            rate_limit_wait(forbidden, &headers(&[("retry-after", "7")]), now),
            Some(Duration::from_secs(7))
        );
        let exhausted = headers(&[
            ("x-ratelimit-remaining", "0"),
            ("x-ratelimit-reset", "1030"),
        ]);
        assert_eq!(
            rate_limit_wait(forbidden, &exhausted, now),
            Some(Duration::from_secs(31))
        );
        assert_eq!(
            rate_limit_wait(forbidden, &headers(&[]), now),
            None,
            "a plain 403"
        );
        assert_eq!(
            rate_limit_wait(StatusCode::TOO_MANY_REQUESTS, &headers(&[]), now),
            Some(Duration::from_secs(60))
        );
        assert_eq!(
            rate_limit_wait(StatusCode::NOT_FOUND, &exhausted, now),
            None
        );
    }

    #[tokio::test]
    async fn calls_should_wait_out_a_rate_limit_and_fail_on_other_errors() {
        let calls = Arc::new(AtomicUsize::new(0));
        let seen = calls.clone();
        let router = axum::Router::new()
            .route(
                "/repos/o/r",
                axum::routing::get(move || {
                    let seen = seen.clone();
                    async move {
                        if seen.fetch_add(1, Ordering::SeqCst) == 0 {
                            (
                                StatusCode::TOO_MANY_REQUESTS,
                                [("retry-after", "1")],
                                "slow down",
                            )
                                .into_response()
                        } else {
                            r#"{"default_branch":"trunk"}"#.into_response()
                        }
                    }
                }),
            )
            .route(
                "/repos/o/missing",
                axum::routing::get(|| async {
                    (StatusCode::NOT_FOUND, r#"{"message":"Not Found"}"#)
                }),
            );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, router).await });
        let api = GitHubApi::from_env(Some(&format!("http://{addr}"))).unwrap();
        let started = std::time::Instant::now();
        assert_eq!(api.default_branch("o/r").await.unwrap(), "trunk");
        assert!(started.elapsed() >= Duration::from_secs(1), "it waited");
        assert_eq!(calls.load(Ordering::SeqCst), 2);
        let err = format!("{:#}", api.default_branch("o/missing").await.unwrap_err());
        assert!(err.contains("404") && err.contains("Not Found"), "{err}");
        let impatient = api.with_max_rate_limit_wait(Duration::ZERO);
        calls.store(0, Ordering::SeqCst);
        let err = format!("{:#}", impatient.default_branch("o/r").await.unwrap_err());
        assert!(err.contains("rate limit"), "{err}");
    }
}
