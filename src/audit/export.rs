//! `popgate audit export`: each node's records in the database written out as the file log
//! writes them, so that an archive leaves the database in the format auditors already verify
//! (`popgate audit verify --dir OUT/<node>`), and the exported rows can then be deleted.
//!
//! # What is exported
//!
//! For each node, the records from its first row up to a **checkpoint**, never beyond:
//!
//! - without `until`, up to the node's last checkpoint;
//! - with `until` T, up to its last checkpoint whose record's `ts` is before T (exclusive, as
//!   `--until` of `audit query`): every record exported is older than T, and the records
//!   before T after that checkpoint stay (at most `checkpoint_every` records or
//!   `checkpoint_secs` of them).
//!
//! Ending at a checkpoint is what makes both halves checkable. The archive ends at a record
//! that its own `checkpoints.jsonl` names, so an archive cut short is detected; and what stays
//! in the table starts right after that checkpoint, which anchors it: once the operator has
//! run the printed `DELETE … seq <= N` (keeping the checkpoint of seq N), `audit verify --db`
//! still passes, and deleting one row more makes it fail. Records after the last checkpoint
//! are not exported: deleting them would leave nothing to prove the chain was not cut.
//!
//! # Files
//!
//! `OUT/<node>/audit-<first seq, 20 digits>.jsonl`, rolled before a record would take a file
//! past `roll_bytes` (as the writer rolls), each line a row's `record` exactly; and
//! `OUT/<node>/checkpoints.jsonl` with the node's checkpoints from the one just before its
//! first record (the anchor, when the export starts above seq 1: verify that directory with
//! `--archived`) up to the last exported record. A node is written to a hidden directory
//! beside its final name, synced, and renamed into place only once its whole range checked
//! out (the same checks as `audit verify --db`): a broken chain is never archived, and a
//! crash leaves no half directory under the node's name.
//!
//! Everything is read in one `REPEATABLE READ READ ONLY` transaction: one consistent snapshot
//! of every node, while the gateways go on writing.

use std::fs::{self, File};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

use thiserror::Error;
use tokio_postgres::Client;

use super::checkpoint::CHECKPOINT_FILE;
use super::db_read::{self, DbReadError, read_error};
use super::query::Bound;
use super::scan;
use super::verify_db::{DbProblem, Item, NodeChain, walk};

/// The file log's default roll size (`[audit] roll_bytes`).
pub const DEFAULT_ROLL_BYTES: u64 = 64 * 1024 * 1024;

/// What to export, and where.
#[derive(Debug, Clone)]
pub struct ExportOptions {
    pub out: PathBuf,
    pub until: Option<Bound>,
    pub roll_bytes: u64,
}

/// One node's export.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeExport {
    pub node: String,
    pub dir: PathBuf,
    pub first: u64,
    /// The last record exported, which a checkpoint names: keep that checkpoint.
    pub last: u64,
    pub records: u64,
    pub files: u64,
    pub checkpoints: u64,
}

/// What became of one node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NodeOutcome {
    Exported(NodeExport),
    /// Nothing to export, and why.
    Nothing {
        node: String,
        why: String,
    },
}

/// What can go wrong, by whose fault.
#[derive(Debug, Error)]
pub enum ExportError {
    #[error(transparent)]
    Read(#[from] DbReadError),
    /// The caller's: exporting would overwrite files.
    #[error("{}: not empty; export into a new directory (an export never overwrites one)", dir.display())]
    NotEmpty { dir: PathBuf },
    /// The data's: a node name that cannot be a directory name.
    #[error(
        "node {node:?} in audit_log is not a node id (1-32 of a-z 0-9 -): cannot name a directory after it"
    )]
    BadNode { node: String },
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// The data's: a node's chain is broken within the range to export; nothing of that node
    /// was written. `audit verify --db` says the same.
    #[error("NOT INTACT: {0}")]
    Broken(DbProblem),
}

fn io_error(path: &Path) -> impl FnOnce(io::Error) -> ExportError + '_ {
    move |source| ExportError::Io {
        path: path.to_owned(),
        source,
    }
}

/// Exports every node; see the module documentation. Nodes are done in name order; a node
/// exported before an error stays exported (and complete).
pub async fn export(
    client: &mut Client,
    opts: &ExportOptions,
) -> Result<Vec<NodeOutcome>, ExportError> {
    let tx = db_read::snapshot(client).await?;
    let nodes = db_read::nodes(&tx).await?;
    // Refuse before writing anything.
    for node in &nodes {
        if !crate::config::valid_node_id(node) {
            return Err(ExportError::BadNode { node: node.clone() });
        }
        let dir = opts.out.join(node);
        if fs::read_dir(&dir).is_ok_and(|mut d| d.next().is_some()) {
            return Err(ExportError::NotEmpty { dir });
        }
    }
    fs::create_dir_all(&opts.out).map_err(io_error(&opts.out))?;
    let until = opts.until.as_ref().map(Bound::to_string);
    let mut done = Vec::new();
    for node in nodes {
        let first: Option<i64> = tx
            .query_one("SELECT min(seq) FROM audit_log WHERE node = $1", &[&node])
            .await
            .map_err(read_error)?
            .get(0);
        let Some(first) = first else {
            done.push(NodeOutcome::Nothing {
                node,
                why: "no records in the table".into(),
            });
            continue;
        };
        let row = match &until {
            None => {
                tx.query_one(
                    "SELECT max(seq) FROM audit_checkpoints WHERE node = $1 AND seq >= $2",
                    &[&node, &first],
                )
                .await
            }
            Some(t) => {
                tx.query_one(
                    "SELECT max(c.seq) FROM audit_checkpoints c
                     JOIN audit_log l ON l.node = c.node AND l.seq = c.seq
                     WHERE c.node = $1 AND c.seq >= $2 AND l.ts < $3::text::timestamptz",
                    &[&node, &first, t],
                )
                .await
            }
        };
        let last: Option<i64> = row.map_err(read_error)?.get(0);
        let Some(last) = last else {
            let why = match &until {
                None => format!("no checkpoint names a record from seq {first} on yet"),
                Some(t) => {
                    format!("no checkpoint names a record from seq {first} on with ts before {t}")
                }
            };
            done.push(NodeOutcome::Nothing { node, why });
            continue;
        };
        done.push(NodeOutcome::Exported(
            export_node(&tx, &node, first, last, opts).await?,
        ));
    }
    tx.commit().await.map_err(read_error)?;
    Ok(done)
}

async fn export_node(
    tx: &tokio_postgres::Transaction<'_>,
    node: &str,
    first: i64,
    last: i64,
    opts: &ExportOptions,
) -> Result<NodeExport, ExportError> {
    let dir = opts.out.join(node);
    let partial = opts.out.join(format!(".{node}.partial-export"));
    // Our own leftover from an export that crashed: its name says so.
    if partial.exists() {
        fs::remove_dir_all(&partial).map_err(io_error(&partial))?;
    }
    fs::create_dir(&partial).map_err(io_error(&partial))?;
    let mut files = Files::new(&partial, opts.roll_bytes);
    let mut chain = NodeChain::new(node.to_owned(), &[]);
    let written = walk(tx, &mut chain, first - 1, last, |item| match item {
        Item::Record { seq, line } => files.record(seq, line),
        Item::Checkpoint { line } => files.checkpoint(line),
    })
    .await;
    let report = chain.finish();
    let result = written.and_then(|()| match report.problem {
        Some(p) => Err(ExportError::Broken(p)),
        None => files.finish(),
    });
    if let Err(e) = result {
        let _ = fs::remove_dir_all(&partial);
        return Err(e);
    }
    fs::rename(&partial, &dir).map_err(io_error(&dir))?;
    sync_dir(&opts.out)?;
    Ok(NodeExport {
        node: node.to_owned(),
        dir,
        first: first as u64,
        last: last as u64,
        records: report.records,
        files: files.count,
        checkpoints: report.checkpoints,
    })
}

/// The files of one node's export, rolled as the writer rolls them.
struct Files<'a> {
    dir: &'a Path,
    roll_bytes: u64,
    current: Option<(BufWriter<File>, PathBuf)>,
    len: u64,
    count: u64,
    checkpoints: Option<BufWriter<File>>,
}

impl<'a> Files<'a> {
    fn new(dir: &'a Path, roll_bytes: u64) -> Self {
        Files {
            dir,
            roll_bytes,
            current: None,
            len: 0,
            count: 0,
            checkpoints: None,
        }
    }

    fn record(&mut self, seq: u64, line: &str) -> Result<(), ExportError> {
        let n = line.len() as u64 + 1;
        if self.current.is_none() || (self.len > 0 && self.len + n > self.roll_bytes) {
            self.close()?;
            let path = self.dir.join(scan::file_name(seq));
            let f = File::create_new(&path).map_err(io_error(&path))?;
            self.current = Some((BufWriter::with_capacity(1 << 20, f), path));
            self.len = 0;
            self.count += 1;
        }
        if let Some((f, path)) = &mut self.current {
            f.write_all(line.as_bytes())
                .and_then(|()| f.write_all(b"\n"))
                .map_err(io_error(path))?;
        }
        self.len += n;
        Ok(())
    }

    fn checkpoint(&mut self, line: &str) -> Result<(), ExportError> {
        let path = self.dir.join(CHECKPOINT_FILE);
        if self.checkpoints.is_none() {
            let f = File::create_new(&path).map_err(io_error(&path))?;
            self.checkpoints = Some(BufWriter::new(f));
        }
        if let Some(f) = &mut self.checkpoints {
            f.write_all(line.as_bytes())
                .and_then(|()| f.write_all(b"\n"))
                .map_err(io_error(&path))?;
        }
        Ok(())
    }

    /// Flushes and syncs the open log file: the operator deletes the rows once told they are
    /// exported, so they must be on disk by then.
    fn close(&mut self) -> Result<(), ExportError> {
        if let Some((f, path)) = self.current.take() {
            let f = f
                .into_inner()
                .map_err(|e| io_error(&path)(e.into_error()))?;
            f.sync_all().map_err(io_error(&path))?;
        }
        Ok(())
    }

    fn finish(&mut self) -> Result<(), ExportError> {
        self.close()?;
        if let Some(f) = self.checkpoints.take() {
            let path = self.dir.join(CHECKPOINT_FILE);
            let f = f
                .into_inner()
                .map_err(|e| io_error(&path)(e.into_error()))?;
            f.sync_all().map_err(io_error(&path))?;
        }
        sync_dir(self.dir)
    }
}

fn sync_dir(dir: &Path) -> Result<(), ExportError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io_error(dir))
}
