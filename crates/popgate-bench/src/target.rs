//! What a benchmark runs against when it brings its own server (`--dev`): a bench directory
//! with a fresh dev CA and certificates, seeded population stores, and either the full
//! gateway (the real [`Server`], configured from a TOML file like any deployment) or the
//! bare baseline server.
//!
//! The baseline runs on the gateway's own transport, not a copy of it: the same rustls server
//! configuration (built by [`identity::load`](popgate::identity::load) from the same files:
//! TLS 1.3 only, client certificate required, CRL), the same accept loop
//! ([`transport::incoming`]: TCP_NODELAY, the `max_connections` bound, each handshake in its
//! own task with a deadline), the same HTTP/2 settings ([`transport::http2`]) and message
//! size, and the same client. Its handlers return a fixed answer of the size of the gateway's
//! typical one: no policy, limits, cache, store or audit. The ratio of the two is the price of
//! everything popgate adds, the disk's flush included.
//!
//! The durable baseline is the same server with one thing added: each answer waits until a
//! record of the gateway's record size is group-committed with fdatasync by one writer
//! thread ([`crate::durable`]). No server that keeps a durable record before each answer can
//! beat it on this disk, so it is the limit the gateway is judged against: the gateway's ratio
//! to it is what popgate's own work costs.

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;

use arc_swap::ArcSwap;
use futures_util::{Stream, StreamExt};
use popgate::client::ClientTls;
use popgate::config::Config;
use popgate::fields::FieldSet;
use popgate::pb;
use popgate::pb::identity_gateway_server::{IdentityGateway, IdentityGatewayServer};
use popgate::pki::{ClientOptions, DevCa};
use popgate::server::{Server, transport};
use popgate::store::{Loader, SledStore};
use tokio::net::TcpListener;
use tokio::runtime::Handle;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tonic::{Request, Response, Status, Streaming};

use crate::BenchError;
use crate::durable::DurableLog;

/// Fields the bench clients may read: a ministry's set (DOMAIN.md's health-insurance sample),
/// so a Lookup's answer has the size of a typical one.
pub const READ_FIELDS: &[&str] = &[
    "full_name",
    "date_of_birth",
    "sex",
    "permanent_address",
    "current_address",
    "nationality",
    "ethnicity",
    "life_status",
    "card_expires_on",
];
/// Fields the bench clients may verify (a telecom's set).
pub const VERIFY_FIELDS: &[&str] = &["full_name", "date_of_birth", "sex"];
/// The purpose every bench client may state.
pub const PURPOSE: &str = "benchmark";

/// A client of the bench gateway.
#[derive(Debug, Clone)]
pub struct BenchClient {
    pub id: String,
    pub rate_per_sec: u32,
    pub burst: u32,
}

/// How the gateway of one stage is configured.
#[derive(Debug, Clone)]
pub struct GatewaySettings {
    pub citizens: u64,
    pub durability: popgate::config::Durability,
    pub cache_capacity: u64,
    pub store_cache_mib: u64,
    pub clients: Vec<BenchClient>,
    /// The population store: sled, or PostgreSQL (then the nodes of a cluster share it).
    pub store: StoreKind,
    /// Gateway nodes over the one store (more than one only over PostgreSQL).
    pub nodes: usize,
    /// `[limits] shared_url`: the nodes share each client's rate through this Redis.
    pub shared_url: Option<String>,
    /// Serve the audit console too (on a port of its own), with an inspector client.
    pub console: bool,
}

/// Which store a stage's gateway runs on.
#[derive(Debug, Clone, PartialEq)]
pub enum StoreKind {
    Sled,
    Postgres {
        /// The database, seeded by [`BenchDir::pg_store`].
        url: String,
        /// `[audit] backend = "postgres"`: the audit log in the same database.
        audit_in_db: bool,
    },
}

/// The seeded store a stage's configuration names.
#[derive(Debug, Clone)]
pub enum StoreRef {
    Sled(PathBuf),
    Postgres(String),
}

/// How many citizens a seeded store holds now (a write load adds to them).
pub fn store_count(store: &StoreRef) -> Result<u64, BenchError> {
    let setup = |e: &dyn std::fmt::Display| BenchError::Setup(e.to_string());
    match store {
        StoreRef::Sled(path) => SledStore::open(path)
            .map_err(|e| setup(&e))?
            .count()
            .map_err(|e| setup(&e)),
        StoreRef::Postgres(url) => {
            let url = popgate::store::postgres::DbUrl::parse(url).map_err(|e| setup(&e))?;
            popgate::store::postgres::PgLoader::open(&url, false)
                .map_err(|e| setup(&e))?
                .count()
                .map_err(|e| setup(&e))
        }
    }
}

/// The registry client of the write load (`--writes`): role registry, unlimited.
pub const REGISTRY_CLIENT: &str = "bench-registry";
/// The inspector (role `inspector`) of a gateway serving its audit console.
pub const CONSOLE_CLIENT: &str = "bench-inspector";

/// The bench directory: certificates, population stores and one folder per stage. Removed at
/// the end unless the user gave it (then the stores are kept and reused by the next run).
pub struct BenchDir {
    root: PathBuf,
    keep: bool,
    ca: DevCa,
    stages: usize,
    /// Where the stages' servers listen: `127.0.0.1:0` unless serving for another process.
    listen: SocketAddr,
}

impl Drop for BenchDir {
    fn drop(&mut self) {
        if self.keep {
            let _ = std::fs::remove_dir_all(self.root.join("stages"));
        } else {
            let _ = std::fs::remove_dir_all(&self.root);
        }
    }
}

fn io(what: &str, path: &Path, e: std::io::Error) -> BenchError {
    BenchError::Setup(format!("{what} {}: {e}", path.display()))
}

fn write(path: &Path, text: &str) -> Result<(), BenchError> {
    std::fs::write(path, text).map_err(|e| io("cannot write", path, e))
}

impl BenchDir {
    /// Creates (or, for a given `dir`, reuses) the bench directory with a new CA and server
    /// certificate.
    pub fn create(dir: Option<&Path>) -> Result<BenchDir, BenchError> {
        let (root, keep) = match dir {
            Some(d) => (d.to_owned(), true),
            None => (
                std::env::temp_dir().join(format!("popgate-bench-{}", std::process::id())),
                false,
            ),
        };
        std::fs::create_dir_all(&root).map_err(|e| io("cannot create", &root, e))?;
        // The stage configs name files by absolute path (relative ones would be taken
        // relative to each config's own folder).
        let root = root
            .canonicalize()
            .map_err(|e| io("cannot resolve", &root, e))?;
        let certs = root.join("certs");
        std::fs::create_dir_all(&certs).map_err(|e| io("cannot create", &certs, e))?;
        let ca = DevCa::generate().map_err(|e| BenchError::Setup(e.to_string()))?;
        let server = ca
            .server_cert(&["localhost", "127.0.0.1"])
            .map_err(|e| BenchError::Setup(e.to_string()))?;
        let crl = ca
            .crl(
                &[],
                time::OffsetDateTime::now_utc() + time::Duration::days(7),
            )
            .map_err(|e| BenchError::Setup(e.to_string()))?;
        write(&certs.join("ca.pem"), ca.cert_pem())?;
        write(&certs.join("server.pem"), &server.cert_pem)?;
        write(&certs.join("server.key"), &server.key_pem)?;
        write(&certs.join("ca.crl"), &crl)?;
        Ok(BenchDir {
            root,
            keep,
            ca,
            stages: 0,
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
        })
    }

    /// Makes the next stages' servers listen on `addr`.
    pub fn listen_on(&mut self, addr: SocketAddr) {
        self.listen = addr;
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Writes a client certificate and key of `id` under `certs/`, for a load generator in
    /// another process; returns their paths.
    pub fn write_client_files(&self, id: &str) -> Result<(PathBuf, PathBuf), BenchError> {
        let tls = self.client_tls(id)?;
        let certs = self.root.join("certs");
        let (cert, key) = (
            certs.join(format!("{id}.pem")),
            certs.join(format!("{id}.key")),
        );
        write(&cert, &tls.cert_pem)?;
        write(&key, &tls.key_pem)?;
        Ok((cert, key))
    }

    /// The client TLS material of `id` (a new certificate each time).
    pub fn client_tls(&self, id: &str) -> Result<ClientTls, BenchError> {
        let pair = self
            .ca
            .client_cert(id, &ClientOptions::default())
            .map_err(|e| BenchError::Setup(e.to_string()))?;
        Ok(ClientTls {
            ca_pem: self.ca.cert_pem().to_owned(),
            cert_pem: pair.cert_pem,
            key_pem: pair.key_pem,
        })
    }

    /// The store holding citizens `0..count` of population `seed`, seeded on first use.
    /// `copy` > 0 names another store of the same records, for a second gateway running at
    /// the same time (sled lets one process open a store once). `progress` is called with the
    /// records written so far.
    pub fn store(
        &self,
        count: u64,
        seed: u64,
        copy: usize,
        progress: impl FnMut(u64),
    ) -> Result<PathBuf, BenchError> {
        let name = match copy {
            0 => format!("population-{count}-seed{seed}"),
            n => format!("population-{count}-seed{seed}-copy{n}"),
        };
        let path = self.root.join(name);
        let done = path.join("SEEDED");
        if done.is_file() {
            return Ok(path);
        }
        let _ = std::fs::remove_dir_all(&path);
        let store = SledStore::open(&path).map_err(|e| BenchError::Setup(e.to_string()))?;
        popgate::synth::seed_store(
            &store,
            &popgate::synth::SeedPlan::new(count, seed),
            progress,
        )
        .map_err(|e| BenchError::Setup(format!("seeding {count} citizens: {e}")))?;
        store
            .flush()
            .map_err(|e| BenchError::Setup(e.to_string()))?;
        drop(store);
        write(&done, "")?;
        Ok(path)
    }

    /// The PostgreSQL database at `url` holding citizens `0..count` of population `seed`,
    /// seeded with `COPY` if it is empty. A database holding another population is refused
    /// rather than mixed into: the bench would ask for citizens it does not have.
    pub fn pg_store(
        &self,
        url: &str,
        count: u64,
        seed: u64,
        progress: impl FnMut(u64),
    ) -> Result<StoreRef, BenchError> {
        use popgate::store::postgres::{DbUrl, PgLoader};
        let setup = |e: &dyn std::fmt::Display| BenchError::Setup(format!("{url}: {e}"));
        let parsed = DbUrl::parse(url).map_err(|e| BenchError::Usage(format!("--pg-url: {e}")))?;
        let loader = PgLoader::open(&parsed, true).map_err(|e| setup(&e))?;
        let held = loader.count().map_err(|e| setup(&e))?;
        if held == 0 {
            popgate::synth::seed_store(
                &loader,
                &popgate::synth::SeedPlan::new(count, seed),
                progress,
            )
            .map_err(|e| BenchError::Setup(format!("seeding {count} citizens: {e}")))?;
        } else if held < count {
            // More is fine: a write load adds citizens after the seeded ones.
            return Err(BenchError::Usage(format!(
                "--pg-url {url} holds {held} citizens, fewer than --citizens {count}: give an empty database"
            )));
        }
        Ok(StoreRef::Postgres(url.to_owned()))
    }

    /// Writes the configuration of each node of a new stage and returns them loaded and
    /// validated: one for a single node, `settings.nodes` over PostgreSQL (node ids
    /// `bench-1`, `bench-2`, …, each with its own audit folder).
    pub fn stage_configs(
        &mut self,
        store: &StoreRef,
        settings: &GatewaySettings,
    ) -> Result<Vec<Config>, BenchError> {
        (1..=settings.nodes.max(1))
            .map(|node| self.stage_config(store, settings, node))
            .collect()
    }

    /// Writes the configuration of one node of a new stage.
    fn stage_config(
        &mut self,
        store: &StoreRef,
        settings: &GatewaySettings,
        node: usize,
    ) -> Result<Config, BenchError> {
        self.stages += 1;
        let dir = self.root.join("stages").join(self.stages.to_string());
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("audit")).map_err(|e| io("cannot create", &dir, e))?;
        let certs = self.root.join("certs");
        let durability = match settings.durability {
            popgate::config::Durability::Sync => "sync",
            popgate::config::Durability::Batch => "batch",
        };
        let store_keys = match (store, &settings.store) {
            (StoreRef::Sled(path), _) => format!(
                "[store]\npath = {path:?}\ncache_mib = {}\n\n[audit]\ndir = \"audit\"\n",
                settings.store_cache_mib
            ),
            (StoreRef::Postgres(url), kind) => {
                let audit = match kind {
                    StoreKind::Postgres {
                        audit_in_db: true, ..
                    } => "backend = \"postgres\"".to_owned(),
                    _ => "dir = \"audit\"".to_owned(),
                };
                format!(
                    "[store]\nbackend = \"postgres\"\nurl = {url:?}\n\n[cluster]\nnode_id = \"bench-{node}\"\nlease_ms = 2000\n\n[audit]\n{audit}\n"
                )
            }
        };
        let mut text = format!(
            "[server]\nlisten = \"{listen}\"\n\n[tls]\ncert = {cert:?}\nkey = {key:?}\nclient_ca = {ca:?}\ncrl = {crl:?}\n\n\
             {store_keys}durability = \"{durability}\"\nflush_ms = 5\n\n\
             [cache]\ncapacity = {cap}\nttl_secs = 300\n",
            cert = certs.join("server.pem"),
            key = certs.join("server.key"),
            ca = certs.join("ca.pem"),
            crl = certs.join("ca.crl"),
            cap = settings.cache_capacity,
            listen = self.listen,
        );
        if let Some(url) = &settings.shared_url {
            let _ = write!(text, "\n[limits]\nshared_url = {url:?}\n");
        }
        let list = |items: &[&str]| {
            let quoted: Vec<_> = items.iter().map(|s| format!("{s:?}")).collect();
            format!("[{}]", quoted.join(", "))
        };
        for c in &settings.clients {
            let _ = write!(
                text,
                "\n[[clients]]\nid = {:?}\nkind = \"ministry\"\nrole = \"agency\"\nread = {}\nverify = {}\npurposes = [{PURPOSE:?}]\nrate_per_sec = {}\nburst = {}\n",
                c.id,
                list(READ_FIELDS),
                list(VERIFY_FIELDS),
                c.rate_per_sec,
                c.burst,
            );
        }
        let _ = write!(
            text,
            "\n[[clients]]\nid = {REGISTRY_CLIENT:?}\nkind = \"registry\"\nrole = \"registry\"\nrate_per_sec = 1000000000\nburst = 1000000000\n"
        );
        if settings.console {
            let _ = write!(
                text,
                "\n[[clients]]\nid = {CONSOLE_CLIENT:?}\nkind = \"ministry\"\nrole = \"inspector\"\nrate_per_sec = 1000\nburst = 1000\n"
            );
        }
        let path = dir.join("popgate.toml");
        write(&path, &text)?;
        let mut config = Config::load(&path).map_err(|e| BenchError::Setup(e.to_string()))?;
        if settings.console {
            // Set after loading: the file's `[console] listen` could not be "any free port"
            // beside a `[server] listen` that is one too.
            config.console = Some(popgate::config::ConsoleConfig {
                listen: SocketAddr::from(([127, 0, 0, 1], 0)),
                pubkeys: Vec::new(),
            });
        }
        Ok(config)
    }
}

/// A server running on a runtime of the benchmark, until [`Running::stop`]: the baseline
/// (bare or durable), a gateway, or the nodes of a cluster.
pub struct Running {
    /// Where each node listens; connection `i` of a load goes to node `i % nodes`.
    pub addrs: Vec<SocketAddr>,
    /// The gateway nodes (none for the baseline), to read their counters.
    pub gateways: Vec<Arc<popgate::gateway::Gateway>>,
    stops: Vec<(oneshot::Sender<()>, JoinHandle<()>)>,
    /// The durable baseline's log, to read its counters and stop its writer.
    durable: Option<Arc<DurableLog>>,
    /// The file audit folders of the gateway nodes, to measure the bytes of their records.
    audit_dirs: Vec<PathBuf>,
    /// Where each node's audit console listens (nodes serving one).
    pub console_addrs: Vec<SocketAddr>,
}

impl Running {
    /// Stops every node and waits until each has finished (the gateway syncs its audit log).
    pub async fn stop(self) {
        let mut tasks = Vec::new();
        for (shutdown, task) in self.stops {
            let _ = shutdown.send(());
            tasks.push(task);
        }
        for task in tasks {
            let _ = task.await;
        }
        if let Some(log) = self.durable {
            log.shutdown();
        }
    }

    pub fn is_gateway(&self) -> bool {
        !self.gateways.is_empty()
    }

    /// The audit writers' counters, summed over the nodes, or the durable baseline's writer's;
    /// `None` for the bare baseline.
    pub fn audit_stats(&self) -> Option<popgate::audit::AuditStats> {
        if let Some(log) = &self.durable {
            let s = log.stats();
            return Some(popgate::audit::AuditStats {
                records: s.records,
                batches: s.batches,
                syncs: s.syncs,
                sync_us: s.sync_us,
                ..Default::default()
            });
        }
        let mut sum: Option<popgate::audit::AuditStats> = None;
        for g in &self.gateways {
            let s = g.audit_stats();
            let t = sum.get_or_insert_with(Default::default);
            t.records += s.records;
            t.batches += s.batches;
            t.syncs += s.syncs;
            t.sync_us += s.sync_us;
            t.failures += s.failures;
        }
        sum
    }

    /// Bytes of records in the audit log files so far (the durable baseline's file, or the
    /// gateway nodes' log files, checkpoints left out); `None` for the bare baseline and an
    /// audit log in the database.
    pub fn audit_bytes(&self) -> Option<u64> {
        if let Some(log) = &self.durable {
            return Some(log.stats().bytes);
        }
        if self.audit_dirs.is_empty() {
            return None;
        }
        let mut bytes = 0;
        for dir in &self.audit_dirs {
            for entry in std::fs::read_dir(dir).ok()?.flatten() {
                let name = entry.file_name();
                if name
                    .to_str()
                    .and_then(popgate::audit::scan::parse_file_name)
                    .is_some()
                {
                    bytes += entry.metadata().map_or(0, |m| m.len());
                }
            }
        }
        Some(bytes)
    }

    /// The calls the nodes made to the shared-limits Redis, summed.
    pub fn shared_limit_calls(&self) -> u64 {
        self.gateways
            .iter()
            .map(|g| g.limits().backend().remote_calls())
            .sum()
    }

    /// Calls the nodes admitted (not refused for the client's rate) so far, warm-up included,
    /// as the nodes count them: what their Redis calls are set against.
    pub fn admitted(&self) -> u64 {
        self.gateways
            .iter()
            .flat_map(|g| g.metrics().client_stats().0)
            .map(|c| c.requests - c.rate_limited)
            .sum()
    }

    /// The writes' waits for the other nodes' caches, summed over the nodes.
    pub fn write_waits(&self) -> popgate::metrics::HistogramSnapshot {
        let mut sum = popgate::metrics::HistogramSnapshot::default();
        for g in &self.gateways {
            sum.add(&g.metrics().write_wait_snapshot());
        }
        sum
    }

    fn merge(&mut self, other: Running) {
        self.addrs.extend(other.addrs);
        self.gateways.extend(other.gateways);
        self.stops.extend(other.stops);
        self.audit_dirs.extend(other.audit_dirs);
        self.console_addrs.extend(other.console_addrs);
    }
}

/// Binds the configuration's `server.listen`. The listener is registered with the server's
/// runtime inside its task (`from_std`), so that with separate runtimes the server's sockets
/// are driven by the server's threads only.
fn bind(addr: SocketAddr) -> Result<(std::net::TcpListener, SocketAddr), BenchError> {
    let setup = |e: std::io::Error| BenchError::Setup(format!("cannot bind {addr}: {e}"));
    let listener = std::net::TcpListener::bind(addr).map_err(setup)?;
    listener.set_nonblocking(true).map_err(setup)?;
    let addr = listener.local_addr().map_err(setup)?;
    Ok((listener, addr))
}

/// Starts the full gateway from `config` on `server_rt`.
pub fn start_gateway(config: Config, server_rt: &Handle) -> Result<Running, BenchError> {
    let listen = config.server.listen;
    let audit_dir = match config.audit.backend {
        popgate::config::AuditBackend::File => Some(config.audit.dir.clone()),
        _ => None,
    };
    let console = match &config.console {
        Some(c) => Some(bind(c.listen)?),
        None => None,
    };
    let console_addrs: Vec<SocketAddr> = console.iter().map(|(_, a)| *a).collect();
    // Built on the server's runtime (the store's connections and tasks live there), waited
    // for on a thread of its own, which works whether or not the caller is inside a runtime.
    let server = std::thread::scope(|s| {
        s.spawn(|| {
            server_rt.block_on(async {
                let server = Server::build(config).await.map_err(|e| e.to_string())?;
                Ok::<_, String>(match console {
                    Some((l, _)) => server.with_console_listener(
                        TcpListener::from_std(l)
                            .map_err(|e| format!("the console's listener: {e}"))?,
                    ),
                    None => server,
                })
            })
        })
        .join()
        .unwrap_or_else(|p| std::panic::resume_unwind(p))
    })
    .map_err(BenchError::Setup)?;
    let gateway = server.gateway().clone();
    let (listener, addr) = bind(listen)?;
    let (tx, rx) = oneshot::channel::<()>();
    let task = server_rt.spawn(async move {
        let listener = match TcpListener::from_std(listener) {
            Ok(l) => l,
            Err(e) => {
                tracing::error!(error = %e, "bench gateway cannot listen");
                return;
            }
        };
        let shutdown = async {
            let _ = rx.await;
        };
        if let Err(e) = server.serve(listener, shutdown).await {
            tracing::error!(error = %e, "bench gateway failed");
        }
    });
    Ok(Running {
        addrs: vec![addr],
        gateways: vec![gateway],
        stops: vec![(tx, task)],
        durable: None,
        audit_dirs: audit_dir.into_iter().collect(),
        console_addrs,
    })
}

/// Starts a gateway node for each of `configs` (one, or a cluster's nodes over one
/// PostgreSQL) on `server_rt`.
pub fn start_nodes(configs: Vec<Config>, server_rt: &Handle) -> Result<Running, BenchError> {
    let mut all: Option<Running> = None;
    for config in configs {
        let node = start_gateway(config, server_rt)?;
        match &mut all {
            Some(all) => all.merge(node),
            None => all = Some(node),
        }
    }
    all.ok_or_else(|| BenchError::Setup("a stage without a node".into()))
}

/// The answers the baseline returns: a Lookup of `READ_FIELDS` of a real record and a
/// two-claim Verify, as the gateway would encode them.
#[derive(Clone)]
pub struct FixedAnswers {
    pub lookup: pb::LookupResponse,
    pub verify: pb::VerifyResponse,
}

impl FixedAnswers {
    pub fn typical(seed: u64) -> FixedAnswers {
        let record = popgate::synth::citizen_at(seed, 0);
        let fields: FieldSet = READ_FIELDS
            .iter()
            .filter_map(|n| popgate::fields::Field::from_name(n))
            .collect();
        FixedAnswers {
            lookup: pb::LookupResponse {
                citizen: Some(popgate::grpc::convert::citizen(&record, fields)),
                reused: false,
                audit_seq: 123_456_789,
                request_id: String::new(),
                error: None,
            },
            verify: pb::VerifyResponse {
                matched: true,
                fields: ["full_name", "date_of_birth"]
                    .iter()
                    .map(|f| pb::FieldMatch {
                        field: (*f).to_owned(),
                        matched: true,
                    })
                    .collect(),
                deceased: false,
                reused: false,
                audit_seq: 123_456_789,
                request_id: String::new(),
                error: None,
            },
        }
    }
}

/// The baseline's handlers: the fixed answers and, for the durable baseline, the log each
/// answer waits for.
struct Fixed(Arc<FixedAnswers>, Option<Arc<DurableLog>>);

impl Fixed {
    /// Durable baseline: waits until this call's record is synced, as the gateway's answer
    /// waits for its audit record's.
    async fn record(durable: Option<&DurableLog>) -> Result<(), Status> {
        match durable {
            Some(log) if !log.append().await => Err(Status::unavailable(
                "the durable baseline's log cannot be written",
            )),
            _ => Ok(()),
        }
    }
}

type Answers<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send>>;

#[tonic::async_trait]
impl IdentityGateway for Fixed {
    async fn lookup(
        &self,
        req: Request<pb::LookupRequest>,
    ) -> Result<Response<pb::LookupResponse>, Status> {
        let mut answer = self.0.lookup.clone();
        answer.request_id = req.into_inner().request_id;
        Fixed::record(self.1.as_deref()).await?;
        Ok(Response::new(answer))
    }

    async fn verify(
        &self,
        req: Request<pb::VerifyRequest>,
    ) -> Result<Response<pb::VerifyResponse>, Status> {
        let mut answer = self.0.verify.clone();
        answer.request_id = req.into_inner().request_id;
        Fixed::record(self.1.as_deref()).await?;
        Ok(Response::new(answer))
    }

    type LookupStreamStream = Answers<pb::LookupResponse>;

    async fn lookup_stream(
        &self,
        req: Request<Streaming<pb::LookupRequest>>,
    ) -> Result<Response<Self::LookupStreamStream>, Status> {
        let (fixed, durable) = (self.0.clone(), self.1.clone());
        let out = req.into_inner().then(move |r| {
            let (fixed, durable) = (fixed.clone(), durable.clone());
            async move {
                let r = r?;
                Fixed::record(durable.as_deref()).await?;
                Ok(pb::LookupResponse {
                    request_id: r.request_id,
                    ..fixed.lookup.clone()
                })
            }
        });
        Ok(Response::new(Box::pin(out)))
    }

    type VerifyStreamStream = Answers<pb::VerifyResponse>;

    async fn verify_stream(
        &self,
        req: Request<Streaming<pb::VerifyRequest>>,
    ) -> Result<Response<Self::VerifyStreamStream>, Status> {
        let (fixed, durable) = (self.0.clone(), self.1.clone());
        let out = req.into_inner().then(move |r| {
            let (fixed, durable) = (fixed.clone(), durable.clone());
            async move {
                let r = r?;
                Fixed::record(durable.as_deref()).await?;
                Ok(pb::VerifyResponse {
                    request_id: r.request_id,
                    ..fixed.verify.clone()
                })
            }
        });
        Ok(Response::new(Box::pin(out)))
    }

    // The baseline measures Lookup and Verify only: change subscriptions are not offered.
    async fn follow(
        &self,
        _req: Request<pb::FollowRequest>,
    ) -> Result<Response<pb::FollowResponse>, Status> {
        Err(Status::unimplemented(
            "the baseline server answers Lookup and Verify only",
        ))
    }

    async fn unfollow(
        &self,
        _req: Request<pb::FollowRequest>,
    ) -> Result<Response<pb::FollowResponse>, Status> {
        Err(Status::unimplemented(
            "the baseline server answers Lookup and Verify only",
        ))
    }

    type WatchChangesStream = Answers<pb::ChangeEvent>;

    async fn watch_changes(
        &self,
        _req: Request<pb::WatchChangesRequest>,
    ) -> Result<Response<Self::WatchChangesStream>, Status> {
        Err(Status::unimplemented(
            "the baseline server answers Lookup and Verify only",
        ))
    }
}

/// Which baseline [`start_baseline`] runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Baseline {
    /// Fixed answers, nothing written: the ceiling of the stack.
    Bare,
    /// Fixed answers, each after a record of the gateway's size is group-committed with
    /// fdatasync by one writer thread ([`crate::durable`]): the limit of any server that
    /// keeps a durable record before each answer, which the gateway is judged against.
    Durable,
}

/// Starts the baseline server with the TLS, connection and HTTP/2 settings of `config` on
/// `server_rt`, on the gateway's transport. The durable one writes its log in the stage's
/// audit folder, on the same disk as the gateway's audit log.
pub fn start_baseline(
    config: &Config,
    answers: FixedAnswers,
    kind: Baseline,
    server_rt: &Handle,
) -> Result<Running, BenchError> {
    let durable = match kind {
        Baseline::Bare => None,
        Baseline::Durable => {
            let path = config.audit.dir.join("durable.log");
            Some(Arc::new(DurableLog::open(&path).map_err(|e| {
                BenchError::Setup(format!("cannot open {}: {e}", path.display()))
            })?))
        }
    };
    let handler_log = durable.clone();
    let tls = popgate::identity::load(&config.tls).map_err(|e| BenchError::Setup(e.to_string()))?;
    let tls = Arc::new(ArcSwap::new(tls.server_config));
    let (listener, addr) = bind(config.server.listen)?;
    let limits = config.limits.clone();
    let (tx, rx) = oneshot::channel::<()>();
    let task = server_rt.spawn(async move {
        let listener = match TcpListener::from_std(listener) {
            Ok(l) => l,
            Err(e) => {
                tracing::error!(error = %e, "bench baseline cannot listen");
                return;
            }
        };
        let (incoming, acceptor) = transport::incoming(
            listener,
            tls,
            limits.max_connections,
            transport::Connections::default(),
        );
        let result = transport::http2(&limits)
            .add_service(
                IdentityGatewayServer::new(Fixed(Arc::new(answers), handler_log))
                    .max_decoding_message_size(limits.max_message_bytes),
            )
            .serve_with_incoming_shutdown(incoming, async {
                let _ = rx.await;
            })
            .await;
        acceptor.abort();
        if let Err(e) = result {
            tracing::error!(error = %e, "bench baseline server failed");
        }
    });
    Ok(Running {
        addrs: vec![addr],
        gateways: Vec::new(),
        stops: vec![(tx, task)],
        durable,
        audit_dirs: Vec::new(),
        console_addrs: Vec::new(),
    })
}
