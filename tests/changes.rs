//! Change subscriptions through gRPC on one node (CONTRACT §5): Follow and Unfollow, and
//! WatchChanges — which changes a stream carries, rights, exact resumption, progress,
//! retention and the audit records.

mod common;

use std::time::Duration;

use common::{Options, TestGateway, audit_records, citizen, put};
use popgate::pb;
use popgate::pb::identity_gateway_client::IdentityGatewayClient;
use tonic::transport::Channel;
use tonic::{Code, Streaming};

const A: &str = "001087000001";
const B: &str = "001087000002";
const C: &str = "001087000003";
/// Well formed, never written.
const MISSING: &str = "001087999999";

fn follow_req(ids: &[&str], purpose: &str) -> pb::FollowRequest {
    pb::FollowRequest {
        citizen_ids: ids.iter().map(|s| s.to_string()).collect(),
        purpose: purpose.into(),
        request_id: "follow-1".into(),
    }
}

fn watch_req(after_seq: u64, mask: &[&str], purpose: &str) -> pb::WatchChangesRequest {
    pb::WatchChangesRequest {
        after_seq,
        read_mask: (!mask.is_empty()).then(|| prost_types::FieldMask {
            paths: mask.iter().map(|s| s.to_string()).collect(),
        }),
        purpose: purpose.into(),
        request_id: "watch-1".into(),
    }
}

/// Replaces the record of `id` (at `version`) with one named `name`; returns the new version.
async fn rename(gw: &TestGateway, id: &str, name: &str, version: u64) -> u64 {
    gw.registry()
        .await
        .put_citizen(pb::PutCitizenRequest {
            citizen: Some(citizen(id, name)),
            expected_version: version,
        })
        .await
        .expect("put")
        .into_inner()
        .version
}

/// The next message of a change stream. The timeout guards against a hang; it is no timing
/// assertion (every message waited for here is due at once).
async fn next(s: &mut Streaming<pb::ChangeEvent>) -> pb::ChangeEvent {
    tokio::time::timeout(Duration::from_secs(30), s.message())
        .await
        .expect("a change event within 30 s")
        .expect("the stream is healthy")
        .expect("the stream goes on")
}

async fn watch(
    client: &mut IdentityGatewayClient<Channel>,
    req: pb::WatchChangesRequest,
) -> Streaming<pb::ChangeEvent> {
    client
        .watch_changes(req)
        .await
        .expect("watch opens")
        .into_inner()
}

async fn watch_err(
    client: &mut IdentityGatewayClient<Channel>,
    req: pb::WatchChangesRequest,
) -> tonic::Status {
    match client.watch_changes(req).await {
        Ok(mut s) => s.get_mut().message().await.expect_err("the stream fails"),
        Err(status) => status,
    }
}

fn is_progress(e: &pb::ChangeEvent) -> bool {
    e.citizen.is_none() && e.audit_seq == 0
}

#[tokio::test]
async fn follow_and_unfollow_apply_batches_count_once_and_audit_each_id() {
    let gw = TestGateway::start().await;
    for id in [A, B, C] {
        put(&gw, citizen(id, "Nguyễn Văn An")).await;
    }
    let mut ministry = gw.agency("ministry").await;
    let r = ministry
        .follow(follow_req(&[A, B, A, MISSING], "health-insurance"))
        .await
        .expect("follow")
        .into_inner();
    assert_eq!((r.changed, r.following), (2, 2));
    assert_eq!(r.not_found, vec![MISSING.to_string()]);
    // Already followed: no change, one record for the call.
    let again = ministry
        .follow(follow_req(&[B], "health-insurance"))
        .await
        .unwrap()
        .into_inner();
    assert_eq!((again.changed, again.following), (0, 2));
    assert!(again.audit_seq > r.audit_seq);
    // Unfollow of one followed id and one never followed: one change, nothing not found.
    let un = ministry
        .unfollow(follow_req(&[A, C], "health-insurance"))
        .await
        .unwrap()
        .into_inner();
    assert_eq!((un.changed, un.following), (1, 1));
    assert!(un.not_found.is_empty());

    // A malformed id refuses the whole batch, naming it.
    let err = ministry
        .follow(follow_req(&[C, "00108700000x"], "health-insurance"))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert!(
        err.message().contains("citizen_ids[1]"),
        "{}",
        err.message()
    );
    assert!(err.message().contains("00108700000x"), "{}", err.message());
    let after = ministry
        .follow(follow_req(&[B], "health-insurance"))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        after.following, 1,
        "nothing of the refused batch was applied"
    );
    // None, or more than 10,000.
    let err = ministry
        .follow(follow_req(&[], "health-insurance"))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    // A full batch fits the default message size; one more id is refused.
    let full: Vec<String> = (0..10_000)
        .map(|i| format!("001087{:06}", 100_000 + i))
        .collect();
    let r_full = ministry
        .follow(pb::FollowRequest {
            citizen_ids: full,
            purpose: "health-insurance".into(),
            request_id: String::new(),
        })
        .await
        .expect("a full batch")
        .into_inner();
    assert_eq!((r_full.changed, r_full.not_found.len()), (0, 10_000));
    let many: Vec<String> = (0..10_001).map(|i| format!("001087{i:06}")).collect();
    let err = ministry
        .follow(pb::FollowRequest {
            citizen_ids: many,
            purpose: "health-insurance".into(),
            request_id: String::new(),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert!(err.message().contains("10000"), "{}", err.message());
    // Purposes, rights and roles.
    let err = ministry
        .follow(follow_req(&[A], "marketing"))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied);
    let err = gw
        .agency("norights")
        .await
        .follow(follow_req(&[A], "administrative-procedure"))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied);
    let err = IdentityGatewayClient::new(gw.channel("registry").await)
        .follow(follow_req(&[A], ""))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied);

    // One record per id changed, the answer's audit_seq the call's last record.
    let records = audit_records(&gw.audit_dir());
    let first: Vec<_> = records
        .iter()
        .filter(|rec| {
            rec["method"] == "Follow"
                && rec["outcome"] == "ok"
                && rec["seq"].as_u64().unwrap() <= r.audit_seq
        })
        .map(|rec| rec["citizen_id"].as_str().unwrap_or("").to_owned())
        .collect();
    assert_eq!(first, vec![A.to_string(), B.to_string()]);
    let last = records
        .iter()
        .find(|rec| rec["seq"].as_u64() == Some(r.audit_seq))
        .unwrap();
    assert_eq!(last["citizen_id"], B);
    assert_eq!(last["request_id"], "follow-1");
    let none_changed = records
        .iter()
        .find(|rec| rec["seq"].as_u64() == Some(again.audit_seq))
        .unwrap();
    assert_eq!(none_changed["method"], "Follow");
    assert!(none_changed.get("citizen_id").is_none(), "{none_changed}");
    let unfollowed = records
        .iter()
        .find(|rec| rec["seq"].as_u64() == Some(un.audit_seq))
        .unwrap();
    assert_eq!(
        (&unfollowed["method"], &unfollowed["citizen_id"]),
        (&serde_json::json!("Unfollow"), &serde_json::json!(A))
    );
    assert!(
        records
            .iter()
            .any(|r| r["method"] == "Follow" && r["outcome"] == "invalid"),
        "the refused batch is audited"
    );
}

/// Makes every audit file the gateway could open next a link to /dev/full (a real ENOSPC),
/// from the one after `last_seq` on; returns the links.
fn fill_next_files(gw: &TestGateway, last_seq: u64) -> Vec<std::path::PathBuf> {
    let links: Vec<_> = (last_seq + 1..last_seq + 400)
        .map(|seq| gw.audit_dir().join(popgate::audit::scan::file_name(seq)))
        .filter(|p| !p.exists())
        .collect();
    for p in &links {
        std::os::unix::fs::symlink("/dev/full", p).unwrap();
    }
    links
}

async fn heal(gw: &TestGateway, links: Vec<std::path::PathBuf>) {
    for p in &links {
        std::fs::remove_file(p).unwrap();
    }
    gw.clock().advance(popgate::audit::writer::PROBE_EVERY);
    gw.health_becomes(tonic_health::pb::health_check_response::ServingStatus::Serving)
        .await;
}

#[tokio::test]
async fn a_follow_whose_records_cannot_be_written_changes_nothing() {
    // Small files: a batch's records roll the log into a new file, which is made a real ENOSPC
    // while the citizens and the first records are already written.
    let gw = TestGateway::start_with(Options {
        manual_clock: true,
        audit_toml: "durability = \"sync\"\nroll_bytes = 4096\n".into(),
        ..Default::default()
    })
    .await;
    let ids: Vec<String> = (0..40).map(|i| format!("001087{:06}", 500 + i)).collect();
    let ids: Vec<&str> = ids.iter().map(String::as_str).collect();
    for id in &ids {
        put(&gw, citizen(id, "Nguyễn Văn An")).await;
    }
    let mut ministry = gw.agency("ministry").await;
    let first = ministry
        .follow(follow_req(&[A], "health-insurance"))
        .await
        .expect("a follow of an id not in the store")
        .into_inner();
    assert_eq!((first.changed, first.not_found.len()), (0, 1));

    // 40 records are more than one file holds: the log fails in the middle of the batch.
    let links = fill_next_files(&gw, first.audit_seq);
    let err = ministry
        .follow(follow_req(&ids, "health-insurance"))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Unavailable, "{err:?}");
    heal(&gw, links).await;
    let r = ministry
        .follow(follow_req(&ids, "health-insurance"))
        .await
        .expect("follow after recovery")
        .into_inner();
    assert_eq!(
        (r.changed, r.following),
        (40, 40),
        "the refused Follow changed nothing"
    );

    let links = fill_next_files(&gw, r.audit_seq);
    let err = ministry
        .unfollow(follow_req(&ids, "health-insurance"))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Unavailable, "{err:?}");
    heal(&gw, links).await;
    let un = ministry
        .unfollow(follow_req(&ids, "health-insurance"))
        .await
        .expect("unfollow after recovery")
        .into_inner();
    assert_eq!(
        (un.changed, un.following),
        (40, 0),
        "the refused Unfollow changed nothing"
    );

    // Each change that was made has its record, before the answer that reported it.
    let records = audit_records(&gw.audit_dir());
    for (method, answer) in [("Follow", &r), ("Unfollow", &un)] {
        let mut audited: Vec<_> = records
            .iter()
            .filter(|rec| {
                let seq = rec["seq"].as_u64().unwrap();
                rec["method"] == method
                    && rec["outcome"] == "ok"
                    && seq > answer.audit_seq - 40
                    && seq <= answer.audit_seq
            })
            .map(|rec| rec["citizen_id"].as_str().unwrap_or("").to_owned())
            .collect();
        audited.sort();
        assert_eq!(audited, ids, "{method}");
    }
}

#[tokio::test]
async fn a_stream_carries_followed_changes_with_the_values_asked_for_audited_first() {
    let gw = TestGateway::start().await;
    for id in [A, B] {
        put(&gw, citizen(id, "Nguyễn Văn An")).await; // seqs 1, 2
    }
    let mut ministry = gw.agency("ministry").await;
    ministry
        .follow(follow_req(&[A], "health-insurance"))
        .await
        .unwrap();
    let mut s = watch(
        &mut ministry,
        watch_req(0, &["full_name", "sex"], "health-insurance"),
    )
    .await;
    let p = next(&mut s).await;
    assert!(is_progress(&p), "{p:?}");
    assert_eq!(p.seq, 2, "at once, at the head");
    // Not followed: not carried. Followed: carried, as the change left it.
    rename(&gw, B, "Trần Thị Bình", 1).await; // seq 3
    let v = rename(&gw, A, "Lê Văn Cường", 1).await; // seq 4
    let e = next(&mut s).await;
    assert_eq!(e.seq, 4);
    let c = e.citizen.clone().unwrap();
    assert_eq!((c.citizen_id.as_str(), c.version), (A, v));
    assert_eq!(c.full_name, "Lê Văn Cường");
    assert_eq!(c.sex, pb::Sex::Male as i32);
    assert!(c.permanent_address.is_empty() && c.date_of_birth.is_empty());
    assert!(c.updated_at.is_some());
    assert_eq!(e.changed_fields, vec!["full_name".to_string()]);
    // Audited before it was sent: the record is there, with the values released.
    let records = audit_records(&gw.audit_dir());
    let rec = records
        .iter()
        .find(|r| r["seq"].as_u64() == Some(e.audit_seq))
        .expect("the event's audit record");
    assert_eq!(rec["method"], "WatchChanges");
    assert_eq!(rec["client"], "ministry");
    assert_eq!(rec["citizen_id"], A);
    assert_eq!(rec["fields"], serde_json::json!(["full_name", "sex"]));
    assert_eq!(rec["purpose"], "health-insurance");
    assert_eq!(rec["request_id"], "watch-1");
    // A change that touches no field the caller may read or verify is not carried.
    let mut other = citizen(A, "Lê Văn Cường");
    other.religion = "Phật giáo".into();
    gw.registry()
        .await
        .put_citizen(pb::PutCitizenRequest {
            citizen: Some(other),
            expected_version: v,
        })
        .await
        .unwrap(); // seq 5: religion only
    rename(&gw, A, "Lê Văn Dũng", v + 1).await; // seq 6
    let e = next(&mut s).await;
    assert_eq!(e.seq, 6, "seq 5 touched only religion");
    assert_eq!(e.citizen.unwrap().full_name, "Lê Văn Dũng");
}

#[tokio::test]
async fn rights_apply_to_every_event_and_to_the_request() {
    let gw = TestGateway::start().await;
    put(&gw, citizen(A, "Nguyễn Văn An")).await;
    let mut telecom = gw.agency("telecom").await;
    telecom
        .follow(follow_req(&[A], "subscriber-verification"))
        .await
        .unwrap();
    // Values outside the read rights, unknown paths, the wrong purpose, no rights at all.
    let err = watch_err(
        &mut telecom,
        watch_req(0, &["full_name"], "subscriber-verification"),
    )
    .await;
    assert_eq!(err.code(), Code::PermissionDenied);
    assert!(err.message().contains("full_name"), "{}", err.message());
    let err = watch_err(
        &mut telecom,
        watch_req(0, &["shoe_size"], "subscriber-verification"),
    )
    .await;
    assert_eq!(err.code(), Code::InvalidArgument);
    assert!(err.message().contains("shoe_size"), "{}", err.message());
    let err = watch_err(&mut telecom, watch_req(0, &[], "marketing")).await;
    assert_eq!(err.code(), Code::PermissionDenied);
    let err = watch_err(
        &mut gw.agency("norights").await,
        watch_req(0, &[], "administrative-procedure"),
    )
    .await;
    assert_eq!(err.code(), Code::PermissionDenied);

    // A verify-only caller hears which of its fields changed and the new version, no values.
    let mut s = watch(&mut telecom, watch_req(0, &[], "subscriber-verification")).await;
    assert!(is_progress(&next(&mut s).await));
    let mut changed = citizen(A, "Nguyễn Văn Ân");
    changed.permanent_address = "Số 1, Phường Bến Nghé, Quận 1, TP Hồ Chí Minh".into();
    gw.registry()
        .await
        .put_citizen(pb::PutCitizenRequest {
            citizen: Some(changed),
            expected_version: 1,
        })
        .await
        .unwrap();
    let e = next(&mut s).await;
    let c = e.citizen.unwrap();
    assert_eq!((c.citizen_id.as_str(), c.version), (A, 2));
    assert!(c.full_name.is_empty() && c.permanent_address.is_empty());
    // permanent_address changed too, but the telecom may neither read nor verify it.
    assert_eq!(e.changed_fields, vec!["full_name".to_string()]);
    let records = audit_records(&gw.audit_dir());
    let rec = records
        .iter()
        .find(|r| r["seq"].as_u64() == Some(e.audit_seq))
        .unwrap();
    assert_eq!(rec["fields"], serde_json::json!([]), "no values released");
}

#[tokio::test]
async fn a_resumed_stream_misses_nothing_and_repeats_nothing_by_the_follow_at_commit_rule() {
    let gw = TestGateway::start().await;
    for id in [A, B] {
        put(&gw, citizen(id, "Nguyễn Văn An")).await; // seqs 1, 2
    }
    let mut ministry = gw.agency("ministry").await;
    rename(&gw, A, "Before Follow", 1).await; // seq 3: before the follow, never carried
    ministry
        .follow(follow_req(&[A, B], "health-insurance"))
        .await
        .unwrap();
    rename(&gw, A, "Followed One", 2).await; // seq 4
    rename(&gw, B, "Followed Two", 1).await; // seq 5
    ministry
        .unfollow(follow_req(&[B], "health-insurance"))
        .await
        .unwrap();
    rename(&gw, B, "After Unfollow", 2).await; // seq 6: B no longer followed
    rename(&gw, A, "Followed Three", 3).await; // seq 7

    // From the start of the log: exactly what was followed when it committed.
    let mut s = watch(
        &mut ministry,
        watch_req(1, &["full_name"], "health-insurance"),
    )
    .await;
    let mut seen = Vec::new();
    loop {
        let e = next(&mut s).await;
        if is_progress(&e) {
            assert_eq!(e.seq, 7, "caught up to the head");
            break;
        }
        seen.push((e.seq, e.citizen.unwrap().full_name));
    }
    assert_eq!(
        seen,
        vec![
            (4, "Followed One".to_string()),
            (5, "Followed Two".to_string()),
            (7, "Followed Three".to_string())
        ]
    );
    drop(s);
    // Resumed from the middle: the rest, once each, then live.
    let mut s = watch(
        &mut ministry,
        watch_req(4, &["full_name"], "health-insurance"),
    )
    .await;
    assert_eq!(next(&mut s).await.seq, 5);
    assert_eq!(next(&mut s).await.seq, 7);
    let p = next(&mut s).await;
    assert!(is_progress(&p) && p.seq == 7, "{p:?}");
    rename(&gw, A, "Live", 4).await; // seq 8
    let e = next(&mut s).await;
    assert_eq!((e.seq, e.citizen.unwrap().full_name.as_str()), (8, "Live"));
    // Past the head.
    let err = watch_err(&mut ministry, watch_req(9, &[], "health-insurance")).await;
    assert_eq!(err.code(), Code::InvalidArgument);
    assert!(err.message().contains("after_seq 9"), "{}", err.message());
}

#[tokio::test]
async fn a_slow_reader_far_behind_the_feed_gets_every_change_from_the_log() {
    let gw = TestGateway::start().await;
    put(&gw, citizen(A, "Nguyễn Văn An")).await; // seq 1
    let mut ministry = gw.agency("ministry").await;
    ministry
        .follow(follow_req(&[A], "health-insurance"))
        .await
        .unwrap();
    let mut s = watch(
        &mut ministry,
        watch_req(0, &["full_name"], "health-insurance"),
    )
    .await;
    assert!(is_progress(&next(&mut s).await));
    // Not reading while many more changes are written than the stream buffers.
    let n = 120;
    for v in 1..=n {
        rename(&gw, A, &format!("Tên {v}"), v).await;
    }
    for v in 1..=n {
        let e = next(&mut s).await;
        assert_eq!(e.seq, v + 1);
        assert_eq!(e.citizen.unwrap().full_name, format!("Tên {v}"));
    }
}

/// A stream held back by its caller's rate falls more than the feed's buffer (4,096 changes)
/// behind while others write; it then catches up from the log and misses nothing, in order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_that_falls_off_the_feed_catches_up_from_the_log_in_order() {
    let clients = common::CLIENTS.replace(
        "purposes = [\"electricity-contract\"]\nrate_per_sec = 100000\nburst = 100000",
        "purposes = [\"electricity-contract\"]\nrate_per_sec = 1\nburst = 3",
    );
    let gw = TestGateway::start_with(Options {
        manual_clock: true,
        clients_toml: clients,
        audit_toml: "durability = \"batch\"\nflush_ms = 5\n".into(),
        ..Default::default()
    })
    .await;
    put(&gw, citizen(A, "Nguyễn Văn An")).await;
    let others: Vec<String> = (10..18).map(|k| format!("0010870000{k}")).collect();
    for id in &others {
        put(&gw, citizen(id, "Trần Thị Bình")).await;
    }
    let mut utility = gw.agency("utility").await;
    // Follow and the stream's opening take two of its three tokens.
    utility
        .follow(follow_req(&[A], "electricity-contract"))
        .await
        .unwrap();
    let mut s = watch(
        &mut utility,
        watch_req(0, &["full_name"], "electricity-contract"),
    )
    .await;
    assert!(is_progress(&next(&mut s).await));
    let registry = gw.registry().await;
    // Three changes to A: the first takes the last token, the second waits for the clock in
    // the stream's task, the third waits in the feed…
    let mut v = 1;
    for i in 1..=3 {
        v = put_as(&registry, A, &format!("Tên {i}"), v).await;
    }
    let first = next(&mut s).await;
    assert_eq!(first.citizen.unwrap().full_name, "Tên 1");
    // …where more changes than it holds then go by (to citizens the stream does not carry),
    // from 8 writers at once, pushing the third change out of the feed…
    let writers: Vec<_> = others
        .iter()
        .map(|id| {
            let (registry, id) = (registry.clone(), id.clone());
            tokio::spawn(async move {
                let mut v = 1;
                for i in 0..530 {
                    v = put_as(&registry, &id, &format!("Trần Thị {i}"), v).await;
                }
            })
        })
        .collect();
    for w in writers {
        w.await.unwrap();
    }
    // …and A changes again after them.
    put_as(&registry, A, "Tên 4", v).await;
    // One event a second of the clock, each in order, none missed.
    let mut last_seq = first.seq;
    for i in 2..=4 {
        gw.clock().advance(Duration::from_secs(1));
        let e = next(&mut s).await;
        assert!(e.seq > last_seq, "out of order: {} after {last_seq}", e.seq);
        last_seq = e.seq;
        let c = e
            .citizen
            .expect("a change, not progress, while changes are due");
        assert_eq!(c.full_name, format!("Tên {i}"));
    }
}

async fn put_as(
    registry: &popgate::pb::registry_admin_client::RegistryAdminClient<Channel>,
    id: &str,
    name: &str,
    version: u64,
) -> u64 {
    registry
        .clone()
        .put_citizen(pb::PutCitizenRequest {
            citizen: Some(citizen(id, name)),
            expected_version: version,
        })
        .await
        .expect("put")
        .into_inner()
        .version
}

#[tokio::test]
async fn progress_comes_at_once_then_every_ten_seconds_of_silence() {
    let gw = TestGateway::start_with(Options {
        manual_clock: true,
        ..Default::default()
    })
    .await;
    put(&gw, citizen(A, "Nguyễn Văn An")).await;
    put(&gw, citizen(B, "Nguyễn Văn An")).await;
    let mut ministry = gw.agency("ministry").await;
    ministry
        .follow(follow_req(&[A], "health-insurance"))
        .await
        .unwrap();
    let mut s = watch(&mut ministry, watch_req(0, &[], "health-insurance")).await;
    assert_eq!(next(&mut s).await.seq, 2);
    // A change the stream does not carry moves its position without a message.
    rename(&gw, B, "Trần Thị Bình", 1).await; // seq 3
    gw.clock().advance(Duration::from_secs(9));
    rename(&gw, A, "Lê Văn Cường", 1).await; // seq 4, sent: silence starts again
    let e = next(&mut s).await;
    assert_eq!(e.seq, 4);
    gw.clock().advance(Duration::from_secs(10));
    let p = next(&mut s).await;
    assert!(is_progress(&p), "{p:?}");
    assert_eq!(p.seq, 4);
    rename(&gw, B, "Trần Thị Bích", 2).await; // seq 5, not carried
    gw.clock().advance(Duration::from_secs(10));
    let p = next(&mut s).await;
    assert!(is_progress(&p) && p.seq == 5, "{p:?}");
}

#[tokio::test]
async fn changes_older_than_retention_are_dropped_and_a_resume_before_them_is_refused() {
    let gw = TestGateway::start_with(Options {
        manual_clock: true,
        extra_toml: "\n[changes]\nretain_secs = 3600\n".into(),
        ..Default::default()
    })
    .await;
    let mut prunes = gw.gateway.change_prunes();
    put(&gw, citizen(A, "Nguyễn Văn An")).await; // seq 1, at 0 s
    rename(&gw, A, "Lê Văn Cường", 1).await; // seq 2, at 0 s
    let mut ministry = gw.agency("ministry").await;
    // At 3570 s: still kept (119 retention passes have run, every 30 s).
    gw.clock().advance(Duration::from_secs(3570));
    prunes.wait_for(|n| *n >= 119).await.unwrap();
    let mut s = watch(&mut ministry, watch_req(1, &[], "health-insurance")).await;
    assert!(is_progress(&next(&mut s).await));
    drop(s);
    put(&gw, citizen(B, "Trần Thị Bình")).await; // seq 3, at 3570 s
    // At 3630 s: seqs 1 and 2 are past retention (3600 s) and dropped; seq 3 is kept.
    gw.clock().advance(Duration::from_secs(60));
    prunes.wait_for(|n| *n >= 121).await.unwrap();
    let err = watch_err(&mut ministry, watch_req(1, &[], "health-insurance")).await;
    assert_eq!(err.code(), Code::FailedPrecondition);
    assert!(
        err.message().contains("oldest kept seq is 3"),
        "{}",
        err.message()
    );
    let mut s = watch(&mut ministry, watch_req(2, &[], "health-insurance")).await;
    let p = next(&mut s).await;
    assert!(is_progress(&p) && p.seq == 3, "{p:?}");
}

#[tokio::test]
async fn a_fast_log_is_paced_by_the_callers_rate_never_dropped() {
    let clients = common::CLIENTS.replace(
        "purposes = [\"electricity-contract\"]\nrate_per_sec = 100000\nburst = 100000",
        "purposes = [\"electricity-contract\"]\nrate_per_sec = 1\nburst = 3",
    );
    let gw = TestGateway::start_with(Options {
        manual_clock: true,
        clients_toml: clients,
        ..Default::default()
    })
    .await;
    put(&gw, citizen(A, "Nguyễn Văn An")).await; // seq 1
    for v in 1..=4 {
        rename(&gw, A, &format!("Tên {v}"), v).await; // seqs 2..=5
    }
    let mut utility = gw.agency("utility").await;
    // Follow and the stream's opening take two of its three tokens.
    utility
        .follow(follow_req(&[A], "electricity-contract"))
        .await
        .unwrap();
    // Followed after the changes: replaying them carries none, so make new ones.
    for v in 5..=8 {
        rename(&gw, A, &format!("Tên {v}"), v).await; // seqs 6..=9
    }
    let mut s = watch(
        &mut utility,
        watch_req(5, &["full_name"], "electricity-contract"),
    )
    .await;
    // One token left: one event now; each further one waits for a second of the clock.
    assert_eq!(next(&mut s).await.seq, 6);
    for seq in 7..=9 {
        gw.clock().advance(Duration::from_secs(1));
        assert_eq!(next(&mut s).await.seq, seq);
    }
    let p = next(&mut s).await;
    assert!(is_progress(&p) && p.seq == 9, "{p:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn popgate_follow_then_popgate_watch_prints_one_json_line_per_event() {
    use std::io::BufRead;
    let gw = TestGateway::start().await;
    put(&gw, citizen(A, "Nguyễn Văn An")).await; // seq 1
    let pair = gw.cert("ministry");
    std::fs::write(gw.path("ministry.pem"), &pair.cert_pem).unwrap();
    std::fs::write(gw.path("ministry.key"), &pair.key_pem).unwrap();
    // `popgate follow` first: A is followed, the missing id is named.
    let followed = std::process::Command::new(env!("CARGO_BIN_EXE_popgate"))
        .args(["follow", A, MISSING])
        .args(["--addr", &gw.addr.to_string()])
        .arg("--ca")
        .arg(gw.path("ca.pem"))
        .arg("--cert")
        .arg(gw.path("ministry.pem"))
        .arg("--key")
        .arg(gw.path("ministry.key"))
        .args(["--purpose", "health-insurance"])
        .output()
        .expect("popgate follow");
    assert!(followed.status.success(), "{followed:?}");
    let said: serde_json::Value = serde_json::from_slice(&followed.stdout).expect("JSON");
    assert_eq!(said["changed"], 1, "{said}");
    assert_eq!(said["following"], 1, "{said}");
    assert_eq!(said["not_found"], serde_json::json!([MISSING]), "{said}");
    let mut child = common::Reaped(
        std::process::Command::new(env!("CARGO_BIN_EXE_popgate"))
            .arg("watch")
            .args(["--addr", &gw.addr.to_string()])
            .arg("--ca")
            .arg(gw.path("ca.pem"))
            .arg("--cert")
            .arg(gw.path("ministry.pem"))
            .arg("--key")
            .arg(gw.path("ministry.key"))
            .args(["--purpose", "health-insurance", "--fields", "full_name"])
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("popgate watch"),
    );
    let stdout = child.0.stdout.take().unwrap();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
        {
            if tx.send(line).is_err() {
                return;
            }
        }
    });
    let mut line = async || -> serde_json::Value {
        let l = tokio::time::timeout(Duration::from_secs(30), rx.recv())
            .await
            .expect("a line within 30 s")
            .expect("popgate watch is running");
        serde_json::from_str(&l).expect("a JSON line")
    };
    assert_eq!(
        line().await,
        serde_json::json!({"seq": 1, "progress": true})
    );
    rename(&gw, A, "Lê Văn Cường", 1).await; // seq 2
    let e = line().await;
    assert_eq!(e["seq"], 2);
    assert_eq!(e["citizen"]["full_name"], "Lê Văn Cường");
    assert_eq!(e["changed_fields"], serde_json::json!(["full_name"]));
    assert!(e["audit_seq"].as_u64().unwrap() > 0);
}
