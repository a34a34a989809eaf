//! The device authorization grant (RFC 8628): the endpoint, the user code, polling with its
//! errors, the user's answer, and single use.

use std::collections::HashMap;

use doorward_proto::{ErrorCode, Secret};

use super::support::*;
use crate::device::{normalize_user_code, DeviceLookup, DEVICE_CODE_GRANT};
use crate::model::{AuthMethod, GrantType};
use crate::request::TokenRequest;
use crate::{EngineConfig, Error};

const TV: &str = "tv@clients";

async fn device_harness() -> Harness {
    let mut config = EngineConfig::default();
    config.grants.device_code = true;
    let h = harness_with(config).await;
    let mut spec = crate::testing::client(TV, "TV app", "http://localhost:8002/cb", "unused");
    spec.policy.auth_method = Some(AuthMethod::None);
    spec.policy.grant_types = Some(vec![GrantType::DeviceCode, GrantType::RefreshToken]);
    h.engine.register_client(spec).await.unwrap();
    h
}

/// A public client's request: `client_id` in the body.
fn public(params: &[(&str, &str)]) -> TokenRequest {
    TokenRequest {
        resources: Vec::new(),
        params: params
            .iter()
            .chain(&[("client_id", TV)])
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect::<HashMap<_, _>>(),
        basic: None,
        client_address: None,
        dpop: Default::default(),
    }
}

async fn poll(h: &Harness, device_code: &str) -> Result<doorward_proto::TokenResponse, Error> {
    h.engine
        .token(&public(&[
            ("grant_type", DEVICE_CODE_GRANT),
            ("device_code", device_code),
        ]))
        .await
}

#[tokio::test]
async fn a_device_polls_until_its_user_approves_then_gets_tokens_once() {
    let h = device_harness().await;
    let grant = h
        .engine
        .device_authorization(&public(&[("scope", "openid base")]))
        .await
        .unwrap();
    assert!(grant.device_code.starts_with("dwdc_"));
    assert_eq!(grant.user_code.len(), 9);
    assert_eq!(&grant.user_code[4..5], "-");
    assert_eq!(grant.verification_uri, "http://localhost/device");
    assert_eq!(
        grant.verification_uri_complete,
        format!("http://localhost/device?user_code={}", grant.user_code)
    );
    assert_eq!((grant.expires_in, grant.interval), (600, 5));

    // Not answered: pending; too soon again: slow_down; after the interval: pending.
    assert_eq!(
        code_of(poll(&h, &grant.device_code).await),
        ErrorCode::AuthorizationPending
    );
    h.clock.advance(2);
    assert_eq!(
        code_of(poll(&h, &grant.device_code).await),
        ErrorCode::SlowDown
    );
    h.clock.advance(5);
    assert_eq!(
        code_of(poll(&h, &grant.device_code).await),
        ErrorCode::AuthorizationPending
    );

    // The user types it in lower case with a space; it is found.
    let typed = grant.user_code.to_lowercase().replace('-', " ");
    match h.engine.find_device(&typed, &h.user, None).await.unwrap() {
        DeviceLookup::Pending { client, device } => {
            assert_eq!(client.key, TV);
            assert_eq!(device.scopes.to_string(), "base openid");
        }
        other => panic!("{other:?}"),
    }
    assert!(h
        .engine
        .settle_device(&h.user, &typed, true, None)
        .await
        .unwrap());
    assert!(
        !h.engine
            .settle_device(&h.user, &typed, false, None)
            .await
            .unwrap(),
        "answered once"
    );

    h.clock.advance(5);
    let tokens = poll(&h, &grant.device_code).await.unwrap();
    assert!(h.token_works(&tokens.access_token).await);
    assert!(tokens.refresh_token.is_some());
    assert!(tokens.id_token.is_some(), "openid was granted");
    // Once.
    h.clock.advance(5);
    assert_eq!(
        code_of(poll(&h, &grant.device_code).await),
        ErrorCode::InvalidGrant
    );
    // The grant is listed on the account like any other.
    let apps = h.engine.approved_clients(h.user.user.id).await.unwrap();
    assert!(apps.iter().any(|(_, c)| c.key == TV));
}

#[tokio::test]
async fn a_denied_or_expired_device_gets_no_tokens() {
    let h = device_harness().await;
    let denied = h.engine.device_authorization(&public(&[])).await.unwrap();
    assert!(h
        .engine
        .settle_device(&h.user, &denied.user_code, false, None)
        .await
        .unwrap());
    assert_eq!(
        code_of(poll(&h, &denied.device_code).await),
        ErrorCode::AccessDenied
    );

    let late = h.engine.device_authorization(&public(&[])).await.unwrap();
    h.clock.advance(600);
    assert_eq!(
        code_of(poll(&h, &late.device_code).await),
        ErrorCode::ExpiredToken
    );
    assert!(matches!(
        h.engine
            .find_device(&late.user_code, &h.user, None)
            .await
            .unwrap(),
        DeviceLookup::Unknown
    ));
    assert!(!h
        .engine
        .settle_device(&h.user, &late.user_code, true, None)
        .await
        .unwrap());

    // Another client cannot poll it; nonsense is invalid_grant.
    let other = h.engine.device_authorization(&public(&[])).await.unwrap();
    let by_other = h
        .token(&[
            ("grant_type", DEVICE_CODE_GRANT),
            ("device_code", &other.device_code),
        ])
        .await;
    assert_eq!(
        code_of(by_other),
        ErrorCode::UnauthorizedClient,
        "python_client may not use it"
    );
    assert_eq!(
        code_of(poll(&h, "dwdc_nothing").await),
        ErrorCode::InvalidGrant
    );
    assert_eq!(
        code_of(
            h.engine
                .token(&public(&[("grant_type", DEVICE_CODE_GRANT)]))
                .await
        ),
        ErrorCode::InvalidRequest
    );
}

#[tokio::test]
async fn only_clients_that_name_the_grant_use_it_and_guessing_is_throttled() {
    let h = device_harness().await;
    // python_client names no grant types: authorization_code and refresh_token only.
    let refused = h
        .engine
        .device_authorization(&basic_request(KEY, SECRET, &[]))
        .await;
    match refused {
        Err(Error::OAuth(e)) => assert_eq!(e.code, ErrorCode::UnauthorizedClient),
        other => panic!("{other:?}"),
    }
    match h
        .engine
        .device_authorization(&public(&[("scope", "admin")]))
        .await
    {
        Err(Error::OAuth(e)) => assert_eq!(e.code, ErrorCode::InvalidScope),
        other => panic!("{other:?}"),
    }

    // Guessing counts against the user and the address, answers included (an answer to a code
    // that is not waiting tells a guesser as much as a lookup).
    let from = Some("192.0.2.7".parse().unwrap());
    for i in 0..10 {
        if i % 2 == 0 {
            assert!(matches!(
                h.engine
                    .find_device("BBBB-BBBB", &h.user, from)
                    .await
                    .unwrap(),
                DeviceLookup::Unknown
            ));
        } else {
            assert!(!h
                .engine
                .settle_device(&h.user, "BBBB-BBBB", true, from)
                .await
                .unwrap());
        }
    }
    assert!(matches!(
        h.engine.find_device("BBBB-BBBB", &h.user, from).await,
        Err(Error::Throttled(_))
    ));
    assert!(matches!(
        h.engine
            .settle_device(&h.user, "BBBB-BBBB", false, from)
            .await,
        Err(Error::Throttled(_))
    ));
    // The same user from another address is held back too; another user from it is not.
    let elsewhere = Some("198.51.100.9".parse().unwrap());
    assert!(matches!(
        h.engine.find_device("BBBB-BBBB", &h.user, elsewhere).await,
        Err(Error::Throttled(_))
    ));
    h.engine
        .seed_user(&crate::testing::user("bob", "Bob", "pw2"))
        .await
        .unwrap();
    let (_, bob) = h
        .engine
        .sign_in("bob", &Secret::new("pw2"), None)
        .await
        .unwrap();
    assert!(h
        .engine
        .find_device("BBBB-BBBB", &bob, elsewhere)
        .await
        .is_ok());
}

#[test]
fn user_codes_are_read_as_people_type_them() {
    assert_eq!(
        normalize_user_code("bcdf-ghjk").as_deref(),
        Some("BCDFGHJK")
    );
    assert_eq!(
        normalize_user_code(" BCDF GHJK ").as_deref(),
        Some("BCDFGHJK")
    );
    assert_eq!(normalize_user_code("BCDFGHJ"), None, "7 letters");
    assert_eq!(
        normalize_user_code("BCDFGHJA"),
        None,
        "a vowel is no code letter"
    );
    assert_eq!(normalize_user_code("BCDFGHJ1"), None);
    assert_eq!(
        normalize_user_code("ＢCDFGHJK"),
        None,
        "no full-width letters"
    );
}

#[tokio::test]
async fn a_device_code_is_never_redeemed_as_an_authorization_code() {
    let h = device_harness().await;
    const BOTH: &str = "both@clients";
    let mut spec = crate::testing::client(BOTH, "Both", "http://localhost:8003/cb", "both_secret");
    spec.policy.grant_types = Some(vec![GrantType::AuthorizationCode, GrantType::DeviceCode]);
    h.engine.register_client(spec).await.unwrap();
    let basic = |params: &[(&str, &str)]| basic_request(BOTH, "both_secret", params);
    let grant = h.engine.device_authorization(&basic(&[])).await.unwrap();
    assert!(h
        .engine
        .settle_device(&h.user, &grant.user_code, true, None)
        .await
        .unwrap());
    let as_code = h
        .engine
        .token(&basic(&[
            ("grant_type", "authorization_code"),
            ("code", &grant.device_code),
            ("redirect_uri", crate::model::DEVICE_REDIRECT),
        ]))
        .await;
    assert_eq!(code_of(as_code), ErrorCode::InvalidGrant);
    // Still good for the device.
    let tokens = h
        .engine
        .token(&basic(&[
            ("grant_type", DEVICE_CODE_GRANT),
            ("device_code", &grant.device_code),
        ]))
        .await
        .unwrap();
    assert!(h.token_works(&tokens.access_token).await);
}
