//! What a scan selects: time bounds validated once, the other filters as typed values, and
//! the two tests every source applies — a substring test on the raw line that spares parsing
//! lines that cannot match, then the exact test on the parsed record. Knows records, not where
//! their lines come from.

use std::fmt;
use std::str::FromStr;

use super::QueryError;
use crate::audit::record::{Outcome, Record, format_ts, parse_ts_us, push_json_str};

/// A point in time as the log writes `ts` (`2026-11-24T05:12:33.123456Z`). That text has a
/// fixed width, so a bound and a record compare as strings, with no parsing per record.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Bound(String);

impl Bound {
    /// RFC 3339 with any offset (`2026-11-24T12:00:00+07:00`), or a date (`2026-11-24`), which
    /// means its midnight UTC.
    pub fn parse(text: &str) -> Result<Bound, QueryError> {
        parse_ts_us(text)
            .or_else(|| parse_ts_us(&format!("{text}T00:00:00Z")))
            .map(Bound::from_micros)
            .ok_or_else(|| QueryError::BadBound {
                text: text.to_owned(),
            })
    }

    /// Microseconds since the Unix epoch.
    pub fn from_micros(us: u64) -> Bound {
        Bound(format_ts(us))
    }

    /// The canonical text, as a record's `ts` would spell it.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for Bound {
    type Err = QueryError;
    fn from_str(s: &str) -> Result<Bound, QueryError> {
        Bound::parse(s)
    }
}

impl fmt::Display for Bound {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Records at or after `since` and before `until`; either end may be open. Never empty: that
/// is checked when it is made, so a scan never runs for a range that cannot hold a record.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TimeRange {
    since: Option<Bound>,
    until: Option<Bound>,
}

impl TimeRange {
    /// The whole log.
    pub const ALL: TimeRange = TimeRange {
        since: None,
        until: None,
    };

    pub fn new(since: Option<Bound>, until: Option<Bound>) -> Result<TimeRange, QueryError> {
        if let (Some(s), Some(u)) = (&since, &until)
            && s >= u
        {
            return Err(QueryError::EmptyRange {
                since: s.clone(),
                until: u.clone(),
            });
        }
        Ok(TimeRange { since, until })
    }

    pub fn since(&self) -> Option<&Bound> {
        self.since.as_ref()
    }

    pub fn until(&self) -> Option<&Bound> {
        self.until.as_ref()
    }

    /// Whether neither end is set, so no file can be skipped by time.
    pub fn is_all(&self) -> bool {
        self.since.is_none() && self.until.is_none()
    }

    /// Whether a record with this `ts` is in the range.
    pub fn contains(&self, ts: &str) -> bool {
        self.since.as_ref().is_none_or(|s| ts >= s.as_str())
            && self.until.as_ref().is_none_or(|u| ts < u.as_str())
    }

    /// Whether `ts` is at or past the end: with `ts` never decreasing, nothing after a record
    /// with this `ts` is in the range.
    pub fn is_past_end(&self, ts: &str) -> bool {
        self.until.as_ref().is_some_and(|u| ts >= u.as_str())
    }

    /// Whether a record at `ts` is before the range begins, and so is every record before it
    /// (`ts` never decreases along the log): a reader going back from the newest end stops.
    pub fn is_before_start(&self, ts: &str) -> bool {
        self.since.as_ref().is_some_and(|s| ts < s.as_str())
    }
}

/// Which records to select: every filter set must hold. Plain data, so a caller builds it
/// from whatever it parsed (flags, a console's query string) with `..Filter::default()`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filter {
    pub range: TimeRange,
    /// The client id (certificate CN), exactly.
    pub client: Option<String>,
    /// Records about this citizen id.
    pub citizen: Option<String>,
    /// The method as audited (`Lookup`, `Verify`, …), exactly.
    pub method: Option<String>,
    /// The purpose as sent, exactly.
    pub purpose: Option<String>,
    /// The fingerprint of the certificate that made the call (`cert_sha256`, lowercase hex),
    /// exactly: which of a client's certificates is still in use during a renewal.
    pub cert_sha256: Option<String>,
    pub outcome: Option<Outcome>,
}

impl Filter {
    /// Only the records within `range`.
    pub fn range(range: TimeRange) -> Filter {
        Filter {
            range,
            ..Filter::default()
        }
    }

    /// Whether a parsed record is selected.
    pub fn matches(&self, r: &Record<'_>) -> bool {
        self.range.contains(&r.ts)
            && self.client.as_deref().is_none_or(|c| *r.client == *c)
            && self
                .citizen
                .as_deref()
                .is_none_or(|c| r.citizen_id.as_deref() == Some(c))
            && self.method.as_deref().is_none_or(|m| *r.method == *m)
            && self.purpose.as_deref().is_none_or(|p| *r.purpose == *p)
            && self
                .cert_sha256
                .as_deref()
                .is_none_or(|c| *r.cert_sha256 == *c)
            && self.outcome.is_none_or(|o| r.outcome == o)
    }

    /// Substrings that every selected line contains as the writer encodes it
    /// (`"client":"mof"`), to test before parsing (a database would put them in a `LIKE`).
    /// Outcome gets none, so that it goes on selecting lines of any layout the parser
    /// accepts, as it always has.
    pub fn needles(&self) -> Vec<String> {
        [
            ("client", &self.client),
            ("citizen_id", &self.citizen),
            ("method", &self.method),
            ("purpose", &self.purpose),
            ("cert_sha256", &self.cert_sha256),
        ]
        .into_iter()
        .filter_map(|(k, v)| v.as_deref().map(|v| key_needle(k, v)))
        .collect()
    }
}

/// `"key":<value as JSON>` exactly as the writer spells it.
fn key_needle(key: &str, value: &str) -> String {
    let mut v = Vec::new();
    push_json_str(&mut v, key);
    v.push(b':');
    push_json_str(&mut v, value);
    String::from_utf8(v).unwrap_or_default()
}

/// A [`Filter`] ready to test lines, its needles computed once per scan.
#[derive(Debug)]
pub struct Matcher<'a> {
    filter: &'a Filter,
    needles: Vec<String>,
}

impl<'a> Matcher<'a> {
    pub fn new(filter: &'a Filter) -> Matcher<'a> {
        Matcher {
            filter,
            needles: filter.needles(),
        }
    }

    pub fn filter(&self) -> &'a Filter {
        self.filter
    }

    /// `false` when the raw line cannot be a selected record; `true` means "parse it and see".
    pub fn may_match(&self, line: &[u8]) -> bool {
        if self.needles.is_empty() {
            return true;
        }
        match std::str::from_utf8(line) {
            Ok(s) => self.needles.iter().all(|n| s.contains(n.as_str())),
            // Not what the writer writes; let the parser say so.
            Err(_) => true,
        }
    }

    pub fn matches(&self, r: &Record<'_>) -> bool {
        self.filter.matches(r)
    }

    /// Whether nothing from `r` on can match (see [`TimeRange::is_past_end`]).
    pub fn past_end(&self, r: &Record<'_>) -> bool {
        self.filter.range.is_past_end(&r.ts)
    }

    /// Whether nothing from `r` back can match (see [`TimeRange::is_before_start`]).
    pub fn before_start(&self, r: &Record<'_>) -> bool {
        self.filter.range.is_before_start(&r.ts)
    }
}
