//! `/clients/ID`: one client's calls per day by outcome, its denied and rate-limited calls,
//! and its reuse rate, as charts drawn on the server, with the numbers in a table beside them.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use super::super::html::{count, esc};
use super::super::svg::{self, Series, Unit};
use crate::audit::query::{Counts, Fold, TimeRange};
use crate::audit::record::Record;

/// Counts per UTC day (`ts`'s first ten characters).
pub struct ByDay;

impl Fold for ByDay {
    type Part = BTreeMap<String, Counts>;

    fn start(&self) -> Self::Part {
        BTreeMap::new()
    }

    fn add(&self, days: &mut Self::Part, r: &Record<'_>, _line: &[u8]) -> bool {
        let day = r.ts.get(..10).unwrap_or(&r.ts);
        match days.get_mut(day) {
            Some(c) => c.add(r),
            None => days.entry(day.to_owned()).or_default().add(r),
        }
        true
    }
}

/// The longest run of days drawn with the empty days between filled in; past it only the
/// days with calls are drawn.
const FILL_DAYS: i64 = 92;

/// Every day from the first to the last of `days`, empty ones included, when that is short
/// enough to draw.
pub fn fill(days: BTreeMap<String, Counts>) -> Vec<(String, Counts)> {
    let fmt = time::macros::format_description!("[year]-[month]-[day]");
    let parse = |d: &str| time::Date::parse(d, &fmt).ok();
    let (Some(first), Some(last)) = (
        days.keys().next().and_then(|d| parse(d)),
        days.keys().next_back().and_then(|d| parse(d)),
    ) else {
        return days.into_iter().collect();
    };
    if (last - first).whole_days() > FILL_DAYS {
        return days.into_iter().collect();
    }
    let mut out = Vec::new();
    let mut d = first;
    while d <= last {
        let key = d.format(&fmt).unwrap_or_default();
        let c = days.get(&key).cloned().unwrap_or_default();
        out.push((key, c));
        match d.next_day() {
            Some(n) => d = n,
            None => break,
        }
    }
    out
}

const OUTCOME_COLORS: [(&str, &str); 6] = [
    ("ok", "#1e7b34"),
    ("denied", "#b00020"),
    ("invalid", "#e08a00"),
    ("not_found", "#6b7b8c"),
    ("rate_limited", "#7b3fa0"),
    ("error", "#3b3b3b"),
];

fn outcome_value(c: &Counts, name: &str) -> u64 {
    match name {
        "ok" => c.ok,
        "denied" => c.denied,
        "invalid" => c.invalid,
        "not_found" => c.not_found,
        "rate_limited" => c.rate_limited,
        _ => c.error,
    }
}

pub fn render(client: &str, range: &TimeRange, days: &[(String, Counts)]) -> String {
    let mut total = Counts::default();
    for (_, c) in days {
        total.merge(c);
    }
    let names: Vec<String> = days.iter().map(|(d, _)| d.clone()).collect();
    let mut out = format!("<h1>Client {}</h1>", esc(client));
    let _ = write!(
        out,
        "<form class=\"noprint\" method=\"get\" action=\"/clients/{c}\"><label>Since<input name=\"since\" value=\"{s}\"></label> \
<label>Until (before)<input name=\"until\" value=\"{u}\"></label> <button type=\"submit\">Show</button></form>",
        c = esc(client),
        s = esc(range.since().map_or("", |b| b.as_str())),
        u = esc(range.until().map_or("", |b| b.as_str())),
    );
    let _ = write!(
        out,
        "<table id=\"totals\"><tr><th>calls</th><th>ok</th><th>denied</th><th>invalid</th><th>not found</th><th>rate limited</th><th>error</th><th>reuse rate</th></tr>\
<tr><td class=\"n\" data-total=\"calls\">{}</td><td class=\"n\" data-total=\"ok\">{}</td><td class=\"n\" data-total=\"denied\">{}</td>\
<td class=\"n\" data-total=\"invalid\">{}</td><td class=\"n\" data-total=\"not_found\">{}</td><td class=\"n\" data-total=\"rate_limited\">{}</td>\
<td class=\"n\" data-total=\"error\">{}</td><td class=\"n\" data-total=\"reuse_rate\">{:.1}%</td></tr></table>",
        count(total.calls),
        count(total.ok),
        count(total.denied),
        count(total.invalid),
        count(total.not_found),
        count(total.rate_limited),
        count(total.error),
        total.reuse_rate() * 100.0
    );
    if days.is_empty() {
        out.push_str("<p id=\"summary\" data-count=\"0\">No calls by this client in the log for this period.</p>");
        return out;
    }
    let by_outcome: Vec<Series<'_>> = OUTCOME_COLORS
        .iter()
        .map(|(name, color)| Series {
            name,
            color,
            values: days
                .iter()
                .map(|(_, c)| outcome_value(c, name) as f64)
                .collect(),
        })
        .collect();
    out.push_str("<h2>Calls per day, by outcome</h2>");
    out.push_str(&svg::bars(
        "calls",
        "Calls per day by outcome",
        &names,
        &by_outcome,
        Unit::Count,
    ));
    out.push_str("<h2>Denied and rate-limited calls per day</h2>");
    out.push_str(&svg::bars(
        "refused",
        "Denied and rate-limited calls per day",
        &names,
        &[
            Series {
                name: "denied",
                color: "#b00020",
                values: days.iter().map(|(_, c)| c.denied as f64).collect(),
            },
            Series {
                name: "rate_limited",
                color: "#7b3fa0",
                values: days.iter().map(|(_, c)| c.rate_limited as f64).collect(),
            },
        ],
        Unit::Count,
    ));
    out.push_str("<h2>Reuse rate per day</h2><p class=\"muted\">Answers served from the reuse cache, of the calls answered ok.</p>");
    out.push_str(&svg::bars(
        "reuse",
        "Reuse rate per day",
        &names,
        &[Series {
            name: "reuse_rate",
            color: "#17324d",
            values: days.iter().map(|(_, c)| c.reuse_rate() * 100.0).collect(),
        }],
        Unit::Percent,
    ));
    out.push_str("<h2>Per day</h2><table id=\"days\"><tr><th>day (UTC)</th><th>calls</th>");
    for (name, _) in OUTCOME_COLORS {
        let _ = write!(out, "<th>{name}</th>");
    }
    out.push_str("<th>reuse rate</th></tr>");
    for (day, c) in days {
        let _ = write!(
            out,
            "<tr data-day=\"{}\"><td>{}</td><td class=\"n\">{}</td>",
            esc(day),
            esc(day),
            c.calls
        );
        for (name, _) in OUTCOME_COLORS {
            let _ = write!(out, "<td class=\"n\">{}</td>", outcome_value(c, name));
        }
        let _ = write!(
            out,
            "<td class=\"n\">{:.1}%</td></tr>",
            c.reuse_rate() * 100.0
        );
    }
    out.push_str("</table>");
    out
}
