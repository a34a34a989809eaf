//! The audit trail: events inserted through the group commit (they ride with the token
//! writes of the same moment), listed by id, purged past the retention.

use async_trait::async_trait;
use doorward_core::audit::{AuditEvent, EventFilter};
use doorward_core::ports::{EventStore, StoreResult};
use rusqlite::types::Value;

use super::{execute, SqliteStore};
use crate::rows::{self, EVENT_COLS};

#[async_trait]
impl EventStore for SqliteStore {
    async fn insert_events(&self, events: &[AuditEvent]) -> StoreResult<()> {
        let events = events.to_vec();
        self.write_batched(move |conn| {
            for event in &events {
                execute(
                    conn,
                    "INSERT INTO events (at_ms, kind, actor, user_id, client_id, address, detail)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                    rusqlite::params![
                        event.at_ms,
                        event.kind,
                        event.actor.to_text(),
                        event.user_id.map(|id| id.to_string()),
                        event.client_id.map(|id| id.to_string()),
                        event.address.map(|a| a.to_string()),
                        rows::claims_text(&event.detail),
                    ],
                )?;
            }
            Ok(())
        })
        .await
    }

    async fn list_events(&self, filter: &EventFilter) -> StoreResult<Vec<AuditEvent>> {
        // A kind ending with '.' is a prefix: compared with `substr`, so that no character of
        // it acts as a pattern.
        let order = if filter.after.is_some() {
            "ASC"
        } else {
            "DESC"
        };
        let sql = format!(
            "SELECT {EVENT_COLS} FROM events
             WHERE (?1 IS NULL OR id > ?1)
               AND (?2 IS NULL OR kind = ?2
                    OR (substr(?2, -1) = '.' AND substr(kind, 1, length(?2)) = ?2))
               AND (?3 IS NULL OR user_id = ?3)
             ORDER BY id {order} LIMIT ?4"
        );
        self.find_all(
            &sql,
            rusqlite::params_from_iter([
                Value::from(filter.after),
                Value::from(filter.kind.clone()),
                Value::from(filter.user_id.map(|id| id.to_string())),
                Value::from(i64::from(filter.limit)),
            ]),
            rows::event,
        )
        .await
    }

    async fn purge_events(&self, before_ms: i64) -> StoreResult<u64> {
        self.write(|conn| {
            execute(conn, "DELETE FROM events WHERE at_ms < ?1", [before_ms]).map(|n| n as u64)
        })
        .await
    }
}
