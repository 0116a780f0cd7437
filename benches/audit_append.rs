//! Audit append throughput: many concurrent callers in `sync` mode (every acknowledgement
//! after an fdatasync, shared by the batch) and `batch` mode, one caller's latency, and the CPU
//! cost of encoding and hashing one record.
//!
//! `cargo bench --bench audit_append`. The log lives in a temporary directory under
//! `$TMPDIR` (the disk matters: put it where `[audit].dir` would be).
//!
//! For one plain figure instead of criterion's statistics:
//! `AUDIT_APPEND_RUN=sync,256,300000 cargo bench --bench audit_append` appends 300,000
//! records from 256 concurrent callers and prints records/s and records per sync.

use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group};
use popgate::audit::chain::GENESIS;
use popgate::audit::record::encode;
use popgate::audit::{AuditEvent, AuditLog, AuditOptions, Durability, Outcome};

fn event(i: u64) -> AuditEvent {
    AuditEvent {
        client: "viettel".into(),
        cert_sha256: "cd".repeat(32).into(),
        peer: "10.0.0.7:50312".into(),
        method: "Verify",
        citizen_id: Some(format!("0012030{i:05}")),
        fields: vec!["full_name", "date_of_birth"],
        purpose: "subscriber-verification".into(),
        request_id: format!("tx-{i:016x}"),
        outcome: Outcome::Ok,
        reused: i.is_multiple_of(3),
        latency_us: 412,
        count: None,
        reason: None,
    }
}

/// Appends `n` records from `callers` concurrent tasks; returns the wall time.
async fn run(log: &AuditLog, callers: u64, n: u64) -> Duration {
    let start = Instant::now();
    let mut tasks = Vec::new();
    for c in 0..callers {
        let log = log.clone();
        let mine = n / callers + u64::from(c < n % callers);
        tasks.push(tokio::spawn(async move {
            for i in 0..mine {
                log.append(event(i)).await.expect("append");
            }
        }));
    }
    for t in tasks {
        t.await.expect("task");
    }
    start.elapsed()
}

/// Records each caller appends per iteration: every iteration has all callers in flight at
/// once, whatever number of iterations criterion picks.
const PER_CALLER: u64 = 8;

fn concurrent(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let mut g = c.benchmark_group("audit_append");
    g.measurement_time(Duration::from_secs(8));
    for (mode, durability) in [("sync", Durability::Sync), ("batch", Durability::Batch)] {
        for callers in [1u64, 64, 256, 1024] {
            if mode == "batch" && callers == 1 {
                continue;
            }
            let per_iter = callers * PER_CALLER;
            g.throughput(Throughput::Elements(per_iter));
            let dir = tempfile::tempdir().expect("tempdir");
            let mut o = AuditOptions::new(dir.path());
            o.durability = durability;
            let log = rt.block_on(async { AuditLog::open(o) }).expect("open");
            g.bench_function(BenchmarkId::new(mode, format!("{callers}_callers")), |b| {
                b.iter_custom(|iters| rt.block_on(run(&log, callers, iters * per_iter)))
            });
            let s = log.stats();
            if s.records > 0 {
                eprintln!(
                    "  {mode} {callers} callers: {} records, {} syncs, {:.1} records/sync",
                    s.records,
                    s.syncs,
                    s.records as f64 / s.syncs.max(1) as f64
                );
            }
            rt.block_on(log.shutdown()).expect("shutdown");
        }
    }
    g.finish();
}

/// The disk's own price: append ~450 bytes and fdatasync, one at a time. The sync-mode
/// figures above only mean something next to this one, taken in the same run.
fn fdatasync_alone(c: &mut Criterion) {
    use std::io::Write;
    let dir = tempfile::tempdir().expect("tempdir");
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.path().join("probe"))
        .expect("file");
    let line = [b'x'; 450];
    c.bench_function("fdatasync_one_450B_append", |b| {
        b.iter(|| {
            f.write_all(&line).expect("write");
            f.sync_data().expect("sync");
        })
    });
}

fn encode_one(c: &mut Criterion) {
    let ev = event(1);
    let mut buf = Vec::with_capacity(1024);
    c.bench_function("audit_encode_and_hash_one_record", |b| {
        b.iter(|| {
            buf.clear();
            encode(&mut buf, 123_456, 1_795_000_353_000_007, &ev, &GENESIS)
        })
    });
}

/// `AUDIT_APPEND_RUN=<sync|batch>,<callers>,<records>`: one timed run.
fn plain_run(spec: &str) {
    let parts: Vec<&str> = spec.split(',').collect();
    let (durability, callers, n) = match parts[..] {
        [m, c, n] => (
            if m == "batch" {
                Durability::Batch
            } else {
                Durability::Sync
            },
            c.parse::<u64>().expect("callers"),
            n.parse::<u64>().expect("records"),
        ),
        _ => panic!("AUDIT_APPEND_RUN=<sync|batch>,<callers>,<records>"),
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let dir = tempfile::tempdir().expect("tempdir");
    let mut o = AuditOptions::new(dir.path());
    o.durability = durability;
    rt.block_on(async {
        let log = AuditLog::open(o).expect("open");
        let took = run(&log, callers, n).await;
        let s = log.stats();
        log.shutdown().await.expect("shutdown");
        println!(
            "{spec}: {n} records in {took:.2?} = {:.0} records/s, {:.1} records/sync ({} syncs)",
            n as f64 / took.as_secs_f64(),
            s.records as f64 / s.syncs.max(1) as f64,
            s.syncs
        );
    });
}

criterion_group!(benches, fdatasync_alone, concurrent, encode_one);

fn main() {
    if let Ok(spec) = std::env::var("AUDIT_APPEND_RUN") {
        plain_run(&spec);
        return;
    }
    benches();
    Criterion::default().configure_from_args().final_summary();
}
