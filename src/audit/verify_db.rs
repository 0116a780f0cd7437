//! Checking the audit log in the database (`audit verify --db`): every node's chain, as
//! [`verify`](super::verify) checks the files of one log.
//!
//! For each node, in one snapshot, its records (`audit_log`, by seq) and its checkpoints
//! (`audit_checkpoints`) are streamed together in seq order, a checkpoint before the record it
//! names, and fed to a `NodeChain`:
//!
//! - each row's `record` matches its own hash, is a record, and names the row's node and seq
//!   (a record moved to another row is caught here, so a swap of two rows' seqs is);
//! - the index columns `ts` and `citizen_id` agree with the record, since `audit query` and
//!   `audit report` select by them;
//! - seqs run on without a gap and each `prev` is the hash of the record before (edited,
//!   deleted, inserted and reordered rows);
//! - each checkpoint is one, names its row's seq and, with keys, is signed as
//!   [`Signatures`](super::verify) requires; the record it names has its hash; none names a
//!   record past the last one (records cut off the end);
//! - a node whose first row is above seq 1 is accepted only when a checkpoint of exactly the
//!   seq before vouches for that row's `prev`: that is what `popgate audit export` and the
//!   `DELETE` it prints leave behind, and it cannot be told from deleting the start of the
//!   chain otherwise. A node with no row left but checkpoints is everything exported.
//!
//! Each node stops at its first problem; the others are still checked. Reads only.
//! `audit export` walks the same way (`walk`) so that it never archives a broken chain.

use std::fmt;

use tokio_postgres::{Client, Transaction};

use super::chain::{self, GENESIS, Head};
use super::checkpoint::{Checkpoint, PublicKey};
use super::db_read::{self, DbReadError, Rows};
use super::record::{self, Record};
use super::verify::Signatures;

/// The first thing wrong with a node's chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DbProblem {
    pub node: String,
    pub seq: u64,
    /// About the checkpoint of `seq`, not its record.
    pub checkpoint: bool,
    pub what: String,
}

impl fmt::Display for DbProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let what = if self.checkpoint {
            "checkpoint of "
        } else {
            ""
        };
        write!(
            f,
            "node {} {what}seq {}: {}",
            self.node, self.seq, self.what
        )
    }
}

/// What was found for one node.
#[derive(Debug, Clone, Default)]
pub struct NodeReport {
    pub node: String,
    /// Records checked.
    pub records: u64,
    /// The first record's seq.
    pub first: Option<u64>,
    /// The last record that checked out; with no record left, the checkpoint that anchors
    /// the chain.
    pub head: Option<Head>,
    /// When the records before the first were removed: the seq of the checkpoint that
    /// anchors what is left.
    pub anchored_at: Option<u64>,
    /// Checkpoints that checked out.
    pub checkpoints: u64,
    pub notes: Vec<String>,
    pub problem: Option<DbProblem>,
}

/// The outcome of [`verify`].
#[derive(Debug, Clone, Default)]
pub struct DbVerifyReport {
    pub nodes: Vec<NodeReport>,
    pub signatures_checked: bool,
}

impl DbVerifyReport {
    pub fn intact(&self) -> bool {
        self.nodes.iter().all(|n| n.problem.is_none())
    }
}

/// Checks every node's chain in one snapshot. `Err` only when the database cannot be read;
/// everything wrong with its contents is in the report.
pub async fn verify(
    client: &mut Client,
    pubkeys: &[PublicKey],
) -> Result<DbVerifyReport, DbReadError> {
    let tx = db_read::snapshot(client).await?;
    let mut rep = DbVerifyReport {
        nodes: Vec::new(),
        signatures_checked: !pubkeys.is_empty(),
    };
    for node in db_read::nodes(&tx).await? {
        let mut chain = NodeChain::new(node, pubkeys);
        walk(&tx, &mut chain, 0, i64::MAX, |_| Ok::<_, DbReadError>(())).await?;
        rep.nodes.push(chain.finish());
    }
    Ok(rep)
}

/// A row as [`walk`] hands it on once it checked out.
pub(crate) enum Item<'a> {
    Record { seq: u64, line: &'a str },
    Checkpoint { line: &'a str },
}

/// Streams `chain`'s node's checkpoints from seq `cp_from` and its records, both up to seq
/// `upto`, in seq order through `chain`, and hands each row that checked out to `sink`. Stops
/// at the first problem (it is in `chain`).
pub(crate) async fn walk<E: From<DbReadError>>(
    tx: &Transaction<'_>,
    chain: &mut NodeChain<'_>,
    cp_from: i64,
    upto: i64,
    mut sink: impl FnMut(Item<'_>) -> Result<(), E>,
) -> Result<(), E> {
    let node = chain.report.node.clone();
    let mut cps = Rows::open(
        tx,
        "SELECT seq, line FROM audit_checkpoints WHERE node = $1 AND seq >= $2 AND seq <= $3
         ORDER BY seq",
        &[&node, &cp_from, &upto],
    )
    .await?;
    let mut recs = Rows::open(
        tx,
        "SELECT seq, record, (extract(epoch FROM ts) * 1000000)::bigint, citizen_id
         FROM audit_log WHERE node = $1 AND seq <= $2 ORDER BY seq",
        &[&node, &upto],
    )
    .await?;
    while chain.report.problem.is_none() {
        let cp = cps.peek().await?.map(|r| r.get::<_, i64>(0));
        let rec = recs.peek().await?.map(|r| r.get::<_, i64>(0));
        match (cp, rec) {
            (None, None) => break,
            // A checkpoint before the record it names.
            (Some(c), r) if r.is_none_or(|r| c <= r) => {
                let Some(row) = cps.next().await? else { break };
                let line: &str = row.get(1);
                if chain.checkpoint(c, line).is_some() {
                    sink(Item::Checkpoint { line })?;
                }
            }
            _ => {
                let Some(row) = recs.next().await? else { break };
                let line: &str = row.get(1);
                let checked = chain.record(row.get(0), line, row.get(2), row.get(3));
                if let Some(seq) = checked {
                    sink(Item::Record { seq, line })?;
                }
            }
        }
    }
    Ok(())
}

/// A checkpoint that checked out: its seq and hash (hex).
type Vouch = (u64, String);

/// One node's chain as its rows arrive in seq order.
pub(crate) struct NodeChain<'k> {
    report: NodeReport,
    signatures: Signatures<'k>,
    /// Before the first record: the last two checkpoints seen, the one of the seq before the
    /// first record (its anchor) and the one of that record itself.
    before: [Option<Vouch>; 2],
    /// After a record: the next checkpoint, for the record it names.
    pending: Option<Vouch>,
    /// The highest seq a checkpoint names.
    last_checkpoint: u64,
    prev_hex: String,
}

impl<'k> NodeChain<'k> {
    pub(crate) fn new(node: String, pubkeys: &'k [PublicKey]) -> Self {
        NodeChain {
            report: NodeReport {
                node,
                ..NodeReport::default()
            },
            signatures: Signatures::new(pubkeys),
            before: [None, None],
            pending: None,
            last_checkpoint: 0,
            prev_hex: String::new(),
        }
    }

    fn fail(&mut self, seq: u64, checkpoint: bool, what: String) {
        self.report.problem = Some(DbProblem {
            node: self.report.node.clone(),
            seq,
            checkpoint,
            what,
        });
    }

    /// The checkpoint row of `seq`; its seq when it checked out.
    pub(crate) fn checkpoint(&mut self, seq: i64, line: &str) -> Option<u64> {
        let seq = u64::try_from(seq).unwrap_or(0);
        let cp = match Checkpoint::parse(line.as_bytes()) {
            Ok(cp) => cp,
            Err(e) => {
                self.fail(seq, true, e);
                return None;
            }
        };
        if cp.seq != seq {
            self.fail(
                seq,
                true,
                format!(
                    "the row holds the checkpoint of seq {} (moved or forged)",
                    cp.seq
                ),
            );
            return None;
        }
        if let Err(what) = self.signatures.check(&cp) {
            self.fail(seq, true, what);
            return None;
        }
        self.report.checkpoints += 1;
        self.last_checkpoint = seq;
        let vouch = (seq, cp.hash);
        if self.report.head.is_none() {
            self.before = [self.before[1].take(), Some(vouch)];
        } else {
            self.pending = Some(vouch);
        }
        Some(seq)
    }

    /// The record row of `seq` with its index columns; its seq when it checked out.
    pub(crate) fn record(
        &mut self,
        seq: i64,
        line: &str,
        ts_us: Option<i64>,
        citizen_id: Option<&str>,
    ) -> Option<u64> {
        let seq = u64::try_from(seq).unwrap_or(0);
        let Some(hash) = chain::verify_line(line.as_bytes()) else {
            let what = if chain::line_hash_parts(line.as_bytes()).is_some() {
                "the record does not match its hash (edited)"
            } else {
                "the record does not end in a hash (not a record, or edited)"
            };
            self.fail(seq, false, what.into());
            return None;
        };
        let rec = match Record::parse(line.as_bytes()) {
            Ok(r) => r,
            Err(e) => {
                self.fail(seq, false, format!("not a valid record: {e}"));
                return None;
            }
        };
        if rec.seq != seq || rec.node.as_deref() != Some(self.report.node.as_str()) {
            let node = rec.node.as_deref().unwrap_or("(none)");
            self.fail(
                seq,
                false,
                format!(
                    "the row holds the record of node {node} seq {} (moved, reordered or forged)",
                    rec.seq
                ),
            );
            return None;
        }
        if ts_us.and_then(|t| u64::try_from(t).ok()) != record::parse_ts_us(&rec.ts) {
            self.fail(
                seq,
                false,
                format!(
                    "the row's ts column differs from its record's ts {} (edited)",
                    rec.ts
                ),
            );
            return None;
        }
        if citizen_id != rec.citizen_id.as_deref() {
            self.fail(
                seq,
                false,
                "the row's citizen_id column differs from its record's (edited)".into(),
            );
            return None;
        }
        match self.report.head {
            None => {
                let [anchor, at] = std::mem::take(&mut self.before);
                let (anchor, at) = match at {
                    Some(v) if v.0 == seq => (anchor, Some(v)),
                    other => (other, None),
                };
                self.pending = at;
                if seq == 1 {
                    if *rec.prev != *chain::to_hex(&GENESIS) {
                        self.fail(
                            1,
                            false,
                            "the first record's prev is not 64 zeros (the start was replaced)"
                                .into(),
                        );
                        return None;
                    }
                } else {
                    let before = seq.saturating_sub(1);
                    match anchor {
                        Some((s, h)) if s == before && h == *rec.prev => {
                            self.report.anchored_at = Some(before);
                        }
                        Some((s, _)) if s == before => {
                            self.fail(seq, false, format!(
                                "prev differs from the hash the checkpoint of seq {before} vouches for (the start was replaced)"
                            ));
                            return None;
                        }
                        _ => {
                            self.fail(seq, false, format!(
                                "the chain starts at seq {seq} and no checkpoint of seq {before} anchors it: records 1..={before} are not in the table, and more rows were deleted than an export removes (it removes rows only up to a checkpoint, which must be kept)"
                            ));
                            return None;
                        }
                    }
                }
                self.report.first = Some(seq);
            }
            Some(head) => {
                let want = head.seq + 1;
                if seq != want {
                    let last = seq.saturating_sub(1);
                    self.fail(
                        want,
                        false,
                        format!(
                            "missing: the row after seq {} is seq {seq}, records {want}..={last} were deleted",
                            head.seq
                        ),
                    );
                    return None;
                }
                if *rec.prev != *self.prev_hex {
                    self.fail(seq, false, format!(
                        "prev does not match the hash of seq {}: a record deleted, inserted or replaced before it",
                        head.seq
                    ));
                    return None;
                }
            }
        }
        if let Some((s, h)) = &self.pending
            && *s == seq
        {
            if *h != *rec.hash {
                self.fail(
                    seq,
                    false,
                    "the record's hash differs from the one its checkpoint names (replaced)".into(),
                );
                return None;
            }
            self.pending = None;
        }
        self.prev_hex.clear();
        self.prev_hex.push_str(&rec.hash);
        self.report.head = Some(Head { seq, hash });
        self.report.records += 1;
        Some(seq)
    }

    /// After the last row: records cut off the end, and a node with no record left.
    pub(crate) fn finish(mut self) -> NodeReport {
        if self.report.problem.is_some() {
            return self.report;
        }
        match self.report.head {
            Some(head) if self.last_checkpoint > head.seq => {
                let (h, c) = (head.seq, self.last_checkpoint);
                self.fail(
                    h + 1,
                    false,
                    format!(
                        "missing: the chain ends at seq {h} but a checkpoint names seq {c}: records {}..={c} were cut off",
                        h + 1
                    ),
                );
            }
            Some(_) => {}
            None => {
                if let Some((seq, hash)) = self.before[1].take()
                    && let Some(hash) = chain::from_hex32(hash.as_bytes())
                {
                    self.report.anchored_at = Some(seq);
                    self.report.head = Some(Head { seq, hash });
                }
            }
        }
        if self.report.checkpoints == 0 && self.report.records > 0 {
            self.report.notes.push(
                "no checkpoints: records cut off the end of its chain cannot be detected".into(),
            );
        }
        self.report
    }
}
