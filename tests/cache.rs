//! The reuse cache (CONTRACT §1 "Reuse cache"): shared across agencies with rights applied
//! after it, never stale after a write, bounded.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use common::{Options, TestGateway, citizen, lookup_req, put};
use popgate::pb;
use tonic::Code;

const ID: &str = "001087000001";

#[tokio::test]
async fn rights_are_applied_after_the_cache() {
    let gw = TestGateway::start().await;
    put(&gw, citizen(ID, "Nguyễn Văn An")).await;
    // The ministry may read the address: its fetch fills the cache with the whole record.
    let a = gw
        .agency("ministry")
        .await
        .lookup(lookup_req(
            ID,
            &["full_name", "permanent_address"],
            "health-insurance",
        ))
        .await
        .unwrap()
        .into_inner();
    assert!(!a.citizen.unwrap().permanent_address.is_empty());
    // The utility may not: the cached record does not change that.
    let mut utility = gw.agency("utility").await;
    let e = utility
        .lookup(lookup_req(
            ID,
            &["permanent_address"],
            "electricity-contract",
        ))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::PermissionDenied);
    // Its allowed field comes from the cache, and only that field.
    let b = utility
        .lookup(lookup_req(ID, &[], "electricity-contract"))
        .await
        .unwrap()
        .into_inner();
    assert!(b.reused);
    let got = b.citizen.unwrap();
    assert_eq!(got.full_name, "Nguyễn Văn An");
    assert!(got.permanent_address.is_empty() && got.date_of_birth.is_empty());
    // Verify reuses it too.
    let v = gw
        .agency("telecom")
        .await
        .verify(pb::VerifyRequest {
            citizen_id: ID.into(),
            claims: Some(pb::Claims {
                full_name: Some("Nguyễn Văn An".into()),
                ..Default::default()
            }),
            purpose: "subscriber-verification".into(),
            request_id: String::new(),
            mode: 0,
        })
        .await
        .unwrap()
        .into_inner();
    assert!(v.reused && v.matched);
}

#[tokio::test]
async fn a_cached_not_found_gives_way_to_a_create_at_once() {
    let gw = TestGateway::start().await;
    let mut c = gw.agency("ministry").await;
    let e = c
        .lookup(lookup_req(ID, &["full_name"], "health-insurance"))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::NotFound);
    put(&gw, citizen(ID, "Nguyễn Văn An")).await;
    let got = c
        .lookup(lookup_req(ID, &["full_name"], "health-insurance"))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(got.citizen.unwrap().version, 1);
}

#[tokio::test]
async fn a_cached_not_found_expires_with_the_ttl() {
    let gw = TestGateway::start_with(Options {
        cache_toml: "capacity = 1000\nttl_secs = 60\n".into(),
        manual_clock: true,
        ..Default::default()
    })
    .await;
    let c = gw.agency("ministry").await;
    let lookup = |mut c: pb::identity_gateway_client::IdentityGatewayClient<_>| async move {
        c.lookup(lookup_req(ID, &["full_name"], "health-insurance"))
            .await
            .map(|r| r.into_inner())
    };
    assert_eq!(lookup(c.clone()).await.unwrap_err().code(), Code::NotFound);
    // Written behind the gateway's back (as a second writer of a shared store would): only
    // the TTL can make it visible.
    gw.loader
        .load(&[common::stored(citizen(ID, "Nguyễn Văn An"), 1)])
        .unwrap();
    gw.clock().advance(Duration::from_millis(59_999));
    assert_eq!(
        lookup(c.clone()).await.unwrap_err().code(),
        Code::NotFound,
        "the cached answer is kept for the whole TTL"
    );
    gw.clock().advance(Duration::from_millis(1));
    let found = lookup(c.clone())
        .await
        .expect("read again once the TTL is over");
    assert!(!found.reused);
    // And the new answer is cached in its turn.
    assert!(lookup(c).await.unwrap().reused);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_read_sees_a_version_older_than_one_acknowledged_before_it_started() {
    let gw = TestGateway::start().await;
    let ids = ["001087000001", "001087000002", "001087000003"];
    // The last version acknowledged per id.
    let acked: Arc<Vec<AtomicU64>> = Arc::new(ids.iter().map(|_| AtomicU64::new(0)).collect());
    for (i, id) in ids.iter().enumerate() {
        let v = put(&gw, citizen(id, "Lê Văn Tám")).await;
        acked[i].store(v, Ordering::SeqCst);
    }
    // Writers and readers race over a fixed amount of work; readers go on until the writers
    // are done, so every write has reads around it.
    const WRITES: u64 = 40;
    let writing = Arc::new(AtomicU64::new(ids.len() as u64));
    let mut tasks = Vec::new();
    for (i, id) in ids.iter().enumerate() {
        let mut reg = gw.registry().await;
        let (acked, writing) = (acked.clone(), writing.clone());
        let id = id.to_string();
        tasks.push(tokio::spawn(async move {
            for _ in 0..WRITES {
                let v = acked[i].load(Ordering::SeqCst);
                let r = reg
                    .put_citizen(pb::PutCitizenRequest {
                        citizen: Some(citizen(&id, &format!("Lê Văn Tám {}", v + 1))),
                        expected_version: v,
                    })
                    .await
                    .expect("only this task writes this id");
                acked[i].store(r.into_inner().version, Ordering::SeqCst);
            }
            writing.fetch_sub(1, Ordering::SeqCst);
        }));
    }
    let mut readers = Vec::new();
    for r in 0..4 {
        let mut c = gw.agency("ministry").await;
        let (acked, writing) = (acked.clone(), writing.clone());
        readers.push(tokio::spawn(async move {
            let mut reads = 0u64;
            while writing.load(Ordering::SeqCst) > 0 || reads < 100 {
                let i = (reads as usize + r) % ids.len();
                let floor = acked[i].load(Ordering::SeqCst);
                let got = c
                    .lookup(lookup_req(ids[i], &["full_name"], "health-insurance"))
                    .await
                    .unwrap()
                    .into_inner()
                    .citizen
                    .unwrap();
                assert!(
                    got.version >= floor,
                    "stale read of {}: version {} after {} was acknowledged",
                    ids[i],
                    got.version,
                    floor
                );
                reads += 1;
            }
            reads
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    for t in readers {
        t.await.unwrap();
    }
    for (i, a) in acked.iter().enumerate() {
        assert_eq!(a.load(Ordering::SeqCst), 1 + WRITES, "{}", ids[i]);
    }
}

#[tokio::test]
async fn the_cache_holds_no_more_than_its_capacity() {
    let gw = TestGateway::start_with(Options {
        cache_toml: "capacity = 50\nttl_secs = 300\n".into(),
        ..Default::default()
    })
    .await;
    // 400 distinct citizens through the store, 8x the capacity.
    let records: Vec<_> = (0..400u32)
        .map(|i| common::stored(citizen(&format!("001087{i:06}"), "Vũ Thị Mai"), 1))
        .collect();
    gw.loader.load(&records).unwrap();
    let mut c = gw.agency("ministry").await;
    for r in &records {
        c.lookup(lookup_req(
            &r.id.to_string(),
            &["full_name"],
            "health-insurance",
        ))
        .await
        .unwrap();
    }
    let entries = gw.gateway.cache().entry_count();
    assert!(entries <= 50, "{entries} entries in a cache of 50");
    assert!(entries > 0);
}
