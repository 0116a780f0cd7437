//! Bulk loading of a synthetic population into a store, through its [`Loader`].
//!
//! Records are written in key order, not index order: sled inserts sequential keys faster
//! than random ones and leaves a smaller file (measured at 1M records: about 79k/s and 474 MB
//! against 62k/s and 637 MB), and random inserts into a tree larger than sled's cache keep
//! reading evicted leaves back. The ids of a bucket (province, year, sex) are contiguous in
//! key space, so the key space is cut into ranges of whole buckets; worker threads claim
//! ranges from a shared counter, enumerate each bucket's indexes (`ids::indexes_in_bucket`),
//! sort them by id, generate the records and hand them to [`Loader::load`] themselves,
//! so generation, encoding and the store's work spread over the cores. Memory stays bounded
//! by `threads × batch` records plus one bucket's (id, index) pairs, whatever the count.
//! The calling thread only reports progress.

use std::ops::Range;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use thiserror::Error;

use super::ids::{buckets_by_key, indexes_in_bucket};
use super::{citizen_id_at, max_population, record_at};
use crate::citizen::Citizen;
use crate::id::CitizenId;
use crate::store::{Loader, StoreError};

/// Key ranges per worker thread: enough that a thread which finishes early takes over work,
/// few enough that each range is a long sequential run for the store.
const RANGES_PER_THREAD: usize = 8;

/// What to seed and how.
#[derive(Debug, Clone)]
pub struct SeedPlan {
    /// Records to write: indexes `0..count` of the population.
    pub count: u64,
    /// The population: the same seed always gives the same records.
    pub seed: u64,
    /// Worker threads; defaults to the available cores.
    pub threads: usize,
    /// Records per `load` call: large enough to amortise the store's per-batch cost,
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
    store: &dyn Loader,
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
    let buckets: Vec<(u16, u32)> = buckets_by_key().collect();
    let ranges = split_evenly(&buckets, plan.threads * RANGES_PER_THREAD);
    let next_range = AtomicUsize::new(0);
    // Set on the first store error, so the other workers stop at their next batch.
    let failed = AtomicBool::new(false);
    let (done_tx, done_rx) = mpsc::channel::<Result<u64, StoreError>>();

    let outcome = thread::scope(|scope| {
        for _ in 0..plan.threads {
            let done_tx = done_tx.clone();
            let (buckets, ranges, next_range, failed) = (&buckets, &ranges, &next_range, &failed);
            scope.spawn(move || {
                let mut writer = Writer {
                    store,
                    plan,
                    failed,
                    done_tx,
                    records: Vec::with_capacity(plan.batch),
                };
                let mut indexes = Vec::new();
                let mut keyed: Vec<(CitizenId, u64)> = Vec::new();
                while let Some(range) = ranges.get(next_range.fetch_add(1, Ordering::Relaxed)) {
                    for &(bucket, _) in &buckets[range.clone()] {
                        indexes.clear();
                        indexes_in_bucket(plan.seed, bucket, plan.count, &mut indexes);
                        keyed.clear();
                        keyed.extend(indexes.iter().map(|&i| (citizen_id_at(plan.seed, i), i)));
                        keyed.sort_unstable();
                        for &(_, index) in &keyed {
                            if !writer.push(index) {
                                return;
                            }
                        }
                    }
                    // Each range is written on its own so a worker never holds records of
                    // two distant key ranges in one batch.
                    if !writer.flush() {
                        return;
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
        records_in_store: store.count()?,
    })
}

/// One worker's batch on its way to the store.
struct Writer<'a> {
    store: &'a dyn Loader,
    plan: &'a SeedPlan,
    failed: &'a AtomicBool,
    done_tx: mpsc::Sender<Result<u64, StoreError>>,
    records: Vec<Citizen>,
}

impl Writer<'_> {
    /// Adds record `index`, writing the batch when it is full. False once seeding must stop.
    fn push(&mut self, index: u64) -> bool {
        self.records.push(record_at(self.plan.seed, index));
        self.records.len() < self.plan.batch || self.flush()
    }

    /// Writes what is pending. False once seeding must stop (this or another worker failed,
    /// or the caller stopped listening).
    fn flush(&mut self) -> bool {
        if self.failed.load(Ordering::Relaxed) {
            return false;
        }
        if self.records.is_empty() {
            return true;
        }
        let result = self.store.load(&self.records);
        let ok = result.is_ok();
        if !ok {
            self.failed.store(true, Ordering::Relaxed);
        }
        let sent = self
            .done_tx
            .send(result.map(|()| self.records.len() as u64))
            .is_ok();
        self.records.clear();
        ok && sent
    }
}

/// Cuts `buckets` (with their weights) into at most `parts` contiguous ranges of about equal
/// weight, none empty.
fn split_evenly(buckets: &[(u16, u32)], parts: usize) -> Vec<Range<usize>> {
    let total: u64 = buckets.iter().map(|&(_, w)| u64::from(w)).sum();
    let parts = parts.max(1) as u64;
    let mut ranges = Vec::new();
    let (mut start, mut acc) = (0, 0u64);
    for (i, &(_, w)) in buckets.iter().enumerate() {
        acc += u64::from(w);
        // Close a range each time the running weight passes the next 1/parts mark.
        if acc * parts >= total * (ranges.len() as u64 + 1) {
            ranges.push(start..i + 1);
            start = i + 1;
        }
    }
    if start < buckets.len() {
        ranges.push(start..buckets.len());
    }
    ranges
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_covers_everything_once() {
        let buckets: Vec<(u16, u32)> = (0..100).map(|b| (b, u32::from(b % 7))).collect();
        for parts in [1, 2, 3, 16, 200] {
            let ranges = split_evenly(&buckets, parts);
            assert!(ranges.len() <= parts && !ranges.is_empty());
            assert_eq!(ranges[0].start, 0);
            assert_eq!(ranges[ranges.len() - 1].end, 100);
            assert!(ranges.windows(2).all(|w| w[0].end == w[1].start));
            assert!(ranges.iter().all(|r| !r.is_empty()));
        }
    }
}
