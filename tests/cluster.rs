//! Several gateway nodes over one PostgreSQL (CONTRACT §6), through gRPC: any node answers,
//! writes are decided by the database, no node answers from a stale cache once a write has
//! returned — also when a node's connections are cut — and nodes fail closed and recover when
//! the database goes away and comes back. The database is a real, throwaway PostgreSQL 15.

mod common;

use common::{TestCluster, citizen, lookup_req};
use popgate::pb;
use tonic::Code;
use tonic_health::pb::health_check_response::ServingStatus;

const ID: &str = "001087000001";
const LEASE_MS: u64 = 600;

async fn write(
    node: &common::TestGateway,
    name: &str,
    expected: u64,
) -> Result<pb::PutCitizenResponse, tonic::Status> {
    node.registry()
        .await
        .put_citizen(pb::PutCitizenRequest {
            citizen: Some(citizen(ID, name)),
            expected_version: expected,
        })
        .await
        .map(|r| r.into_inner())
}

async fn read(node: &common::TestGateway) -> Result<pb::LookupResponse, tonic::Status> {
    node.agency("ministry")
        .await
        .lookup(lookup_req(ID, &["full_name"], "health-insurance"))
        .await
        .map(|r| r.into_inner())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_on_one_node_is_what_every_node_answers_at_once() {
    let c = TestCluster::start(3, LEASE_MS).await;
    let [a, b, d] = [&c.nodes[0], &c.nodes[1], &c.nodes[2]];
    assert_eq!(write(a, "Nguyễn Văn An", 0).await.unwrap().version, 1);
    for round in 1..=10u64 {
        // Every node reads twice: the second answer comes from its cache.
        for node in [b, d, a] {
            let first = read(node).await.unwrap();
            assert_eq!(first.citizen.unwrap().version, round);
            assert!(
                read(node).await.unwrap().reused,
                "round {round}: not cached"
            );
        }
        // A write on one node (each in turn)…
        let writer = &c.nodes[round as usize % 3];
        let name = format!("Nguyễn Văn An {round}");
        let v = write(writer, &name, round).await.unwrap().version;
        assert_eq!(v, round + 1);
        // …and no node, reading after it returned, answers the older version.
        for node in [a, b, d] {
            let got = read(node).await.unwrap().citizen.unwrap();
            assert_eq!(
                (got.version, got.full_name),
                (v, name.clone()),
                "round {round}"
            );
        }
    }
    // Any node answers GetStats, and says which it is; the count is the database's.
    let stats = b
        .operator()
        .await
        .get_stats(pb::GetStatsRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(stats.node_id, "gw-2");
    assert_eq!(stats.records, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_racing_on_one_version_give_one_success_and_one_aborted() {
    let c = TestCluster::start(2, LEASE_MS).await;
    let (a, b) = (&c.nodes[0], &c.nodes[1]);
    write(a, "Nguyễn Văn An", 0).await.unwrap();
    for round in 1..=20u64 {
        let (na, nb) = (format!("A {round}"), format!("B {round}"));
        let (ra, rb) = tokio::join!(write(a, &na, round), write(b, &nb, round));
        let won: Vec<_> = [&ra, &rb].into_iter().filter(|r| r.is_ok()).collect();
        assert_eq!(won.len(), 1, "round {round}: {ra:?} {rb:?}");
        let lost = [ra, rb].into_iter().find_map(Result::err).unwrap();
        assert_eq!(lost.code(), Code::Aborted, "round {round}: {lost:?}");
    }
    // Creates race too.
    let (mut ra, mut rb) = (a.registry().await, b.registry().await);
    let (ra, rb) = tokio::join!(
        ra.put_citizen(pb::PutCitizenRequest {
            citizen: Some(citizen("001087000002", "A")),
            expected_version: 0,
        }),
        rb.put_citizen(pb::PutCitizenRequest {
            citizen: Some(citizen("001087000002", "B")),
            expected_version: 0,
        })
    );
    assert_eq!([&ra, &rb].iter().filter(|r| r.is_ok()).count(), 1);
    let lost = [ra, rb].into_iter().find_map(Result::err).unwrap();
    assert_eq!(lost.code(), Code::AlreadyExists);
    // Each node's audit log says "ok" for exactly the writes it won.
    let ok: usize = c
        .nodes
        .iter()
        .map(|n| {
            common::audit_records(&n.audit_dir())
                .iter()
                .filter(|r| r["method"] == "PutCitizen" && r["outcome"] == "ok")
                .count()
        })
        .sum();
    assert_eq!(ok, 1 + 20 + 1);
    assert_eq!(c.pg.psql("SELECT change_seq FROM counters"), "22");
    assert_eq!(c.pg.psql("SELECT count(*) FROM changes"), "22");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_whose_connections_are_cut_never_answers_stale_and_recovers() {
    let c = TestCluster::start(2, LEASE_MS).await;
    let (a, b) = (&c.nodes[0], &c.nodes[1]);
    write(a, "Nguyễn Văn An", 0).await.unwrap();
    for round in 1..=5u64 {
        // B holds the record in its cache.
        assert_eq!(read(b).await.unwrap().citizen.unwrap().version, round);
        assert!(read(b).await.unwrap().reused);
        // Its connections are cut, and A writes at the same moment.
        let cut = c.pg.terminate_node("gw-2");
        assert!(cut > 0, "round {round}: gw-2 had no connections");
        let v = write(a, &format!("Nguyễn Văn An {round}"), round)
            .await
            .unwrap()
            .version;
        // Whatever B answers now is the new version or nothing at all.
        match read(b).await {
            Ok(r) => assert_eq!(r.citizen.unwrap().version, v, "round {round}: stale"),
            Err(e) => assert_eq!(e.code(), Code::Unavailable, "round {round}: {e:?}"),
        }
        // B comes back by itself, and serves the new version.
        b.lease_held(true).await;
        b.health_becomes(ServingStatus::Serving).await;
        assert_eq!(read(b).await.unwrap().citizen.unwrap().version, v);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_waits_for_a_node_that_cannot_hear_it_until_that_node_stops_serving_its_cache() {
    let c = TestCluster::start(2, LEASE_MS).await;
    let (a, b) = (&c.nodes[0], &c.nodes[1]);
    write(a, "Nguyễn Văn An", 0).await.unwrap();
    let mut reader = b.agency("ministry").await;
    for round in 1..=3u64 {
        b.lease_held(true).await;
        let lookup = lookup_req(ID, &["full_name"], "health-insurance");
        assert_eq!(
            reader
                .lookup(lookup.clone())
                .await
                .unwrap()
                .into_inner()
                .citizen
                .unwrap()
                .version,
            round
        );
        assert!(
            reader
                .lookup(lookup.clone())
                .await
                .unwrap()
                .into_inner()
                .reused
        );
        // B's notification connection hangs: B cannot hear A's write, nor say it has.
        let pid = c.pg.listener_pid("gw-2");
        c.pg.signal(pid, "STOP");
        let v = write(a, &format!("Nguyễn Văn An {round}"), round)
            .await
            .unwrap()
            .version;
        // A's write returned: B must not answer from what it cached before.
        let got = reader.lookup(lookup.clone()).await;
        c.pg.signal(pid, "CONT");
        match got {
            Ok(r) => {
                let r = r.into_inner();
                assert_eq!(
                    r.citizen.unwrap().version,
                    v,
                    "round {round}: a stale answer"
                );
                assert!(!r.reused);
            }
            Err(e) => assert_eq!(e.code(), Code::Unavailable, "round {round}: {e:?}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_fail_closed_while_the_database_is_down_and_recover_when_it_is_back() {
    let c = TestCluster::start(2, LEASE_MS).await;
    let (a, b) = (&c.nodes[0], &c.nodes[1]);
    write(a, "Nguyễn Văn An", 0).await.unwrap();
    assert!(!read(b).await.unwrap().reused);
    c.pg.stop_server("immediate");
    for node in [a, b] {
        node.lease_held(false).await;
        node.health_becomes(ServingStatus::NotServing).await;
        // Nothing from the cache once the lease is gone: the database must answer.
        let e = read(node).await.unwrap_err();
        assert_eq!(e.code(), Code::Unavailable, "{e:?}");
        let e = write(node, "X", 1).await.unwrap_err();
        assert_eq!(e.code(), Code::Unavailable, "{e:?}");
    }
    c.pg.start_server();
    for node in [a, b] {
        node.lease_held(true).await;
        node.health_becomes(ServingStatus::Serving).await;
    }
    assert_eq!(write(b, "Nguyễn Văn Bình", 1).await.unwrap().version, 2);
    for node in [a, b] {
        assert_eq!(
            read(node).await.unwrap().citizen.unwrap().full_name,
            "Nguyễn Văn Bình"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_the_audit_log_in_the_database_every_answer_has_its_committed_record() {
    let c = TestCluster::start_with(2, LEASE_MS, || common::Options {
        audit_toml: "backend = \"postgres\"\ndurability = \"sync\"\ncheckpoint_every = 5\n".into(),
        ..Default::default()
    })
    .await;
    let (a, b) = (&c.nodes[0], &c.nodes[1]);
    let created = write(a, "Nguyễn Văn An", 0).await.unwrap();
    let mut seqs = vec![("gw-1", created.audit_seq)];
    for i in 0..12 {
        let node = [a, b][i % 2];
        let r = read(node).await.unwrap();
        seqs.push((["gw-1", "gw-2"][i % 2], r.audit_seq));
    }
    // Each answer's audit_seq names a committed row of its node's chain.
    for (node, seq) in &seqs {
        let rec = c.pg.psql(&format!(
            "SELECT record FROM audit_log WHERE node = '{node}' AND seq = {seq}"
        ));
        let v: serde_json::Value = serde_json::from_str(&rec).unwrap();
        assert_eq!(v["seq"], *seq);
        assert_eq!(v["node"], *node);
        assert_eq!(v["outcome"], "ok");
    }
    // Each node's chain runs 1, 2, 3 … on its own, and a checkpoint every 5 records.
    for node in ["gw-1", "gw-2"] {
        let n: u64 =
            c.pg.psql(&format!(
                "SELECT count(*) FROM audit_log WHERE node = '{node}'"
            ))
            .parse()
            .unwrap();
        let max: u64 =
            c.pg.psql(&format!(
                "SELECT max(seq) FROM audit_log WHERE node = '{node}'"
            ))
            .parse()
            .unwrap();
        assert_eq!(n, max, "{node}: a gap");
    }
    assert!(nonempty(
        &c.pg.psql("SELECT count(*) FROM audit_checkpoints")
    ));
    // Nothing on the nodes' disks.
    assert!(!a.audit_dir().exists() || std::fs::read_dir(a.audit_dir()).unwrap().next().is_none());
    // The database gone: no answer without its record.
    c.pg.stop_server("immediate");
    b.health_becomes(ServingStatus::NotServing).await;
    let e = read(b).await.unwrap_err();
    assert_eq!(e.code(), Code::Unavailable);
    c.pg.start_server();
    b.lease_held(true).await;
    b.health_becomes(ServingStatus::Serving).await;
    let after = read(b).await.unwrap();
    let max_b: u64 =
        c.pg.psql("SELECT max(seq) FROM audit_log WHERE node = 'gw-2'")
            .parse()
            .unwrap();
    assert_eq!(after.audit_seq, max_b);
    let count_b: u64 =
        c.pg.psql("SELECT count(*) FROM audit_log WHERE node = 'gw-2'")
            .parse()
            .unwrap();
    assert_eq!(count_b, max_b, "gw-2's chain has a gap after the restart");
}

fn nonempty(count: &str) -> bool {
    count.parse::<u64>().is_ok_and(|n| n > 0)
}
