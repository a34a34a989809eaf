//! Bounded fuzzing of the configuration file parser: a complete, valid file with lines
//! replaced, repeated, dropped or cut, and values swapped for hostile TOML (huge or negative
//! numbers, wrong types, arbitrary Unicode, nested tables). Every input must give a `Config`
//! or an error, never a panic, and an error must say something.
//!
//! `DOORWARD_FUZZ_SCALE=20` runs twenty times the default cases (README, "Run every test").

use std::time::Instant;

use proptest::prelude::*;
use proptest::test_runner::Config as RunnerConfig;

use super::*;
use doorward_core::testkit::fuzz::cases;

const VALID: &str = r#"[server]
listen = "127.0.0.1:50320"
external_uri = "http://localhost:50320"
data_dir = "data"
[tokens]
access_token = 7200
code = 60
refresh_token = 2592000
session = 1209600
id_token = 3600
refresh_grace = 10
[oauth]
insecure_allow_plain_pkce = false
scopes = ["base", "openid", "profile", "email"]
default_scopes = ["base"]
[keys]
algorithms = ["ES256", "RS256"]
publish_delay = 86400
rotation_period = 7776000
encryption_secret = "0123456789abcdef0123"
[clients.python_client]
display_name = "Python Client"
app_uri = "http://localhost:8000"
callback_uri = "http://localhost:8000/oauth/callback"
secret = "dev_secret"
scopes = ["openid", "profile", "email"]
post_logout_redirect_uris = ["http://localhost:8000/logged-out"]
token_endpoint_auth_method = "client_secret_basic"
access_token_format = "jwt"
access_token_audience = "https://api.example.com"
id_token_signed_response_alg = "ES256"
resource_server = true
[seed.app.other_app]
display_name = "Other App"
uri = "http://localhost:8001"
oauth_callback = "http://localhost:8001/oauth/callback"
secret = "other_secret"
[seed.user.user1]
username = "user1"
password = "1234567891"
display_name = "User 1"
email = "user1@example.com"
email_verified = false
"#;

/// A TOML value, well-formed or not.
fn toml_value() -> BoxedStrategy<String> {
    prop_oneof![
        any::<i64>().prop_map(|n| n.to_string()),
        Just("9223372036854775807".to_owned()),
        Just("-9223372036854775808".to_owned()),
        Just("99999999999999999999999".to_owned()),
        any::<f64>().prop_map(|f| format!("{f:?}")),
        Just("inf".to_owned()),
        Just("nan".to_owned()),
        any::<bool>().prop_map(|b| b.to_string()),
        any::<String>().prop_map(|s| format!("{s:?}")),
        "[ -~]{0,20}".prop_map(|s| format!("\"{s}\"")),
        "[ -~]{0,20}",
        Just("1979-05-27T07:32:00Z".to_owned()),
        Just("[]".to_owned()),
        Just("[1, \"a\", [true]]".to_owned()),
        Just("{ a = 1, b = { c = [] } }".to_owned()),
        Just("\"\"\"\nmulti\nline\"\"\"".to_owned()),
        Just("'".to_owned()),
        "(ES256|RS256|EdDSA|HS256|x)".prop_map(|a| format!("[\"{a}\", \"{a}\"]")),
    ]
    .boxed()
}

#[derive(Debug, Clone)]
enum Edit {
    Value(usize, String),
    Line(usize, String),
    Drop(usize),
    Repeat(usize),
    Cut(usize),
}

fn edit() -> BoxedStrategy<Edit> {
    prop_oneof![
        6 => (any::<usize>(), toml_value()).prop_map(|(i, v)| Edit::Value(i, v)),
        1 => (any::<usize>(), any::<String>()).prop_map(|(i, l)| Edit::Line(i, l)),
        1 => (any::<usize>(), "\\[[a-z._ \"@/]{0,24}\\]").prop_map(|(i, l)| Edit::Line(i, l)),
        2 => any::<usize>().prop_map(Edit::Drop),
        1 => any::<usize>().prop_map(Edit::Repeat),
        1 => any::<usize>().prop_map(Edit::Cut),
    ]
    .boxed()
}

fn apply(edits: &[Edit]) -> String {
    let mut lines: Vec<String> = VALID.lines().map(str::to_owned).collect();
    for edit in edits {
        let len = lines.len().max(1);
        match edit {
            Edit::Value(i, value) => {
                if let Some(line) = lines.get_mut(i % len) {
                    if let Some((key, _)) = line.split_once(" = ") {
                        *line = format!("{key} = {value}");
                    }
                }
            }
            Edit::Line(i, text) => lines.insert(i % (lines.len() + 1), text.clone()),
            Edit::Drop(i) => {
                if !lines.is_empty() {
                    lines.remove(i % len);
                }
            }
            Edit::Repeat(i) => {
                if let Some(line) = lines.get(i % len).cloned() {
                    lines.insert(i % len, line);
                }
            }
            Edit::Cut(i) => {
                let text = lines.join("\n");
                let mut at = i % (text.len() + 1);
                while !text.is_char_boundary(at) {
                    at -= 1;
                }
                lines = text[..at].lines().map(str::to_owned).collect();
            }
        }
    }
    lines.join("\n")
}

fn load(text: &str) -> anyhow::Result<Config> {
    let raw = parse(text).map_err(|e| anyhow!(e))?;
    check(
        raw,
        Path::new("."),
        Overrides {
            database: Some("sqlite::memory:".into()),
            ..Overrides::default()
        },
    )
}

#[test]
fn edited_config_files_load_or_fail_with_a_message() {
    load(VALID).expect("the starting point is valid");
    let count = cases(1500);
    let mut runner = doorward_core::testkit::fuzz::runner(RunnerConfig {
        cases: count,
        failure_persistence: None,
        ..RunnerConfig::default()
    });
    let started = Instant::now();
    let loaded = std::cell::Cell::new(0u32);
    runner
        .run(&proptest::collection::vec(edit(), 1..5), |edits| {
            let text = apply(&edits);
            match load(&text) {
                Ok(_) => loaded.set(loaded.get() + 1),
                Err(e) => prop_assert!(!format!("{e:#}").trim().is_empty(), "{text}"),
            }
            Ok(())
        })
        .unwrap();
    eprintln!(
        "fuzz config: {count} cases in {:.1} s ({} loaded, the rest refused)",
        started.elapsed().as_secs_f64(),
        loaded.get()
    );
}
