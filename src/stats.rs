//! Counters since start-up, per client and overall, for `GetStats` (and metrics).
//!
//! Only configured clients get counters, so an attacker cycling certificate names cannot grow
//! this map.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

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

impl Stats {
    /// The counters of `client_id`, created on first use.
    pub fn client(&self, client_id: &str) -> Arc<ClientCounters> {
        if let Some(c) = self
            .clients
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(client_id)
        {
            return c.clone();
        }
        self.clients
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .entry(client_id.to_owned())
            .or_default()
            .clone()
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
