//! Staged rotation of the signing keys: published before signing, kept until the tokens they
//! signed expire.

use std::collections::HashMap;

use crate::EngineConfig;

use super::support::*;

#[tokio::test]
async fn staged_rotation_publishes_before_signing_and_keeps_until_expiry() {
    use crate::config::KeyPolicy;
    use crate::jose::SigningAlg;
    use crate::keys::KeyStage;
    let publish_delay = 100;
    let config = EngineConfig {
        keys: KeyPolicy {
            algorithms: vec![SigningAlg::Es256],
            publish_delay,
            rotation_period: 1000,
        },
        lifetimes: crate::Lifetimes {
            id_token: 50,
            access_token: 60,
            ..Default::default()
        },
        ..EngineConfig::default()
    };
    let h = harness_with(config).await;
    let signer = |h: &Harness| {
        let token = h
            .engine
            .sign_jws(SigningAlg::Es256, None, &serde_json::json!({"sub": "x"}))
            .unwrap();
        jsonwebtoken::decode_header(&token).unwrap().kid.unwrap()
    };
    let published = |h: &Harness| -> Vec<String> {
        h.engine
            .jwks()
            .keys
            .iter()
            .filter_map(|k| k.common.key_id.clone())
            .collect()
    };
    let first = signer(&h);
    assert_eq!(
        published(&h),
        std::slice::from_ref(&first),
        "first start: one key, signing"
    );

    // Walk 5000 s in 7 s steps with scheduled rotations and one on demand. At every step the
    // signing key has been published for the publish delay (except the very first), and a key
    // stays published for at least the longest token lifetime after its last signature.
    let mut first_seen: HashMap<String, i64> = HashMap::new();
    let mut first_signed: HashMap<String, i64> = HashMap::new();
    let mut last_signed: HashMap<String, i64> = HashMap::new();
    let mut last_published: HashMap<String, i64> = HashMap::new();
    let start = h.engine.now();
    for step in 0..715 {
        if step == 300 {
            let pending = h
                .engine
                .rotate_key(SigningAlg::Es256, &crate::audit::Actor::System)
                .await
                .unwrap();
            assert_eq!(pending.stage, KeyStage::Next);
        }
        h.engine.maintain_keys().await.unwrap();
        let now = h.engine.now();
        for kid in published(&h) {
            first_seen.entry(kid.clone()).or_insert(now);
            last_published.insert(kid, now);
        }
        let kid = signer(&h);
        first_signed.entry(kid.clone()).or_insert(now);
        last_signed.insert(kid, now);
        h.clock.advance(7);
    }
    assert!(first_signed.len() >= 5, "{first_signed:?}");
    for (kid, signed) in &first_signed {
        if *kid != first {
            assert!(
                signed - first_seen[kid] >= publish_delay - 7,
                "{kid} signed {} s after being published",
                signed - first_seen[kid]
            );
        }
    }
    let end = h.engine.now() - 7;
    for (kid, last) in &last_signed {
        if last_published[kid] < end {
            assert!(
                last_published[kid] - last >= 60,
                "{kid} removed {} s after its last signature",
                last_published[kid] - last
            );
        }
    }
    assert!(
        h.engine.jwks().keys.len() <= 3,
        "removed keys leave the JWKS"
    );
    assert!(start < end);
}

/// README, OpenID Connect choices: "An `id_token_hint` signed by a key removed since
/// (rotation) counts as no hint, at the authorization endpoint and at logout …; a hint with a
/// bad signature or claims is refused. An expired hint is accepted (RP-Initiated Logout §2)."
#[tokio::test]
async fn id_token_hints_of_a_removed_key_count_as_none_and_expired_ones_are_accepted_at_logout() {
    use crate::config::KeyPolicy;
    use crate::jose::SigningAlg;
    use crate::request::Interaction;
    use crate::testing;
    use crate::Error;

    let config = EngineConfig {
        keys: KeyPolicy {
            algorithms: vec![SigningAlg::Es256],
            publish_delay: 10,
            rotation_period: 100,
        },
        lifetimes: crate::Lifetimes {
            id_token: 30,
            access_token: 30,
            ..Default::default()
        },
        ..EngineConfig::default()
    };
    let h = harness_with(config).await;
    let mut spec = testing::client("rp@clients", "RP", CALLBACK, "rp-secret");
    spec.policy.post_logout_redirect_uris =
        vec![doorward_proto::RedirectUri::parse("http://localhost:8000/bye").unwrap()];
    h.engine.register_client(spec).await.unwrap();
    let logout = |hint: &str, client_id: Option<&str>| {
        let mut params = vec![
            ("id_token_hint".to_owned(), hint.to_owned()),
            (
                "post_logout_redirect_uri".to_owned(),
                "http://localhost:8000/bye".to_owned(),
            ),
        ];
        if let Some(id) = client_id {
            params.push(("client_id".to_owned(), id.to_owned()));
        }
        params
    };

    // An expired hint, its key still published: logout takes it, and its aud names the client.
    let code = h.code(&[("scope", "openid")]).await;
    let hint = h.redeem(&code).await.unwrap().id_token.unwrap();
    h.clock.advance(3600);
    let ended = h
        .engine
        .check_end_session(&[("id_token_hint".to_owned(), hint.clone())])
        .await
        .expect("an expired hint is accepted at logout");
    assert_eq!(
        ended.client.map(|c| c.key),
        Some(KEY.to_owned()),
        "its aud names the client"
    );
    let mut forged = hint.clone();
    forged.replace_range(forged.len() - 4.., "AAAA");
    assert!(matches!(
        h.engine
            .check_end_session(&[("id_token_hint".to_owned(), forged.clone())])
            .await,
        Err(Error::EndSession(_))
    ));

    // Rotate until the key that signed `hint` is gone from the JWKS.
    let kid = jsonwebtoken::decode_header(&hint).unwrap().kid.unwrap();
    let published = |h: &Harness| {
        h.engine
            .jwks()
            .keys
            .iter()
            .any(|k| k.common.key_id.as_deref() == Some(kid.as_str()))
    };
    for _ in 0..50 {
        if !published(&h) {
            break;
        }
        h.clock.advance(60);
        h.engine.maintain_keys().await.unwrap();
    }
    assert!(!published(&h), "the signing key was removed");

    // At logout: no hint, so a post_logout_redirect_uri needs client_id.
    let no_client = h.engine.check_end_session(&logout(&hint, None)).await;
    assert!(
        matches!(
            no_client,
            Err(Error::EndSession(crate::error::EndSessionError::NoClient))
        ),
        "{no_client:?}"
    );
    let ended = h
        .engine
        .check_end_session(&logout(&hint, Some("rp@clients")))
        .await
        .expect("the removed key's hint is ignored, and the rp's URI is registered");
    assert!(ended.redirect.is_some());

    // At the authorization endpoint: no hint either; the signed-in user gets a code, even
    // with prompt=none (a hint still checked would have been compared with the user).
    let query = pairs(&[
        ("response_type", "code"),
        ("client_id", KEY),
        ("redirect_uri", CALLBACK),
        ("scope", "openid"),
        ("prompt", "none"),
        ("id_token_hint", &hint),
    ]);
    let request = h.engine.check_authorization(&query).await.unwrap();
    match h.engine.proceed(&request, Some(&h.user)).await.unwrap() {
        Interaction::Redirect(to) => assert!(query_param(&to, "code").is_some(), "{to:?}"),
        other => panic!("expected a code, got {other:?}"),
    }
}

/// With a key-encryption secret configured, a private key or server secret stored in the clear
/// is never used: an engine refuses to start on it, a key planted while it runs is left out
/// of the ring (a token signed with it does not verify), and `seal_stored_keys` (`doorward keys
/// seal`) seals the rows written before the secret was set, once.
#[tokio::test]
async fn plaintext_keys_are_never_used_once_a_secret_is_configured() {
    use std::sync::Arc;

    use doorward_proto::Secret;

    use crate::clock::Random;
    use crate::config::KeyPolicy;
    use crate::jose::{generate_der, public_jwk, Sealer, SigningAlg};
    use crate::keys::{seal_stored_keys, SealReport};
    use crate::memory::MemoryStore;
    use crate::model::SigningKeyRecord;
    use crate::passwords::HashCost;
    use crate::ports::SharedStore;
    use crate::testing::{FixedClock, SeqRandom};
    use crate::Engine;

    let store: SharedStore = Arc::new(MemoryStore::default());
    let clock = Arc::new(FixedClock::new(1_800_000_000));
    let random: Arc<dyn Random> = Arc::new(SeqRandom::default());
    let config = |secret: Option<&str>| EngineConfig {
        hash_cost: HashCost::InsecureFastForTests,
        keys: KeyPolicy {
            algorithms: vec![SigningAlg::Es256],
            ..KeyPolicy::default()
        },
        key_encryption_secret: secret.map(Secret::new),
        ..EngineConfig::default()
    };
    let engine = |secret: Option<&'static str>| {
        Engine::new(store.clone(), clock.clone(), random.clone(), config(secret))
    };
    // Written before encryption: in the clear.
    engine(None).await.unwrap();
    let err = engine(Some("a long enough secret")).await.err().unwrap();
    let mut chain = err.to_string();
    let mut source = std::error::Error::source(&err);
    while let Some(e) = source {
        chain += &format!(": {e}");
        source = e.source();
    }
    assert!(chain.contains("doorward keys seal"), "{chain}");

    let report = seal_stored_keys(store.as_ref(), "a long enough secret", random.as_ref())
        .await
        .unwrap();
    assert_eq!(
        report,
        SealReport {
            keys: 1,
            secrets: 1,
            already_sealed: 0
        }
    );
    let again = seal_stored_keys(store.as_ref(), "a long enough secret", random.as_ref())
        .await
        .unwrap();
    assert_eq!(again.keys + again.secrets, 0, "sealed once");
    assert!(
        seal_stored_keys(store.as_ref(), "another secret, wrong", random.as_ref())
            .await
            .is_err()
    );
    let sealed = engine(Some("a long enough secret")).await.unwrap();

    // Someone with write access plants a key in the clear, of a later generation, active.
    let der = generate_der(SigningAlg::Es256, random.as_ref());
    let jwk = public_jwk(SigningAlg::Es256, &der).unwrap();
    let kid = jwk.common.key_id.clone().unwrap();
    store
        .insert_signing_key(&SigningKeyRecord {
            private_key: Sealer::new(None).seal(&kid, &der, random.as_ref()),
            public_jwk: serde_json::to_string(&jwk).unwrap(),
            kid: kid.clone(),
            alg: SigningAlg::Es256,
            generation: 99,
            created_at: sealed.now() - 10,
            activate_at: sealed.now() - 10,
            remove_at: None,
        })
        .await
        .unwrap();
    assert!(sealed.maintain_keys().await.is_err(), "reported");
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::ES256);
    header.kid = Some(kid.clone());
    let forged = jsonwebtoken::encode(
        &header,
        &serde_json::json!({"iss": sealed.config().issuer, "sub": "x", "exp": sealed.now() + 60}),
        &crate::jose::encoding_key(SigningAlg::Es256, &der),
    )
    .unwrap();
    assert_eq!(
        sealed
            .verify_own_jws::<serde_json::Value>(&forged, false)
            .unwrap_err(),
        crate::jose::JwsError::UnknownKey
    );
    assert!(sealed
        .jwks()
        .keys
        .iter()
        .all(|k| k.common.key_id.as_deref() != Some(&kid)));
    let signed = sealed
        .sign_jws(SigningAlg::Es256, None, &serde_json::json!({"sub": "x"}))
        .unwrap();
    assert_ne!(
        jsonwebtoken::decode_header(&signed).unwrap().kid.unwrap(),
        kid,
        "the planted key never signs"
    );
    assert!(
        engine(Some("a long enough secret")).await.is_err(),
        "nor at start"
    );
}
