//! PostgreSQL as popgate reaches it, for the store and the audit log alike: the `[store] url`,
//! connections (TLS through rustls, reconnects with backoff), a few shared read connections
//! and a few write connections, and the schema with its migrations. What the tables mean is
//! the business of `store::postgres` and `audit::database`.

pub mod db;
pub mod schema;
mod tls;

pub use db::{Backoff, Connection, Db, DbUrl, Readers, WriteConn, Writers, unavailable};
pub use schema::{Migrated, SchemaError, migrate};
