//! The application's access-token format (TxOAuth2's `TokenFactory`): its tokens are stored by
//! hash and live like opaque ones (checked, introspected, refreshed, revoked); an unusable one
//! is a server error, never a token.

use std::sync::Arc;

use crate::model::AccessTokenFormat;
use crate::token_format::{AccessTokenIssuer, NewAccessToken};
use crate::Error;

use super::support::*;

/// `gmtk_` (a prefix secret scanners know), the scope's first letter, then the unique part.
struct Prefixed;

impl AccessTokenIssuer for Prefixed {
    fn issue(&self, token: &NewAccessToken<'_>) -> Result<String, Error> {
        assert!(token.expires_at > token.issued_at);
        assert_eq!(token.client.key, KEY);
        Ok(format!(
            "gmtk_{}_{}",
            token.user_id.is_some() as u8,
            token.unique
        ))
    }
}

/// Spaces (no header can carry them), or the same token every time.
struct Broken(&'static str);

impl AccessTokenIssuer for Broken {
    fn issue(&self, token: &NewAccessToken<'_>) -> Result<String, Error> {
        Ok(match self.0 {
            "spaces" => format!("a token with spaces {}", token.unique),
            _ => "the-same-token-for-everyone".into(),
        })
    }
}

async fn application_format(h: &Harness) {
    let mut client =
        std::sync::Arc::unwrap_or_clone(h.engine.find_client(KEY).await.unwrap().unwrap());
    client.policy.access_token_format = AccessTokenFormat::Application;
    h.engine.store().upsert_client(&client).await.unwrap();
}

#[tokio::test]
async fn the_applications_tokens_live_like_opaque_ones() {
    let h = harness().await;
    let h = Harness {
        engine: h.engine.with_access_token_issuer(Arc::new(Prefixed)),
        ..h
    };
    application_format(&h).await;
    let code = h.code(&[]).await;
    let tokens = h.redeem(&code).await.unwrap();
    assert!(
        tokens.access_token.starts_with("gmtk_1_"),
        "{}",
        tokens.access_token
    );
    assert!(h.token_works(&tokens.access_token).await);
    let seen = h
        .engine
        .introspect(&basic_request(
            KEY,
            SECRET,
            &[("token", &tokens.access_token)],
        ))
        .await
        .unwrap();
    assert!(seen.active);
    let refreshed = h
        .refresh(tokens.refresh_token.as_deref().unwrap())
        .await
        .unwrap();
    assert!(refreshed.access_token.starts_with("gmtk_1_"));
    assert_ne!(refreshed.access_token, tokens.access_token);
    h.engine
        .revoke(&basic_request(
            KEY,
            SECRET,
            &[("token", &refreshed.access_token)],
        ))
        .await
        .unwrap();
    assert!(!h.token_works(&refreshed.access_token).await);
}

#[tokio::test]
async fn an_unusable_token_is_a_server_error_and_without_an_issuer_tokens_are_opaque() {
    let h = harness().await;
    application_format(&h).await;
    // No issuer: the built-in opaque tokens.
    let code = h.code(&[]).await;
    let tokens = h.redeem(&code).await.unwrap();
    assert!(!tokens.access_token.starts_with("gmtk_"));
    assert!(h.token_works(&tokens.access_token).await);

    let mut h = h;
    for broken in ["spaces", "constant"] {
        h = Harness {
            engine: h.engine.with_access_token_issuer(Arc::new(Broken(broken))),
            ..h
        };
        let code = h.code(&[]).await;
        match h.redeem(&code).await {
            Err(Error::Store(_)) => {}
            other => panic!("{broken}: expected a server error, got {other:?}"),
        }
    }
}
