//! The `popgate-bench` command line: load a running gateway (`--addr --ca --cert --key`) or
//! one started in this process (`--dev`), and print a table or JSON. See docs/BENCHMARKS.md
//! for the scenarios. Exit codes as `popgate`'s: 0 success, 2 bad usage or a run that could
//! not be set up, with one line on stderr.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::{Parser, ValueEnum};
use popgate::client::ClientTls;
use popgate::config::Durability;

use crate::keys::KeyDist;
use crate::load::{Pace, Workload};
use crate::{DevOptions, Options, Scenario, Target};

#[derive(Parser)]
#[command(
    name = "popgate-bench",
    version,
    about = "Load generator: load a gateway (or one started in-process with --dev) and report."
)]
pub struct BenchArgs {
    /// Start a gateway in this process on a temporary directory seeded with --citizens.
    #[arg(long, conflicts_with_all = ["addr", "ca", "cert", "key"])]
    dev: bool,
    /// The gateway to load, host:port.
    #[arg(long, required_unless_present = "dev")]
    addr: Option<String>,
    /// The CA certificate that signed the gateway's certificate (PEM).
    #[arg(long, required_unless_present = "dev")]
    ca: Option<PathBuf>,
    /// A client certificate (PEM); repeat with --key for several identities.
    #[arg(long, required_unless_present = "dev")]
    cert: Vec<PathBuf>,
    /// The key of each --cert, in the same order.
    #[arg(long, required_unless_present = "dev")]
    key: Vec<PathBuf>,
    /// The name the gateway's certificate must carry.
    #[arg(long, default_value = "localhost")]
    server_name: String,

    /// Citizens in the store: keys are drawn from indexes 0..N of the population --seed.
    #[arg(long, default_value_t = 100_000)]
    citizens: u64,
    /// The population's seed (default: the one `serve --dev` seeds).
    #[arg(long, default_value_t = crate::DEV_POPULATION_SEED)]
    seed: u64,
    /// HTTP/2 connections (each one TLS session), spread over the client identities.
    #[arg(long, default_value_t = 4)]
    connections: usize,
    /// Closed loop: calls in flight in total, over all connections.
    #[arg(long, default_value_t = 64)]
    concurrency: usize,
    /// Open loop instead: calls per second in total, sent on a fixed timetable; latency is
    /// measured from each call's slot, so a stall is not hidden (no coordinated omission).
    #[arg(long)]
    rate: Option<f64>,
    /// Measured time, e.g. 30s, 2m, 500ms.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    duration: Duration,
    /// Time before measuring (connections warm, cache filling), not counted.
    #[arg(long, default_value = "2s", value_parser = parse_duration)]
    warmup: Duration,
    /// The request mix, e.g. lookup=80,verify=20.
    #[arg(long, default_value = "lookup=80,verify=20", value_parser = parse_mix)]
    mix: u32,
    /// Key distribution: uniform, or zipf:S (e.g. zipf:1.0).
    #[arg(long, default_value = "uniform")]
    keys: KeyDist,
    /// Lookup read mask, comma-separated (default: every field the caller may read).
    #[arg(long, value_delimiter = ',')]
    fields: Vec<String>,
    /// The purpose stated in every call (the dev bench clients' is "benchmark").
    #[arg(long, default_value = crate::target::PURPOSE)]
    purpose: String,
    /// Bulk re-verification over VerifyStream instead of unary calls: names upper-case
    /// without diacritics (LOOSE), 10% deliberate mismatches; one stream per connection,
    /// kept --concurrency deep in total.
    #[arg(long)]
    bulk: bool,

    /// --dev: client identities (bench-1, bench-2, …) the connections are spread over.
    #[arg(long, default_value_t = 1)]
    clients: usize,
    /// --dev: audit durability of the gateway.
    #[arg(long, value_enum, default_value_t = AuditArg::Sync)]
    audit: AuditArg,
    /// --dev: reuse cache capacity in records (0 = off).
    #[arg(long, default_value_t = 1_000_000)]
    cache_capacity: u64,
    /// --dev: the store's page cache in MiB (`[store] cache_mib`); a store that fits reads at
    /// in-memory speed (about 600 MiB per million citizens). Default: as the gateway's, a
    /// quarter of the memory, at least 256.
    #[arg(long, default_value_t = popgate::store::sled::default_cache_mib(), value_parser = clap::value_parser!(u64).range(16..=1_048_576))]
    store_cache_mib: u64,
    /// --dev: keep the bench directory here; its seeded stores are reused by later runs.
    #[arg(long)]
    dir: Option<PathBuf>,
    /// --dev: worker threads of the load generator's own runtime; 0 runs it on the server's
    /// runtime instead. One thread measured best here (docs/BENCHMARKS.md).
    #[arg(long, default_value_t = 1)]
    client_threads: usize,
    /// --dev: worker threads of the server's runtime (default: the cores).
    #[arg(long)]
    server_threads: Option<usize>,

    /// --dev: the population store. `postgres` uses --pg-url, or a throwaway PostgreSQL 15
    /// in the bench directory (Debian's postgresql-15).
    #[arg(long, value_enum, default_value_t = StoreArg::Sled)]
    store: StoreArg,
    /// --dev: the PostgreSQL database of --store postgres, seeded on first use (empty, or
    /// holding the population of --citizens and --seed).
    #[arg(long, value_name = "URL")]
    pg_url: Option<String>,
    /// --dev, over PostgreSQL: where the audit log is written.
    #[arg(long, value_enum, default_value_t = AuditBackendArg::File)]
    audit_backend: AuditBackendArg,
    /// --dev, over PostgreSQL: gateway nodes sharing the database; the connections are
    /// spread over them.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=16))]
    nodes: u16,
    /// --dev, over PostgreSQL: per-client rates shared by the nodes through this Redis, or a
    /// throwaway redis-server when no URL is given.
    #[arg(long, value_name = "URL", num_args = 0..=1, default_missing_value = "")]
    shared_limits: Option<String>,
    /// --dev, over PostgreSQL: also run `pgbench -S -M prepared` against the same database
    /// in the same run, PostgreSQL's own ceiling for point reads on this machine.
    #[arg(long)]
    pgbench: bool,
    /// PutCitizen calls (as the registry) instead of Lookups and Verifies: each creates a
    /// citizen not in the store yet.
    #[arg(long, conflicts_with = "bulk")]
    writes: bool,

    /// --dev: change subscriptions — PutCitizen of --watch-citizens followed citizens alone,
    /// then with N WatchChanges streams open (spread over --clients and --connections); the
    /// latency from each PutCitizen response to each stream's event, and events per second.
    #[arg(long, requires = "dev", group = "scenario", value_name = "N")]
    watch: Option<usize>,
    /// --watch: citizens created for the run and followed by every bench client.
    #[arg(long, default_value_t = 1000)]
    watch_citizens: u64,
    /// --watch: also time one client following this many ids of the store (in batches of
    /// 10,000) and the store's growth per id.
    #[arg(long, default_value_t = 0)]
    follow_ids: u64,

    /// --dev: the audit console over a log of N records (written before the gateway starts,
    /// in its folder or, with --audit-backend postgres, in the database): each kind of search
    /// --console-searches times, then the load alone and while an inspector pages.
    #[arg(long, requires = "dev", group = "scenario", value_name = "N")]
    console: Option<u64>,
    /// --console: the days the log's records span, the last one today.
    #[arg(long, default_value_t = 30)]
    console_days: u64,
    /// --console: times each kind of search is asked.
    #[arg(long, default_value_t = 20)]
    console_searches: usize,

    /// --dev: the same load on one node over sled, then on one over PostgreSQL.
    #[arg(long, requires = "dev", group = "scenario")]
    compare_store: bool,
    /// --dev: the same load on one node over PostgreSQL with the file audit, then with the
    /// audit log in the database.
    #[arg(long, requires = "dev", group = "scenario")]
    compare_audit_backend: bool,

    /// --dev: the same load against a bare tonic + rustls mTLS server with a fixed reply,
    /// then against the gateway; prints both and their ratio.
    #[arg(long, requires = "dev", group = "scenario")]
    baseline: bool,
    /// --dev: the same load with `sync`, then `batch` audit durability.
    #[arg(long, requires = "dev", group = "scenario")]
    compare_audit: bool,
    /// --dev: the same load with the cache at --cache-capacity, then off; and the memory
    /// per cached record.
    #[arg(long, requires = "dev", group = "scenario")]
    compare_cache: bool,
    /// --dev: the same load on a store of --citizens, then on one of N.
    #[arg(long, requires = "dev", group = "scenario", value_name = "N")]
    compare_citizens: Option<u64>,
    /// --dev: client-b alone at 80% of its rate, then while client-a floods at 10x its rate
    /// over --connections; both clients are limited to N calls/s.
    #[arg(long, requires = "dev", group = "scenario", value_name = "N", num_args = 0..=1, default_missing_value = "1000")]
    isolation: Option<u32>,

    /// --dev: only run the bare baseline, the durable baseline or the full gateway on
    /// --listen, set up as for the scenarios, until Ctrl-C or SIGTERM; it prints the
    /// `popgate-bench --addr …` command that loads it from another process or machine (copy
    /// its certs/ folder there).
    #[arg(
        long,
        requires = "dev",
        group = "scenario",
        value_enum,
        value_name = "SERVER"
    )]
    serve: Option<ServeArg>,
    /// Without --dev: the target gives fixed answers (a `--serve baseline` or `durable`), so
    /// Verify answers are not judged.
    #[arg(long, conflicts_with = "dev")]
    fixed_answers: bool,
    /// --serve: the address to listen on.
    #[arg(long, requires = "serve", default_value = "127.0.0.1:7450")]
    listen: std::net::SocketAddr,

    /// --dev comparisons: run the two sides N times, alternating (A B A B …), and judge the
    /// median round; steadier than one round on a shared machine. Each round takes the
    /// warm-up and the duration for each side.
    #[arg(long, default_value_t = 1)]
    rounds: usize,
    /// --baseline, --compare-*: keep both servers up and alternate the load between them in
    /// slices of this length (e.g. 1s) until each has had --duration; the steadiest ratio on
    /// a machine whose speed drifts. Two gateways of one size get a copy of the store each.
    #[arg(long, value_parser = parse_duration, conflicts_with = "rounds")]
    interleave: Option<Duration>,

    /// --dev: an open-loop rate sweep against the bare baseline, the durable baseline and the
    /// gateway (all three up at once, each rate run against each in turn, --duration per
    /// step): `auto` (the default: from 2000/s in steps of 2000 until each side has, twice in
    /// a row, a p99 over 10 ms or answered under 90% of the rate), FROM:TO:STEP or R1,R2,….
    /// Writes sweep.json and sweep.svg to --out and prints each side's knee.
    #[arg(long, value_name = "RATES", num_args = 0..=1, default_missing_value = "auto")]
    sweep: Option<String>,
    /// --sweep: the folder sweep.json and sweep.svg are written to.
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,

    /// Print the report as JSON (no progress bars).
    #[arg(long)]
    json: bool,
}

#[derive(Clone, Copy, ValueEnum)]
enum ServeArg {
    Baseline,
    Durable,
    Gateway,
}

#[derive(Clone, Copy, ValueEnum)]
enum StoreArg {
    Sled,
    Postgres,
}

#[derive(Clone, Copy, ValueEnum)]
enum AuditBackendArg {
    File,
    Postgres,
}

#[derive(Clone, Copy, ValueEnum)]
enum AuditArg {
    Sync,
    Batch,
}

fn parse_duration(s: &str) -> Result<Duration, String> {
    let (num, unit) = s
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .map_or((s, "s"), |i| s.split_at(i));
    let n: f64 = num
        .parse()
        .map_err(|_| format!("expected a duration like 10s, 2m or 500ms, got {s:?}"))?;
    let secs = match unit {
        "ms" => n / 1000.0,
        "s" => n,
        "m" => n * 60.0,
        _ => return Err(format!("unknown unit {unit:?} in {s:?}: use ms, s or m")),
    };
    Duration::try_from_secs_f64(secs).map_err(|e| format!("{s:?}: {e}"))
}

/// `lookup=80,verify=20` → 80 (the Lookup percentage).
fn parse_mix(s: &str) -> Result<u32, String> {
    let (mut lookup, mut verify) = (0u32, 0u32);
    for part in s.split(',') {
        let (k, v) = part
            .split_once('=')
            .ok_or_else(|| format!("expected lookup=N,verify=M, got {s:?}"))?;
        let v: u32 = v
            .trim()
            .parse()
            .map_err(|_| format!("{k}: expected a whole number, got {v:?}"))?;
        match k.trim() {
            "lookup" => lookup = v,
            "verify" => verify = v,
            other => return Err(format!("unknown call {other:?}: use lookup and verify")),
        }
    }
    let total = lookup + verify;
    if total == 0 {
        return Err("the mix must have some calls".into());
    }
    Ok((lookup * 100 + total / 2) / total)
}

/// Parses the command line and runs the load.
pub fn main() -> ExitCode {
    let args = match BenchArgs::try_parse() {
        Ok(args) => args,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() {
                ExitCode::from(2)
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    match run(args) {
        Ok(code) => code,
        Err(err) => {
            let line = format!("{err:#}").replace('\n', " ");
            eprintln!("popgate-bench: {line}");
            ExitCode::from(2)
        }
    }
}

fn run(args: BenchArgs) -> anyhow::Result<ExitCode> {
    init_logging();
    let target = if args.dev {
        Target::Dev(DevOptions {
            audit: match args.audit {
                AuditArg::Sync => Durability::Sync,
                AuditArg::Batch => Durability::Batch,
            },
            cache_capacity: args.cache_capacity,
            store_cache_mib: args.store_cache_mib,
            identities: args.clients,
            dir: args.dir.clone(),
            client_threads: (args.client_threads > 0).then_some(args.client_threads),
            server_threads: args.server_threads,
            store: match args.store {
                StoreArg::Sled => crate::StoreChoice::Sled,
                StoreArg::Postgres => crate::StoreChoice::Postgres,
            },
            pg_url: args.pg_url.clone(),
            audit_in_db: matches!(args.audit_backend, AuditBackendArg::Postgres),
            nodes: usize::from(args.nodes),
            shared_limits: args.shared_limits.clone(),
            pgbench: args.pgbench,
        })
    } else {
        let (Some(addr), Some(ca)) = (&args.addr, &args.ca) else {
            bail!("give --addr, --ca, --cert and --key, or --dev");
        };
        if args.cert.len() != args.key.len() || args.cert.is_empty() {
            bail!("give one --key for each --cert");
        }
        let identities = args
            .cert
            .iter()
            .zip(&args.key)
            .map(|(c, k)| ClientTls::from_files(ca, c, k))
            .collect::<Result<Vec<_>, _>>()?;
        Target::Remote {
            addr: addr.clone(),
            server_name: args.server_name.clone(),
            identities,
            fixed_answers: args.fixed_answers,
        }
    };
    let scenario = if args.baseline {
        Scenario::Baseline
    } else if args.compare_audit {
        Scenario::CompareAudit
    } else if args.compare_cache {
        Scenario::CompareCache
    } else if let Some(n) = args.compare_citizens {
        Scenario::CompareCitizens(n)
    } else if let Some(streams) = args.watch {
        Scenario::Watch(crate::watch::WatchOptions {
            streams,
            citizens: args.watch_citizens,
            follow_ids: args.follow_ids,
        })
    } else if let Some(records) = args.console {
        Scenario::Console(crate::console::ConsoleOptions {
            records,
            days: args.console_days,
            searches: args.console_searches,
        })
    } else if args.compare_store {
        Scenario::CompareStore
    } else if args.compare_audit_backend {
        Scenario::CompareAuditBackend
    } else if let Some(rate) = args.isolation {
        Scenario::Isolation { client_rate: rate }
    } else {
        Scenario::Single
    };
    let opts = Options {
        target,
        scenario,
        connections: args.connections,
        pace: match args.rate {
            Some(rate) => Pace::Open { rate },
            None => Pace::Closed {
                concurrency: args.concurrency,
            },
        },
        workload: Workload {
            lookup_pct: args.mix,
            keys: args.keys,
            citizens: args.citizens,
            seed: args.seed,
            purpose: args.purpose.clone(),
            read_mask: args.fields.clone(),
            bulk: args.bulk,
            writes: args
                .writes
                .then(|| std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0))),
        },
        warmup: args.warmup,
        duration: args.duration,
        progress: !args.json && std::io::stderr().is_terminal(),
        rounds: args.rounds,
        interleave: args.interleave,
    };
    if let Some(rates) = &args.sweep {
        let rates = crate::sweep::Rates::parse(rates).map_err(anyhow::Error::msg)?;
        let Some(out) = &args.out else {
            bail!("--sweep writes sweep.json and sweep.svg: give --out DIR");
        };
        if args.serve.is_some() {
            bail!("--sweep starts its own servers: drop --serve");
        }
        let report = crate::sweep::run(&opts, &rates, out).context("sweep failed")?;
        if args.json {
            println!(
                "{}",
                serde_json::to_string_pretty(&report).context("cannot render the sweep")?
            );
        } else {
            print!("{}", report.table());
        }
        return Ok(ExitCode::SUCCESS);
    }
    if args.out.is_some() {
        bail!("--out is where --sweep writes its files: give --sweep too");
    }
    if let (Some(what), Target::Dev(dev)) = (args.serve, &opts.target) {
        let served = match what {
            ServeArg::Baseline => crate::Served::Baseline,
            ServeArg::Durable => crate::Served::Durable,
            ServeArg::Gateway => crate::Served::Gateway,
        };
        crate::serve(
            &opts,
            dev,
            served,
            args.listen,
            |addr, command| {
                // stdout, line by line, so that a script can read the address.
                println!("popgate-bench: serving on {addr} until Ctrl-C or SIGTERM");
                println!("load it with: {command}");
            },
            popgate::cli::shutdown_signal(),
        )
        .context("bench server failed")?;
        return Ok(ExitCode::SUCCESS);
    }
    let report = crate::run(&opts).context("benchmark failed")?;
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&report).context("cannot render the report")?
        );
    } else {
        print!("{}", report.table());
    }
    Ok(ExitCode::SUCCESS)
}

/// Warnings only by default: the in-process gateway's info lines would scroll the table away.
fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr)
        .try_init();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mix_and_durations_parse() {
        assert_eq!(parse_mix("lookup=80,verify=20"), Ok(80));
        assert_eq!(parse_mix("verify=1"), Ok(0));
        assert_eq!(parse_mix("lookup=3,verify=1"), Ok(75));
        assert!(parse_mix("put=1").is_err());
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("0s"), Ok(Duration::ZERO));
        assert_eq!(parse_duration("3"), Ok(Duration::from_secs(3)));
        assert!(parse_duration("3h").is_err());
    }
}
