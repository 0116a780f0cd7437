//! One file per page; each turns what was read from the log into the page's HTML and does
//! nothing else (no I/O, no request parsing). Shared here: how a record is shown in a table.
//!
//! Hooks that tests (and a browser driving the pages) rely on, kept stable: the results table
//! `#records` with a row `tr[data-seq]` per record (its chain position); `#summary[data-count]`
//! (how many records a search page or a report shows); the CSV link `#csv`; the charts
//! `svg[data-chart=calls|refused|reuse]`, each bar a `rect[data-day][data-series][data-value]`;
//! the totals `td[data-total=calls|ok|denied|…|reuse_rate]`; on the integrity page the button
//! `#verify`, `#state[data-state=unverified|intact|broken|failed]`, `#problems li`,
//! `td[data-head]` (the last verified seq) and `#checkpoints[data-checkpoints][data-signatures]`;
//! on an error page `#error`.

pub mod citizen;
pub mod client;
pub mod integrity;
pub mod search;

use std::fmt::Write as _;

use super::html::esc;
use crate::audit::record::Record;

/// The record's position in its chain: `seq`, with the node in a cluster (each node keeps a
/// chain of its own).
pub fn position(r: &Record<'_>) -> String {
    match r.node.as_deref() {
        Some(n) if !n.is_empty() => format!("{n}:{}", r.seq),
        _ => r.seq.to_string(),
    }
}

fn fields(r: &Record<'_>) -> String {
    let f: Vec<&str> = r.fields.iter().map(|f| &**f).collect();
    f.join(" ")
}

/// A table of records, newest first; `with_citizen` adds the citizen column (a link to the
/// citizen's report).
pub fn table(records: &[Record<'static>], with_citizen: bool) -> String {
    let mut out = String::from(
        "<table id=\"records\"><thead><tr><th>seq</th><th>time (UTC)</th><th>client</th><th>method</th>",
    );
    if with_citizen {
        out.push_str("<th>citizen</th>");
    }
    out.push_str("<th>fields</th><th>purpose</th><th>outcome</th><th>reused</th><th>request id</th></tr></thead><tbody>");
    for r in records {
        let _ = write!(
            out,
            "<tr data-seq=\"{pos}\"><td class=\"n\">{pos}</td><td class=\"nw\">{}</td><td><a href=\"/clients/{c}\">{c}</a></td><td>{}</td>",
            esc(&r.ts),
            esc(&r.method),
            pos = esc(&position(r)),
            c = esc(&r.client),
        );
        if with_citizen {
            match r.citizen_id.as_deref() {
                Some(id) => {
                    let _ = write!(
                        out,
                        "<td><a href=\"/citizens/{id}\">{id}</a></td>",
                        id = esc(id)
                    );
                }
                None => out.push_str("<td></td>"),
            }
        }
        let _ = write!(
            out,
            "<td>{}</td><td>{}</td><td>{}</td><td>{}</td><td class=\"nw\">{}</td></tr>",
            esc(&fields(r)),
            esc(&r.purpose),
            esc(r.outcome.as_str()),
            if r.reused { "yes" } else { "" },
            esc(&r.request_id)
        );
    }
    out.push_str("</tbody></table>");
    out
}
