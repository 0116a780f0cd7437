//! The appender: one thread owns the files, takes events from a bounded queue, assigns `seq`
//! and `ts`, chains, writes, syncs, and only then completes the callers' futures.
//!
//! Group commit: whatever queued up while the previous batch was being written and synced is
//! taken in one go, encoded into one buffer, written with one `write` and made durable with one
//! `fdatasync`. Under load the batch grows with the number of waiting callers, so the number of
//! syncs per second stays near 1 / (sync latency) however many records there are.
//!
//! In `batch` mode the `fdatasync` runs on a thread of its own (`super::syncer`), so a slow
//! one holds up no append.
//!
//! Failure is closed: a record is acknowledged only once its bytes (and in `sync` mode its
//! `fdatasync`) succeeded. A failed write is cut back off the file, its seqs are reused, the
//! health signal goes false, and the writer reopens the files on the next batch and probes the
//! disk every second until writing works again.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde::Deserialize;
use tokio::sync::{Semaphore, oneshot, watch};

use super::AuditError;
use super::chain::{self, Head};
use super::checkpoint::{CHECKPOINT_FILE, Checkpoint, Signer};
use super::record::{self, AuditEvent};
use super::recovery;
use super::scan;
use super::syncer::{Syncer, wait_until};
use crate::clock::{Clock, Tick};

/// When a record counts as written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Durability {
    /// `fdatasync` before the caller hears back; concurrent records share one sync.
    Sync,
    /// The caller hears back once the record is written to the file; `fdatasync` at most every
    /// `flush_ms`. A machine crash (not a process crash) may lose the last few milliseconds.
    Batch,
}

/// How to run the audit log. [`AuditOptions::new`] gives the defaults of the configuration.
#[derive(Debug, Clone)]
pub struct AuditOptions {
    /// Folder of the log files and `checkpoints.jsonl` (created if missing).
    pub dir: PathBuf,
    pub durability: Durability,
    /// In `batch` mode, the longest time between two syncs.
    pub flush_ms: u64,
    /// A file is rolled before a record would take it past this size (a record larger than
    /// this gets a file of its own).
    pub roll_bytes: u64,
    /// A signed checkpoint every this many records…
    pub checkpoint_every: u64,
    /// …or every this many seconds when there are new records, and at shutdown.
    pub checkpoint_secs: u64,
    /// Ed25519 key, PKCS#8 PEM (`PRIVATE KEY`); `None` writes unsigned checkpoints.
    pub signing_key: Option<PathBuf>,
    /// Events waiting for the writer before `append` itself waits: back-pressure instead of
    /// unbounded memory when the disk is slower than the callers.
    pub queue_capacity: usize,
    /// Told how long each `fdatasync` took, for the operator's metrics.
    pub on_sync: Option<SyncObserver>,
    /// The clock of the timed checkpoints, `batch` mode's syncs and the probes of a broken
    /// disk (the linger after a batch is a fraction of a real sync and runs on real time).
    pub clock: Clock,
}

/// A callback given each sync's duration (kept cheap: it runs on the writer thread).
#[derive(Clone)]
pub struct SyncObserver(pub Arc<dyn Fn(Duration) + Send + Sync>);

impl std::fmt::Debug for SyncObserver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SyncObserver")
    }
}

impl AuditOptions {
    /// Defaults: `sync`, 5 ms, 64 MiB files, a checkpoint every 10,000 records or 10 s, no
    /// signing key, 8,192 queued events.
    pub fn new(dir: impl Into<PathBuf>) -> AuditOptions {
        AuditOptions {
            dir: dir.into(),
            durability: Durability::Sync,
            flush_ms: 5,
            roll_bytes: 64 * 1024 * 1024,
            checkpoint_every: 10_000,
            checkpoint_secs: 10,
            signing_key: None,
            queue_capacity: 8192,
            on_sync: None,
            clock: Clock::system(),
        }
    }
}

/// How often a broken writer probes the disk when no calls come in, so that health comes back
/// even while a load balancer sends no traffic to a `NOT_SERVING` gateway.
pub const PROBE_EVERY: Duration = Duration::from_secs(1);
/// The probe writes this much (and cuts it off again): enough to need a fresh block on a full
/// disk rather than fit in the slack of the last one.
const PROBE_BYTES: usize = 64 * 1024;

type Reply = oneshot::Sender<Result<u64, AuditError>>;

struct Pending {
    ev: AuditEvent,
    reply: Reply,
}

struct Queue {
    items: Vec<Pending>,
    /// Set by shutdown (or the last handle's drop): no new events are taken.
    closing: bool,
}

struct Shared {
    queue: Mutex<Queue>,
    /// Wakes the writer when the queue goes from empty to non-empty, or on close.
    wake: Condvar,
    /// Bounds the queue; the writer returns permits as it takes events.
    permits: Semaphore,
    health: watch::Sender<bool>,
    /// `Some` once the writer has finished, with how its final sync and checkpoint went.
    done: watch::Sender<Option<Result<(), AuditError>>>,
    /// The seq of the last checkpoint written and synced.
    checkpointed: watch::Sender<u64>,
    counters: Counters,
    head_seq: AtomicU64,
    /// The queue's bound, to tell how many events wait (bound − free permits).
    capacity: usize,
}

#[derive(Default)]
struct Counters {
    records: AtomicU64,
    batches: AtomicU64,
    syncs: AtomicU64,
    sync_us: AtomicU64,
    failures: AtomicU64,
}

/// Counters since open, for metrics: `records / syncs` is the group-commit factor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct AuditStats {
    /// Records acknowledged.
    pub records: u64,
    /// Batches taken off the queue.
    pub batches: u64,
    /// `fdatasync` calls on log files.
    pub syncs: u64,
    /// Time spent in those calls, in microseconds: `sync_us / syncs` is the disk's sync latency.
    pub sync_us: u64,
    /// Failed writes or syncs.
    pub failures: u64,
    /// The seq of the last acknowledged record.
    pub head_seq: u64,
    /// Events waiting for the writer now.
    pub queued: u64,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn close(&self) {
        self.lock().closing = true;
        self.permits.close();
        self.wake.notify_one();
    }
}

/// A cheap, cloneable handle to the audit log. When the last handle is dropped the writer
/// drains, syncs and stops by itself; call [`AuditLog::shutdown`] to wait for that.
#[derive(Clone)]
pub struct AuditLog {
    inner: Arc<Handle>,
}

struct Handle {
    shared: Arc<Shared>,
}

impl Drop for Handle {
    fn drop(&mut self) {
        self.shared.close();
    }
}

impl std::fmt::Debug for AuditLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuditLog")
            .field("healthy", &*self.inner.shared.health.borrow())
            .finish()
    }
}

impl AuditLog {
    /// Recovers the directory (see `super::recovery`) and starts the writer thread. Fails if
    /// the log is damaged in a way a crash does not explain, or cannot be opened for writing.
    pub fn open(opts: AuditOptions) -> Result<AuditLog, AuditError> {
        let bad = |reason: &str| AuditError::Open {
            dir: opts.dir.display().to_string(),
            reason: reason.to_string(),
        };
        if opts.roll_bytes == 0 || opts.checkpoint_every == 0 || opts.checkpoint_secs == 0 {
            return Err(bad(
                "roll_bytes, checkpoint_every and checkpoint_secs must be at least 1",
            ));
        }
        if opts.durability == Durability::Batch && opts.flush_ms == 0 {
            return Err(bad("flush_ms must be at least 1"));
        }
        if opts.queue_capacity == 0 {
            return Err(bad("queue_capacity must be at least 1"));
        }
        let signer = opts
            .signing_key
            .as_deref()
            .map(Signer::from_pem_file)
            .transpose()?;
        let rec = recovery::recover(&opts.dir)?;
        let (health, _) = watch::channel(true);
        let (done, _) = watch::channel(None);
        let checkpointed = watch::Sender::new(rec.last_checkpoint.as_ref().map_or(0, |c| c.seq));
        let shared = Arc::new(Shared {
            queue: Mutex::new(Queue {
                items: Vec::new(),
                closing: false,
            }),
            wake: Condvar::new(),
            permits: Semaphore::new(opts.queue_capacity),
            capacity: opts.queue_capacity,
            health,
            done,
            checkpointed,
            counters: Counters::default(),
            head_seq: AtomicU64::new(rec.head.seq),
        });
        // With a manual clock, a writer waiting for a timer must hear that time moved.
        let weak = Arc::downgrade(&shared);
        opts.clock.on_advance(move || {
            if let Some(sh) = weak.upgrade() {
                let _q = sh.lock();
                sh.wake.notify_one();
            }
        });
        let mut w = Writer::new(opts, signer, rec, shared.clone());
        w.open_files().map_err(|e| AuditError::Open {
            dir: w.dir.display().to_string(),
            reason: e,
        })?;
        if w.durability == Durability::Batch {
            w.start_syncer().map_err(|e| AuditError::Open {
                dir: String::new(),
                reason: format!("cannot start the sync thread: {e}"),
            })?;
        }
        let sh = shared.clone();
        std::thread::Builder::new()
            .name("popgate-audit".into())
            .spawn(move || run(w, sh))
            .map_err(|e| AuditError::Open {
                dir: String::new(),
                reason: format!("cannot start the writer thread: {e}"),
            })?;
        Ok(AuditLog {
            inner: Arc::new(Handle { shared }),
        })
    }

    /// Appends one record and resolves with its `seq` once it is durable: fsynced in `sync`
    /// mode, written in `batch` mode. [`AuditError::Unavailable`] (or [`AuditError::Closed`])
    /// means nothing was acknowledged and no data may be released.
    ///
    /// Dropping the future after it started may still leave the record in the log: a record
    /// of an answer never sent is harmless, an answer without a record is not.
    pub async fn append(&self, ev: AuditEvent) -> Result<u64, AuditError> {
        let shared = &self.inner.shared;
        let permit = shared
            .permits
            .acquire()
            .await
            .map_err(|_| AuditError::Closed)?;
        let (reply, rx) = oneshot::channel();
        {
            let mut q = shared.lock();
            if q.closing {
                return Err(AuditError::Closed);
            }
            let was_empty = q.items.is_empty();
            q.items.push(Pending { ev, reply });
            // The writer only sleeps after seeing an empty queue under this lock, so a wake-up
            // is needed only for the first event after that.
            if was_empty {
                shared.wake.notify_one();
            }
        }
        // The writer hands the permit back when it takes the event off the queue.
        permit.forget();
        rx.await
            .unwrap_or_else(|_| Err(AuditError::Unavailable("the audit writer stopped".into())))
    }

    /// `true` while the log accepts records; `false` from the first failed write until writing
    /// works again, and after shutdown. For the gRPC health service.
    pub fn health(&self) -> watch::Receiver<bool> {
        self.inner.shared.health.subscribe()
    }

    /// The seq of the last checkpoint written (and made durable), as it changes.
    pub fn checkpoints(&self) -> watch::Receiver<u64> {
        self.inner.shared.checkpointed.subscribe()
    }

    /// Counters since open.
    pub fn stats(&self) -> AuditStats {
        let c = &self.inner.shared.counters;
        AuditStats {
            records: c.records.load(Ordering::Relaxed),
            batches: c.batches.load(Ordering::Relaxed),
            syncs: c.syncs.load(Ordering::Relaxed),
            sync_us: c.sync_us.load(Ordering::Relaxed),
            failures: c.failures.load(Ordering::Relaxed),
            head_seq: self.inner.shared.head_seq.load(Ordering::Relaxed),
            queued: (self.inner.shared.capacity as u64)
                .saturating_sub(self.inner.shared.permits.available_permits() as u64),
        }
    }

    /// Stops taking records, writes out those queued, syncs, writes a final checkpoint and
    /// waits for the writer to finish. Later appends get [`AuditError::Closed`].
    pub async fn shutdown(&self) -> Result<(), AuditError> {
        self.inner.shared.close();
        let mut rx = self.inner.shared.done.subscribe();
        let done = rx
            .wait_for(Option::is_some)
            .await
            .map_err(|_| AuditError::Closed)?;
        done.clone().unwrap_or(Ok(()))
    }
}

#[async_trait::async_trait]
impl super::AuditSink for AuditLog {
    async fn append(&self, ev: AuditEvent) -> Result<u64, AuditError> {
        AuditLog::append(self, ev).await
    }

    fn health(&self) -> watch::Receiver<bool> {
        AuditLog::health(self)
    }

    fn stats(&self) -> AuditStats {
        AuditLog::stats(self)
    }

    async fn shutdown(&self) -> Result<(), AuditError> {
        AuditLog::shutdown(self).await
    }
}

/// Where each encoded record of a batch ends in the buffer, and the chain after it.
#[derive(Clone, Copy)]
struct Encoded {
    end: usize,
    head: Head,
    ts_us: u64,
}

/// The writer thread's state. Nothing else touches the files.
struct Writer {
    on_sync: Option<SyncObserver>,
    clock: Clock,
    dir: PathBuf,
    durability: Durability,
    flush: Duration,
    roll_bytes: u64,
    checkpoint_every: u64,
    checkpoint_every_time: Duration,
    signer: Option<Signer>,
    shared: Arc<Shared>,

    /// The last acknowledged record.
    head: Head,
    /// Its `ts`: record timestamps never go backwards, even if the wall clock does, so that
    /// readers may rely on `ts` order within the log.
    last_ts_us: u64,

    /// The log file being appended to; `None` until the first record of an empty directory.
    path: Option<PathBuf>,
    /// Open handle to `path`; `None` while broken.
    file: Option<File>,
    /// Bytes of `path` that hold acknowledged records: a failed write is cut back to this.
    file_len: u64,
    /// Batch mode: written to since the writer's own last sync. The syncer syncs meanwhile,
    /// but a checkpoint or a roll must know for itself that everything before it is durable.
    unsynced: bool,
    /// Batch mode: the thread that syncs the log `flush_ms` after a write.
    syncer: Option<Syncer>,
    /// The syncer's handle to `file` (a duplicate of it), made on first need.
    sync_file: Option<Arc<File>>,

    checkpoint_file: Option<File>,
    checkpoint_len: u64,
    last_checkpoint_seq: u64,
    last_checkpoint_at: Tick,

    /// Why writing failed; `Some` until a repair and a write succeed.
    broken: Option<String>,
    last_probe: Tick,

    /// Moving average of one `fdatasync`, in µs: sets how long to linger (below).
    sync_avg_us: u64,
    /// Sync mode: after answering a batch of several callers, the writer waits until then
    /// before taking the next batch. See [`Writer::after_batch`].
    linger_until: Option<Instant>,
    /// No lingering once this many events wait: such a batch amortises a sync anyway.
    linger_max_items: usize,

    buf: Vec<u8>,
    encoded: Vec<Encoded>,
}

fn now_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_micros() as u64)
        .unwrap_or(0)
}

/// Makes a new directory entry durable: without it a crash can lose a whole new file even
/// though its contents were synced.
fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

fn msg(what: &str, path: &Path, e: &io::Error) -> String {
    format!("{what} {}: {e}", path.display())
}

impl Writer {
    fn new(
        opts: AuditOptions,
        signer: Option<Signer>,
        rec: recovery::Recovered,
        shared: Arc<Shared>,
    ) -> Writer {
        let (path, file_len) = match rec.current {
            Some((p, l)) => (Some(p), l),
            None => (None, 0),
        };
        let now = opts.clock.now();
        Writer {
            clock: opts.clock.clone(),
            durability: opts.durability,
            flush: Duration::from_millis(opts.flush_ms),
            roll_bytes: opts.roll_bytes,
            checkpoint_every: opts.checkpoint_every,
            checkpoint_every_time: Duration::from_secs(opts.checkpoint_secs),
            signer,
            shared,
            head: rec.head,
            last_ts_us: rec.head_ts_us,
            path,
            file: None,
            file_len,
            unsynced: false,
            syncer: None,
            sync_file: None,
            checkpoint_file: None,
            checkpoint_len: rec.checkpoint_len,
            last_checkpoint_seq: rec.last_checkpoint.map(|c| c.seq).unwrap_or(0),
            last_checkpoint_at: now,
            broken: None,
            last_probe: now,
            sync_avg_us: 0,
            linger_until: None,
            linger_max_items: (opts.queue_capacity / 2).max(1),
            on_sync: opts.on_sync.clone(),
            buf: Vec::with_capacity(1 << 16),
            encoded: Vec::new(),
            dir: opts.dir,
        }
    }

    /// Opens (or reopens) the current log file and the checkpoint file for appending, cutting
    /// off anything past the acknowledged length (left by a failed write of ours).
    fn open_files(&mut self) -> Result<(), String> {
        if self.file.is_none()
            && let Some(path) = &self.path
        {
            self.file = Some(open_append(path, &mut self.file_len, &self.dir)?);
        }
        if self.checkpoint_file.is_none() {
            let path = self.dir.join(CHECKPOINT_FILE);
            self.checkpoint_file = Some(open_append(&path, &mut self.checkpoint_len, &self.dir)?);
        }
        Ok(())
    }

    /// Starts batch mode's sync thread. Its syncs count like the writer's own, and a failed
    /// one wakes the writer, which fails closed (see [`Writer::take_sync_failure`]).
    fn start_syncer(&mut self) -> io::Result<()> {
        let shared = self.shared.clone();
        let observer = self.on_sync.clone();
        let on_sync = Box::new(move |took: Duration| {
            let c = &shared.counters;
            c.syncs.fetch_add(1, Ordering::Relaxed);
            c.sync_us
                .fetch_add(took.as_micros() as u64, Ordering::Relaxed);
            if let Some(o) = &observer {
                (o.0)(took);
            }
        });
        let shared = self.shared.clone();
        let on_failure = Box::new(move || {
            // Under the queue's lock, so the writer cannot miss it between checking for
            // work and going to sleep.
            let _q = shared.lock();
            shared.wake.notify_one();
        });
        self.syncer = Some(Syncer::start(
            self.flush,
            self.clock.clone(),
            on_sync,
            on_failure,
        )?);
        Ok(())
    }

    /// A failed batch-mode sync means acknowledged records may not be durable: fail closed as
    /// for a failed write (the files are reopened and the disk probed).
    fn take_sync_failure(&mut self) {
        if let Some(e) = self.syncer.as_ref().and_then(Syncer::take_failure) {
            self.fail(e);
        }
    }

    fn set_health(&self, ok: bool) {
        self.shared.health.send_if_modified(|h| {
            let changed = *h != ok;
            *h = ok;
            changed
        });
    }

    /// Records a failure: cuts the log file back to its acknowledged length (best effort; the
    /// reopen repeats it), drops the handles so the next attempt reopens them, and turns health
    /// off. Returns the reason for the callers.
    fn fail(&mut self, reason: String) -> String {
        if let Some(s) = &self.syncer {
            s.forget();
        }
        self.sync_file = None;
        if let Some(f) = self.file.take() {
            let _ = f.set_len(self.file_len);
        }
        if let Some(f) = self.checkpoint_file.take() {
            let _ = f.set_len(self.checkpoint_len);
        }
        if self.broken.is_none() {
            tracing::error!(reason = %reason, "audit log unavailable: calls fail until it can be written again");
        }
        self.broken = Some(reason.clone());
        // The next probe a full interval from now: the failure itself was the last attempt.
        self.last_probe = self.clock.now();
        self.shared
            .counters
            .failures
            .fetch_add(1, Ordering::Relaxed);
        self.set_health(false);
        reason
    }

    /// Back in business after a failure.
    fn healed(&mut self) {
        if self.broken.take().is_some() {
            tracing::info!("audit log writable again");
        }
        self.set_health(true);
    }

    fn append_batch(&mut self, batch: &mut Vec<Pending>) {
        let batch_len = batch.len();
        let (acked, err) = self.write_batch(batch);
        let first = self.head.seq + 1 - acked as u64;
        for (i, p) in batch.drain(..).enumerate() {
            let r = if i < acked {
                Ok(first + i as u64)
            } else {
                Err(AuditError::Unavailable(err.clone().unwrap_or_default()))
            };
            // A caller that went away does not need its answer; the record stays.
            let _ = p.reply.send(r);
        }
        self.after_batch(batch_len);
        // After the replies: a checkpoint costs a sync of its own, which the callers of
        // this batch need not wait for.
        if err.is_none()
            && self.head.seq - self.last_checkpoint_seq >= self.checkpoint_every
            && let Err(e) = self.checkpoint()
        {
            // The records are durable and acknowledged; later calls fail until the
            // checkpoint can be written, as the log is then not fully working.
            self.fail(e);
        }
    }

    /// Sync mode, after answering a batch of several callers: linger for 1/8 of a typical
    /// sync (at most 1 ms) before taking the next batch. Without it, the callers just answered
    /// come back a moment after the next sync started with only those who queued meanwhile,
    /// and the callers settle into two groups taking turns: half of them per sync. Waiting a
    /// fraction of a sync lets them join, about doubling records per sync when syncs are slow,
    /// for at most 12.5% more latency. A lone caller never waits.
    fn after_batch(&mut self, n: usize) {
        if self.durability == Durability::Sync && n > 1 && self.broken.is_none() {
            let linger = Duration::from_micros((self.sync_avg_us / 8).min(1000));
            self.linger_until = Some(Instant::now() + linger);
        }
    }

    /// Writes the batch; returns how many records (from the front) are acknowledged, and why
    /// the rest failed.
    fn write_batch(&mut self, batch: &[Pending]) -> (usize, Option<String>) {
        self.take_sync_failure();
        if self.broken.is_some()
            && let Err(e) = self.open_files()
        {
            return (0, Some(self.fail(e)));
        }
        // Encode the whole batch first: a record's bytes depend on the chain, not on the file.
        self.buf.clear();
        self.encoded.clear();
        let mut head = self.head;
        let mut ts = self.last_ts_us;
        for p in batch {
            ts = now_us().max(ts);
            let seq = head.seq + 1;
            let hash = record::encode(&mut self.buf, seq, ts, &p.ev, &head.hash);
            head = Head { seq, hash };
            self.encoded.push(Encoded {
                end: self.buf.len(),
                head,
                ts_us: ts,
            });
        }

        let mut idx = 0;
        let mut start = 0;
        while idx < batch.len() {
            let first_len = (self.encoded[idx].end - start) as u64;
            if (self.path.is_none()
                || (self.file_len > 0 && self.file_len + first_len > self.roll_bytes))
                && let Err(e) = self.roll(self.encoded[idx].head.seq)
            {
                return (idx, Some(self.fail(e)));
            }
            // As many records as fit in this file (at least one).
            let mut j = idx + 1;
            while j < batch.len()
                && self.file_len + (self.encoded[j].end - start) as u64 <= self.roll_bytes
            {
                j += 1;
            }
            let end = self.encoded[j - 1].end;
            if let Err(e) = self.write_segment(start, end) {
                return (idx, Some(self.fail(e)));
            }
            let last = self.encoded[j - 1];
            self.file_len += (end - start) as u64;
            self.head = last.head;
            let c = &self.shared.counters;
            c.records.fetch_add((j - idx) as u64, Ordering::Relaxed);
            self.shared.head_seq.store(last.head.seq, Ordering::Relaxed);
            self.last_ts_us = last.ts_us;
            idx = j;
            start = end;
        }
        self.healed();
        (batch.len(), None)
    }

    fn write_segment(&mut self, start: usize, end: usize) -> Result<(), String> {
        let (Some(f), Some(path)) = (self.file.as_mut(), self.path.as_ref()) else {
            return Err("no log file open".into());
        };
        f.write_all(&self.buf[start..end])
            .map_err(|e| msg("cannot write", path, &e))?;
        match self.durability {
            Durability::Sync => {
                let t = Instant::now();
                f.sync_data().map_err(|e| msg("cannot sync", path, &e))?;
                let took = t.elapsed();
                if let Some(o) = &self.on_sync {
                    (o.0)(took);
                }
                let us = took.as_micros() as u64;
                self.shared
                    .counters
                    .sync_us
                    .fetch_add(us, Ordering::Relaxed);
                self.sync_avg_us = if self.sync_avg_us == 0 {
                    us
                } else {
                    (self.sync_avg_us * 7 + us) / 8
                };
                self.shared.counters.syncs.fetch_add(1, Ordering::Relaxed);
            }
            Durability::Batch => {
                self.unsynced = true;
                if let Some(s) = &self.syncer {
                    let file = match &self.sync_file {
                        Some(d) => d.clone(),
                        None => {
                            let d =
                                Arc::new(f.try_clone().map_err(|e| {
                                    msg("cannot duplicate the handle of", path, &e)
                                })?);
                            self.sync_file = Some(d.clone());
                            d
                        }
                    };
                    s.mark_dirty(&file, path);
                }
            }
        }
        Ok(())
    }

    /// Makes everything written so far durable, on this thread: before a checkpoint names
    /// it, before the file is left for the next one, at shutdown.
    fn sync_log(&mut self) -> Result<(), String> {
        if let Some(s) = &self.syncer {
            // This sync covers what the syncer was waiting to sync.
            s.forget();
        }
        if self.unsynced {
            if let (Some(f), Some(path)) = (&self.file, &self.path) {
                let t = Instant::now();
                f.sync_data().map_err(|e| msg("cannot sync", path, &e))?;
                let took = t.elapsed();
                if let Some(o) = &self.on_sync {
                    (o.0)(took);
                }
                let c = &self.shared.counters;
                c.syncs.fetch_add(1, Ordering::Relaxed);
                c.sync_us
                    .fetch_add(took.as_micros() as u64, Ordering::Relaxed);
            }
            self.unsynced = false;
        }
        Ok(())
    }

    /// Starts the file for the record `first_seq`, after a checkpoint of the last record of
    /// the file left behind: an operator may then archive any run of the oldest files, and
    /// `popgate audit verify --archived` anchors what is left to that signed checkpoint.
    fn roll(&mut self, first_seq: u64) -> Result<(), String> {
        self.sync_log()?;
        self.checkpoint()?;
        let path = self.dir.join(scan::file_name(first_seq));
        self.file = None;
        self.sync_file = None;
        self.file_len = 0;
        self.path = Some(path.clone());
        self.file = Some(open_append(&path, &mut self.file_len, &self.dir)?);
        Ok(())
    }

    /// Appends a checkpoint of the head to the checkpoint file, after making the log durable
    /// up to it: a checkpoint never names a record that a crash could take away.
    fn checkpoint(&mut self) -> Result<(), String> {
        if self.head.seq == self.last_checkpoint_seq {
            return Ok(());
        }
        self.sync_log()?;
        let ts = record::format_ts(now_us().max(self.last_ts_us));
        let hash = chain::to_hex(&self.head.hash);
        let sig = self
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
        let path = self.dir.join(CHECKPOINT_FILE);
        if self.checkpoint_file.is_none() {
            self.checkpoint_file = Some(open_append(&path, &mut self.checkpoint_len, &self.dir)?);
        }
        let Some(f) = self.checkpoint_file.as_mut() else {
            return Err("no checkpoint file open".into());
        };
        f.write_all(&line)
            .and_then(|()| f.sync_data())
            .map_err(|e| msg("cannot write", &path, &e))?;
        self.checkpoint_len += line.len() as u64;
        self.last_checkpoint_seq = self.head.seq;
        self.shared.checkpointed.send_replace(self.head.seq);
        self.last_checkpoint_at = self.clock.now();
        Ok(())
    }

    /// While broken and idle: reopen the files and write (then cut off) a block, so health
    /// comes back once the disk takes writes again.
    fn probe(&mut self) -> Result<(), String> {
        self.last_probe = self.clock.now();
        self.open_files()?;
        if let (Some(f), Some(path)) = (&mut self.file, &self.path) {
            let r = f
                .write_all(&[b' '; PROBE_BYTES])
                .and_then(|()| f.sync_data())
                .and_then(|()| f.set_len(self.file_len))
                .and_then(|()| f.sync_data());
            r.map_err(|e| msg("probe write failed on", path, &e))?;
        }
        if self.head.seq > self.last_checkpoint_seq {
            self.checkpoint()?;
        }
        Ok(())
    }

    /// The next moment something is due without new records: handling a failed batch-mode
    /// sync, a timed checkpoint, or a probe while broken.
    fn next_deadline(&self) -> Option<Tick> {
        if self.syncer.as_ref().is_some_and(Syncer::has_failure) {
            return Some(self.clock.now());
        }
        if self.broken.is_some() {
            return Some(self.last_probe.after(PROBE_EVERY));
        }
        (self.head.seq > self.last_checkpoint_seq)
            .then(|| self.last_checkpoint_at.after(self.checkpoint_every_time))
    }

    fn on_tick(&mut self, now: Tick) {
        self.take_sync_failure();
        if self.broken.is_some() {
            if now >= self.last_probe.after(PROBE_EVERY) {
                match self.probe() {
                    Ok(()) => self.healed(),
                    Err(e) => {
                        self.fail(e);
                    }
                }
            }
            return;
        }
        if self.head.seq > self.last_checkpoint_seq
            && now >= self.last_checkpoint_at.after(self.checkpoint_every_time)
            && let Err(e) = self.checkpoint()
        {
            self.fail(e);
        }
    }

    /// At shutdown: everything durable, and a checkpoint of the final head.
    fn finish(&mut self) -> Result<(), AuditError> {
        let r = (|| {
            if self.broken.is_some() {
                self.open_files()?;
            }
            self.sync_log()?;
            self.checkpoint()
        })();
        // No more records are taken.
        self.set_health(false);
        r.map_err(AuditError::Unavailable)
    }
}

/// Opens `path` for appending, creating it if needed, and makes sure it ends at `*len`:
/// longer means bytes of a failed write of ours, which are cut off; shorter means someone else
/// cut the file, and `*len` follows it (so that cutting back never extends the file).
fn open_append(path: &Path, len: &mut u64, dir: &Path) -> Result<File, String> {
    let f = OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(|e| msg("cannot open", path, &e))?;
    let actual = f
        .metadata()
        .map_err(|e| msg("cannot stat", path, &e))?
        .len();
    if actual > *len {
        f.set_len(*len)
            .and_then(|()| f.sync_data())
            .map_err(|e| msg("cannot cut back", path, &e))?;
    } else if actual < *len {
        // The chain goes on from what was acknowledged, so `audit verify` shows the loss
        // instead of it being papered over.
        tracing::error!(file = %path.display(), expected = *len, found = actual, "audit log file is shorter than what was written to it");
        *len = actual;
    }
    sync_dir(dir).map_err(|e| msg("cannot sync the directory", dir, &e))?;
    Ok(f)
}

fn run(mut w: Writer, shared: Arc<Shared>) {
    // If the writer panics, queued callers must not wait forever.
    struct Guard(Arc<Shared>);
    impl Drop for Guard {
        fn drop(&mut self) {
            if std::thread::panicking() {
                let mut q = self.0.lock();
                q.closing = true;
                for p in q.items.drain(..) {
                    let _ = p.reply.send(Err(AuditError::Unavailable(
                        "the audit writer crashed".into(),
                    )));
                }
                drop(q);
                self.0.permits.close();
                self.0.health.send_replace(false);
                self.0.done.send_replace(Some(Err(AuditError::Unavailable(
                    "the audit writer crashed".into(),
                ))));
            }
        }
    }
    let _guard = Guard(shared.clone());
    let mut batch: Vec<Pending> = Vec::new();
    loop {
        let closing = {
            let mut q = shared.lock();
            loop {
                if !q.items.is_empty() {
                    if let Some(until) = w.linger_until
                        && !q.closing
                        && q.items.len() < w.linger_max_items
                        && Instant::now() < until
                    {
                        q = wait_until(&shared.wake, q, until);
                        continue;
                    }
                    w.linger_until = None;
                    std::mem::swap(&mut q.items, &mut batch);
                    break;
                }
                if q.closing {
                    break;
                }
                match w.next_deadline() {
                    None => q = shared.wake.wait(q).unwrap_or_else(PoisonError::into_inner),
                    Some(at) => {
                        if at <= w.clock.now() {
                            break;
                        }
                        q = w.clock.wait_until(&shared.wake, q, at);
                    }
                }
            }
            q.closing
        };
        let n = batch.len();
        if n > 0 {
            shared.permits.add_permits(n);
            shared.counters.batches.fetch_add(1, Ordering::Relaxed);
            w.append_batch(&mut batch);
        }
        w.on_tick(w.clock.now());
        if closing && n == 0 {
            // `closing` was seen with an empty queue, and no event is queued after it is set.
            let result = w.finish();
            if let Err(e) = &result {
                tracing::error!(error = %e, "audit log did not shut down cleanly");
            }
            shared.done.send_replace(Some(result));
            return;
        }
    }
}
