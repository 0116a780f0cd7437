//! Cluster nodes as separate processes and the cluster's commands: a node killed with -9
//! while the others serve, a schema newer than the binary, `popgate db migrate` and
//! `popgate seed --url`, and TLS to the database. A real, throwaway PostgreSQL 15.

mod common;

use std::process::Command;

use common::{TestCluster, citizen, lookup_req};
use popgate::pb;
use popgate::pb::identity_gateway_client::IdentityGatewayClient;

const ID: &str = "001087000001";

fn popgate() -> Command {
    Command::new(env!("CARGO_BIN_EXE_popgate"))
}

async fn put(node: &common::TestGateway, name: &str, expected: u64) -> u64 {
    node.registry()
        .await
        .put_citizen(pb::PutCitizenRequest {
            citizen: Some(citizen(ID, name)),
            expected_version: expected,
        })
        .await
        .expect("put")
        .into_inner()
        .version
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_killed_with_minus_9_holds_up_no_one_for_longer_than_its_lease() {
    let c = TestCluster::start(2, 600).await;
    let (a, b) = (&c.nodes[0], &c.nodes[1]);
    put(a, "Nguyễn Văn An", 0).await;
    // A third node, a process of its own, with the same certificates and database.
    let (mut child, addr, _dir) = c.spawn_node("gw-3");
    let mut third = IdentityGatewayClient::new(
        popgate::client::connect(&addr, "localhost", &a.tls_for("ministry"))
            .await
            .unwrap(),
    );
    let lookup = || lookup_req(ID, &["full_name"], "health-insurance");
    third.lookup(lookup()).await.unwrap();
    assert!(third.lookup(lookup()).await.unwrap().into_inner().reused);
    // It takes part: a write waits for it, and it answers the new version.
    let v = put(a, "Nguyễn Văn An 2", 1).await;
    let got = third.lookup(lookup()).await.unwrap().into_inner();
    assert_eq!(got.citizen.unwrap().version, v);
    // Killed without warning, holding a lease and a cache.
    third.lookup(lookup()).await.unwrap();
    child.kill().unwrap();
    child.wait().unwrap();
    // The others go on: the next write waits out the dead node's lease, then returns.
    let v = put(b, "Nguyễn Văn An 3", v).await;
    for node in [a, b] {
        let got = node
            .agency("ministry")
            .await
            .lookup(lookup())
            .await
            .unwrap()
            .into_inner();
        assert_eq!(got.citizen.unwrap().version, v);
    }
    // Later writes do not wait for it at all: its lease has run out.
    put(a, "Nguyễn Văn An 4", v).await;
    let expired =
        c.pg.psql("SELECT lease_until < now() FROM nodes WHERE node_id = 'gw-3'");
    assert_eq!(expired, "t");
}

/// A rolling restart: a node shut down cleanly gives up its lease as it goes, so no write on
/// the others waits for it — with a 15 s lease, a write that did would miss the test's 10 s
/// deadline.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_shut_down_cleanly_gives_up_its_lease_and_holds_up_no_write() {
    let mut c = TestCluster::start(3, 15_000).await;
    put(&c.nodes[0], "Nguyễn Văn An", 0).await;
    let lookup = || lookup_req(ID, &["full_name"], "health-insurance");
    // The third node holds a lease and has the record in its cache.
    let mut third = c.nodes[2].agency("ministry").await;
    third.lookup(lookup()).await.unwrap();
    assert!(third.lookup(lookup()).await.unwrap().into_inner().reused);
    // Its last client goes first, so the shutdown need not wait out its grace period.
    drop(third);
    c.nodes.pop().expect("three nodes").stop().await;
    let ended =
        c.pg.psql("SELECT lease_until <= now() FROM nodes WHERE node_id = 'gw-3'");
    assert_eq!(ended, "t", "gw-3 still holds a lease after its shutdown");
    let v = tokio::time::timeout(
        std::time::Duration::from_secs(10),
        put(&c.nodes[0], "Nguyễn Văn An 2", 1),
    )
    .await
    .expect("the write waited for a node that had left");
    let got = c.nodes[1]
        .agency("ministry")
        .await
        .lookup(lookup())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(got.citizen.unwrap().version, v);
}

#[test]
fn db_migrate_creates_the_schema_and_refuses_one_newer_than_it_knows() {
    let pg = common::pg::TestPostgres::start();
    let out = popgate()
        .args(["db", "migrate", "--url", &pg.url()])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(said.contains("migrated from version 0 to 4"), "{said}");
    // Migrations 3 and 4: the follow lists of change subscriptions, and their indexes.
    assert_eq!(
        pg.psql("SELECT count(*) FROM follows").trim(),
        "0",
        "the follows table exists"
    );
    assert_eq!(
        pg.psql(
            "SELECT string_agg(indexname, ',' ORDER BY indexname) FROM pg_indexes WHERE tablename = 'follows'"
        )
        .trim(),
        "follows_citizen,follows_closed,follows_open,follows_pkey"
    );
    let again = popgate()
        .args(["db", "migrate", "--url", &pg.url()])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&again.stdout).contains("nothing to do"));
    // A newer popgate migrated it further.
    pg.psql("INSERT INTO popgate_schema (version) VALUES (99)");
    let out = popgate()
        .args(["db", "migrate", "--url", &pg.url()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("version 99, newer than this popgate knows (4)"),
        "{err}"
    );
    assert_eq!(err.lines().count(), 1, "{err}");
    // A bad URL is refused before any connection.
    let out = popgate()
        .args(["db", "migrate", "--url", "postgresql://h/db?bogus=1"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--url"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seed_url_loads_postgresql_and_a_node_serves_it() {
    let pg = common::pg::TestPostgres::start();
    let out = popgate()
        .args(["seed", "--url", &pg.url(), "--count", "3000", "--seed", "5"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stdout).contains("seeded 3000 citizens (seed 5)"));
    assert_eq!(pg.psql("SELECT count(*) FROM citizens"), "3000");
    assert_eq!(pg.psql("SELECT citizens FROM counters"), "3000");
    // Seeding again overwrites the same ids.
    let out = popgate()
        .args(["seed", "--url", &pg.url(), "--count", "3000", "--seed", "5"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    assert_eq!(pg.psql("SELECT count(*) FROM citizens"), "3000");
    // A node serves exactly the generated records.
    let gw =
        common::TestGateway::start_with(common::cluster_options(&pg.url(), "gw-1", 2000)).await;
    gw.lease_held(true).await;
    let mut c = gw.agency("ministry").await;
    for i in [0, 1, 2999] {
        let want = popgate::synth::citizen_at(5, i);
        let got = c
            .lookup(lookup_req(
                &want.id.to_string(),
                &["full_name"],
                "health-insurance",
            ))
            .await
            .unwrap()
            .into_inner()
            .citizen
            .unwrap();
        assert_eq!(got.full_name, want.full_name);
    }
    let stats = gw
        .operator()
        .await
        .get_stats(pb::GetStatsRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(stats.records, 3000);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_reaches_the_database_over_tls_when_the_url_names_its_ca() {
    let pg = common::pg::TestPostgres::start();
    let db_ca = popgate::pki::DevCa::generate().unwrap();
    let server = db_ca.server_cert(&["localhost", "127.0.0.1"]).unwrap();
    pg.enable_tls(&server.cert_pem, &server.key_pem);
    let dir = tempfile::tempdir().unwrap();
    let ca_file = dir.path().join("db-ca.pem");
    std::fs::write(&ca_file, db_ca.cert_pem()).unwrap();
    let url = format!(
        "{}?sslmode=require&sslrootcert={}",
        pg.url(),
        ca_file.display()
    );
    let gw = common::TestGateway::start_with(common::cluster_options(&url, "gw-1", 2000)).await;
    gw.lease_held(true).await;
    put(&gw, "Nguyễn Văn An", 0).await;
    // Every connection of the node is encrypted.
    let plain = pg.psql(
        "SELECT count(*) FROM pg_stat_activity a JOIN pg_stat_ssl s USING (pid) \
         WHERE a.application_name LIKE 'popgate-gw-1%' AND NOT s.ssl",
    );
    let encrypted = pg.psql(
        "SELECT count(*) FROM pg_stat_activity a JOIN pg_stat_ssl s USING (pid) \
         WHERE a.application_name LIKE 'popgate-gw-1%' AND s.ssl",
    );
    assert_eq!(plain, "0");
    assert!(encrypted.parse::<u32>().unwrap() >= 2, "{encrypted}");
    // A CA that did not sign the database's certificate: no connection.
    let other = popgate::pki::DevCa::generate().unwrap();
    std::fs::write(&ca_file, other.cert_pem()).unwrap();
    let out = popgate()
        .args(["db", "migrate", "--url", &url])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("cannot connect"), "{err}");
}
