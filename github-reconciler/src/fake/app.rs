//! The GitHub App side of the fake: an App's installations looked up by repository or org,
//! and installation tokens minted for a JWT the App issued, as GitHub answers them.
//!
//! The JWT's claims are read (its issuer must be the App) but its signature is not checked:
//! that is octocrab's and GitHub's business, and the fake has no public key to check it with.

use std::collections::HashMap;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use serde_json::{Value, json};

use super::FakeGitHub;

/// The App the fake answers for.
pub(super) struct App {
    id: u64,
    /// Per owner (user or org), its installation id.
    installations: HashMap<String, u64>,
    /// When the tokens it mints expire (RFC 3339).
    expires_at: String,
    /// Tokens minted so far.
    minted: u64,
}

impl FakeGitHub {
    /// Answers as GitHub does for the App `app_id` installed on `owner` as installation
    /// `installation` (call again for more owners); the tokens it mints are
    /// `ghs_fake_<installation>_<n>` and expire at `expires_at` (RFC 3339).
    pub fn install_app(&self, app_id: u64, owner: &str, installation: u64, expires_at: &str) {
        let mut data = self.lock();
        let app = data.app.get_or_insert_with(|| App {
            id: app_id,
            installations: HashMap::new(),
            expires_at: expires_at.to_owned(),
            minted: 0,
        });
        app.id = app_id;
        app.expires_at = expires_at.to_owned();
        app.installations.insert(owner.to_owned(), installation);
    }

    /// Installation tokens minted so far.
    pub fn minted_tokens(&self) -> u64 {
        self.lock().app.as_ref().map_or(0, |app| app.minted)
    }
}

/// `GET /repos/{owner}/{repo}/installation`.
pub(super) async fn repo_installation(
    State(fake): State<FakeGitHub>,
    Path((owner, _repo)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    installation(&fake, &owner, &headers)
}

/// `GET /orgs/{org}/installation`.
pub(super) async fn org_installation(
    State(fake): State<FakeGitHub>,
    Path(org): Path<String>,
    headers: HeaderMap,
) -> Response {
    installation(&fake, &org, &headers)
}

fn installation(fake: &FakeGitHub, owner: &str, headers: &HeaderMap) -> Response {
    let data = fake.lock();
    let Some(app) = &data.app else {
        return message(StatusCode::NOT_FOUND, "Not Found");
    };
    if let Err(refused) = check_jwt(app, headers) {
        return *refused;
    }
    let Some(&id) = app.installations.get(owner) else {
        return message(StatusCode::NOT_FOUND, "Not Found");
    };
    let body = json!({
        "id": id,
        "app_id": app.id,
        "account": account(owner),
        "target_type": "Organization",
        "permissions": {"checks": "write", "contents": "read", "pull_requests": "read"},
        "events": ["pull_request", "push", "check_run"],
        "repository_selection": "all",
        "access_tokens_url": format!("https://api.github.com/app/installations/{id}/access_tokens"),
    });
    (StatusCode::OK, axum::Json(body)).into_response()
}

/// `POST /app/installations/{id}/access_tokens`.
pub(super) async fn mint_token(
    State(fake): State<FakeGitHub>,
    Path(id): Path<u64>,
    headers: HeaderMap,
) -> Response {
    let mut data = fake.lock();
    let Some(app) = &mut data.app else {
        return message(StatusCode::NOT_FOUND, "Not Found");
    };
    if let Err(refused) = check_jwt(app, &headers) {
        return *refused;
    }
    if !app.installations.values().any(|&known| known == id) {
        return message(StatusCode::NOT_FOUND, "Not Found");
    }
    app.minted += 1;
    let body = json!({
        "token": format!("ghs_fake_{id}_{}", app.minted),
        "expires_at": app.expires_at,
        "permissions": {"checks": "write", "contents": "read"},
        "repository_selection": "all",
    });
    (StatusCode::CREATED, axum::Json(body)).into_response()
}

/// The call must carry a JWT (`Bearer header.claims.signature`) issued by the App: the
/// 401 GitHub gives when it does not.
fn check_jwt(app: &App, headers: &HeaderMap) -> Result<(), Box<Response>> {
    let issuer = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .and_then(|jwt| jwt.split('.').nth(1))
        .and_then(|claims| {
            base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(claims)
                .ok()
        })
        .and_then(|claims| serde_json::from_slice::<Value>(&claims).ok())
        .and_then(|claims| match &claims["iss"] {
            Value::Number(n) => n.as_u64(),
            Value::String(s) => s.parse().ok(),
            _ => None,
        });
    if issuer == Some(app.id) {
        return Ok(());
    }
    let refused = message(
        StatusCode::UNAUTHORIZED,
        "A JSON web token could not be decoded",
    );
    Err(Box::new(refused))
}

/// The account an installation is on, with the fields GitHub gives a user or an org.
fn account(login: &str) -> Value {
    let api = format!("https://api.github.com/users/{login}");
    json!({
        "login": login,
        "id": 1,
        "node_id": "MDEyOk9yZ2FuaXphdGlvbjE=",
        "avatar_url": "https://avatars.githubusercontent.com/u/1?v=4",
        "gravatar_id": "",
        "url": api,
        "html_url": format!("https://github.com/{login}"),
        "followers_url": format!("{api}/followers"),
        "following_url": format!("{api}/following{{/other_user}}"),
        "gists_url": format!("{api}/gists{{/gist_id}}"),
        "starred_url": format!("{api}/starred{{/owner}}{{/repo}}"),
        "subscriptions_url": format!("{api}/subscriptions"),
        "organizations_url": format!("{api}/orgs"),
        "repos_url": format!("{api}/repos"),
        "events_url": format!("{api}/events{{/privacy}}"),
        "received_events_url": format!("{api}/received_events"),
        "type": "Organization",
        "site_admin": false,
    })
}

fn message(status: StatusCode, text: &str) -> Response {
    (status, axum::Json(json!({ "message": text }))).into_response()
}
