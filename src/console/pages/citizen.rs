//! `/citizens/ID`: who accessed one citizen's data, when, which fields and why — printable —
//! and `/citizens/ID.csv`, the same rows as CSV.

use std::fmt::Write as _;

use super::super::html::{count, esc};
use crate::audit::query::{Report, TimeRange};
use crate::audit::record::Record;

fn period(range: &TimeRange) -> String {
    match (range.since(), range.until()) {
        (None, None) => "the whole log".into(),
        (Some(s), None) => format!("from {s}"),
        (None, Some(u)) => format!("before {u}"),
        (Some(s), Some(u)) => format!("from {s}, before {u}"),
    }
}

pub fn render(
    citizen: &str,
    range: &TimeRange,
    query: &str,
    generated: &str,
    rep: &Report<Record<'static>>,
) -> String {
    let mut out = format!(
        "<h1>Access report: citizen {c}</h1>\
<p>Every call about citizen <strong>{c}</strong> in the audit log, newest first: who (the client, by certificate), \
when, which fields were released, checked or written, and the purpose it stated. Period: {p}. Generated {g}.</p>",
        c = esc(citizen),
        p = esc(&period(range)),
        g = esc(generated)
    );
    let csv_link = if query.is_empty() {
        format!("/citizens/{citizen}.csv")
    } else {
        format!("/citizens/{citizen}.csv?{query}")
    };
    let _ = write!(
        out,
        "<form class=\"noprint\" method=\"get\" action=\"/citizens/{c}\"><label>Since<input name=\"since\" value=\"{s}\"></label> \
<label>Until (before)<input name=\"until\" value=\"{u}\"></label> <button type=\"submit\">Show</button></form>\
<p class=\"noprint\"><a id=\"csv\" href=\"{}\" download>Download as CSV</a></p>",
        esc(&csv_link),
        c = esc(citizen),
        s = esc(range.since().map_or("", |b| b.as_str())),
        u = esc(range.until().map_or("", |b| b.as_str())),
    );
    let clients: Vec<&str> = rep.clients.iter().map(String::as_str).collect();
    let _ = write!(
        out,
        "<p id=\"summary\" data-count=\"{}\">{} access(es) by {} client(s){}{}.</p>",
        rep.accesses.len(),
        count(rep.accesses.len() as u64),
        rep.clients.len(),
        if clients.is_empty() { "" } else { ": " },
        esc(&clients.join(", "))
    );
    if !rep.accesses.is_empty() {
        out.push_str(&super::table(&rep.accesses, false));
    }
    if rep.skipped.count > 0 {
        let _ = write!(
            out,
            "<p class=\"error\">{} line(s) of the log are not records and were skipped: run the integrity check.</p>",
            rep.skipped.count
        );
    }
    out
}
