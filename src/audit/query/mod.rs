//! Reading the audit log back: the engine behind `popgate audit query|report|stats`, for any
//! reader that needs records selected, paged or counted (the command line today; a console
//! later).
//!
//! Two halves, kept apart so that each place the lines come from needs only its own
//! [`Source`] and no change to the rest:
//!
//! - what to do with records, knowing nothing of files: the [`Filter`] (validated [`Bound`]s
//!   and a [`TimeRange`], client, citizen, method, purpose, certificate, outcome) and its cheap line test,
//!   the [`Fold`] contract, and the aggregations built on it ([`Stats`] and [`Counts`], the
//!   [`Report`] of a citizen's accesses, a [`Page`] of the newest matches);
//! - where the lines come from: [`Source::fold`], which reads parts of a log on several
//!   threads and hands each part's fold back in log order. [`FileLog`] implements it for the
//!   files under `[audit].dir`, [`DbLog`] for the `audit_log` table of a cluster's database.
//!   [`Source`]'s other methods are written against `fold` alone.
//!
//! Read-only: nothing here changes the log, so it is safe on a live one (a line being written
//! shows as an incomplete last line and is skipped). Scans stream the lines once, parse them in
//! place and skip what cannot match: a substring test before parsing, whole files before the
//! range starts, everything after it ends (`ts` never decreases along the log). Lines that are
//! not records are skipped and counted in [`Skipped`], never fatal: a damaged log must stay
//! readable, and `audit verify` is what judges it.
//!
//! It never prints, and knows no command-line flags: callers turn [`QueryError`] and
//! [`Skipped`] into their own words.

mod fold;
mod page;
mod report;
mod stats;

pub mod database;
pub mod files;
pub mod filter;

use std::path::PathBuf;

use thiserror::Error;

use super::record::Record;

pub use database::DbLog;
pub use files::FileLog;
pub use filter::{Bound, Filter, Matcher, TimeRange};
pub use fold::{BadLine, Fold, Order, Part, Skipped};
pub use page::Page;
pub use report::{Report, owned};
pub use stats::{Counts, Stats};

/// What can go wrong reading the log, by whose fault.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum QueryError {
    /// The caller's: a time that is neither RFC 3339 nor a date.
    #[error("{text:?}: expected RFC 3339 (2026-11-24T05:00:00Z) or a date (2026-11-24)")]
    BadBound { text: String },
    /// The caller's: a range that cannot hold a record.
    #[error("since {since} is not before until {until}")]
    EmptyRange { since: Bound, until: Bound },
    /// The caller's: the log directory named does not exist.
    #[error("{}: no such directory", dir.display())]
    NoLog { dir: PathBuf },
    /// Reading the log in the database failed: it cannot be reached, has no schema this
    /// binary reads, or a query failed.
    #[error(transparent)]
    Db(#[from] super::db_read::DbReadError),
    /// Ours or the machine's: reading the log failed (permissions, I/O error).
    #[error("reading {}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl QueryError {
    /// Whether the caller can fix it by asking differently (a console answers 400), as opposed
    /// to the log being unreadable.
    pub fn is_caller_error(&self) -> bool {
        !matches!(self, QueryError::Read { .. } | QueryError::Db(_))
    }
}

/// A log to read: where the lines come from, and the operations built on reading them.
///
/// Only [`fold`](Source::fold) knows where lines come from. The other methods are written
/// against it, so a new source gets them for free, and may replace one with something its
/// storage does better (a database answers [`page`](Source::page) with `ORDER BY seq DESC
/// LIMIT`).
pub trait Source {
    /// Folds the records that match `filter` into one `fold.start()` per part of the log (a
    /// file), several parts at a time, and hands each part to `merge` in `order`; within a part
    /// records come oldest first. `merge` returns `false` to stop reading. Memory is bounded by
    /// the parts in flight, so a huge log is streamed, not collected.
    fn fold<F: Fold, E: From<QueryError>>(
        &self,
        filter: &Filter,
        order: Order,
        fold: &F,
        merge: impl FnMut(Part<F::Part>) -> Result<bool, E>,
    ) -> Result<(), E>;

    /// Streams the matching records oldest first, at most `limit` of them, and returns how
    /// many there were. `render` appends what the caller shows for a record (a table row, the
    /// line itself) to a part's buffer, on the scan threads, so that formatting is spread over
    /// them as parsing is; `sink` gets those buffers in log order, cut at the limit, with the
    /// lines skipped in that part, and returns `false` to stop.
    fn query<E: From<QueryError>>(
        &self,
        filter: &Filter,
        limit: Option<u64>,
        render: impl Fn(&mut Vec<u8>, &Record<'_>, &[u8]) + Sync,
        mut sink: impl FnMut(Part<&[u8]>) -> Result<bool, E>,
    ) -> Result<u64, E> {
        let limit = limit.unwrap_or(u64::MAX);
        let mut left = limit;
        self.fold(
            filter,
            Order::OldestFirst,
            &fold::Render { render, limit },
            |part| {
                let r = part.value;
                let take = (r.ends.len() as u64).min(left) as usize;
                let end = take.checked_sub(1).map_or(0, |i| r.ends[i]);
                left -= take as u64;
                let more = sink(Part {
                    value: &r.buf[..end],
                    skipped: part.skipped,
                })?;
                Ok::<_, E>(more && left > 0)
            },
        )?;
        Ok(limit - left)
    }

    /// One page of the matching records, newest first: `limit` of them after skipping the
    /// `offset` newest. Reads from the newest end and stops once the page is known, but each
    /// part being read keeps up to `offset + limit + 1` lines: meant for the first pages, not
    /// for an export. `map` turns a record into what the caller keeps (e.g.
    /// [`owned`]).
    fn page<T>(
        &self,
        filter: &Filter,
        offset: u64,
        limit: u64,
        map: impl FnMut(&Record<'_>, &[u8]) -> T,
    ) -> Result<Page<T>, QueryError> {
        page::page(self, filter, offset, limit, map)
    }

    /// Who accessed `citizen`'s data within `range`: every record about that citizen, newest
    /// first, each turned into a `T` by `map` on the scan threads (e.g.
    /// [`owned`], or the line itself).
    fn report<T: Send>(
        &self,
        citizen: &str,
        range: &TimeRange,
        map: impl Fn(&Record<'_>, &[u8]) -> T + Sync,
    ) -> Result<Report<T>, QueryError> {
        report::report(self, citizen, range, map)
    }

    /// Counts of the matching records by client and outcome.
    fn stats(&self, filter: &Filter) -> Result<Stats, QueryError> {
        let mut all = Stats::default();
        self.fold(filter, Order::OldestFirst, &stats::Count, |part| {
            all.merge(part.value);
            all.skipped.merge(part.skipped);
            Ok::<_, QueryError>(true)
        })?;
        Ok(all)
    }
}

/// Either log, for a reader told only at run time which one it reads (`--dir` or `--db` on
/// the command line, the audit console of a gateway with either backend): callers hold a
/// `Log` and never ask which.
#[derive(Debug)]
pub enum Log {
    Files(FileLog),
    Db(Box<DbLog>),
}

impl Source for Log {
    fn fold<F: Fold, E: From<QueryError>>(
        &self,
        filter: &Filter,
        order: Order,
        fold: &F,
        merge: impl FnMut(Part<F::Part>) -> Result<bool, E>,
    ) -> Result<(), E> {
        match self {
            Log::Files(l) => l.fold(filter, order, fold, merge),
            Log::Db(l) => l.fold(filter, order, fold, merge),
        }
    }

    // Each log's own way to a page (files read backwards, the database's ORDER BY … LIMIT).
    fn page<T>(
        &self,
        filter: &Filter,
        offset: u64,
        limit: u64,
        map: impl FnMut(&Record<'_>, &[u8]) -> T,
    ) -> Result<Page<T>, QueryError> {
        match self {
            Log::Files(l) => l.page(filter, offset, limit, map),
            Log::Db(l) => l.page(filter, offset, limit, map),
        }
    }
}

#[cfg(test)]
mod tests;
