//! Group commit: the hot writes (codes issued and redeemed, tokens stored and rotated, client
//! assertions' `jti`) share one SQLite transaction with whatever else arrived meanwhile.
//!
//! # Why
//! A commit, not a statement, is what costs on SQLite: taking and dropping the file locks,
//! writing each dirty page to the WAL as a frame, and, every 1000 frames, the checkpoint that
//! copies them back. Profiled on `client_credentials` (one token insert per request), `BEGIN`
//! and `COMMIT` took a third of the server's time and the checkpoint a tenth (BENCHMARKS.md).
//! Inserts that commit together write the B-tree pages they share once.
//!
//! # How
//! One thread owns the batches. A writer sends its work (a closure over owned values) into a
//! queue and awaits the answer. The thread takes the first job, then every job already queued
//! (at most [`MAX_BATCH`]), and runs them under the writer connection's lock:
//! `BEGIN IMMEDIATE`, then each job inside its own `SAVEPOINT` (a failing job is rolled back
//! alone, the others go on), then one `COMMIT`. No one waits for a batch to fill: a batch is
//! whatever queued while the previous commit ran, one job when the server is idle.
//!
//! # What holds
//! - **Nothing is answered before it is durable.** Answers are sent only after `COMMIT`
//!   returns, when the WAL holds the batch (`synchronous=NORMAL`: a process crash loses none
//!   of it).
//! - **A failure leaves everything usable.** If `COMMIT` fails, or SQLite rolls the whole
//!   transaction back on an I/O error, every job of it is answered with the error and none of
//!   its writes stay: a code or refresh token is not spent, and may be presented again.
//! - **Single use** is unchanged: each job's `UPDATE … WHERE used_at IS NULL` runs on the one
//!   writer connection, in order, so the second presentation of a credential finds it spent,
//!   within the batch as across batches.
//! - A caller that stops waiting (its request dropped) does not stop its job: what was queued
//!   is written, as a request that has reached the database is today.

use std::sync::mpsc;
use std::sync::Arc;

use doorward_core::ports::{StoreError, StoreResult};
use rusqlite::Connection;
use tokio::sync::{oneshot, Mutex};

/// The most jobs one transaction holds: enough to share the commit under any load, few enough
/// that the first job's answer does not wait long behind the last.
const MAX_BATCH: usize = 128;

/// A job that has run inside the batch: whether it succeeded (its savepoint kept) and how to
/// answer it once the batch's fate is known.
trait Ran: Send {
    fn succeeded(&self) -> bool;
    /// `None`: the batch committed. `Some(reason)`: it did not, and this job's writes are gone.
    fn answer(self: Box<Self>, lost: Option<&str>);
}

/// Queued work: run against the writer connection, or refused before it could run.
trait Job: Send {
    fn run(self: Box<Self>, conn: &Connection) -> Box<dyn Ran>;
    fn refuse(self: Box<Self>, reason: &str);
}

struct Queued<F, T> {
    work: F,
    reply: oneshot::Sender<StoreResult<T>>,
}

struct Done<T> {
    result: StoreResult<T>,
    reply: oneshot::Sender<StoreResult<T>>,
}

fn lost_error(reason: &str) -> StoreError {
    StoreError::Other(format!("the write was not committed: {reason}").into())
}

impl<F, T> Job for Queued<F, T>
where
    F: FnOnce(&Connection) -> StoreResult<T> + Send + 'static,
    T: Send + 'static,
{
    fn run(self: Box<Self>, conn: &Connection) -> Box<dyn Ran> {
        let result = (self.work)(conn);
        Box::new(Done {
            result,
            reply: self.reply,
        })
    }
    fn refuse(self: Box<Self>, reason: &str) {
        let _ = self.reply.send(Err(lost_error(reason)));
    }
}

impl<T: Send + 'static> Ran for Done<T> {
    fn succeeded(&self) -> bool {
        self.result.is_ok()
    }
    fn answer(self: Box<Self>, lost: Option<&str>) {
        let result = match (self.result, lost) {
            (Ok(_), Some(reason)) => Err(lost_error(reason)),
            (result, _) => result,
        };
        // The caller may have stopped waiting; the write stands either way.
        let _ = self.reply.send(result);
    }
}

/// The sending side of the queue, held by the store. Dropping it ends the thread once the
/// queue is drained.
pub(super) struct Batcher {
    queue: mpsc::Sender<Box<dyn Job>>,
}

impl Batcher {
    /// Starts the thread that commits batches on `writer`.
    pub(super) fn start(writer: Arc<Mutex<Connection>>) -> std::io::Result<Self> {
        let (queue, jobs) = mpsc::channel::<Box<dyn Job>>();
        std::thread::Builder::new()
            .name("doorward-sqlite-writer".into())
            .spawn(move || {
                while let Ok(first) = jobs.recv() {
                    // Let the woken thread give way before it drains the queue. Woken, it would
                    // otherwise run at once on the core that queued the job (the scheduler
                    // favours a thread that slept), and commit batches of one or two while
                    // the requests behind it wait; after the yield, the tasks that were ready
                    // run and queue their writes first. Measured on one core, 64 connections,
                    // `client_credentials`: batches of 59 jobs on average instead of 3.7, and
                    // 18.2 k instead of 13.9 k tokens/s (BENCHMARKS.md).
                    std::thread::yield_now();
                    let conn = writer.blocking_lock();
                    let mut batch = vec![first];
                    batch.extend(jobs.try_iter().take(MAX_BATCH - 1));
                    run_batch(&conn, batch);
                }
            })?;
        Ok(Self { queue })
    }

    /// Runs `work` in the next batch; answers once the batch is committed (or with the error
    /// that kept it from being so).
    pub(super) async fn write<T, F>(&self, work: F) -> StoreResult<T>
    where
        F: FnOnce(&Connection) -> StoreResult<T> + Send + 'static,
        T: Send + 'static,
    {
        let (reply, answer) = oneshot::channel();
        self.queue
            .send(Box::new(Queued { work, reply }))
            .map_err(|_| StoreError::Unavailable("the SQLite writer thread has stopped".into()))?;
        answer.await.map_err(|_| {
            StoreError::Unavailable("the SQLite writer thread dropped the write".into())
        })?
    }
}

/// Runs `batch` in one transaction, each job in a savepoint, then answers every job.
fn run_batch(conn: &Connection, batch: Vec<Box<dyn Job>>) {
    close_leftover(conn);
    run_jobs(conn, batch);
    // Whatever happened, the lock goes back to the inline writers with no transaction open:
    // one left open would swallow their writes uncommitted.
    close_leftover(conn);
}

/// Rolls back a transaction left open (a `ROLLBACK` that failed earlier), so that a batch or
/// an inline write never runs inside another's transaction.
fn close_leftover(conn: &Connection) {
    if !conn.is_autocommit() {
        let _ = conn.execute_batch("ROLLBACK");
    }
}

fn run_jobs(conn: &Connection, batch: Vec<Box<dyn Job>>) {
    let mut ran: Vec<Box<dyn Ran>> = Vec::with_capacity(batch.len());
    let mut open = begin(conn);
    for job in batch {
        if let Err(reason) = &open {
            job.refuse(reason);
            continue;
        }
        if let Err(e) = statement(conn, "SAVEPOINT job") {
            job.refuse(&e);
            continue;
        }
        // A job that panics is rolled back like one that fails; its caller, whose reply was
        // dropped with it, gets `Unavailable`. The thread and the other jobs go on.
        let done = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| job.run(conn))).ok();
        let closed = if done.as_ref().is_some_and(|d| d.succeeded()) {
            statement(conn, "RELEASE job")
        } else {
            statement(conn, "ROLLBACK TO job").and_then(|()| statement(conn, "RELEASE job"))
        };
        ran.extend(done);
        if let Err(e) = closed {
            // The savepoint could not be closed: end the batch here, writing nothing.
            let _ = conn.execute_batch("ROLLBACK");
            lose(&mut ran, &e);
            open = begin(conn);
            continue;
        }
        if conn.is_autocommit() {
            // SQLite rolled the whole transaction back (an I/O error, a full disk): the jobs
            // that seemed to succeed so far wrote nothing. Start again for the rest.
            lose(&mut ran, "the transaction was rolled back by SQLite");
            open = begin(conn);
        }
    }
    if open.is_err() {
        // Every job was refused above, or answered as lost before the failed `BEGIN`.
        return;
    }
    let committed = statement(conn, "COMMIT");
    if committed.is_err() && !conn.is_autocommit() {
        let _ = conn.execute_batch("ROLLBACK");
    }
    let lost = committed.err();
    for done in ran {
        done.answer(lost.as_deref());
    }
}

/// Answers the jobs run so far as lost (`reason`): none of their writes were kept.
fn lose(ran: &mut Vec<Box<dyn Ran>>, reason: &str) {
    for done in ran.drain(..) {
        done.answer(Some(reason));
    }
}

/// `BEGIN IMMEDIATE`: the write lock is taken at once (another process, such as the CLI, is
/// waited for by the busy timeout) rather than at the first write, where a deferred
/// transaction could fail outright.
fn begin(conn: &Connection) -> Result<(), String> {
    statement(conn, "BEGIN IMMEDIATE")
}

fn statement(conn: &Connection, sql: &str) -> Result<(), String> {
    conn.prepare_cached(sql)
        .and_then(|mut s| s.execute([]))
        .map(drop)
        .map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table() -> Connection {
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch("CREATE TABLE t (k INTEGER PRIMARY KEY)")
            .unwrap();
        conn
    }

    fn job<T: Send + 'static>(
        work: impl FnOnce(&Connection) -> StoreResult<T> + Send + 'static,
    ) -> (Box<dyn Job>, oneshot::Receiver<StoreResult<T>>) {
        let (reply, answer) = oneshot::channel();
        (Box::new(Queued { work, reply }), answer)
    }

    fn insert(k: i64) -> impl FnOnce(&Connection) -> StoreResult<()> + Send + 'static {
        move |conn| {
            conn.execute("INSERT INTO t (k) VALUES (?1)", [k])
                .map(drop)
                .map_err(|e| StoreError::Other(e.into()))
        }
    }

    fn keys(conn: &Connection) -> Vec<i64> {
        let mut s = conn.prepare("SELECT k FROM t ORDER BY k").unwrap();
        let rows = s.query_map([], |r| r.get(0)).unwrap();
        rows.map(Result::unwrap).collect()
    }

    #[test]
    fn a_failing_job_is_rolled_back_alone() {
        let conn = table();
        let (a, ra) = job(insert(1));
        let (b, rb) = job(|conn: &Connection| {
            insert(2)(conn)?;
            // The second insert of the same key fails: the first must go with it.
            insert(2)(conn)
        });
        let (c, rc) = job(insert(3));
        run_batch(&conn, vec![a, b, c]);
        assert!(ra.blocking_recv().unwrap().is_ok());
        assert!(rb.blocking_recv().unwrap().is_err());
        assert!(rc.blocking_recv().unwrap().is_ok());
        assert_eq!(keys(&conn), [1, 3]);
        assert!(conn.is_autocommit(), "the batch is committed");
    }

    #[test]
    fn a_transaction_rolled_back_under_the_batch_answers_its_jobs_with_an_error() {
        let conn = table();
        let (a, ra) = job(insert(1));
        // What SQLite does on an I/O error or a full disk: the whole transaction is gone.
        let (b, rb) = job(|conn: &Connection| {
            conn.execute_batch("ROLLBACK")
                .map_err(|e| StoreError::Other(e.into()))?;
            Err::<(), _>(StoreError::Other("disk I/O error".into()))
        });
        let (c, rc) = job(insert(3));
        run_batch(&conn, vec![a, b, c]);
        let lost = ra.blocking_recv().unwrap().unwrap_err();
        assert!(format!("{lost:?}").contains("not committed"), "{lost:?}");
        assert!(rb.blocking_recv().unwrap().is_err());
        assert!(
            rc.blocking_recv().unwrap().is_ok(),
            "the rest runs in a new batch"
        );
        assert_eq!(keys(&conn), [3], "nothing of the lost job stays");
    }

    #[test]
    fn a_failed_commit_answers_every_job_with_an_error_and_keeps_nothing() {
        let conn = table();
        conn.execute_batch(
            "CREATE TABLE parent (k INTEGER PRIMARY KEY);
             CREATE TABLE child (k INTEGER REFERENCES parent (k) DEFERRABLE INITIALLY DEFERRED);
             PRAGMA foreign_keys = ON;",
        )
        .unwrap();
        let (a, ra) = job(insert(1));
        // A deferred foreign key is checked at COMMIT, which then fails.
        let (b, rb) = job(|conn: &Connection| {
            conn.execute("INSERT INTO child (k) VALUES (7)", [])
                .map(drop)
                .map_err(|e| StoreError::Other(e.into()))
        });
        run_batch(&conn, vec![a, b]);
        assert!(ra.blocking_recv().unwrap().is_err());
        assert!(rb.blocking_recv().unwrap().is_err());
        assert!(keys(&conn).is_empty());
        assert!(conn.is_autocommit());
    }

    #[test]
    fn a_panicking_job_is_rolled_back_and_the_others_go_on() {
        let conn = table();
        let (a, ra) = job(insert(1));
        let (b, rb) = job(|conn: &Connection| -> StoreResult<()> {
            insert(2)(conn)?;
            panic!("a bug in a job");
        });
        let (c, rc) = job(insert(3));
        run_batch(&conn, vec![a, b, c]);
        assert!(ra.blocking_recv().unwrap().is_ok());
        assert!(rb.blocking_recv().is_err(), "its reply is dropped");
        assert!(rc.blocking_recv().unwrap().is_ok());
        assert_eq!(keys(&conn), [1, 3]);
    }

    #[test]
    fn a_transaction_left_open_is_rolled_back_before_and_after_a_batch() {
        let conn = table();
        conn.execute_batch("BEGIN; INSERT INTO t (k) VALUES (9)")
            .unwrap();
        let (a, ra) = job(insert(1));
        run_batch(&conn, vec![a]);
        assert!(ra.blocking_recv().unwrap().is_ok());
        assert_eq!(
            keys(&conn),
            [1],
            "the leftover write is gone, the batch's kept"
        );
        let (b, rb) = job(|conn: &Connection| {
            conn.execute_batch("COMMIT; BEGIN")
                .map_err(|e| StoreError::Other(e.into()))
        });
        run_batch(&conn, vec![b]);
        assert!(rb.blocking_recv().unwrap().is_err());
        assert!(conn.is_autocommit(), "no transaction is handed on");
    }

    #[tokio::test]
    async fn the_thread_answers_after_the_commit() {
        let writer = Arc::new(Mutex::new(table()));
        let batcher = Batcher::start(Arc::clone(&writer)).unwrap();
        let answers = futures_join(&batcher).await;
        assert!(answers.iter().all(Result::is_ok));
        let conn = writer.lock().await;
        assert_eq!(keys(&conn).len(), 50);
    }

    async fn futures_join(batcher: &Batcher) -> Vec<StoreResult<()>> {
        let mut out = Vec::new();
        let mut pending = Vec::new();
        for k in 0..50 {
            pending.push(batcher.write(insert(k)));
        }
        for p in pending {
            out.push(p.await);
        }
        out
    }
}
