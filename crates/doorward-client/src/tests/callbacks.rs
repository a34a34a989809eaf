//! Callbacks: the query the provider sends the browser back with (RFC 6749 §4.1.2), and the
//! path it comes to (the mix-up defence of providers without an issuer, RFC 9700 §4.4.2).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use crate::error::{ConfigError, FinishError, InvalidState};
use crate::{Callback, Registry, StateKey};

use super::support::*;

#[test]
fn callback_from_query() {
    let callback = Callback::from_query(
        "code=SplxlOBeZQQYbYS6WxSbIA&state=xyz%2Fabc&iss=https%3A%2F%2Fissuer.example&unknown=1",
    );
    assert_eq!(callback.code.as_deref(), Some("SplxlOBeZQQYbYS6WxSbIA"));
    assert_eq!(callback.state.as_deref(), Some("xyz/abc"));
    assert_eq!(callback.iss.as_deref(), Some(ISSUER));
    assert_eq!(callback.error, None);
    assert_eq!(callback.error_description, None);
    assert_eq!(callback.error_uri, None);

    let callback = Callback::from_query(
        "?error=access_denied&error_description=The+user+said+no&error_uri=https%3A%2F%2Fe.example%2Fdoc&state=s",
    );
    assert_eq!(callback.code, None);
    assert_eq!(callback.error.as_deref(), Some("access_denied"));
    assert_eq!(
        callback.error_description.as_deref(),
        Some("The user said no")
    );
    assert_eq!(callback.error_uri.as_deref(), Some("https://e.example/doc"));
    assert_eq!(callback.state.as_deref(), Some("s"));
}

#[test]
fn callback_first_value_wins() {
    let callback = Callback::from_query(
        "code=first&state=one&code=second&state=two&error=e1&error=e2&error_description=d1&error_description=d2&iss=i1&iss=i2",
    );
    assert_eq!(callback.code.as_deref(), Some("first"));
    assert_eq!(callback.state.as_deref(), Some("one"));
    assert_eq!(callback.error.as_deref(), Some("e1"));
    assert_eq!(callback.error_description.as_deref(), Some("d1"));
    assert_eq!(callback.iss.as_deref(), Some("i1"));
}

#[test]
fn callback_empty_query() {
    for query in ["", "?", "foo=bar"] {
        let callback = Callback::from_query(query);
        assert!(
            callback.code.is_none()
                && callback.state.is_none()
                && callback.error.is_none()
                && callback.error_description.is_none()
                && callback.error_uri.is_none()
                && callback.iss.is_none(),
            "{query:?}: {callback:?}"
        );
    }
}

/// A loopback provider of the Eternaltwin preset (no issuer, no `iss`) that counts the codes
/// sent to its token endpoint.
struct TokenEndpoint {
    origin: String,
    redemptions: Arc<AtomicUsize>,
}

impl TokenEndpoint {
    async fn start() -> Self {
        let redemptions = Arc::new(AtomicUsize::new(0));
        let count = redemptions.clone();
        let router = axum::Router::new().route(
            "/oauth/token",
            axum::routing::post(move || {
                count.fetch_add(1, Ordering::SeqCst);
                async {
                    axum::Json(serde_json::json!({
                        "access_token": "at", "token_type": "Bearer", "expires_in": 3600
                    }))
                }
            }),
        );
        Self {
            origin: serve(router).await,
            redemptions,
        }
    }

    fn redemptions(&self) -> usize {
        self.redemptions.load(Ordering::SeqCst)
    }
}

/// RFC 9700 §4.4: the user picks the attacker's provider, which sends the browser on to the
/// honest one under this application's name; the honest provider's code comes back to the
/// honest provider's callback with the attacker's state. Neither the attacker nor anyone else
/// may be sent that code.
#[tokio::test]
async fn mix_up_without_issuer_is_refused_by_the_callback_path() {
    let honest = TokenEndpoint::start().await;
    let attacker = TokenEndpoint::start().await;
    let registry = Registry::from_toml(
        &format!(
            r#"
callback_base = "https://app.example/oauth/callback"

[providers.honest]
preset = "eternaltwin"
url = "{}"
client_id = "app@clients"
client_secret = "s"

[providers.attacker]
preset = "eternaltwin"
url = "{}"
client_id = "app@clients"
client_secret = "s"
"#,
            honest.origin, attacker.origin
        ),
        &StateKey::new([3u8; 32]).unwrap(),
    )
    .unwrap();
    let (honest_client, attacker_client) = (
        registry.get("honest").unwrap(),
        registry.get("attacker").unwrap(),
    );
    assert_eq!(
        honest_client
            .config()
            .redirect_uri
            .as_ref()
            .map(|u| u.as_str()),
        Some("https://app.example/oauth/callback/honest")
    );

    let picked = attacker_client.start_authorization().await.unwrap();
    let arrived = format!(
        "/oauth/callback/honest?code=honest-code&state={}",
        picked.state
    );
    let callback = Callback::from_uri(&arrived);

    // The application finishes with the provider its session remembers: the path says no.
    let result = attacker_client
        .finish_authorization(&callback, Some(&picked.state))
        .await;
    match result {
        Err(FinishError::WrongCallbackPath { expected, got }) => {
            assert_eq!(expected, "/oauth/callback/attacker");
            assert_eq!(got, "/oauth/callback/honest");
        }
        other => panic!("expected WrongCallbackPath, got {other:?}"),
    }
    // Without the path, a registry's provider without an issuer refuses to guess.
    let result = attacker_client
        .finish_authorization(&Callback::from_query(&arrived), Some(&picked.state))
        .await;
    assert!(
        matches!(result, Err(FinishError::UnknownCallbackPath)),
        "{result:?}"
    );
    // The application routes by path: the honest client refuses the attacker's state.
    let (name, routed) = registry.for_callback(&callback).expect("a provider's path");
    assert_eq!(name, "honest");
    let result = routed
        .finish_authorization(&callback, Some(&picked.state))
        .await;
    assert!(
        matches!(
            result,
            Err(FinishError::InvalidState(
                InvalidState::OtherAuthorizationServer { .. }
            ))
        ),
        "{result:?}"
    );
    assert_eq!(attacker.redemptions(), 0, "the attacker never got the code");
    assert_eq!(honest.redemptions(), 0);

    // A genuine sign-in with the honest provider, routed by path.
    let genuine = honest_client.start_authorization().await.unwrap();
    let callback = Callback::from_uri(&format!(
        "https://app.example/oauth/callback/honest?code=c&state={}",
        genuine.state
    ));
    let (_, routed) = registry.for_callback(&callback).unwrap();
    let sign_in = routed
        .finish_authorization(&callback, Some(&genuine.state))
        .await
        .expect("a genuine callback");
    assert_eq!(sign_in.token.access_token(), "at");
    assert_eq!((honest.redemptions(), attacker.redemptions()), (1, 0));
}

#[test]
fn providers_without_issuer_may_not_share_a_redirect_uri() {
    let key = StateKey::new([3u8; 32]).unwrap();
    let toml = |second_issuer: &str| {
        format!(
            r#"
[providers.a]
preset = "eternaltwin"
url = "https://a.example"
client_id = "app"
client_secret = "s"
redirect_uri = "https://app.example/cb"

[providers.b]
{second_issuer}
client_id = "app"
client_secret = "s"
redirect_uri = "https://app.example/cb"
"#
        )
    };
    for second in [
        "preset = \"eternaltwin\"\nurl = \"https://b.example\"",
        "issuer = \"https://b.example\"",
    ] {
        match Registry::from_toml(&toml(second), &key) {
            Err(ConfigError::Invalid { provider, reason }) => {
                assert_eq!(provider, "b");
                assert!(reason.contains("RFC 9700 §4.4.2"), "{reason}");
            }
            other => panic!("{second}: {other:?}"),
        }
    }
    // Two issuers may share one (each callback carries its iss), and a client built by hand
    // checks the path only when given one.
    let both = r#"
[providers.a]
issuer = "https://a.example"
client_id = "app"
client_secret = "s"
redirect_uri = "https://app.example/cb"

[providers.b]
issuer = "https://b.example"
client_id = "app"
client_secret = "s"
redirect_uri = "https://app.example/cb"
"#;
    let registry = Registry::from_toml(both, &key).unwrap();
    assert!(
        registry
            .for_callback(&Callback::from_uri("/cb?code=c"))
            .is_none(),
        "a shared path names no single provider"
    );
}

#[test]
fn callback_from_uri() {
    for uri in [
        "/oauth/cb?code=c&state=s",
        "https://app.example/oauth/cb?code=c&state=s#frag",
        "http://127.0.0.1:8000/oauth/cb?code=c&state=s",
    ] {
        let callback = Callback::from_uri(uri);
        assert_eq!(callback.path.as_deref(), Some("/oauth/cb"), "{uri}");
        assert_eq!(callback.code.as_deref(), Some("c"), "{uri}");
        assert_eq!(callback.state.as_deref(), Some("s"), "{uri}");
    }
    let bare = Callback::from_uri("/oauth/cb");
    assert_eq!(bare.path.as_deref(), Some("/oauth/cb"));
    assert_eq!(bare.code, None);
    // The query cannot set the path.
    let query: Callback =
        serde_json::from_value(serde_json::json!({"code": "c", "path": "/x"})).unwrap();
    assert_eq!(query.path, None);
}
