//! Which audit log the console reads — the one the gateway writes, files or database — and
//! its verification, turned into one summary whichever it is, so that no page asks.

use std::path::PathBuf;

use crate::audit::chain::to_hex;
use crate::audit::checkpoint::PublicKey;
use crate::audit::query::{DbLog, FileLog, Log, QueryError};
use crate::audit::verify::{VerifyOptions, verify};
use crate::audit::{db_read, verify_db};
use crate::config::{AuditBackend, Config};
use crate::pg::DbUrl;

/// Where the log is. Opened again for each page: a long-lived database connection would not
/// follow a failover, and a file log lists its files again anyway.
#[derive(Debug, Clone)]
pub enum LogAt {
    Files(PathBuf),
    Db(Box<DbUrl>),
}

/// What a run of the check found, for either backend.
#[derive(Debug, Clone, PartialEq)]
pub struct Integrity {
    pub intact: bool,
    /// Records checked (before the first problem, if any).
    pub records: u64,
    /// The last position that checked out: seq and hash, one per chain (per node in a
    /// cluster, named).
    pub heads: Vec<(String, u64, String)>,
    pub checkpoints: u64,
    pub signatures_checked: bool,
    /// The first problem first, as `audit verify` prints them.
    pub problems: Vec<String>,
    pub notes: Vec<String>,
}

impl LogAt {
    pub fn from_config(config: &Config) -> Result<LogAt, String> {
        match config.audit.backend {
            AuditBackend::File => Ok(LogAt::Files(config.audit.dir.clone())),
            AuditBackend::Postgres => {
                let url = config.store.url.as_deref().unwrap_or_default();
                DbUrl::parse(url)
                    .map(|u| LogAt::Db(Box::new(u)))
                    .map_err(|e| format!("store.url: {e}"))
            }
        }
    }

    /// Opens the log for one page's reading (blocking).
    pub fn open(&self) -> Result<Log, QueryError> {
        match self {
            LogAt::Files(dir) => FileLog::open(dir.clone()).map(Log::Files),
            LogAt::Db(url) => DbLog::open(url).map(|l| Log::Db(Box::new(l))),
        }
    }

    /// The same check as `popgate audit verify --dir` (or `--db`) with `--pubkey` for each
    /// of `pubkeys` (blocking). `Err` when the check could not run at all.
    pub fn verify(&self, pubkeys: &[PublicKey]) -> Result<Integrity, String> {
        match self {
            LogAt::Files(dir) => {
                let rep = verify(&VerifyOptions {
                    dir: dir.clone(),
                    witness: None,
                    pubkeys: pubkeys.to_vec(),
                    archived: false,
                })
                .map_err(|e| format!("reading the audit files: {e}"))?;
                // A broken log's report may not say where the good part ends; the record
                // before the first problem is the last one that checked out.
                let head = rep
                    .head
                    .map(|h| (String::new(), h.seq, to_hex(&h.hash)))
                    .or_else(|| {
                        let seq = rep.problems.first()?.seq?.checked_sub(1)?;
                        (seq > 0).then(|| (String::new(), seq, String::new()))
                    });
                Ok(Integrity {
                    intact: rep.intact(),
                    records: rep.records,
                    heads: head.into_iter().collect(),
                    checkpoints: rep.checkpoints as u64,
                    signatures_checked: rep.signatures_checked,
                    problems: rep.problems.iter().map(ToString::to_string).collect(),
                    notes: rep.notes,
                })
            }
            LogAt::Db(url) => {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .map_err(|e| format!("no async runtime: {e}"))?;
                let rep = runtime
                    .block_on(async {
                        let mut client = db_read::connect(url).await?;
                        verify_db::verify(&mut client, pubkeys).await
                    })
                    .map_err(|e| format!("reading the audit log in the database: {e}"))?;
                Ok(Integrity {
                    intact: rep.intact(),
                    records: rep.nodes.iter().map(|n| n.records).sum(),
                    heads: rep
                        .nodes
                        .iter()
                        .filter_map(|n| n.head.map(|h| (n.node.clone(), h.seq, to_hex(&h.hash))))
                        .collect(),
                    checkpoints: rep.nodes.iter().map(|n| n.checkpoints).sum(),
                    signatures_checked: rep.signatures_checked,
                    problems: rep
                        .nodes
                        .iter()
                        .filter_map(|n| n.problem.as_ref().map(ToString::to_string))
                        .collect(),
                    notes: rep
                        .nodes
                        .iter()
                        .flat_map(|n| n.notes.iter().map(|m| format!("node {}: {m}", n.node)))
                        .collect(),
                })
            }
        }
    }

    /// The kind of log, for the integrity page.
    pub fn describe(&self) -> &'static str {
        match self {
            LogAt::Files(_) => "JSON Lines files under [audit] dir",
            LogAt::Db(_) => "the audit_log table of the cluster's database (every node)",
        }
    }
}
