//! The contract between a [`Source`](super::Source) and what is computed from its records:
//! a [`Fold`] per part of the log, run on the scan threads, whose results come back in log
//! order as [`Part`]s together with the lines that were not records.

use std::fmt;

use crate::audit::record::Record;

/// The order in which a scan hands back its parts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Order {
    #[default]
    OldestFirst,
    /// The newest part first (records within a part still come oldest first): a page of the
    /// newest records stops reading early.
    NewestFirst,
}

/// What to compute from the matching records of one part of the log. Runs on several threads
/// at once, one accumulator per part, hence `Sync` and `Send`.
pub trait Fold: Sync {
    /// What one part folds into.
    type Part: Send;
    /// A fresh accumulator for one part.
    fn start(&self) -> Self::Part;
    /// Adds one matching record, given as parsed and as the line stored (without its newline).
    /// Returns `false` when this part needs no more records.
    fn add(&self, part: &mut Self::Part, record: &Record<'_>, line: &[u8]) -> bool;
}

/// One part's result, and the lines in it that were not records.
#[derive(Debug)]
pub struct Part<T> {
    pub value: T,
    pub skipped: Skipped,
}

/// A line that is not a record. Scans skip it rather than fail: a damaged log must stay
/// readable, and `audit verify` is the tool that judges it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadLine {
    /// Where it is: `<file name> line <n>` for a file log.
    pub at: String,
    /// Why it is not a record (the parser's message).
    pub reason: String,
}

impl fmt::Display for BadLine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: not a record ({})", self.at, self.reason)
    }
}

/// Lines skipped because they were not records: how many, and the first few of them. A log
/// full of garbage must not fill memory with messages about it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Skipped {
    pub count: u64,
    /// The first [`Skipped::KEPT`] of them, in the order they were merged.
    pub first: Vec<BadLine>,
}

impl Skipped {
    pub const KEPT: usize = 10;

    /// Counts one more skipped line; `describe` runs only if it is among the first kept.
    pub fn push(&mut self, describe: impl FnOnce() -> BadLine) {
        self.count += 1;
        if self.first.len() < Self::KEPT {
            self.first.push(describe());
        }
    }

    /// Adds what a later part skipped.
    pub fn merge(&mut self, later: Skipped) {
        let room = Self::KEPT.saturating_sub(self.first.len());
        self.first.extend(later.first.into_iter().take(room));
        self.count += later.count;
    }
}

/// [`Source::query`](super::Source::query)'s fold: each part renders its records into one
/// buffer and notes where each one ends, so that the limit can cut it.
pub(super) struct Render<R> {
    pub render: R,
    pub limit: u64,
}

#[derive(Default)]
pub(super) struct Rendered {
    pub buf: Vec<u8>,
    pub ends: Vec<usize>,
}

impl<R: Fn(&mut Vec<u8>, &Record<'_>, &[u8]) + Sync> Fold for Render<R> {
    type Part = Rendered;

    fn start(&self) -> Rendered {
        Rendered::default()
    }

    fn add(&self, part: &mut Rendered, record: &Record<'_>, line: &[u8]) -> bool {
        (self.render)(&mut part.buf, record, line);
        part.ends.push(part.buf.len());
        // No part needs more than the whole limit.
        (part.ends.len() as u64) < self.limit
    }
}
