//! Authorization requests (RFC 6749 §4.1.1): which errors are shown and which go back to the
//! client, and consent that is remembered until the user revokes it.

use doorward_proto::ErrorCode;

use crate::authorize::ConsentDecision;
use crate::request::{AuthorizeError, ShowReason};

use super::support::*;

#[tokio::test]
async fn authorization_errors_are_shown_or_redirected() {
    let h = harness().await;
    let show = |query: &[(&str, &str)]| {
        let query = pairs(query);
        let engine = &h.engine;
        async move {
            match engine.check_authorization(&query).await {
                Err(AuthorizeError::Show(reason)) => reason,
                other => panic!("{other:?}"),
            }
        }
    };
    assert_eq!(
        show(&[("response_type", "code")]).await,
        ShowReason::MissingClientId
    );
    assert_eq!(
        show(&[("client_id", "nope@clients")]).await,
        ShowReason::UnknownClient
    );
    assert_eq!(
        show(&[("client_id", KEY), ("redirect_uri", "http://evil/cb")]).await,
        ShowReason::MismatchingRedirectUri
    );
    assert_eq!(
        show(&[
            ("client_id", KEY),
            ("redirect_uri", "http://localhost:8000/oauth/callback/")
        ])
        .await,
        ShowReason::MismatchingRedirectUri
    );
    assert_eq!(
        show(&[("client_id", KEY), ("client_id", KEY)]).await,
        ShowReason::RepeatedParameter
    );

    let redirect = |query: &[(&str, &str)]| {
        let query = pairs(query);
        let engine = &h.engine;
        async move {
            match engine.check_authorization(&query).await {
                Err(AuthorizeError::Redirect {
                    error,
                    state,
                    redirect_uri,
                    ..
                }) => {
                    assert_eq!(redirect_uri.as_str(), CALLBACK);
                    (error.code, state.map(|s| s.as_str().to_owned()))
                }
                other => panic!("{other:?}"),
            }
        }
    };
    assert_eq!(
        redirect(&[("client_id", KEY), ("state", "x")]).await,
        (ErrorCode::InvalidRequest, Some("x".into()))
    );
    assert_eq!(
        redirect(&[("client_id", KEY), ("response_type", "token")]).await,
        (ErrorCode::UnsupportedResponseType, None)
    );
    assert_eq!(
        redirect(&[
            ("client_id", KEY),
            ("response_type", "code"),
            ("scope", "openid admin")
        ])
        .await,
        (ErrorCode::InvalidScope, None)
    );
    assert_eq!(
        redirect(&[
            ("client_id", KEY),
            ("response_type", "code"),
            ("state", "a"),
            ("state", "b")
        ])
        .await,
        (ErrorCode::InvalidRequest, Some("a".into()))
    );
}

#[tokio::test]
async fn consent_is_remembered_and_revocable() {
    let h = harness().await;
    let query = pairs(&[("response_type", "code"), ("client_id", KEY)]);
    let request = h.engine.check_authorization(&query).await.unwrap();
    assert!(matches!(
        h.engine.decide(&h.user, &request).await.unwrap(),
        ConsentDecision::AskConsent
    ));
    let location = h.engine.approve(&h.user, &request).await.unwrap();
    let tokens = h
        .redeem(&query_param(&location, "code").unwrap())
        .await
        .unwrap();
    assert!(matches!(
        h.engine.decide(&h.user, &request).await.unwrap(),
        ConsentDecision::Redirect(_)
    ));

    let apps = h.engine.approved_clients(h.user.user.id).await.unwrap();
    assert_eq!(apps.len(), 1);
    h.engine
        .revoke_client(h.user.user.id, request.client.id)
        .await
        .unwrap();
    assert!(matches!(
        h.engine.decide(&h.user, &request).await.unwrap(),
        ConsentDecision::AskConsent
    ));
    assert!(!h.token_works(&tokens.access_token).await);
}
