//! `batch` durability's syncs, on a thread of their own.
//!
//! In `batch` mode a caller hears back once its record is written, and the log is made durable
//! at most `flush_ms` later. If the writer ran that `fdatasync` itself, every append queued
//! behind it would wait for it — and an `fdatasync` that queues behind other writeback on the
//! same disk can take hundreds of milliseconds, which `batch` mode exists to keep away from
//! callers. So the writer only marks the file dirty and goes on writing; this thread syncs it
//! `flush_ms` after the first unsynced write, on its own handle to the file.
//!
//! A failed sync may have lost acknowledged records: it is handed back to the writer, which
//! fails closed exactly as for a failed write (health off, files reopened, probing).

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::clock::{Clock, Tick};

/// Told how long each sync took.
pub(super) type OnSync = Box<dyn Fn(Duration) + Send>;
/// Told that a sync failed (the failure itself is fetched with [`Syncer::take_failure`]).
pub(super) type OnFailure = Box<dyn Fn() + Send>;

pub(super) struct Syncer {
    inner: Arc<Inner>,
    thread: Option<JoinHandle<()>>,
}

struct Inner {
    state: Mutex<State>,
    cv: Condvar,
    flush: Duration,
    clock: Clock,
}

#[derive(Default)]
struct State {
    /// The file holding unsynced writes, its path (for messages), and the oldest such write.
    dirty: Option<(Arc<File>, PathBuf, Tick)>,
    /// Why a sync failed, until the writer takes it.
    failed: Option<String>,
    stop: bool,
}

impl Inner {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Syncer {
    /// Starts the thread: each dirty file is synced `flush` after its first unsynced write.
    pub(super) fn start(
        flush: Duration,
        clock: Clock,
        on_sync: OnSync,
        on_failure: OnFailure,
    ) -> std::io::Result<Syncer> {
        let inner = Arc::new(Inner {
            state: Mutex::new(State::default()),
            cv: Condvar::new(),
            flush,
            clock: clock.clone(),
        });
        let weak = Arc::downgrade(&inner);
        clock.on_advance(move || {
            if let Some(i) = weak.upgrade() {
                let _s = i.lock();
                i.cv.notify_one();
            }
        });
        let i = inner.clone();
        let thread = std::thread::Builder::new()
            .name("popgate-audit-sync".into())
            .spawn(move || run(&i, &on_sync, &on_failure))?;
        Ok(Syncer {
            inner,
            thread: Some(thread),
        })
    }

    /// Notes that `file` (at `path`) now holds writes that are not yet durable. Cheap when it
    /// is already marked: the sync then due covers these writes too.
    pub(super) fn mark_dirty(&self, file: &Arc<File>, path: &Path) {
        let mut s = self.inner.lock();
        if s.dirty.is_none() {
            s.dirty = Some((file.clone(), path.to_path_buf(), self.inner.clock.now()));
            self.inner.cv.notify_one();
        }
    }

    /// Drops the pending sync: the writer is about to sync the file itself (before a
    /// checkpoint, a roll or shutdown), or about to close it after a failure.
    pub(super) fn forget(&self) {
        self.inner.lock().dirty = None;
    }

    /// `true` if a sync failed and the writer has not taken the failure yet.
    pub(super) fn has_failure(&self) -> bool {
        self.inner.lock().failed.is_some()
    }

    /// Why a sync failed, once.
    pub(super) fn take_failure(&self) -> Option<String> {
        self.inner.lock().failed.take()
    }
}

impl Drop for Syncer {
    /// Stops the thread after the sync in progress, if any. A pending sync is dropped: the
    /// writer syncs the log itself at shutdown.
    fn drop(&mut self) {
        self.inner.lock().stop = true;
        self.inner.cv.notify_one();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Waits on `cv` until the real instant `until` or a notification, whichever comes first (the
/// writer's linger, which is a fraction of a real sync); a poisoned lock is taken over as it is
/// (the audit threads keep going and report through their own state).
pub(super) fn wait_until<'a, T>(
    cv: &Condvar,
    guard: MutexGuard<'a, T>,
    until: Instant,
) -> MutexGuard<'a, T> {
    let left = until.saturating_duration_since(Instant::now());
    cv.wait_timeout(guard, left)
        .map(|(g, _)| g)
        .unwrap_or_else(|e| e.into_inner().0)
}

fn run(inner: &Inner, on_sync: &OnSync, on_failure: &OnFailure) {
    let mut s = inner.lock();
    loop {
        if s.stop {
            return;
        }
        let Some((_, _, since)) = &s.dirty else {
            s = inner.cv.wait(s).unwrap_or_else(PoisonError::into_inner);
            continue;
        };
        let due = since.after(inner.flush);
        if inner.clock.now() < due {
            s = inner.clock.wait_until(&inner.cv, s, due);
            continue;
        }
        let Some((file, path, _)) = s.dirty.take() else {
            continue;
        };
        drop(s);
        let t = Instant::now();
        let result = file.sync_data();
        let took = t.elapsed();
        match result {
            Ok(()) => on_sync(took),
            Err(e) => {
                inner.lock().failed = Some(format!("cannot sync {}: {e}", path.display()));
                on_failure();
            }
        }
        s = inner.lock();
    }
}
