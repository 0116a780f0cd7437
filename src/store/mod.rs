//! The population store: where citizen records live.
//!
//! [`Store`] is the seam where a replicated or remote store will slot in later; the gateway
//! only ever talks to the trait. [`SledStore`] is the embedded implementation on disk.
//! The store knows nothing of rights, caching or auditing.

mod sled_store;

pub use sled_store::SledStore;

/// sled's page cache by default, in MiB of on-disk bytes: about 450,000 records hot.
pub const DEFAULT_CACHE_MIB: u64 = 256;

use thiserror::Error;

use crate::id::CitizenId;
use crate::pb::Citizen;

/// Failures of the store. All of them are ours, not the caller's, except the two
/// optimistic-concurrency outcomes, which [`PutOutcome`] reports instead of an error.
#[derive(Debug, Error)]
pub enum StoreError {
    #[error("population store I/O failed: {0}")]
    Io(#[from] sled::Error),
    // The key is kept for the caller but left out of the message, which reaches the process
    // log: a citizen id is personal data there.
    #[error("population store holds an undecodable record: {source}")]
    Corrupt {
        key: u64,
        source: prost::DecodeError,
    },
    // `cause`, not `source`: the message carries it (for `to_string()` users) and a chain
    // printer does not repeat it.
    #[error("cannot open the population store at {path}: {cause}")]
    Open { path: String, cause: sled::Error },
}

/// The result of a conditional write.
#[derive(Debug, Clone, PartialEq)]
pub enum PutOutcome {
    /// Written and durable; carries the stored record (with its new version).
    Written(Box<Citizen>),
    /// `expected_version` was 0 but the id exists.
    AlreadyExists { current: u64 },
    /// `expected_version` did not match the current version (0 = the record does not exist).
    VersionMismatch { current: u64 },
}

/// A population store. Implementations must be safe to share between threads.
pub trait Store: Send + Sync + 'static {
    /// The record for `id`, if any.
    fn get(&self, id: CitizenId) -> Result<Option<Citizen>, StoreError>;

    /// Writes `citizen` when the current version is `expected_version` (0 = must not exist),
    /// setting `version` to current + 1. `citizen.updated_at` is set by the caller. Durable
    /// (on disk) before it returns `Written`.
    fn put(
        &self,
        id: CitizenId,
        citizen: Citizen,
        expected_version: u64,
    ) -> Result<PutOutcome, StoreError>;

    /// Loads many new records at once, not durable until [`Store::flush`]; for seeding.
    /// Existing ids are overwritten.
    fn load_batch(&self, records: &[(CitizenId, Citizen)]) -> Result<(), StoreError>;

    /// Makes everything written so far durable.
    fn flush(&self) -> Result<(), StoreError>;

    /// How many citizens the store holds (kept as a counter, not counted per call).
    fn len(&self) -> u64;

    fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
