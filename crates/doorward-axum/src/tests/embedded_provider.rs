//! A `Provider` mounted under /auth in an application's router: the application's
//! `Authenticator` decides who the user is, its login page resumes the flow, and its API is
//! protected by bearer tokens.

use std::sync::Arc;

use axum::http::{header, Request, StatusCode};
use doorward_core::testing::FixedClock;
use doorward_core::Grants;

use crate::Decision;

use super::support::embedded::*;
use super::support::*;

#[tokio::test]
async fn the_application_signs_the_user_in_and_its_api_checks_scopes() {
    let clock = Arc::new(FixedClock::new(1_800_000_000));
    let provider = provider(Grants::CODE_AND_REFRESH, clock.clone()).await;
    let app = application(&provider);

    // The authenticator knows the user: a session at the provider, back to the request.
    let (response, _) = send(
        &app,
        get_with(&authorize("items:read"), &[("x-app-user", "u-42")]),
    )
    .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(header(&response, header::LOCATION), authorize("items:read"));
    let session = cookie(&response, "dw_session").expect("a session cookie");

    // Doorward's consent page, with every link under /auth.
    let (response, page) = send(
        &app,
        get_with(
            &authorize("items:read"),
            &[("cookie", &session), ("x-app-user", "u-42")],
        ),
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK, "{page}");
    assert!(page.contains("action=\"/auth/oauth/authorize\""), "{page}");
    assert!(
        page.contains("href=\"/auth/assets/doorward.css\""),
        "{page}"
    );
    let csrf_cookie = cookie(&response, "dw_csrf").unwrap();
    let cookies = format!("{session}; {csrf_cookie}");
    let body = encode(&[
        ("csrf", &hidden(&page, "csrf")),
        ("request", &hidden(&page, "request")),
        ("decision", "approve"),
    ]);
    let (response, _) = send(&app, form("/auth/oauth/authorize", &cookies, body)).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let tokens = redeem(&app, &code_of(header(&response, header::LOCATION))).await;
    let bearer = format!("Bearer {}", tokens["access_token"].as_str().unwrap());

    // Discovery under the mount path names the mounted endpoints.
    let (_, metadata) = send(
        &app,
        get_with("/auth/.well-known/openid-configuration", &[]),
    )
    .await;
    let metadata: serde_json::Value = serde_json::from_str(&metadata).unwrap();
    assert_eq!(metadata["issuer"], ISSUER);
    assert_eq!(metadata["token_endpoint"], format!("{ISSUER}/oauth/token"));

    // The API: the right scope passes, the other is 403 insufficient_scope with the scope.
    let (response, body) = send(&app, get_with("/api/items", &[("authorization", &bearer)])).await;
    assert_eq!(response.status(), StatusCode::OK, "{body}");
    let subject = body.trim_start_matches("read by ").to_owned();
    assert_eq!(subject.len(), 36, "the user's UUID: {body}");
    let (response, body) = send(
        &app,
        Request::post("/api/items")
            .header("authorization", &bearer)
            .body(axum::body::Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN, "{body}");
    assert_eq!(error_of(&body), "insufficient_scope");
    let challenge = header(&response, header::WWW_AUTHENTICATE);
    assert!(
        challenge.contains("error=\"insufficient_scope\"")
            && challenge.contains("scope=\"items:write\""),
        "{challenge}"
    );
    let (response, _) = send(
        &app,
        get_with("/api/layered", &[("authorization", &bearer)]),
    )
    .await;
    assert_eq!(
        response.status(),
        StatusCode::FORBIDDEN,
        "the layer checks scopes too"
    );

    // No token: 401 with a bare challenge; a bad one: invalid_token; a malformed header: 400.
    let (response, _) = send(&app, get_with("/api/items", &[])).await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        header(&response, header::WWW_AUTHENTICATE),
        "Bearer realm=\"doorward\""
    );
    let (response, body) = send(
        &app,
        get_with("/api/items", &[("authorization", "Bearer nope")]),
    )
    .await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(error_of(&body), "invalid_token");
    let (response, body) = send(
        &app,
        get_with("/api/items", &[("authorization", "Bearer a b")]),
    )
    .await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert_eq!(error_of(&body), "invalid_request");

    // Expired: 401 invalid_token.
    clock.advance(7200 + 1);
    let (response, body) = send(&app, get_with("/api/items", &[("authorization", &bearer)])).await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "{body}");
    assert_eq!(error_of(&body), "invalid_token");
}

#[tokio::test]
async fn the_applications_login_page_resumes_the_flow() {
    let clock = Arc::new(FixedClock::new(1_800_000_000));
    let provider = provider(Grants::CODE_AND_REFRESH, clock.clone()).await;
    let app = application(&provider);

    // No user known: the authenticator sends the browser to the app's page with a grant id.
    let (response, _) = send(&app, get_with(&authorize("items:read"), &[])).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let login = header(&response, header::LOCATION).to_owned();
    let grant = grant_id_of(&login);

    // The app asked for consent itself: straight back to the client with a code.
    let response = provider
        .resume(
            &grant,
            Decision::Allow {
                user: app_user("u-7"),
                consented: true,
            },
        )
        .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let location = header(&response, header::LOCATION).to_owned();
    assert!(location.contains("state=s1"), "{location}");
    let tokens = redeem(&app, &code_of(&location)).await;
    assert_eq!(tokens["token_type"], "Bearer");

    // Without the app's consent, Doorward's consent page follows (303 to the request).
    let response = provider
        .resume(
            &grant,
            Decision::Allow {
                user: app_user("u-8"),
                consented: false,
            },
        )
        .await;
    assert_eq!(header(&response, header::LOCATION), authorize("items:read"));
    assert!(cookie(&response, "dw_session").is_some());

    // Denied: access_denied to the client, with its state.
    let response = provider.resume(&grant, Decision::Deny).await;
    let location = header(&response, header::LOCATION);
    assert!(
        location.starts_with(CALLBACK)
            && location.contains("error=access_denied")
            && location.contains("state=s1"),
        "{location}"
    );

    // A forged or expired grant id: a page, never a redirect.
    let (forged, _) = grant.rsplit_once('.').unwrap();
    let response = provider
        .resume(
            &format!("{forged}.AAAA"),
            Decision::Allow {
                user: app_user("u-9"),
                consented: true,
            },
        )
        .await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert!(response.headers().get(header::LOCATION).is_none());
    clock.advance(601);
    let response = provider
        .resume(
            &grant,
            Decision::Allow {
                user: app_user("u-9"),
                consented: true,
            },
        )
        .await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);

    // The authenticator refuses: access_denied.
    let (response, _) = send(
        &app,
        get_with(&authorize("items:read"), &[("x-app-user", "mallory")]),
    )
    .await;
    let location = header(&response, header::LOCATION);
    assert!(location.contains("error=access_denied"), "{location}");
}

#[tokio::test]
async fn the_application_is_asked_every_time_and_its_answer_decides() {
    let clock = Arc::new(FixedClock::new(1_800_000_000));
    let provider = provider(Grants::CODE_AND_REFRESH, clock).await;
    let app = application(&provider);
    // u-1 signs in through the application: a provider session for u-1.
    let (response, _) = send(
        &app,
        get_with(&authorize("items:read"), &[("x-app-user", "u-1")]),
    )
    .await;
    let first = cookie(&response, "dw_session").unwrap();
    // The application now says u-2 (another user of the same browser): the provider session
    // of u-1 is not used; u-2 gets one of their own.
    let (response, _) = send(
        &app,
        get_with(
            &authorize("items:read"),
            &[("cookie", &first), ("x-app-user", "u-2")],
        ),
    )
    .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let second = cookie(&response, "dw_session").expect("a new session for u-2");
    assert_ne!(first, second);
    let (_, page) = send(
        &app,
        get_with(
            &authorize("items:read"),
            &[("cookie", &second), ("x-app-user", "u-2")],
        ),
    )
    .await;
    assert!(
        page.contains("App user u-2"),
        "the consent page is u-2's: {page}"
    );
    // Signed out at the application: its login page, whatever the provider session.
    let (response, _) = send(
        &app,
        get_with(&authorize("items:read"), &[("cookie", &second)]),
    )
    .await;
    assert!(header(&response, header::LOCATION).starts_with("/app-login?grant="));
    // prompt=none and no user at the application: login_required, no page.
    let (response, _) = send(
        &app,
        get_with(
            &format!("{}&prompt=none", authorize("items:read")),
            &[("cookie", &second)],
        ),
    )
    .await;
    assert!(header(&response, header::LOCATION).contains("error=login_required"));

    // What a grant id asks for, for the application's own consent page.
    let (response, _) = send(&app, get_with(&authorize("items:read"), &[])).await;
    let location = header(&response, header::LOCATION).to_owned();
    let grant = url::Url::parse(&format!("http://app.example{location}"))
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == "grant")
        .unwrap()
        .1
        .into_owned();
    let pending = provider.pending(&grant).await.unwrap();
    assert_eq!(
        (pending.client_id.as_str(), pending.client_name.as_str()),
        ("shop@clients", "Shop")
    );
    assert_eq!(pending.scopes, vec!["items:read".to_owned()]);
    assert!(provider.pending("1.bm9wZQ.AAAA").await.is_none());

    // RFC 8414 §3.1: the metadata at the root, with the issuer's path after the name.
    let (response, body) = send(
        &app,
        get_with("/.well-known/oauth-authorization-server/auth", &[]),
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK, "{body}");
    assert!(body.contains(&format!("\"issuer\":\"{ISSUER}\"")), "{body}");
}

#[tokio::test]
async fn an_application_user_never_takes_over_a_password_user() {
    let (provider, app) = legacy_provider(Grants::CODE_AND_REFRESH).await;
    // carol signs in with a password (configuration); the application names a user carol.
    // Nobody erred (no 500): the authorization server denies the request (RFC 6749 §4.1.2.1).
    let refused = |response: &axum::response::Response, status: StatusCode| {
        assert_eq!(response.status(), status);
        let location = header(response, header::LOCATION);
        assert!(
            location.starts_with(CALLBACK)
                && location.contains("error=access_denied")
                && location.contains("state=s1")
                && !location.contains("code="),
            "{location}"
        );
        assert!(cookie(response, "dw_session").is_none());
    };
    let (response, _) = send(
        &app,
        get_with(&authorize("items:read"), &[("x-app-user", "carol")]),
    )
    .await;
    refused(&response, StatusCode::FOUND);

    // The same from the application's own login page.
    let (response, _) = send(&app, get_with(&authorize("items:read"), &[])).await;
    let login = header(&response, header::LOCATION).to_owned();
    let grant = grant_id_of(&login);
    let response = provider
        .resume(
            &grant,
            Decision::Allow {
                user: app_user("carol"),
                consented: true,
            },
        )
        .await;
    refused(&response, StatusCode::SEE_OTHER);
}

/// TxOAuth2's `grantAccess(scope=…, additionalData=…)`: the application approves on its terms,
/// a narrower scope (said in the token response, RFC 6749 §5.1) and data that every token of
/// the grant carries, refreshes included, to the resource side and the claims hook.
#[tokio::test]
async fn the_application_grants_a_narrower_scope_and_data_that_travels() {
    let clock = Arc::new(FixedClock::new(1_800_000_000));
    let provider = provider(Grants::CODE_AND_REFRESH, clock.clone()).await;
    let app = application(&provider);
    let (response, _) = send(&app, get_with(&authorize("items:read items:write"), &[])).await;
    let login = header(&response, header::LOCATION).to_owned();
    let grant = grant_id_of(&login);
    let data = serde_json::json!({ "store": "paris", "basket": 3 })
        .as_object()
        .cloned()
        .unwrap();
    let terms = crate::GrantTerms::default()
        .narrowed_to(crate::ScopeSet::parse("items:read profile").unwrap())
        .with_data(data.clone());
    let response = provider
        .resume(
            &grant,
            Decision::Grant {
                user: app_user("u-9"),
                terms,
            },
        )
        .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let tokens = redeem(&app, &code_of(header(&response, header::LOCATION))).await;
    assert_eq!(
        tokens["scope"], "items:read",
        "narrowed, within the request, and said"
    );
    let access = tokens["access_token"].as_str().unwrap();
    let info = provider
        .engine()
        .resolve_access_token(access)
        .await
        .unwrap();
    assert_eq!(*info.grant_data, data);
    let resource = provider.resource_server(0);
    let seen = resource
        .authorize(
            &axum::http::HeaderMap::from_iter([(
                header::AUTHORIZATION,
                format!("Bearer {access}").parse().unwrap(),
            )]),
            &["items:read"],
        )
        .await
        .unwrap();
    assert_eq!(seen.grant_data, data, "the API sees it");
    // The write scope was not granted.
    let bearer = format!("Bearer {access}");
    let (response, _) = send(
        &app,
        Request::post("/api/items")
            .header("authorization", &bearer)
            .body(axum::body::Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    // A refresh: the same grant, the same data.
    let request = Request::post("/auth/oauth/token")
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .header(header::AUTHORIZATION, basic("shop@clients", "shop-secret"))
        .body(axum::body::Body::from(encode(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", tokens["refresh_token"].as_str().unwrap()),
        ])))
        .unwrap();
    let (response, body) = send(&app, request).await;
    assert_eq!(response.status(), StatusCode::OK, "{body}");
    let refreshed: serde_json::Value = serde_json::from_str(&body).unwrap();
    let info = provider
        .engine()
        .resolve_access_token(refreshed["access_token"].as_str().unwrap())
        .await
        .unwrap();
    assert_eq!(*info.grant_data, data);
    assert_eq!(info.scopes.to_string(), "items:read");
}

/// The grant id in the application's login URL (a path and query).
fn grant_id_of(login: &str) -> String {
    url::Url::parse(&format!("http://app.example{login}"))
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == "grant")
        .unwrap()
        .1
        .into_owned()
}
