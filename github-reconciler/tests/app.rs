//! A GitHub App against the fake GitHub: its installation looked up per owner (through a
//! repository, or the org), one token per installation reused while it is valid and renewed
//! when it nears its expiry, and an owner without the App a retryable error naming the scope.
//!
//! `tests/data/app-key.pem` is an RSA key made for these tests (`openssl genrsa -traditional
//! 2048`); no App anywhere knows it.

use std::sync::Arc;

use github_reconciler::fake::FakeGitHub;
use github_reconciler::{Auth, AuthError, Clients, Error, GitHubApp, Scope};

const APP_ID: u64 = 12345;
const KEY_FILE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/app-key.pem");
const FAR: &str = "2099-01-01T00:00:00Z";
const SHA: &str = "0123456789abcdef0123456789abcdef01234567";

/// Clients authenticated as the App, set up from the environment variables a user sets.
async fn setup(expires_at: &str) -> (FakeGitHub, Arc<Clients>) {
    let fake = FakeGitHub::new();
    let base = fake.serve().await;
    fake.install_app(APP_ID, "o", 77, expires_at);
    fake.install_app(APP_ID, "other", 78, expires_at);
    for (repo, number) in [("o/r", 1), ("o/r2", 2), ("other/x", 3), ("stranger/y", 4)] {
        fake.set_pull(repo, number, "feat: x", SHA);
    }
    let auth = Auth::from_vars(&base, |name| match name {
        "GITHUB_APP_ID" => Some(APP_ID.to_string()),
        "GITHUB_APP_PRIVATE_KEY_FILE" => Some(KEY_FILE.to_owned()),
        _ => None,
    })
    .expect("the App's key loads");
    assert!(matches!(auth, Auth::App(_)), "{auth:?}");
    (fake, Arc::new(Clients::new(&base, auth)))
}

/// The token the last call to the fake carried.
fn last_token(fake: &FakeGitHub) -> String {
    fake.authorizations().last().cloned().unwrap_or_default()
}

#[tokio::test]
async fn an_app_should_use_one_token_per_installation_until_it_nears_expiry() {
    let (fake, clients) = setup(FAR).await;
    let pr = clients.for_repo("o", "r").pull_request("o", "r", 1).await;
    assert_eq!(pr.unwrap().unwrap().number, 1);
    assert_eq!(last_token(&fake), "Bearer ghs_fake_77_1");

    // Another repository of the same owner: the same installation, the same token.
    let pr = clients.for_repo("o", "r2").pull_request("o", "r2", 2).await;
    assert_eq!(pr.unwrap().unwrap().number, 2);
    assert_eq!(last_token(&fake), "Bearer ghs_fake_77_1");
    assert_eq!(fake.minted_tokens(), 1);

    // Another owner: its own installation and token.
    let pr = clients
        .for_repo("other", "x")
        .pull_request("other", "x", 3)
        .await;
    assert_eq!(pr.unwrap().unwrap().number, 3);
    assert_eq!(last_token(&fake), "Bearer ghs_fake_78_2");
    assert_eq!(fake.minted_tokens(), 2);

    // The App's own calls carried its JWT, never an installation token.
    let jwts = fake
        .authorizations()
        .into_iter()
        .filter(|a| !a.starts_with("Bearer ghs_"))
        .count();
    assert_eq!(jwts, 4, "two installation lookups and two mints");
}

#[tokio::test]
async fn a_token_near_its_expiry_should_be_renewed_before_the_call() {
    // Tokens that are already past their expiry: each call needs a fresh one.
    let (fake, clients) = setup("2000-01-01T00:00:00Z").await;
    let client = clients.for_repo("o", "r");
    client.pull_request("o", "r", 1).await.unwrap();
    assert_eq!(last_token(&fake), "Bearer ghs_fake_77_1");
    client.pull_request("o", "r", 1).await.unwrap();
    assert_eq!(last_token(&fake), "Bearer ghs_fake_77_2");
    assert_eq!(fake.minted_tokens(), 2);
}

#[tokio::test]
async fn an_owner_without_the_app_should_be_a_retryable_error_naming_the_scope() {
    let (fake, clients) = setup(FAR).await;
    let error = clients
        .for_repo("stranger", "y")
        .pull_request("stranger", "y", 4)
        .await
        .unwrap_err();
    assert!(
        matches!(&error, Error::Auth(AuthError::Installation { scope, .. }) if scope == "stranger/y"),
        "{error:?}"
    );
    assert!(!matches!(error, Error::NoRetry(_)));
    let text = format!("{error} {:?}", reconciler::error_chain(&error));
    assert!(text.contains("stranger/y"), "{text}");
    assert!(!text.contains("eyJ"), "no JWT in {text}");
    assert_eq!(fake.minted_tokens(), 0);
}

#[tokio::test]
async fn an_org_scope_should_find_the_installation_through_the_org() {
    let fake = FakeGitHub::new();
    let base = fake.serve().await;
    fake.install_app(APP_ID, "o", 77, FAR);
    let pem = std::fs::read_to_string(KEY_FILE).unwrap();
    let app = GitHubApp::new(APP_ID, &pem, &base).unwrap();
    let token = app.token(&Scope::org("o")).await.unwrap();
    assert_eq!(fake.minted_tokens(), 1);
    assert!(!format!("{token:?}").contains("ghs_fake"), "redacted");

    // An App that is not this one is refused by GitHub: a setup problem, said as such.
    let stranger = GitHubApp::new(APP_ID + 1, &pem, &base).unwrap();
    let error = stranger.token(&Scope::org("o")).await.unwrap_err();
    assert!(
        matches!(&error, AuthError::Installation { scope, .. } if scope == "o"),
        "{error:?}"
    );
}
