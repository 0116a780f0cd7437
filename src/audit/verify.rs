//! Checking a whole log: every record's own hash, the `seq`/`prev` chain across files, every
//! checkpoint (and a witness copy) against the chain, and checkpoint signatures.
//!
//! Reads only; never repairs. The scan stops at the first break in the chain, because
//! everything after it would only repeat the same news.

use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};

use super::chain::{self, Head};
use super::checkpoint::{self, CHECKPOINT_FILE, Checkpoint, PublicKey};
use super::record::Record;
use super::scan::{self, LineReader};

/// What to check.
#[derive(Debug, Clone, Default)]
pub struct VerifyOptions {
    pub dir: PathBuf,
    /// An operator's earlier copy of `checkpoints.jsonl` (or of some of its lines).
    pub witness: Option<PathBuf>,
    /// Checks checkpoint signatures when given; without them signatures are not checked (and
    /// the report says so), because a key found next to the log proves nothing. Every key the
    /// gateway has signed with since the log began, oldest first: each checkpoint must verify
    /// with one of them, and never with an older key than an earlier checkpoint did (a retired
    /// key cannot vouch for what its successor signed).
    pub pubkeys: Vec<PublicKey>,
    /// The oldest files were archived on purpose: the log may start after seq 1, provided a
    /// checkpoint of the record before its first one vouches for that record's `prev`.
    pub archived: bool,
}

/// One thing wrong, located as precisely as possible.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// A log file name, or the checkpoint file's.
    pub file: String,
    /// 1-based; 0 when the problem is about a file as a whole.
    pub line: u64,
    pub seq: Option<u64>,
    pub what: String,
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.file)?;
        if self.line > 0 {
            write!(f, " line {}", self.line)?;
        }
        if let Some(s) = self.seq {
            write!(f, " (seq {s})")?;
        }
        write!(f, ": {}", self.what)
    }
}

/// The outcome of [`verify`].
#[derive(Debug, Clone, Default)]
pub struct VerifyReport {
    /// Records checked.
    pub records: u64,
    pub files: usize,
    /// The last record that checked out.
    pub head: Option<Head>,
    /// With [`VerifyOptions::archived`]: the first seq present, when records before it were
    /// archived (and anchored by a checkpoint).
    pub starts_at: Option<u64>,
    /// Checkpoints found (the log's own and the witness's).
    pub checkpoints: usize,
    pub signatures_checked: bool,
    /// Worth knowing but not a failure.
    pub notes: Vec<String>,
    /// The first break in the chain first (if any), then checkpoint problems.
    pub problems: Vec<Problem>,
}

impl VerifyReport {
    pub fn intact(&self) -> bool {
        self.problems.is_empty()
    }
}

/// A checkpoint to hold the chain to, and where it came from.
struct Expect {
    hash: String,
    file: String,
    line: u64,
}

/// `seq` of a line that may not parse: records start with `{"seq":<digits>`.
fn sniff_seq(line: &[u8]) -> Option<u64> {
    let rest = line.strip_prefix(b"{\"seq\":")?;
    let digits = rest.iter().take_while(|b| b.is_ascii_digit()).count();
    std::str::from_utf8(&rest[..digits]).ok()?.parse().ok()
}

/// The signature rule, shared by the file and the database verifiers: with keys given, each
/// checkpoint must verify with one of them, and never with an older key than an earlier
/// checkpoint did (a retired key cannot vouch for what its successor signed).
pub(crate) struct Signatures<'k> {
    pubkeys: &'k [PublicKey],
    newest: usize,
}

impl<'k> Signatures<'k> {
    pub(crate) fn new(pubkeys: &'k [PublicKey]) -> Self {
        Signatures { pubkeys, newest: 0 }
    }

    /// `Ok` when `cp` may be used to judge records (always, without keys); the error says why not.
    pub(crate) fn check(&mut self, cp: &Checkpoint) -> Result<(), String> {
        if self.pubkeys.is_empty() {
            return Ok(());
        }
        if cp.sig.is_none() {
            return Err("checkpoint is not signed".into());
        }
        match self.pubkeys.iter().position(|pk| pk.verifies(cp)) {
            None => Err("checkpoint signature does not verify with the given public key(s) (forged or altered, or signed by a key not given)".into()),
            Some(k) if k < self.newest => Err(format!(
                "checkpoint signed by --pubkey number {} after one signed by its successor, number {}: a retired key signed it (stolen?)",
                k + 1,
                self.newest + 1
            )),
            Some(k) => {
                self.newest = k;
                Ok(())
            }
        }
    }
}

/// Loads and checks one checkpoint file; problems go to `problems`.
fn load_checkpoints(
    path: &Path,
    label: &str,
    pubkeys: &[PublicKey],
    expect: &mut BTreeMap<u64, Vec<Expect>>,
    problems: &mut Vec<Problem>,
    notes: &mut Vec<String>,
) -> io::Result<usize> {
    let cf = checkpoint::read_file(path)?;
    if cf.torn_bytes > 0 {
        notes.push(format!(
            "{label}: its last line is incomplete ({} bytes; being written, or torn by a crash)",
            cf.torn_bytes
        ));
    }
    let mut last_seq = 0;
    let mut signatures = Signatures::new(pubkeys);
    let mut n = 0;
    for l in cf.lines {
        let problem = |what: String, seq: Option<u64>| Problem {
            file: label.to_string(),
            line: l.line as u64,
            seq,
            what,
        };
        let cp: Checkpoint = match l.parsed {
            Ok(cp) => cp,
            Err(e) => {
                problems.push(problem(e, None));
                continue;
            }
        };
        n += 1;
        // A checkpoint that fails its signature is reported and then ignored: it must not be
        // used to judge the records.
        if let Err(what) = signatures.check(&cp) {
            problems.push(problem(what, Some(cp.seq)));
            continue;
        }
        if cp.seq <= last_seq {
            problems.push(problem(
                format!("checkpoint seq {} does not follow seq {last_seq}", cp.seq),
                Some(cp.seq),
            ));
        }
        last_seq = last_seq.max(cp.seq);
        expect.entry(cp.seq).or_default().push(Expect {
            hash: cp.hash,
            file: label.to_string(),
            line: l.line as u64,
        });
    }
    Ok(n)
}

/// Checks the log in `opts.dir`. `Err` only for I/O trouble reading it (a missing directory);
/// everything wrong with the contents is in the report.
pub fn verify(opts: &VerifyOptions) -> io::Result<VerifyReport> {
    let mut rep = VerifyReport {
        signatures_checked: !opts.pubkeys.is_empty(),
        ..VerifyReport::default()
    };
    let mut expect: BTreeMap<u64, Vec<Expect>> = BTreeMap::new();
    let mut cp_problems = Vec::new();
    rep.checkpoints += load_checkpoints(
        &opts.dir.join(CHECKPOINT_FILE),
        CHECKPOINT_FILE,
        &opts.pubkeys,
        &mut expect,
        &mut cp_problems,
        &mut rep.notes,
    )?;
    if let Some(w) = &opts.witness {
        let label = format!("witness {}", w.display());
        if !w.is_file() {
            return Err(io::Error::new(
                io::ErrorKind::NotFound,
                format!("{}: no such file", w.display()),
            ));
        }
        rep.checkpoints += load_checkpoints(
            w,
            &label,
            &opts.pubkeys,
            &mut expect,
            &mut cp_problems,
            &mut rep.notes,
        )?;
    }

    let files = scan::list_files(&opts.dir)?;
    rep.files = files.len();
    let chain_problem = scan_chain(&files, &expect, opts.archived, &mut rep)?;
    let chain_ok = chain_problem.is_none();
    rep.problems.extend(chain_problem);

    // Checkpoints past the end of an otherwise intact chain: records were cut off.
    if chain_ok {
        let head_seq = rep.head.map(|h| h.seq).unwrap_or(0);
        if let Some((&seq, e)) = expect.range(head_seq + 1..).next_back() {
            let e = &e[0];
            let (file, line) = match files.last() {
                Some(f) => (f.name(), 0),
                None => ("(no log files)".to_string(), 0),
            };
            rep.problems.push(Problem {
                file,
                line,
                seq: Some(head_seq + 1),
                what: format!(
                    "the log ends at seq {head_seq} but {} line {} checkpoints seq {seq}: records {}..={seq} were cut off",
                    e.file,
                    e.line,
                    head_seq + 1
                ),
            });
        }
    }
    rep.problems.extend(cp_problems);
    if let Some(first) = rep.starts_at {
        let older = expect.range(..first - 1).count();
        if older > 0 {
            rep.notes.push(format!(
                "{older} checkpoint(s) name archived records (before seq {first}) and were not checked against them"
            ));
        }
    }

    if rep.checkpoints == 0 && rep.records > 0 {
        rep.notes
            .push("no checkpoints: records cut off the end of the log cannot be detected".into());
    } else if !rep.signatures_checked && rep.checkpoints > 0 {
        rep.notes.push(
            "checkpoint signatures were not checked: pass --pubkey (the audit.pub of `certs init`)"
                .into(),
        );
    }
    Ok(rep)
}

/// What one file says about itself: its records chain among themselves, and where it joins
/// the file before (its first record's `prev`).
#[derive(Default)]
struct FileCheck {
    records: u64,
    /// The first record's seq and `prev`, if it checked out.
    first: Option<(u64, String)>,
    last: Option<Head>,
    problem: Option<Problem>,
    note: Option<String>,
}

/// Checks one file on its own; [`scan_chain`] joins the files.
fn check_file(
    file: &scan::LogFile,
    is_last: bool,
    expect: &BTreeMap<u64, Vec<Expect>>,
) -> io::Result<FileCheck> {
    let name = file.name();
    let mut fc = FileCheck::default();
    let problem = |line: u64, seq: Option<u64>, what: String| Problem {
        file: name.clone(),
        line,
        seq,
        what,
    };
    let mut reader = LineReader::open(&file.path)?;
    let mut prev_hex = String::new();
    while let Some(line) = reader.next_line()? {
        let seq_hint = sniff_seq(line.bytes);
        if !line.complete {
            if is_last {
                fc.note = Some(format!(
                    "{name} line {}: incomplete last line ({} bytes; being written, or torn by a crash and cut at the next start)",
                    line.number,
                    line.bytes.len()
                ));
            } else {
                fc.problem = Some(problem(
                    line.number,
                    seq_hint,
                    "the line has no newline".into(),
                ));
            }
            break;
        }
        let Some(hash) = chain::verify_line(line.bytes) else {
            let what = if chain::line_hash_parts(line.bytes).is_some() {
                "the record does not match its hash (edited)"
            } else {
                "the line does not end in a hash (not a record, or edited)"
            };
            fc.problem = Some(problem(line.number, seq_hint, what.into()));
            break;
        };
        let rec = match Record::parse(line.bytes) {
            Ok(r) => r,
            Err(e) => {
                fc.problem = Some(problem(
                    line.number,
                    seq_hint,
                    format!("not a valid record: {e}"),
                ));
                break;
            }
        };
        match fc.last {
            None => {
                if rec.seq != file.first_seq {
                    let what = if rec.seq > file.first_seq {
                        format!(
                            "the file is named for seq {} but starts at seq {}: records {}..{} are missing (deleted)",
                            file.first_seq,
                            rec.seq,
                            file.first_seq,
                            rec.seq - 1
                        )
                    } else {
                        format!(
                            "the file is named for seq {} but starts at seq {} (a record inserted or moved)",
                            file.first_seq, rec.seq
                        )
                    };
                    fc.problem = Some(problem(line.number, Some(rec.seq), what));
                    break;
                }
                fc.first = Some((rec.seq, rec.prev.to_string()));
            }
            Some(head) => {
                let want = head.seq + 1;
                if rec.seq != want {
                    let what = if rec.seq > want {
                        format!(
                            "seq {} follows seq {}: records {want}..{} are missing (deleted or reordered)",
                            rec.seq,
                            head.seq,
                            rec.seq - 1
                        )
                    } else {
                        format!(
                            "seq {} after seq {}: a record inserted, repeated or reordered",
                            rec.seq, head.seq
                        )
                    };
                    fc.problem = Some(problem(line.number, Some(rec.seq), what));
                    break;
                }
                if *rec.prev != *prev_hex {
                    fc.problem = Some(problem(
                        line.number,
                        Some(rec.seq),
                        format!(
                            "prev does not match the hash of seq {}: a record deleted, inserted or replaced before it",
                            head.seq
                        ),
                    ));
                    break;
                }
            }
        }
        if let Some(es) = expect.get(&rec.seq)
            && let Some(e) = es.iter().find(|e| e.hash != *rec.hash)
        {
            fc.problem = Some(problem(
                line.number,
                Some(rec.seq),
                format!(
                    "the record's hash differs from the one {} line {} checkpointed",
                    e.file, e.line
                ),
            ));
            break;
        }
        prev_hex.clear();
        prev_hex.push_str(&rec.hash);
        fc.last = Some(Head { seq: rec.seq, hash });
        fc.records += 1;
    }
    Ok(fc)
}

/// Checks every file (in parallel), then joins them in order; returns the first break.
fn scan_chain(
    files: &[scan::LogFile],
    expect: &BTreeMap<u64, Vec<Expect>>,
    archived: bool,
    rep: &mut VerifyReport,
) -> io::Result<Option<Problem>> {
    let checks = scan::par_map(files, |f| {
        let is_last = files.last().is_some_and(|l| l.path == f.path);
        check_file(f, is_last, expect)
    });
    let mut head = Head::EMPTY;
    for (fi, (file, fc)) in files.iter().zip(checks).enumerate() {
        let fc = fc?;
        if fi == 0 && archived && file.first_seq > 1 {
            match archive_anchor(file, &fc, expect) {
                Ok((anchor, note)) => {
                    head = anchor;
                    rep.starts_at = Some(file.first_seq);
                    rep.notes.push(note);
                }
                Err(p) => return Ok(Some(p)),
            }
        }
        if file.first_seq != head.seq + 1 {
            let what = if file.first_seq == 0 {
                "the file is named for seq 0, but seq starts at 1".to_string()
            } else if fi == 0 {
                format!(
                    "the log starts at seq {}: records 1..{} are missing (if older files were archived on purpose, pass --archived)",
                    file.first_seq,
                    file.first_seq - 1
                )
            } else if file.first_seq > head.seq + 1 {
                format!(
                    "the file before ends at seq {}: records {}..{} are missing (a file deleted?)",
                    head.seq,
                    head.seq + 1,
                    file.first_seq - 1
                )
            } else {
                format!(
                    "the file is named for seq {} but the file before ends at seq {}",
                    file.first_seq, head.seq
                )
            };
            return Ok(Some(Problem {
                file: file.name(),
                line: 0,
                seq: Some(file.first_seq),
                what,
            }));
        }
        if let Some((seq, prev)) = &fc.first
            && prev.as_bytes() != chain::to_hex(&head.hash).as_bytes()
        {
            return Ok(Some(Problem {
                file: file.name(),
                line: 1,
                seq: Some(*seq),
                what: format!(
                    "prev does not match the hash of seq {} at the end of the file before: a record deleted, inserted or replaced",
                    head.seq
                ),
            }));
        }
        rep.records += fc.records;
        if let Some(p) = fc.problem {
            return Ok(Some(p));
        }
        rep.notes.extend(fc.note);
        if let Some(h) = fc.last {
            head = h;
            rep.head = Some(h);
        }
    }
    Ok(None)
}

/// With `--archived`: the chain head just before the first file present, vouched for by a
/// checkpoint of that record (the writer checkpoints every file's last record as it starts the
/// next). Without one, archiving cannot be told apart from deleting the start of the log.
fn archive_anchor(
    file: &scan::LogFile,
    fc: &FileCheck,
    expect: &BTreeMap<u64, Vec<Expect>>,
) -> Result<(Head, String), Problem> {
    let before = file.first_seq - 1;
    let problem = |what: String| Problem {
        file: file.name(),
        line: 1,
        seq: Some(file.first_seq),
        what,
    };
    let Some((_, prev)) = &fc.first else {
        // Its first line is not a record that checks out: that is the problem to report.
        return Err(fc.problem.clone().unwrap_or_else(|| {
            problem("the first file holds no record to anchor to a checkpoint".into())
        }));
    };
    let checkpoints = expect.get(&before).map(Vec::as_slice).unwrap_or_default();
    if let Some(e) = checkpoints.iter().find(|e| e.hash != *prev) {
        return Err(problem(format!(
            "the first record's prev differs from the hash {} line {} checkpointed for seq {before}: the log's start was replaced",
            e.file, e.line
        )));
    }
    let (Some(e), Some(hash)) = (checkpoints.first(), chain::from_hex32(prev.as_bytes())) else {
        return Err(problem(format!(
            "records 1..{before} are not here and no checkpoint of seq {before} vouches for the first record: archiving cannot be told apart from deleting the start of the log (verify the archive and this directory together instead)"
        )));
    };
    let note = format!(
        "records 1..{before} are archived and were not checked; the log here starts at seq {}, anchored by {} line {} (the checkpoint of seq {before})",
        file.first_seq, e.file, e.line
    );
    Ok((Head { seq: before, hash }, note))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sniff() {
        assert_eq!(sniff_seq(br#"{"seq":123,"ts""#), Some(123));
        assert_eq!(sniff_seq(br#"{"ts":1}"#), None);
    }
}
