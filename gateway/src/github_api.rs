//! The GitHub API, for what a payload does not say: a repository's default branch and its
//! whole file tree (a push's changes when its commit list may be cut short; the resync's
//! sweep). Auth is `GITHUB_TOKEN`, or a GitHub App installation (`GITHUB_APP_ID`,
//! `GITHUB_APP_PRIVATE_KEY` or `GITHUB_APP_PRIVATE_KEY_FILE`, `GITHUB_INSTALLATION_ID`), or
//! none (public repositories, at a low rate limit).

use std::collections::BTreeMap;

use anyhow::{Context, bail};
use octocrab::Octocrab;
use serde::Deserialize;

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

/// A client of the GitHub API.
#[derive(Clone, Debug)]
pub struct GitHubApi {
    client: Octocrab,
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
        let mut builder = Octocrab::builder();
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
        Ok(Self { client })
    }

    /// The repository's default branch.
    pub async fn default_branch(&self, repository: &str) -> anyhow::Result<String> {
        let repo: Repository = self
            .client
            .get(format!("/repos/{repository}"), None::<&()>)
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
        let route = format!("/repos/{repository}/git/trees/{sha}");
        let result = if recursive {
            self.client.get(route, Some(&[("recursive", "1")])).await
        } else {
            self.client.get(route, None::<&()>).await
        };
        result.with_context(|| format!("failed to list the tree {sha} of {repository}"))
    }
}
