//! The gateway's domain: every call's way through identity → role → limits → rights → fetch
//! (cache, store) → audit → answer. The gRPC handlers convert a request, call [`Gateway::unary`]
//! (or, for a stream, [`Gateway::open_stream`] once and [`Gateway::stream_item`] per item) and
//! convert the answer; no rule lives there, and nothing here knows gRPC.
//!
//! One file per method, each a [`Handler`]: [`lookup`], [`verify`], [`put`], [`stats`],
//! [`follow`] (Follow and Unfollow); [`changes`] is WatchChanges, the node's change feed and the
//! change log's retention. What
//! they share — who is calling, admission, the audit record — is here, in `Gateway::pipeline`.
//!
//! Audit first: every call that reaches a configured rule — ok, denied, invalid, not found, a
//! write — is appended to the audit log, and an answer carrying data is returned only once its
//! record is durable. If the audit log cannot be written the call fails with `Unavailable`.
//! Calls refused for their rate are not audited one by one (a flood would otherwise slow the
//! audit path for everyone): [`Gateway::flush_rate_limited`] writes one record per client and
//! method carrying the count.

pub mod changes;
pub mod follow;
pub mod lookup;
pub mod put;
pub mod stats;
pub mod verify;

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use tokio::sync::{OwnedSemaphorePermit, watch};

use crate::audit::{AuditError, AuditEvent, AuditSink, Outcome};
use crate::cache::ReuseCache;
use crate::citizen::Citizen;
use crate::clock::Clock;
use crate::error::Error;
use crate::fields::FieldSet;
use crate::id::CitizenId;
use crate::identity::Peer;
use crate::limits::{ClientLimit, Limits, RateBackend};
use crate::metrics::{ClientMetrics, Gauges, Metrics};
use crate::policy::{Client, Method, Policy, truncate};
use crate::store::{ChangeLog, Store, StoreError};

pub use changes::{ChangeSeen, WatchEvent, WatchRequest};
pub use follow::{FollowRequest, Followed, UnfollowRequest};
pub use lookup::{Lookup, LookupRequest};
pub use put::{PutRequest, Written};
pub use stats::{Stats, StatsRequest};
pub use verify::{Claims, FieldMatch, MatchMode, Verification, VerifyRequest, match_claims};

/// One method's part of the pipeline: what it checks before any data is touched, and the
/// work it does once allowed.
pub trait Handler: Send + Sized {
    const METHOD: Method;
    /// What [`Handler::authorize`] established (the parsed subject, the fields allowed).
    type Plan: Send;
    type Answer: Send;

    /// The caller's `purpose` and `request_id`, echoed in the audit record.
    fn echo(&self) -> (&str, &str) {
        ("", "")
    }

    /// Validates the request and checks it against the client's rights and purposes, noting
    /// in `call` whose data it is about. Pure: no I/O.
    fn authorize(self, client: &Client, call: &mut Call) -> Result<Self::Plan, Error>;

    /// Does the work: read (reuse cache, then store), compare, write.
    fn execute(
        plan: Self::Plan,
        gateway: &Gateway,
        call: &mut Call,
    ) -> impl Future<Output = Result<Self::Answer, Error>> + Send;
}

/// How a call waits for capacity.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// A unary call: refused at once when over the rate or when the gateway is full.
    Unary,
    /// A stream item: waits for rate capacity (its stream's window bounds what is in flight).
    Stream,
}

/// An answer and the sequence number of its audit record.
#[derive(Debug, Clone)]
pub struct Audited<T> {
    pub value: T,
    pub audit_seq: u64,
}

/// An authenticated caller, valid for one call or one stream.
#[derive(Clone)]
pub struct Caller {
    pub peer: Arc<Peer>,
    pub client: Arc<Client>,
    metrics: Arc<ClientMetrics>,
    limit: Arc<ClientLimit>,
    /// A stream's items take their turn for rate capacity in request order: answers go out in
    /// that order, so capacity given to a later item would only wait behind an earlier one.
    /// `None` for a unary call.
    pace: Option<Arc<tokio::sync::Mutex<()>>>,
}

/// What the audit record of one call will say, filled in as the call goes.
pub struct Call {
    client: Arc<str>,
    /// `None` only for aggregated records, which stand for calls of several connections.
    peer: Option<Arc<Peer>>,
    method: Method,
    started: Instant,
    citizen_id: Option<String>,
    fields: FieldSet,
    purpose: String,
    request_id: String,
    reused: bool,
    /// Aggregated records: how many refused calls this one stands for.
    count: Option<u64>,
    /// Set when the call's success was audited before its effect (a write): not again.
    audited: Option<u64>,
}

/// Caller-supplied text kept in audit records is bounded, so a request cannot bloat the log.
const MAX_ECHO: usize = 128;

/// The `client` of aggregated records for refusals of certificates that name no configured
/// client (the names themselves are in the individual records written within the limit).
const UNKNOWN_CLIENT: &str = "(unknown)";

/// How often a failed store is asked again whether it can answer.
const STORE_PROBE_EVERY: Duration = Duration::from_secs(1);

impl Call {
    fn new(client: Arc<str>, peer: Option<Arc<Peer>>, method: Method) -> Call {
        Call {
            client,
            peer,
            method,
            started: Instant::now(),
            citizen_id: None,
            fields: FieldSet::EMPTY,
            purpose: String::new(),
            request_id: String::new(),
            reused: false,
            count: None,
            audited: None,
        }
    }

    fn echoing(mut self, (purpose, request_id): (&str, &str)) -> Call {
        self.purpose = truncate(purpose, MAX_ECHO).to_owned();
        self.request_id = truncate(request_id, MAX_ECHO).to_owned();
        self
    }

    /// Checks what every agency request carries — the echoed purpose and request id, and the
    /// citizen id — and notes whose data the call is about.
    pub fn subject(
        &mut self,
        citizen_id: &str,
        purpose: &str,
        request_id: &str,
    ) -> Result<CitizenId, Error> {
        check_echoed("request_id", request_id)?;
        check_echoed("purpose", purpose)?;
        let id = parse_id(citizen_id)?;
        self.citizen_id = Some(id.to_string());
        Ok(id)
    }

    /// Notes the fields the call releases, checks or writes, and whether it was answered from
    /// the reuse cache.
    pub fn touched(&mut self, fields: FieldSet, reused: bool) {
        self.fields = fields;
        self.reused = reused;
    }

    /// The audit record of this call, ending with `outcome`.
    fn event(&self, outcome: Outcome, reason: Option<String>) -> AuditEvent {
        self.event_with(
            self.citizen_id.clone(),
            self.purpose.clone(),
            self.request_id.clone(),
            outcome,
            reason,
        )
    }

    /// As [`Call::event`], for the call's last record: its strings move into the record
    /// instead of being copied (three allocations and frees fewer per call).
    fn final_event(&mut self, outcome: Outcome, reason: Option<String>) -> AuditEvent {
        let citizen_id = self.citizen_id.take();
        let purpose = std::mem::take(&mut self.purpose);
        let request_id = std::mem::take(&mut self.request_id);
        self.event_with(citizen_id, purpose, request_id, outcome, reason)
    }

    fn event_with(
        &self,
        citizen_id: Option<String>,
        purpose: String,
        request_id: String,
        outcome: Outcome,
        reason: Option<String>,
    ) -> AuditEvent {
        let (cert_sha256, peer) = match &self.peer {
            Some(p) => (p.cert_sha256.clone(), p.addr_text.clone()),
            None => (Arc::from(""), Arc::from("")),
        };
        AuditEvent {
            client: self.client.clone(),
            cert_sha256,
            peer,
            method: self.method.name(),
            citizen_id,
            fields: self.fields.names(),
            purpose,
            request_id,
            outcome,
            reused: self.reused,
            latency_us: match self.count {
                Some(_) => 0,
                None => self.started.elapsed().as_micros() as u64,
            },
            count: self.count,
            reason,
        }
    }
}

/// Refuses a caller's `purpose` or `request_id` that is too long or holds control characters:
/// both go verbatim into the audit log, which must stay one readable line per record.
fn check_echoed(field: &str, value: &str) -> Result<(), Error> {
    if value.chars().count() > MAX_ECHO || value.chars().any(char::is_control) {
        return Err(Error::InvalidArgument(format!(
            "{field}: at most {MAX_ECHO} characters, no control characters"
        )));
    }
    Ok(())
}

pub(crate) fn current_year() -> i32 {
    time::OffsetDateTime::now_utc().year()
}

fn parse_id(s: &str) -> Result<CitizenId, Error> {
    CitizenId::parse(s, current_year()).map_err(|e| Error::InvalidArgument(e.to_string()))
}

/// The parts a gateway is made of; [`crate::server`] picks the backends.
pub struct Parts {
    pub policy: Policy,
    pub store: Arc<dyn Store>,
    /// The change log and follow lists (the same backend as `store`).
    pub changes: Arc<dyn ChangeLog>,
    /// Shared with a store that other nodes write, which drops what they change.
    pub cache: Arc<ReuseCache>,
    /// This node's id in a cluster; empty for a single node.
    pub node_id: String,
    pub audit: Arc<dyn AuditSink>,
    pub rates: Arc<dyn RateBackend>,
    pub metrics: Arc<Metrics>,
    pub max_in_flight: usize,
    pub clock: Clock,
}

pub struct Gateway {
    policy: ArcSwap<Policy>,
    store: Arc<dyn Store>,
    changes: Arc<dyn ChangeLog>,
    /// The node's change feed, which every change stream reads.
    feed: changes::Feed,
    /// Retention passes run so far.
    prunes: tokio::sync::watch::Sender<u64>,
    cache: Arc<ReuseCache>,
    node_id: String,
    limits: Limits,
    audit: Arc<dyn AuditSink>,
    metrics: Arc<Metrics>,
    clock: Clock,
    /// `false` from a failed store call until a probe gets an answer again.
    store_health: Arc<watch::Sender<bool>>,
    probing: Arc<AtomicBool>,
}

impl Gateway {
    pub fn new(parts: Parts) -> Gateway {
        let limits = Limits::new(
            &parts.policy,
            parts.max_in_flight,
            parts.rates,
            &parts.clock,
        );
        let feed = changes::Feed::new(*parts.changes.horizon().borrow());
        Gateway {
            policy: ArcSwap::from_pointee(parts.policy),
            store: parts.store,
            changes: parts.changes,
            feed,
            prunes: tokio::sync::watch::Sender::new(0),
            cache: parts.cache,
            node_id: parts.node_id,
            limits,
            audit: parts.audit,
            metrics: parts.metrics,
            clock: parts.clock,
            store_health: Arc::new(watch::Sender::new(true)),
            probing: Arc::new(AtomicBool::new(false)),
        }
    }

    /// Installs a new policy (reload): clients, rights, purposes, limits, revocations.
    pub fn set_policy(&self, policy: Policy) {
        self.limits.update(&policy);
        self.policy.store(Arc::new(policy));
    }

    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// The policy in force now (a reload swaps it whole), for readers other than the gRPC
    /// pipeline: the audit console decides who may see its pages by the same clients and CRL.
    pub fn policy(&self) -> Arc<Policy> {
        self.policy.load_full()
    }

    /// The audit sink every call writes to; the audit console writes its own records there
    /// too, so that they share the one chain.
    pub fn audit_sink(&self) -> &Arc<dyn AuditSink> {
        &self.audit
    }

    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    pub fn cache(&self) -> &ReuseCache {
        &self.cache
    }

    pub fn clock(&self) -> &Clock {
        &self.clock
    }

    /// The audit sink's counters since start-up.
    pub fn audit_stats(&self) -> crate::audit::AuditStats {
        self.audit.stats()
    }

    /// Citizens in the store, as the store counts them.
    pub async fn records(&self) -> Result<u64, Error> {
        self.store.count().await.map_err(|e| self.store_failed(e))
    }

    /// Whether the audit log can be written; no audit, no service.
    pub fn audit_health(&self) -> watch::Receiver<bool> {
        self.audit.health()
    }

    /// Whether the store answers; a store that cannot answer is no service either.
    pub fn store_health(&self) -> watch::Receiver<bool> {
        self.store_health.subscribe()
    }

    /// The store's own view of its connection, for a store that watches one.
    pub fn store_connection(&self) -> Option<watch::Receiver<bool>> {
        self.store.health()
    }

    /// How many nodes the cluster has now, as this node's store sees it; `None` for a single
    /// node.
    pub fn cluster_members(&self) -> Option<watch::Receiver<usize>> {
        self.store.members()
    }

    /// This node's id in a cluster; empty for a single node.
    pub fn node_id(&self) -> &str {
        &self.node_id
    }

    /// At shutdown, after the last call: leaves the cluster (if any), then stops taking audit
    /// records and makes those taken durable.
    pub async fn shutdown(&self) -> Result<(), AuditError> {
        self.store.leave().await;
        self.audit.shutdown().await
    }

    /// A unary call, start to finish.
    pub async fn unary<H: Handler>(
        &self,
        peer: Arc<Peer>,
        req: H,
    ) -> Result<Audited<H::Answer>, Error> {
        // identity, role: the certificate names a configured, unrevoked client whose role has
        // this method; refusals are audited too.
        let caller = self.authenticate(peer, H::METHOD).await?;
        self.pipeline(&caller, Admission::Unary, req).await
    }

    /// Opens a stream of `method` items: the caller is established once, as for a unary call.
    pub async fn open_stream(&self, peer: Arc<Peer>, method: Method) -> Result<Caller, Error> {
        let mut caller = self.authenticate(peer, method).await?;
        caller.pace = Some(Arc::default());
        Ok(caller)
    }

    /// One item of a stream opened with [`Gateway::open_stream`]. The caller is checked again
    /// first ([`Gateway::recheck`]); the item's own failure is its answer.
    pub async fn stream_item<H: Handler>(
        &self,
        caller: &Caller,
        req: H,
    ) -> Result<Audited<H::Answer>, Error> {
        self.pipeline(caller, Admission::Stream, req).await
    }

    /// The stages every call goes through once its caller is known.
    async fn pipeline<H: Handler>(
        &self,
        caller: &Caller,
        admission: Admission,
        req: H,
    ) -> Result<Audited<H::Answer>, Error> {
        let mut call = Call::new(
            caller.client.id.clone(),
            Some(caller.peer.clone()),
            H::METHOD,
        )
        .echoing(req.echo());
        // limits: over its rate a call is refused (a stream item waits) before it costs
        // anything; the place in flight is held until the answer is audited, since the audit
        // wait is part of the call's cost.
        let _permit = match self.admit(caller, admission).await {
            Ok(p) => p,
            Err(e) => return self.finish(caller, call, Err(e)).await,
        };
        let result = async {
            // rights: the request checked against what this client may do and why, before
            // any data is touched.
            let plan = req.authorize(&caller.client, &mut call)?;
            // fetch and work: from the reuse cache or the store.
            H::execute(plan, self, &mut call).await
        }
        .await;
        // audit, then answer: nothing leaves before its record is durable.
        self.finish(caller, call, result).await
    }

    /// Resolves the caller of a call to `method` (or of a stream of them): a configured,
    /// unrevoked client whose role allows the method. Refusals are audited.
    async fn authenticate(&self, peer: Arc<Peer>, method: Method) -> Result<Caller, Error> {
        let policy = self.policy.load();
        let err = match policy.authenticate(&peer).and_then(|client| {
            client.require_role(method)?;
            Ok(client)
        }) {
            Ok(client) => return self.caller(peer, client, None),
            Err(e) => e,
        };
        // A configured client calling outside its role is counted under its name; an unknown
        // name is not given counters of its own (that would let anyone grow the map).
        let cn = peer.common_name.clone().unwrap_or_default();
        let known = policy.clients().any(|c| *c.id == *cn);
        let (metrics, limit) = match known.then(|| self.limits.client(&cn)).flatten() {
            Some(limit) => (self.metrics.client(&Arc::from(cn.as_str())), limit),
            None => (self.metrics.unknown(), self.limits.unknown()),
        };
        let call = Call::new(truncate(&cn, MAX_ECHO).into(), Some(peer.clone()), method);
        // Refusals are rate limited too, or a caller could write audit records as fast as it
        // can send: a known client's own limiter, one shared limiter for unknown names. Past
        // it the refusal is still refused, and counted into an aggregated record.
        if limit.admit().await.is_err() {
            limit.note_refused(method, &peer);
            self.count(&metrics, &call, Outcome::RateLimited);
            return Err(err);
        }
        let denied = call.event(Outcome::Denied, Some(err.to_string()));
        match self.audit.append(denied).await {
            Ok(_) => {
                self.count(&metrics, &call, Outcome::Denied);
                Err(err)
            }
            Err(e) => {
                self.count(&metrics, &call, Outcome::Error);
                Err(audit_unavailable(e))
            }
        }
    }

    fn caller(
        &self,
        peer: Arc<Peer>,
        client: Arc<Client>,
        pace: Option<Arc<tokio::sync::Mutex<()>>>,
    ) -> Result<Caller, Error> {
        let limit = self
            .limits
            .client(&client.id)
            .ok_or_else(|| Error::Internal(format!("no limiter for client {:?}", client.id)))?;
        self.metrics.certificate_seen(&client.id, &peer);
        Ok(Caller {
            metrics: self.metrics.client(&client.id),
            limit,
            client,
            peer,
            pace,
        })
    }

    /// Checks a caller again for the next item of a stream it opened earlier: a client removed
    /// or revoked since (reload) is refused from its next item, and a new rate applies. Not
    /// audited here: the stream ends with the refusal as its status.
    pub fn recheck(&self, caller: &Caller, method: Method) -> Result<Caller, Error> {
        let client = self.policy.load().authenticate(&caller.peer)?;
        client.require_role(method)?;
        if Arc::ptr_eq(&client, &caller.client) {
            return Ok(caller.clone());
        }
        self.caller(caller.peer.clone(), client, caller.pace.clone())
    }

    /// Takes rate capacity and a place in flight, per `admission`.
    async fn admit(
        &self,
        caller: &Caller,
        admission: Admission,
    ) -> Result<Option<OwnedSemaphorePermit>, Error> {
        match admission {
            Admission::Unary => {
                caller
                    .limit
                    .admit()
                    .await
                    .map_err(|retry_after| Error::RateLimited {
                        client: caller.client.id.to_string(),
                        retry_after,
                    })?;
                let permit = self.limits.admit().ok_or_else(|| {
                    self.metrics.shed(&caller.metrics);
                    Error::Unavailable(format!(
                        "gateway overloaded: {} calls in flight; retry shortly",
                        self.limits.max_in_flight()
                    ))
                })?;
                Ok(Some(permit))
            }
            Admission::Stream => {
                // tokio's mutex is fair: the items queue for their turn in the order they came.
                let _turn = match &caller.pace {
                    Some(p) => Some(p.lock().await),
                    None => None,
                };
                caller.limit.acquire(&self.clock).await;
                Ok(None)
            }
        }
    }

    /// Audits a finished call and counts it; the answer is released only after that.
    async fn finish<T>(
        &self,
        caller: &Caller,
        mut call: Call,
        result: Result<T, Error>,
    ) -> Result<Audited<T>, Error> {
        let (outcome, reason) = match &result {
            Ok(_) => (Outcome::Ok, None),
            Err(e @ Error::RateLimited { .. }) => {
                // Counted now, audited in aggregate by flush_rate_limited.
                self.count(&caller.metrics, &call, Outcome::RateLimited);
                caller.limit.note_refused(call.method, &caller.peer);
                return Err(e.clone());
            }
            Err(e) => (outcome_of(e), Some(e.to_string())),
        };
        let seq = match (outcome, call.audited.take()) {
            // Audited before its effect, with this outcome.
            (Outcome::Ok, Some(seq)) => seq,
            _ => match self.audit.append(call.final_event(outcome, reason)).await {
                Ok(seq) => seq,
                Err(e) => {
                    // What the caller got: UNAVAILABLE, not the outcome it would have had.
                    self.count(&caller.metrics, &call, Outcome::Error);
                    return Err(audit_unavailable(e));
                }
            },
        };
        self.count(&caller.metrics, &call, outcome);
        result.map(|value| Audited {
            value,
            audit_seq: seq,
        })
    }

    /// Appends the record of `call` as a success before its effect (see [`put`]).
    async fn audit_before_effect(&self, call: &Call) -> Result<u64, Error> {
        self.audit
            .append(call.event(Outcome::Ok, None))
            .await
            .map_err(audit_unavailable)
    }

    fn count(&self, metrics: &ClientMetrics, call: &Call, outcome: Outcome) {
        self.metrics.call_done(
            metrics,
            call.method,
            outcome,
            call.reused,
            call.started.elapsed(),
        );
    }

    /// The record for `id` from the reuse cache or the store: (record, reused).
    pub(crate) async fn fetch(&self, id: CitizenId) -> Result<(Option<Arc<Citizen>>, bool), Error> {
        match self.cache.get(id) {
            Ok(entry) => {
                let reused = entry.is_some();
                Ok((entry, reused))
            }
            Err(ticket) => {
                let record = self
                    .store
                    .get(id)
                    .await
                    .map_err(|e| self.store_failed(e))?
                    .map(Arc::new);
                self.cache.fill(ticket, record.clone());
                Ok((record, false))
            }
        }
    }

    /// Turns a store failure into the caller's `UNAVAILABLE`, reports `NOT_SERVING` and asks
    /// the store every second whether it can answer again.
    pub(crate) fn store_failed(&self, e: StoreError) -> Error {
        // The message never carries a citizen id (StoreError's rule), so it may be logged.
        tracing::error!(error = %e, "population store failed");
        self.store_health.send_replace(false);
        if !self.probing.swap(true, Ordering::AcqRel) {
            let (store, health, probing, clock) = (
                self.store.clone(),
                self.store_health.clone(),
                self.probing.clone(),
                self.clock.clone(),
            );
            tokio::spawn(async move {
                loop {
                    clock.sleep(STORE_PROBE_EVERY).await;
                    if store.check().await.is_ok() {
                        tracing::info!("population store answers again");
                        probing.store(false, Ordering::Release);
                        health.send_replace(true);
                        return;
                    }
                }
            });
        }
        Error::Unavailable("population store unavailable; retry later".into())
    }

    /// The gauges of one metrics scrape and the text exposition; `connections` is what the
    /// transport has open.
    pub async fn render_metrics(&self, connections: usize) -> String {
        let rates = self.limits.backend();
        let gauges = Gauges {
            connections,
            shared_limits_degraded: rates.degraded().map(|d| *d.borrow()),
            cluster_nodes: self.store.members().map(|m| *m.borrow()),
            shared_limit_calls: rates.remote_calls(),
            store_records: self.store.count().await.unwrap_or(0),
            store_healthy: *self.store_health.borrow(),
            cache_entries: self.cache.entry_count(),
            in_flight: self.limits.in_flight(),
            audit: self.audit.stats(),
            audit_healthy: *self.audit.health().borrow(),
            revoked_serials: self.policy.load().revoked(),
        };
        self.metrics.render(&gauges)
    }

    /// Writes one audit record per client and method for the calls refused for their rate
    /// since the last flush. Run about once a second.
    pub async fn flush_rate_limited(&self) -> Result<(), Error> {
        let unknown = (Arc::from(UNKNOWN_CLIENT), self.limits.unknown());
        for (client, limit) in self.limits.all().into_iter().chain([unknown]) {
            for method in Method::ALL {
                let (count, peer) = limit.take_refused(method);
                if count == 0 {
                    continue;
                }
                let mut call = Call::new(client.clone(), peer, method);
                call.count = Some(count);
                let ev = call.event(
                    Outcome::RateLimited,
                    Some(format!("{count} calls over the client's rate")),
                );
                self.audit.append(ev).await.map_err(audit_unavailable)?;
            }
        }
        Ok(())
    }

    /// Runs [`Gateway::flush_rate_limited`] every `period` (on the gateway's clock) until the
    /// gateway is dropped.
    pub fn spawn_rate_limit_auditor(self: &Arc<Self>, period: Duration) {
        let weak = Arc::downgrade(self);
        let clock = self.clock.clone();
        tokio::spawn(async move {
            loop {
                clock.sleep(period).await;
                let Some(gw) = weak.upgrade() else { return };
                if let Err(e) = gw.flush_rate_limited().await {
                    tracing::warn!(error = %e, "could not audit rate-limited calls; will retry");
                }
            }
        });
    }
}

/// How an error is audited.
fn outcome_of(e: &Error) -> Outcome {
    match e {
        Error::PermissionDenied(_) => Outcome::Denied,
        Error::NotFound(_) => Outcome::NotFound,
        Error::InvalidArgument(_)
        | Error::AlreadyExists(_)
        | Error::Aborted(_)
        | Error::FailedPrecondition(_) => Outcome::Invalid,
        Error::RateLimited { .. } => Outcome::RateLimited,
        Error::Unavailable(_) | Error::Internal(_) => Outcome::Error,
    }
}

fn audit_unavailable(e: AuditError) -> Error {
    tracing::error!(error = %e, "audit log write failed: refusing to release data");
    Error::Unavailable(
        "audit log unavailable: the gateway releases no data until it can record the access; retry later"
            .into(),
    )
}

fn not_found(id: CitizenId) -> Error {
    Error::NotFound(format!("no citizen with id {id}"))
}
