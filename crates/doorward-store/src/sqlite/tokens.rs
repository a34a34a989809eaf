//! Authorization codes, access and refresh tokens: single-use redemptions and grant families.

use async_trait::async_trait;
use doorward_core::model::{AccessTokenRecord, BearerRecord, CodeRecord, RefreshTokenRecord};
use doorward_core::ports::{
    Change, CodeStore, Issue, Redemption, StoreResult, TokenStore, UnixTime,
};
use doorward_core::TokenHash;
use rusqlite::{params, Connection};
use uuid::Uuid;

use super::{changes, execute, other, query_all, query_one, SqliteStore};
use crate::rows::{self, Columns, ACCESS_COLS, CODE_COLS, REFRESH_COLS, REFRESH_READ};

const BEARER_SELECT: &str = rows::bearer_select!("?1");

/// What a redemption stores when it is fresh: an owned [`Issue`], for the writer thread.
type OwnedIssue = Option<(AccessTokenRecord, Option<RefreshTokenRecord>)>;

fn owned(issue: Option<Issue<'_>>) -> OwnedIssue {
    issue.map(|i| (i.access.clone(), i.refresh.cloned()))
}

/// Marks a single-use row as spent for `client` in one `UPDATE … RETURNING` (keeping
/// `successor` with it when given), and stores `issue` when it was fresh; when nothing was
/// updated, tells a spent row from an unknown one. Runs in a group commit's savepoint
/// (`batch.rs`), which makes the update and the inserts one atomic change.
#[allow(clippy::too_many_arguments)]
fn redeem<T>(
    conn: &Connection,
    table: &str,
    cols: &str,
    hash: &[u8],
    client: &str,
    now: UnixTime,
    issue: OwnedIssue,
    successor: Option<&[u8]>,
    map: impl Fn(&dyn Columns) -> StoreResult<T>,
) -> StoreResult<Redemption<T>> {
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
        Some(sealed) => query_one(conn, &update, params![now, hash, client, sealed], &map)?,
        None => query_one(conn, &update, params![now, hash, client], &map)?,
    };
    if let Some(record) = fresh {
        if let Some((access, refresh)) = issue {
            insert_tokens_in(conn, &access, refresh.as_ref())?;
        }
        return Ok(Redemption::Fresh(record));
    }
    let spent = query_one(
        conn,
        &format!("SELECT {cols} FROM {table} WHERE hash = ?1 AND client_id = ?2"),
        params![hash, client],
        &map,
    )?;
    Ok(match spent {
        Some(record) => Redemption::Spent(record),
        None => Redemption::Unknown,
    })
}

/// Inserts an access token and its refresh token; tokens of a revoked family are born revoked.
fn insert_tokens_in(
    tx: &Connection,
    access: &AccessTokenRecord,
    refresh: Option<&RefreshTokenRecord>,
) -> StoreResult<()> {
    execute(
        tx,
        &format!(
            "INSERT INTO access_tokens ({ACCESS_COLS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7,
                 (SELECT revoked_at FROM grants WHERE family_id = ?2), ?8, ?9, ?10)"
        ),
        params![
            access.hash.as_bytes(),
            access.family_id.to_string(),
            access.client_id.to_string(),
            access.user_id.map(|u| u.to_string()),
            access.scopes.to_string(),
            access.issued_at,
            access.expires_at,
            rows::resource_lines(&access.resources),
            access.dpop_jkt,
            access.act,
        ],
    )?;
    if let Some(refresh) = refresh {
        execute(
            tx,
            &format!(
                "INSERT INTO refresh_tokens ({REFRESH_COLS})
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8,
                     (SELECT revoked_at FROM grants WHERE family_id = ?2), ?9, ?10)"
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
                rows::resource_lines(&refresh.resources),
                refresh.dpop_jkt,
            ],
        )?;
    }
    Ok(())
}

#[async_trait]
impl CodeStore for SqliteStore {
    async fn insert_code(&self, code: &CodeRecord) -> StoreResult<()> {
        let code = code.clone();
        self.write_batched(move |conn| insert_code_in(conn, &code))
            .await
    }

    async fn find_code(&self, hash: &TokenHash, client: Uuid) -> StoreResult<Option<CodeRecord>> {
        let client = client.to_string();
        self.find(
            &format!(
                "SELECT {CODE_COLS}, {} FROM codes WHERE hash = ?1 AND client_id = ?2",
                rows::grant_data_of!("codes")
            ),
            (hash.as_bytes(), client),
            rows::code_with_data,
        )
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
        let hash = hash.as_bytes().to_vec();
        let issue = owned(issue);
        self.write_batched(move |conn| {
            redeem(
                conn,
                "codes",
                CODE_COLS,
                &hash,
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
        let (access, refresh) = (access.clone(), refresh.cloned());
        self.write_batched(move |conn| insert_tokens_in(conn, &access, refresh.as_ref()))
            .await
    }

    async fn find_access_token(&self, hash: &TokenHash) -> StoreResult<Option<AccessTokenRecord>> {
        self.find(
            &format!("SELECT {ACCESS_COLS} FROM access_tokens WHERE hash = ?1"),
            [hash.as_bytes()],
            rows::access,
        )
        .await
    }

    async fn find_bearer(&self, hash: &TokenHash) -> StoreResult<Option<BearerRecord>> {
        self.find(BEARER_SELECT, [hash.as_bytes()], rows::bearer)
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
        let hash = hash.as_bytes().to_vec();
        let issue = owned(issue);
        let successor = successor.map(<[u8]>::to_vec);
        self.write_batched(move |conn| {
            redeem(
                conn,
                "refresh_tokens",
                REFRESH_READ,
                &hash,
                &client,
                now,
                issue,
                successor.as_deref(),
                rows::refresh,
            )
        })
        .await
    }

    async fn find_refresh_token(
        &self,
        hash: &TokenHash,
    ) -> StoreResult<Option<RefreshTokenRecord>> {
        self.find(
            &format!(
                "SELECT {REFRESH_READ}, {} FROM refresh_tokens WHERE hash = ?1",
                rows::grant_data_of!("refresh_tokens")
            ),
            [hash.as_bytes()],
            rows::refresh_with_data,
        )
        .await
    }

    async fn list_delegated_tokens(
        &self,
        user: Uuid,
        now: UnixTime,
    ) -> StoreResult<Vec<AccessTokenRecord>> {
        let user = user.to_string();
        self.read(move |conn| {
            query_all(
                conn,
                &format!(
                    "SELECT {ACCESS_COLS} FROM access_tokens
                     WHERE user_id = ?1 AND act IS NOT NULL AND revoked_at IS NULL
                         AND expires_at > ?2
                     ORDER BY issued_at, hash"
                ),
                params![user, now],
                rows::access,
            )
        })
        .await
    }

    async fn revoke_access_token(&self, hash: &TokenHash, now: UnixTime) -> StoreResult<()> {
        let change = Change::AccessToken(*hash);
        let hash = hash.as_bytes().to_vec();
        self.write(move |conn| {
            let tx = conn.transaction().map_err(other)?;
            execute(
                &tx,
                "UPDATE access_tokens SET revoked_at = ?2 WHERE hash = ?1 AND revoked_at IS NULL",
                params![hash, now],
            )?;
            changes::record(&tx, &change)?;
            tx.commit().map_err(other)
        })
        .await
    }

    async fn revoke_family(&self, family: Uuid, now: UnixTime) -> StoreResult<()> {
        let change = Change::Family(family);
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
            changes::record(&tx, &change)?;
            tx.commit().map_err(other)
        })
        .await
    }
}

/// Inserts a code and its grant family's row (the code's first), on `conn`: the write of
/// [`CodeStore::insert_code`], also made by an approved device authorization (`devices.rs`).
pub(super) fn insert_code_in(conn: &Connection, code: &CodeRecord) -> StoreResult<()> {
    let (challenge, method) = match &code.challenge {
        Some((c, m)) => (Some(c.as_str()), Some(m.as_str())),
        None => (None, None),
    };
    execute(
        conn,
        "INSERT INTO grants (family_id, user_id, client_id, created_at, data, amr)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![
            code.family_id.to_string(),
            code.user_id.to_string(),
            code.client_id.to_string(),
            code.issued_at,
            rows::claims_text(&code.grant_data),
            rows::amr_text(&code.amr),
        ],
    )?;
    execute(
        conn,
        &format!(
            "INSERT INTO codes ({CODE_COLS})
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16)"
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
            rows::resource_lines(&code.resources),
            code.dpop_jkt,
            code.scope_narrowed,
        ],
    )
    .map(drop)
}
