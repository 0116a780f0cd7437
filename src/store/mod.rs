//! The population store: where citizen records live.
//!
//! The gateway talks only to [`Store`]: read a record, write one with a compare-and-swap on its
//! version that the *store* decides, count them, and say whether it can answer at all. Seeding
//! goes through a separate [`Loader`], so bulk loading never sits on the serving trait. Which
//! backend runs is decided once, from `[store]`, in `server::backends`.
//!
//! The store knows nothing of rights, caching or auditing — except that a write asks a
//! [`BeforeCommit`] for approval between deciding and committing: that is how the gateway
//! makes a write's audit record durable before the write can be seen, while the version check
//! stays the store's.
//!
//! - [`sled`]: the embedded store on disk (the default, no set-up).
//! - [`postgres`]: PostgreSQL, shared by the nodes of a cluster.
//! - [`changes`]: the change log and the follow lists behind [`ChangeLog`], which both
//!   backends implement beside [`Store`].
//! - `encoding`: the record's bytes on disk, independent of the gRPC messages.

pub mod changes;
mod encoding;
pub mod postgres;
pub mod sled;

use async_trait::async_trait;
use thiserror::Error;

use crate::citizen::Citizen;
use crate::id::CitizenId;

pub use self::changes::ChangeLog;
pub use self::sled::SledStore;

/// Failures of the store: all of them ours, not the caller's. Messages never carry a citizen
/// id, since they reach the process log, where an id is personal data.
#[derive(Debug, Clone, Error)]
pub enum StoreError {
    /// Reading or writing failed (I/O, a lost connection): the store cannot answer now.
    #[error("population store unavailable: {0}")]
    Unavailable(String),
    /// A stored record cannot be decoded: damage an operator must look at.
    #[error("population store holds an undecodable record: {0}")]
    Corrupt(String),
    /// At start-up: the store cannot be opened.
    #[error("cannot open the population store at {path}: {reason}")]
    Open { path: String, reason: String },
}

/// The result of a conditional write.
#[derive(Debug, Clone, PartialEq)]
pub enum PutOutcome {
    /// Written and durable; the stored record, with its new version.
    Written(Box<Citizen>),
    /// `expected_version` was 0 but the id exists.
    AlreadyExists { current: u64 },
    /// `expected_version` is not the current version (0 = the record does not exist).
    VersionMismatch { current: u64 },
    /// The [`BeforeCommit`] refused: nothing was written.
    Vetoed,
}

/// A refusal from [`BeforeCommit::approve`]; the approver keeps its own reason.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Vetoed;

/// Asked by [`Store::put`] once the store has decided that a write goes ahead, before it is
/// committed: the record carries the version it will have. Approving may take time (an audit
/// sync); the store holds the id meanwhile, so no other write to it can be decided in between.
#[async_trait]
pub trait BeforeCommit: Send + Sync {
    async fn approve(&self, record: &Citizen) -> Result<(), Vetoed>;
}

/// A population store. Implementations are shared by every call.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// The record for `id`, if any.
    async fn get(&self, id: CitizenId) -> Result<Option<Citizen>, StoreError>;

    /// Writes `record` when the current version is `expected_version` (0 = must not exist),
    /// with `version` = current + 1, after `before_commit` approved it. The check and the
    /// write are one step for the store: of two writers racing on the same version, one
    /// succeeds and the other gets [`PutOutcome::VersionMismatch`]. Durable when it returns
    /// [`PutOutcome::Written`].
    async fn put(
        &self,
        record: Citizen,
        expected_version: u64,
        before_commit: &dyn BeforeCommit,
    ) -> Result<PutOutcome, StoreError>;

    /// How many citizens the store holds (cheap: kept, not counted per call).
    async fn count(&self) -> Result<u64, StoreError>;

    /// Whether the store can answer now; the health probe while it could not.
    async fn check(&self) -> Result<(), StoreError>;

    /// Whether this process may answer from its reuse cache now. A store that other processes
    /// write says no while it cannot be sure to hear of their writes.
    fn may_cache(&self) -> bool {
        true
    }

    /// The store's own view of whether it can serve, for stores that watch their connection;
    /// `None` for one that only knows when a call fails.
    fn health(&self) -> Option<tokio::sync::watch::Receiver<bool>> {
        None
    }

    /// For a store shared by the nodes of a cluster: how many nodes are in it now.
    fn members(&self) -> Option<tokio::sync::watch::Receiver<usize>> {
        None
    }

    /// At shutdown, after the last call: leave the cluster, so that no other node waits for
    /// this one. Nothing to do for a store of one process.
    async fn leave(&self) {}
}

/// Bulk loading for seeding: many records at once, made durable by [`Loader::flush`].
/// Existing ids are overwritten. Called from several threads at once.
pub trait Loader: Send + Sync {
    fn load(&self, records: &[Citizen]) -> Result<(), StoreError>;
    fn flush(&self) -> Result<(), StoreError>;
    /// How many citizens the store holds.
    fn count(&self) -> Result<u64, StoreError>;
}
