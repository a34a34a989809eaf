//! Response modes (OAuth 2.0 Multiple Response Types §2.1, Form Post Response Mode) and
//! pushed authorization requests (RFC 9126).

use doorward_proto::ErrorCode;

use super::support::*;
use crate::model::ClientPolicy;
use crate::pushed::{Pushed, REQUEST_URI_PREFIX};
use crate::request::{AuthorizeError, ResponseMode, ShowReason};
use crate::{EngineConfig, Error};

const PUSHED: [(&str, &str); 5] = [
    ("response_type", "code"),
    ("redirect_uri", CALLBACK),
    ("state", "pushed-state"),
    ("code_challenge", CHALLENGE),
    ("code_challenge_method", "S256"),
];

async fn push(h: &Harness, params: &[(&str, &str)]) -> Result<Pushed, Error> {
    h.engine
        .push_authorization_request(&basic_request(KEY, SECRET, params))
        .await
}

fn front(request_uri: &str) -> Vec<(String, String)> {
    pairs(&[("client_id", KEY), ("request_uri", request_uri)])
}

fn oauth_code(result: Result<Pushed, Error>) -> ErrorCode {
    match result {
        Err(Error::OAuth(e)) => e.code,
        other => panic!("expected an OAuth error, got {other:?}"),
    }
}

fn show_reason<T: std::fmt::Debug>(result: Result<T, AuthorizeError>) -> ShowReason {
    match result {
        Err(AuthorizeError::Show(reason)) => reason,
        other => panic!("expected a page, got {other:?}"),
    }
}

#[tokio::test]
async fn a_code_goes_back_in_the_mode_the_request_names() {
    let h = harness().await;
    for (mode, expected) in [
        (None, ResponseMode::Query),
        (Some("query"), ResponseMode::Query),
        (Some("fragment"), ResponseMode::Fragment),
        (Some("form_post"), ResponseMode::FormPost),
    ] {
        let mut query = vec![
            ("response_type", "code"),
            ("client_id", KEY),
            ("state", "s"),
        ];
        query.extend(mode.map(|m| ("response_mode", m)));
        let request = h.engine.check_authorization(&pairs(&query)).await.unwrap();
        assert_eq!(request.response_mode, expected, "{mode:?}");
        let answer = h.engine.approve(&h.user, &request).await.unwrap();
        assert_eq!(answer.mode, expected);
        let names: Vec<&str> = answer.params.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["code", "state", "iss"], "{mode:?}");
        match expected {
            ResponseMode::Query => {
                let location = answer.location().unwrap();
                assert!(
                    location.starts_with(&format!("{CALLBACK}?code=dwc_")),
                    "{location}"
                );
            }
            ResponseMode::Fragment => {
                let location = answer.location().unwrap();
                assert!(
                    location.starts_with(&format!("{CALLBACK}#code=dwc_")),
                    "{location}"
                );
            }
            // Never in a URL.
            ResponseMode::FormPost => assert_eq!(answer.location(), None),
        }
        // The code is good whatever the mode.
        let code = answer.param("code").unwrap().to_owned();
        h.redeem(&code).await.unwrap();
    }
    // Errors travel the same way: `access_denied` as a form.
    let request = h
        .engine
        .check_authorization(&pairs(&[
            ("response_type", "code"),
            ("client_id", KEY),
            ("response_mode", "form_post"),
        ]))
        .await
        .unwrap();
    let denied = h.engine.deny(&request);
    assert_eq!(denied.mode, ResponseMode::FormPost);
    assert_eq!(denied.param("error"), Some("access_denied"));
    // A stage-2 error of a form_post request is a form too.
    match h
        .engine
        .check_authorization(&pairs(&[
            ("response_type", "code"),
            ("client_id", KEY),
            ("response_mode", "form_post"),
            ("scope", "admin"),
        ]))
        .await
    {
        Err(AuthorizeError::Redirect {
            response, error, ..
        }) => {
            assert_eq!(error.code, ErrorCode::InvalidScope);
            assert_eq!(response.mode, ResponseMode::FormPost);
            assert_eq!(response.param("error"), Some("invalid_scope"));
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn the_implicit_grant_never_answers_in_the_query() {
    let mut config = EngineConfig::default();
    config.grants.insecure_implicit = true;
    let h = harness_with(config).await;
    let mut client = h
        .engine
        .store()
        .find_client(crate::ports::ClientRef::Key(KEY))
        .await
        .unwrap()
        .unwrap();
    client.policy = ClientPolicy {
        insecure_implicit: true,
        ..client.policy
    };
    h.engine.store().upsert_client(&client).await.unwrap();
    let request = |mode: &'static str| {
        let query = pairs(&[
            ("response_type", "token"),
            ("client_id", KEY),
            ("response_mode", mode),
        ]);
        let engine = &h.engine;
        async move { engine.check_authorization(&query).await }
    };
    match request("query").await {
        Err(AuthorizeError::Redirect {
            response, error, ..
        }) => {
            assert_eq!(error.code, ErrorCode::InvalidRequest);
            // The error itself goes in the fragment, the default of a token.
            assert_eq!(response.mode, ResponseMode::Fragment);
        }
        other => panic!("{other:?}"),
    }
    let posted = request("form_post").await.unwrap();
    let answer = h.engine.approve(&h.user, &posted).await.unwrap();
    assert_eq!(answer.mode, ResponseMode::FormPost);
    assert!(answer.param("access_token").is_some());
}

#[tokio::test]
async fn a_pushed_request_is_the_whole_request_and_serves_once() {
    let h = harness().await;
    let pushed = push(&h, &PUSHED).await.unwrap();
    assert!(pushed.request_uri.starts_with(REQUEST_URI_PREFIX));
    assert_eq!(pushed.expires_in, 300);
    // The query's other parameters are ignored (RFC 9126 §4).
    let mut query = front(&pushed.request_uri);
    query.extend(pairs(&[("state", "front"), ("scope", "admin")]));
    let request = h.engine.check_authorization(&query).await.unwrap();
    assert_eq!(request.state.as_ref().unwrap().as_str(), "pushed-state");
    assert!(request.challenge.is_some());
    // It may be opened again while the user signs in and consents.
    h.engine
        .check_authorization(&front(&pushed.request_uri))
        .await
        .unwrap();
    let answer = h.engine.approve(&h.user, &request).await.unwrap();
    let code = answer.param("code").unwrap().to_owned();
    let tokens = h
        .token(&[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", CALLBACK),
            ("code_verifier", VERIFIER),
        ])
        .await
        .unwrap();
    assert!(h.token_works(&tokens.access_token).await);
    // Used: a second authorization from it gets `invalid_request_uri`, and no code.
    let again = h
        .engine
        .check_authorization(&front(&pushed.request_uri))
        .await
        .unwrap();
    let refused = h.engine.approve(&h.user, &again).await.unwrap();
    assert_eq!(refused.param("error"), Some("invalid_request_uri"));
    assert_eq!(refused.param("code"), None);
    assert_eq!(refused.param("state"), Some("pushed-state"));
}

#[tokio::test]
async fn a_pushed_request_expires_and_belongs_to_its_client() {
    let h = harness().await;
    let pushed = push(&h, &PUSHED).await.unwrap();
    // Another client's id in the query.
    let other = pairs(&[
        ("client_id", "other@clients"),
        ("request_uri", &pushed.request_uri),
    ]);
    assert!(matches!(
        show_reason(h.engine.check_authorization(&other).await),
        ShowReason::InvalidRequestUri(_)
    ));
    // Tampered with: one character changed.
    let mut tampered = pushed.request_uri.clone();
    let last = tampered.pop().unwrap();
    tampered.push(if last == 'A' { 'B' } else { 'A' });
    assert!(matches!(
        show_reason(h.engine.check_authorization(&front(&tampered)).await),
        ShowReason::InvalidRequestUri(_)
    ));
    // Made up.
    let made_up = format!("{REQUEST_URI_PREFIX}bm90LWEtcmVxdWVzdA");
    assert!(matches!(
        show_reason(h.engine.check_authorization(&front(&made_up)).await),
        ShowReason::InvalidRequestUri(_)
    ));
    // Expired.
    h.clock.advance(300);
    assert!(matches!(
        show_reason(
            h.engine
                .check_authorization(&front(&pushed.request_uri))
                .await
        ),
        ShowReason::InvalidRequestUri(_)
    ));
}

#[tokio::test]
async fn the_pushed_request_endpoint_checks_like_the_authorization_endpoint() {
    let h = harness().await;
    // Client authentication first (RFC 9126 §2).
    let wrong = h
        .engine
        .push_authorization_request(&basic_request(KEY, "wrong secret", &PUSHED))
        .await;
    assert_eq!(oauth_code(wrong), ErrorCode::InvalidClient);
    // Then the request, answered here, never redirected (§2.3).
    for (extra, expected) in [
        (("scope", "admin"), ErrorCode::InvalidScope),
        (
            ("response_type", "token"),
            ErrorCode::UnsupportedResponseType,
        ),
        (("request_uri", "urn:x"), ErrorCode::InvalidRequest),
        (
            ("redirect_uri", "https://evil.example/cb"),
            ErrorCode::InvalidRequest,
        ),
        (("response_mode", "query.jwt"), ErrorCode::InvalidRequest),
        (("client_id", "other@clients"), ErrorCode::InvalidRequest),
    ] {
        let mut params: Vec<(&str, &str)> = PUSHED
            .iter()
            .copied()
            .filter(|(n, _)| *n != extra.0)
            .collect();
        params.push(extra);
        assert_eq!(oauth_code(push(&h, &params).await), expected, "{extra:?}");
    }
}

#[tokio::test]
async fn a_client_that_must_push_gets_no_other_request() {
    let h = harness().await;
    let mut client = h
        .engine
        .store()
        .find_client(crate::ports::ClientRef::Key(KEY))
        .await
        .unwrap()
        .unwrap();
    client.policy.require_pushed_requests = true;
    h.engine.store().upsert_client(&client).await.unwrap();
    h.engine.forget(&crate::ports::Change::Client(client.id));
    let plain = pairs(&[
        ("response_type", "code"),
        ("client_id", KEY),
        ("redirect_uri", CALLBACK),
    ]);
    match h.engine.check_authorization(&plain).await {
        Err(AuthorizeError::Redirect { error, .. }) => {
            assert_eq!(error.code, ErrorCode::InvalidRequest);
            assert!(error.description.contains("RFC 9126"), "{error:?}");
        }
        other => panic!("{other:?}"),
    }
    let pushed = push(&h, &PUSHED).await.unwrap();
    h.engine
        .check_authorization(&front(&pushed.request_uri))
        .await
        .unwrap();

    // Server-wide, for every client.
    let h = harness_with(EngineConfig {
        require_pushed_requests: true,
        ..EngineConfig::default()
    })
    .await;
    assert!(matches!(
        h.engine.check_authorization(&plain).await,
        Err(AuthorizeError::Redirect { .. })
    ));
    assert_eq!(
        h.engine.metadata()["require_pushed_authorization_requests"],
        true
    );
}
