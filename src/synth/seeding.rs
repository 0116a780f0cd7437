//! Bulk loading of a synthetic population into a [`Store`].
//!
//! Worker threads claim chunks of indexes from a shared counter, generate each chunk and hand
//! it to [`Store::load_batch`] themselves, so generation, encoding and the store's own work
//! all spread over the cores. Memory stays bounded by `threads × batch` records whatever the
//! count. The calling thread only reports progress.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use thiserror::Error;

use super::{max_population, record_at};
use crate::store::{Store, StoreError};

/// What to seed and how.
#[derive(Debug, Clone)]
pub struct SeedPlan {
    /// Records to write: indexes `0..count` of the population.
    pub count: u64,
    /// The population: the same seed always gives the same records.
    pub seed: u64,
    /// Worker threads; defaults to the available cores.
    pub threads: usize,
    /// Records per `load_batch` call: large enough to amortise the store's per-batch cost,
    /// small enough that `threads × batch` records are a few megabytes.
    pub batch: usize,
}

impl SeedPlan {
    pub fn new(count: u64, seed: u64) -> Self {
        SeedPlan {
            count,
            seed,
            threads: thread::available_parallelism().map_or(2, |n| n.get()),
            batch: 2_000,
        }
    }
}

/// What a seeding run did.
#[derive(Debug, Clone)]
pub struct SeedReport {
    /// Records written (the plan's count).
    pub written: u64,
    /// Wall time, including the final flush.
    pub elapsed: Duration,
    /// Citizens in the store afterwards (more than `written` if it held others before).
    pub records_in_store: u64,
}

impl SeedReport {
    pub fn records_per_sec(&self) -> f64 {
        self.written as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
}

/// Why seeding failed: a plan the caller should fix, or the store (ours).
#[derive(Debug, Error)]
pub enum SeedError {
    #[error("count must be between 1 and {max} (ids are unique only up to there), got {count}")]
    Count { count: u64, max: u64 },
    #[error("threads and batch must be at least 1")]
    Plan,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Writes records `0..plan.count` of population `plan.seed` into `store`, then flushes it.
/// `progress` is called on the calling thread with the number of records written so far,
/// after every batch. Existing records with the same ids are overwritten, so seeding again
/// with the same seed changes nothing.
pub fn seed_store(
    store: &dyn Store,
    plan: &SeedPlan,
    mut progress: impl FnMut(u64),
) -> Result<SeedReport, SeedError> {
    let max = max_population();
    if plan.count == 0 || plan.count > max {
        return Err(SeedError::Count {
            count: plan.count,
            max,
        });
    }
    if plan.threads == 0 || plan.batch == 0 {
        return Err(SeedError::Plan);
    }
    let started = Instant::now();
    let next = AtomicU64::new(0);
    // Set on the first store error, so the other workers stop at their next batch.
    let failed = AtomicBool::new(false);
    let batch = plan.batch as u64;
    let (done_tx, done_rx) = mpsc::channel::<Result<u64, StoreError>>();

    let outcome = thread::scope(|scope| {
        for _ in 0..plan.threads {
            let done_tx = done_tx.clone();
            let (next, failed) = (&next, &failed);
            scope.spawn(move || {
                let mut records = Vec::with_capacity(plan.batch);
                while !failed.load(Ordering::Relaxed) {
                    let start = next.fetch_add(batch, Ordering::Relaxed);
                    if start >= plan.count {
                        break;
                    }
                    let end = (start + batch).min(plan.count);
                    records.clear();
                    records.extend((start..end).map(|i| record_at(plan.seed, i)));
                    let result = store.load_batch(&records).map(|()| end - start);
                    if result.is_err() {
                        failed.store(true, Ordering::Relaxed);
                    }
                    if done_tx.send(result).is_err() {
                        break;
                    }
                }
            });
        }
        // Only the workers hold senders now: the loop below ends when the last one exits.
        drop(done_tx);
        let mut written = 0;
        for result in done_rx {
            match result {
                Ok(n) => {
                    written += n;
                    progress(written);
                }
                Err(err) => return Err(err),
            }
        }
        Ok(written)
    });
    let written = outcome?;
    store.flush()?;
    Ok(SeedReport {
        written,
        elapsed: started.elapsed(),
        records_in_store: store.len(),
    })
}
