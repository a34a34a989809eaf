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
//!
//! This file connects, migrates and maps driver errors; the ports are implemented in
//! `postgres/`, one file per group of ports (as in `sqlite/`), over the row mapping that both
//! adapters share (`rows.rs`).
//!
//! [`TokenStore::insert_tokens`]: doorward_core::ports::TokenStore::insert_tokens

use std::collections::HashSet;
use std::str::FromStr;
use std::time::Duration;

use doorward_core::ports::{StoreError, StoreResult};
use sqlx::postgres::{PgArguments, PgConnectOptions, PgPoolOptions, PgRow};
use sqlx::query::Query;
use sqlx::AssertSqlSafe;
use sqlx::{Connection, Executor, PgConnection, PgPool, Postgres, Row};
use uuid::Uuid;

use crate::rows::Columns;

mod accounts;
mod changes;
mod consents;
mod devices;
mod events;
mod invitations;
mod keys;
mod maintenance;
mod registration;
mod second_factors;
mod seed;
mod throttle;
mod tokens;

/// The embedded migrations with their versions, applied in order; `doorward_migrations`
/// records which ran.
const MIGRATIONS: &[(i32, &str)] = &[
    (1, include_str!("../migrations/postgres/0001_init.sql")),
    (
        2,
        include_str!("../migrations/postgres/0002_refresh_successor.sql"),
    ),
    (3, include_str!("../migrations/postgres/0003_throttle.sql")),
    (
        4,
        include_str!("../migrations/postgres/0004_client_management.sql"),
    ),
    (
        5,
        include_str!("../migrations/postgres/0005_assertion_jti.sql"),
    ),
    (
        6,
        include_str!("../migrations/postgres/0006_client_credentials.sql"),
    ),
    (
        7,
        include_str!("../migrations/postgres/0007_registration.sql"),
    ),
    (
        8,
        include_str!("../migrations/postgres/0008_resource_indicators.sql"),
    ),
    (9, include_str!("../migrations/postgres/0009_devices.sql")),
    (
        10,
        include_str!("../migrations/postgres/0010_dpop_and_delegation.sql"),
    ),
    (
        11,
        include_str!("../migrations/postgres/0011_claims_and_grant_data.sql"),
    ),
    (12, include_str!("../migrations/postgres/0012_accounts.sql")),
    (13, include_str!("../migrations/postgres/0013_events.sql")),
    (
        14,
        include_str!("../migrations/postgres/0014_invitations.sql"),
    ),
    (
        15,
        include_str!("../migrations/postgres/0015_second_factors.sql"),
    ),
    (16, include_str!("../migrations/postgres/0016_passkeys.sql")),
];

/// The most connections the pool opens.
const MAX_CONNECTIONS: u32 = 16;

/// The key of the advisory lock held while migrating: "doorward" in ASCII.
const MIGRATION_LOCK: i64 = 0x646f_6f72_7761_7264;

/// Run on each new pool connection: how long one statement may run (5 s).
const SET_STATEMENT_TIMEOUT: &str = "SET statement_timeout = 5000";

/// The PostgreSQL adapter: a pool of connections to one database.
///
/// The URL is a libpq-style `postgres://user:password@host:port/database?…` URL. To keep
/// Doorward's tables in a schema other than the default, name it in the URL:
/// `…?options=-csearch_path%3DNAME` (the tests use this to give each store an empty schema).
/// TLS as libpq does it (rustls): `sslmode=verify-full` checks the server's certificate and
/// name (`sslrootcert=PATH` for a private authority), `require` encrypts without checking,
/// and the default `prefer` encrypts when the server offers it.
pub struct PostgresStore {
    pool: PgPool,
    /// The change feed's listening connection (`postgres/changes.rs`), opened at its first poll.
    listener: changes::Listener,
}

impl PostgresStore {
    /// Connects to the database at `url` and applies the embedded migrations (see
    /// [`PostgresStore::migrate`]).
    ///
    /// # Example
    /// On the database that `DOORWARD_TEST_POSTGRES_URL` names, as the tests use; without it
    /// the example returns at once.
    /// ```
    /// use doorward_core::ports::{ClientRef, ClientStore, StoreError};
    /// use doorward_store::PostgresStore;
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), StoreError> {
    /// let url = match std::env::var("DOORWARD_TEST_POSTGRES_URL") {
    ///     Ok(url) if !url.is_empty() => url, // postgres://user:password@host:port/database
    ///     _ => return Ok(()),
    /// };
    /// let store = PostgresStore::open(&url).await?;
    /// // Absence is not an error: an unknown client is `None`.
    /// assert!(store.find_client(ClientRef::Key("nobody")).await?.is_none());
    /// # Ok(())
    /// # }
    /// ```
    pub async fn open(url: &str) -> Result<Self, StoreError> {
        let options = connect_options(url)?;
        run_migrations(&options).await?;
        let pool = PgPoolOptions::new()
            .max_connections(MAX_CONNECTIONS)
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
        Ok(Self {
            pool,
            listener: Default::default(),
        })
    }

    /// Applies the embedded migrations that the database at `url` lacks, each in a transaction,
    /// under an advisory lock: of several instances starting together, one migrates and the
    /// others wait, then find nothing left to do.
    pub async fn migrate(url: &str) -> Result<(), StoreError> {
        run_migrations(&connect_options(url)?).await
    }

    /// The record `build` makes of the one row that `query` returns, if any.
    async fn find<T>(
        &self,
        query: Query<'_, Postgres, PgArguments>,
        build: impl FnOnce(&dyn Columns) -> StoreResult<T> + Send,
    ) -> StoreResult<Option<T>> {
        let row = query.fetch_optional(&self.pool).await.map_err(other)?;
        record(row, build)
    }

    /// The records `build` makes of the rows that `query` returns.
    async fn find_all<T>(
        &self,
        query: Query<'_, Postgres, PgArguments>,
        build: impl Fn(&dyn Columns) -> StoreResult<T> + Send,
    ) -> StoreResult<Vec<T>> {
        let rows = query.fetch_all(&self.pool).await.map_err(other)?;
        rows.iter().map(|row| build(row)).collect()
    }
}

/// The connection options of `url`, libpq's parameters included: `sslmode` (`disable`,
/// `prefer` by default: TLS when the server offers it, `require`, `verify-ca`, `verify-full`)
/// and `sslrootcert` (a private authority's certificate; the public ones are built in).
pub(crate) fn connect_options(url: &str) -> StoreResult<PgConnectOptions> {
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
    fn opt_uuid(&self, name: &str) -> StoreResult<Option<Uuid>> {
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
