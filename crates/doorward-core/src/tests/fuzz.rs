//! Bounded fuzzing of JWS parsing (`jose.rs` through `Engine::verify_own_jws`): real ID tokens
//! of each key with their header, claims, signature or shape edited. Nothing may panic, and a
//! token whose signed part was changed must never verify. The HTTP parsers are fuzzed through
//! the router in doorward-axum's tests.
//!
//! `DOORWARD_FUZZ_SCALE=20` runs twenty times the default cases (README, "Run every test").

use std::time::Instant;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use serde_json::{json, Value};

use super::support::*;

fn cases(default: u32) -> u32 {
    let scale = std::env::var("DOORWARD_FUZZ_SCALE")
        .ok()
        .and_then(|s| s.parse::<u32>().ok())
        .unwrap_or(1);
    default.saturating_mul(scale.max(1))
}

fn json_value() -> BoxedStrategy<Value> {
    prop_oneof![
        any::<String>().prop_map(Value::String),
        "[ -~]{0,12}".prop_map(Value::String),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(|f| json!(f)),
        Just(json!(u64::MAX)),
        Just(json!(-1e300)),
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        proptest::collection::vec("[ -~]{0,6}", 0..3).prop_map(|v| json!(v)),
        Just(json!({"nested": [1, {"a": null}]})),
    ]
    .boxed()
}

#[derive(Debug, Clone)]
enum Edit {
    HeaderMember(&'static str, Option<Value>),
    Header(Value),
    Claim(&'static str, Option<Value>),
    Claims(Value),
    Signature(Vec<u8>),
    Part(usize, String),
    Segments(usize),
    /// Swaps the signature of another real token in.
    OtherSignature(usize),
}

fn edit(kids: Vec<String>) -> BoxedStrategy<Edit> {
    let alg = prop_oneof![
        Just(json!("none")),
        Just(json!("HS256")),
        Just(json!("RS256")),
        Just(json!("ES256")),
        Just(json!("EdDSA")),
        Just(json!("ES384")),
        Just(json!("PS256")),
        json_value(),
    ];
    let kid = prop_oneof![
        proptest::sample::select(kids).prop_map(Value::String),
        json_value()
    ];
    let member = prop_oneof![
        Just("typ"),
        Just("crit"),
        Just("jwk"),
        Just("x5c"),
        Just("cty")
    ];
    let claim = prop_oneof![
        Just("iss"),
        Just("sub"),
        Just("aud"),
        Just("exp"),
        Just("iat"),
        Just("nbf"),
        Just("nonce"),
        Just("auth_time"),
    ];
    prop_oneof![
        proptest::option::of(alg).prop_map(|a| Edit::HeaderMember("alg", a)),
        proptest::option::of(kid).prop_map(|k| Edit::HeaderMember("kid", k)),
        (member, proptest::option::of(json_value())).prop_map(|(m, v)| Edit::HeaderMember(m, v)),
        json_value().prop_map(Edit::Header),
        (claim, proptest::option::of(json_value())).prop_map(|(c, v)| Edit::Claim(c, v)),
        json_value().prop_map(Edit::Claims),
        proptest::collection::vec(any::<u8>(), 0..600).prop_map(Edit::Signature),
        (0usize..3, any::<String>()).prop_map(|(i, s)| Edit::Part(i, s)),
        (0usize..3, "[A-Za-z0-9_=+/.-]{0,40}").prop_map(|(i, s)| Edit::Part(i, s)),
        (0usize..6).prop_map(Edit::Segments),
        any::<usize>().prop_map(Edit::OtherSignature),
    ]
    .boxed()
}

fn apply(token: &str, others: &[String], edits: &[Edit]) -> String {
    let mut parts: Vec<String> = token.split('.').map(str::to_owned).collect();
    let decode = |part: &str| -> Value {
        URL_SAFE_NO_PAD
            .decode(part)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or(Value::Null)
    };
    let encode = |value: &Value| URL_SAFE_NO_PAD.encode(value.to_string());
    let set = |part: &mut String, name: &str, value: &Option<Value>| {
        let mut object = decode(part);
        if let Some(map) = object.as_object_mut() {
            match value {
                Some(v) => map.insert(name.to_owned(), v.clone()),
                None => map.remove(name),
            };
        }
        *part = encode(&object);
    };
    for edit in edits {
        while parts.len() < 3 {
            parts.push(String::new());
        }
        match edit {
            Edit::HeaderMember(name, value) => set(&mut parts[0], name, value),
            Edit::Header(value) => parts[0] = encode(value),
            Edit::Claim(name, value) => set(&mut parts[1], name, value),
            Edit::Claims(value) => parts[1] = encode(value),
            Edit::Signature(bytes) => parts[2] = URL_SAFE_NO_PAD.encode(bytes),
            Edit::Part(i, text) => parts[*i] = text.clone(),
            Edit::Segments(n) => parts.resize(*n, "e30".to_owned()),
            Edit::OtherSignature(i) => {
                let other = &others[i % others.len()];
                parts[2] = other.rsplit('.').next().unwrap_or("").to_owned();
            }
        }
    }
    parts.join(".")
}

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
    // ID tokens of every key: RS256 (the default), ES256 (the first algorithm), EdDSA.
    let config = crate::EngineConfig {
        keys: crate::config::KeyPolicy {
            algorithms: vec![
                crate::jose::SigningAlg::Es256,
                crate::jose::SigningAlg::Rs256,
                crate::jose::SigningAlg::EdDsa,
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
        proptest::collection::vec(edit(kids), 1..4),
    );
    let mut runner = TestRunner::new(Config {
        cases: count,
        failure_persistence: None,
        ..Config::default()
    });
    let started = Instant::now();
    let mut verified = std::cell::Cell::new(0u32);
    runner
        .run(&strategy, |(i, edits)| {
            let original = &originals[i];
            let token = apply(original, &originals, &edits);
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
