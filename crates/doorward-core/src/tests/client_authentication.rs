//! Client authentication at the token endpoint (RFC 6749 §2.3): Basic, form parameters, and
//! what is refused.

use doorward_proto::{ErrorCode, Secret, TokenResponse};

use crate::request::{BasicCredentials, TokenRequest};
use crate::{Engine, Error};

use super::support::*;

#[tokio::test]
async fn client_authentication_methods() {
    let h = harness().await;
    let request = |params: &[(&str, &str)], basic: Option<(&str, &str)>| TokenRequest {
        params: params
            .iter()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect(),
        basic: basic.map(|(id, secret)| BasicCredentials {
            id: id.into(),
            secret: Secret::new(secret),
        }),
    };
    let grant = ("grant_type", "password");
    let outcome = |r: Result<TokenResponse, Error>| code_of(r);
    // Authenticated, then the grant type is refused: authentication passed.
    let ok_basic = h
        .engine
        .token(&request(&[grant], Some((KEY, SECRET))))
        .await;
    assert_eq!(outcome(ok_basic), ErrorCode::UnsupportedGrantType);
    let encoded = h
        .engine
        .token(&request(
            &[grant],
            Some(("python_client%40clients", "dev_secret")),
        ))
        .await;
    assert_eq!(outcome(encoded), ErrorCode::UnsupportedGrantType);
    let post = h
        .engine
        .token(&request(
            &[grant, ("client_id", KEY), ("client_secret", SECRET)],
            None,
        ))
        .await;
    assert_eq!(outcome(post), ErrorCode::UnsupportedGrantType);
    let by_id = Engine::client_id_for_key(KEY).to_string();
    let uuid = h
        .engine
        .token(&request(&[grant], Some((&by_id, SECRET))))
        .await;
    assert_eq!(outcome(uuid), ErrorCode::UnsupportedGrantType);

    let wrong = h
        .engine
        .token(&request(&[grant], Some((KEY, "nope"))))
        .await;
    assert_eq!(outcome(wrong), ErrorCode::InvalidClient);
    // Wrong again once the right secret is cached: still refused.
    let wrong = h
        .engine
        .token(&request(&[grant], Some((KEY, "nope"))))
        .await;
    assert_eq!(outcome(wrong), ErrorCode::InvalidClient);
    let unknown = h
        .engine
        .token(&request(&[grant], Some(("nope@clients", SECRET))))
        .await;
    assert_eq!(outcome(unknown), ErrorCode::InvalidClient);
    let none = h.engine.token(&request(&[grant], None)).await;
    assert_eq!(outcome(none), ErrorCode::InvalidClient);
    let both = h
        .engine
        .token(&request(
            &[grant, ("client_secret", SECRET)],
            Some((KEY, SECRET)),
        ))
        .await;
    assert_eq!(outcome(both), ErrorCode::InvalidRequest);
    let mismatch = h
        .engine
        .token(&request(
            &[grant, ("client_id", "other@clients")],
            Some((KEY, SECRET)),
        ))
        .await;
    assert_eq!(outcome(mismatch), ErrorCode::InvalidRequest);
    let missing_grant = h.engine.token(&request(&[], Some((KEY, SECRET)))).await;
    assert_eq!(outcome(missing_grant), ErrorCode::InvalidRequest);
}
