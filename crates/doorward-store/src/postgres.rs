//! The PostgreSQL adapter, for several instances sharing one database.
//!
//! It keeps the semantics of the SQLite adapter (see `sqlite.rs`) statement for statement, with
//! what PostgreSQL's concurrency adds (SQLite runs one write at a time; PostgreSQL runs them
//! together, at READ COMMITTED):
//! - single-use redemptions are one `UPDATE … WHERE used_at IS NULL RETURNING`: of two racing
//!   updates of one row, the second waits for the first to commit, re-checks `used_at IS NULL`
//!   on the new row and updates nothing; the `SELECT` after it then sees the spent row;
//! - a revocation and a token insert into the same family are ordered by the family's `grants`
//!   row: [`TokenStore::insert_tokens`] reads it `FOR SHARE`, and the revocations lock it
//!   (`INSERT … ON CONFLICT DO UPDATE`, `UPDATE`) before they touch the tokens, so either the
//!   insert sees the revocation (and the tokens are born revoked) or the revocation's token
//!   updates, which start after the insert committed, see the tokens;
//! - a consent merge locks its row (an upsert that changes nothing) before reading the scopes
//!   it merges with.
//!
//! Migrations are embedded and applied under a session-level advisory lock on a connection of
//! their own, so that instances starting together apply each migration once.

use std::collections::HashSet;
use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use doorward_core::model::{
    AccessTokenRecord, BearerRecord, Client, CodeRecord, ConsentRecord, NewUser,
    RefreshTokenRecord, SessionRecord, SigningKeyRecord, User,
};
use doorward_core::ports::{
    ClientRef, ClientStore, CodeStore, ConsentStore, Issue, KeyStore, MaintenanceStore, Redemption,
    SecretStore, SessionStore, StoreError, StoreResult, TokenStore, UnixTime, UserStore,
};
use doorward_core::TokenHash;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions, PgRow};
use sqlx::AssertSqlSafe;
use sqlx::{Connection, Executor, PgConnection, PgPool, Postgres, Row};
use uuid::Uuid;

use crate::rows::{
    self, corrupt, Columns, ACCESS_COLS, CLIENT_COLS, CODE_COLS, CONSENT_COLS, KEY_COLS,
    REFRESH_COLS, REFRESH_READ, SESSION_COLS, USER_COLS,
};

/// The embedded migrations with their versions, applied in order; `doorward_migrations`
/// records which ran.
const MIGRATIONS: &[(i32, &str)] = &[
    (1, include_str!("../migrations/postgres/0001_init.sql")),
    (
        2,
        include_str!("../migrations/postgres/0002_refresh_successor.sql"),
    ),
];

/// The key of the advisory lock held while migrating: "doorward" in ASCII.
const MIGRATION_LOCK: i64 = 0x646f_6f72_7761_7264;

/// Run on each new pool connection: how long one statement may run (5 s).
const SET_STATEMENT_TIMEOUT: &str = "SET statement_timeout = 5000";

/// The PostgreSQL adapter: a pool of connections to one database.
///
/// The URL is a libpq-style `postgres://user:password@host:port/database?…` URL. To keep
/// Doorward's tables in a schema other than the default, name it in the URL:
/// `…?options=-csearch_path%3DNAME` (the tests use this to give each store an empty schema).
pub struct PostgresStore {
    pool: PgPool,
}

impl PostgresStore {
    /// Connects to the database at `url` and applies the embedded migrations (see
    /// [`PostgresStore::migrate`]).
    pub async fn open(url: &str) -> Result<Self, StoreError> {
        let options = connect_options(url)?;
        run_migrations(&options).await?;
        let pool = PgPoolOptions::new()
            .max_connections(16)
            .acquire_timeout(Duration::from_secs(5))
            .after_connect(|conn, _meta| {
                Box::pin(async move {
                    conn.execute(SET_STATEMENT_TIMEOUT).await?;
                    Ok(())
                })
            })
            .connect_with(options)
            .await
            .map_err(other)?;
        Ok(Self { pool })
    }

    /// Applies the embedded migrations that the database at `url` lacks, each in a transaction,
    /// under an advisory lock: of several instances starting together, one migrates and the
    /// others wait, then find nothing left to do.
    pub async fn migrate(url: &str) -> Result<(), StoreError> {
        run_migrations(&connect_options(url)?).await
    }
}

fn connect_options(url: &str) -> StoreResult<PgConnectOptions> {
    PgConnectOptions::from_str(url).map_err(other)
}

/// Migrates on a connection of its own (not a pool's: no statement timeout while waiting for
/// the lock, and closing it releases the lock whatever happened).
async fn run_migrations(options: &PgConnectOptions) -> StoreResult<()> {
    let mut conn = PgConnection::connect_with(options).await.map_err(other)?;
    sqlx::query("SELECT pg_advisory_lock($1)")
        .bind(MIGRATION_LOCK)
        .execute(&mut conn)
        .await
        .map_err(other)?;
    let applied = apply_migrations(&mut conn).await;
    let unlocked = sqlx::query("SELECT pg_advisory_unlock($1)")
        .bind(MIGRATION_LOCK)
        .execute(&mut conn)
        .await
        .map_err(other);
    // Dropping the connection on an error ends the session, which releases the lock too.
    applied?;
    unlocked?;
    conn.close().await.map_err(other)
}

async fn apply_migrations(conn: &mut PgConnection) -> StoreResult<()> {
    sqlx::raw_sql(
        "CREATE TABLE IF NOT EXISTS doorward_migrations (
             version    INT PRIMARY KEY,
             applied_at BIGINT NOT NULL
         )",
    )
    .execute(&mut *conn)
    .await
    .map_err(other)?;
    let applied: HashSet<i32> = sqlx::query("SELECT version FROM doorward_migrations")
        .fetch_all(&mut *conn)
        .await
        .map_err(other)?
        .iter()
        .map(|row| col(row, "version"))
        .collect::<StoreResult<_>>()?;
    for (version, sql) in MIGRATIONS {
        if applied.contains(version) {
            continue;
        }
        let mut tx = conn.begin().await.map_err(other)?;
        sqlx::raw_sql(AssertSqlSafe(*sql))
            .execute(&mut *tx)
            .await
            .map_err(other)?;
        sqlx::query(
            "INSERT INTO doorward_migrations (version, applied_at)
             VALUES ($1, extract(epoch FROM now())::bigint)",
        )
        .bind(*version)
        .execute(&mut *tx)
        .await
        .map_err(other)?;
        tx.commit().await.map_err(other)?;
    }
    Ok(())
}

/// The database could not be reached or cannot serve now (connection lost or refused, pool
/// exhausted, server shutting down or starting, statement timeout): the failure of a request
/// that may succeed when retried later, a 503 rather than a 500. It is the source of the
/// [`StoreError::Other`] that says so; find it with
/// `std::error::Error::source(&e).and_then(|s| s.downcast_ref::<DatabaseUnavailable>())`.
#[derive(Debug)]
pub struct DatabaseUnavailable(sqlx::Error);

impl std::fmt::Display for DatabaseUnavailable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "database unavailable: {}", self.0)
    }
}

impl std::error::Error for DatabaseUnavailable {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.0)
    }
}

/// Whether the error says that the database is unreachable or not serving now.
fn is_unavailable(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed => true,
        sqlx::Error::Database(db) => db.code().is_some_and(|code| {
            // 08: connection exception; 57P01/57P02/57P03: admin shutdown, crash shutdown,
            // cannot connect now; 53300: too many connections; 57014: query canceled (our
            // statement_timeout).
            code.starts_with("08")
                || matches!(&*code, "57P01" | "57P02" | "57P03" | "53300" | "57014")
        }),
        _ => false,
    }
}

/// Every driver error goes through here: change the mapping in this one place.
fn other(e: sqlx::Error) -> StoreError {
    if is_unavailable(&e) {
        StoreError::Unavailable(Box::new(DatabaseUnavailable(e)))
    } else {
        StoreError::Other(Box::new(e))
    }
}

/// PostgreSQL's side of the shared row mapping: UUIDs are UUID, booleans BOOLEAN, digests
/// BYTEA, times BIGINT.
impl Columns for PgRow {
    fn text(&self, name: &str) -> StoreResult<String> {
        col(self, name)
    }
    fn opt_text(&self, name: &str) -> StoreResult<Option<String>> {
        col(self, name)
    }
    fn int(&self, name: &str) -> StoreResult<i64> {
        col(self, name)
    }
    fn opt_int(&self, name: &str) -> StoreResult<Option<i64>> {
        col(self, name)
    }
    fn boolean(&self, name: &str) -> StoreResult<bool> {
        col(self, name)
    }
    fn blob(&self, name: &str) -> StoreResult<Vec<u8>> {
        col(self, name)
    }
    fn opt_blob(&self, name: &str) -> StoreResult<Option<Vec<u8>>> {
        col(self, name)
    }
    fn uuid(&self, name: &str) -> StoreResult<Uuid> {
        col(self, name)
    }
}

fn col<'r, T>(row: &'r PgRow, name: &str) -> StoreResult<T>
where
    T: sqlx::Decode<'r, Postgres> + sqlx::Type<Postgres>,
{
    row.try_get(name).map_err(other)
}

/// The record `build` makes of the row, if there is one.
fn record<T>(
    row: Option<PgRow>,
    build: impl FnOnce(&dyn Columns) -> StoreResult<T>,
) -> StoreResult<Option<T>> {
    row.map(|row| build(&row)).transpose()
}

/// The records `build` makes of the rows.
fn records<T>(
    rows: Vec<PgRow>,
    build: impl Fn(&dyn Columns) -> StoreResult<T>,
) -> StoreResult<Vec<T>> {
    rows.iter().map(|row| build(row)).collect()
}

const BEARER_SELECT: &str = rows::bearer_select!("$1");

#[async_trait]
impl ClientStore for PostgresStore {
    async fn find_client(&self, client: ClientRef<'_>) -> StoreResult<Option<Client>> {
        let row = match client {
            ClientRef::Id(id) => {
                let sql = format!("SELECT {CLIENT_COLS} FROM clients WHERE id = $1");
                sqlx::query(AssertSqlSafe(sql.as_str()))
                    .bind(id)
                    .fetch_optional(&self.pool)
                    .await
            }
            ClientRef::Key(key) => {
                let sql = format!("SELECT {CLIENT_COLS} FROM clients WHERE key = $1");
                sqlx::query(AssertSqlSafe(sql.as_str()))
                    .bind(key)
                    .fetch_optional(&self.pool)
                    .await
            }
        }
        .map_err(other)?;
        record(row, rows::client)
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
        let row = sqlx::query(AssertSqlSafe(sql.as_str()))
            .bind(id)
            .fetch_optional(&self.pool)
            .await
            .map_err(other)?;
        record(row, rows::user)
    }

    async fn find_user_by_username(&self, username: &str) -> StoreResult<Option<User>> {
        let sql = format!("SELECT {USER_COLS} FROM users WHERE username = $1");
        let row = sqlx::query(AssertSqlSafe(sql.as_str()))
            .bind(username)
            .fetch_optional(&self.pool)
            .await
            .map_err(other)?;
        record(row, rows::user)
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
        let row = sqlx::query(AssertSqlSafe(sql.as_str()))
            .bind(user.id)
            .bind(user.username.as_str())
            .bind(user.display_name.as_str())
            .bind(user.password_hash.as_str())
            .bind(user.email.as_deref())
            .bind(user.email_verified)
            .bind(user.created_at)
            .fetch_optional(&self.pool)
            .await
            .map_err(other)?;
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
        let row = sqlx::query(AssertSqlSafe(sql.as_str()))
            .bind(hash.as_bytes())
            .fetch_optional(&self.pool)
            .await
            .map_err(other)?;
        record(row, rows::session)
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

#[async_trait]
impl ConsentStore for PostgresStore {
    async fn find_consent(&self, user: Uuid, client: Uuid) -> StoreResult<Option<ConsentRecord>> {
        let sql =
            format!("SELECT {CONSENT_COLS} FROM consents WHERE user_id = $1 AND client_id = $2");
        let row = sqlx::query(AssertSqlSafe(sql.as_str()))
            .bind(user)
            .bind(client)
            .fetch_optional(&self.pool)
            .await
            .map_err(other)?;
        record(row, rows::consent)
    }

    async fn record_consent(&self, consent: &ConsentRecord) -> StoreResult<()> {
        let mut tx = self.pool.begin().await.map_err(other)?;
        // Inserts the approval, or locks the existing one unchanged and returns its scopes:
        // either way the row is locked until the merge below commits.
        let row = sqlx::query(
            "INSERT INTO consents (user_id, client_id, scopes, granted_at)
             VALUES ($1, $2, $3, $4)
             ON CONFLICT (user_id, client_id) DO UPDATE SET scopes = consents.scopes
             RETURNING scopes",
        )
        .bind(consent.user_id)
        .bind(consent.client_id)
        .bind(consent.scopes.to_string())
        .bind(consent.granted_at)
        .fetch_one(&mut *tx)
        .await
        .map_err(other)?;
        let scopes = row.scopes("scopes")?.union(&consent.scopes);
        sqlx::query(
            "UPDATE consents SET scopes = $3, granted_at = $4
             WHERE user_id = $1 AND client_id = $2",
        )
        .bind(consent.user_id)
        .bind(consent.client_id)
        .bind(scopes.to_string())
        .bind(consent.granted_at)
        .execute(&mut *tx)
        .await
        .map_err(other)?;
        tx.commit().await.map_err(other)
    }

    async fn list_consents(&self, user: Uuid) -> StoreResult<Vec<ConsentRecord>> {
        let sql = format!(
            "SELECT {CONSENT_COLS} FROM consents
             WHERE user_id = $1 ORDER BY granted_at, client_id"
        );
        let found = sqlx::query(AssertSqlSafe(sql.as_str()))
            .bind(user)
            .fetch_all(&self.pool)
            .await
            .map_err(other)?;
        records(found, rows::consent)
    }

    async fn revoke_consent(&self, user: Uuid, client: Uuid, now: UnixTime) -> StoreResult<()> {
        let mut tx = self.pool.begin().await.map_err(other)?;
        sqlx::query("DELETE FROM consents WHERE user_id = $1 AND client_id = $2")
            .bind(user)
            .bind(client)
            .execute(&mut *tx)
            .await
            .map_err(other)?;
        const FAMILIES: &str = "SELECT family_id FROM grants WHERE user_id = $1 AND client_id = $2";
        // The grants first: their row locks order this revocation with token inserts (see the
        // module's documentation).
        for statement in [
            "UPDATE grants SET revoked_at = $3
             WHERE user_id = $1 AND client_id = $2 AND revoked_at IS NULL"
                .to_owned(),
            format!("UPDATE codes SET used_at = $3 WHERE used_at IS NULL AND family_id IN ({FAMILIES})"),
            format!("UPDATE access_tokens SET revoked_at = $3 WHERE revoked_at IS NULL AND family_id IN ({FAMILIES})"),
            format!("UPDATE refresh_tokens SET revoked_at = $3 WHERE revoked_at IS NULL AND family_id IN ({FAMILIES})"),
        ] {
            sqlx::query(AssertSqlSafe(statement.as_str()))
                .bind(user)
                .bind(client)
                .bind(now)
                .execute(&mut *tx)
                .await
                .map_err(other)?;
        }
        tx.commit().await.map_err(other)
    }
}

/// Marks a single-use row as spent for `client` in one `UPDATE … RETURNING` (keeping
/// `successor` with it when given), and stores `issue` in the same transaction when it was
/// fresh; when nothing was updated, tells a spent row from an unknown one.
#[allow(clippy::too_many_arguments)]
async fn redeem<T>(
    pool: &PgPool,
    table: &str,
    cols: &str,
    hash: &TokenHash,
    client: Uuid,
    now: UnixTime,
    issue: Option<Issue<'_>>,
    successor: Option<&[u8]>,
    map: impl Fn(&dyn Columns) -> StoreResult<T>,
) -> StoreResult<Redemption<T>> {
    let mut tx = pool.begin().await.map_err(other)?;
    let set_successor = if successor.is_some() {
        ", successor = $4"
    } else {
        ""
    };
    let update = format!(
        "UPDATE {table} SET used_at = $1{set_successor}
         WHERE hash = $2 AND client_id = $3 AND used_at IS NULL RETURNING {cols}"
    );
    let mut query = sqlx::query(AssertSqlSafe(update.as_str()))
        .bind(now)
        .bind(hash.as_bytes())
        .bind(client);
    if let Some(sealed) = successor {
        query = query.bind(sealed);
    }
    let fresh = query.fetch_optional(&mut *tx).await.map_err(other)?;
    if let Some(row) = fresh {
        let record = map(&row)?;
        if let Some(issue) = issue {
            insert_tokens_in(&mut tx, issue.access, issue.refresh).await?;
        }
        tx.commit().await.map_err(other)?;
        return Ok(Redemption::Fresh(record));
    }
    let select = format!("SELECT {cols} FROM {table} WHERE hash = $1 AND client_id = $2");
    let spent = sqlx::query(AssertSqlSafe(select.as_str()))
        .bind(hash.as_bytes())
        .bind(client)
        .fetch_optional(&mut *tx)
        .await
        .map_err(other)?;
    tx.commit().await.map_err(other)?;
    Ok(match spent {
        Some(row) => Redemption::Spent(map(&row)?),
        None => Redemption::Unknown,
    })
}

/// When the family was revoked. `FOR SHARE`: a revocation of the family that locked the grant
/// first commits before this reads it (and the tokens are born revoked); one that comes after
/// waits for this transaction, then revokes the tokens it inserted.
async fn grant_revoked_at(
    tx: &mut sqlx::Transaction<'_, Postgres>,
    family: Uuid,
) -> StoreResult<Option<i64>> {
    let grant = sqlx::query("SELECT revoked_at FROM grants WHERE family_id = $1 FOR SHARE")
        .bind(family)
        .fetch_optional(&mut **tx)
        .await
        .map_err(other)?;
    match &grant {
        Some(row) => row.opt_int("revoked_at"),
        None => Ok(None),
    }
}

/// Inserts an access token and its refresh token in `tx`; tokens of a revoked family are born
/// revoked.
async fn insert_tokens_in(
    tx: &mut sqlx::Transaction<'_, Postgres>,
    access: &AccessTokenRecord,
    refresh: Option<&RefreshTokenRecord>,
) -> StoreResult<()> {
    let revoked_at = grant_revoked_at(tx, access.family_id).await?;
    let sql = format!(
        "INSERT INTO access_tokens ({ACCESS_COLS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"
    );
    sqlx::query(AssertSqlSafe(sql.as_str()))
        .bind(access.hash.as_bytes())
        .bind(access.family_id)
        .bind(access.client_id)
        .bind(access.user_id)
        .bind(access.scopes.to_string())
        .bind(access.issued_at)
        .bind(access.expires_at)
        .bind(revoked_at)
        .execute(&mut **tx)
        .await
        .map_err(other)?;
    if let Some(refresh) = refresh {
        // The refresh token's family is the access token's whenever the engine issues them
        // together; should it differ, its own grant decides.
        let refresh_revoked_at: Option<i64> = if refresh.family_id == access.family_id {
            revoked_at
        } else {
            grant_revoked_at(tx, refresh.family_id).await?
        };
        let sql = format!(
            "INSERT INTO refresh_tokens ({REFRESH_COLS})
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"
        );
        sqlx::query(AssertSqlSafe(sql.as_str()))
            .bind(refresh.hash.as_bytes())
            .bind(refresh.family_id)
            .bind(refresh.client_id)
            .bind(refresh.user_id)
            .bind(refresh.scopes.to_string())
            .bind(refresh.auth_time)
            .bind(refresh.issued_at)
            .bind(refresh.expires_at)
            .bind(refresh_revoked_at)
            .execute(&mut **tx)
            .await
            .map_err(other)?;
    }
    Ok(())
}

#[async_trait]
impl CodeStore for PostgresStore {
    async fn insert_code(&self, code: &CodeRecord) -> StoreResult<()> {
        let (challenge, method) = match &code.challenge {
            Some((c, m)) => (Some(c.as_str()), Some(m.as_str())),
            None => (None, None),
        };
        let mut tx = self.pool.begin().await.map_err(other)?;
        sqlx::query(
            "INSERT INTO grants (family_id, user_id, client_id, created_at)
             VALUES ($1, $2, $3, $4)",
        )
        .bind(code.family_id)
        .bind(code.user_id)
        .bind(code.client_id)
        .bind(code.issued_at)
        .execute(&mut *tx)
        .await
        .map_err(other)?;
        let sql = format!(
            "INSERT INTO codes ({CODE_COLS})
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)"
        );
        sqlx::query(AssertSqlSafe(sql.as_str()))
            .bind(code.hash.as_bytes())
            .bind(code.client_id)
            .bind(code.user_id)
            .bind(code.redirect_uri.as_str())
            .bind(code.scopes.to_string())
            .bind(code.scope_requested)
            .bind(challenge)
            .bind(method)
            .bind(code.family_id)
            .bind(code.auth_time)
            .bind(code.issued_at)
            .bind(code.expires_at)
            .bind(code.nonce.as_deref())
            .execute(&mut *tx)
            .await
            .map_err(other)?;
        tx.commit().await.map_err(other)
    }

    async fn find_code(&self, hash: &TokenHash, client: Uuid) -> StoreResult<Option<CodeRecord>> {
        let sql = format!("SELECT {CODE_COLS} FROM codes WHERE hash = $1 AND client_id = $2");
        let row = sqlx::query(AssertSqlSafe(sql.as_str()))
            .bind(hash.as_bytes())
            .bind(client)
            .fetch_optional(&self.pool)
            .await
            .map_err(other)?;
        record(row, rows::code)
    }

    async fn redeem_code(
        &self,
        hash: &TokenHash,
        client: Uuid,
        now: UnixTime,
        issue: Option<Issue<'_>>,
    ) -> StoreResult<Redemption<CodeRecord>> {
        redeem(
            &self.pool,
            "codes",
            CODE_COLS,
            hash,
            client,
            now,
            issue,
            None,
            rows::code,
        )
        .await
    }
}

#[async_trait]
impl TokenStore for PostgresStore {
    async fn insert_tokens(
        &self,
        access: &AccessTokenRecord,
        refresh: Option<&RefreshTokenRecord>,
    ) -> StoreResult<()> {
        let mut tx = self.pool.begin().await.map_err(other)?;
        insert_tokens_in(&mut tx, access, refresh).await?;
        tx.commit().await.map_err(other)
    }

    async fn find_access_token(&self, hash: &TokenHash) -> StoreResult<Option<AccessTokenRecord>> {
        let sql = format!("SELECT {ACCESS_COLS} FROM access_tokens WHERE hash = $1");
        let row = sqlx::query(AssertSqlSafe(sql.as_str()))
            .bind(hash.as_bytes())
            .fetch_optional(&self.pool)
            .await
            .map_err(other)?;
        record(row, rows::access)
    }

    async fn find_bearer(&self, hash: &TokenHash) -> StoreResult<Option<BearerRecord>> {
        let row = sqlx::query(BEARER_SELECT)
            .bind(hash.as_bytes())
            .fetch_optional(&self.pool)
            .await
            .map_err(other)?;
        record(row, rows::bearer)
    }

    async fn rotate_refresh_token(
        &self,
        hash: &TokenHash,
        client: Uuid,
        now: UnixTime,
        issue: Option<Issue<'_>>,
        successor: Option<&[u8]>,
    ) -> StoreResult<Redemption<RefreshTokenRecord>> {
        redeem(
            &self.pool,
            "refresh_tokens",
            REFRESH_READ,
            hash,
            client,
            now,
            issue,
            successor,
            rows::refresh,
        )
        .await
    }

    async fn find_refresh_token(
        &self,
        hash: &TokenHash,
    ) -> StoreResult<Option<RefreshTokenRecord>> {
        let sql = format!("SELECT {REFRESH_READ} FROM refresh_tokens WHERE hash = $1");
        let row = sqlx::query(AssertSqlSafe(sql.as_str()))
            .bind(hash.as_bytes())
            .fetch_optional(&self.pool)
            .await
            .map_err(other)?;
        record(row, rows::refresh)
    }

    async fn revoke_access_token(&self, hash: &TokenHash, now: UnixTime) -> StoreResult<()> {
        sqlx::query(
            "UPDATE access_tokens SET revoked_at = $2 WHERE hash = $1 AND revoked_at IS NULL",
        )
        .bind(hash.as_bytes())
        .bind(now)
        .execute(&self.pool)
        .await
        .map_err(other)
        .map(drop)
    }

    async fn revoke_family(&self, family: Uuid, now: UnixTime) -> StoreResult<()> {
        let mut tx = self.pool.begin().await.map_err(other)?;
        // A family always starts with a code (and its grant row); the insert only keeps the
        // revocation on record should one not (with the nil UUID as its user and client). The
        // upsert locks the grant row before the tokens are updated (see the module's
        // documentation).
        sqlx::query(
            "INSERT INTO grants (family_id, user_id, client_id, created_at, revoked_at)
             VALUES ($1, $3, $3, $2, $2)
             ON CONFLICT (family_id) DO UPDATE
             SET revoked_at = coalesce(grants.revoked_at, excluded.revoked_at)",
        )
        .bind(family)
        .bind(now)
        .bind(Uuid::nil())
        .execute(&mut *tx)
        .await
        .map_err(other)?;
        for statement in [
            "UPDATE access_tokens SET revoked_at = $2
             WHERE family_id = $1 AND revoked_at IS NULL",
            "UPDATE refresh_tokens SET revoked_at = $2
             WHERE family_id = $1 AND revoked_at IS NULL",
        ] {
            sqlx::query(statement)
                .bind(family)
                .bind(now)
                .execute(&mut *tx)
                .await
                .map_err(other)?;
        }
        tx.commit().await.map_err(other)
    }
}

#[async_trait]
impl MaintenanceStore for PostgresStore {
    /// Deletes in batches of [`PURGE_BATCH`] rows, each its own short transaction, so that no
    /// purge holds locks for long; and only in one instance at a time: the others find the
    /// advisory lock taken and return 0 at once.
    async fn purge_expired(&self, now: UnixTime, keep_spent: i64) -> StoreResult<u64> {
        let mut conn = self.pool.acquire().await.map_err(other)?;
        let locked: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock($1)")
            .bind(PURGE_LOCK)
            .fetch_one(&mut *conn)
            .await
            .map_err(other)?;
        if !locked {
            return Ok(0);
        }
        let result = purge_in_batches(&mut conn, now, keep_spent).await;
        let unlocked = sqlx::query("SELECT pg_advisory_unlock($1)")
            .bind(PURGE_LOCK)
            .execute(&mut *conn)
            .await;
        if unlocked.is_err() {
            // The lock goes with the session: make sure this connection is not reused.
            conn.close_on_drop();
        }
        result
    }
}

/// The key of the advisory lock held while purging: "dw-purge" in ASCII.
const PURGE_LOCK: i64 = 0x6477_2d70_7572_6765;
/// Rows deleted per statement by the purge.
const PURGE_BATCH: i64 = 5000;

async fn purge_in_batches(
    conn: &mut sqlx::PgConnection,
    now: UnixTime,
    keep_spent: i64,
) -> StoreResult<u64> {
    let mut deleted = 0;
    for (table, before) in [
        ("sessions", now),
        ("codes", now - keep_spent),
        ("access_tokens", now),
        ("refresh_tokens", now),
    ] {
        let sql = format!(
            "DELETE FROM {table} WHERE ctid IN
               (SELECT ctid FROM {table} WHERE expires_at <= $1 LIMIT $2)"
        );
        loop {
            let n = sqlx::query(AssertSqlSafe(sql.as_str()))
                .bind(before)
                .bind(PURGE_BATCH)
                .execute(&mut *conn)
                .await
                .map_err(other)?
                .rows_affected();
            deleted += n;
            if n < PURGE_BATCH as u64 {
                break;
            }
        }
    }
    // Past the grace window nobody may read a successor again (not counted: no row goes).
    sqlx::query(
        "UPDATE refresh_tokens SET successor = NULL
         WHERE successor IS NOT NULL AND used_at < $1",
    )
    .bind(now - doorward_core::ports::MAX_REFRESH_GRACE)
    .execute(&mut *conn)
    .await
    .map_err(other)?;
    // A grant goes once nothing refers to it any more (not counted: it is bookkeeping).
    sqlx::query(
        "DELETE FROM grants WHERE created_at <= $1
           AND NOT EXISTS (SELECT 1 FROM codes c WHERE c.family_id = grants.family_id)
           AND NOT EXISTS (SELECT 1 FROM refresh_tokens r WHERE r.family_id = grants.family_id)
           AND NOT EXISTS (SELECT 1 FROM access_tokens a WHERE a.family_id = grants.family_id)",
    )
    .bind(now - keep_spent)
    .execute(&mut *conn)
    .await
    .map_err(other)?;
    Ok(deleted)
}

#[async_trait]
impl SecretStore for PostgresStore {
    async fn ensure_server_secret(&self, name: &str, candidate: &[u8]) -> StoreResult<Vec<u8>> {
        // Two statements, not one: the SELECT's snapshot is taken after the INSERT, so it sees
        // a value that a concurrent instance committed while the INSERT waited for it.
        sqlx::query(
            "INSERT INTO server_secrets (name, value) VALUES ($1, $2) ON CONFLICT DO NOTHING",
        )
        .bind(name)
        .bind(candidate)
        .execute(&self.pool)
        .await
        .map_err(other)?;
        let row = sqlx::query("SELECT value FROM server_secrets WHERE name = $1")
            .bind(name)
            .fetch_optional(&self.pool)
            .await
            .map_err(other)?;
        match row {
            Some(row) => row.blob("value"),
            None => Err(corrupt("server secret vanished")),
        }
    }
}

#[async_trait]
impl KeyStore for PostgresStore {
    async fn list_signing_keys(&self) -> StoreResult<Vec<SigningKeyRecord>> {
        // `alg` is COLLATE "C": the order is SQLite's.
        let sql = format!("SELECT {KEY_COLS} FROM signing_keys ORDER BY alg, generation");
        let found = sqlx::query(AssertSqlSafe(sql.as_str()))
            .fetch_all(&self.pool)
            .await
            .map_err(other)?;
        records(found, rows::signing_key)
    }

    async fn insert_signing_key(&self, key: &SigningKeyRecord) -> StoreResult<bool> {
        let sql = format!(
            "INSERT INTO signing_keys ({KEY_COLS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
             ON CONFLICT DO NOTHING"
        );
        sqlx::query(AssertSqlSafe(sql.as_str()))
            .bind(key.kid.as_str())
            .bind(key.alg.as_str())
            .bind(key.generation)
            .bind(key.private_key.as_slice())
            .bind(key.public_jwk.as_str())
            .bind(key.created_at)
            .bind(key.activate_at)
            .bind(key.remove_at)
            .execute(&self.pool)
            .await
            .map_err(other)
            .map(|result| result.rows_affected() == 1)
    }

    async fn schedule_key_removal(&self, kid: &str, remove_at: UnixTime) -> StoreResult<()> {
        sqlx::query(
            "UPDATE signing_keys SET remove_at = least(coalesce(remove_at, $2), $2)
             WHERE kid = $1",
        )
        .bind(kid)
        .bind(remove_at)
        .execute(&self.pool)
        .await
        .map_err(other)
        .map(drop)
    }

    async fn delete_signing_key(&self, kid: &str) -> StoreResult<()> {
        sqlx::query("DELETE FROM signing_keys WHERE kid = $1")
            .bind(kid)
            .execute(&self.pool)
            .await
            .map_err(other)
            .map(drop)
    }
}
