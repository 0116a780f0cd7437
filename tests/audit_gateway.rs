//! Audit first, through the real server: every answer's `audit_seq` names its record, denied
//! and invalid calls are audited too, and when the audit log cannot be written the gateway
//! fails closed (UNAVAILABLE, health NOT_SERVING, nothing released) and recovers by itself.

mod common;

use common::{Options, TestGateway, citizen, lookup_req, put};
use popgate::audit::scan;
use tonic::Code;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

const ID: &str = "001087000001";

#[tokio::test]
async fn every_call_is_audited_with_the_contract_fields() {
    let gw = TestGateway::start().await;
    put(&gw, citizen(ID, "Nguyễn Văn An")).await;
    let mut c = gw.agency("ministry").await;
    let ok = c
        .lookup(lookup_req(
            ID,
            &["full_name", "date_of_birth"],
            "health-insurance",
        ))
        .await
        .unwrap()
        .into_inner();
    let _ = c
        .lookup(lookup_req(ID, &["religion"], "health-insurance"))
        .await;
    let _ = c.lookup(lookup_req("12", &[], "health-insurance")).await;
    let _ = c
        .lookup(lookup_req("001087999999", &[], "health-insurance"))
        .await;
    let (dir, _) = gw.stop().await;
    let recs = common::audit_records(&dir.path().join("data/audit"));
    let by_seq = |seq: u64| recs.iter().find(|r| r["seq"] == seq).unwrap();
    let r = by_seq(ok.audit_seq);
    assert_eq!(r["client"], "ministry");
    assert_eq!(r["method"], "Lookup");
    assert_eq!(r["citizen_id"], ID);
    assert_eq!(
        r["fields"],
        serde_json::json!(["full_name", "date_of_birth"])
    );
    assert_eq!(r["purpose"], "health-insurance");
    assert_eq!(r["request_id"], format!("req-{ID}"));
    assert_eq!(r["outcome"], "ok");
    assert_eq!(r["cert_sha256"].as_str().unwrap().len(), 64);
    assert!(r["peer"].as_str().unwrap().starts_with("127.0.0.1:"));
    assert!(r["latency_us"].as_u64().is_some());
    assert!(r["ts"].as_str().unwrap().ends_with('Z'));
    let outcomes: Vec<_> = recs
        .iter()
        .filter(|r| r["client"] == "ministry")
        .map(|r| r["outcome"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(outcomes, ["ok", "denied", "invalid", "not_found"]);
    let put = recs.iter().find(|r| r["method"] == "PutCitizen").unwrap();
    assert_eq!(put["client"], "registry");
    assert!(put["fields"].as_array().unwrap().len() > 5);
    // No personal data but the citizen id.
    let text = serde_json::to_string(&recs).unwrap();
    assert!(!text.contains("Nguyễn") && !text.contains("1987-03-14"));
}

async fn health(gw: &TestGateway) -> i32 {
    HealthClient::new(gw.channel("operator").await)
        .check(tonic_health::pb::HealthCheckRequest {
            service: String::new(),
        })
        .await
        .unwrap()
        .into_inner()
        .status
}

#[tokio::test]
async fn when_the_audit_log_cannot_be_written_nothing_is_released() {
    // The audit file the gateway will write is a link to /dev/full: a real ENOSPC.
    let dir = tempfile::tempdir().unwrap();
    let audit = dir.path().join("data/audit");
    std::fs::create_dir_all(&audit).unwrap();
    let first = audit.join(scan::file_name(1));
    std::os::unix::fs::symlink("/dev/full", &first).unwrap();
    let gw = TestGateway::start_in(
        dir,
        None,
        Options {
            manual_clock: true,
            ..Default::default()
        },
    )
    .await;

    let e = gw
        .registry()
        .await
        .put_citizen(popgate::pb::PutCitizenRequest {
            citizen: Some(citizen(ID, "Nguyễn Văn An")),
            expected_version: 0,
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::Unavailable);
    let e = gw
        .agency("ministry")
        .await
        .lookup(lookup_req(ID, &["full_name"], "health-insurance"))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::Unavailable, "{e:?}");
    assert!(e.message().contains("audit"), "{}", e.message());
    assert_eq!(health(&gw).await, ServingStatus::NotServing as i32);

    // The disk has room again: the gateway recovers by itself at its next probe.
    std::fs::remove_file(&first).unwrap();
    std::fs::write(&first, b"").unwrap();
    gw.clock().advance(popgate::audit::writer::PROBE_EVERY);
    gw.health_becomes(ServingStatus::Serving).await;
    // The refused write did not change the register.
    let e = gw
        .agency("ministry")
        .await
        .lookup(lookup_req(ID, &["full_name"], "health-insurance"))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::NotFound);
    put(&gw, citizen(ID, "Nguyễn Văn An")).await;
    let got = gw
        .agency("ministry")
        .await
        .lookup(lookup_req(ID, &["full_name"], "health-insurance"))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(got.citizen.unwrap().full_name, "Nguyễn Văn An");
    let (dir, _) = gw.stop().await;
    let verify = std::process::Command::new(env!("CARGO_BIN_EXE_popgate"))
        .args(["audit", "verify", "--dir"])
        .arg(dir.path().join("data/audit"))
        .output()
        .unwrap();
    assert!(
        verify.status.success(),
        "{}",
        String::from_utf8_lossy(&verify.stdout)
    );
}
