//! `/`: the search form, and with a query the matching records, newest first, a page at a
//! time, each with its position in the chain.

use std::fmt::Write as _;

use super::super::html::{count, esc};
use super::super::params::{self, PAGE_SIZE, Search, canonical};
use crate::audit::query::{Filter, Page};
use crate::audit::record::Record;

/// The form, filled in with `filter`.
pub fn form(filter: &Filter) -> String {
    let text = |name: &str, label: &str, value: Option<&str>, hint: &str| {
        format!(
            "<label>{label}<input name=\"{name}\" value=\"{}\" placeholder=\"{hint}\"></label>",
            esc(value.unwrap_or(""))
        )
    };
    let select = |name: &str, label: &str, options: Vec<&str>, chosen: Option<&str>| {
        let mut s =
            format!("<label>{label}<select name=\"{name}\"><option value=\"\">any</option>");
        for o in options {
            let sel = if Some(o) == chosen { " selected" } else { "" };
            let _ = write!(s, "<option{sel}>{}</option>", esc(o));
        }
        s.push_str("</select></label>");
        s
    };
    let mut out = String::from("<form class=\"search\" method=\"get\" action=\"/\">");
    out.push_str(&text(
        "citizen",
        "Citizen id",
        filter.citizen.as_deref(),
        "12 digits",
    ));
    out.push_str(&text(
        "client",
        "Client",
        filter.client.as_deref(),
        "client id",
    ));
    out.push_str(&select(
        "method",
        "Method",
        params::method_names().collect(),
        filter.method.as_deref(),
    ));
    out.push_str(&select(
        "outcome",
        "Outcome",
        params::OUTCOMES.iter().map(|o| o.as_str()).collect(),
        filter.outcome.map(|o| o.as_str()),
    ));
    out.push_str(&text(
        "purpose",
        "Purpose",
        filter.purpose.as_deref(),
        "exactly as sent",
    ));
    out.push_str(&text(
        "since",
        "Since",
        filter.range.since().map(|b| b.as_str()),
        "2026-11-24 or RFC 3339",
    ));
    out.push_str(&text(
        "until",
        "Until (before)",
        filter.range.until().map(|b| b.as_str()),
        "2026-11-25 or RFC 3339",
    ));
    out.push_str("<label>&nbsp;<button type=\"submit\">Search</button></label></form>");
    out
}

/// The form alone (`/` without a query).
pub fn empty() -> String {
    format!(
        "<h1>Search the audit log</h1>{}<p class=\"muted\">Newest first, {PAGE_SIZE} to a page. Leave a field empty for any value; submit an empty form to see the newest records.</p>",
        form(&Filter::default())
    )
}

/// The form and one page of results.
pub fn results(search: &Search, page: &Page<Record<'static>>) -> String {
    let mut out = format!("<h1>Search the audit log</h1>{}", form(&search.filter));
    let first = (search.page - 1) * PAGE_SIZE + 1;
    if page.records.is_empty() {
        let _ = write!(
            out,
            "<p id=\"summary\" data-count=\"0\">No matching records{}.</p>",
            if search.page > 1 { " on this page" } else { "" }
        );
    } else {
        let _ = write!(
            out,
            "<p id=\"summary\" data-count=\"{}\">Matching records {} to {}, newest first{}.</p>",
            page.records.len(),
            count(first),
            count(first + page.records.len() as u64 - 1),
            if page.more { "; older ones follow" } else { "" }
        );
        out.push_str(&super::table(&page.records, true));
    }
    if page.skipped.count > 0 {
        let _ = write!(
            out,
            "<p class=\"error\">{} line(s) of the log are not records and were skipped: run the integrity check.</p>",
            page.skipped.count
        );
    }
    out.push_str("<nav class=\"pager\">");
    if search.page > 1 {
        let _ = write!(
            out,
            "<a rel=\"prev\" href=\"/?{}\">← newer</a>",
            esc(&canonical(&search.filter, search.page - 1))
        );
    }
    if page.more && search.page < params::MAX_PAGE {
        let _ = write!(
            out,
            "<a rel=\"next\" href=\"/?{}\">older →</a>",
            esc(&canonical(&search.filter, search.page + 1))
        );
    }
    out.push_str("</nav>");
    out
}
