//! HTML: escaping (every value from the log or the request goes through [`esc`]), the page
//! layout, and the one style sheet, inline, allowed by its hash in the Content-Security-Policy
//! so that no other style (and no script at all) can run.

use std::fmt::Write as _;
use std::sync::OnceLock;

use super::viewer::Viewer;

/// Escapes text for an element's content or a quoted attribute.
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// The style sheet of every page. Printing drops the navigation and the forms, so that a
/// citizen's report prints as a document.
pub const CSS: &str = "body{font:15px/1.4 system-ui,sans-serif;margin:0;color:#1b1b1b;background:#fff}\
header{background:#17324d;color:#fff;padding:.6em 1em;display:flex;gap:1.5em;align-items:baseline;flex-wrap:wrap}\
header a{color:#fff}header .who{margin-left:auto;font-size:.9em}\
main{padding:1em}h1{font-size:1.4em;margin:.2em 0 .6em}\
table{border-collapse:collapse;margin:.5em 0;font-size:.9em}\
th,td{border:1px solid #ccc;padding:.25em .5em;text-align:left;vertical-align:top}\
th{background:#eef2f6}td.n{text-align:right;font-variant-numeric:tabular-nums}\
form.search{display:grid;grid-template-columns:repeat(auto-fill,minmax(14em,1fr));gap:.5em;margin-bottom:1em}\
form.noprint{display:flex;flex-wrap:wrap;gap:.5em;align-items:end;margin-bottom:1em}\
label{display:flex;flex-direction:column;font-size:.85em}\
td.nw{white-space:nowrap}\
.error{border-left:4px solid #b00020;padding:.5em 1em;background:#fdecee}\
.ok{border-left:4px solid #1e7b34;padding:.5em 1em;background:#e9f6ec}\
.bad{border-left:4px solid #b00020;padding:.5em 1em;background:#fdecee}\
.muted{color:#666}nav.pager{margin:1em 0;display:flex;gap:1em}\
svg{display:block;margin:.5em 0 1.5em;max-width:100%;height:auto}\
@media print{header,form,nav,.noprint{display:none}body{font-size:11pt}}";

/// `'sha256-…'` of [`CSS`], for `style-src`.
pub fn style_source() -> &'static str {
    static HASH: OnceLock<String> = OnceLock::new();
    HASH.get_or_init(|| {
        let d = ring::digest::digest(&ring::digest::SHA256, CSS.as_bytes());
        format!("'sha256-{}'", base64(d.as_ref()))
    })
}

/// Standard base64 with padding (the form CSP hashes take).
fn base64(bytes: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(A[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// A whole page: `title` (plain text) and `body` (HTML built with [`esc`]).
pub fn page(title: &str, viewer: Option<&Viewer>, body: &str) -> String {
    let mut out = String::with_capacity(body.len() + 2048);
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
<meta name=\"referrer\" content=\"no-referrer\">\
<title>{} · popgate audit console</title><style>{CSS}</style></head><body>",
        esc(title)
    );
    out.push_str("<header><strong>popgate audit console</strong>");
    if let Some(v) = viewer {
        let _ = write!(
            out,
            "<nav><a href=\"/\">Search</a> · <a href=\"/integrity\">Integrity</a></nav>\
<span class=\"who\">{} ({})</span>",
            esc(&v.id),
            esc(v.role.name())
        );
    }
    let _ = writeln!(out, "</header><main>{body}</main></body></html>");
    out
}

/// A page that says what went wrong (`status` in its title) and nothing else.
pub fn error_page(status: u16, heading: &str, message: &str, viewer: Option<&Viewer>) -> String {
    page(
        &format!("{status} {heading}"),
        viewer,
        &format!(
            "<h1>{status} {}</h1><p class=\"error\" id=\"error\">{}</p>",
            esc(heading),
            esc(message)
        ),
    )
}

/// `n` with thousands separated, for counts.
pub fn count(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaping_leaves_no_markup() {
        assert_eq!(
            esc("<script>alert('x')</script>&\""),
            "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;&amp;&quot;"
        );
    }

    #[test]
    fn base64_matches_known_values() {
        assert_eq!(base64(b""), "");
        assert_eq!(base64(b"f"), "Zg==");
        assert_eq!(base64(b"fo"), "Zm8=");
        assert_eq!(base64(b"foo"), "Zm9v");
        assert_eq!(base64(b"foobar"), "Zm9vYmFy");
    }

    #[test]
    fn counts_are_grouped() {
        assert_eq!(count(0), "0");
        assert_eq!(count(1234567), "1,234,567");
    }
}
