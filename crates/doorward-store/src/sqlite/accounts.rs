//! Clients, users and their browser sessions.

use async_trait::async_trait;
use doorward_core::model::{Client, NewUser, SessionRecord, User, UserChange, UserFilter};
use doorward_core::ports::{
    Change, ClientRef, ClientStore, SessionStore, StoreResult, UnixTime, UserStore,
};
use doorward_core::TokenHash;
use rusqlite::params;
use uuid::Uuid;

use super::{changes, execute, other, query_one, SqliteStore};
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
        self.write(|conn| {
            let tx = conn.transaction().map_err(other)?;
            execute(&tx, &upsert_client_sql(), client_params(client))?;
            changes::record(&tx, &Change::Client(client.id))?;
            tx.commit().map_err(other)
        })
        .await
    }

    async fn insert_client(&self, client: &Client) -> StoreResult<bool> {
        self.write(|conn| {
            execute(
                conn,
                &format!(
                    "INSERT INTO clients ({CLIENT_COLS})
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)
                     ON CONFLICT DO NOTHING"
                ),
                client_params(client),
            )
            .map(|inserted| inserted == 1)
        })
        .await
    }

    async fn list_clients(&self) -> StoreResult<Vec<Client>> {
        let sql = format!("SELECT {CLIENT_COLS} FROM clients ORDER BY key");
        self.find_all(&sql, [], rows::client).await
    }

    async fn delete_client(&self, id: Uuid, now: UnixTime) -> StoreResult<bool> {
        let change = Change::Client(id);
        let id = id.to_string();
        self.write(|conn| {
            let tx = conn.transaction().map_err(other)?;
            // By client_id, which no index covers on the token tables: one scan per table, for
            // one admin command, rather than an index that every token insert would pay for.
            for statement in [
                "UPDATE grants SET revoked_at = ?2 WHERE client_id = ?1 AND revoked_at IS NULL",
                "UPDATE codes SET used_at = ?2 WHERE client_id = ?1 AND used_at IS NULL",
                "UPDATE access_tokens SET revoked_at = ?2
                 WHERE client_id = ?1 AND revoked_at IS NULL",
                "UPDATE refresh_tokens SET revoked_at = ?2
                 WHERE client_id = ?1 AND revoked_at IS NULL",
            ] {
                execute(&tx, statement, params![id, now])?;
            }
            execute(&tx, "DELETE FROM consents WHERE client_id = ?1", [&id])?;
            let deleted = execute(&tx, "DELETE FROM clients WHERE id = ?1", [&id])?;
            changes::record(&tx, &change)?;
            tx.commit().map_err(other)?;
            Ok(deleted == 1)
        })
        .await
    }
}

/// The values of [`CLIENT_COLS`], in order.
pub(super) fn client_params(client: &Client) -> impl rusqlite::Params {
    use rusqlite::types::Value;
    let uris: Vec<&str> = client.redirect_uris.iter().map(|u| u.as_str()).collect();
    let previous = client.previous_secret.as_ref();
    rusqlite::params_from_iter([
        Value::from(client.id.to_string()),
        Value::from(client.key.clone()),
        Value::from(client.display_name.clone()),
        Value::from(client.app_uri.clone()),
        Value::from(uris.join("\n")),
        Value::from(client.secret_hash.clone()),
        Value::from(client.policy.to_json()),
        Value::from(previous.map(|p| p.hash.clone())),
        Value::from(previous.map(|p| p.expires_at)),
        Value::from(client.source.as_str().to_owned()),
        Value::from(client.created_at),
    ])
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
            let tx = conn.transaction().map_err(other)?;
            let stored = query_one(
                &tx,
                &format!(
                    "INSERT INTO users (id, username, display_name, password_hash, email,
                         email_verified, created_at, claims, admin, source)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)
                     ON CONFLICT (username) DO UPDATE SET display_name = excluded.display_name,
                         password_hash = excluded.password_hash, email = excluded.email,
                         email_verified = excluded.email_verified, claims = excluded.claims,
                         admin = users.admin OR excluded.admin, source = excluded.source
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
                    rows::claims_text(&user.claims),
                    user.admin,
                    user.source.as_str(),
                ],
                rows::user,
            )?
            .ok_or_else(|| corrupt("upsert returned no user"))?;
            changes::record(&tx, &Change::User(stored.id))?;
            tx.commit().map_err(other)?;
            Ok(stored)
        })
        .await
    }

    async fn insert_user(&self, user: &NewUser) -> StoreResult<bool> {
        let change = Change::User(user.id);
        self.write(|conn| {
            let tx = conn.transaction().map_err(other)?;
            let inserted = insert_user_in(&tx, user)?;
            if inserted == 1 {
                changes::record(&tx, &change)?;
            }
            tx.commit().map_err(other)?;
            Ok(inserted == 1)
        })
        .await
    }

    async fn list_users(&self, filter: &UserFilter) -> StoreResult<Vec<User>> {
        use rusqlite::types::Value;
        let search = filter.search.as_deref().map(str::to_ascii_lowercase);
        self.find_all(
            &format!(
                "SELECT {USER_COLS} FROM users
                 WHERE (?1 IS NULL OR username > ?1)
                   AND (?2 IS NULL OR instr(lower(username), ?2) > 0
                        OR instr(lower(display_name), ?2) > 0
                        OR instr(lower(coalesce(email, '')), ?2) > 0)
                 ORDER BY username LIMIT ?3"
            ),
            rusqlite::params_from_iter([
                Value::from(filter.after.clone()),
                Value::from(search),
                Value::from(i64::from(filter.limit)),
            ]),
            rows::user,
        )
        .await
    }

    async fn update_user(&self, id: Uuid, change: &UserChange) -> StoreResult<bool> {
        let change_id = Change::User(id);
        let claims = change.claims.as_ref().map(rows::claims_text);
        self.write(|conn| {
            let tx = conn.transaction().map_err(other)?;
            // A NULL leaves the column as it is (see `UserChange`).
            let updated = execute(
                &tx,
                "UPDATE users SET display_name = COALESCE(?2, display_name),
                     password_hash = COALESCE(?3, password_hash),
                     email = CASE WHEN ?4 THEN ?5 ELSE email END,
                     email_verified = COALESCE(?6, email_verified),
                     claims = COALESCE(?7, claims), admin = COALESCE(?8, admin),
                     second_factor_required = COALESCE(?9, second_factor_required)
                 WHERE id = ?1",
                params![
                    id.to_string(),
                    change.display_name,
                    change.password_hash,
                    change.email.is_some(),
                    change.email.clone().flatten(),
                    change.email_verified,
                    claims,
                    change.admin,
                    change.second_factor_required,
                ],
            )?;
            changes::record(&tx, &change_id)?;
            tx.commit().map_err(other)?;
            Ok(updated == 1)
        })
        .await
    }

    async fn set_user_disabled(
        &self,
        id: Uuid,
        disabled_at: Option<UnixTime>,
        now: UnixTime,
    ) -> StoreResult<bool> {
        let change = Change::User(id);
        let id = id.to_string();
        self.write(|conn| {
            let tx = conn.transaction().map_err(other)?;
            let updated = execute(
                &tx,
                "UPDATE users SET disabled_at = ?2 WHERE id = ?1",
                params![id, disabled_at],
            )?;
            if updated == 1 && disabled_at.is_some() {
                end_access(&tx, &id, now)?;
            }
            changes::record(&tx, &change)?;
            tx.commit().map_err(other)?;
            Ok(updated == 1)
        })
        .await
    }

    async fn delete_user_sessions(&self, id: Uuid) -> StoreResult<u64> {
        let id = id.to_string();
        self.write(|conn| {
            execute(conn, "DELETE FROM sessions WHERE user_id = ?1", [&id]).map(|n| n as u64)
        })
        .await
    }

    async fn delete_user(&self, id: Uuid, now: UnixTime) -> StoreResult<bool> {
        let change = Change::User(id);
        let id = id.to_string();
        self.write(|conn| {
            let tx = conn.transaction().map_err(other)?;
            end_access(&tx, &id, now)?;
            for table in ["consents", "totp_secrets", "recovery_codes", "passkeys"] {
                execute(
                    &tx,
                    &format!("DELETE FROM {table} WHERE user_id = ?1"),
                    [&id],
                )?;
            }
            let deleted = execute(&tx, "DELETE FROM users WHERE id = ?1", [&id])?;
            changes::record(&tx, &change)?;
            tx.commit().map_err(other)?;
            Ok(deleted == 1)
        })
        .await
    }
}

/// What disabling or removing the user `id` ends, in the caller's transaction: its sessions,
/// its grant families (found by the `grants_user_client` index) with their tokens, and its
/// outstanding codes.
fn end_access(tx: &rusqlite::Transaction<'_>, id: &str, now: UnixTime) -> StoreResult<()> {
    execute(tx, "DELETE FROM sessions WHERE user_id = ?1", [id])?;
    const FAMILIES: &str = "SELECT family_id FROM grants WHERE user_id = ?1";
    for statement in [
        format!("UPDATE codes SET used_at = ?2 WHERE used_at IS NULL AND family_id IN ({FAMILIES})"),
        format!("UPDATE access_tokens SET revoked_at = ?2 WHERE revoked_at IS NULL AND family_id IN ({FAMILIES})"),
        format!("UPDATE refresh_tokens SET revoked_at = ?2 WHERE revoked_at IS NULL AND family_id IN ({FAMILIES})"),
        "UPDATE grants SET revoked_at = ?2 WHERE user_id = ?1 AND revoked_at IS NULL".to_owned(),
    ] {
        execute(tx, &statement, params![id, now])?;
    }
    Ok(())
}

#[async_trait]
impl SessionStore for SqliteStore {
    async fn insert_session(&self, session: &SessionRecord) -> StoreResult<()> {
        self.write(|conn| {
            execute(
                conn,
                "INSERT INTO sessions (hash, user_id, created_at, expires_at, amr)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
                params![
                    session.hash.as_bytes(),
                    session.user_id.to_string(),
                    session.created_at,
                    session.expires_at,
                    rows::amr_text(&session.amr),
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

/// The upsert of a client row (every column but `created_at`, kept from the first insert),
/// shared by `upsert_client` and the RFC 7592 update of a registered client.
pub(super) fn upsert_client_sql() -> String {
    format!(
        "INSERT INTO clients ({CLIENT_COLS})
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)
                     ON CONFLICT (id) DO UPDATE SET key = excluded.key,
                         display_name = excluded.display_name, app_uri = excluded.app_uri,
                         redirect_uris = excluded.redirect_uris,
                         secret_hash = excluded.secret_hash, policy = excluded.policy,
                         previous_secret_hash = excluded.previous_secret_hash,
                         previous_secret_expires_at = excluded.previous_secret_expires_at,
                         source = excluded.source"
    )
}

/// Inserts `user` unless its id or username is taken, on `conn` (the write of
/// [`UserStore::insert_user`], also made by an invited sign-up): the rows inserted, 0 or 1.
pub(super) fn insert_user_in(conn: &rusqlite::Connection, user: &NewUser) -> StoreResult<usize> {
    execute(
        conn,
        &format!(
            "INSERT INTO users ({USER_COLS})
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)
             ON CONFLICT DO NOTHING"
        ),
        params![
            user.id.to_string(),
            user.username,
            user.display_name,
            user.password_hash,
            user.email,
            user.email_verified,
            user.created_at,
            rows::claims_text(&user.claims),
            user.admin,
            user.disabled_at,
            user.source.as_str(),
            user.second_factor_required,
        ],
    )
}
