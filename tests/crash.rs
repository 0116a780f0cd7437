//! Crash safety: kill -9 the real `popgate serve` process during a load of lookups and
//! PutCitizens, restart it on the same data, and check that nothing acknowledged was lost:
//! every acknowledged Put is in the store and in the change log (a stream of a follower
//! carries it), every acknowledged Follow holds, every acknowledged call has its audit record,
//! and the audit chain verifies. Repeated a few times (a bounded loop).

mod common;

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use popgate::client::{ClientTls, connect};
use popgate::pb;
use popgate::pb::identity_gateway_client::IdentityGatewayClient;
use popgate::pb::registry_admin_client::RegistryAdminClient;
use popgate::pki::{ClientOptions, DevCa};

/// Kill/restart cycles; `POPGATE_CRASH_RUNS` raises it for a longer soak (bounded loop).
fn runs() -> usize {
    std::env::var("POPGATE_CRASH_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3)
}

struct Setup {
    dir: tempfile::TempDir,
    ca: DevCa,
    tls: HashMap<&'static str, ClientTls>,
}

fn setup() -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let ca = DevCa::generate().unwrap();
    let server = ca.server_cert(&["localhost", "127.0.0.1"]).unwrap();
    std::fs::write(root.join("ca.pem"), ca.cert_pem()).unwrap();
    std::fs::write(root.join("server.pem"), &server.cert_pem).unwrap();
    std::fs::write(root.join("server.key"), &server.key_pem).unwrap();
    let config = format!(
        "[server]\nlisten = \"127.0.0.1:0\"\n\n[tls]\ncert = \"server.pem\"\nkey = \"server.key\"\nclient_ca = \"ca.pem\"\n\n[store]\npath = \"data/population\"\n\n[audit]\ndir = \"data/audit\"\ndurability = \"sync\"\n\n[cache]\ncapacity = 1000\nttl_secs = 300\n{}",
        common::CLIENTS
    );
    std::fs::write(root.join("popgate.toml"), config).unwrap();
    let mut tls = HashMap::new();
    for id in ["ministry", "registry"] {
        let pair = ca.client_cert(id, &ClientOptions::default()).unwrap();
        tls.insert(
            id,
            ClientTls {
                ca_pem: ca.cert_pem().to_owned(),
                cert_pem: pair.cert_pem,
                key_pem: pair.key_pem,
            },
        );
    }
    Setup { dir, ca, tls }
}

/// Starts `popgate serve` and returns it with the address it reports.
fn spawn(config: &Path) -> (common::Reaped, String) {
    let mut child = common::Reaped(
        Command::new(env!("CARGO_BIN_EXE_popgate"))
            .args(["serve", "--config"])
            .arg(config)
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start popgate"),
    );
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut sent = false;
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if !sent
                && line.contains("popgate serving")
                && let Some(addr) = line.split("listen=").nth(1)
            {
                let addr = addr.split_whitespace().next().unwrap_or("").to_owned();
                let _ = tx.send(addr);
                sent = true;
            }
        }
    });
    let addr = rx
        .recv_timeout(Duration::from_secs(60))
        .expect("popgate did not report its address");
    (child, addr)
}

/// Every audit record by seq, from the JSON Lines files.
fn audit_records(dir: &Path) -> HashMap<u64, serde_json::Value> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("audit-") && n.ends_with(".jsonl"))
        })
        .collect();
    files.sort();
    let mut out = HashMap::new();
    for f in files {
        for line in std::fs::read_to_string(&f).unwrap().lines() {
            let v: serde_json::Value = serde_json::from_str(line).expect("audit line parses");
            out.insert(v["seq"].as_u64().unwrap(), v);
        }
    }
    out
}

/// What the clients saw acknowledged before the kill.
#[derive(Default)]
struct Acked {
    /// (audit_seq, method, citizen_id)
    calls: Vec<(u64, &'static str, String)>,
    /// citizen id → highest acknowledged version
    puts: HashMap<String, u64>,
    /// (citizen id, version) of acknowledged writes made while the ministry followed the
    /// citizen: each must reach the ministry's change stream.
    followed: Vec<(String, u64)>,
}

async fn load(
    addr: String,
    tls: HashMap<&'static str, ClientTls>,
    run: usize,
    acked: Arc<Mutex<Acked>>,
    progress: Arc<tokio::sync::watch::Sender<usize>>,
) {
    let reg_ch = connect(&addr, "localhost", &tls["registry"]).await.unwrap();
    let agency_ch = connect(&addr, "localhost", &tls["ministry"]).await.unwrap();
    let mut tasks = Vec::new();
    for w in 0..4u32 {
        let (acked, progress) = (acked.clone(), progress.clone());
        let mut reg = RegistryAdminClient::new(reg_ch.clone());
        let mut agency = IdentityGatewayClient::new(agency_ch.clone());
        tasks.push(tokio::spawn(async move {
            for i in 0..100_000u32 {
                // Ids unique per run and worker: 001 0 87 + 6 digits.
                // Birth years 1930-1999: distinct per run for up to 70 runs.
                let id = format!("0010{:02}{:06}", 30 + run % 70, w * 100_000 + i);
                let created = reg
                    .put_citizen(pb::PutCitizenRequest {
                        citizen: Some(common::citizen(&id, "Phạm Thị Lan")),
                        expected_version: 0,
                    })
                    .await;
                let Ok(created) = created else { return };
                let created = created.into_inner();
                {
                    let mut a = acked.lock().unwrap();
                    a.puts.insert(id.clone(), created.version);
                    a.calls.push((created.audit_seq, "PutCitizen", id.clone()));
                }
                // Followed, then written again: that change is the ministry's to receive.
                let Ok(f) = agency
                    .follow(pb::FollowRequest {
                        citizen_ids: vec![id.clone()],
                        purpose: "health-insurance".into(),
                        request_id: String::new(),
                    })
                    .await
                else {
                    return;
                };
                acked
                    .lock()
                    .unwrap()
                    .calls
                    .push((f.into_inner().audit_seq, "Follow", id.clone()));
                let Ok(updated) = reg
                    .put_citizen(pb::PutCitizenRequest {
                        citizen: Some(common::citizen(&id, "Phạm Thị Lành")),
                        expected_version: created.version,
                    })
                    .await
                else {
                    return;
                };
                let updated = updated.into_inner();
                {
                    let mut a = acked.lock().unwrap();
                    a.puts.insert(id.clone(), updated.version);
                    a.calls.push((updated.audit_seq, "PutCitizen", id.clone()));
                    a.followed.push((id.clone(), updated.version));
                }
                let Ok(r) = agency
                    .lookup(common::lookup_req(&id, &["full_name"], "health-insurance"))
                    .await
                else {
                    return;
                };
                acked
                    .lock()
                    .unwrap()
                    .calls
                    .push((r.into_inner().audit_seq, "Lookup", id));
                progress.send_modify(|n| *n += 2);
            }
        }));
    }
    for t in tasks {
        let _ = t.await;
    }
}

/// Every change the ministry's stream carries after seq 1 (the first write, made before any
/// follow; `after_seq` 0 would mean "from now"), up to the first progress event, which comes
/// once the stream has caught up: (citizen id, version). Also checks that seqs strictly
/// increase.
async fn changes_since_start(
    agency: &mut IdentityGatewayClient<tonic::transport::Channel>,
) -> std::collections::HashSet<(String, u64)> {
    let mut s = agency
        .watch_changes(pb::WatchChangesRequest {
            after_seq: 1,
            read_mask: None,
            purpose: "health-insurance".into(),
            request_id: String::new(),
        })
        .await
        .expect("watch opens")
        .into_inner();
    let mut out = std::collections::HashSet::new();
    let mut last = 0;
    loop {
        let ev = tokio::time::timeout(Duration::from_secs(30), s.message())
            .await
            .expect("an event within 30 s")
            .expect("the stream is healthy")
            .expect("the stream goes on");
        assert!(ev.seq >= last, "seq went back: {} after {last}", ev.seq);
        let Some(c) = ev.citizen else {
            return out;
        };
        assert!(ev.seq > last, "seq {} twice", ev.seq);
        last = ev.seq;
        out.insert((c.citizen_id, c.version));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_during_load_loses_nothing_acknowledged() {
    let s = setup();
    let config = s.dir.path().join("popgate.toml");
    let audit_dir = s.dir.path().join("data/audit");
    let mut all_puts: HashMap<String, u64> = HashMap::new();
    let mut all_followed: Vec<(String, u64)> = Vec::new();
    let runs = runs();
    for run in 0..runs {
        let (mut child, addr) = spawn(&config);
        let acked = Arc::new(Mutex::new(Acked::default()));
        let progress = Arc::new(tokio::sync::watch::Sender::new(0));
        let mut acknowledged = progress.subscribe();
        let load = tokio::spawn(load(addr, s.tls.clone(), run, acked.clone(), progress));
        // Let the load run until a number of calls (different each run) were acknowledged,
        // then kill without warning, with calls in flight.
        let target = 100 + 60 * run;
        acknowledged
            .wait_for(|n| *n >= target)
            .await
            .expect("the load stopped early");
        child.kill().expect("kill -9");
        child.wait().unwrap();
        let _ = load.await;
        let acked = std::mem::take(&mut *acked.lock().unwrap());
        assert!(
            acked.calls.len() >= target,
            "run {run}: too little load ({})",
            acked.calls.len()
        );

        // Restart over the same data: recovery must cut any torn tail and go on.
        let (mut child, addr) = spawn(&config);
        let records = audit_records(&audit_dir);
        for (seq, method, id) in &acked.calls {
            let r = records.get(seq).unwrap_or_else(|| {
                panic!("run {run}: acknowledged {method} has no audit record {seq}")
            });
            assert_eq!(r["method"], *method);
            assert_eq!(r["citizen_id"], id.as_str());
            assert_eq!(r["outcome"], "ok");
        }
        all_puts.extend(acked.puts);
        all_followed.extend(acked.followed);
        let mut agency = IdentityGatewayClient::new(
            connect(&addr, "localhost", &s.tls["ministry"])
                .await
                .unwrap(),
        );
        let carried = changes_since_start(&mut agency).await;
        for (id, version) in &all_followed {
            assert!(
                carried.contains(&(id.clone(), *version)),
                "run {run}: acknowledged change {id} v{version} of a followed citizen is not in the change log"
            );
        }
        for (id, version) in &all_puts {
            let got = agency
                .lookup(common::lookup_req(id, &["full_name"], "health-insurance"))
                .await
                .unwrap_or_else(|e| panic!("run {run}: acknowledged put {id} lost: {e}"))
                .into_inner()
                .citizen
                .unwrap();
            assert!(got.version >= *version);
        }
        child.kill().unwrap();
        child.wait().unwrap();
        let verify = Command::new(env!("CARGO_BIN_EXE_popgate"))
            .args(["audit", "verify", "--dir"])
            .arg(&audit_dir)
            .output()
            .unwrap();
        assert!(
            verify.status.success(),
            "run {run}: audit chain broken: {}{}",
            String::from_utf8_lossy(&verify.stdout),
            String::from_utf8_lossy(&verify.stderr)
        );
    }
    drop(s.ca);
    assert!(
        !all_followed.is_empty(),
        "no followed write was acknowledged"
    );
    eprintln!(
        "crash loop: {runs} kill -9 runs, nothing acknowledged lost ({} followed changes carried)",
        all_followed.len()
    );
}
