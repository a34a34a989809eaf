//! Clients, users and their browser sessions.

use async_trait::async_trait;
use doorward_core::model::{Client, NewUser, SessionRecord, User};
use doorward_core::ports::{ClientRef, ClientStore, SessionStore, StoreResult, UserStore};
use doorward_core::TokenHash;
use rusqlite::params;
use uuid::Uuid;

use super::{execute, query_one, SqliteStore};
use crate::rows::{self, corrupt, CLIENT_COLS, SESSION_COLS, USER_COLS};

#[async_trait]
impl ClientStore for SqliteStore {
    async fn find_client(&self, client: ClientRef<'_>) -> StoreResult<Option<Client>> {
        match client {
            ClientRef::Id(id) => {
                let sql = format!("SELECT {CLIENT_COLS} FROM clients WHERE id = ?1");
                self.find(&sql, [id.to_string()], rows::client).await
            }
            ClientRef::Key(key) => {
                let sql = format!("SELECT {CLIENT_COLS} FROM clients WHERE key = ?1");
                self.find(&sql, [key], rows::client).await
            }
        }
    }

    async fn upsert_client(&self, client: &Client) -> StoreResult<()> {
        let uris: Vec<&str> = client.redirect_uris.iter().map(|u| u.as_str()).collect();
        self.write(|conn| {
            execute(
                conn,
                "INSERT INTO clients (id, key, display_name, app_uri, redirect_uris, secret_hash,
                     policy)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
                 ON CONFLICT (id) DO UPDATE SET key = excluded.key,
                     display_name = excluded.display_name, app_uri = excluded.app_uri,
                     redirect_uris = excluded.redirect_uris, secret_hash = excluded.secret_hash,
                     policy = excluded.policy",
                params![
                    client.id.to_string(),
                    client.key,
                    client.display_name,
                    client.app_uri,
                    uris.join("\n"),
                    client.secret_hash,
                    client.policy.to_json(),
                ],
            )
            .map(drop)
        })
        .await
    }
}

#[async_trait]
impl UserStore for SqliteStore {
    async fn find_user(&self, id: Uuid) -> StoreResult<Option<User>> {
        self.find(
            &format!("SELECT {USER_COLS} FROM users WHERE id = ?1"),
            [id.to_string()],
            rows::user,
        )
        .await
    }

    async fn find_user_by_username(&self, username: &str) -> StoreResult<Option<User>> {
        self.find(
            &format!("SELECT {USER_COLS} FROM users WHERE username = ?1"),
            [username],
            rows::user,
        )
        .await
    }

    async fn upsert_user(&self, user: &NewUser) -> StoreResult<User> {
        self.write(|conn| {
            query_one(
                conn,
                &format!(
                    "INSERT INTO users (id, username, display_name, password_hash, email,
                         email_verified, created_at)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
                     ON CONFLICT (username) DO UPDATE SET display_name = excluded.display_name,
                         password_hash = excluded.password_hash, email = excluded.email,
                         email_verified = excluded.email_verified
                     RETURNING {USER_COLS}"
                ),
                params![
                    user.id.to_string(),
                    user.username,
                    user.display_name,
                    user.password_hash,
                    user.email,
                    user.email_verified,
                    user.created_at,
                ],
                rows::user,
            )?
            .ok_or_else(|| corrupt("upsert returned no user"))
        })
        .await
    }
}

#[async_trait]
impl SessionStore for SqliteStore {
    async fn insert_session(&self, session: &SessionRecord) -> StoreResult<()> {
        self.write(|conn| {
            execute(
                conn,
                "INSERT INTO sessions (hash, user_id, created_at, expires_at)
                 VALUES (?1, ?2, ?3, ?4)",
                params![
                    session.hash.as_bytes(),
                    session.user_id.to_string(),
                    session.created_at,
                    session.expires_at,
                ],
            )
            .map(drop)
        })
        .await
    }

    async fn find_session(&self, hash: &TokenHash) -> StoreResult<Option<SessionRecord>> {
        self.find(
            &format!("SELECT {SESSION_COLS} FROM sessions WHERE hash = ?1"),
            [hash.as_bytes()],
            rows::session,
        )
        .await
    }

    async fn delete_session(&self, hash: &TokenHash) -> StoreResult<()> {
        self.write(|conn| {
            execute(
                conn,
                "DELETE FROM sessions WHERE hash = ?1",
                [hash.as_bytes()],
            )
            .map(drop)
        })
        .await
    }
}
