//! A synthetic audit log of any size, for timing readers of the log (the console's search, the
//! `audit` commands) on a log as big as a year of a national service makes: records as the
//! gateway writes them (§4 of the contract, with a valid hash chain, so `audit verify` passes
//! and a gateway opened on it carries the chain on), spread evenly over `days` ending now.
//!
//! Written straight to the files (or the `audit_log` table) rather than through the gateway's
//! writer: the writer stamps records with the time they are written, and 10 million records
//! written in a minute would all fall in one day.

use std::io::{BufWriter, Write};
use std::path::Path;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::Context;
use popgate::audit::chain::GENESIS;
use popgate::audit::record::{encode, encode_for};
use popgate::audit::{AuditEvent, Outcome};

/// What to write.
#[derive(Debug, Clone)]
pub struct LogSpec {
    pub records: u64,
    /// The records' `ts` run evenly over this many days, the last one now.
    pub days: u64,
    /// Citizens are drawn from indexes 0..citizens of population `seed`.
    pub citizens: u64,
    pub seed: u64,
}

/// The agencies of the synthetic log: a few callers make most calls, as in life.
pub const CLIENTS: [&str; 8] = [
    "evn",
    "viettel",
    "mobifone",
    "ministry-health",
    "tax",
    "vnpost",
    "hanoi",
    "bank-a",
];

/// Record `i` (0-based) of the synthetic log: deterministic, so two runs write the same log.
pub fn event(spec: &LogSpec, i: u64) -> AuditEvent {
    let h = mix(spec.seed ^ i.wrapping_mul(0x9e37_79b9_7f4a_7c15));
    // Zipf-ish by hand: half the calls from the first client, a quarter from the next, …
    let client = CLIENTS[(h.trailing_ones() as usize).min(CLIENTS.len() - 1)];
    let (method, fields): (&'static str, Vec<&'static str>) = match h >> 8 & 0xff {
        0..=179 => ("Lookup", vec!["full_name", "date_of_birth"]),
        180..=239 => ("Verify", vec!["full_name", "date_of_birth"]),
        240..=247 => ("PutCitizen", vec!["permanent_address"]),
        248..=253 => ("Follow", vec![]),
        _ => ("GetStats", vec![]),
    };
    let outcome = match h >> 16 & 0xff {
        0..=229 => Outcome::Ok,
        230..=237 => Outcome::NotFound,
        238..=245 => Outcome::Denied,
        246..=251 => Outcome::RateLimited,
        252..=254 => Outcome::Invalid,
        _ => Outcome::Error,
    };
    let about_citizen = method != "GetStats" && outcome != Outcome::RateLimited;
    let index = (h >> 24) % spec.citizens.max(1);
    AuditEvent {
        client: Arc::from(client),
        cert_sha256: Arc::from(format!("{:064x}", mix(client.len() as u64)).as_str()),
        peer: Arc::from("10.0.0.7:51234"),
        method,
        citizen_id: about_citizen
            .then(|| popgate::synth::citizen_id_at(spec.seed, index).to_string()),
        fields: if outcome == Outcome::Ok {
            fields
        } else {
            Vec::new()
        },
        purpose: "service-contract".into(),
        request_id: String::new(),
        outcome,
        reused: outcome == Outcome::Ok && h & 1 == 0,
        latency_us: 300 + (h >> 40) % 3000,
        count: (outcome == Outcome::RateLimited).then_some(1 + (h >> 50) % 40),
        reason: (outcome == Outcome::Denied).then(|| "purpose not allowed".into()),
    }
}

/// The `ts` of record `i`, in µs since the epoch: even steps over `days`, ending now.
pub fn ts_us(spec: &LogSpec, now_us: u64, i: u64) -> u64 {
    let span = spec.days.max(1) * 86_400_000_000;
    let start = now_us.saturating_sub(span);
    start + (span as u128 * i as u128 / spec.records.max(1) as u128) as u64
}

fn now_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_micros() as u64)
        .unwrap_or(0)
}

/// splitmix64: cheap, well mixed.
fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// Writes the log into `dir` (which must hold no log yet) as the file backend does: files of
/// at most `roll_bytes`, named by their first seq. Returns the bytes written.
pub fn write_files(spec: &LogSpec, dir: &Path, roll_bytes: u64) -> anyhow::Result<u64> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    if popgate::audit::scan::list_files(dir)
        .map(|f| !f.is_empty())
        .unwrap_or(false)
    {
        anyhow::bail!("{} already holds an audit log", dir.display());
    }
    let now = now_us();
    let mut prev = GENESIS;
    let mut line = Vec::with_capacity(1024);
    let mut file: Option<(BufWriter<std::fs::File>, u64)> = None;
    let mut total = 0;
    for i in 0..spec.records {
        let seq = i + 1;
        line.clear();
        prev = encode(&mut line, seq, ts_us(spec, now, i), &event(spec, i), &prev);
        if file
            .as_ref()
            .is_none_or(|(_, size)| size + line.len() as u64 > roll_bytes)
        {
            if let Some((mut f, _)) = file.take() {
                f.flush()?;
            }
            let path = dir.join(popgate::audit::scan::file_name(seq));
            let f = std::fs::File::create(&path)
                .with_context(|| format!("creating {}", path.display()))?;
            file = Some((BufWriter::with_capacity(1 << 20, f), 0));
        }
        if let Some((f, size)) = file.as_mut() {
            f.write_all(&line)?;
            *size += line.len() as u64;
        }
        total += line.len() as u64;
    }
    if let Some((mut f, _)) = file {
        f.flush()?;
        f.get_ref().sync_all()?;
    }
    Ok(total)
}

/// Writes the log into the `audit_log` table of the database at `url` (migrated if needed) as
/// node `node`'s chain, in batches of 10,000 rows. Returns the bytes of the records and
/// whether they were written: a chain of `node` already as long (an earlier run's, with the
/// records its gateway added) is kept.
pub async fn write_db(spec: &LogSpec, url: &str, node: &str) -> anyhow::Result<(u64, bool)> {
    let db = popgate::pg::db::DbUrl::parse(url)
        .and_then(|u| u.connector("popgate-bench"))
        .map_err(anyhow::Error::msg)?;
    let mut conn = db.connect().await?;
    popgate::pg::schema::migrate(&mut conn.client).await?;
    let client = conn.client;
    let row = client
        .query_one(
            "SELECT count(*), coalesce(sum(length(record)), 0)::bigint FROM audit_log WHERE node = $1",
            &[&node],
        )
        .await
        .context("counting audit records")?;
    let (held, bytes): (i64, i64) = (row.get(0), row.get(1));
    if held as u64 >= spec.records {
        return Ok((bytes as u64, false));
    }
    if held > 0 {
        anyhow::bail!(
            "the database holds {held} audit records of {node}, fewer than the {} asked for: give an empty database",
            spec.records
        );
    }
    let now = now_us();
    let mut prev = GENESIS;
    let mut total = 0;
    let mut line = Vec::with_capacity(1024);
    let mut i = 0;
    while i < spec.records {
        let n = (spec.records - i).min(10_000);
        let (mut seqs, mut lines, mut tss, mut citizens) =
            (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for j in i..i + n {
            let ev = event(spec, j);
            let ts = ts_us(spec, now, j);
            line.clear();
            prev = encode_for(&mut line, Some(node), j + 1, ts, &ev, &prev);
            line.pop(); // the newline: the table holds the line without it
            total += line.len() as u64;
            seqs.push((j + 1) as i64);
            lines.push(String::from_utf8(line.clone()).context("a record that is not UTF-8")?);
            tss.push(popgate::audit::record::format_ts(ts));
            citizens.push(ev.citizen_id);
        }
        client
            .execute(
                "INSERT INTO audit_log (node, seq, record, ts, citizen_id)
                 SELECT $1, s, r, t::timestamptz, c
                 FROM unnest($2::bigint[], $3::text[], $4::text[], $5::text[]) AS u(s, r, t, c)",
                &[&node, &seqs, &lines, &tss, &citizens],
            )
            .await
            .context("inserting audit records")?;
        i += n;
    }
    Ok((total, true))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_written_log_verifies_and_spans_the_days_asked_for() {
        let dir = tempfile::tempdir().unwrap();
        let spec = LogSpec {
            records: 5_000,
            days: 30,
            citizens: 1000,
            seed: 7,
        };
        write_files(&spec, dir.path(), 256 * 1024).unwrap();
        let files = popgate::audit::scan::list_files(dir.path()).unwrap();
        assert!(files.len() > 1, "rolled into several files");
        let report = popgate::audit::verify::verify(&popgate::audit::verify::VerifyOptions {
            dir: dir.path().to_path_buf(),
            witness: None,
            pubkeys: Vec::new(),
            archived: false,
        })
        .unwrap();
        assert!(report.intact(), "{report:?}");
        let now = now_us();
        assert!(ts_us(&spec, now, 0) <= now - 29 * 86_400_000_000);
        assert!(write_files(&spec, dir.path(), 256 * 1024).is_err());
    }
}
