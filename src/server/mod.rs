//! Wiring: builds the gateway from a validated [`Config`] and serves it on an already-bound
//! listener until a shutdown future completes (tests bind `127.0.0.1:0` and never sleep).
//!
//! Layers, outermost first: the [`transport`] (TCP, connection bound, TLS with a client
//! certificate, HTTP/2 limits), the gRPC services (thin, `crate::grpc`) over the [`Gateway`]
//! (identity → role → limits → rights → cache/store → audit), plus health and reflection.
//! `backends` picks the store, the audit sink and the rate limiter from the configuration.

pub(crate) mod backends;
pub mod transport;

use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use thiserror::Error;
use tokio::net::TcpListener;
use tonic_health::ServingStatus;

use crate::cache::ReuseCache;
use crate::clock::Clock;
use crate::config::Config;
use crate::gateway::{Gateway, Parts};
use crate::grpc::identity_gateway::IdentityGatewayService;
use crate::grpc::operator::OperatorService;
use crate::grpc::registry::RegistryService;
use crate::grpc::status::SizeLimitStatus;
use crate::identity::{self, TlsError};
use crate::pb;
use crate::policy::Policy;
use crate::store::{Loader, StoreError};

/// Why the gateway could not start or stopped.
#[derive(Debug, Error)]
pub enum ServerError {
    #[error(transparent)]
    Tls(#[from] TlsError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("store.url: {0}")]
    Schema(#[from] crate::store::postgres::SchemaError),
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
    #[error("{0}")]
    Limits(String),
    #[error("console: {0}")]
    Console(#[from] crate::console::ConsoleError),
    #[error("serving failed: {0}")]
    Transport(#[from] tonic::transport::Error),
}

/// How often refused-for-rate calls are written to the audit log, in aggregate.
const RATE_LIMIT_AUDIT_PERIOD: Duration = Duration::from_secs(1);

/// A built gateway, ready to serve.
pub struct Server {
    config: Config,
    gateway: Arc<Gateway>,
    loader: Arc<dyn Loader>,
    tls: Arc<ArcSwap<rustls::ServerConfig>>,
    metrics_listener: Option<TcpListener>,
    /// The audit console's, when `[console]` is set and the caller bound it.
    console_listener: Option<TcpListener>,
    connections: transport::Connections,
}

impl Server {
    /// Opens the backends and loads the TLS material, on the system clock.
    pub async fn build(config: Config) -> Result<Server, ServerError> {
        Self::build_with_clock(config, Clock::system()).await
    }

    /// As [`Server::build`], with every timer of the gateway (rates, cache TTL, audit
    /// checkpoints and probes) on `clock`: tests pass a manual clock and move time themselves.
    pub async fn build_with_clock(config: Config, clock: Clock) -> Result<Server, ServerError> {
        let tls = identity::load(&config.tls)?;
        // Citizens' records and the access log are for the gateway's user alone, whatever the
        // umask; folders that already exist keep the modes their operator gave them.
        let sled = config.store.path.as_deref();
        let audit_dir = (config.audit.backend == crate::config::AuditBackend::File)
            .then_some(config.audit.dir.as_path());
        for (key, dir) in [("store.path", sled), ("audit.dir", audit_dir)] {
            let Some(dir) = dir else { continue };
            create_private_dir(dir).map_err(|source| ServerError::Dir {
                key,
                dir: dir.display().to_string(),
                source,
            })?;
        }
        let metrics = Arc::new(crate::metrics::Metrics::new());
        let cache = Arc::new(ReuseCache::new(
            config.cache.capacity,
            Duration::from_secs(config.cache.ttl_secs),
            clock.clone(),
        ));
        let b = backends::open(&config, &clock, &metrics, &cache).await?;
        let gateway = Arc::new(Gateway::new(Parts {
            policy: Policy::new(&config, tls.revoked.clone()),
            store: b.store,
            changes: b.changes,
            cache,
            node_id: config.node_id().to_owned(),
            audit: b.audit,
            rates: b.rates,
            metrics,
            max_in_flight: config.limits.max_in_flight,
            clock,
        }));
        set_certificate_expiry(&gateway, &config);
        Ok(Server {
            config,
            gateway,
            loader: b.loader,
            tls: Arc::new(ArcSwap::new(tls.server_config)),
            metrics_listener: None,
            console_listener: None,
            connections: transport::Connections::default(),
        })
    }

    /// Serves Prometheus metrics on `listener` (plain HTTP) alongside the gateway.
    pub fn with_metrics_listener(mut self, listener: TcpListener) -> Server {
        self.metrics_listener = Some(listener);
        self
    }

    /// Serves the audit console (`[console]`) on `listener` alongside the gateway, with the
    /// same TLS configuration (reloads included).
    pub fn with_console_listener(mut self, listener: TcpListener) -> Server {
        self.console_listener = Some(listener);
        self
    }

    pub fn gateway(&self) -> &Arc<Gateway> {
        &self.gateway
    }

    /// Bulk loading into the store being served (seeding tests and benchmarks; a write past
    /// the gateway, so the reuse cache does not hear of it).
    pub fn loader(&self) -> &Arc<dyn Loader> {
        &self.loader
    }

    /// The client connections being served.
    pub fn connections(&self) -> &transport::Connections {
        &self.connections
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
        gateway.spawn_change_feed();
        gateway.spawn_change_pruner(Duration::from_secs(self.config.changes.retain_secs));
        let (health_reporter, health_service) = tonic_health::server::health_reporter();
        spawn_health_watch(gateway.clone(), health_reporter);
        let reflection = tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(pb::FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
            .build_v1()
            .map_err(|e| ServerError::Reflection(e.to_string()))?;

        let metrics = self.metrics_listener.map(|l| {
            let (gw, connections) = (gateway.clone(), self.connections.clone());
            let render: crate::metrics::Render = Arc::new(move || {
                let (gw, open) = (gw.clone(), connections.open());
                Box::pin(async move { gw.render_metrics(open).await })
            });
            tokio::spawn(crate::metrics::serve(l, render))
        });
        let console = match self.console_listener {
            Some(l) => {
                let console =
                    Arc::new(crate::console::Console::new(&self.config, gateway.clone())?);
                Some(tokio::spawn(crate::console::serve(
                    l,
                    self.tls.clone(),
                    console,
                )))
            }
            None => None,
        };
        let limits = &self.config.limits;
        let max_msg = limits.max_message_bytes;
        let (incoming, acceptor) = transport::incoming(
            listener,
            self.tls.clone(),
            limits.max_connections,
            self.connections.clone(),
        );
        let (stopping_tx, stopping_rx) = tokio::sync::oneshot::channel::<()>();
        let serving = transport::http2(limits)
            .add_service(SizeLimitStatus::new(
                pb::identity_gateway_server::IdentityGatewayServer::new(
                    IdentityGatewayService::new(gateway.clone(), max_msg),
                )
                .max_decoding_message_size(max_msg),
                max_msg,
            ))
            .add_service(SizeLimitStatus::new(
                pb::registry_admin_server::RegistryAdminServer::new(RegistryService::new(
                    gateway.clone(),
                ))
                .max_decoding_message_size(max_msg),
                max_msg,
            ))
            .add_service(SizeLimitStatus::new(
                pb::operator_server::OperatorServer::new(OperatorService::new(gateway.clone()))
                    .max_decoding_message_size(max_msg),
                max_msg,
            ))
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
        if let Some(c) = console {
            c.abort();
        }
        // Audit the last refused-for-rate counts, then sync and sign the log's head.
        if let Err(e) = gateway.flush_rate_limited().await {
            tracing::warn!(error = %e, "could not audit the last rate-limited calls");
        }
        let audit = gateway.shutdown().await;
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
            ("server", old.server != new.server),
            ("store", old.store != new.store),
            ("audit", old.audit != new.audit),
            ("cache", old.cache != new.cache),
            ("limits", old.limits != new.limits),
            ("changes", old.changes != new.changes),
            ("console", old.console != new.console),
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

/// Keeps the health service in step with what the gateway needs to serve: an audit log it
/// can write and a store that answers (and, for a shared store, a live connection to it).
/// Any of them down, no service.
fn spawn_health_watch(gateway: Arc<Gateway>, reporter: tonic_health::server::HealthReporter) {
    let mut audit = gateway.audit_health();
    let mut store = gateway.store_health();
    let mut connection = gateway.store_connection();
    drop(gateway);
    tokio::spawn(async move {
        loop {
            let connected = connection.as_mut().is_none_or(|c| *c.borrow_and_update());
            let serving = *audit.borrow_and_update() && *store.borrow_and_update() && connected;
            let status = if serving {
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
            let connection_changed = async {
                match connection.as_mut() {
                    Some(c) => c.changed().await,
                    None => std::future::pending().await,
                }
            };
            let changed = tokio::select! {
                r = audit.changed() => r,
                r = store.changed() => r,
                r = connection_changed => r,
            };
            if changed.is_err() {
                return;
            }
        }
    });
}
