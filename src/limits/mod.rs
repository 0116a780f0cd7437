//! Per-client rate limits and the process-wide bound on work in flight.
//!
//! Each configured client has its own rate (`rate_per_sec` and `burst`), so a telecom
//! re-verifying its whole base cannot slow a ministry. Where a rate's state lives is a
//! [`RateBackend`]'s business ([`local`]: this process); the gateway sees only [`Rate`]. Only
//! configured clients have a rate: an unknown certificate name never grows this state. A unary
//! call over the rate is refused at once with the time until capacity returns; a stream item
//! waits for capacity instead (pacing, on the gateway's [`Clock`]), so a stream never fails for
//! being fast.
//!
//! The in-flight bound sheds calls past it at once (UNAVAILABLE) rather than queueing them
//! until they time out: queued work is memory the process cannot bound.

pub mod local;
pub mod shared;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use arc_swap::{ArcSwap, ArcSwapOption};
use async_trait::async_trait;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::clock::Clock;
use crate::identity::Peer;
use crate::policy::{Client, Method, Policy};

/// One client's rate, wherever its state is kept.
#[async_trait]
pub trait Rate: Send + Sync {
    /// Takes one unit of capacity now, or says how long until there is one. Answers at once
    /// but for a shared rate whose local share ran out, which may ask for more first.
    async fn admit(&self) -> Result<(), Duration>;
}

/// Where the clients' rates are kept: makes one client's [`Rate`].
pub trait RateBackend: Send + Sync {
    fn rate(&self, client: &str, rate_per_sec: u32, burst: u32) -> Arc<dyn Rate>;

    /// For a shared backend: `true` while it cannot reach its store and each node limits on
    /// its own. `None` for a backend that is never shared.
    fn degraded(&self) -> Option<tokio::sync::watch::Receiver<bool>> {
        None
    }

    /// For metrics: calls made to a shared backend's store so far.
    fn remote_calls(&self) -> u64 {
        0
    }
}

/// One client's rate and its pending count of refused calls, for the aggregated audit record
/// (one per client per second, not one per refused call).
pub struct ClientLimit {
    rate: Arc<dyn Rate>,
    quota: (u32, u32),
    /// Calls refused since the last aggregated audit record, by method.
    refused: [AtomicU64; Method::ALL.len()],
    /// The caller of the latest refused call, for the aggregated record.
    last_refused_peer: ArcSwapOption<Peer>,
}

impl ClientLimit {
    fn new(rate: Arc<dyn Rate>, quota: (u32, u32)) -> ClientLimit {
        ClientLimit {
            rate,
            quota,
            refused: Default::default(),
            last_refused_peer: ArcSwapOption::empty(),
        }
    }

    /// Takes one unit of capacity now, or says how long until there is one.
    pub async fn admit(&self) -> Result<(), Duration> {
        self.rate.admit().await
    }

    /// Waits on `clock` until one unit of capacity is free and takes it.
    pub async fn acquire(&self, clock: &Clock) {
        while let Err(wait) = self.admit().await {
            // A deadline read right after the refusal, so a clock that moves before the sleep
            // starts is not waited for twice.
            let at = clock.now().after(wait.max(Duration::from_micros(50)));
            clock.sleep_until(at).await;
        }
    }

    /// Counts a call refused for its rate, to be audited in aggregate.
    pub fn note_refused(&self, method: Method, peer: &Arc<Peer>) {
        self.refused[method as usize].fetch_add(1, Ordering::Relaxed);
        self.last_refused_peer.store(Some(peer.clone()));
    }

    /// Takes the count of refused calls of `method` since the last take, with the latest
    /// caller.
    pub fn take_refused(&self, method: Method) -> (u64, Option<Arc<Peer>>) {
        let n = self.refused[method as usize].swap(0, Ordering::Relaxed);
        (
            n,
            (n > 0)
                .then(|| self.last_refused_peer.load_full())
                .flatten(),
        )
    }
}

/// Refusals of unknown certificate names audited one by one per second, all names together.
const UNKNOWN_RATE: u32 = 100;

pub struct Limits {
    backend: Arc<dyn RateBackend>,
    clients: ArcSwap<HashMap<Arc<str>, Arc<ClientLimit>>>,
    /// Shared by every certificate whose name is no configured client: their refusals are
    /// audited individually up to this rate, in aggregate past it. Kept in this process
    /// whatever the backend: it protects this node's audit log.
    unknown: Arc<ClientLimit>,
    in_flight: Arc<Semaphore>,
    max_in_flight: usize,
}

impl Limits {
    pub fn new(
        policy: &Policy,
        max_in_flight: usize,
        backend: Arc<dyn RateBackend>,
        clock: &Clock,
    ) -> Limits {
        let unknown = local::LocalRate::new(clock, UNKNOWN_RATE, UNKNOWN_RATE);
        let limits = Limits {
            backend,
            clients: ArcSwap::from_pointee(HashMap::new()),
            unknown: Arc::new(ClientLimit::new(
                Arc::new(unknown),
                (UNKNOWN_RATE, UNKNOWN_RATE),
            )),
            in_flight: Arc::new(Semaphore::new(max_in_flight)),
            max_in_flight,
        };
        limits.update(policy);
        limits
    }

    /// Installs the clients of a new policy. A client whose rate and burst are unchanged
    /// keeps its limiter (and so the capacity it has used), so a reload is not a free burst.
    pub fn update(&self, policy: &Policy) {
        let old = self.clients.load();
        let new = policy
            .clients()
            .map(|c: &Arc<Client>| {
                let quota = (c.rate_per_sec, c.burst);
                let kept = old.get(&*c.id).filter(|l| l.quota == quota).cloned();
                let limit = kept.unwrap_or_else(|| {
                    let rate = self.backend.rate(&c.id, c.rate_per_sec, c.burst);
                    Arc::new(ClientLimit::new(rate, quota))
                });
                (c.id.clone(), limit)
            })
            .collect();
        self.clients.store(Arc::new(new));
    }

    /// The limiter of a configured client.
    pub fn client(&self, id: &str) -> Option<Arc<ClientLimit>> {
        self.clients.load().get(id).cloned()
    }

    /// Where the rates are kept, for metrics.
    pub fn backend(&self) -> &Arc<dyn RateBackend> {
        &self.backend
    }

    /// The limiter shared by unknown certificate names.
    pub fn unknown(&self) -> Arc<ClientLimit> {
        self.unknown.clone()
    }

    /// Every client's limiter, for flushing aggregated audit records.
    pub fn all(&self) -> Vec<(Arc<str>, Arc<ClientLimit>)> {
        self.clients
            .load()
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }

    /// A place among the calls in flight, or `None` when the gateway is full.
    pub fn admit(&self) -> Option<OwnedSemaphorePermit> {
        self.in_flight.clone().try_acquire_owned().ok()
    }

    pub fn max_in_flight(&self) -> usize {
        self.max_in_flight
    }

    /// Calls in flight now.
    pub fn in_flight(&self) -> usize {
        self.max_in_flight - self.in_flight.available_permits()
    }
}
