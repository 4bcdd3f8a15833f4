//! The few fields of GitHub webhook payloads the gateway reads, parsed into borrowed, typed
//! structs: everything else is skipped without being built (DESIGN §8: a `serde_json::Value`
//! costs several times the parse).

use std::borrow::Cow;

use serde::Deserialize;
use serde::de::IgnoredAny;

/// A webhook payload, any event.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct Payload<'a> {
    #[serde(borrow, default)]
    pub action: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    pub repository: Option<Repository<'a>>,
    #[serde(borrow, default)]
    pub pull_request: Option<PullRequest<'a>>,
    #[serde(default)]
    pub issue: Option<Issue>,
    #[serde(borrow, default)]
    pub check_run: Option<CheckRun<'a>>,
    #[serde(borrow, default)]
    pub check_suite: Option<CheckSuite<'a>>,
    /// A push's ref, `refs/heads/<branch>`.
    #[serde(borrow, default, rename = "ref")]
    pub git_ref: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    pub before: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    pub after: Option<Cow<'a, str>>,
    #[serde(default)]
    pub forced: bool,
    #[serde(default)]
    pub deleted: bool,
    #[serde(borrow, default)]
    pub commits: Option<Vec<Commit<'a>>>,
}

#[derive(Debug, Deserialize)]
pub(crate) struct Repository<'a> {
    #[serde(borrow)]
    pub full_name: Cow<'a, str>,
    #[serde(borrow, default)]
    pub html_url: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    pub default_branch: Option<Cow<'a, str>>,
}

#[derive(Debug, Deserialize)]
pub(crate) struct PullRequest<'a> {
    pub number: u64,
    #[serde(default)]
    pub merged: Option<bool>,
    #[serde(borrow, default)]
    pub head: Option<Head<'a>>,
}

#[derive(Debug, Deserialize)]
pub(crate) struct Head<'a> {
    #[serde(borrow, rename = "ref")]
    pub name: Cow<'a, str>,
}

#[derive(Debug, Deserialize)]
pub(crate) struct Issue {
    pub number: u64,
    /// Present when the issue is a pull request.
    #[serde(default)]
    pub pull_request: Option<IgnoredAny>,
}

#[derive(Debug, Deserialize)]
pub(crate) struct CheckRun<'a> {
    #[serde(default)]
    pub pull_requests: Vec<PullRequestRef>,
    #[serde(borrow, default)]
    pub check_suite: Option<CheckSuite<'a>>,
}

#[derive(Debug, Deserialize)]
pub(crate) struct CheckSuite<'a> {
    #[serde(default)]
    pub pull_requests: Vec<PullRequestRef>,
    #[serde(borrow, default)]
    pub head_branch: Option<Cow<'a, str>>,
}

#[derive(Debug, Deserialize)]
pub(crate) struct PullRequestRef {
    pub number: u64,
}

#[derive(Debug, Deserialize)]
pub(crate) struct Commit<'a> {
    #[serde(borrow, default)]
    pub added: Vec<Cow<'a, str>>,
    #[serde(borrow, default)]
    pub removed: Vec<Cow<'a, str>>,
    #[serde(borrow, default)]
    pub modified: Vec<Cow<'a, str>>,
}

impl Repository<'_> {
    /// `https://github.com/<owner>/<repo>` (the repository's own page, on GitHub Enterprise
    /// too).
    pub(crate) fn url(&self) -> String {
        match &self.html_url {
            Some(url) if !url.is_empty() => url.trim_end_matches('/').to_owned(),
            _ => format!("https://github.com/{}", self.full_name),
        }
    }
}
