//! The sled implementation of [`Store`].
//!
//! Key: the id as a big-endian u64. Value: the prost-encoded `Citizen`. sled flushes only
//! every 500 ms on its own, so a conditional put flushes before it answers: an acknowledged
//! write survives a crash. The record count is kept in memory (sled's `len()` walks the whole
//! tree: ~0.7 s for 1M records) and counted once at open.

use std::path::Path;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use prost::Message;

use super::{PutOutcome, Store, StoreError};
use crate::id::CitizenId;
use crate::pb::Citizen;

pub struct SledStore {
    db: sled::Db,
    tree: sled::Tree,
    count: AtomicU64,
    /// Serialises conditional puts: compare-and-swap on sled would do it lock-free, but puts
    /// are rare next to reads and each one waits for a flush anyway.
    write_lock: Mutex<()>,
}

impl SledStore {
    /// Opens with the default page cache ([`super::default_cache_mib`]).
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        Self::open_with_cache(path, super::default_cache_mib())
    }

    /// Opens with a page cache of `cache_mib` MiB of on-disk bytes (`[store] cache_mib`).
    pub fn open_with_cache(path: &Path, cache_mib: u64) -> Result<Self, StoreError> {
        let db = Self::open_db(path, cache_mib.saturating_mul(1024 * 1024))?;
        let tree = db.open_tree("citizens")?;
        let count = tree.len() as u64;
        Ok(SledStore {
            db,
            tree,
            count: AtomicU64::new(count),
            write_lock: Mutex::new(()),
        })
    }

    /// Opens the sled database. sled locks its folder, and a handle dropped a moment ago may
    /// still hold the lock while sled's flusher thread winds down, so a lock conflict is
    /// retried for a short while before it is reported.
    fn open_db(path: &Path, cache_bytes: u64) -> Result<sled::Db, StoreError> {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(3);
        loop {
            match sled::Config::new()
                .path(path)
                .cache_capacity(cache_bytes)
                .open()
            {
                Ok(db) => return Ok(db),
                Err(e)
                    if e.to_string().contains("could not acquire lock")
                        && std::time::Instant::now() < deadline =>
                {
                    std::thread::sleep(std::time::Duration::from_millis(20));
                }
                Err(cause) => {
                    return Err(StoreError::Open {
                        path: path.display().to_string(),
                        cause,
                    });
                }
            }
        }
    }

    fn decode(key: u64, bytes: &[u8]) -> Result<Citizen, StoreError> {
        Citizen::decode(bytes).map_err(|source| StoreError::Corrupt { key, source })
    }
}

impl Store for SledStore {
    fn get(&self, id: CitizenId) -> Result<Option<Citizen>, StoreError> {
        match self.tree.get(id.key())? {
            Some(bytes) => Ok(Some(Self::decode(id.as_u64(), &bytes)?)),
            None => Ok(None),
        }
    }

    fn put(
        &self,
        id: CitizenId,
        mut citizen: Citizen,
        expected_version: u64,
    ) -> Result<PutOutcome, StoreError> {
        let _guard = self.write_lock.lock().unwrap_or_else(|e| e.into_inner());
        let existing = self.tree.get(id.key())?;
        let exists = existing.is_some();
        let current = match existing {
            Some(bytes) => Self::decode(id.as_u64(), &bytes)?.version,
            None => 0,
        };
        if expected_version == 0 && exists {
            return Ok(PutOutcome::AlreadyExists { current });
        }
        if expected_version != current {
            return Ok(PutOutcome::VersionMismatch { current });
        }
        citizen.version = current + 1;
        self.tree.insert(id.key(), citizen.encode_to_vec())?;
        self.db.flush()?;
        if !exists {
            self.count.fetch_add(1, Ordering::Relaxed);
        }
        Ok(PutOutcome::Written(Box::new(citizen)))
    }

    fn load_batch(&self, records: &[(CitizenId, Citizen)]) -> Result<(), StoreError> {
        // Plain inserts rather than `apply_batch`: a sled batch holds a global write lock, so
        // concurrent loaders would queue behind one another, and `insert` returns the previous
        // value, which tells new ids from overwritten ones without a second lookup per record.
        // Seeding needs neither atomicity nor durability before `flush`.
        let mut new = 0;
        for (id, citizen) in records {
            let previous = self.tree.insert(id.key(), citizen.encode_to_vec())?;
            new += u64::from(previous.is_none());
        }
        self.count.fetch_add(new, Ordering::Relaxed);
        Ok(())
    }

    fn flush(&self) -> Result<(), StoreError> {
        self.db.flush()?;
        Ok(())
    }

    fn len(&self) -> u64 {
        self.count.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn citizen(id: &str, name: &str) -> Citizen {
        Citizen {
            citizen_id: id.into(),
            full_name: name.into(),
            ..Default::default()
        }
    }

    #[test]
    fn conditional_puts_and_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let id = CitizenId::parse("001203012345", 2026).unwrap();
        {
            let store = SledStore::open(dir.path()).unwrap();
            assert_eq!(store.get(id).unwrap(), None);
            assert_eq!(
                store.put(id, citizen("001203012345", "A"), 1).unwrap(),
                PutOutcome::VersionMismatch { current: 0 }
            );
            let PutOutcome::Written(c) = store.put(id, citizen("001203012345", "A"), 0).unwrap()
            else {
                panic!("create failed")
            };
            assert_eq!(c.version, 1);
            assert_eq!(
                store.put(id, citizen("001203012345", "B"), 0).unwrap(),
                PutOutcome::AlreadyExists { current: 1 }
            );
            assert_eq!(
                store.put(id, citizen("001203012345", "B"), 2).unwrap(),
                PutOutcome::VersionMismatch { current: 1 }
            );
            assert!(matches!(
                store.put(id, citizen("001203012345", "B"), 1).unwrap(),
                PutOutcome::Written(_)
            ));
            assert_eq!(store.len(), 1);
        }
        let store = SledStore::open(dir.path()).unwrap();
        let got = store.get(id).unwrap().unwrap();
        assert_eq!((got.full_name.as_str(), got.version), ("B", 2));
        assert_eq!(store.len(), 1);
    }
}

#[cfg(test)]
mod reopen_tests {
    use super::*;

    #[test]
    fn reopening_right_after_a_drop_works() {
        let dir = tempfile::tempdir().unwrap();
        for _ in 0..20 {
            let store = SledStore::open(dir.path()).unwrap();
            store.flush().unwrap();
            drop(store);
        }
    }
}
