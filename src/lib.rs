//! popgate: a gRPC gateway with mTLS between agencies and a national population database.
//!
//! Map of the crate, from the outside in; no two modules import each other. A request flows `server` (TCP, TLS, HTTP/2) → `grpc` (convert) → `gateway` (identity → role →
//! limits → rights → cache/store → audit → answer) → `grpc` (convert back).
//!
//! Wiring and the outside:
//! - [`cli`]: the `popgate` command line, one file per subcommand (the load generator is the
//!   `popgate-bench` package of this workspace, a user of this library).
//! - [`server`]: builds the gateway from the configuration and serves it: `transport` (accept,
//!   connection bound, TLS, HTTP/2, shared with the load generator's bare servers),
//!   `backends` (the one place that picks the store, the audit sink and the rate limiter),
//!   health, reload, shutdown.
//! - [`grpc`]: the tonic services (thin: convert, call the gateway, convert back), `convert`
//!   (every protobuf conversion), the one error-to-status mapping, and the [`client`] side.
//! - [`pb`]: the generated messages and services of `proto/popgate/v1`.
//! - [`console`]: the audit console, HTTPS pages for operators and inspectors over the audit
//!   log (its own http layer; the pages read through `audit::query`).
//!
//! The domain (no tonic below this line):
//! - [`gateway`]: the request pipeline, one file per method; `gateway::changes` is the node's
//!   change feed and the WatchChanges streams it serves.
//! - [`policy`]: clients, roles, methods, field rights and purposes.
//! - [`limits`]: per-client rates behind a `RateBackend` (kept in this process:
//!   `limits::local`; shared by a cluster's nodes through Redis: `limits::shared`), and the
//!   in-flight bound.
//! - [`cache`]: the shared reuse cache, never stale after a write.
//! - [`store`]: the population store behind an async `Store` (a compare-and-swap write decided
//!   by the store), its change log and follow lists behind `ChangeLog` (`store::changes`: the
//!   rule of which changes a follower is sent), and a `Loader` for seeding; `store::sled` is
//!   the embedded backend, `store::postgres` a cluster's (with `coherence`, the caches' leases).
//! - [`audit`]: the durable, hash-chained audit log behind `AuditSink` (files, or a cluster's
//!   database), its signed checkpoints and signing key, verification of either, `audit::query`
//!   (filters, scans, reports, stats over files or the `audit_log` table) for the operator
//!   tools, and `audit::export` (the database's records out as files).
//! - [`metrics`]: the per-client counters that `GetStats` and Prometheus both read, and the
//!   watch on the client certificates in use (expiry gauge and warning, for renewals).
//! - [`identity`]: the server's TLS setup and the caller's certificate (CN, fingerprint,
//!   serial, expiry).
//! - [`pki`]: the dev CA, server and client certificates (two valid per client while a renewal
//!   overlaps), CRLs, CSR signing; it only issues.
//! - [`registry`]: validation of the records written with PutCitizen.
//! - [`pg`]: reaching PostgreSQL (URL, TLS, connections, the schema), for the store and the
//!   audit log of a cluster.
//!
//! Underneath:
//! - [`citizen`]: a citizen's record as the domain holds it (not the wire message).
//! - [`id`]: the 12-digit citizen id; [`fields`]: field names and rights sets;
//!   [`matching`]: Verify's EXACT and LOOSE comparison.
//! - [`config`]: the typed, validated configuration file; [`error`]: the domain error, by
//!   whose fault it is.
//! - [`clock`]: the time every rule reads (rates, cache TTL, audit timers), manual in tests.
//! - [`synth`]: the deterministic synthetic population.
//! - `atomic_file`: whole-or-nothing file writes; `hex`: lowercase hex.

#![forbid(unsafe_code)]

mod atomic_file;
pub mod audit;
pub mod cache;
pub mod citizen;
pub mod cli;
pub mod clock;
pub mod config;
pub mod console;
pub mod error;
pub mod fields;
pub mod gateway;
pub mod grpc;
/// The client side lives with the rest of gRPC; this is its short name.
pub use grpc::client;
mod hex;
pub mod id;
pub mod identity;
pub mod limits;
pub mod matching;
pub mod metrics;
pub mod pg;
pub mod pki;
pub mod policy;
pub mod registry;
pub mod server;
pub mod store;
pub mod synth;

/// Generated from `proto/popgate/v1/gateway.proto` by `build.rs`.
pub mod pb {
    tonic::include_proto!("popgate.v1");

    /// The encoded descriptor set, served by gRPC reflection.
    pub const FILE_DESCRIPTOR_SET: &[u8] =
        include_bytes!(concat!(env!("OUT_DIR"), "/popgate_descriptor.bin"));
}
