//! Token exchange (RFC 8693): delegation with down-scoping only, `act` chains, the exchanging
//! client's resource policy, the account's list of delegations and their revocation.

use doorward_proto::{ErrorCode, ResourceUri, TokenType};
use serde_json::json;

use super::support::*;
use crate::model::GrantType;
use crate::token_exchange::ACCESS_TOKEN_TYPE;
use crate::EngineConfig;

const EXCHANGE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
const ORDERS: &str = "https://orders.example/";
const BILLING: &str = "https://billing.example/";

async fn exchange_harness() -> Harness {
    let mut config = EngineConfig {
        resources: vec![
            ResourceUri::parse(ORDERS).unwrap(),
            ResourceUri::parse(BILLING).unwrap(),
        ],
        ..EngineConfig::default()
    };
    config.grants.token_exchange = true;
    let h = harness_with(config).await;
    for (key, resources) in [
        ("orders@clients", vec![BILLING]),
        ("billing@clients", vec![ORDERS]),
    ] {
        let mut spec = crate::testing::client(key, key, "http://localhost:9/cb", "svc-secret");
        spec.policy.grant_types = Some(vec![GrantType::TokenExchange]);
        // APIs the user's tokens are sent to: they may pass them on.
        spec.policy.resource_server = true;
        spec.policy.resources = Some(
            resources
                .into_iter()
                .map(|r| ResourceUri::parse(r).unwrap())
                .collect(),
        );
        h.engine.register_client(spec).await.unwrap();
    }
    h
}

async fn exchange(
    h: &Harness,
    client: &str,
    extra: &[(&str, &str)],
) -> Result<doorward_proto::TokenResponse, crate::Error> {
    let mut params = vec![
        ("grant_type", EXCHANGE),
        ("subject_token_type", ACCESS_TOKEN_TYPE),
    ];
    params.extend_from_slice(extra);
    h.engine
        .token(&basic_request(client, "svc-secret", &params))
        .await
}

/// Introspection by the token's own client (RFC 7662 §4: a client sees its own tokens).
/// Whether `token` is an active access token.
async fn live(h: &Harness, token: &str) -> bool {
    h.engine.resolve_access_token(token).await.is_ok()
}

/// Introspection by the token's own client (RFC 7662 §4: a client sees its own tokens).
async fn introspected(h: &Harness, client: &str, token: &str) -> serde_json::Value {
    let seen = h
        .engine
        .introspect(&basic_request(client, "svc-secret", &[("token", token)]))
        .await
        .unwrap();
    serde_json::to_value(seen).unwrap()
}

#[tokio::test]
async fn a_service_exchanges_a_users_token_for_a_narrower_one_naming_it_as_actor() {
    let h = exchange_harness().await;
    let user_token = h
        .redeem(&h.code(&[("scope", "base openid")]).await)
        .await
        .unwrap()
        .access_token;
    let answer = exchange(
        &h,
        "orders@clients",
        &[
            ("subject_token", &user_token),
            ("audience", BILLING),
            ("scope", "base"),
        ],
    )
    .await
    .unwrap();
    assert_eq!(answer.issued_token_type.as_deref(), Some(ACCESS_TOKEN_TYPE));
    assert_eq!(answer.token_type, TokenType::Bearer);
    assert!(answer.refresh_token.is_none() && answer.id_token.is_none());
    let info = h
        .engine
        .resolve_access_token(&answer.access_token)
        .await
        .unwrap();
    assert_eq!(
        info.user.as_ref().unwrap().id,
        h.user.user.id,
        "the same user"
    );
    assert_eq!(info.client.key, "orders@clients", "the actor's token");
    assert_eq!(info.audience, vec![BILLING.to_owned()]);
    assert_eq!(info.scopes.to_string(), "base");
    let seen = introspected(&h, "orders@clients", &answer.access_token).await;
    assert_eq!(seen["act"], json!({"sub": "orders@clients"}));
    // Not valid at the issuer's own API: it is meant for billing.
    assert!(!h.token_works(&answer.access_token).await);

    // billing exchanges it on: the chain names both (RFC 8693 §4.1).
    let onward = exchange(
        &h,
        "billing@clients",
        &[
            ("subject_token", &answer.access_token),
            ("resource", ORDERS),
        ],
    )
    .await
    .unwrap();
    let seen = introspected(&h, "billing@clients", &onward.access_token).await;
    assert_eq!(
        seen["act"],
        json!({"sub": "billing@clients", "act": {"sub": "orders@clients"}})
    );
    assert!(
        onward.expires_in <= answer.expires_in,
        "never outlives its subject"
    );

    // The user sees both on the account page and revokes one.
    let delegations = h.engine.delegations(h.user.user.id).await.unwrap();
    // Both issued within the same second of the test clock: their order is the hashes'.
    let of = |key: &str| delegations.iter().find(|d| d.actor.key == key).unwrap();
    assert_eq!(delegations.len(), 2);
    assert!(of("orders@clients").through.is_empty());
    assert_eq!(of("billing@clients").through, ["orders@clients"]);
    let orders = of("orders@clients").actor.id;
    h.engine
        .revoke_delegation(h.user.user.id, orders)
        .await
        .unwrap();
    assert!(!live(&h, &answer.access_token).await);
    assert!(live(&h, &onward.access_token).await);
    // Withdrawing the original approval ends every delegation of its grant.
    let python = h
        .engine
        .approved_clients(h.user.user.id)
        .await
        .unwrap()
        .into_iter()
        .find(|(_, c)| c.key == KEY)
        .unwrap()
        .1
        .id;
    h.engine
        .revoke_client(h.user.user.id, python)
        .await
        .unwrap();
    assert!(!live(&h, &onward.access_token).await);
    assert!(h
        .engine
        .delegations(h.user.user.id)
        .await
        .unwrap()
        .is_empty());
}

#[tokio::test]
async fn exchanges_only_narrow_and_refuse_what_they_cannot_do() {
    let h = exchange_harness().await;
    let user_token = h
        .redeem(&h.code(&[("scope", "base openid")]).await)
        .await
        .unwrap()
        .access_token;
    type Case<'a> = (&'a str, Vec<(&'a str, &'a str)>, ErrorCode);
    let cases: Vec<Case> = vec![
        (
            "more scope",
            vec![("subject_token", &user_token), ("scope", "base email")],
            ErrorCode::InvalidScope,
        ),
        (
            "an audience it may not name",
            vec![("subject_token", &user_token), ("audience", ORDERS)],
            ErrorCode::InvalidTarget,
        ),
        (
            "an unknown audience",
            vec![
                ("subject_token", &user_token),
                ("audience", "https://else.example/"),
            ],
            ErrorCode::InvalidTarget,
        ),
        ("no subject token", vec![], ErrorCode::InvalidRequest),
        (
            "an unknown subject token",
            vec![("subject_token", "dwat_nothing")],
            ErrorCode::InvalidRequest,
        ),
        (
            "a refresh token asked for",
            vec![
                ("subject_token", &user_token),
                (
                    "requested_token_type",
                    "urn:ietf:params:oauth:token-type:refresh_token",
                ),
            ],
            ErrorCode::InvalidRequest,
        ),
        (
            "an actor token",
            vec![
                ("subject_token", &user_token),
                ("actor_token", &user_token),
                ("actor_token_type", ACCESS_TOKEN_TYPE),
            ],
            ErrorCode::InvalidRequest,
        ),
    ];
    for (why, extra, code) in cases {
        assert_eq!(
            code_of(exchange(&h, "orders@clients", &extra).await),
            code,
            "{why}"
        );
    }
    let wrong_type = h
        .engine
        .token(&basic_request(
            "orders@clients",
            "svc-secret",
            &[
                ("grant_type", EXCHANGE),
                ("subject_token", &user_token),
                (
                    "subject_token_type",
                    "urn:ietf:params:oauth:token-type:id_token",
                ),
            ],
        ))
        .await;
    assert_eq!(code_of(wrong_type), ErrorCode::InvalidRequest);
    // A client whose grant types do not name it.
    let refused = h
        .engine
        .token(&basic_request(
            KEY,
            SECRET,
            &[
                ("grant_type", EXCHANGE),
                ("subject_token", &user_token),
                ("subject_token_type", ACCESS_TOKEN_TYPE),
            ],
        ))
        .await;
    assert_eq!(code_of(refused), ErrorCode::UnauthorizedClient);
    // A revoked subject token.
    h.engine
        .revoke(&basic_request(KEY, SECRET, &[("token", &user_token)]))
        .await
        .unwrap();
    assert_eq!(
        code_of(exchange(&h, "orders@clients", &[("subject_token", &user_token)]).await),
        ErrorCode::InvalidRequest
    );
    // Nothing was delegated by the refusals.
    assert!(h
        .engine
        .delegations(h.user.user.id)
        .await
        .unwrap()
        .is_empty());
}

#[tokio::test]
async fn only_a_resource_server_passes_on_tokens_and_only_users_tokens_are_exchanged() {
    let mut config = EngineConfig {
        resources: vec![ResourceUri::parse(ORDERS).unwrap()],
        ..EngineConfig::default()
    };
    config.grants.token_exchange = true;
    config.grants.client_credentials = true;
    let h = harness_with(config).await;
    let mut spec = crate::testing::client(
        "tool@clients",
        "Tool",
        "http://localhost:9/cb",
        "svc-secret",
    );
    spec.policy.grant_types = Some(vec![
        GrantType::TokenExchange,
        GrantType::ClientCredentials,
        GrantType::AuthorizationCode,
    ]);
    h.engine.register_client(spec).await.unwrap();
    let users = h
        .redeem(&h.code(&[("scope", "base")]).await)
        .await
        .unwrap()
        .access_token;
    // Another client's token, to a client that is no resource server: refused.
    match exchange(&h, "tool@clients", &[("subject_token", &users)]).await {
        Err(crate::Error::OAuth(e)) => {
            assert_eq!(e.code, ErrorCode::InvalidRequest);
            assert!(e.description.contains("resource server"), "{e:?}");
        }
        other => panic!("another client's token: {other:?}"),
    }
    // Its own client_credentials token acts for no user: refused.
    let own = h
        .engine
        .token(&basic_request(
            "tool@clients",
            "svc-secret",
            &[("grant_type", "client_credentials")],
        ))
        .await
        .unwrap()
        .access_token;
    assert_eq!(
        code_of(exchange(&h, "tool@clients", &[("subject_token", &own)]).await),
        ErrorCode::InvalidRequest
    );
    // Its own user token narrowed to ORDERS stays within ORDERS (RFC 8707 §2.2).
    let query = pairs(&[
        ("response_type", "code"),
        ("client_id", "tool@clients"),
        ("redirect_uri", "http://localhost:9/cb"),
        ("scope", "base"),
        ("resource", ORDERS),
    ]);
    let request = h.engine.check_authorization(&query).await.unwrap();
    let answer = h.engine.approve(&h.user, &request).await.unwrap();
    let code = query_param(&answer, "code").unwrap();
    let narrowed = h
        .engine
        .token(&basic_request(
            "tool@clients",
            "svc-secret",
            &[("grant_type", "authorization_code"), ("code", &code)],
        ))
        .await
        .unwrap()
        .access_token;
    let kept = exchange(&h, "tool@clients", &[("subject_token", &narrowed)])
        .await
        .unwrap();
    let info = h
        .engine
        .resolve_access_token(&kept.access_token)
        .await
        .unwrap();
    assert_eq!(
        info.audience,
        vec![ORDERS.to_owned()],
        "the grant's resources"
    );
    assert_eq!(
        code_of(
            exchange(
                &h,
                "tool@clients",
                &[
                    ("subject_token", &narrowed),
                    ("audience", "http://localhost")
                ],
            )
            .await
        ),
        ErrorCode::InvalidTarget
    );
}

#[tokio::test]
async fn with_the_grant_off_the_server_does_not_answer_it() {
    let h = harness().await;
    let answer = h
        .engine
        .token(&basic_request(
            KEY,
            SECRET,
            &[("grant_type", EXCHANGE), ("subject_token", "x")],
        ))
        .await;
    assert_eq!(code_of(answer), ErrorCode::UnsupportedGrantType);
    assert!(!h.engine.supported_grant_types().contains(&EXCHANGE));
}
