//! `--sweep`: the capacity curve. An open-loop rate sweep against the bare baseline, the
//! durable baseline and the gateway, all three servers up at once (as `--interleave` runs
//! them), each offered rate run against each side in turn, so that a slow spell of the host
//! falls on the three about alike. Latency is taken from each call's slot in the timetable,
//! so a server that falls behind is charged for every call that waited (no coordinated
//! omission): past its capacity a side's p99 grows with the length of the step.
//!
//! The knee of a side is the highest offered rate at which its p99 stays within
//! [`P99_LIMIT_MS`] and it answered at least [`MIN_ACHIEVED`] of the offered calls per second
//! (answered calls over the time until the last one came back). Operators size deployments
//! from it, not from a closed-loop figure. The curve is written as JSON and as an SVG drawn
//! here, with no external assets, so that docs/BENCHMARKS.md can embed it.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::load::{self, LoadSpec, Pace};
use crate::report::{self, CpuFigures};
use crate::target::{BenchDir, StoreKind, StoreRef};
use crate::{
    BenchError, DevOptions, Options, Outside, Scenario, Side, StageServer, Target, fixed_answers,
    plan, runtime, seed_store, start_sides,
};

/// The p99 a point may have and still count as served.
pub const P99_LIMIT_MS: f64 = 10.0;
/// The share of the offered rate a point must answer to count as served.
pub const MIN_ACHIEVED: f64 = 0.9;
/// The issue's target for the gateway's knee against the durable baseline's.
pub const KNEE_TARGET: f64 = 0.85;

/// Where `auto` starts and how it steps: each side is stopped after two points in a row past
/// the limit (one alone may be a stall of the shared disk, which a higher rate can pass), and
/// the sweep ends when every side is.
const AUTO_START: f64 = 2000.0;
const AUTO_STEP: f64 = 2000.0;
/// `auto` stops here even if a side is still within the limit.
const AUTO_MAX: f64 = 400_000.0;
/// A sweep of more rates than this is refused: it would run for hours.
const MAX_RATES: usize = 200;

/// The offered rates of `--sweep`.
#[derive(Debug, Clone, PartialEq)]
pub enum Rates {
    /// From [`AUTO_START`] in steps of [`AUTO_STEP`] until every side has missed the limit
    /// twice in a row.
    Auto,
    /// These, in this order; every side runs every rate.
    List(Vec<f64>),
}

impl Rates {
    /// `auto`, `FROM:TO:STEP` (calls/s, TO included) or `R1,R2,…`.
    pub fn parse(s: &str) -> Result<Rates, String> {
        let bad = |why: &str| format!("--sweep {s:?}: {why}; give auto, FROM:TO:STEP or R1,R2,…");
        let num = |v: &str| -> Result<f64, String> {
            match v.trim().parse::<f64>() {
                Ok(n) if n.is_finite() && n > 0.0 => Ok(n),
                _ => Err(bad(&format!("{v:?} is not a rate above 0"))),
            }
        };
        if s.trim() == "auto" {
            return Ok(Rates::Auto);
        }
        let rates = if let Some((from, rest)) = s.split_once(':') {
            let (to, step) = rest
                .split_once(':')
                .ok_or_else(|| bad("a range needs three parts"))?;
            let (from, to, step) = (num(from)?, num(to)?, num(step)?);
            if to < from {
                return Err(bad("TO is below FROM"));
            }
            let n = ((to - from) / step).floor() as usize + 1;
            if n > MAX_RATES {
                return Err(bad(&format!("{n} rates, at most {MAX_RATES}")));
            }
            (0..n).map(|i| from + step * i as f64).collect()
        } else {
            let list = s.split(',').map(num).collect::<Result<Vec<_>, _>>()?;
            if list.len() > MAX_RATES {
                return Err(bad(&format!("{} rates, at most {MAX_RATES}", list.len())));
            }
            list
        };
        Ok(Rates::List(rates))
    }
}

/// One offered rate against one side.
#[derive(Debug, Clone, Serialize)]
pub struct Point {
    pub offered_per_sec: f64,
    /// Calls answered without error over the time from the first slot until the last answer.
    pub achieved_per_sec: f64,
    pub requests: u64,
    pub errors: u64,
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    pub p999_ms: f64,
    pub max_ms: f64,
    /// The process's CPU per call in this step, and that of the server and audit threads.
    pub cpu_us_per_call: Option<f64>,
    pub server_audit_us_per_call: Option<f64>,
    pub cores_busy: Option<f64>,
    /// Within the limit: p99 ≤ [`P99_LIMIT_MS`] and achieved ≥ [`MIN_ACHIEVED`] of offered.
    pub served: bool,
}

/// One side's curve.
#[derive(Debug, Clone, Serialize)]
pub struct SideCurve {
    pub name: String,
    pub settings: String,
    pub points: Vec<Point>,
    /// The highest offered rate served; `None` if none was.
    pub knee_per_sec: Option<f64>,
}

/// The whole sweep.
#[derive(Debug, Clone, Serialize)]
pub struct SweepReport {
    /// The load's settings in words (the pace is each point's offered rate).
    pub load: String,
    pub cores: usize,
    /// Each point's measured time.
    pub step_secs: f64,
    pub rule: String,
    pub sides: Vec<SideCurve>,
    /// Gateway knee / durable baseline knee, and gateway / bare.
    pub knee_ratio_gateway_durable: Option<f64>,
    pub knee_ratio_gateway_bare: Option<f64>,
    pub target: String,
    pub met: bool,
    /// The files written.
    pub json_path: PathBuf,
    pub svg_path: PathBuf,
}

/// Checks the options a sweep cannot take.
fn validate(opts: &Options) -> Result<&DevOptions, BenchError> {
    let usage = |m: &str| Err(BenchError::Usage(m.into()));
    let Target::Dev(dev) = &opts.target else {
        return usage("--sweep needs --dev: it starts its own servers");
    };
    if !matches!(opts.scenario, Scenario::Single | Scenario::Baseline) {
        return usage(
            "--sweep runs the bare baseline, the durable baseline and the gateway: drop --compare-*, --isolation and --serve",
        );
    }
    if matches!(opts.pace, Pace::Open { .. }) {
        return usage("--sweep sets each step's rate itself: drop --rate");
    }
    if opts.interleave.is_some() || opts.rounds > 1 {
        return usage(
            "--sweep already runs the three sides in turn at each rate: drop --interleave and --rounds",
        );
    }
    if opts.workload.bulk || opts.workload.writes.is_some() {
        return usage("--sweep is for unary Lookup and Verify loads: drop --bulk and --writes");
    }
    if dev.nodes > 1 {
        return usage("--sweep compares single nodes: drop --nodes");
    }
    Ok(dev)
}

/// Runs the sweep and writes `out/sweep.json` and `out/sweep.svg`.
pub fn run(opts: &Options, rates: &Rates, out: &Path) -> Result<SweepReport, BenchError> {
    let dev = validate(opts)?;
    let opts = Options {
        scenario: Scenario::Baseline,
        ..opts.clone()
    };
    opts.validate()?;
    std::fs::create_dir_all(out)
        .map_err(|e| BenchError::Setup(format!("cannot create {}: {e}", out.display())))?;
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let seed = opts.workload.seed;
    let mut dir = BenchDir::create(dev.dir.as_deref())?;
    let outside = Outside::start(&opts, dev, &dir)?;
    let stages = plan(&opts, dev, &outside);
    let mut stores = Vec::new();
    for stage in &stages {
        let (StageServer::Gateway(g) | StageServer::Baseline(g) | StageServer::Durable(g)) =
            &stage.server;
        stores.push(match &g.store {
            StoreKind::Sled => {
                StoreRef::Sled(seed_store(&dir, g.citizens, seed, 0, opts.progress)?)
            }
            StoreKind::Postgres { url, .. } => dir.pg_store(url, g.citizens, seed, |_| {})?,
        });
    }
    // The load generator on its own runtime, as in every interleaved run.
    let client_rt = runtime(Some(dev.client_threads.unwrap_or(1)), "bench-client")?;
    let mut sides = start_sides(&stages, &mut dir, &stores, dev, seed, &client_rt)?;
    let mut curves: Vec<SideCurve> = sides
        .iter()
        .map(|s| SideCurve {
            name: s.load.name.clone(),
            settings: s.load.settings.clone(),
            points: Vec::new(),
            knee_per_sec: None,
        })
        .collect();

    let first = match rates {
        Rates::Auto => AUTO_START,
        Rates::List(list) => list[0],
    };
    if !opts.warmup.is_zero() {
        for side in &mut sides {
            step(&client_rt, side, first, opts.warmup, 0);
        }
    }
    let mut live = vec![true; sides.len()];
    let mut misses = vec![0usize; sides.len()];
    let mut i = 0usize;
    loop {
        let rate = match rates {
            Rates::Auto => AUTO_START + AUTO_STEP * i as f64,
            Rates::List(list) => match list.get(i) {
                Some(r) => *r,
                None => break,
            },
        };
        if *rates == Rates::Auto && (rate > AUTO_MAX || !live.iter().any(|l| *l)) {
            break;
        }
        i += 1;
        for (k, side) in sides.iter_mut().enumerate() {
            if !live[k] {
                continue;
            }
            // Step i of every side draws the same keys, and no step repeats another's.
            let p = step(&client_rt, side, rate, opts.duration, i as u64);
            if opts.progress {
                eprintln!(
                    "sweep: {:<9} offered {:>8.0}/s: achieved {:>8.0}/s, p50 {:.2} ms, p99 {:.2} ms{}",
                    side.load.name,
                    rate,
                    p.achieved_per_sec,
                    p.p50_ms,
                    p.p99_ms,
                    if p.served { "" } else { "  (past the limit)" }
                );
            }
            misses[k] = if p.served { 0 } else { misses[k] + 1 };
            if *rates == Rates::Auto && misses[k] >= 2 {
                live[k] = false;
            }
            curves[k].points.push(p);
        }
    }
    for side in sides {
        client_rt.block_on(side.running.stop());
        side.server_rt.shutdown_timeout(Duration::from_secs(5));
    }
    for c in &mut curves {
        c.knee_per_sec = knee(&c.points);
    }
    let knee_of = |name: &str| {
        curves
            .iter()
            .find(|c| c.name == name)
            .and_then(|c| c.knee_per_sec)
    };
    let ratio = |a: Option<f64>, b: Option<f64>| a.zip(b).map(|(a, b)| a / b);
    let vs_durable = ratio(knee_of("gateway"), knee_of("durable"));
    let report = SweepReport {
        load: opts.describe_load(
            Some("open loop at each step's offered rate"),
            &format!("{} citizens", opts.workload.citizens),
        ),
        cores,
        step_secs: opts.duration.as_secs_f64(),
        rule: format!(
            "knee = the highest offered rate with p99 <= {P99_LIMIT_MS} ms and at least {:.0}% of it answered per second; latency from each call's slot (no coordinated omission)",
            MIN_ACHIEVED * 100.0
        ),
        knee_ratio_gateway_durable: vs_durable,
        knee_ratio_gateway_bare: ratio(knee_of("gateway"), knee_of("baseline")),
        target: format!("gateway knee >= {KNEE_TARGET:.2}x the durable baseline's"),
        met: vs_durable.is_some_and(|r| r >= KNEE_TARGET),
        json_path: out.join("sweep.json"),
        svg_path: out.join("sweep.svg"),
        sides: curves,
    };
    let write = |path: &Path, text: &str| {
        std::fs::write(path, text)
            .map_err(|e| BenchError::Setup(format!("cannot write {}: {e}", path.display())))
    };
    let json = serde_json::to_string_pretty(&report)
        .map_err(|e| BenchError::Setup(format!("cannot render the sweep: {e}")))?;
    write(&report.json_path, &json)?;
    write(&report.svg_path, &svg(&report))?;
    Ok(report)
}

/// One offered rate against one side for `len`; `stream` 0 is the warm-up.
fn step(
    client_rt: &tokio::runtime::Runtime,
    side: &mut Side,
    rate: f64,
    len: Duration,
    stream: u64,
) -> Point {
    let spec = LoadSpec {
        pace: Pace::Open { rate },
        warmup: Duration::ZERO,
        duration: len,
        stream,
        ..side.load.spec.clone()
    };
    let done = Arc::new(AtomicU64::new(0));
    let (cpu_before, started) = (report::CpuSample::now(), Instant::now());
    let mut tally = client_rt.block_on(load::run(&side.channels, &spec, done.clone()));
    // Until the last answer: a side that falls behind takes longer than `len` to answer a
    // step's calls, and that is what its achieved rate must show.
    let wall = started.elapsed();
    let cpu = CpuFigures::between(
        &cpu_before,
        &report::CpuSample::now(),
        wall,
        done.load(Ordering::Relaxed),
    );
    if fixed_answers(side.target_name) {
        tally.forget_verify_checks();
    }
    let h = &tally.latency;
    let ms = |q: f64| {
        if h.is_empty() {
            0.0
        } else {
            h.value_at_quantile(q) as f64 / 1000.0
        }
    };
    let achieved = tally.ok as f64 / wall.as_secs_f64().max(1e-9);
    let p99 = ms(0.99);
    Point {
        offered_per_sec: rate,
        achieved_per_sec: achieved,
        requests: tally.ok,
        errors: tally.error_count(),
        p50_ms: ms(0.50),
        p90_ms: ms(0.90),
        p99_ms: p99,
        p999_ms: ms(0.999),
        max_ms: h.max() as f64 / 1000.0,
        cpu_us_per_call: cpu.as_ref().map(|c| c.us_per_call),
        server_audit_us_per_call: cpu
            .as_ref()
            .and_then(|c| c.by_thread.as_ref())
            .map(|t| t.server_us + t.audit_us),
        cores_busy: cpu.as_ref().map(|c| c.cores_busy),
        served: tally.ok > 0 && p99 <= P99_LIMIT_MS && achieved >= MIN_ACHIEVED * rate,
    }
}

/// The highest offered rate served.
fn knee(points: &[Point]) -> Option<f64> {
    points
        .iter()
        .filter(|p| p.served)
        .map(|p| p.offered_per_sec)
        .max_by(f64::total_cmp)
}

impl SweepReport {
    /// The table printed when `--json` is not given.
    pub fn table(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(
            s,
            "popgate-bench sweep ({} cores, shared by the load generator and the servers)\nload: {}, {} s per step\n{}\n",
            self.cores, self.load, self.step_secs, self.rule
        );
        let _ = writeln!(
            s,
            "{:<10} {:>10} {:>10} {:>8} {:>8} {:>9} {:>9} {:>7}",
            "side", "offered/s", "answered/s", "p50 ms", "p99 ms", "cpu µs", "srv+aud", "errors"
        );
        let f = |v: Option<f64>| v.map_or("-".to_owned(), |v| format!("{v:.1}"));
        for c in &self.sides {
            for p in &c.points {
                let _ = writeln!(
                    s,
                    "{:<10} {:>10.0} {:>10.0} {:>8.2} {:>8.2} {:>9} {:>9} {:>7}{}",
                    c.name,
                    p.offered_per_sec,
                    p.achieved_per_sec,
                    p.p50_ms,
                    p.p99_ms,
                    f(p.cpu_us_per_call),
                    f(p.server_audit_us_per_call),
                    p.errors,
                    if p.served { "" } else { "  past the limit" }
                );
            }
        }
        s.push('\n');
        for c in &self.sides {
            let _ = writeln!(
                s,
                "knee of {:<9} {}",
                c.name,
                c.knee_per_sec
                    .map_or("none: no step within the limit".to_owned(), |k| format!(
                        "{k:.0} calls/s"
                    ))
            );
        }
        let pct = |r: Option<f64>| r.map_or("-".to_owned(), |r| format!("{r:.2}x"));
        let _ = writeln!(
            s,
            "gateway / durable knee: {}; gateway / bare knee: {}  (target: {}) {}",
            pct(self.knee_ratio_gateway_durable),
            pct(self.knee_ratio_gateway_bare),
            self.target,
            if self.met { "MET" } else { "MISSED" }
        );
        let _ = writeln!(
            s,
            "wrote {} and {}",
            self.json_path.display(),
            self.svg_path.display()
        );
        s
    }
}

/// A colour per side, told apart in print and by colour-blind readers (Okabe–Ito).
fn colour(name: &str) -> &'static str {
    match name {
        "baseline" => "#0072B2",
        "durable" => "#009E73",
        "gateway" => "#D55E00",
        _ => "#555555",
    }
}

/// The side's name in the picture's legend.
fn label(name: &str) -> &str {
    match name {
        "baseline" => "bare baseline",
        "durable" => "durable baseline",
        other => other,
    }
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// A round step for about `n` ticks over `0..max`: 1, 2 or 5 times a power of ten.
fn tick_step(max: f64, n: f64) -> f64 {
    let raw = (max / n).max(1e-9);
    let mag = 10f64.powf(raw.log10().floor());
    [1.0, 2.0, 5.0, 10.0]
        .into_iter()
        .map(|m| m * mag)
        .find(|s| *s >= raw)
        .unwrap_or(10.0 * mag)
}

fn rate_label(r: f64) -> String {
    if r >= 1000.0 {
        format!("{}k", (r / 100.0).round() / 10.0)
    } else {
        format!("{r:.0}")
    }
}

fn ms_label(ms: f64) -> String {
    if ms < 1.0 {
        format!("{ms}")
    } else {
        format!("{ms:.0}")
    }
}

/// The curve as an SVG: p99 (solid) and p50 (dashed) against the offered rate, latency on a
/// log scale (past the knee it grows by orders of magnitude), the 10 ms limit and each side's
/// knee marked.
pub fn svg(r: &SweepReport) -> String {
    let (w, h) = (960.0, 560.0);
    let (left, right, top, bottom) = (70.0, 210.0, 64.0, 64.0);
    let (pw, ph) = (w - left - right, h - top - bottom);
    let points = r.sides.iter().flat_map(|c| &c.points);
    let x_max_data = points
        .clone()
        .map(|p| p.offered_per_sec)
        .fold(1.0, f64::max);
    let x_step = tick_step(x_max_data, 8.0);
    let x_max = (x_max_data / x_step).ceil() * x_step;
    let y_top_data = points
        .clone()
        .map(|p| p.p99_ms)
        .fold(P99_LIMIT_MS * 2.0, f64::max);
    let y_min = 0.1f64;
    let y_max = 10f64.powf(y_top_data.log10().ceil()).min(100_000.0);
    let x = |v: f64| left + v / x_max * pw;
    let y = |ms: f64| {
        let v = ms.clamp(y_min, y_max);
        top + ph - (v.log10() - y_min.log10()) / (y_max.log10() - y_min.log10()) * ph
    };
    let mut s = String::new();
    let _ = writeln!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" viewBox="0 0 {w} {h}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(
        s,
        r##"<rect x="0" y="0" width="{w}" height="{h}" fill="#ffffff"/>"##
    );
    let _ = writeln!(
        s,
        r#"<text x="{left}" y="24" font-size="16" font-weight="bold">Capacity: p50 and p99 latency against offered rate (open loop)</text>"#
    );
    let _ = writeln!(
        s,
        r##"<text x="{left}" y="44" fill="#444444">{} — {} s per step, {} cores shared by the load generator and the servers</text>"##,
        escape(&r.load),
        r.step_secs,
        r.cores
    );
    // Grid and axes.
    let mut decade = y_min;
    while decade <= y_max * 1.0001 {
        for m in [1.0, 2.0, 5.0] {
            let v = decade * m;
            if v > y_max * 1.0001 {
                break;
            }
            let yy = y(v);
            let major = m == 1.0;
            let _ = writeln!(
                s,
                r##"<line x1="{left}" y1="{yy:.1}" x2="{:.1}" y2="{yy:.1}" stroke="{}" stroke-width="1"/>"##,
                left + pw,
                if major { "#cccccc" } else { "#eeeeee" }
            );
            let _ = writeln!(
                s,
                r#"<text x="{:.1}" y="{:.1}" text-anchor="end">{}</text>"#,
                left - 6.0,
                yy + 4.0,
                ms_label(v)
            );
        }
        decade *= 10.0;
    }
    let mut t = 0.0;
    while t <= x_max + 1e-9 {
        let xx = x(t);
        let _ = writeln!(
            s,
            r##"<line x1="{xx:.1}" y1="{top}" x2="{xx:.1}" y2="{:.1}" stroke="#eeeeee" stroke-width="1"/>"##,
            top + ph
        );
        let _ = writeln!(
            s,
            r#"<text x="{xx:.1}" y="{:.1}" text-anchor="middle">{}</text>"#,
            top + ph + 18.0,
            rate_label(t)
        );
        t += x_step;
    }
    let _ = writeln!(
        s,
        r##"<rect x="{left}" y="{top}" width="{pw}" height="{ph}" fill="none" stroke="#333333"/>"##
    );
    let _ = writeln!(
        s,
        r#"<text x="{:.1}" y="{:.1}" text-anchor="middle">offered rate, calls/s</text>"#,
        left + pw / 2.0,
        h - 18.0
    );
    let _ = writeln!(
        s,
        r#"<text x="18" y="{:.1}" text-anchor="middle" transform="rotate(-90 18 {:.1})">latency, ms (log scale)</text>"#,
        top + ph / 2.0,
        top + ph / 2.0
    );
    // The limit.
    let yl = y(P99_LIMIT_MS);
    let _ = writeln!(
        s,
        r##"<line x1="{left}" y1="{yl:.1}" x2="{:.1}" y2="{yl:.1}" stroke="#aa0000" stroke-width="1.5" stroke-dasharray="2,3"/>"##,
        left + pw
    );
    let _ = writeln!(
        s,
        r##"<text x="{:.1}" y="{:.1}" fill="#aa0000">p99 limit {P99_LIMIT_MS} ms</text>"##,
        left + 6.0,
        yl - 5.0
    );
    // Curves.
    for c in &r.sides {
        let col = colour(&c.name);
        let path = |f: &dyn Fn(&Point) -> f64| {
            c.points
                .iter()
                .map(|p| format!("{:.1},{:.1}", x(p.offered_per_sec), y(f(p))))
                .collect::<Vec<_>>()
                .join(" ")
        };
        let _ = writeln!(
            s,
            r#"<polyline points="{}" fill="none" stroke="{col}" stroke-width="2"/>"#,
            path(&|p| p.p99_ms)
        );
        let _ = writeln!(
            s,
            r#"<polyline points="{}" fill="none" stroke="{col}" stroke-width="1.5" stroke-dasharray="6,4"/>"#,
            path(&|p| p.p50_ms)
        );
        for p in &c.points {
            let _ = writeln!(
                s,
                r#"<circle cx="{:.1}" cy="{:.1}" r="2.5" fill="{col}"/>"#,
                x(p.offered_per_sec),
                y(p.p99_ms)
            );
        }
        if let Some(k) = c.knee_per_sec {
            let p99 = c
                .points
                .iter()
                .find(|p| p.offered_per_sec == k)
                .map_or(P99_LIMIT_MS, |p| p.p99_ms);
            let (kx, ky) = (x(k), y(p99));
            let _ = writeln!(
                s,
                r#"<line x1="{kx:.1}" y1="{top}" x2="{kx:.1}" y2="{:.1}" stroke="{col}" stroke-width="1" stroke-dasharray="1,3"/>"#,
                top + ph
            );
            let _ = writeln!(
                s,
                r#"<circle cx="{kx:.1}" cy="{ky:.1}" r="6" fill="none" stroke="{col}" stroke-width="2"/>"#
            );
        }
    }
    // Legend: a side per line, with its knee.
    let lx = left + pw + 16.0;
    let mut ly = top + 10.0;
    for c in &r.sides {
        let col = colour(&c.name);
        let _ = writeln!(
            s,
            r#"<line x1="{lx}" y1="{ly}" x2="{:.1}" y2="{ly}" stroke="{col}" stroke-width="3"/>"#,
            lx + 24.0
        );
        let _ = writeln!(
            s,
            r#"<text x="{:.1}" y="{:.1}">{}</text>"#,
            lx + 30.0,
            ly + 4.0,
            escape(label(&c.name))
        );
        let _ = writeln!(
            s,
            r##"<text x="{:.1}" y="{:.1}" fill="#444444">knee {}</text>"##,
            lx + 30.0,
            ly + 20.0,
            c.knee_per_sec
                .map_or("none".to_owned(), |k| format!("{}/s", rate_label(k)))
        );
        ly += 44.0;
    }
    let _ = writeln!(
        s,
        r##"<line x1="{lx}" y1="{ly}" x2="{:.1}" y2="{ly}" stroke="#333333" stroke-width="2"/>"##,
        lx + 24.0
    );
    let _ = writeln!(
        s,
        r#"<text x="{:.1}" y="{:.1}">p99</text>"#,
        lx + 30.0,
        ly + 4.0
    );
    ly += 20.0;
    let _ = writeln!(
        s,
        r##"<line x1="{lx}" y1="{ly}" x2="{:.1}" y2="{ly}" stroke="#333333" stroke-width="1.5" stroke-dasharray="6,4"/>"##,
        lx + 24.0
    );
    let _ = writeln!(
        s,
        r#"<text x="{:.1}" y="{:.1}">p50</text>"#,
        lx + 30.0,
        ly + 4.0
    );
    ly += 20.0;
    let _ = writeln!(
        s,
        r##"<circle cx="{:.1}" cy="{ly}" r="6" fill="none" stroke="#333333" stroke-width="2"/>"##,
        lx + 12.0
    );
    let _ = writeln!(
        s,
        r#"<text x="{:.1}" y="{:.1}">knee</text>"#,
        lx + 30.0,
        ly + 4.0
    );
    if let Some(k) = r.knee_ratio_gateway_durable {
        ly += 30.0;
        let _ = writeln!(
            s,
            r#"<text x="{lx}" y="{ly:.1}">gateway / durable knee</text>"#
        );
        let _ = writeln!(
            s,
            r#"<text x="{lx}" y="{:.1}" font-weight="bold">{k:.2}x (target {KNEE_TARGET:.2}x)</text>"#,
            ly + 16.0
        );
    }
    s.push_str("</svg>\n");
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_parse_as_ranges_lists_or_auto() {
        assert_eq!(Rates::parse("auto"), Ok(Rates::Auto));
        assert_eq!(
            Rates::parse("2000:6000:2000"),
            Ok(Rates::List(vec![2000.0, 4000.0, 6000.0]))
        );
        assert_eq!(
            Rates::parse("500,1500"),
            Ok(Rates::List(vec![500.0, 1500.0]))
        );
        for bad in ["", "0:10:1", "10:5:1", "1:2", "1:100000:1", "a,b", "-5"] {
            assert!(Rates::parse(bad).is_err(), "{bad:?}");
        }
    }

    fn point(offered: f64, p99_ms: f64, achieved: f64) -> Point {
        Point {
            offered_per_sec: offered,
            achieved_per_sec: achieved,
            requests: 1,
            errors: 0,
            p50_ms: p99_ms / 3.0,
            p90_ms: p99_ms / 2.0,
            p99_ms,
            p999_ms: p99_ms,
            max_ms: p99_ms,
            cpu_us_per_call: None,
            server_audit_us_per_call: None,
            cores_busy: None,
            served: p99_ms <= P99_LIMIT_MS && achieved >= MIN_ACHIEVED * offered,
        }
    }

    #[test]
    fn the_knee_is_the_highest_rate_served() {
        let pts = [
            point(1000.0, 2.0, 1000.0),
            point(2000.0, 9.0, 1990.0),
            point(3000.0, 40.0, 2500.0),
            point(4000.0, 8.0, 3000.0),
        ];
        // 4000/s kept its p99 but answered 75% of what was offered.
        assert_eq!(knee(&pts), Some(2000.0));
        assert_eq!(knee(&pts[2..3]), None);
    }
}
