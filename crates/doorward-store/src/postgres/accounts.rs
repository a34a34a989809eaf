//! Clients, users and their browser sessions.

use async_trait::async_trait;
use doorward_core::model::{Client, NewUser, SessionRecord, User};
use doorward_core::ports::{ClientRef, ClientStore, SessionStore, StoreResult, UserStore};
use doorward_core::TokenHash;
use sqlx::AssertSqlSafe;
use uuid::Uuid;

use super::{other, record, PostgresStore};
use crate::rows::{self, corrupt, CLIENT_COLS, SESSION_COLS, USER_COLS};

#[async_trait]
impl ClientStore for PostgresStore {
    async fn find_client(&self, client: ClientRef<'_>) -> StoreResult<Option<Client>> {
        match client {
            ClientRef::Id(id) => {
                let sql = format!("SELECT {CLIENT_COLS} FROM clients WHERE id = $1");
                let query = sqlx::query(AssertSqlSafe(sql.as_str())).bind(id);
                self.find(query, rows::client).await
            }
            ClientRef::Key(key) => {
                let sql = format!("SELECT {CLIENT_COLS} FROM clients WHERE key = $1");
                let query = sqlx::query(AssertSqlSafe(sql.as_str())).bind(key);
                self.find(query, rows::client).await
            }
        }
    }

    async fn upsert_client(&self, client: &Client) -> StoreResult<()> {
        let uris: Vec<&str> = client.redirect_uris.iter().map(|u| u.as_str()).collect();
        sqlx::query(
            "INSERT INTO clients (id, key, display_name, app_uri, redirect_uris, secret_hash,
                 policy)
             VALUES ($1, $2, $3, $4, $5, $6, $7)
             ON CONFLICT (id) DO UPDATE SET key = excluded.key,
                 display_name = excluded.display_name, app_uri = excluded.app_uri,
                 redirect_uris = excluded.redirect_uris, secret_hash = excluded.secret_hash,
                 policy = excluded.policy",
        )
        .bind(client.id)
        .bind(client.key.as_str())
        .bind(client.display_name.as_str())
        .bind(client.app_uri.as_str())
        .bind(uris.join("\n"))
        .bind(client.secret_hash.as_deref())
        .bind(client.policy.to_json())
        .execute(&self.pool)
        .await
        .map_err(other)
        .map(drop)
    }
}

#[async_trait]
impl UserStore for PostgresStore {
    async fn find_user(&self, id: Uuid) -> StoreResult<Option<User>> {
        let sql = format!("SELECT {USER_COLS} FROM users WHERE id = $1");
        let query = sqlx::query(AssertSqlSafe(sql.as_str())).bind(id);
        self.find(query, rows::user).await
    }

    async fn find_user_by_username(&self, username: &str) -> StoreResult<Option<User>> {
        let sql = format!("SELECT {USER_COLS} FROM users WHERE username = $1");
        let query = sqlx::query(AssertSqlSafe(sql.as_str())).bind(username);
        self.find(query, rows::user).await
    }

    async fn upsert_user(&self, user: &NewUser) -> StoreResult<User> {
        let sql = format!(
            "INSERT INTO users (id, username, display_name, password_hash, email,
                 email_verified, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7)
             ON CONFLICT (username) DO UPDATE SET display_name = excluded.display_name,
                 password_hash = excluded.password_hash, email = excluded.email,
                 email_verified = excluded.email_verified
             RETURNING {USER_COLS}"
        );
        let query = sqlx::query(AssertSqlSafe(sql.as_str()))
            .bind(user.id)
            .bind(user.username.as_str())
            .bind(user.display_name.as_str())
            .bind(user.password_hash.as_str())
            .bind(user.email.as_deref())
            .bind(user.email_verified)
            .bind(user.created_at);
        let row = query.fetch_optional(&self.pool).await.map_err(other)?;
        record(row, rows::user)?.ok_or_else(|| corrupt("upsert returned no user"))
    }
}

#[async_trait]
impl SessionStore for PostgresStore {
    async fn insert_session(&self, session: &SessionRecord) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO sessions (hash, user_id, created_at, expires_at)
             VALUES ($1, $2, $3, $4)",
        )
        .bind(session.hash.as_bytes())
        .bind(session.user_id)
        .bind(session.created_at)
        .bind(session.expires_at)
        .execute(&self.pool)
        .await
        .map_err(other)
        .map(drop)
    }

    async fn find_session(&self, hash: &TokenHash) -> StoreResult<Option<SessionRecord>> {
        let sql = format!("SELECT {SESSION_COLS} FROM sessions WHERE hash = $1");
        let query = sqlx::query(AssertSqlSafe(sql.as_str())).bind(hash.as_bytes());
        self.find(query, rows::session).await
    }

    async fn delete_session(&self, hash: &TokenHash) -> StoreResult<()> {
        sqlx::query("DELETE FROM sessions WHERE hash = $1")
            .bind(hash.as_bytes())
            .execute(&self.pool)
            .await
            .map_err(other)
            .map(drop)
    }
}
