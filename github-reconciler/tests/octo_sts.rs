//! Octo STS against a fake metadata server and a fake exchange: repository and org scopes, a
//! token reused until near its expiry, and a refusal that names the identity and the scope
//! but no token.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use github_reconciler::fake::FakeGitHub;
use github_reconciler::{Auth, AuthError, Clients, Error, OctoSts, Scope};
use reconciler::IdTokenSource;

/// What the fakes saw: ID tokens asked (by audience) and exchanges made (scope, identity).
#[derive(Clone, Default)]
struct Seen {
    audiences: Arc<Mutex<Vec<String>>>,
    exchanges: Arc<Mutex<Vec<(String, String)>>>,
}

async fn serve(router: axum::Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await });
    addr.to_string()
}

/// A metadata server handing out `id-token-for-<audience>`, and an exchange that trusts
/// that token for the identity `reconciler` only. The metadata host and the exchange's URL.
async fn fakes(seen: &Seen) -> (String, String) {
    let metadata = axum::Router::new()
        .route(
            "/computeMetadata/v1/instance/service-accounts/default/identity",
            get(
                |State(seen): State<Seen>,
                 headers: HeaderMap,
                 Query(q): Query<HashMap<String, String>>| async move {
                    if headers.get("metadata-flavor").and_then(|v| v.to_str().ok())
                        != Some("Google")
                    {
                        return (StatusCode::FORBIDDEN, "no flavor".to_owned());
                    }
                    let audience = q.get("audience").cloned().unwrap_or_default();
                    seen.audiences.lock().unwrap().push(audience.clone());
                    (StatusCode::OK, format!("id-token-for-{audience}"))
                },
            ),
        )
        .with_state(seen.clone());
    let exchange = axum::Router::new()
        .route(
            "/sts/exchange",
            get(
                |State(seen): State<Seen>,
                 headers: HeaderMap,
                 Query(q): Query<HashMap<String, String>>| async move {
                    let bearer = headers.get("authorization").and_then(|v| v.to_str().ok());
                    let (scope, identity) = (q["scope"].clone(), q["identity"].clone());
                    seen.exchanges
                        .lock()
                        .unwrap()
                        .push((scope.clone(), identity.clone()));
                    if bearer != Some("Bearer id-token-for-127.0.0.1") || identity != "reconciler" {
                        let body =
                            r#"{"code":"permission_denied","message":"no trust policy matches"}"#;
                        return (StatusCode::FORBIDDEN, body.to_owned()).into_response();
                    }
                    let n = seen.exchanges.lock().unwrap().len();
                    format!(r#"{{"token":"ghs-{scope}-{n}"}}"#).into_response()
                },
            ),
        )
        .with_state(seen.clone());
    let metadata_host = serve(metadata).await;
    let exchange_url = format!("http://{}", serve(exchange).await);
    (metadata_host, exchange_url)
}

fn sts(identity: &str, metadata: &str, url: &str) -> OctoSts {
    let audience = "127.0.0.1";
    OctoSts::with_id_tokens(
        identity,
        url,
        IdTokenSource::with_metadata_host(audience, metadata),
    )
}

#[tokio::test]
async fn tokens_should_be_exchanged_per_scope_and_reused_until_near_expiry() {
    let seen = Seen::default();
    let (metadata, url) = fakes(&seen).await;
    let sts = sts("reconciler", &metadata, &url).reuse_for(Duration::from_millis(300));
    let repo = Scope::repo("o", "r");
    let org = Scope::org("o");
    let first = sts.token(&repo).await.unwrap();
    let again = sts.token(&repo).await.unwrap();
    let for_org = sts.token(&org).await.unwrap();
    assert_eq!(format!("{first:?}"), "Token(<redacted>)");
    let exchanges = seen.exchanges.lock().unwrap().clone();
    assert_eq!(
        exchanges,
        [
            ("o/r".into(), "reconciler".into()),
            ("o".into(), "reconciler".into())
        ],
        "one exchange per scope: the repository token was reused"
    );
    assert_eq!(seen.audiences.lock().unwrap()[0], "127.0.0.1");
    // Past its reuse time, the next call exchanges again.
    tokio::time::sleep(Duration::from_millis(400)).await;
    sts.token(&repo).await.unwrap();
    assert_eq!(seen.exchanges.lock().unwrap().len(), 3);
    drop((first, again, for_org));
}

#[tokio::test]
async fn calls_should_carry_the_exchanged_token_of_their_scope() {
    let seen = Seen::default();
    let (metadata, url) = fakes(&seen).await;
    let fake = FakeGitHub::new();
    let base = fake.serve().await;
    for (org_scoped, expected) in [(false, "Bearer ghs-o/r-1"), (true, "Bearer ghs-o-2")] {
        let auth = Auth::OctoSts {
            sts: sts("reconciler", &metadata, &url),
            org_scoped,
        };
        let clients = Clients::new(&base, auth);
        let client = clients.for_repo("o", "r");
        assert!(client.pull_request("o", "r", 1).await.unwrap().is_none());
        assert_eq!(fake.authorizations().last().unwrap(), expected);
    }
}

#[tokio::test]
async fn a_refused_exchange_should_be_a_retryable_error_naming_identity_and_scope() {
    let seen = Seen::default();
    let (metadata, url) = fakes(&seen).await;
    let fake = FakeGitHub::new();
    let base = fake.serve().await;
    let auth = Auth::OctoSts {
        sts: sts("stranger", &metadata, &url),
        org_scoped: false,
    };
    let clients = Arc::new(Clients::new(&base, auth));
    let err = clients
        .for_repo("o", "r")
        .pull_request("o", "r", 1)
        .await
        .unwrap_err();
    let Error::Auth(AuthError::Refused { status, .. }) = &err else {
        panic!("{err:?}");
    };
    assert_eq!(*status, 403);
    let text = reconciler::error_chain(&err);
    assert!(
        text.contains("\"stranger\"") && text.contains("o/r"),
        "{text}"
    );
    assert!(text.contains("no trust policy matches"), "{text}");
    assert!(
        !text.contains("id-token") && !text.contains("ghs-"),
        "{text}"
    );
    assert!(fake.authorizations().is_empty(), "GitHub was never called");

    // Through the reconciler: a retry, not a drop.
    struct Any;
    #[async_trait::async_trait]
    impl github_reconciler::GitHubReconciler for Any {
        async fn reconcile(
            &self,
            key: &github_reconciler::GitHubKey,
            client: &github_reconciler::GitHubClient,
        ) -> Result<github_reconciler::Action, Error> {
            client.pull_request(&key.owner, &key.repo, 1).await?;
            Ok(github_reconciler::Action::done())
        }
    }
    let reconciler = github_reconciler::GitHub::new(Any, clients);
    let err = reconciler::Reconciler::reconcile(&reconciler, "https://github.com/o/r/pull/1", 0)
        .await
        .unwrap_err();
    assert!(
        matches!(err, reconciler::ReconcileError::Retriable(_)),
        "{err}"
    );
}

#[tokio::test]
async fn an_unreachable_metadata_server_should_name_identity_and_scope() {
    let unused = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let host = unused.local_addr().unwrap().to_string();
    drop(unused);
    let sts = sts("reconciler", &host, "http://127.0.0.1:9");
    let err = sts.token(&Scope::org("o")).await.unwrap_err();
    assert!(matches!(err, AuthError::IdToken { .. }), "{err:?}");
    let text = err.to_string();
    assert!(
        text.contains("\"reconciler\"") && text.contains("scope o"),
        "{text}"
    );
}
