//! The audit console (CONTRACT §7) in a real headless Chromium against the real gateway: the
//! browser presents an operator's certificate, fills in and submits the search form, pages
//! through the results, opens a citizen's report from a result's link, downloads its CSV
//! through its own TLS session, sees a client's charts drawn, and runs "Verify now"; an
//! inspector gets in too, an agency's certificate gets the 403 page and a browser without a
//! certificate no TLS session. Every test then checks the console's own audit records for the
//! pages the browser was shown.
//!
//! What is expected is computed from the audit log's files, never from the page, so a page
//! that shows the wrong rows, a wrong CSV or a chart that is not drawn fails.
//!
//! With `POPGATE_SCREENSHOTS=1` the tests also write the screenshots in `docs/console/`
//! (README there); without it they write nothing.

mod common;

use std::collections::BTreeMap;

use common::browser::Browser;
use common::{CLIENTS, Options, TestGateway, audit_records, citizen, lookup_req, put};
use popgate::pb;
use serde_json::{Value, json};

const A: &str = "001087000001";
const B: &str = "001087000002";
/// Loaded into the store behind the gateway (as the population is seeded), so that its
/// first lookup is not served from the reuse cache, which a PutCitizen fills.
const C: &str = "001087000003";
const MISSING: &str = "001087000009";

/// An agency with every kind of outcome in the log: its rate (one a second, a burst of seven,
/// on a clock that stands still) refuses what it calls after its first seven calls.
const EVN: &str = r#"
[[clients]]
id = "evn"
kind = "utility"
role = "agency"
read = ["full_name"]
verify = ["full_name"]
purposes = ["electricity-contract"]
rate_per_sec = 1
burst = 7
"#;

async fn gateway(opts: Options) -> TestGateway {
    TestGateway::start_with(Options {
        console: true,
        clients_toml: format!("{CLIENTS}{EVN}"),
        // Time stands still for the rates and the reuse cache, so what the log holds does
        // not depend on how fast the machine is.
        manual_clock: true,
        ..opts
    })
    .await
}

/// Calls that leave records of every kind, over several clients: the registry writes A and
/// B; the ministry looks A up twice (the second answer reused) and B once, and asks for a
/// citizen who does not exist; the telecom verifies A; evn gets ok (reused, and one not),
/// not_found, denied (a field it may not read), invalid (a malformed id), then is refused
/// for its rate.
async fn fill_log(gw: &TestGateway) {
    put(gw, citizen(A, "Nguyễn Văn An")).await;
    put(gw, citizen(B, "Trần Thị Bình")).await;
    gw.loader
        .load(&[common::stored(citizen(C, "Lê Văn Cường"), 1)])
        .expect("load C");
    let mut ministry = gw.agency("ministry").await;
    for _ in 0..2 {
        ministry
            .lookup(lookup_req(A, &["full_name"], "health-insurance"))
            .await
            .expect("lookup A");
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
        .verify(verify_req(A, "subscriber-verification"))
        .await
        .expect("verify");
    let mut evn = gw.agency("evn").await;
    for _ in 0..2 {
        evn.lookup(lookup_req(A, &["full_name"], "electricity-contract"))
            .await
            .expect("evn lookup");
    }
    evn.verify(verify_req(A, "electricity-contract"))
        .await
        .expect("evn verify");
    evn.lookup(lookup_req(C, &["full_name"], "electricity-contract"))
        .await
        .expect("evn lookup C");
    let e = evn
        .lookup(lookup_req(MISSING, &["full_name"], "electricity-contract"))
        .await
        .unwrap_err();
    assert_eq!(e.code(), tonic::Code::NotFound);
    let e = evn
        .lookup(lookup_req(A, &["date_of_birth"], "electricity-contract"))
        .await
        .unwrap_err();
    assert_eq!(e.code(), tonic::Code::PermissionDenied);
    let e = evn
        .lookup(lookup_req("12345", &["full_name"], "electricity-contract"))
        .await
        .unwrap_err();
    assert_eq!(e.code(), tonic::Code::InvalidArgument);
    for _ in 0..3 {
        let e = evn
            .lookup(lookup_req(A, &["full_name"], "electricity-contract"))
            .await
            .unwrap_err();
        assert_eq!(e.code(), tonic::Code::ResourceExhausted);
    }
    gw.gateway
        .flush_rate_limited()
        .await
        .expect("audit the refused calls");
}

fn verify_req(id: &str, purpose: &str) -> pb::VerifyRequest {
    pb::VerifyRequest {
        citizen_id: id.into(),
        claims: Some(pb::Claims {
            full_name: Some("Nguyễn Văn An".into()),
            ..Default::default()
        }),
        purpose: purpose.into(),
        request_id: format!("verify-{purpose}"),
        mode: pb::MatchMode::Exact as i32,
    }
}

/// A browser presenting client `id`'s certificate.
async fn browser_as(gw: &TestGateway, id: &str) -> Browser {
    Browser::start(gw.ca.cert_pem(), Some(&gw.cert(id))).await
}

async fn open(browser: &Browser, gw: &TestGateway, path: &str) {
    let url = format!("{}{path}", gw.console_url());
    browser
        .goto(&url)
        .await
        .unwrap_or_else(|e| panic!("{url}: {e}"));
}

/// The path and query of the browser's page.
async fn location(browser: &Browser) -> String {
    let url = browser.url().await;
    let rest = url.split_once("://").map_or(url.as_str(), |(_, r)| r);
    rest[rest.find('/').unwrap_or(rest.len())..].to_owned()
}

fn text(v: &Value) -> String {
    v.as_str().unwrap_or_default().to_owned()
}

/// A record as the console's table shows it, cell by cell: seq, time, client, method, the
/// citizen (search results only), fields, purpose, outcome, reused, request id.
fn cells(r: &Value, with_citizen: bool) -> Vec<String> {
    let mut row = vec![
        r["seq"].to_string(),
        text(&r["ts"]),
        text(&r["client"]),
        text(&r["method"]),
    ];
    if with_citizen {
        row.push(text(&r["citizen_id"]));
    }
    row.extend([
        fields(r),
        text(&r["purpose"]),
        text(&r["outcome"]),
        if r["reused"] == true { "yes" } else { "" }.to_owned(),
        text(&r["request_id"]),
    ]);
    row
}

fn fields(r: &Value) -> String {
    let names: Vec<&str> = r["fields"]
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    names.join(" ")
}

/// The log's records matching `pred`, newest first, as table rows.
fn newest_first(
    log: &[Value],
    with_citizen: bool,
    pred: impl Fn(&Value) -> bool,
) -> Vec<Vec<String>> {
    log.iter()
        .rev()
        .filter(|r| pred(r))
        .map(|r| cells(r, with_citizen))
        .collect()
}

/// The rows of the page's `#records` table as the browser renders them (each cell's text).
async fn rows(browser: &Browser) -> Vec<Vec<String>> {
    let script = "return [...document.querySelectorAll('#records tbody tr')]
        .map((tr) => [...tr.cells].map((td) => td.innerText));";
    serde_json::from_value(browser.execute(script, vec![]).await).expect("rows")
}

/// Each row's chain position (`tr[data-seq]`), in order.
async fn positions(browser: &Browser) -> Vec<String> {
    let script = "return [...document.querySelectorAll('#records tr[data-seq]')]
        .map((tr) => tr.dataset.seq);";
    serde_json::from_value(browser.execute(script, vec![]).await).expect("positions")
}

async fn summary_count(browser: &Browser) -> usize {
    browser
        .attribute("#summary", "data-count")
        .await
        .expect("#summary has data-count")
        .parse()
        .expect("a count")
}

/// Chooses `option` of the form's `select[name=name]`, by clicking it as a person would.
async fn choose(browser: &Browser, name: &str, option: &str) {
    let script = "const [name, option] = arguments;
        return [...document.querySelectorAll(`select[name=${name}] option`)]
            .findIndex((o) => o.text === option) + 1;";
    let nth = browser
        .execute(script, vec![json!(name), json!(option)])
        .await
        .as_u64()
        .expect("an index");
    assert!(nth > 0, "select {name} has no option {option}");
    browser
        .click(&format!("select[name={name}] option:nth-child({nth})"))
        .await;
}

/// The console's own records (method `Console`), in the order written.
fn console_records(gw: &TestGateway) -> Vec<Value> {
    audit_records(&gw.audit_dir())
        .into_iter()
        .filter(|r| r["method"] == "Console")
        .collect()
}

/// Checks that the console wrote exactly one record per page in `pages` (the path and
/// filter, and the citizen it was about), in order, each naming `who` and its certificate.
fn audited(gw: &TestGateway, who: &str, pages: &[(&str, Option<&str>)]) {
    let recs = console_records(gw);
    let got: Vec<(String, Option<String>)> = recs
        .iter()
        .map(|r| {
            (
                text(&r["purpose"]),
                r["citizen_id"].as_str().map(str::to_owned),
            )
        })
        .collect();
    let want: Vec<(String, Option<String>)> = pages
        .iter()
        .map(|(p, c)| (p.to_string(), c.map(str::to_owned)))
        .collect();
    assert_eq!(got, want, "the console's records: {recs:#?}");
    let fp = fingerprint(&gw.cert(who).cert_pem);
    for r in &recs {
        assert_eq!(r["client"], who, "{r}");
        assert_eq!(r["cert_sha256"], fp.as_str(), "{r}");
        assert_eq!(r["outcome"], "ok", "{r}");
        assert!(text(&r["peer"]).starts_with("127.0.0.1:"), "{r}");
    }
}

fn fingerprint(cert_pem: &str) -> String {
    let der = rustls_pemfile::certs(&mut cert_pem.as_bytes())
        .next()
        .expect("a certificate")
        .expect("PEM");
    let d = ring::digest::digest(&ring::digest::SHA256, der.as_ref());
    d.as_ref().iter().map(|b| format!("{b:02x}")).collect()
}

/// With `POPGATE_SCREENSHOTS=1`, writes the browser's page as `docs/console/NAME.png` (the
/// whole page when `whole`, else the window); otherwise nothing.
async fn screenshot(browser: &Browser, name: &str, whole: bool) {
    if std::env::var("POPGATE_SCREENSHOTS").as_deref() != Ok("1") {
        return;
    }
    let png = if whole {
        browser.screenshot_page().await
    } else {
        browser.screenshot().await
    };
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n", "{name}: not a PNG");
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("docs/console")
        .join(format!("{name}.png"));
    std::fs::write(&path, png).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
}

#[tokio::test]
async fn an_operator_fills_in_the_search_form_and_pages_through_the_results() {
    let gw = gateway(Options::default()).await;
    fill_log(&gw).await;
    // More of the ministry's lookups of A than a page holds.
    let mut ministry = gw.agency("ministry").await;
    for i in 0..60 {
        let mut r = lookup_req(A, &["full_name"], "health-insurance");
        r.request_id = format!("claim-{i}");
        ministry.lookup(r).await.expect("lookup");
    }
    let log = audit_records(&gw.audit_dir());
    let want = newest_first(&log, true, |r| {
        r["citizen_id"] == A && r["client"] == "ministry"
    });
    assert_eq!(want.len(), 62, "two pages: 50, then 12");

    let browser = browser_as(&gw, "operator").await;
    open(&browser, &gw, "/").await;
    assert_eq!(browser.count("form.search").await, 1);
    assert_eq!(
        browser.count("#records").await,
        0,
        "the bare form shows no records"
    );
    assert_eq!(browser.text("header .who").await, "operator (operator)");
    browser.fill("input[name=citizen]", A).await;
    browser.fill("input[name=client]", "ministry").await;
    browser.submit("form.search").await;
    // The form sends every field; the empty ones mean "any".
    assert_eq!(
        location(&browser).await,
        format!("/?citizen={A}&client=ministry&method=&outcome=&purpose=&since=&until=")
    );
    assert_eq!(rows(&browser).await, want[..50], "page 1: the 50 newest");
    let seqs: Vec<String> = want[..50].iter().map(|r| r[0].clone()).collect();
    assert_eq!(
        positions(&browser).await,
        seqs,
        "tr[data-seq] is the chain position"
    );
    assert_eq!(summary_count(&browser).await, 50);
    assert!(browser.text("#summary").await.contains("older ones follow"));
    // The form shows the filter it found these with.
    assert_eq!(
        browser
            .attribute("input[name=citizen]", "value")
            .await
            .as_deref(),
        Some(A)
    );
    assert_eq!(
        browser
            .attribute("input[name=client]", "value")
            .await
            .as_deref(),
        Some("ministry")
    );
    assert_eq!(browser.count("a[rel=prev]").await, 0, "the newest page");

    browser.click("a[rel=next]").await;
    assert_eq!(
        location(&browser).await,
        format!("/?citizen={A}&client=ministry&page=2")
    );
    assert_eq!(rows(&browser).await, want[50..], "page 2: the 12 oldest");
    assert_eq!(summary_count(&browser).await, 12);
    assert_eq!(browser.count("a[rel=next]").await, 0, "the last page");

    browser.click("a[rel=prev]").await;
    assert_eq!(
        location(&browser).await,
        format!("/?citizen={A}&client=ministry")
    );
    assert_eq!(rows(&browser).await, want[..50]);
    screenshot(&browser, "search", false).await;

    // A select: the outcome, for every client and citizen.
    browser.fill("input[name=citizen]", "").await;
    browser.fill("input[name=client]", "").await;
    choose(&browser, "outcome", "denied").await;
    browser.submit("form.search").await;
    let denied = newest_first(&log, true, |r| r["outcome"] == "denied");
    assert!(!denied.is_empty());
    assert_eq!(rows(&browser).await, denied);
    assert_eq!(
        browser
            .execute(
                "return document.querySelector('select[name=outcome]').value;",
                vec![]
            )
            .await,
        "denied"
    );

    browser.quit().await;
    let search = format!("/?citizen={A}&client=ministry");
    audited(
        &gw,
        "operator",
        &[
            (&search, Some(A)),
            (&format!("{search}&page=2"), Some(A)),
            (&search, Some(A)),
            ("/?outcome=denied", None),
        ],
    );
}

#[tokio::test]
async fn an_operator_opens_a_citizens_report_from_a_result_and_downloads_its_csv() {
    let gw = gateway(Options::default()).await;
    fill_log(&gw).await;
    let browser = browser_as(&gw, "operator").await;
    open(&browser, &gw, &format!("/?citizen={A}&method=Verify")).await;
    assert_eq!(rows(&browser).await.len(), 2, "the telecom's and evn's");
    browser
        .click(&format!("#records a[href=\"/citizens/{A}\"]"))
        .await;
    assert_eq!(location(&browser).await, format!("/citizens/{A}"));

    // Everything about A before this page, the search's own record included (a look at A is
    // an access to A's record).
    let log = audit_records(&gw.audit_dir());
    let want = newest_first(&log[..log.len() - 1], false, |r| r["citizen_id"] == A);
    let shown = rows(&browser).await;
    assert_eq!(shown, want, "who, when, which fields, why: newest first");
    assert_eq!(summary_count(&browser).await, want.len());
    // Spot checks of who, which fields and why, in the browser's own words.
    let row = |client: &str, method: &str| {
        shown
            .iter()
            .find(|r| r[2] == client && r[3] == method)
            .unwrap_or_else(|| panic!("no {client} {method} row in {shown:#?}"))
            .clone()
    };
    assert_eq!(
        row("operator", "Console")[5],
        format!("/?citizen={A}&method=Verify"),
        "the console's look at A is in A's report"
    );
    let verify = row("telecom", "Verify");
    assert_eq!(
        (&*verify[4], &*verify[5], &*verify[6]),
        ("full_name", "subscriber-verification", "ok")
    );
    let refused = row("evn", "Lookup");
    assert_eq!(
        (&*refused[4], &*refused[5], &*refused[6]),
        ("", "electricity-contract", "denied"),
        "the newest of evn's lookups of A asked for a field it may not read: nothing released"
    );
    assert!(row("registry", "PutCitizen")[4].contains("full_name"));
    assert!(
        !browser.source().await.contains(B),
        "nothing about another citizen"
    );
    screenshot(&browser, "citizen", true).await;

    // The page allows no script to connect (`default-src 'none'`): a script's fetch of the
    // CSV is refused by the browser itself.
    let href = browser.attribute("#csv", "href").await.expect("a CSV link");
    assert_eq!(href, format!("/citizens/{A}.csv"));
    let blocked = browser.fetch(&href).await;
    assert!(blocked.is_err(), "the CSP allowed a fetch: {blocked:?}");

    // The download: the link, clicked, through the browser's own TLS session and
    // certificate, saved under the name the answer gives it.
    browser.click("#csv").await;
    let csv =
        String::from_utf8(browser.downloaded(&format!("citizen-{A}.csv")).await).expect("UTF-8");
    let table: Vec<Vec<String>> = csv.split_terminator("\r\n").map(parse_csv_line).collect();
    assert_eq!(
        table[0].join(","),
        "seq,node,ts,client,method,fields,purpose,outcome,reused,request_id,cert_sha256"
    );
    // Newest first: the report page's own record, then exactly the rows the page showed.
    assert_eq!(table.len(), 1 + 1 + shown.len(), "{csv}");
    let own = &table[1];
    assert_eq!(
        (&*own[3], &*own[4], &*own[6]),
        ("operator", "Console", &*format!("/citizens/{A}"))
    );
    for (page_row, csv_row) in shown.iter().zip(&table[2..]) {
        // seq, node, ts, client, method, fields, purpose, outcome, reused, request_id
        let reused = if csv_row[8] == "true" { "yes" } else { "" };
        let as_shown = vec![
            csv_row[0].clone(),
            csv_row[2].clone(),
            csv_row[3].clone(),
            csv_row[4].clone(),
            csv_row[5].clone(),
            csv_row[6].clone(),
            csv_row[7].clone(),
            reused.to_owned(),
            csv_row[9].clone(),
        ];
        assert_eq!(&as_shown, page_row, "the CSV row of seq {}", page_row[0]);
        assert_eq!(csv_row[1], "", "a file log has no node");
    }
    let telecom = table
        .iter()
        .find(|r| r[3] == "telecom")
        .expect("the telecom's row");
    assert_eq!(telecom[10], fingerprint(&gw.cert("telecom").cert_pem));

    // The answer's status and type, read by the browser (its policy set aside for this):
    // the same CSV, with the second look at the report and the download before it.
    browser.bypass_csp().await;
    open(&browser, &gw, &format!("/citizens/{A}")).await;
    let fetched = browser.fetch(&href).await.expect("fetch the CSV");
    assert_eq!(fetched.status, 200, "{}", fetched.body);
    assert_eq!(fetched.content_type, "text/csv; charset=utf-8");
    let again: Vec<Vec<String>> = fetched
        .body
        .split_terminator("\r\n")
        .map(parse_csv_line)
        .collect();
    assert_eq!(again[0], table[0]);
    assert_eq!(again[3..], table[1..]);
    let newer: Vec<(&str, &str)> = again[1..3].iter().map(|r| (&*r[4], &*r[6])).collect();
    let (report, download) = (format!("/citizens/{A}"), format!("/citizens/{A}.csv"));
    assert_eq!(newer, [("Console", &*report), ("Console", &*download)]);

    browser.quit().await;
    audited(
        &gw,
        "operator",
        &[
            (&format!("/?citizen={A}&method=Verify"), Some(A)),
            (&report, Some(A)),
            (&download, Some(A)),
            (&report, Some(A)),
            (&download, Some(A)),
        ],
    );
}

/// One line of RFC 4180 CSV (quoted cells with doubled quotes).
fn parse_csv_line(line: &str) -> Vec<String> {
    let mut cells = vec![String::new()];
    let (mut quoted, mut chars) = (false, line.chars().peekable());
    while let Some(c) = chars.next() {
        match (c, quoted) {
            ('"', true) if chars.peek() == Some(&'"') => {
                chars.next();
                cells.last_mut().unwrap().push('"');
            }
            ('"', _) => quoted = !quoted,
            (',', false) => cells.push(String::new()),
            (c, _) => cells.last_mut().unwrap().push(c),
        }
    }
    cells
}

/// What the browser drew for each bar of a chart: its numbers, and its box on the screen.
#[derive(Debug, serde::Deserialize)]
struct Bar {
    day: String,
    series: String,
    value: String,
    /// `getBBox()`: the bar's geometry in the chart's own units.
    width: f64,
    height: f64,
    /// `getBoundingClientRect()`: what it takes on the screen.
    screen_width: f64,
    screen_height: f64,
}

async fn bars(browser: &Browser, chart: &str) -> Vec<Bar> {
    let script = "const [chart] = arguments;
        return [...document.querySelectorAll(`svg[data-chart=${chart}] rect[data-series]`)]
            .map((r) => { const b = r.getBBox(), s = r.getBoundingClientRect();
                return { day: r.dataset.day, series: r.dataset.series, value: r.dataset.value,
                    width: b.width, height: b.height,
                    screen_width: s.width, screen_height: s.height }; });";
    let value = browser.execute(script, vec![json!(chart)]).await;
    serde_json::from_value(value).expect("bars")
}

/// The text labels of a chart the browser laid out with a width (legend, scale, days).
async fn labels(browser: &Browser, chart: &str) -> Vec<String> {
    let script = "const [chart] = arguments;
        return [...document.querySelectorAll(`svg[data-chart=${chart}] text`)]
            .filter((t) => t.getComputedTextLength() > 0 && t.getBBox().width > 0)
            .map((t) => t.textContent);";
    serde_json::from_value(browser.execute(script, vec![json!(chart)]).await).expect("labels")
}

#[tokio::test]
async fn a_clients_page_draws_its_charts_in_the_browser() {
    let gw = gateway(Options::default()).await;
    fill_log(&gw).await;
    let recs: Vec<Value> = audit_records(&gw.audit_dir())
        .into_iter()
        .filter(|r| r["client"] == "evn")
        .collect();
    let day = text(&recs[0]["ts"])[..10].to_owned();
    let mut by: BTreeMap<String, u64> = BTreeMap::new();
    let (mut ok, mut reused) = (0u64, 0u64);
    for r in &recs {
        *by.entry(text(&r["outcome"])).or_default() += r["count"].as_u64().unwrap_or(1);
        if r["outcome"] == "ok" {
            ok += 1;
            reused += u64::from(r["reused"] == true);
        }
    }
    for outcome in ["ok", "denied", "invalid", "not_found", "rate_limited"] {
        assert!(by.contains_key(outcome), "evn has {outcome}: {by:?}");
    }
    assert!(0 < reused && reused < ok, "{recs:#?}");
    let rate = format!("{:.1}%", reused as f64 / ok as f64 * 100.0);

    let browser = browser_as(&gw, "operator").await;
    open(&browser, &gw, "/clients/evn").await;
    assert_eq!(browser.count("svg").await, 3, "three charts");
    let calls: u64 = by.values().sum();
    assert_eq!(
        browser.text("td[data-total=calls]").await,
        calls.to_string()
    );
    for (outcome, n) in &by {
        let total = format!("td[data-total={outcome}]");
        assert_eq!(browser.text(&total).await, n.to_string(), "{outcome}");
    }
    assert_eq!(browser.text("td[data-total=reuse_rate]").await, rate);

    let counted = |outcomes: &[&str]| -> Vec<(String, String, String)> {
        outcomes
            .iter()
            .filter_map(|o| {
                by.get(*o)
                    .map(|n| (day.clone(), o.to_string(), n.to_string()))
            })
            .collect()
    };
    let all = [
        "ok",
        "denied",
        "invalid",
        "not_found",
        "rate_limited",
        "error",
    ];
    let expected = [
        ("calls", counted(&all)),
        ("refused", counted(&["denied", "rate_limited"])),
        (
            "reuse",
            vec![(day.clone(), "reuse_rate".into(), rate.clone())],
        ),
    ];
    let legends: [(&str, &[&str]); 3] = [
        ("calls", &all),
        ("refused", &["denied", "rate_limited"]),
        ("reuse", &["reuse_rate"]),
    ];
    let viewport = browser
        .execute("return document.documentElement.clientWidth;", vec![])
        .await
        .as_f64()
        .expect("viewport width");
    for ((chart, want), (_, legend)) in expected.iter().zip(legends) {
        assert_eq!(browser.count(&format!("svg[data-chart={chart}]")).await, 1);
        let drawn = bars(&browser, chart).await;
        let mut got: Vec<(String, String, String)> = drawn
            .iter()
            .map(|b| (b.day.clone(), b.series.clone(), b.value.clone()))
            .collect();
        got.sort();
        let mut want = want.clone();
        want.sort();
        assert_eq!(got, want, "chart {chart}: one bar per nonzero count");
        for b in &drawn {
            assert!(
                b.width > 0.0 && b.height > 0.0 && b.screen_width > 0.0 && b.screen_height > 0.0,
                "chart {chart}: bar {b:?} is not drawn"
            );
        }
        // A bar's height is its number's share of the scale: the same height per unit for
        // every bar of a chart.
        let per_unit: Vec<f64> = drawn
            .iter()
            .map(|b| b.height / b.value.trim_end_matches('%').parse::<f64>().unwrap())
            .collect();
        for p in &per_unit {
            assert!(
                (p - per_unit[0]).abs() < 0.05 * per_unit[0],
                "chart {chart}: heights not proportional to the values: {drawn:?}"
            );
        }
        let shown = labels(&browser, chart).await;
        for name in legend.iter().copied().chain([&day[5..]]) {
            assert!(
                shown.iter().any(|l| l == name),
                "chart {chart}: label {name} not laid out: {shown:?}"
            );
        }
        let frame = browser
            .execute(
                "const s = document.querySelector(`svg[data-chart=${arguments[0]}]`)
                    .getBoundingClientRect();
                return [s.left, s.right, s.height];",
                vec![json!(chart)],
            )
            .await;
        let (left, right, height) = (
            frame[0].as_f64().unwrap(),
            frame[1].as_f64().unwrap(),
            frame[2].as_f64().unwrap(),
        );
        assert!(
            left >= 0.0 && right <= viewport && height > 0.0,
            "chart {chart} at {frame} does not fit the window's {viewport} px"
        );
    }
    // The table of the same numbers.
    assert_eq!(
        browser
            .count(&format!("#days tr[data-day=\"{day}\"]"))
            .await,
        1
    );
    screenshot(&browser, "client", true).await;

    browser.quit().await;
    audited(&gw, "operator", &[("/clients/evn", None)]);
}

/// A gateway whose checkpoints are signed, with the public key in `[console] pubkeys` (the
/// key files live as long as the returned directory).
async fn signing_gateway() -> (TestGateway, tempfile::TempDir) {
    let keys = tempfile::tempdir().unwrap();
    let (pem, pub_hex) = popgate::audit::checkpoint::generate_signing_key().unwrap();
    let key = keys.path().join("audit.key");
    std::fs::write(&key, pem).unwrap();
    let pubkey = keys.path().join("audit.pub");
    std::fs::write(&pubkey, format!("{pub_hex}\n")).unwrap();
    let gw = gateway(Options {
        audit_toml: format!(
            "durability = \"sync\"\ncheckpoint_every = 4\ncheckpoint_secs = 3600\nsigning_key = \"{}\"\n",
            key.display()
        ),
        console_toml: format!("pubkeys = [\"{}\"]\n", pubkey.display()),
        ..Default::default()
    })
    .await;
    (gw, keys)
}

/// Opens the integrity page from the navigation and checks what it shows before any check.
async fn integrity_before_a_check(browser: &Browser, gw: &TestGateway) {
    open(browser, gw, "/").await;
    browser.click("header nav a[href=\"/integrity\"]").await;
    assert_eq!(location(browser).await, "/integrity");
    assert_eq!(
        browser.attribute("#state", "data-state").await.as_deref(),
        Some("unverified")
    );
    assert_eq!(
        browser
            .attribute("#latest tr[data-signature]", "data-signature")
            .await
            .as_deref(),
        Some("valid"),
        "the newest checkpoint's signature, checked with [console] pubkeys"
    );
    assert_eq!(
        browser
            .text("form[action=\"/integrity/verify\"] #verify")
            .await,
        "Verify now"
    );
}

/// What the integrity page says after a check of an intact log whose last record, when the
/// check ran, was `last`.
async fn shows_intact(browser: &Browser, last: &str) {
    assert_eq!(
        browser.attribute("#state", "data-state").await.as_deref(),
        Some("intact"),
        "{}",
        browser.source().await
    );
    assert!(browser.text("#state").await.starts_with("Intact: "));
    assert_eq!(browser.count("#problems li").await, 0);
    assert_eq!(
        browser
            .attribute("td[data-head]", "data-head")
            .await
            .as_deref(),
        Some(last),
        "the last verified position"
    );
    assert_eq!(
        browser
            .attribute("#checkpoints", "data-signatures")
            .await
            .as_deref(),
        Some("verified")
    );
    let checkpoints: u64 = browser
        .attribute("#checkpoints", "data-checkpoints")
        .await
        .unwrap()
        .parse()
        .unwrap();
    let records: u64 = last.parse().unwrap();
    assert!(
        checkpoints >= records / 4,
        "one every 4 of {records} records: {checkpoints}"
    );
}

fn last_seq(gw: &TestGateway) -> String {
    audit_records(&gw.audit_dir()).last().expect("records")["seq"].to_string()
}

/// The integrity page in the browser, before a check and after one: the check itself is
/// run here through the console's HTTPS as a script would post the form (see the test
/// below for the browser's own "Verify now").
#[tokio::test]
async fn the_integrity_page_shows_the_checkpoints_and_the_last_check_in_the_browser() {
    let (gw, _keys) = signing_gateway().await;
    fill_log(&gw).await;
    let browser = browser_as(&gw, "operator").await;
    integrity_before_a_check(&browser, &gw).await;

    let last = last_seq(&gw);
    let checked = gw.console_post("inspector", "/integrity/verify").await;
    assert_eq!(checked.status, 200, "{}", checked.body);
    browser.click("header nav a[href=\"/integrity\"]").await;
    shows_intact(&browser, &last).await;
    assert!(
        browser.source().await.contains("by inspector"),
        "who ran it"
    );
    screenshot(&browser, "integrity", true).await;

    browser.quit().await;
    let recs = console_records(&gw);
    let pages: Vec<(String, String)> = recs
        .iter()
        .map(|r| (text(&r["client"]), text(&r["purpose"])))
        .collect();
    let page = |who: &str, path: &str| (who.to_owned(), path.to_owned());
    assert_eq!(
        pages,
        [
            page("operator", "/integrity"),
            page("inspector", "/integrity/verify"),
            page("operator", "/integrity"),
        ]
    );
}

/// "Verify now" clicked in the browser. Chromium posts the form with `Origin: null`, as the
/// Fetch standard has a browser do for a navigation's POST under the console's own
/// `Referrer-Policy: no-referrer`; its `Sec-Fetch-Site: same-origin` is what tells the
/// console's own page from another site's.
#[tokio::test]
async fn verify_now_clicked_in_the_browser_runs_the_check() {
    let (gw, _keys) = signing_gateway().await;
    fill_log(&gw).await;
    let browser = browser_as(&gw, "operator").await;
    integrity_before_a_check(&browser, &gw).await;

    // Everything up to the integrity page's own record is checked.
    let last = last_seq(&gw);
    browser.submit("form[action=\"/integrity/verify\"]").await;
    assert_eq!(location(&browser).await, "/integrity/verify");
    assert_eq!(
        browser.title().await,
        "Integrity · popgate audit console",
        "{}",
        browser.source().await
    );
    shows_intact(&browser, &last).await;

    // The page remembers the check, and who ran it.
    browser.click("header nav a[href=\"/integrity\"]").await;
    shows_intact(&browser, &last).await;
    assert!(browser.source().await.contains("by operator"));

    browser.quit().await;
    audited(
        &gw,
        "operator",
        &[
            ("/integrity", None),
            ("/integrity/verify", None),
            ("/integrity", None),
        ],
    );
}

#[tokio::test]
async fn an_inspector_gets_in_an_agency_gets_the_403_page_and_no_certificate_no_session() {
    let gw = gateway(Options::default()).await;
    fill_log(&gw).await;
    let log = audit_records(&gw.audit_dir());

    let inspector = browser_as(&gw, "inspector").await;
    open(&inspector, &gw, "/?client=ministry").await;
    assert_eq!(inspector.text("header .who").await, "inspector (inspector)");
    assert_eq!(
        rows(&inspector).await,
        newest_first(&log, true, |r| r["client"] == "ministry")
    );
    inspector.quit().await;

    let agency = browser_as(&gw, "ministry").await;
    open(&agency, &gw, "/?client=ministry").await;
    assert_eq!(
        agency.title().await,
        "403 Forbidden · popgate audit console"
    );
    assert!(
        agency.text("#error").await.contains("has role \"agency\""),
        "{}",
        agency.source().await
    );
    assert_eq!(agency.count("#records").await, 0, "no records");
    assert_eq!(agency.count("header nav").await, 0, "no navigation");
    screenshot(&agency, "forbidden", false).await;
    agency.quit().await;

    let nobody = Browser::start(gw.ca.cert_pem(), None).await;
    let url = format!("{}/?client=ministry", gw.console_url());
    let refused = nobody.goto(&url).await.expect_err("no TLS session");
    assert!(
        [
            "net::ERR_BAD_SSL_CLIENT_AUTH_CERT",
            "net::ERR_SOCKET_NOT_CONNECTED"
        ]
        .contains(&refused.message.as_str()),
        "{refused}"
    );
    nobody.quit().await;

    // The inspector's look and the agency's refusal are on the record (a browser may also
    // have asked for its icon); the browser without a certificate never got to ask.
    let recs = console_records(&gw);
    let look: Vec<&Value> = recs
        .iter()
        .filter(|r| r["purpose"] == "/?client=ministry")
        .collect();
    assert_eq!(look.len(), 2, "{recs:#?}");
    assert_eq!(
        (&look[0]["client"], &look[0]["outcome"]),
        (&json!("inspector"), &json!("ok"))
    );
    assert_eq!(
        (&look[1]["client"], &look[1]["outcome"]),
        (&json!("ministry"), &json!("denied"))
    );
    assert!(text(&look[1]["reason"]).contains("has role \"agency\""));
    assert_eq!(
        look[1]["cert_sha256"],
        fingerprint(&gw.cert("ministry").cert_pem).as_str()
    );
    for r in &recs {
        assert!(
            r["client"] == "ministry" || r["purpose"] == "/?client=ministry",
            "only the agency's other requests are refused records: {r}"
        );
    }
}
