//! Listing a repository's files through the Git Trees API: a whole tree (the resync's sweep;
//! a new branch), and the files two commits' trees differ in (a push's changes).

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};

use serde::Deserialize;

use super::{GitHubApi, GitHubError, check_sha};

/// The most tree listings one push's diff may take.
const MAX_DIFF_CALLS: usize = 200;

/// One Git Trees answer, borrowed from its body: a 100,000-entry tree is some 15 MB of JSON,
/// and only the paths a caller keeps are copied out of it.
#[derive(Deserialize)]
struct Tree<'a> {
    #[serde(borrow, default)]
    tree: Vec<TreeEntry<'a>>,
    #[serde(default)]
    truncated: bool,
}

#[derive(Deserialize)]
struct TreeEntry<'a> {
    #[serde(borrow)]
    path: Cow<'a, str>,
    #[serde(borrow, rename = "type")]
    kind: Cow<'a, str>,
    #[serde(borrow)]
    sha: Cow<'a, str>,
}

/// A tree still to list: its path prefix (`""` or `dir/`), its SHA, and whether to ask for it
/// recursively.
struct Pending {
    prefix: String,
    sha: String,
    recursive: bool,
}

impl GitHubApi {
    /// Calls `visit` with the path of every file (blob) in the tree of `tree_ish` (a commit,
    /// branch or tree SHA). One recursive call when GitHub answers it whole; when GitHub cuts
    /// a recursive answer short (over 100,000 entries or 7 MB), that tree is listed one level
    /// and each of its sub-trees recursively in turn, so no file is missed and a large tree
    /// costs a call per directory cut short, not per directory.
    pub async fn for_each_file(
        &self,
        repository: &str,
        tree_ish: &str,
        mut visit: impl FnMut(&str),
    ) -> Result<(), GitHubError> {
        let mut pending = vec![Pending {
            prefix: String::new(),
            sha: tree_ish.to_owned(),
            recursive: true,
        }];
        while let Some(Pending {
            prefix,
            sha,
            recursive,
        }) = pending.pop()
        {
            let body = self.tree_text(repository, &sha, recursive).await?;
            let tree: Tree<'_> = parse_tree(&body, repository, &sha)?;
            if tree.truncated && recursive {
                pending.push(Pending {
                    prefix,
                    sha,
                    recursive: false,
                });
                continue;
            }
            if tree.truncated {
                return Err(GitHubError::TreeCut {
                    repository: repository.to_owned(),
                    prefix,
                });
            }
            let mut path = prefix.clone();
            for entry in &tree.tree {
                path.truncate(prefix.len());
                path.push_str(&entry.path);
                match entry.kind.as_ref() {
                    "blob" => visit(&path),
                    // A recursive answer lists the sub-trees' entries too.
                    "tree" if !recursive => pending.push(Pending {
                        prefix: format!("{path}/"),
                        sha: entry.sha.to_string(),
                        recursive: true,
                    }),
                    _ => {}
                }
            }
        }
        Ok(())
    }

    /// Every file (blob) path in the tree of `tree_ish`, sorted (see [`Self::for_each_file`]).
    pub async fn files(
        &self,
        repository: &str,
        tree_ish: &str,
    ) -> Result<Vec<String>, GitHubError> {
        let mut files = Vec::new();
        self.for_each_file(repository, tree_ish, |path| files.push(path.to_owned()))
            .await?;
        files.sort();
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
    ) -> Result<Vec<String>, GitHubError> {
        check_sha(before)?;
        check_sha(after)?;
        let mut changed = Vec::new();
        let mut pending = vec![(String::new(), before.to_owned(), after.to_owned())];
        let mut calls = 0;
        while let Some((prefix, old_sha, new_sha)) = pending.pop() {
            calls += 2;
            if calls > MAX_DIFF_CALLS {
                return Err(GitHubError::TooManyDirectories {
                    repository: repository.to_owned(),
                    limit: MAX_DIFF_CALLS,
                });
            }
            let (old_body, new_body) = tokio::try_join!(
                self.tree_text(repository, &old_sha, false),
                self.tree_text(repository, &new_sha, false)
            )?;
            let old = parse_tree(&old_body, repository, &old_sha)?;
            let new = parse_tree(&new_body, repository, &new_sha)?;
            if old.truncated || new.truncated {
                return Err(GitHubError::TreeCut {
                    repository: repository.to_owned(),
                    prefix,
                });
            }
            let old: HashMap<&str, &TreeEntry<'_>> =
                old.tree.iter().map(|e| (e.path.as_ref(), e)).collect();
            let mut seen = HashSet::new();
            for entry in &new.tree {
                seen.insert(entry.path.as_ref());
                let path = format!("{prefix}{}", entry.path);
                match (old.get(entry.path.as_ref()), entry.kind.as_ref()) {
                    (Some(o), _) if o.sha == entry.sha && o.kind == entry.kind => {}
                    (Some(o), "tree") if o.kind == "tree" => {
                        pending.push((
                            format!("{path}/"),
                            o.sha.to_string(),
                            entry.sha.to_string(),
                        ));
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
        entry: &TreeEntry<'_>,
        path: &str,
        out: &mut Vec<String>,
    ) -> Result<(), GitHubError> {
        match entry.kind.as_ref() {
            "blob" => out.push(path.to_owned()),
            "tree" => {
                self.for_each_file(repository, &entry.sha, |f| out.push(format!("{path}/{f}")))
                    .await?;
            }
            _ => {}
        }
        Ok(())
    }

    /// The Git Trees answer for `sha`, unparsed (see [`parse_tree`]).
    async fn tree_text(
        &self,
        repository: &str,
        sha: &str,
        recursive: bool,
    ) -> Result<String, GitHubError> {
        let query = if recursive { "?recursive=1" } else { "" };
        self.get_text(&format!("/repos/{repository}/git/trees/{sha}{query}"))
            .await
            .map_err(GitHubError::during(format!(
                "failed to list the tree {sha} of {repository}"
            )))
    }
}

fn parse_tree<'a>(body: &'a str, repository: &str, sha: &str) -> Result<Tree<'a>, GitHubError> {
    serde_json::from_str(body).map_err(|source| GitHubError::Unexpected {
        what: format!("the tree {sha} of {repository}"),
        source,
    })
}
