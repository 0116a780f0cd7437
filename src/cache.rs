//! The reuse cache: decoded records shared by every client, so a question one agency asked is
//! answered again without a store read. Rights are applied after it, never before, so a
//! cached record can serve any caller without releasing a field that caller may not see.
//!
//! Never stale: a `PutCitizen` puts the new version in before it answers. A reader that
//! missed, read the store and then races a Put must not put the old version back: each read
//! notes the write counter of its id's stripe before reading the store and inserts only if no
//! write to that stripe happened meanwhile (checked under moka's per-key entry lock, which the
//! Put's insert takes too), and never replaces a newer version.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use moka::ops::compute::Op;
use moka::sync::Cache;

use crate::id::CitizenId;
use crate::pb::Citizen;

/// A cached answer: the record, or `None` for "no such citizen" (kept at most `ttl`).
type Entry = Option<Arc<Citizen>>;

const STRIPES: usize = 4096;

pub struct ReuseCache {
    /// `None` when the capacity is 0: every read goes to the store.
    cache: Option<Cache<u64, Entry>>,
    /// Writes per stripe of ids; see the module docs.
    writes: Box<[AtomicU64]>,
}

/// A read's ticket: the stripe's write count seen before reading the store.
#[derive(Debug)]
pub struct ReadTicket {
    id: u64,
    writes_seen: u64,
}

impl ReuseCache {
    pub fn new(capacity: u64, ttl: Duration) -> ReuseCache {
        let cache = (capacity > 0).then(|| {
            Cache::builder()
                .max_capacity(capacity)
                .time_to_live(ttl)
                .build()
        });
        ReuseCache {
            cache,
            writes: (0..STRIPES).map(|_| AtomicU64::new(0)).collect(),
        }
    }

    fn stripe(&self, id: u64) -> &AtomicU64 {
        &self.writes[(id % STRIPES as u64) as usize]
    }

    /// The cached answer for `id`, or a ticket to fill it after reading the store.
    pub fn get(&self, id: CitizenId) -> Result<Entry, ReadTicket> {
        let key = id.as_u64();
        // Take the ticket before looking, so a write between the miss and the store read
        // is seen.
        let ticket = ReadTicket {
            id: key,
            writes_seen: self.stripe(key).load(Ordering::Acquire),
        };
        match self.cache.as_ref().and_then(|c| c.get(&key)) {
            Some(entry) => Ok(entry),
            None => Err(ticket),
        }
    }

    /// Fills the cache with what the store returned for `ticket`, unless a write got there first.
    pub fn fill(&self, ticket: ReadTicket, entry: Entry) {
        let Some(cache) = &self.cache else { return };
        let stripe = self.stripe(ticket.id);
        cache.entry(ticket.id).and_compute_with(|current| {
            if stripe.load(Ordering::Acquire) != ticket.writes_seen {
                return Op::Nop;
            }
            match (current.as_ref().map(|e| e.value()), &entry) {
                (Some(Some(have)), Some(new)) if have.version >= new.version => Op::Nop,
                (Some(Some(_)), None) => Op::Nop,
                _ => Op::Put(entry.clone()),
            }
        });
    }

    /// Records a write: call after the store has the new version, before answering.
    pub fn write(&self, citizen: Arc<Citizen>, id: CitizenId) {
        let key = id.as_u64();
        let stripe = self.stripe(key);
        match &self.cache {
            Some(cache) => {
                cache.entry(key).and_compute_with(|_| {
                    stripe.fetch_add(1, Ordering::AcqRel);
                    Op::Put(Some(citizen))
                });
            }
            None => {
                stripe.fetch_add(1, Ordering::AcqRel);
            }
        }
    }

    /// Applies evictions and expirations moka has queued (it does so lazily); for tests and
    /// exact entry counts.
    pub fn run_pending_tasks(&self) {
        if let Some(c) = &self.cache {
            c.run_pending_tasks();
        }
    }

    /// Entries held now (approximate: moka counts lazily).
    pub fn entry_count(&self) -> u64 {
        self.cache.as_ref().map_or(0, |c| c.entry_count())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(version: u64) -> Arc<Citizen> {
        Arc::new(Citizen {
            citizen_id: "001203012345".into(),
            version,
            ..Default::default()
        })
    }

    #[test]
    fn a_fill_that_raced_a_write_is_dropped() {
        let cache = ReuseCache::new(100, Duration::from_secs(60));
        let id = CitizenId::parse("001203012345", 2026).unwrap();
        let ticket = cache.get(id).unwrap_err();
        // A Put lands version 2 while the reader was reading version 1 from the store.
        cache.write(rec(2), id);
        cache.fill(ticket, Some(rec(1)));
        assert_eq!(cache.get(id).unwrap().unwrap().version, 2);
    }

    #[test]
    fn a_write_replaces_a_cached_not_found() {
        let cache = ReuseCache::new(100, Duration::from_secs(60));
        let id = CitizenId::parse("001203012345", 2026).unwrap();
        let ticket = cache.get(id).unwrap_err();
        cache.fill(ticket, None);
        assert!(cache.get(id).unwrap().is_none());
        cache.write(rec(1), id);
        assert_eq!(cache.get(id).unwrap().unwrap().version, 1);
    }

    #[test]
    fn capacity_zero_caches_nothing() {
        let cache = ReuseCache::new(0, Duration::from_secs(60));
        let id = CitizenId::parse("001203012345", 2026).unwrap();
        let t = cache.get(id).unwrap_err();
        cache.fill(t, Some(rec(1)));
        assert!(cache.get(id).is_err());
    }
}
