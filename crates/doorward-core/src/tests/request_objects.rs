//! Request objects (RFC 9101): the claims of a JWS the client signed are the whole request, at
//! the authorization endpoint and in a pushed request; each check refuses what it must with
//! `invalid_request_object`.

use doorward_proto::ErrorCode;
use jsonwebtoken::Algorithm;
use serde_json::{json, Value};

use super::client_assertions::{
    claims, key, maced, request, signed, with_jwt_clients, HS_CLIENT, HS_SECRET, ISSUER, NOW,
    PK_CLIENT,
};
use super::support::*;
use crate::jose::SigningAlg;
use crate::request::{AuthorizeError, ResponseMode};

fn object(client: &str, extra: Value) -> Value {
    let mut claims = json!({
        "iss": client, "aud": ISSUER, "exp": NOW + 300, "iat": NOW,
        "client_id": client, "response_type": "code", "redirect_uri": CALLBACK,
        "scope": "base openid", "state": "from-the-object", "nonce": "n-1", "max_age": 600,
    });
    for (name, value) in extra.as_object().unwrap() {
        if value.is_null() {
            claims.as_object_mut().unwrap().remove(name);
        } else {
            claims[name] = value.clone();
        }
    }
    claims
}

fn front(client: &str, jws: &str) -> Vec<(String, String)> {
    pairs(&[
        ("client_id", client),
        ("request", jws),
        // Outside the object: ignored (RFC 9101 §6.3).
        ("state", "from-the-query"),
        ("scope", "admin"),
    ])
}

#[tokio::test]
async fn a_signed_request_object_is_the_whole_request() {
    let pk = key(SigningAlg::Es256, 1);
    let h = with_jwt_clients(&pk).await;
    let jws = signed(
        &pk,
        &object(PK_CLIENT, json!({"response_mode": "form_post"})),
    );
    let request = h
        .engine
        .check_authorization(&front(PK_CLIENT, &jws))
        .await
        .unwrap();
    assert_eq!(request.state.as_ref().unwrap().as_str(), "from-the-object");
    assert_eq!(request.scopes.to_string(), "base openid");
    assert_eq!(request.nonce.as_deref(), Some("n-1"));
    assert_eq!(request.max_age, Some(600));
    assert_eq!(request.response_mode, ResponseMode::FormPost);
    // Verified once: the browser goes on with it as a pushed request, spent by its code.
    let carry = request.carry.clone().unwrap();
    let carried = crate::request::query_pairs(&carry);
    assert_eq!(carried[0], ("client_id".to_owned(), PK_CLIENT.to_owned()));
    assert!(carried[1].1.starts_with(crate::request::REQUEST_URI_PREFIX));
    let again = h.engine.check_authorization(&carried).await.unwrap();
    assert_eq!(again.state.as_ref().unwrap().as_str(), "from-the-object");
    assert_eq!(again.carry, None);
    let answer = h.engine.approve(&h.user, &again).await.unwrap();
    assert!(answer.param("code").is_some());
    let replayed = h.engine.approve(&h.user, &again).await.unwrap();
    assert_eq!(replayed.param("error"), Some("invalid_request_uri"));
    // MACed with a client_secret_jwt client's secret.
    let jws = maced(HS_SECRET, Algorithm::HS256, &object(HS_CLIENT, json!({})));
    h.engine
        .check_authorization(&front(HS_CLIENT, &jws))
        .await
        .unwrap();
}

#[tokio::test]
async fn each_check_refuses_with_invalid_request_object() {
    let pk = key(SigningAlg::Es256, 1);
    let other = key(SigningAlg::Es256, 2);
    let h = with_jwt_clients(&pk).await;
    let unsigned = |claims: &Value| {
        use base64::Engine as _;
        let b64 =
            |v: &Value| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string());
        format!("{}.{}.", b64(&json!({"alg": "none"})), b64(claims))
    };
    for (why, jws) in [
        ("another key", signed(&other, &object(PK_CLIENT, json!({})))),
        ("unsigned", unsigned(&object(PK_CLIENT, json!({})))),
        (
            "a wrong secret",
            maced(
                "x".repeat(40).as_str(),
                Algorithm::HS256,
                &object(HS_CLIENT, json!({})),
            ),
        ),
        (
            "another audience",
            signed(&pk, &object(PK_CLIENT, json!({"aud": "https://elsewhere"}))),
        ),
        (
            "no exp",
            signed(&pk, &object(PK_CLIENT, json!({"exp": null}))),
        ),
        (
            "expired",
            signed(&pk, &object(PK_CLIENT, json!({"exp": NOW - 60}))),
        ),
        (
            "too long",
            signed(&pk, &object(PK_CLIENT, json!({"exp": NOW + 7200}))),
        ),
        (
            "not yet",
            signed(&pk, &object(PK_CLIENT, json!({"nbf": NOW + 600}))),
        ),
        (
            "another issuer",
            signed(&pk, &object(PK_CLIENT, json!({"iss": HS_CLIENT}))),
        ),
        (
            "another client_id",
            signed(&pk, &object(PK_CLIENT, json!({"client_id": HS_CLIENT}))),
        ),
        (
            "a request_uri inside",
            signed(&pk, &object(PK_CLIENT, json!({"request_uri": "urn:x"}))),
        ),
        (
            "a request inside",
            signed(&pk, &object(PK_CLIENT, json!({"request": "a.b.c"}))),
        ),
        (
            "no client named",
            signed(
                &pk,
                &object(PK_CLIENT, json!({"iss": null, "client_id": null})),
            ),
        ),
    ] {
        let client = if why == "a wrong secret" {
            HS_CLIENT
        } else {
            PK_CLIENT
        };
        match h.engine.check_authorization(&front(client, &jws)).await {
            Err(AuthorizeError::Redirect {
                error, response, ..
            }) => {
                assert_eq!(
                    error.code,
                    ErrorCode::InvalidRequestObject,
                    "{why}: {error:?}"
                );
                // To the registered redirect URI, with the query's state (nothing else is known).
                assert_eq!(response.redirect_uri.as_str(), CALLBACK);
                assert_eq!(response.param("state"), Some("from-the-query"), "{why}");
            }
            other => panic!("{why}: {other:?}"),
        }
    }
}

#[tokio::test]
async fn a_request_object_serves_once_and_is_never_a_client_assertion() {
    let pk = key(SigningAlg::Es256, 1);
    let h = with_jwt_clients(&pk).await;
    let mut claims = object(PK_CLIENT, json!({"sub": PK_CLIENT, "jti": "object-1"}));
    let jws = signed(&pk, &claims);
    h.engine
        .check_authorization(&front(PK_CLIENT, &jws))
        .await
        .unwrap();
    // Replayed (from a browser's history, say): refused.
    match h.engine.check_authorization(&front(PK_CLIENT, &jws)).await {
        Err(AuthorizeError::Redirect { error, .. }) => {
            assert_eq!(error.code, ErrorCode::InvalidRequestObject);
            assert!(error.description.contains("used already"), "{error:?}");
        }
        other => panic!("{other:?}"),
    }
    // Seen in a URL, it cannot authenticate the client, even with an assertion's claims.
    claims["aud"] = json!(format!("{ISSUER}/oauth/token"));
    claims["jti"] = json!("object-2");
    let as_assertion = signed(&pk, &claims);
    let result = h
        .engine
        .token(&request(
            &as_assertion,
            &[("grant_type", "client_credentials")],
        ))
        .await;
    assert_eq!(code_of(result), ErrorCode::InvalidClient);
}

#[tokio::test]
async fn a_request_object_can_be_pushed() {
    let pk = key(SigningAlg::Es256, 1);
    let h = with_jwt_clients(&pk).await;
    let jws = signed(&pk, &object(PK_CLIENT, json!({})));
    let assertion = signed(&pk, &claims(PK_CLIENT, "par-1"));
    let mut push = request(&assertion, &[("request", jws.as_str()), ("grant_type", "")]);
    push.params.insert("client_id".into(), PK_CLIENT.into());
    let pushed = h.engine.push_authorization_request(&push).await.unwrap();
    let front = pairs(&[
        ("client_id", PK_CLIENT),
        ("request_uri", &pushed.request_uri),
    ]);
    let opened = h.engine.check_authorization(&front).await.unwrap();
    assert_eq!(opened.state.unwrap().as_str(), "from-the-object");

    // A refused object is the endpoint's own error.
    let bad = signed(&pk, &object(PK_CLIENT, json!({"aud": "https://elsewhere"})));
    let assertion = signed(&pk, &claims(PK_CLIENT, "par-2"));
    let push = request(&assertion, &[("request", bad.as_str()), ("grant_type", "")]);
    match h.engine.push_authorization_request(&push).await {
        Err(crate::Error::OAuth(e)) => assert_eq!(e.code, ErrorCode::InvalidRequestObject),
        other => panic!("{other:?}"),
    }
}
