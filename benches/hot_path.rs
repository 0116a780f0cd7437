//! Criterion benches for the pieces on a request's path: id parsing, field projection,
//! Verify normalisation, the reuse cache, the rate limiter and a store read.
//!
//! `cargo bench --bench hot_path`. Figures are per call on this machine; compare them as
//! ratios within one run.

use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use futures_util::FutureExt;
use popgate::cache::ReuseCache;
use popgate::citizen::{Citizen, LifeStatus, Sex};
use popgate::clock::Clock;
use popgate::fields::Field;
use popgate::grpc::convert;
use popgate::id::{CitizenId, IdSex};
use popgate::limits::Limits;
use popgate::limits::local::{LocalRate, LocalRates};
use popgate::matching::{Mode, normalize, text_matches};
use popgate::store::{Loader, SledStore, Store};

fn sample(id: CitizenId) -> Citizen {
    Citizen {
        id,
        full_name: "Nguyễn Thị Thu Hương".into(),
        date_of_birth: "1987-03-14".into(),
        sex: Sex::Female,
        place_of_origin: "Xã Yên Lư, Huyện Yên Dũng, Bắc Giang".into(),
        permanent_address: "Số 18, Ngõ 42, Phường Láng Hạ, Quận Đống Đa, Hà Nội".into(),
        current_address: "Số 18, Ngõ 42, Phường Láng Hạ, Quận Đống Đa, Hà Nội".into(),
        ethnicity: "Kinh".into(),
        religion: "Không".into(),
        nationality: "Việt Nam".into(),
        card_issued_on: "2021-06-02".into(),
        card_expires_on: "2027-03-14".into(),
        household_head_id: id.to_string(),
        life_status: LifeStatus::Alive,
        version: 1,
        updated_at: std::time::SystemTime::UNIX_EPOCH,
    }
}

fn id_parsing(c: &mut Criterion) {
    c.bench_function("id_parse_valid", |b| {
        b.iter(|| CitizenId::parse(black_box("079187004321"), 2026))
    });
    c.bench_function("id_parse_bad_province", |b| {
        b.iter(|| CitizenId::parse(black_box("003187004321"), 2026))
    });
}

fn projection(c: &mut Criterion) {
    let record = sample(CitizenId::from_parts(1, 1987, IdSex::Female, 4321));
    let two = [Field::FullName, Field::PermanentAddress]
        .into_iter()
        .collect();
    let all = Field::ALL.into_iter().collect();
    c.bench_function("project_2_fields", |b| {
        b.iter(|| convert::citizen(black_box(&record), two))
    });
    c.bench_function("project_all_fields", |b| {
        b.iter(|| convert::citizen(black_box(&record), all))
    });
}

fn matching(c: &mut Criterion) {
    c.bench_function("normalize_loose_name", |b| {
        b.iter(|| normalize(black_box("Nguyễn Thị Thu Hương"), Mode::Loose))
    });
    c.bench_function("normalize_exact_name", |b| {
        b.iter(|| normalize(black_box("Nguyễn Thị Thu Hương"), Mode::Exact))
    });
    // What Verify does per name claim: a telecom's upper-case ASCII claim against the record.
    c.bench_function("text_matches_loose_ascii_claim", |b| {
        b.iter(|| {
            text_matches(
                black_box("NGUYEN THI THU HUONG"),
                black_box("Nguyễn Thị Thu Hương"),
                Mode::Loose,
            )
        })
    });
    c.bench_function("text_matches_exact_name", |b| {
        b.iter(|| {
            text_matches(
                black_box("nguyễn thị thu hương"),
                black_box("Nguyễn Thị Thu Hương"),
                Mode::Exact,
            )
        })
    });
}

fn cache(c: &mut Criterion) {
    let cache = ReuseCache::new(200_000, Duration::from_secs(300), Clock::system());
    let ids: Vec<CitizenId> = (0..100_000)
        .map(|i| CitizenId::from_parts(1, 1987, IdSex::Male, i))
        .collect();
    for id in &ids {
        cache.write(Arc::new(sample(*id)), *id);
    }
    let mut i = 0usize;
    c.bench_function("cache_hit_100k", |b| {
        b.iter(|| {
            i = (i + 7919) % ids.len();
            black_box(cache.get(ids[i]).is_ok())
        })
    });
}

fn limiter(c: &mut Criterion) {
    let clock = Clock::system();
    let limit = LocalRate::new(&clock, 1_000_000_000, 1_000_000_000);
    c.bench_function("rate_limit_check", |b| {
        b.iter(|| black_box(limit.try_acquire()))
    });
    let rates = Arc::new(LocalRates {
        clock: clock.clone(),
    });
    let limits = Limits::new(&popgate::policy::Policy::default(), 1024, rates, &clock);
    c.bench_function("in_flight_admit_release", |b| {
        b.iter(|| black_box(limits.admit()))
    });
}

fn store_read(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = SledStore::open(dir.path()).expect("open store");
    let ids: Vec<CitizenId> = (0..100_000)
        .map(|i| CitizenId::from_parts(79, 1990, IdSex::Female, i * 7))
        .collect();
    for chunk in ids.chunks(10_000) {
        let batch: Vec<_> = chunk.iter().map(|id| sample(*id)).collect();
        store.load(&batch).expect("load");
    }
    let mut i = 0usize;
    // Through the async trait, as the gateway calls it: sled answers without waiting, so one
    // poll completes the future.
    c.bench_function("store_get_100k", |b| {
        b.iter(|| {
            i = (i + 7919) % ids.len();
            black_box(
                store
                    .get(ids[i])
                    .now_or_never()
                    .expect("ready")
                    .expect("get"),
            )
        })
    });
}

criterion_group!(
    benches, id_parsing, projection, matching, cache, limiter, store_read
);
criterion_main!(benches);
