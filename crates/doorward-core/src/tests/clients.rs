//! Every kind of client: `client_credentials` (RFC 6749 §4.4), public clients (PKCE S256,
//! no secret) and native apps' loopback redirect URIs (RFC 8252 §7.3).

use std::collections::HashMap;

use doorward_proto::{ErrorCode, RedirectUri, Secret, TokenResponse};

use crate::model::{AccessTokenFormat, AuthMethod, ClientPolicy, GrantType};
use crate::request::{AuthorizeError, BasicCredentials, TokenRequest};
use crate::{ClientSpec, EngineConfig, Error};

use super::support::*;

const MACHINE: &str = "machine@clients";
const MACHINE_SECRET: &str = "machine_secret";
const NATIVE: &str = "native@clients";

fn cc_config() -> EngineConfig {
    let mut config = EngineConfig::default();
    config.grants.client_credentials = true;
    config
}

async fn register(h: &Harness, key: &str, secret: &str, uris: &[&str], policy: ClientPolicy) {
    h.engine
        .register_client(ClientSpec {
            key: key.into(),
            display_name: key.into(),
            app_uri: "http://localhost:9000".into(),
            redirect_uris: uris
                .iter()
                .map(|u| RedirectUri::parse(u).unwrap())
                .collect(),
            secret: Secret::new(secret),
            policy,
        })
        .await
        .unwrap();
}

async fn machine(h: &Harness, format: AccessTokenFormat) {
    register(
        h,
        MACHINE,
        MACHINE_SECRET,
        &["https://machine.example/cb"],
        ClientPolicy {
            grant_types: Some(vec![GrantType::ClientCredentials]),
            scopes: Some(doorward_proto::ScopeSet::parse("base openid").unwrap()),
            access_token_format: format,
            ..ClientPolicy::default()
        },
    )
    .await;
}

fn request(basic: Option<(&str, &str)>, params: &[(&str, &str)]) -> TokenRequest {
    TokenRequest {
        resources: Vec::new(),
        params: params
            .iter()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect::<HashMap<_, _>>(),
        basic: basic.map(|(id, secret)| BasicCredentials {
            id: id.into(),
            secret: Secret::new(secret),
        }),
        client_address: None,
        dpop: Default::default(),
    }
}

async fn cc(h: &Harness, params: &[(&str, &str)]) -> Result<TokenResponse, Error> {
    let mut all = vec![("grant_type", "client_credentials")];
    all.extend_from_slice(params);
    h.engine
        .token(&request(Some((MACHINE, MACHINE_SECRET)), &all))
        .await
}

fn error_code(result: Result<TokenResponse, Error>) -> ErrorCode {
    code_of(result)
}

#[tokio::test]
async fn client_credentials_issues_a_user_less_token_without_refresh_or_id_token() {
    let h = harness_with(cc_config()).await;
    machine(&h, AccessTokenFormat::Opaque).await;
    let answer = cc(&h, &[]).await.unwrap();
    assert!(answer.refresh_token.is_none() && answer.id_token.is_none());
    // Without `scope`: the default scopes within the client's, never `openid`.
    assert_eq!(answer.scope.as_deref(), Some("base"));
    let info = h
        .engine
        .check_access_token(&answer.access_token)
        .await
        .unwrap();
    assert!(info.user.is_none());
    assert_eq!(info.client.key, MACHINE);
    assert_eq!(
        info.require_user().unwrap_err().code,
        ErrorCode::InsufficientScope
    );
    // Introspection: the client is the subject; no username.
    let seen = h
        .engine
        .introspect(&request(
            Some((MACHINE, MACHINE_SECRET)),
            &[("token", &answer.access_token)],
        ))
        .await
        .unwrap();
    assert!(seen.active);
    assert_eq!(seen.details["sub"], MACHINE);
    assert_eq!(seen.details["client_id"], MACHINE);
    assert!(!seen.details.contains_key("username"), "{seen:?}");
    // UserInfo is about a user: refused.
    let userinfo = h.engine.userinfo(&answer.access_token).await.unwrap_err();
    assert!(
        matches!(&userinfo, Error::OAuth(e) if e.code == ErrorCode::InsufficientScope),
        "{userinfo:?}"
    );
    // Each token is a family of its own: revoking one leaves the next.
    let second = cc(&h, &[("scope", "base")]).await.unwrap();
    assert_eq!(
        second.scope, None,
        "the scope asked for is the scope granted"
    );
    h.engine
        .revoke(&request(
            Some((MACHINE, MACHINE_SECRET)),
            &[("token", &answer.access_token)],
        ))
        .await
        .unwrap();
    assert!(!h.token_works(&answer.access_token).await);
    assert!(h.token_works(&second.access_token).await);
}

#[tokio::test]
async fn client_credentials_refuses_openid_other_scopes_and_clients_without_the_grant() {
    let h = harness_with(cc_config()).await;
    machine(&h, AccessTokenFormat::Opaque).await;
    assert_eq!(
        error_code(cc(&h, &[("scope", "openid")]).await),
        ErrorCode::InvalidScope
    );
    assert_eq!(
        error_code(cc(&h, &[("scope", "profile")]).await),
        ErrorCode::InvalidScope
    );
    // An Eternaltwin-form client has authorization_code and refresh_token only.
    let refused = h.token(&[("grant_type", "client_credentials")]).await;
    assert_eq!(error_code(refused), ErrorCode::UnauthorizedClient);
    // A client_credentials-only client gets no code.
    let query = pairs(&[
        ("response_type", "code"),
        ("client_id", MACHINE),
        ("redirect_uri", "https://machine.example/cb"),
    ]);
    match h.engine.check_authorization(&query).await {
        Err(AuthorizeError::Redirect { error, .. }) => {
            assert_eq!(error.code, ErrorCode::UnauthorizedClient)
        }
        other => panic!("{other:?}"),
    }
    // Off server-wide: unsupported_grant_type, and not in the metadata.
    let off = harness().await;
    machine(&off, AccessTokenFormat::Opaque).await;
    assert_eq!(
        error_code(cc(&off, &[]).await),
        ErrorCode::UnsupportedGrantType
    );
    assert!(!off
        .engine
        .supported_grant_types()
        .contains(&"client_credentials"));
    assert!(h
        .engine
        .supported_grant_types()
        .contains(&"client_credentials"));
}

#[tokio::test]
async fn client_credentials_jwt_access_token_has_the_client_as_subject() {
    let h = harness_with(cc_config()).await;
    machine(&h, AccessTokenFormat::Jwt).await;
    let answer = cc(&h, &[]).await.unwrap();
    // `verify_own_jws` refuses `at+jwt` by design (RFC 9068 §4); the payload is read here.
    use base64::Engine as _;
    let payload = answer.access_token.split('.').nth(1).unwrap();
    let claims: serde_json::Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload)
            .unwrap(),
    )
    .unwrap();
    assert_eq!(claims["sub"], MACHINE);
    assert_eq!(claims["client_id"], MACHINE);
    assert!(claims.get("auth_time").is_none(), "{claims}");
}

async fn native(h: &Harness, require_pkce: bool) {
    register(
        h,
        NATIVE,
        "",
        &["http://127.0.0.1/cb", "com.example.app:/cb"],
        ClientPolicy {
            auth_method: Some(AuthMethod::None),
            require_pkce,
            ..ClientPolicy::default()
        },
    )
    .await;
}

#[tokio::test]
async fn a_public_client_needs_s256_and_redeems_with_its_client_id_only() {
    let h = harness().await;
    native(&h, false).await;
    let authorize = |extra: &[(&str, &str)]| {
        let mut query = vec![
            ("response_type", "code"),
            ("client_id", NATIVE),
            ("redirect_uri", "http://127.0.0.1:49152/cb"),
        ];
        query.extend_from_slice(extra);
        pairs(&query)
    };
    for missing in [
        vec![],
        vec![
            ("code_challenge", VERIFIER),
            ("code_challenge_method", "plain"),
        ],
    ] {
        match h.engine.check_authorization(&authorize(&missing)).await {
            Err(AuthorizeError::Redirect { error, .. }) => {
                assert_eq!(error.code, ErrorCode::InvalidRequest)
            }
            other => panic!("{other:?}"),
        }
    }
    let checked = h
        .engine
        .check_authorization(&authorize(&[
            ("code_challenge", CHALLENGE),
            ("code_challenge_method", "S256"),
        ]))
        .await
        .unwrap();
    // The loopback URI registered without a port matched the one with a port, and the code
    // goes back to the port the app listens on.
    let location = h.engine.approve(&h.user, &checked).await.unwrap().url();
    assert!(
        location.starts_with("http://127.0.0.1:49152/cb?"),
        "{location}"
    );
    let code = query_param(&location, "code").unwrap();
    let redeem = |redirect: &'static str, code: String| {
        request(
            None,
            &[
                ("grant_type", "authorization_code"),
                ("client_id", NATIVE),
                ("code", code.leak()),
                ("redirect_uri", redirect),
                ("code_verifier", VERIFIER),
            ],
        )
    };
    // The token request must name the URI used, not the registered one.
    let wrong = h
        .engine
        .token(&redeem("http://127.0.0.1/cb", code.clone()))
        .await;
    assert_eq!(error_code(wrong), ErrorCode::InvalidGrant);
    let location = h.engine.approve(&h.user, &checked).await.unwrap();
    let code = query_param(&location, "code").unwrap();
    let tokens = h
        .engine
        .token(&redeem("http://127.0.0.1:49152/cb", code))
        .await
        .unwrap();
    let refresh = tokens
        .refresh_token
        .expect("a public client gets a refresh token");
    // Refresh rotates, with the client_id alone.
    let rotated = h
        .engine
        .token(&request(
            None,
            &[
                ("grant_type", "refresh_token"),
                ("client_id", NATIVE),
                ("refresh_token", &refresh),
            ],
        ))
        .await
        .unwrap();
    assert_ne!(rotated.refresh_token.as_deref(), Some(refresh.as_str()));
    // A confidential client is not authenticated by its client_id alone.
    let confidential = h
        .engine
        .token(&request(
            None,
            &[
                ("grant_type", "refresh_token"),
                ("client_id", KEY),
                ("refresh_token", "x"),
            ],
        ))
        .await;
    assert_eq!(error_code(confidential), ErrorCode::InvalidClient);
    // A public client never gets client_credentials, even when the server answers it.
    let cc_server = harness_with(cc_config()).await;
    native(&cc_server, false).await;
    let refused = cc_server
        .engine
        .token(&request(
            None,
            &[("grant_type", "client_credentials"), ("client_id", NATIVE)],
        ))
        .await;
    assert_eq!(error_code(refused), ErrorCode::UnauthorizedClient);
}

#[tokio::test]
async fn pkce_can_be_required_per_client_and_server_wide() {
    let h = harness().await;
    register(
        &h,
        "strict@clients",
        "strict_secret",
        &["https://strict.example/cb"],
        ClientPolicy {
            require_pkce: true,
            ..ClientPolicy::default()
        },
    )
    .await;
    let query = |client: &str, uri: &str| {
        pairs(&[
            ("response_type", "code"),
            ("client_id", client),
            ("redirect_uri", uri),
        ])
    };
    assert!(matches!(
        h.engine
            .check_authorization(&query("strict@clients", "https://strict.example/cb"))
            .await,
        Err(AuthorizeError::Redirect { .. })
    ));
    // Other clients are not concerned...
    assert!(h
        .engine
        .check_authorization(&query(KEY, CALLBACK))
        .await
        .is_ok());
    // ...unless the server requires it of everyone.
    let strict = harness_with(EngineConfig {
        require_pkce: true,
        ..EngineConfig::default()
    })
    .await;
    assert!(strict
        .engine
        .check_authorization(&query(KEY, CALLBACK))
        .await
        .is_err());
}

#[tokio::test]
async fn several_redirect_uris_match_exactly_except_loopback_ports() {
    let h = harness().await;
    native(&h, false).await;
    let pkce = [
        ("code_challenge", CHALLENGE),
        ("code_challenge_method", "S256"),
    ];
    let try_uri = |uri: &'static str| {
        let mut query = vec![
            ("response_type", "code"),
            ("client_id", NATIVE),
            ("redirect_uri", uri),
        ];
        query.extend_from_slice(&pkce);
        pairs(&query)
    };
    for ok in [
        "com.example.app:/cb",
        "http://127.0.0.1/cb",
        "http://127.0.0.1:8080/cb",
    ] {
        assert!(
            h.engine.check_authorization(&try_uri(ok)).await.is_ok(),
            "{ok}"
        );
    }
    for shown in [
        "com.example.app:/cb2",
        "http://127.0.0.1:8080/cb/",
        "http://localhost:8080/cb",
        "http://[::1]:8080/cb",
    ] {
        assert!(
            matches!(
                h.engine.check_authorization(&try_uri(shown)).await,
                Err(AuthorizeError::Show(_))
            ),
            "{shown}"
        );
    }
    // With several URIs registered, leaving it out is no longer possible.
    let query = pairs(&[
        ("response_type", "code"),
        ("client_id", NATIVE),
        ("code_challenge", CHALLENGE),
        ("code_challenge_method", "S256"),
    ]);
    assert!(matches!(
        h.engine.check_authorization(&query).await,
        Err(AuthorizeError::Show(_))
    ));
}
