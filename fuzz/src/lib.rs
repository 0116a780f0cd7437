//! The checks behind popgate's fuzz targets, one public function per target.
//!
//! Each function takes arbitrary bytes, feeds them to one of popgate's parsers the way the
//! gateway or an operator command would, and asserts what must hold for *every* input: no
//! panic, an error that names the bad field, and a few properties (round trips, idempotence,
//! exact answers to "which field is wrong"). A failed assertion is a crash to libFuzzer.
//!
//! The functions live here rather than in `fuzz_targets/` so that two drivers share them: the
//! cargo-fuzz targets (`fuzz_targets/<name>.rs`, nightly, coverage-guided) and the stable
//! harness (`examples/stable.rs`, any toolchain, seeded random mutation of the corpus).

use std::collections::HashSet;
use std::fs;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use popgate::audit::chain::{self, Head};
use popgate::audit::checkpoint::{Checkpoint, PublicKey};
use popgate::audit::record::{AuditEvent, Outcome, Record, encode, format_ts, parse_ts_us};
use popgate::audit::scan::{self, LineReader};
use popgate::audit::verify::{VerifyOptions, verify};
use popgate::audit::{AuditLog, AuditOptions};
use popgate::config::{Config, ConfigError, valid_client_id};
use popgate::error::Error;
use popgate::citizen::Citizen;
use popgate::fields::{Field, FieldSet};
use popgate::gateway::{MatchMode, match_claims};
use popgate::grpc::convert;
use popgate::id::{CitizenId, province_name};
use popgate::identity::Peer;
use popgate::matching::{Mode, normalize, parse_date, text_matches};
use popgate::pb;
use popgate::policy::Policy;
use popgate::registry::{fields_written, validate};
use prost::Message;
use unicode_normalization::char::is_combining_mark;
use unicode_normalization::is_nfc;

/// A target: arbitrary bytes in, a panic when something that must hold does not.
pub type Check = fn(&[u8]);

/// Every target, by name, for the stable harness.
pub const TARGETS: &[(&str, Check)] = &[
    ("citizen_id", citizen_id),
    ("read_mask", read_mask),
    ("verify_normalize", verify_normalize),
    ("verify_request", verify_request),
    ("citizen_record", citizen_record),
    ("audit_record", audit_record),
    ("audit_dir", audit_dir),
    ("config", config),
];

/// The year the checks run "in": fixed, so that a crash reproduces next year too.
const YEAR: i32 = 2026;

/// Reads structure out of fuzz bytes. Past the end everything reads as zero or empty, so
/// every input means something.
struct Bytes<'a> {
    data: &'a [u8],
}

impl<'a> Bytes<'a> {
    fn new(data: &'a [u8]) -> Self {
        Bytes { data }
    }

    fn u8(&mut self) -> u8 {
        match self.data.split_first() {
            Some((&b, rest)) => {
                self.data = rest;
                b
            }
            None => 0,
        }
    }

    fn u64(&mut self) -> u64 {
        let mut v = [0u8; 8];
        for b in &mut v {
            *b = self.u8();
        }
        u64::from_le_bytes(v)
    }

    fn take(&mut self, n: usize) -> &'a [u8] {
        let n = n.min(self.data.len());
        let (head, rest) = self.data.split_at(n);
        self.data = rest;
        head
    }

    /// A length-prefixed chunk: one length byte, or 255 and then a 16-bit length, so that
    /// long values (a 256-character name) are within reach.
    fn chunk(&mut self) -> &'a [u8] {
        let n = match self.u8() {
            255 => usize::from(u16::from_le_bytes([self.u8(), self.u8()])),
            n => usize::from(n),
        };
        self.take(n)
    }

    fn text(&mut self) -> String {
        String::from_utf8_lossy(self.chunk()).into_owned()
    }
}

/// Error messages echo caller text only after cutting it to 64 characters (escaped by `{:?}`,
/// so at most ~10 bytes each): a huge value must not make a huge message.
fn assert_bounded(message: &str) {
    assert!(
        message.len() <= 64 * 10 + 512,
        "an error message of {} bytes echoes too much caller text",
        message.len()
    );
}

// ---------------------------------------------------------------------------------------------
// citizen_id

/// `CitizenId::parse`: never panics; an accepted id prints exactly as written and its parts
/// rebuild it; a refusal says it is about `citizen_id`.
pub fn citizen_id(data: &[u8]) {
    let s = String::from_utf8_lossy(data);
    for year in [1900, YEAR, 2399] {
        match CitizenId::parse(&s, year) {
            Ok(id) => {
                assert_eq!(id.to_string(), s, "an accepted id prints as it was written");
                assert_eq!(CitizenId::parse(&id.to_string(), year), Ok(id));
                assert!(province_name(id.province_code()).is_some());
                assert!((1900..=year).contains(&id.birth_year()));
                assert_eq!(CitizenId::from_u64(id.as_u64()), Some(id));
                assert_eq!(CitizenId::from_u64(u64::from_be_bytes(id.key())), Some(id));
                let random = (id.as_u64() % 1_000_000) as u32;
                let rebuilt =
                    CitizenId::from_parts(id.province_code(), id.birth_year(), id.sex(), random);
                assert_eq!(rebuilt, id, "from_parts disagrees with parse");
            }
            Err(e) => {
                let m = e.to_string();
                assert!(m.starts_with("citizen_id "), "{m}");
                assert_bounded(&m);
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// read_mask

const POLICY_TOML: &str = r#"
[server]
listen = "127.0.0.1:7443"
[tls]
cert = "server.pem"
key = "server.key"
client_ca = "ca.pem"
[store]
path = "data/population"
[audit]
dir = "data/audit"

[[clients]]
id = "viettel"
kind = "telecom"
role = "agency"
read = []
verify = ["full_name", "date_of_birth"]
purposes = ["subscriber-verification"]
rate_per_sec = 10

[[clients]]
id = "evn"
kind = "utility"
role = "agency"
read = ["full_name", "permanent_address"]
verify = ["full_name", "date_of_birth", "sex", "permanent_address"]
purposes = ["contract", "billing"]
rate_per_sec = 10

[[clients]]
id = "mot"
kind = "ministry"
role = "agency"
read = ["full_name", "date_of_birth", "sex", "place_of_origin", "permanent_address",
        "current_address", "ethnicity", "religion", "nationality", "card_issued_on",
        "card_expires_on", "household_head_id", "life_status"]
verify = ["full_name"]
purposes = ["licensing"]
rate_per_sec = 10
"#;

fn policy() -> &'static Policy {
    static POLICY: OnceLock<Policy> = OnceLock::new();
    POLICY.get_or_init(|| {
        let config = Config::parse(POLICY_TOML).expect("the fuzz policy parses");
        Policy::new(&config, Arc::new(HashSet::new()))
    })
}

/// [`full_citizen`] as the store holds it.
fn full_record() -> Citizen {
    let mut c = validate(convert::draft(full_citizen()), YEAR, std::time::UNIX_EPOCH)
        .expect("the full record is valid");
    c.version = 3;
    c
}

/// The personal fields a message holds (not empty).
fn present(c: &pb::Citizen) -> FieldSet {
    let d = convert::draft(c.clone());
    let mut set = FieldSet::EMPTY;
    for (f, on) in [
        (Field::FullName, !d.full_name.is_empty()),
        (Field::DateOfBirth, !d.date_of_birth.is_empty()),
        (Field::Sex, c.sex != 0),
        (Field::PlaceOfOrigin, !d.place_of_origin.is_empty()),
        (Field::PermanentAddress, !d.permanent_address.is_empty()),
        (Field::CurrentAddress, !d.current_address.is_empty()),
        (Field::Ethnicity, !d.ethnicity.is_empty()),
        (Field::Religion, !d.religion.is_empty()),
        (Field::Nationality, !d.nationality.is_empty()),
        (Field::CardIssuedOn, !d.card_issued_on.is_empty()),
        (Field::CardExpiresOn, !d.card_expires_on.is_empty()),
        (Field::HouseholdHeadId, !d.household_head_id.is_empty()),
        (Field::LifeStatus, c.life_status != 0),
    ] {
        if on {
            set.insert(f);
        }
    }
    set
}

/// A record with every field set, to see what a projection lets through.
fn full_citizen() -> pb::Citizen {
    pb::Citizen {
        citizen_id: "001203012345".into(),
        full_name: "Nguyễn Văn An".into(),
        date_of_birth: "2003-04-05".into(),
        sex: pb::Sex::Male as i32,
        place_of_origin: "Hà Nội".into(),
        permanent_address: "1 Tràng Tiền, Hà Nội".into(),
        current_address: "2 Tràng Tiền, Hà Nội".into(),
        ethnicity: "Kinh".into(),
        religion: "Không".into(),
        nationality: "Việt Nam".into(),
        card_issued_on: "2021-05-01".into(),
        card_expires_on: "2028-04-05".into(),
        household_head_id: "001170012345".into(),
        life_status: pb::LifeStatus::Alive as i32,
        version: 3,
        updated_at: None,
    }
}

/// `Client::read_fields`, purposes and the CN lookup, with the mask of a decoded
/// `LookupRequest` (or, when the bytes are not one, comma-separated text). The answer must be
/// exactly the one the contract gives for the first path that is wrong, and a projection with
/// the granted fields must hold those fields and no others.
pub fn read_mask(data: &[u8]) {
    let (mask, purpose, cn) = match pb::LookupRequest::decode(data) {
        Ok(req) => (
            req.read_mask.map(|m| m.paths).unwrap_or_default(),
            req.purpose,
            req.request_id,
        ),
        Err(_) => {
            let text = String::from_utf8_lossy(data).into_owned();
            let mask = if text.is_empty() {
                Vec::new()
            } else {
                text.split(',').map(str::to_owned).collect()
            };
            (mask, text.clone(), text)
        }
    };
    let policy = policy();
    let mut clients: Vec<_> = policy.clients().cloned().collect();
    clients.sort_by(|a, b| a.id.cmp(&b.id));
    for client in &clients {
        // The oracle: the first path that is unknown or outside the rights decides.
        let first_bad = mask
            .iter()
            .map(|p| (p, Field::from_name(p)))
            .find(|(_, f)| f.is_none_or(|f| !client.read.contains(f)));
        match client.read_fields(&mask) {
            Ok(set) => {
                assert!(
                    !client.read.is_empty(),
                    "{}: no rights, yet granted",
                    client.id
                );
                assert!(first_bad.is_none(), "{}: granted {first_bad:?}", client.id);
                let want: FieldSet = if mask.is_empty() {
                    client.read
                } else {
                    mask.iter().filter_map(|p| Field::from_name(p)).collect()
                };
                assert_eq!(set, want);
                let shown = convert::citizen(&full_record(), set);
                assert_eq!(
                    present(&shown),
                    set,
                    "projection leaks or drops fields"
                );
                assert_eq!(shown.citizen_id, "001203012345");
                assert_eq!(shown.version, 3);
            }
            Err(Error::PermissionDenied(m)) => {
                let why_ok = client.read.is_empty()
                    || matches!(first_bad, Some((_, Some(f))) if !client.read.contains(f));
                assert!(why_ok, "{}: denied for {first_bad:?}: {m}", client.id);
                assert_bounded(&m);
            }
            Err(Error::InvalidArgument(m)) => {
                assert!(!client.read.is_empty());
                assert!(matches!(first_bad, Some((_, None))), "{m}");
                assert!(m.starts_with("read_mask: "), "{m}");
                assert_bounded(&m);
            }
            Err(e) => panic!("read_fields answered {e:?}"),
        }
        match client.require_purpose(&purpose) {
            Ok(()) => assert!(client.purposes.contains(&purpose)),
            Err(Error::PermissionDenied(m)) => {
                assert!(!client.purposes.contains(&purpose));
                assert_bounded(&m);
            }
            Err(e) => panic!("require_purpose answered {e:?}"),
        }
    }
    let addr: SocketAddr = ([127, 0, 0, 1], 1).into();
    let peer = Peer::new(addr, Some(cn.clone()), Arc::from(""), Vec::new(), None);
    match policy.authenticate(&peer) {
        Ok(c) => assert_eq!(&*c.id, cn.as_str()),
        Err(Error::PermissionDenied(m)) => {
            assert!(clients.iter().all(|c| *c.id != *cn));
            assert_bounded(&m);
        }
        Err(e) => panic!("authenticate answered {e:?}"),
    }
    // The certificate parser sees only certificates the handshake verified, but it must
    // not panic on anything.
    let _ = Peer::from_certificate(addr, data);
}

// ---------------------------------------------------------------------------------------------
// verify_normalize

/// `normalize`, `text_matches` and `parse_date` on arbitrary text: normalising twice changes
/// nothing, LOOSE of EXACT is LOOSE, white space comes out as single inner spaces, an EXACT
/// match is also a LOOSE match, matching is symmetric, and an accepted date prints back as the
/// text it came from.
pub fn verify_normalize(data: &[u8]) {
    let s = String::from_utf8_lossy(data);
    // The claimed and recorded texts: split at the first '|', if any.
    let (a, b) = s.split_once('|').unwrap_or((&s, ""));
    for mode in [Mode::Exact, Mode::Loose] {
        let n = normalize(&s, mode);
        assert_eq!(
            normalize(&n, mode),
            n,
            "{mode:?} is not idempotent on {s:?}"
        );
        assert!(!n.starts_with(' ') && !n.ends_with(' ') && !n.contains("  "));
        assert!(n.chars().all(|c| c == ' ' || !c.is_whitespace()));
        assert!(
            n.len() <= 20 * s.len(),
            "{mode:?} blew {s:?} up to {} bytes",
            n.len()
        );
        assert!(text_matches(&s, &s, mode));
        assert_eq!(text_matches(a, b, mode), text_matches(b, a, mode));
    }
    let exact = normalize(&s, Mode::Exact);
    let loose = normalize(&s, Mode::Loose);
    assert_eq!(
        normalize(&exact, Mode::Loose),
        loose,
        "LOOSE(EXACT(x)) != LOOSE(x) for {s:?}"
    );
    assert!(
        !loose.chars().any(is_combining_mark),
        "LOOSE kept a mark: {loose:?}"
    );
    if text_matches(a, b, Mode::Exact) {
        assert!(
            text_matches(a, b, Mode::Loose),
            "EXACT but not LOOSE: {a:?} {b:?}"
        );
    }
    if let Some(d) = parse_date(&s) {
        let printed = format!("{:04}-{:02}-{:02}", d.year(), u8::from(d.month()), d.day());
        assert_eq!(printed, s.trim(), "a date prints back as written");
    }
}

// ---------------------------------------------------------------------------------------------
// verify_request

/// Claims of a decoded `VerifyRequest` through [`match_claims`]: refusals are
/// `INVALID_ARGUMENT` naming `mode` or a claim; an accepted request answers one `FieldMatch`
/// per claim in Claims order; a record holding exactly the claimed values matches every claim,
/// and an EXACT match is a LOOSE match.
pub fn verify_request(data: &[u8]) {
    let Ok(req) = pb::VerifyRequest::decode(data) else {
        return;
    };
    // As the gateway sees it after the gRPC layer's conversion.
    let mut dreq = convert::verify_request(req.clone());
    let record = full_record();
    let fields = match match_claims(&dreq, &record) {
        Ok(f) => f,
        Err(Error::InvalidArgument(m)) => {
            assert!(m.starts_with("mode: ") || m.starts_with("claims"), "{m}");
            assert_bounded(&m);
            return;
        }
        Err(e) => panic!("match_claims answered {e:?}"),
    };
    let claims = req.claims.clone().unwrap_or_default();
    let want: Vec<&str> = [
        ("full_name", claims.full_name.is_some()),
        ("date_of_birth", claims.date_of_birth.is_some()),
        ("sex", claims.sex.is_some()),
        ("permanent_address", claims.permanent_address.is_some()),
    ]
    .into_iter()
    .filter_map(|(n, set)| set.then_some(n))
    .collect();
    let got: Vec<&str> = fields.iter().map(|f| f.field.name()).collect();
    assert_eq!(got, want, "one answer per claim, in Claims order");

    let dclaims = dreq.claims.clone().unwrap_or_default();
    let own = Citizen {
        full_name: dclaims.full_name.clone().unwrap_or_default(),
        date_of_birth: dclaims.date_of_birth.clone().unwrap_or_default(),
        sex: dclaims.sex.unwrap_or_default(),
        permanent_address: dclaims.permanent_address.clone().unwrap_or_default(),
        ..full_record()
    };
    let again = match_claims(&dreq, &own).expect("the same request parses twice");
    assert!(
        again.iter().all(|f| f.matched),
        "a record holding the claims: {again:?}"
    );

    dreq.mode = MatchMode::Exact;
    let exact = match_claims(&dreq, &record).expect("EXACT parses");
    dreq.mode = MatchMode::Loose;
    let loose = match_claims(&dreq, &record).expect("LOOSE parses");
    for (e, l) in exact.iter().zip(&loose) {
        assert!(
            !e.matched || l.matched,
            "{} matched EXACT but not LOOSE",
            e.field
        );
    }
}

// ---------------------------------------------------------------------------------------------
// citizen_record

/// `registry::validate` on a decoded `Citizen`, as PutCitizen does: a refusal names
/// `citizen.<field>`; an accepted record is stored trimmed, NFC, within the length limit, free of
/// control characters, and is accepted unchanged when written again.
pub fn citizen_record(data: &[u8]) {
    let Ok(c) = pb::Citizen::decode(data) else {
        return;
    };
    let stored = match validate(convert::draft(c), YEAR, std::time::UNIX_EPOCH) {
        Ok(ok) => ok,
        Err(Error::InvalidArgument(m)) => {
            assert!(m.starts_with("citizen."), "{m}");
            assert_bounded(&m);
            return;
        }
        Err(e) => panic!("validate answered {e:?}"),
    };
    let id = stored.id;
    assert!(!stored.full_name.is_empty());
    for (name, v) in [
        ("full_name", &stored.full_name),
        ("place_of_origin", &stored.place_of_origin),
        ("permanent_address", &stored.permanent_address),
        ("current_address", &stored.current_address),
        ("ethnicity", &stored.ethnicity),
        ("religion", &stored.religion),
        ("nationality", &stored.nationality),
    ] {
        assert!(
            !v.chars().any(char::is_control),
            "{name}: control character stored"
        );
        assert!(
            v.chars().count() <= 256,
            "{name}: {} characters stored",
            v.chars().count()
        );
        assert!(is_nfc(v), "{name}: stored text is not NFC");
        assert_eq!(v.trim(), v, "{name}: stored text is not trimmed");
    }
    match validate(stored.to_draft(), YEAR, std::time::UNIX_EPOCH) {
        Ok(again) => {
            assert_eq!(again.id, id);
            assert_eq!(again, stored, "validating a stored record changes it");
        }
        Err(e) => panic!("a stored record is refused when written again: {e}"),
    }
    let _ = fields_written(&stored);
}

// ---------------------------------------------------------------------------------------------
// audit_record

/// Timestamps up to the end of year 9999, the last one RFC 3339 can write.
const MAX_TS_US: u64 = 253_402_300_800_000_000;

const METHODS: [&str; 7] = [
    "Lookup",
    "Verify",
    "PutCitizen",
    "GetStats",
    "LookupStream",
    "VerifyStream",
    "Unknown",
];

fn event(b: &mut Bytes<'_>) -> AuditEvent {
    let mut ev = AuditEvent {
        client: b.text().into(),
        cert_sha256: b.text().into(),
        peer: b.text().into(),
        method: METHODS[usize::from(b.u8()) % METHODS.len()],
        citizen_id: None,
        fields: Vec::new(),
        purpose: b.text(),
        request_id: b.text(),
        outcome: Outcome::ALL[usize::from(b.u8()) % Outcome::ALL.len()],
        reused: false,
        latency_us: 0,
        count: None,
        reason: None,
    };
    let flags = b.u8();
    if flags & 1 != 0 {
        ev.citizen_id = Some(b.text());
    }
    ev.reused = flags & 2 != 0;
    if flags & 4 != 0 {
        ev.count = Some(b.u64());
    }
    if flags & 8 != 0 {
        ev.reason = Some(b.text());
    }
    let mask = u16::from_le_bytes([b.u8(), b.u8()]);
    ev.fields = Field::ALL
        .into_iter()
        .enumerate()
        .filter(|(i, _)| mask & (1 << i) != 0)
        .map(|(_, f)| f.name())
        .collect();
    ev.latency_us = b.u64();
    ev
}

/// One audit line. First byte even: the rest is a line as read from a file, given to every
/// parser `audit verify/query` and recovery use (record, hash suffix, checkpoint, timestamp,
/// public key), none of which may panic. First byte odd: the rest builds an [`AuditEvent`]
/// with arbitrary strings, which is encoded and must come back as one line free of control
/// characters, whose hash verifies and which parses back to the same values.
pub fn audit_record(data: &[u8]) {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    if mode & 1 == 0 {
        let line = rest;
        let _ = Record::parse(line);
        let parts = chain::line_hash_parts(line);
        if let Some(hash) = chain::verify_line(line) {
            let (body, hex) = parts.expect("a verified line has a hash suffix");
            assert_eq!(chain::sha256(body), hash);
            assert_eq!(chain::to_hex(&hash).as_bytes(), hex);
        }
        let _ = serde_json_checkpoint(line);
        let text = String::from_utf8_lossy(line);
        if let Some(us) = parse_ts_us(&text)
            && us < MAX_TS_US
        {
            assert_eq!(parse_ts_us(&format_ts(us)), Some(us), "{text:?}");
        }
        let _ = PublicKey::from_hex(&text);
        return;
    }
    let mut b = Bytes::new(rest);
    let ev = event(&mut b);
    let seq = b.u64();
    let ts_us = b.u64() % MAX_TS_US;
    let mut prev = [0u8; 32];
    for (i, x) in b.take(32).iter().enumerate() {
        prev[i] = *x;
    }
    let mut out = Vec::new();
    let hash = encode(&mut out, seq, ts_us, &ev, &prev);
    assert_eq!(out.last(), Some(&b'\n'));
    let line = &out[..out.len() - 1];
    assert!(!line.contains(&b'\n'), "a record is one line");
    assert!(
        line.iter().all(|&c| c >= 0x20 && c != 0x7f),
        "a control byte in the log"
    );
    assert!(
        !line
            .windows(2)
            .any(|w| w[0] == 0xc2 && (0x80..=0x9f).contains(&w[1])),
        "a C1 control in the log"
    );
    assert_eq!(chain::verify_line(line), Some(hash));
    let r = Record::parse(line).expect("an encoded record parses");
    assert_eq!(r.seq, seq);
    assert_eq!(parse_ts_us(&r.ts), Some(ts_us));
    assert_eq!(*r.client, *ev.client);
    assert_eq!(*r.cert_sha256, *ev.cert_sha256);
    assert_eq!(*r.peer, *ev.peer);
    assert_eq!(*r.method, *ev.method);
    assert_eq!(r.citizen_id.as_deref(), ev.citizen_id.as_deref());
    let fields: Vec<&str> = r.fields.iter().map(|f| &**f).collect();
    assert_eq!(fields, ev.fields);
    assert_eq!(*r.purpose, *ev.purpose);
    assert_eq!(*r.request_id, *ev.request_id);
    assert_eq!(r.outcome, ev.outcome);
    assert_eq!(r.reused, ev.reused);
    assert_eq!(r.latency_us, ev.latency_us);
    assert_eq!(r.count, ev.count);
    assert_eq!(r.reason.as_deref(), ev.reason.as_deref());
    assert_eq!(*r.prev, chain::to_hex(&prev));
    assert_eq!(*r.hash, chain::to_hex(&hash));
}

/// A checkpoint line as `checkpoint::read_file` parses it.
fn serde_json_checkpoint(line: &[u8]) -> Option<Checkpoint> {
    serde_json::from_slice(line).ok()
}

// ---------------------------------------------------------------------------------------------
// audit_dir

/// A fresh directory, in memory when the machine has /dev/shm: the audit_dir target writes and
/// fsyncs files on every run.
fn scratch_dir() -> tempfile::TempDir {
    let shm = Path::new("/dev/shm");
    if shm.is_dir()
        && let Ok(d) = tempfile::Builder::new()
            .prefix("popgate-fuzz-")
            .tempdir_in(shm)
    {
        return d;
    }
    tempfile::Builder::new()
        .prefix("popgate-fuzz-")
        .tempdir()
        .expect("a temporary directory")
}

fn runtime() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("a tokio runtime")
    })
}

/// What the generator wrote, to judge verify's answer by.
struct Written {
    /// Every line is a record of one chain from seq 1, files named right, checkpoints true.
    all_valid: bool,
    records: u64,
}

/// Builds an audit directory from the bytes: up to three log files, each named right or not,
/// holding real chained records (encoded with fuzz-chosen values), "sealed" lines (arbitrary
/// bytes given a correct hash, so they get past the hash check), raw bytes, and maybe a torn
/// last line; then a checkpoint file that is absent, true, garbage or past the end.
fn write_dir(dir: &Path, data: &[u8]) -> Written {
    let mut b = Bytes::new(data);
    let mut head = Head::EMPTY;
    let mut ts = 1_795_000_000_000_000u64;
    let mut all_valid = true;
    let mut names = HashSet::new();
    let mut hashes = Vec::new();
    let nfiles = 1 + b.u8() % 3;
    for _ in 0..nfiles {
        let first = match b.u8() % 8 {
            0..=4 => head.seq + 1,
            5 => 0,
            6 => u64::MAX,
            _ => u64::from(b.u8() % 8),
        };
        if first != head.seq + 1 || !names.insert(first) {
            all_valid = false;
        }
        let mut content = Vec::new();
        for _ in 0..b.u8() % 6 {
            match b.u8() % 4 {
                0 | 1 => {
                    let ev = event(&mut b);
                    let seq = head.seq + 1;
                    ts += u64::from(b.u8());
                    let hash = encode(&mut content, seq, ts, &ev, &head.hash);
                    head = Head { seq, hash };
                    hashes.push((seq, hash, format_ts(ts)));
                }
                2 => {
                    let body = b.chunk();
                    content.extend_from_slice(body);
                    content.extend_from_slice(b",\"hash\":\"");
                    chain::push_hex(&mut content, &chain::sha256(body));
                    content.extend_from_slice(b"\"}\n");
                    all_valid = false;
                }
                _ => {
                    content.extend_from_slice(b.chunk());
                    content.push(b'\n');
                    all_valid = false;
                }
            }
        }
        if b.u8().is_multiple_of(4) {
            let torn: Vec<u8> = b.chunk().iter().copied().filter(|&c| c != b'\n').collect();
            all_valid &= torn.is_empty();
            content.extend_from_slice(&torn);
        }
        fs::write(dir.join(scan::file_name(first)), content).expect("write a log file");
    }
    let mut cps = Vec::new();
    match b.u8() % 4 {
        0 => {}
        1 => {
            for (seq, hash, ts) in hashes.iter().filter(|_| b.u8().is_multiple_of(2)) {
                let cp = Checkpoint {
                    seq: *seq,
                    hash: chain::to_hex(hash),
                    ts: ts.clone(),
                    sig: None,
                };
                cps.extend_from_slice(&cp.to_line());
            }
        }
        2 => {
            cps.extend_from_slice(b.chunk());
            all_valid = false;
        }
        _ => {
            let cp = Checkpoint {
                seq: head.seq + 1 + u64::from(b.u8()),
                hash: chain::to_hex(&chain::sha256(b.chunk())),
                ts: format_ts(ts),
                sig: None,
            };
            cps.extend_from_slice(&cp.to_line());
            all_valid = false;
        }
    }
    if !cps.is_empty() {
        fs::write(dir.join("checkpoints.jsonl"), cps).expect("write checkpoints");
    }
    Written {
        all_valid,
        records: head.seq,
    }
}

/// What an intact verdict promises, checked independently of `verify`: every complete line of
/// every log file, in order, is a record whose hash checks out, with seq 1, 2, 3 … linked by
/// `prev`; only the last file may end in an incomplete line.
fn assert_really_intact(dir: &Path, records: u64) {
    let files = scan::list_files(dir).expect("list");
    let mut head = Head::EMPTY;
    for (i, f) in files.iter().enumerate() {
        let mut r = LineReader::open(&f.path).expect("open");
        while let Some(line) = r.next_line().expect("read") {
            if !line.complete {
                assert_eq!(i + 1, files.len(), "a torn line in {} passed", f.name());
                continue;
            }
            let hash = chain::verify_line(line.bytes).expect("a line that fails its hash passed");
            let rec = Record::parse(line.bytes).expect("a line that is not a record passed");
            assert_eq!(rec.seq, head.seq + 1, "a gap or repeat passed");
            assert_eq!(*rec.prev, chain::to_hex(&head.hash), "a broken link passed");
            head = Head { seq: rec.seq, hash };
        }
    }
    assert_eq!(head.seq, records);
}

/// `audit verify` and start-up recovery on a directory made from the bytes. Neither may
/// panic; verify must call a log intact exactly when it is (a real chain is intact; anything
/// it calls intact passes an independent check); recovery must accept every log verify calls
/// intact, and after one more append the log must still verify.
pub fn audit_dir(data: &[u8]) {
    let tmp = scratch_dir();
    let dir = tmp.path().join("audit");
    fs::create_dir(&dir).expect("mkdir");
    let written = write_dir(&dir, data);
    let opts = VerifyOptions {
        dir: dir.clone(),
        ..VerifyOptions::default()
    };
    let rep = verify(&opts).expect("verify reads a readable directory");
    if written.all_valid {
        assert!(
            rep.intact(),
            "a real chain was called broken: {:?}",
            rep.problems
        );
        assert_eq!(rep.records, written.records);
    }
    if rep.intact() {
        assert_really_intact(&dir, rep.records);
    } else {
        assert!(!rep.problems[0].to_string().is_empty());
    }

    let mut options = AuditOptions::new(&dir);
    options.checkpoint_secs = 3600;
    match AuditLog::open(options) {
        Ok(log) => {
            let ev = event(&mut Bytes::new(b""));
            let appended = runtime().block_on(async {
                let seq = log.append(ev).await;
                let down = log.shutdown().await;
                (seq, down)
            });
            if rep.intact() {
                let (seq, down) = appended;
                assert_eq!(seq.expect("append to a recovered log"), rep.records + 1);
                down.expect("shutdown");
                let after = verify(&opts).expect("verify after recovery");
                assert!(
                    after.intact(),
                    "recovery broke an intact log: {:?}",
                    after.problems
                );
                assert_eq!(after.records, rep.records + 1);
            }
        }
        Err(e) => {
            assert!(
                !rep.intact(),
                "recovery refused a log verify calls intact: {e}"
            );
        }
    }
}

// ---------------------------------------------------------------------------------------------
// config

/// A file that exists, for the configuration's certificate and key paths.
fn existing_file() -> &'static PathBuf {
    static FILE: OnceLock<PathBuf> = OnceLock::new();
    FILE.get_or_init(|| {
        let dir = scratch_dir().keep();
        let p = dir.join("exists.pem");
        fs::write(&p, b"not really a certificate\n").expect("write");
        p
    })
}

/// `Config::parse` then `validate()` on arbitrary text, with the file keys pointed at a file
/// that exists so that validation goes past them; and `Config::load` of the same text from a
/// file. Errors must name a key; an accepted configuration must give a policy whose clients
/// have exactly the configured rights and a usable rate.
pub fn config(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let tmp = scratch_dir();
    let path = tmp.path().join("popgate.toml");
    fs::write(&path, text.as_bytes()).expect("write");
    if let Err(e) = Config::load(&path) {
        assert!(!e.to_string().is_empty());
    }
    let Ok(mut config) = Config::parse(&text) else {
        return;
    };
    let f = existing_file().clone();
    config.tls.cert = f.clone();
    config.tls.key = f.clone();
    config.tls.client_ca = f.clone();
    if config.tls.crl.is_some() {
        config.tls.crl = Some(f.clone());
    }
    if config.audit.signing_key.is_some() {
        config.audit.signing_key = Some(f);
    }
    match config.validate() {
        Ok(()) => {
            let policy = Policy::new(&config, Arc::new(HashSet::new()));
            assert_eq!(policy.clients().count(), config.clients.len());
            for c in &config.clients {
                assert!(valid_client_id(&c.id));
                let p = policy
                    .clients()
                    .find(|p| *p.id == *c.id)
                    .expect("every client");
                let read: FieldSet = c.read.iter().filter_map(|n| Field::from_name(n)).collect();
                assert_eq!(read.iter().count(), c.read.len(), "an unknown right passed");
                assert_eq!(p.read, read);
                assert!(p.rate_per_sec >= 1 && p.burst >= 1);
            }
        }
        Err(ConfigError::Invalid { key, reason }) => {
            assert!(!key.is_empty() && !reason.is_empty());
        }
        Err(e) => panic!("validate answered {e}"),
    }
}
