//! Keys that name GitHub resources, parsed for reconcilers: pull requests, issues, and files or
//! directories at a ref (DESIGN §4.4).

use std::fmt;
use std::str::FromStr;

/// What a GitHub key points at.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Target {
    /// `/pull/<n>`.
    PullRequest(u64),
    /// `/issues/<n>`.
    Issue(u64),
    /// `/blob/<ref>/<path>`: a file.
    Blob {
        /// The branch, tag or commit (the first segment after `blob/`).
        git_ref: String,
        /// The file's path in the repository.
        path: String,
    },
    /// `/tree/<ref>/<path>`: a directory.
    Tree {
        /// The branch, tag or commit.
        git_ref: String,
        /// The directory's path (empty for the root).
        path: String,
    },
}

/// A parsed `https://<host>/<owner>/<repo>/...` key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GitHubKey {
    /// `github.com`, or a GitHub Enterprise host.
    pub host: String,
    /// The repository owner.
    pub owner: String,
    /// The repository name.
    pub repo: String,
    /// What in the repository the key names.
    pub target: Target,
}

/// A key that is not a GitHub resource URL this parser knows.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "{key:?} is not a GitHub key (https://HOST/OWNER/REPO/pull/N, /issues/N, /blob/REF/PATH or /tree/REF/PATH): {reason}"
)]
pub struct InvalidGitHubKey {
    key: String,
    reason: &'static str,
}

impl FromStr for GitHubKey {
    type Err = InvalidGitHubKey;

    fn from_str(key: &str) -> Result<Self, Self::Err> {
        let invalid = |reason| InvalidGitHubKey {
            key: key.to_owned(),
            reason,
        };
        let rest = key
            .strip_prefix("https://")
            .ok_or_else(|| invalid("it does not start with https://"))?;
        let mut parts = rest.splitn(5, '/');
        let mut next = |what| {
            parts
                .next()
                .filter(|s| !s.is_empty())
                .ok_or_else(|| invalid(what))
        };
        let host = next("the host is missing")?.to_owned();
        let owner = next("the owner is missing")?.to_owned();
        let repo = next("the repository is missing")?.to_owned();
        let kind = next("the kind (pull, issues, blob, tree) is missing")?;
        let tail = parts.next().unwrap_or("");
        let number = |tail: &str| {
            tail.parse::<u64>()
                .map_err(|_| invalid("the number is not a positive integer"))
        };
        let target = match kind {
            "pull" => Target::PullRequest(number(tail)?),
            "issues" => Target::Issue(number(tail)?),
            "blob" | "tree" => {
                let (git_ref, path) = tail.split_once('/').unwrap_or((tail, ""));
                if git_ref.is_empty() {
                    return Err(invalid("the ref is missing"));
                }
                let (git_ref, path) = (git_ref.to_owned(), path.to_owned());
                if kind == "blob" {
                    if path.is_empty() {
                        return Err(invalid("the file path is missing"));
                    }
                    Target::Blob { git_ref, path }
                } else {
                    Target::Tree { git_ref, path }
                }
            }
            _ => return Err(invalid("the kind is not pull, issues, blob or tree")),
        };
        Ok(Self {
            host,
            owner,
            repo,
            target,
        })
    }
}

impl fmt::Display for GitHubKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Self {
            host,
            owner,
            repo,
            target,
        } = self;
        write!(f, "https://{host}/{owner}/{repo}/")?;
        match target {
            Target::PullRequest(n) => write!(f, "pull/{n}"),
            Target::Issue(n) => write!(f, "issues/{n}"),
            Target::Blob { git_ref, path } => write!(f, "blob/{git_ref}/{path}"),
            Target::Tree { git_ref, path } if path.is_empty() => write!(f, "tree/{git_ref}"),
            Target::Tree { git_ref, path } => write!(f, "tree/{git_ref}/{path}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_should_read_every_kind_and_round_trip() {
        let cases = [
            ("https://github.com/o/r/pull/12", Target::PullRequest(12)),
            ("https://github.com/o/r/issues/7", Target::Issue(7)),
            (
                "https://github.com/o/r/blob/main/a/b/c.yaml",
                Target::Blob {
                    git_ref: "main".into(),
                    path: "a/b/c.yaml".into(),
                },
            ),
            (
                "https://github.com/o/r/tree/v1/dir",
                Target::Tree {
                    git_ref: "v1".into(),
                    path: "dir".into(),
                },
            ),
            (
                "https://github.com/o/r/tree/main",
                Target::Tree {
                    git_ref: "main".into(),
                    path: String::new(),
                },
            ),
        ];
        for (key, target) in cases {
            let parsed: GitHubKey = key.parse().unwrap();
            assert_eq!((parsed.owner.as_str(), parsed.repo.as_str()), ("o", "r"));
            assert_eq!(parsed.target, target);
            assert_eq!(parsed.to_string(), key);
        }
    }

    #[test]
    fn parse_should_refuse_what_it_cannot_read() {
        for bad in [
            "http://github.com/o/r/pull/1",
            "https://github.com/o/r/pull/x",
            "https://github.com/o/r/pull/",
            "https://github.com/o/r/commits/1",
            "https://github.com/o/r",
            "https://github.com/o/r/blob/main",
            "https://github.com//r/pull/1",
        ] {
            assert!(bad.parse::<GitHubKey>().is_err(), "{bad} parsed");
        }
    }
}
