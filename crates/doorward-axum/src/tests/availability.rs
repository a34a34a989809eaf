//! What the README promises when the server cannot do the work now: `503` with `Retry-After`
//! (`temporarily_unavailable` on the OAuth endpoints) when the Argon2 queue is full or the
//! database is unreachable, and normal service once it is back.

use std::sync::Arc;

use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use axum::Router;
use doorward_core::memory::MemoryStore;
use doorward_core::testing::{self, FailingStore, FixedClock, SeqRandom};
use doorward_core::{Engine, EngineConfig};

use super::support::standalone::{token_request, CALLBACK};
use super::support::*;
use crate::{router, AppState};

fn standalone(engine: Engine) -> Router {
    router(AppState {
        engine: Arc::new(engine),
        secure_cookies: false,
        mount: "".into(),
        authenticator: None,
    })
}

/// README, Interop choices: "`503` `temporarily_unavailable` with `Retry-After: 1` when too
/// many Argon2 verifications are queued (a cold secret cache under a flood)". The flood comes
/// from several clients and several accounts at once, with the real Argon2 cost; whatever is
/// refused for being over the queue gets the 503, everything else an ordinary answer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_argon2_queue_answers_503_with_retry_after() {
    let clock = Arc::new(FixedClock::new(1_800_000_000));
    let engine = Engine::new(
        Arc::new(MemoryStore::default()),
        clock,
        Arc::new(SeqRandom::default()),
        EngineConfig::default(), // the real Argon2 cost: verifications take a while
    )
    .await
    .unwrap();
    let clients: Vec<String> = (0..3).map(|i| format!("c{i}@clients")).collect();
    for key in &clients {
        engine
            .register_client(testing::client(key, key, CALLBACK, "right-secret"))
            .await
            .unwrap();
    }
    engine
        .seed_user(&testing::user("alice", "Alice", "right-password"))
        .await
        .unwrap();
    let app = standalone(engine);
    let (response, page) = send(&app, Request::get("/login").body(Body::empty()).unwrap()).await;
    let csrf_cookie = cookie(&response, "dw_csrf").unwrap();
    let csrf = hidden(&page, "csrf");

    let mut flood = tokio::task::JoinSet::new();
    for i in 0..120 {
        let app = app.clone();
        let request = if i % 2 == 0 {
            // Wrong secrets are never cached: each one costs a verification.
            let key = &clients[i % clients.len()];
            token_request(
                "application/x-www-form-urlencoded",
                Some(&basic(key, &format!("wrong-{i}"))),
                "grant_type=authorization_code&code=dwc_x",
            )
        } else {
            // Sign-in attempts for several accounts, existing or not.
            let body = encode(&[
                ("csrf", &csrf),
                ("username", &format!("user{}", i % 7)),
                ("password", &format!("wrong-{i}")),
            ]);
            form("/login", &csrf_cookie, body)
        };
        flood.spawn(async move { (i, send(&app, request).await) });
    }
    let mut busy = 0;
    while let Some(done) = flood.join_next().await {
        let (i, (response, body)) = done.unwrap();
        let status = response.status();
        if status == StatusCode::SERVICE_UNAVAILABLE {
            busy += 1;
            assert_eq!(header(&response, header::RETRY_AFTER), "1", "{i}: {body}");
            if i % 2 == 0 {
                assert_eq!(error_of(&body), "temporarily_unavailable", "{body}");
            }
        } else {
            assert!(status.is_client_error(), "{i}: {status} {body}");
        }
    }
    assert!(
        busy > 0,
        "120 verifications at once overflow a queue of 2 + 32"
    );
}

/// README, `[server]`: "While the database is unreachable … requests get `503` with
/// `Retry-After: 1` (`temporarily_unavailable` on OAuth endpoints) and the instance reconnects
/// by itself."
#[tokio::test]
async fn while_the_database_is_down_requests_get_503_then_work_again() {
    let store = Arc::new(FailingStore::new(Arc::new(MemoryStore::default())));
    let clock = Arc::new(FixedClock::new(1_800_000_000));
    let engine = testing::engine_over(store.clone(), clock, EngineConfig::default()).await;
    engine
        .register_client(testing::client(
            "python_client@clients",
            "Python",
            CALLBACK,
            "secret",
        ))
        .await
        .unwrap();
    let app = standalone(engine);
    let auth = basic("python_client@clients", "secret");
    let requests = || {
        vec![
            (
                true,
                token_request(
                    "application/x-www-form-urlencoded",
                    Some(&auth),
                    "grant_type=refresh_token&refresh_token=dwrt_x",
                ),
            ),
            (
                true,
                Request::post("/oauth/introspect")
                    .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
                    .header(header::AUTHORIZATION, &auth)
                    .body(Body::from("token=dwat_x"))
                    .unwrap(),
            ),
            (
                true,
                Request::post("/oauth/revoke")
                    .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
                    .header(header::AUTHORIZATION, &auth)
                    .body(Body::from("token=dwat_x"))
                    .unwrap(),
            ),
            (
                false,
                Request::get("/api/v1/auth/self")
                    .header(header::AUTHORIZATION, "Bearer dwat_x")
                    .body(Body::empty())
                    .unwrap(),
            ),
            (
                false,
                Request::get("/oauth/userinfo")
                    .header(header::AUTHORIZATION, "Bearer dwat_x")
                    .body(Body::empty())
                    .unwrap(),
            ),
        ]
    };

    store.set_down(true);
    for (oauth, request) in requests() {
        let uri = request.uri().to_string();
        let (response, body) = send(&app, request).await;
        assert_eq!(
            response.status(),
            StatusCode::SERVICE_UNAVAILABLE,
            "{uri}: {body}"
        );
        assert_eq!(header(&response, header::RETRY_AFTER), "1", "{uri}");
        if oauth {
            assert_eq!(error_of(&body), "temporarily_unavailable", "{uri}");
        }
    }
    let authorize =
        Request::get("/oauth/authorize?response_type=code&client_id=python_client%40clients")
            .body(Body::empty())
            .unwrap();
    let (response, _) = send(&app, authorize).await;
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE, "a page");
    assert_eq!(header(&response, header::RETRY_AFTER), "1");

    store.set_down(false);
    for (_, request) in requests() {
        let uri = request.uri().to_string();
        let (response, body) = send(&app, request).await;
        assert!(response.status().as_u16() < 500, "{uri}: back up: {body}");
    }
}
