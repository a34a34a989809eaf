//! Token responses (RFC 6749 §5.1, §5.2): the shapes providers send, redirects, redaction.

use doorward_proto::ErrorCode;
use reqwest::header::{HeaderMap, HeaderValue, CONTENT_TYPE, LOCATION};
use reqwest::StatusCode;
use serde_json::json;

use crate::error::TokenError;
use crate::http::RawResponse;
use crate::token::parse_token_response;

use super::support::*;

fn response(status: u16, content_type: Option<&str>, body: &str) -> RawResponse {
    let mut headers = HeaderMap::new();
    if let Some(content_type) = content_type {
        headers.insert(CONTENT_TYPE, HeaderValue::from_str(content_type).unwrap());
    }
    RawResponse {
        status: StatusCode::from_u16(status).unwrap(),
        headers,
        body: body.as_bytes().to_vec(),
    }
}

fn json_response(status: u16, body: &str) -> RawResponse {
    response(status, Some("application/json; charset=utf-8"), body)
}

fn token_body(expires_in: &str) -> String {
    format!(r#"{{"access_token":"secret-value","token_type":"Bearer","expires_in":{expires_in}}}"#)
}

#[test]
fn token_expires_in_shapes() {
    for (expires_in, expected) in [
        ("3600", Some(NOW + 3600)),
        (r#""3600""#, Some(NOW + 3600)),
        (r#"" 3600 ""#, Some(NOW + 3600)),
        ("7200.5", Some(NOW + 7200)),
        (r#""7200.5""#, Some(NOW + 7200)),
        ("1e9", Some(NOW + 1_000_000_000)),
        ("1E9", Some(NOW + 1_000_000_000)),
        ("null", None),
        ("-5", Some(NOW)),
    ] {
        let token = parse_token_response(&json_response(200, &token_body(expires_in)), NOW)
            .unwrap_or_else(|e| panic!("expires_in {expires_in}: {e:?}"));
        assert_eq!(token.expires_at(), expected, "expires_in {expires_in}");
        assert_eq!(token.access_token(), "secret-value");
    }
    let token = parse_token_response(
        &json_response(
            200,
            r#"{"access_token":"secret-value","token_type":"Bearer"}"#,
        ),
        NOW,
    )
    .unwrap();
    assert_eq!(token.expires_at(), None);
    for bad in [r#""soon""#, "true", "[3600]", "{}"] {
        let result = parse_token_response(&json_response(200, &token_body(bad)), NOW);
        match result {
            Err(TokenError::InvalidResponse { reason, body }) => {
                assert!(reason.contains("expires_in"), "{reason}");
                assert!(!body.contains("secret-value"), "{body}");
            }
            other => panic!("expires_in {bad}: expected InvalidResponse, got {other:?}"),
        }
    }
}

#[test]
fn token_type_any_case_bearer_only() {
    for kind in ["bearer", "BEARER", "Bearer"] {
        let body = format!(r#"{{"access_token":"secret-value","token_type":"{kind}"}}"#);
        let token = parse_token_response(&json_response(200, &body), NOW)
            .unwrap_or_else(|e| panic!("{kind}: {e:?}"));
        assert_eq!(token.token_type(), kind);
    }
    let body = r#"{"access_token":"secret-value","token_type":"mac"}"#;
    match parse_token_response(&json_response(200, body), NOW) {
        Err(TokenError::UnsupportedTokenType(kind)) => assert_eq!(kind, "mac"),
        other => panic!("expected UnsupportedTokenType, got {other:?}"),
    }
    let body =
        r#"{"access_token":"secret-value","refresh_token":"secret-value","expires_in":3600}"#;
    match parse_token_response(&json_response(200, body), NOW) {
        Err(error @ TokenError::InvalidResponse { .. }) => {
            let TokenError::InvalidResponse { reason, body } = &error else {
                unreachable!()
            };
            assert!(reason.contains("token_type"), "{reason}");
            assert!(body.contains("[redacted]"), "{body}");
            assert!(!format!("{error:?}").contains("secret-value"), "{error:?}");
            assert!(!error.to_string().contains("secret-value"), "{error}");
        }
        other => panic!("expected InvalidResponse, got {other:?}"),
    }
    let body = r#"{"access_token":"secret-value","token_type":7}"#;
    let result = parse_token_response(&json_response(200, body), NOW);
    assert_err!(result, TokenError::InvalidResponse { .. });
    for body in [
        r#"{"token_type":"Bearer"}"#,
        r#"{"access_token":"","token_type":"Bearer"}"#,
    ] {
        let result = parse_token_response(&json_response(200, body), NOW);
        assert_err!(result, TokenError::InvalidResponse { ref reason, .. } if reason.contains("access_token"));
    }
}

#[test]
fn token_rfc_error_body() {
    let body = r#"{"error":"invalid_grant","error_description":"x"}"#;
    match parse_token_response(&json_response(400, body), NOW) {
        Err(TokenError::Provider { status, error }) => {
            assert_eq!(status, 400);
            assert_eq!(error.code, Some(ErrorCode::InvalidGrant));
            assert_eq!(error.error, "invalid_grant");
            assert_eq!(error.description.as_deref(), Some("x"));
            assert_eq!(error.uri, None);
        }
        other => panic!("expected Provider, got {other:?}"),
    }
    // An unregistered code is kept as sent.
    let body = r#"{"error":"slow_down_please"}"#;
    match parse_token_response(&json_response(401, body), NOW) {
        Err(TokenError::Provider { status: 401, error }) => {
            assert_eq!(error.code, None);
            assert_eq!(error.error, "slow_down_please");
        }
        other => panic!("expected Provider, got {other:?}"),
    }
    // A form-encoded error body (old GitHub style) is an error body too.
    let form = response(
        200,
        Some("application/x-www-form-urlencoded"),
        "error=invalid_client&error_description=bad",
    );
    match parse_token_response(&form, NOW) {
        Err(TokenError::Provider { status: 200, error }) => {
            assert_eq!(error.code, Some(ErrorCode::InvalidClient))
        }
        other => panic!("expected Provider, got {other:?}"),
    }
}

#[test]
fn token_eternaltwin_422_is_kept_whole() {
    let body = r#"{"code":"Q1010","message":"invalid format for oauth code parameter","extra":"InvalidToken"}"#;
    match parse_token_response(&json_response(422, body), NOW) {
        Err(TokenError::UnexpectedResponse { status, body: got }) => {
            assert_eq!(status, 422);
            assert_eq!(got, body);
        }
        other => panic!("expected UnexpectedResponse, got {other:?}"),
    }
    let result = parse_token_response(&response(500, Some("text/plain"), "oops"), NOW);
    assert_err!(result, TokenError::UnexpectedResponse { status: 500, ref body } if body == "oops");
}

#[test]
fn token_redirect_is_not_followed() {
    let mut redirect = response(302, None, "");
    redirect.headers.insert(
        LOCATION,
        HeaderValue::from_static("https://elsewhere.example/login"),
    );
    match parse_token_response(&redirect, NOW) {
        Err(TokenError::Redirected { status, location }) => {
            assert_eq!(status, 302);
            assert_eq!(location, "https://elsewhere.example/login");
        }
        other => panic!("expected Redirected, got {other:?}"),
    }
    // Even with a token-looking body.
    let mut redirect = json_response(307, &token_body("3600"));
    redirect
        .headers
        .insert(LOCATION, HeaderValue::from_static("/x"));
    let result = parse_token_response(&redirect, NOW);
    assert_err!(result, TokenError::Redirected { status: 307, .. });
}

#[test]
fn token_html_is_an_invalid_response() {
    let html = "<!doctype html><html><body>Sign in</body></html>";
    match parse_token_response(&response(200, Some("text/html; charset=utf-8"), html), NOW) {
        Err(TokenError::InvalidResponse { reason, body }) => {
            assert!(reason.contains("not a JSON object"), "{reason}");
            assert_eq!(body, html);
        }
        other => panic!("expected InvalidResponse, got {other:?}"),
    }
    let result = parse_token_response(&json_response(200, r#"["secret-value"]"#), NOW);
    assert_err!(result, TokenError::InvalidResponse { .. });
    // A long non-JSON body is cut in the error.
    let long = "é".repeat(1000);
    match parse_token_response(&response(200, Some("text/plain"), &long), NOW) {
        Err(TokenError::InvalidResponse { body, .. }) => {
            assert!(body.len() < 600, "{}", body.len())
        }
        other => panic!("expected InvalidResponse, got {other:?}"),
    }
}

#[test]
fn token_full_response_and_debug_redaction() {
    let body = r#"{
        "access_token": "secret-value-access",
        "token_type": "Bearer",
        "expires_in": 3600,
        "refresh_token": "secret-value-refresh",
        "id_token": "secret-value-id",
        "scope": ["openid", "profile"],
        "custom": 1
    }"#;
    let token = parse_token_response(&json_response(200, body), NOW).expect("full token response");
    assert_eq!(token.access_token(), "secret-value-access");
    assert_eq!(token.refresh_token(), Some("secret-value-refresh"));
    assert_eq!(token.id_token(), Some("secret-value-id"));
    assert_eq!(token.scope(), Some("openid profile"));
    assert_eq!(token.extra().get("custom"), Some(&json!(1)));
    assert!(!token.extra().contains_key("access_token"));
    assert!(token.expires_within(NOW + 3600, 0));
    assert!(!token.expires_within(NOW, 60));
    let debug = format!("{token:?}");
    assert!(!debug.contains("secret-value"), "{debug}");
    assert!(debug.contains("[redacted]"), "{debug}");
    // The update hook's payload prints the same way.
    let update = crate::TokenUpdate {
        previous: token.clone(),
        current: token,
    };
    assert!(!format!("{update:?}").contains("secret-value"));
}

#[test]
fn token_form_encoded_response() {
    let form = "access_token=secret-value&token_type=bearer&scope=repo%2Cgist&expires_in=28800";
    let token = parse_token_response(
        &response(200, Some("application/x-www-form-urlencoded"), form),
        NOW,
    )
    .expect("form-encoded token response");
    assert_eq!(token.access_token(), "secret-value");
    assert_eq!(token.scope(), Some("repo,gist"));
    assert_eq!(token.expires_at(), Some(NOW + 28800));
}

#[test]
fn token_invalid_form_encoded_response_does_not_leak_tokens() {
    // The same redaction as for JSON bodies must apply to form-encoded ones.
    for form in [
        "access_token=secret-value&refresh_token=secret-value",
        "access_token=secret-value&token_type=bearer&expires_in=soon",
    ] {
        match parse_token_response(
            &response(200, Some("application/x-www-form-urlencoded"), form),
            NOW,
        ) {
            Err(error @ TokenError::InvalidResponse { .. }) => {
                let TokenError::InvalidResponse { body, .. } = &error else {
                    unreachable!()
                };
                assert!(body.contains("[redacted]"), "{body}");
                assert!(!format!("{error:?}").contains("secret-value"), "{error:?}");
                assert!(!error.to_string().contains("secret-value"), "{error}");
            }
            other => panic!("expected InvalidResponse, got {other:?}"),
        }
    }
}
