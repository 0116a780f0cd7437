//! The gateway's domain: one request's way through identity → policy → limits →
//! cache/store → audit → answer. gRPC handlers call these functions and only convert.
//!
//! Audit first: every call that reaches a configured rule — ok, denied, invalid, not found, a
//! write — is appended to the audit log, and an answer carrying data is returned only once its
//! record is durable. If the audit log cannot be written the call fails with `Unavailable`.
//! Calls refused for their rate are not audited one by one (a flood would otherwise slow the
//! audit path for everyone): [`Gateway::flush_rate_limited`] writes one record per client and
//! method carrying the count.

use std::sync::Arc;
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use tokio::sync::OwnedSemaphorePermit;

use crate::audit::{AuditEvent, AuditLog, Outcome};
use crate::cache::ReuseCache;
use crate::config::Role;
use crate::error::Error;
use crate::fields::{Field, FieldSet, project};
use crate::id::CitizenId;
use crate::identity::Peer;
use crate::limits::{ClientLimit, Limits};
use crate::matching::{Mode, parse_date, text_matches};
use crate::metrics::{ClientMetrics, Metrics};
use crate::pb;
use crate::policy::{Client, Policy, truncate};
use crate::registry;
use crate::stats::{ClientCounters, Counted, Stats};
use crate::store::{PutOutcome, Store};

/// The audited methods, by their contract names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Lookup,
    Verify,
    PutCitizen,
    GetStats,
}

impl Method {
    pub const ALL: [Method; 4] = [
        Method::Lookup,
        Method::Verify,
        Method::PutCitizen,
        Method::GetStats,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Method::Lookup => "Lookup",
            Method::Verify => "Verify",
            Method::PutCitizen => "PutCitizen",
            Method::GetStats => "GetStats",
        }
    }

    fn role(self) -> Role {
        match self {
            Method::Lookup | Method::Verify => Role::Agency,
            Method::PutCitizen => Role::Registry,
            Method::GetStats => Role::Operator,
        }
    }
}

/// How a call waits for capacity.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// A unary call: refused at once when over the rate or when the gateway is full.
    Unary,
    /// A stream item: waits for rate capacity and for a place in flight.
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
    counters: Arc<ClientCounters>,
    metrics: Arc<ClientMetrics>,
    limit: Arc<ClientLimit>,
}

/// What the audit record of one call will say, filled in as the call goes.
struct Call<'a> {
    caller: &'a Caller,
    method: Method,
    started: Instant,
    citizen_id: Option<String>,
    fields: FieldSet,
    purpose: String,
    request_id: String,
    reused: bool,
}

impl Call<'_> {
    /// Checks what every agency request carries — the echoed purpose and request id, and
    /// the citizen id — and notes whose data the call is about.
    fn subject(
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
}

/// The parts a gateway is made of.
pub struct Parts {
    pub policy: Policy,
    pub store: Arc<dyn Store>,
    pub cache: ReuseCache,
    pub audit: AuditLog,
    pub metrics: Arc<Metrics>,
    pub max_in_flight: usize,
}

pub struct Gateway {
    policy: ArcSwap<Policy>,
    store: Arc<dyn Store>,
    cache: ReuseCache,
    limits: Limits,
    audit: AuditLog,
    stats: Stats,
    metrics: Arc<Metrics>,
    /// Serialise PutCitizen per stripe of ids: check, record and write as one step.
    write_locks: Box<[Arc<tokio::sync::Mutex<()>>]>,
}

const WRITE_STRIPES: usize = 256;

/// The `client` of aggregated records for refusals of certificates that name no configured
/// client (the names themselves are in the individual records written within the limit).
const UNKNOWN_CLIENT: &str = "(unknown)";

/// Caller-supplied text kept in audit records is bounded, so a request cannot bloat the log.
const MAX_ECHO: usize = 128;

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

fn current_year() -> i32 {
    time::OffsetDateTime::now_utc().year()
}

fn parse_id(s: &str) -> Result<CitizenId, Error> {
    CitizenId::parse(s, current_year()).map_err(|e| Error::InvalidArgument(e.to_string()))
}

impl Gateway {
    pub fn new(parts: Parts) -> Gateway {
        let limits = Limits::new(&parts.policy, parts.max_in_flight);
        Gateway {
            policy: ArcSwap::from_pointee(parts.policy),
            store: parts.store,
            cache: parts.cache,
            limits,
            audit: parts.audit,
            stats: Stats::default(),
            metrics: parts.metrics,
            write_locks: (0..WRITE_STRIPES)
                .map(|_| Arc::new(tokio::sync::Mutex::new(())))
                .collect(),
        }
    }

    /// Installs a new policy (reload): clients, rights, purposes, limits, revocations.
    pub fn set_policy(&self, policy: Policy) {
        self.limits.update(&policy);
        self.policy.store(Arc::new(policy));
    }

    pub fn audit(&self) -> &AuditLog {
        &self.audit
    }

    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    pub fn cache(&self) -> &ReuseCache {
        &self.cache
    }

    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    /// Resolves the caller of a call to `method` (or of a stream of them): a configured,
    /// unrevoked client whose role allows the method. Refusals are audited.
    pub async fn authenticate(&self, peer: Arc<Peer>, method: Method) -> Result<Caller, Error> {
        let started = Instant::now();
        let result = self.policy.load().authenticate(&peer).and_then(|client| {
            client.require_role(method.role(), method.name())?;
            Ok(client)
        });
        let err = match result {
            Ok(client) => {
                let limit = self.limits.client(&client.id).ok_or_else(|| {
                    Error::Internal(format!("no limiter for client {:?}", client.id))
                })?;
                return Ok(Caller {
                    counters: self.stats.client(&client.id),
                    metrics: self.metrics.client(&client.id),
                    limit,
                    client,
                    peer,
                });
            }
            Err(e) => e,
        };
        // A configured client calling outside its role is counted; an unknown name is not
        // given counters (that would let anyone grow the map).
        let cn = peer.common_name.clone().unwrap_or_default();
        let known = self.policy.load().clients().any(|c| *c.id == *cn);
        // Refusals are rate limited too, or a caller could write audit records as fast as it
        // can send: a known client's own limiter, one shared limiter for unknown names.
        // Past it the refusal is still refused, and counted into an aggregated record.
        let limit = match known {
            true => self.limits.client(&cn),
            false => None,
        }
        .unwrap_or_else(|| self.limits.unknown());
        if limit.try_acquire().is_err() {
            limit.note_refused(method, &peer);
            if known {
                self.stats
                    .count(&self.stats.client(&cn), Counted::RateLimited);
            }
            return Err(err);
        }
        if known {
            self.stats.count(&self.stats.client(&cn), Counted::Denied);
        }
        self.metrics
            .requests
            .with_label_values(&[
                if known { cn.as_str() } else { "unknown" },
                method.name(),
                "denied",
            ])
            .inc();
        let ev = AuditEvent {
            client: truncate(&cn, MAX_ECHO).into(),
            cert_sha256: peer.cert_sha256.clone(),
            peer: peer.addr_text.clone(),
            method: method.name(),
            citizen_id: None,
            fields: Vec::new(),
            purpose: String::new(),
            request_id: String::new(),
            outcome: Outcome::Denied,
            reused: false,
            latency_us: started.elapsed().as_micros() as u64,
            count: None,
            reason: Some(err.to_string()),
        };
        self.audit.append(ev).await.map_err(audit_unavailable)?;
        Err(err)
    }

    /// Checks a caller again for the next item of a stream it opened earlier: a client removed
    /// or revoked since (reload) is refused from its next item, and a new rate applies. Not
    /// audited here: the stream ends with the refusal as its status.
    pub fn recheck(&self, caller: &Caller, method: Method) -> Result<Caller, Error> {
        let policy = self.policy.load();
        let client = policy.authenticate(&caller.peer)?;
        client.require_role(method.role(), method.name())?;
        if Arc::ptr_eq(&client, &caller.client) {
            return Ok(caller.clone());
        }
        let limit = self
            .limits
            .client(&client.id)
            .ok_or_else(|| Error::Internal(format!("no limiter for client {:?}", client.id)))?;
        Ok(Caller {
            peer: caller.peer.clone(),
            counters: self.stats.client(&client.id),
            metrics: self.metrics.client(&client.id),
            limit,
            client,
        })
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
                    .try_acquire()
                    .map_err(|retry_after| Error::RateLimited {
                        client: caller.client.id.to_string(),
                        retry_after,
                    })?;
                let permit = self.limits.admit().ok_or_else(|| {
                    self.metrics
                        .shed
                        .with_label_values(&[&*caller.client.id])
                        .inc();
                    Error::Unavailable(format!(
                        "gateway overloaded: {} calls in flight; retry shortly",
                        self.limits.max_in_flight()
                    ))
                })?;
                Ok(Some(permit))
            }
            // A stream's items are already bounded by the stream's window; they wait.
            Admission::Stream => {
                caller.limit.acquire().await;
                Ok(None)
            }
        }
    }

    fn call<'a>(
        &self,
        caller: &'a Caller,
        method: Method,
        purpose: &str,
        request_id: &str,
    ) -> Call<'a> {
        Call {
            caller,
            method,
            started: Instant::now(),
            citizen_id: None,
            fields: FieldSet::EMPTY,
            purpose: truncate(purpose, MAX_ECHO).to_owned(),
            request_id: truncate(request_id, MAX_ECHO).to_owned(),
            reused: false,
        }
    }

    /// Audits a finished call and counts it; the answer is released only after that.
    async fn finish<T>(
        &self,
        call: Call<'_>,
        result: Result<T, Error>,
    ) -> Result<Audited<T>, Error> {
        let caller = call.caller;
        let (outcome, counted, reason) = match &result {
            Ok(_) => (
                Outcome::Ok,
                Counted::Ok {
                    reused: call.reused,
                },
                None,
            ),
            Err(e @ Error::RateLimited { .. }) => {
                // Counted now, audited in aggregate by flush_rate_limited.
                self.stats.count(&caller.counters, Counted::RateLimited);
                self.count_metrics(&call, Outcome::RateLimited);
                caller.limit.note_refused(call.method, &caller.peer);
                return Err(e.clone());
            }
            Err(e) => {
                let (o, c) = match e {
                    Error::PermissionDenied(_) => (Outcome::Denied, Counted::Denied),
                    Error::NotFound(_) => (Outcome::NotFound, Counted::NotFound),
                    Error::InvalidArgument(_) | Error::AlreadyExists(_) | Error::Aborted(_) => {
                        (Outcome::Invalid, Counted::Other)
                    }
                    _ => (Outcome::Error, Counted::Other),
                };
                (o, c, Some(e.to_string()))
            }
        };
        let seq = self.record(&call, outcome, reason).await?;
        self.stats.count(&caller.counters, counted);
        result.map(|value| Audited {
            value,
            audit_seq: seq,
        })
    }

    /// Appends the audit record of `call` and waits until it is durable; its seq.
    async fn record(
        &self,
        call: &Call<'_>,
        outcome: Outcome,
        reason: Option<String>,
    ) -> Result<u64, Error> {
        let caller = call.caller;
        let ev = AuditEvent {
            client: caller.client.id.clone(),
            cert_sha256: caller.peer.cert_sha256.clone(),
            peer: caller.peer.addr_text.clone(),
            method: call.method.name(),
            citizen_id: call.citizen_id.clone(),
            fields: call.fields.names(),
            purpose: call.purpose.clone(),
            request_id: call.request_id.clone(),
            outcome,
            reused: call.reused,
            latency_us: call.started.elapsed().as_micros() as u64,
            count: None,
            reason,
        };
        match self.audit.append(ev).await {
            Ok(seq) => {
                self.count_metrics(call, outcome);
                Ok(seq)
            }
            Err(e) => {
                // What the caller got: UNAVAILABLE, not the outcome it would have had.
                self.count_metrics(call, Outcome::Error);
                Err(audit_unavailable(e))
            }
        }
    }

    fn count_metrics(&self, call: &Call<'_>, outcome: Outcome) {
        self.metrics.call_done(
            &call.caller.metrics,
            call.method,
            outcome,
            call.reused,
            call.started.elapsed(),
        );
    }

    /// The record for `id` from the reuse cache or the store: (record, reused).
    fn fetch(&self, id: CitizenId) -> Result<(Option<Arc<pb::Citizen>>, bool), Error> {
        match self.cache.get(id) {
            Ok(entry) => Ok((entry.clone(), entry.is_some())),
            Err(ticket) => {
                let record = self.store.get(id)?.map(Arc::new);
                self.cache.fill(ticket, record.clone());
                Ok((record, false))
            }
        }
    }

    fn not_found(id: CitizenId) -> Error {
        Error::NotFound(format!("no citizen with id {id}"))
    }

    /// Lookup: the requested fields the caller may read.
    pub async fn lookup(
        &self,
        caller: &Caller,
        req: &pb::LookupRequest,
        admission: Admission,
    ) -> Result<Audited<pb::LookupResponse>, Error> {
        let mut call = self.call(caller, Method::Lookup, &req.purpose, &req.request_id);
        // The place in flight is held until the answer is audited: the audit wait is part of
        // the call's cost.
        let _permit = match self.admit(caller, admission).await {
            Ok(p) => p,
            Err(e) => return self.finish(call, Err(e)).await,
        };
        let result = async {
            let id = call.subject(&req.citizen_id, &req.purpose, &req.request_id)?;
            let client = &caller.client;
            let mask = req.read_mask.as_ref().map_or(&[][..], |m| &m.paths[..]);
            let fields = client.read_fields(mask)?;
            client.require_purpose(&req.purpose)?;
            let (record, reused) = self.fetch(id)?;
            let record = record.ok_or_else(|| Self::not_found(id))?;
            call.fields = fields;
            call.reused = reused;
            Ok(pb::LookupResponse {
                citizen: Some(project(&record, fields)),
                reused,
                audit_seq: 0,
                request_id: req.request_id.clone(),
                error: None,
            })
        }
        .await;
        let mut answer = self.finish(call, result).await?;
        answer.value.audit_seq = answer.audit_seq;
        Ok(answer)
    }

    /// Verify: whether the claimed fields match, releasing nothing else.
    pub async fn verify(
        &self,
        caller: &Caller,
        req: &pb::VerifyRequest,
        admission: Admission,
    ) -> Result<Audited<pb::VerifyResponse>, Error> {
        let mut call = self.call(caller, Method::Verify, &req.purpose, &req.request_id);
        let _permit = match self.admit(caller, admission).await {
            Ok(p) => p,
            Err(e) => return self.finish(call, Err(e)).await,
        };
        let result = async {
            let id = call.subject(&req.citizen_id, &req.purpose, &req.request_id)?;
            let client = &caller.client;
            if client.verify.is_empty() {
                return Err(Error::PermissionDenied(format!(
                    "client {:?} may verify no field: Verify is not available to it",
                    client.id
                )));
            }
            let claims = Claims::parse(req)?;
            for (field, _) in &claims.items {
                client.check_verify(*field)?;
            }
            client.require_purpose(&req.purpose)?;
            let (record, reused) = self.fetch(id)?;
            let record = record.ok_or_else(|| Self::not_found(id))?;
            call.fields = claims.items.iter().map(|(f, _)| *f).collect();
            call.reused = reused;
            let fields = claims.field_matches(&record);
            let deceased = record.life_status == pb::LifeStatus::Deceased as i32;
            Ok(pb::VerifyResponse {
                matched: !deceased && fields.iter().all(|f| f.matched),
                fields,
                deceased,
                reused,
                audit_seq: 0,
                request_id: req.request_id.clone(),
                error: None,
            })
        }
        .await;
        let mut answer = self.finish(call, result).await?;
        answer.value.audit_seq = answer.audit_seq;
        Ok(answer)
    }

    /// PutCitizen: a conditional create or replace, durable and visible to every later call
    /// before it answers.
    ///
    /// Audit first here too: the write's record is made durable before the register changes,
    /// under a lock on the id's stripe so that the version checked, recorded and written is
    /// the same. A crash between the two leaves a record of a write that did not land (and
    /// was never acknowledged), never a change nobody can account for.
    pub async fn put_citizen(
        &self,
        caller: &Caller,
        req: pb::PutCitizenRequest,
    ) -> Result<Audited<pb::PutCitizenResponse>, Error> {
        let mut call = self.call(caller, Method::PutCitizen, "", "");
        let prepared = async {
            let permit = self.admit(caller, Admission::Unary).await?;
            let citizen = req
                .citizen
                .ok_or_else(|| Error::InvalidArgument("citizen: is required".into()))?;
            let (id, mut citizen) = registry::validate(citizen, current_year())?;
            call.citizen_id = Some(id.to_string());
            call.fields = registry::fields_written(&citizen);
            citizen.updated_at = Some(now_timestamp());
            let guard = self.write_locks[(id.as_u64() % WRITE_STRIPES as u64) as usize]
                .clone()
                .lock_owned()
                .await;
            let expected = req.expected_version;
            let current = self.store.get(id)?.map(|c| c.version);
            match (current, expected) {
                (Some(v), 0) => Err(Error::AlreadyExists(format!(
                    "citizen {id} already exists (version {v}); to replace it set expected_version = {v}"
                ))),
                (None, e) if e != 0 => Err(Error::Aborted(format!(
                    "citizen {id} does not exist; to create it set expected_version = 0"
                ))),
                (Some(v), e) if v != e => Err(Error::Aborted(format!(
                    "citizen {id} is at version {v}, not {e}; re-read it and retry"
                ))),
                _ => Ok((id, citizen, expected, guard, permit)),
            }
        }
        .await;
        let (id, citizen, expected, _guard, _permit) = match prepared {
            Ok(p) => p,
            Err(e) => return self.finish(call, Err(e)).await,
        };
        let seq = self.record(&call, Outcome::Ok, None).await?;
        let store = self.store.clone();
        // The store flushes to disk before answering: keep that off the async workers.
        let written = tokio::task::spawn_blocking(move || store.put(id, citizen, expected))
            .await
            .map_err(|e| Error::Internal(format!("store task failed: {e}")))
            .and_then(|r| r.map_err(Error::from));
        match written {
            Ok(PutOutcome::Written(record)) => {
                let version = record.version;
                self.cache.write(Arc::from(record), id);
                self.stats.count(&caller.counters, Counted::Other);
                Ok(Audited {
                    value: pb::PutCitizenResponse {
                        version,
                        audit_seq: seq,
                    },
                    audit_seq: seq,
                })
            }
            other => {
                // Recorded as written, but the store refused or failed (we hold the id's
                // lock, so only a store fault gets here): say so in the log too.
                let err = match other {
                    Err(e) => e,
                    Ok(o) => Error::Internal(format!("store refused a checked write: {o:?}")),
                };
                // The audit record (by seq) names the citizen; the process log must not.
                tracing::error!(audit_seq = seq, error = %err, "PutCitizen recorded but not written");
                self.finish(call, Err::<(), _>(err.clone())).await?;
                Err(err)
            }
        }
    }

    /// GetStats: counters since start-up and the store's size.
    pub async fn get_stats(&self, caller: &Caller) -> Result<Audited<pb::GetStatsResponse>, Error> {
        let call = self.call(caller, Method::GetStats, "", "");
        let _permit = match self.admit(caller, Admission::Unary).await {
            Ok(p) => p,
            Err(e) => return self.finish(call, Err(e)).await,
        };
        self.finish(call, Ok(self.stats_snapshot())).await
    }

    /// The `GetStats` answer (also used by metrics).
    pub fn stats_snapshot(&self) -> pb::GetStatsResponse {
        let (requests, reused) = self.stats.totals();
        pb::GetStatsResponse {
            requests,
            reused,
            reuse_rate: if requests == 0 {
                0.0
            } else {
                reused as f64 / requests as f64
            },
            clients: self
                .stats
                .clients()
                .into_iter()
                .map(|c| pb::ClientStats {
                    client_id: c.client_id,
                    requests: c.requests,
                    reused: c.reused,
                    denied: c.denied,
                    rate_limited: c.rate_limited,
                    not_found: c.not_found,
                })
                .collect(),
            records: self.store.len(),
        }
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
                let (cert_sha256, peer) = peer
                    .map(|p| (p.cert_sha256.clone(), p.addr_text.clone()))
                    .unwrap_or_else(|| (Arc::from(""), Arc::from("")));
                let ev = AuditEvent {
                    client: client.clone(),
                    cert_sha256,
                    peer,
                    method: method.name(),
                    citizen_id: None,
                    fields: Vec::new(),
                    purpose: String::new(),
                    request_id: String::new(),
                    outcome: Outcome::RateLimited,
                    reused: false,
                    latency_us: 0,
                    count: Some(count),
                    reason: Some(format!("{count} calls over the client's rate")),
                };
                self.audit.append(ev).await.map_err(audit_unavailable)?;
            }
        }
        Ok(())
    }

    /// Runs [`Gateway::flush_rate_limited`] every `period` until the gateway is dropped.
    pub fn spawn_rate_limit_auditor(self: &Arc<Self>, period: Duration) {
        let weak = Arc::downgrade(self);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(period);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                let Some(gw) = weak.upgrade() else { return };
                if let Err(e) = gw.flush_rate_limited().await {
                    tracing::warn!(error = %e, "could not audit rate-limited calls; will retry");
                }
            }
        });
    }
}

fn audit_unavailable(e: crate::audit::AuditError) -> Error {
    tracing::error!(error = %e, "audit log write failed: refusing to release data");
    Error::Unavailable(
        "audit log unavailable: the gateway releases no data until it can record the access; retry later"
            .into(),
    )
}

fn now_timestamp() -> prost_types::Timestamp {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    prost_types::Timestamp {
        seconds: now.as_secs() as i64,
        nanos: now.subsec_nanos() as i32,
    }
}

/// The pure part of Verify: parses the claims of `req` (`INVALID_ARGUMENT` naming the bad one)
/// and compares each with `record`, in Claims field order. Rights, purpose and the store are
/// the handler's business, not this function's. Public so that the fuzz targets and tests can
/// reach the parsing of a decoded request without a server.
pub fn match_claims(
    req: &pb::VerifyRequest,
    record: &pb::Citizen,
) -> Result<Vec<pb::FieldMatch>, Error> {
    Ok(Claims::parse(req)?.field_matches(record))
}

/// One claimed value, parsed.
enum Claim {
    Text(String),
    Date(time::Date),
    Sex(pb::Sex),
}

/// Whether the claim on `field` matches the record.
fn claim_matches(field: Field, claim: &Claim, record: &pb::Citizen, mode: Mode) -> bool {
    match (field, claim) {
        (Field::FullName, Claim::Text(t)) => text_matches(t, &record.full_name, mode),
        (Field::PermanentAddress, Claim::Text(t)) => {
            text_matches(t, &record.permanent_address, mode)
        }
        (Field::DateOfBirth, Claim::Date(d)) => parse_date(&record.date_of_birth) == Some(*d),
        (Field::Sex, Claim::Sex(s)) => record.sex == *s as i32,
        _ => false,
    }
}

/// The claims of a Verify request, in Claims field order.
struct Claims {
    items: Vec<(Field, Claim)>,
    mode: Mode,
}

impl Claims {
    /// One answer per claim, in Claims field order.
    fn field_matches(&self, record: &pb::Citizen) -> Vec<pb::FieldMatch> {
        self.items
            .iter()
            .map(|(field, claim)| pb::FieldMatch {
                field: field.name().to_owned(),
                matched: claim_matches(*field, claim, record, self.mode),
            })
            .collect()
    }

    fn parse(req: &pb::VerifyRequest) -> Result<Claims, Error> {
        let mode = match pb::MatchMode::try_from(req.mode) {
            Ok(pb::MatchMode::Unspecified | pb::MatchMode::Exact) => Mode::Exact,
            Ok(pb::MatchMode::Loose) => Mode::Loose,
            Err(_) => {
                return Err(Error::InvalidArgument(format!(
                    "mode: {} is not a MatchMode (EXACT = 1, LOOSE = 2)",
                    req.mode
                )));
            }
        };
        let none = || Error::InvalidArgument("claims: set at least one claim".into());
        let claims = req.claims.as_ref().ok_or_else(none)?;
        let text = |field: &str, s: &str| -> Result<Claim, Error> {
            if s.chars().count() > 256 || s.chars().any(char::is_control) {
                return Err(Error::InvalidArgument(format!(
                    "claims.{field}: at most 256 characters, no control characters"
                )));
            }
            Ok(Claim::Text(s.to_owned()))
        };
        let mut items = Vec::new();
        if let Some(name) = &claims.full_name {
            items.push((Field::FullName, text("full_name", name)?));
        }
        if let Some(dob) = &claims.date_of_birth {
            let d = parse_date(dob).ok_or_else(|| {
                Error::InvalidArgument("claims.date_of_birth: must be a date YYYY-MM-DD".into())
            })?;
            items.push((Field::DateOfBirth, Claim::Date(d)));
        }
        if let Some(sex) = claims.sex {
            match pb::Sex::try_from(sex) {
                Ok(s @ (pb::Sex::Male | pb::Sex::Female)) => {
                    items.push((Field::Sex, Claim::Sex(s)))
                }
                _ => {
                    return Err(Error::InvalidArgument(
                        "claims.sex: must be MALE or FEMALE".into(),
                    ));
                }
            }
        }
        if let Some(addr) = &claims.permanent_address {
            items.push((Field::PermanentAddress, text("permanent_address", addr)?));
        }
        if items.is_empty() {
            return Err(none());
        }
        Ok(Claims { items, mode })
    }
}
