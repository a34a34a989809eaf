//! What the README promises about the user behind a token and the size of answers: a refreshed
//! ID token must keep `sub` (OIDC Core §12.2), userinfo is checked against the ID token's
//! `sub` (§5.3.2), and no body over 4 MiB is read.

use std::sync::{Arc, Mutex};

use doorward_proto::{at_hash, Secret};
use jsonwebtoken::Algorithm;
use serde_json::json;

use crate::error::{ApiError, RefreshError, TokenError, TransportError};
use crate::{Client, ProviderConfig, Token};

use super::support::*;

/// A loopback OIDC provider whose token endpoint issues ES256 ID tokens about `sub_token`,
/// whose userinfo answers `sub_userinfo`, and whose `/big` answers `big_len` bytes.
struct Provider {
    issuer: String,
    key: TestKey,
    sub_token: Arc<Mutex<String>>,
    sub_userinfo: Arc<Mutex<String>>,
}

impl Provider {
    async fn start(big_len: usize) -> Self {
        use axum::routing::{get, post};
        let key = es256_key("ec-1");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let issuer = format!("http://{}", listener.local_addr().unwrap());
        let metadata = json!({
            "issuer": issuer,
            "authorization_endpoint": format!("{issuer}/authorize"),
            "token_endpoint": format!("{issuer}/token"),
            "userinfo_endpoint": format!("{issuer}/userinfo"),
            "jwks_uri": format!("{issuer}/jwks"),
            "response_types_supported": ["code"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["ES256"],
        });
        let jwks = json!({ "keys": [key.jwk.clone()] });
        let sub_token = Arc::new(Mutex::new("user-1".to_owned()));
        let sub_userinfo = Arc::new(Mutex::new("user-1".to_owned()));
        let encoding = key.encoding.clone();
        let token_issuer = issuer.clone();
        let app = axum::Router::new()
            .route(
                "/.well-known/openid-configuration",
                get(move || async move { axum::Json(metadata) }),
            )
            .route("/jwks", get(move || async move { axum::Json(jwks) }))
            .route("/token", {
                let sub = sub_token.clone();
                post(move || {
                    let sub = sub.lock().unwrap().clone();
                    let key = TestKey {
                        alg: Algorithm::ES256,
                        kid: "ec-1".into(),
                        encoding: encoding.clone(),
                        jwk: json!({}),
                    };
                    let id_token = sign(&key, &claims(&token_issuer, &sub, "fresh-access"));
                    async move {
                        axum::Json(json!({
                            "access_token": "fresh-access",
                            "token_type": "Bearer",
                            "expires_in": 600,
                            "refresh_token": "fresh-refresh",
                            "id_token": id_token,
                        }))
                    }
                })
            })
            .route("/userinfo", {
                let sub = sub_userinfo.clone();
                get(move || {
                    let sub = sub.lock().unwrap().clone();
                    async move { axum::Json(json!({ "sub": sub, "name": "A" })) }
                })
            })
            .route(
                "/big",
                get(move || async move { "x".repeat(big_len) }).post(move || async move {
                    axum::Json(
                        json!({ "access_token": "x".repeat(big_len), "token_type": "Bearer" }),
                    )
                }),
            );
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Self {
            issuer,
            key,
            sub_token,
            sub_userinfo,
        }
    }

    fn client(&self) -> Client {
        let mut config = ProviderConfig::oidc(&self.issuer, CLIENT_ID).with_secret("s");
        config.api_base = Some(format!("{}/", self.issuer).parse().unwrap());
        Client::builder(config).clock(|| NOW).build().unwrap()
    }

    /// A token as the application kept it from the sign-in: its ID token is about `sub`.
    fn signed_in_token(&self, sub: &str) -> Token {
        let mut token = Token::new("first-access", Some(NOW + 600)).with_refresh_token("r0");
        token.id_token = Some(Secret::new(sign(
            &self.key,
            &claims(&self.issuer, sub, "first-access"),
        )));
        token
    }
}

fn claims(issuer: &str, sub: &str, access_token: &str) -> serde_json::Value {
    json!({
        "iss": issuer,
        "sub": sub,
        "aud": CLIENT_ID,
        "exp": NOW + 600,
        "iat": NOW - 10,
        "at_hash": at_hash("ES256", access_token),
    })
}

#[tokio::test]
async fn a_refreshed_id_token_must_keep_sub_and_userinfo_must_match_it() {
    let provider = Provider::start(0).await;
    let client = provider.client();
    let token = provider.signed_in_token("user-1");

    let fresh = client.refresh(&token).await.expect("same sub: accepted");
    assert_eq!(fresh.access_token(), "fresh-access");
    let info = client.userinfo(&fresh).await.unwrap();
    assert_eq!(info.subject, "user-1");

    *provider.sub_token.lock().unwrap() = "user-2".into();
    match client.refresh(&token).await {
        Err(RefreshError::SubjectChanged) => {}
        other => panic!("expected SubjectChanged, got {other:?}"),
    }

    *provider.sub_userinfo.lock().unwrap() = "user-2".into();
    match client.userinfo(&fresh).await {
        Err(ApiError::SubjectMismatch { expected, got }) => {
            assert_eq!((expected.as_str(), got.as_str()), ("user-1", "user-2"))
        }
        other => panic!("expected SubjectMismatch, got {other:?}"),
    }
}

#[tokio::test]
async fn no_answer_over_4_mib_is_read() {
    const LIMIT: usize = 4 * 1024 * 1024;
    let provider = Provider::start(LIMIT + 1).await;
    let mut config = ProviderConfig::oauth2(
        format!("{}/authorize", provider.issuer).parse().unwrap(),
        format!("{}/big", provider.issuer).parse().unwrap(),
        "app",
    )
    .with_secret("s");
    config.api_base = Some(format!("{}/", provider.issuer).parse().unwrap());
    let client = Client::builder(config).build().unwrap();
    let token = Token::new("a", None).with_refresh_token("r");
    match client.refresh(&token).await {
        Err(RefreshError::Token(TokenError::Transport(TransportError::BodyTooLarge {
            limit,
            ..
        }))) => assert_eq!(limit, LIMIT),
        other => panic!("expected BodyTooLarge, got {other:?}"),
    }
    match client.authorized(token).get("big").await {
        Err(ApiError::Transport(TransportError::BodyTooLarge { limit, .. })) => {
            assert_eq!(limit, LIMIT)
        }
        other => panic!("expected BodyTooLarge, got {:?}", other.map(|r| r.status)),
    }

    // Just under the cap is read.
    let provider = Provider::start(LIMIT - 64).await;
    let mut config = ProviderConfig::oidc(&provider.issuer, CLIENT_ID).with_secret("s");
    config.api_base = Some(format!("{}/", provider.issuer).parse().unwrap());
    let client = Client::builder(config).build().unwrap();
    let response = client
        .authorized(Token::new("a", None))
        .get("big")
        .await
        .unwrap();
    assert_eq!(response.body.len(), LIMIT - 64);
}
