//! The change feed of the SQLite adapter ([`ChangeFeed`]): the methods that change a cached
//! record append a row to `changes` in their own transaction ([`record`]), and each process
//! reads the rows after the last one it saw. SQLite serializes writers, so `seq` follows the
//! commit order and a rolled-back row leaves no gap: a gap means rows were pruned before this
//! process read them, and it is told to forget everything.

use async_trait::async_trait;
use doorward_core::ports::{Change, ChangeFeed, StoreResult};
use rusqlite::Connection;

use super::{execute, query_all, query_one, SqliteStore};

/// Rows read per query; a feed further behind reads again at once.
const PAGE: i64 = 1000;
/// The rows kept: a process more than this many changes behind forgets everything.
pub(super) const KEPT: i64 = 10_000;

/// Appends `change` to the feed, in the caller's transaction.
pub(super) fn record(conn: &Connection, change: &Change) -> StoreResult<()> {
    execute(
        conn,
        "INSERT INTO changes (change) VALUES (?1)",
        [change.to_wire()],
    )
    .map(drop)
}

/// Deletes all but the last [`KEPT`] changes.
pub(super) fn prune(conn: &Connection) -> StoreResult<usize> {
    execute(
        conn,
        "DELETE FROM changes WHERE seq <= (SELECT max(seq) FROM changes) - ?1",
        [KEPT],
    )
}

#[async_trait]
impl ChangeFeed for SqliteStore {
    async fn changes(&self) -> StoreResult<Vec<Change>> {
        let mut cursor = self.feed_cursor.lock().await;
        let mut out = Vec::new();
        let mut last = match *cursor {
            Some(last) => last,
            None => {
                // Changes before this process started concern nothing it holds.
                let last = self
                    .read(|conn| {
                        query_one(
                            conn,
                            "SELECT coalesce(max(seq), 0) AS seq FROM changes",
                            [],
                            |row| row.int("seq"),
                        )
                    })
                    .await?
                    .unwrap_or(0);
                *cursor = Some(last);
                return Ok(vec![Change::Everything]);
            }
        };
        loop {
            let page = self
                .read(|conn| {
                    query_all(
                        conn,
                        "SELECT seq, change FROM changes WHERE seq > ?1 ORDER BY seq LIMIT ?2",
                        [last, PAGE],
                        |row| Ok((row.int("seq")?, row.text("change")?)),
                    )
                })
                .await?;
            let full = page.len() as i64 == PAGE;
            for (seq, change) in page {
                if seq != last + 1 {
                    out.push(Change::Everything);
                }
                out.push(Change::from_wire(&change));
                last = seq;
            }
            *cursor = Some(last);
            if !full {
                return Ok(out);
            }
        }
    }
}
