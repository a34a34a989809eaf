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
