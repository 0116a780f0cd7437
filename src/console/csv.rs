//! A citizen's access report as CSV (RFC 4180: comma-separated, CRLF, quoted where needed).
//! A cell that a spreadsheet would take for a formula (starting `=`, `+`, `-`, `@`, tab or
//! CR) gets a leading `'`: purposes and request ids are what callers sent, and opening the
//! file must not run what they wrote.

use crate::audit::record::Record;

pub const HEADER: [&str; 11] = [
    "seq",
    "node",
    "ts",
    "client",
    "method",
    "fields",
    "purpose",
    "outcome",
    "reused",
    "request_id",
    "cert_sha256",
];

fn cell(out: &mut String, s: &str) {
    let guarded = s.starts_with(['=', '+', '-', '@', '\t', '\r']);
    let quote = guarded || s.contains([',', '"', '\n', '\r']);
    if quote {
        out.push('"');
    }
    if guarded {
        out.push('\'');
    }
    for c in s.chars() {
        if c == '"' {
            out.push('"');
        }
        out.push(c);
    }
    if quote {
        out.push('"');
    }
}

fn row(out: &mut String, cells: &[&str]) {
    for (i, c) in cells.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        cell(out, c);
    }
    out.push_str("\r\n");
}

/// The header, then one row per access, as given (newest first).
pub fn report(accesses: &[Record<'static>]) -> String {
    let mut out = String::new();
    row(&mut out, &HEADER);
    for r in accesses {
        let fields: Vec<&str> = r.fields.iter().map(|f| &**f).collect();
        row(
            &mut out,
            &[
                &r.seq.to_string(),
                r.node.as_deref().unwrap_or(""),
                &r.ts,
                &r.client,
                &r.method,
                &fields.join(" "),
                &r.purpose,
                r.outcome.as_str(),
                if r.reused { "true" } else { "false" },
                &r.request_id,
                &r.cert_sha256,
            ],
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cells_are_quoted_and_formulas_defused() {
        let mut s = String::new();
        row(&mut s, &["a", "b,c", "say \"hi\"", "=HYPERLINK(1)", "-1"]);
        assert_eq!(
            s,
            "a,\"b,c\",\"say \"\"hi\"\"\",\"'=HYPERLINK(1)\",\"'-1\"\r\n"
        );
    }
}
