//! `popgate-bench --dev` end to end, small and fast: the JSON report has sane fields, and the
//! bulk scenario's deliberate mismatches really come back as mismatches.

use std::process::Command;

use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_popgate-bench");

/// Runs `popgate-bench ARGS…` and returns its `--json` report, failing with its stderr.
fn run_json(args: &[&str]) -> Value {
    let out = Command::new(BIN)
        .args(args)
        .output()
        .expect("run popgate-bench");
    assert!(
        out.status.success(),
        "popgate-bench {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&out.stdout)))
}

/// A short `--dev` run over a small store, with `extra` options.
fn bench(extra: &[&str]) -> Value {
    let mut args = vec![
        "--dev",
        "--citizens",
        "2000",
        "--duration",
        "1s",
        "--warmup",
        "0s",
        "--json",
    ];
    args.extend_from_slice(extra);
    run_json(&args)
}

fn phase<'a>(report: &'a Value, name: &str) -> &'a Value {
    report["phases"]
        .as_array()
        .expect("phases")
        .iter()
        .find(|p| p["name"] == name)
        .unwrap_or_else(|| panic!("no phase {name} in {report}"))
}

fn assert_sane(p: &Value) {
    assert!(p["requests"].as_u64().unwrap() > 0, "{p}");
    assert!(p["requests_per_sec"].as_f64().unwrap() > 0.0, "{p}");
    assert_eq!(p["errors"], serde_json::json!({}), "{p}");
    let l = &p["latency_us"];
    let (p50, p99, p999) = (
        l["p50"].as_u64().unwrap(),
        l["p99"].as_u64().unwrap(),
        l["p999"].as_u64().unwrap(),
    );
    assert!(p50 > 0 && p50 <= p99 && p99 <= p999, "{l}");
    let reuse = p["reuse_rate"].as_f64().unwrap();
    assert!((0.0..=1.0).contains(&reuse), "{p}");
    assert_eq!(p["wrong_answers"], 0, "{p}");
    // The process's CPU time: some per call, and never more cores than the machine has.
    let cpu = &p["cpu"];
    assert!(cpu["us_per_call"].as_f64().unwrap() > 0.0, "{p}");
    let busy = cpu["cores_busy"].as_f64().unwrap();
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get()) as f64;
    assert!(
        busy > 0.0 && busy <= cores * 1.05,
        "{busy} cores busy of {cores}: {p}"
    );
}

#[test]
fn a_small_dev_run_reports_requests_and_no_errors() {
    let report = bench(&[]);
    assert_eq!(report["scenario"], "single");
    assert_sane(phase(&report, "gateway"));
}

#[test]
fn bulk_mismatches_come_back_as_mismatches() {
    let report = bench(&["--bulk", "--connections", "2", "--concurrency", "32"]);
    let p = phase(&report, "gateway");
    assert_sane(p);
    let sent = p["mismatches_sent"].as_u64().unwrap();
    assert!(sent > 0, "{p}");
    assert_eq!(p["mismatches_detected"].as_u64().unwrap(), sent, "{p}");
}

#[test]
fn baseline_runs_three_sides_and_gives_both_ratios() {
    let report = bench(&["--baseline", "--connections", "2", "--concurrency", "8"]);
    assert_sane(phase(&report, "baseline"));
    assert_sane(phase(&report, "durable"));
    assert_sane(phase(&report, "gateway"));
    let cs = report["comparisons"].as_array().expect("comparisons");
    let pairs: Vec<(&str, &str)> = cs
        .iter()
        .map(|c| (c["of"].as_str().unwrap(), c["against"].as_str().unwrap()))
        .collect();
    assert_eq!(pairs, [("gateway", "durable"), ("gateway", "baseline")]);
    for c in cs {
        assert!(c["throughput_ratio"].as_f64().unwrap() > 0.0, "{c}");
        assert!(c["p99_ratio"].as_f64().unwrap() > 0.0, "{c}");
        assert!(c["server_audit_cpu_ratio"].as_f64().unwrap() > 0.0, "{c}");
    }
}

/// The durable baseline really writes and syncs a record before each answer: every answered
/// call's record is in its file, of the size it claims, and it synced; and that size is the
/// gateway's own, measured in the same run.
#[test]
fn the_durable_baseline_syncs_a_record_of_the_gateways_size_per_call() {
    let report = bench(&[
        "--baseline",
        "--interleave",
        "250ms",
        "--connections",
        "2",
        "--concurrency",
        "8",
    ]);
    let durable = phase(&report, "durable");
    let gateway = phase(&report, "gateway");
    let audit = &durable["audit"];
    let records = audit["records_per_sec"].as_f64().unwrap();
    let rate = durable["requests_per_sec"].as_f64().unwrap();
    assert!(
        records > 0.95 * rate && records < 1.05 * rate,
        "{records} records/s for {rate} calls/s: {audit}"
    );
    assert!(audit["syncs_per_sec"].as_f64().unwrap() > 0.0, "{audit}");
    // Bytes in its file over records counted: each record reached the file, whole.
    let size = popgate_bench::durable::RECORD_BYTES as f64;
    assert_eq!(audit["bytes_per_record"].as_f64().unwrap(), size, "{audit}");
    // Its CPU is counted as audit, as the gateway's writer's is.
    assert!(
        durable["cpu"]["by_thread"]["audit_us"].as_f64().unwrap() > 0.0,
        "{durable}"
    );
    let line = gateway["audit"]["bytes_per_record"].as_f64().unwrap();
    assert!(
        (size - line).abs() <= 0.2 * line,
        "the durable record is {size} bytes, the gateway's mean audit line {line}"
    );
}

/// Kills the served bench server if the test fails before stopping it.
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `--serve` runs one bench server for a load generator elsewhere: the command it prints loads
/// it as given, and SIGTERM stops it cleanly. `check` is given the load's report while the
/// server still runs (its stage folder goes when it stops).
fn serve_and_load(side: &str, dir: &std::path::Path, check: impl FnOnce(&Value)) {
    use std::io::{BufRead, BufReader};
    let child = Command::new(BIN)
        .args(["--dev", "--serve", side, "--citizens", "2000"])
        .args(["--listen", "127.0.0.1:0", "--dir"])
        .arg(dir)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("start popgate-bench --serve");
    let mut server = KillOnDrop(child);
    let mut lines = BufReader::new(server.0.stdout.take().unwrap()).lines();
    let serving = lines.next().expect("a first line").unwrap();
    assert!(serving.contains("serving on 127.0.0.1:"), "{serving}");
    let command = lines.next().expect("a second line").unwrap();
    let mut args: Vec<&str> = command
        .strip_prefix("load it with: popgate-bench ")
        .unwrap_or_else(|| panic!("not a command: {command}"))
        .split(' ')
        .collect();
    assert!(
        args.contains(&"--fixed-answers") == (side != "gateway"),
        "{command}"
    );
    args.extend_from_slice(&["--duration", "1s", "--warmup", "0s", "--json"]);
    let report = run_json(&args);
    assert_sane(phase(&report, "remote"));
    check(&report);

    let pid = server.0.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    let status = server.0.wait().unwrap();
    assert!(status.success(), "{status}");
}

/// The files named `name` under `dir`, at any depth.
fn files_named(dir: &std::path::Path, name: &str) -> Vec<std::path::PathBuf> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            found.extend(files_named(&path, name));
        } else if path.file_name().is_some_and(|n| n == name) {
            found.push(path);
        }
    }
    found
}

#[test]
fn a_served_baseline_is_loaded_by_the_command_it_prints() {
    let dir = tempfile::tempdir().unwrap();
    serve_and_load("baseline", dir.path(), |_| {
        assert!(files_named(dir.path(), "durable.log").is_empty());
    });
}

/// `--serve durable` is the durable baseline: every answered call left its fixed-size record
/// in the durable log before its answer.
#[test]
fn a_served_durable_baseline_writes_a_record_per_answer() {
    use popgate_bench::durable::RECORD_BYTES;
    let dir = tempfile::tempdir().unwrap();
    serve_and_load("durable", dir.path(), |report| {
        let answered = phase(report, "remote")["requests"].as_u64().unwrap();
        let logs = files_named(dir.path(), "durable.log");
        assert_eq!(logs.len(), 1, "{logs:?}");
        let bytes = std::fs::metadata(&logs[0]).unwrap().len();
        assert_eq!(bytes % RECORD_BYTES as u64, 0, "{bytes}");
        // The load's warm-up is 0 s, and no call is counted before its answer came.
        assert!(
            bytes / RECORD_BYTES as u64 >= answered,
            "{bytes} bytes for {answered} answers"
        );
    });
}

/// `--rounds` alternates the sides and judges the median round: every round's phases and
/// comparison are in the report, and the summary is one of them, with the spread.
#[test]
fn rounds_alternate_the_sides_and_judge_the_median_round() {
    let report = bench(&[
        "--baseline",
        "--rounds",
        "3",
        "--connections",
        "2",
        "--concurrency",
        "8",
    ]);
    let phases = report["phases"].as_array().expect("phases");
    let order: Vec<(String, u64)> = phases
        .iter()
        .map(|p| {
            (
                p["name"].as_str().unwrap().to_owned(),
                p["round"].as_u64().unwrap(),
            )
        })
        .collect();
    let expected: Vec<(String, u64)> = (1..=3)
        .flat_map(|r| {
            [
                ("baseline".to_owned(), r),
                ("durable".to_owned(), r),
                ("gateway".to_owned(), r),
            ]
        })
        .collect();
    assert_eq!(order, expected);
    phases.iter().for_each(assert_sane);

    // Per round: gateway / durable, gateway / bare; then the two summaries.
    let comparisons = report["comparisons"].as_array().expect("comparisons");
    assert_eq!(comparisons.len(), 8, "{report}");
    let rounds: Vec<&Value> = comparisons[..6].iter().step_by(2).collect();
    for (i, c) in rounds.iter().enumerate() {
        assert_eq!(c["round"], i as u64 + 1, "{c}");
        assert_eq!(c["against"], "durable", "{c}");
    }
    let summary = &comparisons[6];
    assert!(summary.get("round").is_none(), "{summary}");
    let spread = &summary["rounds"];
    assert_eq!(spread["count"], 3, "{summary}");
    let mut ratios: Vec<f64> = rounds
        .iter()
        .map(|c| c["throughput_ratio"].as_f64().unwrap())
        .collect();
    ratios.sort_by(f64::total_cmp);
    assert_eq!(summary["throughput_ratio"].as_f64().unwrap(), ratios[1]);
    assert_eq!(spread["throughput_ratio_min"].as_f64().unwrap(), ratios[0]);
    assert_eq!(spread["throughput_ratio_max"].as_f64().unwrap(), ratios[2]);
    let median = spread["median_round"].as_u64().unwrap() as usize;
    assert_eq!(
        rounds[median - 1]["throughput_ratio"],
        summary["throughput_ratio"]
    );
    assert_eq!(rounds[median - 1]["met"], summary["met"]);

    let text = Command::new(BIN)
        .args(["--dev", "--citizens", "2000", "--rounds", "2"])
        .output()
        .expect("run popgate-bench");
    assert!(!text.status.success());
    let err = String::from_utf8_lossy(&text.stderr);
    assert!(err.contains("--rounds alternates the two sides"), "{err}");
}

/// `--interleave` keeps both servers up and alternates the load in slices: one phase per
/// side over the whole duration, figures over the measured slices only. Two gateways of the
/// same store size run on two copies of it (sled opens a store once per process).
#[test]
fn interleave_alternates_slices_between_two_running_servers() {
    let report = bench(&[
        "--baseline",
        "--interleave",
        "250ms",
        "--connections",
        "2",
        "--concurrency",
        "8",
    ]);
    assert_eq!(report["interleave_secs"], 0.25, "{report}");
    let base = phase(&report, "baseline");
    let gw = phase(&report, "gateway");
    assert_sane(base);
    assert_sane(gw);
    assert_eq!(report["phases"].as_array().unwrap().len(), 3, "{report}");
    for p in [base, gw] {
        assert_eq!(p["duration_secs"], 1.0, "{p}");
        assert_eq!(p["cpu"]["window"], "measured slices only", "{p}");
        // The split by thread adds up to the process's CPU per call.
        let t = &p["cpu"]["by_thread"];
        let us = |k: &str| t[k].as_f64().unwrap();
        assert!(
            us("server_us") > 0.0 && us("load_generator_us") > 0.0,
            "{p}"
        );
        let sum = us("server_us") + us("load_generator_us") + us("audit_us") + us("other_us");
        let total = p["cpu"]["us_per_call"].as_f64().unwrap();
        assert!(
            sum > 0.75 * total && sum < 1.25 * total,
            "{sum} of {total}: {p}"
        );
    }
    // The audit writer works in the gateway's slices only.
    let audit_us = |p: &Value| p["cpu"]["by_thread"]["audit_us"].as_f64().unwrap();
    assert!(
        audit_us(gw) > 0.0 && audit_us(base) < 0.2 * audit_us(gw),
        "{base} {gw}"
    );
    // The gateway's audit counted its own slices' records only, none of the baseline's, over
    // the same seconds as its calls: one record per call.
    let audit = &gw["audit"];
    let records = audit["records_per_sec"].as_f64().unwrap();
    let rate = gw["requests_per_sec"].as_f64().unwrap();
    assert!(
        records > 0.95 * rate && records < 1.05 * rate,
        "{records} records/s for {rate} calls/s: {audit}"
    );
    assert!(
        base.get("audit").is_none() || base["audit"].is_null(),
        "{base}"
    );
    let c = &report["comparisons"][0];
    assert!(c["throughput_ratio"].as_f64().unwrap() > 0.0, "{c}");

    for (extra, says) in [
        (
            &["--isolation"][..],
            "use it with --baseline or --compare-*",
        ),
        (&["--baseline", "--bulk"][..], "for unary loads"),
        (
            &["--baseline", "--client-threads", "0"][..],
            "its own runtime",
        ),
    ] {
        let mut args = vec!["--dev", "--citizens", "2000", "--interleave", "1s"];
        args.extend_from_slice(extra);
        let out = Command::new(BIN)
            .args(&args)
            .output()
            .expect("run popgate-bench");
        assert!(!out.status.success(), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(says), "{args:?}: {err}");
    }
}

/// The benches over PostgreSQL start a throwaway PostgreSQL 15 (and redis-server) of their
/// own; without the packages they fail, naming them, rather than skip.
fn need_cluster_packages() {
    for (path, package) in [
        ("/usr/lib/postgresql/15/bin/initdb", "postgresql-15"),
        ("/usr/bin/redis-server", "redis-server"),
    ] {
        assert!(
            std::path::Path::new(path).is_file(),
            "this test needs {path}: apt-get install {package}"
        );
    }
}

#[test]
fn writes_on_three_nodes_over_postgresql_report_the_coherence_wait() {
    need_cluster_packages();
    let report = bench(&[
        "--store",
        "postgres",
        "--nodes",
        "3",
        "--writes",
        "--concurrency",
        "8",
        "--connections",
        "3",
        "--audit-backend",
        "postgres",
    ]);
    let p = phase(&report, "gateway");
    assert!(p["requests"].as_u64().unwrap() > 0, "{p}");
    // Every write created a citizen that was not there: no ABORTED, no other error.
    assert_eq!(p["errors"], serde_json::json!({}), "{p}");
    let c = &p["cluster"];
    assert_eq!(c["nodes"], 3, "{p}");
    // Each write waited (or was counted as waiting) for the other nodes once.
    assert!(
        c["write_waits"].as_u64().unwrap() >= p["requests"].as_u64().unwrap(),
        "{p}"
    );
    // The records went to the database, one per write.
    assert!(p["audit"]["records_per_sec"].as_f64().unwrap() > 0.0, "{p}");
}

#[test]
fn compare_store_and_the_flood_over_nodes_with_shared_limits_run_over_postgresql() {
    need_cluster_packages();
    let report = bench(&["--compare-store", "--cache-capacity", "0", "--pgbench"]);
    assert_sane(phase(&report, "sled"));
    assert_sane(phase(&report, "postgres"));
    // The throwaway PostgreSQL's own CPU is counted beside the process's.
    let pg_cpu = phase(&report, "postgres")["cpu"]["postgres_us_per_call"]
        .as_f64()
        .unwrap();
    assert!(pg_cpu > 0.0, "{report}");
    assert!(report["pgbench"]["tps"].as_f64().unwrap() > 0.0, "{report}");
    assert_eq!(report["comparisons"][0]["what"], "PostgreSQL vs sled");

    let report = bench(&[
        "--store",
        "postgres",
        "--nodes",
        "3",
        "--isolation",
        "200",
        "--connections",
        "3",
        "--shared-limits",
    ]);
    let flood = phase(&report, "a-flood");
    // client-a asked 10x its rate over 3 nodes and was held near it: well under 3x (each
    // node admitting the whole rate) even in a 1 s run with its burst.
    let admitted = flood["requests"].as_u64().unwrap() as f64;
    assert!(admitted < 200.0 * 1.0 * 2.0 + 200.0, "{flood}");
    assert!(
        flood["errors"]["RESOURCE_EXHAUSTED"].as_u64().unwrap() > 0,
        "{flood}"
    );
    let c = &flood["cluster"];
    assert!(c["redis_calls"].as_u64().unwrap() > 0, "{flood}");
}

#[test]
fn cluster_options_without_a_database_are_refused_with_exit_2() {
    for args in [
        &["--dev", "--nodes", "2"][..],
        &["--dev", "--shared-limits"][..],
        &[
            "--dev",
            "--store",
            "postgres",
            "--nodes",
            "2",
            "--compare-store",
        ][..],
    ] {
        let out = Command::new(BIN).args(args).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}: {out:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(err.lines().count(), 1, "{args:?}: {err}");
    }
}

#[test]
fn watch_delivers_every_update_to_every_stream_and_times_it() {
    let report = bench(&[
        "--watch",
        "4",
        "--watch-citizens",
        "8",
        "--concurrency",
        "4",
        "--clients",
        "2",
        "--follow-ids",
        "1000",
    ]);
    let alone = phase(&report, "puts-alone");
    let with = phase(&report, "puts-with-watchers");
    for p in [alone, with] {
        assert!(p["requests"].as_u64().unwrap() > 0, "{p}");
        assert_eq!(p["errors"], serde_json::json!({}), "{p}");
    }
    let w = &report["watch"];
    let expected = w["events_expected"].as_u64().unwrap();
    // Every acknowledged update reached every one of the 4 streams.
    assert_eq!(expected, with["requests"].as_u64().unwrap() * 4, "{w}");
    assert_eq!(w["events"].as_u64().unwrap(), expected, "{w}");
    assert_eq!(w["streams_ended"], 0, "{w}");
    let (p50, p99) = (
        w["latency_p50_ms"].as_f64().unwrap(),
        w["latency_p99_ms"].as_f64().unwrap(),
    );
    assert!(p50 > 0.0 && p50 <= p99, "{w}");
    let f = &w["follow"];
    assert_eq!(f["ids"], 1000, "{w}");
    assert!(f["ids_per_sec"].as_f64().unwrap() > 0.0, "{w}");
}

/// Checks that `svg` is well-formed XML as far as an SVG drawn by the bench can be wrong:
/// every tag closed in order, one root, attribute values quoted, `&` only in entities.
fn assert_well_formed(svg: &str) {
    let mut open: Vec<&str> = Vec::new();
    let mut roots = 0;
    let mut rest = svg;
    while let Some(i) = rest.find('<') {
        let text = &rest[..i];
        assert!(!text.contains('>'), "a stray '>' in {text:?}");
        for (j, _) in text.match_indices('&') {
            let entity = &text[j..];
            assert!(
                ["&amp;", "&lt;", "&gt;", "&quot;", "&apos;"]
                    .iter()
                    .any(|e| entity.starts_with(e)),
                "a bare '&' in {text:?}"
            );
        }
        let end = rest[i..].find('>').expect("an unclosed tag") + i;
        let tag = &rest[i + 1..end];
        assert_eq!(
            tag.matches('"').count() % 2,
            0,
            "unbalanced quotes in <{tag}>"
        );
        if let Some(name) = tag.strip_prefix('/') {
            assert_eq!(
                open.pop(),
                Some(name.trim()),
                "</{name}> closes the wrong tag"
            );
        } else if !tag.starts_with('?') && !tag.starts_with('!') {
            let name = tag.split_whitespace().next().unwrap_or("");
            assert!(!name.is_empty(), "an empty tag");
            if open.is_empty() {
                roots += 1;
            }
            if !tag.ends_with('/') {
                open.push(name);
            }
        }
        rest = &rest[end + 1..];
    }
    assert!(open.is_empty(), "unclosed: {open:?}");
    assert_eq!(roots, 1, "one root element");
}

/// `--sweep` runs each offered rate against the three sides and writes the curve as JSON and
/// as an SVG that names them; bad sweep options are refused in one line with exit 2.
#[test]
fn a_sweep_writes_one_point_per_rate_per_side_and_a_picture_of_them() {
    let out = std::env::temp_dir().join(format!("popgate-bench-sweep-{}", std::process::id()));
    let out_arg = out.to_str().unwrap();
    let report = run_json(&[
        "--dev",
        "--citizens",
        "2000",
        "--connections",
        "2",
        "--sweep",
        "200,400",
        "--warmup",
        "0s",
        "--duration",
        "500ms",
        "--out",
        out_arg,
        "--json",
    ]);
    let file: Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("sweep.json")).unwrap()).unwrap();
    assert_eq!(file["sides"], report["sides"]);
    let sides = report["sides"].as_array().expect("sides");
    let names: Vec<&str> = sides.iter().map(|s| s["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["baseline", "durable", "gateway"]);
    for side in sides {
        let offered: Vec<f64> = side["points"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["offered_per_sec"].as_f64().unwrap())
            .collect();
        assert_eq!(offered, [200.0, 400.0], "{side}");
        for p in side["points"].as_array().unwrap() {
            assert!(p["requests"].as_u64().unwrap() > 0, "{p}");
            assert_eq!(p["errors"], 0, "{p}");
            assert!(p["p50_ms"].as_f64().unwrap() <= p["p99_ms"].as_f64().unwrap());
        }
    }
    let svg = std::fs::read_to_string(out.join("sweep.svg")).unwrap();
    assert!(svg.starts_with("<svg ") && svg.trim_end().ends_with("</svg>"));
    assert_well_formed(&svg);
    for name in ["bare baseline", "durable baseline", "gateway"] {
        assert!(
            svg.contains(&format!(">{name}</text>")),
            "{name} not in the SVG"
        );
    }
    let _ = std::fs::remove_dir_all(&out);

    for args in [
        &["--dev", "--sweep", "10:5:1", "--out", out_arg][..],
        &["--dev", "--sweep", "1000"][..],
        &["--dev", "--sweep", "--rate", "100", "--out", out_arg][..],
        &["--dev", "--sweep", "--compare-audit", "--out", out_arg][..],
        &["--dev", "--out", out_arg][..],
    ] {
        let out = Command::new(BIN).args(args).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}: {out:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(err.lines().count(), 1, "{args:?}: {err}");
    }
}
