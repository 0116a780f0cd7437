//! The reuse cache: decoded records shared by every client, so a question one agency asked is
//! answered again without a store read. Rights are applied after it, never before, so a
//! cached record can serve any caller without releasing a field that caller may not see.
//!
//! Never stale: a `PutCitizen` puts the new version in before it answers. A reader that
//! missed, read the store and then races a Put must not put the old version back: each miss
//! notes its shard's write count, under the shard's lock, before the store is read, and the fill
//! goes in only if no write to that shard happened meanwhile (checked under the same lock, which
//! the Put's insert takes too), and never replaces a newer version.
//!
//! Shape: shards of a `HashMap` (std's keyed SipHash, so callers cannot choose ids that
//! collide) over a ring of slots evicted by CLOCK (second chance): a hit costs a lock, two
//! hashes and a flag — 0.45 µs on a 100k-entry cache here, mostly memory latency, and a miss
//! plus fill 0.55 µs, where moka, used before, cost 1.2 and 10 µs (criterion) and 1.5 µs a call
//! on the gateway's path (perf; `docs/BENCHMARKS.md` §4). CLOCK keeps what is read again and
//! lets one-off reads go, which is what reuse needs; every entry also expires after the TTL.

use std::collections::HashMap;
use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use crate::citizen::Citizen;
use crate::clock::{Clock, Tick};
use crate::id::CitizenId;

/// A cached answer: the record, or `None` for "no such citizen" (kept at most `ttl`).
type Entry = Option<Arc<Citizen>>;

/// At most this many shards; fewer for small capacities, so each shard holds a useful number.
const MAX_SHARDS: usize = 128;
/// Entries per shard below which a capacity gets fewer shards.
const MIN_PER_SHARD: u64 = 64;

pub struct ReuseCache {
    /// Empty when the capacity is 0: every read goes to the store.
    shards: Box<[Mutex<Shard>]>,
    hasher: RandomState,
    ttl: Duration,
    /// Expiry is on the gateway's clock, so a test moves time past the TTL instead of
    /// sleeping through it.
    clock: Clock,
}

struct Slot {
    key: u64,
    entry: Entry,
    expires: Tick,
    /// Read since the clock hand last passed: spared once.
    referenced: bool,
}

struct Shard {
    /// Key → index in `slots`.
    index: HashMap<u64, usize>,
    slots: Vec<Slot>,
    capacity: usize,
    /// The CLOCK hand: the next slot considered for eviction.
    hand: usize,
    /// Writes (Puts) into this shard since start; see the module docs.
    writes: u64,
}

impl Shard {
    fn new(capacity: usize) -> Shard {
        Shard {
            index: HashMap::new(),
            slots: Vec::new(),
            capacity,
            hand: 0,
            writes: 0,
        }
    }

    fn get(&mut self, key: u64, now: Tick) -> Option<&mut Slot> {
        let i = *self.index.get(&key)?;
        let slot = &mut self.slots[i];
        (slot.expires > now).then_some(slot)
    }

    /// Puts `entry` in for `key`, replacing what it had or evicting by CLOCK when full.
    fn put(&mut self, key: u64, entry: Entry, expires: Tick, now: Tick) {
        if let Some(&i) = self.index.get(&key) {
            let slot = &mut self.slots[i];
            slot.entry = entry;
            slot.expires = expires;
            return;
        }
        let slot = Slot {
            key,
            entry,
            expires,
            referenced: false,
        };
        if self.slots.len() < self.capacity {
            self.index.insert(key, self.slots.len());
            self.slots.push(slot);
            return;
        }
        // Each pass clears the flags it passes, so this ends within two turns of the ring.
        loop {
            let i = self.hand;
            self.hand = (self.hand + 1) % self.slots.len();
            let s = &mut self.slots[i];
            if s.referenced && s.expires > now {
                s.referenced = false;
                continue;
            }
            self.index.remove(&s.key);
            *s = slot;
            self.index.insert(key, i);
            return;
        }
    }
}

/// A miss's ticket: which shard, and its write count before the store was read.
#[derive(Debug)]
pub struct ReadTicket {
    id: u64,
    writes_seen: u64,
}

impl ReuseCache {
    pub fn new(capacity: u64, ttl: Duration, clock: Clock) -> ReuseCache {
        let n = (capacity / MIN_PER_SHARD).clamp(1, MAX_SHARDS as u64) as usize;
        let shards = if capacity == 0 {
            Vec::new()
        } else {
            // The remainder goes to the first shards: the total is exactly `capacity`.
            let (each, extra) = (capacity / n as u64, capacity % n as u64);
            (0..n)
                .map(|i| Mutex::new(Shard::new((each + u64::from((i as u64) < extra)) as usize)))
                .collect()
        };
        ReuseCache {
            shards: shards.into_boxed_slice(),
            hasher: RandomState::new(),
            ttl,
            clock,
        }
    }

    fn shard(&self, key: u64) -> MutexGuard<'_, Shard> {
        let i = (self.hasher.hash_one(key) % self.shards.len() as u64) as usize;
        // A panic while holding a shard leaves it consistent (no step of `put` can panic
        // half-way), so a poisoned lock is used as is.
        self.shards[i]
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// The cached answer for `id`, or a ticket to fill it after reading the store.
    pub fn get(&self, id: CitizenId) -> Result<Entry, ReadTicket> {
        let key = id.as_u64();
        if self.shards.is_empty() {
            return Err(ReadTicket {
                id: key,
                writes_seen: 0,
            });
        }
        let mut shard = self.shard(key);
        if let Some(slot) = shard.get(key, self.clock.now()) {
            slot.referenced = true;
            return Ok(slot.entry.clone());
        }
        Err(ReadTicket {
            id: key,
            writes_seen: shard.writes,
        })
    }

    /// Fills the cache with what the store returned for `ticket`, unless a write got there first.
    pub fn fill(&self, ticket: ReadTicket, entry: Entry) {
        if self.shards.is_empty() {
            return;
        }
        let mut shard = self.shard(ticket.id);
        if shard.writes != ticket.writes_seen {
            return;
        }
        let now = self.clock.now();
        if let Some(have) = shard.get(ticket.id, now) {
            match (&have.entry, &entry) {
                (Some(have), Some(new)) if have.version >= new.version => return,
                (Some(_), None) => return,
                _ => {}
            }
        }
        shard.put(ticket.id, entry, now.after(self.ttl), now);
    }

    /// Records a write: call after the store has the new version, before answering.
    pub fn write(&self, citizen: Arc<Citizen>, id: CitizenId) {
        let key = id.as_u64();
        if self.shards.is_empty() {
            return;
        }
        let mut shard = self.shard(key);
        shard.writes += 1;
        let now = self.clock.now();
        shard.put(key, Some(citizen), now.after(self.ttl), now);
    }

    /// Drops `id`'s entry because another node wrote it: a fill racing this is dropped too.
    pub fn invalidate(&self, id: CitizenId) {
        let key = id.as_u64();
        if self.shards.is_empty() {
            return;
        }
        let mut shard = self.shard(key);
        shard.writes += 1;
        if let Some(&i) = shard.index.get(&key) {
            // Expired in place: the CLOCK ring keeps its slot until it is reused.
            shard.slots[i].expires = Tick::ZERO;
            shard.slots[i].entry = None;
        }
    }

    /// Drops everything (a node that may have missed invalidations); fills of reads that
    /// started before are dropped too.
    pub fn clear(&self) {
        for shard in self.shards.iter() {
            let mut s = shard.lock().unwrap_or_else(PoisonError::into_inner);
            s.writes += 1;
            s.index.clear();
            s.slots.clear();
            s.hand = 0;
        }
    }

    /// Entries held now, expired ones not yet replaced included.
    pub fn entry_count(&self) -> u64 {
        self.shards
            .iter()
            .map(|s| s.lock().unwrap_or_else(PoisonError::into_inner).slots.len() as u64)
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(version: u64) -> Arc<Citizen> {
        Arc::new(Citizen {
            version,
            ..crate::synth::citizen_at(1, 0)
        })
    }

    fn cache(capacity: u64, ttl: Duration) -> ReuseCache {
        ReuseCache::new(capacity, ttl, Clock::system())
    }

    fn id(n: u64) -> CitizenId {
        CitizenId::parse(&format!("001203{n:06}"), 2026).unwrap()
    }

    #[test]
    fn a_fill_that_raced_a_write_is_dropped() {
        let cache = cache(100, Duration::from_secs(60));
        let id = id(12345);
        let ticket = cache.get(id).unwrap_err();
        // A Put lands version 2 while the reader was reading version 1 from the store.
        cache.write(rec(2), id);
        cache.fill(ticket, Some(rec(1)));
        assert_eq!(cache.get(id).unwrap().unwrap().version, 2);
    }

    #[test]
    fn a_fill_never_replaces_a_newer_version() {
        let cache = cache(100, Duration::from_secs(60));
        let id = id(12345);
        cache.write(rec(3), id);
        // A ticket taken after the write (so the write count matches) carrying an older read.
        let ticket = ReadTicket {
            id: id.as_u64(),
            writes_seen: 1,
        };
        cache.fill(ticket, Some(rec(2)));
        assert_eq!(cache.get(id).unwrap().unwrap().version, 3);
    }

    #[test]
    fn a_write_replaces_a_cached_not_found() {
        let cache = cache(100, Duration::from_secs(60));
        let id = id(12345);
        let ticket = cache.get(id).unwrap_err();
        cache.fill(ticket, None);
        assert!(cache.get(id).unwrap().is_none());
        cache.write(rec(1), id);
        assert_eq!(cache.get(id).unwrap().unwrap().version, 1);
    }

    #[test]
    fn capacity_zero_caches_nothing() {
        let cache = cache(0, Duration::from_secs(60));
        let id = id(12345);
        let t = cache.get(id).unwrap_err();
        cache.fill(t, Some(rec(1)));
        cache.write(rec(2), id);
        assert!(cache.get(id).is_err());
        assert_eq!(cache.entry_count(), 0);
    }

    #[test]
    fn invalidate_and_clear_drop_entries_and_racing_fills() {
        let cache = cache(100, Duration::from_secs(60));
        let (a, b) = (id(1), id(2));
        cache.write(rec(1), a);
        cache.write(rec(1), b);
        let ticket = cache.get(id(3)).unwrap_err();
        cache.invalidate(a);
        assert!(cache.get(a).is_err());
        assert!(cache.get(b).is_ok());
        let late = cache.get(a).unwrap_err();
        cache.clear();
        assert!(cache.get(b).is_err());
        // Reads that started before the clear do not put their answers back.
        cache.fill(ticket, Some(rec(1)));
        cache.fill(late, Some(rec(1)));
        assert!(cache.get(id(3)).is_err() && cache.get(a).is_err());
        assert_eq!(cache.entry_count(), 0);
    }

    #[test]
    fn entries_expire_after_the_ttl() {
        let (clock, manual) = Clock::manual();
        let cache = ReuseCache::new(100, Duration::from_secs(300), clock);
        let id = id(1);
        cache.write(rec(1), id);
        manual.advance(Duration::from_secs(299));
        assert!(cache.get(id).is_ok(), "expired before the TTL");
        manual.advance(Duration::from_secs(1));
        assert!(cache.get(id).is_err(), "served past the TTL");
    }

    #[test]
    fn the_capacity_is_exact_and_read_entries_survive_eviction() {
        for capacity in [1u64, 50, 64, 1000, 12_345] {
            let cache = cache(capacity, Duration::from_secs(60));
            for n in 0..capacity * 3 {
                cache.write(rec(1), id(n));
                // Id 0 is read after every insert: CLOCK always spares it.
                if capacity > 1 {
                    assert!(
                        cache.get(id(0)).is_ok(),
                        "capacity {capacity}: lost id 0 at {n}"
                    );
                }
            }
            assert_eq!(cache.entry_count(), capacity);
        }
    }
}
