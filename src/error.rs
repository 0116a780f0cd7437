//! The domain's error: what went wrong and whose fault it is.
//!
//! Handlers never build gRPC statuses themselves: `grpc::status` maps this enum in one place.
//! Messages are shown to callers and written (as `reason`) to the audit log, so they never
//! contain personal data — at most a citizen id, a field name or a code.

use std::time::Duration;

use thiserror::Error;

#[derive(Debug, Clone, Error)]
pub enum Error {
    // The caller's fault: the request cannot succeed as sent.
    #[error("{0}")]
    InvalidArgument(String),
    #[error("{0}")]
    PermissionDenied(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    AlreadyExists(String),
    /// A write lost an optimistic-concurrency race: re-read and retry.
    #[error("{0}")]
    Aborted(String),
    /// The request cannot succeed in the system's current state, and retrying it as it is
    /// will not help (a change stream resumed from before the oldest kept change).
    #[error("{0}")]
    FailedPrecondition(String),
    /// Over the client's rate; capacity returns after `retry_after`.
    #[error("rate limit exceeded for client {client}: retry after {} ms", retry_after.as_millis())]
    RateLimited {
        client: String,
        retry_after: Duration,
    },

    // Ours: the request may succeed later.
    /// The gateway cannot serve safely now (audit log down, overloaded).
    #[error("{0}")]
    Unavailable(String),
    #[error("internal error: {0}")]
    Internal(String),
}
