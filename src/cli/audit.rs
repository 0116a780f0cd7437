//! `popgate audit query|verify|report|stats|export`: operators read and check the audit log,
//! in files (`--dir DIR`) or in a cluster's database (`--db URL`).
//!
//! Only the command line lives here: the clap arguments, turning them into the library's
//! types (a bad value is reported with the flag it came from), and printing tables, `--json`
//! and warnings about lines that were not records. Which records match, how the files or rows
//! are read and what is counted belong to [`crate::audit::query`] (and
//! [`crate::audit::verify`], [`crate::audit::verify_db`] for `verify`), so that every reader
//! of the log selects and counts alike; nothing here reads the log itself. All four commands
//! are read-only and safe on a live log; `export` (`audit_export.rs`) only reads the database.

use std::collections::BTreeMap;
use std::io::{self, BufWriter, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, anyhow, bail};
use clap::{Args, Subcommand};

use crate::audit::checkpoint::PublicKey;
use crate::audit::db_read::{self, DbReadError};
use crate::audit::query::{
    Bound, Counts, DbLog, FileLog, Filter, Log, QueryError, Skipped, Source, TimeRange, owned,
};
use crate::audit::record::{Outcome, Record};
use crate::audit::verify::{VerifyOptions, verify};
use crate::audit::verify_db;
use crate::pg::DbUrl;

use super::audit_export::{self, ExportArgs};

#[derive(Args, Debug)]
pub struct AuditArgs {
    #[command(subcommand)]
    pub command: AuditCommand,
}

#[derive(Subcommand, Debug)]
pub enum AuditCommand {
    /// List records matching filters, as a table or as the raw JSON lines.
    Query(QueryArgs),
    /// Check the hash chain and the checkpoints: exit 0 if intact, 1 naming the first bad record.
    Verify(VerifyArgs),
    /// Who accessed one citizen's data, when, which fields and why; newest first.
    Report(ReportArgs),
    /// Counts by client and outcome, and the reuse rate.
    Stats(StatsArgs),
    /// Write each node's records in the database as JSON Lines files that `audit verify
    /// --dir` checks, and print the SQL that removes them from the table.
    Export(ExportArgs),
}

/// Where the log is: exactly one of the two.
#[derive(Args, Debug, Clone, Default)]
pub struct LogArgs {
    /// The audit directory (`[audit].dir`).
    #[arg(long)]
    pub dir: Option<PathBuf>,
    /// The database of `[audit] backend = "postgres"` (`[store].url`), in place of --dir:
    /// every node's records.
    #[arg(long, value_name = "URL")]
    pub db: Option<String>,
}

/// [`LogArgs`] checked.
enum LogAt {
    Dir(PathBuf),
    Db(Box<DbUrl>),
}

impl LogArgs {
    fn at(&self) -> anyhow::Result<LogAt> {
        match (&self.dir, &self.db) {
            (Some(_), Some(_)) => {
                bail!("give --dir DIR (a file log) or --db URL (the database log), not both")
            }
            (None, None) => bail!("give --dir DIR (a file log) or --db URL (the database log)"),
            (Some(d), None) => Ok(LogAt::Dir(d.clone())),
            (None, Some(u)) => Ok(LogAt::Db(Box::new(db_url(u)?))),
        }
    }
}

/// `--db` as a URL; a bad one names the flag.
pub(super) fn db_url(text: &str) -> anyhow::Result<DbUrl> {
    DbUrl::parse(text).map_err(|e| anyhow!("--db: {e}"))
}

/// The database reader's errors in the words of `--db`.
pub(super) fn db_error(url: &DbUrl, e: DbReadError) -> anyhow::Error {
    match e {
        DbReadError::BadUrl(m) | DbReadError::Unreachable(m) => anyhow!("--db: {m}"),
        e => anyhow!("--db {}: {e}", url.describe()),
    }
}

/// Time range shared by the scanning commands.
#[derive(Args, Debug, Clone, Default)]
pub struct Range {
    /// Records at or after this time (RFC 3339, e.g. 2026-11-24T05:00:00Z, or a UTC date).
    #[arg(long, value_name = "T")]
    pub since: Option<String>,
    /// Records before this time (RFC 3339 or a UTC date).
    #[arg(long, value_name = "T")]
    pub until: Option<String>,
}

#[derive(Args, Debug)]
pub struct QueryArgs {
    #[command(flatten)]
    pub log: LogArgs,
    /// Only this client id.
    #[arg(long)]
    pub client: Option<String>,
    /// Only records about this citizen id.
    #[arg(long)]
    pub citizen: Option<String>,
    /// Only calls made with this certificate: its SHA-256 fingerprint, 64 lowercase hex digits
    /// as the records' `cert_sha256` has it (`openssl x509 -in ID.pem -outform DER | sha256sum`).
    #[arg(long, value_name = "SHA256")]
    pub cert: Option<String>,
    #[command(flatten)]
    pub range: Range,
    /// Only this outcome: ok, denied, invalid, not_found, rate_limited, error.
    #[arg(long)]
    pub outcome: Option<Outcome>,
    /// Print the matching JSON lines unchanged instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Stop after this many records.
    #[arg(long)]
    pub limit: Option<u64>,
}

#[derive(Args, Debug)]
pub struct VerifyArgs {
    /// With --db: every node's chain, and its checkpoints in audit_checkpoints. A node whose
    /// rows start above seq 1 must be anchored by a kept checkpoint of the seq before (what
    /// `audit export` and its DELETE leave).
    #[command(flatten)]
    pub log: LogArgs,
    /// An earlier copy of checkpoints.jsonl kept elsewhere (a witness) to check the log against
    /// (--dir only).
    #[arg(long, value_name = "FILE")]
    pub checkpoint: Option<PathBuf>,
    /// The audit public key: a file with 64 hex digits (`certs/audit.pub`). Without it,
    /// checkpoint signatures are not checked (the output says so). After the signing key was
    /// rotated, give every key used since the log began, oldest first (repeat the option).
    #[arg(long, value_name = "FILE")]
    pub pubkey: Vec<PathBuf>,
    /// The oldest files were moved away on purpose: check the log from its first file present,
    /// which must continue from a checkpoint of the record before it (popgate writes one for
    /// each file's last record). Give --pubkey too, or that checkpoint's signature is not checked.
    /// (--dir only: with --db an anchored start is always accepted, and always checked.)
    #[arg(long)]
    pub archived: bool,
}

#[derive(Args, Debug)]
pub struct ReportArgs {
    #[command(flatten)]
    pub log: LogArgs,
    /// The citizen id.
    #[arg(long)]
    pub citizen: String,
    #[command(flatten)]
    pub range: Range,
    /// Print the JSON lines (newest first) instead of a table.
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug)]
pub struct StatsArgs {
    #[command(flatten)]
    pub log: LogArgs,
    #[command(flatten)]
    pub range: Range,
    /// Print one JSON object instead of a table.
    #[arg(long)]
    pub json: bool,
}

pub fn run(args: AuditArgs) -> anyhow::Result<ExitCode> {
    let out = io::stdout().lock();
    let mut out = BufWriter::with_capacity(1 << 16, out);
    let r = match args.command {
        AuditCommand::Query(a) => query(a, &mut out),
        AuditCommand::Verify(a) => verify_cmd(a, &mut out),
        AuditCommand::Report(a) => report(a, &mut out),
        AuditCommand::Stats(a) => stats(a, &mut out),
        AuditCommand::Export(a) => audit_export::run(a, &mut out),
    };
    let r = r.and_then(|code| {
        out.flush()?;
        Ok(code)
    });
    match r {
        // `| head` closed the pipe: the reader has what it wanted.
        Err(e) if is_broken_pipe(&e) => Ok(ExitCode::SUCCESS),
        r => r,
    }
}

fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.downcast_ref::<io::Error>()
        .is_some_and(|e| e.kind() == io::ErrorKind::BrokenPipe)
}

/// `--since`/`--until` as the library's range; a bad value names its flag.
fn time_range(range: &Range) -> anyhow::Result<TimeRange> {
    let bound = |flag: &str, t: &Option<String>| {
        t.as_deref()
            .map(|t| Bound::parse(t).map_err(|e| anyhow!("--{flag} {e}")))
            .transpose()
    };
    TimeRange::new(bound("since", &range.since)?, bound("until", &range.until)?).map_err(flag_error)
}

/// The log in `--dir` or `--db`.
fn open_log(args: &LogArgs) -> anyhow::Result<Log> {
    match args.at()? {
        LogAt::Dir(dir) => FileLog::open(dir).map(Log::Files).map_err(flag_error),
        LogAt::Db(url) => DbLog::open(&url)
            .map(|l| Log::Db(Box::new(l)))
            .map_err(|e| match e {
                QueryError::Db(e) => db_error(&url, e),
                e => flag_error(e),
            }),
    }
}

/// The library's errors in the words of this command's flags.
fn flag_error(e: QueryError) -> anyhow::Error {
    match e {
        QueryError::EmptyRange { since, until } => {
            anyhow!("--since {since} is not before --until {until}")
        }
        QueryError::NoLog { dir } => anyhow!("--dir {}: no such directory", dir.display()),
        e => e.into(),
    }
}

/// Reports lines that were not records on stderr as the scan merges them: the first ten, then
/// how many in all.
#[derive(Default)]
struct Warnings {
    seen: u64,
}

impl Warnings {
    fn part(&mut self, s: &Skipped) {
        for b in &s.first {
            if self.seen < Skipped::KEPT as u64 {
                eprintln!("popgate: {b}; skipped, run `popgate audit verify`");
            }
            self.seen += 1;
        }
        self.seen += s.count - s.first.len() as u64;
    }

    /// After a scan that read to the end.
    fn finish(&self) {
        if self.seen > Skipped::KEPT as u64 {
            eprintln!("popgate: {} lines in all were not records", self.seen);
        }
    }

    /// What a whole scan skipped.
    fn all(s: &Skipped) {
        let mut w = Warnings::default();
        w.part(s);
        w.finish();
    }
}

/// Text for a terminal: control characters (which a caller may have put in a request id) are
/// shown escaped, and long values are cut to `max` characters.
fn clean(s: &str, max: usize) -> String {
    let mut out = String::with_capacity(s.len().min(max));
    for (n, c) in s.chars().enumerate() {
        if n == max {
            out.push('…');
            break;
        }
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    if out.is_empty() {
        out.push('-');
    }
    out
}

fn fields_text(r: &Record<'_>) -> String {
    let v: Vec<&str> = r.fields.iter().map(|f| &**f).collect();
    if v.is_empty() {
        "-".into()
    } else {
        clean(&v.join(","), 80)
    }
}

/// `--cert` as the log writes fingerprints; anything else could never match, so it is refused.
fn cert_fingerprint(text: &str) -> anyhow::Result<String> {
    if text.len() == 64 && text.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
        return Ok(text.to_owned());
    }
    bail!(
        "--cert {:?} is not a certificate fingerprint: give the 64 lowercase hex digits of its \
         SHA-256, as `cert_sha256` in the log (`openssl x509 -in ID.pem -outform DER | sha256sum`)",
        text.chars().take(80).collect::<String>()
    )
}

fn query(a: QueryArgs, out: &mut impl Write) -> anyhow::Result<ExitCode> {
    let filter = Filter {
        range: time_range(&a.range)?,
        client: a.client,
        citizen: a.citizen,
        cert_sha256: a.cert.as_deref().map(cert_fingerprint).transpose()?,
        outcome: a.outcome,
        ..Filter::default()
    };
    if !a.json {
        writeln!(
            out,
            "{:>8}  {:27}  {:16}  {:10}  {:12}  {:12}  {:6}  {:30}  {:24}  REQUEST_ID",
            "SEQ", "TS", "CLIENT", "METHOD", "CITIZEN", "OUTCOME", "REUSED", "FIELDS", "PURPOSE"
        )?;
    }
    let log = open_log(&a.log)?;
    let json = a.json;
    let mut warnings = Warnings::default();
    let n = log.query(
        &filter,
        a.limit,
        |buf, r, line| {
            if json {
                buf.extend_from_slice(line);
                buf.push(b'\n');
            } else {
                table_row(buf, r);
            }
        },
        |part| {
            warnings.part(&part.skipped);
            out.write_all(part.value)?;
            Ok::<_, anyhow::Error>(true)
        },
    )?;
    // Stopped at the limit, the scan did not read the rest: a total would undercount.
    if n < a.limit.unwrap_or(u64::MAX) {
        warnings.finish();
    }
    if !a.json {
        writeln!(out, "{n} record(s)")?;
    }
    Ok(ExitCode::SUCCESS)
}

/// A record's seq, qualified by its node when it has one (the database holds one chain per
/// node, so a seq alone names no record there).
fn seq_text(r: &Record<'_>) -> String {
    match &r.node {
        Some(node) => format!("{}:{}", clean(node, 32), r.seq),
        None => r.seq.to_string(),
    }
}

fn table_row(buf: &mut Vec<u8>, r: &Record<'_>) {
    let mut outcome = r.outcome.to_string();
    if let Some(c) = r.count {
        outcome.push_str(&format!("×{c}"));
    }
    // Writing to a Vec cannot fail.
    let _ = writeln!(
        buf,
        "{:>8}  {:27}  {:16}  {:10}  {:12}  {:12}  {:6}  {:30}  {:24}  {}",
        seq_text(r),
        clean(&r.ts, 27),
        clean(&r.client, 16),
        clean(&r.method, 10),
        r.citizen_id.as_deref().map_or("-".into(), |c| clean(c, 12)),
        outcome,
        if r.reused { "yes" } else { "no" },
        fields_text(r),
        clean(&r.purpose, 24),
        clean(&r.request_id, 40),
    );
    if let Some(reason) = &r.reason {
        let _ = writeln!(buf, "{:>8}  reason: {}", "", clean(reason, 120));
    }
}

fn verify_cmd(a: VerifyArgs, out: &mut impl Write) -> anyhow::Result<ExitCode> {
    let dir = match a.log.at()? {
        LogAt::Dir(dir) => dir,
        LogAt::Db(url) => {
            if a.checkpoint.is_some() {
                bail!(
                    "--checkpoint is for --dir: a witness file holds one chain's checkpoints, the database one per node"
                );
            }
            if a.archived {
                bail!(
                    "--archived is for --dir: with --db a node whose rows start above seq 1 is accepted when a kept checkpoint anchors it"
                );
            }
            return verify_db_cmd(&url, &pubkeys(&a.pubkey)?, out);
        }
    };
    if !dir.is_dir() {
        bail!("--dir {}: no such directory", dir.display());
    }
    let pubkeys = pubkeys(&a.pubkey)?;
    if let Some(w) = &a.checkpoint
        && !w.is_file()
    {
        bail!("--checkpoint {}: no such file", w.display());
    }
    let rep = verify(&VerifyOptions {
        dir: dir.clone(),
        witness: a.checkpoint,
        pubkeys,
        archived: a.archived,
    })
    .with_context(|| format!("reading {}", dir.display()))?;
    for n in &rep.notes {
        eprintln!("note: {n}");
    }
    if rep.intact() {
        let head = rep
            .head
            .map(|h| {
                format!(
                    "head seq {} hash {}",
                    h.seq,
                    crate::audit::chain::to_hex(&h.hash)
                )
            })
            .unwrap_or_else(|| "empty".into());
        let from = rep
            .starts_at
            .map(|s| format!(" from seq {s} (older records archived)"))
            .unwrap_or_default();
        writeln!(
            out,
            "intact: {} record(s){from} in {} file(s), {head}; {} checkpoint(s), signatures {}",
            rep.records,
            rep.files,
            rep.checkpoints,
            if rep.signatures_checked {
                "verified"
            } else {
                "not checked"
            }
        )?;
        Ok(ExitCode::SUCCESS)
    } else {
        for (i, p) in rep.problems.iter().enumerate() {
            let lead = if i == 0 { "NOT INTACT:" } else { "also:" };
            writeln!(out, "{lead} {p}")?;
        }
        writeln!(
            out,
            "{} record(s) checked before the first problem",
            rep.records
        )?;
        Ok(ExitCode::from(1))
    }
}

/// `--pubkey` files, oldest key first.
fn pubkeys(files: &[PathBuf]) -> anyhow::Result<Vec<PublicKey>> {
    files
        .iter()
        .map(|p| PublicKey::from_hex_file(p))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| anyhow!("--pubkey {e}"))
}

/// Runs `f` on a fresh single-threaded runtime: the database commands are one connection's
/// worth of work.
pub(super) fn block_on<T>(f: impl std::future::Future<Output = T>) -> anyhow::Result<T> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    Ok(runtime.block_on(f))
}

/// `audit verify --db`: a line per node, `NOT INTACT:` first for the first problem.
fn verify_db_cmd(
    url: &DbUrl,
    pubkeys: &[PublicKey],
    out: &mut impl Write,
) -> anyhow::Result<ExitCode> {
    let rep = block_on(async {
        let mut client = db_read::connect(url).await?;
        verify_db::verify(&mut client, pubkeys).await
    })?
    .map_err(|e| db_error(url, e))?;
    let problems: Vec<_> = rep
        .nodes
        .iter()
        .filter_map(|n| n.problem.as_ref())
        .collect();
    for (i, p) in problems.iter().enumerate() {
        let lead = if i == 0 { "NOT INTACT:" } else { "also:" };
        writeln!(out, "{lead} {p}")?;
    }
    for n in &rep.nodes {
        for note in &n.notes {
            eprintln!("note: node {}: {note}", n.node);
        }
        if n.problem.is_some() {
            writeln!(
                out,
                "node {}: {} record(s) checked before the problem",
                n.node, n.records
            )?;
            continue;
        }
        let head = n
            .head
            .map(|h| {
                format!(
                    "head seq {} hash {}",
                    h.seq,
                    crate::audit::chain::to_hex(&h.hash)
                )
            })
            .unwrap_or_else(|| "empty".into());
        let from = match (n.first, n.anchored_at) {
            (Some(f), Some(a)) => format!(
                " from seq {f} (records 1..={a} removed, anchored by the checkpoint of seq {a})"
            ),
            (None, Some(a)) => {
                format!(" (records 1..={a} removed, anchored by the checkpoint of seq {a})")
            }
            _ => String::new(),
        };
        writeln!(
            out,
            "node {}: intact: {} record(s){from}, {head}; {} checkpoint(s)",
            n.node, n.records, n.checkpoints
        )?;
    }
    let signatures = if rep.signatures_checked {
        "verified"
    } else {
        "not checked (pass --pubkey)"
    };
    if rep.intact() {
        let records: u64 = rep.nodes.iter().map(|n| n.records).sum();
        writeln!(
            out,
            "intact: {} node(s), {records} record(s); signatures {signatures}",
            rep.nodes.len()
        )?;
        Ok(ExitCode::SUCCESS)
    } else {
        Ok(ExitCode::from(1))
    }
}

fn report(a: ReportArgs, out: &mut impl Write) -> anyhow::Result<ExitCode> {
    let range = time_range(&a.range)?;
    let log = open_log(&a.log)?;
    if a.json {
        let rep = log.report(&a.citizen, &range, |_, line| line.to_vec())?;
        Warnings::all(&rep.skipped);
        for line in &rep.accesses {
            out.write_all(line)?;
            out.write_all(b"\n")?;
        }
        return Ok(ExitCode::SUCCESS);
    }
    let rep = log.report(&a.citizen, &range, |r, _| owned(r))?;
    Warnings::all(&rep.skipped);
    writeln!(
        out,
        "citizen {}: {} access(es) by {} client(s), newest first",
        clean(&a.citizen, 40),
        rep.accesses.len(),
        rep.clients.len()
    )?;
    if rep.accesses.is_empty() {
        return Ok(ExitCode::SUCCESS);
    }
    writeln!(
        out,
        "{:27}  {:16}  {:10}  {:30}  {:24}  {:12}  {:6}  {:>8}  REQUEST_ID",
        "TS", "CLIENT", "METHOD", "FIELDS", "PURPOSE", "OUTCOME", "REUSED", "SEQ"
    )?;
    for r in &rep.accesses {
        writeln!(
            out,
            "{:27}  {:16}  {:10}  {:30}  {:24}  {:12}  {:6}  {:>8}  {}",
            clean(&r.ts, 27),
            clean(&r.client, 16),
            clean(&r.method, 10),
            fields_text(r),
            clean(&r.purpose, 24),
            r.outcome.as_str(),
            if r.reused { "yes" } else { "no" },
            seq_text(r),
            clean(&r.request_id, 40)
        )?;
    }
    Ok(ExitCode::SUCCESS)
}

/// `audit stats --json`: one object, keys in this order.
#[derive(serde::Serialize)]
struct StatsOut<'a> {
    since: Option<&'a str>,
    until: Option<&'a str>,
    first_ts: Option<&'a str>,
    last_ts: Option<&'a str>,
    records: u64,
    total: &'a Counts,
    clients: &'a BTreeMap<String, Counts>,
}

fn stats(a: StatsArgs, out: &mut impl Write) -> anyhow::Result<ExitCode> {
    let filter = Filter::range(time_range(&a.range)?);
    let st = open_log(&a.log)?.stats(&filter)?;
    Warnings::all(&st.skipped);
    let s = StatsOut {
        since: filter.range.since().map(Bound::as_str),
        until: filter.range.until().map(Bound::as_str),
        first_ts: st.first_ts.as_deref(),
        last_ts: st.last_ts.as_deref(),
        records: st.records,
        total: &st.total,
        clients: &st.clients,
    };
    if a.json {
        serde_json::to_writer(&mut *out, &s)?;
        writeln!(out)?;
        return Ok(ExitCode::SUCCESS);
    }
    writeln!(
        out,
        "{} record(s) from {} to {}",
        s.records,
        s.first_ts.unwrap_or("-"),
        s.last_ts.unwrap_or("-")
    )?;
    writeln!(
        out,
        "{:20}  {:>10}  {:>10}  {:>8}  {:>8}  {:>9}  {:>12}  {:>7}  {:>10}  {:>7}",
        "CLIENT",
        "CALLS",
        "OK",
        "DENIED",
        "INVALID",
        "NOT_FOUND",
        "RATE_LIMITED",
        "ERROR",
        "REUSED",
        "REUSE%"
    )?;
    let row = |out: &mut dyn Write, name: &str, c: &Counts| {
        writeln!(
            out,
            "{:20}  {:>10}  {:>10}  {:>8}  {:>8}  {:>9}  {:>12}  {:>7}  {:>10}  {:>6.1}%",
            clean(name, 20),
            c.calls,
            c.ok,
            c.denied,
            c.invalid,
            c.not_found,
            c.rate_limited,
            c.error,
            c.reused,
            c.reuse_rate() * 100.0
        )
    };
    for (name, c) in s.clients {
        row(out, name, c)?;
    }
    row(out, "TOTAL", s.total)?;
    writeln!(out, "reuse rate = reused / ok calls")?;
    Ok(ExitCode::SUCCESS)
}
