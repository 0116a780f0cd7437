//! Which audit log the console reads — the one the gateway writes, files or database — and
//! its verification, turned into one summary whichever it is, so that no page asks.

use std::path::PathBuf;

use crate::audit::chain::to_hex;
use crate::audit::checkpoint::{self, Checkpoint, PublicKey};
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

/// The newest checkpoint of one chain, as the log holds it (not a verification: the chain up
/// to it is not read).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LatestCheckpoint {
    /// The node, in a cluster's database; empty for a file log.
    pub chain: String,
    pub seq: u64,
    pub ts: String,
    pub signature: Signature,
}

/// What a checkpoint's signature is, by the keys the console was given.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signature {
    /// Verifies with one of `[console] pubkeys`.
    Valid,
    /// Verifies with none of them.
    Invalid,
    /// The checkpoint carries none (no `[audit] signing_key`).
    Unsigned,
    /// Signed, but no keys were given to check it with.
    Unchecked,
}

impl Signature {
    pub fn of(cp: &Checkpoint, pubkeys: &[PublicKey]) -> Signature {
        match (&cp.sig, pubkeys.is_empty()) {
            (None, _) => Signature::Unsigned,
            (Some(_), true) => Signature::Unchecked,
            (Some(_), false) if pubkeys.iter().any(|k| k.verifies(cp)) => Signature::Valid,
            (Some(_), false) => Signature::Invalid,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Signature::Valid => "valid",
            Signature::Invalid => "invalid",
            Signature::Unsigned => "unsigned",
            Signature::Unchecked => "unchecked",
        }
    }
}

impl LogAt {
    /// The newest checkpoint of each chain, with its signature judged (blocking). Cheap: one
    /// file or one indexed query, so the integrity page shows it on every visit.
    pub fn latest_checkpoints(
        &self,
        pubkeys: &[PublicKey],
    ) -> Result<Vec<LatestCheckpoint>, String> {
        let latest = |chain: String, cp: Checkpoint| LatestCheckpoint {
            chain,
            seq: cp.seq,
            ts: cp.ts.clone(),
            signature: Signature::of(&cp, pubkeys),
        };
        match self {
            LogAt::Files(dir) => {
                let file = checkpoint::read_file(&dir.join(checkpoint::CHECKPOINT_FILE))
                    .map_err(|e| format!("reading {}: {e}", checkpoint::CHECKPOINT_FILE))?;
                Ok(file
                    .lines
                    .into_iter()
                    .rev()
                    .find_map(|l| l.parsed.ok())
                    .map(|cp| latest(String::new(), cp))
                    .into_iter()
                    .collect())
            }
            LogAt::Db(url) => {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .map_err(|e| format!("no async runtime: {e}"))?;
                let rows = runtime
                    .block_on(async {
                        let client = db_read::connect(url).await?;
                        client
                            .query(
                                "SELECT DISTINCT ON (node) node, line FROM audit_checkpoints ORDER BY node, seq DESC",
                                &[],
                            )
                            .await
                            .map_err(|e| db_read::DbReadError::Read(e.to_string()))
                    })
                    .map_err(|e| e.to_string())?;
                Ok(rows
                    .iter()
                    .filter_map(|row| {
                        let node: String = row.get(0);
                        let line: String = row.get(1);
                        Checkpoint::parse(line.as_bytes())
                            .ok()
                            .map(|cp| latest(node, cp))
                    })
                    .collect())
            }
        }
    }

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::checkpoint::{Signer, generate_signing_key};

    #[test]
    fn a_checkpoints_signature_is_judged_by_the_keys_given() {
        let (pem, pub_hex) = generate_signing_key().unwrap();
        let (_, other_hex) = generate_signing_key().unwrap();
        let signer = Signer::from_pem(pem.as_bytes()).unwrap();
        let key = PublicKey::from_hex(&pub_hex).unwrap();
        let other = PublicKey::from_hex(&other_hex).unwrap();
        let hash = "ab".repeat(32);
        let ts = "2026-12-02T06:00:00.000000Z";
        let mut cp = Checkpoint {
            seq: 7,
            hash: hash.clone(),
            ts: ts.into(),
            sig: Some(signer.sign(7, &hash, ts)),
        };
        assert_eq!(
            Signature::of(&cp, std::slice::from_ref(&key)),
            Signature::Valid
        );
        assert_eq!(Signature::of(&cp, &[other.clone(), key]), Signature::Valid);
        assert_eq!(Signature::of(&cp, &[other]), Signature::Invalid);
        assert_eq!(Signature::of(&cp, &[]), Signature::Unchecked);
        cp.sig = None;
        assert_eq!(Signature::of(&cp, &[]), Signature::Unsigned);
    }
}
