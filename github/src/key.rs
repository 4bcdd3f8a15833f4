//! GitHub keys: the one type that both makes the keys the gateway and the resync enqueue and
//! parses them for reconcilers, so every part names a resource the same way.
//!
//! A key is the resource's page: `https://<host>/<owner>/<repo>/pull/<n>`, `/issues/<n>`,
//! `/blob/<ref>/<path>` (a file), `/tree/<ref>/<path>` (a directory) or `/runs/<id>` (a check
//! run: what a re-run request names). The host is always
//! the one the event or the API named, so keys made on GitHub Enterprise name its host. The
//! reference framework also writes keys without the scheme (`github.com/org/repo/pull/1`);
//! those parse too, and print back with `https://`.

use std::fmt;
use std::str::FromStr;

/// The host of public GitHub.
pub const GITHUB_HOST: &str = "github.com";

/// What in a repository a key names.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
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
    /// `/runs/<id>`: a check run (a re-run request names one).
    CheckRun(u64),
}

/// A repository on a GitHub host: what keys are made in.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Repository {
    /// `github.com`, or a GitHub Enterprise host.
    pub host: String,
    /// The repository owner.
    pub owner: String,
    /// The repository name.
    pub name: String,
}

/// A parsed key: a repository and what in it the key names.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
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

/// A key that is not a GitHub resource this parser knows.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "{key:?} is not a GitHub key ([https://]HOST/OWNER/REPO/pull/N, /issues/N, /blob/REF/PATH, /tree/REF/PATH or /runs/ID): {reason}"
)]
pub struct InvalidGitHubKey {
    key: String,
    reason: &'static str,
}

impl InvalidGitHubKey {
    fn new(key: &str, reason: &'static str) -> Self {
        Self {
            key: key.to_owned(),
            reason,
        }
    }
}

/// A repository name or page that cannot make keys.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidRepository {
    /// A name that is not `OWNER/REPO`.
    #[error("repository {0:?} is not OWNER/REPO")]
    Name(String),
    /// A page that is not `https://HOST/OWNER/REPO`.
    #[error("{0:?} is not a repository's page (https://HOST/OWNER/REPO)")]
    Page(String),
}

impl Repository {
    /// `owner/name` (GitHub's `full_name`) on `host`.
    pub fn new(host: &str, full_name: &str) -> Result<Self, InvalidRepository> {
        let (owner, name) = split_full_name(full_name)?;
        if !segment(host) {
            return Err(InvalidRepository::Name(full_name.to_owned()));
        }
        Ok(Self {
            host: host.to_owned(),
            owner: owner.to_owned(),
            name: name.to_owned(),
        })
    }

    /// The repository whose web page is `url` (a payload's or the API's `html_url`:
    /// `https://HOST/OWNER/REPO`, or `http://` on some GitHub Enterprise servers), which says
    /// the host on GitHub Enterprise too. Its keys are written with `https://` either way.
    pub fn from_url(url: &str) -> Result<Self, InvalidRepository> {
        let invalid = || InvalidRepository::Page(url.to_owned());
        let (scheme, rest) = url.split_once("://").ok_or_else(invalid)?;
        if !scheme.eq_ignore_ascii_case("https") && !scheme.eq_ignore_ascii_case("http") {
            return Err(invalid());
        }
        let (host, full_name) = rest
            .trim_end_matches('/')
            .split_once('/')
            .ok_or_else(invalid)?;
        Self::new(host, full_name).map_err(|_| invalid())
    }

    /// `owner/name`.
    pub fn full_name(&self) -> String {
        format!("{}/{}", self.owner, self.name)
    }

    /// The key naming `target` in this repository.
    pub fn key(&self, target: Target) -> GitHubKey {
        GitHubKey {
            host: self.host.clone(),
            owner: self.owner.clone(),
            repo: self.name.clone(),
            target,
        }
    }
}

/// `owner/name` split in two; refused unless both are non-empty path segments.
pub fn split_full_name(full_name: &str) -> Result<(&str, &str), InvalidRepository> {
    match full_name.split_once('/') {
        Some((owner, name)) if segment(owner) && segment(name) => Ok((owner, name)),
        _ => Err(InvalidRepository::Name(full_name.to_owned())),
    }
}

/// A non-empty path segment.
fn segment(s: &str) -> bool {
    !s.is_empty() && !s.contains('/')
}

impl GitHubKey {
    /// The repository the key is in.
    pub fn repository(&self) -> Repository {
        Repository {
            host: self.host.clone(),
            owner: self.owner.clone(),
            name: self.repo.clone(),
        }
    }

    /// The pull request's number, for a pull-request key.
    pub fn pull_request(&self) -> Option<u64> {
        match self.target {
            Target::PullRequest(n) => Some(n),
            _ => None,
        }
    }
}

impl FromStr for GitHubKey {
    type Err = InvalidGitHubKey;

    /// Parses `https://HOST/...` and the scheme-less `HOST/...`.
    fn from_str(key: &str) -> Result<Self, Self::Err> {
        let invalid = |reason| InvalidGitHubKey::new(key, reason);
        // A scheme comes before the first `/`; a `://` further on is part of a path.
        let first_slash = key.find('/').unwrap_or(key.len());
        let rest = match key[..first_slash].strip_suffix(':') {
            Some("https") => key[first_slash..].strip_prefix("//").unwrap_or(""),
            Some(_) => return Err(invalid("its scheme is not https://")),
            None => key,
        };
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
        let kind = next("the kind (pull, issues, blob, tree, runs) is missing")?;
        let tail = parts.next().unwrap_or("");
        let number = |tail: &str| {
            tail.parse::<u64>()
                .map_err(|_| invalid("the number is not a positive integer"))
        };
        let target = match kind {
            "pull" => Target::PullRequest(number(tail)?),
            "issues" => Target::Issue(number(tail)?),
            "runs" => Target::CheckRun(number(tail)?),
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
            _ => return Err(invalid("the kind is not pull, issues, blob, tree or runs")),
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
    /// The key as it is enqueued: `https://HOST/OWNER/REPO/...`.
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
            Target::CheckRun(id) => write!(f, "runs/{id}"),
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
            ("https://github.com/o/r/runs/42", Target::CheckRun(42)),
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
            assert_eq!(parsed.repository().key(target), parsed);
        }
    }

    #[test]
    fn parse_should_read_the_scheme_less_form_of_the_reference() {
        let parsed: GitHubKey = "github.com/org/repo/pull/123".parse().unwrap();
        assert_eq!(parsed.host, GITHUB_HOST);
        assert_eq!(parsed.pull_request(), Some(123));
        assert_eq!(parsed.to_string(), "https://github.com/org/repo/pull/123");
        let ghe: GitHubKey = "ghe.example.com/o/r/blob/main/x.yaml".parse().unwrap();
        assert_eq!(ghe.host, "ghe.example.com");
        let odd: GitHubKey = "github.com/o/r/blob/main/a://b".parse().unwrap();
        assert_eq!(
            odd.target,
            Target::Blob {
                git_ref: "main".into(),
                path: "a://b".into()
            },
            "a :// in the path is no scheme"
        );
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
            "",
        ] {
            assert!(bad.parse::<GitHubKey>().is_err(), "{bad} parsed");
        }
    }

    #[test]
    fn a_repository_should_keep_the_host_it_was_named_with() {
        let ghe = Repository::from_url("https://ghe.example.com/o/r/").unwrap();
        assert_eq!(ghe.host, "ghe.example.com");
        assert_eq!(ghe.full_name(), "o/r");
        assert_eq!(
            ghe.key(Target::PullRequest(3)).to_string(),
            "https://ghe.example.com/o/r/pull/3"
        );
        for bad in ["o", "o/", "/r", "o/r/x"] {
            assert!(Repository::new(GITHUB_HOST, bad).is_err(), "{bad}");
        }
        let plain = Repository::from_url("HTTP://ghe.example.com/o/r").unwrap();
        assert_eq!(
            plain.key(Target::Issue(1)).to_string(),
            "https://ghe.example.com/o/r/issues/1"
        );
        for bad in [
            "ftp://github.com/o/r",
            "https://github.com/o",
            "github.com/o/r",
            "https://h/o/r/x",
        ] {
            assert!(Repository::from_url(bad).is_err(), "{bad}");
        }
    }
}
