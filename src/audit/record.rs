//! One audit record: the event the gateway hands in ([`AuditEvent`]), its encoding as exactly
//! one JSON line with `prev`/`hash`, and the borrowed view readers parse it back into
//! ([`Record`]).
//!
//! The encoder is hand-written rather than serde's so that the byte layout (key order, escaping)
//! is fixed by this file and cannot drift with a dependency: the hash covers those bytes.

use std::borrow::Cow;
use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use serde::{Deserialize, Deserializer};

use super::chain::{self, HASH_KEY};

/// How a call ended, as audited.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Ok,
    Denied,
    Invalid,
    NotFound,
    RateLimited,
    Error,
}

impl Outcome {
    pub const ALL: [Outcome; 6] = [
        Outcome::Ok,
        Outcome::Denied,
        Outcome::Invalid,
        Outcome::NotFound,
        Outcome::RateLimited,
        Outcome::Error,
    ];

    /// The spelling in the log: `ok`, `denied`, `invalid`, `not_found`, `rate_limited`, `error`.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::Denied => "denied",
            Outcome::Invalid => "invalid",
            Outcome::NotFound => "not_found",
            Outcome::RateLimited => "rate_limited",
            Outcome::Error => "error",
        }
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Outcome {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Outcome::ALL
            .into_iter()
            .find(|o| o.as_str() == s)
            .ok_or_else(|| {
                format!("unknown outcome {s:?}: use ok, denied, invalid, not_found, rate_limited or error")
            })
    }
}

/// What the gateway knows about one call. Its shape is the privacy rule: there is a slot for
/// the citizen id and none for any other personal data (field *names* only, never values).
/// The caller's identity strings are shared (`Arc<str>`): they are the same for every call
/// on a connection, so a record costs no copies of them.
#[derive(Debug, Clone, PartialEq)]
pub struct AuditEvent {
    /// The client id (certificate CN).
    pub client: Arc<str>,
    /// Hex SHA-256 of the client's certificate (DER).
    pub cert_sha256: Arc<str>,
    /// The peer's socket address.
    pub peer: Arc<str>,
    /// `Lookup`, `Verify`, `PutCitizen`, `GetStats`, … (a stream item as its item method).
    pub method: &'static str,
    /// Whose data; `None` for calls about no citizen (the key is then absent).
    pub citizen_id: Option<String>,
    /// The Citizen field names released, checked or written.
    pub fields: Vec<&'static str>,
    pub purpose: String,
    pub request_id: String,
    pub outcome: Outcome,
    /// Served from the reuse cache.
    pub reused: bool,
    /// From receipt to answer.
    pub latency_us: u64,
    /// For aggregated `rate_limited` records: how many calls this record stands for.
    pub count: Option<u64>,
    /// A short machine-ish reason for `denied`/`invalid`; never personal data.
    pub reason: Option<String>,
}

/// Appends `s` as a JSON string. Besides what JSON requires (`"`, `\`, U+0000–U+001F) it also
/// escapes DEL and the C1 controls U+0080–U+009F, so that `grep`/`cat` of a log can never send
/// a terminal escape sequence that a caller smuggled into a request id.
pub fn push_json_str(out: &mut Vec<u8>, s: &str) {
    out.push(b'"');
    let b = s.as_bytes();
    let mut start = 0;
    let mut i = 0;
    while i < b.len() {
        // Eight plain bytes at a time: the writer encodes ~570 bytes per record, nearly all
        // of them plain ASCII, and a byte-by-byte match cost ~5,000 instructions a record.
        if let Some(chunk) = b.get(i..i + 8)
            && plain8(u64::from_le_bytes(chunk.try_into().unwrap_or([0; 8])))
        {
            i += 8;
            continue;
        }
        let c = b[i];
        let (esc, width): (Option<&[u8]>, usize) = match c {
            b'"' => (Some(b"\\\""), 1),
            b'\\' => (Some(b"\\\\"), 1),
            b'\n' => (Some(b"\\n"), 1),
            b'\r' => (Some(b"\\r"), 1),
            b'\t' => (Some(b"\\t"), 1),
            0..=0x1f | 0x7f => (None, 1),
            // U+0080..U+009F are encoded as C2 80..C2 9F.
            0xc2 if matches!(b.get(i + 1), Some(0x80..=0x9f)) => (None, 2),
            _ => {
                i += 1;
                continue;
            }
        };
        out.extend_from_slice(&b[start..i]);
        match esc {
            Some(e) => out.extend_from_slice(e),
            None => {
                let cp = if width == 1 { c } else { b[i + 1] };
                out.extend_from_slice(b"\\u00");
                out.push(b"0123456789abcdef"[(cp >> 4) as usize]);
                out.push(b"0123456789abcdef"[(cp & 15) as usize]);
            }
        }
        i += width;
        start = i;
    }
    out.extend_from_slice(&b[start..]);
    out.push(b'"');
}

/// Whether none of the 8 bytes in `w` needs a look in [`push_json_str`]: each is in
/// 0x20..=0x7e and none is `"` or `\`. Exact for "none" (the bit tricks of "Bit Twiddling
/// Hacks", haszero/hasless/hasmore), so a chunk it passes is copied as it is; one it fails goes
/// byte by byte.
fn plain8(w: u64) -> bool {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let has_zero = |v: u64| v.wrapping_sub(ONES) & !v & HIGH;
    let below_space = w.wrapping_sub(0x20 * ONES) & !w & HIGH;
    let del_or_above = (w.wrapping_add(ONES) | w) & HIGH;
    let quote = has_zero(w ^ (u64::from(b'"') * ONES));
    let backslash = has_zero(w ^ (u64::from(b'\\') * ONES));
    (below_space | del_or_above | quote | backslash) == 0
}

/// Appends the decimal digits of `n`.
pub fn push_u64(out: &mut Vec<u8>, mut n: u64) {
    let mut buf = [0u8; 20];
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&buf[i..]);
}

fn push_2(out: &mut Vec<u8>, n: u32) {
    out.push(b'0' + (n / 10 % 10) as u8);
    out.push(b'0' + (n % 10) as u8);
}

/// Appends `ts_us` (microseconds since the Unix epoch) as `YYYY-MM-DDTHH:MM:SS.ffffffZ`. The
/// fixed width is what lets readers compare timestamps as strings.
pub fn push_ts(out: &mut Vec<u8>, ts_us: u64) {
    let secs = (ts_us / 1_000_000) as i64;
    let micros = (ts_us % 1_000_000) as u32;
    let t =
        time::OffsetDateTime::from_unix_timestamp(secs).unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    let year = t.year().clamp(0, 9999) as u32;
    push_2(out, year / 100);
    push_2(out, year % 100);
    out.push(b'-');
    push_2(out, u8::from(t.month()) as u32);
    out.push(b'-');
    push_2(out, t.day() as u32);
    out.push(b'T');
    push_2(out, t.hour() as u32);
    out.push(b':');
    push_2(out, t.minute() as u32);
    out.push(b':');
    push_2(out, t.second() as u32);
    out.push(b'.');
    push_2(out, micros / 10_000);
    push_2(out, micros / 100 % 100);
    push_2(out, micros % 100);
    out.push(b'Z');
}

/// Microseconds since the Unix epoch of an RFC 3339 timestamp (any offset).
pub fn parse_ts_us(s: &str) -> Option<u64> {
    let t = time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339).ok()?;
    u64::try_from(t.unix_timestamp_nanos() / 1000).ok()
}

/// The timestamp text of `ts_us`.
pub fn format_ts(ts_us: u64) -> String {
    let mut v = Vec::with_capacity(27);
    push_ts(&mut v, ts_us);
    String::from_utf8(v).unwrap_or_default()
}

/// Appends the record line for `ev` (with its trailing newline) to `out` and returns its hash.
/// Key order: seq, ts, client, cert_sha256, peer, method, citizen_id?, fields, purpose,
/// request_id, outcome, reused, latency_us, count?, reason?, prev, hash.
pub fn encode(
    out: &mut Vec<u8>,
    seq: u64,
    ts_us: u64,
    ev: &AuditEvent,
    prev: &[u8; 32],
) -> [u8; 32] {
    encode_for(out, None, seq, ts_us, ev, prev)
}

/// As [`encode`], for the chain of a cluster node: `node` comes right after `seq` (each node
/// keeps a chain of its own; CONTRACT §6).
pub fn encode_for(
    out: &mut Vec<u8>,
    node: Option<&str>,
    seq: u64,
    ts_us: u64,
    ev: &AuditEvent,
    prev: &[u8; 32],
) -> [u8; 32] {
    let start = out.len();
    out.extend_from_slice(b"{\"seq\":");
    push_u64(out, seq);
    if let Some(node) = node {
        out.extend_from_slice(b",\"node\":");
        push_json_str(out, node);
    }
    out.extend_from_slice(b",\"ts\":\"");
    push_ts(out, ts_us);
    out.extend_from_slice(b"\",\"client\":");
    push_json_str(out, &ev.client);
    out.extend_from_slice(b",\"cert_sha256\":");
    push_json_str(out, &ev.cert_sha256);
    out.extend_from_slice(b",\"peer\":");
    push_json_str(out, &ev.peer);
    out.extend_from_slice(b",\"method\":");
    push_json_str(out, ev.method);
    if let Some(id) = &ev.citizen_id {
        out.extend_from_slice(b",\"citizen_id\":");
        push_json_str(out, id);
    }
    out.extend_from_slice(b",\"fields\":[");
    for (i, f) in ev.fields.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        push_json_str(out, f);
    }
    out.extend_from_slice(b"],\"purpose\":");
    push_json_str(out, &ev.purpose);
    out.extend_from_slice(b",\"request_id\":");
    push_json_str(out, &ev.request_id);
    out.extend_from_slice(b",\"outcome\":\"");
    out.extend_from_slice(ev.outcome.as_str().as_bytes());
    out.extend_from_slice(b"\",\"reused\":");
    out.extend_from_slice(if ev.reused { b"true" } else { b"false" });
    out.extend_from_slice(b",\"latency_us\":");
    push_u64(out, ev.latency_us);
    if let Some(n) = ev.count {
        out.extend_from_slice(b",\"count\":");
        push_u64(out, n);
    }
    if let Some(r) = &ev.reason {
        out.extend_from_slice(b",\"reason\":");
        push_json_str(out, r);
    }
    out.extend_from_slice(b",\"prev\":\"");
    chain::push_hex(out, prev);
    out.push(b'"');
    let hash = chain::sha256(&out[start..]);
    out.extend_from_slice(HASH_KEY);
    chain::push_hex(out, &hash);
    out.extend_from_slice(b"\"}\n");
    hash
}

/// A string field of a parsed record: borrowed from the line unless it had escapes, so
/// scanning millions of lines does not allocate per field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Str<'a>(pub Cow<'a, str>);

impl std::ops::Deref for Str<'_> {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Str<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for Str<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = Str<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(Str(Cow::Borrowed(v)))
            }
            fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
                Ok(Str(Cow::Owned(v.to_owned())))
            }
            fn visit_string<E>(self, v: String) -> Result<Self::Value, E> {
                Ok(Str(Cow::Owned(v)))
            }
        }
        d.deserialize_str(V)
    }
}

/// A record parsed back from a line. Unknown keys are ignored, so newer writers can add keys
/// without breaking older readers (the hash still covers them).
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Record<'a> {
    pub seq: u64,
    #[serde(borrow)]
    pub ts: Str<'a>,
    #[serde(borrow)]
    pub client: Str<'a>,
    #[serde(borrow)]
    pub cert_sha256: Str<'a>,
    #[serde(borrow)]
    pub peer: Str<'a>,
    #[serde(borrow)]
    pub method: Str<'a>,
    #[serde(borrow, default)]
    pub citizen_id: Option<Str<'a>>,
    #[serde(borrow)]
    pub fields: Vec<Str<'a>>,
    #[serde(borrow)]
    pub purpose: Str<'a>,
    #[serde(borrow)]
    pub request_id: Str<'a>,
    pub outcome: Outcome,
    pub reused: bool,
    pub latency_us: u64,
    #[serde(default)]
    pub count: Option<u64>,
    #[serde(borrow, default)]
    pub reason: Option<Str<'a>>,
    #[serde(borrow)]
    pub prev: Str<'a>,
    #[serde(borrow)]
    pub hash: Str<'a>,
    /// The node whose chain holds the record (a cluster's database log); absent in a file.
    #[serde(borrow, default)]
    pub node: Option<Str<'a>>,
}

impl<'a> Record<'a> {
    /// Parses one line (with or without its newline). Lines exactly as [`encode`] writes
    /// them without escapes take a fast path; anything else goes through serde_json, so
    /// both always agree on what a line means.
    pub fn parse(line: &'a [u8]) -> Result<Record<'a>, serde_json::Error> {
        if let Some(r) = fast::parse(line) {
            return Ok(r);
        }
        serde_json::from_slice(line)
    }

    /// How many calls this record stands for (aggregated `rate_limited` records count more).
    pub fn calls(&self) -> u64 {
        self.count.unwrap_or(1).max(1)
    }
}

/// A parser for the writer's own layout: keys in [`encode`]'s order, strings without
/// escapes. Scanning millions of lines spends most of its time here, and a fixed layout
/// needs no key lookup. It answers `None` at the first surprise; the caller then uses
/// serde_json, which is the reference.
mod fast {
    use std::borrow::Cow;

    use super::{Outcome, Record, Str};

    struct P<'a> {
        s: &'a str,
        i: usize,
    }

    impl<'a> P<'a> {
        fn lit(&mut self, l: &str) -> Option<()> {
            if self.s.as_bytes()[self.i..].starts_with(l.as_bytes()) {
                self.i += l.len();
                Some(())
            } else {
                None
            }
        }

        fn peek(&self, l: &str) -> bool {
            self.s.as_bytes()[self.i..].starts_with(l.as_bytes())
        }

        /// A JSON integer in canonical form (no leading zeros, no sign, fits u64).
        fn u64(&mut self) -> Option<u64> {
            let b = &self.s.as_bytes()[self.i..];
            let n = b.iter().take_while(|c| c.is_ascii_digit()).count();
            if n == 0 || n > 20 || (n > 1 && b[0] == b'0') {
                return None;
            }
            let v = self.s[self.i..self.i + n].parse().ok()?;
            self.i += n;
            Some(v)
        }

        /// A string without escapes or control characters, borrowed.
        fn string(&mut self) -> Option<Str<'a>> {
            const LO: u64 = 0x0101_0101_0101_0101;
            const HI: u64 = 0x8080_8080_8080_8080;
            self.lit("\"")?;
            let b = self.s.as_bytes();
            let start = self.i;
            let mut j = start;
            // Eight bytes at a time while none is `"`, `\` or below 0x20 (the bit tricks are
            // exact about whether a chunk holds one; the byte loop then finds where).
            while let Some(chunk) = b.get(j..j + 8) {
                let x = u64::from_le_bytes(chunk.try_into().ok()?);
                let q = x ^ (LO * u64::from(b'"'));
                let bs = x ^ (LO * u64::from(b'\\'));
                let hit = (q.wrapping_sub(LO) & !q)
                    | (bs.wrapping_sub(LO) & !bs)
                    | (x.wrapping_sub(LO * 0x20) & !x);
                if hit & HI != 0 {
                    break;
                }
                j += 8;
            }
            loop {
                match *b.get(j)? {
                    b'"' => break,
                    b'\\' | 0..=0x1f => return None,
                    _ => j += 1,
                }
            }
            self.i = j + 1;
            // `"` is ASCII, so both ends are on character boundaries.
            Some(Str(Cow::Borrowed(&self.s[start..j])))
        }

        fn bool(&mut self) -> Option<bool> {
            if self.lit("true").is_some() {
                Some(true)
            } else {
                self.lit("false").map(|()| false)
            }
        }
    }

    pub(super) fn parse(line: &[u8]) -> Option<Record<'_>> {
        let line = line.strip_suffix(b"\n").unwrap_or(line);
        let s = std::str::from_utf8(line).ok()?;
        let mut p = P { s, i: 0 };
        p.lit("{\"seq\":")?;
        let seq = p.u64()?;
        let node = if p.peek(",\"node\":") {
            p.lit(",\"node\":")?;
            Some(p.string()?)
        } else {
            None
        };
        p.lit(",\"ts\":")?;
        let ts = p.string()?;
        p.lit(",\"client\":")?;
        let client = p.string()?;
        p.lit(",\"cert_sha256\":")?;
        let cert_sha256 = p.string()?;
        p.lit(",\"peer\":")?;
        let peer = p.string()?;
        p.lit(",\"method\":")?;
        let method = p.string()?;
        let citizen_id = if p.peek(",\"citizen_id\":") {
            p.lit(",\"citizen_id\":")?;
            Some(p.string()?)
        } else {
            None
        };
        p.lit(",\"fields\":[")?;
        let mut fields = Vec::new();
        if p.lit("]").is_none() {
            loop {
                fields.push(p.string()?);
                if p.lit("]").is_some() {
                    break;
                }
                p.lit(",")?;
            }
        }
        p.lit(",\"purpose\":")?;
        let purpose = p.string()?;
        p.lit(",\"request_id\":")?;
        let request_id = p.string()?;
        p.lit(",\"outcome\":")?;
        let o = p.string()?;
        let outcome = Outcome::ALL.into_iter().find(|x| x.as_str() == &*o)?;
        p.lit(",\"reused\":")?;
        let reused = p.bool()?;
        p.lit(",\"latency_us\":")?;
        let latency_us = p.u64()?;
        let count = if p.peek(",\"count\":") {
            p.lit(",\"count\":")?;
            Some(p.u64()?)
        } else {
            None
        };
        let reason = if p.peek(",\"reason\":") {
            p.lit(",\"reason\":")?;
            Some(p.string()?)
        } else {
            None
        };
        p.lit(",\"prev\":")?;
        let prev = p.string()?;
        p.lit(",\"hash\":")?;
        let hash = p.string()?;
        p.lit("}")?;
        (p.i == s.len()).then_some(Record {
            seq,
            ts,
            client,
            cert_sha256,
            peer,
            method,
            citizen_id,
            fields,
            purpose,
            request_id,
            outcome,
            reused,
            latency_us,
            count,
            reason,
            prev,
            hash,
            node,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn event() -> AuditEvent {
        AuditEvent {
            client: "viettel".into(),
            cert_sha256: "ab".repeat(32).into(),
            peer: "127.0.0.1:5555".into(),
            method: "Lookup",
            citizen_id: Some("001203004567".into()),
            fields: vec!["full_name", "date_of_birth"],
            purpose: "subscriber-verification".into(),
            request_id: "r-1".into(),
            outcome: Outcome::Ok,
            reused: true,
            latency_us: 812,
            count: None,
            reason: None,
        }
    }

    /// What [`push_json_str`] must write, one char at a time.
    fn escaped_slowly(s: &str) -> String {
        let mut out = String::from("\"");
        for c in s.chars() {
            match c {
                '"' => out.push_str("\\\""),
                '\\' => out.push_str("\\\\"),
                '\n' => out.push_str("\\n"),
                '\r' => out.push_str("\\r"),
                '\t' => out.push_str("\\t"),
                '\0'..='\u{1f}' | '\u{7f}'..='\u{9f}' => {
                    out.push_str(&format!("\\u{:04x}", c as u32));
                }
                c => out.push(c),
            }
        }
        out.push('"');
        out
    }

    /// The eight-byte fast path never skips a byte that needs escaping: every such byte (and
    /// the plain neighbours of each class) at every offset of strings of 0–24 bytes.
    #[test]
    fn the_eight_byte_path_escapes_what_the_byte_path_does() {
        let specials = [
            "\"",
            "\\",
            "\n",
            "\r",
            "\t",
            "\0",
            "\u{1f}",
            " ",
            "~",
            "\u{7f}",
            "\u{80}",
            "\u{9f}",
            "\u{a0}",
            "é",
            "ữ",
            "\u{10ffff}",
            "!",
            "#",
            "[",
            "]",
        ];
        for len in 0..24 {
            for at in 0..len.max(1) {
                for special in specials {
                    let mut s: String = "abcdefghijklmnopqrstuvwx".chars().take(len).collect();
                    if len > 0 {
                        s.replace_range(at..at + 1, special);
                    }
                    let mut out = Vec::new();
                    push_json_str(&mut out, &s);
                    assert_eq!(String::from_utf8(out).unwrap(), escaped_slowly(&s), "{s:?}");
                }
            }
        }
    }

    #[test]
    fn ts_format() {
        let mut v = Vec::new();
        push_ts(&mut v, 1_795_000_353_000_007);
        assert_eq!(
            std::str::from_utf8(&v).unwrap(),
            "2026-11-18T11:12:33.000007Z"
        );
        assert_eq!(format_ts(0), "1970-01-01T00:00:00.000000Z");
    }

    #[test]
    fn escaping_keeps_one_line_and_round_trips() {
        let nasty = "a\"b\\c\nd\re\tf\u{0}g\u{1b}[31mh\u{7f}i\u{85}j\u{2028}kễ";
        let mut ev = event();
        ev.request_id = nasty.into();
        ev.purpose = nasty.into();
        ev.client = nasty.into();
        ev.reason = Some(nasty.into());
        let mut out = Vec::new();
        let h = encode(&mut out, 7, 1, &ev, &chain::GENESIS);
        assert_eq!(out.iter().filter(|&&b| b == b'\n').count(), 1);
        assert!(out.iter().all(|&b| b >= 0x20 || b == b'\n'));
        assert!(!out.windows(2).any(|w| w == [0xc2, 0x85]));
        let line = &out[..out.len() - 1];
        assert_eq!(chain::verify_line(line), Some(h));
        let r = Record::parse(line).unwrap();
        assert_eq!(&*r.request_id, nasty);
        assert_eq!(&*r.client, nasty);
        assert_eq!(r.reason.as_deref(), Some(nasty));
        assert_eq!(r.seq, 7);
        assert_eq!(&*r.prev, "0".repeat(64));
        assert_eq!(&*r.hash, chain::to_hex(&h));
        // serde_json agrees that it is one JSON object.
        let v: serde_json::Value = serde_json::from_slice(line).unwrap();
        assert_eq!(v["purpose"], nasty);
    }

    #[test]
    fn optional_keys_absent_or_present() {
        let mut ev = event();
        ev.citizen_id = None;
        let mut out = Vec::new();
        encode(&mut out, 1, 0, &ev, &chain::GENESIS);
        let s = std::str::from_utf8(&out).unwrap();
        assert!(!s.contains("citizen_id") && !s.contains("count") && !s.contains("reason"));
        ev.outcome = Outcome::RateLimited;
        ev.count = Some(40);
        ev.reason = Some("rate".into());
        out.clear();
        encode(&mut out, 1, 0, &ev, &chain::GENESIS);
        let r = Record::parse(&out).unwrap();
        assert_eq!(
            (r.count, r.outcome, r.calls()),
            (Some(40), Outcome::RateLimited, 40)
        );
        assert!(matches!(r.client.0, Cow::Borrowed(_)));
    }

    #[test]
    fn a_cluster_node_names_itself_in_its_records() {
        let mut out = Vec::new();
        let h = encode_for(&mut out, Some("gw-2"), 9, 1, &event(), &chain::GENESIS);
        let line = &out[..out.len() - 1];
        assert!(line.starts_with(b"{\"seq\":9,\"node\":\"gw-2\",\"ts\":"));
        assert_eq!(chain::verify_line(line), Some(h));
        let r = Record::parse(line).unwrap();
        assert_eq!(r.node.as_deref(), Some("gw-2"));
        assert!(
            matches!(r.client.0, Cow::Borrowed(_)),
            "the fast path took it"
        );
        let v: serde_json::Value = serde_json::from_slice(line).unwrap();
        assert_eq!(v["node"], "gw-2");
        out.clear();
        encode(&mut out, 9, 1, &event(), &chain::GENESIS);
        assert_eq!(Record::parse(&out).unwrap().node, None);
    }

    #[test]
    fn fast_path_agrees_with_serde() {
        let mut evs = vec![event()];
        let mut e = event();
        e.citizen_id = None;
        e.fields = vec![];
        e.count = Some(3);
        e.reason = Some("r".into());
        e.outcome = Outcome::RateLimited;
        evs.push(e);
        let mut e = event();
        e.request_id = "quote\" and é and \u{1b}".into();
        evs.push(e);
        let mut e = event();
        e.fields = vec!["a"];
        e.latency_us = 0;
        e.purpose = "Nguyễn".into();
        evs.push(e);
        for (i, ev) in evs.iter().enumerate() {
            let mut out = Vec::new();
            encode(&mut out, u64::MAX - 1, 5, ev, &chain::GENESIS);
            let serde: Record = serde_json::from_slice(&out).unwrap();
            assert_eq!(Record::parse(&out).unwrap(), serde, "event {i}");
            // Escapes fall back to serde; everything else takes the fast path.
            assert_eq!(fast::parse(&out).is_some(), i != 2, "event {i}");
        }
        // Other layouts are still records, through serde.
        let reordered = br#"{"ts":"2026-11-24T05:12:33.123456Z","seq":1,"client":"c","cert_sha256":"","peer":"","method":"Lookup","fields":[],"purpose":"","request_id":"","outcome":"ok","reused":false,"latency_us":1,"prev":"00","hash":"11"}"#;
        assert!(fast::parse(reordered).is_none());
        assert_eq!(Record::parse(reordered).unwrap().seq, 1);
        // Trailing garbage, leading zeros, raw control characters: not records.
        let mut out = Vec::new();
        encode(&mut out, 1, 5, &event(), &chain::GENESIS);
        let line = &out[..out.len() - 1];
        let mut bad = line.to_vec();
        bad.extend_from_slice(b"x");
        assert!(Record::parse(&bad).is_err());
        let bad = String::from_utf8(line.to_vec())
            .unwrap()
            .replacen("\"seq\":1", "\"seq\":01", 1);
        assert!(Record::parse(bad.as_bytes()).is_err());
        let bad = String::from_utf8(line.to_vec())
            .unwrap()
            .replacen("r-1", "r\u{1}", 1);
        assert!(Record::parse(bad.as_bytes()).is_err());
    }

    #[test]
    fn fast_strings_stop_at_every_offset() {
        // Quotes, backslashes and control characters at every position of a chunk.
        for special in ["\"", "\\", "\n", "\u{1}", "\u{1f}"] {
            for at in 0..20 {
                let mut e = event();
                e.request_id = format!("{}{special}{}", "x".repeat(at), "y".repeat(9));
                let mut out = Vec::new();
                encode(&mut out, 1, 5, &e, &chain::GENESIS);
                let r = Record::parse(&out).unwrap();
                assert_eq!(&*r.request_id, e.request_id, "{special:?} at {at}");
                assert_eq!(&*r.purpose, e.purpose);
            }
        }
        // Bytes just above the limits pass the fast path.
        let mut e = event();
        e.request_id = " !#$[]^_`{|}~\u{7e}ễ".repeat(3);
        let mut out = Vec::new();
        encode(&mut out, 1, 5, &e, &chain::GENESIS);
        assert_eq!(&*fast::parse(&out).unwrap().request_id, e.request_id);
    }

    #[test]
    fn outcome_spelling() {
        for o in Outcome::ALL {
            assert_eq!(o.as_str().parse::<Outcome>(), Ok(o));
            let j: Outcome = serde_json::from_str(&format!("\"{o}\"")).unwrap();
            assert_eq!(j, o);
        }
        assert!("okay".parse::<Outcome>().is_err());
    }
}
