//! The file log as a [`Source`]: which files of `[audit].dir` can hold records in a time
//! range, and reading them several at a time. The only part of the query engine that knows
//! about files; it decides nothing about which records match or what is made of them.

use std::io;
use std::path::{Path, PathBuf};

use super::filter::{Filter, Matcher, TimeRange};
use super::fold::{BadLine, Fold, Order, Part, Skipped};
use super::{QueryError, Source};
use crate::audit::record::Record;
use crate::audit::scan::{self, LineReader, LogFile};

/// The log files in one directory. The files are listed again by every scan, so a long-lived
/// `FileLog` sees the files the gateway has rolled since.
#[derive(Debug, Clone)]
pub struct FileLog {
    dir: PathBuf,
}

impl FileLog {
    /// The log in `dir`, which must exist (an empty directory is an empty log).
    pub fn open(dir: impl Into<PathBuf>) -> Result<FileLog, QueryError> {
        let dir = dir.into();
        if !dir.is_dir() {
            return Err(QueryError::NoLog { dir });
        }
        Ok(FileLog { dir })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

impl Source for FileLog {
    fn fold<F: Fold, E: From<QueryError>>(
        &self,
        filter: &Filter,
        order: Order,
        fold: &F,
        mut merge: impl FnMut(Part<F::Part>) -> Result<bool, E>,
    ) -> Result<(), E> {
        let files = scan::list_files(&self.dir).map_err(|source| QueryError::Read {
            path: self.dir.clone(),
            source,
        })?;
        let mut files = select_files(files, &filter.range);
        if order == Order::NewestFirst {
            files.reverse();
        }
        let matcher = Matcher::new(filter);
        // A window of files at a time bounds what is held in memory before it is merged.
        for window in files.chunks(scan::scan_threads()) {
            let results = scan::par_map(window, |f| scan_file(f, &matcher, fold));
            for (file, r) in window.iter().zip(results) {
                let part = r.map_err(|source| QueryError::Read {
                    path: file.path.clone(),
                    source,
                })?;
                if !merge(part)? {
                    return Ok(());
                }
            }
        }
        Ok(())
    }
}

/// The `ts` of a file's first record, if it has one.
fn first_ts(file: &LogFile) -> Option<String> {
    let mut r = LineReader::open(&file.path).ok()?;
    let line = r.next_line().ok()??;
    Record::parse(line.bytes).ok().map(|r| r.ts.0.into_owned())
}

/// The files that can hold records in `range`: `ts` never decreases along the log, so a file
/// is skipped when it starts at or after the end, or when the next file already starts before
/// the beginning. A file whose first line is not a record is kept: only reading it can tell.
fn select_files(files: Vec<LogFile>, range: &TimeRange) -> Vec<LogFile> {
    if range.is_all() {
        return files;
    }
    let firsts: Vec<Option<String>> = files.iter().map(first_ts).collect();
    files
        .into_iter()
        .enumerate()
        .filter(|(i, _)| {
            let starts_late = firsts[*i].as_ref().is_some_and(|t| range.is_past_end(t));
            let ends_early = range.since().is_some_and(|s| {
                firsts
                    .get(i + 1)
                    .and_then(Option::as_ref)
                    .is_some_and(|t| t.as_str() < s.as_str())
            });
            !starts_late && !ends_early
        })
        .map(|(_, f)| f)
        .collect()
}

fn scan_file<F: Fold>(
    file: &LogFile,
    matcher: &Matcher<'_>,
    fold: &F,
) -> io::Result<Part<F::Part>> {
    let mut part = Part {
        value: fold.start(),
        skipped: Skipped::default(),
    };
    let mut reader = LineReader::open(&file.path)?;
    while let Some(line) = reader.next_line()? {
        // An incomplete last line is one being written (or torn by a crash): not yet a record.
        if !line.complete || !matcher.may_match(line.bytes) {
            continue;
        }
        let rec = match Record::parse(line.bytes) {
            Ok(r) => r,
            Err(e) => {
                part.skipped.push(|| BadLine {
                    at: format!("{} line {}", file.name(), line.number),
                    reason: e.to_string(),
                });
                continue;
            }
        };
        if matcher.past_end(&rec) {
            break;
        }
        if matcher.matches(&rec) && !fold.add(&mut part.value, &rec, line.bytes) {
            break;
        }
    }
    Ok(part)
}
