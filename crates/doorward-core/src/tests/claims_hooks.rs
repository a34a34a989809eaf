//! Added claims (the client's, the user's, the application's hook) in ID tokens, JWT access
//! tokens, introspection and UserInfo, for the code, refresh and `client_credentials` grants;
//! reserved claims and Doorward's own never replaced.

use std::sync::Arc;

use async_trait::async_trait;
use serde_json::{json, Map, Value};

use crate::claims_hook::{ClaimsHook, ClaimsRequest, ClaimsTarget};
use crate::model::{AccessTokenFormat, GrantType};
use crate::request::TokenRequest;
use crate::Error;

use super::support::*;

/// Adds `roles` for a user (`where` says the target), `machine` for a client's own token, and
/// tries to overwrite `sub`, `iss`, `exp`, `scope` and `name`.
struct Roles;

#[async_trait]
impl ClaimsHook for Roles {
    async fn claims(&self, request: ClaimsRequest<'_>) -> Result<Map<String, Value>, Error> {
        let target = match request.target {
            ClaimsTarget::IdToken => "id_token",
            ClaimsTarget::AccessToken => "access_token",
            ClaimsTarget::Introspection => "introspection",
            ClaimsTarget::UserInfo => "userinfo",
        };
        let mut claims = json!({
            "where": target,
            "sub": "forged", "iss": "https://evil.example", "exp": 1, "scope": "admin",
            "name": "Forged Name", "tier": "from the hook",
        });
        match request.user {
            Some(user) => claims["roles"] = json!([format!("player:{}", user.username)]),
            None => claims["machine"] = json!(true),
        }
        if let Some(store) = request.grant_data.get("store") {
            claims["store"] = store.clone();
        }
        Ok(claims.as_object().cloned().unwrap_or_default())
    }
}

fn object(value: Value) -> Map<String, Value> {
    value.as_object().cloned().unwrap()
}

async fn jwt_clients_with_claims(h: &Harness) {
    let mut client =
        std::sync::Arc::unwrap_or_clone(h.engine.find_client(KEY).await.unwrap().unwrap());
    client.policy.access_token_format = AccessTokenFormat::Jwt;
    client.policy.grant_types = Some(vec![
        GrantType::AuthorizationCode,
        GrantType::RefreshToken,
        GrantType::ClientCredentials,
    ]);
    client.policy.claims = object(json!({ "tenant": "acme", "tier": "from the client" }));
    h.engine.store().upsert_client(&client).await.unwrap();
    let mut alice = h
        .engine
        .store()
        .find_user(h.user.user.id)
        .await
        .unwrap()
        .unwrap();
    alice.claims = object(json!({ "tier": "from the user", "level": 7 }));
    h.engine.store().upsert_user(&alice).await.unwrap();
}

fn introspect(token: &str) -> TokenRequest {
    basic_request(KEY, SECRET, &[("token", token)])
}

#[tokio::test]
async fn every_target_carries_the_added_claims_and_nothing_reserved_changes() {
    let mut config = crate::EngineConfig::default();
    config.grants.client_credentials = true;
    let h = harness_with(config).await;
    let h = Harness {
        engine: h.engine.with_claims_hook(Arc::new(Roles)),
        ..h
    };
    jwt_clients_with_claims(&h).await;
    let code = h.code(&[("scope", "openid profile"), ("nonce", "n")]).await;
    let tokens = h.redeem(&code).await.unwrap();
    let alice = h.user.user.id.to_string();

    let id = claims_of(&h, tokens.id_token.as_deref().unwrap());
    assert_eq!(id["where"], "id_token");
    assert_eq!(id["roles"], json!(["player:alice"]));
    assert_eq!(id["tenant"], "acme", "the client's");
    assert_eq!(id["level"], 7, "the user's");
    assert_eq!(
        id["tier"], "from the hook",
        "the hook wins over the user, the user over the client"
    );
    assert_eq!(id["sub"], alice.as_str());
    assert_eq!(id["iss"], "http://localhost");
    assert_eq!(id["name"], "Alice", "Doorward's own claim stays");
    assert!(id["exp"].as_i64().unwrap() > 1);

    // Signed as every JWT access token is (tests/resources.rs checks those signatures).
    let access: Value = crate::jose::unverified_claims(&tokens.access_token).unwrap();
    assert_eq!(access["where"], "access_token");
    assert_eq!(access["roles"], json!(["player:alice"]));
    assert_eq!(access["sub"], alice.as_str());
    assert_eq!(access["scope"], "openid profile");

    let seen = h
        .engine
        .introspect(&introspect(&tokens.access_token))
        .await
        .unwrap();
    assert_eq!(seen.details["where"], "introspection");
    assert_eq!(seen.details["level"], 7);
    assert_eq!(seen.details["sub"], alice.as_str());
    assert_eq!(seen.details["scope"], "openid profile");

    let info = h.engine.userinfo(&tokens.access_token).await.unwrap();
    assert_eq!(info["where"], "userinfo");
    assert_eq!(info["roles"], json!(["player:alice"]));
    assert_eq!(info["name"], "Alice");
    assert_eq!(info["sub"], alice.as_str());

    // A refresh: the same claims again.
    let refreshed = h
        .refresh(tokens.refresh_token.as_deref().unwrap())
        .await
        .unwrap();
    let id = claims_of(&h, refreshed.id_token.as_deref().unwrap());
    assert_eq!(id["roles"], json!(["player:alice"]));

    // The client's own token: no user, the client's claims and the hook's.
    let own = h
        .token(&[("grant_type", "client_credentials"), ("scope", "base")])
        .await
        .unwrap();
    let access: Value = crate::jose::unverified_claims(&own.access_token).unwrap();
    assert_eq!(access["machine"], true);
    assert_eq!(access["tenant"], "acme");
    assert_eq!(access["tier"], "from the hook");
    assert_eq!(access["sub"], KEY);
    assert!(access.get("roles").is_none() && access.get("level").is_none());
}

#[tokio::test]
async fn without_a_hook_the_clients_and_users_claims_are_added() {
    let h = harness().await;
    jwt_clients_with_claims(&h).await;
    let code = h.code(&[("scope", "openid")]).await;
    let tokens = h.redeem(&code).await.unwrap();
    let id = claims_of(&h, tokens.id_token.as_deref().unwrap());
    assert_eq!(id["tier"], "from the user");
    assert_eq!(id["tenant"], "acme");
    let seen = h
        .engine
        .introspect(&introspect(&tokens.access_token))
        .await
        .unwrap();
    assert_eq!(seen.details["level"], 7);
}

/// What the application attached to the grant (`GrantTerms`) reaches the hook at every
/// target, refreshes included; a narrowed scope is said in the token response.
#[tokio::test]
async fn the_grants_data_reaches_the_hook() {
    let h = harness().await;
    let h = Harness {
        engine: h.engine.with_claims_hook(Arc::new(Roles)),
        ..h
    };
    jwt_clients_with_claims(&h).await;
    let request = h
        .engine
        .check_authorization(&pairs(&[
            ("response_type", "code"),
            ("client_id", KEY),
            ("redirect_uri", CALLBACK),
            ("scope", "openid profile email"),
            ("state", "s"),
        ]))
        .await
        .unwrap();
    let terms = crate::embedding::GrantTerms::default()
        .narrowed_to(doorward_proto::ScopeSet::parse("openid profile").unwrap())
        .with_data(object(json!({ "store": "paris" })));
    let location = h
        .engine
        .approve_on_terms(&h.user, &request, &terms)
        .await
        .unwrap();
    let code = query_param(&location, "code").unwrap();
    // The application's terms are no remembered consent: the next request asks again.
    let python = h.engine.find_client(KEY).await.unwrap().unwrap();
    assert!(h
        .engine
        .store()
        .find_consent(h.user.user.id, python.id)
        .await
        .unwrap()
        .is_none());
    // Terms that leave nothing of the scope asked for: access_denied.
    let nothing = crate::embedding::GrantTerms::default()
        .narrowed_to(doorward_proto::ScopeSet::parse("base").unwrap());
    let refused = h
        .engine
        .approve_on_terms(&h.user, &request, &nothing)
        .await
        .unwrap();
    assert_eq!(
        query_param(&refused, "error").as_deref(),
        Some("access_denied")
    );
    let tokens = h.redeem(&code).await.unwrap();
    assert_eq!(tokens.scope.as_deref(), Some("openid profile"));
    let id = claims_of(&h, tokens.id_token.as_deref().unwrap());
    assert_eq!(id["store"], "paris");
    let access: Value = crate::jose::unverified_claims(&tokens.access_token).unwrap();
    assert_eq!(access["store"], "paris");
    let seen = h
        .engine
        .introspect(&introspect(&tokens.access_token))
        .await
        .unwrap();
    assert_eq!(seen.details["store"], "paris");
    assert_eq!(
        h.engine.userinfo(&tokens.access_token).await.unwrap()["store"],
        "paris"
    );
    let refreshed = h
        .refresh(tokens.refresh_token.as_deref().unwrap())
        .await
        .unwrap();
    let id = claims_of(&h, refreshed.id_token.as_deref().unwrap());
    assert_eq!(id["store"], "paris", "the refresh keeps the grant's data");
}
