//! popgate: a gRPC gateway with mTLS between agencies and a national population database.
//!
//! Map of the crate (one module per concern):
//! - [`pb`]: the generated protobuf messages and tonic services of `proto/popgate/v1`.
//! - [`cli`]: the `popgate` command line, one file per subcommand.
//! - [`config`]: the typed, validated configuration file.
//! - [`fields`]: Citizen field names, rights sets and projection.
//! - [`id`]: the 12-digit citizen id: parsing, validation, province codes.
//! - [`matching`]: Verify's EXACT and LOOSE comparison of claims.
//! - [`store`]: the population store trait and its sled implementation.

#![forbid(unsafe_code)]

#[path = "audit_stub.rs"]
pub mod audit;
pub mod cache;
pub mod cli;
pub mod client;
pub mod config;
pub mod error;
pub mod fields;
pub mod gateway;
pub mod grpc;
pub mod id;
pub mod identity;
pub mod limits;
pub mod matching;
pub mod metrics;
pub mod policy;
pub mod registry;
pub mod server;
pub mod stats;
pub mod store;

/// Generated from `proto/popgate/v1/gateway.proto` by `build.rs`.
pub mod pb {
    tonic::include_proto!("popgate.v1");

    /// The encoded descriptor set, served by gRPC reflection.
    pub const FILE_DESCRIPTOR_SET: &[u8] =
        include_bytes!(concat!(env!("OUT_DIR"), "/popgate_descriptor.bin"));
}
