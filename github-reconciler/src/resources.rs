//! The few GitHub resources a reconciler reads most: a pull request, a commit SHA, a file.
//! Each is one read; each answers `None` for a resource GitHub does not have (404).

use std::sync::Arc;

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use serde::Deserialize;

use crate::client::GitHubClient;
use crate::error::Error;

/// What a URL path segment may not carry as is.
const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');
/// The same, keeping `/` (a file path, a branch named `a/b`).
const PATH: &AsciiSet = &SEGMENT.remove(b'/');

/// A pull request, as much of it as reconcilers commonly need.
#[derive(Clone, Debug, Deserialize)]
pub struct PullRequest {
    /// Its number.
    pub number: u64,
    /// Its title.
    pub title: String,
    /// `open` or `closed`.
    pub state: String,
    /// Its description.
    #[serde(default)]
    pub body: Option<String>,
    /// Whether it is a draft.
    #[serde(default)]
    pub draft: bool,
    /// The head: the commit checks are reported on.
    pub head: Head,
}

/// A pull request's head.
#[derive(Clone, Debug, Deserialize)]
pub struct Head {
    /// The head commit's SHA: the generation a status is observed at.
    pub sha: String,
    /// The branch.
    #[serde(rename = "ref")]
    pub git_ref: String,
}

impl GitHubClient {
    /// The pull request `number` of `owner/repo`, or `None` if GitHub has none (404).
    pub async fn pull_request(
        &self,
        owner: &str,
        repo: &str,
        number: u64,
    ) -> Result<Option<PullRequest>, Error> {
        let path = format!("/repos/{}/{}/pulls/{number}", seg(owner), seg(repo));
        found(self.get_json(&path).await)
    }

    /// The SHA of the commit `git_ref` (a branch, a tag or a SHA) points at, or `None` if the
    /// repository has no such ref.
    pub async fn commit_sha(
        &self,
        owner: &str,
        repo: &str,
        git_ref: &str,
    ) -> Result<Option<String>, Error> {
        let path = format!(
            "/repos/{}/{}/commits/{}",
            seg(owner),
            seg(repo),
            utf8_percent_encode(git_ref, PATH)
        );
        let sha = found(self.get_bytes(&path, "application/vnd.github.sha").await)?;
        Ok(sha.map(|sha| String::from_utf8_lossy(&sha).trim().to_owned()))
    }

    /// The content of the file `path` at `git_ref`, or `None` if there is no such file there
    /// (deleted, or never made).
    pub async fn file(
        &self,
        owner: &str,
        repo: &str,
        path: &str,
        git_ref: &str,
    ) -> Result<Option<Arc<[u8]>>, Error> {
        let route = format!(
            "/repos/{}/{}/contents/{}?ref={}",
            seg(owner),
            seg(repo),
            utf8_percent_encode(path, PATH),
            utf8_percent_encode(git_ref, SEGMENT)
        );
        found(
            self.get_bytes(&route, "application/vnd.github.raw+json")
                .await,
        )
    }
}

/// One path segment, encoded.
pub(crate) fn seg(text: &str) -> percent_encoding::PercentEncode<'_> {
    utf8_percent_encode(text, SEGMENT)
}

/// A 404 (or 410) as `None`.
fn found<T>(result: Result<T, Error>) -> Result<Option<T>, Error> {
    match result {
        Ok(value) => Ok(Some(value)),
        Err(e) if e.is_not_found() => Ok(None),
        Err(e) => Err(e),
    }
}
