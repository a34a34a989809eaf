//! The audit trail: events inserted in one statement per batch, listed by id, purged past
//! the retention.
//!
//! Ids come from an identity sequence: two transactions committing out of order can make a
//! follower (`doorward events --follow`, which asks for ids above the last it saw) miss the
//! one with the lower id. The writer of one instance inserts one batch at a time, so this
//! takes two instances writing within the same instant.

use async_trait::async_trait;
use doorward_core::audit::{AuditEvent, EventFilter};
use doorward_core::ports::{EventStore, StoreResult};
use sqlx::AssertSqlSafe;

use super::{other, PostgresStore};
use crate::rows::{self, EVENT_COLS};

#[async_trait]
impl EventStore for PostgresStore {
    async fn insert_events(&self, events: &[AuditEvent]) -> StoreResult<()> {
        if events.is_empty() {
            return Ok(());
        }
        let column = |f: &dyn Fn(&AuditEvent) -> Option<String>| -> Vec<Option<String>> {
            events.iter().map(f).collect()
        };
        sqlx::query(
            "INSERT INTO events (at_ms, kind, actor, user_id, client_id, address, detail)
             SELECT at_ms, kind, actor, user_id, client_id, address, detail FROM UNNEST($1::bigint[], $2::text[], $3::text[], $4::uuid[], $5::uuid[],
                                  $6::text[], $7::text[])
             WITH ORDINALITY AS e(at_ms, kind, actor, user_id, client_id, address, detail, n)
             ORDER BY n",
        )
        .bind(events.iter().map(|e| e.at_ms).collect::<Vec<i64>>())
        .bind(column(&|e| Some(e.kind.clone())))
        .bind(column(&|e| Some(e.actor.to_text())))
        .bind(events.iter().map(|e| e.user_id).collect::<Vec<_>>())
        .bind(events.iter().map(|e| e.client_id).collect::<Vec<_>>())
        .bind(column(&|e| e.address.map(|a| a.to_string())))
        .bind(column(&|e| Some(rows::claims_text(&e.detail))))
        .execute(&self.pool)
        .await
        .map_err(other)
        .map(drop)
    }

    async fn list_events(&self, filter: &EventFilter) -> StoreResult<Vec<AuditEvent>> {
        let order = if filter.after.is_some() {
            "ASC"
        } else {
            "DESC"
        };
        let sql = format!(
            "SELECT {EVENT_COLS} FROM events
             WHERE ($1::bigint IS NULL OR id > $1)
               AND ($2::text IS NULL OR kind = $2
                    OR (right($2, 1) = '.' AND left(kind, length($2)) = $2))
               AND ($3::uuid IS NULL OR user_id = $3)
             ORDER BY id {order} LIMIT $4"
        );
        let query = sqlx::query(AssertSqlSafe(sql.as_str()))
            .bind(filter.after)
            .bind(filter.kind.as_deref())
            .bind(filter.user_id)
            .bind(i64::from(filter.limit));
        self.find_all(query, rows::event).await
    }

    async fn purge_events(&self, before_ms: i64) -> StoreResult<u64> {
        sqlx::query("DELETE FROM events WHERE at_ms < $1")
            .bind(before_ms)
            .execute(&self.pool)
            .await
            .map_err(other)
            .map(|done| done.rows_affected())
    }
}
