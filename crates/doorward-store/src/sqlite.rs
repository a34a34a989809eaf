use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use doorward_core::model::{
    AccessTokenRecord, Client, CodeRecord, ConsentRecord, NewUser, RefreshTokenRecord,
    SessionRecord, User,
};
use doorward_core::ports::{
    ClientRef, ClientStore, CodeStore, ConsentStore, MaintenanceStore, Redemption, SecretStore,
    SessionStore, StoreError, StoreResult, TokenStore, UnixTime, UserStore,
};
use doorward_core::TokenHash;
use doorward_proto::{CodeChallenge, CodeChallengeMethod, RedirectUri, ScopeSet};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteRow,
    SqliteSynchronous,
};
use sqlx::Row;
use uuid::Uuid;

/// The SQLite adapter: one database file in WAL mode.
///
/// `synchronous=NORMAL` in WAL mode: a commit survives a crash of the process, and the last
/// commits before a power loss may be lost (they are then re-done by the client: a code not
/// redeemed, a token not issued). Never a half-applied change.
#[derive(Clone)]
pub struct SqliteStore {
    pool: SqlitePool,
}

impl SqliteStore {
    /// Opens (creating if needed) the database at `url` (`sqlite:PATH`, `sqlite://PATH`, or
    /// `sqlite::memory:`) and runs the embedded migrations.
    pub async fn open(url: &str) -> Result<Self, StoreError> {
        let options = SqliteConnectOptions::from_str(url)
            .map_err(other)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(Duration::from_secs(5))
            .foreign_keys(true);
        let in_memory = url.contains(":memory:") || url.contains("mode=memory");
        let pool = SqlitePoolOptions::new()
            // An in-memory database lives in one connection.
            .max_connections(if in_memory { 1 } else { 8 })
            .min_connections(1)
            .idle_timeout(None)
            .max_lifetime(None)
            .connect_with(options)
            .await
            .map_err(other)?;
        sqlx::migrate!("migrations/sqlite")
            .run(&pool)
            .await
            .map_err(other)?;
        Ok(Self { pool })
    }

    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }
}

fn other(e: impl std::error::Error + Send + Sync + 'static) -> StoreError {
    StoreError::Other(Box::new(e))
}

fn corrupt(what: &str) -> StoreError {
    StoreError::Other(format!("corrupt row: {what}").into())
}

fn uuid_col(row: &SqliteRow, col: &str) -> StoreResult<Uuid> {
    let text: String = row.try_get(col).map_err(other)?;
    Uuid::try_parse(&text).map_err(|_| corrupt(col))
}

fn hash_col(row: &SqliteRow, col: &str) -> StoreResult<TokenHash> {
    let bytes: Vec<u8> = row.try_get(col).map_err(other)?;
    TokenHash::from_slice(&bytes).ok_or_else(|| corrupt(col))
}

fn scopes_col(row: &SqliteRow, col: &str) -> StoreResult<ScopeSet> {
    let text: String = row.try_get(col).map_err(other)?;
    ScopeSet::parse(&text).map_err(|_| corrupt(col))
}

fn get<'r, T: sqlx::Decode<'r, sqlx::Sqlite> + sqlx::Type<sqlx::Sqlite>>(
    row: &'r SqliteRow,
    col: &str,
) -> StoreResult<T> {
    row.try_get(col).map_err(other)
}

const CLIENT_COLS: &str = "id, key, display_name, app_uri, redirect_uris, secret_hash";

fn client_from(row: &SqliteRow) -> StoreResult<Client> {
    let uris: String = get(row, "redirect_uris")?;
    let redirect_uris = uris
        .lines()
        .map(|u| RedirectUri::parse(u).map_err(|_| corrupt("redirect_uris")))
        .collect::<StoreResult<Vec<_>>>()?;
    Ok(Client {
        id: uuid_col(row, "id")?,
        key: get(row, "key")?,
        display_name: get(row, "display_name")?,
        app_uri: get(row, "app_uri")?,
        redirect_uris,
        secret_hash: get(row, "secret_hash")?,
    })
}

const USER_COLS: &str = "id, username, display_name, password_hash, created_at";

fn user_from(row: &SqliteRow) -> StoreResult<User> {
    Ok(User {
        id: uuid_col(row, "id")?,
        username: get(row, "username")?,
        display_name: get(row, "display_name")?,
        password_hash: get(row, "password_hash")?,
        created_at: get(row, "created_at")?,
    })
}

const CODE_COLS: &str = "hash, client_id, user_id, redirect_uri, scopes, scope_requested, \
    challenge, challenge_method, family_id, auth_time, issued_at, expires_at";

fn code_from(row: &SqliteRow) -> StoreResult<CodeRecord> {
    let challenge: Option<String> = get(row, "challenge")?;
    let method: Option<String> = get(row, "challenge_method")?;
    let challenge = match (challenge, method) {
        (Some(c), Some(m)) => Some((
            CodeChallenge::parse(&c).map_err(|_| corrupt("challenge"))?,
            CodeChallengeMethod::parse(&m).map_err(|_| corrupt("challenge_method"))?,
        )),
        (None, None) => None,
        // Half a challenge must never read as "no PKCE".
        _ => return Err(corrupt("challenge")),
    };
    let redirect_uri: String = get(row, "redirect_uri")?;
    Ok(CodeRecord {
        hash: hash_col(row, "hash")?,
        client_id: uuid_col(row, "client_id")?,
        user_id: uuid_col(row, "user_id")?,
        redirect_uri: RedirectUri::parse(&redirect_uri).map_err(|_| corrupt("redirect_uri"))?,
        scopes: scopes_col(row, "scopes")?,
        scope_requested: get(row, "scope_requested")?,
        challenge,
        family_id: uuid_col(row, "family_id")?,
        auth_time: get(row, "auth_time")?,
        issued_at: get(row, "issued_at")?,
        expires_at: get(row, "expires_at")?,
    })
}

const ACCESS_COLS: &str =
    "hash, family_id, client_id, user_id, scopes, issued_at, expires_at, revoked_at";

fn access_from(row: &SqliteRow) -> StoreResult<AccessTokenRecord> {
    let revoked_at: Option<i64> = get(row, "revoked_at")?;
    Ok(AccessTokenRecord {
        hash: hash_col(row, "hash")?,
        family_id: uuid_col(row, "family_id")?,
        client_id: uuid_col(row, "client_id")?,
        user_id: uuid_col(row, "user_id")?,
        scopes: scopes_col(row, "scopes")?,
        issued_at: get(row, "issued_at")?,
        expires_at: get(row, "expires_at")?,
        revoked: revoked_at.is_some(),
    })
}

const REFRESH_COLS: &str =
    "hash, family_id, client_id, user_id, scopes, auth_time, issued_at, expires_at, revoked_at";

fn refresh_from(row: &SqliteRow) -> StoreResult<RefreshTokenRecord> {
    let revoked_at: Option<i64> = get(row, "revoked_at")?;
    Ok(RefreshTokenRecord {
        hash: hash_col(row, "hash")?,
        family_id: uuid_col(row, "family_id")?,
        client_id: uuid_col(row, "client_id")?,
        user_id: uuid_col(row, "user_id")?,
        scopes: scopes_col(row, "scopes")?,
        auth_time: get(row, "auth_time")?,
        issued_at: get(row, "issued_at")?,
        expires_at: get(row, "expires_at")?,
        revoked: revoked_at.is_some(),
    })
}

#[async_trait]
impl ClientStore for SqliteStore {
    async fn find_client(&self, client: ClientRef<'_>) -> StoreResult<Option<Client>> {
        let row = match client {
            ClientRef::Id(id) => {
                sqlx::query(&format!("SELECT {CLIENT_COLS} FROM clients WHERE id = ?1"))
                    .bind(id.to_string())
                    .fetch_optional(&self.pool)
                    .await
            }
            ClientRef::Key(key) => {
                sqlx::query(&format!("SELECT {CLIENT_COLS} FROM clients WHERE key = ?1"))
                    .bind(key)
                    .fetch_optional(&self.pool)
                    .await
            }
        }
        .map_err(other)?;
        row.as_ref().map(client_from).transpose()
    }

    async fn upsert_client(&self, client: &Client) -> StoreResult<()> {
        let uris: Vec<&str> = client.redirect_uris.iter().map(|u| u.as_str()).collect();
        sqlx::query(
            "INSERT INTO clients (id, key, display_name, app_uri, redirect_uris, secret_hash)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)
             ON CONFLICT (id) DO UPDATE SET key = excluded.key,
                 display_name = excluded.display_name, app_uri = excluded.app_uri,
                 redirect_uris = excluded.redirect_uris, secret_hash = excluded.secret_hash",
        )
        .bind(client.id.to_string())
        .bind(&client.key)
        .bind(&client.display_name)
        .bind(&client.app_uri)
        .bind(uris.join("\n"))
        .bind(&client.secret_hash)
        .execute(&self.pool)
        .await
        .map_err(other)?;
        Ok(())
    }
}

#[async_trait]
impl UserStore for SqliteStore {
    async fn find_user(&self, id: Uuid) -> StoreResult<Option<User>> {
        let row = sqlx::query(&format!("SELECT {USER_COLS} FROM users WHERE id = ?1"))
            .bind(id.to_string())
            .fetch_optional(&self.pool)
            .await
            .map_err(other)?;
        row.as_ref().map(user_from).transpose()
    }

    async fn find_user_by_username(&self, username: &str) -> StoreResult<Option<User>> {
        let row = sqlx::query(&format!(
            "SELECT {USER_COLS} FROM users WHERE username = ?1"
        ))
        .bind(username)
        .fetch_optional(&self.pool)
        .await
        .map_err(other)?;
        row.as_ref().map(user_from).transpose()
    }

    async fn upsert_user(&self, user: &NewUser) -> StoreResult<User> {
        let row = sqlx::query(&format!(
            "INSERT INTO users (id, username, display_name, password_hash, created_at)
             VALUES (?1, ?2, ?3, ?4, ?5)
             ON CONFLICT (username) DO UPDATE SET display_name = excluded.display_name,
                 password_hash = excluded.password_hash
             RETURNING {USER_COLS}"
        ))
        .bind(user.id.to_string())
        .bind(&user.username)
        .bind(&user.display_name)
        .bind(&user.password_hash)
        .bind(user.created_at)
        .fetch_one(&self.pool)
        .await
        .map_err(other)?;
        user_from(&row)
    }
}

#[async_trait]
impl SessionStore for SqliteStore {
    async fn insert_session(&self, session: &SessionRecord) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO sessions (hash, user_id, created_at, expires_at) VALUES (?1, ?2, ?3, ?4)",
        )
        .bind(session.hash.as_bytes())
        .bind(session.user_id.to_string())
        .bind(session.created_at)
        .bind(session.expires_at)
        .execute(&self.pool)
        .await
        .map_err(other)?;
        Ok(())
    }

    async fn find_session(&self, hash: &TokenHash) -> StoreResult<Option<SessionRecord>> {
        let row = sqlx::query(
            "SELECT hash, user_id, created_at, expires_at FROM sessions WHERE hash = ?1",
        )
        .bind(hash.as_bytes())
        .fetch_optional(&self.pool)
        .await
        .map_err(other)?;
        row.map(|row| {
            Ok(SessionRecord {
                hash: hash_col(&row, "hash")?,
                user_id: uuid_col(&row, "user_id")?,
                created_at: get(&row, "created_at")?,
                expires_at: get(&row, "expires_at")?,
            })
        })
        .transpose()
    }

    async fn delete_session(&self, hash: &TokenHash) -> StoreResult<()> {
        sqlx::query("DELETE FROM sessions WHERE hash = ?1")
            .bind(hash.as_bytes())
            .execute(&self.pool)
            .await
            .map_err(other)?;
        Ok(())
    }
}

fn consent_from(row: &SqliteRow) -> StoreResult<ConsentRecord> {
    Ok(ConsentRecord {
        user_id: uuid_col(row, "user_id")?,
        client_id: uuid_col(row, "client_id")?,
        scopes: scopes_col(row, "scopes")?,
        granted_at: get(row, "granted_at")?,
    })
}

#[async_trait]
impl ConsentStore for SqliteStore {
    async fn find_consent(&self, user: Uuid, client: Uuid) -> StoreResult<Option<ConsentRecord>> {
        let row = sqlx::query(
            "SELECT user_id, client_id, scopes, granted_at FROM consents
             WHERE user_id = ?1 AND client_id = ?2",
        )
        .bind(user.to_string())
        .bind(client.to_string())
        .fetch_optional(&self.pool)
        .await
        .map_err(other)?;
        row.as_ref().map(consent_from).transpose()
    }

    async fn record_consent(&self, consent: &ConsentRecord) -> StoreResult<()> {
        // IMMEDIATE takes the write lock before the read, so a concurrent commit cannot turn
        // the read-then-write into SQLITE_BUSY_SNAPSHOT.
        let mut tx = self
            .pool
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(other)?;
        let existing: Option<String> =
            sqlx::query_scalar("SELECT scopes FROM consents WHERE user_id = ?1 AND client_id = ?2")
                .bind(consent.user_id.to_string())
                .bind(consent.client_id.to_string())
                .fetch_optional(&mut *tx)
                .await
                .map_err(other)?;
        let scopes = match existing {
            Some(text) => ScopeSet::parse(&text)
                .map_err(|_| corrupt("scopes"))?
                .union(&consent.scopes),
            None => consent.scopes.clone(),
        };
        sqlx::query(
            "INSERT INTO consents (user_id, client_id, scopes, granted_at) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (user_id, client_id) DO UPDATE SET scopes = excluded.scopes,
                 granted_at = excluded.granted_at",
        )
        .bind(consent.user_id.to_string())
        .bind(consent.client_id.to_string())
        .bind(scopes.to_string())
        .bind(consent.granted_at)
        .execute(&mut *tx)
        .await
        .map_err(other)?;
        tx.commit().await.map_err(other)
    }

    async fn list_consents(&self, user: Uuid) -> StoreResult<Vec<ConsentRecord>> {
        let rows = sqlx::query(
            "SELECT user_id, client_id, scopes, granted_at FROM consents
             WHERE user_id = ?1 ORDER BY granted_at, client_id",
        )
        .bind(user.to_string())
        .fetch_all(&self.pool)
        .await
        .map_err(other)?;
        rows.iter().map(consent_from).collect()
    }

    async fn revoke_consent(&self, user: Uuid, client: Uuid, now: UnixTime) -> StoreResult<()> {
        let (user, client) = (user.to_string(), client.to_string());
        let mut tx = self.pool.begin().await.map_err(other)?;
        for statement in [
            "DELETE FROM consents WHERE user_id = ?1 AND client_id = ?2",
            "UPDATE codes SET used_at = ?3
             WHERE user_id = ?1 AND client_id = ?2 AND used_at IS NULL",
            "UPDATE access_tokens SET revoked_at = ?3
             WHERE user_id = ?1 AND client_id = ?2 AND revoked_at IS NULL",
            "UPDATE refresh_tokens SET revoked_at = ?3
             WHERE user_id = ?1 AND client_id = ?2 AND revoked_at IS NULL",
        ] {
            sqlx::query(statement)
                .bind(&user)
                .bind(&client)
                .bind(now)
                .execute(&mut *tx)
                .await
                .map_err(other)?;
        }
        tx.commit().await.map_err(other)
    }
}

#[async_trait]
impl CodeStore for SqliteStore {
    async fn insert_code(&self, code: &CodeRecord) -> StoreResult<()> {
        let (challenge, method) = match &code.challenge {
            Some((c, m)) => (Some(c.as_str()), Some(m.as_str())),
            None => (None, None),
        };
        sqlx::query(&format!(
            "INSERT INTO codes ({CODE_COLS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)"
        ))
        .bind(code.hash.as_bytes())
        .bind(code.client_id.to_string())
        .bind(code.user_id.to_string())
        .bind(code.redirect_uri.as_str())
        .bind(code.scopes.to_string())
        .bind(code.scope_requested)
        .bind(challenge)
        .bind(method)
        .bind(code.family_id.to_string())
        .bind(code.auth_time)
        .bind(code.issued_at)
        .bind(code.expires_at)
        .execute(&self.pool)
        .await
        .map_err(other)?;
        Ok(())
    }

    async fn redeem_code(
        &self,
        hash: &TokenHash,
        client: Uuid,
        now: UnixTime,
    ) -> StoreResult<Redemption<CodeRecord>> {
        let client = client.to_string();
        let fresh = sqlx::query(&format!(
            "UPDATE codes SET used_at = ?1
             WHERE hash = ?2 AND client_id = ?3 AND used_at IS NULL RETURNING {CODE_COLS}"
        ))
        .bind(now)
        .bind(hash.as_bytes())
        .bind(&client)
        .fetch_optional(&self.pool)
        .await
        .map_err(other)?;
        if let Some(row) = fresh {
            return Ok(Redemption::Fresh(code_from(&row)?));
        }
        let spent = sqlx::query(&format!(
            "SELECT {CODE_COLS} FROM codes WHERE hash = ?1 AND client_id = ?2"
        ))
        .bind(hash.as_bytes())
        .bind(&client)
        .fetch_optional(&self.pool)
        .await
        .map_err(other)?;
        Ok(match spent {
            Some(row) => Redemption::Spent(code_from(&row)?),
            None => Redemption::Unknown,
        })
    }
}

#[async_trait]
impl TokenStore for SqliteStore {
    async fn insert_tokens(
        &self,
        access: &AccessTokenRecord,
        refresh: Option<&RefreshTokenRecord>,
    ) -> StoreResult<()> {
        let mut tx = self.pool.begin().await.map_err(other)?;
        sqlx::query(&format!(
            "INSERT INTO access_tokens ({ACCESS_COLS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7,
                 (SELECT revoked_at FROM revoked_families WHERE family_id = ?2))"
        ))
        .bind(access.hash.as_bytes())
        .bind(access.family_id.to_string())
        .bind(access.client_id.to_string())
        .bind(access.user_id.to_string())
        .bind(access.scopes.to_string())
        .bind(access.issued_at)
        .bind(access.expires_at)
        .execute(&mut *tx)
        .await
        .map_err(other)?;
        if let Some(refresh) = refresh {
            sqlx::query(&format!(
                "INSERT INTO refresh_tokens ({REFRESH_COLS})
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8,
                     (SELECT revoked_at FROM revoked_families WHERE family_id = ?2))"
            ))
            .bind(refresh.hash.as_bytes())
            .bind(refresh.family_id.to_string())
            .bind(refresh.client_id.to_string())
            .bind(refresh.user_id.to_string())
            .bind(refresh.scopes.to_string())
            .bind(refresh.auth_time)
            .bind(refresh.issued_at)
            .bind(refresh.expires_at)
            .execute(&mut *tx)
            .await
            .map_err(other)?;
        }
        tx.commit().await.map_err(other)
    }

    async fn find_access_token(&self, hash: &TokenHash) -> StoreResult<Option<AccessTokenRecord>> {
        let row = sqlx::query(&format!(
            "SELECT {ACCESS_COLS} FROM access_tokens WHERE hash = ?1"
        ))
        .bind(hash.as_bytes())
        .fetch_optional(&self.pool)
        .await
        .map_err(other)?;
        row.as_ref().map(access_from).transpose()
    }

    async fn rotate_refresh_token(
        &self,
        hash: &TokenHash,
        client: Uuid,
        now: UnixTime,
    ) -> StoreResult<Redemption<RefreshTokenRecord>> {
        let client = client.to_string();
        let fresh = sqlx::query(&format!(
            "UPDATE refresh_tokens SET used_at = ?1
             WHERE hash = ?2 AND client_id = ?3 AND used_at IS NULL RETURNING {REFRESH_COLS}"
        ))
        .bind(now)
        .bind(hash.as_bytes())
        .bind(&client)
        .fetch_optional(&self.pool)
        .await
        .map_err(other)?;
        if let Some(row) = fresh {
            return Ok(Redemption::Fresh(refresh_from(&row)?));
        }
        let spent = sqlx::query(&format!(
            "SELECT {REFRESH_COLS} FROM refresh_tokens WHERE hash = ?1 AND client_id = ?2"
        ))
        .bind(hash.as_bytes())
        .bind(&client)
        .fetch_optional(&self.pool)
        .await
        .map_err(other)?;
        Ok(match spent {
            Some(row) => Redemption::Spent(refresh_from(&row)?),
            None => Redemption::Unknown,
        })
    }

    async fn revoke_family(&self, family: Uuid, now: UnixTime) -> StoreResult<()> {
        let family = family.to_string();
        let mut tx = self.pool.begin().await.map_err(other)?;
        for statement in [
            "INSERT INTO revoked_families (family_id, revoked_at) VALUES (?1, ?2)
             ON CONFLICT DO NOTHING",
            "UPDATE access_tokens SET revoked_at = ?2 WHERE family_id = ?1 AND revoked_at IS NULL",
            "UPDATE refresh_tokens SET revoked_at = ?2 WHERE family_id = ?1 AND revoked_at IS NULL",
        ] {
            sqlx::query(statement)
                .bind(&family)
                .bind(now)
                .execute(&mut *tx)
                .await
                .map_err(other)?;
        }
        tx.commit().await.map_err(other)
    }
}

#[async_trait]
impl MaintenanceStore for SqliteStore {
    async fn purge_expired(&self, now: UnixTime, keep_spent: i64) -> StoreResult<u64> {
        let mut deleted = 0;
        for statement in [
            "DELETE FROM sessions WHERE expires_at <= ?1",
            "DELETE FROM codes WHERE expires_at <= ?2",
            "DELETE FROM access_tokens WHERE expires_at <= ?1",
            "DELETE FROM refresh_tokens WHERE expires_at <= ?1",
        ] {
            deleted += sqlx::query(statement)
                .bind(now)
                .bind(now - keep_spent)
                .execute(&self.pool)
                .await
                .map_err(other)?
                .rows_affected();
        }
        Ok(deleted)
    }
}

#[async_trait]
impl SecretStore for SqliteStore {
    async fn ensure_server_secret(&self, name: &str, candidate: &[u8]) -> StoreResult<Vec<u8>> {
        sqlx::query(
            "INSERT INTO server_secrets (name, value) VALUES (?1, ?2) ON CONFLICT DO NOTHING",
        )
        .bind(name)
        .bind(candidate)
        .execute(&self.pool)
        .await
        .map_err(other)?;
        sqlx::query_scalar("SELECT value FROM server_secrets WHERE name = ?1")
            .bind(name)
            .fetch_one(&self.pool)
            .await
            .map_err(other)
    }
}
