//! Device authorizations (RFC 8628): `device_authorizations`, one row per device code.

use async_trait::async_trait;
use doorward_core::model::{CodeRecord, DeviceAuthorization, DeviceState};
use doorward_core::ports::{DeviceStore, StoreResult, UnixTime};
use doorward_core::TokenHash;
use rusqlite::params;

use super::tokens::insert_code_in;
use super::{execute, query_one, SqliteStore};
use crate::rows::{self, DEVICE_COLS};

#[async_trait]
impl DeviceStore for SqliteStore {
    async fn insert_device_authorization(&self, record: &DeviceAuthorization) -> StoreResult<bool> {
        let record = record.clone();
        self.write_batched(move |conn| {
            let (state, user_id, auth_time) = rows::device_state(record.state);
            // A taken user code inserts nothing (0 rows): the engine draws another.
            let inserted = execute(
                conn,
                &format!(
                    "INSERT INTO device_authorizations ({DEVICE_COLS})
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)
                     ON CONFLICT DO NOTHING"
                ),
                params![
                    record.hash.as_bytes(),
                    record.user_code,
                    record.client_id.to_string(),
                    record.scopes.to_string(),
                    rows::resource_lines(&record.resources),
                    record.issued_at,
                    record.expires_at,
                    record.polled_at,
                    state,
                    user_id.map(|u| u.to_string()),
                    auth_time,
                ],
            )?;
            Ok(inserted == 1)
        })
        .await
    }

    async fn find_device_by_user_code(
        &self,
        user_code: &str,
    ) -> StoreResult<Option<DeviceAuthorization>> {
        self.find(
            &format!("SELECT {DEVICE_COLS} FROM device_authorizations WHERE user_code = ?1"),
            [user_code],
            rows::device,
        )
        .await
    }

    async fn poll_device(
        &self,
        hash: &TokenHash,
        now: UnixTime,
    ) -> StoreResult<Option<DeviceAuthorization>> {
        let hash = hash.as_bytes().to_vec();
        // One savepoint of the group commit: the read and the update see no other writer.
        self.write_batched(move |conn| {
            let found = query_one(
                conn,
                &format!("SELECT {DEVICE_COLS} FROM device_authorizations WHERE hash = ?1"),
                [&hash],
                rows::device,
            )?;
            if found.is_some() {
                execute(
                    conn,
                    "UPDATE device_authorizations SET polled_at = ?2 WHERE hash = ?1",
                    params![hash, now],
                )?;
            }
            Ok(found)
        })
        .await
    }

    async fn settle_device(
        &self,
        hash: &TokenHash,
        state: DeviceState,
        code: Option<&CodeRecord>,
        now: UnixTime,
    ) -> StoreResult<bool> {
        let hash = hash.as_bytes().to_vec();
        let code = code.cloned();
        self.write_batched(move |conn| {
            let (state, user_id, auth_time) = rows::device_state(state);
            let settled = execute(
                conn,
                "UPDATE device_authorizations SET state = ?2, user_id = ?3, auth_time = ?4
                 WHERE hash = ?1 AND state = 'pending' AND expires_at > ?5",
                params![hash, state, user_id.map(|u| u.to_string()), auth_time, now],
            )?;
            if settled == 1 {
                if let Some(code) = &code {
                    insert_code_in(conn, code)?;
                }
            }
            Ok(settled == 1)
        })
        .await
    }
}
