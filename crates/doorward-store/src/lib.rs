//! Storage adapters of Doorward's engine ports ([`doorward_core::ports`]): each implements
//! every port (clients, users, sessions, consents, codes and tokens, server secrets, signing
//! keys, the purge), so that one value is the engine's whole [`SharedStore`].
//!
//! - [`SqliteStore`] (on rusqlite) is the embedded default: one database file (`sqlite:PATH`)
//!   or `sqlite::memory:` for tests. Instances on one machine may share the file.
//! - [`PostgresStore`] (on sqlx) serves several instances sharing one database
//!   (`postgres://…`).
//!
//! Pick by the database URL's scheme, as the `doorward` binary does:
//! ```
//! use std::sync::Arc;
//!
//! use doorward_core::ports::{SharedStore, StoreError, UserStore};
//! use doorward_store::{PostgresStore, SqliteStore};
//!
//! async fn open_store(url: &str) -> Result<SharedStore, StoreError> {
//!     if url.starts_with("postgres://") || url.starts_with("postgresql://") {
//!         Ok(Arc::new(PostgresStore::open(url).await?))
//!     } else {
//!         Ok(Arc::new(SqliteStore::open(url).await?))
//!     }
//! }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), StoreError> {
//! let store = open_store("sqlite::memory:").await?;
//! assert!(store.find_user_by_username("alice").await?.is_none());
//! # Ok(())
//! # }
//! ```
//!
//! Each adapter keeps its own migrations (embedded in the binary, applied on opening) and maps
//! its driver's errors to [`StoreError`] itself; a PostgreSQL that cannot serve now is
//! [`StoreError::Unavailable`] (see [`postgres::DatabaseUnavailable`]). Single-use redemptions
//! are one `UPDATE … RETURNING` statement, so they stay atomic however many requests race. Both
//! adapters read their rows through one mapping (`rows.rs`); their SQL, one file per group of
//! ports, is in `sqlite/` and `postgres/`.
//!
//! [`SharedStore`]: doorward_core::ports::SharedStore
//! [`StoreError`]: doorward_core::ports::StoreError
//! [`StoreError::Unavailable`]: doorward_core::ports::StoreError::Unavailable

pub mod postgres;
mod rows;
mod sqlite;

pub use postgres::PostgresStore;
pub use sqlite::SqliteStore;

#[cfg(test)]
mod contract;
