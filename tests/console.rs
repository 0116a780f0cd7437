//! The audit console (CONTRACT §7) through real HTTPS against the real gateway: who gets a
//! page (operator, inspector) and who does not (an agency: 403; no certificate: no TLS
//! session), search with filters and paging, a citizen's report and its CSV, a client's
//! charts with the counts the log holds, the integrity check (intact, then broken by an
//! edited line), bad parameters (400 naming the parameter), the security headers, and the
//! console's own audit records — over the file log, and over a cluster's database.

mod common;

use std::collections::BTreeMap;

use common::{CLIENTS, Options, TestGateway, audit_records, citizen, lookup_req, put};
use popgate::pb;
use serde_json::Value;

const A: &str = "001087000001";
const B: &str = "001087000002";
const MISSING: &str = "001087000009";

/// A client whose rate is one call a second: its second call at once is refused for rate.
const SLOW: &str = r#"
[[clients]]
id = "slow"
kind = "utility"
role = "agency"
read = ["full_name"]
purposes = ["electricity-contract"]
rate_per_sec = 1
burst = 1
"#;

async fn console_gateway() -> TestGateway {
    TestGateway::start_with(Options {
        console: true,
        clients_toml: format!("{CLIENTS}{SLOW}"),
        ..Default::default()
    })
    .await
}

/// Calls that leave records of every kind: PutCitizen ×2, ministry Lookups (the second of A
/// reused), a telecom Verify, a utility Lookup of a field it may not read (denied), a Lookup
/// of a citizen who does not exist (not_found), a tax-registration Lookup of B, and the slow
/// client's burst (one answered, the rest refused for rate, audited in aggregate).
async fn calls(gw: &TestGateway) {
    put(gw, citizen(A, "Nguyễn Văn An")).await;
    put(gw, citizen(B, "Trần Thị Bình")).await;
    let mut ministry = gw.agency("ministry").await;
    for _ in 0..2 {
        ministry
            .lookup(lookup_req(A, &["full_name"], "health-insurance"))
            .await
            .expect("lookup");
    }
    ministry
        .lookup(lookup_req(B, &["full_name", "sex"], "tax-registration"))
        .await
        .expect("lookup B");
    let missing = ministry
        .lookup(lookup_req(MISSING, &["full_name"], "health-insurance"))
        .await
        .unwrap_err();
    assert_eq!(missing.code(), tonic::Code::NotFound);
    gw.agency("telecom")
        .await
        .verify(pb::VerifyRequest {
            citizen_id: A.into(),
            claims: Some(pb::Claims {
                full_name: Some("Nguyễn Văn An".into()),
                ..Default::default()
            }),
            purpose: "subscriber-verification".into(),
            request_id: "tx-1".into(),
            mode: pb::MatchMode::Exact as i32,
        })
        .await
        .expect("verify");
    let denied = gw
        .agency("utility")
        .await
        .lookup(lookup_req(A, &["date_of_birth"], "electricity-contract"))
        .await
        .unwrap_err();
    assert_eq!(denied.code(), tonic::Code::PermissionDenied);
    let mut slow = gw.agency("slow").await;
    for _ in 0..4 {
        let _ = slow
            .lookup(lookup_req(A, &["full_name"], "electricity-contract"))
            .await;
    }
    gw.gateway
        .flush_rate_limited()
        .await
        .expect("audit the refused calls");
}

/// The positions of the rows of a page's record table, in order.
fn seqs(body: &str) -> Vec<u64> {
    body.split("<tr data-seq=\"")
        .skip(1)
        .map(|s| s.split('"').next().unwrap().parse().expect("a seq"))
        .collect()
}

/// The number a page puts in `data-count` of its summary.
fn summary_count(body: &str) -> usize {
    body.split("id=\"summary\" data-count=\"")
        .nth(1)
        .and_then(|s| s.split('"').next())
        .expect("a summary")
        .parse()
        .unwrap()
}

fn console_records(gw: &TestGateway) -> Vec<Value> {
    audit_records(&gw.audit_dir())
        .into_iter()
        .filter(|r| r["method"] == "Console")
        .collect()
}

fn fingerprint(cert_pem: &str) -> String {
    let der = rustls_pemfile::certs(&mut cert_pem.as_bytes())
        .next()
        .unwrap()
        .unwrap();
    let d = ring::digest::digest(&ring::digest::SHA256, der.as_ref());
    d.as_ref().iter().map(|b| format!("{b:02x}")).collect()
}

#[tokio::test]
async fn operators_and_inspectors_get_in_agencies_get_403_and_no_certificate_no_session() {
    let gw = console_gateway().await;
    for who in ["operator", "inspector"] {
        let p = gw.console_get(who, "/").await;
        assert_eq!(p.status, 200, "{who}: {}", p.body);
        assert!(p.body.contains("<form class=\"search\""), "{who}");
        assert!(
            p.body.contains(&format!("{who} ({who})")),
            "the viewer is named"
        );
    }
    for who in ["telecom", "ministry", "registry", "stranger"] {
        let p = gw.console_get(who, "/?client=ministry").await;
        assert_eq!(p.status, 403, "{who}: {}", p.body);
        assert!(!p.body.contains("<table"), "{who} sees no records");
    }
    let p = gw.console_get("telecom", "/").await;
    assert!(p.body.contains("has role &quot;agency&quot;"), "{}", p.body);
    let refused = gw
        .console_request(None, "GET", "/?client=ministry", &[])
        .await;
    assert!(refused.is_err(), "no certificate, no page: {refused:?}");
    // A revoked inspector is refused from the next connection (the console reloads with the
    // gateway: same CRL).
    gw.revoke(&["inspector"]).expect("reload");
    match gw.console_request(Some("inspector"), "GET", "/", &[]).await {
        Ok(p) => assert_eq!(p.status, 403, "{}", p.body),
        Err(_refused_at_handshake) => {}
    }
    // Each refusal is audited as denied, with the reason; the bare form shows nothing from the
    // log and is not audited.
    let recs = console_records(&gw);
    assert!(recs.iter().all(|r| r["outcome"] == "denied"), "{recs:?}");
    let by = |who: &str| recs.iter().filter(|r| r["client"] == who).count();
    assert_eq!(
        (
            by("telecom"),
            by("ministry"),
            by("registry"),
            by("stranger")
        ),
        (2, 1, 1, 1),
        "{recs:?}"
    );
    let r = recs.iter().find(|r| r["client"] == "registry").unwrap();
    assert_eq!(r["purpose"], "/?client=ministry");
    assert!(
        r["reason"]
            .as_str()
            .unwrap()
            .contains("has role \"registry\""),
        "{r}"
    );
    assert_eq!(
        r["cert_sha256"],
        fingerprint(&gw.cert("registry").cert_pem).as_str()
    );
}

#[tokio::test]
async fn an_inspector_has_no_grpc_method() {
    let gw = console_gateway().await;
    put(&gw, citizen(A, "Nguyễn Văn An")).await;
    let ch = gw.channel("inspector").await;
    let mut agency = pb::identity_gateway_client::IdentityGatewayClient::new(ch.clone());
    let e = agency
        .lookup(lookup_req(A, &["full_name"], "health-insurance"))
        .await
        .unwrap_err();
    assert_eq!(e.code(), tonic::Code::PermissionDenied, "{e:?}");
    let e = agency
        .verify(pb::VerifyRequest {
            citizen_id: A.into(),
            claims: Some(pb::Claims {
                full_name: Some("x".into()),
                ..Default::default()
            }),
            purpose: "p".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), tonic::Code::PermissionDenied, "{e:?}");
    let e = agency
        .follow(pb::FollowRequest {
            citizen_ids: vec![A.into()],
            purpose: "p".into(),
            request_id: String::new(),
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), tonic::Code::PermissionDenied, "{e:?}");
    let watch = agency
        .watch_changes(pb::WatchChangesRequest {
            purpose: "p".into(),
            ..Default::default()
        })
        .await;
    match watch {
        Err(e) => assert_eq!(e.code(), tonic::Code::PermissionDenied, "{e:?}"),
        Ok(mut s) => {
            let e = s.get_mut().message().await.unwrap_err();
            assert_eq!(e.code(), tonic::Code::PermissionDenied, "{e:?}");
        }
    }
    let e = pb::registry_admin_client::RegistryAdminClient::new(ch.clone())
        .put_citizen(pb::PutCitizenRequest {
            citizen: Some(citizen(B, "Trần Thị Bình")),
            expected_version: 0,
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), tonic::Code::PermissionDenied, "{e:?}");
    let e = pb::operator_client::OperatorClient::new(ch)
        .get_stats(pb::GetStatsRequest {})
        .await
        .unwrap_err();
    assert_eq!(e.code(), tonic::Code::PermissionDenied, "{e:?}");
}

#[tokio::test]
async fn search_filters_pages_newest_first_with_chain_positions() {
    let gw = console_gateway().await;
    calls(&gw).await;
    let log = audit_records(&gw.audit_dir());
    let expect = |pred: &dyn Fn(&Value) -> bool| -> Vec<u64> {
        let mut v: Vec<u64> = log
            .iter()
            .filter(|r| pred(r))
            .map(|r| r["seq"].as_u64().unwrap())
            .collect();
        v.reverse();
        v
    };
    let cases: Vec<(&str, Vec<u64>)> = vec![
        ("/?client=ministry", expect(&|r| r["client"] == "ministry")),
        ("/?outcome=denied", expect(&|r| r["outcome"] == "denied")),
        (
            "/?outcome=rate_limited&client=slow",
            expect(&|r| r["outcome"] == "rate_limited"),
        ),
        ("/?method=Verify", expect(&|r| r["method"] == "Verify")),
        (
            "/?purpose=tax-registration",
            expect(&|r| r["purpose"] == "tax-registration"),
        ),
        ("/?citizen=001087000002", expect(&|r| r["citizen_id"] == B)),
        (
            "/?client=ministry&method=Lookup&outcome=ok&citizen=001087000001",
            expect(&|r| {
                r["client"] == "ministry"
                    && r["method"] == "Lookup"
                    && r["citizen_id"] == A
                    && r["outcome"] == "ok"
            }),
        ),
        ("/?since=2999-01-01", vec![]),
        ("/?until=2000-01-01", vec![]),
        // An empty value is "any", as the form sends every field.
        (
            "/?citizen=&client=telecom&method=&outcome=&purpose=&since=2000-01-01&until=&page=",
            expect(&|r| r["client"] == "telecom"),
        ),
    ];
    for (path, want) in cases {
        assert!(!want.is_empty() || path.contains("2999") || path.contains("until=2000"));
        let p = gw.console_get("inspector", path).await;
        assert_eq!(p.status, 200, "{path}: {}", p.body);
        assert_eq!(seqs(&p.body), want, "{path}");
        assert_eq!(summary_count(&p.body), want.len(), "{path}");
    }
    // The second search about B finds the first: the console's look is itself on the record.
    let p = gw.console_get("operator", "/?citizen=001087000002").await;
    assert!(
        p.body.contains(">Console<") && p.body.contains("/?citizen=001087000002"),
        "{}",
        p.body
    );

    // Paging: 60 more lookups; 50 to a page, newest first, no overlap, no gap.
    let mut ministry = gw.agency("ministry").await;
    for i in 0..60 {
        let mut r = lookup_req(A, &["full_name"], "health-insurance");
        r.request_id = format!("page-{i}");
        ministry.lookup(r).await.expect("lookup");
    }
    let want = expect(&|_| false); // placeholder to keep the closure's type simple
    assert!(want.is_empty());
    let all: Vec<u64> = {
        let mut v: Vec<u64> = audit_records(&gw.audit_dir())
            .iter()
            .filter(|r| r["client"] == "ministry" && r["method"] == "Lookup")
            .map(|r| r["seq"].as_u64().unwrap())
            .collect();
        v.reverse();
        v
    };
    assert_eq!(all.len(), 64);
    let p1 = gw
        .console_get("inspector", "/?client=ministry&method=Lookup")
        .await;
    assert_eq!(seqs(&p1.body), all[..50]);
    assert!(
        p1.body
            .contains("href=\"/?client=ministry&amp;method=Lookup&amp;page=2\""),
        "a link to the older page: {}",
        p1.body
    );
    let p2 = gw
        .console_get("inspector", "/?client=ministry&method=Lookup&page=2")
        .await;
    assert_eq!(seqs(&p2.body), all[50..]);
    assert!(!p2.body.contains("rel=\"next\""), "the last page");
    assert!(p2.body.contains("rel=\"prev\""));
    let p3 = gw
        .console_get("inspector", "/?client=ministry&method=Lookup&page=3")
        .await;
    assert!(seqs(&p3.body).is_empty());
}

#[tokio::test]
async fn a_citizens_report_lists_who_when_which_fields_and_why_and_its_csv_matches() {
    let gw = console_gateway().await;
    calls(&gw).await;
    let about_a: Vec<Value> = audit_records(&gw.audit_dir())
        .into_iter()
        .filter(|r| r["citizen_id"] == A)
        .collect();
    let p = gw.console_get("inspector", &format!("/citizens/{A}")).await;
    assert_eq!(p.status, 200, "{}", p.body);
    assert_eq!(summary_count(&p.body), about_a.len());
    let mut want: Vec<u64> = about_a.iter().map(|r| r["seq"].as_u64().unwrap()).collect();
    want.reverse();
    assert_eq!(seqs(&p.body), want, "newest first");
    for client in ["registry", "ministry", "telecom", "utility", "slow"] {
        assert!(p.body.contains(&format!(">{client}</a>")), "{client}");
    }
    assert!(p.body.contains("subscriber-verification"));
    assert!(p.body.contains("<td>full_name</td>"), "the fields released");
    assert!(p.body.contains(&format!("href=\"/citizens/{A}.csv\"")));
    assert!(!p.body.contains(B), "nothing about another citizen");

    let csv = gw
        .console_get("inspector", &format!("/citizens/{A}.csv"))
        .await;
    assert_eq!(csv.status, 200);
    assert_eq!(csv.header("content-type"), Some("text/csv; charset=utf-8"));
    assert_eq!(
        csv.header("content-disposition"),
        Some(format!("attachment; filename=\"citizen-{A}.csv\"").as_str())
    );
    let rows: Vec<&str> = csv.body.split("\r\n").filter(|l| !l.is_empty()).collect();
    assert_eq!(
        rows[0],
        "seq,node,ts,client,method,fields,purpose,outcome,reused,request_id,cert_sha256"
    );
    // The HTML report's own record is about A too, and newest.
    assert_eq!(rows.len(), 1 + about_a.len() + 1, "{}", csv.body);
    assert!(rows[1].contains(",inspector,Console,"), "{}", rows[1]);
    let verify = rows
        .iter()
        .find(|r| r.contains(",telecom,Verify,"))
        .expect("the Verify row");
    assert!(
        verify.contains(",full_name,subscriber-verification,ok,") && verify.contains(",tx-1,"),
        "{verify}"
    );
    let telecom_fp = fingerprint(&gw.cert("telecom").cert_pem);
    assert!(verify.ends_with(&telecom_fp), "{verify}");
    let put = rows.iter().find(|r| r.contains(",PutCitizen,")).unwrap();
    assert!(put.starts_with(&format!("{},", about_a[0]["seq"])), "{put}");

    // A period narrows it.
    let none = gw
        .console_get("inspector", &format!("/citizens/{A}?until=2000-01-01"))
        .await;
    assert_eq!(summary_count(&none.body), 0);
    let csv = gw
        .console_get("inspector", &format!("/citizens/{A}.csv?until=2000-01-01"))
        .await;
    assert_eq!(csv.body.split("\r\n").filter(|l| !l.is_empty()).count(), 1);
}

#[tokio::test]
async fn a_clients_page_draws_the_counts_of_the_log() {
    let gw = console_gateway().await;
    calls(&gw).await;
    for (client, expect_denied, expect_limited) in [
        ("ministry", false, false),
        ("utility", true, false),
        ("slow", false, true),
    ] {
        let recs: Vec<Value> = audit_records(&gw.audit_dir())
            .into_iter()
            .filter(|r| r["client"] == client)
            .collect();
        let day = recs[0]["ts"].as_str().unwrap()[..10].to_owned();
        let mut by: BTreeMap<&str, u64> = BTreeMap::new();
        let (mut ok, mut reused) = (0u64, 0u64);
        for r in &recs {
            let n = r["count"].as_u64().unwrap_or(1);
            *by.entry(r["outcome"].as_str().unwrap()).or_default() += n;
            if r["outcome"] == "ok" {
                ok += 1;
                reused += u64::from(r["reused"] == true);
            }
        }
        assert_eq!(by.contains_key("denied"), expect_denied, "{client}: {by:?}");
        assert_eq!(
            by.contains_key("rate_limited"),
            expect_limited,
            "{client}: {by:?}"
        );
        let p = gw
            .console_get("operator", &format!("/clients/{client}"))
            .await;
        assert_eq!(p.status, 200, "{}", p.body);
        for chart in ["calls", "refused", "reuse"] {
            assert!(
                p.body.contains(&format!(
                    "<svg xmlns=\"http://www.w3.org/2000/svg\" data-chart=\"{chart}\""
                )),
                "{client}: chart {chart}"
            );
        }
        let calls: u64 = by.values().sum();
        assert!(p.body.contains(&format!("data-total=\"calls\">{calls}<")));
        for (outcome, n) in &by {
            assert!(p.body.contains(&format!("data-total=\"{outcome}\">{n}<")));
        }
        let rate = if ok == 0 {
            0.0
        } else {
            reused as f64 / ok as f64 * 100.0
        };
        assert!(
            p.body
                .contains(&format!("data-total=\"reuse_rate\">{rate:.1}%<")),
            "{client}: reuse {rate:.1}%"
        );
        // Each chart draws exactly these bars (no bar for a zero).
        let want_calls: Vec<(String, String, String)> = by
            .iter()
            .map(|(o, n)| (day.clone(), o.to_string(), n.to_string()))
            .collect();
        assert_eq!(bars(&p.body, "calls"), sorted(want_calls), "{client}");
        let want_refused: Vec<(String, String, String)> = ["denied", "rate_limited"]
            .into_iter()
            .filter_map(|o| {
                by.get(o)
                    .map(|n| (day.clone(), o.to_string(), n.to_string()))
            })
            .collect();
        assert_eq!(bars(&p.body, "refused"), sorted(want_refused), "{client}");
        let want_reuse = if reused > 0 {
            vec![(day.clone(), "reuse_rate".to_owned(), format!("{rate:.1}%"))]
        } else {
            vec![]
        };
        assert_eq!(bars(&p.body, "reuse"), want_reuse, "{client}");
        if client == "ministry" {
            assert!(
                reused >= 1,
                "the second lookup of A was served from the cache"
            );
        }
        if client == "slow" {
            assert!(by["rate_limited"] >= 2, "{by:?}");
        }
    }
    let none = gw.console_get("operator", "/clients/nobody").await;
    assert_eq!(none.status, 200);
    assert_eq!(summary_count(&none.body), 0);
    assert!(!none.body.contains("<svg"));
}

/// The bars of chart `chart` on a page: (day, series, value), sorted.
fn bars(body: &str, chart: &str) -> Vec<(String, String, String)> {
    let svg = body
        .split(&format!("data-chart=\"{chart}\""))
        .nth(1)
        .and_then(|s| s.split("</svg>").next())
        .unwrap_or_else(|| panic!("no chart {chart}"));
    let attr = |s: &str, name: &str| {
        s.split(&format!("{name}=\""))
            .nth(1)
            .and_then(|v| v.split('"').next())
            .unwrap()
            .to_owned()
    };
    sorted(
        svg.split("<rect ")
            .skip(1)
            .filter(|r| r.contains("data-day="))
            .map(|r| {
                (
                    attr(r, "data-day"),
                    attr(r, "data-series"),
                    attr(r, "data-value"),
                )
            })
            .collect(),
    )
}

fn sorted(mut v: Vec<(String, String, String)>) -> Vec<(String, String, String)> {
    v.sort();
    v
}

/// Changes one byte of the first line holding `needle` in the audit files, in place (the
/// file keeps its length), and returns that line's seq.
fn tamper(dir: &std::path::Path, needle: &str) -> u64 {
    use std::io::{Seek, SeekFrom, Write};
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("audit-")
        })
        .collect();
    files.sort();
    for f in files {
        let text = std::fs::read_to_string(&f).unwrap();
        let mut offset = 0;
        for line in text.split_inclusive('\n') {
            if let Some(at) = line.find(needle) {
                let v: Value = serde_json::from_str(line).unwrap();
                let mut file = std::fs::OpenOptions::new().write(true).open(&f).unwrap();
                // The needle's last byte, changed.
                let pos = offset + at + needle.len() - 1;
                file.seek(SeekFrom::Start(pos as u64)).unwrap();
                file.write_all(b"X").unwrap();
                file.sync_all().unwrap();
                return v["seq"].as_u64().unwrap();
            }
            offset += line.len();
        }
    }
    panic!("no line holds {needle}");
}

#[tokio::test]
async fn verify_now_shows_an_intact_log_then_the_edited_record() {
    let keys = tempfile::tempdir().unwrap();
    let (pem, pub_hex) = popgate::audit::checkpoint::generate_signing_key().unwrap();
    let key = keys.path().join("audit.key");
    std::fs::write(&key, pem).unwrap();
    let pubkey = keys.path().join("audit.pub");
    std::fs::write(&pubkey, format!("{pub_hex}\n")).unwrap();
    let gw = TestGateway::start_with(Options {
        console: true,
        clients_toml: format!("{CLIENTS}{SLOW}"),
        audit_toml: format!(
            "durability = \"sync\"\ncheckpoint_every = 3\ncheckpoint_secs = 3600\nsigning_key = \"{}\"\n",
            key.display()
        ),
        console_toml: format!("pubkeys = [\"{}\"]\n", pubkey.display()),
        ..Default::default()
    })
    .await;
    calls(&gw).await;
    let p = gw.console_get("inspector", "/integrity").await;
    assert_eq!(p.status, 200, "{}", p.body);
    assert!(p.body.contains("data-state=\"unverified\""), "{}", p.body);
    // The newest checkpoint is shown on every visit, its signature checked with the key.
    assert!(p.body.contains("data-signature=\"valid\""), "{}", p.body);
    assert!(p.body.contains("action=\"/integrity/verify\""));

    let last = audit_records(&gw.audit_dir()).last().unwrap()["seq"]
        .as_u64()
        .unwrap();
    let p = gw.console_post("inspector", "/integrity/verify").await;
    assert_eq!(p.status, 200, "{}", p.body);
    assert!(p.body.contains("data-state=\"intact\""), "{}", p.body);
    // Everything up to the integrity page's own record.
    assert!(
        p.body.contains(&format!("data-head=\"{}\"", last)),
        "last verified position {last}: {}",
        p.body
    );
    assert!(
        p.body.contains("data-signatures=\"verified\""),
        "{}",
        p.body
    );
    let cps: u64 = p
        .body
        .split("data-checkpoints=\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert!(cps >= 3, "a checkpoint every 3 records: {cps}");
    // The page remembers the last check.
    let p = gw.console_get("operator", "/integrity").await;
    assert!(p.body.contains("data-state=\"intact\"") && p.body.contains("by inspector"));

    let seq = tamper(&gw.audit_dir(), "\"purpose\":\"tax-registration\"");
    let p = gw.console_post("operator", "/integrity/verify").await;
    assert_eq!(p.status, 200, "{}", p.body);
    assert!(p.body.contains("data-state=\"broken\""), "{}", p.body);
    assert!(
        p.body.contains(&format!("(seq {seq})")),
        "the edited record is named: seq {seq}: {}",
        p.body
    );
    assert!(
        p.body.contains(&format!("data-head=\"{}\"", seq - 1)),
        "{}",
        p.body
    );
}

#[tokio::test]
async fn bad_parameters_get_400_naming_them_and_every_answer_carries_the_security_headers() {
    let gw = console_gateway().await;
    calls(&gw).await;
    let before = console_records(&gw).len();
    let cases = [
        ("/?citizen=123", "citizen"),
        ("/?citizen=00108700000a", "citizen"),
        ("/?client=Bad%21", "client"),
        ("/?method=Steal", "method"),
        ("/?outcome=meh", "outcome"),
        ("/?since=yesterday", "since"),
        ("/?until=2026-02-30", "until"),
        ("/?since=2026-12-02&until=2026-12-01", "until"),
        ("/?page=0", "page"),
        ("/?page=abc", "page"),
        ("/?page=100000", "page"),
        ("/?purpose=%E0%80", "purpose"),
        ("/?client=a&client=b", "client"),
        ("/?bogus=1", "bogus"),
        ("/citizens/12x", "id"),
        ("/citizens/0010870000011.csv", "id"),
        ("/citizens/001087000001?since=soon", "since"),
        ("/citizens/001087000001?page=2", "page"),
        ("/clients/BAD!", "id"),
        ("/clients/ministry?until=never", "until"),
        ("/integrity?x=1", "x"),
    ];
    for (path, name) in cases {
        let p = gw.console_get("inspector", path).await;
        assert_eq!(p.status, 400, "{path}: {}", p.body);
        assert!(
            p.body.contains(&format!("parameter {name}: ")),
            "{path} names {name}: {}",
            p.body
        );
        assert!(!p.body.contains("panicked") && !p.body.contains("<table"));
    }
    assert_eq!(console_records(&gw).len(), before, "a 400 shows no records");

    for path in [
        "/nope",
        "/citizens/",
        "/citizens/a/b",
        "/clients/",
        "/integrity/",
        "/index.html",
    ] {
        let p = gw.console_get("inspector", path).await;
        assert_eq!(p.status, 404, "{path}: {}", p.body);
    }
    let p = gw
        .console_request(Some("inspector"), "POST", "/", &[])
        .await
        .unwrap();
    assert_eq!(p.status, 405);
    assert_eq!(p.header("allow"), Some("GET, HEAD"));
    let head = gw
        .console_request(Some("inspector"), "HEAD", "/?client=ministry", &[])
        .await
        .unwrap();
    assert_eq!((head.status, head.body.as_str()), (200, ""));
    let p = gw.console_get("inspector", "/integrity/verify").await;
    assert_eq!(p.status, 405);
    assert_eq!(p.header("allow"), Some("POST"));
    let p = gw
        .console_request(Some("inspector"), "DELETE", "/clients/ministry", &[])
        .await
        .unwrap();
    assert_eq!(p.status, 405);

    // Another site's form cannot make a viewer's browser run the check; the console's own
    // form can, though a browser posts it with `Origin: null` (Referrer-Policy no-referrer).
    for (headers, want) in [
        (&[("origin", "https://evil.example")][..], 403),
        (&[("sec-fetch-site", "cross-site")][..], 403),
        (&[("origin", "null")][..], 403),
        (
            &[("origin", "null"), ("sec-fetch-site", "cross-site")][..],
            403,
        ),
        (
            &[("origin", "null"), ("sec-fetch-site", "same-origin")][..],
            200,
        ),
    ] {
        let p = gw
            .console_request(Some("inspector"), "POST", "/integrity/verify", headers)
            .await
            .unwrap();
        assert_eq!(p.status, want, "{headers:?}: {}", p.body);
    }

    // Headers, on pages and on errors alike.
    for (who, path) in [
        ("inspector", "/"),
        ("inspector", "/?client=ministry"),
        ("inspector", "/citizens/001087000001"),
        ("inspector", "/citizens/001087000001.csv"),
        ("inspector", "/clients/ministry"),
        ("inspector", "/integrity"),
        ("inspector", "/?page=0"),
        ("inspector", "/nope"),
        ("telecom", "/"),
    ] {
        let p = gw.console_get(who, path).await;
        let csp = p.header("content-security-policy").unwrap_or_default();
        for part in [
            "default-src 'none'",
            "frame-ancestors 'none'",
            "form-action 'self'",
            "base-uri 'none'",
        ] {
            assert!(csp.contains(part), "{path}: {csp}");
        }
        assert!(!csp.contains("unsafe"), "{csp}");
        assert_eq!(p.header("x-frame-options"), Some("DENY"), "{path}");
        assert_eq!(p.header("x-content-type-options"), Some("nosniff"));
        assert_eq!(p.header("referrer-policy"), Some("no-referrer"));
        assert_eq!(p.header("cache-control"), Some("no-store"));
        if p.header("content-type") == Some("text/html; charset=utf-8") {
            // The one inline style sheet is the one the policy's hash allows; nothing else.
            let style = p
                .body
                .split("<style>")
                .nth(1)
                .and_then(|s| s.split("</style>").next())
                .expect("a style sheet");
            let hash = ring::digest::digest(&ring::digest::SHA256, style.as_bytes());
            assert!(
                csp.contains(&format!("style-src 'sha256-{}'", base64(hash.as_ref()))),
                "{csp}"
            );
            assert_eq!(p.body.matches("<style>").count(), 1);
            assert!(!p.body.contains("<script") && !p.body.contains(" style=\""));
        }
    }
}

fn base64(bytes: &[u8]) -> String {
    const A: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for c in bytes.chunks(3) {
        let n = (u32::from(c[0]) << 16)
            | (u32::from(*c.get(1).unwrap_or(&0)) << 8)
            | u32::from(*c.get(2).unwrap_or(&0));
        for i in 0..4 {
            out.push(if i <= c.len() {
                A[(n >> (18 - 6 * i) & 63) as usize] as char
            } else {
                '='
            });
        }
    }
    out
}

#[tokio::test]
async fn every_page_that_shows_the_log_writes_a_console_record_first() {
    let gw = console_gateway().await;
    calls(&gw).await;
    let fp = fingerprint(&gw.cert("inspector").cert_pem);
    let visits: [(&str, &str, Option<&str>); 6] = [
        ("GET", "/?client=ministry&outcome=ok&page=1", None),
        ("GET", "/citizens/001087000001", Some(A)),
        (
            "GET",
            "/citizens/001087000002.csv?since=2000-01-01",
            Some(B),
        ),
        ("GET", "/clients/ministry", None),
        ("GET", "/integrity", None),
        ("POST", "/integrity/verify", None),
    ];
    for (method, path, citizen) in visits {
        let before = console_records(&gw).len();
        let p = if method == "POST" {
            gw.console_post("inspector", path).await
        } else {
            gw.console_get("inspector", path).await
        };
        assert_eq!(p.status, 200, "{path}: {}", p.body);
        let recs = console_records(&gw);
        assert_eq!(recs.len(), before + 1, "{path} writes one record");
        let r = recs.last().unwrap();
        assert_eq!(r["client"], "inspector");
        assert_eq!(r["cert_sha256"], fp.as_str());
        assert_eq!(r["outcome"], "ok");
        assert!(r["peer"].as_str().unwrap().starts_with("127.0.0.1:"));
        // The filter used, canonical for a search (page 1 is the default, so not written).
        let want = match path {
            p if p.starts_with("/?") => "/?client=ministry&outcome=ok",
            p if p.ends_with("?since=2000-01-01") => {
                "/citizens/001087000002.csv?since=2000-01-01T00:00:00.000000Z"
            }
            p => p,
        };
        assert_eq!(r["purpose"], want, "{path}");
        assert_eq!(r["citizen_id"].as_str(), citizen, "{path}");
    }
    // No page without its record: with the audit log closed, the page is refused.
    gw.gateway.shutdown().await.expect("close the audit log");
    let p = gw.console_get("inspector", "/?client=ministry").await;
    assert_eq!(p.status, 500, "{}", p.body);
    assert!(!p.body.contains("<table"), "{}", p.body);
    assert!(p.body.contains("audit log cannot be written"));
}

/// The database backend: a node of a cluster whose audit log is in PostgreSQL serves the
/// same pages from the `audit_log` table, and "verify now" runs `audit verify --db`'s check.
#[tokio::test]
async fn the_console_reads_and_verifies_the_database_log_alike() {
    let c = common::TestCluster::start_with(1, 600, || Options {
        console: true,
        clients_toml: format!("{CLIENTS}{SLOW}"),
        audit_toml: "backend = \"postgres\"\ndurability = \"sync\"\ncheckpoint_every = 5\ncheckpoint_secs = 3600\n".into(),
        ..Default::default()
    })
    .await;
    let gw = &c.nodes[0];
    calls(gw).await;
    let ministry: u64 =
        c.pg.psql("SELECT count(*) FROM audit_log WHERE record LIKE '%\"client\":\"ministry\"%'")
            .parse()
            .unwrap();
    assert_eq!(ministry, 4);
    let p = gw.console_get("inspector", "/?client=ministry").await;
    assert_eq!(p.status, 200, "{}", p.body);
    assert_eq!(summary_count(&p.body), 4);
    assert!(
        p.body.contains("data-seq=\"gw-1:"),
        "positions name the node: {}",
        p.body
    );
    // Pages of the database log: 50 newest first, then the rest, each record once.
    let mut ministry_client = gw.agency("ministry").await;
    for _ in 0..55 {
        ministry_client
            .lookup(common::lookup_req(A, &["full_name"], "health-insurance"))
            .await
            .unwrap();
    }
    let seqs = |body: &str| -> Vec<u64> {
        body.split("data-seq=\"gw-1:")
            .skip(1)
            .filter_map(|s| s.split('"').next()?.parse().ok())
            .collect()
    };
    let first = seqs(&gw.console_get("inspector", "/?client=ministry").await.body);
    let second = seqs(
        &gw.console_get("inspector", "/?client=ministry&page=2")
            .await
            .body,
    );
    assert_eq!((first.len(), second.len()), (50, 9));
    let all: Vec<u64> = first.iter().chain(&second).copied().collect();
    assert!(all.windows(2).all(|w| w[0] > w[1]), "newest first: {all:?}");
    let p = gw.console_get("inspector", &format!("/citizens/{A}")).await;
    assert_eq!(p.status, 200);
    assert!(p.body.contains(">telecom</a>") && p.body.contains(">ministry</a>"));
    let p = gw.console_get("operator", "/clients/slow").await;
    assert!(
        p.body.contains("data-series=\"rate_limited\""),
        "{}",
        p.body
    );
    let p = gw.console_post("inspector", "/integrity/verify").await;
    assert!(p.body.contains("data-state=\"intact\""), "{}", p.body);
    assert!(p.body.contains("node gw-1"), "{}", p.body);
    assert!(
        p.body.contains("data-signature=\"unsigned\""),
        "no signing key, unsigned checkpoints: {}",
        p.body
    );

    // The console's own records are in the table, with the rest of the chain.
    let console: u64 =
        c.pg.psql("SELECT count(*) FROM audit_log WHERE record LIKE '%\"method\":\"Console\"%'")
            .parse()
            .unwrap();
    assert_eq!(
        console, 6,
        "three searches, a report, a client page, a check"
    );

    c.pg.psql(
        "UPDATE audit_log SET record = replace(record, '\"purpose\":\"tax-registration\"', '\"purpose\":\"tax-registratioX\"') \
         WHERE record LIKE '%tax-registration%'",
    );
    let p = gw.console_post("inspector", "/integrity/verify").await;
    assert!(p.body.contains("data-state=\"broken\""), "{}", p.body);
    assert!(p.body.contains("node gw-1 seq"), "{}", p.body);
}

/// `popgate serve --config` binds `[console] listen` itself: the console of the binary, with
/// the certificates of the configuration's `[tls]`.
#[tokio::test]
async fn popgate_serve_opens_the_console_its_configuration_names() {
    let certs = TestGateway::start().await;
    let dir = tempfile::tempdir().unwrap();
    for f in ["ca.pem", "server.pem", "server.key", "ca.crl"] {
        std::fs::copy(certs.path(f), dir.path().join(f)).unwrap();
    }
    let port = common::pg::free_port();
    let config = dir.path().join("popgate.toml");
    std::fs::write(
        &config,
        format!(
            "[server]\nlisten = \"127.0.0.1:0\"\n\n[tls]\ncert = \"server.pem\"\nkey = \"server.key\"\n\
client_ca = \"ca.pem\"\ncrl = \"ca.crl\"\n\n[store]\npath = \"data/population\"\n\n[audit]\n\
dir = \"data/audit\"\n\n[console]\nlisten = \"127.0.0.1:{port}\"\n{CLIENTS}{}",
            common::console::INSPECTOR
        ),
    )
    .unwrap();
    let (_serving, _addr) = common::spawn_serve(&config);
    let addr = format!("127.0.0.1:{port}").parse().unwrap();
    let ca = certs.ca.cert_pem();
    let p = common::console::request(
        ca,
        Some(&certs.cert("inspector")),
        addr,
        "GET",
        "/?method=Console",
        &[],
    )
    .await
    .expect("an answer");
    assert_eq!(p.status, 200, "{}", p.body);
    let recs = audit_records(&dir.path().join("data/audit"));
    let last = recs.last().expect("the console's record");
    assert_eq!(last["method"], "Console");
    assert_eq!(last["purpose"], "/?method=Console");
    let p = common::console::request(ca, Some(&certs.cert("telecom")), addr, "GET", "/", &[])
        .await
        .expect("an answer");
    assert_eq!(p.status, 403);
    assert!(
        common::console::request(ca, None, addr, "GET", "/", &[])
            .await
            .is_err()
    );
}

/// A viewer is held to its client's rate, as its gRPC calls would be: past it, 429 with
/// `Retry-After`, and nothing read or audited.
#[tokio::test]
async fn a_viewer_over_its_rate_gets_429() {
    let gw = TestGateway::start_with(Options {
        console: true,
        clients_toml: CLIENTS.replace(
            "id = \"operator\"\nkind = \"operator\"\nrole = \"operator\"\nrate_per_sec = 100000\nburst = 100000",
            "id = \"operator\"\nkind = \"operator\"\nrole = \"operator\"\nrate_per_sec = 1\nburst = 2",
        ),
        // Time stands still for the rate: however slow the machine, no capacity comes back.
        manual_clock: true,
        ..Default::default()
    })
    .await;
    for _ in 0..2 {
        assert_eq!(
            gw.console_get("operator", "/?client=ministry").await.status,
            200
        );
    }
    let p = gw.console_get("operator", "/?client=ministry").await;
    assert_eq!(p.status, 429, "{}", p.body);
    assert!(p.header("retry-after").is_some());
    assert_eq!(console_records(&gw).len(), 2);
    // Another viewer has a rate of its own.
    assert_eq!(
        gw.console_get("inspector", "/?client=ministry")
            .await
            .status,
        200
    );
}
