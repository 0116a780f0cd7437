//! What fuzzing found, kept as tests, and the properties the fuzz targets check, kept here on a
//! seeded PRNG so that `cargo test` on a stable toolchain runs them on every change.
//!
//! The fuzz targets themselves are in `fuzz/` (see `fuzz/README.md`). Each regression below
//! carries its input inline and says what went wrong before the fix.

use std::fs;
use std::path::Path;
use std::process::Command;

use popgate::audit::chain;
use popgate::audit::scan;
use popgate::audit::verify::{VerifyOptions, verify};
use popgate::config::Config;
use popgate::id::{CitizenId, IdSex, PROVINCES};
use popgate::matching::{Mode, normalize, text_matches};

/// xorshift64*: the same sequence everywhere for a seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

/// Text that exercises normalisation: Vietnamese letters precomposed and not, every kind of
/// white space, marks on their own, letters whose case folding or NFC is not one-to-one
/// (ß, İ, ǰ, ΐ, ﬃ, ᾳ, U+0345), Hebrew presentation forms that NFC expands, Hangul, and the
/// apostrophes LOOSE treats alike.
const PIECES: &[&str] = &[
    "a",
    "A",
    "n",
    "Nguyễn",
    "Văn",
    "An",
    "Đ",
    "đ",
    "Ð",
    "ð",
    "e\u{302}\u{303}",
    "\u{300}",
    "\u{301}",
    "\u{323}",
    "\u{345}",
    "\u{31b}",
    "ß",
    "ẞ",
    "İ",
    "ı",
    "ǰ",
    "ΐ",
    "ﬃ",
    "ᾳ",
    "Ω",
    "K",
    "\u{fb2c}",
    "\u{958}",
    "한",
    "\u{1100}\u{1161}",
    "\u{2019}",
    "'",
    " ",
    "  ",
    "\t",
    "\n",
    "\u{a0}",
    "\u{2000}",
    "\u{2028}",
    "\u{3000}",
    "\u{85}",
    "\u{200b}",
    "٠",
    "1",
];

fn random_text(rng: &mut Rng, max_pieces: usize) -> String {
    (0..rng.below(max_pieces + 1))
        .map(|_| *rng.pick(PIECES))
        .collect()
}

#[test]
fn citizen_id_parse_never_panics_and_round_trips() {
    let mut rng = Rng(0x1d);
    let alphabet = [
        "0", "1", "2", "3", "4", "5", "6", "7", "8", "9", "0", "1", "2", "9", "a", " ", "-", "٠",
        "１", "\u{0}", "é",
    ];
    for _ in 0..100_000 {
        let len = if rng.below(4) == 0 { rng.below(20) } else { 12 };
        let s: String = (0..len).map(|_| *rng.pick(&alphabet)).collect();
        for year in [1900, 2026, 2399] {
            if let Ok(id) = CitizenId::parse(&s, year) {
                assert_eq!(id.to_string(), s);
                assert!(id.birth_year() <= year);
                assert_eq!(CitizenId::parse(&id.to_string(), year), Ok(id));
            }
        }
    }
    // Every id the parts can make parses back to itself.
    for &(province, _) in PROVINCES {
        for year in [1900, 1985, 1999, 2000, 2026, 2099, 2100, 2399] {
            for sex in [IdSex::Male, IdSex::Female] {
                let id = CitizenId::from_parts(province, year, sex, 123_456);
                assert_eq!(CitizenId::parse(&id.to_string(), 2399), Ok(id));
                assert_eq!((id.birth_year(), id.sex()), (year, sex));
            }
        }
    }
}

#[test]
fn normalize_is_idempotent_and_loose_of_exact_is_loose() {
    let mut rng = Rng(0x2e);
    for _ in 0..30_000 {
        let s = random_text(&mut rng, 8);
        for mode in [Mode::Exact, Mode::Loose] {
            let n = normalize(&s, mode);
            assert_eq!(normalize(&n, mode), n, "{mode:?} twice differs for {s:?}");
            assert!(!n.starts_with(' ') && !n.ends_with(' ') && !n.contains("  "));
            assert!(
                text_matches(&s, &n, mode),
                "{s:?} does not match its own form"
            );
        }
        let loose = normalize(&s, Mode::Loose);
        assert_eq!(
            normalize(&normalize(&s, Mode::Exact), Mode::Loose),
            loose,
            "LOOSE(EXACT(x)) != LOOSE(x) for {s:?}"
        );
        let t = random_text(&mut rng, 4);
        if text_matches(&s, &t, Mode::Exact) {
            assert!(text_matches(&s, &t, Mode::Loose), "{s:?} {t:?}");
        }
    }
}

const GOOD_CONFIG: &str = r#"[server]
listen = "127.0.0.1:7443"
metrics_listen = "127.0.0.1:9464"

[tls]
cert = "certs/server.pem"
key = "certs/server.key"
client_ca = "certs/ca.pem"
crl = "certs/ca.crl"

[store]
path = "data/population"

[audit]
dir = "data/audit"
durability = "sync"
flush_ms = 5

[cache]
capacity = 1000000
ttl_secs = 300

[[clients]]
id = "viettel"
kind = "telecom"
role = "agency"
read = []
verify = ["full_name", "date_of_birth"]
purposes = ["subscriber-verification"]
rate_per_sec = 2000
burst = 4000
"#;

#[test]
fn config_parsing_of_arbitrary_text_never_panics() {
    assert!(Config::parse(GOOD_CONFIG).is_ok());
    let mut rng = Rng(0x3f);
    let bytes = GOOD_CONFIG.as_bytes();
    let junk: &[&[u8]] = &[
        b"[",
        b"]",
        b"[[",
        b"\"",
        b"'''",
        b"=",
        b"\n",
        b"#",
        b"{",
        b"}",
        b"\\u",
        b"\xff",
        b"-1",
        b"1e999",
        b"18446744073709551616",
        b"inf",
        b"nan",
    ];
    for _ in 0..3_000 {
        let mut t = bytes.to_vec();
        for _ in 0..1 + rng.below(6) {
            let i = rng.below(t.len() + 1);
            match rng.below(3) {
                0 => {
                    let n = rng.below(8).min(t.len() - i.min(t.len()));
                    t.drain(i..i + n);
                }
                1 => {
                    let j = *rng.pick(junk);
                    t.splice(i..i, j.iter().copied());
                }
                _ => {
                    let j = rng.below(bytes.len());
                    let n = rng.below(40).min(bytes.len() - j);
                    t.splice(i..i, bytes[j..j + n].iter().copied());
                }
            }
        }
        let text = String::from_utf8_lossy(&t);
        if let Ok(c) = Config::parse(&text) {
            // The files do not exist here, so this is an error naming a key, not a panic.
            assert!(c.validate().is_err());
        }
    }
    // Deep nesting must be refused, not overflow the stack.
    let deep = format!("x = {}{}", "[".repeat(100_000), "]".repeat(100_000));
    assert!(Config::parse(&deep).is_err());
    let deep = format!("x = {}", "{a = ".repeat(100_000));
    assert!(Config::parse(&deep).is_err());
}

/// A line that carries a correct hash of arbitrary bytes, so it gets past the hash check.
fn sealed(body: &[u8]) -> Vec<u8> {
    let mut l = body.to_vec();
    l.extend_from_slice(b",\"hash\":\"");
    chain::push_hex(&mut l, &chain::sha256(body));
    l.extend_from_slice(b"\"}\n");
    l
}

fn popgate_verify(dir: &Path) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_popgate"))
        .args(["audit", "verify", "--dir"])
        .arg(dir)
        .output()
        .expect("run popgate");
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    (out.status.code().unwrap_or(-1), text)
}

#[test]
fn audit_verify_on_garbage_files_reports_a_bad_record() {
    let mut rng = Rng(0x4a);
    let tmp = tempfile::tempdir().unwrap();
    for round in 0..200 {
        let dir = tmp.path().join(format!("log-{round}"));
        fs::create_dir(&dir).unwrap();
        let mut content = Vec::new();
        for _ in 0..1 + rng.below(4) {
            let n = rng.below(200);
            let mut line: Vec<u8> = (0..n).map(|_| rng.next() as u8).collect();
            if rng.below(3) == 0 {
                line.splice(0..0, br#"{"seq":1,"#.iter().copied());
            }
            if rng.below(2) == 0 {
                content.extend(sealed(&line));
            } else {
                line.retain(|&b| b != b'\n');
                content.extend(line);
                content.push(b'\n');
            }
        }
        fs::write(dir.join(scan::file_name(1)), &content).unwrap();
        let rep = verify(&VerifyOptions {
            dir: dir.clone(),
            ..VerifyOptions::default()
        })
        .unwrap();
        assert!(!rep.intact(), "garbage passed: {content:?}");
        // The real command, as an operator runs it, on a few of them.
        if round % 50 == 0 {
            let (code, text) = popgate_verify(&dir);
            assert_eq!(code, 1, "{text}");
            assert!(text.contains("NOT INTACT:"), "{text}");
            assert!(!text.contains("panicked"), "{text}");
        }
    }
}

/// Found by the `audit_dir` target in its first seconds: a log file named for seq 0
/// (`audit-00000000000000000000.jsonl`). `audit verify` computed "records 1..(0 - 1) are
/// missing" (a panic where overflow is checked, a message about 18446744073709551615 records
/// where not), and start-up recovery took seq 0 - 1 as the head, so the gateway would have
/// written its next record as seq 0. Both now refuse the file by name.
#[test]
fn a_log_file_named_for_seq_0_is_reported_not_a_panic() {
    use popgate::audit::{AuditError, AuditLog, AuditOptions};

    let record = {
        let mut body = br#"{"seq":1,"ts":"2026-11-24T05:12:33.123456Z","client":"viettel","cert_sha256":"","peer":"","method":"Lookup","fields":[],"purpose":"","request_id":"","outcome":"ok","reused":false,"latency_us":1,"prev":""#.to_vec();
        body.extend_from_slice("0".repeat(64).as_bytes());
        body.push(b'"');
        sealed(&body)
    };
    for content in [&b""[..], &record[..], b"garbage\n"] {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("audit");
        fs::create_dir(&dir).unwrap();
        fs::write(dir.join(scan::file_name(0)), content).unwrap();
        let rep = verify(&VerifyOptions {
            dir: dir.clone(),
            ..VerifyOptions::default()
        })
        .unwrap();
        assert!(!rep.intact());
        assert!(
            rep.problems[0].what.contains("named for seq 0"),
            "{}",
            rep.problems[0]
        );
        let (code, text) = popgate_verify(&dir);
        assert_eq!(code, 1, "{text}");
        assert!(text.contains("named for seq 0"), "{text}");
        match AuditLog::open(AuditOptions::new(&dir)) {
            Err(AuditError::Corrupt { reason, .. }) => {
                assert!(reason.contains("named for seq 0"), "{reason}")
            }
            other => panic!("recovery accepted a file named for seq 0: {other:?}"),
        }
    }
}

/// Found by the `audit_dir` target once the seq-0 fix was in: a lone, empty log file named for
/// seq 18446744073709551615. Recovery took the seq before it as the head, so the writer thread
/// overflowed counting past the first record it wrote (a panic that took the audit log down
/// where overflow is checked; seq 0 after u64::MAX where not). A last record with that seq in
/// the file before the last one overflowed recovery itself. Both are now refused as corrupt.
#[test]
fn a_log_at_the_end_of_u64_is_refused_at_open() {
    use popgate::audit::{AuditError, AuditLog, AuditOptions};

    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("named-max");
    fs::create_dir(&dir).unwrap();
    fs::write(dir.join(scan::file_name(u64::MAX)), b"").unwrap();
    match AuditLog::open(AuditOptions::new(&dir)) {
        Err(AuditError::Corrupt { reason, .. }) => {
            assert!(reason.contains("18446744073709551615"), "{reason}")
        }
        other => panic!("recovery accepted a file named for u64::MAX: {other:?}"),
    }

    // The file before the last ends in a (correctly hashed) record with seq u64::MAX.
    let dir = tmp.path().join("record-max");
    fs::create_dir(&dir).unwrap();
    let mut body = format!(
        r#"{{"seq":{},"ts":"2026-11-24T05:12:33.123456Z","client":"c","cert_sha256":"","peer":"","method":"Lookup","fields":[],"purpose":"","request_id":"","outcome":"ok","reused":false,"latency_us":1,"prev":""#,
        u64::MAX
    )
    .into_bytes();
    body.extend_from_slice("0".repeat(64).as_bytes());
    body.push(b'"');
    fs::write(dir.join(scan::file_name(1)), sealed(&body)).unwrap();
    fs::write(dir.join(scan::file_name(2)), b"").unwrap();
    match AuditLog::open(AuditOptions::new(&dir)) {
        Err(AuditError::Corrupt { .. }) => {}
        other => panic!("recovery accepted a head at u64::MAX: {other:?}"),
    }
    assert!(
        !verify(&VerifyOptions {
            dir,
            ..VerifyOptions::default()
        })
        .unwrap()
        .intact()
    );
}

/// Found by the `citizen_record` property "a stored record validates again unchanged":
/// PutCitizen counted a name's characters before normalising it to NFC, and NFC lengthens some
/// text (U+FB2C, a Hebrew presentation form, is three characters in NFC). A 200-character
/// name was stored as 600 characters, past the 256 limit, and the stored record was then
/// refused when written back. The limit now applies to the text as stored.
#[test]
fn put_citizen_limits_the_stored_text_not_the_text_before_nfc() {
    use popgate::citizen::{Draft, LifeStatus, Sex};
    use popgate::registry;

    let record = |full_name: String| Draft {
        citizen_id: "001203012345".into(),
        full_name,
        date_of_birth: "2003-04-05".into(),
        sex: Sex::Male,
        life_status: LifeStatus::Alive,
        ..Default::default()
    };
    let validate = |d: Draft| registry::validate(d, 2026, std::time::SystemTime::UNIX_EPOCH);
    let expanding = "\u{fb2c}".repeat(200);
    let err = validate(record(expanding)).unwrap_err().to_string();
    assert!(
        err.starts_with("citizen.full_name: longer than 256"),
        "{err}"
    );
    // 85 of them are 255 characters in NFC: accepted, and accepted again as stored.
    let stored = validate(record("\u{fb2c}".repeat(85))).unwrap();
    assert_eq!(stored.full_name.chars().count(), 255);
    let again = validate(stored.to_draft()).unwrap();
    assert_eq!(again, stored);
}
