//! Dynamic client registration (RFC 7591) and management (RFC 7592) over the in-memory store:
//! each hostile input refused with its RFC 7591 code and nothing stored, initial access tokens
//! spent once per use, the open mode's public-only rule, redirect policy, cap and rate, and the
//! registration access token's lookups.

use std::net::IpAddr;

use doorward_proto::ErrorCode;
use serde_json::{json, Value};

use crate::config::{RegistrationMode, RegistrationPolicy};
use crate::model::{AuthMethod, ClientSource, GrantType};
use crate::registration::{RegistrationError, RegistrationRequest};
use crate::EngineConfig;

use super::support::*;

fn config(mode: RegistrationMode) -> EngineConfig {
    EngineConfig {
        registration: RegistrationPolicy {
            mode,
            ..RegistrationPolicy::default()
        },
        ..EngineConfig::default()
    }
}

async fn token_harness() -> (Harness, String) {
    let h = harness_with(EngineConfig {
        key_encryption_secret: Some(doorward_proto::Secret::new("k".repeat(32))),
        ..config(RegistrationMode::Token)
    })
    .await;
    let token = h
        .engine
        .issue_initial_token(3600, 100, &crate::audit::Actor::System)
        .await
        .unwrap();
    (h, token.token.secret().to_owned())
}

async fn register(
    h: &Harness,
    body: &Value,
    token: Option<&str>,
) -> Result<Value, RegistrationError> {
    register_bytes(h, body.to_string().as_bytes(), token, None).await
}

async fn register_bytes(
    h: &Harness,
    body: &[u8],
    token: Option<&str>,
    from: Option<IpAddr>,
) -> Result<Value, RegistrationError> {
    h.engine
        .register(RegistrationRequest { body, token, from })
        .await
}

fn code(result: Result<Value, RegistrationError>) -> ErrorCode {
    match result {
        Err(RegistrationError::Metadata(e)) => e.code,
        other => panic!("expected a metadata refusal, got {other:?}"),
    }
}

async fn registered_count(h: &Harness) -> usize {
    h.engine
        .list_clients()
        .await
        .unwrap()
        .iter()
        .filter(|c| c.source == ClientSource::Registered)
        .count()
}

fn web_client() -> Value {
    json!({
        "redirect_uris": ["https://app.example/cb"],
        "client_name": "Example",
        "client_uri": "https://app.example",
        "grant_types": ["authorization_code", "refresh_token"],
        "scope": "openid base",
    })
}

#[tokio::test]
async fn a_confidential_registration_answers_rfc_7591_and_stores_hashes_only() {
    let (h, token) = token_harness().await;
    let answer = register(&h, &web_client(), Some(&token)).await.unwrap();
    let client_id = answer["client_id"].as_str().unwrap();
    let secret = answer["client_secret"].as_str().unwrap();
    let access = answer["registration_access_token"].as_str().unwrap();
    assert_eq!(answer["client_secret_expires_at"], 0);
    assert_eq!(answer["token_endpoint_auth_method"], "client_secret_basic");
    assert_eq!(answer["response_types"], json!(["code"]));
    assert_eq!(answer["client_name"], "Example");
    assert_eq!(
        answer["registration_client_uri"],
        format!("http://localhost/oauth/register/{client_id}")
    );
    let client = h.engine.find_client(client_id).await.unwrap().unwrap();
    assert_eq!(client.source, ClientSource::Registered);
    assert_eq!(client.id.get_version_num(), 4);
    assert_eq!(client.display_name, "Example");
    assert_eq!(client.app_uri, "https://app.example");
    assert!(!client.secret_hash.as_deref().unwrap().contains(secret));
    assert_eq!(
        client.policy.grant_types,
        Some(vec![GrantType::AuthorizationCode, GrantType::RefreshToken])
    );
    let found = h
        .engine
        .store()
        .find_registration(&crate::TokenHash::of(access))
        .await
        .unwrap()
        .unwrap();
    assert!(!found.1.metadata.contains(secret) && !found.1.metadata.contains(access));
}

/// RFC 9126 §6: a client may register that its requests must be pushed.
#[tokio::test]
async fn a_client_may_register_that_it_pushes_its_requests() {
    let (h, token) = token_harness().await;
    let mut body = web_client();
    body["require_pushed_authorization_requests"] = json!(true);
    let answer = register(&h, &body, Some(&token)).await.unwrap();
    assert_eq!(answer["require_pushed_authorization_requests"], true);
    let client_id = answer["client_id"].as_str().unwrap();
    let client = h.engine.find_client(client_id).await.unwrap().unwrap();
    assert!(client.policy.require_pushed_requests);
    // Not said: not required, and not echoed.
    let answer = register(&h, &web_client(), Some(&token)).await.unwrap();
    assert!(answer
        .get("require_pushed_authorization_requests")
        .is_none());
    body["require_pushed_authorization_requests"] = json!("yes");
    assert_eq!(
        code(register(&h, &body, Some(&token)).await),
        ErrorCode::InvalidClientMetadata
    );
}

#[tokio::test]
async fn token_mode_needs_a_live_initial_token_and_spends_one_use_per_registration() {
    let h = harness_with(config(RegistrationMode::Token)).await;
    assert!(matches!(
        register(&h, &web_client(), None).await,
        Err(RegistrationError::InvalidToken)
    ));
    assert!(matches!(
        register(&h, &web_client(), Some("dwia_unknown")).await,
        Err(RegistrationError::InvalidToken)
    ));
    let twice = h
        .engine
        .issue_initial_token(60, 2, &crate::audit::Actor::System)
        .await
        .unwrap();
    let twice = twice.token.secret();
    // A refused registration spends nothing.
    let hostile = json!({"redirect_uris": ["javascript:alert(1)"]});
    assert_eq!(
        code(register(&h, &hostile, Some(twice)).await),
        ErrorCode::InvalidRedirectUri
    );
    register(&h, &web_client(), Some(twice)).await.unwrap();
    register(&h, &web_client(), Some(twice)).await.unwrap();
    assert!(matches!(
        register(&h, &web_client(), Some(twice)).await,
        Err(RegistrationError::InvalidToken)
    ));
    let expiring = h
        .engine
        .issue_initial_token(60, 5, &crate::audit::Actor::System)
        .await
        .unwrap();
    h.clock.advance(60);
    assert!(matches!(
        register(&h, &web_client(), Some(expiring.token.secret())).await,
        Err(RegistrationError::InvalidToken)
    ));
    assert_eq!(registered_count(&h).await, 2);
}

#[tokio::test]
async fn hostile_metadata_is_refused_with_its_code_and_nothing_is_stored() {
    let (h, token) = token_harness().await;
    let with = |member: &str, value: Value| {
        let mut body = web_client();
        body[member] = value;
        body
    };
    let private_jwk = json!({"keys": [{
        "kty": "EC", "crv": "P-256",
        "x": "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU",
        "y": "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0",
        "d": "jpsQnnGQmL-YBIffH1136cspYG6-0iY7X1fCE9-E9LI"
    }]});
    let uri_cases = [
        with("redirect_uris", json!(["javascript:alert(1)"])),
        with(
            "redirect_uris",
            json!(["data:text/html,<script>alert(1)</script>"]),
        ),
        with("redirect_uris", json!(["https://app.example/cb#frag"])),
        with("redirect_uris", json!(["https://app.example/cb\u{0}"])),
        with("redirect_uris", json!(["https://app.example/<script>x"])),
        with("redirect_uris", json!(["/relative"])),
        with("redirect_uris", json!(["com.example.app:/cb"])), // private scheme, confidential
        with("redirect_uris", json!([])),
        with("redirect_uris", json!("https://app.example/cb")),
        with("redirect_uris", json!([42])),
    ];
    for body in &uri_cases {
        assert_eq!(
            code(register(&h, body, Some(&token)).await),
            ErrorCode::InvalidRedirectUri,
            "{body}"
        );
    }
    let metadata_cases = [
        with("client_name", json!("Bank\u{202E}evil")),
        with("client_name", json!("nul\u{0}name")),
        with("client_name", json!("zero\u{200B}width")),
        with("client_name", json!("x".repeat(500))),
        with("client_name", json!(" ")),
        with("client_name", json!(42)),
        with("client_uri", json!("javascript:alert(1)")),
        with("client_uri", json!("http://app.example")),
        with("client_uri", json!("https://user:pw@app.example")),
        with("client_uri", json!("https://аpp.example")), // Cyrillic a
        with("logo_uri", json!("data:image/png;base64,AAAA")),
        with("tos_uri", json!(["https://app.example"])),
        with("contacts", json!("a@example.com")),
        with("contacts", json!(["a@example.com\u{2066}"])),
        with("token_endpoint_auth_method", json!("client_secret_magic")),
        with("token_endpoint_auth_method", json!(["none"])),
        with("grant_types", json!(["password"])),
        with("grant_types", json!(["implicit"])),
        with("grant_types", json!(["refresh_token"])),
        with("grant_types", json!([])),
        with("grant_types", json!("authorization_code")),
        with("response_types", json!(["token"])),
        with("response_types", json!([])),
        with("scope", json!("admin")),
        with("scope", json!(["openid"])),
        with("jwks_uri", json!("https://app.example/jwks")),
        {
            let mut b = with("token_endpoint_auth_method", json!("private_key_jwt"));
            b["jwks_uri"] = json!("http://app.example/jwks");
            b
        },
        {
            let mut b = with("token_endpoint_auth_method", json!("private_key_jwt"));
            b["jwks_uri"] = json!("https://user:pw@app.example/jwks");
            b
        },
        with("software_id", json!({"id": 1})),
        with("token_endpoint_auth_method", json!("private_key_jwt")),
        {
            let mut b = with("token_endpoint_auth_method", json!("private_key_jwt"));
            b["jwks"] = private_jwk.clone();
            b
        },
        with("jwks", json!("not a set")),
        // client_credentials is not enabled on this server.
        with("grant_types", json!(["client_credentials"])),
    ];
    for body in &metadata_cases {
        assert_eq!(
            code(register(&h, body, Some(&token)).await),
            ErrorCode::InvalidClientMetadata,
            "{body}"
        );
    }
    for body in [&b"not json"[..], b"[]", b"\"x\"", b"{\"redirect_uris\":"] {
        assert_eq!(
            code(register_bytes(&h, body, Some(&token), None).await),
            ErrorCode::InvalidClientMetadata
        );
    }
    assert_eq!(registered_count(&h).await, 0, "nothing stored");
    // Unknown members are ignored, and not given back.
    let answer = register(&h, &with("x-extension", json!({"deep": [1]})), Some(&token))
        .await
        .unwrap();
    assert!(answer.get("x-extension").is_none());
}

#[tokio::test]
async fn public_and_jwt_clients() {
    let (h, token) = token_harness().await;
    let public = json!({
        "redirect_uris": ["http://127.0.0.1/cb", "com.example.app:/cb"],
        "token_endpoint_auth_method": "none",
    });
    let answer = register(&h, &public, Some(&token)).await.unwrap();
    assert!(answer.get("client_secret").is_none());
    assert!(answer.get("client_secret_expires_at").is_none());
    let client = h
        .engine
        .find_client(answer["client_id"].as_str().unwrap())
        .await
        .unwrap()
        .unwrap();
    assert!(client.policy.is_public() && client.secret_hash.is_none());
    let mut localhost = public.clone();
    localhost["redirect_uris"] = json!(["http://localhost:8000/cb"]);
    assert_eq!(
        code(register(&h, &localhost, Some(&token)).await),
        ErrorCode::InvalidRedirectUri
    );

    let jwt = json!({
        "redirect_uris": ["https://app.example/cb"],
        "token_endpoint_auth_method": "client_secret_jwt",
    });
    let answer = register(&h, &jwt, Some(&token)).await.unwrap();
    let client = h
        .engine
        .find_client(answer["client_id"].as_str().unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(client.policy.auth_method, Some(AuthMethod::ClientSecretJwt));
    let sealed = client.policy.sealed_jwt_secret.as_deref().unwrap();
    let secret = answer["client_secret"].as_str().unwrap();
    assert!(!sealed.windows(secret.len()).any(|w| w == secret.as_bytes()));
}

#[tokio::test]
async fn open_mode_registers_public_clients_under_its_policy_cap_and_rate() {
    let h = harness_with(EngineConfig {
        registration: RegistrationPolicy {
            mode: RegistrationMode::Open,
            allowed_redirect_schemes: vec!["http".into(), "com.example.app".into()],
            allowed_redirect_hosts: vec!["127.0.0.1".into()],
            max_clients: Some(3),
            per_address_per_hour: Some(2),
        },
        ..EngineConfig::default()
    })
    .await;
    let public = json!({"redirect_uris": ["http://127.0.0.1/cb"]});
    let a: IpAddr = "192.0.2.1".parse().unwrap();
    let b: IpAddr = "192.0.2.2".parse().unwrap();
    let c: IpAddr = "192.0.2.3".parse().unwrap();
    let body = public.to_string();
    let answer = register_bytes(&h, body.as_bytes(), None, Some(a))
        .await
        .unwrap();
    assert_eq!(answer["token_endpoint_auth_method"], "none", "substituted");
    let confidential = json!({
        "redirect_uris": ["http://127.0.0.1/cb"],
        "token_endpoint_auth_method": "client_secret_basic",
    });
    assert_eq!(
        code(register_bytes(&h, confidential.to_string().as_bytes(), None, Some(b)).await),
        ErrorCode::InvalidClientMetadata
    );
    for refused in [
        json!({"redirect_uris": ["https://127.0.0.1/cb"]}),
        json!({"redirect_uris": ["http://[::1]/cb"]}),
        json!({"redirect_uris": ["org.example.app:/cb"]}),
    ] {
        assert_eq!(
            code(register_bytes(&h, refused.to_string().as_bytes(), None, Some(b)).await),
            ErrorCode::InvalidRedirectUri,
            "{refused}"
        );
    }
    let private_scheme = json!({"redirect_uris": ["com.example.app:/cb"]}).to_string();
    register_bytes(&h, private_scheme.as_bytes(), None, Some(a))
        .await
        .unwrap();
    // The third from `a` within the hour is rate limited; other addresses are not.
    match register_bytes(&h, body.as_bytes(), None, Some(a)).await {
        Err(RegistrationError::RateLimited(t)) => assert!(t.retry_after <= 3600),
        other => panic!("{other:?}"),
    }
    register_bytes(&h, body.as_bytes(), None, Some(b))
        .await
        .unwrap();
    // The cap (3) is reached.
    assert!(matches!(
        register_bytes(&h, body.as_bytes(), None, Some(c)).await,
        Err(RegistrationError::Full)
    ));
    assert_eq!(registered_count(&h).await, 3);
    // An hour later `a` may register again (were there room).
    h.clock.advance(3600);
    assert!(matches!(
        register_bytes(&h, body.as_bytes(), None, Some(a)).await,
        Err(RegistrationError::Full)
    ));
}

#[tokio::test]
async fn an_initial_token_in_open_mode_registers_any_kind_of_client() {
    let h = harness_with(EngineConfig {
        registration: RegistrationPolicy {
            mode: RegistrationMode::Open,
            allowed_redirect_hosts: vec!["127.0.0.1".into()],
            per_address_per_hour: Some(1),
            ..RegistrationPolicy::default()
        },
        ..EngineConfig::default()
    })
    .await;
    let token = h
        .engine
        .issue_initial_token(60, 3, &crate::audit::Actor::System)
        .await
        .unwrap();
    let a: IpAddr = "192.0.2.1".parse().unwrap();
    let web = web_client().to_string();
    // Without the token: registered as public, so its host falls to the open policy.
    assert_eq!(
        code(register_bytes(&h, web.as_bytes(), None, Some(a)).await),
        ErrorCode::InvalidRedirectUri
    );
    // With it: the open policy does not apply, nor does the rate.
    for _ in 0..2 {
        let answer = register_bytes(&h, web.as_bytes(), Some(token.token.secret()), Some(a))
            .await
            .unwrap();
        assert_eq!(answer["token_endpoint_auth_method"], "client_secret_basic");
    }
    // A wrong token is refused, never taken for "no token".
    let public = json!({"redirect_uris": ["http://127.0.0.1/cb"]}).to_string();
    assert!(matches!(
        register_bytes(&h, public.as_bytes(), Some("dwia_wrong"), Some(a)).await,
        Err(RegistrationError::InvalidToken)
    ));
    register_bytes(&h, public.as_bytes(), None, Some(a))
        .await
        .unwrap();
}

#[tokio::test]
async fn management_reads_updates_and_deletes_with_the_registration_token_only() {
    let (h, token) = token_harness().await;
    let first = register(&h, &web_client(), Some(&token)).await.unwrap();
    let other = register(&h, &web_client(), Some(&token)).await.unwrap();
    let id = first["client_id"].as_str().unwrap().to_owned();
    let access = first["registration_access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let other_access = other["registration_access_token"].as_str().unwrap();
    for wrong in [
        None,
        Some("dwra_nope"),
        Some(other_access),
        Some(token.as_str()),
    ] {
        assert!(matches!(
            h.engine.read_registration(&id, wrong).await,
            Err(RegistrationError::InvalidToken)
        ));
    }
    let read = h
        .engine
        .read_registration(&id, Some(&access))
        .await
        .unwrap();
    assert_eq!(read["client_name"], "Example");
    assert!(read.get("client_secret").is_none());
    let access = read["registration_access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        matches!(
            h.engine
                .read_registration(&id, first["registration_access_token"].as_str())
                .await,
            Err(RegistrationError::InvalidToken)
        ),
        "a read issues a new registration access token; the old one stops"
    );

    let update = |body: Value, token: &str| {
        let body = body.to_string();
        let id = id.clone();
        let token = token.to_owned();
        let engine = &h.engine;
        async move {
            engine
                .update_registration(
                    &id,
                    RegistrationRequest {
                        body: body.as_bytes(),
                        token: Some(&token),
                        from: None,
                    },
                )
                .await
        }
    };
    let mut body = web_client();
    body["client_name"] = json!("Renamed");
    assert!(
        matches!(
            update(body.clone(), &access).await,
            Err(RegistrationError::Metadata(_))
        ),
        "client_id is required"
    );
    body["client_id"] = json!("someone-else");
    assert!(update(body.clone(), &access).await.is_err());
    body["client_id"] = json!(id);
    body["client_secret"] = json!("wrong-secret-0123456789");
    assert!(update(body.clone(), &access).await.is_err());
    body["client_secret"] = first["client_secret"].clone();
    body["token_endpoint_auth_method"] = json!("none");
    assert!(
        update(body.clone(), &access).await.is_err(),
        "the method stays"
    );
    body.as_object_mut()
        .unwrap()
        .remove("token_endpoint_auth_method");
    let updated = update(body, &access).await.unwrap();
    assert_eq!(updated["client_name"], "Renamed");
    let client = h.engine.find_client(&id).await.unwrap().unwrap();
    assert_eq!(client.display_name, "Renamed");
    assert!(client.secret_hash.is_some(), "the secret is kept");
    let access = updated["registration_access_token"].as_str().unwrap();

    h.engine
        .delete_registration(&id, Some(access))
        .await
        .unwrap();
    assert!(h.engine.find_client(&id).await.unwrap().is_none());
    assert!(matches!(
        h.engine.read_registration(&id, Some(access)).await,
        Err(RegistrationError::InvalidToken)
    ));
    // Clients of other sources are never managed here, nor is registration when off.
    let off = harness().await;
    assert!(matches!(
        off.engine.read_registration(KEY, Some(access)).await,
        Err(RegistrationError::Disabled)
    ));
}

#[tokio::test]
async fn discovery_names_the_endpoint_only_when_on() {
    let off = harness().await;
    assert!(off.engine.metadata().get("registration_endpoint").is_none());
    let (on, _) = token_harness().await;
    assert_eq!(
        on.engine.metadata()["registration_endpoint"],
        "http://localhost/oauth/register"
    );
}

#[tokio::test]
async fn a_store_that_fails_is_an_engine_error_and_spends_nothing() {
    use std::sync::Arc;

    use crate::memory::MemoryStore;
    use crate::ports::StoreError;
    use crate::testing::FailingStore;

    let failing = Arc::new(FailingStore::new(Arc::new(MemoryStore::default())));
    let h = harness_over(failing.clone(), config(RegistrationMode::Token)).await;
    let token = h
        .engine
        .issue_initial_token(60, 1, &crate::audit::Actor::System)
        .await
        .unwrap();
    let token = token.token.secret();
    failing.fail_next("insert_registration");
    match register(&h, &web_client(), Some(token)).await {
        Err(RegistrationError::Engine(crate::Error::Store(StoreError::Unavailable(_)))) => {}
        other => panic!("{other:?}"),
    }
    assert_eq!(registered_count(&h).await, 0);
    failing.fail_next("find_initial_token");
    assert!(register(&h, &web_client(), Some(token)).await.is_err());
    // Neither failure spent the token's one use.
    register(&h, &web_client(), Some(token)).await.unwrap();
}
