//! What a benchmark prints: one entry per measured load and, for the two-sided scenarios, the
//! comparison that is the point of the run; as a table or as JSON.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;

use serde::Serialize;

use crate::load::Tally;

/// Latency percentiles of successful calls, microseconds.
#[derive(Debug, Clone, Serialize)]
pub struct Latency {
    pub p50: u64,
    pub p90: u64,
    pub p99: u64,
    pub p999: u64,
    pub max: u64,
    pub mean: f64,
}

/// One measured load.
#[derive(Debug, Clone, Serialize)]
pub struct PhaseReport {
    /// What this load is within the scenario, e.g. "gateway", "baseline", "b-with-flood".
    pub name: String,
    /// The round it ran in, from 1 (`--rounds`).
    pub round: usize,
    /// "gateway", "baseline" or the remote address.
    pub target: String,
    /// The settings that differ between phases, in words (audit, cache, store size, client).
    pub settings: String,
    pub duration_secs: f64,
    /// Calls (or stream items) answered without error in the measured window.
    pub requests: u64,
    pub requests_per_sec: f64,
    pub latency_us: Latency,
    /// Failed calls or stream items by gRPC code name.
    pub errors: BTreeMap<&'static str, u64>,
    /// Answers with `reused = true`, and their share of successful answers.
    pub reused: u64,
    pub reuse_rate: f64,
    /// Verify answers that disagreed with the claims sent (must be 0).
    pub wrong_answers: u64,
    pub mismatches_sent: u64,
    pub mismatches_detected: u64,
    pub deceased: u64,
    /// The most calls outstanding at once on one connection (open loop only).
    pub max_outstanding: u64,
    /// Resident memory of this process (client and in-process server) at the end, MiB.
    pub rss_mib: f64,
    /// The in-process gateway's audit writer during this step (all loads of the step).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub audit: Option<AuditFigures>,
    /// CPU time of this whole process (server and load generator with `--dev`; the load
    /// generator alone with `--addr`) over the step, warm-up included.
    pub cpu: Option<CpuFigures>,
    /// Over PostgreSQL: the nodes, their calls to the shared-limits Redis and their writes'
    /// waits for the other nodes' caches during this step.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cluster: Option<ClusterFigures>,
}

/// What the nodes of a stage over PostgreSQL did during one step (all loads of the step).
#[derive(Debug, Clone, Serialize)]
pub struct ClusterFigures {
    pub nodes: usize,
    /// Calls made to the shared-limits Redis (0 without `--shared-limits`).
    pub redis_calls: u64,
    /// Calls the nodes admitted (not refused for a rate), warm-up included, per Redis call,
    /// over every client.
    pub admitted_per_redis_call: Option<f64>,
    /// PutCitizen's wait after its commit for the other nodes' caches: how many, the mean,
    /// and the upper bounds of the histogram buckets that hold the 50th and 99th percentile.
    pub write_waits: u64,
    pub write_wait_mean_ms: f64,
    pub write_wait_p50_le_ms: Option<f64>,
    pub write_wait_p99_le_ms: Option<f64>,
}

impl ClusterFigures {
    pub fn between(
        nodes: usize,
        redis_calls: u64,
        admitted: u64,
        waits: &popgate::metrics::HistogramSnapshot,
    ) -> ClusterFigures {
        ClusterFigures {
            nodes,
            redis_calls,
            admitted_per_redis_call: (redis_calls > 0)
                .then(|| admitted as f64 / redis_calls as f64),
            write_waits: waits.count,
            write_wait_mean_ms: if waits.count == 0 {
                0.0
            } else {
                waits.sum_secs * 1000.0 / waits.count as f64
            },
            write_wait_p50_le_ms: waits.quantile_bound(0.50).map(|s| s * 1000.0),
            write_wait_p99_le_ms: waits.quantile_bound(0.99).map(|s| s * 1000.0),
        }
    }
}

/// `pgbench -S -M prepared` against the stages' database in the same run: the ceiling of
/// point reads from this PostgreSQL on this machine.
#[derive(Debug, Clone, Serialize)]
pub struct PgbenchFigures {
    pub command: String,
    pub tps: f64,
    pub latency_ms: Option<f64>,
}

/// What the CPU and audit figures of a step cover: all of it, warm-up included (the default)…
pub const WHOLE_STEP: &str = "whole step, incl. warm-up";
/// …or, in an interleaved comparison, only the side's measured slices.
pub const MEASURED_SLICES: &str = "measured slices only";

/// What a step cost in CPU: steadier than requests/s on a shared machine, and it tells a
/// slower run that did less work per second from one that did more work per call.
#[derive(Debug, Clone, Serialize)]
pub struct CpuFigures {
    /// Process CPU time (user + system, all threads) per call finished in the step.
    pub us_per_call: f64,
    /// Process CPU time per second of the step: how many cores it kept busy.
    pub cores_busy: f64,
    /// The CPU per call split by what the threads do; `None` where threads' times cannot be
    /// read. It says where a difference between two phases lies without a profiler.
    pub by_thread: Option<ThreadShare>,
    /// The time these figures cover ([`WHOLE_STEP`] or [`MEASURED_SLICES`]).
    pub window: &'static str,
    /// CPU time of the bench's own PostgreSQL (its postmaster and backends, other processes
    /// on the same cores) per call; `None` without one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub postgres_us_per_call: Option<f64>,
}

/// The postmaster whose processes' CPU time is counted (the bench's throwaway PostgreSQL).
static POSTMASTER: std::sync::OnceLock<u32> = std::sync::OnceLock::new();

/// Counts the CPU time of PostgreSQL `pid` and its children in every later sample.
pub fn watch_postgres(pid: u32) {
    let _ = POSTMASTER.set(pid);
}

/// User + system CPU time so far of the watched postmaster and its children (Linux: each
/// process's `/proc/<pid>/stat`, in USER_HZ = 1/100 s); `None` when none is watched. A backend
/// that exited is no longer counted: the gateway's connections are long-lived.
fn postgres_cpu() -> Option<Duration> {
    let master = *POSTMASTER.get()?;
    let mut ticks = 0u64;
    for entry in std::fs::read_dir("/proc").ok()?.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<u32>().ok())
        else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        let Some(rest) = stat.rfind(')').map(|i| &stat[i + 1..]) else {
            continue;
        };
        // After ')': state (3), ppid (4), … utime (14), stime (15).
        let f: Vec<&str> = rest.split_whitespace().collect();
        let ppid = f.get(1).and_then(|v| v.parse::<u32>().ok());
        if pid != master && ppid != Some(master) {
            continue;
        }
        let t = |i: usize| f.get(i).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
        ticks += t(11) + t(12);
    }
    Some(Duration::from_millis(ticks * 10))
}

/// µs of CPU per call by thread kind. In a `--dev` run the server, the load generator and the
/// audit writer share the process, and the idle side of an interleaved run costs next to
/// nothing, so each phase's figures are its own.
#[derive(Debug, Clone, Serialize)]
pub struct ThreadShare {
    /// The server runtime's workers and blocking threads: TLS, HTTP/2, tonic, the gateway.
    pub server_us: f64,
    /// The load generator's runtime.
    pub load_generator_us: f64,
    /// The audit writer and its sync thread.
    pub audit_us: f64,
    /// Everything else: the main thread, the store's threads, logging.
    pub other_us: f64,
}

/// CPU time so far of this process's threads, summed by kind (Linux: each thread's
/// `/proc/self/task/<tid>/schedstat`, in ns). A thread that ended is no longer counted, so the
/// kinds may sum to a little less than the process's time.
#[derive(Debug, Clone, Copy, Default)]
pub struct ThreadCpu {
    server: Duration,
    load: Duration,
    audit: Duration,
    other: Duration,
}

impl ThreadCpu {
    /// `None` where `/proc/self/task` cannot be read.
    pub fn now() -> Option<ThreadCpu> {
        let mut t = ThreadCpu::default();
        for entry in std::fs::read_dir("/proc/self/task").ok()?.flatten() {
            let dir = entry.path();
            // A thread may end between listing and reading: skip it.
            let (Ok(comm), Ok(stat)) = (
                std::fs::read_to_string(dir.join("comm")),
                std::fs::read_to_string(dir.join("schedstat")),
            ) else {
                continue;
            };
            let Some(ns) = stat.split_whitespace().next().and_then(|v| v.parse().ok()) else {
                continue;
            };
            let kind = match comm.trim_end() {
                n if n.starts_with("bench-server") => &mut t.server,
                n if n.starts_with("bench-client") => &mut t.load,
                n if n.starts_with("popgate-audit") => &mut t.audit,
                _ => &mut t.other,
            };
            *kind += Duration::from_nanos(ns);
        }
        Some(t)
    }

    fn since(&self, before: &ThreadCpu) -> ThreadCpu {
        ThreadCpu {
            server: self.server.saturating_sub(before.server),
            load: self.load.saturating_sub(before.load),
            audit: self.audit.saturating_sub(before.audit),
            other: self.other.saturating_sub(before.other),
        }
    }

    fn add(&mut self, more: &ThreadCpu) {
        self.server += more.server;
        self.load += more.load;
        self.audit += more.audit;
        self.other += more.other;
    }
}

/// The process's and its threads' CPU time at one moment.
#[derive(Debug, Clone, Copy)]
pub struct CpuSample {
    process: Option<Duration>,
    threads: Option<ThreadCpu>,
    postgres: Option<Duration>,
}

impl CpuSample {
    pub fn now() -> CpuSample {
        CpuSample {
            process: process_cpu(),
            threads: ThreadCpu::now(),
            postgres: postgres_cpu(),
        }
    }
}

/// CPU time used between samples, summed over an interleaved side's slices.
#[derive(Debug, Clone, Copy)]
pub struct CpuUse {
    process: Duration,
    threads: Option<ThreadCpu>,
    postgres: Option<Duration>,
}

impl Default for CpuUse {
    fn default() -> CpuUse {
        CpuUse {
            process: Duration::ZERO,
            threads: Some(ThreadCpu::default()),
            postgres: POSTMASTER.get().map(|_| Duration::ZERO),
        }
    }
}

impl CpuUse {
    /// `None` where the process's CPU time cannot be read (not Linux).
    pub fn between(before: &CpuSample, after: &CpuSample) -> Option<CpuUse> {
        Some(CpuUse {
            process: after.process?.checked_sub(before.process?)?,
            threads: after.threads.zip(before.threads).map(|(a, b)| a.since(&b)),
            postgres: after
                .postgres
                .zip(before.postgres)
                .map(|(a, b)| a.saturating_sub(b)),
        })
    }

    pub fn add(&mut self, more: &CpuUse) {
        self.process += more.process;
        self.threads = self.threads.zip(more.threads).map(|(mut t, m)| {
            t.add(&m);
            t
        });
        self.postgres = self.postgres.zip(more.postgres).map(|(a, b)| a + b);
    }
}

impl CpuFigures {
    /// `None` where the process's CPU time cannot be read (not Linux).
    pub fn between(
        before: &CpuSample,
        after: &CpuSample,
        wall: Duration,
        calls: u64,
    ) -> Option<CpuFigures> {
        let used = CpuUse::between(before, after)?;
        Some(CpuFigures::over(&used, wall, calls, WHOLE_STEP))
    }

    /// `used` CPU time over `wall` time for `calls` finished calls.
    pub fn over(used: &CpuUse, wall: Duration, calls: u64, window: &'static str) -> CpuFigures {
        let per_call = |d: Duration| d.as_secs_f64() * 1e6 / (calls.max(1) as f64);
        CpuFigures {
            us_per_call: per_call(used.process),
            cores_busy: used.process.as_secs_f64() / wall.as_secs_f64().max(1e-9),
            by_thread: used.threads.map(|t| ThreadShare {
                server_us: per_call(t.server),
                load_generator_us: per_call(t.load),
                audit_us: per_call(t.audit),
                other_us: per_call(t.other),
            }),
            window,
            postgres_us_per_call: used.postgres.map(per_call),
        }
    }
}

/// What the audit writer did during a step.
#[derive(Debug, Clone, Serialize)]
pub struct AuditFigures {
    pub records_per_sec: f64,
    pub syncs_per_sec: f64,
    pub records_per_sync: f64,
    /// Mean time of one `fdatasync`, ms.
    pub sync_ms: f64,
    /// Mean bytes of one record in the log files (the gateway's JSON line, or the durable
    /// baseline's fixed record); `None` where they cannot be measured (the audit log in the
    /// database).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bytes_per_record: Option<f64>,
    /// The time these figures cover ([`WHOLE_STEP`] or [`MEASURED_SLICES`]).
    pub window: &'static str,
}

impl AuditFigures {
    pub fn between(
        before: &popgate::audit::AuditStats,
        after: &popgate::audit::AuditStats,
        secs: f64,
        window: &'static str,
    ) -> AuditFigures {
        let records = after.records.saturating_sub(before.records) as f64;
        let syncs = after.syncs.saturating_sub(before.syncs) as f64;
        AuditFigures {
            records_per_sec: records / secs.max(1e-9),
            syncs_per_sec: syncs / secs.max(1e-9),
            records_per_sync: if syncs > 0.0 { records / syncs } else { 0.0 },
            sync_ms: if syncs > 0.0 {
                after.sync_us.saturating_sub(before.sync_us) as f64 / syncs / 1000.0
            } else {
                0.0
            },
            bytes_per_record: None,
            window,
        }
    }

    /// Sets the mean record size from `bytes` written for `records` (none when 0 bytes: the
    /// records went elsewhere).
    pub fn with_bytes(mut self, bytes: u64, records: u64) -> AuditFigures {
        self.bytes_per_record = (bytes > 0 && records > 0).then(|| bytes as f64 / records as f64);
        self
    }
}

impl PhaseReport {
    pub fn new(name: &str, target: &str, settings: String, secs: f64, t: &Tally) -> PhaseReport {
        let h = &t.latency;
        let q = |p: f64| {
            if h.is_empty() {
                0
            } else {
                h.value_at_quantile(p)
            }
        };
        PhaseReport {
            name: name.to_owned(),
            round: 1,
            target: target.to_owned(),
            settings,
            duration_secs: secs,
            requests: t.ok,
            requests_per_sec: t.ok as f64 / secs.max(1e-9),
            latency_us: Latency {
                p50: q(0.50),
                p90: q(0.90),
                p99: q(0.99),
                p999: q(0.999),
                max: h.max(),
                mean: if h.is_empty() { 0.0 } else { h.mean() },
            },
            errors: t.errors.clone(),
            reused: t.reused,
            reuse_rate: if t.ok == 0 {
                0.0
            } else {
                t.reused as f64 / t.ok as f64
            },
            wrong_answers: t.wrong_answers,
            mismatches_sent: t.mismatches_sent,
            mismatches_detected: t.mismatches_detected,
            deceased: t.deceased,
            max_outstanding: t.max_outstanding,
            rss_mib: rss_bytes().map_or(0.0, |b| b as f64 / (1024.0 * 1024.0)),
            audit: None,
            cpu: None,
            cluster: None,
        }
    }
}

/// A ratio between two phases, with the target it is held to.
#[derive(Debug, Clone, Serialize)]
pub struct Comparison {
    pub what: String,
    /// `of` / `against` requests per second.
    pub of: String,
    pub against: String,
    pub throughput_ratio: f64,
    pub p99_ratio: f64,
    pub p50_ratio: f64,
    /// `of` / `against` CPU per call of the server and audit threads (the load generator
    /// left out): what the server side does per call, whatever the cores' idle time.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub server_audit_cpu_ratio: Option<f64>,
    /// The target in words, and whether this run met it.
    pub target: String,
    pub met: bool,
    /// With several rounds: the round this comparison is of; absent on the summary.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub round: Option<usize>,
    /// With several rounds, on the summary: the spread over all of them.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rounds: Option<Spread>,
}

/// The summary of a comparison made in several rounds: its figures and verdict are those of
/// the median round, the one whose throughput ratio is in the middle (the lower middle one
/// for an even count, so that the verdict never rests on the better half).
#[derive(Debug, Clone, Serialize)]
pub struct Spread {
    pub count: usize,
    pub median_round: usize,
    pub throughput_ratio_min: f64,
    pub throughput_ratio_max: f64,
}

/// The comparisons of a run: each round's own when there is one round; otherwise, for each
/// comparison, that of its median round with the spread over all rounds.
pub fn median_rounds(per_round: &[Vec<Comparison>]) -> Vec<Comparison> {
    let [first, rest @ ..] = per_round else {
        return Vec::new();
    };
    if rest.is_empty() {
        return first.clone();
    }
    (0..first.len())
        .filter_map(|i| {
            let mut all: Vec<&Comparison> = per_round.iter().filter_map(|r| r.get(i)).collect();
            all.sort_by(|a, b| a.throughput_ratio.total_cmp(&b.throughput_ratio));
            let median = all[(all.len() - 1) / 2];
            Some(Comparison {
                round: None,
                rounds: Some(Spread {
                    count: all.len(),
                    median_round: median.round?,
                    throughput_ratio_min: all[0].throughput_ratio,
                    throughput_ratio_max: all[all.len() - 1].throughput_ratio,
                }),
                ..median.clone()
            })
        })
        .collect()
}

/// A phase's CPU per call on its server and audit threads, µs.
pub fn server_audit_us(p: &PhaseReport) -> Option<f64> {
    let t = p.cpu.as_ref()?.by_thread.as_ref()?;
    Some(t.server_us + t.audit_us)
}

impl Comparison {
    pub fn between(what: &str, of: &PhaseReport, against: &PhaseReport) -> Comparison {
        let ratio = |a: f64, b: f64| if b > 0.0 { a / b } else { 0.0 };
        Comparison {
            what: what.to_owned(),
            of: of.name.clone(),
            against: against.name.clone(),
            throughput_ratio: ratio(of.requests_per_sec, against.requests_per_sec),
            p99_ratio: ratio(of.latency_us.p99 as f64, against.latency_us.p99 as f64),
            p50_ratio: ratio(of.latency_us.p50 as f64, against.latency_us.p50 as f64),
            server_audit_cpu_ratio: server_audit_us(of)
                .zip(server_audit_us(against))
                .map(|(a, b)| ratio(a, b)),
            target: String::new(),
            met: false,
            round: None,
            rounds: None,
        }
    }

    pub fn with_target(mut self, target: &str, met: impl Fn(&Comparison) -> bool) -> Comparison {
        self.target = target.to_owned();
        self.met = met(&self);
        self
    }
}

/// How the cache's memory was measured (the `--compare-cache` scenario).
#[derive(Debug, Clone, Serialize)]
pub struct CacheFootprint {
    pub records: u64,
    /// Growth of this process's resident memory while filling a cache, per record.
    pub rss_bytes_per_record: f64,
    /// The records' own heap and struct bytes per record (what the cache must hold at least);
    /// the rest of the RSS figure is the cache's index and allocator overhead.
    pub payload_bytes_per_record: f64,
}

/// The whole run.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub scenario: String,
    /// The load's settings in words.
    pub load: String,
    /// Cores this process could use; the load generator shares them with the server.
    pub cores: usize,
    /// How many times each side ran, alternating (`--rounds`).
    pub rounds: usize,
    /// `--interleave`: both servers ran at once and the load alternated between them in
    /// slices of this many seconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub interleave_secs: Option<f64>,
    pub phases: Vec<PhaseReport>,
    pub comparisons: Vec<Comparison>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cache_footprint: Option<CacheFootprint>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pgbench: Option<PgbenchFigures>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub watch: Option<crate::watch::WatchFigures>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub console: Option<crate::console::ConsoleFigures>,
}

impl Report {
    /// The table printed when `--json` is not given.
    pub fn table(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(
            s,
            "popgate-bench: {} ({} cores, shared by the load generator and the server)\nload: {}",
            self.scenario, self.cores, self.load
        );
        if let Some(secs) = self.interleave_secs {
            let _ = writeln!(
                s,
                "both servers up at once, the load alternating between them in slices of {secs}s"
            );
        }
        s.push('\n');
        let _ = writeln!(
            s,
            "{:<16} {:>10} {:>10} {:>8} {:>8} {:>8} {:>9} {:>7}  errors",
            "phase", "requests", "req/s", "p50 ms", "p90 ms", "p99 ms", "p99.9 ms", "reuse",
        );
        let ms = |us: u64| us as f64 / 1000.0;
        for p in &self.phases {
            let name = match self.rounds {
                1 => p.name.clone(),
                _ => format!("{} #{}", p.name, p.round),
            };
            let errors = if p.errors.is_empty() {
                "none".to_owned()
            } else {
                p.errors
                    .iter()
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect::<Vec<_>>()
                    .join(" ")
            };
            let _ = writeln!(
                s,
                "{:<16} {:>10} {:>10.0} {:>8.2} {:>8.2} {:>8.2} {:>9.2} {:>6.1}%  {}",
                name,
                p.requests,
                p.requests_per_sec,
                ms(p.latency_us.p50),
                ms(p.latency_us.p90),
                ms(p.latency_us.p99),
                ms(p.latency_us.p999),
                p.reuse_rate * 100.0,
                errors
            );
            let _ = writeln!(
                s,
                "{:<16} {} ({}; RSS {:.0} MiB)",
                "", p.settings, p.target, p.rss_mib
            );
            if let Some(a) = &p.audit {
                let size = a
                    .bytes_per_record
                    .map(|b| format!(" of {b:.0} bytes"))
                    .unwrap_or_default();
                let _ = writeln!(
                    s,
                    "{:<16} audit: {:.0} records/s{size}, {:.0} syncs/s of {:.2} ms, {:.1} records per sync ({})",
                    "", a.records_per_sec, a.syncs_per_sec, a.sync_ms, a.records_per_sync, a.window
                );
            }
            if let Some(c) = &p.cpu {
                let split = c
                    .by_thread
                    .as_ref()
                    .map(|t| {
                        format!(
                            " (server {:.1}, load generator {:.1}, audit {:.1}, other {:.1})",
                            t.server_us, t.load_generator_us, t.audit_us, t.other_us
                        )
                    })
                    .unwrap_or_default();
                let pg = c
                    .postgres_us_per_call
                    .map(|us| format!("; PostgreSQL {us:.1} µs per call (its own processes)"))
                    .unwrap_or_default();
                let _ = writeln!(
                    s,
                    "{:<16} cpu: {:.1} µs per call{split}, {:.2} cores busy (this process, {}){pg}",
                    "", c.us_per_call, c.cores_busy, c.window
                );
            }
            if let Some(c) = &p.cluster {
                let le = |v: Option<f64>| v.map_or("-".to_owned(), |ms| format!("<= {ms} ms"));
                let redis = match c.admitted_per_redis_call {
                    Some(per) => format!(
                        "{} Redis calls, {per:.1} admitted calls per Redis call",
                        c.redis_calls
                    ),
                    None => "no Redis calls".to_owned(),
                };
                let _ = writeln!(
                    s,
                    "{:<16} cluster: {} nodes; {redis}; {} write waits, mean {:.2} ms, p50 {}, p99 {}",
                    "",
                    c.nodes,
                    c.write_waits,
                    c.write_wait_mean_ms,
                    le(c.write_wait_p50_le_ms),
                    le(c.write_wait_p99_le_ms)
                );
            }
            if p.mismatches_sent > 0 || p.wrong_answers > 0 {
                let _ = writeln!(
                    s,
                    "{:<16} verify: {} deliberate mismatches sent, {} came back unmatched; {} deceased; {} wrong answers",
                    "", p.mismatches_sent, p.mismatches_detected, p.deceased, p.wrong_answers
                );
            }
        }
        for c in &self.comparisons {
            let cpu = c
                .server_audit_cpu_ratio
                .map(|r| format!(", server+audit CPU per call {r:.2}x"))
                .unwrap_or_default();
            let ratios = format!(
                "{} / {}: throughput {:.1}%, p50 {:.2}x, p99 {:.2}x{cpu}",
                c.of,
                c.against,
                c.throughput_ratio * 100.0,
                c.p50_ratio,
                c.p99_ratio,
            );
            let verdict = format!(
                "(target: {}) {}",
                c.target,
                if c.met { "MET" } else { "MISSED" }
            );
            match (c.round, &c.rounds) {
                (Some(r), _) => {
                    let _ = write!(s, "\nround {r}: {}: {ratios}", c.what);
                }
                (None, Some(sp)) => {
                    let _ = writeln!(
                        s,
                        "\n\n{} over {} rounds: median round {}: {ratios}; throughput {:.1}-{:.1}% over the rounds  {verdict}",
                        c.what,
                        sp.count,
                        sp.median_round,
                        sp.throughput_ratio_min * 100.0,
                        sp.throughput_ratio_max * 100.0,
                    );
                }
                (None, None) => {
                    let _ = writeln!(s, "\n{}: {ratios}  {verdict}", c.what);
                }
            }
        }
        if let Some(w) = &self.watch {
            let _ = writeln!(
                s,
                "\nevents: {} of {} expected to {} streams ({} followed citizens), {:.0} events/s; from PutCitizen's response to the event p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
                w.events,
                w.events_expected,
                w.streams,
                w.followed_citizens,
                w.events_per_sec,
                w.latency_p50_ms,
                w.latency_p99_ms,
                w.latency_max_ms
            );
            if let Some(why) = &w.first_end {
                let _ = writeln!(
                    s,
                    "{} streams ended early; the first: {why}",
                    w.streams_ended
                );
            }
            let met = |m: bool| if m { "MET" } else { "MISSED" };
            let _ = writeln!(
                s,
                "(targets: p99 <= 100 ms {}; >= 50,000 events/s {})",
                met(w.latency_target_met),
                met(w.events_target_met)
            );
            if let Some(f) = &w.follow {
                let _ = writeln!(
                    s,
                    "follow: {} ids in {:.2} s ({:.0} ids/s), store growth {}",
                    f.ids,
                    f.secs,
                    f.ids_per_sec,
                    f.bytes_per_id
                        .map_or("unknown".to_owned(), |b| format!("{b:.0} bytes per id"))
                );
            }
        }
        if let Some(c) = &self.console {
            let _ = writeln!(
                s,
                "\nconsole over the {} log: {} records over {} days, {:.2} GB{}; each search {} times, a new TLS connection each:",
                c.backend,
                c.records,
                c.days,
                c.log_bytes as f64 / 1e9,
                if c.log_write_secs > 0.0 {
                    format!(" (written in {:.0} s)", c.log_write_secs)
                } else {
                    String::new()
                },
                c.searches.first().map_or(0, |q| q.asked),
            );
            for q in &c.searches {
                let _ = writeln!(
                    s,
                    "  {:<18} p50 {:>9.2} ms  p99 {:>9.2} ms  max {:>9.2} ms  ({} bytes; {})",
                    q.name, q.p50_ms, q.p99_ms, q.max_ms, q.page_bytes, q.example
                );
            }
            let _ = writeln!(
                s,
                "pages served to the inspector while the load ran: {}, p50 {:.2} ms, p99 {:.2} ms each",
                c.pages_during_load, c.page_during_load_p50_ms, c.page_during_load_p99_ms
            );
            if let Some(why) = &c.first_failure {
                let _ = writeln!(
                    s,
                    "pages that did not come: {}; the first: {why}",
                    c.pages_failed
                );
            }
        }
        if let Some(p) = &self.pgbench {
            let _ = writeln!(
                s,
                "\nPostgreSQL's own ceiling, same database, same run: {:.0} point selects/s{} ({})",
                p.tps,
                p.latency_ms
                    .map(|l| format!(", {l:.3} ms average"))
                    .unwrap_or_default(),
                p.command
            );
        }
        if let Some(f) = &self.cache_footprint {
            let _ = writeln!(
                s,
                "\ncache memory: {:.0} bytes per cached record (RSS growth over {} records); the records themselves are {:.0} bytes",
                f.rss_bytes_per_record, f.records, f.payload_bytes_per_record
            );
        }
        s
    }
}

/// User + system CPU time of this process so far, all threads (Linux: `/proc/self/stat`, whose
/// times are in USER_HZ = 1/100 s on every Linux architecture Rust targets); `None` elsewhere.
pub fn process_cpu() -> Option<Duration> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // The command name (field 2) may hold spaces; the fields after its closing parenthesis do not.
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace();
    // After ')': state is field 3, so utime (14) and stime (15) are the 12th and 13th here.
    let utime: u64 = fields.nth(11)?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some(Duration::from_millis((utime + stime) * 10))
}

/// This process's resident memory, from /proc (Linux); `None` elsewhere.
pub fn rss_bytes() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * 4096)
}
