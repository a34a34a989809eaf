//! The SQLite adapter (on rusqlite): one database file in WAL mode, one writer connection and a
//! few readers. This file opens the database, applies the migrations and hands out
//! connections; the ports are implemented in `sqlite/`, one file per group of ports, over the
//! row mapping that both adapters share (`rows.rs`).

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use doorward_core::ports::{StoreError, StoreResult};
use rusqlite::{Connection, OpenFlags, Row, TransactionBehavior};
use tokio::sync::Mutex;
use uuid::Uuid;

use crate::rows::{corrupt, Columns};

mod accounts;
mod batch;
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

/// The embedded migrations, applied in order; `PRAGMA user_version` records how many ran.
const MIGRATIONS: &[&str] = &[
    include_str!("../migrations/sqlite/0001_init.sql"),
    include_str!("../migrations/sqlite/0002_oidc.sql"),
    include_str!("../migrations/sqlite/0003_refresh_successor.sql"),
    include_str!("../migrations/sqlite/0004_throttle.sql"),
    include_str!("../migrations/sqlite/0005_client_management.sql"),
    include_str!("../migrations/sqlite/0006_assertion_jti.sql"),
    include_str!("../migrations/sqlite/0007_client_credentials.sql"),
    include_str!("../migrations/sqlite/0008_registration.sql"),
    include_str!("../migrations/sqlite/0009_resource_indicators.sql"),
    include_str!("../migrations/sqlite/0010_changes.sql"),
    include_str!("../migrations/sqlite/0011_devices.sql"),
    include_str!("../migrations/sqlite/0012_dpop_and_delegation.sql"),
    include_str!("../migrations/sqlite/0013_claims_and_grant_data.sql"),
    include_str!("../migrations/sqlite/0014_accounts.sql"),
    include_str!("../migrations/sqlite/0015_events.sql"),
    include_str!("../migrations/sqlite/0016_invitations.sql"),
    include_str!("../migrations/sqlite/0017_second_factors.sql"),
    include_str!("../migrations/sqlite/0018_passkeys.sql"),
];

/// Readers beside the writer: enough for the pages and bearer checks to go on during writes.
const READERS: usize = 4;

/// The SQLite adapter: one database file in WAL mode.
///
/// # Why not a thread per connection
/// Statements run inline on the calling task, under an async mutex per connection: a prepared
/// statement on a warm page cache takes microseconds, less than the two thread switches an
/// async driver that runs SQLite on worker threads pays per statement (measured: the
/// sqlx-based first version of this adapter spent most of its time switching threads and
/// redeemed ~3.4 k codes/s on one core; see BENCHMARKS.md). Statements are prepared once per
/// connection and cached. The cost: SQLite's automatic WAL checkpoint (every 1000 pages) runs
/// inside the commit that crosses the threshold and holds that async thread for a few
/// milliseconds. Moving it to a periodic checkpoint on the blocking pool was measured and
/// raised throughput by ~10 % but doubled p99, so it stays automatic.
///
/// The hot writes (codes, tokens, assertion `jti`s) are committed in groups by one thread
/// (`sqlite/batch.rs`): what queues while a commit runs shares the next one. The others run
/// inline under the writer's lock, each in its own transaction.
///
/// Writes go through one connection (`writer`) and reads through a few (`readers`). SQLite
/// allows one writer at a time; with writes spread over many connections, the losers of each
/// race sleep in SQLite's busy handler, which caps throughput and makes the tail slow. Queueing
/// writes in-process on one connection avoids that, and WAL lets readers go on meanwhile.
///
/// `synchronous=NORMAL` in WAL mode: a commit survives a crash of the process, and the last
/// commits before a power loss may be lost (they are then re-done by the client: a code not
/// redeemed, a token not issued). Never a half-applied change.
pub struct SqliteStore {
    writer: Arc<Mutex<Connection>>,
    batcher: batch::Batcher,
    readers: Vec<Mutex<Connection>>,
    next_reader: AtomicUsize,
    /// The last change this process read from the feed (`sqlite/changes.rs`).
    feed_cursor: Mutex<Option<i64>>,
}

/// Where the database lives, from a `sqlite:` URL.
enum Location {
    Memory,
    File(PathBuf),
}

fn location(url: &str) -> StoreResult<Location> {
    let rest = url
        .strip_prefix("sqlite:")
        .ok_or_else(|| StoreError::Other(format!("not a sqlite: URL: {url}").into()))?;
    let rest = rest.strip_prefix("//").unwrap_or(rest);
    let path = rest.split('?').next().unwrap_or("");
    match path {
        "" => Err(StoreError::Other("the sqlite: URL has no path".into())),
        ":memory:" => Ok(Location::Memory),
        path => Ok(Location::File(PathBuf::from(path))),
    }
}

/// Creates the database file, readable and writable by its owner only (0600 on Unix), when it
/// does not exist: it holds the server's keys, its users' password hashes and token digests.
/// SQLite gives its `-wal` and `-shm` files the mode of the database file. An existing file
/// keeps its mode.
fn create_private(location: &Location) -> std::io::Result<()> {
    let Location::File(path) = location else {
        return Ok(());
    };
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    match options.open(path) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(e),
    }
}

fn connect(location: &Location) -> rusqlite::Result<Connection> {
    let conn = match location {
        Location::Memory => Connection::open_in_memory()?,
        Location::File(path) => Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_WRITE
                | OpenFlags::SQLITE_OPEN_CREATE
                | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?,
    };
    conn.busy_timeout(Duration::from_secs(5))?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    conn.set_prepared_statement_cache_capacity(64);
    Ok(conn)
}

fn migrate(conn: &mut Connection) -> rusqlite::Result<()> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let applied: usize = tx.pragma_query_value(None, "user_version", |r| r.get(0))?;
    for migration in MIGRATIONS.iter().skip(applied) {
        tx.execute_batch(migration)?;
    }
    tx.pragma_update(None, "user_version", MIGRATIONS.len())?;
    tx.commit()
}

impl SqliteStore {
    /// Opens (creating if needed) the database at `url` (`sqlite:PATH`, `sqlite://PATH`, or
    /// `sqlite::memory:`) and runs the embedded migrations.
    ///
    /// # Example
    /// An in-memory database (one connection, gone with the store); a file such as
    /// `sqlite:/var/lib/doorward/db.sqlite` is opened the same way and keeps its rows.
    /// ```
    /// use doorward_core::ports::{ClientRef, ClientStore, StoreError};
    /// use doorward_store::SqliteStore;
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), StoreError> {
    /// let store = SqliteStore::open("sqlite::memory:").await?;
    /// // Absence is not an error: an unknown client is `None`.
    /// assert!(store.find_client(ClientRef::Key("nobody")).await?.is_none());
    /// # Ok(())
    /// # }
    /// ```
    pub async fn open(url: &str) -> Result<Self, StoreError> {
        let location = location(url)?;
        create_private(&location).map_err(other)?;
        let mut writer = connect(&location).map_err(other)?;
        // The writer keeps SQLite's default page cache (2 MiB). A larger one (16 MiB) was
        // measured slower once writes were grouped and keys dated: SQLite clears the cache's
        // pages past the end of the file at the end of every transaction by walking its whole
        // hash table, which took 4 % of the server's time (BENCHMARKS.md, 2026-12-04).
        writer
            .pragma_update(None, "cache_size", -2000)
            .map_err(other)?;
        migrate(&mut writer).map_err(other)?;
        // An in-memory database lives in its one connection, which then serves reads too.
        let readers = match location {
            Location::Memory => Vec::new(),
            Location::File(_) => (0..READERS)
                .map(|_| connect(&location).map(Mutex::new))
                .collect::<rusqlite::Result<_>>()
                .map_err(other)?,
        };
        let writer = Arc::new(Mutex::new(writer));
        let batcher = batch::Batcher::start(Arc::clone(&writer)).map_err(other)?;
        Ok(Self {
            writer,
            batcher,
            readers,
            next_reader: AtomicUsize::new(0),
            feed_cursor: Mutex::new(None),
        })
    }

    async fn write<T>(&self, f: impl FnOnce(&mut Connection) -> StoreResult<T>) -> StoreResult<T> {
        let mut conn = self.writer.lock().await;
        f(&mut conn)
    }

    /// Runs `work` in the writer thread's next group commit (`sqlite/batch.rs`), inside a
    /// savepoint of its own: `work` must not open a transaction. It answers once committed.
    async fn write_batched<T, F>(&self, work: F) -> StoreResult<T>
    where
        F: FnOnce(&Connection) -> StoreResult<T> + Send + 'static,
        T: Send + 'static,
    {
        self.batcher.write(work).await
    }

    async fn read<T>(&self, f: impl FnOnce(&Connection) -> StoreResult<T>) -> StoreResult<T> {
        if self.readers.is_empty() {
            let conn = self.writer.lock().await;
            return f(&conn);
        }
        for reader in &self.readers {
            if let Ok(conn) = reader.try_lock() {
                return f(&conn);
            }
        }
        let i = self.next_reader.fetch_add(1, Ordering::Relaxed) % self.readers.len();
        let conn = self.readers[i].lock().await;
        f(&conn)
    }

    /// The record `build` makes of the one row that the query `sql` returns, if any.
    async fn find<T>(
        &self,
        sql: &str,
        params: impl rusqlite::Params + Send,
        build: impl FnOnce(&dyn Columns) -> StoreResult<T> + Send,
    ) -> StoreResult<Option<T>> {
        self.read(|conn| query_one(conn, sql, params, build)).await
    }

    /// The records `build` makes of the rows that the query `sql` returns.
    async fn find_all<T>(
        &self,
        sql: &str,
        params: impl rusqlite::Params + Send,
        build: impl Fn(&dyn Columns) -> StoreResult<T> + Send,
    ) -> StoreResult<Vec<T>> {
        self.read(|conn| query_all(conn, sql, params, build)).await
    }
}

fn other(e: impl std::error::Error + Send + Sync + 'static) -> StoreError {
    StoreError::Other(Box::new(e))
}

/// SQLite's side of the shared row mapping: UUIDs are TEXT, booleans INTEGER, digests BLOB.
impl Columns for Row<'_> {
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
        let text: String = col(self, name)?;
        Uuid::try_parse(&text).map_err(|_| corrupt(name))
    }
    fn opt_uuid(&self, name: &str) -> StoreResult<Option<Uuid>> {
        let text: Option<String> = col(self, name)?;
        text.map(|t| Uuid::try_parse(&t).map_err(|_| corrupt(name)))
            .transpose()
    }
}

fn col<T: rusqlite::types::FromSql>(row: &Row<'_>, name: &str) -> StoreResult<T> {
    row.get(name).map_err(other)
}

/// Runs a query expected to return at most one row, mapping it with `map`.
fn query_one<T>(
    conn: &Connection,
    sql: &str,
    params: impl rusqlite::Params,
    map: impl FnOnce(&dyn Columns) -> StoreResult<T>,
) -> StoreResult<Option<T>> {
    let mut statement = conn.prepare_cached(sql).map_err(other)?;
    let mut rows = statement.query(params).map_err(other)?;
    match rows.next().map_err(other)? {
        Some(row) => map(row).map(Some),
        None => Ok(None),
    }
}

/// Runs a query, mapping each row it returns with `map`.
fn query_all<T>(
    conn: &Connection,
    sql: &str,
    params: impl rusqlite::Params,
    map: impl Fn(&dyn Columns) -> StoreResult<T>,
) -> StoreResult<Vec<T>> {
    let mut statement = conn.prepare_cached(sql).map_err(other)?;
    let mut rows = statement.query(params).map_err(other)?;
    let mut out = Vec::new();
    while let Some(row) = rows.next().map_err(other)? {
        out.push(map(row)?);
    }
    Ok(out)
}

fn execute(conn: &Connection, sql: &str, params: impl rusqlite::Params) -> StoreResult<usize> {
    conn.prepare_cached(sql)
        .and_then(|mut s| s.execute(params))
        .map_err(other)
}
