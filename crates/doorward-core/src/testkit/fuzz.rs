//! Shared pieces of the bounded fuzzing in the test suites (the router's parsers in
//! doorward-axum, JWS parsing here, the configuration file in `doorward`): how many cases to
//! run, and mutations of a compact JWS.
//!
//! `DOORWARD_FUZZ_SCALE=20` runs twenty times the default cases (README, "Run every test");
//! `DOORWARD_FUZZ_SEED=<64 hex digits>` replays the run that printed that seed.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use proptest::prelude::*;
use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};
use serde_json::{json, Value};

/// A runner of `config` whose random seed is `DOORWARD_FUZZ_SEED` when it is set, else fresh.
/// The seed is printed: cargo shows a failing test's output, so a failure seen once (in CI)
/// can be replayed.
///
/// # Panics
/// When `DOORWARD_FUZZ_SEED` is not 64 hexadecimal digits.
pub fn runner(config: Config) -> TestRunner {
    let seed: [u8; 32] = match std::env::var("DOORWARD_FUZZ_SEED") {
        Ok(hex) => {
            let bytes: Option<Vec<u8>> = (hex.len() == 64)
                .then(|| {
                    (0..32)
                        .map(|i| u8::from_str_radix(hex.get(2 * i..2 * i + 2)?, 16).ok())
                        .collect()
                })
                .flatten();
            bytes
                .and_then(|b| b.try_into().ok())
                .expect("DOORWARD_FUZZ_SEED is 64 hexadecimal digits")
        }
        Err(_) => rand::random(),
    };
    let hex: String = seed.iter().map(|b| format!("{b:02x}")).collect();
    eprintln!("fuzz seed {hex} (DOORWARD_FUZZ_SEED={hex} replays this run)");
    TestRunner::new_with_rng(config, TestRng::from_seed(RngAlgorithm::ChaCha, &seed))
}

/// `default` cases, times `DOORWARD_FUZZ_SCALE` when it is set.
pub fn cases(default: u32) -> u32 {
    let scale = std::env::var("DOORWARD_FUZZ_SCALE")
        .ok()
        .and_then(|s| s.parse::<u32>().ok())
        .unwrap_or(1);
    default.saturating_mul(scale.max(1))
}

/// A JSON value of any type, for a header member or a claim.
pub fn json_value() -> BoxedStrategy<Value> {
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

/// A mutation of a compact JWS: its header, one claim, its signature or its shape.
#[derive(Debug, Clone)]
pub enum JwtEdit {
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

/// Edits of a JWS; `kids` are real key ids to try in the header (may be empty).
pub fn jwt_edit(kids: Vec<String>) -> BoxedStrategy<JwtEdit> {
    let alg = prop_oneof![
        Just(json!("none")),
        Just(json!("HS256")),
        Just(json!("RS256")),
        Just(json!("ES256")),
        Just(json!("EdDSA")),
        Just(json!("ES384")),
        Just(json!("PS256")),
        Just(json!("PS512")),
        json_value(),
    ];
    let kid = if kids.is_empty() {
        json_value()
    } else {
        prop_oneof![
            proptest::sample::select(kids).prop_map(Value::String),
            json_value()
        ]
        .boxed()
    };
    let member = prop_oneof![
        Just("typ"),
        Just("crit"),
        Just("jku"),
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
        Just("azp"),
    ];
    prop_oneof![
        proptest::option::of(alg).prop_map(|a| JwtEdit::HeaderMember("alg", a)),
        proptest::option::of(kid).prop_map(|k| JwtEdit::HeaderMember("kid", k)),
        (member, proptest::option::of(json_value())).prop_map(|(m, v)| JwtEdit::HeaderMember(m, v)),
        json_value().prop_map(JwtEdit::Header),
        (claim, proptest::option::of(json_value())).prop_map(|(c, v)| JwtEdit::Claim(c, v)),
        json_value().prop_map(JwtEdit::Claims),
        proptest::collection::vec(any::<u8>(), 0..600).prop_map(JwtEdit::Signature),
        (0usize..3, any::<String>()).prop_map(|(i, s)| JwtEdit::Part(i, s)),
        (0usize..3, "[A-Za-z0-9_=+/.-]{0,40}").prop_map(|(i, s)| JwtEdit::Part(i, s)),
        (0usize..6).prop_map(JwtEdit::Segments),
        any::<usize>().prop_map(JwtEdit::OtherSignature),
    ]
    .boxed()
}

/// `token` with `edits` applied; `others` are real tokens whose signatures may be swapped in
/// (that edit does nothing when there are none).
pub fn mutate_jwt(token: &str, others: &[String], edits: &[JwtEdit]) -> String {
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
            JwtEdit::HeaderMember(name, value) => set(&mut parts[0], name, value),
            JwtEdit::Header(value) => parts[0] = encode(value),
            JwtEdit::Claim(name, value) => set(&mut parts[1], name, value),
            JwtEdit::Claims(value) => parts[1] = encode(value),
            JwtEdit::Signature(bytes) => parts[2] = URL_SAFE_NO_PAD.encode(bytes),
            JwtEdit::Part(i, text) => parts[*i] = text.clone(),
            JwtEdit::Segments(n) => parts.resize(*n, "e30".to_owned()),
            JwtEdit::OtherSignature(i) => {
                if let Some(other) = others.get(i % others.len().max(1)) {
                    parts[2] = other.rsplit('.').next().unwrap_or("").to_owned();
                }
            }
        }
    }
    parts.join(".")
}
