//! Token introspection (RFC 7662): a client sees its own tokens; a resource server sees access
//! tokens.

use doorward_proto::{RedirectUri, Secret};

use crate::request::{BasicCredentials, TokenRequest};
use crate::ClientSpec;

use super::support::*;

#[tokio::test]
async fn introspection_shows_a_client_its_own_tokens_only() {
    use crate::model::ClientPolicy;
    let h = harness().await;
    let code = h.code(&[]).await;
    let tokens = h.redeem(&code).await.unwrap();
    let ask = |id: &str, secret: &str, token: &str| TokenRequest {
        resources: Vec::new(),
        params: [("token".to_owned(), token.to_owned())]
            .into_iter()
            .collect(),
        basic: Some(BasicCredentials {
            id: id.into(),
            secret: Secret::new(secret),
        }),
        client_address: None,
        dpop: Default::default(),
    };
    let own = h
        .engine
        .introspect(&ask(KEY, SECRET, &tokens.access_token))
        .await
        .unwrap();
    assert!(own.active);
    assert_eq!(own.details["client_id"], KEY);
    for token in [&tokens.access_token, tokens.refresh_token.as_ref().unwrap()] {
        let other = h
            .engine
            .introspect(&ask("other@clients", "other_secret", token))
            .await
            .unwrap();
        assert!(!other.active && other.details.is_empty(), "{other:?}");
    }
    // A client registered as a resource server sees other clients' access tokens, never
    // their refresh tokens.
    h.engine
        .register_client(ClientSpec {
            key: "api@clients".into(),
            display_name: "API".into(),
            app_uri: "http://localhost:9000".into(),
            redirect_uris: vec![RedirectUri::parse("http://localhost:9000/cb").unwrap()],
            secret: Secret::new("api_secret"),
            policy: ClientPolicy {
                resource_server: true,
                ..ClientPolicy::default()
            },
        })
        .await
        .unwrap();
    let api_access = ask("api@clients", "api_secret", &tokens.access_token);
    assert!(h.engine.introspect(&api_access).await.unwrap().active);
    let api_refresh = ask(
        "api@clients",
        "api_secret",
        tokens.refresh_token.as_ref().unwrap(),
    );
    assert!(!h.engine.introspect(&api_refresh).await.unwrap().active);
}
