//! The query engine on real logs: written by [`AuditLog`] where the clock may run as it likes,
//! and with the writer's own encoder where a test needs exact timestamps (equal ones across a
//! file boundary). Every selection is checked against a plain scan of all the lines.

use std::fs;
use std::path::Path;

use super::*;
use crate::audit::chain::{self, GENESIS};
use crate::audit::record::{self, AuditEvent, Outcome};
use crate::audit::scan;
use crate::audit::{AuditLog, AuditOptions};

const CLIENTS: [&str; 3] = ["viettel", "evn-hanoi", "mof"];

fn event(i: u64) -> AuditEvent {
    let outcome = match i % 10 {
        7 => Outcome::Denied,
        8 => Outcome::NotFound,
        9 => Outcome::RateLimited,
        _ => Outcome::Ok,
    };
    AuditEvent {
        client: CLIENTS[(i % 3) as usize].into(),
        // A client renewing its certificate: two fingerprints for one client id.
        cert_sha256: if i.is_multiple_of(6) { "ab" } else { "cd" }
            .repeat(32)
            .into(),
        peer: "10.0.0.1:5000".into(),
        method: if i.is_multiple_of(2) {
            "Lookup"
        } else {
            "Verify"
        },
        citizen_id: (!i.is_multiple_of(11)).then(|| format!("0792000000{:02}", i % 4)),
        fields: vec!["full_name"],
        purpose: format!("purpose-{}", i % 5),
        request_id: format!("req-{i}"),
        outcome,
        reused: outcome == Outcome::Ok && i.is_multiple_of(4),
        latency_us: i,
        count: (outcome == Outcome::RateLimited).then_some(i % 7),
        reason: None,
    }
}

/// A log of `n` records of [`event`] in files of about five records, as the gateway writes it.
fn write_log(dir: &Path, n: u64) {
    let mut o = AuditOptions::new(dir);
    o.roll_bytes = 2400;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let log = AuditLog::open(o).unwrap();
        for i in 1..=n {
            assert_eq!(log.append(event(i)).await.unwrap(), i);
        }
        log.shutdown().await.unwrap();
    });
}

/// A log whose record `i` (from 1) has `ts` = `ts_us[i - 1]`, `per_file` records to a file,
/// encoded and chained exactly as the writer does.
fn write_log_at(dir: &Path, ts_us: &[u64], per_file: usize) {
    fs::create_dir_all(dir).unwrap();
    let mut prev = GENESIS;
    for (f, chunk) in ts_us.chunks(per_file).enumerate() {
        let first = (f * per_file + 1) as u64;
        let mut out = Vec::new();
        for (j, ts) in chunk.iter().enumerate() {
            let seq = first + j as u64;
            prev = record::encode(&mut out, seq, *ts, &event(seq), &prev);
        }
        fs::write(dir.join(scan::file_name(first)), out).unwrap();
    }
}

/// Every record line of the log, in order, owned.
fn all(dir: &Path) -> Vec<(Record<'static>, Vec<u8>)> {
    let mut v = Vec::new();
    for f in scan::list_files(dir).unwrap() {
        for line in fs::read(&f.path).unwrap().split(|&b| b == b'\n') {
            if let Ok(r) = Record::parse(line) {
                v.push((owned(&r), line.to_vec()));
            }
        }
    }
    v
}

/// Which records a test expects a filter to select.
type Keep = Box<dyn Fn(&Record) -> bool>;

fn seqs_of(records: &[(Record<'static>, Vec<u8>)], keep: impl Fn(&Record) -> bool) -> Vec<u64> {
    records
        .iter()
        .filter(|(r, _)| keep(r))
        .map(|(r, _)| r.seq)
        .collect()
}

/// The seqs `query` streams, and how many it said it found.
fn query_seqs(log: &FileLog, filter: &Filter, limit: Option<u64>) -> Vec<u64> {
    let mut got = Vec::new();
    let n = log
        .query(
            filter,
            limit,
            |buf, r, _| buf.extend_from_slice(format!("{}\n", r.seq).as_bytes()),
            |part| {
                let text = std::str::from_utf8(part.value).unwrap();
                got.extend(text.lines().map(|l| l.parse::<u64>().unwrap()));
                Ok::<_, QueryError>(true)
            },
        )
        .unwrap();
    assert_eq!(n, got.len() as u64);
    got
}

fn bound(t: &str) -> Bound {
    Bound::parse(t).unwrap()
}

#[test]
fn bounds_are_canonical_and_checked() {
    assert_eq!(
        bound("2026-11-24T12:00:00+07:00").as_str(),
        "2026-11-24T05:00:00.000000Z"
    );
    assert_eq!(bound("2026-11-24").as_str(), "2026-11-24T00:00:00.000000Z");
    assert_eq!(
        "2026-11-24T05:12:33.5Z".parse::<Bound>().unwrap(),
        Bound::from_micros(1_795_497_153_500_000)
    );
    for bad in [
        "yesterday",
        "",
        "2026-13-01",
        "1969-12-31",
        "2026-11-24 05:00",
    ] {
        let e = Bound::parse(bad).unwrap_err();
        assert!(
            matches!(&e, QueryError::BadBound { text } if text == bad),
            "{bad:?}: {e:?}"
        );
        assert!(e.is_caller_error());
        assert!(e.to_string().contains("expected RFC 3339"), "{e}");
    }

    let (a, b) = (bound("2026-11-24"), bound("2026-11-25"));
    for (s, u) in [(&b, &a), (&a, &a)] {
        let e = TimeRange::new(Some(s.clone()), Some(u.clone())).unwrap_err();
        assert!(matches!(e, QueryError::EmptyRange { .. }) && e.is_caller_error());
    }
    let r = TimeRange::new(Some(a.clone()), Some(b.clone())).unwrap();
    assert!(!r.is_all() && TimeRange::ALL.is_all());
    assert!(r.contains(a.as_str()) && !r.contains(b.as_str()));
    assert!(r.contains("2026-11-24T23:59:59.999999Z"));
    assert!(!r.contains("2026-11-23T23:59:59.999999Z"));
    assert!(r.is_past_end(b.as_str()) && !r.is_past_end(a.as_str()));
    let open = TimeRange::new(Some(a), None).unwrap();
    assert!(open.contains("9999-12-31T23:59:59.999999Z") && !open.is_past_end("9999"));
}

#[test]
fn filters_select_what_a_plain_scan_selects() {
    let dir = tempfile::tempdir().unwrap();
    write_log(dir.path(), 70);
    assert!(scan::list_files(dir.path()).unwrap().len() > 5);
    let log = FileLog::open(dir.path()).unwrap();
    let records = all(dir.path());
    assert_eq!(records.len(), 70);
    // Bounds at records' own times; what is in range is decided by `ts`, not by seq, since
    // two records may share a microsecond.
    let ts = |seq: usize| records[seq - 1].0.ts.to_string();
    let (t5, t17, t31, t43) = (ts(5), ts(17), ts(31), ts(43));
    let cases: Vec<(Filter, Keep)> = vec![
        (Filter::default(), Box::new(|_| true)),
        (
            Filter {
                client: Some("mof".into()),
                ..Filter::default()
            },
            Box::new(|r| &*r.client == "mof"),
        ),
        (
            Filter {
                citizen: Some("079200000003".into()),
                ..Filter::default()
            },
            Box::new(|r| r.citizen_id.as_deref() == Some("079200000003")),
        ),
        (
            Filter {
                method: Some("Verify".into()),
                purpose: Some("purpose-2".into()),
                ..Filter::default()
            },
            Box::new(|r| &*r.method == "Verify" && &*r.purpose == "purpose-2"),
        ),
        (
            Filter {
                outcome: Some(Outcome::Denied),
                client: Some("viettel".into()),
                ..Filter::default()
            },
            Box::new(|r| r.outcome == Outcome::Denied && &*r.client == "viettel"),
        ),
        (
            Filter {
                client: Some("viettel".into()),
                cert_sha256: Some("ab".repeat(32)),
                ..Filter::default()
            },
            Box::new(|r| &*r.client == "viettel" && *r.cert_sha256 == *"ab".repeat(32)),
        ),
        (
            Filter {
                cert_sha256: Some("cd".repeat(32)),
                ..Filter::default()
            },
            Box::new(|r| *r.cert_sha256 == *"cd".repeat(32)),
        ),
        (
            Filter {
                client: Some("nobody".into()),
                ..Filter::default()
            },
            Box::new(|_| false),
        ),
        (
            Filter::range(TimeRange::new(Some(bound(&t17)), Some(bound(&t43))).unwrap()),
            Box::new(move |r| *r.ts >= *t17 && *r.ts < *t43),
        ),
        (
            Filter {
                range: TimeRange::new(Some(bound(&t5)), None).unwrap(),
                client: Some("evn-hanoi".into()),
                ..Filter::default()
            },
            Box::new(move |r| *r.ts >= *t5 && &*r.client == "evn-hanoi"),
        ),
        (
            Filter::range(TimeRange::new(None, Some(bound(&t31))).unwrap()),
            Box::new(move |r| *r.ts < *t31),
        ),
    ];
    for (i, (filter, keep)) in cases.iter().enumerate() {
        let want = seqs_of(&records, keep);
        assert_eq!(query_seqs(&log, filter, None), want, "case {i}");
        let cut: Vec<u64> = want.iter().copied().take(4).collect();
        assert_eq!(query_seqs(&log, filter, Some(4)), cut, "case {i}, limit 4");
        // `matches` agrees on its own, record by record.
        for (r, _) in &records {
            assert_eq!(filter.matches(r), keep(r), "case {i}, seq {}", r.seq);
        }
    }
    assert!(query_seqs(&log, &Filter::default(), Some(0)).is_empty());
    let far = Filter::range(TimeRange::new(Some(bound("2999-01-01")), None).unwrap());
    assert!(query_seqs(&log, &far, None).is_empty());
}

#[test]
fn needles_are_spelled_as_the_writer_spells_values() {
    let dir = tempfile::tempdir().unwrap();
    let mut out = Vec::new();
    let mut prev = GENESIS;
    let odd = "a\"b\\c\u{1}ễ";
    for (seq, client) in [(1, "plain"), (2, odd), (3, "plain")] {
        let mut ev = event(seq);
        ev.client = client.into();
        prev = record::encode(&mut out, seq, seq, &ev, &prev);
    }
    fs::write(dir.path().join(scan::file_name(1)), &out).unwrap();
    let log = FileLog::open(dir.path()).unwrap();
    let f = Filter {
        client: Some(odd.into()),
        ..Filter::default()
    };
    assert_eq!(query_seqs(&log, &f, None), vec![2]);

    let lines: Vec<&[u8]> = out.split(|&b| b == b'\n').take(3).collect();
    let m = Matcher::new(&f);
    assert_eq!(
        lines.iter().map(|l| m.may_match(l)).collect::<Vec<_>>(),
        vec![false, true, false]
    );
    // Every needle must be there.
    let mut both = Filter {
        client: Some("plain".into()),
        citizen: Some("079200000003".into()),
        ..Filter::default()
    };
    assert_eq!(both.needles().len(), 2);
    assert_eq!(query_seqs(&log, &both, None), vec![3]);
    both.citizen = Some("079200000002".into());
    assert!(query_seqs(&log, &both, None).is_empty());
    let cert = Filter {
        cert_sha256: Some("ab".repeat(32)),
        ..Filter::default()
    };
    assert_eq!(
        cert.needles(),
        vec![format!("\"cert_sha256\":\"{}\"", "ab".repeat(32))]
    );
    assert_eq!(query_seqs(&log, &cert, None), Vec::<u64>::new());
    // Without string filters, every line is parsed.
    assert!(Filter::default().needles().is_empty());
    assert!(Matcher::new(&Filter::default()).may_match(b"anything"));
}

#[test]
fn time_ranges_are_exact_at_file_boundaries() {
    let dir = tempfile::tempdir().unwrap();
    // Four records to a file; the same `ts` runs across the boundaries after seq 4 and 8,
    // and one file holds a single instant.
    let ts: Vec<u64> = [10, 20, 30, 40, 40, 40, 40, 40, 40, 50, 60, 70, 80, 90]
        .iter()
        .map(|s| 1_795_000_000_000_000 + s * 1_000_000)
        .collect();
    write_log_at(dir.path(), &ts, 4);
    let log = FileLog::open(dir.path()).unwrap();
    let at = |s: u64| Some(Bound::from_micros(1_795_000_000_000_000 + s * 1_000_000));
    for (since, until, want) in [
        (at(40), None, (4..=14).collect::<Vec<u64>>()),
        (at(41), None, (10..=14).collect()),
        (None, at(40), (1..=3).collect()),
        (None, at(41), (1..=9).collect()),
        (at(40), at(50), (4..=9).collect()),
        (at(35), at(45), (4..=9).collect()),
        (at(0), at(11), vec![1]),
        (at(90), None, vec![14]),
        (at(91), None, vec![]),
        (None, at(10), vec![]),
    ] {
        let range = TimeRange::new(since.clone(), until.clone()).unwrap();
        let f = Filter::range(range.clone());
        assert_eq!(query_seqs(&log, &f, None), want, "{since:?}..{until:?}");
        let st = log.stats(&f).unwrap();
        assert_eq!(st.records, want.len() as u64, "{since:?}..{until:?}");
        let page = log.page(&f, 0, 100, |r, _| r.seq).unwrap();
        let mut newest_first = want.clone();
        newest_first.reverse();
        assert_eq!(page.records, newest_first, "{since:?}..{until:?}");
    }
}

#[test]
fn the_report_lists_a_citizens_accesses_newest_first() {
    let dir = tempfile::tempdir().unwrap();
    write_log(dir.path(), 60);
    let log = FileLog::open(dir.path()).unwrap();
    let records = all(dir.path());
    let who = "079200000001";

    let rep = log.report(who, &TimeRange::ALL, |r, _| owned(r)).unwrap();
    let mut want = seqs_of(&records, |r| r.citizen_id.as_deref() == Some(who));
    want.reverse();
    assert!(want.len() > 10);
    assert_eq!(rep.accesses.iter().map(|r| r.seq).collect::<Vec<_>>(), want);
    assert!(
        rep.accesses
            .iter()
            .all(|r| r.citizen_id.as_deref() == Some(who))
    );
    let clients: Vec<&str> = rep.clients.iter().map(String::as_str).collect();
    assert_eq!(clients, vec!["evn-hanoi", "mof", "viettel"]);
    assert_eq!(rep.skipped, Skipped::default());

    // The lines themselves, and a range.
    let (from, to) = (&records[20].0.ts, &records[40].0.ts);
    let range = TimeRange::new(Some(bound(from)), Some(bound(to))).unwrap();
    let rep = log.report(who, &range, |_, line| line.to_vec()).unwrap();
    let want: Vec<Vec<u8>> = records
        .iter()
        .rev()
        .filter(|(r, _)| r.citizen_id.as_deref() == Some(who) && *r.ts >= **from && *r.ts < **to)
        .map(|(_, l)| l.clone())
        .collect();
    assert!(!want.is_empty());
    assert_eq!(rep.accesses, want);

    let none = log.report("nobody", &TimeRange::ALL, |r, _| r.seq).unwrap();
    assert!(none.accesses.is_empty() && none.clients.is_empty());
}

#[test]
fn stats_count_calls_by_client_and_outcome() {
    let dir = tempfile::tempdir().unwrap();
    write_log(dir.path(), 60);
    let log = FileLog::open(dir.path()).unwrap();
    let records = all(dir.path());

    let mut want = Stats::default();
    for (r, _) in &records {
        let c = want.clients.entry(r.client.to_string()).or_default();
        for c in [c, &mut want.total] {
            let n = r.count.unwrap_or(1).max(1);
            c.calls += n;
            match r.outcome {
                Outcome::Ok => c.ok += n,
                Outcome::Denied => c.denied += n,
                Outcome::NotFound => c.not_found += n,
                Outcome::RateLimited => c.rate_limited += n,
                o => panic!("{o}"),
            }
            c.reused += u64::from(r.reused);
        }
    }
    want.records = 60;
    want.first_ts = Some(records[0].0.ts.to_string());
    want.last_ts = Some(records[59].0.ts.to_string());
    let got = log.stats(&Filter::default()).unwrap();
    assert_eq!(got, want);
    // Aggregated rate-limited records count as the calls they stand for (at least one).
    assert_eq!(
        got.total.rate_limited,
        [9u64, 19, 29, 39, 49, 59]
            .map(|i| (i % 7).max(1))
            .iter()
            .sum::<u64>()
    );
    assert_eq!(got.total.calls, 54 + got.total.rate_limited);
    assert_eq!(got.total.outcome(Outcome::Denied), 6);
    let rate = got.total.reused as f64 / got.total.ok as f64;
    assert!(rate > 0.0 && got.total.reuse_rate() == rate);
    assert_eq!(Counts::default().reuse_rate(), 0.0);
    let c = &got.total;
    assert_eq!(
        serde_json::to_string(c).unwrap(),
        format!(
            "{{\"calls\":{},\"ok\":{},\"denied\":{},\"invalid\":0,\"not_found\":{},\
             \"rate_limited\":{},\"error\":0,\"reused\":{},\"reuse_rate\":{}}}",
            c.calls, c.ok, c.denied, c.not_found, c.rate_limited, c.reused, rate
        )
    );

    // One client, and a range that holds nothing.
    let mof = log
        .stats(&Filter {
            client: Some("mof".into()),
            ..Filter::default()
        })
        .unwrap();
    assert_eq!(mof.records, 20);
    assert_eq!(mof.clients.keys().collect::<Vec<_>>(), ["mof"]);
    assert_eq!(mof.total, want.clients["mof"]);
    let later = Filter::range(TimeRange::new(Some(bound("2999-01-01")), None).unwrap());
    let empty = log.stats(&later).unwrap();
    assert_eq!(
        (empty.records, empty.first_ts, empty.last_ts),
        (0, None, None)
    );
}

#[test]
fn pages_run_newest_first_and_cover_every_match_once() {
    let dir = tempfile::tempdir().unwrap();
    write_log(dir.path(), 53);
    let log = FileLog::open(dir.path()).unwrap();
    let records = all(dir.path());
    for (filter, keep) in [
        (Filter::default(), Box::new(|_: &Record| true) as Keep),
        (
            Filter {
                client: Some("viettel".into()),
                outcome: Some(Outcome::Ok),
                ..Filter::default()
            },
            Box::new(|r: &Record| &*r.client == "viettel" && r.outcome == Outcome::Ok),
        ),
    ] {
        let mut want = seqs_of(&records, keep);
        want.reverse();
        let mut got = Vec::new();
        let mut offset = 0;
        loop {
            let p = log.page(&filter, offset, 7, |r, _| r.seq).unwrap();
            assert!(p.records.len() <= 7);
            offset += p.records.len() as u64;
            got.extend(p.records);
            if !p.more {
                break;
            }
        }
        assert_eq!(got, want);
        let past = log
            .page(&filter, want.len() as u64, 7, |r, _| r.seq)
            .unwrap();
        assert!(past.records.is_empty() && !past.more);
    }
    // `map` sees the line too; a page of nothing still says whether records exist.
    let p = log
        .page(&Filter::default(), 0, 1, |_, l| l.to_vec())
        .unwrap();
    assert_eq!(p.records, vec![records[52].1.clone()]);
    let p = log.page(&Filter::default(), 0, 0, |r, _| r.seq).unwrap();
    assert!(p.records.is_empty() && p.more);
}

#[test]
fn lines_that_are_not_records_are_skipped_and_counted() {
    let dir = tempfile::tempdir().unwrap();
    write_log(dir.path(), 30);
    let files = scan::list_files(dir.path()).unwrap();
    let second = &files[1];
    let mut text = fs::read(&second.path).unwrap();
    let garbage: Vec<u8> = (1..=12)
        .flat_map(|i| format!("junk {i}\n").into_bytes())
        .collect();
    text.splice(0..0, garbage);
    fs::write(&second.path, text).unwrap();
    // A torn last line is a record being written, not garbage.
    let last = files.last().unwrap();
    let mut f = fs::OpenOptions::new()
        .append(true)
        .open(&last.path)
        .unwrap();
    std::io::Write::write_all(&mut f, b"{\"seq\":31,\"ts\"").unwrap();

    let log = FileLog::open(dir.path()).unwrap();
    let st = log.stats(&Filter::default()).unwrap();
    assert_eq!(st.records, 30);
    assert_eq!(st.skipped.count, 12);
    assert_eq!(st.skipped.first.len(), Skipped::KEPT);
    assert_eq!(st.skipped.first[0].at, format!("{} line 1", second.name()));
    assert!(
        st.skipped.first[9]
            .to_string()
            .starts_with(&format!("{} line 10: not a record (", second.name())),
        "{}",
        st.skipped.first[9]
    );
    // The query hands each part's skipped lines to its sink.
    let mut per_part = Vec::new();
    log.query(
        &Filter::default(),
        None,
        |_, _, _| {},
        |part| {
            per_part.push(part.skipped.count);
            Ok::<_, QueryError>(true)
        },
    )
    .unwrap();
    assert_eq!(per_part.len(), files.len());
    assert_eq!(per_part[1], 12);
    assert_eq!(per_part.iter().sum::<u64>(), 12);
    // A needle that rules the junk out spares parsing it, so nothing is reported.
    let mof = log
        .stats(&Filter {
            client: Some("mof".into()),
            ..Filter::default()
        })
        .unwrap();
    assert_eq!((mof.records, mof.skipped.count), (10, 0));
    // A page, read backwards from the newest end, skips the same lines and the torn one.
    let p = log.page(&Filter::default(), 0, 100, |r, _| r.seq).unwrap();
    assert_eq!(p.records, (1..=30).rev().collect::<Vec<u64>>());
    assert_eq!(p.skipped.count, 12);
    assert!(
        p.skipped.first[0]
            .at
            .starts_with(&format!("{} byte ", second.name())),
        "{}",
        p.skipped.first[0]
    );
}

#[test]
fn a_sink_can_stop_the_scan() {
    let dir = tempfile::tempdir().unwrap();
    write_log(dir.path(), 40);
    let log = FileLog::open(dir.path()).unwrap();
    let mut parts = 0;
    let n = log
        .query(
            &Filter::default(),
            None,
            |buf, _, line| buf.extend_from_slice(line),
            |_| {
                parts += 1;
                Ok::<_, QueryError>(parts < 2)
            },
        )
        .unwrap();
    assert_eq!(parts, 2);
    let two_files: u64 = scan::list_files(dir.path()).unwrap()[..2]
        .iter()
        .map(|f| {
            fs::read(&f.path)
                .unwrap()
                .iter()
                .filter(|&&b| b == b'\n')
                .count() as u64
        })
        .sum();
    assert_eq!(n, two_files);
    // The sink's own error comes back as it was.
    #[derive(Debug, PartialEq)]
    enum SinkError {
        Query,
        Full,
    }
    impl From<QueryError> for SinkError {
        fn from(_: QueryError) -> SinkError {
            SinkError::Query
        }
    }
    let e = log
        .query(
            &Filter::default(),
            None,
            |_, _, _| {},
            |_| Err(SinkError::Full),
        )
        .unwrap_err();
    assert_eq!(e, SinkError::Full);
}

#[test]
fn errors_say_whose_fault() {
    let root = tempfile::tempdir().unwrap();
    let missing = root.path().join("nope");
    let e = FileLog::open(&missing).unwrap_err();
    assert!(matches!(&e, QueryError::NoLog { dir } if *dir == missing));
    assert!(e.is_caller_error());
    let file = root.path().join("a-file");
    fs::write(&file, "").unwrap();
    assert!(matches!(
        FileLog::open(&file),
        Err(QueryError::NoLog { .. })
    ));

    // An empty directory is an empty log.
    let log = FileLog::open(root.path()).unwrap();
    assert_eq!(log.stats(&Filter::default()).unwrap(), Stats::default());

    // A log file that cannot be read: the machine's fault, naming the file.
    let bad = root.path().join(scan::file_name(1));
    fs::create_dir(&bad).unwrap();
    let e = log.stats(&Filter::default()).unwrap_err();
    assert!(
        matches!(&e, QueryError::Read { path, .. } if *path == bad),
        "{e:?}"
    );
    assert!(!e.is_caller_error());
    assert!(e.to_string().starts_with("reading "), "{e}");
    assert!(std::error::Error::source(&e).is_some());
}

#[test]
fn an_owned_record_equals_the_view_it_came_from() {
    let mut out = Vec::new();
    let mut ev = event(7);
    ev.request_id = "with \"escapes\"".into();
    ev.reason = Some("field not allowed".into());
    let h = record::encode(&mut out, 7, 5, &ev, &GENESIS);
    let r = Record::parse(&out).unwrap();
    let o = owned(&r);
    assert_eq!(o, r);
    assert_eq!(&*o.hash, chain::to_hex(&h));
}

/// A console serves pages from async tasks on several threads.
#[test]
fn the_types_cross_threads() {
    fn send_sync<T: Send + Sync>() {}
    send_sync::<FileLog>();
    send_sync::<Filter>();
    send_sync::<QueryError>();
    send_sync::<Stats>();
}
