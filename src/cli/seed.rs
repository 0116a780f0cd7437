//! `popgate seed --data DIR | --url URL --count N [--seed S]`: writes N synthetic citizens
//! into a sled store at DIR (the `[store].path` of a configuration, which no gateway may have
//! open: sled locks it) or into PostgreSQL (with `COPY`; the schema is migrated first),
//! deterministically for a seed, and reports the rate.

use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use clap::Args;

use crate::store::postgres::{DbUrl, PgLoader};
use crate::store::{Loader, SledStore};
use crate::synth::{self, SeedPlan};

#[derive(Args)]
pub struct SeedArgs {
    /// Directory of the sled population store (`[store].path`); created if missing.
    #[arg(
        long,
        value_name = "DIR",
        required_unless_present = "url",
        conflicts_with = "url"
    )]
    pub data: Option<PathBuf>,
    /// A PostgreSQL store instead (`[store].url`).
    #[arg(long, value_name = "URL")]
    pub url: Option<String>,
    /// How many citizens to write: records 0..N of the seed's population.
    #[arg(long, value_name = "N")]
    pub count: u64,
    /// Which population: the same seed always gives the same citizens, so load generators can
    /// recompute their ids.
    #[arg(long, value_name = "S", default_value_t = synth::DEFAULT_SEED)]
    pub seed: u64,
}

/// How often progress is printed: often enough to see it move, rarely enough not to matter.
const PROGRESS_EVERY: Duration = Duration::from_secs(1);

pub fn run(args: SeedArgs) -> anyhow::Result<ExitCode> {
    let max = synth::max_population();
    if args.count == 0 || args.count > max {
        anyhow::bail!("--count must be between 1 and {max}, got {}", args.count);
    }
    let (store, target): (Box<dyn Loader>, String) = match (&args.data, &args.url) {
        (Some(data), _) => (
            Box::new(
                SledStore::open(data)
                    .with_context(|| format!("cannot seed --data {}", data.display()))?,
            ),
            data.display().to_string(),
        ),
        (None, Some(url)) => {
            let url = DbUrl::parse(url).map_err(|e| anyhow::anyhow!("--url: {e}"))?;
            let loader = PgLoader::open(&url, true)
                .with_context(|| format!("cannot seed {}", url.describe()))?;
            (Box::new(loader), url.describe())
        }
        (None, None) => anyhow::bail!("give --data DIR (sled) or --url URL (PostgreSQL)"),
    };
    let before = store.count()?;
    if before > 0 {
        eprintln!(
            "popgate seed: {target} already holds {before} citizens; records of seed {} with the same ids are overwritten",
            args.seed
        );
    }

    let plan = SeedPlan::new(args.count, args.seed);
    let started = Instant::now();
    let mut last_print = started;
    let report = synth::seed_store(&*store, &plan, |done| {
        let now = Instant::now();
        if now.duration_since(last_print) >= PROGRESS_EVERY && done < args.count {
            last_print = now;
            let rate = done as f64 / now.duration_since(started).as_secs_f64();
            eprintln!(
                "popgate seed: {done}/{} ({:.0}%), {rate:.0} records/s",
                args.count,
                100.0 * done as f64 / args.count as f64
            );
        }
    })
    .context("seeding failed")?;

    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "seeded {} citizens (seed {}) into {} in {:.2} s: {:.0} records/s; the store holds {} citizens",
        report.written,
        args.seed,
        target,
        report.elapsed.as_secs_f64(),
        report.records_per_sec(),
        report.records_in_store
    )?;
    Ok(ExitCode::SUCCESS)
}
