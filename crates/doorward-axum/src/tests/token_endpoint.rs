//! The token endpoint's answers to bad input: RFC 6749 §5.2 errors, `no-store`, a Basic
//! challenge with 401.

use axum::body::Body;
use axum::http::{header, Request, StatusCode};

use super::support::standalone::*;
use super::support::*;

#[tokio::test]
async fn the_token_endpoint_answers_bad_input_with_rfc_errors() {
    let app = app().await;
    let auth = basic("python_client@clients", "dev:sec ret");
    let cases: Vec<(Request<Body>, StatusCode, &str)> = vec![
        (
            token_request("text/plain", Some(&auth), "grant_type=x"),
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
        (
            token_request("application/json", Some(&auth), "{not json"),
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
        (
            token_request("application/json", Some(&auth), "[1]"),
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
        (
            token_request(
                "application/json",
                Some(&auth),
                r#"{"grant_type":"authorization_code","code":1}"#,
            ),
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
        (
            token_request(
                "application/json",
                Some(&auth),
                r#"{"code":"a","code":"b","grant_type":"authorization_code"}"#,
            ),
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
        (
            token_request(
                "application/x-www-form-urlencoded; charset=UTF-8",
                Some(&auth),
                "grant_type=authorization_code&code=a&code=b",
            ),
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
        (
            token_request("application/x-www-form-urlencoded", Some(&auth), "x=1"),
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
        (
            token_request(
                "application/x-www-form-urlencoded",
                Some(&auth),
                "grant_type=password",
            ),
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
        ),
        (
            token_request(
                "application/x-www-form-urlencoded",
                Some(&auth),
                "grant_type=authorization_code&code=nope",
            ),
            StatusCode::BAD_REQUEST,
            "invalid_grant",
        ),
        (
            token_request(
                "application/x-www-form-urlencoded",
                Some(&basic("python_client@clients", "wrong")),
                "grant_type=authorization_code&code=x",
            ),
            StatusCode::UNAUTHORIZED,
            "invalid_client",
        ),
        (
            token_request(
                "application/x-www-form-urlencoded",
                Some("Basic !!!"),
                "grant_type=authorization_code",
            ),
            StatusCode::UNAUTHORIZED,
            "invalid_client",
        ),
        (
            token_request(
                "application/x-www-form-urlencoded",
                Some("Bearer abc"),
                "grant_type=authorization_code",
            ),
            StatusCode::UNAUTHORIZED,
            "invalid_client",
        ),
        (
            token_request(
                "application/x-www-form-urlencoded",
                None,
                "grant_type=authorization_code&code=x",
            ),
            StatusCode::UNAUTHORIZED,
            "invalid_client",
        ),
        (
            token_request(
                "application/x-www-form-urlencoded",
                Some(&auth),
                "grant_type=authorization_code&client_secret=x",
            ),
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
        (
            token_request(
                "application/x-www-form-urlencoded",
                Some(&auth),
                vec![b'a'; 70 * 1024],
            ),
            StatusCode::PAYLOAD_TOO_LARGE,
            "invalid_request",
        ),
    ];
    for (request, status, error) in cases {
        let (response, body) = send(&app, request).await;
        assert_eq!(response.status(), status, "{body}");
        assert_eq!(error_of(&body), error, "{body}");
        assert_eq!(header(&response, header::CACHE_CONTROL), "no-store");
        if status == StatusCode::UNAUTHORIZED {
            assert!(header(&response, header::WWW_AUTHENTICATE).starts_with("Basic"));
        }
    }
    let (response, _) = send(
        &app,
        Request::get("/oauth/token").body(Body::empty()).unwrap(),
    )
    .await;
    assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED);
}

/// RFC 6749 §10.10: wrong client secrets are counted even once the right one is cached; past
/// the limit the client gets 429 `slow_down` with `Retry-After`, whatever the secret, at the
/// token, introspection and revocation endpoints alike.
#[tokio::test]
async fn repeated_wrong_client_secrets_get_429_slow_down() {
    let app = app().await;
    let right = basic("python_client@clients", "dev:sec ret");
    let wrong = basic("python_client@clients", "guess");
    let form = "application/x-www-form-urlencoded";
    let (response, _) = send(&app, token_request(form, Some(&right), "grant_type=x")).await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST, "authenticated");
    for _ in 0..doorward_core::throttle::CLIENT.free {
        let (response, body) = send(&app, token_request(form, Some(&wrong), "grant_type=x")).await;
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(error_of(&body), "invalid_client");
    }
    for (path, auth) in [
        ("/oauth/token", &right),
        ("/oauth/introspect", &wrong),
        ("/oauth/revoke", &right),
    ] {
        let request = Request::post(path)
            .header(header::CONTENT_TYPE, form)
            .header(header::AUTHORIZATION, auth.as_str())
            .body(Body::from("grant_type=x&token=t"))
            .unwrap();
        let (response, body) = send(&app, request).await;
        assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS, "{path}");
        assert_eq!(error_of(&body), "slow_down", "{path}");
        assert_eq!(header(&response, header::RETRY_AFTER), "10", "{path}");
        assert_eq!(header(&response, header::CACHE_CONTROL), "no-store");
    }
}
