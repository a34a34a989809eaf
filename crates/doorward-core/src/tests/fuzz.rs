//! Bounded fuzzing of JWS parsing (`jose.rs` through `Engine::verify_own_jws`): real ID tokens
//! of each key with their header, claims, signature or shape edited. Nothing may panic, and a
//! token whose signed part was changed must never verify. The HTTP parsers are fuzzed through
//! the router in doorward-axum's tests.
//!
//! `DOORWARD_FUZZ_SCALE=20` runs twenty times the default cases (README, "Run every test").

use std::time::Instant;

use proptest::prelude::*;
use proptest::test_runner::Config;
use serde_json::{json, Value};

use super::support::*;
use crate::testkit::fuzz::{cases, jwt_edit, mutate_jwt};

/// `x.y.z` → `x.y`: what the signature covers.
fn signed_part(token: &str) -> &str {
    token.rsplit_once('.').map_or(token, |(signed, _)| signed)
}

#[test]
fn edited_id_tokens_never_panic_and_never_verify() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    // ID tokens of every key: RS256 (the default), ES256 (the first algorithm), EdDSA, Ed25519.
    let config = crate::EngineConfig {
        keys: crate::config::KeyPolicy {
            algorithms: vec![
                crate::jose::SigningAlg::Es256,
                crate::jose::SigningAlg::Rs256,
                crate::jose::SigningAlg::EdDsa,
                // Signed and verified by Doorward's own code, not the JWS library's.
                crate::jose::SigningAlg::Ed25519,
            ],
            ..Default::default()
        },
        ..Default::default()
    };
    let (h, tokens) = rt.block_on(async {
        let h = harness_with(config).await;
        let code = h.code(&[("scope", "openid profile"), ("nonce", "n")]).await;
        let tokens = h.redeem(&code).await.unwrap();
        (h, tokens)
    });
    let rs256 = tokens.id_token.unwrap();
    let signed = |alg| {
        let claims = h.engine.verify_own_jws::<Value>(&rs256, false).unwrap();
        h.engine.sign_jws(alg, None, &claims).unwrap()
    };
    let originals = vec![
        rs256.clone(),
        signed(crate::jose::SigningAlg::Es256),
        signed(crate::jose::SigningAlg::EdDsa),
        signed(crate::jose::SigningAlg::Ed25519),
        h.engine
            .sign_jws(
                crate::jose::SigningAlg::Es256,
                Some("at+jwt"),
                &json!({"sub": "x"}),
            )
            .unwrap(),
    ];
    let kids: Vec<String> = h
        .engine
        .jwks()
        .keys
        .iter()
        .filter_map(|k| k.common.key_id.clone())
        .collect();

    let count = cases(3000);
    let strategy = (
        0..originals.len(),
        proptest::collection::vec(jwt_edit(kids), 1..4),
    );
    let mut runner = crate::testkit::fuzz::runner(Config {
        cases: count,
        failure_persistence: None,
        ..Config::default()
    });
    let started = Instant::now();
    let mut verified = std::cell::Cell::new(0u32);
    runner
        .run(&strategy, |(i, edits)| {
            let original = &originals[i];
            let token = mutate_jwt(original, &originals, &edits);
            for allow_expired in [false, true] {
                if h.engine
                    .verify_own_jws::<Value>(&token, allow_expired)
                    .is_ok()
                {
                    verified.set(verified.get() + 1);
                    prop_assert_eq!(
                        signed_part(&token),
                        signed_part(original),
                        "an edited token verified: {}",
                        token
                    );
                }
            }
            Ok(())
        })
        .unwrap();
    eprintln!(
        "fuzz JWS: {count} cases in {:.1} s ({} unchanged tokens verified)",
        started.elapsed().as_secs_f64(),
        verified.get_mut()
    );
}
