//! Resource indicators (RFC 8707): `resource` at the authorization and token endpoints, the
//! audience of the tokens, and `invalid_target`.

use std::collections::HashMap;

use doorward_proto::{ErrorCode, RedirectUri, ResourceUri, Secret, TokenResponse};
use serde_json::json;

use crate::model::{AccessTokenFormat, ClientPolicy, GrantType};
use crate::request::{AuthorizeError, BasicCredentials, TokenRequest};
use crate::{ClientSpec, EngineConfig, Error};

use super::support::*;

const API: &str = "https://api.example/";
const MCP: &str = "https://mcp.example/mcp";
/// Known to the server, not allowed to the JWT client.
const ADMIN: &str = "https://admin.example/";
const JWT_KEY: &str = "jwt@clients";
const JWT_SECRET: &str = "jwt_secret_value";

fn r(s: &str) -> ResourceUri {
    ResourceUri::parse(s).unwrap()
}

async fn harness_with_resources() -> Harness {
    let mut config = EngineConfig {
        resources: vec![r(API), r(MCP), r(ADMIN)],
        ..EngineConfig::default()
    };
    config.grants.client_credentials = true;
    let h = harness_with(config).await;
    h.engine
        .register_client(ClientSpec {
            key: JWT_KEY.into(),
            display_name: "JWT".into(),
            app_uri: "http://localhost:9000".into(),
            redirect_uris: vec![RedirectUri::parse("http://localhost:9000/cb").unwrap()],
            secret: Secret::new(JWT_SECRET),
            policy: ClientPolicy {
                access_token_format: AccessTokenFormat::Jwt,
                resources: Some(vec![r(API), r(MCP)]),
                grant_types: Some(vec![
                    GrantType::AuthorizationCode,
                    GrantType::RefreshToken,
                    GrantType::ClientCredentials,
                ]),
                resource_server: true,
                ..ClientPolicy::default()
            },
        })
        .await
        .unwrap();
    h
}

/// An authorization request of the JWT client with `extra` parameters (repeats allowed).
async fn authorize(h: &Harness, extra: &[(&str, &str)]) -> Result<String, AuthorizeError> {
    let mut query = vec![
        ("response_type", "code"),
        ("client_id", JWT_KEY),
        ("redirect_uri", "http://localhost:9000/cb"),
        ("state", "s"),
    ];
    query.extend_from_slice(extra);
    let request = h.engine.check_authorization(&pairs(&query)).await?;
    let location = h.engine.approve(&h.user, &request).await.unwrap();
    Ok(query_param(&location, "code").unwrap())
}

async fn token(
    h: &Harness,
    params: &[(&str, &str)],
    resources: &[&str],
) -> Result<TokenResponse, Error> {
    h.engine
        .token(&TokenRequest {
            params: params
                .iter()
                .map(|(n, v)| (n.to_string(), v.to_string()))
                .collect::<HashMap<_, _>>(),
            resources: resources.iter().map(|s| s.to_string()).collect(),
            basic: Some(BasicCredentials {
                id: JWT_KEY.into(),
                secret: Secret::new(JWT_SECRET),
            }),
            client_address: None,
            dpop: Default::default(),
        })
        .await
}

/// The `aud` of a JWT access token (its signature is other tests' business).
fn aud(_: &Harness, jwt: &str) -> serde_json::Value {
    let claims: serde_json::Value = crate::jose::unverified_claims(jwt).unwrap();
    claims["aud"].clone()
}

#[tokio::test]
async fn the_grant_keeps_its_resources_and_each_token_narrows_them() {
    let h = harness_with_resources().await;
    let code = authorize(&h, &[("resource", API), ("resource", MCP)])
        .await
        .unwrap();
    let redeem = [("grant_type", "authorization_code"), ("code", &code)];
    // Beyond the grant: refused, and the code stays usable.
    assert_eq!(
        code_of(token(&h, &redeem, &["https://elsewhere.example/"]).await),
        ErrorCode::InvalidTarget
    );
    let tokens = token(&h, &redeem, &[MCP]).await.unwrap();
    assert_eq!(aud(&h, &tokens.access_token), json!(MCP));
    // Meant for the MCP server, not for the issuer's own API.
    assert!(h
        .engine
        .check_access_token(&tokens.access_token)
        .await
        .is_err());
    let info = h
        .engine
        .resolve_access_token(&tokens.access_token)
        .await
        .unwrap();
    assert_eq!(info.audience, [MCP]);

    // A refresh asks for another resource of the grant, or all of them.
    let refresh = tokens.refresh_token.unwrap();
    let next = token(
        &h,
        &[("grant_type", "refresh_token"), ("refresh_token", &refresh)],
        &[API],
    )
    .await
    .unwrap();
    assert_eq!(aud(&h, &next.access_token), json!(API));
    let refresh = next.refresh_token.unwrap();
    let all = token(
        &h,
        &[("grant_type", "refresh_token"), ("refresh_token", &refresh)],
        &[],
    )
    .await
    .unwrap();
    assert_eq!(aud(&h, &all.access_token), json!([API, MCP]));
    // Known to the server and allowed, but not in the grant (RFC 8707 §2.2).
    let refresh = all.refresh_token.unwrap();
    let issuer = h.engine.config().issuer.clone();
    assert_eq!(
        code_of(
            token(
                &h,
                &[("grant_type", "refresh_token"), ("refresh_token", &refresh)],
                &[&issuer],
            )
            .await
        ),
        ErrorCode::InvalidTarget
    );
}

#[tokio::test]
async fn invalid_target_is_redirected_from_the_authorization_endpoint() {
    let h = harness_with_resources().await;
    for bad in [
        "/relative",
        "https://api.example/#fragment",
        "https://unknown.example/",
        // Known to the server, not among the client's resources.
        ADMIN,
    ] {
        match authorize(&h, &[("resource", API), ("resource", bad)]).await {
            Err(AuthorizeError::Redirect {
                error, response, ..
            }) => {
                let location = response.url();
                assert_eq!(error.code, ErrorCode::InvalidTarget, "{bad}");
                assert_eq!(
                    query_param(&location, "error").as_deref(),
                    Some("invalid_target")
                );
            }
            other => panic!("{bad}: expected a redirect with invalid_target, got {other:?}"),
        }
    }
    // Other parameters still may not repeat.
    assert!(matches!(
        authorize(&h, &[("scope", "base"), ("scope", "base")]).await,
        Err(AuthorizeError::Redirect { error, .. }) if error.code == ErrorCode::InvalidRequest
    ));
}

#[tokio::test]
async fn without_resources_tokens_keep_the_default_audience() {
    let h = harness_with_resources().await;
    let code = authorize(&h, &[]).await.unwrap();
    let tokens = token(
        &h,
        &[("grant_type", "authorization_code"), ("code", &code)],
        &[],
    )
    .await
    .unwrap();
    let issuer = h.engine.config().issuer.clone();
    assert_eq!(aud(&h, &tokens.access_token), json!(issuer));
    assert!(h
        .engine
        .check_access_token(&tokens.access_token)
        .await
        .is_ok());
    // The grant named none: a refresh may name any the client may have, not others.
    let refresh = tokens.refresh_token.unwrap();
    let refresh_with = |resource: &'static str, refresh: String| {
        let h = &h;
        async move {
            token(
                h,
                &[("grant_type", "refresh_token"), ("refresh_token", &refresh)],
                &[resource],
            )
            .await
        }
    };
    assert_eq!(
        code_of(refresh_with(ADMIN, refresh.clone()).await),
        ErrorCode::InvalidTarget
    );
    let narrowed = refresh_with(API, refresh).await.unwrap();
    assert_eq!(aud(&h, &narrowed.access_token), json!(API));
}

#[tokio::test]
async fn opaque_tokens_keep_their_audience_for_introspection() {
    let h = harness_with_resources().await;
    let code = h.code(&[("resource", API)]).await;
    let tokens = h.redeem(&code).await.unwrap();
    let introspect = |token: String| TokenRequest {
        params: [("token".to_owned(), token)].into_iter().collect(),
        resources: Vec::new(),
        basic: Some(BasicCredentials {
            id: KEY.into(),
            secret: Secret::new(SECRET),
        }),
        client_address: None,
        dpop: Default::default(),
    };
    let answer = h
        .engine
        .introspect(&introspect(tokens.access_token.clone()))
        .await
        .unwrap();
    assert!(answer.active);
    assert_eq!(answer.details["aud"], json!(API));
    assert!(!h.token_works(&tokens.access_token).await);
    // Without a resource: the default audience, the issuer.
    let code = h.code(&[]).await;
    let plain = h.redeem(&code).await.unwrap();
    let answer = h
        .engine
        .introspect(&introspect(plain.access_token.clone()))
        .await
        .unwrap();
    assert_eq!(answer.details["aud"], json!(h.engine.config().issuer));
    assert!(h.token_works(&plain.access_token).await);
}

#[tokio::test]
async fn client_credentials_takes_resources_the_client_may_have() {
    let h = harness_with_resources().await;
    let cc = [("grant_type", "client_credentials")];
    let one = token(&h, &cc, &[MCP]).await.unwrap();
    assert_eq!(aud(&h, &one.access_token), json!(MCP));
    let two = token(&h, &cc, &[API, MCP, API]).await.unwrap();
    assert_eq!(aud(&h, &two.access_token), json!([API, MCP]));
    for bad in [
        ADMIN,
        "not a uri",
        "https://api.example/#x",
        "urn:unknown:thing",
    ] {
        assert_eq!(
            code_of(token(&h, &cc, &[bad]).await),
            ErrorCode::InvalidTarget,
            "{bad}"
        );
    }
}

#[tokio::test]
async fn the_legacy_grants_take_resources_too() {
    let mut config = EngineConfig {
        resources: vec![r(API), r(MCP)],
        ..EngineConfig::default()
    };
    config.grants.insecure_password = true;
    config.grants.insecure_implicit = true;
    let h = harness_with(config).await;
    h.engine
        .register_client(ClientSpec {
            key: JWT_KEY.into(),
            display_name: "Legacy".into(),
            app_uri: "http://localhost:9000".into(),
            redirect_uris: vec![RedirectUri::parse("http://localhost:9000/cb").unwrap()],
            secret: Secret::new(JWT_SECRET),
            policy: ClientPolicy {
                access_token_format: AccessTokenFormat::Jwt,
                insecure_password: true,
                insecure_implicit: true,
                ..ClientPolicy::default()
            },
        })
        .await
        .unwrap();
    let password = [
        ("grant_type", "password"),
        ("username", "alice"),
        ("password", "pw"),
    ];
    let tokens = token(&h, &password, &[MCP]).await.unwrap();
    assert_eq!(aud(&h, &tokens.access_token), json!(MCP));
    // Its refresh token keeps the grant's resources: nothing beyond them.
    let refresh = tokens.refresh_token.unwrap();
    assert_eq!(
        code_of(
            token(
                &h,
                &[("grant_type", "refresh_token"), ("refresh_token", &refresh)],
                &[API],
            )
            .await
        ),
        ErrorCode::InvalidTarget
    );
    assert_eq!(
        code_of(token(&h, &password, &["https://unknown.example/"]).await),
        ErrorCode::InvalidTarget
    );

    // The implicit grant: the token in the fragment is meant for the resource asked.
    let query = pairs(&[
        ("response_type", "token"),
        ("client_id", JWT_KEY),
        ("redirect_uri", "http://localhost:9000/cb"),
        ("resource", API),
    ]);
    let request = h.engine.check_authorization(&query).await.unwrap();
    let location = h.engine.approve(&h.user, &request).await.unwrap().url();
    let fragment = location.split_once('#').unwrap().1;
    let access = url::form_urlencoded::parse(fragment.as_bytes())
        .find(|(n, _)| n == "access_token")
        .unwrap()
        .1
        .into_owned();
    assert_eq!(aud(&h, &access), json!(API));
    let info = h.engine.resolve_access_token(&access).await.unwrap();
    assert_eq!(info.audience, [API]);
}
