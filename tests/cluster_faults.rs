//! A cluster losing its parts under load (CONTRACT §6), with the audit log in the database: a
//! node killed with -9, PostgreSQL crashed and restarted, and the primary killed and its
//! synchronous standby promoted. Each time, every call a client was answered has its record
//! in the log — the `audit_seq` it received names a committed row of its node's chain — each
//! chain runs 1, 2, 3 … without a gap, and every write that was acknowledged is in the
//! database. Real, throwaway PostgreSQL 15 servers; the killed node is a process of its own.

mod common;

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::pg::TestPostgres;
use common::{TestCluster, TestGateway, citizen, lookup_req};
use popgate::pb;
use popgate::pb::identity_gateway_client::IdentityGatewayClient;
use popgate::pb::registry_admin_client::RegistryAdminClient;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tonic::transport::Channel;
use tonic_health::pb::health_check_response::ServingStatus;

const READ_ID: &str = "001087000001";
const WRITE_ID: &str = "001087000002";
const LEASE_MS: u64 = 600;

fn db_audit() -> common::Options {
    common::Options {
        audit_toml: "backend = \"postgres\"\ndurability = \"sync\"\ncheckpoint_every = 50\n".into(),
        ..Default::default()
    }
}

/// What the clients of a load were answered.
#[derive(Default)]
struct Tally {
    /// `(node, audit_seq)` of every call answered OK.
    answered: Vec<(String, u64)>,
    /// The versions `PutCitizen` acknowledged.
    written: Vec<u64>,
    /// Calls that failed (a node down, the database away).
    failed: u64,
}

/// Clients calling nodes in closed loops until stopped. A failed call is retried after a
/// short pause: the load's own pacing, not something a test waits on.
struct Load {
    tally: Arc<Mutex<Tally>>,
    /// Calls answered so far, by node.
    progress: watch::Sender<HashMap<String, u64>>,
    stop: watch::Sender<bool>,
    tasks: Mutex<Vec<JoinHandle<()>>>,
}

const PAUSE: Duration = Duration::from_millis(5);

impl Load {
    fn new() -> Load {
        Load {
            tally: Arc::default(),
            progress: watch::channel(HashMap::new()).0,
            stop: watch::channel(false).0,
            tasks: Mutex::default(),
        }
    }

    fn answered(&self, node: &str, seq: u64) {
        self.tally
            .lock()
            .unwrap()
            .answered
            .push((node.to_owned(), seq));
        self.progress
            .send_modify(|p| *p.entry(node.to_owned()).or_default() += 1);
    }

    fn failed(&self) {
        self.tally.lock().unwrap().failed += 1;
    }

    /// A reader on `node`: Lookups of one citizen as fast as they are answered.
    fn read(self: &Arc<Self>, node: &str, mut client: IdentityGatewayClient<Channel>) {
        let (load, node, stop) = (self.clone(), node.to_owned(), self.stop.subscribe());
        self.spawn(async move {
            while !*stop.borrow() {
                match client
                    .lookup(lookup_req(READ_ID, &["full_name"], "health-insurance"))
                    .await
                {
                    Ok(r) => load.answered(&node, r.into_inner().audit_seq),
                    Err(_) => {
                        load.failed();
                        tokio::time::sleep(PAUSE).await;
                    }
                }
            }
        });
    }

    /// A writer on `node`: PutCitizen of one citizen, each on the version before. After a
    /// failure it reads the version back (a write whose answer was lost may have committed).
    fn write(
        self: &Arc<Self>,
        node: &str,
        mut registry: RegistryAdminClient<Channel>,
        mut reader: IdentityGatewayClient<Channel>,
    ) {
        let (load, node, stop) = (self.clone(), node.to_owned(), self.stop.subscribe());
        self.spawn(async move {
            let mut version = Some(1);
            let mut n = 0u64;
            while !*stop.borrow() {
                let Some(expected) = version else {
                    match reader
                        .lookup(lookup_req(WRITE_ID, &["full_name"], "health-insurance"))
                        .await
                    {
                        Ok(r) => {
                            let r = r.into_inner();
                            load.answered(&node, r.audit_seq);
                            version = r.citizen.map(|c| c.version);
                        }
                        Err(_) => {
                            load.failed();
                            tokio::time::sleep(PAUSE).await;
                        }
                    }
                    continue;
                };
                n += 1;
                let put = pb::PutCitizenRequest {
                    citizen: Some(citizen(WRITE_ID, &format!("Trần Thị Mai {n}"))),
                    expected_version: expected,
                };
                match registry.put_citizen(put).await {
                    Ok(r) => {
                        let r = r.into_inner();
                        load.tally.lock().unwrap().written.push(r.version);
                        load.answered(&node, r.audit_seq);
                        version = Some(r.version);
                    }
                    Err(_) => {
                        load.failed();
                        version = None;
                        tokio::time::sleep(PAUSE).await;
                    }
                }
            }
        });
    }

    fn spawn(&self, task: impl std::future::Future<Output = ()> + Send + 'static) {
        self.tasks.lock().unwrap().push(tokio::spawn(task));
    }

    /// Waits until `node` has answered `n` calls in all.
    async fn until(&self, node: &str, n: u64) {
        let mut rx = self.progress.subscribe();
        tokio::time::timeout(
            Duration::from_secs(60),
            rx.wait_for(|p| p.get(node).copied().unwrap_or(0) >= n),
        )
        .await
        .unwrap_or_else(|_| panic!("{node} never answered {n} calls under the load"))
        .expect("the load is gone");
    }

    fn count(&self, node: &str) -> u64 {
        self.progress.borrow().get(node).copied().unwrap_or(0)
    }

    /// Stops the clients and returns what they were answered.
    async fn finish(self: Arc<Self>) -> Tally {
        self.stop.send_replace(true);
        let tasks = std::mem::take(&mut *self.tasks.lock().unwrap());
        for t in tasks {
            t.await.expect("a client of the load panicked");
        }
        std::mem::take(&mut *self.tally.lock().unwrap())
    }
}

/// Every call answered under the load has its committed record, and each node's chain in the
/// database runs 1, 2, 3 … without a gap; every acknowledged write is in the change log.
fn assert_nothing_answered_is_missing(pg: &TestPostgres, tally: &Tally, nodes: &[&str]) {
    for node in nodes {
        let seqs: BTreeSet<u64> = pg
            .psql(&format!(
                "SELECT seq FROM audit_log WHERE node = '{node}' ORDER BY seq"
            ))
            .lines()
            .map(|l| l.parse().unwrap())
            .collect();
        let max = seqs.last().copied().unwrap_or(0);
        assert_eq!(seqs.len() as u64, max, "{node}'s chain has a gap");
        let answered: Vec<u64> = tally
            .answered
            .iter()
            .filter(|(n, _)| n == node)
            .map(|(_, s)| *s)
            .collect();
        assert!(!answered.is_empty(), "{node} answered nothing");
        for seq in &answered {
            assert!(
                seqs.contains(seq),
                "{node} answered a call audited as seq {seq}, which is not in the log"
            );
        }
        // The rows are what the chain holds: their text names the node and the seq.
        let wrong = pg.psql(&format!(
            "SELECT count(*) FROM audit_log WHERE node = '{node}' \
             AND ((record::json->>'seq')::bigint <> seq OR record::json->>'node' <> node)"
        ));
        assert_eq!(
            wrong, "0",
            "{node}: rows whose record names another seq or node"
        );
    }
    // And the operators' own check agrees: every node's chain and checkpoints are intact.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_popgate"))
        .args(["audit", "verify", "--db", &pg.url()])
        .output()
        .expect("run popgate audit verify");
    assert!(
        out.status.success(),
        "audit verify --db: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let said = String::from_utf8_lossy(&out.stdout);
    for node in nodes {
        assert!(
            said.contains(node),
            "verify --db says nothing of {node}: {said}"
        );
    }
    let id = WRITE_ID.trim_start_matches('0');
    let versions: BTreeSet<u64> = pg
        .psql(&format!(
            "SELECT version FROM changes WHERE citizen_id = {id}"
        ))
        .lines()
        .map(|l| l.parse().unwrap())
        .collect();
    for v in &tally.written {
        assert!(
            versions.contains(v),
            "PutCitizen acknowledged version {v}, which the database does not hold"
        );
    }
}

/// The two citizens of the load, written before it starts.
async fn seed(node: &TestGateway) {
    for (id, name) in [(READ_ID, "Nguyễn Văn An"), (WRITE_ID, "Trần Thị Mai")] {
        node.registry()
            .await
            .put_citizen(pb::PutCitizenRequest {
                citizen: Some(citizen(id, name)),
                expected_version: 0,
            })
            .await
            .expect("seed");
    }
}

/// Readers on every node and a writer on the first.
async fn load_on(c: &TestCluster) -> Arc<Load> {
    let load = Arc::new(Load::new());
    for (i, node) in c.nodes.iter().enumerate() {
        let name = format!("gw-{}", i + 1);
        load.read(&name, node.agency("ministry").await);
    }
    let first = &c.nodes[0];
    load.write(
        "gw-1",
        first.registry().await,
        first.agency("ministry").await,
    );
    load
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_killed_with_minus_9_under_load_loses_no_record_of_a_call_it_answered() {
    let c = TestCluster::start_with(2, LEASE_MS, db_audit).await;
    seed(&c.nodes[0]).await;
    let (mut child, addr, _dir) = c.spawn_node("gw-3");
    let load = load_on(&c).await;
    for _ in 0..2 {
        let channel = popgate::client::connect(&addr, "localhost", &c.nodes[0].tls_for("ministry"))
            .await
            .expect("connect to gw-3");
        load.read("gw-3", IdentityGatewayClient::new(channel));
    }
    load.until("gw-3", 200).await;
    child.kill().expect("kill -9");
    child.wait().expect("reap");
    // The others go on: reads at once, writes once the dead node's lease has run out.
    let (a, b) = (load.count("gw-1"), load.count("gw-2"));
    load.until("gw-1", a + 200).await;
    load.until("gw-2", b + 200).await;
    let tally = load.finish().await;
    assert!(!tally.written.is_empty());
    assert_nothing_answered_is_missing(&c.pg, &tally, &["gw-1", "gw-2", "gw-3"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgresql_crashed_and_restarted_under_load_leaves_no_answered_call_without_its_record() {
    let c = TestCluster::start_with(2, LEASE_MS, db_audit).await;
    seed(&c.nodes[0]).await;
    let load = load_on(&c).await;
    load.until("gw-1", 100).await;
    load.until("gw-2", 100).await;
    c.pg.stop_server("immediate");
    for node in &c.nodes {
        node.health_becomes(ServingStatus::NotServing).await;
    }
    c.pg.start_server();
    for node in &c.nodes {
        node.health_becomes(ServingStatus::Serving).await;
    }
    let (a, b) = (load.count("gw-1"), load.count("gw-2"));
    load.until("gw-1", a + 100).await;
    load.until("gw-2", b + 100).await;
    let tally = load.finish().await;
    assert!(tally.failed > 0, "the crash went unnoticed");
    assert_nothing_answered_is_missing(&c.pg, &tally, &["gw-1", "gw-2"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_primary_killed_and_its_synchronous_standby_promoted_keeps_every_acknowledged_write_and_record()
 {
    let primary = TestPostgres::start();
    let standby = primary.standby("popgate_standby");
    let url = format!(
        "postgresql://postgres@127.0.0.1:{},127.0.0.1:{}/popgate?target_session_attrs=read-write",
        primary.port, standby.port
    );
    let c = TestCluster::start_over(primary, &url, 2, LEASE_MS, db_audit).await;
    seed(&c.nodes[0]).await;
    let load = load_on(&c).await;
    load.until("gw-1", 100).await;
    load.until("gw-2", 100).await;
    // The standby falls behind: its WAL receiver hangs, so the primary's commits wait for
    // it — both nodes' audit commits among them — and nothing may be answered on the strength
    // of a commit the standby lacks. Then the primary dies, with those commits on it alone.
    let receiver = standby.wal_receiver_pid();
    standby.signal(receiver, "STOP");
    c.pg.wait_for(
        "SELECT count(*) FROM pg_stat_activity \
         WHERE wait_event = 'SyncRep' AND application_name LIKE 'popgate-gw-_-audit'",
        "2",
    );
    c.pg.stop_server("immediate");
    standby.signal(receiver, "CONT");
    for node in &c.nodes {
        node.health_becomes(ServingStatus::NotServing).await;
    }
    standby.promote();
    for node in &c.nodes {
        node.health_becomes(ServingStatus::Serving).await;
    }
    let (a, b) = (load.count("gw-1"), load.count("gw-2"));
    load.until("gw-1", a + 100).await;
    load.until("gw-2", b + 100).await;
    let tally = load.finish().await;
    assert_nothing_answered_is_missing(&standby, &tally, &["gw-1", "gw-2"]);
}
