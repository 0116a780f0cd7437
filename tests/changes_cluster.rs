//! Change subscriptions on a 3-node cluster over a throwaway PostgreSQL (CONTRACT §5, §6):
//! a follow made on one node holds on all, a write on one node reaches a stream held on
//! another, and a client that reconnects to a third node with the same `after_seq` gets
//! exactly the rest.

mod common;

use std::time::Duration;

use common::{TestCluster, TestGateway, citizen};
use popgate::pb;
use tonic::{Code, Streaming};

const A: &str = "001087000001";
const B: &str = "001087000002";
const LEASE_MS: u64 = 600;

async fn put(node: &TestGateway, id: &str, name: &str, expected: u64) -> u64 {
    node.registry()
        .await
        .put_citizen(pb::PutCitizenRequest {
            citizen: Some(citizen(id, name)),
            expected_version: expected,
        })
        .await
        .expect("put")
        .into_inner()
        .version
}

fn follow_req(ids: &[&str]) -> pb::FollowRequest {
    pb::FollowRequest {
        citizen_ids: ids.iter().map(|s| s.to_string()).collect(),
        purpose: "health-insurance".into(),
        request_id: String::new(),
    }
}

async fn watch(node: &TestGateway, after_seq: u64) -> Streaming<pb::ChangeEvent> {
    node.agency("ministry")
        .await
        .watch_changes(pb::WatchChangesRequest {
            after_seq,
            read_mask: Some(prost_types::FieldMask {
                paths: vec!["full_name".into()],
            }),
            purpose: "health-insurance".into(),
            request_id: String::new(),
        })
        .await
        .expect("watch opens")
        .into_inner()
}

/// The next message; the timeout guards against a hang (the contract's bound is 1 s, this is
/// no measurement of it).
async fn next(s: &mut Streaming<pb::ChangeEvent>) -> pb::ChangeEvent {
    tokio::time::timeout(Duration::from_secs(30), s.message())
        .await
        .expect("a change event within 30 s")
        .expect("the stream is healthy")
        .expect("the stream goes on")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_on_one_node_reaches_a_stream_on_another_and_a_resume_elsewhere_gets_the_rest() {
    let c = TestCluster::start(3, LEASE_MS).await;
    let [n1, n2, n3] = [&c.nodes[0], &c.nodes[1], &c.nodes[2]];
    put(n1, A, "Nguyễn Văn An", 0).await; // seq 1
    put(n1, B, "Trần Thị Bình", 0).await; // seq 2
    // Followed on node 3; the follow list is the cluster's.
    let r = n3
        .agency("ministry")
        .await
        .follow(follow_req(&[A, "001087999999"]))
        .await
        .unwrap()
        .into_inner();
    assert_eq!((r.changed, r.following), (1, 1));
    assert_eq!(r.not_found, vec!["001087999999".to_string()]);
    // Already followed, asked on another node: no change; nor is ending a follow never begun.
    let again = n2
        .agency("ministry")
        .await
        .follow(follow_req(&[A, B]))
        .await
        .unwrap()
        .into_inner();
    assert_eq!((again.changed, again.following), (1, 2));
    let none = n1
        .agency("ministry")
        .await
        .unfollow(follow_req(&["001087000003"]))
        .await
        .unwrap()
        .into_inner();
    assert_eq!((none.changed, none.following), (0, 2));
    n1.agency("ministry")
        .await
        .unfollow(follow_req(&[B]))
        .await
        .unwrap();

    let mut s = watch(n2, 0).await;
    let p = next(&mut s).await;
    assert!(p.citizen.is_none());
    assert_eq!(p.seq, 2);
    // Written on node 1, seen on node 2's stream.
    put(n1, B, "Trần Thị Bích", 1).await; // seq 3, not followed
    put(n1, A, "Lê Văn Cường", 1).await; // seq 4
    let e = next(&mut s).await;
    assert_eq!(e.seq, 4);
    let got = e.citizen.unwrap();
    assert_eq!((got.citizen_id.as_str(), got.version), (A, 2));
    assert_eq!(got.full_name, "Lê Văn Cường");
    assert_eq!(e.changed_fields, vec!["full_name".to_string()]);
    assert!(e.audit_seq > 0);
    drop(s);

    // While nobody watches, more changes on either node.
    put(n2, A, "Lê Văn Dũng", 2).await; // seq 5
    put(n1, B, "Trần Thị Bảo", 2).await; // seq 6, not followed
    put(n1, A, "Lê Văn Em", 3).await; // seq 7
    // Reconnect to node 3 with the last seq seen: exactly the rest, then progress, then live.
    let mut s = watch(n3, 4).await;
    let e = next(&mut s).await;
    assert_eq!(
        (e.seq, e.citizen.unwrap().full_name.as_str()),
        (5, "Lê Văn Dũng")
    );
    let e = next(&mut s).await;
    assert_eq!(
        (e.seq, e.citizen.unwrap().full_name.as_str()),
        (7, "Lê Văn Em")
    );
    let p = next(&mut s).await;
    assert!(p.citizen.is_none() && p.seq == 7, "{p:?}");
    put(n2, A, "Lê Văn Giang", 4).await; // seq 8
    let e = next(&mut s).await;
    assert_eq!(
        (e.seq, e.citizen.unwrap().full_name.as_str()),
        (8, "Lê Văn Giang")
    );

    // Past the head on any node.
    let err = n1
        .agency("ministry")
        .await
        .watch_changes(pb::WatchChangesRequest {
            after_seq: 99,
            purpose: "health-insurance".into(),
            ..Default::default()
        })
        .await
        .expect_err("refused");
    assert_eq!(err.code(), Code::InvalidArgument);
    // Unfollowed on node 1: node 3's stream no longer carries the citizen's changes.
    n1.agency("ministry")
        .await
        .unfollow(follow_req(&[A]))
        .await
        .unwrap();
    put(n1, A, "Lê Văn Hải", 5).await; // seq 9, not carried
    put(n1, B, "Trần Thị Bông", 3).await; // seq 10, not carried
    // Resume from before the unfollow: seq 8 is still carried (followed when committed).
    let mut s = watch(n1, 7).await;
    assert_eq!(next(&mut s).await.seq, 8);
    let p = next(&mut s).await;
    assert!(p.citizen.is_none() && p.seq == 10, "{p:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changes_past_retention_are_dropped_from_the_database_and_a_resume_before_them_is_refused()
{
    let c = TestCluster::start_with(1, LEASE_MS, || common::Options {
        manual_clock: true,
        extra_toml: "\n[changes]\nretain_secs = 3600\n".into(),
        ..Default::default()
    })
    .await;
    let n = &c.nodes[0];
    let mut prunes = n.gateway.change_prunes();
    let mut ministry = n.agency("ministry").await;
    put(n, A, "Nguyễn Văn An", 0).await; // seq 1, at 0 s
    ministry.follow(follow_req(&[A])).await.unwrap();
    put(n, A, "Lê Văn Cường", 1).await; // seq 2, at 0 s
    ministry.unfollow(follow_req(&[A])).await.unwrap(); // followed (1, 2]
    put(n, B, "Trần Thị Bình", 0).await; // seq 3
    ministry.follow(follow_req(&[A, B])).await.unwrap();
    put(n, B, "Trần Thị Bảo", 1).await; // seq 4
    ministry.unfollow(follow_req(&[B])).await.unwrap(); // followed (3, 4]
    // The database stamps each change with its own clock, which the test cannot move: seqs 3
    // and 4 are made to look written at 3570 s by moving their stamps instead.
    c.pg.psql(
        "UPDATE changes SET committed_at = committed_at + interval '3570 seconds' WHERE seq >= 3",
    );
    let spans = "SELECT string_agg(citizen_id || ':' || since_seq || '-' || coalesce(until_seq::text, 'open'), ' ' ORDER BY citizen_id, since_seq) FROM follows";
    assert_eq!(
        c.pg.psql(spans),
        "1087000001:1-2 1087000001:3-open 1087000002:3-4"
    );
    // At 3570 s: all kept (119 retention passes have run, every 30 s).
    n.clock().advance(Duration::from_secs(3570));
    prunes.wait_for(|k| *k >= 119).await.unwrap();
    assert_eq!(c.pg.psql("SELECT count(*) FROM changes"), "4");
    let mut s = watch(n, 1).await;
    let e = next(&mut s).await;
    assert_eq!(
        (e.seq, e.citizen.map(|c| c.citizen_id)),
        (2, Some(A.to_string())),
        "a resume from 1 is served"
    );
    drop(s);
    // At 3630 s: seqs 1 and 2 are past retention and dropped; seq 3 is kept.
    n.clock().advance(Duration::from_secs(60));
    prunes.wait_for(|k| *k >= 121).await.unwrap();
    assert_eq!(c.pg.psql("SELECT min(seq) FROM changes"), "3");
    // The span that ended at 2 can carry nothing kept: gone; the others stay.
    assert_eq!(c.pg.psql(spans), "1087000001:3-open 1087000002:3-4");
    let err = match n
        .agency("ministry")
        .await
        .watch_changes(pb::WatchChangesRequest {
            after_seq: 1,
            read_mask: None,
            purpose: "health-insurance".into(),
            request_id: String::new(),
        })
        .await
    {
        Ok(mut s) => s.get_mut().message().await.expect_err("the stream fails"),
        Err(e) => e,
    };
    assert_eq!(err.code(), Code::FailedPrecondition);
    assert!(
        err.message().contains("oldest kept seq is 3"),
        "{}",
        err.message()
    );
    let mut s = watch(n, 2).await;
    let e = next(&mut s).await;
    assert_eq!(
        (e.seq, e.citizen.map(|c| c.citizen_id)),
        (4, Some(B.to_string())),
        "the kept change is carried by the span that stays"
    );
}
