//! Checks of the records that live until replaced or deleted: clients, users, sessions, server
//! secrets, signing keys; and of absence, which is an answer rather than an error.

use uuid::Uuid;

use super::fixtures::{client, user, NOW};
use super::steps::{
    find_client, find_code, find_consent, find_refresh_token, find_session, rotate_refresh_token,
};
use super::{scopes, uri, Must};
use crate::jose::SigningAlg;
use crate::model::{
    AccessTokenFormat, AuthMethod, ClientPolicy, GrantType, NewUser, SessionRecord,
    SigningKeyRecord, UserSource,
};
use crate::ports::{ClientRef, Redemption, Store};
use crate::TokenHash;

/// [`ClientStore`](crate::ports::ClientStore): a client is found by Id and by exact Key, an
/// upsert with the same Id replaces it, and its policy survives the round trip.
pub async fn clients_by_id_and_key(store: &dyn Store) {
    store.upsert_client(&client(1)).await.must("upsert_client");
    let by_id = find_client(store, ClientRef::Id(Uuid::from_u128(1)))
        .await
        .expect("find_client(Id) must find the client just upserted");
    assert_eq!(
        by_id.key, "c1@clients",
        "find_client(Id) returned another client"
    );
    assert_eq!(
        by_id.redirect_uris,
        client(1).redirect_uris,
        "redirect URIs must come back exactly as registered, in order"
    );
    let by_key = find_client(store, ClientRef::Key("c1@clients"))
        .await
        .expect("find_client(Key) must find the client just upserted");
    assert_eq!(
        by_key.id,
        Uuid::from_u128(1),
        "find_client(Key) returned another client"
    );
    assert!(
        find_client(store, ClientRef::Key("c1")).await.is_none(),
        "a Key matches exactly, never as a prefix"
    );
    let mut renamed = client(1);
    renamed.display_name = "Renamed".into();
    store.upsert_client(&renamed).await.must("upsert_client");
    let found = find_client(store, ClientRef::Id(renamed.id))
        .await
        .expect("an upserted client must stay findable");
    assert_eq!(
        found.display_name, "Renamed",
        "upsert_client with a known Id must replace the client"
    );
    renamed.key = "renamed@clients".into();
    store.upsert_client(&renamed).await.must("upsert_client");
    assert!(
        find_client(store, ClientRef::Key("c1@clients"))
            .await
            .is_none(),
        "a client's former Key must no longer find it"
    );
    let by_new_key = find_client(store, ClientRef::Key("renamed@clients"))
        .await
        .expect("find_client(Key) must find a client by its new Key");
    assert_eq!(
        by_new_key.id, renamed.id,
        "the Id of a client never changes"
    );
    let mut oidc = client(2);
    oidc.policy = ClientPolicy {
        scopes: Some(scopes("openid profile")),
        post_logout_redirect_uris: vec![uri("http://localhost:8000/bye")],
        auth_method: Some(AuthMethod::ClientSecretPost),
        access_token_format: AccessTokenFormat::Jwt,
        id_token_alg: Some(SigningAlg::EdDsa),
        access_token_audience: Some("https://api.example".into()),
        resource_server: true,
        insecure_implicit: true,
        insecure_password: true,
        // RFC 7517 Appendix A.1's EC key.
        jwks: Some(
            serde_json::from_str(
                r#"{"keys":[{"kty":"EC","crv":"P-256","use":"sig","kid":"1",
                "x":"MKBCTNIcKUSDii11ySs3526iDZ8AiTo7Tu6KPAqv7D4",
                "y":"4Etl6SRW2YiLUrN5vfvVHuhp7x8PxltmWWlbbM4IFyM"}]}"#,
            )
            .expect("RFC 7517's key set parses"),
        ),
        jwks_uri: Some(url::Url::parse("https://client.example/jwks.json").expect("a valid URL")),
        sealed_jwt_secret: Some(b"x1 sealed bytes, \0 and all: \xff".to_vec()),
        grant_types: Some(vec![GrantType::ClientCredentials, GrantType::RefreshToken]),
        require_pkce: true,
        require_pushed_requests: true,
        dpop_bound_access_tokens: true,
        resources: Some(vec![doorward_proto::ResourceUri::parse(
            "https://api.example/v1",
        )
        .expect("a valid resource")]),
        extension_grants: vec!["urn:ietf:params:oauth:grant-type:jwt-bearer".into()],
        assertion_issuers: vec![crate::model::TrustedIssuer {
            issuer: "https://idp.example".into(),
            jwks_uri: Some(url::Url::parse("https://idp.example/jwks.json").expect("a valid URL")),
            users: true,
            client_subject: Some("system:serviceaccount:games:scores".into()),
            jwks: None,
        }],
        claims: serde_json::json!({ "tenant": "acme", "limits": { "rps": 10 } })
            .as_object()
            .cloned()
            .unwrap_or_default(),
    };
    oidc.source = crate::model::ClientSource::MetadataDocument;
    store.upsert_client(&oidc).await.must("upsert_client");
    let found = find_client(store, ClientRef::Key("c2@clients"))
        .await
        .expect("find_client(Key) must find the second client");
    assert_eq!(
        found.policy, oidc.policy,
        "the client policy must survive storage"
    );
    assert_eq!(
        found.source, oidc.source,
        "the client's source must survive storage"
    );
}

/// [`UserStore`](crate::ports::UserStore): an upsert by a known username updates the user but
/// keeps its id and creation time.
pub async fn users_upsert_by_username(store: &dyn Store) {
    let id = user(store, "alice").await;
    let again = store
        .upsert_user(&NewUser {
            id: Uuid::new_v4(),
            username: "alice".into(),
            display_name: "Alice 2".into(),
            password_hash: "h2".into(),
            email: Some("alice@example.com".into()),
            email_verified: true,
            created_at: NOW + 10,
            claims: serde_json::json!({ "tier": "gold", "games": ["chess", "go"] })
                .as_object()
                .cloned()
                .unwrap_or_default(),
            admin: false,
            disabled_at: None,
            second_factor_required: false,
            source: UserSource::Config,
        })
        .await
        .must("upsert_user");
    assert_eq!(again.id, id, "the id of an existing user never changes");
    assert_eq!(
        again.display_name, "Alice 2",
        "upsert_user must return the updated user"
    );
    assert_eq!(
        again.created_at, NOW,
        "the creation time of a user never changes"
    );
    let found = store
        .find_user(id)
        .await
        .must("find_user")
        .expect("find_user must find the user by its id");
    assert_eq!(
        found.password_hash, "h2",
        "upsert_user must update the password hash"
    );
    assert_eq!(
        found.claims.get("games"),
        Some(&serde_json::json!(["chess", "go"])),
        "upsert_user must store the user's claims, as a JSON object"
    );
    assert_eq!(
        found.email.as_deref(),
        Some("alice@example.com"),
        "upsert_user must update the e-mail address"
    );
    assert!(
        found.email_verified,
        "upsert_user must update email_verified"
    );
    let by_name = store
        .find_user_by_username("alice")
        .await
        .must("find_user_by_username")
        .expect("find_user_by_username must find the user");
    assert_eq!(by_name.id, id);
    assert!(
        store
            .find_user_by_username("bob")
            .await
            .must("find_user_by_username")
            .is_none(),
        "an unknown username must be None"
    );
}

/// [`SessionStore`](crate::ports::SessionStore): a session is found by its hash until deleted.
pub async fn sessions_are_found_and_deleted(store: &dyn Store) {
    let user = user(store, "s").await;
    let record = SessionRecord {
        hash: TokenHash([9; 32]),
        user_id: user,
        created_at: NOW,
        expires_at: NOW + 10,
        amr: vec!["pwd".into(), "otp".into(), "mfa".into()],
    };
    store.insert_session(&record).await.must("insert_session");
    let found = find_session(store, &record.hash)
        .await
        .expect("find_session must find the session just inserted");
    assert_eq!(
        (found.user_id, found.created_at, found.expires_at),
        (user, NOW, NOW + 10),
        "the session must come back as inserted"
    );
    assert_eq!(found.amr, record.amr, "with its authentication methods");
    store
        .delete_session(&record.hash)
        .await
        .must("delete_session");
    assert!(
        find_session(store, &record.hash).await.is_none(),
        "a deleted session must be gone"
    );
}

/// [`SecretStore::ensure_server_secret`](crate::ports::SecretStore::ensure_server_secret): the
/// first candidate wins, for good.
pub async fn server_secrets_are_created_once(store: &dyn Store) {
    let first = store
        .ensure_server_secret("csrf", b"one")
        .await
        .must("ensure_server_secret");
    let second = store
        .ensure_server_secret("csrf", b"two")
        .await
        .must("ensure_server_secret");
    let other = store
        .ensure_server_secret("other", b"three")
        .await
        .must("ensure_server_secret");
    assert_eq!(
        first, b"one",
        "the first candidate must be stored and returned"
    );
    assert_eq!(
        second, b"one",
        "a later candidate must not replace the stored secret"
    );
    assert_eq!(other, b"three", "secrets are kept by name");
}

/// [`KeyStore`](crate::ports::KeyStore): one key per algorithm and generation; the earlier
/// removal time wins; a deleted key is gone.
pub async fn signing_keys_are_created_once_per_generation(store: &dyn Store) {
    let key = |kid: &str, alg, generation| SigningKeyRecord {
        kid: kid.into(),
        alg,
        generation,
        private_key: vec![1, 2, 3],
        public_jwk: "{}".into(),
        created_at: NOW,
        activate_at: NOW + generation,
        remove_at: None,
    };
    assert!(
        store
            .insert_signing_key(&key("a", SigningAlg::Es256, 1))
            .await
            .must("insert_signing_key"),
        "the first key of an algorithm and generation must be stored (true)"
    );
    assert!(
        !store
            .insert_signing_key(&key("b", SigningAlg::Es256, 1))
            .await
            .must("insert_signing_key"),
        "a second key of the same generation is refused (another instance made it)"
    );
    assert!(
        store
            .insert_signing_key(&key("c", SigningAlg::Rs256, 1))
            .await
            .must("insert_signing_key"),
        "generations are counted per algorithm"
    );
    store
        .schedule_key_removal("a", NOW + 100)
        .await
        .must("schedule_key_removal");
    store
        .schedule_key_removal("a", NOW + 200)
        .await
        .must("schedule_key_removal");
    let keys = store.list_signing_keys().await.must("list_signing_keys");
    assert_eq!(
        keys.len(),
        2,
        "list_signing_keys must list the two stored keys"
    );
    let a = keys
        .iter()
        .find(|k| k.kid == "a")
        .expect("list_signing_keys must list key `a`");
    assert_eq!(a.remove_at, Some(NOW + 100), "the earlier removal wins");
    assert_eq!(
        a.private_key,
        vec![1, 2, 3],
        "the private key must come back as given"
    );
    assert_eq!(a.activate_at, NOW + 1);
    store
        .delete_signing_key("a")
        .await
        .must("delete_signing_key");
    let kids: Vec<String> = store
        .list_signing_keys()
        .await
        .must("list_signing_keys")
        .into_iter()
        .map(|k| k.kid)
        .collect();
    assert_eq!(kids, ["c"], "delete_signing_key must delete that key only");
}

/// Absence is an answer, not an error: lookups of what does not exist are `None` (or
/// [`Redemption::Unknown`]), and deleting or revoking it succeeds doing nothing.
pub async fn absent_rows_are_not_errors(store: &dyn Store) {
    let nobody = Uuid::from_u128(404);
    let nothing = TokenHash([44; 32]);
    assert!(store.find_user(nobody).await.must("find_user").is_none());
    assert!(store
        .find_client(ClientRef::Id(nobody))
        .await
        .must("find_client")
        .is_none());
    assert!(find_consent(store, nobody, nobody).await.is_none());
    assert!(store
        .list_consents(nobody)
        .await
        .must("list_consents")
        .is_empty());
    assert!(find_code(store, &nothing, nobody).await.is_none());
    assert!(find_refresh_token(store, &nothing).await.is_none());
    let rotated = rotate_refresh_token(store, &nothing, nobody, NOW, None, None).await;
    assert!(
        matches!(rotated, Redemption::Unknown),
        "an unknown refresh token must be Unknown, got {rotated:?}"
    );
    store
        .delete_session(&nothing)
        .await
        .must("delete_session of an unknown session");
    store
        .revoke_access_token(&nothing, NOW)
        .await
        .must("revoke_access_token of an unknown token");
    store
        .revoke_consent(nobody, nobody, NOW)
        .await
        .must("revoke_consent without an approval");
    store
        .schedule_key_removal("nothing", NOW)
        .await
        .must("schedule_key_removal of an unknown key");
    store
        .delete_signing_key("nothing")
        .await
        .must("delete_signing_key of an unknown key");
    assert!(
        store
            .list_signing_keys()
            .await
            .must("list_signing_keys")
            .is_empty(),
        "scheduling the removal of an unknown key must not create one"
    );
    assert_eq!(
        store.purge_expired(NOW, 0).await.must("purge_expired"),
        0,
        "purging an empty store deletes nothing"
    );
}

/// [`KeyStore::reseal_signing_key`](crate::ports::KeyStore::reseal_signing_key) and
/// [`SecretStore::reseal_server_secret`](crate::ports::SecretStore::reseal_server_secret):
/// compare and set, so that a second `doorward keys seal` (or a value changed meanwhile) is
/// left alone.
pub async fn keys_and_secrets_reseal_only_the_expected_value(store: &dyn Store) {
    let key = SigningKeyRecord {
        kid: "a".into(),
        alg: SigningAlg::Es256,
        generation: 1,
        private_key: b"plain".to_vec(),
        public_jwk: "{}".into(),
        created_at: NOW,
        activate_at: NOW,
        remove_at: None,
    };
    store
        .insert_signing_key(&key)
        .await
        .must("insert_signing_key");
    assert!(
        !store
            .reseal_signing_key("a", b"other", b"sealed")
            .await
            .must("reseal_signing_key"),
        "a key whose value is not the expected one must not be replaced (false)"
    );
    assert!(
        !store
            .reseal_signing_key("nobody", b"plain", b"sealed")
            .await
            .must("reseal_signing_key"),
        "an unknown kid is not resealed (false)"
    );
    assert!(
        store
            .reseal_signing_key("a", b"plain", b"sealed")
            .await
            .must("reseal_signing_key"),
        "the expected value must be replaced (true)"
    );
    let keys = store.list_signing_keys().await.must("list_signing_keys");
    assert_eq!(keys[0].private_key, b"sealed", "the key must be replaced");
    store
        .ensure_server_secret("csrf", b"plain")
        .await
        .must("ensure_server_secret");
    assert!(
        !store
            .reseal_server_secret("csrf", b"other", b"sealed")
            .await
            .must("reseal_server_secret"),
        "a secret whose value is not the expected one must not be replaced (false)"
    );
    assert!(
        store
            .reseal_server_secret("csrf", b"plain", b"sealed")
            .await
            .must("reseal_server_secret"),
        "the expected value must be replaced (true)"
    );
    let value = store
        .ensure_server_secret("csrf", b"candidate")
        .await
        .must("ensure_server_secret");
    assert_eq!(
        value, b"sealed",
        "the resealed secret must be the stored one"
    );
}
