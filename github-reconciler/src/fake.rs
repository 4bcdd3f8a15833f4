//! A fake GitHub API on a loopback port, for tests and benchmarks (feature `fake`): pull
//! requests, refs, files and check runs held in memory, every write recorded, ETags and 304s
//! as GitHub answers them, and rate limits or server errors on demand; and a GitHub App's
//! installations and tokens (`app`).

mod app;

use std::collections::HashMap;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use axum::Json;
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};

/// A write the fake received.
#[derive(Clone, Debug)]
pub struct Write {
    /// `POST` or `PATCH`.
    pub method: String,
    /// The path written to.
    pub path: String,
    /// The JSON sent.
    pub body: Value,
}

/// A check run as the fake holds it.
#[derive(Clone, Debug)]
pub struct CheckRun {
    /// Its id.
    pub id: u64,
    /// `owner/repo`.
    pub repo: String,
    /// Its name.
    pub name: String,
    /// The commit.
    pub head_sha: String,
    /// Its status.
    pub status: String,
    /// Its conclusion.
    pub conclusion: Option<String>,
    /// Its output's title.
    pub title: Option<String>,
    /// Its output's summary.
    pub summary: Option<String>,
    /// Its details link.
    pub details_url: Option<String>,
}

#[derive(Default)]
struct Data {
    pulls: HashMap<(String, u64), Value>,
    refs: HashMap<(String, String), String>,
    files: HashMap<(String, String, String), String>,
    runs: Vec<CheckRun>,
    writes: Vec<Write>,
    reads: u64,
    not_modified: u64,
    /// Calls still to answer with a rate limit, and the reset time they give.
    rate_limited: Option<(u32, u64)>,
    /// Calls still to answer with this server error.
    failing: Option<(u32, StatusCode)>,
    /// The `Authorization` header of every call.
    authorizations: Vec<String>,
    /// The GitHub App it answers for, if any.
    app: Option<app::App>,
}

/// The fake's state; clones share it.
#[derive(Clone, Default)]
pub struct FakeGitHub {
    data: Arc<Mutex<Data>>,
}

impl FakeGitHub {
    /// An empty fake.
    pub fn new() -> Self {
        Self::default()
    }

    /// Serves the fake on a free loopback port: its base URL (`http://127.0.0.1:PORT`).
    pub async fn serve(&self) -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the fake GitHub");
        let addr: SocketAddr = listener.local_addr().expect("its address");
        let router = self.router();
        tokio::spawn(async move { axum::serve(listener, router).await });
        format!("http://{addr}")
    }

    /// Its routes.
    pub fn router(&self) -> Router {
        Router::new()
            .route("/repos/{owner}/{repo}/pulls/{number}", get(pull))
            .route("/repos/{owner}/{repo}/commits/{git_ref}", get(commit))
            .route(
                "/repos/{owner}/{repo}/commits/{sha}/check-runs",
                get(list_runs),
            )
            .route("/repos/{owner}/{repo}/contents/{*path}", get(contents))
            .route("/repos/{owner}/{repo}/check-runs", post(create_run))
            .route(
                "/repos/{owner}/{repo}/check-runs/{id}",
                get(get_run).patch(update_run),
            )
            .route(
                "/repos/{owner}/{repo}/installation",
                get(app::repo_installation),
            )
            .route("/orgs/{org}/installation", get(app::org_installation))
            .route(
                "/app/installations/{id}/access_tokens",
                post(app::mint_token),
            )
            .layer(axum::middleware::from_fn_with_state(self.clone(), gate))
            .with_state(self.clone())
    }

    /// Sets pull request `number` of `repo` (`owner/repo`).
    pub fn set_pull(&self, repo: &str, number: u64, title: &str, head_sha: &str) {
        let pr = json!({
            "number": number, "title": title, "state": "open", "draft": false, "body": null,
            "head": {"sha": head_sha, "ref": "feature"},
        });
        self.set_pull_json(repo, number, pr);
    }

    /// Sets pull request `number` of `repo` to a whole API answer (a real one, for its size).
    pub fn set_pull_json(&self, repo: &str, number: u64, pr: Value) {
        self.lock().pulls.insert((repo.to_owned(), number), pr);
    }

    /// Points `git_ref` of `repo` at `sha`.
    pub fn set_ref(&self, repo: &str, git_ref: &str, sha: &str) {
        self.lock()
            .refs
            .insert((repo.to_owned(), git_ref.to_owned()), sha.to_owned());
    }

    /// Sets the file `path` of `repo` at commit `sha`.
    pub fn set_file(&self, repo: &str, sha: &str, path: &str, content: &str) {
        self.lock().files.insert(
            (repo.to_owned(), sha.to_owned(), path.to_owned()),
            content.to_owned(),
        );
    }

    /// Answers the next `calls` calls with a primary rate limit that resets at `reset`
    /// (seconds since the epoch).
    pub fn rate_limit(&self, calls: u32, reset: u64) {
        self.lock().rate_limited = Some((calls, reset));
    }

    /// Answers the next `calls` calls with `status`.
    pub fn fail(&self, calls: u32, status: StatusCode) {
        self.lock().failing = Some((calls, status));
    }

    /// Every write so far.
    pub fn writes(&self) -> Vec<Write> {
        self.lock().writes.clone()
    }

    /// Every check run.
    pub fn runs(&self) -> Vec<CheckRun> {
        self.lock().runs.clone()
    }

    /// Reads answered, and how many of them 304.
    pub fn reads(&self) -> (u64, u64) {
        let data = self.lock();
        (data.reads, data.not_modified)
    }

    /// The `Authorization` header of every call so far.
    pub fn authorizations(&self) -> Vec<String> {
        self.lock().authorizations.clone()
    }

    /// Sets the summary of check run `id` (to break its marker, say).
    pub fn set_summary(&self, id: u64, summary: &str) {
        if let Some(run) = self.lock().runs.iter_mut().find(|r| r.id == id) {
            run.summary = Some(summary.to_owned());
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Data> {
        self.data.lock().expect("the fake's data")
    }
}

/// Before every route: the call recorded, and a rate limit or failure if one is due.
async fn gate(
    State(fake): State<FakeGitHub>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    {
        let mut data = fake.lock();
        let authorization = request
            .headers()
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned();
        data.authorizations.push(authorization);
        if let Some((calls, reset)) = data.rate_limited.take() {
            if calls > 1 {
                data.rate_limited = Some((calls - 1, reset));
            }
            let reset = reset.to_string();
            let headers = [
                ("x-ratelimit-remaining", "0".to_owned()),
                ("x-ratelimit-reset", reset),
            ];
            let body = r#"{"message":"API rate limit exceeded"}"#;
            return (StatusCode::FORBIDDEN, headers, body).into_response();
        }
        if let Some((calls, status)) = data.failing.take() {
            if calls > 1 {
                data.failing = Some((calls - 1, status));
            }
            return (status, r#"{"message":"Server Error"}"#).into_response();
        }
    }
    next.run(request).await
}

/// A read's answer: 200 with an ETag, or 304 when the caller has it already.
fn read(fake: &FakeGitHub, headers: &HeaderMap, body: String, content_type: &str) -> Response {
    let mut hasher = DefaultHasher::new();
    body.hash(&mut hasher);
    let etag = format!("\"{:016x}\"", hasher.finish());
    let mut data = fake.lock();
    data.reads += 1;
    let asked = headers.get("if-none-match").and_then(|v| v.to_str().ok());
    if asked == Some(etag.as_str()) {
        data.not_modified += 1;
        return (StatusCode::NOT_MODIFIED, [("etag", etag)]).into_response();
    }
    let content_type = content_type.to_owned();
    (
        StatusCode::OK,
        [("etag", etag), ("content-type", content_type)],
        body,
    )
        .into_response()
}

fn not_found(fake: &FakeGitHub) -> Response {
    fake.lock().reads += 1;
    (StatusCode::NOT_FOUND, r#"{"message":"Not Found"}"#).into_response()
}

async fn pull(
    State(fake): State<FakeGitHub>,
    Path((owner, repo, number)): Path<(String, String, u64)>,
    headers: HeaderMap,
) -> Response {
    let found = fake
        .lock()
        .pulls
        .get(&(format!("{owner}/{repo}"), number))
        .cloned();
    match found {
        Some(pr) => read(&fake, &headers, pr.to_string(), "application/json"),
        None => not_found(&fake),
    }
}

async fn commit(
    State(fake): State<FakeGitHub>,
    Path((owner, repo, git_ref)): Path<(String, String, String)>,
    headers: HeaderMap,
) -> Response {
    let repo = format!("{owner}/{repo}");
    let data = fake.lock();
    let sha = data.refs.get(&(repo, git_ref.clone())).cloned();
    drop(data);
    let is_sha = git_ref.len() == 40 && git_ref.bytes().all(|b| b.is_ascii_hexdigit());
    match sha.or(is_sha.then_some(git_ref)) {
        Some(sha) => read(&fake, &headers, sha, "application/vnd.github.sha"),
        None => not_found(&fake),
    }
}

async fn contents(
    State(fake): State<FakeGitHub>,
    Path((owner, repo, path)): Path<(String, String, String)>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    let repo = format!("{owner}/{repo}");
    let git_ref = query.get("ref").cloned().unwrap_or_default();
    let sha = fake
        .lock()
        .refs
        .get(&(repo.clone(), git_ref.clone()))
        .cloned()
        .unwrap_or(git_ref);
    let found = fake.lock().files.get(&(repo, sha, path)).cloned();
    match found {
        Some(content) => read(&fake, &headers, content, "application/vnd.github.raw"),
        None => not_found(&fake),
    }
}

async fn list_runs(
    State(fake): State<FakeGitHub>,
    Path((owner, repo, sha)): Path<(String, String, String)>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    let repo = format!("{owner}/{repo}");
    let name = query.get("check_name");
    let latest = query.get("filter").is_none_or(|f| f == "latest");
    let mut runs: Vec<CheckRun> = fake
        .lock()
        .runs
        .iter()
        .filter(|r| r.repo == repo && r.head_sha == sha && name.is_none_or(|n| *n == r.name))
        .cloned()
        .collect();
    runs.sort_by_key(|r| std::cmp::Reverse(r.id));
    if latest {
        let mut seen = std::collections::HashSet::new();
        runs.retain(|r| seen.insert(r.name.clone()));
    }
    let listed: Vec<Value> = runs.iter().map(run_json).collect();
    let body = json!({"total_count": listed.len(), "check_runs": listed});
    read(&fake, &headers, body.to_string(), "application/json")
}

fn run_json(run: &CheckRun) -> Value {
    json!({
        "id": run.id, "name": run.name, "head_sha": run.head_sha, "status": run.status,
        "conclusion": run.conclusion, "details_url": run.details_url,
        "output": {"title": run.title, "summary": run.summary},
    })
}

/// A write recorded (axum's `Json` refuses a body that is not JSON before it gets here).
fn record(fake: &FakeGitHub, method: &Method, uri: &Uri, body: &Value) {
    fake.lock().writes.push(Write {
        method: method.to_string(),
        path: uri.path().to_owned(),
        body: body.clone(),
    });
}

/// Applies a write's fields to a run.
fn apply(run: &mut CheckRun, body: &Value) {
    let text = |name: &str| body.get(name).and_then(Value::as_str).map(str::to_owned);
    if let Some(status) = text("status") {
        run.status = status;
    }
    if body.get("conclusion").is_some() {
        run.conclusion = text("conclusion");
    }
    if let Some(url) = text("details_url") {
        run.details_url = Some(url);
    }
    if let Some(output) = body.get("output") {
        run.title = output
            .get("title")
            .and_then(Value::as_str)
            .map(str::to_owned);
        run.summary = output
            .get("summary")
            .and_then(Value::as_str)
            .map(str::to_owned);
    }
}

async fn create_run(
    State(fake): State<FakeGitHub>,
    Path((owner, repo)): Path<(String, String)>,
    method: Method,
    uri: Uri,
    Json(body): Json<Value>,
) -> Response {
    record(&fake, &method, &uri, &body);
    let (Some(name), Some(sha)) = (body["name"].as_str(), body["head_sha"].as_str()) else {
        let message = r#"{"message":"name and head_sha are required"}"#;
        return (StatusCode::UNPROCESSABLE_ENTITY, message).into_response();
    };
    let mut data = fake.lock();
    let mut run = CheckRun {
        id: data.runs.len() as u64 + 1,
        repo: format!("{owner}/{repo}"),
        name: name.to_owned(),
        head_sha: sha.to_owned(),
        status: "queued".to_owned(),
        conclusion: None,
        title: None,
        summary: None,
        details_url: None,
    };
    apply(&mut run, &body);
    let answer = run_json(&run);
    data.runs.push(run);
    (StatusCode::CREATED, answer.to_string()).into_response()
}

/// A check run, with the open pull requests whose head is its commit (as GitHub lists them).
async fn get_run(
    State(fake): State<FakeGitHub>,
    Path((owner, repo, id)): Path<(String, String, u64)>,
    headers: HeaderMap,
) -> Response {
    let repo = format!("{owner}/{repo}");
    let data = fake.lock();
    let Some(run) = data.runs.iter().find(|r| r.id == id && r.repo == repo) else {
        drop(data);
        return not_found(&fake);
    };
    let mut answer = run_json(run);
    let pulls: Vec<Value> = data
        .pulls
        .iter()
        .filter(|((r, _), pr)| *r == repo && pr["head"]["sha"] == run.head_sha.as_str())
        .map(|((_, number), _)| json!({"number": number}))
        .collect();
    answer["pull_requests"] = Value::Array(pulls);
    drop(data);
    read(&fake, &headers, answer.to_string(), "application/json")
}

async fn update_run(
    State(fake): State<FakeGitHub>,
    Path((_owner, _repo, id)): Path<(String, String, u64)>,
    method: Method,
    uri: Uri,
    Json(body): Json<Value>,
) -> Response {
    record(&fake, &method, &uri, &body);
    let mut data = fake.lock();
    let Some(run) = data.runs.iter_mut().find(|r| r.id == id) else {
        return (StatusCode::NOT_FOUND, r#"{"message":"Not Found"}"#).into_response();
    };
    apply(run, &body);
    (StatusCode::OK, run_json(run).to_string()).into_response()
}

/// Seconds since the epoch, `ahead` from now: a rate limit's reset time.
pub fn epoch_in(ahead: std::time::Duration) -> u64 {
    (SystemTime::now() + ahead)
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs()
}
