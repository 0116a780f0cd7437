//! The durable baseline's log: what any server that keeps a durable record before each answer
//! must pay, and nothing popgate adds on top.
//!
//! One writer thread, as the gateway's audit writer (`src/audit/writer.rs`) has: callers queue
//! under a mutex and the first one into an empty queue wakes the writer; the writer takes the
//! whole queue, writes one fixed record of [`RECORD_BYTES`] per caller with one `write`, makes
//! them durable with one `fdatasync`, then wakes each caller. After answering a batch of
//! several it lingers 1/8 of a typical sync (at most 1 ms), as the audit writer does, so the
//! callers it just answered can join the next batch instead of settling into two groups
//! taking turns. What it leaves out is popgate's own work: no JSON, no hash chain, no
//! checkpoints, no rolling, no queue bound (the calls in flight bound it here), no failure
//! handling beyond failing the callers.
//!
//! Its thread is named `popgate-audit-durable` so that the bench counts its CPU as audit, as
//! it counts the gateway's writer's.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use tokio::sync::oneshot;

/// The size of one record, newline included: the gateway's mean audit line on the bench's
/// own load (lookup=80,verify=20, one bench client). `tests/bench_cli.rs` measures the
/// gateway's mean line in a real run and checks that this is within 20% of it.
pub const RECORD_BYTES: usize = 570;

/// The thread's name: `popgate-audit*`, so `report::ThreadCpu` counts it as audit.
pub const THREAD_NAME: &str = "popgate-audit-durable";

/// What the writer did since it started.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DurableStats {
    pub records: u64,
    pub batches: u64,
    pub syncs: u64,
    pub sync_us: u64,
    /// Bytes appended to the file.
    pub bytes: u64,
}

#[derive(Default)]
struct Counters {
    records: AtomicU64,
    batches: AtomicU64,
    syncs: AtomicU64,
    sync_us: AtomicU64,
    bytes: AtomicU64,
}

struct Queue {
    waiting: Vec<oneshot::Sender<bool>>,
    closing: bool,
}

struct Shared {
    queue: Mutex<Queue>,
    wake: Condvar,
    counters: Counters,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// A handle to the durable log; [`DurableLog::shutdown`] stops the writer.
pub struct DurableLog {
    shared: Arc<Shared>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl DurableLog {
    /// Creates (truncating) `path` and starts the writer thread.
    pub fn open(path: &Path) -> std::io::Result<DurableLog> {
        let file = OpenOptions::new()
            .create(true)
            .write(true)
            .truncate(true)
            .open(path)?;
        let shared = Arc::new(Shared {
            queue: Mutex::new(Queue {
                waiting: Vec::new(),
                closing: false,
            }),
            wake: Condvar::new(),
            counters: Counters::default(),
        });
        let sh = shared.clone();
        let thread = std::thread::Builder::new()
            .name(THREAD_NAME.into())
            .spawn(move || write_loop(file, &sh))?;
        Ok(DurableLog {
            shared,
            thread: Mutex::new(Some(thread)),
        })
    }

    /// Resolves once a record for this call is written and fdatasynced; `false` if the write
    /// or sync failed or the log is closed.
    pub async fn append(&self) -> bool {
        let (tx, rx) = oneshot::channel();
        {
            let mut q = self.shared.lock();
            if q.closing {
                return false;
            }
            let was_empty = q.waiting.is_empty();
            q.waiting.push(tx);
            // As in the audit writer: it sleeps only after seeing an empty queue under this
            // lock, so only the first caller after that needs to wake it.
            if was_empty {
                self.shared.wake.notify_one();
            }
        }
        rx.await.unwrap_or(false)
    }

    pub fn stats(&self) -> DurableStats {
        let c = &self.shared.counters;
        DurableStats {
            records: c.records.load(Ordering::Relaxed),
            batches: c.batches.load(Ordering::Relaxed),
            syncs: c.syncs.load(Ordering::Relaxed),
            sync_us: c.sync_us.load(Ordering::Relaxed),
            bytes: c.bytes.load(Ordering::Relaxed),
        }
    }

    /// Answers what is queued, syncs, and waits for the writer thread to end.
    pub fn shutdown(&self) {
        {
            let mut q = self.shared.lock();
            q.closing = true;
            self.shared.wake.notify_one();
        }
        let thread = self
            .thread
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(t) = thread {
            let _ = t.join();
        }
    }
}

impl Drop for DurableLog {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// One record: a fixed line of the gateway's record size. Its content does not matter to the
/// disk; a sequence number keeps the lines distinct for whoever reads the file.
fn push_record(buf: &mut Vec<u8>, seq: u64) {
    let start = buf.len();
    let _ = write!(buf, "{seq:020} ");
    buf.resize(start + RECORD_BYTES - 1, b'x');
    buf.push(b'\n');
}

fn write_loop(mut file: File, shared: &Shared) {
    let mut batch: Vec<oneshot::Sender<bool>> = Vec::new();
    let mut buf: Vec<u8> = Vec::with_capacity(1 << 16);
    let mut seq = 0u64;
    let mut sync_avg_us = 0u64;
    let mut linger_until: Option<Instant> = None;
    loop {
        let closing = {
            let mut q = shared.lock();
            loop {
                if !q.waiting.is_empty() {
                    if let Some(until) = linger_until
                        && !q.closing
                    {
                        let now = Instant::now();
                        if now < until {
                            q = shared
                                .wake
                                .wait_timeout(q, until - now)
                                .unwrap_or_else(PoisonError::into_inner)
                                .0;
                            continue;
                        }
                    }
                    linger_until = None;
                    std::mem::swap(&mut q.waiting, &mut batch);
                    break;
                }
                if q.closing {
                    break;
                }
                q = shared.wake.wait(q).unwrap_or_else(PoisonError::into_inner);
            }
            q.closing
        };
        let n = batch.len();
        if n > 0 {
            buf.clear();
            for _ in 0..n {
                seq += 1;
                push_record(&mut buf, seq);
            }
            let t = Instant::now();
            let ok = file.write_all(&buf).and_then(|()| file.sync_data()).is_ok();
            let us = t.elapsed().as_micros() as u64;
            let c = &shared.counters;
            c.batches.fetch_add(1, Ordering::Relaxed);
            if ok {
                c.records.fetch_add(n as u64, Ordering::Relaxed);
                c.syncs.fetch_add(1, Ordering::Relaxed);
                c.sync_us.fetch_add(us, Ordering::Relaxed);
                c.bytes.fetch_add(buf.len() as u64, Ordering::Relaxed);
                sync_avg_us = if sync_avg_us == 0 {
                    us
                } else {
                    (sync_avg_us * 7 + us) / 8
                };
            }
            for reply in batch.drain(..) {
                let _ = reply.send(ok);
            }
            // The audit writer's linger (`Writer::after_batch`): a lone caller never waits.
            if n > 1 {
                let linger = Duration::from_micros((sync_avg_us / 8).min(1000));
                linger_until = Some(Instant::now() + linger);
            }
        } else if closing {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_answered_call_has_its_record_synced_in_the_file() {
        let dir = std::env::temp_dir().join(format!("popgate-durable-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("durable.log");
        let log = Arc::new(DurableLog::open(&path).unwrap());
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .build()
            .unwrap();
        let answered = rt.block_on(async {
            let tasks: Vec<_> = (0..200)
                .map(|_| {
                    let log = log.clone();
                    tokio::spawn(async move { log.append().await })
                })
                .collect();
            let mut ok = 0;
            for t in tasks {
                ok += u64::from(t.await.unwrap());
            }
            ok
        });
        log.shutdown();
        let stats = log.stats();
        assert_eq!(answered, 200);
        assert_eq!(stats.records, 200);
        assert!(stats.syncs > 0 && stats.syncs <= stats.batches, "{stats:?}");
        let text = std::fs::read_to_string(&path).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 200);
        assert!(lines.iter().all(|l| l.len() + 1 == RECORD_BYTES));
        assert_eq!(stats.bytes, text.len() as u64);
        // Each line its own record: the sequence numbers 1..=200 in order.
        for (i, l) in lines.iter().enumerate() {
            assert_eq!(l[..20].parse::<u64>().unwrap(), i as u64 + 1);
        }
        assert!(!rt.block_on(log.append()), "a closed log answers no call");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
