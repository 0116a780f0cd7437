//! Caches that are never stale across nodes: invalidation driven by the database's commits,
//! under leases (Chubby; "Scaling Memcache at Facebook").
//!
//! Every node keeps its own reuse cache and one notification connection to the database, on
//! which it `LISTEN`s and renews its **lease**: a row of `nodes` saying "I may serve from my
//! cache until `lease_until`" (the database's clock). The rules:
//!
//! 1. A node serves from its cache only until its *local* lease deadline: `lease_ms` after it
//!    *sent* its last renewal, less a margin — so it stops before the database thinks its
//!    lease ran out, whatever the round trip took. A node that cannot renew (its connection is
//!    lost or slow) empties its cache and stops serving from it; it comes back with an empty
//!    cache once it is connected and has renewed, so nothing it missed can be served.
//! 2. A write's transaction sends `NOTIFY popgate_changes` with its seq and id; PostgreSQL
//!    delivers it to every listener after the commit, in commit order. A node drops the id
//!    from its cache, then acknowledges (`NOTIFY popgate_acks`).
//! 3. After committing, the writer reads which *other* nodes hold a live lease and returns
//!    only once each has acknowledged the write or its lease (database time) has run out.
//!    A node still renewing has, by then, received the change: notifications pending for a
//!    session arrive before the answer to its next query, and a renewal is a query on that
//!    session, so a node applies what it was sent before it extends its own deadline.
//!
//! So once a PutCitizen has returned, no node answers from a cache that still holds the old
//! version: every node has dropped it, or is not serving from its cache at all. A read that
//! misses goes to the primary, where the write is committed. The price: a write waits one
//! round trip to the other nodes (or, when a node has died, up to `lease_ms` — once per dead
//! node, until its lease runs out).
//!
//! Leases are wall-clock time by nature (they coordinate machines, so the database's clock
//! decides them), not the gateway's `Clock`: tests exercise them with short leases and by
//! waiting for what must happen, never for a time.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use tokio::sync::{oneshot, watch};
use tokio_postgres::{Client, Notification};

use crate::cache::ReuseCache;
use crate::id::CitizenId;
use crate::pg::{Backoff, Db, unavailable};
use crate::store::StoreError;

/// Completes when the connection behind `rx` has ended.
async fn ended(rx: &mut watch::Receiver<bool>) {
    let _ = rx.wait_for(|e| *e).await;
}

pub const CHANGES: &str = "popgate_changes";
pub const ACKS: &str = "popgate_acks";

/// Acknowledgements kept for writers that have not started waiting yet.
const RECENT_ACKS: usize = 4096;

pub struct Coherence {
    node: String,
    lease: Duration,
    cache: Arc<ReuseCache>,
    /// Nanoseconds after `origin` until which this node may serve from its cache; 0 = not.
    deadline: AtomicU64,
    origin: Instant,
    /// `true` while the lease is held (for health).
    held: watch::Sender<bool>,
    /// Nodes holding a lease, this one included, as of the last renewal.
    live: watch::Sender<usize>,
    acks: Mutex<Acks>,
    /// Set at shutdown: the lease is given up and never renewed again.
    leaving: AtomicBool,
    /// The highest seq heard committed (a notification, or the counter read by the change
    /// feed's poll): the change log's horizon on this node (`super::changes`).
    horizon: watch::Sender<u64>,
}

#[derive(Default)]
struct Acks {
    /// seq → nodes that acknowledged it, for writers that ask after the fact.
    recent: BTreeMap<u64, HashSet<String>>,
    /// seq → the writer waiting for it.
    waiting: HashMap<u64, Waiter>,
}

struct Waiter {
    pending: HashSet<String>,
    done: Option<oneshot::Sender<()>>,
}

impl Coherence {
    pub fn new(node: String, lease: Duration, cache: Arc<ReuseCache>) -> Arc<Coherence> {
        Arc::new(Coherence {
            node,
            lease,
            cache,
            deadline: AtomicU64::new(0),
            origin: Instant::now(),
            held: watch::Sender::new(false),
            live: watch::Sender::new(1),
            acks: Mutex::new(Acks::default()),
            leaving: AtomicBool::new(false),
            horizon: watch::Sender::new(0),
        })
    }

    /// At shutdown, once no call is served any more: stop serving from the cache and renewing
    /// the lease. The caller then ends the lease in the database, so that the other nodes'
    /// writes stop waiting for this one at once rather than when its lease runs out.
    pub fn leave(&self) {
        self.leaving.store(true, Ordering::Release);
        self.deadline.store(0, Ordering::Release);
        self.cache.clear();
    }

    fn now(&self) -> u64 {
        self.origin.elapsed().as_nanos() as u64
    }

    /// Whether this node may answer from its cache now.
    pub fn may_cache(&self) -> bool {
        self.now() < self.deadline.load(Ordering::Acquire)
    }

    /// `true` while this node holds its lease.
    pub fn held(&self) -> watch::Receiver<bool> {
        self.held.subscribe()
    }

    pub fn node(&self) -> &str {
        &self.node
    }

    pub fn lease(&self) -> Duration {
        self.lease
    }

    /// How many nodes hold a lease, this one included (at least 1), as it changes.
    pub fn members(&self) -> watch::Receiver<usize> {
        self.live.subscribe()
    }

    /// The change log's horizon as this node has heard it.
    pub fn horizon(&self) -> watch::Receiver<u64> {
        self.horizon.subscribe()
    }

    /// Notes that every change through `seq` has committed.
    pub fn heard(&self, seq: u64) {
        crate::store::changes::advance(&self.horizon, seq);
    }

    /// Stops serving from the cache and forgets it.
    fn lose(&self, why: &str) {
        self.deadline.store(0, Ordering::Release);
        self.cache.clear();
        if self.held.send_replace(false) {
            tracing::warn!(
                node = %self.node,
                why,
                "cache lease lost: answering from the database only until it is back"
            );
        }
    }

    /// Keeps the notification connection and the lease, for as long as the store lives.
    pub async fn run(self: Arc<Self>, db: Db) {
        let mut backoff = Backoff::default();
        loop {
            let started = Instant::now();
            match self.session(&db).await {
                Ok(()) => return,
                Err(e) => self.lose(&e.to_string()),
            }
            // A session that lasted earns a quick retry; one that failed at once, a slower one.
            if started.elapsed() > self.lease {
                backoff = Backoff::default();
            }
            if Arc::strong_count(&self) == 1 {
                return;
            }
            backoff.wait().await;
        }
    }

    /// One notification connection's life. Returns `Ok` only when the store is gone.
    async fn session(self: &Arc<Self>, db: &Db) -> Result<(), StoreError> {
        let mut conn = db.connect().await?;
        let client = &conn.client;
        client
            .batch_execute(&format!("LISTEN {CHANGES}; LISTEN {ACKS}"))
            .await
            .map_err(unavailable)?;
        // The renewal also counts the other nodes holding a lease (the cluster's membership,
        // for the shares of rates when Redis is unreachable).
        let renew = client
            .prepare(
                "WITH renewed AS (
                     INSERT INTO nodes (node_id, lease_until, started_at)
                     VALUES ($1, now() + $2 * interval '1 millisecond', now())
                     ON CONFLICT (node_id) DO UPDATE SET lease_until = EXCLUDED.lease_until
                     RETURNING node_id)
                 SELECT 1 + (SELECT count(*) FROM nodes WHERE lease_until > now() AND node_id <> $1)",
            )
            .await
            .map_err(unavailable)?;
        let ack = client
            .prepare("SELECT pg_notify($1, $2)")
            .await
            .map_err(unavailable)?;
        // Whatever was cached before this connection may have missed invalidations.
        self.cache.clear();
        let lease_ms = self.lease.as_millis() as f64;
        let every = self.lease / 3;
        let margin = self.lease / 8;
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            if Arc::strong_count(self) == 1 {
                return Ok(());
            }
            tokio::select! {
                _ = tick.tick() => {
                    if self.leaving.load(Ordering::Acquire) {
                        continue;
                    }
                    let sent = self.now();
                    let row = tokio::time::timeout(every, client.query_one(&renew, &[&self.node, &lease_ms]))
                        .await
                        .map_err(|_| StoreError::Unavailable("lease renewal timed out".into()))?
                        .map_err(unavailable)?;
                    let live: i64 = row.get(0);
                    self.live.send_if_modified(|n| {
                        let new = live.max(1) as usize;
                        std::mem::replace(n, new) != new
                    });
                    // What the database sent before answering is in the channel now: apply it
                    // before extending the deadline (the module docs, rule 3).
                    while let Ok(n) = conn.notifications.try_recv() {
                        self.on_notification(client, &ack, n).await?;
                    }
                    let until = sent + (self.lease - margin).as_nanos() as u64;
                    self.deadline.store(until, Ordering::Release);
                    if !self.held.send_replace(true) {
                        tracing::info!(node = %self.node, "cache lease held");
                    }
                }
                n = conn.notifications.recv() => match n {
                    Some(n) => self.on_notification(client, &ack, n).await?,
                    None => return Err(StoreError::Unavailable("notification connection lost".into())),
                },
                () = ended(&mut conn.ended) => {
                    return Err(StoreError::Unavailable("notification connection lost".into()));
                }
            }
        }
    }

    async fn on_notification(
        &self,
        client: &Client,
        ack: &tokio_postgres::Statement,
        n: Notification,
    ) -> Result<(), StoreError> {
        let mut parts = n.payload().split(' ');
        match n.channel() {
            CHANGES => {
                // "seq id node"
                let (Some(seq), Some(id), Some(node)) = (parts.next(), parts.next(), parts.next())
                else {
                    return Ok(());
                };
                // Delivered in commit order, and seqs commit in order: everything through this
                // one has committed, on whichever node wrote it.
                if let Ok(s) = seq.parse::<u64>() {
                    self.heard(s);
                }
                if node == self.node {
                    // Our own write: its node updated its cache itself.
                    return Ok(());
                }
                if let Some(id) = id.parse().ok().and_then(CitizenId::from_u64) {
                    self.cache.invalidate(id);
                }
                let payload = format!("{} {seq}", self.node);
                client
                    .execute(ack, &[&ACKS, &payload])
                    .await
                    .map_err(unavailable)?;
            }
            ACKS => {
                // "node seq"
                if let (Some(node), Some(seq)) = (parts.next(), parts.next())
                    && let Ok(seq) = seq.parse::<u64>()
                {
                    self.on_ack(node, seq);
                }
            }
            _ => {}
        }
        Ok(())
    }

    fn on_ack(&self, node: &str, seq: u64) {
        let mut a = self.acks.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(w) = a.waiting.get_mut(&seq) {
            w.pending.remove(node);
            if w.pending.is_empty()
                && let Some(done) = w.done.take()
            {
                let _ = done.send(());
            }
        }
        a.recent.entry(seq).or_default().insert(node.to_owned());
        while a.recent.len() > RECENT_ACKS {
            a.recent.pop_first();
        }
    }

    /// Returns once every node in `live` (node, time its lease has left) has acknowledged
    /// change `seq` or its lease has run out.
    pub async fn await_acks(&self, seq: u64, live: Vec<(String, Duration)>) {
        let (tx, mut rx) = oneshot::channel();
        let started = Instant::now();
        let deadlines: HashMap<String, Instant> = live
            .iter()
            .map(|(n, left)| (n.clone(), started + *left))
            .collect();
        {
            let mut a = self.acks.lock().unwrap_or_else(PoisonError::into_inner);
            let acked = a.recent.get(&seq).cloned().unwrap_or_default();
            let pending: HashSet<String> = live
                .into_iter()
                .map(|(n, _)| n)
                .filter(|n| !acked.contains(n))
                .collect();
            if pending.is_empty() {
                return;
            }
            a.waiting.insert(
                seq,
                Waiter {
                    pending,
                    done: Some(tx),
                },
            );
        }
        loop {
            let next = {
                let mut a = self.acks.lock().unwrap_or_else(PoisonError::into_inner);
                let Some(w) = a.waiting.get_mut(&seq) else {
                    return;
                };
                let now = Instant::now();
                // A node whose lease has run out no longer serves from its cache.
                w.pending
                    .retain(|n| deadlines.get(n).is_some_and(|d| *d > now));
                if w.pending.is_empty() {
                    a.waiting.remove(&seq);
                    return;
                }
                w.pending
                    .iter()
                    .filter_map(|n| deadlines.get(n))
                    .min()
                    .copied()
            };
            let Some(next) = next else { return };
            tokio::select! {
                _ = &mut rx => {
                    self.acks.lock().unwrap_or_else(PoisonError::into_inner).waiting.remove(&seq);
                    return;
                }
                _ = tokio::time::sleep_until(next.into()) => {}
            }
        }
    }
}
