//! Authorization codes, access and refresh tokens: single-use redemptions and grant families.

use async_trait::async_trait;
use doorward_core::model::{AccessTokenRecord, BearerRecord, CodeRecord, RefreshTokenRecord};
use doorward_core::ports::{
    Change, CodeStore, Issue, Redemption, StoreResult, TokenStore, UnixTime,
};
use doorward_core::TokenHash;
use sqlx::postgres::PgArguments;
use sqlx::query::Query;
use sqlx::AssertSqlSafe;
use sqlx::{PgPool, Postgres};
use uuid::Uuid;

use super::{changes, other, PostgresStore};
use crate::rows::{self, Columns, ACCESS_COLS, CODE_COLS, REFRESH_COLS, REFRESH_READ};

const BEARER_SELECT: &str = rows::bearer_select!("$1");

/// Marks a single-use row as spent for `client` in one `UPDATE … RETURNING` (keeping
/// `successor` with it when given), and stores `issue` with it when it was fresh; when nothing
/// was updated, tells a spent row from an unknown one.
///
/// A fresh redemption is one round trip: one statement whose `UPDATE` and `INSERT`s are
/// common table expressions ([`issue_ctes`]), atomic as any statement. A refused one adds the
/// read that says why.
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
    let (set_successor, first) = if successor.is_some() {
        (", successor = $4", 5)
    } else {
        ("", 4)
    };
    let issuing = match issue {
        Some(issue) => format!(", {}", issue_ctes(first, "spent", issue.refresh.is_some())),
        None => String::new(),
    };
    let sql = format!(
        "WITH spent AS (UPDATE {table} SET used_at = $1{set_successor}
             WHERE hash = $2 AND client_id = $3 AND used_at IS NULL RETURNING {cols}){issuing}
         SELECT * FROM spent"
    );
    let mut query = sqlx::query(AssertSqlSafe(sql.as_str()))
        .bind(now)
        .bind(hash.as_bytes())
        .bind(client);
    if let Some(sealed) = successor {
        query = query.bind(sealed);
    }
    if let Some(issue) = issue {
        query = bind_issue(query, issue.access, issue.refresh);
    }
    if let Some(row) = query.fetch_optional(pool).await.map_err(other)? {
        return Ok(Redemption::Fresh(map(&row)?));
    }
    let select = format!("SELECT {cols} FROM {table} WHERE hash = $1 AND client_id = $2");
    let spent = sqlx::query(AssertSqlSafe(select.as_str()))
        .bind(hash.as_bytes())
        .bind(client)
        .fetch_optional(pool)
        .await
        .map_err(other)?;
    Ok(match spent {
        Some(row) => Redemption::Spent(map(&row)?),
        None => Redemption::Unknown,
    })
}

/// The common table expressions that store an access token (and, with `refresh`, its refresh
/// token) from `source` (`spent`: rows only when a redemption was fresh; or a one-row table),
/// parameters from `$first` in [`bind_issue`]'s order. Each token's family grant row is read
/// `FOR SHARE`: a revocation of the family that locked it first commits before this reads it
/// (and the tokens are born revoked); one that comes after waits for this statement, then
/// revokes the tokens it inserted.
fn issue_ctes(first: usize, source: &str, refresh: bool) -> String {
    let p = |i: usize| format!("${}", first + i);
    let mut sql = format!(
        "access_grant AS (SELECT revoked_at FROM grants WHERE family_id = {family} FOR SHARE),
         access_row AS (INSERT INTO access_tokens ({ACCESS_COLS})
             SELECT {}, {family}, {}, {}, {}, {}, {}, (SELECT revoked_at FROM access_grant), {}, {}, {}
             FROM {source} RETURNING 1)",
        p(0),
        p(2),
        p(3),
        p(4),
        p(5),
        p(6),
        p(7),
        p(8),
        p(9),
        family = p(1),
    );
    if refresh {
        sql.push_str(&format!(
            ", refresh_grant AS (SELECT revoked_at FROM grants WHERE family_id = {family} FOR SHARE),
             refresh_row AS (INSERT INTO refresh_tokens ({REFRESH_COLS})
                 SELECT {}, {family}, {}, {}, {}, {}, {}, {}, (SELECT revoked_at FROM refresh_grant), {}, {}
                 FROM {source} RETURNING 1)",
            p(10),
            p(12),
            p(13),
            p(14),
            p(15),
            p(16),
            p(17),
            p(18),
            p(19),
            family = p(11),
        ));
    }
    sql
}

/// Binds the parameters of [`issue_ctes`], in its order.
fn bind_issue<'q>(
    query: Query<'q, Postgres, PgArguments>,
    access: &'q AccessTokenRecord,
    refresh: Option<&'q RefreshTokenRecord>,
) -> Query<'q, Postgres, PgArguments> {
    let query = query
        .bind(access.hash.as_bytes())
        .bind(access.family_id)
        .bind(access.client_id)
        .bind(access.user_id)
        .bind(access.scopes.to_string())
        .bind(access.issued_at)
        .bind(access.expires_at)
        .bind(rows::resource_lines(&access.resources))
        .bind(access.dpop_jkt.as_deref())
        .bind(access.act.as_deref());
    match refresh {
        Some(refresh) => query
            .bind(refresh.hash.as_bytes())
            .bind(refresh.family_id)
            .bind(refresh.client_id)
            .bind(refresh.user_id)
            .bind(refresh.scopes.to_string())
            .bind(refresh.auth_time)
            .bind(refresh.issued_at)
            .bind(refresh.expires_at)
            .bind(rows::resource_lines(&refresh.resources))
            .bind(refresh.dpop_jkt.as_deref()),
        None => query,
    }
}

#[async_trait]
impl CodeStore for PostgresStore {
    async fn insert_code(&self, code: &CodeRecord) -> StoreResult<()> {
        let mut tx = self.pool.begin().await.map_err(other)?;
        insert_code_in(&mut tx, code).await?;
        tx.commit().await.map_err(other)
    }

    async fn find_code(&self, hash: &TokenHash, client: Uuid) -> StoreResult<Option<CodeRecord>> {
        let sql = format!(
            "SELECT {CODE_COLS}, {} FROM codes WHERE hash = $1 AND client_id = $2",
            rows::grant_data_of!("codes")
        );
        let query = sqlx::query(AssertSqlSafe(sql.as_str()))
            .bind(hash.as_bytes())
            .bind(client);
        self.find(query, rows::code_with_data).await
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
        // One round trip: one statement (see `redeem`).
        let sql = format!(
            "WITH {} SELECT 1",
            issue_ctes(1, "(SELECT 1) AS one", refresh.is_some())
        );
        bind_issue(sqlx::query(AssertSqlSafe(sql.as_str())), access, refresh)
            .execute(&self.pool)
            .await
            .map(drop)
            .map_err(other)
    }

    async fn find_access_token(&self, hash: &TokenHash) -> StoreResult<Option<AccessTokenRecord>> {
        let sql = format!("SELECT {ACCESS_COLS} FROM access_tokens WHERE hash = $1");
        let query = sqlx::query(AssertSqlSafe(sql.as_str())).bind(hash.as_bytes());
        self.find(query, rows::access).await
    }

    async fn find_bearer(&self, hash: &TokenHash) -> StoreResult<Option<BearerRecord>> {
        let query = sqlx::query(BEARER_SELECT).bind(hash.as_bytes());
        self.find(query, rows::bearer).await
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
        let sql = format!(
            "SELECT {REFRESH_READ}, {} FROM refresh_tokens WHERE hash = $1",
            rows::grant_data_of!("refresh_tokens")
        );
        let query = sqlx::query(AssertSqlSafe(sql.as_str())).bind(hash.as_bytes());
        self.find(query, rows::refresh_with_data).await
    }

    async fn list_delegated_tokens(
        &self,
        user: Uuid,
        now: UnixTime,
    ) -> StoreResult<Vec<AccessTokenRecord>> {
        let sql = format!(
            "SELECT {ACCESS_COLS} FROM access_tokens
             WHERE user_id = $1 AND act IS NOT NULL AND revoked_at IS NULL AND expires_at > $2
             ORDER BY issued_at, hash"
        );
        let rows = sqlx::query(AssertSqlSafe(sql.as_str()))
            .bind(user)
            .bind(now)
            .fetch_all(&self.pool)
            .await
            .map_err(other)?;
        rows.iter().map(|row| rows::access(row)).collect()
    }

    async fn revoke_access_token(&self, hash: &TokenHash, now: UnixTime) -> StoreResult<()> {
        let mut tx = self.pool.begin().await.map_err(other)?;
        sqlx::query(
            "UPDATE access_tokens SET revoked_at = $2 WHERE hash = $1 AND revoked_at IS NULL",
        )
        .bind(hash.as_bytes())
        .bind(now)
        .execute(&mut *tx)
        .await
        .map_err(other)?;
        changes::notify(&mut tx, &Change::AccessToken(*hash)).await?;
        tx.commit().await.map_err(other)
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
        changes::notify(&mut tx, &Change::Family(family)).await?;
        tx.commit().await.map_err(other)
    }
}

/// Inserts a code and its grant family's row (the code's first) in `tx`: the write of
/// [`CodeStore::insert_code`], also made by an approved device authorization (`devices.rs`).
pub(super) async fn insert_code_in(
    tx: &mut sqlx::Transaction<'_, Postgres>,
    code: &CodeRecord,
) -> StoreResult<()> {
    let (challenge, method) = match &code.challenge {
        Some((c, m)) => (Some(c.as_str()), Some(m.as_str())),
        None => (None, None),
    };
    sqlx::query(
        "INSERT INTO grants (family_id, user_id, client_id, created_at, data, amr)
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(code.family_id)
    .bind(code.user_id)
    .bind(code.client_id)
    .bind(code.issued_at)
    .bind(rows::claims_text(&code.grant_data))
    .bind(rows::amr_text(&code.amr))
    .execute(&mut **tx)
    .await
    .map_err(other)?;
    let sql = format!(
        "INSERT INTO codes ({CODE_COLS})
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)"
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
        .bind(rows::resource_lines(&code.resources))
        .bind(code.dpop_jkt.as_deref())
        .bind(code.scope_narrowed)
        .execute(&mut **tx)
        .await
        .map_err(other)?;
    Ok(())
}
