//! The shared test harness: a real gateway on `127.0.0.1:0` with certificates generated in
//! memory, a temporary sled store and audit directory, and mTLS clients for its clients.
#![allow(dead_code)]

pub mod browser;
pub mod console;
pub mod pg;
pub mod redis;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use popgate::client::{ClientTls, connect};
use popgate::clock::{Clock, ManualClock};
use popgate::config::Config;
use popgate::gateway::Gateway;
use popgate::pb;
use popgate::pb::identity_gateway_client::IdentityGatewayClient;
use popgate::pb::operator_client::OperatorClient;
use popgate::pb::registry_admin_client::RegistryAdminClient;
use popgate::pki::{CertPair, ClientOptions, DevCa, Serial};
use popgate::server::Server;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tonic::transport::Channel;

/// The clients every test gateway knows, as `[[clients]]` TOML.
pub const CLIENTS: &str = r#"
[[clients]]
id = "telecom"
kind = "telecom"
role = "agency"
read = []
verify = ["full_name", "date_of_birth"]
purposes = ["subscriber-verification"]
rate_per_sec = 100000
burst = 100000

[[clients]]
id = "ministry"
kind = "ministry"
role = "agency"
read = ["full_name", "date_of_birth", "sex", "permanent_address", "life_status"]
verify = ["full_name", "date_of_birth", "sex", "permanent_address"]
purposes = ["health-insurance", "tax-registration"]
rate_per_sec = 100000
burst = 100000

[[clients]]
id = "utility"
kind = "utility"
role = "agency"
read = ["full_name"]
verify = ["full_name"]
purposes = ["electricity-contract"]
rate_per_sec = 100000
burst = 100000

[[clients]]
id = "norights"
kind = "locality"
role = "agency"
purposes = ["administrative-procedure"]
rate_per_sec = 100000
burst = 100000

[[clients]]
id = "registry"
kind = "registry"
role = "registry"
rate_per_sec = 100000
burst = 100000

[[clients]]
id = "operator"
kind = "operator"
role = "operator"
rate_per_sec = 100000
burst = 100000
"#;

/// What a test may change before the gateway starts.
pub struct Options {
    /// Extra TOML appended after the standard sections (e.g. more `[[clients]]`).
    pub extra_toml: String,
    /// Replaces the standard clients.
    pub clients_toml: String,
    /// Lines for the `[audit]` section beyond `dir`.
    pub audit_toml: String,
    /// Lines for the `[cache]` section.
    pub cache_toml: String,
    /// Lines for the `[limits]` section.
    pub limits_toml: String,
    /// Lines for the `[store]` section.
    pub store_toml: String,
    /// Certificates to revoke in the CRL, by client id (issued before the start).
    pub revoked: Vec<String>,
    /// Run every timer of the gateway on a manual clock the test advances
    /// ([`TestGateway::clock`]), instead of the system's.
    pub manual_clock: bool,
    /// As `manual_clock`, on a clock shared with other gateways of the test (nodes of one
    /// cluster).
    pub shared_clock: Option<(Clock, Arc<ManualClock>)>,
    /// Serve the audit console (`[console] listen = "127.0.0.1:0"`) and add the client
    /// [`console::INSPECTOR`] (role `inspector`) after the others; see
    /// [`TestGateway::console_addr`].
    pub console: bool,
    /// Lines for the `[console]` section beyond `listen` (e.g. `pubkeys`).
    pub console_toml: String,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            extra_toml: String::new(),
            clients_toml: CLIENTS.into(),
            audit_toml: "durability = \"sync\"\n".into(),
            cache_toml: "capacity = 10000\nttl_secs = 300\n".into(),
            limits_toml: String::new(),
            store_toml: "path = \"data/population\"\n".into(),
            revoked: Vec::new(),
            manual_clock: false,
            shared_clock: None,
            console: false,
            console_toml: String::new(),
        }
    }
}

/// A running gateway and everything needed to call it.
pub struct TestGateway {
    pub addr: SocketAddr,
    pub dir: tempfile::TempDir,
    pub ca: DevCa,
    pub gateway: Arc<Gateway>,
    /// Re-reads `popgate.toml` into the running server (as SIGHUP does).
    pub reloader: popgate::server::Reloader,
    /// The address of the Prometheus endpoint.
    pub metrics_addr: SocketAddr,
    /// Bulk loading into the running store, past the gateway (as another writer of a shared
    /// store would).
    pub loader: Arc<dyn popgate::store::Loader>,
    /// The gateway's clock, with [`Options::manual_clock`].
    pub clock: Option<Arc<ManualClock>>,
    /// The connections the server holds open.
    pub connections: popgate::server::transport::Connections,
    /// The audit console's address, with [`Options::console`].
    pub console: Option<SocketAddr>,
    certs: std::sync::Mutex<std::collections::HashMap<String, CertPair>>,
    shutdown: Option<oneshot::Sender<()>>,
    handle: Option<JoinHandle<()>>,
}

fn write(path: &Path, text: &str) {
    std::fs::write(path, text).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
}

impl TestGateway {
    pub async fn start() -> TestGateway {
        Self::start_with(Options::default()).await
    }

    pub async fn start_with(opts: Options) -> TestGateway {
        let dir = tempfile::tempdir().expect("temp dir");
        Self::start_in(dir, None, opts).await
    }

    /// Starts a gateway in `dir`, reusing `ca` when given (a restart over the same data).
    pub async fn start_in(dir: tempfile::TempDir, ca: Option<DevCa>, opts: Options) -> TestGateway {
        let root = dir.path();
        let ca = ca.unwrap_or_else(|| DevCa::generate().expect("CA"));
        let server = ca
            .server_cert(&["localhost", "127.0.0.1"])
            .expect("server cert");
        write(&root.join("ca.pem"), ca.cert_pem());
        write(&root.join("server.pem"), &server.cert_pem);
        write(&root.join("server.key"), &server.key_pem);
        let mut certs = std::collections::HashMap::new();
        let mut revoked = Vec::new();
        for id in &opts.revoked {
            let pair = ca.client_cert(id, &ClientOptions::default()).expect("cert");
            revoked.push(pair.serial.clone());
            certs.insert(id.clone(), pair);
        }
        let crl = ca
            .crl(
                &revoked,
                time::OffsetDateTime::now_utc() + time::Duration::days(7),
            )
            .expect("CRL");
        write(&root.join("ca.crl"), &crl);
        // The console's section goes before the clients, which `reload_clients` rewrites.
        let (console_toml, inspector) = if opts.console {
            (
                format!(
                    "[console]\nlisten = \"127.0.0.1:0\"\n{}\n",
                    opts.console_toml
                ),
                console::INSPECTOR,
            )
        } else {
            (String::new(), "")
        };
        let config_text = format!(
            "[server]\nlisten = \"127.0.0.1:0\"\n\n[tls]\ncert = \"server.pem\"\nkey = \"server.key\"\nclient_ca = \"ca.pem\"\ncrl = \"ca.crl\"\n\n[store]\n{}\n[audit]\ndir = \"data/audit\"\n{}\n[cache]\n{}\n[limits]\n{}\n{}{}\n{}\n{}",
            opts.store_toml,
            opts.audit_toml,
            opts.cache_toml,
            opts.limits_toml,
            console_toml,
            opts.clients_toml,
            inspector,
            opts.extra_toml
        );
        let config_path = root.join("popgate.toml");
        write(&config_path, &config_text);
        let config = Config::load(&config_path).expect("test config");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let metrics_listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind metrics");
        let metrics_addr = metrics_listener.local_addr().expect("metrics addr");
        let (clock, manual) = match (opts.shared_clock, opts.manual_clock) {
            (Some((c, m)), _) => (c, Some(m)),
            (None, true) => {
                let (c, m) = Clock::manual();
                (c, Some(m))
            }
            (None, false) => (Clock::system(), None),
        };
        let mut server = Server::build_with_clock(config, clock)
            .await
            .expect("server")
            .with_metrics_listener(metrics_listener);
        let mut console = None;
        if opts.console {
            let l = tokio::net::TcpListener::bind("127.0.0.1:0")
                .await
                .expect("bind console");
            console = Some(l.local_addr().expect("console addr"));
            server = server.with_console_listener(l);
        }
        let gateway = server.gateway().clone();
        let loader = server.loader().clone();
        let connections = server.connections().clone();
        let reloader = server.reloader(config_path.clone());
        let (tx, rx) = oneshot::channel::<()>();
        let handle = tokio::spawn(async move {
            server
                .serve(listener, async {
                    let _ = rx.await;
                })
                .await
                .expect("serve");
        });
        TestGateway {
            addr,
            dir,
            ca,
            gateway,
            reloader,
            metrics_addr,
            loader,
            clock: manual,
            connections,
            console,
            certs: std::sync::Mutex::new(certs),
            shutdown: Some(tx),
            handle: Some(handle),
        }
    }

    /// Rewrites the `[[clients]]` of `popgate.toml` (everything after the first `[[clients]]`)
    /// and reloads the running server.
    pub fn reload_clients(&self, clients_toml: &str) -> Result<(), popgate::server::ReloadError> {
        let path = self.path("popgate.toml");
        let text = std::fs::read_to_string(&path).expect("config");
        let head = text
            .split("[[clients]]")
            .next()
            .unwrap_or_default()
            .to_owned();
        write(&path, &format!("{head}{clients_toml}"));
        self.reloader.reload()
    }

    /// Rewrites the CRL to revoke `ids` (certificates issued through [`TestGateway::cert`])
    /// and reloads.
    pub fn revoke(&self, ids: &[&str]) -> Result<(), popgate::server::ReloadError> {
        let serials: Vec<_> = ids.iter().map(|id| self.cert(id).serial).collect();
        self.revoke_serials(&serials)
    }

    /// Rewrites the CRL to revoke exactly `serials` (e.g. the old certificate of a renewal)
    /// and reloads.
    pub fn revoke_serials(&self, serials: &[Serial]) -> Result<(), popgate::server::ReloadError> {
        let crl = self
            .ca
            .crl(
                serials,
                time::OffsetDateTime::now_utc() + time::Duration::days(7),
            )
            .expect("CRL");
        write(&self.path("ca.crl"), &crl);
        self.reloader.reload()
    }

    /// The Prometheus text from `/metrics`.
    pub async fn scrape(&self) -> String {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut conn = tokio::net::TcpStream::connect(self.metrics_addr)
            .await
            .expect("metrics connect");
        conn.write_all(b"GET /metrics HTTP/1.1\r\nhost: x\r\n\r\n")
            .await
            .expect("metrics write");
        let mut out = String::new();
        conn.read_to_string(&mut out).await.expect("metrics read");
        assert!(out.starts_with("HTTP/1.1 200"), "{out}");
        out
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    pub fn audit_dir(&self) -> PathBuf {
        self.path("data/audit")
    }

    /// The certificate of client `id` (issued on first use).
    pub fn cert(&self, id: &str) -> CertPair {
        let mut certs = self.certs.lock().unwrap();
        certs
            .entry(id.to_owned())
            .or_insert_with(|| {
                self.ca
                    .client_cert(id, &ClientOptions::default())
                    .expect("client cert")
            })
            .clone()
    }

    /// Another certificate for client `id`, as a renewal makes: [`TestGateway::cert`] goes on
    /// returning the first one.
    pub fn renewal(&self, id: &str, opts: &ClientOptions) -> CertPair {
        self.ca.client_cert(id, opts).expect("client cert")
    }

    /// A new mTLS connection with the certificate `pair` (whose CN names the client).
    pub async fn channel_with(
        &self,
        pair: &CertPair,
    ) -> Result<Channel, popgate::client::ClientError> {
        let tls = ClientTls {
            ca_pem: self.ca.cert_pem().to_owned(),
            cert_pem: pair.cert_pem.clone(),
            key_pem: pair.key_pem.clone(),
        };
        connect(&self.addr.to_string(), "localhost", &tls).await
    }

    pub fn tls_for(&self, id: &str) -> ClientTls {
        let pair = self.cert(id);
        ClientTls {
            ca_pem: self.ca.cert_pem().to_owned(),
            cert_pem: pair.cert_pem,
            key_pem: pair.key_pem,
        }
    }

    /// A new mTLS connection as client `id`.
    pub async fn channel(&self, id: &str) -> Channel {
        connect(&self.addr.to_string(), "localhost", &self.tls_for(id))
            .await
            .expect("connect")
    }

    pub async fn agency(&self, id: &str) -> IdentityGatewayClient<Channel> {
        IdentityGatewayClient::new(self.channel(id).await)
    }

    pub async fn registry(&self) -> RegistryAdminClient<Channel> {
        RegistryAdminClient::new(self.channel("registry").await)
    }

    pub async fn operator(&self) -> OperatorClient<Channel> {
        OperatorClient::new(self.channel("operator").await)
    }

    /// Waits until the gRPC health service reports `want` for the whole server, watching it
    /// (`Health.Watch` streams each change) rather than polling.
    pub async fn health_becomes(
        &self,
        want: tonic_health::pb::health_check_response::ServingStatus,
    ) {
        let mut watch =
            tonic_health::pb::health_client::HealthClient::new(self.channel("operator").await)
                .watch(tonic_health::pb::HealthCheckRequest {
                    service: String::new(),
                })
                .await
                .expect("health watch")
                .into_inner();
        let wait = async {
            while let Some(r) = watch.message().await.expect("health stream") {
                if r.status == want as i32 {
                    return;
                }
            }
            panic!("the health stream ended");
        };
        // A guard against hanging, not a timing assertion: the change is due at once.
        tokio::time::timeout(std::time::Duration::from_secs(30), wait)
            .await
            .unwrap_or_else(|_| panic!("health never became {want:?}"));
    }

    /// The manual clock of a gateway started with [`Options::manual_clock`].
    pub fn clock(&self) -> &ManualClock {
        self.clock
            .as_deref()
            .expect("start the gateway with Options { manual_clock: true, .. }")
    }

    /// Stops the server and waits until it has finished (audit synced).
    pub async fn stop(mut self) -> (tempfile::TempDir, DevCa) {
        self.shutdown_and_wait().await;
        let dir = std::mem::replace(&mut self.dir, tempfile::tempdir().expect("temp"));
        let ca = DevCa::from_pem(self.ca.cert_pem(), self.ca.key_pem()).expect("CA");
        (dir, ca)
    }

    async fn shutdown_and_wait(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(h) = self.handle.take() {
            h.await.expect("server task");
        }
    }
}

/// A valid citizen record for `id` (which must encode a 1987 male, e.g. "001087000001").
pub fn citizen(id: &str, name: &str) -> pb::Citizen {
    let id_parsed = popgate::id::CitizenId::parse(id, 2026).expect("test id");
    let year = id_parsed.birth_year();
    let sex = match id_parsed.sex() {
        popgate::id::IdSex::Male => pb::Sex::Male,
        popgate::id::IdSex::Female => pb::Sex::Female,
    };
    pb::Citizen {
        citizen_id: id.into(),
        full_name: name.into(),
        date_of_birth: format!("{year}-03-14"),
        sex: sex as i32,
        place_of_origin: "Xã Yên Lư, Bắc Giang".into(),
        permanent_address: "Số 18, Phường Láng Hạ, Quận Đống Đa, Hà Nội".into(),
        current_address: "Số 18, Phường Láng Hạ, Quận Đống Đa, Hà Nội".into(),
        ethnicity: "Kinh".into(),
        religion: "Không".into(),
        nationality: "Việt Nam".into(),
        card_issued_on: format!("{}-06-02", year + 20),
        card_expires_on: format!("{}-03-14", year + 40),
        household_head_id: id.into(),
        life_status: pb::LifeStatus::Alive as i32,
        version: 0,
        updated_at: None,
    }
}

/// `c` as the store holds it after a write of version `version` (for loading behind the
/// gateway's back).
pub fn stored(c: pb::Citizen, version: u64) -> popgate::citizen::Citizen {
    let draft = popgate::grpc::convert::draft(c);
    popgate::citizen::Citizen {
        version,
        ..popgate::registry::validate(draft, 2026, std::time::SystemTime::now()).expect("valid")
    }
}

/// Creates `c` through the public API and returns its version.
pub async fn put(gw: &TestGateway, c: pb::Citizen) -> u64 {
    gw.registry()
        .await
        .put_citizen(pb::PutCitizenRequest {
            citizen: Some(c),
            expected_version: 0,
        })
        .await
        .expect("put")
        .into_inner()
        .version
}

pub fn lookup_req(id: &str, fields: &[&str], purpose: &str) -> pb::LookupRequest {
    pb::LookupRequest {
        citizen_id: id.into(),
        read_mask: (!fields.is_empty()).then(|| prost_types::FieldMask {
            paths: fields.iter().map(|s| s.to_string()).collect(),
        }),
        purpose: purpose.into(),
        request_id: format!("req-{id}"),
    }
}

/// Every audit record in `dir`, in file order, parsed from the JSON Lines files.
pub fn audit_records(dir: &Path) -> Vec<serde_json::Value> {
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .expect("audit dir")
        .map(|e| e.expect("dir entry").path())
        .filter(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("audit-"))
        })
        .collect();
    files.sort();
    files
        .iter()
        .flat_map(|f| {
            std::fs::read_to_string(f)
                .expect("audit file")
                .lines()
                .map(|l| serde_json::from_str(l).expect("audit line is JSON"))
                .collect::<Vec<_>>()
        })
        .collect()
}

/// A child process (a `popgate serve` under test) that is killed when dropped, so a failing
/// assertion does not leave a server running after the test.
pub struct Reaped(pub std::process::Child);

impl std::ops::Deref for Reaped {
    type Target = std::process::Child;
    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

impl std::ops::DerefMut for Reaped {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.0
    }
}

impl Drop for Reaped {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Nodes of one cluster over a throwaway PostgreSQL, in this process, sharing one CA.
pub struct TestCluster {
    pub pg: pg::TestPostgres,
    pub nodes: Vec<TestGateway>,
    pub lease_ms: u64,
}

/// The `[store]` and `[cluster]` of node `node_id` of a cluster over `url`.
pub fn cluster_options(url: &str, node_id: &str, lease_ms: u64) -> Options {
    Options {
        store_toml: format!("backend = \"postgres\"\nurl = \"{url}\"\n"),
        extra_toml: format!("\n[cluster]\nnode_id = \"{node_id}\"\nlease_ms = {lease_ms}\n"),
        ..Default::default()
    }
}

impl TestCluster {
    /// `n` nodes named `gw-1` … `gw-n`, each holding its cache lease when this returns.
    pub async fn start(n: usize, lease_ms: u64) -> TestCluster {
        Self::start_with(n, lease_ms, Options::default).await
    }

    /// As [`TestCluster::start`], each node's options from `opts` (its store and cluster keys
    /// are set here).
    pub async fn start_with(n: usize, lease_ms: u64, opts: impl Fn() -> Options) -> TestCluster {
        let pg = pg::TestPostgres::start();
        let url = pg.url();
        Self::start_over(pg, &url, n, lease_ms, opts).await
    }

    /// As [`TestCluster::start_with`], over `pg` reached by `url` (a multi-host URL naming
    /// a standby too, say).
    pub async fn start_over(
        pg: pg::TestPostgres,
        url: &str,
        n: usize,
        lease_ms: u64,
        opts: impl Fn() -> Options,
    ) -> TestCluster {
        let ca = DevCa::generate().expect("CA");
        let mut nodes = Vec::new();
        for i in 1..=n {
            let dir = tempfile::tempdir().expect("temp dir");
            let ca = DevCa::from_pem(ca.cert_pem(), ca.key_pem()).expect("CA");
            let node = cluster_options(url, &format!("gw-{i}"), lease_ms);
            let mut o = opts();
            o.store_toml = node.store_toml;
            o.extra_toml = format!("{}{}", o.extra_toml, node.extra_toml);
            nodes.push(TestGateway::start_in(dir, Some(ca), o).await);
        }
        for node in &nodes {
            node.lease_held(true).await;
            // Every node counts every other among the cluster's members.
            let mut members = node.gateway.cluster_members().expect("a cluster node");
            tokio::time::timeout(
                std::time::Duration::from_secs(30),
                members.wait_for(|m| *m == n),
            )
            .await
            .expect("every node sees the whole cluster")
            .expect("the store is gone");
        }
        TestCluster {
            pg,
            nodes,
            lease_ms,
        }
    }
}

impl TestCluster {
    /// Another node, `node_id`, as a process of its own (`popgate serve`) with the first
    /// node's configuration and certificates, so that a test can kill it with -9. Returns the
    /// process and its address; the temporary directory lives as long as the process matters.
    pub fn spawn_node(&self, node_id: &str) -> (Reaped, String, tempfile::TempDir) {
        let first = &self.nodes[0];
        let dir = tempfile::tempdir().expect("temp dir");
        for f in ["ca.pem", "server.pem", "server.key", "ca.crl"] {
            std::fs::copy(first.path(f), dir.path().join(f)).expect("copy a certificate");
        }
        let text = std::fs::read_to_string(first.path("popgate.toml"))
            .expect("the first node's configuration")
            .replace("node_id = \"gw-1\"", &format!("node_id = \"{node_id}\""));
        let config = dir.path().join("popgate.toml");
        write(&config, &text);
        let (child, addr) = spawn_serve(&config);
        (child, addr, dir)
    }
}

impl TestGateway {
    /// Waits until this node holds (`true`) or has lost (`false`) its cache lease.
    pub async fn lease_held(&self, want: bool) {
        let mut held = self
            .gateway
            .store_connection()
            .expect("a node of a cluster watches its database connection");
        tokio::time::timeout(
            std::time::Duration::from_secs(30),
            held.wait_for(|h| *h == want),
        )
        .await
        .unwrap_or_else(|_| panic!("the cache lease never became {want}"))
        .expect("the store is gone");
    }
}

/// Starts `popgate serve --config FILE` and returns it with the address it reports.
pub fn spawn_serve(config: &Path) -> (Reaped, String) {
    use std::io::BufRead;
    let mut child = Reaped(
        std::process::Command::new(env!("CARGO_BIN_EXE_popgate"))
            .args(["serve", "--config"])
            .arg(config)
            .env("RUST_LOG", "info")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("start popgate"),
    );
    let stderr = child.stderr.take().expect("stderr");
    let (tx, rx) = std::sync::mpsc::channel();
    // What it said before it served, for the message when it never does.
    let said = std::sync::Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let log = said.clone();
    std::thread::spawn(move || {
        let mut sent = false;
        for line in std::io::BufReader::new(stderr)
            .lines()
            .map_while(Result::ok)
        {
            if !sent
                && line.contains("popgate serving")
                && let Some(addr) = line.split("listen=").nth(1)
            {
                let _ = tx.send(addr.split_whitespace().next().unwrap_or("").to_owned());
                sent = true;
            } else if !sent && let Ok(mut lines) = log.lock() {
                lines.push(line);
            }
        }
    });
    let addr = rx
        .recv_timeout(std::time::Duration::from_secs(60))
        .unwrap_or_else(|e| {
            let said = said.lock().map(|l| l.join("\n")).unwrap_or_default();
            panic!("popgate did not report its address ({e}); it said:\n{said}")
        });
    (child, addr)
}
