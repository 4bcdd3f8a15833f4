//! A fake GitHub API on a loopback port: a repository, its default branch, and Git Trees
//! answered like GitHub's (recursive listings cut short with `truncated: true` beyond a
//! limit), with rate-limited answers on request and every call counted (and its
//! `Authorization` recorded). Shared by the resync's
//! tests and its benchmark.

#![allow(dead_code, unreachable_pub)]

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::json;
use sha2::{Digest, Sha256};

/// The repository the fake serves.
pub const REPOSITORY: &str = "octo/configs";
/// Its default branch.
pub const BRANCH: &str = "main";
/// The commit at the branch's head (its tree is the root tree).
pub const COMMIT: &str = "c0ffee0000000000000000000000000000000001";

/// One directory: its entries by name.
#[derive(Default)]
struct Dir {
    entries: BTreeMap<String, Entry>,
}

enum Entry {
    Blob(String),
    Tree(String),
}

/// The fake's state.
pub struct FakeGitHub {
    trees: BTreeMap<String, Dir>,
    /// Recursive listings with more entries than this are cut short.
    pub limit: usize,
    /// Calls answered, rate-limited ones included.
    pub calls: AtomicUsize,
    /// Calls answered with a truncated tree.
    pub truncated_answers: AtomicUsize,
    /// This many next calls are answered 403 with `X-RateLimit-Remaining: 0`.
    pub rate_limited: AtomicUsize,
    /// The `Authorization` header of every call, in order (empty when there was none).
    pub authorizations: Mutex<Vec<String>>,
}

fn object_sha(kind: &str, path: &str) -> String {
    hex::encode(&Sha256::digest(format!("{kind}:{path}"))[..20])
}

impl FakeGitHub {
    /// A repository holding `files` (paths), recursive listings cut beyond `limit` entries.
    pub fn new<S: AsRef<str>>(files: &[S], limit: usize) -> Self {
        let mut trees: BTreeMap<String, Dir> = BTreeMap::new();
        trees.insert(COMMIT.to_owned(), Dir::default());
        for file in files {
            let file = file.as_ref();
            let mut dir_sha = COMMIT.to_owned();
            let mut prefix = String::new();
            let parts: Vec<&str> = file.split('/').collect();
            for (i, part) in parts.iter().enumerate() {
                prefix = if prefix.is_empty() {
                    (*part).to_owned()
                } else {
                    format!("{prefix}/{part}")
                };
                let last = i + 1 == parts.len();
                let entry = if last {
                    Entry::Blob(object_sha("blob", &prefix))
                } else {
                    Entry::Tree(object_sha("tree", &prefix))
                };
                let next = match &entry {
                    Entry::Tree(sha) => Some(sha.clone()),
                    Entry::Blob(_) => None,
                };
                trees
                    .get_mut(&dir_sha)
                    .expect("parent listed first")
                    .entries
                    .entry((*part).to_owned())
                    .or_insert(entry);
                if let Some(sha) = next {
                    trees.entry(sha.clone()).or_default();
                    dir_sha = sha;
                }
            }
        }
        Self {
            trees,
            limit,
            calls: AtomicUsize::new(0),
            truncated_answers: AtomicUsize::new(0),
            rate_limited: AtomicUsize::new(0),
            authorizations: Mutex::default(),
        }
    }

    /// Serves the fake on a loopback port; returns its base URL.
    pub async fn serve(self: &Arc<Self>) -> String {
        let router = Router::new()
            .route("/repos/{owner}/{repo}", get(repository))
            .route("/repos/{owner}/{repo}/branches/{*branch}", get(branch))
            .route("/repos/{owner}/{repo}/git/trees/{sha}", get(tree))
            .layer(axum::middleware::from_fn_with_state(self.clone(), record))
            .with_state(self.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, router).await });
        format!("http://{addr}")
    }

    fn listing(&self, sha: &str, prefix: &str, recursive: bool, out: &mut Vec<serde_json::Value>) {
        for (name, entry) in &self.trees[sha].entries {
            let path = format!("{prefix}{name}");
            match entry {
                Entry::Blob(blob) => out.push(json!({"path": path, "mode": "100644", "type": "blob", "sha": blob, "size": 10})),
                Entry::Tree(tree) => {
                    out.push(json!({"path": path, "mode": "040000", "type": "tree", "sha": tree}));
                    if recursive {
                        self.listing(tree, &format!("{path}/"), true, out);
                    }
                }
            }
        }
    }

    /// Counts a call; `Some` answer when it is to be rate limited.
    fn call(&self) -> Option<Response> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        let limited = self
            .rate_limited
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok();
        limited.then(|| {
            let reset = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_secs();
            (
                StatusCode::FORBIDDEN,
                [
                    ("x-ratelimit-remaining", "0".to_owned()),
                    ("x-ratelimit-reset", reset.to_string()),
                ],
                r#"{"message":"API rate limit exceeded"}"#,
            )
                .into_response()
        })
    }
}

/// Before every route: the call's `Authorization` recorded.
async fn record(
    State(fake): State<Arc<FakeGitHub>>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let authorization = request
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    fake.authorizations.lock().unwrap().push(authorization);
    next.run(request).await
}

fn not_found() -> Response {
    (StatusCode::NOT_FOUND, r#"{"message":"Not Found"}"#).into_response()
}

async fn repository(
    State(fake): State<Arc<FakeGitHub>>,
    Path((owner, repo)): Path<(String, String)>,
) -> Response {
    if let Some(limited) = fake.call() {
        return limited;
    }
    // GitHub reads repository names case-insensitively, and answers with its own spelling.
    if !format!("{owner}/{repo}").eq_ignore_ascii_case(REPOSITORY) {
        return not_found();
    }
    axum::Json(json!({"full_name": REPOSITORY, "default_branch": BRANCH})).into_response()
}

async fn branch(
    State(fake): State<Arc<FakeGitHub>>,
    Path((_, _, branch)): Path<(String, String, String)>,
) -> Response {
    if let Some(limited) = fake.call() {
        return limited;
    }
    if branch != BRANCH {
        return not_found();
    }
    axum::Json(json!({"name": BRANCH, "commit": {"sha": COMMIT}})).into_response()
}

async fn tree(
    State(fake): State<Arc<FakeGitHub>>,
    Path((_, _, sha)): Path<(String, String, String)>,
    Query(query): Query<BTreeMap<String, String>>,
) -> Response {
    if let Some(limited) = fake.call() {
        return limited;
    }
    if !fake.trees.contains_key(&sha) {
        return not_found();
    }
    let recursive = query.get("recursive").is_some_and(|v| !v.is_empty());
    let mut entries = Vec::new();
    fake.listing(&sha, "", recursive, &mut entries);
    let truncated = recursive && entries.len() > fake.limit;
    if truncated {
        entries.truncate(fake.limit);
        fake.truncated_answers.fetch_add(1, Ordering::SeqCst);
    }
    axum::Json(json!({"sha": sha, "tree": entries, "truncated": truncated})).into_response()
}
