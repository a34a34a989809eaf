//! Which grant types a provider offers: none but those named, and the insecure legacy grants
//! (password, implicit) only when both the provider and the client switch them on.

use std::sync::Arc;

use axum::http::{header, Request, StatusCode};
use doorward_core::testing::FixedClock;
use doorward_core::{ClientSpec, Grants};
use doorward_proto::{RedirectUri, Secret};

use super::support::embedded::*;
use super::support::*;

#[tokio::test]
async fn grant_types_are_off_unless_named() {
    let clock = Arc::new(FixedClock::new(1_800_000_000));
    let provider = provider(Grants::NONE, clock).await;
    let app = application(&provider);
    let (response, _) = send(
        &app,
        get_with(&authorize("items:read"), &[("x-app-user", "u-1")]),
    )
    .await;
    let location = header(&response, header::LOCATION);
    assert!(
        location.contains("error=unsupported_response_type"),
        "{location}"
    );
    let request = Request::post("/auth/oauth/token")
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .header(header::AUTHORIZATION, basic("shop@clients", "shop-secret"))
        .body(axum::body::Body::from(
            "grant_type=refresh_token&refresh_token=x",
        ))
        .unwrap();
    let (response, body) = send(&app, request).await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert_eq!(error_of(&body), "unsupported_grant_type");
    let (_, metadata) = send(
        &app,
        get_with("/auth/.well-known/openid-configuration", &[]),
    )
    .await;
    let metadata: serde_json::Value = serde_json::from_str(&metadata).unwrap();
    assert_eq!(metadata["grant_types_supported"], serde_json::json!([]));
}

#[tokio::test]
async fn legacy_grants_are_off_by_default() {
    let (_, app) = legacy_provider(Grants::CODE_AND_REFRESH).await;
    let (response, body) = send(&app, password_request("carol", "carol-pw")).await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert_eq!(error_of(&body), "unsupported_grant_type");
    let implicit = authorize("items:read").replace("response_type=code", "response_type=token");
    let (response, _) = send(&app, get_with(&implicit, &[("x-app-user", "u-1")])).await;
    let location = header(&response, header::LOCATION);
    assert!(
        location.starts_with(&format!("{CALLBACK}?error=unsupported_response_type")),
        "{location}"
    );
}

#[tokio::test]
async fn legacy_grants_need_the_clients_switch_too() {
    let mut grants = Grants::CODE_AND_REFRESH;
    grants.insecure_password = true;
    grants.insecure_implicit = true;
    let (provider, app) = legacy_provider(grants).await;
    provider
        .engine()
        .register_client(ClientSpec {
            key: "plain@clients".into(),
            display_name: "Plain".into(),
            app_uri: "http://client.example".into(),
            redirect_uris: vec![RedirectUri::parse(CALLBACK).unwrap()],
            secret: Secret::new("plain-secret"),
            policy: Default::default(),
        })
        .await
        .unwrap();
    let mut request = password_request("carol", "carol-pw");
    request.headers_mut().insert(
        header::AUTHORIZATION,
        basic("plain@clients", "plain-secret").parse().unwrap(),
    );
    let (_, body) = send(&app, request).await;
    assert_eq!(error_of(&body), "unsupported_grant_type");
    let implicit = authorize("items:read")
        .replace("response_type=code", "response_type=token")
        .replace("shop%40clients", "plain%40clients");
    let (response, _) = send(&app, get_with(&implicit, &[("x-app-user", "u-1")])).await;
    assert!(header(&response, header::LOCATION).contains("?error=unsupported_response_type"));
}

#[tokio::test]
async fn the_insecure_password_grant_works_when_switched_on() {
    let mut grants = Grants::CODE_AND_REFRESH;
    grants.insecure_password = true;
    let (_, app) = legacy_provider(grants).await;
    let (response, body) = send(&app, password_request("carol", "carol-pw")).await;
    assert_eq!(response.status(), StatusCode::OK, "{body}");
    assert_eq!(header(&response, header::CACHE_CONTROL), "no-store");
    let tokens: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert!(tokens["refresh_token"].is_string());
    let bearer = format!("Bearer {}", tokens["access_token"].as_str().unwrap());
    let (response, body) = send(&app, get_with("/api/items", &[("authorization", &bearer)])).await;
    assert_eq!(response.status(), StatusCode::OK, "{body}");
    let (response, body) = send(&app, password_request("carol", "wrong")).await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert_eq!(error_of(&body), "invalid_grant");
    let (_, body) = send(&app, password_request("nobody", "carol-pw")).await;
    assert_eq!(error_of(&body), "invalid_grant");
    // Brute force (RFC 6749 §4.3.2, §10.10): after 5 failures, even the right password is
    // refused, with the sign-in page's throttle (429 `slow_down`, `Retry-After`).
    for _ in 0..4 {
        send(&app, password_request("carol", "wrong")).await;
    }
    let (response, body) = send(&app, password_request("carol", "carol-pw")).await;
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS, "{body}");
    assert_eq!(error_of(&body), "slow_down");
    assert_eq!(header(&response, header::RETRY_AFTER), "30");
    assert!(body.contains("too many failed attempts"), "{body}");
    // Client authentication is still required.
    let mut anonymous = password_request("carol", "carol-pw");
    anonymous.headers_mut().remove(header::AUTHORIZATION);
    let (response, body) = send(&app, anonymous).await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "{body}");
}

#[tokio::test]
async fn the_insecure_implicit_grant_answers_in_the_fragment() {
    let mut grants = Grants::CODE_AND_REFRESH;
    grants.insecure_implicit = true;
    let (_, app) = legacy_provider(grants).await;
    let implicit = authorize("items:read").replace("response_type=code", "response_type=token");
    let (response, _) = send(&app, get_with(&implicit, &[("x-app-user", "u-5")])).await;
    let session = cookie(&response, "dw_session").unwrap();
    let (response, page) = send(
        &app,
        get_with(&implicit, &[("cookie", &session), ("x-app-user", "u-5")]),
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK, "{page}");
    let cookies = format!("{session}; {}", cookie(&response, "dw_csrf").unwrap());
    let body = encode(&[
        ("csrf", &hidden(&page, "csrf")),
        ("request", &hidden(&page, "request")),
        ("decision", "approve"),
    ]);
    let (response, _) = send(&app, form("/auth/oauth/authorize", &cookies, body)).await;
    let location = header(&response, header::LOCATION).to_owned();
    let (base, fragment) = location.split_once('#').expect("a fragment");
    assert_eq!(base, CALLBACK, "nothing in the query");
    let params: std::collections::HashMap<String, String> =
        form_urlencoded::parse(fragment.as_bytes())
            .into_owned()
            .collect();
    assert_eq!(params["token_type"], "Bearer");
    assert_eq!(params["state"], "s1");
    assert_eq!(params["iss"], ISSUER);
    assert!(
        !params.contains_key("refresh_token"),
        "never a refresh token (RFC 6749 §4.2.2)"
    );
    let bearer = format!("Bearer {}", params["access_token"]);
    let (response, body) = send(&app, get_with("/api/items", &[("authorization", &bearer)])).await;
    assert_eq!(response.status(), StatusCode::OK, "{body}");
    // Errors of an implicit request go in the fragment too.
    let bad = implicit.replace("scope=items%3Aread", "scope=nope");
    let (response, _) = send(
        &app,
        get_with(&bad, &[("cookie", &session), ("x-app-user", "u-5")]),
    )
    .await;
    let location = header(&response, header::LOCATION);
    assert!(
        location.starts_with(&format!("{CALLBACK}#error=invalid_scope")),
        "{location}"
    );
}

/// `client_credentials` (RFC 6749 §4.4): only when the provider and the client name it; its
/// token has the client as subject and no user, which `Authenticated::user()` says and
/// UserInfo refuses with `403 insufficient_scope`.
#[tokio::test]
async fn client_credentials_tokens_stand_for_the_client() {
    use axum::routing::get;
    use doorward_core::model::{ClientPolicy, GrantType};

    use crate::protect::Authenticated;

    let clock = Arc::new(FixedClock::new(1_800_000_000));
    let mut grants = Grants::CODE_AND_REFRESH;
    grants.client_credentials = true;
    let policy = ClientPolicy {
        grant_types: Some(vec![GrantType::ClientCredentials]),
        ..ClientPolicy::default()
    };
    let provider = provider_with_policy(grants, clock, policy).await;
    let api = axum::Router::new()
        .route(
            "/api/who",
            get(|auth: Authenticated| async move {
                format!("{:?} {}", auth.user(), auth.grant.subject)
            }),
        )
        .with_state(provider.resource_server(0));
    let app = provider.mount(api);
    let cc = |scope: &str| {
        Request::post("/auth/oauth/token")
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .header(header::AUTHORIZATION, basic("shop@clients", "shop-secret"))
            .body(axum::body::Body::from(encode(&[
                ("grant_type", "client_credentials"),
                ("scope", scope),
            ])))
            .unwrap()
    };
    let (response, body) = send(&app, cc("items:read")).await;
    assert_eq!(response.status(), StatusCode::OK, "{body}");
    let token: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert!(token.get("refresh_token").is_none(), "{token}");
    let access = token["access_token"].as_str().unwrap();
    let bearer = format!("Bearer {access}");
    let (response, body) = send(
        &app,
        get_with("/api/who", &[("authorization", bearer.as_str())]),
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK, "{body}");
    assert_eq!(body, "None shop@clients");
    let (response, _) = send(
        &app,
        get_with(
            "/auth/oauth/userinfo",
            &[("authorization", bearer.as_str())],
        ),
    )
    .await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    assert!(header(&response, header::WWW_AUTHENTICATE).contains("insufficient_scope"));
    let (response, body) = send(&app, cc("openid")).await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert_eq!(error_of(&body), "invalid_scope");
    // This client has no authorization_code: no code either.
    let (response, _) = send(
        &app,
        get_with(&authorize("items:read"), &[("x-app-user", "u-1")]),
    )
    .await;
    let location = header(&response, header::LOCATION);
    assert!(location.contains("error=unauthorized_client"), "{location}");
    let (_, metadata) = send(
        &app,
        get_with("/auth/.well-known/openid-configuration", &[]),
    )
    .await;
    let metadata: serde_json::Value = serde_json::from_str(&metadata).unwrap();
    assert!(metadata["grant_types_supported"]
        .as_array()
        .unwrap()
        .contains(&serde_json::json!("client_credentials")));
}
