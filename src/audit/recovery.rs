//! Recovery at open: find where the chain ends on disk, cut a torn tail left by a crash, and
//! hand the writer the head to continue from.
//!
//! Only the last log file is scanned (from its start, so the cut is made at the *first* line
//! that does not continue the chain, never after it) plus the last line of the file before
//! it. Recovery cuts only what cannot have been acknowledged: an unterminated last line, or
//! lines that do not carry a valid hash. A complete, self-consistent record is never cut or
//! rewritten: if one sits past the break, the log was tampered with or damaged in a way a
//! crash does not explain, and opening fails so that an operator looks
//! (`popgate audit verify`).

use std::fs::{self, File, OpenOptions};
use std::path::{Path, PathBuf};

use super::AuditError;
use super::chain::{self, Head};
use super::checkpoint::{self, CHECKPOINT_FILE, Checkpoint};
use super::record::{Record, parse_ts_us};
use super::scan::{self, LineReader};

/// Where the writer continues.
#[derive(Debug)]
pub(crate) struct Recovered {
    pub head: Head,
    /// The `ts` of the head record, in µs (0 for an empty log): new records never go back.
    pub head_ts_us: u64,
    /// The file to append to and its length after recovery; `None` for an empty directory
    /// (the first record creates `audit-…1.jsonl`).
    pub current: Option<(PathBuf, u64)>,
    /// The newest checkpoint, if any, and the length of the checkpoint file after recovery.
    pub last_checkpoint: Option<Checkpoint>,
    pub checkpoint_len: u64,
}

/// The highest file name recovery accepts: 2^53, the last integer `jq` (which operators read the
/// log with) holds exactly, and 285 years of records at a million a second. A log that claims
/// more was not written by popgate.
const MAX_SEQ: u64 = 1 << 53;

fn corrupt(dir: &Path, reason: String) -> AuditError {
    AuditError::Corrupt {
        dir: dir.display().to_string(),
        reason,
    }
}

fn io_err(dir: &Path, what: &str, e: std::io::Error) -> AuditError {
    AuditError::Open {
        dir: dir.display().to_string(),
        reason: format!("{what}: {e}"),
    }
}

/// Cuts `path` to `len` bytes and makes the cut durable.
fn truncate(path: &Path, len: u64) -> std::io::Result<()> {
    let f = OpenOptions::new().write(true).open(path)?;
    f.set_len(len)?;
    f.sync_all()
}

pub(crate) fn recover(dir: &Path) -> Result<Recovered, AuditError> {
    if !dir.is_dir() {
        fs::create_dir_all(dir).map_err(|e| io_err(dir, "cannot create the directory", e))?;
        // A new directory's own entry must survive a crash too, or with it every record.
        if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
            File::open(parent)
                .and_then(|f| f.sync_all())
                .map_err(|e| io_err(dir, "cannot sync the parent directory", e))?;
        }
    }
    let (last_checkpoint, checkpoint_len) = recover_checkpoints(dir)?;
    let files = scan::list_files(dir).map_err(|e| io_err(dir, "cannot list the directory", e))?;
    let Some(last) = files.last() else {
        if let Some(cp) = &last_checkpoint {
            return Err(corrupt(
                dir,
                format!(
                    "{CHECKPOINT_FILE} covers records up to seq {} but there are no log files",
                    cp.seq
                ),
            ));
        }
        return Ok(Recovered {
            head: Head::EMPTY,
            head_ts_us: 0,
            current: None,
            last_checkpoint,
            checkpoint_len,
        });
    };

    // popgate names a file for the seq of its first record and seq starts at 1: a file named
    // for seq 0 is not one of its files, and would put the head before it at seq -1.
    if let Some(f) = files.iter().find(|f| f.first_seq == 0) {
        return Err(corrupt(
            dir,
            format!("{} is named for seq 0, but seq starts at 1", f.name()),
        ));
    }
    // Nor does it get anywhere near the end of u64 (see MAX_SEQ): a name up there would leave
    // the writer no room to count.
    if let Some(f) = files.iter().find(|f| f.first_seq > MAX_SEQ) {
        return Err(corrupt(
            dir,
            format!(
                "{} is named for seq {}, beyond any log popgate writes (at most {MAX_SEQ})",
                f.name(),
                f.first_seq
            ),
        ));
    }

    // The head before the last file: the last record of the file before it.
    let mut base: Option<(Head, u64)> = None;
    if files.len() >= 2 {
        let prev = &files[files.len() - 2];
        let mut f = File::open(&prev.path).map_err(|e| io_err(dir, &prev.name(), e))?;
        let len = f
            .metadata()
            .map_err(|e| io_err(dir, &prev.name(), e))?
            .len();
        let line = scan::last_complete_line(&mut f, len)
            .map_err(|e| io_err(dir, &prev.name(), e))?
            .map(|(l, _)| l)
            .ok_or_else(|| corrupt(dir, format!("{} holds no complete record", prev.name())))?;
        let hash = chain::verify_line(&line).ok_or_else(|| {
            corrupt(
                dir,
                format!("the last record of {} does not match its hash", prev.name()),
            )
        })?;
        let rec = Record::parse(&line).map_err(|e| {
            corrupt(
                dir,
                format!("the last record of {} is not valid: {e}", prev.name()),
            )
        })?;
        base = Some((
            Head { seq: rec.seq, hash },
            parse_ts_us(&rec.ts).unwrap_or(0),
        ));
    } else if last.first_seq == 1 {
        base = Some((Head::EMPTY, 0));
    }
    // Otherwise older files were moved away: the first line's `prev` is taken on trust.

    let name = last.name();
    let mut reader = LineReader::open(&last.path).map_err(|e| io_err(dir, &name, e))?;
    let file_len = fs::metadata(&last.path)
        .map_err(|e| io_err(dir, &name, e))?
        .len();
    let mut head_ts_us = base.map(|b| b.1).unwrap_or(0);
    let mut head = base.map(|b| b.0);
    if let Some(h) = head
        && h.seq.checked_add(1) != Some(last.first_seq)
    {
        return Err(corrupt(
            dir,
            format!(
                "{name} is named for seq {} but the log before it ends at seq {}",
                last.first_seq, h.seq
            ),
        ));
    }
    let mut good_len = 0u64;
    // The hash of the record the newest checkpoint names, if that record is in this file.
    let mut checkpoint_seen: Option<[u8; 32]> = None;
    let mut break_reason = None;
    while let Some(line) = reader.next_line().map_err(|e| io_err(dir, &name, e))? {
        if !line.complete {
            break_reason = Some(format!("line {} has no newline", line.number));
            break;
        }
        let Some(hash) = chain::verify_line(line.bytes) else {
            break_reason = Some(format!("line {} does not carry a valid hash", line.number));
            break;
        };
        // From here the line is complete and its hash checks out: whatever is wrong with it
        // is not a torn write, so it is reported, never cut.
        let rec = Record::parse(line.bytes).map_err(|e| {
            corrupt(
                dir,
                format!(
                    "{name}: line {} is hashed but not a valid record: {e}",
                    line.number
                ),
            )
        })?;
        let expected = match head {
            Some(h) => h,
            // The first line of a log whose earlier files were moved away.
            None => Head {
                seq: last.first_seq - 1,
                hash: chain::from_hex32(rec.prev.as_bytes()).unwrap_or(chain::GENESIS),
            },
        };
        if rec.seq != expected.seq + 1
            || rec.prev.as_bytes() != chain::to_hex(&expected.hash).as_bytes()
        {
            return Err(corrupt(
                dir,
                format!(
                    "{name}: line {} (seq {}) does not continue the chain after seq {}",
                    line.number, rec.seq, expected.seq
                ),
            ));
        }
        head = Some(Head { seq: rec.seq, hash });
        head_ts_us = parse_ts_us(&rec.ts).unwrap_or(head_ts_us);
        if last_checkpoint.as_ref().is_some_and(|c| c.seq == rec.seq) {
            checkpoint_seen = Some(hash);
        }
        good_len = line.offset + line.bytes.len() as u64 + 1;
    }

    if good_len < file_len {
        // Everything past `good_len` is cut, unless it holds a complete record that checks
        // out on its own: that would be evidence, not a torn write.
        while let Some(line) = reader.next_line().map_err(|e| io_err(dir, &name, e))? {
            if line.complete && chain::verify_line(line.bytes).is_some() {
                return Err(corrupt(
                    dir,
                    format!(
                        "{name}: {}, yet line {} after it is a complete record; refusing to cut it off",
                        break_reason.unwrap_or_default(),
                        line.number
                    ),
                ));
            }
        }
        truncate(&last.path, good_len)
            .map_err(|e| io_err(dir, &format!("cannot cut the torn tail of {name}"), e))?;
        tracing::warn!(
            file = %name,
            bytes = file_len - good_len,
            reason = break_reason.as_deref().unwrap_or(""),
            "cut a torn tail off the audit log (records never acknowledged)"
        );
    }

    let head = match head {
        Some(h) => h,
        // An empty last file whose predecessors were moved away: it starts the chain anew.
        None => Head {
            seq: last.first_seq - 1,
            hash: chain::GENESIS,
        },
    };
    if let Some(cp) = &last_checkpoint {
        if cp.seq > head.seq {
            return Err(corrupt(
                dir,
                format!(
                    "the log ends at seq {} but a checkpoint covers seq {}: records were removed",
                    head.seq, cp.seq
                ),
            ));
        }
        let base_hit = base
            .is_some_and(|b| b.0.seq == cp.seq)
            .then(|| base.map(|b| b.0.hash))
            .flatten();
        if let Some(h) = checkpoint_seen.or(base_hit)
            && chain::to_hex(&h) != cp.hash
        {
            return Err(corrupt(
                dir,
                format!("record seq {} does not match the checkpoint's hash", cp.seq),
            ));
        }
    }
    Ok(Recovered {
        head,
        head_ts_us,
        current: Some((last.path.clone(), good_len)),
        last_checkpoint,
        checkpoint_len,
    })
}

/// Cuts a torn last line off the checkpoint file and returns the newest checkpoint.
fn recover_checkpoints(dir: &Path) -> Result<(Option<Checkpoint>, u64), AuditError> {
    let path = dir.join(CHECKPOINT_FILE);
    let cf = checkpoint::read_file(&path).map_err(|e| io_err(dir, CHECKPOINT_FILE, e))?;
    if cf.torn_bytes > 0 {
        truncate(&path, cf.good_len).map_err(|e| {
            io_err(
                dir,
                &format!("cannot cut the torn tail of {CHECKPOINT_FILE}"),
                e,
            )
        })?;
        tracing::warn!(
            file = CHECKPOINT_FILE,
            bytes = cf.torn_bytes,
            "cut a torn tail off the checkpoint file"
        );
    }
    let last = cf.lines.into_iter().rev().find_map(|l| l.parsed.ok());
    Ok((last, cf.good_len))
}
