//! Records for the checks, and for an adapter's own tests (races, several instances) beside
//! them. Every value is fixed, so that a failure repeats.

use doorward_proto::{CodeChallenge, CodeChallengeMethod};
use uuid::Uuid;

use super::{scopes, uri, Must};
use crate::model::{
    AccessTokenRecord, Client, ClientPolicy, ClientSource, CodeRecord, NewUser, RefreshTokenRecord,
    UserSource,
};
use crate::ports::Store;
use crate::TokenHash;

/// The time of every record, in Unix seconds (in 2027).
pub const NOW: i64 = 1_800_000_000;

/// A confidential client with the Id `n`, the Key `c{n}@clients` and two redirect URIs.
pub fn client(n: u128) -> Client {
    Client {
        id: Uuid::from_u128(n),
        key: format!("c{n}@clients"),
        display_name: format!("Client {n}"),
        app_uri: "http://localhost:8000".into(),
        redirect_uris: vec![
            uri("http://localhost:8000/cb"),
            uri("http://localhost:8000/cb2?x=1"),
        ],
        secret_hash: Some("$argon2id$fake".into()),
        previous_secret: None,
        policy: ClientPolicy::default(),
        source: ClientSource::Config,
        created_at: NOW,
    }
}

/// Stores a user named `name` (display name in capitals); returns its id.
pub async fn user(store: &dyn Store, name: &str) -> Uuid {
    store
        .upsert_user(&NewUser {
            id: Uuid::new_v4(),
            username: name.into(),
            display_name: name.to_uppercase(),
            password_hash: "h".into(),
            email: None,
            email_verified: false,
            created_at: NOW,
            claims: serde_json::Map::new(),
            admin: false,
            disabled_at: None,
            second_factor_required: false,
            source: UserSource::Cli,
        })
        .await
        .must("upsert_user")
        .id
}

/// A code whose hash is 32 times `hash`, with PKCE and a nonce, valid for 60 seconds.
pub fn code(hash: u8, client: Uuid, user: Uuid, family: Uuid) -> CodeRecord {
    CodeRecord {
        hash: TokenHash([hash; 32]),
        client_id: client,
        user_id: user,
        redirect_uri: uri("http://localhost:8000/cb"),
        scopes: scopes("base"),
        scope_requested: true,
        challenge: Some((
            CodeChallenge::parse("E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM")
                .expect("the RFC 7636 example challenge is valid"),
            CodeChallengeMethod::S256,
        )),
        nonce: Some("n-0S6_WzA2Mj".into()),
        family_id: family,
        auth_time: NOW - 5,
        issued_at: NOW,
        expires_at: NOW + 60,
        resources: Vec::new(),
        dpop_jkt: None,
        scope_narrowed: false,
        grant_data: serde_json::Map::new(),
        amr: vec!["pwd".into()],
    }
}

/// An access token (hash: 32 times `hash`, valid for 2 hours) and its refresh token (hash:
/// 32 times `hash + 100`, valid for a day).
pub fn tokens(
    hash: u8,
    client: Uuid,
    user: Uuid,
    family: Uuid,
) -> (AccessTokenRecord, RefreshTokenRecord) {
    (
        AccessTokenRecord {
            hash: TokenHash([hash; 32]),
            family_id: family,
            client_id: client,
            user_id: Some(user),
            scopes: scopes("base"),
            issued_at: NOW,
            expires_at: NOW + 7200,
            revoked: false,
            resources: Vec::new(),
            dpop_jkt: None,
            act: None,
        },
        RefreshTokenRecord {
            hash: TokenHash([hash.wrapping_add(100); 32]),
            family_id: family,
            client_id: client,
            user_id: user,
            scopes: scopes("base"),
            auth_time: NOW - 5,
            issued_at: NOW,
            expires_at: NOW + 86400,
            revoked: false,
            used_at: None,
            successor: None,
            resources: Vec::new(),
            dpop_jkt: None,
            grant_data: serde_json::Map::new(),
            amr: Vec::new(),
        },
    )
}
