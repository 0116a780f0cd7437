//! Criterion benches for the request-path pieces `hot_path.rs` does not cover: Verify's claim
//! matching, the policy checks, the per-call metrics, a cache miss and fill, encoding the
//! answer, decoding a stored record, the whole in-process Lookup and Verify (gateway domain
//! pipeline with a `batch` audit log, no network). Audit append has its own bench
//! (`audit_append.rs`); what the load generator spends to build a request is measured in its
//! own package (`crates/popgate-bench/benches/load_generator.rs`).
//!
//! `cargo bench --bench gateway_path`. Compare figures as ratios within one run.

use std::collections::HashSet;
use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use popgate::audit::{AuditLog, AuditOptions, AuditSink, Durability, Outcome};
use popgate::cache::ReuseCache;
use popgate::clock::Clock;
use popgate::config::Config;
use popgate::fields::{Field, FieldSet};
use popgate::gateway::{Claims, Gateway, LookupRequest, MatchMode, Parts, VerifyRequest};
use popgate::grpc::convert;
use popgate::identity::Peer;
use popgate::limits::local::LocalRates;
use popgate::matching::{Mode, text_matches};
use popgate::metrics::Metrics;
use popgate::pb;
use popgate::policy::{Method, Policy};
use popgate::store::SledStore;
use popgate::synth::{SeedPlan, citizen_at, citizen_id_at, seed_store};
use prost::Message;

const SEED: u64 = 7;
const CITIZENS: u64 = 20_000;

const CONFIG: &str = r#"
[server]
listen = "127.0.0.1:0"
[tls]
cert = "unused.pem"
key = "unused.key"
client_ca = "unused.pem"
[store]
path = "unused"
[audit]
dir = "unused"
[[clients]]
id = "bench"
kind = "ministry"
role = "agency"
read = ["full_name", "date_of_birth", "sex", "permanent_address", "current_address", "nationality", "ethnicity", "life_status", "card_expires_on"]
verify = ["full_name", "date_of_birth", "sex"]
purposes = ["benchmark", "health-insurance"]
rate_per_sec = 1000000000
burst = 1000000000
"#;

fn policy() -> Policy {
    let config = Config::parse(CONFIG).expect("bench config");
    Policy::new(&config, Arc::new(HashSet::new()))
}

fn peer() -> Arc<Peer> {
    Arc::new(Peer::new(
        "127.0.0.1:40000".parse().expect("addr"),
        Some("bench".into()),
        "ab".repeat(32).into(),
        vec![1, 2, 3, 4],
        // A year from the bench's start: no expiry warning on the path being measured.
        Some(time::OffsetDateTime::now_utc().unix_timestamp() + 365 * 86_400),
    ))
}

fn matching(c: &mut Criterion) {
    let record = citizen_at(SEED, 3);
    let claim = popgate::matching::normalize(&record.full_name, Mode::Loose).to_uppercase();
    c.bench_function("verify_name_loose_match", |b| {
        b.iter(|| text_matches(black_box(&claim), black_box(&record.full_name), Mode::Loose))
    });
    c.bench_function("verify_name_exact_match", |b| {
        b.iter(|| {
            text_matches(
                black_box(&record.full_name),
                black_box(&record.full_name),
                Mode::Exact,
            )
        })
    });
}

fn policy_checks(c: &mut Criterion) {
    let policy = policy();
    let peer = peer();
    let client = policy.authenticate(&peer).expect("client");
    let mask = vec!["full_name".to_owned(), "date_of_birth".to_owned()];
    c.bench_function("policy_authenticate", |b| {
        b.iter(|| black_box(policy.authenticate(black_box(&peer)).is_ok()))
    });
    c.bench_function("policy_read_fields_and_purpose", |b| {
        b.iter(|| {
            let f = client.read_fields(black_box(&mask));
            let p = client.require_purpose(black_box("health-insurance"));
            black_box((f.is_ok(), p.is_ok()))
        })
    });
}

fn metrics(c: &mut Criterion) {
    let m = Metrics::new();
    // What the gateway records per call: the client's series are resolved once per call
    // (with its other per-client state), then a counter and the latency histogram.
    let id: Arc<str> = "bench".into();
    c.bench_function("metrics_per_call", |b| {
        b.iter(|| {
            let client = m.client(black_box(&id));
            m.call_done(
                &client,
                Method::Lookup,
                Outcome::Ok,
                false,
                Duration::from_micros(800),
            );
        })
    });
}

fn cache_miss(c: &mut Criterion) {
    let cache = ReuseCache::new(100_000, Duration::from_secs(300), Clock::system());
    let record = Arc::new(citizen_at(SEED, 1));
    let mut i = 0u64;
    c.bench_function("cache_miss_then_fill_evicting", |b| {
        b.iter(|| {
            i += 1;
            let id = citizen_id_at(SEED, i);
            if let Err(ticket) = cache.get(id) {
                cache.fill(ticket, Some(record.clone()));
            }
        })
    });
}

fn encoding(c: &mut Criterion) {
    let record = citizen_at(SEED, 2);
    let fields: FieldSet = [
        Field::FullName,
        Field::DateOfBirth,
        Field::Sex,
        Field::PermanentAddress,
        Field::CurrentAddress,
        Field::Nationality,
        Field::Ethnicity,
        Field::LifeStatus,
        Field::CardExpiresOn,
    ]
    .into_iter()
    .collect();
    let answer = pb::LookupResponse {
        citizen: Some(convert::citizen(&record, fields)),
        reused: true,
        audit_seq: 123_456,
        request_id: String::new(),
        error: None,
    };
    let mut buf = Vec::with_capacity(1024);
    c.bench_function("encode_lookup_answer", |b| {
        b.iter(|| {
            buf.clear();
            black_box(&answer).encode(&mut buf).expect("encode");
            black_box(buf.len())
        })
    });
    // The store's encoding has the API message's field numbers: decoding that message costs
    // what decoding a stored record does.
    let stored = convert::citizen(&record, Field::ALL.into_iter().collect()).encode_to_vec();
    c.bench_function("decode_stored_record", |b| {
        b.iter(|| pb::Citizen::decode(black_box(&stored[..])).expect("decode"))
    });
}

/// The gateway domain pipeline without the network: authenticate, admit, parse, rights, cache
/// or store, audit (`batch`: written, not synced, per record), count, project.
fn pipeline(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = SledStore::open(&dir.path().join("population")).expect("store");
    seed_store(&store, &SeedPlan::new(CITIZENS, SEED), |_| {}).expect("seed");
    let mut audit = AuditOptions::new(dir.path().join("audit"));
    audit.durability = Durability::Batch;
    let audit: Arc<dyn AuditSink> = Arc::new(AuditLog::open(audit).expect("audit log"));
    let clock = Clock::system();
    let store = Arc::new(store);
    let gateway = Gateway::new(Parts {
        policy: policy(),
        store: store.clone(),
        changes: store,
        cache: Arc::new(ReuseCache::new(
            1_000_000,
            Duration::from_secs(300),
            clock.clone(),
        )),
        node_id: String::new(),
        audit: audit.clone(),
        rates: Arc::new(LocalRates {
            clock: clock.clone(),
        }),
        metrics: Arc::new(Metrics::new()),
        max_in_flight: 4096,
        clock,
    });
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let peer = peer();
    let lookups: Vec<LookupRequest> = (0..CITIZENS)
        .map(|i| LookupRequest {
            citizen_id: citizen_id_at(SEED, i).to_string(),
            purpose: "benchmark".into(),
            ..Default::default()
        })
        .collect();
    let verifies: Vec<VerifyRequest> = (0..1000)
        .map(|i| {
            let r = citizen_at(SEED, i);
            VerifyRequest {
                citizen_id: r.id.to_string(),
                claims: Some(Claims {
                    full_name: Some(
                        popgate::matching::normalize(&r.full_name, Mode::Loose).to_uppercase(),
                    ),
                    date_of_birth: Some(r.date_of_birth.clone()),
                    sex: None,
                    permanent_address: None,
                }),
                purpose: "benchmark".into(),
                request_id: String::new(),
                mode: MatchMode::Loose,
            }
        })
        .collect();
    // Every record cached once, so these measure the reuse path (the common one under skew).
    rt.block_on(async {
        for req in &lookups {
            gateway
                .unary(peer.clone(), req.clone())
                .await
                .expect("lookup");
        }
    });
    let mut i = 0usize;
    // The request is cloned per call: the gRPC layer hands the pipeline a decoded request it
    // owns, which costs about this much.
    c.bench_function("gateway_lookup_cached_batch_audit", |b| {
        b.iter(|| {
            i = (i + 7919) % lookups.len();
            rt.block_on(gateway.unary(peer.clone(), lookups[i].clone()))
                .expect("lookup")
        })
    });
    c.bench_function("gateway_verify_loose_cached_batch_audit", |b| {
        b.iter(|| {
            i = (i + 7919) % verifies.len();
            rt.block_on(gateway.unary(peer.clone(), verifies[i].clone()))
                .expect("verify")
        })
    });
    rt.block_on(async {
        let _ = audit.shutdown().await;
    });
}

criterion_group!(
    benches,
    matching,
    policy_checks,
    metrics,
    cache_miss,
    encoding,
    pipeline
);
criterion_main!(benches);
