//! `/integrity`: what the last check of the log found (the last position verified, the
//! checkpoints and whether their signatures were checked), and "verify now", which runs the
//! same check as `popgate audit verify` and shows its result.

use std::fmt::Write as _;

use super::super::html::{count, esc};
use super::super::{LatestCheckpoint, Signature, Verified};

pub fn render(
    log: &str,
    pubkeys: usize,
    latest: &Result<Vec<LatestCheckpoint>, String>,
    last: Option<&Verified>,
    just_now: bool,
) -> String {
    let mut out = format!(
        "<h1>Integrity of the audit log</h1><p>The log: {}. Each record's hash covers the one before it, \
so editing, deleting, inserting or reordering a record breaks the chain from there on; signed checkpoints \
pin the chain's head.</p>",
        esc(log)
    );
    out.push_str(
        "<form method=\"post\" action=\"/integrity/verify\"><button type=\"submit\" id=\"verify\">Verify now</button> \
<span class=\"muted\">reads the whole log: the same check as <code>popgate audit verify</code></span></form>",
    );
    out.push_str(&checkpoints(latest, pubkeys));
    let Some(v) = last else {
        out.push_str(
            "<p id=\"state\" data-state=\"unverified\">Not verified since the gateway started.</p>",
        );
        return out;
    };
    let _ = write!(
        out,
        "<h2>{} check</h2><p>Run at {} by {}.</p>",
        if just_now { "This" } else { "Last" },
        esc(&v.at),
        esc(&v.by)
    );
    match &v.result {
        Err(e) => {
            let _ = write!(
                out,
                "<p class=\"bad\" id=\"state\" data-state=\"failed\">The check could not run: {}</p>",
                esc(e)
            );
        }
        Ok(r) => {
            if r.intact {
                let _ = write!(
                    out,
                    "<p class=\"ok\" id=\"state\" data-state=\"intact\">Intact: {} record(s) checked.</p>",
                    count(r.records)
                );
            } else {
                let _ = write!(
                    out,
                    "<div class=\"bad\" id=\"state\" data-state=\"broken\"><p><strong>NOT INTACT.</strong> {} record(s) checked before the first problem.</p><ul id=\"problems\">",
                    count(r.records)
                );
                for p in &r.problems {
                    let _ = write!(out, "<li>{}</li>", esc(p));
                }
                out.push_str("</ul></div>");
            }
            out.push_str("<table id=\"heads\"><tr><th>chain</th><th>last verified seq</th><th>hash</th></tr>");
            for (node, seq, hash) in &r.heads {
                let _ = write!(
                    out,
                    "<tr><td>{}</td><td class=\"n\" data-head=\"{seq}\">{seq}</td><td><code>{}</code></td></tr>",
                    if node.is_empty() {
                        "this gateway".to_owned()
                    } else {
                        esc(&format!("node {node}"))
                    },
                    esc(hash)
                );
            }
            out.push_str("</table>");
            let sig = if r.signatures_checked {
                format!("verified with {pubkeys} key(s) from [console] pubkeys")
            } else {
                "not checked: list the audit public keys in [console] pubkeys".to_owned()
            };
            let _ = write!(
                out,
                "<p id=\"checkpoints\" data-checkpoints=\"{}\" data-signatures=\"{}\">{} checkpoint(s); signatures {}.</p>",
                r.checkpoints,
                if r.signatures_checked {
                    "verified"
                } else {
                    "unchecked"
                },
                count(r.checkpoints),
                esc(&sig)
            );
            for n in &r.notes {
                let _ = write!(out, "<p class=\"muted\">Note: {}</p>", esc(n));
            }
        }
    }
    out
}

/// The newest checkpoint of each chain and its signature, read on every visit (no scan).
fn checkpoints(latest: &Result<Vec<LatestCheckpoint>, String>, pubkeys: usize) -> String {
    let mut out = String::from("<h2>Latest checkpoints</h2>");
    let list = match latest {
        Err(e) => {
            let _ = write!(
                out,
                "<p class=\"bad\">The checkpoints cannot be read: {}</p>",
                esc(e)
            );
            return out;
        }
        Ok(l) if l.is_empty() => {
            out.push_str("<p id=\"latest\" data-latest=\"none\">No checkpoint yet.</p>");
            return out;
        }
        Ok(l) => l,
    };
    out.push_str(
        "<table id=\"latest\"><tr><th>chain</th><th>seq</th><th>time (UTC)</th><th>signature</th></tr>",
    );
    for cp in list {
        let said = match cp.signature {
            Signature::Valid => "valid".to_owned(),
            Signature::Invalid => format!(
                "<strong>does not verify</strong> with the {pubkeys} key(s) of [console] pubkeys"
            ),
            Signature::Unsigned => "none: [audit] signing_key is not set".to_owned(),
            Signature::Unchecked => {
                "not checked: list the audit public keys in [console] pubkeys".to_owned()
            }
        };
        let chain = if cp.chain.is_empty() {
            "this gateway".to_owned()
        } else {
            esc(&format!("node {}", cp.chain))
        };
        let _ = write!(
            out,
            "<tr data-checkpoint=\"{seq}\" data-signature=\"{}\"><td>{chain}</td><td class=\"n\">{seq}</td><td>{}</td><td>{said}</td></tr>",
            cp.signature.as_str(),
            esc(&cp.ts),
            seq = cp.seq,
        );
    }
    out.push_str("</table>");
    out
}
