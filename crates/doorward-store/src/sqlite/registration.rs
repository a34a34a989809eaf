//! Dynamic client registration (RFC 7591, RFC 7592): initial access tokens, and registrations
//! stored with their client and the spent use of their initial token in one transaction, under
//! the cap
//! (SQLite runs one write transaction at a time, so the count and the insert cannot interleave
//! with another registration's).

use async_trait::async_trait;
use doorward_core::model::{Client, InitialTokenRecord, RegistrationRecord};
use doorward_core::ports::{Change, Registered, RegistrationStore, StoreResult, UnixTime};
use doorward_core::TokenHash;
use rusqlite::params;

use super::accounts::client_params;
use super::{changes, execute, other, query_one, SqliteStore};
use crate::rows::{self, corrupt, CLIENT_COLS, INITIAL_TOKEN_COLS};

#[async_trait]
impl RegistrationStore for SqliteStore {
    async fn insert_initial_token(&self, token: &InitialTokenRecord) -> StoreResult<()> {
        self.write(|conn| {
            execute(
                conn,
                &format!("INSERT INTO registration_tokens ({INITIAL_TOKEN_COLS}) VALUES (?1, ?2, ?3, ?4)"),
                params![
                    token.hash.as_bytes(),
                    token.created_at,
                    token.expires_at,
                    i64::from(token.uses_left)
                ],
            )
            .map(drop)
        })
        .await
    }

    async fn find_initial_token(
        &self,
        hash: &TokenHash,
    ) -> StoreResult<Option<InitialTokenRecord>> {
        let sql = format!("SELECT {INITIAL_TOKEN_COLS} FROM registration_tokens WHERE hash = ?1");
        self.find(&sql, [hash.as_bytes()], rows::initial_token)
            .await
    }

    async fn insert_registration(
        &self,
        client: &Client,
        registration: &RegistrationRecord,
        max: Option<u64>,
        spend: Option<&TokenHash>,
        now: UnixTime,
    ) -> StoreResult<Registered> {
        self.write(|conn| {
            // Returning early drops the transaction, which rolls the spent use back.
            let tx = conn.transaction().map_err(other)?;
            if let Some(hash) = spend {
                let spent = execute(
                    &tx,
                    "UPDATE registration_tokens SET uses_left = uses_left - 1
                     WHERE hash = ?1 AND uses_left > 0 AND expires_at > ?2",
                    params![hash.as_bytes(), now],
                )?;
                if spent != 1 {
                    return Ok(Registered::TokenRefused);
                }
            }
            if let Some(max) = max {
                let count = query_one(
                    &tx,
                    "SELECT count(*) AS n FROM client_registrations",
                    [],
                    |row| row.int("n"),
                )?
                .ok_or_else(|| corrupt("count(*) returned no row"))?;
                if u64::try_from(count).unwrap_or(0) >= max {
                    return Ok(Registered::Full);
                }
            }
            let inserted = execute(
                &tx,
                &format!(
                    "INSERT INTO clients ({CLIENT_COLS})
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)
                     ON CONFLICT DO NOTHING"
                ),
                client_params(client),
            )?;
            if inserted != 1 {
                return Ok(Registered::Taken);
            }
            execute(
                &tx,
                "INSERT INTO client_registrations (client_id, token_hash, metadata)
                 VALUES (?1, ?2, ?3)",
                params![
                    registration.client_id.to_string(),
                    registration.token_hash.as_bytes(),
                    registration.metadata
                ],
            )?;
            tx.commit().map_err(other)?;
            Ok(Registered::Stored)
        })
        .await
    }

    async fn find_registration(
        &self,
        token: &TokenHash,
    ) -> StoreResult<Option<(Client, RegistrationRecord)>> {
        let sql = format!(
            "SELECT {CLIENT_COLS}, token_hash, metadata FROM client_registrations
             JOIN clients ON clients.id = client_registrations.client_id
             WHERE token_hash = ?1"
        );
        self.find(&sql, [token.as_bytes()], rows::registration)
            .await
    }

    async fn update_registration(
        &self,
        client: &Client,
        registration: &RegistrationRecord,
    ) -> StoreResult<bool> {
        self.write(|conn| {
            let tx = conn.transaction().map_err(other)?;
            let changed = execute(
                &tx,
                "UPDATE client_registrations SET token_hash = ?2, metadata = ?3
                 WHERE client_id = ?1",
                params![
                    registration.client_id.to_string(),
                    registration.token_hash.as_bytes(),
                    registration.metadata
                ],
            )?;
            if changed != 1 {
                return Ok(false);
            }
            execute(
                &tx,
                &super::accounts::upsert_client_sql(),
                client_params(client),
            )?;
            changes::record(&tx, &Change::Client(client.id))?;
            tx.commit().map_err(other)?;
            Ok(true)
        })
        .await
    }
}
