//! What the load generator spends per request before sending it: it shares the cores with the
//! server it measures, so its cost is part of every figure in docs/BENCHMARKS.md.
//!
//! `cargo bench -p popgate-bench --bench load_generator`. Compare figures as ratios within one
//! run.

use criterion::{Criterion, criterion_group, criterion_main};
use popgate::matching::{Mode, normalize};
use popgate::synth::{citizen_at, citizen_id_at};
use popgate_bench::keys::{KeySampler, Rng};

const SEED: u64 = 7;

fn load_generator(c: &mut Criterion) {
    let zipf = KeySampler::new("zipf:1.0".parse().expect("dist"), 1_000_000);
    let mut rng = Rng::new(1);
    c.bench_function("bench_draw_zipf_key_and_id", |b| {
        b.iter(|| citizen_id_at(SEED, zipf.sample(&mut rng)).to_string())
    });
    let mut k = 0u64;
    c.bench_function("bench_build_verify_claims", |b| {
        b.iter(|| {
            k += 1;
            let r = citizen_at(SEED, k);
            normalize(&r.full_name, Mode::Loose).to_uppercase()
        })
    });
}

criterion_group!(benches, load_generator);
criterion_main!(benches);
