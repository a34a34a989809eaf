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
            let pending = h.engine.rotate_key(SigningAlg::Es256).await.unwrap();
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
