//! `popgate audit … --db` and `popgate audit export` as an operator runs them: the real
//! binary on records written by real calls to a cluster of two nodes whose audit log is in a
//! throwaway PostgreSQL 15. The tamper matrix edits the table in every way CONTRACT §6 lists
//! and expects `audit verify --db` to exit 1 naming the node and seq.

mod common;

use std::path::Path;
use std::process::Command;

use common::pg::{TestPostgres, free_port};
use common::{TestCluster, citizen};
use popgate::audit::chain;
use popgate::audit::checkpoint;
use popgate::pb;

const ID: &str = "001087000001";
const MISSING: &str = "001087000009";
const LOOKUPS: usize = 20;

/// What a command did: exit code, stdout, stderr.
struct Ran {
    code: i32,
    out: String,
    err: String,
}

fn popgate(args: &[&str]) -> Ran {
    let o = Command::new(env!("CARGO_BIN_EXE_popgate"))
        .args(args)
        .output()
        .expect("run popgate");
    Ran {
        code: o.status.code().expect("an exit code"),
        out: String::from_utf8_lossy(&o.stdout).into_owned(),
        err: String::from_utf8_lossy(&o.stderr).into_owned(),
    }
}

/// A stopped cluster's database, holding the records of real calls, and the audit key.
struct Fixture {
    pg: TestPostgres,
    keys: tempfile::TempDir,
}

impl Fixture {
    fn url(&self) -> String {
        self.pg.url()
    }

    fn pubkey(&self) -> String {
        self.keys.path().join("audit.pub").display().to_string()
    }

    fn verify(&self, extra: &[&str]) -> Ran {
        let url = self.url();
        let mut args = vec!["audit", "verify", "--db", &url];
        args.extend_from_slice(extra);
        popgate(&args)
    }

    fn count(&self, sql: &str) -> u64 {
        self.pg.psql(sql).parse().expect("a count")
    }
}

/// Options for a node whose audit log is in the database: a signed checkpoint every 5
/// records and at shutdown (the timed ones pushed out of the test's way).
fn audit_in_db(key: &Path) -> common::Options {
    common::Options {
        audit_toml: format!(
            "backend = \"postgres\"\ndurability = \"sync\"\ncheckpoint_every = 5\ncheckpoint_secs = 3600\nsigning_key = \"{}\"\n",
            key.display()
        ),
        ..Default::default()
    }
}

fn lookup(id: &str, field: &str, purpose: &str, request_id: &str) -> pb::LookupRequest {
    pb::LookupRequest {
        citizen_id: id.into(),
        read_mask: Some(prost_types::FieldMask {
            paths: vec![field.into()],
        }),
        purpose: purpose.into(),
        request_id: request_id.into(),
    }
}

/// Two nodes; gw-1 creates the citizen; the ministry looks it up 20 times on both nodes in
/// turn (`r0` … `r19`); gw-1 is asked for a citizen who does not exist, gw-2 for a field the
/// utility may not read. Then both stop (each writes a final checkpoint).
async fn fixture() -> Fixture {
    let keys = tempfile::tempdir().unwrap();
    let (pem, pub_hex) = checkpoint::generate_signing_key().unwrap();
    let key = keys.path().join("audit.key");
    std::fs::write(&key, pem).unwrap();
    std::fs::write(keys.path().join("audit.pub"), format!("{pub_hex}\n")).unwrap();
    let c = TestCluster::start_with(2, 600, || audit_in_db(&key)).await;
    c.nodes[0]
        .registry()
        .await
        .put_citizen(pb::PutCitizenRequest {
            citizen: Some(citizen(ID, "Nguyễn Văn An")),
            expected_version: 0,
        })
        .await
        .unwrap();
    for i in 0..LOOKUPS {
        let r = c.nodes[i % 2]
            .agency("ministry")
            .await
            .lookup(lookup(
                ID,
                "full_name",
                "health-insurance",
                &format!("r{i}"),
            ))
            .await
            .unwrap();
        assert!(r.into_inner().audit_seq > 0);
    }
    let e = c.nodes[0]
        .agency("ministry")
        .await
        .lookup(lookup(MISSING, "full_name", "health-insurance", "gone"))
        .await
        .unwrap_err();
    assert_eq!(e.code(), tonic::Code::NotFound);
    let e = c.nodes[1]
        .agency("utility")
        .await
        .lookup(lookup(ID, "religion", "electricity-contract", "nosy"))
        .await
        .unwrap_err();
    assert_eq!(e.code(), tonic::Code::PermissionDenied);
    let TestCluster { pg, nodes, .. } = c;
    for n in nodes {
        n.stop().await;
    }
    Fixture { pg, keys }
}

fn json_lines(text: &str) -> Vec<serde_json::Value> {
    text.lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn query_report_and_stats_read_every_nodes_records_from_the_database() {
    let f = fixture().await;
    let url = f.url();
    let total = f.count("SELECT count(*) FROM audit_log");

    // Everything, oldest first: each node's chain in order, the nodes interleaved in time.
    let all = popgate(&["audit", "query", "--db", &url, "--json"]);
    assert_eq!(all.code, 0, "{}", all.err);
    let all = json_lines(&all.out);
    assert_eq!(all.len() as u64, total);
    assert_eq!(all[0]["method"], "PutCitizen");
    assert!(
        all.windows(2)
            .all(|w| w[0]["ts"].as_str() <= w[1]["ts"].as_str())
    );
    for node in ["gw-1", "gw-2"] {
        let seqs: Vec<u64> = all
            .iter()
            .filter(|r| r["node"] == node)
            .map(|r| r["seq"].as_u64().unwrap())
            .collect();
        assert_eq!(seqs, (1..=seqs.len() as u64).collect::<Vec<_>>(), "{node}");
    }

    // A citizen's report: every call about them, newest first, from both nodes.
    let rep = popgate(&["audit", "report", "--db", &url, "--citizen", ID, "--json"]);
    assert_eq!(rep.code, 0, "{}", rep.err);
    let rep = json_lines(&rep.out);
    let mut want: Vec<_> = all.iter().filter(|r| r["citizen_id"] == ID).collect();
    want.reverse();
    assert_eq!(rep.iter().collect::<Vec<_>>(), want);
    for i in 0..LOOKUPS {
        let id = format!("r{i}");
        let r = rep.iter().find(|r| r["request_id"] == id.as_str()).unwrap();
        assert_eq!(r["node"], ["gw-1", "gw-2"][i % 2]);
        assert_eq!(r["client"], "ministry");
        assert_eq!(r["outcome"], "ok");
    }
    assert_eq!(rep[0]["request_id"], "nosy", "the newest first");
    assert_eq!(rep.last().unwrap()["method"], "PutCitizen");
    let table = popgate(&["audit", "report", "--db", &url, "--citizen", ID]);
    assert!(
        table.out.starts_with(&format!(
            "citizen {ID}: {} access(es) by 3 client(s)",
            rep.len()
        )),
        "{}",
        table.out
    );
    assert!(
        table.out.contains("gw-2:"),
        "seqs name their node: {}",
        table.out
    );

    // Filters: client and outcome (judged on the record), time (pushed into SQL).
    let q = popgate(&[
        "audit",
        "query",
        "--db",
        &url,
        "--client",
        "ministry",
        "--outcome",
        "not_found",
        "--json",
    ]);
    let q = json_lines(&q.out);
    assert_eq!(q.len(), 1);
    assert_eq!(q[0]["citizen_id"], MISSING);
    assert_eq!(q[0]["node"], "gw-1");
    let q = popgate(&["audit", "query", "--db", &url, "--client", "utility"]);
    assert_eq!(q.code, 0);
    assert!(
        q.out.contains("denied") && q.out.ends_with("1 record(s)\n"),
        "{}",
        q.out
    );
    let since = all[7]["ts"].as_str().unwrap();
    let until = all[15]["ts"].as_str().unwrap();
    let q = popgate(&[
        "audit", "query", "--db", &url, "--since", since, "--until", until, "--json",
    ]);
    let want: Vec<_> = all
        .iter()
        .filter(|r| r["ts"].as_str().unwrap() >= since && r["ts"].as_str().unwrap() < until)
        .cloned()
        .collect();
    assert_eq!(json_lines(&q.out), want);
    let q = popgate(&["audit", "query", "--db", &url, "--json", "--limit", "3"]);
    assert_eq!(json_lines(&q.out), all[..3]);

    // Counts by client and outcome.
    let st = popgate(&["audit", "stats", "--db", &url, "--json"]);
    assert_eq!(st.code, 0, "{}", st.err);
    let st: serde_json::Value = serde_json::from_str(&st.out).unwrap();
    assert_eq!(st["records"], total);
    let ministry = &st["clients"]["ministry"];
    assert_eq!(ministry["ok"], LOOKUPS as u64);
    assert_eq!(ministry["not_found"], 1);
    assert_eq!(st["clients"]["utility"]["denied"], 1);
    assert_eq!(st["clients"]["registry"]["ok"], 1);
    assert_eq!(st["first_ts"], all[0]["ts"]);
    assert_eq!(st["last_ts"], all.last().unwrap()["ts"]);
}

/// Every row of both tables saved, to put back after each tamper.
fn save(pg: &TestPostgres) {
    pg.psql(
        "CREATE TABLE saved_log AS SELECT * FROM audit_log; \
         CREATE TABLE saved_cps AS SELECT * FROM audit_checkpoints",
    );
}

fn restore(pg: &TestPostgres) {
    pg.psql(
        "DELETE FROM audit_log; INSERT INTO audit_log SELECT * FROM saved_log; \
         DELETE FROM audit_checkpoints; INSERT INTO audit_checkpoints SELECT * FROM saved_cps",
    );
}

fn record(pg: &TestPostgres, node: &str, seq: u64) -> String {
    pg.psql(&format!(
        "SELECT record FROM audit_log WHERE node = '{node}' AND seq = {seq}"
    ))
}

/// `line` with its hash recomputed: an edit by someone who knows how the chain is made.
fn rehash(line: &str) -> String {
    let (body, _) = chain::line_hash_parts(line.as_bytes()).unwrap();
    let body = std::str::from_utf8(body).unwrap();
    format!(
        "{body},\"hash\":\"{}\"}}",
        chain::to_hex(&chain::sha256(body.as_bytes()))
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_db_passes_on_the_real_log_and_names_node_and_seq_of_every_tamper() {
    let f = fixture().await;
    let pk = f.pubkey();
    let ok = f.verify(&["--pubkey", &pk]);
    assert_eq!(ok.code, 0, "{}{}", ok.out, ok.err);
    assert!(ok.out.contains("node gw-1: intact"), "{}", ok.out);
    assert!(ok.out.contains("node gw-2: intact"), "{}", ok.out);
    assert!(ok.out.contains("signatures verified"), "{}", ok.out);
    let head = f.count("SELECT max(seq) FROM audit_log WHERE node = 'gw-1'");
    assert!(head >= 12, "gw-1 has {head} records");
    assert_eq!(
        f.count("SELECT max(seq) FROM audit_checkpoints WHERE node = 'gw-1'"),
        head,
        "the last record is checkpointed at shutdown"
    );
    save(&f.pg);

    let edited =
        rehash(&record(&f.pg, "gw-1", 4).replace("\"request_id\":\"", "\"request_id\":\"x"));
    let mut sig_line =
        f.pg.psql("SELECT line FROM audit_checkpoints WHERE node = 'gw-1' AND seq = 5");
    let at = sig_line.find("\"sig\":\"").unwrap() + 7;
    let flipped = if &sig_line[at..at + 1] == "0" {
        "1"
    } else {
        "0"
    };
    sig_line.replace_range(at..at + 1, flipped);
    let cases: Vec<(&str, String, u64, &str)> = vec![
        (
            "an edited record",
            "UPDATE audit_log SET record = replace(record, '\"request_id\":\"', '\"request_id\":\"x') \
             WHERE node = 'gw-1' AND seq = 3"
                .into(),
            3,
            "does not match its hash",
        ),
        (
            "an edited record with its hash recomputed",
            format!("UPDATE audit_log SET record = $r${edited}$r$ WHERE node = 'gw-1' AND seq = 4"),
            5,
            "prev does not match",
        ),
        (
            "a deleted row",
            "DELETE FROM audit_log WHERE node = 'gw-1' AND seq = 6".into(),
            6,
            "missing",
        ),
        (
            "an inserted row",
            format!(
                "INSERT INTO audit_log SELECT node, seq + 1, replace(record, '\"seq\":{head},', '\"seq\":{},'), ts, citizen_id \
                 FROM audit_log WHERE node = 'gw-1' AND seq = {head}",
                head + 1
            ),
            head + 1,
            "does not match its hash",
        ),
        (
            "two rows swapped",
            "UPDATE audit_log SET seq = -3 WHERE node = 'gw-1' AND seq = 3; \
             UPDATE audit_log SET seq = 3 WHERE node = 'gw-1' AND seq = 4; \
             UPDATE audit_log SET seq = 4 WHERE node = 'gw-1' AND seq = -3"
                .into(),
            3,
            "holds the record of node gw-1 seq 4",
        ),
        (
            "a row moved to the other node",
            "UPDATE audit_log SET node = 'gw-2', seq = 1000 WHERE node = 'gw-1' AND seq = 2".into(),
            2,
            "missing",
        ),
        (
            "an index column edited",
            "UPDATE audit_log SET ts = ts - interval '1 day' WHERE node = 'gw-1' AND seq = 7".into(),
            7,
            "ts column differs",
        ),
        (
            "the last records cut off",
            format!("DELETE FROM audit_log WHERE node = 'gw-1' AND seq >= {}", head - 1),
            head - 1,
            "cut off",
        ),
        (
            "the start deleted without an anchor",
            "DELETE FROM audit_log WHERE node = 'gw-1' AND seq <= 2".into(),
            3,
            "no checkpoint of seq 2 anchors it",
        ),
        (
            "a checkpoint's signature altered",
            format!(
                "UPDATE audit_checkpoints SET line = $r${sig_line}$r$ WHERE node = 'gw-1' AND seq = 5"
            ),
            5,
            "signature does not verify",
        ),
    ];
    for (what, sql, seq, why) in cases {
        f.pg.psql(&sql);
        let r = f.verify(&["--pubkey", &pk]);
        let first = r.out.lines().next().unwrap_or_default();
        assert_eq!(r.code, 1, "{what}: {}{}", r.out, r.err);
        let named = ["node gw-1 seq ", "node gw-1 checkpoint of seq "]
            .iter()
            .any(|n| first.starts_with(&format!("NOT INTACT: {n}{seq}:")));
        assert!(named && first.contains(why), "{what}: {first}");
        // The other node is still checked, and found intact.
        if !what.contains("other node") {
            assert!(r.out.contains("node gw-2: intact"), "{what}: {}", r.out);
        }
        restore(&f.pg);
    }
    // Without the key, a forged signature is not seen (and the output says so).
    f.pg.psql(&format!(
        "UPDATE audit_checkpoints SET line = $r${sig_line}$r$ WHERE node = 'gw-1' AND seq = 5"
    ));
    let r = f.verify(&[]);
    assert_eq!(r.code, 0, "{}", r.out);
    assert!(r.out.contains("signatures not checked"), "{}", r.out);
    restore(&f.pg);
    assert_eq!(f.verify(&["--pubkey", &pk]).code, 0);
}

/// The `DELETE FROM audit_log …;` statements an export printed.
fn deletes(out: &str) -> Vec<String> {
    out.lines()
        .filter_map(|l| l.split("remove from the database:").nth(1))
        .map(|s| s.trim().to_owned())
        .collect()
}

fn verify_dir(dir: &Path, extra: &[&str]) -> Ran {
    let d = dir.display().to_string();
    let mut args = vec!["audit", "verify", "--dir", &d];
    args.extend_from_slice(extra);
    popgate(&args)
}

fn export(url: &str, out: &Path, extra: &[&str]) -> Ran {
    let o = out.display().to_string();
    let mut args = vec![
        "audit",
        "export",
        "--db",
        url,
        "--out",
        &o,
        "--roll-bytes",
        "4096",
    ];
    args.extend_from_slice(extra);
    popgate(&args)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_export_verifies_as_files_and_its_printed_delete_keeps_the_chain_verifiable() {
    let f = fixture().await;
    let (url, pk) = (f.url(), f.pubkey());
    let out = tempfile::tempdir().unwrap();

    // Everything up to each node's last checkpoint: here, every record.
    let all = out.path().join("all");
    let r = export(&url, &all, &[]);
    assert_eq!(r.code, 0, "{}{}", r.out, r.err);
    let mut records = 0;
    for node in ["gw-1", "gw-2"] {
        let head = f.count(&format!(
            "SELECT max(seq) FROM audit_log WHERE node = '{node}'"
        ));
        assert!(
            r.out.contains(&format!("{node}: exported seq 1..={head} ")),
            "{}",
            r.out
        );
        let dir = all.join(node);
        let v = verify_dir(&dir, &["--pubkey", &pk]);
        assert_eq!(v.code, 0, "{node}: {}{}", v.out, v.err);
        assert!(
            v.out.contains(&format!("intact: {head} record(s)")),
            "{}",
            v.out
        );
        let files = std::fs::read_dir(&dir).unwrap().count();
        assert!(files > 2, "{node}: rolled at 4096 bytes, {files} files");
        let st = popgate(&[
            "audit",
            "stats",
            "--dir",
            &dir.display().to_string(),
            "--json",
        ]);
        let st: serde_json::Value = serde_json::from_str(&st.out).unwrap();
        records += st["records"].as_u64().unwrap();
    }
    assert_eq!(records, f.count("SELECT count(*) FROM audit_log"));
    // Nothing is overwritten.
    let again = export(&url, &all, &[]);
    assert_eq!(again.code, 2);
    assert!(again.err.contains("not empty"), "{}", again.err);

    // Up to a time: gw-1 up to its last checkpoint before the ts of its record 8.
    let ts8: serde_json::Value = serde_json::from_str(&record(&f.pg, "gw-1", 8)).unwrap();
    let until = ts8["ts"].as_str().unwrap();
    let old = out.path().join("old");
    let r = export(&url, &old, &["--until", until]);
    assert_eq!(r.code, 0, "{}{}", r.out, r.err);
    assert!(r.out.contains("gw-1: exported seq 1..=5 "), "{}", r.out);
    assert!(
        r.out
            .contains("DELETE FROM audit_log WHERE node = 'gw-1' AND seq <= 5;"),
        "{}",
        r.out
    );
    for node in std::fs::read_dir(&old).unwrap() {
        let v = verify_dir(&node.unwrap().path(), &["--pubkey", &pk]);
        assert_eq!(v.code, 0, "{}{}", v.out, v.err);
    }
    // The operator runs what was printed: the chain left is anchored and still verifies.
    let sql = deletes(&r.out);
    assert!(!sql.is_empty());
    for s in &sql {
        f.pg.psql(s);
    }
    assert_eq!(
        f.count("SELECT min(seq) FROM audit_log WHERE node = 'gw-1'"),
        6
    );
    let v = f.verify(&["--pubkey", &pk]);
    assert_eq!(v.code, 0, "{}{}", v.out, v.err);
    assert!(v.out.contains("node gw-1: intact"), "{}", v.out);
    assert!(
        v.out.contains("anchored by the checkpoint of seq 5"),
        "{}",
        v.out
    );

    // The next export starts where that one ended, and verifies as an archived start.
    let rest = out.path().join("rest");
    let r = export(&url, &rest, &[]);
    assert_eq!(r.code, 0, "{}{}", r.out, r.err);
    assert!(r.out.contains("gw-1: exported seq 6..="), "{}", r.out);
    let v = verify_dir(&rest.join("gw-1"), &["--pubkey", &pk]);
    assert_eq!(
        v.code, 1,
        "a start above 1 is refused without --archived: {}",
        v.out
    );
    let v = verify_dir(&rest.join("gw-1"), &["--pubkey", &pk, "--archived"]);
    assert_eq!(v.code, 0, "{}{}", v.out, v.err);

    // One row more than printed: no checkpoint anchors the start any longer.
    assert_eq!(
        f.count("SELECT count(*) FROM audit_checkpoints WHERE node = 'gw-1' AND seq = 6"),
        0
    );
    f.pg.psql("DELETE FROM audit_log WHERE node = 'gw-1' AND seq <= 6");
    let v = f.verify(&["--pubkey", &pk]);
    assert_eq!(v.code, 1, "{}", v.out);
    assert!(
        v.out.starts_with("NOT INTACT: node gw-1 seq 7:"),
        "{}",
        v.out
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_whose_records_were_all_exported_and_deleted_goes_on_from_its_checkpoint() {
    let f = fixture().await;
    let (url, pk) = (f.url(), f.pubkey());
    let out = tempfile::tempdir().unwrap();
    let r = export(&url, out.path(), &[]);
    assert_eq!(r.code, 0, "{}{}", r.out, r.err);
    let head = f.count("SELECT max(seq) FROM audit_log WHERE node = 'gw-1'");
    for s in deletes(&r.out) {
        f.pg.psql(&s);
    }
    assert_eq!(f.count("SELECT count(*) FROM audit_log"), 0);
    let v = f.verify(&["--pubkey", &pk]);
    assert_eq!(v.code, 0, "{}{}", v.out, v.err);
    assert!(
        v.out.contains(&format!(
            "node gw-1: intact: 0 record(s) (records 1..={head} removed"
        )),
        "{}",
        v.out
    );

    // gw-1 starts again over the emptied table: its chain goes on after the checkpoint.
    let key = f.keys.path().join("audit.key");
    let Fixture { pg, keys } = f;
    let url2 = pg.url();
    let c = TestCluster::start_over(pg, &url2, 1, 600, || audit_in_db(&key)).await;
    let r = c.nodes[0]
        .agency("ministry")
        .await
        .lookup(lookup(ID, "full_name", "health-insurance", "after"))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(r.audit_seq, head + 1);
    let TestCluster { pg, nodes, .. } = c;
    for n in nodes {
        n.stop().await;
    }
    let f = Fixture { pg, keys };
    let v = f.verify(&["--pubkey", &pk]);
    assert_eq!(v.code, 0, "{}{}", v.out, v.err);
    assert!(
        v.out.contains(&format!("from seq {}", head + 1)),
        "{}",
        v.out
    );
}

/// Exit 2 and one line on stderr that mentions `what`.
fn refused(r: &Ran, what: &str) {
    assert_eq!(r.code, 2, "{}{}", r.out, r.err);
    assert_eq!(r.err.lines().count(), 1, "one line: {}", r.err);
    assert!(r.err.contains(what), "{what}: {}", r.err);
}

#[test]
fn bad_input_is_refused_with_one_line_and_exit_2() {
    let pg = TestPostgres::start();
    let url = pg.url();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().display().to_string();
    refused(
        &popgate(&["audit", "query", "--dir", &d, "--db", &url]),
        "not both",
    );
    refused(&popgate(&["audit", "stats"]), "--dir DIR");
    refused(
        &popgate(&["audit", "report", "--db", "not a url =", "--citizen", ID]),
        "--db",
    );
    let nobody = format!("postgresql://postgres@127.0.0.1:{}/popgate", free_port());
    refused(
        &popgate(&["audit", "verify", "--db", &nobody]),
        "cannot connect",
    );
    // The database exists, but no popgate ever migrated it: nothing is created in it.
    refused(
        &popgate(&["audit", "query", "--db", &url]),
        "no popgate schema",
    );
    assert_eq!(
        pg.psql("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'"),
        "0"
    );
    assert_eq!(popgate(&["db", "migrate", "--url", &url]).code, 0);
    // An empty log is intact, and has nothing to export.
    let v = popgate(&["audit", "verify", "--db", &url]);
    assert_eq!(v.code, 0, "{}{}", v.out, v.err);
    refused(
        &popgate(&["audit", "verify", "--db", &url, "--archived"]),
        "--archived is for --dir",
    );
    let out = dir.path().join("out");
    let o = out.display().to_string();
    refused(
        &popgate(&[
            "audit",
            "export",
            "--db",
            &url,
            "--out",
            &o,
            "--until",
            "yesterday",
        ]),
        "--until",
    );
    pg.psql("INSERT INTO audit_checkpoints VALUES ('gw-1', 1, 'x')");
    std::fs::create_dir_all(out.join("gw-1")).unwrap();
    std::fs::write(out.join("gw-1/notes.txt"), "mine").unwrap();
    refused(
        &popgate(&["audit", "export", "--db", &url, "--out", &o]),
        "not empty",
    );
    assert_eq!(
        std::fs::read_to_string(out.join("gw-1/notes.txt")).unwrap(),
        "mine"
    );
    pg.psql("INSERT INTO popgate_schema (version) VALUES (99)");
    refused(&popgate(&["audit", "stats", "--db", &url]), "version 99");
    refused(
        &popgate(&["audit", "report", "--db", &url, "--citizen", ID]),
        "newer than this popgate knows",
    );
}
