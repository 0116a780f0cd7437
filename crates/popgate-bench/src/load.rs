//! The load generator: closed loop (a fixed number of calls in flight), open loop (calls sent
//! on a fixed timetable) and bulk (VerifyStream), over already-open mTLS channels.
//!
//! It shares the machine's cores with the server it measures, so it is kept cheap: channels
//! are opened once and cloned (a clone is a handle, not a connection); every worker keeps its
//! own histogram and counters and they are merged once at the end (no lock, one relaxed
//! atomic add per call for the progress bar); bulk requests are built before the clock starts.
//! A unary request is still built per call (a 12-digit id string and a purpose string): its
//! key must be drawn fresh so that the reuse cache sees the real distribution.
//!
//! Latency is measured from when a call was *due*: in a closed loop that is when it was
//! sent; in an open loop it is its slot in the timetable, so a server that stalls is charged
//! for every call that should have gone out meanwhile (no coordinated omission).

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;
use hdrhistogram::Histogram;
use tokio::sync::{Mutex, Semaphore, mpsc};
use tokio::time::Instant;
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::Channel;
use tonic::{Code, Status};

use crate::keys::{KeyDist, KeySampler, Rng};
use popgate::matching::{Mode, normalize};
use popgate::pb;
use popgate::pb::identity_gateway_client::IdentityGatewayClient;
use popgate::pb::registry_admin_client::RegistryAdminClient;

/// How calls are paced.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Pace {
    /// This many calls in flight in total, each sent as soon as another finishes.
    Closed { concurrency: usize },
    /// This many calls per second in total, on a fixed timetable.
    Open { rate: f64 },
}

/// What the calls ask.
#[derive(Debug, Clone)]
pub struct Workload {
    /// Percent of unary calls that are Lookups; the rest are Verifies.
    pub lookup_pct: u32,
    pub keys: KeyDist,
    /// Indexes `0..citizens` of population `seed` exist in the store.
    pub citizens: u64,
    pub seed: u64,
    pub purpose: String,
    /// Lookup read mask; empty = every field the caller may read.
    pub read_mask: Vec<String>,
    /// VerifyStream instead of unary calls: LOOSE names, 10% deliberate mismatches.
    pub bulk: bool,
    /// PutCitizen instead (the registry's identity): each call creates a citizen of the
    /// population that is not in the store yet (`expected_version` 0), so no two calls race
    /// and every one should succeed; the next index to create, shared by every worker.
    pub writes: Option<Arc<AtomicU64>>,
}

/// One load: how, what, and for how long.
#[derive(Debug, Clone)]
pub struct LoadSpec {
    pub pace: Pace,
    pub workload: Workload,
    /// Calls during the warm-up are made but not counted.
    pub warmup: Duration,
    pub duration: Duration,
    /// Which key stream the workers draw from: loads with the same stream ask the same
    /// questions in the same order (both sides of a comparison); an interleaved comparison
    /// gives each slice its own, so that no slice replays another's keys.
    pub stream: u64,
}

/// Everything counted about one load's calls in the measured window.
#[derive(Debug, Clone)]
pub struct Tally {
    /// Latency of successful calls, microseconds.
    pub latency: Histogram<u64>,
    pub ok: u64,
    pub reused: u64,
    /// Failed calls (or failed stream items) by canonical gRPC code name.
    pub errors: BTreeMap<&'static str, u64>,
    /// Verify answers that disagreed with what the claims should give.
    pub wrong_answers: u64,
    /// Verifies sent with a deliberately wrong name, and how many came back unmatched.
    pub mismatches_sent: u64,
    pub mismatches_detected: u64,
    /// Verifies of people the record says are deceased (never matched).
    pub deceased: u64,
    /// In an open loop: the most calls outstanding at once on one connection.
    pub max_outstanding: u64,
}

impl Tally {
    pub fn new() -> Tally {
        Tally {
            // 1 µs .. 60 s at 3 significant digits: ~0.1% resolution.
            latency: Histogram::new_with_bounds(1, 60_000_000, 3).expect("valid bounds"),
            ok: 0,
            reused: 0,
            errors: BTreeMap::new(),
            wrong_answers: 0,
            mismatches_sent: 0,
            mismatches_detected: 0,
            deceased: 0,
            max_outstanding: 0,
        }
    }

    pub fn merge(&mut self, other: &Tally) {
        let _ = self.latency.add(&other.latency);
        self.ok += other.ok;
        self.reused += other.reused;
        for (k, v) in &other.errors {
            *self.errors.entry(k).or_default() += v;
        }
        self.wrong_answers += other.wrong_answers;
        self.mismatches_sent += other.mismatches_sent;
        self.mismatches_detected += other.mismatches_detected;
        self.deceased += other.deceased;
        self.max_outstanding = self.max_outstanding.max(other.max_outstanding);
    }

    /// Drops the Verify answer checks (for a server whose answers are fixed).
    pub fn forget_verify_checks(&mut self) {
        self.wrong_answers = 0;
        self.mismatches_sent = 0;
        self.mismatches_detected = 0;
        self.deceased = 0;
    }

    pub fn error_count(&self) -> u64 {
        self.errors.values().sum()
    }

    fn record_latency(&mut self, took: Duration) {
        let us = (took.as_micros() as u64).clamp(1, 60_000_000);
        self.latency.saturating_record(us);
    }

    fn record_error(&mut self, code: Code) {
        *self.errors.entry(code_name(code)).or_default() += 1;
    }

    /// Counts one finished unary call.
    fn record(&mut self, took: Duration, result: Result<Answer, Status>) {
        match result {
            Ok(answer) => {
                self.ok += 1;
                self.reused += u64::from(answer.reused);
                self.record_latency(took);
                self.check(answer.verify);
            }
            Err(status) => self.record_error(status.code()),
        }
    }

    fn check(&mut self, verify: Option<(Expect, bool, Option<bool>)>) {
        let Some((expect, matched, name_matched)) = verify else {
            return;
        };
        self.mismatches_sent += u64::from(expect.mismatch);
        self.deceased += u64::from(expect.deceased);
        if expect.mismatch && name_matched == Some(false) && !matched {
            self.mismatches_detected += 1;
        }
        if matched != expect.matched() || name_matched != Some(!expect.mismatch) {
            self.wrong_answers += 1;
        }
    }
}

impl Default for Tally {
    fn default() -> Self {
        Tally::new()
    }
}

/// The canonical name of a gRPC status code, as in the gRPC spec.
pub fn code_name(code: Code) -> &'static str {
    match code {
        Code::Ok => "OK",
        Code::Cancelled => "CANCELLED",
        Code::Unknown => "UNKNOWN",
        Code::InvalidArgument => "INVALID_ARGUMENT",
        Code::DeadlineExceeded => "DEADLINE_EXCEEDED",
        Code::NotFound => "NOT_FOUND",
        Code::AlreadyExists => "ALREADY_EXISTS",
        Code::PermissionDenied => "PERMISSION_DENIED",
        Code::ResourceExhausted => "RESOURCE_EXHAUSTED",
        Code::FailedPrecondition => "FAILED_PRECONDITION",
        Code::Aborted => "ABORTED",
        Code::OutOfRange => "OUT_OF_RANGE",
        Code::Unimplemented => "UNIMPLEMENTED",
        Code::Internal => "INTERNAL",
        Code::Unavailable => "UNAVAILABLE",
        Code::DataLoss => "DATA_LOSS",
        Code::Unauthenticated => "UNAUTHENTICATED",
    }
}

/// What a Verify should answer.
#[derive(Debug, Clone, Copy)]
struct Expect {
    mismatch: bool,
    deceased: bool,
}

impl Expect {
    fn matched(self) -> bool {
        !self.mismatch && !self.deceased
    }
}

/// What a successful unary answer said: reuse, and for a Verify (expected, matched, whether
/// the name matched).
struct Answer {
    reused: bool,
    verify: Option<(Expect, bool, Option<bool>)>,
}

/// Given names that replace the real one in a deliberate mismatch.
const WRONG_GIVEN: [&str; 3] = ["ANH", "BINH", "CUONG"];

/// A Verify as a telecom sends it in bulk: the name upper-case without diacritics (LOOSE) and
/// the date of birth; `mismatch` swaps the given name for another.
fn verify_request(
    seed: u64,
    index: u64,
    purpose: &str,
    mismatch: bool,
) -> (pb::VerifyRequest, Expect) {
    let record = popgate::synth::citizen_at(seed, index);
    let mut name = normalize(&record.full_name, Mode::Loose).to_uppercase();
    if mismatch {
        let (head, given) = name.rsplit_once(' ').unwrap_or(("", name.as_str()));
        let wrong = WRONG_GIVEN.iter().find(|w| **w != given).unwrap_or(&"ANH");
        name = if head.is_empty() {
            (*wrong).to_owned()
        } else {
            format!("{head} {wrong}")
        };
    }
    let deceased = record.is_deceased();
    let req = pb::VerifyRequest {
        citizen_id: record.id.to_string(),
        claims: Some(pb::Claims {
            full_name: Some(name),
            date_of_birth: Some(record.date_of_birth),
            sex: None,
            permanent_address: None,
        }),
        purpose: purpose.to_owned(),
        request_id: String::new(),
        mode: pb::MatchMode::Loose as i32,
    };
    (req, Expect { mismatch, deceased })
}

/// Builds one worker's unary requests.
struct RequestGen {
    rng: Rng,
    keys: KeySampler,
    workload: Arc<Workload>,
    mask: Option<prost_types::FieldMask>,
}

enum Req {
    Lookup(pb::LookupRequest),
    Verify(pb::VerifyRequest, Expect),
    Put(pb::PutCitizenRequest),
}

impl RequestGen {
    fn new(workload: Arc<Workload>, worker: u64, stream: u64) -> RequestGen {
        RequestGen {
            rng: Rng::new(
                workload.seed
                    ^ worker.wrapping_mul(0xA24B_AED4_963E_E407)
                    ^ stream.wrapping_mul(0x9FB2_1C65_1E98_DF25),
            ),
            keys: KeySampler::new(workload.keys, workload.citizens),
            mask: (!workload.read_mask.is_empty()).then(|| prost_types::FieldMask {
                paths: workload.read_mask.clone(),
            }),
            workload,
        }
    }

    fn next(&mut self) -> Req {
        let w = &*self.workload;
        if let Some(next) = &w.writes {
            let index = next.fetch_add(1, Ordering::Relaxed);
            let c = popgate::synth::citizen_at(w.seed, index);
            return Req::Put(pb::PutCitizenRequest {
                citizen: Some(popgate::grpc::convert::citizen(&c, all_fields())),
                expected_version: 0,
            });
        }
        let index = self.keys.sample(&mut self.rng);
        if self.rng.below(100) < u64::from(w.lookup_pct) {
            Req::Lookup(pb::LookupRequest {
                citizen_id: popgate::synth::citizen_id_at(w.seed, index).to_string(),
                read_mask: self.mask.clone(),
                purpose: w.purpose.clone(),
                request_id: String::new(),
            })
        } else {
            let (req, expect) = verify_request(w.seed, index, &w.purpose, false);
            Req::Verify(req, expect)
        }
    }
}

pub(crate) fn all_fields() -> popgate::fields::FieldSet {
    let mut all = popgate::fields::FieldSet::EMPTY;
    for f in popgate::fields::Field::ALL {
        all.insert(f);
    }
    all
}

async fn call(channel: &Channel, req: Req) -> Result<Answer, Status> {
    let mut client = IdentityGatewayClient::new(channel.clone());
    match req {
        Req::Put(r) => RegistryAdminClient::new(channel.clone())
            .put_citizen(r)
            .await
            .map(|_| Answer {
                reused: false,
                verify: None,
            }),
        Req::Lookup(r) => client.lookup(r).await.map(|resp| Answer {
            reused: resp.get_ref().reused,
            verify: None,
        }),
        Req::Verify(r, expect) => client.verify(r).await.map(|resp| {
            let v = resp.into_inner();
            Answer {
                reused: v.reused,
                verify: Some((expect, v.matched, v.fields.first().map(|f| f.matched))),
            }
        }),
    }
}

/// The measured window of a load.
#[derive(Debug, Clone, Copy)]
struct Window {
    start: Instant,
    end: Instant,
}

impl Window {
    fn counts(&self, t: Instant) -> bool {
        t >= self.start && t < self.end
    }
}

/// Runs `spec` over `channels` (one per connection) and returns what it counted in the
/// measured window. `done` is bumped once per finished call (for progress display).
pub async fn run(channels: &[Channel], spec: &LoadSpec, done: Arc<AtomicU64>) -> Tally {
    let now = Instant::now();
    let window = Window {
        start: now + spec.warmup,
        end: now + spec.warmup + spec.duration,
    };
    let workload = Arc::new(spec.workload.clone());
    let mut tasks = Vec::new();
    if workload.bulk {
        let Pace::Closed { concurrency } = spec.pace else {
            unreachable!("bulk loads are closed-loop; checked by the caller")
        };
        let pool = Arc::new(bulk_pool(&workload));
        let per = split(concurrency, channels.len());
        for (i, ch) in channels.iter().enumerate() {
            tasks.push(tokio::spawn(bulk_stream(
                IdentityGatewayClient::new(ch.clone()),
                pool.clone(),
                i * pool.len() / channels.len(),
                per[i].max(1),
                window,
                done.clone(),
            )));
        }
    } else {
        match spec.pace {
            Pace::Closed { concurrency } => {
                for w in 0..concurrency.max(1) {
                    let client = channels[w % channels.len()].clone();
                    let requests = RequestGen::new(workload.clone(), w as u64, spec.stream);
                    tasks.push(tokio::spawn(closed_worker(
                        client,
                        requests,
                        window,
                        done.clone(),
                    )));
                }
            }
            Pace::Open { rate } => {
                let per_conn = rate / channels.len() as f64;
                for (i, ch) in channels.iter().enumerate() {
                    let client = ch.clone();
                    let requests = RequestGen::new(workload.clone(), i as u64, spec.stream);
                    // Stagger the connections' timetables so their calls interleave.
                    let offset = Duration::from_secs_f64(i as f64 / rate);
                    tasks.push(tokio::spawn(open_worker(
                        client,
                        requests,
                        per_conn,
                        now + offset,
                        window,
                        done.clone(),
                    )));
                }
            }
        }
    }
    let mut total = Tally::new();
    for t in tasks {
        match t.await {
            Ok(tally) => total.merge(&tally),
            Err(e) => tracing::error!(error = %e, "a load worker failed"),
        }
    }
    total
}

/// `total` spread over `parts` as evenly as possible.
fn split(total: usize, parts: usize) -> Vec<usize> {
    (0..parts)
        .map(|i| total / parts + usize::from(i < total % parts))
        .collect()
}

async fn closed_worker(
    client: Channel,
    mut requests: RequestGen,
    window: Window,
    done: Arc<AtomicU64>,
) -> Tally {
    let mut tally = Tally::new();
    loop {
        let sent = Instant::now();
        if sent >= window.end {
            return tally;
        }
        let result = call(&client, requests.next()).await;
        done.fetch_add(1, Ordering::Relaxed);
        if window.counts(sent) {
            tally.record(sent.elapsed(), result);
        }
    }
}

/// Calls one connection may have outstanding in an open loop before the timetable waits (so a
/// stalled server cannot make the generator's memory grow without bound). Lateness still
/// counts: latency is taken from each call's slot, not from when it could be sent.
const OPEN_LOOP_MAX_OUTSTANDING: usize = 10_000;

async fn open_worker(
    client: Channel,
    mut requests: RequestGen,
    rate: f64,
    first: Instant,
    window: Window,
    done: Arc<AtomicU64>,
) -> Tally {
    let mut tally = Tally::new();
    let interval = 1.0 / rate.max(1e-3);
    let mut k: u64 = 0;
    let due = |k: u64| first + Duration::from_secs_f64(k as f64 * interval);
    let mut outstanding = FuturesUnordered::new();
    loop {
        let now = Instant::now();
        // Send every call whose slot has come, up to the cap.
        while due(k) <= now && due(k) < window.end && outstanding.len() < OPEN_LOOP_MAX_OUTSTANDING
        {
            let slot = due(k);
            let (client, req) = (client.clone(), requests.next());
            outstanding.push(async move { (slot, call(&client, req).await) });
            k += 1;
        }
        tally.max_outstanding = tally.max_outstanding.max(outstanding.len() as u64);
        let next = due(k);
        if next >= window.end && outstanding.is_empty() {
            return tally;
        }
        tokio::select! {
            Some((slot, result)) = outstanding.next(), if !outstanding.is_empty() => {
                done.fetch_add(1, Ordering::Relaxed);
                if window.counts(slot) {
                    tally.record(slot.elapsed(), result);
                }
            }
            _ = tokio::time::sleep_until(next), if next < window.end => {}
        }
    }
}

/// The subscriber list of the bulk scenario, built before the clock starts: every 10th
/// request names the wrong person on purpose.
fn bulk_pool(w: &Workload) -> Vec<(pb::VerifyRequest, Expect)> {
    /// Large enough that a pass takes many seconds at the target rate; the whole population
    /// when it is smaller.
    const MAX_POOL: u64 = 200_000;
    let n = w.citizens.min(MAX_POOL);
    let sampler = KeySampler::new(w.keys, w.citizens);
    let mut rng = Rng::new(w.seed ^ 0xB01C);
    (0..n)
        .map(|i| {
            let index = match w.keys {
                // A shuffled walk over the population when it fits: each subscriber once per pass.
                KeyDist::Uniform if w.citizens <= MAX_POOL => i,
                _ => sampler.sample(&mut rng),
            };
            verify_request(w.seed, index, &w.purpose, i % 10 == 9)
        })
        .collect()
}

/// One VerifyStream kept `window_size` items deep until the window ends: a new item is sent
/// when an answer comes back. Answers come in request order, so the send times wait in a
/// queue beside the stream.
async fn bulk_stream(
    mut client: IdentityGatewayClient<Channel>,
    pool: Arc<Vec<(pb::VerifyRequest, Expect)>>,
    start_at: usize,
    depth: usize,
    window: Window,
    done: Arc<AtomicU64>,
) -> Tally {
    let mut tally = Tally::new();
    let (tx, rx) = mpsc::channel::<pb::VerifyRequest>(depth);
    let sent: Arc<Mutex<VecDeque<(Instant, Expect)>>> = Arc::default();
    let credit = Arc::new(Semaphore::new(depth));
    let producer = {
        let (pool, sent, credit) = (pool.clone(), sent.clone(), credit.clone());
        tokio::spawn(async move {
            let mut i = start_at;
            loop {
                let Ok(permit) = credit.acquire().await else {
                    return;
                };
                permit.forget();
                let now = Instant::now();
                if now >= window.end {
                    return;
                }
                let (req, expect) = &pool[i % pool.len()];
                i += 1;
                sent.lock().await.push_back((now, *expect));
                if tx.send(req.clone()).await.is_err() {
                    return;
                }
            }
        })
    };
    let mut answers = match client.verify_stream(ReceiverStream::new(rx)).await {
        Ok(resp) => resp.into_inner(),
        Err(status) => {
            producer.abort();
            tally.record_error(status.code());
            return tally;
        }
    };
    loop {
        match answers.message().await {
            Ok(Some(v)) => {
                let entry = sent.lock().await.pop_front();
                credit.add_permits(1);
                done.fetch_add(1, Ordering::Relaxed);
                let Some((at, expect)) = entry else { continue };
                if !window.counts(at) {
                    continue;
                }
                match v.error {
                    Some(e) => tally.record_error(Code::from_i32(e.code as i32)),
                    None => tally.record(
                        at.elapsed(),
                        Ok(Answer {
                            reused: v.reused,
                            verify: Some((expect, v.matched, v.fields.first().map(|f| f.matched))),
                        }),
                    ),
                }
            }
            Ok(None) => break,
            Err(status) => {
                tally.record_error(status.code());
                break;
            }
        }
    }
    producer.abort();
    tally
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_deliberate_mismatch_changes_only_the_given_name() {
        let (good, e) = verify_request(1, 5, "p", false);
        let (bad, m) = verify_request(1, 5, "p", true);
        assert!(!e.mismatch && m.mismatch);
        let good_name = good.claims.unwrap().full_name.unwrap();
        let bad_name = bad.claims.unwrap().full_name.unwrap();
        assert_ne!(good_name, bad_name);
        assert_eq!(good_name, good_name.to_uppercase());
        assert!(good_name.is_ascii(), "{good_name}");
        assert_eq!(
            good_name.rsplit_once(' ').map(|p| p.0),
            bad_name.rsplit_once(' ').map(|p| p.0)
        );
    }

    /// The citizen ids a generator asks about first.
    fn first_ids(worker: u64, stream: u64) -> Vec<String> {
        let workload = Arc::new(Workload {
            lookup_pct: 80,
            keys: KeyDist::Uniform,
            citizens: 1_000_000,
            seed: 7,
            purpose: "p".into(),
            read_mask: Vec::new(),
            bulk: false,
            writes: None,
        });
        let mut g = RequestGen::new(workload, worker, stream);
        (0..50)
            .map(|_| match g.next() {
                Req::Lookup(r) => r.citizen_id,
                Req::Verify(r, _) => r.citizen_id,
                Req::Put(r) => r.citizen.map(|c| c.citizen_id).unwrap_or_default(),
            })
            .collect()
    }

    #[test]
    fn a_stream_repeats_itself_and_no_other() {
        // Both sides of a comparison ask the same questions in slice i…
        assert_eq!(first_ids(3, 1), first_ids(3, 1));
        // …and no slice, worker or warm-up replays another's.
        assert_ne!(first_ids(3, 1), first_ids(3, 2));
        assert_ne!(first_ids(3, 1), first_ids(3, 0));
        assert_ne!(first_ids(3, 1), first_ids(4, 1));
    }

    #[test]
    fn split_spreads_the_remainder() {
        assert_eq!(split(10, 4), vec![3, 3, 2, 2]);
        assert_eq!(split(64, 4), vec![16; 4]);
    }
}
