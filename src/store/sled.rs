//! The embedded store on disk: sled, no set-up, one process.
//!
//! Key: the id as a big-endian u64 (keys sort like ids). Value: the record's encoding
//! (`super::encoding`). sled flushes only every 500 ms on its own, so a write flushes before it
//! answers: an acknowledged write survives a crash. The record count is kept in memory (sled's
//! `len()` walks the whole tree: ~0.7 s for 1M records) and counted once at open.
//!
//! An I/O error sticks in sled (every later write fails with it), so after one the store is
//! reopened by the health probe ([`Store::check`]) once the disk works again.
//!
//! Writes to one id are decided under that id's stripe lock, held from reading the current
//! version through the approval to the flush, so the version check and the write are one step.
//! sled locks its folder: no other process can open the same store, so a lock in this process
//! is the store's own.
//!
//! The change log (`super::changes`) lives in the same database: tree `changes` (key: the seq,
//! big-endian, so keys sort in log order), written in one sled transaction with the record and
//! the log's head (tree `meta`). Seqs are drawn and applied under one lock (`State::log`), held
//! only for that in-memory transaction, so the log is applied in seq order; the flush after it
//! makes every earlier write durable too, so the horizon (what readers may see) is the highest
//! seq whose writer has flushed. Follow lists: tree `follows` keyed `client|id` and its mirror
//! `followers` keyed `id|client` (so a change finds its followers with one prefix scan), both
//! holding the follow's spans, written in one transaction with the client's count in `meta`.
//! Tree `closed` indexes the spans that ended by where they ended (`until|id|client`), so that
//! retention drops the spans that can carry no kept change without reading every follow list.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use arc_swap::ArcSwapOption;
use async_trait::async_trait;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use sled::Transactional;
use sled::transaction::{ConflictableTransactionError, TransactionError};
use tokio::sync::watch;

use super::changes::{
    Carried, Change, ChangeLog, FOLLOW_STEP, Fanned, FollowOutcome, OPEN, Span, advance,
    decode_spans, encode_spans,
};
use super::{BeforeCommit, Loader, PutOutcome, Store, StoreError, encoding};
use crate::citizen::Citizen;
use crate::clock::Clock;
use crate::fields::FieldSet;
use crate::id::CitizenId;
use crate::registry;

/// The smallest default page cache, in MiB of on-disk bytes: about 450,000 records hot. Also
/// the default where the memory size cannot be read.
pub const MIN_DEFAULT_CACHE_MIB: u64 = 256;
/// The largest page cache `[store] cache_mib` takes (1 TiB).
pub const MAX_CACHE_MIB: u64 = 1024 * 1024;

const MIB: u64 = 1024 * 1024;

/// Stripes of per-id write locks: writers of different ids rarely wait for one another.
const WRITE_STRIPES: usize = 256;

pub struct SledStore {
    state: Arc<State>,
    write_locks: Box<[tokio::sync::Mutex<()>]>,
    /// Stamps each change's commit time, which retention compares (a test's manual clock).
    clock: Clock,
}

/// `meta` key of the change log's head: the last seq applied.
const HEAD: &[u8] = b"head";
/// `meta` key prefix of a client's follow count.
const FOLLOWING: &[u8] = b"following|";

/// What a reopen, which runs on a blocking thread, needs to share with the store.
struct State {
    path: PathBuf,
    cache_bytes: u64,
    /// The open database; `None` while it is being reopened after a failure.
    open: ArcSwapOption<Open>,
    /// Set by the first I/O error. sled keeps failing every write once one failed (it
    /// remembers the error), so a store that failed is reopened by [`Store::check`] before
    /// it is trusted again.
    failed: AtomicBool,
    count: AtomicU64,
    reopening: Mutex<()>,
    /// The change log's head (last seq applied). Held while a seq is drawn and applied, and
    /// while a follow step reads it and writes its spans (`super::changes`).
    log: Mutex<u64>,
    /// The last seq flushed: readers of the log stop here.
    horizon: watch::Sender<u64>,
}

struct Open {
    db: sled::Db,
    tree: sled::Tree,
    changes: sled::Tree,
    follows: sled::Tree,
    followers: sled::Tree,
    closed: sled::Tree,
    meta: sled::Tree,
}

fn be(bytes: &[u8]) -> u64 {
    bytes
        .get(..8)
        .and_then(|b| b.try_into().ok())
        .map_or(0, u64::from_be_bytes)
}

fn head_of(meta: &sled::Tree) -> Result<u64, sled::Error> {
    Ok(meta.get(HEAD)?.map_or(0, |v| be(&v)))
}

fn follow_key(client: &str, id: CitizenId) -> Vec<u8> {
    let mut k = Vec::with_capacity(client.len() + 9);
    k.extend_from_slice(client.as_bytes());
    k.push(b'|');
    k.extend_from_slice(&id.key());
    k
}

fn follower_key(id: CitizenId, client: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(client.len() + 8);
    k.extend_from_slice(&id.key());
    k.extend_from_slice(client.as_bytes());
    k
}

fn closed_key(until: u64, id: CitizenId, client: &str) -> Vec<u8> {
    [&until.to_be_bytes()[..], &id.key(), client.as_bytes()].concat()
}

/// Writes `spans` as the follow of `client` for `id` in both indexes (`follows`, `followers`),
/// or removes the follow from both when none is left.
fn put_spans(
    follows: &sled::transaction::TransactionalTree,
    followers: &sled::transaction::TransactionalTree,
    client: &str,
    id: CitizenId,
    spans: &[Span],
) -> Result<(), ConflictableTransactionError<StoreError>> {
    let (key, rkey) = (follow_key(client, id), follower_key(id, client));
    if spans.is_empty() {
        follows.remove(key)?;
        followers.remove(rkey)?;
    } else {
        let v = encode_spans(spans);
        follows.insert(key, v.as_slice())?;
        followers.insert(rkey, v)?;
    }
    Ok(())
}

fn following_key(client: &str) -> Vec<u8> {
    [FOLLOWING, client.as_bytes()].concat()
}

/// A change's value: id, fields, commit time (s, ns), then the record's encoding.
fn encode_change(id: CitizenId, fields: FieldSet, at: SystemTime, record: &[u8]) -> Vec<u8> {
    let d = at.duration_since(UNIX_EPOCH).unwrap_or_default();
    let mut v = Vec::with_capacity(22 + record.len());
    v.extend_from_slice(&id.key());
    v.extend_from_slice(&fields.bits().to_be_bytes());
    v.extend_from_slice(&d.as_secs().to_be_bytes());
    v.extend_from_slice(&d.subsec_nanos().to_be_bytes());
    v.extend_from_slice(record);
    v
}

fn change_time(v: &[u8]) -> Result<SystemTime, StoreError> {
    if v.len() < 22 {
        return Err(StoreError::Corrupt(
            "a change of fewer than 22 bytes".into(),
        ));
    }
    let secs = be(&v[10..18]);
    let nanos = u32::from_be_bytes([v[18], v[19], v[20], v[21]]).min(999_999_999);
    Ok(UNIX_EPOCH + Duration::new(secs, nanos))
}

fn decode_change(seq: u64, v: &[u8]) -> Result<Change, StoreError> {
    change_time(v)?;
    let id = CitizenId::from_u64(be(&v[..8]))
        .ok_or_else(|| StoreError::Corrupt(format!("change {seq} names no valid citizen")))?;
    Ok(Change {
        seq,
        record: Arc::new(encoding::decode(id, &v[22..])?),
        fields: FieldSet::from_bits(u16::from_be_bytes([v[8], v[9]])),
    })
}

/// A sled transaction's failure as the store's.
fn tx_failed(e: TransactionError<StoreError>) -> StoreError {
    match e {
        TransactionError::Abort(e) => e,
        TransactionError::Storage(e) => StoreError::Unavailable(e.to_string()),
    }
}

impl SledStore {
    /// Opens with the default page cache ([`default_cache_mib`]).
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        Self::open_with_cache(path, default_cache_mib())
    }

    /// Opens with a page cache of `cache_mib` MiB of on-disk bytes (`[store] cache_mib`).
    pub fn open_with_cache(path: &Path, cache_mib: u64) -> Result<Self, StoreError> {
        let cache_bytes = cache_mib.saturating_mul(MIB);
        let open = Self::open_db(path, cache_bytes)?;
        let count = open.tree.len() as u64;
        let head = head_of(&open.meta).map_err(|e| StoreError::Open {
            path: path.display().to_string(),
            reason: e.to_string(),
        })?;
        Ok(SledStore {
            clock: Clock::system(),
            state: Arc::new(State {
                path: path.to_path_buf(),
                cache_bytes,
                open: ArcSwapOption::from_pointee(open),
                failed: AtomicBool::new(false),
                count: AtomicU64::new(count),
                reopening: Mutex::new(()),
                log: Mutex::new(head),
                horizon: watch::Sender::new(head),
            }),
            write_locks: (0..WRITE_STRIPES)
                .map(|_| tokio::sync::Mutex::new(()))
                .collect(),
        })
    }

    /// Opens the sled database. sled locks its folder, and a handle dropped a moment ago may
    /// still hold the lock while sled's flusher thread winds down, so a lock conflict is
    /// retried for a short while before it is reported.
    fn open_db(path: &Path, cache_bytes: u64) -> Result<Open, StoreError> {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(3);
        let failed = |e: sled::Error| StoreError::Open {
            path: path.display().to_string(),
            reason: e.to_string(),
        };
        loop {
            match sled::Config::new()
                .path(path)
                .cache_capacity(cache_bytes)
                .open()
            {
                Ok(db) => {
                    let tree = |name: &str| db.open_tree(name).map_err(failed);
                    return Ok(Open {
                        tree: tree("citizens")?,
                        changes: tree("changes")?,
                        follows: tree("follows")?,
                        followers: tree("followers")?,
                        closed: tree("closed")?,
                        meta: tree("meta")?,
                        db,
                    });
                }
                Err(e)
                    if e.to_string().contains("could not acquire lock")
                        && std::time::Instant::now() < deadline =>
                {
                    std::thread::sleep(std::time::Duration::from_millis(20));
                }
                Err(e) => return Err(failed(e)),
            }
        }
    }

    fn read(&self, id: CitizenId) -> Result<Option<Citizen>, StoreError> {
        self.state.read(id)
    }

    /// Stamps changes with `clock`'s wall time (the gateway's clock, so retention can be
    /// tested by advancing it).
    pub fn with_clock(mut self, clock: Clock) -> Self {
        self.clock = clock;
        self
    }
}

impl State {
    fn handles(&self) -> Result<Arc<Open>, StoreError> {
        self.open
            .load_full()
            .ok_or_else(|| StoreError::Unavailable("the store is being reopened".into()))
    }

    /// An I/O failure: noted, so that [`Store::check`] reopens the store.
    fn io(&self, e: sled::Error) -> StoreError {
        self.failed.store(true, Ordering::Release);
        StoreError::Unavailable(e.to_string())
    }

    fn read(&self, id: CitizenId) -> Result<Option<Citizen>, StoreError> {
        let h = self.handles()?;
        match h.tree.get(id.key()).map_err(|e| self.io(e))? {
            Some(bytes) => Ok(Some(encoding::decode(id, &bytes)?)),
            None => Ok(None),
        }
    }

    /// Draws the next seq and applies the record, its change and the new head in one sled
    /// transaction, under the log lock so the log is applied in seq order (blocking; not yet
    /// flushed).
    fn commit(
        &self,
        h: &Open,
        id: CitizenId,
        record: &[u8],
        fields: FieldSet,
        at: SystemTime,
    ) -> Result<u64, StoreError> {
        let mut head = self.log.lock().unwrap_or_else(PoisonError::into_inner);
        let seq = *head + 1;
        let change = encode_change(id, fields, at, record);
        (&h.tree, &h.changes, &h.meta)
            .transaction(|(t, c, m)| {
                t.insert(&id.key(), record)?;
                c.insert(&seq.to_be_bytes(), change.as_slice())?;
                m.insert(HEAD, &seq.to_be_bytes())?;
                Ok(())
            })
            .map_err(|e: TransactionError<StoreError>| tx_failed(e))?;
        *head = seq;
        Ok(seq)
    }

    /// One step of a Follow (`follow`) or Unfollow: reads the head and writes the spans of
    /// `ids` in one transaction under the log lock (see `super::changes`), not yet flushed.
    /// Returns the ids changed and the client's new count.
    fn follow_step(
        &self,
        client: &str,
        ids: &[CitizenId],
        follow: bool,
    ) -> Result<(Vec<CitizenId>, u64), StoreError> {
        let h = self.handles()?;
        let head = self.log.lock().unwrap_or_else(PoisonError::into_inner);
        let at = *head;
        let count_key = following_key(client);
        (&h.follows, &h.followers, &h.closed, &h.meta)
            .transaction(|(f, r, c, m)| {
                let mut changed = Vec::new();
                for &id in ids {
                    let key = follow_key(client, id);
                    let mut spans = match f.get(&key)? {
                        Some(v) => decode_spans(&v).map_err(ConflictableTransactionError::Abort)?,
                        None => Vec::new(),
                    };
                    let open = spans.last().is_some_and(|s| s.until == OPEN);
                    match (follow, spans.last_mut()) {
                        (true, _) if open => continue,
                        (false, _) if !open => continue,
                        // Unfollowed and followed again with no change in between: one span.
                        (true, Some(last)) if last.until == at => {
                            c.remove(closed_key(at, id, client))?;
                            last.until = OPEN;
                        }
                        (true, _) => spans.push(Span {
                            since: at,
                            until: OPEN,
                        }),
                        (false, Some(last)) if last.since == at => {
                            // A span that carried nothing.
                            spans.pop();
                        }
                        (false, Some(last)) => {
                            last.until = at;
                            c.insert(closed_key(at, id, client), &[])?;
                        }
                        (false, None) => continue,
                    }
                    put_spans(f, r, client, id, &spans)?;
                    changed.push(id);
                }
                let n = m.get(&count_key)?.map_or(0, |v| be(&v));
                let n = if follow {
                    n + changed.len() as u64
                } else {
                    n.saturating_sub(changed.len() as u64)
                };
                m.insert(count_key.as_slice(), &n.to_be_bytes())?;
                Ok((changed, n))
            })
            .map_err(|e: TransactionError<StoreError>| tx_failed(e))
    }

    /// Follow or Unfollow of `ids` in steps of [`FOLLOW_STEP`], flushed before it returns
    /// (blocking).
    fn follow_all(
        &self,
        client: &str,
        ids: &[CitizenId],
        follow: bool,
    ) -> Result<FollowOutcome, StoreError> {
        let h = self.handles()?;
        let mut out = FollowOutcome::default();
        let mut wanted = Vec::with_capacity(ids.len());
        for &id in ids {
            if follow && !h.tree.contains_key(id.key()).map_err(|e| self.io(e))? {
                out.not_found.push(id);
            } else {
                wanted.push(id);
            }
        }
        out.following = self.following(&h, client)?;
        for step in wanted.chunks(FOLLOW_STEP) {
            let (changed, n) = self.follow_step(client, step, follow)?;
            out.changed.extend(changed);
            out.following = n;
        }
        h.db.flush().map_err(|e| self.io(e))?;
        Ok(out)
    }

    fn following(&self, h: &Open, client: &str) -> Result<u64, StoreError> {
        Ok(h.meta
            .get(following_key(client))
            .map_err(|e| self.io(e))?
            .map_or(0, |v| be(&v)))
    }

    /// [`ChangeLog::pending`] (blocking): reads only, so it needs no log lock; a Follow that
    /// races it changes at most fewer ids than it said.
    fn pending(
        &self,
        client: &str,
        ids: &[CitizenId],
        follow: bool,
    ) -> Result<FollowOutcome, StoreError> {
        let h = self.handles()?;
        let mut out = FollowOutcome {
            following: self.following(&h, client)?,
            ..FollowOutcome::default()
        };
        for &id in ids {
            if follow && !h.tree.contains_key(id.key()).map_err(|e| self.io(e))? {
                out.not_found.push(id);
                continue;
            }
            let open = match h
                .follows
                .get(follow_key(client, id))
                .map_err(|e| self.io(e))?
            {
                Some(v) => decode_spans(&v)?.last().is_some_and(|s| s.until == OPEN),
                None => false,
            };
            if open != follow {
                out.changed.push(id);
            }
        }
        Ok(out)
    }

    fn carriers(&self, h: &Open, seq: u64, id: CitizenId) -> Result<Vec<Arc<str>>, StoreError> {
        let mut out = Vec::new();
        for kv in h.followers.scan_prefix(id.key()) {
            let (k, v) = kv.map_err(|e| self.io(e))?;
            if decode_spans(&v)?.iter().any(|s| s.carries(seq)) {
                let client = std::str::from_utf8(&k[8..])
                    .map_err(|_| StoreError::Corrupt("a follower that is not UTF-8".into()))?;
                out.push(Arc::from(client));
            }
        }
        Ok(out)
    }

    fn read_log(&self, after: u64, upto: u64, limit: usize) -> Result<Vec<Fanned>, StoreError> {
        let h = self.handles()?;
        let mut out = Vec::new();
        if after >= upto {
            return Ok(out);
        }
        let range = (after + 1).to_be_bytes()..=upto.to_be_bytes();
        for kv in h.changes.range(range).take(limit) {
            let (k, v) = kv.map_err(|e| self.io(e))?;
            let change = decode_change(be(&k), &v)?;
            let carriers = self.carriers(&h, change.seq, change.record.id)?;
            out.push(Fanned { change, carriers });
        }
        Ok(out)
    }

    fn read_for(
        &self,
        client: &str,
        after: u64,
        upto: u64,
        limit: usize,
    ) -> Result<Carried, StoreError> {
        let h = self.handles()?;
        let mut out = Carried {
            changes: Vec::new(),
            through: upto.max(after),
        };
        if after >= upto {
            return Ok(out);
        }
        // Bounded work per call, carried or not, so a stream checks on its caller regularly.
        let mut budget = limit.saturating_mul(16).max(1);
        let range = (after + 1).to_be_bytes()..=upto.to_be_bytes();
        for kv in h.changes.range(range) {
            let (k, v) = kv.map_err(|e| self.io(e))?;
            let seq = be(&k);
            let id = CitizenId::from_u64(be(&v)).ok_or_else(|| {
                StoreError::Corrupt(format!("change {seq} names no valid citizen"))
            })?;
            let spans = match h
                .follows
                .get(follow_key(client, id))
                .map_err(|e| self.io(e))?
            {
                Some(s) => decode_spans(&s)?,
                None => Vec::new(),
            };
            if spans.iter().any(|s| s.carries(seq)) {
                out.changes.push(decode_change(seq, &v)?);
            }
            budget -= 1;
            if out.changes.len() >= limit || budget == 0 {
                out.through = seq;
                break;
            }
        }
        Ok(out)
    }

    fn oldest(&self) -> Result<u64, StoreError> {
        let h = self.handles()?;
        match h.changes.first().map_err(|e| self.io(e))? {
            Some((k, _)) => Ok(be(&k)),
            None => Ok(*self.horizon.borrow() + 1),
        }
    }

    fn prune(&self, before: SystemTime) -> Result<u64, StoreError> {
        let h = self.handles()?;
        let horizon = *self.horizon.borrow();
        let mut dropped = 0;
        loop {
            let mut batch = sled::Batch::default();
            let mut n = 0;
            let mut done = true;
            for kv in h.changes.iter() {
                let (k, v) = kv.map_err(|e| self.io(e))?;
                // Never past the horizon: a change not yet flushed is not the oldest of anything.
                if be(&k) > horizon || change_time(&v)? >= before {
                    break;
                }
                batch.remove(k);
                n += 1;
                if n == 10_000 {
                    done = false;
                    break;
                }
            }
            if n > 0 {
                h.changes.apply_batch(batch).map_err(|e| self.io(e))?;
                dropped += n;
            }
            if done {
                let spans = self.drop_spans_before(&h, self.oldest()?)?;
                // Nothing changed, nothing to make durable (a pass runs every 30 s).
                if dropped > 0 || spans > 0 {
                    h.db.flush().map_err(|e| self.io(e))?;
                }
                return Ok(dropped);
            }
        }
    }

    /// Drops the follow spans that ended before `oldest`, the oldest change kept: every change
    /// they carry is gone, and no stream may resume from before `oldest`, so they can carry
    /// nothing any more. Found through `closed`, in steps, each under the log lock (which
    /// orders every change to a follow list).
    /// Returns how many ended spans it looked at.
    fn drop_spans_before(&self, h: &Open, oldest: u64) -> Result<u64, StoreError> {
        let mut seen = 0;
        loop {
            let keys: Vec<sled::IVec> = h
                .closed
                .range(..oldest.to_be_bytes())
                .keys()
                .take(FOLLOW_STEP)
                .collect::<Result<_, _>>()
                .map_err(|e| self.io(e))?;
            if keys.is_empty() {
                return Ok(seen);
            }
            seen += keys.len() as u64;
            let _log = self.log.lock().unwrap_or_else(PoisonError::into_inner);
            (&h.follows, &h.followers, &h.closed)
                .transaction(|(f, r, c)| {
                    for k in &keys {
                        c.remove(k)?;
                        let Some(id) = CitizenId::from_u64(be(&k[8..])) else {
                            continue;
                        };
                        let client = std::str::from_utf8(&k[16..]).unwrap_or_default();
                        let Some(v) = f.get(follow_key(client, id))? else {
                            continue;
                        };
                        let mut spans =
                            decode_spans(&v).map_err(ConflictableTransactionError::Abort)?;
                        spans.retain(|s| s.until >= oldest);
                        put_spans(f, r, client, id, &spans)?;
                    }
                    Ok(())
                })
                .map_err(|e: TransactionError<StoreError>| tx_failed(e))?;
        }
    }

    /// Closes and opens the database again, after a failure (blocking).
    fn reopen(&self) -> Result<(), StoreError> {
        let _one = self
            .reopening
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if !self.failed.load(Ordering::Acquire) {
            return Ok(());
        }
        // Ours is dropped here; sled's lock goes once the calls still holding it finish.
        self.open.store(None);
        let open = SledStore::open_db(&self.path, self.cache_bytes)?;
        let tree = open.tree.clone();
        open.db.flush().map_err(|e| self.io(e))?;
        self.count.store(tree.len() as u64, Ordering::Relaxed);
        // What a failed flush left in memory only is gone: the head is the disk's again.
        *self.log.lock().unwrap_or_else(PoisonError::into_inner) =
            head_of(&open.meta).map_err(|e| self.io(e))?;
        self.open.store(Some(Arc::new(open)));
        self.failed.store(false, Ordering::Release);
        tracing::info!("population store reopened after a failure");
        Ok(())
    }
}

/// Runs blocking store work off the async workers.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, StoreError> + Send + 'static,
) -> Result<T, StoreError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| StoreError::Unavailable(format!("store task failed: {e}")))?
}

#[async_trait]
impl Store for SledStore {
    async fn get(&self, id: CitizenId) -> Result<Option<Citizen>, StoreError> {
        // A read from sled's page cache takes microseconds: not worth a thread hop.
        self.read(id)
    }

    async fn put(
        &self,
        mut record: Citizen,
        expected_version: u64,
        before_commit: &dyn BeforeCommit,
    ) -> Result<PutOutcome, StoreError> {
        let id = record.id;
        let _held = self.write_locks[(id.as_u64() % WRITE_STRIPES as u64) as usize]
            .lock()
            .await;
        let old = self.read(id)?;
        let current = old.as_ref().map(|c| c.version);
        match (current, expected_version) {
            (Some(v), 0) => return Ok(PutOutcome::AlreadyExists { current: v }),
            (None, e) if e != 0 => return Ok(PutOutcome::VersionMismatch { current: 0 }),
            (Some(v), e) if v != e => return Ok(PutOutcome::VersionMismatch { current: v }),
            _ => {}
        }
        record.version = current.unwrap_or(0) + 1;
        if before_commit.approve(&record).await.is_err() {
            return Ok(PutOutcome::Vetoed);
        }
        let bytes = encoding::encode(&record);
        let fields = registry::fields_changed(old.as_ref(), &record);
        let (state, at) = (self.state.clone(), self.clock.wall());
        // The flush waits for the disk.
        let written = blocking(move || {
            let h = state.handles()?;
            let seq = state.commit(&h, id, &bytes, fields, at)?;
            h.db.flush()
                .map_err(|e| StoreError::Unavailable(e.to_string()))?;
            Ok(seq)
        })
        .await;
        let seq = match written {
            Ok(seq) => seq,
            Err(e) => {
                self.state.failed.store(true, Ordering::Release);
                return Err(e);
            }
        };
        // Flushed: this change and every one applied before it are durable.
        advance(&self.state.horizon, seq);
        if current.is_none() {
            self.state.count.fetch_add(1, Ordering::Relaxed);
        }
        Ok(PutOutcome::Written(Box::new(record)))
    }

    async fn count(&self) -> Result<u64, StoreError> {
        Ok(self.state.count.load(Ordering::Relaxed))
    }

    async fn check(&self) -> Result<(), StoreError> {
        if self.state.failed.load(Ordering::Acquire) {
            let state = self.state.clone();
            return blocking(move || state.reopen()).await;
        }
        // A flush touches the disk: it fails while the disk does.
        let h = self.state.handles()?;
        let flushed = blocking(move || {
            h.db.flush()
                .map(drop)
                .map_err(|e| StoreError::Unavailable(e.to_string()))
        })
        .await;
        if flushed.is_err() {
            self.state.failed.store(true, Ordering::Release);
        }
        flushed
    }
}

#[async_trait]
impl ChangeLog for SledStore {
    async fn follow(&self, client: &str, ids: &[CitizenId]) -> Result<FollowOutcome, StoreError> {
        let (state, client, ids) = (self.state.clone(), client.to_owned(), ids.to_vec());
        blocking(move || state.follow_all(&client, &ids, true)).await
    }

    async fn unfollow(&self, client: &str, ids: &[CitizenId]) -> Result<FollowOutcome, StoreError> {
        let (state, client, ids) = (self.state.clone(), client.to_owned(), ids.to_vec());
        blocking(move || state.follow_all(&client, &ids, false)).await
    }

    async fn pending(
        &self,
        client: &str,
        ids: &[CitizenId],
        follow: bool,
    ) -> Result<FollowOutcome, StoreError> {
        let (state, client, ids) = (self.state.clone(), client.to_owned(), ids.to_vec());
        blocking(move || state.pending(&client, &ids, follow)).await
    }

    async fn read(&self, after: u64, upto: u64, limit: usize) -> Result<Vec<Fanned>, StoreError> {
        let state = self.state.clone();
        blocking(move || state.read_log(after, upto, limit)).await
    }

    async fn read_for(
        &self,
        client: &str,
        after: u64,
        upto: u64,
        limit: usize,
    ) -> Result<Carried, StoreError> {
        let (state, client) = (self.state.clone(), client.to_owned());
        blocking(move || state.read_for(&client, after, upto, limit)).await
    }

    fn horizon(&self) -> watch::Receiver<u64> {
        self.state.horizon.subscribe()
    }

    async fn refresh_horizon(&self) -> Result<u64, StoreError> {
        // Told by the writers themselves: nothing to poll.
        Ok(*self.state.horizon.borrow())
    }

    async fn oldest(&self) -> Result<u64, StoreError> {
        self.state.oldest()
    }

    async fn prune(&self, before: SystemTime) -> Result<u64, StoreError> {
        let state = self.state.clone();
        blocking(move || state.prune(before)).await
    }
}

impl Loader for SledStore {
    fn load(&self, records: &[Citizen]) -> Result<(), StoreError> {
        // Plain inserts rather than `apply_batch`: a sled batch holds a global write lock, so
        // concurrent loaders would queue behind one another, and `insert` returns the previous
        // value, which tells new ids from overwritten ones without a second lookup per record.
        // Seeding needs neither atomicity nor durability before `flush`.
        let state = &self.state;
        let h = state.handles()?;
        let mut new = 0;
        for c in records {
            let previous = h
                .tree
                .insert(c.id.key(), encoding::encode(c))
                .map_err(|e| state.io(e))?;
            new += u64::from(previous.is_none());
        }
        state.count.fetch_add(new, Ordering::Relaxed);
        Ok(())
    }

    fn flush(&self) -> Result<(), StoreError> {
        let h = self.state.handles()?;
        h.db.flush().map(drop).map_err(|e| self.state.io(e))
    }

    fn count(&self) -> Result<u64, StoreError> {
        Ok(self.state.count.load(Ordering::Relaxed))
    }
}

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

#[cfg(test)]
mod store_tests {
    use std::time::SystemTime;

    use super::*;
    use crate::citizen::{LifeStatus, Sex};
    use crate::store::Vetoed;

    fn citizen(name: &str) -> Citizen {
        Citizen {
            id: CitizenId::parse("001203012345", 2026).unwrap(),
            full_name: name.into(),
            date_of_birth: "2003-01-01".into(),
            sex: Sex::Male,
            place_of_origin: String::new(),
            permanent_address: String::new(),
            current_address: String::new(),
            ethnicity: String::new(),
            religion: String::new(),
            nationality: String::new(),
            card_issued_on: String::new(),
            card_expires_on: String::new(),
            household_head_id: String::new(),
            life_status: LifeStatus::Alive,
            version: 0,
            updated_at: SystemTime::UNIX_EPOCH,
        }
    }

    struct Approve(bool);

    #[async_trait]
    impl BeforeCommit for Approve {
        async fn approve(&self, _: &Citizen) -> Result<(), Vetoed> {
            if self.0 { Ok(()) } else { Err(Vetoed) }
        }
    }

    #[tokio::test]
    async fn conditional_puts_are_decided_by_the_store_and_survive_a_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let id = citizen("A").id;
        let yes = Approve(true);
        {
            let store = SledStore::open(dir.path()).unwrap();
            assert_eq!(store.get(id).await.unwrap(), None);
            assert_eq!(
                store.put(citizen("A"), 1, &yes).await.unwrap(),
                PutOutcome::VersionMismatch { current: 0 }
            );
            let PutOutcome::Written(c) = store.put(citizen("A"), 0, &yes).await.unwrap() else {
                panic!("create failed")
            };
            assert_eq!(c.version, 1);
            assert_eq!(
                store.put(citizen("B"), 0, &yes).await.unwrap(),
                PutOutcome::AlreadyExists { current: 1 }
            );
            assert_eq!(
                store.put(citizen("B"), 2, &yes).await.unwrap(),
                PutOutcome::VersionMismatch { current: 1 }
            );
            // Refused before the commit: nothing changes.
            assert_eq!(
                store.put(citizen("B"), 1, &Approve(false)).await.unwrap(),
                PutOutcome::Vetoed
            );
            assert_eq!(store.get(id).await.unwrap().unwrap().full_name, "A");
            assert!(matches!(
                store.put(citizen("B"), 1, &yes).await.unwrap(),
                PutOutcome::Written(_)
            ));
            assert_eq!(Store::count(&store).await.unwrap(), 1);
            store.check().await.unwrap();
        }
        let store = SledStore::open(dir.path()).unwrap();
        let got = store.get(id).await.unwrap().unwrap();
        assert_eq!((got.full_name.as_str(), got.version), ("B", 2));
        assert_eq!(Store::count(&store).await.unwrap(), 1);
    }

    #[tokio::test]
    async fn retention_drops_the_spans_that_ended_before_the_oldest_kept_change() {
        let dir = tempfile::tempdir().unwrap();
        let store = SledStore::open(dir.path()).unwrap();
        let yes = Approve(true);
        let id = citizen("A").id;
        let spans = |store: &SledStore, client: &str| {
            let h = store.state.handles().unwrap();
            let f = h.follows.get(follow_key(client, id)).unwrap();
            let r = h.followers.get(follower_key(id, client)).unwrap();
            assert_eq!(f, r, "the two indexes agree");
            f.map(|v| decode_spans(&v).unwrap()).unwrap_or_default()
        };
        store.put(citizen("A"), 0, &yes).await.unwrap(); // seq 1
        // "old": followed (1, 2], then again (3, 4]; "new": followed from 3 on, still.
        store.follow("old", &[id]).await.unwrap();
        store.put(citizen("B"), 1, &yes).await.unwrap(); // seq 2
        store.unfollow("old", &[id]).await.unwrap();
        store.put(citizen("C"), 2, &yes).await.unwrap(); // seq 3
        store.follow("old", &[id]).await.unwrap();
        store.follow("new", &[id]).await.unwrap();
        store.put(citizen("D"), 3, &yes).await.unwrap(); // seq 4
        store.unfollow("old", &[id]).await.unwrap();
        let both = vec![Span { since: 1, until: 2 }, Span { since: 3, until: 4 }];
        assert_eq!(spans(&store, "old"), both);

        // Nothing past retention yet: nothing goes.
        assert_eq!(store.prune(SystemTime::UNIX_EPOCH).await.unwrap(), 0);
        assert_eq!(spans(&store, "old"), both);
        // Seqs 1-3 dropped (4 kept, by hand: all four were written at once): the span that
        // ended at 2 carries nothing kept; the one that ended at 4 does.
        let h = store.state.handles().unwrap();
        for seq in 1..=3u64 {
            h.changes.remove(seq.to_be_bytes()).unwrap();
        }
        store.prune(SystemTime::UNIX_EPOCH).await.unwrap();
        assert_eq!(spans(&store, "old"), vec![Span { since: 3, until: 4 }]);
        assert_eq!(
            spans(&store, "new"),
            vec![Span {
                since: 3,
                until: OPEN
            }]
        );
        // All dropped: no span that ended is left, the open one stays.
        h.changes.remove(4u64.to_be_bytes()).unwrap();
        store.prune(SystemTime::UNIX_EPOCH).await.unwrap();
        assert_eq!(spans(&store, "old"), Vec::new());
        assert_eq!(
            spans(&store, "new"),
            vec![Span {
                since: 3,
                until: OPEN
            }]
        );
        assert_eq!(h.closed.len(), 0);
        // Followed again after its spans went: a new span from the head.
        store.follow("old", &[id]).await.unwrap();
        assert_eq!(
            spans(&store, "old"),
            vec![Span {
                since: 4,
                until: OPEN
            }]
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn of_racing_writers_of_one_version_exactly_one_wins() {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(SledStore::open(dir.path()).unwrap());
        store.put(citizen("A"), 0, &Approve(true)).await.unwrap();
        let racers: Vec<_> = (0..8)
            .map(|i| {
                let s = store.clone();
                tokio::spawn(async move {
                    s.put(citizen(&format!("R{i}")), 1, &Approve(true))
                        .await
                        .unwrap()
                })
            })
            .collect();
        let mut won = 0;
        for r in racers {
            match r.await.unwrap() {
                PutOutcome::Written(c) => {
                    assert_eq!(c.version, 2);
                    won += 1
                }
                PutOutcome::VersionMismatch { current: 2 } => {}
                other => panic!("{other:?}"),
            }
        }
        assert_eq!(won, 1);
    }

    #[test]
    fn reopening_right_after_a_drop_works() {
        let dir = tempfile::tempdir().unwrap();
        for _ in 0..20 {
            let store = SledStore::open(dir.path()).unwrap();
            Loader::flush(&store).unwrap();
            drop(store);
        }
    }
}
