//! The gateway's counters and their Prometheus endpoint (`[server] metrics_listen`,
//! `/metrics`). One set of per-client counters (calls by method and outcome, reuse, refusals)
//! is kept here and read by both `GetStats` ([`Metrics::client_stats`]) and Prometheus, so the
//! two can never disagree. Gauges that are read on demand (the store's size, the audit log's
//! state) are handed to [`Metrics::render`] by whoever owns them; this module imports no other
//! part of the gateway.
//!
//! Labels carry client ids, methods and outcomes only — never personal data — and client
//! labels only take configured ids (anything else is `unknown`), so a caller cannot grow the
//! number of series.
//!
//! Renewals: every client certificate that made a call since start-up is remembered by
//! fingerprint ([`Metrics::certificate_seen`], once per connection), so that
//! `popgate_client_certificate_expiry_days` shows, per client, the soonest expiry among those
//! the current CRL does not revoke, and a certificate with fewer than
//! [`EXPIRY_WARNING_DAYS`] left is logged once.

use std::borrow::Borrow;
use std::collections::{HashMap, HashSet};
use std::hash::Hash;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError, RwLock};
use std::time::Duration;

use futures_util::future::BoxFuture;
use prometheus::{
    Encoder, GaugeVec, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge,
    IntGaugeVec, Opts, Registry, TextEncoder,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use crate::audit::{AuditStats, Outcome};
use crate::hex::to_hex;
use crate::identity::Peer;
use crate::policy::Method;

/// A client certificate with fewer days than this left is logged (once) when it is presented.
pub const EXPIRY_WARNING_DAYS: i64 = 30;
const DAY_SECS: i64 = 86_400;

/// The gateway's metrics. Cheap to update: a labelled counter is a hash lookup and an add.
pub struct Metrics {
    registry: Registry,
    pub requests: IntCounterVec,
    pub latency: HistogramVec,
    pub reused: IntCounterVec,
    pub rate_limited: IntCounterVec,
    pub shed: IntCounterVec,
    pub audit_records: IntGauge,
    audit_syncs: IntCounter,
    audit_failures: IntCounter,
    audit_healthy: IntGauge,
    store_healthy: IntGauge,
    pub audit_fsync: HistogramVec,
    /// A cluster write's wait, after its commit, for the other nodes' caches.
    pub write_wait: Histogram,
    pub audit_queue: IntGauge,
    pub cache_entries: IntGauge,
    pub store_records: IntGauge,
    pub reuse_rate: GaugeVec,
    pub cert_expiry_days: GaugeVec,
    /// (label, not-after as Unix seconds) of the certificates watched, set at start and reload.
    cert_not_after: std::sync::Mutex<Vec<(&'static str, i64)>>,
    /// Days left on each client's soonest-expiring certificate in use, set at each scrape.
    client_cert_expiry_days: GaugeVec,
    /// Client certificates that made a call since start-up, by fingerprint. Only certificates
    /// of configured clients that passed the CRL get here, so callers cannot grow it at will.
    client_certs: RwLock<HashMap<Arc<str>, Arc<SeenCert>>>,
    pub in_flight: IntGauge,
    connections: IntGauge,
    shared_degraded: IntGauge,
    shared_calls: IntCounter,
    cluster_nodes: IntGauge,
    build_info: IntGaugeVec,
    /// `latency` by method, resolved on first use.
    latency_of: [OnceLock<Histogram>; Method::ALL.len()],
    /// Each configured client's series, resolved once (see [`ClientMetrics`]).
    clients: RwLock<HashMap<Arc<str>, Arc<ClientMetrics>>>,
    /// Calls from certificates that name no configured client, all under one label.
    unknown: Arc<ClientMetrics>,
    /// Held while rendering: counters that mirror another component's totals are advanced by
    /// the difference, which two scrapes at once must not both add.
    rendering: Mutex<()>,
}

/// One client's labelled series, resolved on first use and then kept: counting a call is a
/// few atomic adds instead of hashing label values and searching the vectors on every call.
/// A series still appears in `/metrics` only once it has been counted.
pub struct ClientMetrics {
    client: Arc<str>,
    /// `requests` by method and outcome (indexed by their discriminants).
    requests: [[OnceLock<IntCounter>; Outcome::ALL.len()]; Method::ALL.len()],
    reused: OnceLock<IntCounter>,
    rate_limited: OnceLock<IntCounter>,
    shed: OnceLock<IntCounter>,
}

impl ClientMetrics {
    fn new(client: Arc<str>) -> ClientMetrics {
        ClientMetrics {
            client,
            requests: Default::default(),
            reused: OnceLock::new(),
            rate_limited: OnceLock::new(),
            shed: OnceLock::new(),
        }
    }

    /// Calls counted with `outcome`, all methods together.
    fn with_outcome(&self, outcome: Outcome) -> u64 {
        self.requests
            .iter()
            .map(|by_outcome| read(&by_outcome[outcome as usize]))
            .sum()
    }

    fn snapshot(&self) -> ClientStats {
        ClientStats {
            client_id: self.client.to_string(),
            requests: Outcome::ALL.into_iter().map(|o| self.with_outcome(o)).sum(),
            reused: read(&self.reused),
            denied: self.with_outcome(Outcome::Denied),
            rate_limited: self.with_outcome(Outcome::RateLimited),
            not_found: self.with_outcome(Outcome::NotFound),
        }
    }
}

/// A series' count, 0 while it was never used.
fn read(slot: &OnceLock<IntCounter>) -> u64 {
    slot.get().map_or(0, IntCounter::get)
}

/// One client's counters since start-up, as `GetStats` reports them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientStats {
    pub client_id: String,
    pub requests: u64,
    pub reused: u64,
    pub denied: u64,
    pub rate_limited: u64,
    pub not_found: u64,
}

/// A client certificate presented to the gateway.
#[derive(Debug)]
struct SeenCert {
    client: Arc<str>,
    serial: Vec<u8>,
    /// Unix seconds.
    not_after: i64,
    /// The expiry warning was logged: once per certificate and process run.
    warned: AtomicBool,
}

impl SeenCert {
    /// Logs, once, that this certificate has fewer than [`EXPIRY_WARNING_DAYS`] left.
    fn warn_if_expiring(&self, now: i64) {
        let left = self.not_after - now;
        if left < EXPIRY_WARNING_DAYS * DAY_SECS && !self.warned.swap(true, Ordering::Relaxed) {
            tracing::warn!(
                client = %self.client,
                serial = %to_hex(&self.serial),
                days_left = left.div_euclid(DAY_SECS),
                "client certificate expires soon: sign the agency's renewal, then revoke this serial once it has switched"
            );
        }
    }
}

/// What other components report at each scrape.
#[derive(Debug, Clone, Default)]
pub struct Gauges {
    pub connections: usize,
    /// `Some` with shared rate limits: whether they are degraded to per-node shares.
    pub shared_limits_degraded: Option<bool>,
    /// Calls made to the shared limits' store.
    pub shared_limit_calls: u64,
    /// `Some` in a cluster: the nodes holding a lease, this one included.
    pub cluster_nodes: Option<usize>,
    pub store_records: u64,
    pub store_healthy: bool,
    pub cache_entries: u64,
    pub in_flight: usize,
    pub audit: AuditStats,
    pub audit_healthy: bool,
    /// The serials the current CRL revokes: their certificates drop out of the client
    /// certificate expiry gauge.
    pub revoked_serials: Arc<HashSet<Vec<u8>>>,
}

/// The entry of `key` in a per-client map that is read on every call and written once per
/// client: a read lock on the way in, the write lock only to insert `make()`'s key and value.
fn per_client<K, Q, V>(
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

/// The series of `vec` with `labels`, looked up on first use only.
fn resolved<'a>(
    slot: &'a OnceLock<IntCounter>,
    vec: &IntCounterVec,
    labels: &[&str],
) -> &'a IntCounter {
    slot.get_or_init(|| vec.with_label_values(labels))
}

fn counter(name: &str, help: &str, labels: &[&str]) -> IntCounterVec {
    IntCounterVec::new(Opts::new(name, help), labels).expect("static metric definition")
}

impl Metrics {
    pub fn new() -> Metrics {
        let latency_buckets = vec![
            0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0,
        ];
        let m = Metrics {
            registry: Registry::new(),
            requests: counter(
                "popgate_requests_total",
                "Calls by client, method and outcome (ok, denied, invalid, not_found, rate_limited, error).",
                &["client", "method", "outcome"],
            ),
            latency: HistogramVec::new(
                HistogramOpts::new(
                    "popgate_request_duration_seconds",
                    "Time from receipt to answer, audit sync included.",
                )
                .buckets(latency_buckets.clone()),
                &["method"],
            )
            .expect("static metric definition"),
            reused: counter(
                "popgate_reused_total",
                "Answers served from the reuse cache, by client.",
                &["client"],
            ),
            rate_limited: counter(
                "popgate_rate_limited_total",
                "Unary calls refused for the client's rate (paced stream items are not refusals).",
                &["client"],
            ),
            shed: counter(
                "popgate_shed_total",
                "Calls shed with UNAVAILABLE because the gateway was full.",
                &["client"],
            ),
            audit_records: IntGauge::new(
                "popgate_audit_last_seq",
                "Sequence number of the last audit record acknowledged.",
            )
            .expect("static metric definition"),
            audit_syncs: IntCounter::new(
                "popgate_audit_syncs_total",
                "fdatasync calls on audit files since start-up (records share syncs).",
            )
            .expect("static metric definition"),
            audit_failures: IntCounter::new(
                "popgate_audit_failures_total",
                "Failed audit writes or syncs since start-up; any increase needs attention.",
            )
            .expect("static metric definition"),
            audit_healthy: IntGauge::new(
                "popgate_audit_healthy",
                "1 while the audit log can be written; 0 means the gateway is refusing calls.",
            )
            .expect("static metric definition"),
            store_healthy: IntGauge::new(
                "popgate_store_healthy",
                "1 while the population store answers; 0 means calls that need it fail.",
            )
            .expect("static metric definition"),
            audit_fsync: HistogramVec::new(
                HistogramOpts::new(
                    "popgate_audit_fsync_seconds",
                    "Duration of audit log syncs.",
                )
                .buckets(latency_buckets.clone()),
                &[],
            )
            .expect("static metric definition"),
            write_wait: Histogram::with_opts(
                HistogramOpts::new(
                    "popgate_cluster_write_wait_seconds",
                    "A PutCitizen's wait after its commit until every other node holding a lease has dropped the old version (or its lease ran out).",
                )
                .buckets(latency_buckets),
            )
            .expect("static metric definition"),
            audit_queue: IntGauge::new(
                "popgate_audit_queue_depth",
                "Audit records waiting to be written.",
            )
            .expect("static metric definition"),
            cache_entries: IntGauge::new("popgate_cache_entries", "Records in the reuse cache.")
                .expect("static metric definition"),
            store_records: IntGauge::new("popgate_store_records", "Citizens in the store.")
                .expect("static metric definition"),
            reuse_rate: GaugeVec::new(
                Opts::new(
                    "popgate_reuse_rate",
                    "Share of calls answered from the reuse cache since start-up.",
                ),
                &[],
            )
            .expect("static metric definition"),
            cert_expiry_days: GaugeVec::new(
                Opts::new(
                    "popgate_certificate_expiry_days",
                    "Days until the certificate expires (server, client CA).",
                ),
                &["certificate"],
            )
            .expect("static metric definition"),
            cert_not_after: std::sync::Mutex::new(Vec::new()),
            client_cert_expiry_days: GaugeVec::new(
                Opts::new(
                    "popgate_client_certificate_expiry_days",
                    "Days until the soonest expiry among the client's certificates that called since start-up and are not revoked.",
                ),
                &["client"],
            )
            .expect("static metric definition"),
            client_certs: RwLock::default(),
            in_flight: IntGauge::new("popgate_in_flight", "Unary calls being served now.")
                .expect("static metric definition"),
            connections: IntGauge::new(
                "popgate_connections_open",
                "Client connections open now (at most [limits] max_connections).",
            )
            .expect("static metric definition"),
            shared_degraded: IntGauge::new(
                "popgate_shared_limits_degraded",
                "1 while the shared rate limits (Redis) cannot be reached and this node admits its share of each rate by itself.",
            )
            .expect("static metric definition"),
            cluster_nodes: IntGauge::new(
                "popgate_cluster_nodes",
                "Nodes of the cluster holding a cache lease, this one included, as of its last renewal.",
            )
            .expect("static metric definition"),
            shared_calls: IntCounter::new(
                "popgate_shared_limit_calls_total",
                "Leases of tokens asked of the shared rate limits (Redis).",
            )
            .expect("static metric definition"),
            build_info: IntGaugeVec::new(
                Opts::new(
                    "popgate_build_info",
                    "Always 1; labels say which build runs.",
                ),
                &["version"],
            )
            .expect("static metric definition"),
            latency_of: Default::default(),
            clients: RwLock::default(),
            unknown: Arc::new(ClientMetrics::new(Arc::from("unknown"))),
            rendering: Mutex::new(()),
        };
        for c in [
            Box::new(m.requests.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(m.latency.clone()),
            Box::new(m.reused.clone()),
            Box::new(m.rate_limited.clone()),
            Box::new(m.shed.clone()),
            Box::new(m.audit_records.clone()),
            Box::new(m.audit_syncs.clone()),
            Box::new(m.audit_failures.clone()),
            Box::new(m.audit_healthy.clone()),
            Box::new(m.store_healthy.clone()),
            Box::new(m.audit_fsync.clone()),
            Box::new(m.write_wait.clone()),
            Box::new(m.audit_queue.clone()),
            Box::new(m.cache_entries.clone()),
            Box::new(m.store_records.clone()),
            Box::new(m.reuse_rate.clone()),
            Box::new(m.cert_expiry_days.clone()),
            Box::new(m.client_cert_expiry_days.clone()),
            Box::new(m.in_flight.clone()),
            Box::new(m.connections.clone()),
            Box::new(m.shared_degraded.clone()),
            Box::new(m.shared_calls.clone()),
            Box::new(m.cluster_nodes.clone()),
            Box::new(m.build_info.clone()),
        ] {
            m.registry.register(c).expect("metric names are unique");
        }
        m.build_info
            .with_label_values(&[env!("CARGO_PKG_VERSION")])
            .set(1);
        m
    }

    /// The series of the configured client `id` (created on first use; only configured
    /// clients get here, so callers cannot grow the map).
    pub fn client(&self, id: &Arc<str>) -> Arc<ClientMetrics> {
        per_client(&self.clients, &**id, || {
            (id.clone(), ClientMetrics::new(id.clone()))
        })
    }

    /// The series of every certificate name that is no configured client.
    pub fn unknown(&self) -> Arc<ClientMetrics> {
        self.unknown.clone()
    }

    /// Takes note of the certificate `peer` presented as configured client `client`: on the
    /// connection's first call only (later calls cost one atomic load), remembered by
    /// fingerprint for the expiry gauge, and logged if it expires within
    /// [`EXPIRY_WARNING_DAYS`].
    pub fn certificate_seen(&self, client: &Arc<str>, peer: &Peer) {
        if !peer.first_noted() {
            return;
        }
        let Some(not_after) = peer.not_after else {
            return;
        };
        let seen = per_client(&self.client_certs, &*peer.cert_sha256, || {
            (
                peer.cert_sha256.clone(),
                SeenCert {
                    client: client.clone(),
                    serial: peer.serial.clone(),
                    not_after,
                    warned: AtomicBool::new(false),
                },
            )
        });
        seen.warn_if_expiring(unix_now());
    }

    /// Sets the client certificate expiry gauge: per client, the soonest expiry among its
    /// certificates seen and not in `revoked` (a client whose only ones are revoked has no
    /// series). Also warns for a certificate that crossed the warning threshold on a
    /// connection kept open since its first call.
    fn set_client_cert_expiry(&self, revoked: &HashSet<Vec<u8>>, now: i64) {
        let certs = self
            .client_certs
            .read()
            .unwrap_or_else(PoisonError::into_inner);
        let mut soonest: HashMap<&str, i64> = HashMap::new();
        for c in certs.values().filter(|c| !revoked.contains(&c.serial)) {
            c.warn_if_expiring(now);
            soonest
                .entry(&c.client)
                .and_modify(|t| *t = (*t).min(c.not_after))
                .or_insert(c.not_after);
        }
        self.client_cert_expiry_days.reset();
        for (client, not_after) in soonest {
            self.client_cert_expiry_days
                .with_label_values(&[client])
                .set((not_after - now) as f64 / DAY_SECS as f64);
        }
    }

    /// Counts a call shed because the gateway was full.
    pub fn shed(&self, client: &ClientMetrics) {
        resolved(&client.shed, &self.shed, &[&client.client]).inc();
    }

    /// Every configured client's counters that has made a call, sorted by client id, and the
    /// totals (requests, reused) over them.
    pub fn client_stats(&self) -> (Vec<ClientStats>, u64, u64) {
        let mut clients: Vec<_> = self
            .clients
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .values()
            .map(|c| c.snapshot())
            .collect();
        clients.sort_by(|a, b| a.client_id.cmp(&b.client_id));
        let requests = clients.iter().map(|c| c.requests).sum();
        let reused = clients.iter().map(|c| c.reused).sum();
        (clients, requests, reused)
    }

    /// Counts one finished call of `client`: its outcome, its latency, whether it was reused
    /// and whether it was refused for its rate.
    pub fn call_done(
        &self,
        client: &ClientMetrics,
        method: Method,
        outcome: Outcome,
        reused: bool,
        elapsed: Duration,
    ) {
        let c = &*client.client;
        let (m, o) = (method as usize, outcome as usize);
        resolved(
            &client.requests[m][o],
            &self.requests,
            &[c, method.name(), outcome.as_str()],
        )
        .inc();
        self.latency_of[m]
            .get_or_init(|| self.latency.with_label_values(&[method.name()]))
            .observe(elapsed.as_secs_f64());
        if reused {
            resolved(&client.reused, &self.reused, &[c]).inc();
        }
        if outcome == Outcome::RateLimited {
            resolved(&client.rate_limited, &self.rate_limited, &[c]).inc();
        }
    }

    /// The text exposition of every metric, with the gauges that are read on demand set.
    pub fn render(&self, gauges: &Gauges) -> String {
        let _one_at_a_time = self
            .rendering
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let (_, requests, reused) = self.client_stats();
        self.reuse_rate
            .with_label_values(&[] as &[&str])
            .set(reuse_rate(requests, reused));
        self.store_records.set(gauges.store_records as i64);
        self.store_healthy.set(i64::from(gauges.store_healthy));
        self.cache_entries.set(gauges.cache_entries as i64);
        let now = unix_now();
        self.set_client_cert_expiry(&gauges.revoked_serials, now);
        for (label, not_after) in self
            .cert_not_after
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
        {
            self.cert_expiry_days
                .with_label_values(&[*label])
                .set((not_after - now) as f64 / 86_400.0);
        }
        self.in_flight.set(gauges.in_flight as i64);
        self.connections.set(gauges.connections as i64);
        if let Some(n) = gauges.cluster_nodes {
            self.cluster_nodes.set(n as i64);
        }
        if let Some(d) = gauges.shared_limits_degraded {
            self.shared_degraded.set(i64::from(d));
        }
        self.shared_calls.inc_by(
            gauges
                .shared_limit_calls
                .saturating_sub(self.shared_calls.get()),
        );
        let audit = &gauges.audit;
        self.audit_records.set(audit.head_seq as i64);
        self.audit_queue.set(audit.queued as i64);
        // Counters of the audit log's own totals: advanced by what is new since last time.
        self.audit_syncs
            .inc_by(audit.syncs.saturating_sub(self.audit_syncs.get()));
        self.audit_failures
            .inc_by(audit.failures.saturating_sub(self.audit_failures.get()));
        self.audit_healthy.set(i64::from(gauges.audit_healthy));
        let mut out = Vec::new();
        if let Err(e) = TextEncoder::new().encode(&self.registry.gather(), &mut out) {
            tracing::warn!(error = %e, "metrics encoding failed");
        }
        String::from_utf8(out).unwrap_or_default()
    }
}

fn unix_now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

/// Share of calls answered from the reuse cache.
pub fn reuse_rate(requests: u64, reused: u64) -> f64 {
    if requests == 0 {
        0.0
    } else {
        reused as f64 / requests as f64
    }
}

/// A histogram's counts at one moment, for a benchmark to report (p50/p99 to the resolution of
/// the buckets).
#[derive(Debug, Clone, Default)]
pub struct HistogramSnapshot {
    pub count: u64,
    pub sum_secs: f64,
    /// (upper bound in seconds, observations at or below it), ascending.
    pub buckets: Vec<(f64, u64)>,
}

impl HistogramSnapshot {
    fn of(h: &Histogram) -> HistogramSnapshot {
        use prometheus::core::Collector;
        let mut snap = HistogramSnapshot::default();
        for family in h.collect() {
            for m in family.get_metric() {
                let h = m.get_histogram();
                snap.count += h.get_sample_count();
                snap.sum_secs += h.get_sample_sum();
                snap.buckets = h
                    .get_bucket()
                    .iter()
                    .map(|b| (b.upper_bound(), b.cumulative_count()))
                    .collect();
            }
        }
        snap
    }

    /// Adds another histogram of the same buckets (another node's).
    pub fn add(&mut self, other: &HistogramSnapshot) {
        self.count += other.count;
        self.sum_secs += other.sum_secs;
        if self.buckets.is_empty() {
            self.buckets = other.buckets.clone();
        } else {
            for (mine, theirs) in self.buckets.iter_mut().zip(&other.buckets) {
                mine.1 += theirs.1;
            }
        }
    }

    /// The counts since `earlier`, a snapshot of the same histogram.
    pub fn since(&self, earlier: &HistogramSnapshot) -> HistogramSnapshot {
        HistogramSnapshot {
            count: self.count.saturating_sub(earlier.count),
            sum_secs: self.sum_secs - earlier.sum_secs,
            buckets: self
                .buckets
                .iter()
                .zip(earlier.buckets.iter().chain(std::iter::repeat(&(0.0, 0))))
                .map(|(a, b)| (a.0, a.1.saturating_sub(b.1)))
                .collect(),
        }
    }

    /// The upper bound of the bucket that holds quantile `q` (0..1); `None` when empty or
    /// beyond the last bucket.
    pub fn quantile_bound(&self, q: f64) -> Option<f64> {
        if self.count == 0 {
            return None;
        }
        let want = (q * self.count as f64).ceil() as u64;
        self.buckets
            .iter()
            .find(|(_, n)| *n >= want.max(1))
            .map(|(bound, _)| *bound)
    }
}

impl Metrics {
    /// The writes' waits for the other nodes' caches so far.
    pub fn write_wait_snapshot(&self) -> HistogramSnapshot {
        HistogramSnapshot::of(&self.write_wait)
    }

    /// Records when the watched certificates expire; days left are computed at each scrape.
    pub fn set_certificates(&self, not_after: Vec<(&'static str, i64)>) {
        *self
            .cert_not_after
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = not_after;
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

/// Renders the metrics text for one scrape.
pub type Render = Arc<dyn Fn() -> BoxFuture<'static, String> + Send + Sync>;

/// Serves `GET /metrics` over plain HTTP/1.1 on `listener` until the task is dropped. Each
/// connection gets one answer; a client that sends nothing within 5 s is dropped.
pub async fn serve(listener: TcpListener, render: Render) {
    loop {
        let Ok((mut conn, _)) = listener.accept().await else {
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        };
        let render = render.clone();
        tokio::spawn(async move {
            let mut buf = vec![0u8; 4096];
            let mut len = 0;
            let head = async {
                while len < buf.len() {
                    let n = conn.read(&mut buf[len..]).await.ok()?;
                    if n == 0 {
                        return None;
                    }
                    len += n;
                    if buf[..len].windows(4).any(|w| w == b"\r\n\r\n") {
                        return Some(());
                    }
                }
                None
            };
            if tokio::time::timeout(Duration::from_secs(5), head)
                .await
                .ok()
                .flatten()
                .is_none()
            {
                return;
            }
            let line = buf[..len].split(|&b| b == b'\r').next().unwrap_or_default();
            let (status, body, ctype) = if line.starts_with(b"GET /metrics ") {
                ("200 OK", render().await, "text/plain; version=0.0.4")
            } else {
                (
                    "404 Not Found",
                    "only GET /metrics is served here\n".into(),
                    "text/plain",
                )
            };
            let resp = format!(
                "HTTP/1.1 {status}\r\ncontent-type: {ctype}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = conn.write_all(resp.as_bytes()).await;
            let _ = conn.shutdown().await;
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Log lines written while `f` runs, as text.
    fn logged(f: impl FnOnce()) -> String {
        #[derive(Clone, Default)]
        struct Buf(Arc<Mutex<Vec<u8>>>);
        impl std::io::Write for Buf {
            fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
                self.0.lock().unwrap().extend_from_slice(b);
                Ok(b.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let buf = Buf::default();
        let out = buf.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(move || out.clone())
            .with_ansi(false)
            .finish();
        tracing::subscriber::with_default(subscriber, f);
        String::from_utf8(buf.0.lock().unwrap().clone()).unwrap()
    }

    fn peer(fingerprint: &str, serial: u8, days_left: i64) -> Peer {
        Peer::new(
            "127.0.0.1:1".parse().unwrap(),
            Some("viettel".into()),
            fingerprint.repeat(32).into(),
            vec![0x40, serial],
            Some(unix_now() + days_left * DAY_SECS + 3600),
        )
    }

    fn expiry_days(m: &Metrics, revoked: &[u8]) -> Option<f64> {
        let revoked: HashSet<Vec<u8>> = revoked.iter().map(|s| vec![0x40, *s]).collect();
        m.set_client_cert_expiry(&revoked, unix_now());
        m.registry
            .gather()
            .iter()
            .find(|f| f.name() == "popgate_client_certificate_expiry_days")
            .and_then(|f| f.get_metric().first().map(|s| s.get_gauge().get_value()))
    }

    /// A renewal: the old certificate (20 days left) and the new one (400) both call; the
    /// gauge shows the old one until the CRL revokes it, then the new one. The old one is
    /// logged once, whatever the number of its connections and calls; the new one never.
    #[test]
    fn client_certificate_expiry_follows_the_unrevoked_certificates_and_warns_once() {
        let m = Metrics::new();
        let viettel: Arc<str> = Arc::from("viettel");
        assert_eq!(expiry_days(&m, &[]), None, "no series before a call");
        let old_conn = peer("ab", 1, 20);
        let text = logged(|| {
            for _ in 0..3 {
                m.certificate_seen(&viettel, &old_conn);
            }
            // Another connection with the same certificate.
            m.certificate_seen(&viettel, &peer("ab", 1, 20));
            m.certificate_seen(&viettel, &peer("cd", 2, 400));
            expiry_days(&m, &[]);
        });
        assert_eq!(text.lines().count(), 1, "{text}");
        assert!(text.contains("WARN"), "{text}");
        assert!(text.contains("client=viettel"), "{text}");
        assert!(text.contains("serial=4001"), "{text}");
        assert!(text.contains("days_left=20"), "{text}");
        assert!(!text.contains("abab"), "no fingerprint needed: {text}");

        let days = expiry_days(&m, &[]).unwrap();
        assert!((20.0..21.0).contains(&days), "{days}");
        let days = expiry_days(&m, &[1]).unwrap();
        assert!((400.0..401.0).contains(&days), "{days}");
        // Both revoked (say, the client was cut off): no series.
        assert_eq!(expiry_days(&m, &[1, 2]), None);
        // A certificate that is not near expiry is never logged.
        let quiet = logged(|| m.certificate_seen(&viettel, &peer("ef", 3, 31)));
        assert!(quiet.is_empty(), "{quiet}");
    }

    /// The per-client handles are slots indexed by method and outcome: every combination
    /// must land in its own series with the right labels, and series appear only once used.
    #[test]
    fn per_client_series_count_every_method_and_outcome_under_their_own_labels() {
        let m = Metrics::new();
        let a = m.client(&Arc::from("viettel"));
        assert!(Arc::ptr_eq(&a, &m.client(&Arc::from("viettel"))));
        let b = m.client(&Arc::from("evn"));
        for (i, method) in Method::ALL.into_iter().enumerate() {
            for (j, outcome) in Outcome::ALL.into_iter().enumerate() {
                for _ in 0..(1 + i * Outcome::ALL.len() + j) {
                    m.call_done(&a, method, outcome, j == 0, Duration::from_micros(300));
                }
            }
        }
        m.call_done(&b, Method::Verify, Outcome::Ok, false, Duration::ZERO);
        let mut n = 0;
        for (i, method) in Method::ALL.into_iter().enumerate() {
            for (j, outcome) in Outcome::ALL.into_iter().enumerate() {
                let c = m
                    .requests
                    .with_label_values(&["viettel", method.name(), outcome.as_str()]);
                assert_eq!(c.get(), (1 + i * Outcome::ALL.len() + j) as u64);
                n += c.get();
            }
        }
        let reused: u64 = (0..Method::ALL.len())
            .map(|i| (1 + i * Outcome::ALL.len()) as u64)
            .sum();
        assert_eq!(m.reused.with_label_values(&["viettel"]).get(), reused);
        let rate_limited: u64 = (0..Method::ALL.len())
            .map(|i| (1 + i * Outcome::ALL.len() + 4) as u64)
            .sum();
        assert_eq!(
            m.rate_limited.with_label_values(&["viettel"]).get(),
            rate_limited
        );
        let latency: u64 = Method::ALL
            .into_iter()
            .map(|method| {
                m.latency
                    .with_label_values(&[method.name()])
                    .get_sample_count()
            })
            .sum();
        assert_eq!(latency, n + 1);
        assert_eq!(
            m.requests.with_label_values(&["evn", "Verify", "ok"]).get(),
            1
        );
        // evn was never reused nor rate limited: no such series exist.
        let text = String::from_utf8({
            let mut out = Vec::new();
            TextEncoder::new()
                .encode(&m.registry.gather(), &mut out)
                .unwrap();
            out
        })
        .unwrap();
        assert!(
            !text.contains("popgate_reused_total{client=\"evn\"}"),
            "{text}"
        );
        assert!(text.contains("popgate_reused_total{client=\"viettel\"}"));
    }
}
