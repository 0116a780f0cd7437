//! A bounded page of the newest matching records, for a reader that pages back from the end
//! of the log (a console's result list).

use std::collections::VecDeque;

use super::filter::Filter;
use super::fold::{Fold, Order, Skipped};
use super::{QueryError, Source};
use crate::audit::record::Record;

/// Records newest first, after `offset` newer ones.
#[derive(Debug, Clone, PartialEq)]
pub struct Page<T> {
    pub records: Vec<T>,
    /// Whether older matching records follow this page.
    pub more: bool,
    pub skipped: Skipped,
}

/// Keeps the last `keep` matching lines of a part. It keeps lines rather than what `map`
/// makes of them: most of a part's matches are pushed out again, and copying a line into a
/// reused buffer costs less than building a value that is dropped.
struct Tail {
    keep: usize,
}

impl Fold for Tail {
    type Part = VecDeque<Vec<u8>>;

    fn start(&self) -> Self::Part {
        VecDeque::new()
    }

    fn add(&self, lines: &mut Self::Part, _r: &Record<'_>, line: &[u8]) -> bool {
        if lines.len() < self.keep {
            lines.push_back(line.to_vec());
        } else if let Some(mut oldest) = lines.pop_front() {
            oldest.clear();
            oldest.extend_from_slice(line);
            lines.push_back(oldest);
        }
        true
    }
}

pub(super) fn page<S: Source + ?Sized, T>(
    source: &S,
    filter: &Filter,
    offset: u64,
    limit: u64,
    map: impl FnMut(&Record<'_>, &[u8]) -> T,
) -> Result<Page<T>, QueryError> {
    let mut skipped = Skipped::default();
    // One more than the page, to tell whether there is a next one.
    let keep =
        usize::try_from(offset.saturating_add(limit).saturating_add(1)).unwrap_or(usize::MAX);
    let mut newest: Vec<Vec<u8>> = Vec::new();
    source.fold(filter, Order::NewestFirst, &Tail { keep }, |part| {
        skipped.merge(part.skipped);
        let room = keep - newest.len();
        newest.extend(part.value.into_iter().rev().take(room));
        Ok::<_, QueryError>(newest.len() < keep)
    })?;
    Ok(cut(newest, offset, limit, skipped, map))
}

/// The page of `newest` (matching lines, newest first, up to `offset + limit + 1`) after
/// `offset` of them, each turned into a `T` by `map`.
pub(super) fn cut<T>(
    newest: Vec<Vec<u8>>,
    offset: u64,
    limit: u64,
    skipped: Skipped,
    mut map: impl FnMut(&Record<'_>, &[u8]) -> T,
) -> Page<T> {
    let start = usize::try_from(offset).unwrap_or(usize::MAX);
    let end = start.saturating_add(usize::try_from(limit).unwrap_or(usize::MAX));
    let more = newest.len() > end;
    let records = newest
        .iter()
        .take(end)
        .skip(start)
        // These lines parsed once already, in the scan.
        .filter_map(|line| Record::parse(line).ok().map(|r| map(&r, line)))
        .collect();
    Page {
        records,
        more,
        skipped,
    }
}
