//! The file log as a [`Source`]: which files of `[audit].dir` can hold records in a time
//! range, and reading them several at a time. The only part of the query engine that knows
//! about files; it decides nothing about which records match or what is made of them.

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use super::filter::{Filter, Matcher, TimeRange};
use super::fold::{BadLine, Fold, Order, Part, Skipped};
use super::{Page, QueryError, Source};
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

    /// Reads each file backwards from its end, newest record first, and stops as soon as the
    /// page is known: the first pages of a search cost the records newer than them, not the
    /// files they lie in (a 64 MiB file is ~140,000 records).
    fn page<T>(
        &self,
        filter: &Filter,
        offset: u64,
        limit: u64,
        map: impl FnMut(&Record<'_>, &[u8]) -> T,
    ) -> Result<Page<T>, QueryError> {
        let files = scan::list_files(&self.dir).map_err(|source| QueryError::Read {
            path: self.dir.clone(),
            source,
        })?;
        let matcher = Matcher::new(filter);
        // One more than the page, to tell whether there is a next one.
        let keep =
            usize::try_from(offset.saturating_add(limit).saturating_add(1)).unwrap_or(usize::MAX);
        let files: Vec<LogFile> = select_files(files, &filter.range)
            .into_iter()
            .rev()
            .collect();
        let mut newest: Vec<Vec<u8>> = Vec::new();
        let mut skipped = Skipped::default();
        // Several files at a time, each read backwards until it holds a page of its own: a
        // common filter stops within the newest file, a rare one is read on every scan thread.
        'files: for window in files.chunks(scan::scan_threads()) {
            let results = scan::par_map(window, |f| newest_in_file(f, &matcher, keep));
            for (file, r) in window.iter().zip(results) {
                let (lines, part_skipped, before_start) = r.map_err(|source| QueryError::Read {
                    path: file.path.clone(),
                    source,
                })?;
                skipped.merge(part_skipped);
                let room = keep - newest.len();
                newest.extend(lines.into_iter().take(room));
                if before_start || newest.len() >= keep {
                    break 'files;
                }
            }
        }
        Ok(super::page::cut(newest, offset, limit, skipped, map))
    }
}

/// The newest `keep` lines of `file` that `matcher` selects, newest first, the lines that were
/// not records, and whether the file reaches back before the range (so older files cannot
/// match).
fn newest_in_file(
    file: &LogFile,
    matcher: &Matcher<'_>,
    keep: usize,
) -> io::Result<(Vec<Vec<u8>>, Skipped, bool)> {
    let mut lines = Vec::new();
    let mut skipped = Skipped::default();
    let mut before_start = false;
    newest_first(&file.path, |line, at| {
        if !matcher.may_match(line) {
            return true;
        }
        let rec = match Record::parse(line) {
            Ok(r) => r,
            Err(e) => {
                skipped.push(|| BadLine {
                    at: format!("{} byte {at}", file.name()),
                    reason: e.to_string(),
                });
                return true;
            }
        };
        if matcher.before_start(&rec) {
            before_start = true;
            return false;
        }
        if matcher.matches(&rec) {
            lines.push(line.to_vec());
        }
        lines.len() < keep
    })?;
    Ok((lines, skipped, before_start))
}

/// Bytes read at a time going backwards.
const BACK_CHUNK: u64 = 256 * 1024;
/// A line longer than this is no record (the writer's are a few hundred bytes): reading
/// backwards, it is skipped rather than gathered whole into memory.
const MAX_LINE: usize = 1 << 20;

/// Calls `visit` with each complete line of `path` (without its newline) and the byte offset
/// where it starts, last line first, until `visit` returns `false`. An incomplete last line
/// (one being written) is not a line yet.
fn newest_first(path: &Path, visit: impl FnMut(&[u8], u64) -> bool) -> io::Result<()> {
    newest_first_by(path, BACK_CHUNK, MAX_LINE, visit)
}

fn newest_first_by(
    path: &Path,
    chunk: u64,
    max_line: usize,
    mut visit: impl FnMut(&[u8], u64) -> bool,
) -> io::Result<()> {
    let mut f = File::open(path)?;
    let mut end = f.metadata()?.len();
    if end == 0 {
        return Ok(());
    }
    // The bytes of a line whose start lies before the part read so far (without its newline).
    let mut tail: Option<Vec<u8>> = None;
    let mut last = [0u8];
    f.seek(SeekFrom::Start(end - 1))?;
    f.read_exact(&mut last)?;
    // Going back past the rest of a line not to be visited (incomplete, or too long).
    let mut skipping = last[0] != b'\n';
    while end > 0 {
        let start = end.saturating_sub(chunk);
        let mut data = vec![0u8; (end - start) as usize];
        f.seek(SeekFrom::Start(start))?;
        f.read_exact(&mut data)?;
        if let Some(t) = tail.take() {
            data.extend_from_slice(&t);
            data.push(b'\n');
        }
        end = start;
        if skipping {
            match data.iter().rposition(|&b| b == b'\n') {
                Some(i) => {
                    data.truncate(i + 1);
                    skipping = false;
                }
                None => continue,
            }
        }
        let Some(body) = data.split_last().map(|(_, body)| body) else {
            continue;
        };
        // The part before the first newline continues in the bytes before `start`.
        let (region, region_at) = match (start, body.iter().position(|&b| b == b'\n')) {
            (0, _) => (body, 0),
            (_, Some(h)) => {
                tail = Some(body[..h].to_vec());
                (&body[h + 1..], h + 1)
            }
            (_, None) => {
                // No line starts in what was read: all of it continues before `start`.
                tail = Some(body.to_vec());
                if tail.as_ref().is_some_and(|t| t.len() > max_line) {
                    tail = None;
                    skipping = true;
                }
                continue;
            }
        };
        if tail.as_ref().is_some_and(|t| t.len() > max_line) {
            tail = None;
            skipping = true;
        }
        let mut line_end = region.len();
        for line in region.rsplit(|&b| b == b'\n') {
            let line_start = line_end - line.len();
            if !visit(line, start + (region_at + line_start) as u64) {
                return Ok(());
            }
            line_end = line_start.saturating_sub(1);
        }
    }
    Ok(())
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

#[cfg(test)]
mod tests {
    use super::*;

    /// What reading forwards gives: each complete line and where it starts, last first.
    fn forwards(bytes: &[u8], max_line: usize) -> Vec<(Vec<u8>, u64)> {
        let mut out = Vec::new();
        let mut at = 0;
        while let Some(n) = bytes[at..].iter().position(|&b| b == b'\n') {
            if n <= max_line {
                out.push((bytes[at..at + n].to_vec(), at as u64));
            }
            at += n + 1;
        }
        out.reverse();
        out
    }

    #[test]
    fn reading_backwards_gives_the_lines_forwards_reading_does_at_any_chunk_size() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log");
        let cases: [&[u8]; 7] = [
            b"",
            b"\n",
            b"one\n",
            b"one\ntwo\nthree\n",
            b"one\ntwo\nbeing writ",
            b"a\n\nbb\nccc\ndddd\neeeee\nffffff\n",
            b"short\nthis line is far too long to be a record\nok\nincomplete",
        ];
        for bytes in cases {
            std::fs::write(&path, bytes).unwrap();
            for chunk in 1..=bytes.len() as u64 + 2 {
                let mut got = Vec::new();
                newest_first_by(&path, chunk, 16, |line, at| {
                    got.push((line.to_vec(), at));
                    true
                })
                .unwrap();
                // A too-long line may be visited when it fits in a chunk (then it is not a
                // record and the parser says so); it must never be split or misplaced.
                let want = forwards(bytes, usize::MAX);
                let want_short = forwards(bytes, 16);
                assert!(
                    got == want || got == want_short,
                    "{:?} chunk {chunk}: {got:?}",
                    String::from_utf8_lossy(bytes)
                );
            }
        }
        // Stopping early.
        std::fs::write(&path, b"1\n2\n3\n").unwrap();
        let mut seen = Vec::new();
        newest_first_by(&path, 2, 16, |line, _| {
            seen.push(line.to_vec());
            seen.len() < 2
        })
        .unwrap();
        assert_eq!(seen, vec![b"3".to_vec(), b"2".to_vec()]);
    }
}
