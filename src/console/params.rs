//! The query string and the ids in paths, each validated as the gRPC layer validates a field:
//! a bad value is the caller's fault and gets a 400 page that names the parameter and says
//! why, never a panic. Parameters not listed here are refused too, as config keys are: a
//! misspelt filter must not silently show everything.

use std::fmt::Write as _;

use crate::audit::Outcome;
use crate::audit::query::{Bound, Filter, TimeRange};
use crate::config::valid_client_id;
use crate::policy::Method;

/// A parameter the caller got wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadParam {
    pub name: String,
    pub why: String,
}

fn bad(name: &str, why: impl Into<String>) -> BadParam {
    BadParam {
        name: name.to_owned(),
        why: why.into(),
    }
}

/// Results per page of a search.
pub const PAGE_SIZE: u64 = 50;
/// The last page a search pages to: each page reads `page × PAGE_SIZE` records from the
/// newest end, so deeper reading is for `popgate audit query`, or a narrower filter.
pub const MAX_PAGE: u64 = 200;
/// Longer than any purpose a client may be given (config allows 128 characters).
const MAX_PURPOSE: usize = 128;
/// A query string longer than this is not one the form makes.
const MAX_QUERY: usize = 2048;

/// A search: the filter and the page (1 = newest).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Search {
    pub filter: Filter,
    pub page: u64,
}

/// `application/x-www-form-urlencoded` into pairs, in order; each name at most once.
pub fn pairs(query: &str) -> Result<Vec<(String, String)>, BadParam> {
    if query.len() > MAX_QUERY {
        return Err(bad("query", format!("longer than {MAX_QUERY} bytes")));
    }
    let mut out: Vec<(String, String)> = Vec::new();
    for part in query.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = part.split_once('=').unwrap_or((part, ""));
        let k = decode(k).map_err(|why| bad("query", why))?;
        let v = decode(v).map_err(|why| bad(&k, why))?;
        if out.iter().any(|(seen, _)| *seen == k) {
            return Err(bad(&k, "given twice; give it once"));
        }
        out.push((k, v));
    }
    Ok(out)
}

/// Percent-decoding, `+` as a space; the result must be UTF-8 without control characters.
fn decode(s: &str) -> Result<String, String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = b
                    .get(i + 1..i + 3)
                    .and_then(|h| std::str::from_utf8(h).ok())
                    .and_then(|h| u8::from_str_radix(h, 16).ok())
                    .ok_or("a % not followed by two hex digits")?;
                out.push(hex);
                i += 2;
            }
            c => out.push(c),
        }
        i += 1;
    }
    let text = String::from_utf8(out).map_err(|_| "not UTF-8 once decoded".to_owned())?;
    if text.chars().any(char::is_control) {
        return Err("contains a control character".into());
    }
    Ok(text)
}

/// A citizen id as the log holds it: 12 digits.
pub fn citizen_id(name: &str, s: &str) -> Result<String, BadParam> {
    if s.len() == 12 && s.bytes().all(|b| b.is_ascii_digit()) {
        Ok(s.to_owned())
    } else {
        Err(bad(
            name,
            format!("{:?} is not a citizen id: 12 digits", shown(s)),
        ))
    }
}

/// A client id as config allows it.
pub fn client_id(name: &str, s: &str) -> Result<String, BadParam> {
    if valid_client_id(s) {
        Ok(s.to_owned())
    } else {
        Err(bad(
            name,
            format!(
                "{:?} is not a client id: 1-64 of a-z 0-9 . _ -, starting with a letter or digit",
                shown(s)
            ),
        ))
    }
}

/// The methods the log can hold.
pub fn method_names() -> impl Iterator<Item = &'static str> {
    Method::ALL
        .iter()
        .map(|m| m.name())
        .chain([super::CONSOLE_METHOD])
}

pub const OUTCOMES: [Outcome; 6] = [
    Outcome::Ok,
    Outcome::Denied,
    Outcome::Invalid,
    Outcome::NotFound,
    Outcome::RateLimited,
    Outcome::Error,
];

fn method(s: &str) -> Result<String, BadParam> {
    method_names()
        .find(|m| *m == s)
        .map(str::to_owned)
        .ok_or_else(|| {
            let all: Vec<_> = method_names().collect();
            bad(
                "method",
                format!(
                    "{:?} is not an audited method; one of {}",
                    shown(s),
                    all.join(", ")
                ),
            )
        })
}

fn outcome(s: &str) -> Result<Outcome, BadParam> {
    s.parse::<Outcome>().map_err(|_| {
        let all: Vec<_> = OUTCOMES.iter().map(|o| o.as_str()).collect();
        bad(
            "outcome",
            format!(
                "{:?} is not an outcome; one of {}",
                shown(s),
                all.join(", ")
            ),
        )
    })
}

fn purpose(s: &str) -> Result<String, BadParam> {
    if s.chars().count() > MAX_PURPOSE || s.trim().is_empty() {
        return Err(bad(
            "purpose",
            format!("a purpose is 1-{MAX_PURPOSE} characters, not blank"),
        ));
    }
    Ok(s.to_owned())
}

fn bound(name: &str, s: &str) -> Result<Bound, BadParam> {
    Bound::parse(s).map_err(|_| {
        bad(
            name,
            format!(
                "{:?} is not a time: RFC 3339 (2026-11-24T05:00:00Z) or a UTC date (2026-11-24)",
                shown(s)
            ),
        )
    })
}

fn page(s: &str) -> Result<u64, BadParam> {
    match s.parse::<u64>() {
        Ok(n) if (1..=MAX_PAGE).contains(&n) => Ok(n),
        _ => Err(bad(
            "page",
            format!(
                "{:?} is not a page number: 1 to {MAX_PAGE} (narrow the filter to reach older records)",
                shown(s)
            ),
        )),
    }
}

/// A value as echoed in a message: cut, so that a message stays short.
fn shown(s: &str) -> String {
    s.chars().take(40).collect()
}

const SEARCH_PARAMS: [&str; 8] = [
    "citizen", "client", "method", "outcome", "purpose", "since", "until", "page",
];

/// The search of `/?…`. An empty value means "any", as the form sends every field.
pub fn search(query: &str) -> Result<Search, BadParam> {
    let mut f = Filter::default();
    let (mut since, mut until, mut page_no) = (None, None, 1);
    for (k, v) in pairs(query)? {
        if v.is_empty() && SEARCH_PARAMS.contains(&k.as_str()) {
            continue;
        }
        match k.as_str() {
            "citizen" => f.citizen = Some(citizen_id("citizen", &v)?),
            "client" => f.client = Some(client_id("client", &v)?),
            "method" => f.method = Some(method(&v)?),
            "outcome" => f.outcome = Some(outcome(&v)?),
            "purpose" => f.purpose = Some(purpose(&v)?),
            "since" => since = Some(bound("since", &v)?),
            "until" => until = Some(bound("until", &v)?),
            "page" => page_no = page(&v)?,
            other => return Err(unknown(other, &SEARCH_PARAMS.join(", "))),
        }
    }
    f.range = range(since, until)?;
    Ok(Search {
        filter: f,
        page: page_no,
    })
}

/// The time range of a citizen's or a client's page (`since`, `until`, both optional).
pub fn time_range(query: &str) -> Result<TimeRange, BadParam> {
    let (mut since, mut until) = (None, None);
    for (k, v) in pairs(query)? {
        match (k.as_str(), v.is_empty()) {
            ("since" | "until", true) => {}
            ("since", false) => since = Some(bound("since", &v)?),
            ("until", false) => until = Some(bound("until", &v)?),
            (other, _) => return Err(unknown(other, "since, until")),
        }
    }
    range(since, until)
}

/// No parameters at all (the integrity pages).
pub fn none(query: &str) -> Result<(), BadParam> {
    match pairs(query)?.first() {
        Some((k, _)) => Err(unknown(k, "none")),
        None => Ok(()),
    }
}

fn unknown(name: &str, known: &str) -> BadParam {
    bad(
        &shown(name),
        format!("not a parameter of this page; it takes: {known}"),
    )
}

fn range(since: Option<Bound>, until: Option<Bound>) -> Result<TimeRange, BadParam> {
    TimeRange::new(since, until).map_err(|_| bad("until", "must be after since"))
}

/// The query string that selects `filter` (and `page`, past the first), in a fixed order:
/// the links of the pager, and what a console audit record says was looked at.
pub fn canonical(filter: &Filter, page: u64) -> String {
    let mut parts: Vec<(&str, String)> = Vec::new();
    let mut put = |k, v: Option<&str>| {
        if let Some(v) = v {
            parts.push((k, v.to_owned()));
        }
    };
    put("citizen", filter.citizen.as_deref());
    put("client", filter.client.as_deref());
    put("method", filter.method.as_deref());
    put("outcome", filter.outcome.map(Outcome::as_str));
    put("purpose", filter.purpose.as_deref());
    put("since", filter.range.since().map(Bound::as_str));
    put("until", filter.range.until().map(Bound::as_str));
    if page > 1 {
        parts.push(("page", page.to_string()));
    }
    let mut out = String::new();
    for (i, (k, v)) in parts.iter().enumerate() {
        if i > 0 {
            out.push('&');
        }
        out.push_str(k);
        out.push('=');
        encode(&mut out, v);
    }
    out
}

/// Percent-encodes all but unreserved characters and `:` (which times are full of).
pub fn encode(out: &mut String, v: &str) {
    for b in v.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~:".contains(&b) {
            out.push(b as char);
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_bad_parameter_is_named() {
        for (q, name) in [
            ("citizen=12", "citizen"),
            ("client=Bad!", "client"),
            ("method=Steal", "method"),
            ("outcome=great", "outcome"),
            ("since=yesterday", "since"),
            ("until=2026-13-01", "until"),
            ("since=2026-12-02&until=2026-12-01", "until"),
            ("page=0", "page"),
            ("page=-1", "page"),
            ("page=99999999999999999999999", "page"),
            ("page=x", "page"),
            ("colour=red", "colour"),
            ("client=a&client=b", "client"),
            ("purpose=%ZZ", "purpose"),
            ("purpose=%0A", "purpose"),
            ("purpose=%FF", "purpose"),
        ] {
            let e = search(q).unwrap_err();
            assert_eq!(e.name, name, "{q}: {e:?}");
        }
    }

    #[test]
    fn a_search_round_trips_through_its_canonical_form() {
        let s = search("client=mof&outcome=denied&purpose=tax+registration%2Fx&since=2026-11-24&page=3&method=").unwrap();
        assert_eq!(s.page, 3);
        assert_eq!(s.filter.purpose.as_deref(), Some("tax registration/x"));
        let c = canonical(&s.filter, s.page);
        assert_eq!(
            c,
            "client=mof&outcome=denied&purpose=tax%20registration%2Fx&since=2026-11-24T00:00:00.000000Z&page=3"
        );
        assert_eq!(search(&c).unwrap(), s);
    }
}
