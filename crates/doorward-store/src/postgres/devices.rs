//! Device authorizations (RFC 8628): `device_authorizations`, one row per device code.

use async_trait::async_trait;
use doorward_core::model::{CodeRecord, DeviceAuthorization, DeviceState};
use doorward_core::ports::{DeviceStore, StoreResult, UnixTime};
use doorward_core::TokenHash;
use sqlx::AssertSqlSafe;

use super::tokens::insert_code_in;
use super::{other, record, PostgresStore};
use crate::rows::{self, DEVICE_COLS};

#[async_trait]
impl DeviceStore for PostgresStore {
    async fn insert_device_authorization(&self, record: &DeviceAuthorization) -> StoreResult<bool> {
        let (state, user_id, auth_time) = rows::device_state(record.state);
        // A taken user code (or device code) inserts nothing: the engine draws another.
        let sql = format!(
            "INSERT INTO device_authorizations ({DEVICE_COLS})
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
             ON CONFLICT DO NOTHING"
        );
        let done = sqlx::query(AssertSqlSafe(sql.as_str()))
            .bind(record.hash.as_bytes())
            .bind(&record.user_code)
            .bind(record.client_id)
            .bind(record.scopes.to_string())
            .bind(rows::resource_lines(&record.resources))
            .bind(record.issued_at)
            .bind(record.expires_at)
            .bind(record.polled_at)
            .bind(state)
            .bind(user_id)
            .bind(auth_time)
            .execute(&self.pool)
            .await
            .map_err(other)?;
        Ok(done.rows_affected() == 1)
    }

    async fn find_device_by_user_code(
        &self,
        user_code: &str,
    ) -> StoreResult<Option<DeviceAuthorization>> {
        let sql = format!("SELECT {DEVICE_COLS} FROM device_authorizations WHERE user_code = $1");
        self.find(
            sqlx::query(AssertSqlSafe(sql.as_str())).bind(user_code),
            rows::device,
        )
        .await
    }

    async fn poll_device(
        &self,
        hash: &TokenHash,
        now: UnixTime,
    ) -> StoreResult<Option<DeviceAuthorization>> {
        // One statement: the row as it was (locked, so a concurrent poll waits and then sees
        // this poll's time), and the new time.
        let cols = DEVICE_COLS
            .split(", ")
            .map(|c| format!("old.{c}"))
            .collect::<Vec<_>>()
            .join(", ");
        let sql = format!(
            "WITH old AS (SELECT {DEVICE_COLS} FROM device_authorizations WHERE hash = $1 FOR UPDATE)
             UPDATE device_authorizations d SET polled_at = $2 FROM old
             WHERE d.hash = old.hash RETURNING {cols}"
        );
        let row = sqlx::query(AssertSqlSafe(sql.as_str()))
            .bind(hash.as_bytes())
            .bind(now)
            .fetch_optional(&self.pool)
            .await
            .map_err(other)?;
        record(row, rows::device)
    }

    async fn settle_device(
        &self,
        hash: &TokenHash,
        state: DeviceState,
        code: Option<&CodeRecord>,
        now: UnixTime,
    ) -> StoreResult<bool> {
        let (state, user_id, auth_time) = rows::device_state(state);
        let mut tx = self.pool.begin().await.map_err(other)?;
        let done = sqlx::query(
            "UPDATE device_authorizations SET state = $2, user_id = $3, auth_time = $4
             WHERE hash = $1 AND state = 'pending' AND expires_at > $5",
        )
        .bind(hash.as_bytes())
        .bind(state)
        .bind(user_id)
        .bind(auth_time)
        .bind(now)
        .execute(&mut *tx)
        .await
        .map_err(other)?;
        if done.rows_affected() != 1 {
            return Ok(false);
        }
        if let Some(code) = code {
            insert_code_in(&mut tx, code).await?;
        }
        tx.commit().await.map_err(other)?;
        Ok(true)
    }
}
