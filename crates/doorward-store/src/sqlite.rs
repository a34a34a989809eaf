use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use doorward_core::model::{
    AccessTokenRecord, BearerRecord, Client, CodeRecord, ConsentRecord, NewUser,
    RefreshTokenRecord, SessionRecord, SigningKeyRecord, User,
};
use doorward_core::ports::{
    ClientRef, ClientStore, CodeStore, ConsentStore, Issue, KeyStore, MaintenanceStore, Redemption,
    SecretStore, SessionStore, StoreError, StoreResult, TokenStore, UnixTime, UserStore,
    MAX_REFRESH_GRACE,
};
use doorward_core::TokenHash;
use rusqlite::{params, Connection, OpenFlags, Row, TransactionBehavior};
use tokio::sync::Mutex;
use uuid::Uuid;

use crate::rows::{
    self, corrupt, Columns, ACCESS_COLS, CLIENT_COLS, CODE_COLS, CONSENT_COLS, KEY_COLS,
    REFRESH_COLS, REFRESH_READ, SESSION_COLS, USER_COLS,
};

/// The embedded migrations, applied in order; `PRAGMA user_version` records how many ran.
const MIGRATIONS: &[&str] = &[
    include_str!("../migrations/sqlite/0001_init.sql"),
    include_str!("../migrations/sqlite/0002_oidc.sql"),
    include_str!("../migrations/sqlite/0003_refresh_successor.sql"),
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
/// Writes go through one connection (`writer`) and reads through a few (`readers`). SQLite
/// allows one writer at a time; with writes spread over many connections, the losers of each
/// race sleep in SQLite's busy handler, which caps throughput and makes the tail slow. Queueing
/// writes in-process on one connection avoids that, and WAL lets readers go on meanwhile.
///
/// `synchronous=NORMAL` in WAL mode: a commit survives a crash of the process, and the last
/// commits before a power loss may be lost (they are then re-done by the client: a code not
/// redeemed, a token not issued). Never a half-applied change.
pub struct SqliteStore {
    writer: Mutex<Connection>,
    readers: Vec<Mutex<Connection>>,
    next_reader: AtomicUsize,
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
    pub async fn open(url: &str) -> Result<Self, StoreError> {
        let location = location(url)?;
        let mut writer = connect(&location).map_err(other)?;
        // The writer keeps a larger page cache (16 MiB, allocated as used): random token keys
        // touch pages all over the B-trees, and every miss is a read system call.
        writer
            .pragma_update(None, "cache_size", -16 * 1024)
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
        Ok(Self {
            writer: Mutex::new(writer),
            readers,
            next_reader: AtomicUsize::new(0),
        })
    }

    async fn write<T>(&self, f: impl FnOnce(&mut Connection) -> StoreResult<T>) -> StoreResult<T> {
        let mut conn = self.writer.lock().await;
        f(&mut conn)
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

const BEARER_SELECT: &str = rows::bearer_select!("?1");

#[async_trait]
impl ClientStore for SqliteStore {
    async fn find_client(&self, client: ClientRef<'_>) -> StoreResult<Option<Client>> {
        self.read(|conn| match client {
            ClientRef::Id(id) => query_one(
                conn,
                &format!("SELECT {CLIENT_COLS} FROM clients WHERE id = ?1"),
                [id.to_string()],
                rows::client,
            ),
            ClientRef::Key(key) => query_one(
                conn,
                &format!("SELECT {CLIENT_COLS} FROM clients WHERE key = ?1"),
                [key],
                rows::client,
            ),
        })
        .await
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
        self.read(|conn| {
            query_one(
                conn,
                &format!("SELECT {USER_COLS} FROM users WHERE id = ?1"),
                [id.to_string()],
                rows::user,
            )
        })
        .await
    }

    async fn find_user_by_username(&self, username: &str) -> StoreResult<Option<User>> {
        self.read(|conn| {
            query_one(
                conn,
                &format!("SELECT {USER_COLS} FROM users WHERE username = ?1"),
                [username],
                rows::user,
            )
        })
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
        self.read(|conn| {
            query_one(
                conn,
                &format!("SELECT {SESSION_COLS} FROM sessions WHERE hash = ?1"),
                [hash.as_bytes()],
                rows::session,
            )
        })
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

#[async_trait]
impl ConsentStore for SqliteStore {
    async fn find_consent(&self, user: Uuid, client: Uuid) -> StoreResult<Option<ConsentRecord>> {
        self.read(|conn| {
            query_one(
                conn,
                &format!(
                    "SELECT {CONSENT_COLS} FROM consents WHERE user_id = ?1 AND client_id = ?2"
                ),
                [user.to_string(), client.to_string()],
                rows::consent,
            )
        })
        .await
    }

    async fn record_consent(&self, consent: &ConsentRecord) -> StoreResult<()> {
        self.write(|conn| {
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(other)?;
            let (user, client) = (consent.user_id.to_string(), consent.client_id.to_string());
            let existing = query_one(
                &tx,
                "SELECT scopes FROM consents WHERE user_id = ?1 AND client_id = ?2",
                [&user, &client],
                |row| row.scopes("scopes"),
            )?;
            let scopes = match existing {
                Some(existing) => existing.union(&consent.scopes),
                None => consent.scopes.clone(),
            };
            execute(
                &tx,
                "INSERT INTO consents (user_id, client_id, scopes, granted_at)
                 VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (user_id, client_id) DO UPDATE SET scopes = excluded.scopes,
                     granted_at = excluded.granted_at",
                params![user, client, scopes.to_string(), consent.granted_at],
            )?;
            tx.commit().map_err(other)
        })
        .await
    }

    async fn list_consents(&self, user: Uuid) -> StoreResult<Vec<ConsentRecord>> {
        self.read(|conn| {
            query_all(
                conn,
                &format!(
                    "SELECT {CONSENT_COLS} FROM consents
                     WHERE user_id = ?1 ORDER BY granted_at, client_id"
                ),
                [user.to_string()],
                rows::consent,
            )
        })
        .await
    }

    async fn revoke_consent(&self, user: Uuid, client: Uuid, now: UnixTime) -> StoreResult<()> {
        let (user, client) = (user.to_string(), client.to_string());
        self.write(|conn| {
            let tx = conn.transaction().map_err(other)?;
            execute(
                &tx,
                "DELETE FROM consents WHERE user_id = ?1 AND client_id = ?2",
                params![user, client],
            )?;
            const FAMILIES: &str =
                "SELECT family_id FROM grants WHERE user_id = ?1 AND client_id = ?2";
            for statement in [
                format!("UPDATE codes SET used_at = ?3 WHERE used_at IS NULL AND family_id IN ({FAMILIES})"),
                format!("UPDATE access_tokens SET revoked_at = ?3 WHERE revoked_at IS NULL AND family_id IN ({FAMILIES})"),
                format!("UPDATE refresh_tokens SET revoked_at = ?3 WHERE revoked_at IS NULL AND family_id IN ({FAMILIES})"),
                "UPDATE grants SET revoked_at = ?3
                 WHERE user_id = ?1 AND client_id = ?2 AND revoked_at IS NULL"
                    .to_owned(),
            ] {
                execute(&tx, &statement, params![user, client, now])?;
            }
            tx.commit().map_err(other)
        })
        .await
    }
}

/// Marks a single-use row as spent for `client` in one `UPDATE … RETURNING` (keeping
/// `successor` with it when given), and stores `issue` in the same transaction when it was
/// fresh; when nothing was updated, tells a spent row from an unknown one.
#[allow(clippy::too_many_arguments)]
fn redeem<T>(
    conn: &mut Connection,
    table: &str,
    cols: &str,
    hash: &TokenHash,
    client: &str,
    now: UnixTime,
    issue: Option<Issue<'_>>,
    successor: Option<&[u8]>,
    map: impl Fn(&dyn Columns) -> StoreResult<T>,
) -> StoreResult<Redemption<T>> {
    let tx = conn.transaction().map_err(other)?;
    let set_successor = if successor.is_some() {
        ", successor = ?4"
    } else {
        ""
    };
    let update = format!(
        "UPDATE {table} SET used_at = ?1{set_successor}
         WHERE hash = ?2 AND client_id = ?3 AND used_at IS NULL RETURNING {cols}"
    );
    let fresh = match successor {
        Some(sealed) => query_one(
            &tx,
            &update,
            params![now, hash.as_bytes(), client, sealed],
            &map,
        )?,
        None => query_one(&tx, &update, params![now, hash.as_bytes(), client], &map)?,
    };
    if let Some(record) = fresh {
        if let Some(issue) = issue {
            insert_tokens_in(&tx, issue.access, issue.refresh)?;
        }
        tx.commit().map_err(other)?;
        return Ok(Redemption::Fresh(record));
    }
    let spent = query_one(
        &tx,
        &format!("SELECT {cols} FROM {table} WHERE hash = ?1 AND client_id = ?2"),
        params![hash.as_bytes(), client],
        &map,
    )?;
    Ok(match spent {
        Some(record) => Redemption::Spent(record),
        None => Redemption::Unknown,
    })
}

/// Inserts an access token and its refresh token; tokens of a revoked family are born revoked.
fn insert_tokens_in(
    tx: &rusqlite::Transaction<'_>,
    access: &AccessTokenRecord,
    refresh: Option<&RefreshTokenRecord>,
) -> StoreResult<()> {
    execute(
        tx,
        &format!(
            "INSERT INTO access_tokens ({ACCESS_COLS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7,
                 (SELECT revoked_at FROM grants WHERE family_id = ?2))"
        ),
        params![
            access.hash.as_bytes(),
            access.family_id.to_string(),
            access.client_id.to_string(),
            access.user_id.to_string(),
            access.scopes.to_string(),
            access.issued_at,
            access.expires_at,
        ],
    )?;
    if let Some(refresh) = refresh {
        execute(
            tx,
            &format!(
                "INSERT INTO refresh_tokens ({REFRESH_COLS})
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8,
                     (SELECT revoked_at FROM grants WHERE family_id = ?2))"
            ),
            params![
                refresh.hash.as_bytes(),
                refresh.family_id.to_string(),
                refresh.client_id.to_string(),
                refresh.user_id.to_string(),
                refresh.scopes.to_string(),
                refresh.auth_time,
                refresh.issued_at,
                refresh.expires_at,
            ],
        )?;
    }
    Ok(())
}

#[async_trait]
impl CodeStore for SqliteStore {
    async fn insert_code(&self, code: &CodeRecord) -> StoreResult<()> {
        let (challenge, method) = match &code.challenge {
            Some((c, m)) => (Some(c.as_str()), Some(m.as_str())),
            None => (None, None),
        };
        self.write(|conn| {
            let tx = conn.transaction().map_err(other)?;
            execute(
                &tx,
                "INSERT INTO grants (family_id, user_id, client_id, created_at)
                 VALUES (?1, ?2, ?3, ?4)",
                params![
                    code.family_id.to_string(),
                    code.user_id.to_string(),
                    code.client_id.to_string(),
                    code.issued_at,
                ],
            )?;
            execute(
                &tx,
                &format!(
                    "INSERT INTO codes ({CODE_COLS})
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)"
                ),
                params![
                    code.hash.as_bytes(),
                    code.client_id.to_string(),
                    code.user_id.to_string(),
                    code.redirect_uri.as_str(),
                    code.scopes.to_string(),
                    code.scope_requested,
                    challenge,
                    method,
                    code.family_id.to_string(),
                    code.auth_time,
                    code.issued_at,
                    code.expires_at,
                    code.nonce,
                ],
            )?;
            tx.commit().map_err(other)
        })
        .await
    }

    async fn find_code(&self, hash: &TokenHash, client: Uuid) -> StoreResult<Option<CodeRecord>> {
        let client = client.to_string();
        self.read(|conn| {
            query_one(
                conn,
                &format!("SELECT {CODE_COLS} FROM codes WHERE hash = ?1 AND client_id = ?2"),
                params![hash.as_bytes(), client],
                rows::code,
            )
        })
        .await
    }

    async fn redeem_code(
        &self,
        hash: &TokenHash,
        client: Uuid,
        now: UnixTime,
        issue: Option<Issue<'_>>,
    ) -> StoreResult<Redemption<CodeRecord>> {
        let client = client.to_string();
        self.write(|conn| {
            redeem(
                conn,
                "codes",
                CODE_COLS,
                hash,
                &client,
                now,
                issue,
                None,
                rows::code,
            )
        })
        .await
    }
}

#[async_trait]
impl TokenStore for SqliteStore {
    async fn insert_tokens(
        &self,
        access: &AccessTokenRecord,
        refresh: Option<&RefreshTokenRecord>,
    ) -> StoreResult<()> {
        self.write(|conn| {
            let tx = conn.transaction().map_err(other)?;
            insert_tokens_in(&tx, access, refresh)?;
            tx.commit().map_err(other)
        })
        .await
    }

    async fn find_access_token(&self, hash: &TokenHash) -> StoreResult<Option<AccessTokenRecord>> {
        self.read(|conn| {
            query_one(
                conn,
                &format!("SELECT {ACCESS_COLS} FROM access_tokens WHERE hash = ?1"),
                [hash.as_bytes()],
                rows::access,
            )
        })
        .await
    }

    async fn find_bearer(&self, hash: &TokenHash) -> StoreResult<Option<BearerRecord>> {
        self.read(|conn| query_one(conn, BEARER_SELECT, [hash.as_bytes()], rows::bearer))
            .await
    }

    async fn rotate_refresh_token(
        &self,
        hash: &TokenHash,
        client: Uuid,
        now: UnixTime,
        issue: Option<Issue<'_>>,
        successor: Option<&[u8]>,
    ) -> StoreResult<Redemption<RefreshTokenRecord>> {
        let client = client.to_string();
        self.write(|conn| {
            redeem(
                conn,
                "refresh_tokens",
                REFRESH_READ,
                hash,
                &client,
                now,
                issue,
                successor,
                rows::refresh,
            )
        })
        .await
    }

    async fn find_refresh_token(
        &self,
        hash: &TokenHash,
    ) -> StoreResult<Option<RefreshTokenRecord>> {
        self.read(|conn| {
            query_one(
                conn,
                &format!("SELECT {REFRESH_READ} FROM refresh_tokens WHERE hash = ?1"),
                [hash.as_bytes()],
                rows::refresh,
            )
        })
        .await
    }

    async fn revoke_access_token(&self, hash: &TokenHash, now: UnixTime) -> StoreResult<()> {
        let hash = hash.as_bytes().to_vec();
        self.write(move |conn| {
            execute(
                conn,
                "UPDATE access_tokens SET revoked_at = ?2 WHERE hash = ?1 AND revoked_at IS NULL",
                params![hash, now],
            )
            .map(drop)
        })
        .await
    }

    async fn revoke_family(&self, family: Uuid, now: UnixTime) -> StoreResult<()> {
        let family = family.to_string();
        self.write(|conn| {
            let tx = conn.transaction().map_err(other)?;
            for statement in [
                // A family always starts with a code (and its grant row); the insert only keeps
                // the revocation on record should one not.
                "INSERT INTO grants (family_id, user_id, client_id, created_at, revoked_at)
                 VALUES (?1, '', '', ?2, ?2)
                 ON CONFLICT (family_id) DO UPDATE
                 SET revoked_at = coalesce(grants.revoked_at, excluded.revoked_at)",
                "UPDATE access_tokens SET revoked_at = ?2
                 WHERE family_id = ?1 AND revoked_at IS NULL",
                "UPDATE refresh_tokens SET revoked_at = ?2
                 WHERE family_id = ?1 AND revoked_at IS NULL",
            ] {
                execute(&tx, statement, params![family, now])?;
            }
            tx.commit().map_err(other)
        })
        .await
    }
}

#[async_trait]
impl MaintenanceStore for SqliteStore {
    async fn purge_expired(&self, now: UnixTime, keep_spent: i64) -> StoreResult<u64> {
        self.write(|conn| {
            let tx = conn.transaction().map_err(other)?;
            let mut deleted = 0;
            for (statement, before) in [
                ("DELETE FROM sessions WHERE expires_at <= ?1", now),
                ("DELETE FROM codes WHERE expires_at <= ?1", now - keep_spent),
                ("DELETE FROM access_tokens WHERE expires_at <= ?1", now),
                ("DELETE FROM refresh_tokens WHERE expires_at <= ?1", now),
            ] {
                deleted += execute(&tx, statement, [before])? as u64;
            }
            // Past the grace window nobody may read a successor again (not counted either).
            execute(
                &tx,
                "UPDATE refresh_tokens SET successor = NULL
                 WHERE successor IS NOT NULL AND used_at < ?1",
                [now - MAX_REFRESH_GRACE],
            )?;
            // A grant goes once nothing refers to it any more (not counted: it is bookkeeping).
            execute(
                &tx,
                "DELETE FROM grants WHERE created_at <= ?1
                   AND NOT EXISTS (SELECT 1 FROM codes c WHERE c.family_id = grants.family_id)
                   AND NOT EXISTS (SELECT 1 FROM refresh_tokens r WHERE r.family_id = grants.family_id)
                   AND NOT EXISTS (SELECT 1 FROM access_tokens a WHERE a.family_id = grants.family_id)",
                [now - keep_spent],
            )?;
            tx.commit().map_err(other)?;
            Ok(deleted)
        })
        .await
    }
}

#[async_trait]
impl SecretStore for SqliteStore {
    async fn ensure_server_secret(&self, name: &str, candidate: &[u8]) -> StoreResult<Vec<u8>> {
        self.write(|conn| {
            execute(
                conn,
                "INSERT INTO server_secrets (name, value) VALUES (?1, ?2) ON CONFLICT DO NOTHING",
                params![name, candidate],
            )?;
            query_one(
                conn,
                "SELECT value FROM server_secrets WHERE name = ?1",
                [name],
                |row| row.blob("value"),
            )?
            .ok_or_else(|| corrupt("server secret vanished"))
        })
        .await
    }
}

#[async_trait]
impl KeyStore for SqliteStore {
    async fn list_signing_keys(&self) -> StoreResult<Vec<SigningKeyRecord>> {
        self.read(|conn| {
            query_all(
                conn,
                &format!("SELECT {KEY_COLS} FROM signing_keys ORDER BY alg, generation"),
                [],
                rows::signing_key,
            )
        })
        .await
    }

    async fn insert_signing_key(&self, key: &SigningKeyRecord) -> StoreResult<bool> {
        self.write(|conn| {
            execute(
                conn,
                &format!(
                    "INSERT INTO signing_keys ({KEY_COLS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
                     ON CONFLICT DO NOTHING"
                ),
                params![
                    key.kid,
                    key.alg.as_str(),
                    key.generation,
                    key.private_key,
                    key.public_jwk,
                    key.created_at,
                    key.activate_at,
                    key.remove_at,
                ],
            )
            .map(|n| n == 1)
        })
        .await
    }

    async fn schedule_key_removal(&self, kid: &str, remove_at: UnixTime) -> StoreResult<()> {
        self.write(|conn| {
            execute(
                conn,
                "UPDATE signing_keys SET remove_at = min(coalesce(remove_at, ?2), ?2)
                 WHERE kid = ?1",
                params![kid, remove_at],
            )
            .map(drop)
        })
        .await
    }

    async fn delete_signing_key(&self, kid: &str) -> StoreResult<()> {
        self.write(|conn| execute(conn, "DELETE FROM signing_keys WHERE kid = ?1", [kid]).map(drop))
            .await
    }
}
