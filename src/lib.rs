//! popgate: a gRPC gateway with mTLS between agencies and a national population database.
//!
//! Map of the crate (one module per concern):
//! - [`pb`]: the generated protobuf messages and tonic services of `proto/popgate/v1`.
//! - [`cli`]: the `popgate` command line, one file per subcommand.
//! - [`id`]: the 12-digit citizen id: parsing, validation, province codes.
//! - [`store`]: the population store trait and its sled implementation.
//! - [`audit`]: the hash-chained, signed audit log: writer with group commit, recovery, verify.

#![forbid(unsafe_code)]

pub mod audit;
pub mod cli;
pub mod id;
pub mod store;

/// Generated from `proto/popgate/v1/gateway.proto` by `build.rs`.
pub mod pb {
    tonic::include_proto!("popgate.v1");

    /// The encoded descriptor set, served by gRPC reflection.
    pub const FILE_DESCRIPTOR_SET: &[u8] =
        include_bytes!(concat!(env!("OUT_DIR"), "/popgate_descriptor.bin"));
}
