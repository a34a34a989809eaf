//! The change feed of the PostgreSQL adapter ([`ChangeFeed`]): the methods that change a cached
//! record send a `NOTIFY` in their own transaction ([`notify`]; PostgreSQL delivers it at
//! commit, in commit order, and never for a transaction that rolled back), and each instance
//! listens on one connection of its own. A poll asks the server for its backend's process id:
//! the answer comes after every notification committed before the poll began, and a changed
//! process id means the connection was replaced (notifications may have been lost meanwhile),
//! which forgets everything.

use async_trait::async_trait;
use std::time::Duration;

use doorward_core::ports::{Change, ChangeFeed, StoreError, StoreResult};
use sqlx::postgres::PgListener;
use sqlx::PgConnection;

use super::{other, PostgresStore};

/// The channel of the notifications.
pub(super) const CHANNEL: &str = "doorward_changes";

/// Announces `change` when the caller's transaction commits.
pub(super) async fn notify(conn: &mut PgConnection, change: &Change) -> StoreResult<()> {
    sqlx::query("SELECT pg_notify($1, $2)")
        .bind(CHANNEL)
        .bind(change.to_wire())
        .execute(conn)
        .await
        .map_err(other)
        .map(drop)
}

/// How long a poll waits for the listening connection's answer before it replaces it.
const PING_TIMEOUT: Duration = Duration::from_secs(2);

/// The listening connection and the process id of its backend.
pub(super) type Listener = tokio::sync::Mutex<Option<(PgListener, i32)>>;

#[async_trait]
impl ChangeFeed for PostgresStore {
    async fn changes(&self) -> StoreResult<Vec<Change>> {
        let mut slot = self.listener.lock().await;
        let mut out = Vec::new();
        if slot.is_none() {
            let mut listener = PgListener::connect_with(&self.pool).await.map_err(other)?;
            listener.listen(CHANNEL).await.map_err(other)?;
            *slot = Some((listener, 0));
            // What changed before it listened is unknown.
            out.push(Change::Everything);
        }
        let Some((listener, pid)) = slot.as_mut() else {
            return Ok(out);
        };
        // A half-open connection would block the poll for as long as TCP takes to notice; the
        // cache stops answering meanwhile anyway, but the follower would be stuck.
        let backend = tokio::time::timeout(
            PING_TIMEOUT,
            sqlx::query_scalar::<_, i32>("SELECT pg_backend_pid()").fetch_one(&mut *listener),
        )
        .await;
        match backend {
            Err(_) => {
                *slot = None;
                return Err(StoreError::Unavailable(
                    "the change feed's connection did not answer".into(),
                ));
            }
            Ok(Ok(backend)) => {
                if *pid != 0 && backend != *pid {
                    out.push(Change::Everything);
                }
                *pid = backend;
            }
            Ok(Err(e)) => {
                *slot = None;
                return Err(other(e));
            }
        }
        while let Some(notification) = listener.next_buffered() {
            out.push(Change::from_wire(notification.payload()));
        }
        Ok(out)
    }
}
