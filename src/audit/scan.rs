//! Finding the log files and reading them line by line without a per-line allocation. Shared
//! by recovery, `audit verify` and the operator queries; it knows file names and line
//! boundaries, nothing about what a record means.

use std::fs::{self, File};
use std::io::{self, BufRead, BufReader, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

const PREFIX: &str = "audit-";
const SUFFIX: &str = ".jsonl";

/// `audit-<first seq, 20 digits>.jsonl`: zero-padded so that `ls` sorts files in chain order.
pub fn file_name(first_seq: u64) -> String {
    format!("{PREFIX}{first_seq:020}{SUFFIX}")
}

/// The first seq a log file name claims, or `None` if the name is not a log file's.
pub fn parse_file_name(name: &str) -> Option<u64> {
    let digits = name.strip_prefix(PREFIX)?.strip_suffix(SUFFIX)?;
    if digits.len() != 20 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// One log file of the directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogFile {
    pub path: PathBuf,
    /// The seq its name claims for its first record.
    pub first_seq: u64,
}

impl LogFile {
    /// The file name, for messages.
    pub fn name(&self) -> String {
        self.path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    }
}

/// The log files in `dir`, in chain order. Other files (checkpoints, an operator's notes) are
/// left alone.
pub fn list_files(dir: &Path) -> io::Result<Vec<LogFile>> {
    let mut files = Vec::new();
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name();
        if let Some(first_seq) = name.to_str().and_then(parse_file_name) {
            files.push(LogFile {
                path: entry.path(),
                first_seq,
            });
        }
    }
    files.sort_by_key(|f| f.first_seq);
    Ok(files)
}

/// Opens a file for reading no further than its size at open: a log that the gateway is still
/// appending to reads as a snapshot, and a special file (a link to `/dev/zero`) cannot make a
/// reader run forever.
pub fn open_bounded(path: &Path) -> io::Result<(io::Take<File>, u64)> {
    let f = File::open(path)?;
    let len = f.metadata()?.len();
    Ok((f.take(len), len))
}

/// How many files to read at once: scans are CPU-bound (parsing, hashing) once the files are
/// in the page cache.
pub fn scan_threads() -> usize {
    std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(8)
}

/// Runs `f` on every file, on up to [`scan_threads`] threads; the results come back in file
/// order.
pub fn par_map<T: Send>(files: &[LogFile], f: impl Fn(&LogFile) -> T + Sync) -> Vec<T> {
    let threads = scan_threads().min(files.len());
    if threads <= 1 {
        return files.iter().map(f).collect();
    }
    let next = std::sync::atomic::AtomicUsize::new(0);
    let mut out: Vec<(usize, T)> = std::thread::scope(|s| {
        let workers: Vec<_> = (0..threads)
            .map(|_| {
                s.spawn(|| {
                    let mut mine = Vec::new();
                    loop {
                        let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        let Some(file) = files.get(i) else { break };
                        mine.push((i, f(file)));
                    }
                    mine
                })
            })
            .collect();
        workers
            .into_iter()
            .flat_map(|w| w.join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
            .collect()
    });
    out.sort_by_key(|(i, _)| *i);
    out.into_iter().map(|(_, t)| t).collect()
}

/// A line as read: its bytes without the newline, whether the newline was there, its 1-based
/// number and its byte offset in the file.
#[derive(Debug)]
pub struct Line<'a> {
    pub bytes: &'a [u8],
    pub complete: bool,
    pub number: u64,
    pub offset: u64,
}

/// Reads a file line by line into one reused buffer.
pub struct LineReader<R> {
    reader: BufReader<R>,
    buf: Vec<u8>,
    number: u64,
    offset: u64,
}

impl LineReader<io::Take<File>> {
    /// Opens `path` bounded by its current size (see [`open_bounded`]).
    pub fn open(path: &Path) -> io::Result<Self> {
        Ok(Self::new(open_bounded(path)?.0))
    }
}

impl<R: Read> LineReader<R> {
    pub fn new(r: R) -> Self {
        LineReader {
            // Large reads: scanning is bound by memory bandwidth, not syscalls.
            reader: BufReader::with_capacity(1 << 20, r),
            buf: Vec::with_capacity(1024),
            number: 0,
            offset: 0,
        }
    }

    /// The next line, or `None` at the end.
    pub fn next_line(&mut self) -> io::Result<Option<Line<'_>>> {
        self.buf.clear();
        let n = self.reader.read_until(b'\n', &mut self.buf)?;
        if n == 0 {
            return Ok(None);
        }
        let offset = self.offset;
        self.offset += n as u64;
        self.number += 1;
        let complete = self.buf.last() == Some(&b'\n');
        let bytes = if complete {
            &self.buf[..n - 1]
        } else {
            &self.buf[..]
        };
        Ok(Some(Line {
            bytes,
            complete,
            number: self.number,
            offset,
        }))
    }
}

/// The last complete line of a file of `len` bytes (read backwards, so a 64 MiB file costs one
/// small read), and its offset; `None` when the file holds no newline.
pub fn last_complete_line(f: &mut File, len: u64) -> io::Result<Option<(Vec<u8>, u64)>> {
    const CHUNK: u64 = 64 * 1024;
    // `tail` holds bytes [pos, len) of the file.
    let mut pos = len;
    let mut tail: Vec<u8> = Vec::new();
    loop {
        if let Some(last_nl) = tail.iter().rposition(|&b| b == b'\n') {
            if let Some(prev_nl) = tail[..last_nl].iter().rposition(|&b| b == b'\n') {
                let line = tail[prev_nl + 1..last_nl].to_vec();
                return Ok(Some((line, pos + prev_nl as u64 + 1)));
            }
            if pos == 0 {
                return Ok(Some((tail[..last_nl].to_vec(), 0)));
            }
        } else if pos == 0 {
            return Ok(None);
        }
        let start = pos.saturating_sub(CHUNK);
        let mut chunk = vec![0u8; (pos - start) as usize];
        f.seek(SeekFrom::Start(start))?;
        f.read_exact(&mut chunk)?;
        chunk.extend_from_slice(&tail);
        tail = chunk;
        pos = start;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn names() {
        assert_eq!(file_name(1), "audit-00000000000000000001.jsonl");
        assert_eq!(parse_file_name(&file_name(u64::MAX)), Some(u64::MAX));
        assert_eq!(parse_file_name("audit-1.jsonl"), None);
        assert_eq!(parse_file_name("checkpoints.jsonl"), None);
    }

    #[test]
    fn last_line() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f");
        for (content, want) in [
            (&b""[..], None),
            (b"abc", None),
            (b"abc\n", Some((&b"abc"[..], 0))),
            (b"abc\ndef\n", Some((&b"def"[..], 4))),
            (b"abc\ndef\ntorn", Some((&b"def"[..], 4))),
            (b"\n\n", Some((&b""[..], 1))),
        ] {
            fs::write(&p, content).unwrap();
            let mut f = File::open(&p).unwrap();
            let got = last_complete_line(&mut f, content.len() as u64).unwrap();
            assert_eq!(got.as_ref().map(|(l, o)| (&l[..], *o)), want, "{content:?}");
        }
        // Lines longer than a chunk.
        let long = vec![b'x'; 200_000];
        let mut f = File::create(&p).unwrap();
        f.write_all(&long).unwrap();
        f.write_all(b"\n").unwrap();
        f.write_all(&long).unwrap();
        f.write_all(b"\nab").unwrap();
        let mut f = File::open(&p).unwrap();
        let (l, o) = last_complete_line(&mut f, 400_004).unwrap().unwrap();
        assert_eq!((l.len(), o), (200_000, 200_001));
        let mut r = LineReader::open(&p).unwrap();
        let mut n = 0;
        while let Some(l) = r.next_line().unwrap() {
            n += 1;
            assert_eq!(l.complete, n < 3);
        }
        assert_eq!(n, 3);
    }
}
