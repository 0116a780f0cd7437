//! Wiring: builds the gateway from a validated [`Config`] and serves it on an already-bound
//! listener until a shutdown future completes (tests bind `127.0.0.1:0` and never sleep).
//!
//! Layers, outermost first, each with its reason:
//! 1. TCP accept with `TCP_NODELAY` (tonic ignores its own setting with
//!    `serve_with_incoming`; without it p99 jumps to ~40 ms).
//! 2. TLS 1.3 handshake with a required client certificate, each in its own task with a
//!    deadline, so a slow or half-open client holds up nobody else.
//! 3. HTTP/2 with a bound on streams per connection and on message size.
//! 4. The gRPC services (thin) over the [`Gateway`] (identity → policy → limits → cache →
//!    store → audit), plus health and reflection.

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use arc_swap::ArcSwap;
use futures_util::StreamExt;
use thiserror::Error;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;
use tokio_stream::wrappers::ReceiverStream;
use tonic_health::ServingStatus;

use crate::audit::{AuditLog, AuditOptions};
use crate::cache::ReuseCache;
use crate::config::{Config, Durability};
use crate::gateway::{Gateway, Parts};
use crate::grpc::identity_gateway::IdentityGatewayService;
use crate::grpc::operator::OperatorService;
use crate::grpc::registry::RegistryService;
use crate::identity::{self, Peer, TlsError};
use crate::pb;
use crate::policy::Policy;
use crate::store::{SledStore, Store, StoreError};

/// Why the gateway could not start or stopped.
#[derive(Debug, Error)]
pub enum ServerError {
    #[error(transparent)]
    Tls(#[from] TlsError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("audit log at {dir}: {source}")]
    Audit {
        dir: String,
        source: crate::audit::AuditError,
    },
    #[error("{key}: cannot create {dir}: {source}")]
    Dir {
        key: &'static str,
        dir: String,
        source: std::io::Error,
    },
    #[error("gRPC reflection: {0}")]
    Reflection(String),
    #[error("serving failed: {0}")]
    Transport(#[from] tonic::transport::Error),
}

/// A TLS handshake that takes longer than this is dropped.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// TLS handshakes running at once; more wait in the kernel's accept queue.
const MAX_HANDSHAKES: usize = 256;
/// How often refused-for-rate calls are written to the audit log, in aggregate.
const RATE_LIMIT_AUDIT_PERIOD: Duration = Duration::from_secs(1);

/// A built gateway, ready to serve.
pub struct Server {
    config: Config,
    gateway: Arc<Gateway>,
    tls: Arc<ArcSwap<rustls::ServerConfig>>,
    metrics_listener: Option<TcpListener>,
}

impl Server {
    /// Opens the store and the audit log and loads the TLS material.
    pub fn build(config: Config) -> Result<Server, ServerError> {
        let tls = identity::load(&config.tls)?;
        // Citizens' records and the access log are for the gateway's user alone, whatever the
        // umask; folders that already exist keep the modes their operator gave them.
        for (key, dir) in [
            ("store.path", &config.store.path),
            ("audit.dir", &config.audit.dir),
        ] {
            create_private_dir(dir).map_err(|source| ServerError::Dir {
                key,
                dir: dir.display().to_string(),
                source,
            })?;
        }
        let store: Arc<dyn Store> = Arc::new(SledStore::open_with_cache(
            &config.store.path,
            config.store.cache_mib,
        )?);
        tracing::info!(
            cache_mib = config.store.cache_mib,
            "population store opened"
        );
        let mut audit_options = AuditOptions::new(config.audit.dir.clone());
        audit_options.durability = match config.audit.durability {
            Durability::Sync => crate::audit::Durability::Sync,
            Durability::Batch => crate::audit::Durability::Batch,
        };
        audit_options.flush_ms = config.audit.flush_ms;
        audit_options.roll_bytes = config.audit.roll_bytes;
        audit_options.checkpoint_every = config.audit.checkpoint_every;
        audit_options.checkpoint_secs = config.audit.checkpoint_secs;
        audit_options.signing_key = config.audit.signing_key.clone();
        let metrics = Arc::new(crate::metrics::Metrics::new());
        let fsync = metrics.audit_fsync.with_label_values(&[] as &[&str]);
        audit_options.on_sync = Some(crate::audit::SyncObserver(Arc::new(move |took| {
            fsync.observe(took.as_secs_f64())
        })));
        let audit = AuditLog::open(audit_options).map_err(|source| ServerError::Audit {
            dir: config.audit.dir.display().to_string(),
            source,
        })?;
        let gateway = Arc::new(Gateway::new(Parts {
            policy: Policy::new(&config, tls.revoked.clone()),
            store,
            cache: ReuseCache::new(
                config.cache.capacity,
                Duration::from_secs(config.cache.ttl_secs),
            ),
            audit,
            metrics,
            max_in_flight: config.limits.max_in_flight,
        }));
        set_certificate_expiry(&gateway, &config);
        Ok(Server {
            config,
            gateway,
            tls: Arc::new(ArcSwap::new(tls.server_config)),
            metrics_listener: None,
        })
    }

    /// Serves Prometheus metrics on `listener` (plain HTTP) alongside the gateway.
    pub fn with_metrics_listener(mut self, listener: TcpListener) -> Server {
        self.metrics_listener = Some(listener);
        self
    }

    pub fn gateway(&self) -> &Arc<Gateway> {
        &self.gateway
    }

    /// A handle that re-reads `config_path` and applies it to this server while it runs.
    pub fn reloader(&self, config_path: PathBuf) -> Reloader {
        Reloader {
            config_path,
            running: self.config.clone(),
            gateway: self.gateway.clone(),
            tls: self.tls.clone(),
        }
    }

    /// Serves on `listener` until `shutdown` completes, then lets calls in flight finish and
    /// syncs the audit log.
    pub async fn serve(
        self,
        listener: TcpListener,
        shutdown: impl Future<Output = ()> + Send,
    ) -> Result<(), ServerError> {
        let gateway = self.gateway.clone();
        gateway.spawn_rate_limit_auditor(RATE_LIMIT_AUDIT_PERIOD);
        let (health_reporter, health_service) = tonic_health::server::health_reporter();
        spawn_health_watch(gateway.clone(), health_reporter);
        let reflection = tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(pb::FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
            .build_v1()
            .map_err(|e| ServerError::Reflection(e.to_string()))?;

        let metrics = self
            .metrics_listener
            .map(|l| tokio::spawn(crate::metrics::serve(l, gateway.clone())));
        let max_msg = self.config.limits.max_message_bytes;
        let (tx, rx) = mpsc::channel::<PeerStream>(64);
        let acceptor = tokio::spawn(accept_loop(
            listener,
            self.tls.clone(),
            tx,
            self.config.limits.max_connections,
        ));
        let incoming = ReceiverStream::new(rx).map(Ok::<_, std::io::Error>);
        let (stopping_tx, stopping_rx) = tokio::sync::oneshot::channel::<()>();
        let serving = tonic::transport::Server::builder()
            .max_concurrent_streams(self.config.limits.max_streams_per_connection)
            .http2_keepalive_interval(Some(Duration::from_secs(30)))
            .http2_keepalive_timeout(Some(Duration::from_secs(20)))
            .add_service(
                pb::identity_gateway_server::IdentityGatewayServer::new(
                    IdentityGatewayService::new(gateway.clone()),
                )
                .max_decoding_message_size(max_msg),
            )
            .add_service(
                pb::registry_admin_server::RegistryAdminServer::new(RegistryService::new(
                    gateway.clone(),
                ))
                .max_decoding_message_size(max_msg),
            )
            .add_service(
                pb::operator_server::OperatorServer::new(OperatorService::new(gateway.clone()))
                    .max_decoding_message_size(max_msg),
            )
            .add_service(health_service)
            .add_service(reflection)
            .serve_with_incoming_shutdown(incoming, async move {
                shutdown.await;
                let _ = stopping_tx.send(());
            });
        // Calls in flight get the grace period to finish; then their connections are closed.
        let grace = Duration::from_secs(self.config.server.shutdown_grace_secs);
        let deadline = async move {
            if stopping_rx.await.is_ok() {
                tokio::time::sleep(grace).await;
            } else {
                std::future::pending::<()>().await;
            }
        };
        let result = tokio::select! {
            r = serving => r,
            () = deadline => {
                tracing::warn!(secs = grace.as_secs(), "shutdown grace period over: closing the remaining connections");
                Ok(())
            }
        };
        acceptor.abort();
        if let Some(m) = metrics {
            m.abort();
        }
        // Audit the last refused-for-rate counts, then sync and sign the log's head.
        if let Err(e) = gateway.flush_rate_limited().await {
            tracing::warn!(error = %e, "could not audit the last rate-limited calls");
        }
        let audit = gateway.audit().shutdown().await;
        result?;
        // A log that could not be synced at the end is a failed shutdown, not a clean one.
        audit.map_err(|source| ServerError::Audit {
            dir: self.config.audit.dir.display().to_string(),
            source,
        })?;
        Ok(())
    }
}

/// Applies a changed configuration file without a restart: clients, rights, purposes and
/// limits; the CRL; the server certificate and key. Open connections stay; a client removed
/// or revoked is refused from its next call on them. A bad file changes nothing.
#[derive(Clone)]
pub struct Reloader {
    config_path: PathBuf,
    running: Config,
    gateway: Arc<Gateway>,
    tls: Arc<ArcSwap<rustls::ServerConfig>>,
}

/// Why a reload was refused; the running configuration stays.
#[derive(Debug, Error)]
pub enum ReloadError {
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    #[error(transparent)]
    Tls(#[from] TlsError),
}

impl Reloader {
    /// Re-reads and applies the configuration; on error nothing changes.
    pub fn reload(&self) -> Result<(), ReloadError> {
        let new = Config::load(&self.config_path)?;
        let tls = identity::load(&new.tls)?;
        let old = &self.running;
        let restart_only = [
            (
                "server",
                format!("{:?}", old.server) != format!("{:?}", new.server),
            ),
            (
                "store",
                format!("{:?}", old.store) != format!("{:?}", new.store),
            ),
            (
                "audit",
                format!("{:?}", old.audit) != format!("{:?}", new.audit),
            ),
            (
                "cache",
                format!("{:?}", old.cache) != format!("{:?}", new.cache),
            ),
            (
                "limits",
                format!("{:?}", old.limits) != format!("{:?}", new.limits),
            ),
        ];
        for (section, changed) in restart_only {
            if changed {
                tracing::warn!(
                    section,
                    "reload: changes to this section take effect only after a restart"
                );
            }
        }
        self.gateway
            .set_policy(Policy::new(&new, tls.revoked.clone()));
        set_certificate_expiry(&self.gateway, &new);
        self.tls.store(tls.server_config);
        tracing::info!(clients = new.clients.len(), "configuration reloaded");
        Ok(())
    }
}

/// Creates `dir` (and its parents) readable by the owner only, if it does not exist.
fn create_private_dir(dir: &std::path::Path) -> std::io::Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir)
}

/// Tells the metrics when the server and client-CA certificates expire.
fn set_certificate_expiry(gateway: &Gateway, config: &Config) {
    let watched = [
        ("server", &config.tls.cert),
        ("client_ca", &config.tls.client_ca),
    ]
    .into_iter()
    .filter_map(|(label, path)| identity::not_after(path).map(|t| (label, t)))
    .collect();
    gateway.metrics().set_certificates(watched);
}

/// Keeps the health service in step with the audit log: no audit, no service.
fn spawn_health_watch(gateway: Arc<Gateway>, reporter: tonic_health::server::HealthReporter) {
    let mut healthy = gateway.audit().health();
    tokio::spawn(async move {
        loop {
            let status = if *healthy.borrow_and_update() {
                ServingStatus::Serving
            } else {
                ServingStatus::NotServing
            };
            for name in [
                "",
                "popgate.v1.IdentityGateway",
                "popgate.v1.RegistryAdmin",
                "popgate.v1.Operator",
            ] {
                reporter.set_service_status(name, status).await;
            }
            if healthy.changed().await.is_err() {
                return;
            }
        }
    });
}

/// Accepts TCP connections and runs each TLS handshake in its own task.
async fn accept_loop(
    listener: TcpListener,
    tls: Arc<ArcSwap<rustls::ServerConfig>>,
    tx: mpsc::Sender<PeerStream>,
    max_connections: usize,
) {
    let handshakes = Arc::new(Semaphore::new(MAX_HANDSHAKES));
    let connections = Arc::new(Semaphore::new(max_connections));
    loop {
        // A place for the connection for its whole life, then one among the handshakes.
        let Ok(connection) = connections.clone().acquire_owned().await else {
            return;
        };
        let Ok(permit) = handshakes.clone().acquire_owned().await else {
            return;
        };
        let (tcp, addr) = match listener.accept().await {
            Ok(conn) => conn,
            Err(e) => {
                // Out of file descriptors and the like: back off instead of spinning.
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::debug!(peer = %addr, error = %e, "could not set TCP_NODELAY");
        }
        let acceptor = TlsAcceptor::from(tls.load_full());
        let tx = tx.clone();
        tokio::spawn(async move {
            let _permit = permit;
            match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                Ok(Ok(stream)) => match PeerStream::new(stream, addr, connection) {
                    Some(conn) => {
                        let _ = tx.send(conn).await;
                    }
                    None => {
                        tracing::info!(peer = %addr, "connection without client certificate dropped")
                    }
                },
                Ok(Err(e)) => tracing::info!(peer = %addr, error = %e, "TLS handshake refused"),
                Err(_) => tracing::info!(peer = %addr, "TLS handshake timed out"),
            }
        });
    }
}

/// An accepted, handshaken connection and who is at the other end.
pub struct PeerStream {
    inner: TlsStream<TcpStream>,
    peer: Arc<Peer>,
    /// Released when the connection closes.
    _place: OwnedSemaphorePermit,
}

impl PeerStream {
    /// Wraps a finished handshake. `None` when the client sent no certificate (the verifier
    /// requires one, so this does not happen with our configuration).
    fn new(
        inner: TlsStream<TcpStream>,
        addr: SocketAddr,
        place: OwnedSemaphorePermit,
    ) -> Option<PeerStream> {
        let leaf = inner.get_ref().1.peer_certificates()?.first()?;
        let peer = Arc::new(Peer::from_certificate(addr, leaf.as_ref()));
        Some(PeerStream {
            inner,
            peer,
            _place: place,
        })
    }
}

impl tonic::transport::server::Connected for PeerStream {
    type ConnectInfo = Arc<Peer>;

    fn connect_info(&self) -> Arc<Peer> {
        self.peer.clone()
    }
}

impl AsyncRead for PeerStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for PeerStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}
