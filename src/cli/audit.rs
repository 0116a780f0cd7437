//! `popgate audit query|verify|report|stats`: operators read and check the audit log.
//!
//! Read-only: these commands never change the files, so they are safe on a live log (a line
//! being written shows as an incomplete last line and is skipped). Scans stream the files once,
//! parse lines in place and skip what cannot match (a substring test before parsing, whole
//! files before `--since`, everything after `--until`, since `ts` never decreases).

use std::collections::BTreeMap;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::{Args, Subcommand};

use crate::audit::checkpoint::PublicKey;
use crate::audit::record::{Outcome, Record, format_ts, parse_ts_us, push_json_str};
use crate::audit::scan::{self, LineReader, LogFile};
use crate::audit::verify::{VerifyOptions, verify};

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
    /// The audit directory (`[audit].dir`).
    #[arg(long)]
    pub dir: PathBuf,
    /// Only this client id.
    #[arg(long)]
    pub client: Option<String>,
    /// Only records about this citizen id.
    #[arg(long)]
    pub citizen: Option<String>,
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
    /// The audit directory (`[audit].dir`).
    #[arg(long)]
    pub dir: PathBuf,
    /// An earlier copy of checkpoints.jsonl kept elsewhere (a witness) to check the log against.
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
    #[arg(long)]
    pub archived: bool,
}

#[derive(Args, Debug)]
pub struct ReportArgs {
    /// The audit directory (`[audit].dir`).
    #[arg(long)]
    pub dir: PathBuf,
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
    /// The audit directory (`[audit].dir`).
    #[arg(long)]
    pub dir: PathBuf,
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

/// A time bound as the canonical `ts` text, so records compare as strings.
fn parse_bound(flag: &str, t: &str) -> anyhow::Result<String> {
    let us = parse_ts_us(t)
        .or_else(|| parse_ts_us(&format!("{t}T00:00:00Z")))
        .with_context(|| {
            format!(
                "--{flag} {t:?}: expected RFC 3339 (2026-11-24T05:00:00Z) or a date (2026-11-24)"
            )
        })?;
    Ok(format_ts(us))
}

/// What the scanning commands select.
#[derive(Default)]
struct Filter {
    since: Option<String>,
    until: Option<String>,
    client: Option<String>,
    citizen: Option<String>,
    outcome: Option<Outcome>,
    /// Substrings a matching line must contain, as the writer encodes them: a cheap test
    /// that spares parsing lines that cannot match.
    needles: Vec<String>,
}

impl Filter {
    fn new(range: &Range) -> anyhow::Result<Filter> {
        let f = Filter {
            since: range
                .since
                .as_deref()
                .map(|t| parse_bound("since", t))
                .transpose()?,
            until: range
                .until
                .as_deref()
                .map(|t| parse_bound("until", t))
                .transpose()?,
            ..Filter::default()
        };
        if let (Some(s), Some(u)) = (&f.since, &f.until)
            && s >= u
        {
            bail!("--since {s} is not before --until {u}");
        }
        Ok(f)
    }

    fn client(mut self, c: Option<String>) -> Self {
        if let Some(c) = &c {
            self.needles.push(key_needle("client", c));
        }
        self.client = c;
        self
    }

    fn citizen(mut self, c: Option<String>) -> Self {
        if let Some(c) = &c {
            self.needles.push(key_needle("citizen_id", c));
        }
        self.citizen = c;
        self
    }

    fn may_match(&self, line: &[u8]) -> bool {
        if self.needles.is_empty() {
            return true;
        }
        match std::str::from_utf8(line) {
            Ok(s) => self.needles.iter().all(|n| s.contains(n.as_str())),
            // Not what the writer writes; let the parser say so.
            Err(_) => true,
        }
    }

    fn matches(&self, r: &Record<'_>) -> bool {
        self.since.as_deref().is_none_or(|s| &*r.ts >= s)
            && self.until.as_deref().is_none_or(|u| &*r.ts < u)
            && self.client.as_deref().is_none_or(|c| *r.client == *c)
            && self
                .citizen
                .as_deref()
                .is_none_or(|c| r.citizen_id.as_deref() == Some(c))
            && self.outcome.is_none_or(|o| r.outcome == o)
    }

    /// Whether `r` is past `--until`: with `ts` never decreasing, nothing after it matches.
    fn past_end(&self, r: &Record<'_>) -> bool {
        self.until.as_deref().is_some_and(|u| &*r.ts >= u)
    }
}

/// `"key":<value as JSON>` exactly as the writer spells it.
fn key_needle(key: &str, value: &str) -> String {
    let mut v = Vec::new();
    push_json_str(&mut v, key);
    v.push(b':');
    push_json_str(&mut v, value);
    String::from_utf8(v).unwrap_or_default()
}

/// The `ts` of a file's first record, if it has one.
fn first_ts(file: &LogFile) -> Option<String> {
    let mut r = LineReader::open(&file.path).ok()?;
    let line = r.next_line().ok()??;
    Record::parse(line.bytes).ok().map(|r| r.ts.0.into_owned())
}

/// The files that can hold records in the `--since`/`--until` range: `ts` never decreases
/// along the log, so a file is skipped when it starts at or after `--until`, or when the
/// next file already starts before `--since`.
fn select_files(files: Vec<LogFile>, filter: &Filter) -> Vec<LogFile> {
    if filter.since.is_none() && filter.until.is_none() {
        return files;
    }
    let firsts: Vec<Option<String>> = files.iter().map(first_ts).collect();
    files
        .into_iter()
        .enumerate()
        .filter(|(i, _)| {
            let starts_late = filter
                .until
                .as_ref()
                .is_some_and(|u| firsts[*i].as_ref().is_some_and(|t| t >= u));
            let ends_early = filter.since.as_ref().is_some_and(|s| {
                firsts
                    .get(i + 1)
                    .and_then(Option::as_ref)
                    .is_some_and(|t| t < s)
            });
            !starts_late && !ends_early
        })
        .map(|(_, f)| f)
        .collect()
}

/// What scanning one file produced.
struct FileScan<A> {
    acc: A,
    /// Messages for the first lines that were not records.
    bad: Vec<String>,
    bad_count: u64,
}

fn scan_file<A>(
    file: &LogFile,
    filter: &Filter,
    new: &impl Fn() -> A,
    each: &impl Fn(&mut A, &Record<'_>, &[u8]) -> bool,
) -> io::Result<FileScan<A>> {
    let mut out = FileScan {
        acc: new(),
        bad: Vec::new(),
        bad_count: 0,
    };
    let mut reader = LineReader::open(&file.path)?;
    while let Some(line) = reader.next_line()? {
        if !line.complete || !filter.may_match(line.bytes) {
            continue;
        }
        let rec = match Record::parse(line.bytes) {
            Ok(r) => r,
            Err(e) => {
                out.bad_count += 1;
                if out.bad.len() < 10 {
                    out.bad.push(format!(
                        "{} line {}: not a record ({e}); skipped, run `popgate audit verify`",
                        file.name(),
                        line.number
                    ));
                }
                continue;
            }
        };
        if filter.past_end(&rec) {
            break;
        }
        if filter.matches(&rec) && !each(&mut out.acc, &rec, line.bytes) {
            break;
        }
    }
    Ok(out)
}

/// Scans the files that can hold matching records, several at a time. `each` folds the
/// matching records of one file into a fresh `new()` (and returns `false` once that file
/// needs no more); `merge` receives the files' results in log order and returns `false` to
/// stop. Lines that are not records are reported on stderr and skipped.
fn scan_records<A: Send>(
    dir: &Path,
    filter: &Filter,
    new: impl Fn() -> A + Sync,
    each: impl Fn(&mut A, &Record<'_>, &[u8]) -> bool + Sync,
    mut merge: impl FnMut(A) -> anyhow::Result<bool>,
) -> anyhow::Result<()> {
    if !dir.is_dir() {
        bail!("--dir {}: no such directory", dir.display());
    }
    let files = scan::list_files(dir).with_context(|| format!("reading {}", dir.display()))?;
    let files = select_files(files, filter);
    let mut bad_lines = 0u64;
    // A window of files at a time bounds what is held in memory before it is merged.
    for window in files.chunks(scan::scan_threads()) {
        let results = scan::par_map(window, |f| scan_file(f, filter, &new, &each));
        for (file, r) in window.iter().zip(results) {
            let r = r.with_context(|| format!("reading {}", file.path.display()))?;
            for b in &r.bad {
                if bad_lines < 10 {
                    eprintln!("popgate: {b}");
                }
                bad_lines += 1;
            }
            bad_lines += r.bad_count - r.bad.len() as u64;
            if !merge(r.acc)? {
                return Ok(());
            }
        }
    }
    if bad_lines > 10 {
        eprintln!("popgate: {bad_lines} lines in all were not records");
    }
    Ok(())
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

fn query(a: QueryArgs, out: &mut impl Write) -> anyhow::Result<ExitCode> {
    let mut filter = Filter::new(&a.range)?.client(a.client).citizen(a.citizen);
    filter.outcome = a.outcome;
    let limit = a.limit.unwrap_or(u64::MAX);
    if !a.json {
        writeln!(
            out,
            "{:>8}  {:27}  {:16}  {:10}  {:12}  {:12}  {:6}  {:30}  {:24}  REQUEST_ID",
            "SEQ", "TS", "CLIENT", "METHOD", "CITIZEN", "OUTCOME", "REUSED", "FIELDS", "PURPOSE"
        )?;
    }
    let json = a.json;
    let mut left = limit;
    // Per file: the output text and where each record's text ends, so the limit can cut it.
    scan_records(
        &a.dir,
        &filter,
        || (Vec::<u8>::new(), Vec::<usize>::new()),
        |(buf, ends), r, line| {
            if json {
                buf.extend_from_slice(line);
                buf.push(b'\n');
            } else {
                table_row(buf, r);
            }
            ends.push(buf.len());
            (ends.len() as u64) < limit
        },
        |(buf, ends)| {
            let take = (ends.len() as u64).min(left) as usize;
            if take > 0 {
                out.write_all(&buf[..ends[take - 1]])?;
            }
            left -= take as u64;
            Ok(left > 0)
        },
    )?;
    if !a.json {
        writeln!(out, "{} record(s)", limit - left)?;
    }
    Ok(ExitCode::SUCCESS)
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
        r.seq,
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
    if !a.dir.is_dir() {
        bail!("--dir {}: no such directory", a.dir.display());
    }
    let pubkeys = a
        .pubkey
        .iter()
        .map(|p| PublicKey::from_hex_file(p))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| anyhow::anyhow!("--pubkey {e}"))?;
    if let Some(w) = &a.checkpoint
        && !w.is_file()
    {
        bail!("--checkpoint {}: no such file", w.display());
    }
    let rep = verify(&VerifyOptions {
        dir: a.dir.clone(),
        witness: a.checkpoint,
        pubkeys,
        archived: a.archived,
    })
    .with_context(|| format!("reading {}", a.dir.display()))?;
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

/// One access, kept for printing newest first.
struct Access {
    seq: u64,
    ts: String,
    client: String,
    method: String,
    fields: String,
    purpose: String,
    outcome: String,
    reused: bool,
    request_id: String,
    line: Vec<u8>,
}

fn report(a: ReportArgs, out: &mut impl Write) -> anyhow::Result<ExitCode> {
    let filter = Filter::new(&a.range)?.citizen(Some(a.citizen.clone()));
    let mut found = Vec::new();
    let json = a.json;
    scan_records(
        &a.dir,
        &filter,
        Vec::new,
        |acc: &mut Vec<Access>, r, line| {
            acc.push(Access {
                seq: r.seq,
                ts: r.ts.to_string(),
                client: r.client.to_string(),
                method: r.method.to_string(),
                fields: fields_text(r),
                purpose: r.purpose.to_string(),
                outcome: r.outcome.to_string(),
                reused: r.reused,
                request_id: r.request_id.to_string(),
                line: if json { line.to_vec() } else { Vec::new() },
            });
            true
        },
        |mut acc| {
            found.append(&mut acc);
            Ok(true)
        },
    )?;
    found.reverse();
    if a.json {
        for f in &found {
            out.write_all(&f.line)?;
            out.write_all(b"\n")?;
        }
        return Ok(ExitCode::SUCCESS);
    }
    let clients: std::collections::BTreeSet<&str> =
        found.iter().map(|f| f.client.as_str()).collect();
    writeln!(
        out,
        "citizen {}: {} access(es) by {} client(s), newest first",
        clean(&a.citizen, 40),
        found.len(),
        clients.len()
    )?;
    if found.is_empty() {
        return Ok(ExitCode::SUCCESS);
    }
    writeln!(
        out,
        "{:27}  {:16}  {:10}  {:30}  {:24}  {:12}  {:6}  {:>8}  REQUEST_ID",
        "TS", "CLIENT", "METHOD", "FIELDS", "PURPOSE", "OUTCOME", "REUSED", "SEQ"
    )?;
    for f in &found {
        writeln!(
            out,
            "{:27}  {:16}  {:10}  {:30}  {:24}  {:12}  {:6}  {:>8}  {}",
            clean(&f.ts, 27),
            clean(&f.client, 16),
            clean(&f.method, 10),
            f.fields,
            clean(&f.purpose, 24),
            f.outcome,
            if f.reused { "yes" } else { "no" },
            f.seq,
            clean(&f.request_id, 40)
        )?;
    }
    Ok(ExitCode::SUCCESS)
}

/// Counts for one client (or all).
#[derive(Default, Clone, serde::Serialize)]
struct Counts {
    /// Calls: a rate-limited record with `count` stands for that many.
    calls: u64,
    ok: u64,
    denied: u64,
    invalid: u64,
    not_found: u64,
    rate_limited: u64,
    error: u64,
    /// `ok` calls answered from the reuse cache.
    reused: u64,
    /// reused / ok.
    reuse_rate: f64,
}

impl Counts {
    fn add(&mut self, r: &Record<'_>) {
        let n = r.calls();
        self.calls += n;
        *match r.outcome {
            Outcome::Ok => &mut self.ok,
            Outcome::Denied => &mut self.denied,
            Outcome::Invalid => &mut self.invalid,
            Outcome::NotFound => &mut self.not_found,
            Outcome::RateLimited => &mut self.rate_limited,
            Outcome::Error => &mut self.error,
        } += n;
        if r.reused && r.outcome == Outcome::Ok {
            self.reused += 1;
        }
    }

    fn merge(&mut self, o: &Counts) {
        self.calls += o.calls;
        self.ok += o.ok;
        self.denied += o.denied;
        self.invalid += o.invalid;
        self.not_found += o.not_found;
        self.rate_limited += o.rate_limited;
        self.error += o.error;
        self.reused += o.reused;
    }

    fn finish(&mut self) {
        self.reuse_rate = if self.ok == 0 {
            0.0
        } else {
            self.reused as f64 / self.ok as f64
        };
    }
}

/// Counts over part of the log, merged file by file in log order.
#[derive(Default)]
struct StatsAcc {
    total: Counts,
    clients: BTreeMap<String, Counts>,
    records: u64,
    first_ts: Option<String>,
    last_ts: Option<String>,
}

impl StatsAcc {
    fn add(&mut self, r: &Record<'_>) {
        self.records += 1;
        self.total.add(r);
        match self.clients.get_mut(&*r.client) {
            Some(c) => c.add(r),
            None => self.clients.entry(r.client.to_string()).or_default().add(r),
        }
        if self.first_ts.is_none() {
            self.first_ts = Some(r.ts.to_string());
        }
        match &mut self.last_ts {
            Some(t) => {
                t.clear();
                t.push_str(&r.ts);
            }
            None => self.last_ts = Some(r.ts.to_string()),
        }
    }

    fn merge(&mut self, later: StatsAcc) {
        self.records += later.records;
        self.total.merge(&later.total);
        for (k, v) in later.clients {
            self.clients.entry(k).or_default().merge(&v);
        }
        if self.first_ts.is_none() {
            self.first_ts = later.first_ts;
        }
        if later.last_ts.is_some() {
            self.last_ts = later.last_ts;
        }
    }
}

#[derive(serde::Serialize)]
struct StatsOut {
    since: Option<String>,
    until: Option<String>,
    first_ts: Option<String>,
    last_ts: Option<String>,
    records: u64,
    total: Counts,
    clients: BTreeMap<String, Counts>,
}

fn stats(a: StatsArgs, out: &mut impl Write) -> anyhow::Result<ExitCode> {
    let filter = Filter::new(&a.range)?;
    let mut all = StatsAcc::default();
    scan_records(
        &a.dir,
        &filter,
        StatsAcc::default,
        |acc, r, _| {
            acc.add(r);
            true
        },
        |part| {
            all.merge(part);
            Ok(true)
        },
    )?;
    let StatsAcc {
        mut total,
        mut clients,
        records,
        first_ts,
        last_ts,
    } = all;
    total.finish();
    clients.values_mut().for_each(Counts::finish);
    let s = StatsOut {
        since: filter.since,
        until: filter.until,
        first_ts,
        last_ts,
        records,
        total,
        clients,
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
        s.first_ts.as_deref().unwrap_or("-"),
        s.last_ts.as_deref().unwrap_or("-")
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
            c.reuse_rate * 100.0
        )
    };
    for (name, c) in &s.clients {
        row(out, name, c)?;
    }
    row(out, "TOTAL", &s.total)?;
    writeln!(out, "reuse rate = reused / ok calls")?;
    Ok(ExitCode::SUCCESS)
}
