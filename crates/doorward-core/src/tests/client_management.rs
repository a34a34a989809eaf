//! Clients managed while the engine runs (`doorward clients …`): a new client's secret, a
//! rotation with and without overlap (the verified-secret cache must not keep the old secret
//! alive), removal that stops the client's tokens at once.

use doorward_proto::{ErrorCode, RedirectUri, Secret};

use crate::clients::{ClientAdminError, NewClient};
use crate::model::{ClientPolicy, ClientSource};
use crate::request::{BasicCredentials, TokenRequest};

use super::support::*;

/// Whether `secret` authenticates `key` (the password grant is off: an authenticated client
/// gets `unsupported_grant_type`, another `invalid_client`).
async fn authenticates(h: &Harness, key: &str, secret: &str) -> bool {
    let answer = h
        .engine
        .token(&TokenRequest {
            resources: Vec::new(),
            params: [("grant_type".to_owned(), "password".to_owned())].into(),
            basic: Some(BasicCredentials {
                id: key.into(),
                secret: Secret::new(secret),
            }),
            client_address: None,
            dpop: Default::default(),
        })
        .await;
    match code_of(answer) {
        ErrorCode::UnsupportedGrantType => true,
        ErrorCode::InvalidClient => false,
        other => panic!("unexpected answer {other:?}"),
    }
}

fn new_client(key: &str) -> NewClient {
    NewClient {
        key: key.into(),
        display_name: "CLI".into(),
        app_uri: "http://localhost:9000".into(),
        redirect_uris: vec![RedirectUri::parse("http://localhost:9000/cb").unwrap()],
        policy: ClientPolicy::default(),
    }
}

#[tokio::test]
async fn an_added_client_authenticates_with_its_secret_and_its_key_is_unique() {
    let h = harness().await;
    let (client, secret) = h
        .engine
        .add_client(new_client("cli@clients"), &crate::audit::Actor::System)
        .await
        .unwrap();
    let secret = secret.expect("a secret-based client gets a secret");
    assert_eq!(client.source, ClientSource::Cli);
    assert_eq!(client.id.get_version_num(), 4, "a random (v4) Id");
    assert!(secret.secret().len() >= 43, "256 bits, base64url");
    assert!(!client
        .secret_hash
        .as_deref()
        .unwrap()
        .contains(secret.secret()));
    assert!(authenticates(&h, "cli@clients", secret.secret()).await);
    assert!(authenticates(&h, &client.id.to_string(), secret.secret()).await);
    assert!(!authenticates(&h, "cli@clients", "wrong-secret").await);
    for taken in ["cli@clients", KEY] {
        assert!(matches!(
            h.engine
                .add_client(new_client(taken), &crate::audit::Actor::System)
                .await,
            Err(ClientAdminError::KeyTaken(_))
        ));
    }
}

#[tokio::test]
async fn a_rotation_keeps_the_old_secret_for_the_overlap_only() {
    let h = harness().await;
    let (_, first) = h
        .engine
        .add_client(new_client("cli@clients"), &crate::audit::Actor::System)
        .await
        .unwrap();
    let first = first.unwrap();
    // Verified once: the cache holds the first secret.
    assert!(authenticates(&h, "cli@clients", first.secret()).await);
    let (client, second) = h
        .engine
        .rotate_client_secret("cli@clients", 60, &crate::audit::Actor::System)
        .await
        .unwrap();
    assert_eq!(
        client.previous_secret.as_ref().map(|p| p.expires_at),
        Some(h.engine.now() + 60)
    );
    for _ in 0..2 {
        assert!(authenticates(&h, "cli@clients", first.secret()).await);
        assert!(authenticates(&h, "cli@clients", second.secret()).await);
    }
    h.clock.advance(59);
    assert!(authenticates(&h, "cli@clients", first.secret()).await);
    h.clock.advance(1);
    assert!(
        !authenticates(&h, "cli@clients", first.secret()).await,
        "the old secret must fail once the overlap is over, cached or not"
    );
    assert!(authenticates(&h, "cli@clients", second.secret()).await);

    let (client, third) = h
        .engine
        .rotate_client_secret("cli@clients", 0, &crate::audit::Actor::System)
        .await
        .unwrap();
    assert!(client.previous_secret.is_none());
    assert!(!authenticates(&h, "cli@clients", second.secret()).await);
    assert!(authenticates(&h, "cli@clients", third.secret()).await);
    assert!(matches!(
        h.engine
            .rotate_client_secret("nobody@clients", 0, &crate::audit::Actor::System)
            .await,
        Err(ClientAdminError::Unknown(_))
    ));
}

#[tokio::test]
async fn an_update_changes_the_listed_fields_only() {
    let h = harness().await;
    let (added, secret) = h
        .engine
        .add_client(new_client("cli@clients"), &crate::audit::Actor::System)
        .await
        .unwrap();
    let secret = secret.unwrap();
    let updated = h
        .engine
        .update_client(
            "cli@clients",
            |c| {
                c.display_name = "Renamed".into();
                c.key = "stolen@clients".into();
            },
            &crate::audit::Actor::System,
        )
        .await
        .unwrap();
    assert_eq!(updated.display_name, "Renamed");
    assert_eq!(updated.key, "cli@clients", "the Key is not updated");
    assert_eq!(updated.created_at, added.created_at);
    assert!(authenticates(&h, "cli@clients", secret.secret()).await);
    let keys: Vec<String> = h
        .engine
        .list_clients()
        .await
        .unwrap()
        .into_iter()
        .map(|c| c.key)
        .collect();
    assert_eq!(keys, ["cli@clients", "other@clients", KEY]);
}

#[tokio::test]
async fn removing_a_client_stops_its_tokens_at_once() {
    let h = harness().await;
    let tokens = h.redeem(&h.code(&[]).await).await.unwrap();
    let pending = h.code(&[]).await;
    assert!(h.token_works(&tokens.access_token).await);
    let removed = h
        .engine
        .remove_client(KEY, &crate::audit::Actor::System)
        .await
        .unwrap();
    assert_eq!(removed.key, KEY);
    assert!(!h.token_works(&tokens.access_token).await);
    assert!(h.engine.find_client(KEY).await.unwrap().is_none());
    assert_eq!(code_of(h.redeem(&pending).await), ErrorCode::InvalidClient);
    // Registered again (a configured client at the next start): the old grants stay dead.
    h.engine
        .register_client(crate::testing::client(
            KEY,
            "python_client",
            CALLBACK,
            SECRET,
        ))
        .await
        .unwrap();
    assert!(!h.token_works(&tokens.access_token).await);
    let refresh = tokens.refresh_token.unwrap();
    assert_eq!(code_of(h.refresh(&refresh).await), ErrorCode::InvalidGrant);
    assert_eq!(code_of(h.redeem(&pending).await), ErrorCode::InvalidGrant);
    assert!(matches!(
        h.engine
            .remove_client(KEY, &crate::audit::Actor::System)
            .await
            .map(|_| ()),
        Ok(())
    ));
    assert!(matches!(
        h.engine
            .remove_client(KEY, &crate::audit::Actor::System)
            .await,
        Err(ClientAdminError::Unknown(_))
    ));
}
