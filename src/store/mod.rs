//! The population store: where citizen records live.
//!
//! [`Store`] is the seam where a replicated or remote store will slot in later; the gateway
//! only ever talks to the trait. [`SledStore`] is the embedded implementation on disk.
//! The store knows nothing of rights, caching or auditing.

mod sled_store;

pub use sled_store::SledStore;

/// The smallest default page cache, in MiB of on-disk bytes: about 450,000 records hot. Also
/// the default where the memory size cannot be read.
pub const MIN_DEFAULT_CACHE_MIB: u64 = 256;
/// The largest page cache `[store] cache_mib` takes (1 TiB).
pub const MAX_CACHE_MIB: u64 = 1024 * 1024;

const MIB: u64 = 1024 * 1024;

/// The default of `[store] cache_mib`: a quarter of the memory this process may use (its
/// cgroup's limit where there is one, else the machine's), and at least
/// [`MIN_DEFAULT_CACHE_MIB`]. sled fills the cache only as records are read, so a small store
/// stays small; a large one (about 580 MiB on disk per million citizens) is served from memory
/// as far as a quarter of the host allows, without the operator having to size it. Measured:
/// a 10M store read at 72% of a 100k store's speed with a 256 MiB cache, 97% with 8 GiB.
pub fn default_cache_mib() -> u64 {
    let meminfo = std::fs::read_to_string("/proc/meminfo").ok();
    let cgroup = [
        "/sys/fs/cgroup/memory.max",
        "/sys/fs/cgroup/memory/memory.limit_in_bytes",
    ]
    .iter()
    .find_map(|p| std::fs::read_to_string(p).ok());
    default_cache_mib_for(meminfo.as_deref(), cgroup.as_deref())
}

/// [`default_cache_mib`] from the text of `/proc/meminfo` and of the cgroup's memory limit.
fn default_cache_mib_for(meminfo: Option<&str>, cgroup_limit: Option<&str>) -> u64 {
    let total = meminfo.and_then(|m| {
        m.lines()
            .find_map(|l| l.strip_prefix("MemTotal:"))
            .and_then(|v| v.trim().strip_suffix("kB"))
            .and_then(|kb| kb.trim().parse::<u64>().ok())
            .map(|kb| kb.saturating_mul(1024))
    });
    // cgroup v2 says `max` for no limit; v1 says a huge number, which `min` disposes of.
    let limit = cgroup_limit.and_then(|l| l.trim().parse::<u64>().ok());
    let usable = match (total, limit) {
        (Some(t), Some(l)) => t.min(l),
        (t, l) => match t.or(l) {
            Some(b) => b,
            None => return MIN_DEFAULT_CACHE_MIB,
        },
    };
    (usable / 4 / MIB).clamp(MIN_DEFAULT_CACHE_MIB, MAX_CACHE_MIB)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_cache_is_a_quarter_of_the_usable_memory_and_at_least_the_minimum() {
        let meminfo = "MemTotal:       24683656 kB\nMemFree:        17437900 kB\n";
        // 24,683,656 kB / 4 = 6,026 MiB.
        assert_eq!(default_cache_mib_for(Some(meminfo), None), 6026);
        assert_eq!(default_cache_mib_for(Some(meminfo), Some("max\n")), 6026);
        // A cgroup limit below the machine's memory is what the process may use.
        assert_eq!(
            default_cache_mib_for(Some(meminfo), Some("4294967296\n")),
            1024
        );
        // cgroup v1 without a limit.
        assert_eq!(
            default_cache_mib_for(Some(meminfo), Some("9223372036854771712\n")),
            6026
        );
        // Small machines and unreadable figures get the minimum.
        assert_eq!(
            default_cache_mib_for(Some("MemTotal: 524288 kB\n"), None),
            MIN_DEFAULT_CACHE_MIB
        );
        assert_eq!(default_cache_mib_for(None, None), MIN_DEFAULT_CACHE_MIB);
        assert_eq!(
            default_cache_mib_for(Some("garbage"), Some("also garbage")),
            MIN_DEFAULT_CACHE_MIB
        );
        assert_eq!(default_cache_mib_for(None, Some("2147483648")), 512);
        assert!((MIN_DEFAULT_CACHE_MIB..=MAX_CACHE_MIB).contains(&default_cache_mib()));
    }
}

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
