//! Health tells the truth about the store (a test binary of its own: it limits the size of
//! the files this process may write, which would break any test running beside it).
//!
//! The disk is made to refuse the store's writes for real: the process's file-size limit
//! (RLIMIT_FSIZE, set with `prlimit` on this very process) is lowered to the size the store's
//! file has now, so sled's next write that extends it fails with EFBIG, as on a full quota.
//! SIGXFSZ, which would kill the process, is taken by a handler instead. Raising the limit
//! again is the operator freeing space: the gateway notices at its next probe, reopens the
//! store and serves again.

mod common;

use std::process::Command;

use common::{Options, TestGateway, citizen, lookup_req, put};
use popgate::pb;
use tonic::Code;
use tonic_health::pb::health_check_response::ServingStatus;

/// Sets this process's soft limit on file size; the hard limit stays unlimited so the soft
/// one can be raised again.
fn limit_file_size(bytes: Option<u64>) {
    let soft = bytes.map_or("unlimited".to_owned(), |b| b.to_string());
    let status = Command::new("prlimit")
        .arg(format!("--pid={}", std::process::id()))
        .arg(format!("--fsize={soft}:unlimited"))
        .status()
        .expect("prlimit (util-linux) must be installed: apt-get install util-linux");
    assert!(status.success(), "prlimit --fsize failed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_that_cannot_write_turns_health_not_serving_until_it_can() {
    // Without a handler, the first write past the limit would kill the test process.
    let _xfsz = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::from_raw(25))
        .expect("a handler for SIGXFSZ");
    let gw = TestGateway::start_with(Options {
        manual_clock: true,
        // Small audit files, far below the limit set on the store's file below.
        audit_toml: "durability = \"sync\"\nroll_bytes = 4096\n".into(),
        ..Default::default()
    })
    .await;
    const A: &str = "001087000001";
    const B: &str = "001087000002";
    put(&gw, citizen(A, "Nguyễn Văn An")).await;
    // A store of some size, so its file is much larger than any audit file.
    let others: Vec<_> = (0..2_000)
        .map(|i| popgate::synth::citizen_at(9, i))
        .collect();
    gw.loader.load(&others).unwrap();
    gw.loader.flush().unwrap();
    gw.health_becomes(ServingStatus::Serving).await;

    let db = gw.path("data/population/db");
    let size = std::fs::metadata(&db).expect("sled's data file").len();
    limit_file_size(Some(size));
    let e = gw
        .registry()
        .await
        .put_citizen(pb::PutCitizenRequest {
            citizen: Some(citizen(B, "Trần Thị Bình")),
            expected_version: 0,
        })
        .await
        .unwrap_err();
    limit_file_size(None);
    assert_eq!(e.code(), Code::Unavailable, "{e:?}");
    assert!(e.message().contains("store"), "{}", e.message());
    gw.health_becomes(ServingStatus::NotServing).await;
    assert!(gw.scrape().await.contains("popgate_store_healthy 0"));

    // The disk takes writes again: at its next probe the gateway reopens the store.
    gw.clock().advance(std::time::Duration::from_secs(1));
    gw.health_becomes(ServingStatus::Serving).await;
    let mut c = gw.agency("ministry").await;
    let got = c
        .lookup(lookup_req(A, &["full_name"], "health-insurance"))
        .await
        .expect("the record written before the failure")
        .into_inner();
    assert_eq!(got.citizen.unwrap().full_name, "Nguyễn Văn An");
    // The refused write's outcome was unknown to its caller: it re-reads, then writes.
    let current = match c
        .lookup(lookup_req(B, &["full_name"], "health-insurance"))
        .await
    {
        Ok(r) => r.into_inner().citizen.unwrap().version,
        Err(e) => {
            assert_eq!(e.code(), Code::NotFound);
            0
        }
    };
    gw.registry()
        .await
        .put_citizen(pb::PutCitizenRequest {
            citizen: Some(citizen(B, "Trần Thị Bình")),
            expected_version: current,
        })
        .await
        .expect("writes work again");
    assert!(gw.scrape().await.contains("popgate_store_healthy 1"));
}
