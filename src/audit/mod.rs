//! The audit log: every call leaves a durable, tamper-evident record before any data leaves.
//!
//! The gateway calls [`AuditLog::append`] and releases data only once it resolves; operators
//! read the files with `popgate audit …`, `grep` and `jq`. This module owns the files under
//! `[audit].dir`; it knows nothing of gRPC (the gateway maps [`AuditError::is_unavailable`] to
//! `UNAVAILABLE`) and never sees personal data other than a citizen id: [`AuditEvent`] has no
//! slot for any.
//!
//! Modules: [`record`] (the event and its one-line encoding), [`chain`] (hashes and hex),
//! [`writer`] (the appender: group commit, rolling, failing closed), `syncer` (`batch` mode's
//! syncs, off the writer's thread), `recovery` (cutting a torn tail at open), [`checkpoint`]
//! (signed chain heads), [`signing_key`] (making the checkpoint key's files), [`verify`]
//! (checking a whole log), [`query`] (selecting, paging and counting records: the engine behind
//! `audit query|report|stats`), [`scan`] (file names and fast line reading). For a cluster:
//! [`database`] (the writer into `audit_log`), [`db_read`] (reading it back without changing
//! it), [`verify_db`] (checking every node's chain there), [`export`] (a node's records out
//! as the files above, ready to be deleted from the table).
//!
//! # Files
//!
//! `audit-<seq of the first record, 20 digits>.jsonl`, so that `ls` lists them in order, each
//! rolled before a record would take it past `roll_bytes`; and `checkpoints.jsonl`.
//!
//! # Records
//!
//! One JSON object per line, UTF-8, keys in this order (optional ones absent when unset):
//!
//! ```text
//! {"seq":1,"ts":"2026-11-24T05:12:33.123456Z","client":"viettel","cert_sha256":"<hex>",
//!  "peer":"10.0.0.7:50312","method":"Verify","citizen_id":"001203004567",
//!  "fields":["full_name","date_of_birth"],"purpose":"subscriber-verification",
//!  "request_id":"tx-81","outcome":"ok","reused":false,"latency_us":412,
//!  "count":17,"reason":"…","prev":"<64 hex>","hash":"<64 hex>"}
//! ```
//! (shown wrapped; on disk it is one line ending in `\n`). `seq` is 1, 2, 3 … with no gap
//! across files. `ts` is UTC with exactly six fraction digits and never decreases along `seq`.
//! `outcome` is one of `ok`, `denied`, `invalid`, `not_found`, `rate_limited`, `error`.
//! Strings are escaped so that a record is always one line and free of control characters:
//! `\"`, `\\`, `\n`, `\r`, `\t`, and `\u00XX` for the other characters below U+0020, for DEL and
//! for U+0080–U+009F.
//!
//! # The hash chain
//!
//! Every line ends in `,"hash":"<64 lowercase hex>"}` followed by `\n`. **`hash` is the SHA-256
//! of the line's bytes from its first byte (`{`) up to, not including, that `,"hash":"`**: that
//! is, all of the record, `prev` included, except the hash itself. `prev` is the `hash` of the
//! record with the previous `seq` (for `seq` 1: 64 zeros), so the chain runs on across files.
//! To recheck a line outside popgate: strip the newline, cut the last 75 bytes
//! (`,"hash":"` + 64 hex + `"}`), SHA-256 what is left, compare with the hex in the cut part,
//! and compare `prev` with the previous line's `hash`. In Python, for a line read in binary
//! with its newline: `hashlib.sha256(line[:-76]).hexdigest().encode() == line[-67:-3]`.
//!
//! # Checkpoints
//!
//! `checkpoints.jsonl` gets `{"seq":N,"hash":"<hex>","ts":"<ts>","sig":"<128 hex>"}` every
//! `checkpoint_every` records or `checkpoint_secs` seconds with new records, for the last
//! record of each file when the next one is started, and at shutdown, each written and fsynced
//! only after the log is fsynced up to `seq`. **`sig` is the Ed25519
//! signature, by the gateway's audit key, of the ASCII bytes
//! `popgate-audit-checkpoint-v1 seq=<seq in decimal> hash=<hash> ts=<ts>`** (single spaces, no
//! newline), see [`checkpoint::signed_message`]. Without a signing key `sig` is absent. A
//! checkpoint names a record that must exist with that hash: cutting records off the end of
//! the log past a checkpoint is detected, and with the public key, so is forging a checkpoint.
//! A copy of `checkpoints.jsonl` kept elsewhere (a witness) catches someone who rewrote both.
//!
//! `popgate audit verify` checks signatures only when given the public key (`--pubkey`, the
//! 64 hex digits of `certs/audit.pub`; after the key was rotated, every key since the log
//! began, oldest first, and a checkpoint signed by an older key than an earlier checkpoint
//! fails): a key found next to the log would prove nothing, since whoever rewrote the log
//! could have replaced it too. Without `--pubkey` it still holds the chain to every
//! checkpoint, and says that signatures were not checked.
//!
//! # Archiving
//!
//! The oldest files may be moved away (at ~570 bytes a record, a busy gateway fills a 64 MiB
//! file every few seconds). The writer never needs them, and since each file's last record is
//! checkpointed when the next file starts, `popgate audit verify --archived` checks what is
//! left: the first file left must continue the chain from a checkpoint of the record before
//! it. Keep `checkpoints.jsonl` whole; archive files only from the oldest end.
//!
//! # Recovery and failure
//!
//! At open, a torn tail of the last file (an unterminated line, or bytes that are not a record
//! with a valid hash) is cut and the chain continues; a complete record that does not continue
//! the chain is never cut: open fails instead (see `recovery`). While writing or syncing
//! fails, appends fail with [`AuditError::Unavailable`] and [`AuditLog::health`] is false;
//! failed bytes are cut back off, so no partial line is left in the middle of a file.

pub mod chain;
pub mod checkpoint;
pub mod database;
pub mod db_read;
pub mod export;
pub mod query;
pub mod record;
pub(crate) mod recovery;
pub mod scan;
pub mod signing_key;
mod syncer;
pub mod verify;
pub mod verify_db;
pub mod writer;

pub use record::{AuditEvent, Outcome};
pub use writer::{AuditLog, AuditOptions, AuditStats, Durability, SyncObserver};

use async_trait::async_trait;
use thiserror::Error;
use tokio::sync::watch;

/// Where the gateway's audit records go: the file log ([`AuditLog`]) today. The gateway sees
/// only this, so another sink (a database) changes nothing in the request pipeline.
#[async_trait]
pub trait AuditSink: Send + Sync {
    /// Appends one record and resolves with its `seq` once it is durable (in `sync`
    /// durability). An error means nothing was acknowledged and no data may be released.
    async fn append(&self, ev: AuditEvent) -> Result<u64, AuditError>;

    /// `true` while records can be written; `false` means every call is refused.
    fn health(&self) -> watch::Receiver<bool>;

    /// Counters since start-up, for metrics.
    fn stats(&self) -> AuditStats;

    /// Takes no more records, makes those taken durable and closes.
    async fn shutdown(&self) -> Result<(), AuditError>;
}

/// What can go wrong with the audit log, by whose fault.
#[derive(Debug, Clone, Error)]
pub enum AuditError {
    /// Writing or syncing failed (disk full, I/O error, permissions): the record was not
    /// acknowledged and no data may be released. The gateway answers `UNAVAILABLE` and reports
    /// `NOT_SERVING` until [`AuditLog::health`] is true again.
    #[error("audit log unavailable: {0}")]
    Unavailable(String),
    /// The log is shutting down; also `UNAVAILABLE` for callers.
    #[error("audit log is shut down")]
    Closed,
    /// At open: the directory or its files cannot be created, read or opened for writing.
    #[error("cannot open the audit log in {dir}: {reason}")]
    Open { dir: String, reason: String },
    /// At open: the log is damaged in a way a crash does not explain (a complete record out of
    /// chain, a checkpoint past the end). Not repaired automatically: an operator must look.
    #[error("audit log in {dir} is damaged: {reason}; run `popgate audit verify --dir {dir}`")]
    Corrupt { dir: String, reason: String },
    /// At open: the checkpoint signing key cannot be read or is not an Ed25519 PKCS#8 key.
    #[error("audit signing key {path}: {reason}")]
    SigningKey { path: String, reason: String },
}

impl AuditError {
    /// Whether calls must fail with `UNAVAILABLE` (the log cannot take records now), as
    /// opposed to a start-up problem an operator must fix.
    pub fn is_unavailable(&self) -> bool {
        matches!(self, AuditError::Unavailable(_) | AuditError::Closed)
    }
}
