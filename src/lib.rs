//! popgate: a gRPC gateway with mTLS between agencies and a national population database.
//!
//! Map of the crate (one module per concern). A request flows
//! `server` (TCP, TLS) → `grpc` (thin handlers) → `gateway` (identity → `policy` → `limits` →
//! `cache`/`store` → `audit` → answer):
//!
//! - [`pb`]: the generated protobuf messages and tonic services of `proto/popgate/v1`.
//! - [`server`]: wiring: accept loop, TLS, HTTP/2 limits, services, reload, shutdown.
//! - [`grpc`]: the tonic services and the one error-to-status mapping; no rules live there.
//! - [`gateway`]: the domain pipeline of every call; never imports tonic.
//! - [`identity`]: TLS setup and the caller's certificate (CN, fingerprint, serial).
//! - [`policy`]: clients, roles, field rights and purposes.
//! - [`limits`]: per-client rate limits and the in-flight bound.
//! - [`cache`]: the shared reuse cache, never stale after a write.
//! - [`store`]: the population store trait and its sled implementation.
//! - [`audit`]: the durable, hash-chained audit log and its operator tools.
//! - [`registry`]: validation of records written with PutCitizen.
//! - [`fields`]: Citizen field names, rights sets and projection.
//! - [`matching`]: Verify's EXACT and LOOSE comparison of claims.
//! - [`id`]: the 12-digit citizen id: parsing, validation, province codes.
//! - [`config`]: the typed, validated configuration file.
//! - [`error`]: the domain error, classified by whose fault it is.
//! - [`stats`]: counters for GetStats; [`metrics`]: Prometheus metrics.
//! - [`pki`]: the dev CA, server and client certificates, CRLs, CSR signing; it only issues.
//! - `atomic_file`: whole-or-nothing file writes, for `pki` and the audit signing key;
//!   `hex`: lowercase hex of hashes, fingerprints and signatures.
//! - [`synth`]: the deterministic synthetic population.
//! - [`client`]: an mTLS client for the CLI, the tests and the load generator (the
//!   `popgate-bench` package of this workspace, which uses this library).
//! - [`cli`]: the `popgate` command line, one file per subcommand.

#![forbid(unsafe_code)]

mod atomic_file;
pub mod audit;
pub mod cache;
pub mod citizen;
pub mod cli;
pub mod client;
pub mod clock;
pub mod config;
pub mod error;
pub mod fields;
pub mod gateway;
pub mod grpc;
mod hex;
pub mod id;
pub mod identity;
pub mod limits;
pub mod matching;
pub mod metrics;
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
