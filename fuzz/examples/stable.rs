//! The fuzz targets on a stable toolchain: no coverage guidance, but the same checks, fed the
//! seed corpus and then inputs mutated from it by a seeded PRNG for a bounded time.
//!
//! ```text
//! cargo run --release --manifest-path fuzz/Cargo.toml --example stable -- \
//!     [--secs N] [--seed S] [TARGET ...]
//! ```
//!
//! Runs every target (or those named) for N seconds each (default 60), prints executions per
//! target, and saves a crashing input to `fuzz/artifacts/<target>/stable-crash-<hash>` (an input
//! still running after 10 s to `stable-hang-<hash>`). Exit 1 if anything crashed.

use std::fs;
use std::panic::{self, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use popgate_fuzz::TARGETS;

/// Pieces worth splicing in: the Unicode that normalisation trips on, digits, field names,
/// TOML and audit-record syntax. A mutation can reach what a bit flip rarely would.
const DICT: &[&[u8]] = &[
    "ễ".as_bytes(),
    "Đ".as_bytes(),
    "đ".as_bytes(),
    "Ð".as_bytes(),
    "\u{300}".as_bytes(),
    "\u{301}".as_bytes(),
    "\u{302}".as_bytes(),
    "\u{303}".as_bytes(),
    "\u{323}".as_bytes(),
    "\u{345}".as_bytes(),
    "\u{5bc}".as_bytes(),
    "\u{5c1}".as_bytes(),
    "\u{fb2c}".as_bytes(),
    "\u{958}".as_bytes(),
    "ß".as_bytes(),
    "ẞ".as_bytes(),
    "İ".as_bytes(),
    "ǰ".as_bytes(),
    "ΐ".as_bytes(),
    "ﬃ".as_bytes(),
    "ᾳ".as_bytes(),
    "한".as_bytes(),
    "\u{2019}".as_bytes(),
    "\u{a0}".as_bytes(),
    "\u{2028}".as_bytes(),
    "\u{3000}".as_bytes(),
    "\u{85}".as_bytes(),
    "\u{200b}".as_bytes(),
    "٠".as_bytes(),
    b" ",
    b"\t",
    b"\n",
    b"\0",
    b"|",
    b",",
    b"0",
    b"9",
    b"001203012345",
    b"079185000001",
    b"2003-04-05",
    b"-02-29",
    b"full_name",
    b"date_of_birth",
    b"citizen_id",
    b"life_status",
    b"\"",
    b"\\u00",
    b"{\"seq\":",
    b",\"hash\":\"",
    b"\"}",
    b"[[clients]]\n",
    b"id = \"",
    b"rate_per_sec = ",
    b"read = [\"",
    b"verify = [\"",
    b"purposes = [\"",
    b"= 18446744073709551615\n",
    b"= -1\n",
    b"[[[[[[[[",
    b"{{{{{{{{",
];

/// xorshift64*: small, fast, and the same sequence for the same seed everywhere.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next() % n as u64) as usize
        }
    }
}

const MAX_LEN: usize = 8192;

fn mutate(rng: &mut Rng, pool: &[Vec<u8>], input: &mut Vec<u8>) {
    for _ in 0..1 + rng.below(4) {
        let len = input.len();
        match rng.below(10) {
            0 if len > 0 => {
                let i = rng.below(len);
                input[i] ^= 1 << rng.below(8);
            }
            1 if len > 0 => {
                let i = rng.below(len);
                input[i] = rng.next() as u8;
            }
            2 => {
                let i = rng.below(len + 1);
                input.insert(i, rng.next() as u8);
            }
            3 if len > 0 => {
                let i = rng.below(len);
                let n = 1 + rng.below((len - i).min(16));
                input.drain(i..i + n);
            }
            4 | 5 => {
                let i = rng.below(len + 1);
                let tok = DICT[rng.below(DICT.len())];
                input.splice(i..i, tok.iter().copied());
            }
            6 if len > 0 => {
                // Repeat a piece many times: long names, deep nesting, long runs of marks.
                let i = rng.below(len);
                let n = 1 + rng.below((len - i).min(8));
                let piece = input[i..i + n].to_vec();
                let times = 1 + rng.below(300);
                let at = rng.below(len + 1);
                let rep: Vec<u8> = piece.iter().copied().cycle().take(n * times).collect();
                input.splice(at..at, rep);
            }
            7 if !pool.is_empty() => {
                let other = &pool[rng.below(pool.len())];
                if !other.is_empty() {
                    let i = rng.below(other.len());
                    let n = 1 + rng.below(other.len() - i);
                    let at = rng.below(len + 1);
                    input.splice(at..at, other[i..i + n].iter().copied());
                }
            }
            8 if len > 1 => {
                input.truncate(rng.below(len));
            }
            9 if len > 0 => {
                // Overwrite a byte with a "length-ish" value: 0, 1, 255, a small number.
                let i = rng.below(len);
                input[i] = [0u8, 1, 2, 12, 127, 128, 255][rng.below(7)];
            }
            _ => {}
        }
    }
    input.truncate(MAX_LEN);
}

fn fnv(data: &[u8]) -> u64 {
    data.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    })
}

fn save(dir: &Path, kind: &str, data: &[u8]) -> PathBuf {
    let _ = fs::create_dir_all(dir);
    let p = dir.join(format!("stable-{kind}-{:016x}", fnv(data)));
    let _ = fs::write(&p, data);
    p
}

fn corpus(dir: &Path) -> Vec<Vec<u8>> {
    let mut files: Vec<_> = fs::read_dir(dir)
        .map(|rd| rd.filter_map(Result::ok).map(|e| e.path()).collect())
        .unwrap_or_default();
    files.sort();
    files.iter().filter_map(|p| fs::read(p).ok()).collect()
}

/// The input being run and when it started, for the hang watchdog.
struct Current {
    target: Mutex<String>,
    input: Mutex<Vec<u8>>,
    started_ms: AtomicU64,
}

fn main() {
    let mut secs = 60u64;
    let mut seed = 0x5eed_u64;
    let mut names = Vec::new();
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--secs" => secs = args.next().and_then(|v| v.parse().ok()).expect("--secs N"),
            "--seed" => seed = args.next().and_then(|v| v.parse().ok()).expect("--seed S"),
            "-h" | "--help" => {
                println!("stable [--secs N] [--seed S] [TARGET ...]");
                let all: Vec<_> = TARGETS.iter().map(|t| t.0).collect();
                println!("targets: {}", all.join(" "));
                return;
            }
            other => names.push(other.to_string()),
        }
    }
    let targets: Vec<_> = TARGETS
        .iter()
        .filter(|(n, _)| names.is_empty() || names.iter().any(|x| x == n))
        .collect();
    if targets.is_empty() || targets.len() < names.len() {
        eprintln!("unknown target in {names:?}; run with --help for the list");
        std::process::exit(2);
    }
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let epoch = Instant::now();
    let now_ms = move || epoch.elapsed().as_millis() as u64 + 1;
    let current = Arc::new(Current {
        target: Mutex::new(String::new()),
        input: Mutex::new(Vec::new()),
        started_ms: AtomicU64::new(0),
    });
    {
        let current = current.clone();
        let root = root.clone();
        std::thread::spawn(move || {
            loop {
                std::thread::sleep(Duration::from_millis(500));
                let started = current.started_ms.load(Ordering::Relaxed);
                if started != 0 && now_ms().saturating_sub(started) > 10_000 {
                    let target = current.target.lock().unwrap().clone();
                    let input = current.input.lock().unwrap().clone();
                    let p = save(&root.join("artifacts").join(&target), "hang", &input);
                    eprintln!(
                        "{target}: an input has run for over 10 s; saved to {}",
                        p.display()
                    );
                    std::process::exit(1);
                }
            }
        });
    }
    // Quiet panics: the first one per target is reported below with its input.
    panic::set_hook(Box::new(|_| {}));

    let mut crashed = false;
    println!("stable harness: {secs} s per target, seed {seed}");
    for (name, check) in targets {
        *current.target.lock().unwrap() = name.to_string();
        let mut pool = corpus(&root.join("corpus").join(name));
        let seeds = pool.len();
        let artifacts = root.join("artifacts").join(name);
        let mut rng = Rng(seed ^ fnv(name.as_bytes()) | 1);
        let start = Instant::now();
        let deadline = start + Duration::from_secs(secs);
        let mut execs = 0u64;
        let mut slowest = Duration::ZERO;
        let mut crash = None;
        let mut queue: Vec<Vec<u8>> = pool.clone();
        queue.push(Vec::new());
        while crash.is_none() {
            let input = match queue.pop() {
                Some(i) => i,
                None => {
                    if Instant::now() >= deadline {
                        break;
                    }
                    let mut i = if pool.is_empty() {
                        Vec::new()
                    } else {
                        pool[rng.below(pool.len())].clone()
                    };
                    mutate(&mut rng, &pool, &mut i);
                    i
                }
            };
            current.input.lock().unwrap().clone_from(&input);
            current.started_ms.store(now_ms(), Ordering::Relaxed);
            let t = Instant::now();
            let r = panic::catch_unwind(AssertUnwindSafe(|| check(&input)));
            slowest = slowest.max(t.elapsed());
            current.started_ms.store(0, Ordering::Relaxed);
            execs += 1;
            match r {
                Ok(()) => {
                    // Without coverage feedback, keep a few mutants so mutations can compound.
                    if rng.below(64) == 0 {
                        if pool.len() < 512 {
                            pool.push(input);
                        } else {
                            let i = rng.below(pool.len());
                            pool[i] = input;
                        }
                    }
                }
                Err(payload) => {
                    let msg = payload
                        .downcast_ref::<String>()
                        .cloned()
                        .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
                        .unwrap_or_else(|| "(non-string panic)".into());
                    crash = Some((save(&artifacts, "crash", &input), msg, input));
                }
            }
        }
        let secs_taken = start.elapsed().as_secs_f64();
        match crash {
            None => println!(
                "{name}: {execs} execs in {secs_taken:.1} s ({:.0}/s), {seeds} seeds, slowest input {} ms, 0 crashes",
                execs as f64 / secs_taken,
                slowest.as_millis()
            ),
            Some((path, msg, input)) => {
                crashed = true;
                println!(
                    "{name}: CRASH after {execs} execs in {secs_taken:.1} s: {msg}\n  input ({} bytes) saved to {}\n  {:?}",
                    input.len(),
                    path.display(),
                    String::from_utf8_lossy(&input[..input.len().min(300)])
                );
            }
        }
    }
    if crashed {
        std::process::exit(1);
    }
}
