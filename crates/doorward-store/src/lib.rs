//! Storage adapters of Doorward's engine ports ([`doorward_core::ports`]).
//!
//! [`SqliteStore`] is the embedded default; [`PostgresStore`] serves several instances sharing
//! one database. Each adapter keeps its own migrations (embedded in the binary) and maps its
//! driver's errors to [`doorward_core::ports::StoreError`] itself.
//! Single-use redemptions are one `UPDATE … RETURNING` statement, so they stay atomic however
//! many requests race.

pub mod postgres;
mod rows;
mod sqlite;

pub use postgres::PostgresStore;
pub use sqlite::SqliteStore;

#[cfg(test)]
mod contract;
