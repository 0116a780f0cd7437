//! `popgate audit export --db URL --out DIR [--until T]`: the command line of
//! [`crate::audit::export`] — its flags, and what the operator is told per node: the range
//! written, how to verify it, and the exact SQL that removes it from the table afterwards
//! (with the checkpoint row that must stay, since it anchors what is left).

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{anyhow, bail};
use clap::Args;

use super::audit::{block_on, db_error, db_url};
use crate::audit::db_read::{self, sql_literal};
use crate::audit::export::{self, DEFAULT_ROLL_BYTES, ExportError, ExportOptions, NodeOutcome};
use crate::audit::query::Bound;

#[derive(Args, Debug)]
pub struct ExportArgs {
    /// The database of `[audit] backend = "postgres"` (`[store].url`).
    #[arg(long, value_name = "URL")]
    pub db: String,
    /// Where to write: one directory per node, `DIR/<node>`, which must be absent or empty.
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// Export only records before this time (RFC 3339, or a UTC date), up to the last
    /// checkpoint before it. Without it, each node up to its last checkpoint.
    #[arg(long, value_name = "T")]
    pub until: Option<String>,
    /// Start a new file before one would grow past this many bytes (as `[audit] roll_bytes`).
    #[arg(long, value_name = "BYTES", default_value_t = DEFAULT_ROLL_BYTES)]
    pub roll_bytes: u64,
}

pub fn run(a: ExportArgs, out: &mut impl Write) -> anyhow::Result<ExitCode> {
    let url = db_url(&a.db)?;
    let until = a
        .until
        .as_deref()
        .map(|t| Bound::parse(t).map_err(|e| anyhow!("--until {e}")))
        .transpose()?;
    if a.roll_bytes < 4096 {
        bail!("--roll-bytes {}: must be at least 4096", a.roll_bytes);
    }
    let opts = ExportOptions {
        out: a.out.clone(),
        until,
        roll_bytes: a.roll_bytes,
    };
    let done = block_on(async {
        let mut client = db_read::connect(&url).await?;
        export::export(&mut client, &opts).await
    })?;
    let done = match done {
        Ok(d) => d,
        Err(ExportError::Read(e)) => return Err(db_error(&url, e)),
        Err(ExportError::NotEmpty { dir }) => bail!(
            "--out: {} is not empty; export into a new directory (an export never overwrites one)",
            dir.display()
        ),
        Err(e @ ExportError::Broken(_)) => {
            eprintln!(
                "popgate: {e}; nothing of that node was exported (run `popgate audit verify --db`)"
            );
            return Ok(ExitCode::from(1));
        }
        Err(e) => return Err(e.into()),
    };
    for d in &done {
        match d {
            NodeOutcome::Nothing { node, why } => {
                writeln!(out, "{node}: nothing exported: {why}")?;
            }
            NodeOutcome::Exported(e) => {
                let archived = if e.first > 1 { " --archived" } else { "" };
                let node = sql_literal(&e.node);
                writeln!(
                    out,
                    "{}: exported seq {}..={} ({} record(s), {} file(s), {} checkpoint(s)) to {}",
                    e.node,
                    e.first,
                    e.last,
                    e.records,
                    e.files,
                    e.checkpoints,
                    e.dir.display()
                )?;
                writeln!(
                    out,
                    "  verify:  popgate audit verify --dir {}{archived} [--pubkey FILE]",
                    e.dir.display()
                )?;
                writeln!(
                    out,
                    "  then remove from the database:  DELETE FROM audit_log WHERE node = {node} AND seq <= {};",
                    e.last
                )?;
                writeln!(
                    out,
                    "  keep the checkpoint row (node {node}, seq {}): it anchors the records left; older checkpoints may go:  DELETE FROM audit_checkpoints WHERE node = {node} AND seq < {};",
                    e.last, e.last
                )?;
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
