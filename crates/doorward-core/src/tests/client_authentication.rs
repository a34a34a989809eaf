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
        resources: Vec::new(),
        params: params
            .iter()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect(),
        basic: basic.map(|(id, secret)| BasicCredentials {
            id: id.into(),
            secret: Secret::new(secret),
        }),
        client_address: None,
        dpop: Default::default(),
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

/// README: "A client registered with `token_endpoint_auth_method` must use that method (at
/// the token, introspection and revocation endpoints)."
#[tokio::test]
async fn a_registered_auth_method_is_the_only_one_accepted() {
    use crate::model::AuthMethod;
    use crate::testing;

    let h = harness().await;
    for (name, method) in [
        ("basic_only", AuthMethod::ClientSecretBasic),
        ("post_only", AuthMethod::ClientSecretPost),
    ] {
        let mut spec = testing::client(&format!("{name}@clients"), name, CALLBACK, "s3cret");
        spec.policy.auth_method = Some(method);
        h.engine.register_client(spec).await.unwrap();
    }
    let request = |key: &str, basic: bool, params: &[(&str, &str)]| {
        let mut params: std::collections::HashMap<String, String> = params
            .iter()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect();
        if !basic {
            params.insert("client_id".into(), key.into());
            params.insert("client_secret".into(), "s3cret".into());
        }
        TokenRequest {
            resources: Vec::new(),
            params,
            basic: basic.then(|| BasicCredentials {
                id: key.into(),
                secret: Secret::new("s3cret"),
            }),
            client_address: None,
            dpop: Default::default(),
        }
    };
    let token = [("grant_type", "password")];
    let introspect = [("token", "dwat_unknown")];
    for (key, right) in [("basic_only@clients", true), ("post_only@clients", false)] {
        // The registered method authenticates (the password grant is off: the next refusal).
        let ok = h.engine.token(&request(key, right, &token)).await;
        assert_eq!(code_of(ok), ErrorCode::UnsupportedGrantType, "{key}");
        assert!(h
            .engine
            .introspect(&request(key, right, &introspect))
            .await
            .is_ok());
        assert!(h
            .engine
            .revoke(&request(key, right, &introspect))
            .await
            .is_ok());
        // The other method, with the right secret, is invalid_client everywhere.
        let wrong = h.engine.token(&request(key, !right, &token)).await;
        assert_eq!(code_of(wrong), ErrorCode::InvalidClient, "{key}");
        for result in [
            h.engine
                .introspect(&request(key, !right, &introspect))
                .await
                .map(|_| ()),
            h.engine.revoke(&request(key, !right, &introspect)).await,
        ] {
            match result {
                Err(Error::OAuth(e)) => assert_eq!(e.code, ErrorCode::InvalidClient, "{key}"),
                other => panic!("{key}: expected invalid_client, got {other:?}"),
            }
        }
    }
}

/// RFC 6749 §10.10: wrong secrets are counted per client, also once the right secret is cached
/// (where a guess costs no Argon2), and past the limit every request of the client is refused
/// before its secret is looked at, for a while; another client is not affected.
#[tokio::test]
async fn wrong_client_secrets_are_throttled_per_client() {
    use crate::throttle::{Throttled, CLIENT};
    let h = harness().await;
    let introspect = |id: &str, secret: &str| TokenRequest {
        resources: Vec::new(),
        params: [("token".to_owned(), "dwat_x".to_owned())]
            .into_iter()
            .collect(),
        basic: Some(BasicCredentials {
            id: id.into(),
            secret: Secret::new(secret),
        }),
        client_address: None,
        dpop: Default::default(),
    };
    // The right secret, cached.
    h.engine.introspect(&introspect(KEY, SECRET)).await.unwrap();
    for _ in 0..CLIENT.free {
        let wrong = h.engine.introspect(&introspect(KEY, "guess")).await;
        assert!(matches!(wrong, Err(Error::OAuth(e)) if e.code == ErrorCode::InvalidClient));
    }
    for secret in ["guess", SECRET] {
        match h.engine.introspect(&introspect(KEY, secret)).await {
            Err(Error::Throttled(Throttled { retry_after })) => assert_eq!(retry_after, 10),
            other => panic!("expected the client to be throttled, got {other:?}"),
        }
    }
    h.engine
        .introspect(&introspect("other@clients", "other_secret"))
        .await
        .expect("another client is not throttled");
    h.clock.advance(10);
    h.engine
        .introspect(&introspect(KEY, SECRET))
        .await
        .expect("the lock is over");
    // The client's own success does not clear the count (a busy client would otherwise give a
    // guesser ten new tries after each of its requests): one more wrong guess locks for 20 s.
    assert!(h
        .engine
        .introspect(&introspect(KEY, "guess"))
        .await
        .is_err());
    match h.engine.introspect(&introspect(KEY, SECRET)).await {
        Err(Error::Throttled(Throttled { retry_after })) => assert_eq!(retry_after, 20),
        other => panic!("expected the lock to double, got {other:?}"),
    }
}
