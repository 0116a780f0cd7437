//! Per-client rates shared by every node of a cluster (`[limits] shared_url`, Redis), kept off
//! the per-call path the way Envoy's global rate limiting and YouTube's Doorman hand out
//! capacity: in leases.
//!
//! Redis holds one GCRA bucket per client (its theoretical arrival time, advanced by one Lua
//! script, so a lease is atomic). A node **leases a batch** of a client's tokens at a time —
//! `rate / 20` of them but at least 20, and no more than `(rate × 10 + burst) / (10 × nodes)`
//! (see `batch`) — and admits from it locally; when half the batch is spent
//! it leases the next one in the background, so a call waits on Redis only when a node's
//! batch ran dry. A lease is a whole batch or nothing, and Redis says when to ask again (see
//! `LEASE`): at the limit, nodes sharing a client's flood take turns instead of asking in
//! vain, and until then the node refuses without asking (that is the `retry-after-ms`).
//!
//! **Bounds.** Tokens are counted as spent when leased, so across all nodes over any window
//! the calls admitted are at most what the bucket allows (`rate × window + burst`) plus the
//! tokens nodes held unspent when the window opened: at most one batch per node, so at most
//! `(rate × 10 + burst) / 10` — 10% of a 10 s window's allowance (OPERATIONS.md §14). Redis is
//! asked about once per batch: at the limit, one call per 20 or more admitted.
//!
//! **Redis unreachable.** Each node then admits its share by itself: `rate` and `burst`
//! divided by the nodes holding a cluster lease (never unlimited, never nothing), says so in
//! the log and `popgate_shared_limits_degraded`, and probes Redis every second; once Redis
//! answers it leases from the shared buckets again.
//!
//! Time: Redis's own clock decides the buckets (nodes' clocks need not agree), except under a
//! test's manual clock, which every node of the test shares and which then decides instead.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;
use tokio::sync::watch;

use arc_swap::ArcSwapOption;
use async_trait::async_trait;
use redis::aio::MultiplexedConnection;

use super::local::LocalRate;
use super::{Rate, RateBackend};
use crate::clock::{Clock, Tick};

/// Leases `ARGV[3]` tokens of the GCRA bucket `KEYS[1]` (rate `ARGV[1]`/s, burst `ARGV[2]`),
/// at time `ARGV[4]` µs (0: Redis's clock), for node `ARGV[5]`. Returns {granted, µs before
/// this node should ask again (0: another batch is free now)}.
///
/// A lease is **the whole batch or nothing**. Granting what is free would, at the limit, hand
/// out one token per call (one frees every `1 / rate`), and Redis would be asked about every
/// admitted call. And a node is told when to ask again: once a batch would be free for each of
/// the N nodes that asked for this client in the last second (`KEYS[2]`), at most the burst.
/// Nodes that share a client's flood then come back at staggered times, each finding its
/// batch, instead of all coming back when one batch is free and N − 1 asking in vain; and a
/// node does not lease ahead of time what could only be refused. A client below its rate
/// leaves enough free that the answer is "now", and leasing ahead goes on as before.
const LEASE: &str = r#"
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local want = tonumber(ARGV[3])
local now = tonumber(ARGV[4])
if now == 0 then
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000000 + tonumber(t[2])
end
local interval = 1000000 / rate
local tat = tonumber(redis.call('GET', KEYS[1]) or now)
if tat < now then tat = now end
local free = math.floor((now + burst * interval - tat) / interval)
local granted = 0
if free >= want then granted = want end
tat = tat + granted * interval
redis.call('SET', KEYS[1], string.format('%.0f', tat), 'PX', math.ceil((tat - now) / 1000) + 1000)
redis.call('ZADD', KEYS[2], now, ARGV[5])
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now - 1000000)
redis.call('PEXPIRE', KEYS[2], 2000)
local enough = math.min(want * redis.call('ZCARD', KEYS[2]), burst)
local wait = math.max(0, math.ceil(tat + enough * interval - burst * interval - now))
return {granted, wait}
"#;

/// A Redis call that takes longer counts as Redis being unreachable.
const CALL_TIMEOUT: Duration = Duration::from_millis(250);
/// How often an unreachable Redis is tried again.
const PROBE_EVERY: Duration = Duration::from_secs(1);

/// How many nodes share the cluster now (from the store's leases; 1 for a single node).
pub type Membership = Arc<dyn Fn() -> usize + Send + Sync>;

/// The connection to Redis and whether it works, shared by every client's rate.
struct Redis {
    client: redis::Client,
    conn: ArcSwapOption<MultiplexedConnection>,
    script: redis::Script,
    /// `true` while Redis cannot be reached.
    degraded: watch::Sender<bool>,
    probing: AtomicBool,
    calls: AtomicU64,
    clock: Clock,
    members: Membership,
    /// This node's name among the askers of a client's bucket.
    node: String,
}

impl Redis {
    fn degraded(&self) -> bool {
        *self.degraded.borrow()
    }

    /// Redis did not answer: limit locally, and try it again every second.
    fn lost(self: &Arc<Self>, why: &str) {
        self.conn.store(None);
        if !self.degraded.send_replace(true) {
            tracing::warn!(
                why,
                "shared rate limits unreachable: each node admits its share of every rate until Redis answers"
            );
        }
        if !self.probing.swap(true, Ordering::AcqRel) {
            let me = self.clone();
            tokio::spawn(async move {
                loop {
                    tokio::time::sleep(PROBE_EVERY).await;
                    if me.connect().await.is_ok() {
                        me.probing.store(false, Ordering::Release);
                        if me.degraded.send_replace(false) {
                            tracing::info!("shared rate limits back: leasing from Redis again");
                        }
                        return;
                    }
                }
            });
        }
    }

    async fn connect(&self) -> Result<MultiplexedConnection, String> {
        let conn = tokio::time::timeout(
            CALL_TIMEOUT * 4,
            self.client.get_multiplexed_async_connection(),
        )
        .await
        .map_err(|_| "connect timed out".to_owned())?
        .map_err(|e| e.to_string())?;
        let mut probe = conn.clone();
        tokio::time::timeout(
            CALL_TIMEOUT,
            redis::cmd("PING").query_async::<String>(&mut probe),
        )
        .await
        .map_err(|_| "PING timed out".to_owned())?
        .map_err(|e| e.to_string())?;
        self.conn.store(Some(Arc::new(conn.clone())));
        Ok(conn)
    }

    /// Leases `want` tokens or none: (granted, time before asking again).
    async fn lease(
        self: &Arc<Self>,
        key: &Keys,
        rate: u32,
        burst: u32,
        want: u32,
    ) -> Result<(u32, Duration), String> {
        let mut conn = match self.conn.load_full() {
            Some(c) => (*c).clone(),
            None => self.connect().await?,
        };
        // Under a test's manual clock (shared by the test's nodes) its time decides; the
        // offset keeps 0 meaning "Redis's clock".
        let now_us = match self.clock.is_manual() {
            true => self.clock.now().as_nanos() / 1000 + 1,
            false => 0,
        };
        self.calls.fetch_add(1, Ordering::Relaxed);
        let mut call = self.script.prepare_invoke();
        call.key(&key.bucket)
            .key(&key.askers)
            .arg(rate)
            .arg(burst)
            .arg(want)
            .arg(now_us)
            .arg(&self.node);
        let (granted, wait_us): (u32, u64) =
            tokio::time::timeout(CALL_TIMEOUT, call.invoke_async(&mut conn))
                .await
                .map_err(|_| "the lease timed out".to_owned())?
                .map_err(|e| e.to_string())?;
        Ok((granted, Duration::from_micros(wait_us)))
    }
}

/// Tokens leased at a time: enough that Redis is asked at most once per 20 admitted calls
/// (and once per `rate / 20` for fast clients), few enough that what `nodes` hold unspent
/// stays within 10% of 10 s of the rate.
fn batch(rate: u32, burst: u32, nodes: usize) -> u32 {
    let (rate, burst, nodes) = (
        u64::from(rate.max(1)),
        u64::from(burst.max(1)),
        nodes.max(1) as u64,
    );
    let wanted = (rate / 20).max(20);
    let bound = ((rate * 10 + burst) / (10 * nodes)).max(1);
    wanted.min(bound).min(burst) as u32
}

/// Every client's rate kept in Redis, shared by the nodes of a cluster.
pub struct SharedRates {
    redis: Arc<Redis>,
}

impl SharedRates {
    /// `url`: `redis://host:port[/db]`. Connects in the background: until Redis answers, each
    /// node limits on its own (as when Redis is lost).
    /// `node`: this node's id, unique in the cluster.
    pub fn new(
        url: &str,
        clock: Clock,
        members: Membership,
        node: &str,
    ) -> Result<SharedRates, String> {
        let client = redis::Client::open(url).map_err(|e| e.to_string())?;
        let redis = Arc::new(Redis {
            client,
            conn: ArcSwapOption::empty(),
            script: redis::Script::new(LEASE),
            degraded: watch::Sender::new(false),
            probing: AtomicBool::new(false),
            calls: AtomicU64::new(0),
            clock,
            members,
            node: node.to_owned(),
        });
        Ok(SharedRates { redis })
    }
}

impl RateBackend for SharedRates {
    fn rate(&self, client: &str, rate_per_sec: u32, burst: u32) -> Arc<dyn Rate> {
        Arc::new(SharedRate {
            inner: Arc::new(Inner {
                // A hash tag, so a Redis Cluster keeps both keys of a client on one shard,
                // as a script's keys must be.
                key: Keys {
                    bucket: format!("popgate:rate:{{{client}}}"),
                    askers: format!("popgate:rate:{{{client}}}:askers"),
                },
                rate: rate_per_sec.max(1),
                burst: burst.max(1),
                redis: self.redis.clone(),
                local: Mutex::new(Local::default()),
                refill: tokio::sync::Mutex::new(()),
                fallback: Mutex::new(None),
            }),
        })
    }

    fn degraded(&self) -> Option<watch::Receiver<bool>> {
        Some(self.redis.degraded.subscribe())
    }

    fn remote_calls(&self) -> u64 {
        self.redis.calls.load(Ordering::Relaxed)
    }
}

struct SharedRate {
    inner: Arc<Inner>,
}

/// A client's keys in Redis: its bucket, and which nodes asked for it lately.
struct Keys {
    bucket: String,
    askers: String,
}

struct Inner {
    key: Keys,
    rate: u32,
    burst: u32,
    redis: Arc<Redis>,
    local: Mutex<Local>,
    /// One lease in flight per client and node; callers that find the batch dry wait for it.
    refill: tokio::sync::Mutex<()>,
    /// This node's share of the rate while Redis is unreachable, for so many nodes.
    fallback: Mutex<Option<(usize, Arc<LocalRate>)>>,
}

#[derive(Default)]
struct Local {
    tokens: u32,
    /// Redis said no token before this: do not ask again until then.
    next_at: Tick,
    prefetching: bool,
}

impl Inner {
    /// Tokens leased at a time, for the cluster as it is now.
    fn batch(&self) -> u32 {
        batch(self.rate, self.burst, (self.redis.members)())
    }

    fn local(&self) -> std::sync::MutexGuard<'_, Local> {
        self.local.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// This node's share of the rate: rate and burst divided by the nodes now in the cluster.
    fn share(&self) -> Arc<LocalRate> {
        let n = (self.redis.members)().max(1);
        let mut f = self.fallback.lock().unwrap_or_else(PoisonError::into_inner);
        match &*f {
            Some((m, rate)) if *m == n => rate.clone(),
            _ => {
                let div = |x: u32| (x / n as u32).max(1);
                let rate = Arc::new(LocalRate::new(
                    &self.redis.clock,
                    div(self.rate),
                    div(self.burst),
                ));
                *f = Some((n, rate.clone()));
                rate
            }
        }
    }

    /// Leases the next batch and adds it to the local tokens.
    async fn lease(self: &Arc<Self>) -> Result<(), String> {
        let (granted, wait) = self
            .redis
            .lease(&self.key, self.rate, self.burst, self.batch())
            .await?;
        let mut l = self.local();
        l.tokens += granted;
        l.next_at = self.redis.clock.now().after(wait);
        Ok(())
    }
}

#[async_trait]
impl Rate for SharedRate {
    async fn admit(&self) -> Result<(), Duration> {
        let inner = &self.inner;
        if inner.redis.degraded() {
            return inner.share().try_acquire();
        }
        let now = inner.redis.clock.now();
        {
            let mut l = inner.local();
            if l.tokens > 0 {
                l.tokens -= 1;
                // Not while Redis has said there is nothing before `next_at`: asking again
                // then would only cost a call.
                if l.tokens <= inner.batch() / 2 && !l.prefetching && now >= l.next_at {
                    // The next batch, before this one runs out, off this call's path.
                    l.prefetching = true;
                    let me = inner.clone();
                    tokio::spawn(async move {
                        let _one = me.refill.lock().await;
                        if let Err(e) = me.lease().await {
                            me.redis.lost(&e);
                        }
                        me.local().prefetching = false;
                    });
                }
                return Ok(());
            }
            if now < l.next_at {
                return Err(l.next_at.since(now));
            }
        }
        // The batch ran dry: wait for a lease (one asks, the others wait for its answer).
        let _one = inner.refill.lock().await;
        {
            let mut l = inner.local();
            if l.tokens > 0 {
                l.tokens -= 1;
                return Ok(());
            }
            let now = inner.redis.clock.now();
            if now < l.next_at {
                return Err(l.next_at.since(now));
            }
        }
        if let Err(e) = inner.lease().await {
            inner.redis.lost(&e);
            return inner.share().try_acquire();
        }
        let mut l = inner.local();
        if l.tokens > 0 {
            l.tokens -= 1;
            return Ok(());
        }
        let now = inner.redis.clock.now();
        Err(l
            .next_at
            .since(now)
            .max(Duration::from_micros(1_000_000 / u64::from(inner.rate))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_batch_asks_redis_once_per_twenty_calls_and_bounds_what_nodes_hold() {
        assert_eq!(batch(100, 100, 3), 20);
        assert_eq!(batch(2000, 4000, 3), 100);
        // A slow client: what three nodes hold stays within 10% of 10 s of its rate.
        assert_eq!(batch(10, 10, 3), 3);
        assert!(3 * batch(10, 10, 3) <= (10 * 10 + 10) / 10);
        // Never more than the burst, never none.
        assert_eq!(batch(1000, 5, 1), 5);
        assert_eq!(batch(1, 1, 50), 1);
    }
}
