//! The audit log in the cluster's PostgreSQL (`[audit] backend = "postgres"`): a call's record
//! is committed in the database before its answer leaves, so losing a node's disk — or the
//! node — loses no record of a call it answered (X-Road keeps its message log on each node;
//! popgate does not).
//!
//! Each node keeps its own hash chain (`node`, `seq`, `prev`, `hash`; the lines are the file
//! log's, with `node` after `seq`), so nodes never wait for one another. One task per node
//! takes whatever queued up while the previous batch committed, chains it, and inserts it with
//! one statement — one commit for the batch (group commit, as the file log shares an
//! `fdatasync`) — then answers the callers. In `batch` durability the connection commits
//! asynchronously (`synchronous_commit = off`): a crash of the database may lose the last
//! moments, as `batch` may on a disk.
//!
//! Failing closed: a batch that does not commit is answered `Unavailable` and health turns
//! false; the writer reconnects with backoff and **reads its head back from the database**
//! before it writes again, so a commit whose answer was lost is never written twice and its
//! seqs are never reused: each node's `seq` runs 1, 2, 3 … without a gap, also across a crash.
//! Signed checkpoints go to `audit_checkpoints` every `checkpoint_every` records or
//! `checkpoint_secs`, and at shutdown.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use tokio::sync::{mpsc, oneshot, watch};
use tokio_postgres::Client;

use super::chain::{self, Head};
use super::checkpoint::{Checkpoint, Signer};
use super::record::{self, AuditEvent, Record};
use super::{AuditError, AuditSink, AuditStats, Durability};
use crate::clock::{Clock, Tick};
use crate::pg::{Backoff, Db};

/// Records taken into one commit at most.
const MAX_BATCH: usize = 4096;
/// Events waiting before `append` itself waits: back-pressure, not unbounded memory.
const QUEUE: usize = 8192;

/// How to run the database log.
pub struct DbAuditOptions {
    pub node: String,
    pub durability: Durability,
    pub checkpoint_every: u64,
    pub checkpoint_secs: u64,
    pub signer: Option<Signer>,
    /// The clock of the timed checkpoints.
    pub clock: Clock,
}

type Reply = oneshot::Sender<Result<u64, AuditError>>;

struct Shared {
    health: watch::Sender<bool>,
    records: AtomicU64,
    batches: AtomicU64,
    commits: AtomicU64,
    commit_us: AtomicU64,
    failures: AtomicU64,
    head_seq: AtomicU64,
    /// `Some` once the writer has finished.
    done: watch::Sender<Option<Result<(), AuditError>>>,
}

/// A handle to one node's log in the database.
#[derive(Clone)]
pub struct DbAuditLog {
    queue: mpsc::Sender<(AuditEvent, Reply)>,
    shared: Arc<Shared>,
    close: Arc<watch::Sender<bool>>,
}

impl DbAuditLog {
    /// Starts the node's writer on `db` (its schema migrated already). Answers only once the
    /// head has been read: a log that cannot be reached at start is an error to the operator.
    pub async fn open(db: Db, opts: DbAuditOptions) -> Result<DbAuditLog, AuditError> {
        let mut w = Writer::connect(&db, &opts).await?;
        let (tx, rx) = mpsc::channel(QUEUE);
        let shared = Arc::new(Shared {
            health: watch::Sender::new(true),
            records: AtomicU64::new(0),
            batches: AtomicU64::new(0),
            commits: AtomicU64::new(0),
            commit_us: AtomicU64::new(0),
            failures: AtomicU64::new(0),
            head_seq: AtomicU64::new(w.head.seq),
            done: watch::Sender::new(None),
        });
        let close = Arc::new(watch::Sender::new(false));
        w.shared = Some(shared.clone());
        tokio::spawn(run(w, db, opts, rx, close.subscribe()));
        Ok(DbAuditLog {
            queue: tx,
            shared,
            close,
        })
    }
}

#[async_trait]
impl AuditSink for DbAuditLog {
    async fn append(&self, ev: AuditEvent) -> Result<u64, AuditError> {
        let (reply, rx) = oneshot::channel();
        self.queue
            .send((ev, reply))
            .await
            .map_err(|_| AuditError::Closed)?;
        rx.await
            .unwrap_or_else(|_| Err(AuditError::Unavailable("the audit writer stopped".into())))
    }

    fn health(&self) -> watch::Receiver<bool> {
        self.shared.health.subscribe()
    }

    fn stats(&self) -> AuditStats {
        let s = &self.shared;
        AuditStats {
            records: s.records.load(Ordering::Relaxed),
            batches: s.batches.load(Ordering::Relaxed),
            syncs: s.commits.load(Ordering::Relaxed),
            sync_us: s.commit_us.load(Ordering::Relaxed),
            failures: s.failures.load(Ordering::Relaxed),
            head_seq: s.head_seq.load(Ordering::Relaxed),
            queued: (QUEUE - self.queue.capacity()) as u64,
        }
    }

    async fn shutdown(&self) -> Result<(), AuditError> {
        self.close.send_replace(true);
        let mut done = self.shared.done.subscribe();
        let r = done
            .wait_for(Option::is_some)
            .await
            .map_err(|_| AuditError::Closed)?;
        r.clone().unwrap_or(Ok(()))
    }
}

/// The writer task's state.
struct Writer {
    client: Option<Client>,
    /// Turns true when the connection behind `client` has ended.
    ended: Option<watch::Receiver<bool>>,
    head: Head,
    last_ts_us: u64,
    last_checkpoint_seq: u64,
    last_checkpoint_at: Tick,
    shared: Option<Arc<Shared>>,
    buf: Vec<u8>,
}

fn unavailable(e: impl std::fmt::Display) -> AuditError {
    AuditError::Unavailable(e.to_string())
}

fn now_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_micros() as u64)
        .unwrap_or(0)
}

impl Writer {
    /// Connects and reads the node's head (its last record and checkpoint).
    async fn connect(db: &Db, opts: &DbAuditOptions) -> Result<Writer, AuditError> {
        let conn = db.connect().await.map_err(unavailable)?;
        let (client, ended) = (conn.client, conn.ended);
        if opts.durability == Durability::Batch {
            client
                .batch_execute("SET synchronous_commit = off")
                .await
                .map_err(unavailable)?;
        }
        let (head, last_ts_us) = read_head(&client, &opts.node).await?;
        let last_checkpoint_seq: i64 = client
            .query_one(
                "SELECT coalesce(max(seq), 0) FROM audit_checkpoints WHERE node = $1",
                &[&opts.node],
            )
            .await
            .map_err(unavailable)?
            .get(0);
        Ok(Writer {
            client: Some(client),
            ended: Some(ended),
            head,
            last_ts_us,
            last_checkpoint_seq: last_checkpoint_seq.max(0) as u64,
            last_checkpoint_at: opts.clock.now(),
            shared: None,
            buf: Vec::with_capacity(1 << 16),
        })
    }

    fn shared(&self) -> &Shared {
        self.shared.as_deref().expect("set at open")
    }

    fn set_health(&self, ok: bool) {
        let s = self.shared();
        if s.health.send_replace(ok) != ok {
            if ok {
                tracing::info!("audit log in the database writable again");
            } else {
                tracing::error!(
                    "audit log in the database unavailable: calls fail until it can be written again"
                );
            }
        }
    }

    /// Chains and commits one batch; the first seq.
    async fn write(
        &mut self,
        node: &str,
        batch: &[(AuditEvent, Reply)],
    ) -> Result<u64, AuditError> {
        let client = self
            .client
            .as_ref()
            .ok_or_else(|| unavailable("not connected to the database"))?;
        let mut seqs = Vec::with_capacity(batch.len());
        let mut lines = Vec::with_capacity(batch.len());
        let mut tss = Vec::with_capacity(batch.len());
        let mut citizens = Vec::with_capacity(batch.len());
        let mut head = self.head;
        let mut ts = self.last_ts_us;
        for (ev, _) in batch {
            ts = now_us().max(ts);
            let seq = head.seq + 1;
            self.buf.clear();
            let hash = record::encode_for(&mut self.buf, Some(node), seq, ts, ev, &head.hash);
            head = Head { seq, hash };
            // The line without its newline: the text the chain hashes.
            let line = std::str::from_utf8(&self.buf[..self.buf.len() - 1])
                .map_err(|_| AuditError::Unavailable("a record that is not UTF-8".into()))?;
            seqs.push(seq as i64);
            lines.push(line.to_owned());
            tss.push(record::format_ts(ts));
            citizens.push(ev.citizen_id.clone());
        }
        let started = Instant::now();
        client
            .execute(
                "INSERT INTO audit_log (node, seq, record, ts, citizen_id)
                 SELECT $1, s, r, t::timestamptz, c
                 FROM unnest($2::bigint[], $3::text[], $4::text[], $5::text[]) AS u(s, r, t, c)",
                &[&node, &seqs, &lines, &tss, &citizens],
            )
            .await
            .map_err(unavailable)?;
        let s = self.shared();
        s.commits.fetch_add(1, Ordering::Relaxed);
        s.commit_us
            .fetch_add(started.elapsed().as_micros() as u64, Ordering::Relaxed);
        s.records.fetch_add(batch.len() as u64, Ordering::Relaxed);
        s.head_seq.store(head.seq, Ordering::Relaxed);
        let first = self.head.seq + 1;
        self.head = head;
        self.last_ts_us = ts;
        Ok(first)
    }

    /// A signed checkpoint of the head.
    async fn checkpoint(&mut self, opts: &DbAuditOptions) -> Result<(), AuditError> {
        if self.head.seq == self.last_checkpoint_seq {
            return Ok(());
        }
        let client = self
            .client
            .as_ref()
            .ok_or_else(|| unavailable("not connected to the database"))?;
        let ts = record::format_ts(now_us().max(self.last_ts_us));
        let hash = chain::to_hex(&self.head.hash);
        let sig = opts
            .signer
            .as_ref()
            .map(|s| s.sign(self.head.seq, &hash, &ts));
        let line = Checkpoint {
            seq: self.head.seq,
            hash,
            ts,
            sig,
        }
        .to_line();
        let line = String::from_utf8_lossy(&line).trim_end().to_owned();
        client
            .execute(
                "INSERT INTO audit_checkpoints (node, seq, line) VALUES ($1, $2, $3)
                 ON CONFLICT (node, seq) DO NOTHING",
                &[&opts.node, &(self.head.seq as i64), &line],
            )
            .await
            .map_err(unavailable)?;
        self.last_checkpoint_seq = self.head.seq;
        self.last_checkpoint_at = opts.clock.now();
        Ok(())
    }
}

/// The node's last record: its seq and hash, and its `ts` in µs.
///
/// With no row left, the head is the node's last checkpoint, if it has one: `popgate audit
/// export` and the `DELETE` it prints may remove every record up to a checkpoint that names
/// the head, and the chain must go on from there — starting again at seq 1 would repeat seqs
/// already archived and break `audit verify --db`.
async fn read_head(client: &Client, node: &str) -> Result<(Head, u64), AuditError> {
    let damaged = |why: &str| AuditError::Corrupt {
        dir: format!("the database log of node {node}"),
        reason: why.to_owned(),
    };
    let row = client
        .query_opt(
            "SELECT record FROM audit_log WHERE node = $1 ORDER BY seq DESC LIMIT 1",
            &[&node],
        )
        .await
        .map_err(unavailable)?;
    let Some(row) = row else {
        let cp = client
            .query_opt(
                "SELECT line FROM audit_checkpoints WHERE node = $1 ORDER BY seq DESC LIMIT 1",
                &[&node],
            )
            .await
            .map_err(unavailable)?;
        let Some(cp) = cp else {
            return Ok((Head::EMPTY, 0));
        };
        let cp = Checkpoint::parse(cp.get::<_, &str>(0).as_bytes())
            .map_err(|_| damaged("its last checkpoint is not a checkpoint"))?;
        let hash = chain::from_hex32(cp.hash.as_bytes())
            .ok_or_else(|| damaged("its last checkpoint's hash is not hex"))?;
        let ts = record::parse_ts_us(&cp.ts).unwrap_or(0);
        return Ok((Head { seq: cp.seq, hash }, ts));
    };
    let line: &str = row.get(0);
    let hash = chain::verify_line(line.as_bytes())
        .ok_or_else(|| damaged("its last record does not match its hash"))?;
    let r =
        Record::parse(line.as_bytes()).map_err(|_| damaged("its last record is not a record"))?;
    let ts = record::parse_ts_us(&r.ts).unwrap_or(0);
    Ok((Head { seq: r.seq, hash }, ts))
}

async fn run(
    mut w: Writer,
    db: Db,
    opts: DbAuditOptions,
    mut rx: mpsc::Receiver<(AuditEvent, Reply)>,
    mut close: watch::Receiver<bool>,
) {
    let every = Duration::from_secs(opts.checkpoint_secs.max(1));
    let mut batch = Vec::new();
    let mut backoff = Backoff::default();
    loop {
        if w.client.as_ref().is_some_and(Client::is_closed) {
            fail(
                &mut w,
                &unavailable("the connection to the database was lost"),
            );
        }
        // Reconnect first after a failure: the head is read back from the database.
        if w.client.is_none() {
            match Writer::connect(&db, &opts).await {
                Ok(fresh) => {
                    w.client = fresh.client;
                    w.ended = fresh.ended;
                    w.head = fresh.head;
                    w.last_ts_us = fresh.last_ts_us.max(w.last_ts_us);
                    w.last_checkpoint_seq = fresh.last_checkpoint_seq;
                    w.shared().head_seq.store(w.head.seq, Ordering::Relaxed);
                    w.set_health(true);
                    backoff = Backoff::default();
                }
                Err(e) => {
                    tracing::debug!(error = %e, "audit database not reachable yet");
                    // Refuse what waits meanwhile: callers must not wait for a database
                    // that is gone.
                    while let Ok((_, reply)) = rx.try_recv() {
                        let _ = reply.send(Err(e.clone()));
                    }
                    if *close.borrow() {
                        break;
                    }
                    tokio::select! {
                        () = backoff.wait() => {}
                        _ = close.changed() => {}
                    }
                    continue;
                }
            }
        }
        let due = w.last_checkpoint_at.after(every);
        let timer = {
            let clock = opts.clock.clone();
            async move {
                let now = clock.now();
                if now < due {
                    clock.sleep(due.since(now)).await;
                }
            }
        };
        let mut ended = w.ended.clone();
        let lost = async move {
            match ended.as_mut() {
                Some(e) => {
                    let _ = e.wait_for(|x| *x).await;
                }
                None => std::future::pending().await,
            }
        };
        let first = tokio::select! {
            item = rx.recv() => item,
            () = lost => {
                // Nothing can be recorded now: say so before a call finds out.
                fail(&mut w, &unavailable("the connection to the database was lost"));
                continue;
            }
            () = timer, if w.head.seq > w.last_checkpoint_seq => {
                if let Err(e) = w.checkpoint(&opts).await {
                    fail(&mut w, &e);
                }
                continue;
            }
            _ = close.changed() => None,
        };
        let Some(first) = first else { break };
        batch.push(first);
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(item) => batch.push(item),
                Err(_) => break,
            }
        }
        w.shared().batches.fetch_add(1, Ordering::Relaxed);
        match w.write(&opts.node, &batch).await {
            Ok(first) => {
                for (i, (_, reply)) in batch.drain(..).enumerate() {
                    let _ = reply.send(Ok(first + i as u64));
                }
                if w.head.seq.saturating_sub(w.last_checkpoint_seq) >= opts.checkpoint_every
                    && let Err(e) = w.checkpoint(&opts).await
                {
                    fail(&mut w, &e);
                }
            }
            Err(e) => {
                for (_, reply) in batch.drain(..) {
                    let _ = reply.send(Err(e.clone()));
                }
                fail(&mut w, &e);
            }
        }
    }
    // Closing: what is queued, then a final checkpoint, on a live connection.
    rx.close();
    if w.client.as_ref().is_none_or(Client::is_closed)
        && let Ok(fresh) = Writer::connect(&db, &opts).await
    {
        w.client = fresh.client;
        w.head = fresh.head;
        w.last_checkpoint_seq = fresh.last_checkpoint_seq;
    }
    let mut rest: Vec<_> = std::iter::from_fn(|| rx.try_recv().ok()).collect();
    let mut result = Ok(());
    if !rest.is_empty() {
        match w.write(&opts.node, &rest).await {
            Ok(first) => {
                for (i, (_, reply)) in rest.drain(..).enumerate() {
                    let _ = reply.send(Ok(first + i as u64));
                }
            }
            Err(e) => {
                for (_, reply) in rest.drain(..) {
                    let _ = reply.send(Err(e.clone()));
                }
                result = Err(e);
            }
        }
    }
    if result.is_ok() {
        result = w.checkpoint(&opts).await;
    }
    w.shared().health.send_replace(false);
    w.shared().done.send_replace(Some(result));
}

/// A write failed: drop the connection (the next batch reconnects and rereads the head).
fn fail(w: &mut Writer, e: &AuditError) {
    tracing::warn!(error = %e, "audit write to the database failed");
    w.shared().failures.fetch_add(1, Ordering::Relaxed);
    w.client = None;
    w.ended = None;
    w.set_health(false);
}
