//! Floods (issue "A hostile world"): far more calls than the gateway can serve, from many
//! connections at once. The real `popgate serve` process keeps its memory bounded, every call
//! it admits succeeds (the rest are shed with UNAVAILABLE or refused for their rate), and it
//! serves normally right after. Prints the peak memory and throughput figures; the figures
//! themselves are for the closing note, the assertions are behaviour.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use popgate::client::{ClientTls, connect};
use popgate::pb;
use popgate::pki::{ClientOptions, DevCa};
use tonic::Code;

const ID: &str = "001087000001";

/// The server's peak resident memory. A figure that cannot be read fails the test: a memory
/// bound that is not measured is not checked.
fn vm_hwm_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_else(|e| panic!("cannot read /proc/{pid}/status: {e}"));
    status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no VmHWM in /proc/{pid}/status"))
}

fn lookup() -> pb::LookupRequest {
    pb::LookupRequest {
        citizen_id: ID.into(),
        read_mask: Some(prost_types::FieldMask {
            paths: vec!["full_name".into()],
        }),
        purpose: "p".into(),
        request_id: String::new(),
    }
}

/// Closed-loop lookups from `conns` connections × `per_conn` tasks, `calls` each; (ok, shed,
/// other) counts.
async fn load(
    addr: &str,
    tls: &ClientTls,
    conns: usize,
    per_conn: usize,
    calls: usize,
) -> (u64, u64, u64) {
    let ok = Arc::new(AtomicU64::new(0));
    let shed = Arc::new(AtomicU64::new(0));
    let other = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();
    for _ in 0..conns {
        let ch = connect(addr, "localhost", tls).await.unwrap();
        for _ in 0..per_conn {
            let mut c = pb::identity_gateway_client::IdentityGatewayClient::new(ch.clone());
            let (ok, shed, other) = (ok.clone(), shed.clone(), other.clone());
            tasks.push(tokio::spawn(async move {
                for _ in 0..calls {
                    match c.lookup(lookup()).await {
                        Ok(r) => {
                            assert_eq!(r.into_inner().citizen.unwrap().full_name, "Nguyễn Văn An");
                            ok.fetch_add(1, Ordering::Relaxed);
                        }
                        Err(e) if e.code() == Code::Unavailable => {
                            shed.fetch_add(1, Ordering::Relaxed);
                        }
                        Err(e) => {
                            eprintln!("unexpected: {e:?}");
                            other.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                }
            }));
        }
    }
    for t in tasks {
        t.await.unwrap();
    }
    (
        ok.load(Ordering::Relaxed),
        shed.load(Ordering::Relaxed),
        other.load(Ordering::Relaxed),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_is_shed_with_bounded_memory_and_service_resumes() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let ca = DevCa::generate().unwrap();
    let server = ca.server_cert(&["localhost", "127.0.0.1"]).unwrap();
    std::fs::write(root.join("ca.pem"), ca.cert_pem()).unwrap();
    std::fs::write(root.join("server.pem"), &server.cert_pem).unwrap();
    std::fs::write(root.join("server.key"), &server.key_pem).unwrap();
    std::fs::write(
        root.join("popgate.toml"),
        "[server]\nlisten = \"127.0.0.1:0\"\n[tls]\ncert = \"server.pem\"\nkey = \"server.key\"\nclient_ca = \"ca.pem\"\n[store]\npath = \"data/population\"\n[audit]\ndir = \"data/audit\"\ndurability = \"sync\"\n[limits]\nmax_in_flight = 64\n\n[[clients]]\nid = \"flood\"\nkind = \"ministry\"\nrole = \"agency\"\nread = [\"full_name\"]\npurposes = [\"p\"]\nrate_per_sec = 1000000\nburst = 1000000\n\n[[clients]]\nid = \"registry\"\nkind = \"registry\"\nrole = \"registry\"\nrate_per_sec = 100\n",
    )
    .unwrap();
    let tls = |id: &str| {
        let pair = ca.client_cert(id, &ClientOptions::default()).unwrap();
        ClientTls {
            ca_pem: ca.cert_pem().to_owned(),
            cert_pem: pair.cert_pem,
            key_pem: pair.key_pem,
        }
    };
    let mut child = common::Reaped(
        Command::new(env!("CARGO_BIN_EXE_popgate"))
            .args(["serve", "--config"])
            .arg(root.join("popgate.toml"))
            .env("RUST_LOG", "warn,popgate=info")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if let Some(a) = line
                .split("listen=")
                .nth(1)
                .filter(|_| line.contains("popgate serving"))
            {
                let _ = tx.send(a.split_whitespace().next().unwrap_or("").to_owned());
            }
        }
    });
    let addr = rx.recv_timeout(Duration::from_secs(60)).unwrap();
    let pid = child.id();
    let reg = connect(&addr, "localhost", &tls("registry")).await.unwrap();
    pb::registry_admin_client::RegistryAdminClient::new(reg)
        .put_citizen(pb::PutCitizenRequest {
            citizen: Some(pb::Citizen {
                citizen_id: ID.into(),
                full_name: "Nguyễn Văn An".into(),
                date_of_birth: "1987-03-14".into(),
                sex: pb::Sex::Male as i32,
                life_status: pb::LifeStatus::Alive as i32,
                ..Default::default()
            }),
            expected_version: 0,
        })
        .await
        .unwrap();
    let flood_tls = tls("flood");

    // Normal load: what the gateway does with a moderate number in flight.
    let (before_ok, before_shed, before_other) = load(&addr, &flood_tls, 2, 16, 60).await;
    let rss_before = vm_hwm_kib(pid);
    // The flood: 32 connections x 64 calls in flight, far past the in-flight bound of 64.
    let (flood_ok, flood_shed, flood_other) = load(&addr, &flood_tls, 32, 64, 5).await;
    let peak = vm_hwm_kib(pid);
    // Right after: the same normal load again.
    let (after_ok, after_shed, after_other) = load(&addr, &flood_tls, 2, 16, 20).await;
    child.kill().unwrap();
    child.wait().unwrap();

    eprintln!(
        "flood: normal load {before_ok} ok, {before_shed} shed; flood of 32x64 in flight: \
         {flood_ok} ok, {flood_shed} shed; after: {after_ok} ok, {after_shed} shed; \
         peak RSS {} MiB (after the normal load {} MiB)",
        peak / 1024,
        rss_before / 1024
    );
    assert_eq!(
        before_other + flood_other + after_other,
        0,
        "every admitted call succeeds"
    );
    assert!(flood_shed > 0, "the flood went past the in-flight bound");
    assert!(flood_ok > 0 && after_ok > 0);
    assert!(peak < 1024 * 1024, "peak RSS {} MiB", peak / 1024);
}
