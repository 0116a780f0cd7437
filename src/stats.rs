//! Counters since start-up, per client and overall, for `GetStats` (and metrics).
//!
//! Only configured clients get counters, so an attacker cycling certificate names cannot grow
//! this map.

use std::borrow::Borrow;
use std::collections::HashMap;
use std::hash::Hash;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, PoisonError, RwLock};

/// What happened to one call, for counting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Counted {
    Ok { reused: bool },
    Denied,
    RateLimited,
    NotFound,
    Other,
}

#[derive(Debug, Default)]
pub struct ClientCounters {
    pub requests: AtomicU64,
    pub reused: AtomicU64,
    pub denied: AtomicU64,
    pub rate_limited: AtomicU64,
    pub not_found: AtomicU64,
}

#[derive(Debug, Default)]
pub struct Stats {
    requests: AtomicU64,
    reused: AtomicU64,
    clients: RwLock<HashMap<String, Arc<ClientCounters>>>,
}

/// A snapshot of one client's counters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientSnapshot {
    pub client_id: String,
    pub requests: u64,
    pub reused: u64,
    pub denied: u64,
    pub rate_limited: u64,
    pub not_found: u64,
}

/// The entry of `key` in a per-client map that is read on every call and written once per
/// client: a read lock on the way in, the write lock only to insert `make()`'s key and value.
/// Shared with the metrics' per-client series.
pub fn per_client<K, Q, V>(
    map: &RwLock<HashMap<K, Arc<V>>>,
    key: &Q,
    make: impl FnOnce() -> (K, V),
) -> Arc<V>
where
    K: Borrow<Q> + Eq + Hash,
    Q: Eq + Hash + ?Sized,
{
    if let Some(v) = map.read().unwrap_or_else(PoisonError::into_inner).get(key) {
        return v.clone();
    }
    let mut map = map.write().unwrap_or_else(PoisonError::into_inner);
    if let Some(v) = map.get(key) {
        return v.clone();
    }
    let (k, v) = make();
    let v = Arc::new(v);
    map.insert(k, v.clone());
    v
}

impl Stats {
    /// The counters of `client_id`, created on first use.
    pub fn client(&self, client_id: &str) -> Arc<ClientCounters> {
        per_client(&self.clients, client_id, || {
            (client_id.to_owned(), ClientCounters::default())
        })
    }

    pub fn count(&self, client: &ClientCounters, what: Counted) {
        self.requests.fetch_add(1, Ordering::Relaxed);
        client.requests.fetch_add(1, Ordering::Relaxed);
        let field = match what {
            Counted::Ok { reused: true } => {
                self.reused.fetch_add(1, Ordering::Relaxed);
                &client.reused
            }
            Counted::Ok { reused: false } | Counted::Other => return,
            Counted::Denied => &client.denied,
            Counted::RateLimited => &client.rate_limited,
            Counted::NotFound => &client.not_found,
        };
        field.fetch_add(1, Ordering::Relaxed);
    }

    /// (requests, reused) overall.
    pub fn totals(&self) -> (u64, u64) {
        (
            self.requests.load(Ordering::Relaxed),
            self.reused.load(Ordering::Relaxed),
        )
    }

    /// Every client's counters, sorted by client id.
    pub fn clients(&self) -> Vec<ClientSnapshot> {
        let map = self.clients.read().unwrap_or_else(|e| e.into_inner());
        let mut out: Vec<_> = map
            .iter()
            .map(|(id, c)| ClientSnapshot {
                client_id: id.clone(),
                requests: c.requests.load(Ordering::Relaxed),
                reused: c.reused.load(Ordering::Relaxed),
                denied: c.denied.load(Ordering::Relaxed),
                rate_limited: c.rate_limited.load(Ordering::Relaxed),
                not_found: c.not_found.load(Ordering::Relaxed),
            })
            .collect();
        out.sort_by(|a, b| a.client_id.cmp(&b.client_id));
        out
    }
}
