//! The connections of `doorward serve`: an accept loop on hyper with the limits a server with
//! no proxy in front needs, so that clients that open connections and send nothing, or send
//! slowly, cannot hold the server's memory or file descriptors.
//!
//! - **Header timeout**: a request's head must arrive within `header_timeout`, counted from
//!   the moment the connection waits for it (accepted, or its previous response sent). It is
//!   therefore also the idle timeout of a kept-alive connection. A slow-header client
//!   ("slowloris") is closed when it runs out.
//! - **Header size**: at most `max_header_bytes` of request line and headers are buffered;
//!   beyond that the answer is `431 Request Header Fields Too Large` and the connection closes
//!   (RFC 6585 §5).
//! - **Body deadline**: a request body must arrive whole within `body_timeout` from the end of
//!   its head; a body that is late reads as an error, which the handlers answer with `400`.
//! - **Connection cap**: at most `max_connections` open at once (and never more than the
//!   process's open-file limit allows, less a reserve for the database); beyond that the loop
//!   stops accepting until one closes, and new clients wait in the kernel's backlog.
//! - **Accept errors** (`EMFILE` when out of file descriptors, …) pause the loop briefly
//!   instead of spinning or stopping the server.
//! - **Graceful shutdown**: on the signal, the listener closes, idle connections close, and
//!   requests in flight finish (for at most [`DRAIN`]).
//!
//! Each request carries the client's address as axum's `ConnectInfo<SocketAddr>`.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::ConnectInfo;
use axum::http::Request;
use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio::time::{Instant, Sleep};
use tower::ServiceExt;

/// The connection limits (`[server]` in the configuration file).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Time allowed for a request's head, from when the connection waits for it.
    pub header_timeout: Duration,
    /// Bytes of request line and headers buffered at most (hyper's floor is 8192).
    pub max_header_bytes: usize,
    /// Time allowed for a request's body, from the end of its head.
    pub body_timeout: Duration,
    /// Connections open at once.
    pub max_connections: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            header_timeout: Duration::from_secs(10),
            max_header_bytes: 32 * 1024,
            body_timeout: Duration::from_secs(30),
            max_connections: 1024,
        }
    }
}

/// The smallest header buffer hyper accepts.
pub const MIN_HEADER_BYTES: usize = 8192;

/// How long requests in flight may run after the shutdown signal.
const DRAIN: Duration = Duration::from_secs(10);

/// The pause after an accept error that is not the client's (out of file descriptors, of
/// memory): the condition lasts until connections close, so retrying at once would spin.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// File descriptors kept for everything but client connections: the database (SQLite's file,
/// its WAL and shared memory per connection, or PostgreSQL's pool), the listener, logs.
const RESERVED_DESCRIPTORS: u64 = 64;

/// Serves `app` on `listener` within `limits` until `shutdown` completes.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: Limits,
    shutdown: impl Future<Output = ()>,
) {
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout)
        .max_buf_size(limits.max_header_bytes.max(MIN_HEADER_BYTES))
        .max_header_size(limits.max_header_bytes);
    let cap = connection_cap(limits.max_connections, open_file_limit());
    let connections = Arc::new(Semaphore::new(cap));
    let graceful = GracefulShutdown::new();
    let mut shutdown = std::pin::pin!(shutdown);
    // Each condition is logged when it starts, not at every turn of the loop while it lasts.
    let mut failing = false;
    let mut at_cap = false;
    loop {
        let permit = match Arc::clone(&connections).try_acquire_owned() {
            Ok(permit) => {
                at_cap = false;
                permit
            }
            Err(_) => {
                if !at_cap {
                    tracing::warn!(
                        max_connections = cap,
                        "connection limit reached: not accepting until a connection closes"
                    );
                    at_cap = true;
                }
                tokio::select! {
                    biased;
                    () = &mut shutdown => break,
                    permit = Arc::clone(&connections).acquire_owned() => match permit {
                        Ok(permit) => permit,
                        Err(_) => break,
                    },
                }
            }
        };
        let accepted = tokio::select! {
            biased;
            () = &mut shutdown => break,
            accepted = listener.accept() => accepted,
        };
        let (stream, peer) = match accepted {
            Ok(pair) => {
                failing = false;
                pair
            }
            Err(e) if is_connection_error(&e) => continue,
            Err(e) => {
                if !failing {
                    tracing::warn!(error = %e, "cannot accept connections; retrying");
                    failing = true;
                }
                drop(permit);
                tokio::select! {
                    biased;
                    () = &mut shutdown => break,
                    () = tokio::time::sleep(ACCEPT_BACKOFF) => continue,
                }
            }
        };
        let _ = stream.set_nodelay(true);
        let app = app.clone();
        let body_timeout = limits.body_timeout;
        let service = hyper::service::service_fn(move |mut request: Request<Incoming>| {
            request.extensions_mut().insert(ConnectInfo(peer));
            let request = request.map(|body| Body::new(DeadlineBody::new(body, body_timeout)));
            app.clone().oneshot(request)
        });
        let connection = graceful.watch(http.serve_connection(TokioIo::new(stream), service));
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!(%peer, error = %e, "connection ended");
            }
            drop(permit);
        });
    }
    drop(listener);
    tokio::select! {
        () = graceful.shutdown() => {}
        () = tokio::time::sleep(DRAIN) => {
            tracing::warn!("requests still running {} s after the shutdown signal; stopping", DRAIN.as_secs());
        }
    }
}

/// Errors of one incoming connection (reset before it was accepted), not of the listener.
fn is_connection_error(e: &std::io::Error) -> bool {
    use std::io::ErrorKind;
    matches!(
        e.kind(),
        ErrorKind::ConnectionAborted | ErrorKind::ConnectionReset | ErrorKind::ConnectionRefused
    )
}

/// The connections allowed at once: `configured`, lowered so that the process keeps
/// [`RESERVED_DESCRIPTORS`] file descriptors when its open-file limit is low (past the limit,
/// `accept` fails and so may opening the database).
fn connection_cap(configured: usize, open_file_limit: Option<u64>) -> usize {
    let Some(limit) = open_file_limit else {
        return configured;
    };
    let room = usize::try_from(limit.saturating_sub(RESERVED_DESCRIPTORS).max(1)).unwrap_or(1);
    if room < configured {
        tracing::warn!(
            max_connections = configured,
            open_file_limit = limit,
            "server.max_connections lowered to {room} to stay within the open-file limit"
        );
        room
    } else {
        configured
    }
}

/// The soft open-file limit of this process, where the system tells it (Linux `/proc`).
fn open_file_limit() -> Option<u64> {
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    parse_open_file_limit(&limits)
}

fn parse_open_file_limit(limits: &str) -> Option<u64> {
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    let soft = line
        .trim_start_matches("Max open files")
        .split_whitespace()
        .next()?;
    soft.parse().ok()
}

/// A request body that must arrive whole by a deadline. tower-http's `TimeoutBody` restarts
/// its timer at every frame, so a client sending a byte at a time could hold the connection
/// for hours within the 64 KiB body limit; this one does not restart.
struct DeadlineBody {
    inner: Incoming,
    deadline: Instant,
    timer: Option<Pin<Box<Sleep>>>,
}

impl DeadlineBody {
    fn new(inner: Incoming, timeout: Duration) -> Self {
        Self {
            inner,
            deadline: Instant::now() + timeout,
            // Created at the first read: most requests have no body to read.
            timer: None,
        }
    }
}

/// The error a late body reads as.
#[derive(Debug)]
struct BodyTooSlow;

impl std::fmt::Display for BodyTooSlow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the request body did not arrive within server.body_timeout")
    }
}

impl std::error::Error for BodyTooSlow {}

impl http_body::Body for DeadlineBody {
    type Data = Bytes;
    type Error = Box<dyn std::error::Error + Send + Sync>;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, Self::Error>>> {
        let this = &mut *self;
        let deadline = this.deadline;
        let timer = this
            .timer
            .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
        if timer.as_mut().poll(cx).is_ready() {
            return Poll::Ready(Some(Err(Box::new(BodyTooSlow))));
        }
        Pin::new(&mut this.inner)
            .poll_frame(cx)
            .map_err(|e| Box::new(e) as Self::Error)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_soft_open_file_limit() {
        let limits = "Limit                     Soft Limit           Hard Limit           Units     \n\
                      Max cpu time              unlimited            unlimited            seconds   \n\
                      Max open files            256                  4096                 files     \n";
        assert_eq!(parse_open_file_limit(limits), Some(256));
        assert_eq!(parse_open_file_limit("Max cpu time unlimited"), None);
    }

    #[test]
    fn the_cap_stays_within_the_open_file_limit() {
        assert_eq!(connection_cap(1024, Some(256)), 192);
        assert_eq!(connection_cap(1024, Some(1_048_576)), 1024);
        assert_eq!(connection_cap(1024, None), 1024);
        assert_eq!(connection_cap(1024, Some(10)), 1);
    }
}
