//! The tonic services: thin handlers that take the caller from the connection, call the
//! [`Gateway`](crate::gateway::Gateway) and convert its answer. No rule lives here.
//!
//! - [`client`]: the client side, an mTLS channel to a gateway (CLI, tests, load generator).
//! - [`convert`]: every conversion between protobuf messages and the domain's types.
//! - `status`: the one place domain errors become gRPC statuses.
//! - `identity_gateway`: Lookup, Verify and their streams (role "agency").
//! - `registry`: PutCitizen (role "registry").
//! - `operator`: GetStats (role "operator").

pub mod client;
pub mod convert;
pub(crate) mod identity_gateway;
pub(crate) mod operator;
pub(crate) mod registry;
pub(crate) mod status;

use std::sync::Arc;

use tonic::{Request, Status};

use crate::identity::Peer;

/// The caller's certificate identity, attached to every request by the TLS acceptor.
fn peer<T>(req: &Request<T>) -> Result<Arc<Peer>, Status> {
    req.extensions()
        .get::<Arc<Peer>>()
        .cloned()
        .ok_or_else(|| Status::unauthenticated("a client certificate is required (mTLS)"))
}
