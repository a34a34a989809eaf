//! Clients, users and their browser sessions.

use async_trait::async_trait;
use doorward_core::model::{Client, NewUser, SessionRecord, User, UserChange, UserFilter};
use doorward_core::ports::{
    Change, ClientRef, ClientStore, SessionStore, StoreResult, UnixTime, UserStore,
};
use doorward_core::TokenHash;
use sqlx::AssertSqlSafe;
use uuid::Uuid;

use super::{changes, other, record, PostgresStore};
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
        let sql = upsert_client_sql();
        let mut tx = self.pool.begin().await.map_err(other)?;
        bind_client(sqlx::query(AssertSqlSafe(sql.as_str())), client)
            .execute(&mut *tx)
            .await
            .map_err(other)?;
        changes::notify(&mut tx, &Change::Client(client.id)).await?;
        tx.commit().await.map_err(other)
    }

    async fn insert_client(&self, client: &Client) -> StoreResult<bool> {
        let sql = format!(
            "INSERT INTO clients ({CLIENT_COLS})
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
             ON CONFLICT DO NOTHING"
        );
        let done = bind_client(sqlx::query(AssertSqlSafe(sql.as_str())), client)
            .execute(&self.pool)
            .await
            .map_err(other)?;
        Ok(done.rows_affected() == 1)
    }

    async fn list_clients(&self) -> StoreResult<Vec<Client>> {
        let sql = format!("SELECT {CLIENT_COLS} FROM clients ORDER BY key COLLATE \"C\"");
        self.find_all(sqlx::query(AssertSqlSafe(sql.as_str())), rows::client)
            .await
    }

    async fn delete_client(&self, id: Uuid, now: UnixTime) -> StoreResult<bool> {
        let mut tx = self.pool.begin().await.map_err(other)?;
        // The grants first: their row locks order this revocation with token inserts (see
        // `tokens.rs`). By client_id, which no index covers on the token tables: one scan per
        // table, for one admin command, rather than an index that every token insert would pay
        // for.
        for statement in [
            "UPDATE grants SET revoked_at = $2 WHERE client_id = $1 AND revoked_at IS NULL",
            "UPDATE codes SET used_at = $2 WHERE client_id = $1 AND used_at IS NULL",
            "UPDATE access_tokens SET revoked_at = $2 WHERE client_id = $1 AND revoked_at IS NULL",
            "UPDATE refresh_tokens SET revoked_at = $2 WHERE client_id = $1 AND revoked_at IS NULL",
        ] {
            sqlx::query(statement)
                .bind(id)
                .bind(now)
                .execute(&mut *tx)
                .await
                .map_err(other)?;
        }
        sqlx::query("DELETE FROM consents WHERE client_id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await
            .map_err(other)?;
        let deleted = sqlx::query("DELETE FROM clients WHERE id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await
            .map_err(other)?;
        changes::notify(&mut tx, &Change::Client(id)).await?;
        tx.commit().await.map_err(other)?;
        Ok(deleted.rows_affected() == 1)
    }
}

/// Binds the values of [`CLIENT_COLS`], in order.
pub(super) fn bind_client<'q>(
    query: sqlx::query::Query<'q, sqlx::Postgres, sqlx::postgres::PgArguments>,
    client: &Client,
) -> sqlx::query::Query<'q, sqlx::Postgres, sqlx::postgres::PgArguments> {
    let uris: Vec<&str> = client.redirect_uris.iter().map(|u| u.as_str()).collect();
    let previous = client.previous_secret.as_ref();
    query
        .bind(client.id)
        .bind(client.key.clone())
        .bind(client.display_name.clone())
        .bind(client.app_uri.clone())
        .bind(uris.join("\n"))
        .bind(client.secret_hash.clone())
        .bind(client.policy.to_json())
        .bind(previous.map(|p| p.hash.clone()))
        .bind(previous.map(|p| p.expires_at))
        .bind(client.source.as_str())
        .bind(client.created_at)
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
                 email_verified, created_at, claims, admin, source)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
             ON CONFLICT (username) DO UPDATE SET display_name = excluded.display_name,
                 password_hash = excluded.password_hash, email = excluded.email,
                 email_verified = excluded.email_verified, claims = excluded.claims,
                 admin = users.admin OR excluded.admin, source = excluded.source
             RETURNING {USER_COLS}"
        );
        let query = sqlx::query(AssertSqlSafe(sql.as_str()))
            .bind(user.id)
            .bind(user.username.as_str())
            .bind(user.display_name.as_str())
            .bind(user.password_hash.as_str())
            .bind(user.email.as_deref())
            .bind(user.email_verified)
            .bind(user.created_at)
            .bind(rows::claims_text(&user.claims))
            .bind(user.admin)
            .bind(user.source.as_str());
        let mut tx = self.pool.begin().await.map_err(other)?;
        let row = query.fetch_optional(&mut *tx).await.map_err(other)?;
        let stored = record(row, rows::user)?.ok_or_else(|| corrupt("upsert returned no user"))?;
        changes::notify(&mut tx, &Change::User(stored.id)).await?;
        tx.commit().await.map_err(other)?;
        Ok(stored)
    }

    async fn insert_user(&self, user: &NewUser) -> StoreResult<bool> {
        let mut tx = self.pool.begin().await.map_err(other)?;
        let inserted = insert_user_in(&mut tx, user).await?;
        if inserted == 1 {
            changes::notify(&mut tx, &Change::User(user.id)).await?;
        }
        tx.commit().await.map_err(other)?;
        Ok(inserted == 1)
    }

    async fn list_users(&self, filter: &UserFilter) -> StoreResult<Vec<User>> {
        // Byte order (`COLLATE "C"`), as SQLite's and the memory store's, whatever the
        // database's collation: the pages of `after` then neither skip nor repeat a user.
        let sql = format!(
            "SELECT {USER_COLS} FROM users
             WHERE ($1::text IS NULL OR username COLLATE \"C\" > $1)
               AND ($2::text IS NULL OR strpos(lower(username), $2) > 0
                    OR strpos(lower(display_name), $2) > 0
                    OR strpos(lower(coalesce(email, '')), $2) > 0)
             ORDER BY username COLLATE \"C\" LIMIT $3"
        );
        let query = sqlx::query(AssertSqlSafe(sql.as_str()))
            .bind(filter.after.as_deref())
            .bind(filter.search.as_deref().map(str::to_ascii_lowercase))
            .bind(i64::from(filter.limit));
        self.find_all(query, rows::user).await
    }

    async fn update_user(&self, id: Uuid, change: &UserChange) -> StoreResult<bool> {
        let mut tx = self.pool.begin().await.map_err(other)?;
        // A NULL leaves the column as it is (see `UserChange`).
        let updated = sqlx::query(
            "UPDATE users SET display_name = COALESCE($2, display_name),
                 password_hash = COALESCE($3, password_hash),
                 email = CASE WHEN $4 THEN $5 ELSE email END,
                 email_verified = COALESCE($6, email_verified),
                 claims = COALESCE($7, claims), admin = COALESCE($8, admin),
                 second_factor_required = COALESCE($9, second_factor_required)
             WHERE id = $1",
        )
        .bind(id)
        .bind(change.display_name.as_deref())
        .bind(change.password_hash.as_deref())
        .bind(change.email.is_some())
        .bind(change.email.as_ref().and_then(Option::as_deref))
        .bind(change.email_verified)
        .bind(change.claims.as_ref().map(rows::claims_text))
        .bind(change.admin)
        .bind(change.second_factor_required)
        .execute(&mut *tx)
        .await
        .map_err(other)?
        .rows_affected();
        changes::notify(&mut tx, &Change::User(id)).await?;
        tx.commit().await.map_err(other)?;
        Ok(updated == 1)
    }

    async fn set_user_disabled(
        &self,
        id: Uuid,
        disabled_at: Option<UnixTime>,
        now: UnixTime,
    ) -> StoreResult<bool> {
        let mut tx = self.pool.begin().await.map_err(other)?;
        let updated = sqlx::query("UPDATE users SET disabled_at = $2 WHERE id = $1")
            .bind(id)
            .bind(disabled_at)
            .execute(&mut *tx)
            .await
            .map_err(other)?
            .rows_affected();
        if updated == 1 && disabled_at.is_some() {
            end_access(&mut tx, id, now).await?;
        }
        changes::notify(&mut tx, &Change::User(id)).await?;
        tx.commit().await.map_err(other)?;
        Ok(updated == 1)
    }

    async fn delete_user_sessions(&self, id: Uuid) -> StoreResult<u64> {
        sqlx::query("DELETE FROM sessions WHERE user_id = $1")
            .bind(id)
            .execute(&self.pool)
            .await
            .map_err(other)
            .map(|done| done.rows_affected())
    }

    async fn delete_user(&self, id: Uuid, now: UnixTime) -> StoreResult<bool> {
        let mut tx = self.pool.begin().await.map_err(other)?;
        end_access(&mut tx, id, now).await?;
        for table in ["consents", "totp_secrets", "recovery_codes", "passkeys"] {
            sqlx::query(AssertSqlSafe(format!(
                "DELETE FROM {table} WHERE user_id = $1"
            )))
            .bind(id)
            .execute(&mut *tx)
            .await
            .map_err(other)?;
        }
        let deleted = sqlx::query("DELETE FROM users WHERE id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await
            .map_err(other)?
            .rows_affected();
        changes::notify(&mut tx, &Change::User(id)).await?;
        tx.commit().await.map_err(other)?;
        Ok(deleted == 1)
    }
}

/// What disabling or removing the user `id` ends, in the caller's transaction: its sessions,
/// its grant families with their tokens, and its outstanding codes. The grants first: their
/// row locks order this revocation with token inserts (see `tokens.rs`).
async fn end_access(
    tx: &mut sqlx::Transaction<'_, sqlx::Postgres>,
    id: Uuid,
    now: UnixTime,
) -> StoreResult<()> {
    sqlx::query("DELETE FROM sessions WHERE user_id = $1")
        .bind(id)
        .execute(&mut **tx)
        .await
        .map_err(other)?;
    const FAMILIES: &str = "SELECT family_id FROM grants WHERE user_id = $1";
    for statement in [
        "UPDATE grants SET revoked_at = $2 WHERE user_id = $1 AND revoked_at IS NULL".to_owned(),
        format!("UPDATE codes SET used_at = $2 WHERE used_at IS NULL AND family_id IN ({FAMILIES})"),
        format!("UPDATE access_tokens SET revoked_at = $2 WHERE revoked_at IS NULL AND family_id IN ({FAMILIES})"),
        format!("UPDATE refresh_tokens SET revoked_at = $2 WHERE revoked_at IS NULL AND family_id IN ({FAMILIES})"),
    ] {
        sqlx::query(AssertSqlSafe(statement.as_str()))
            .bind(id)
            .bind(now)
            .execute(&mut **tx)
            .await
            .map_err(other)?;
    }
    Ok(())
}

#[async_trait]
impl SessionStore for PostgresStore {
    async fn insert_session(&self, session: &SessionRecord) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO sessions (hash, user_id, created_at, expires_at, amr)
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(session.hash.as_bytes())
        .bind(session.user_id)
        .bind(session.created_at)
        .bind(session.expires_at)
        .bind(rows::amr_text(&session.amr))
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

/// The upsert of a client row (every column but `created_at`, kept from the first insert),
/// shared by `upsert_client` and the RFC 7592 update of a registered client.
pub(super) fn upsert_client_sql() -> String {
    format!(
        "INSERT INTO clients ({CLIENT_COLS})
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
             ON CONFLICT (id) DO UPDATE SET key = excluded.key,
                 display_name = excluded.display_name, app_uri = excluded.app_uri,
                 redirect_uris = excluded.redirect_uris, secret_hash = excluded.secret_hash,
                 policy = excluded.policy,
                 previous_secret_hash = excluded.previous_secret_hash,
                 previous_secret_expires_at = excluded.previous_secret_expires_at,
                 source = excluded.source"
    )
}

/// Inserts `user` unless its id or username is taken, in `tx` (the write of
/// [`UserStore::insert_user`], also made by an invited sign-up): the rows inserted, 0 or 1.
pub(super) async fn insert_user_in(
    tx: &mut sqlx::Transaction<'_, sqlx::Postgres>,
    user: &NewUser,
) -> StoreResult<u64> {
    let sql = format!(
        "INSERT INTO users ({USER_COLS})
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
         ON CONFLICT DO NOTHING"
    );
    sqlx::query(AssertSqlSafe(sql.as_str()))
        .bind(user.id)
        .bind(user.username.as_str())
        .bind(user.display_name.as_str())
        .bind(user.password_hash.as_str())
        .bind(user.email.as_deref())
        .bind(user.email_verified)
        .bind(user.created_at)
        .bind(rows::claims_text(&user.claims))
        .bind(user.admin)
        .bind(user.disabled_at)
        .bind(user.source.as_str())
        .bind(user.second_factor_required)
        .execute(&mut **tx)
        .await
        .map_err(other)
        .map(|done| done.rows_affected())
}
