//! The one place that knows which backends exist and picks them from the configuration: the
//! population store, the audit sink and where rate limits are kept. Everything above sees the
//! traits only ([`Store`], [`AuditSink`], [`RateBackend`]).

use std::sync::Arc;
use std::time::Duration;

use crate::audit::checkpoint::Signer;
use crate::audit::database::{DbAuditLog, DbAuditOptions};
use crate::audit::{AuditLog, AuditOptions, AuditSink, SyncObserver};
use crate::cache::ReuseCache;
use crate::clock::Clock;
use crate::config::{AuditBackend, AuditConfig, Config, StoreBackend};
use crate::limits::RateBackend;
use crate::limits::local::LocalRates;
use crate::limits::shared::{Membership, SharedRates};
use crate::metrics::Metrics;
use crate::store::postgres::{self, DbUrl, NodeConfig, PgLoader};
use crate::store::{ChangeLog, Loader, SledStore, Store, StoreError};

use super::ServerError;

/// The backends of one gateway.
pub struct Backends {
    pub store: Arc<dyn Store>,
    /// The change log and follow lists, kept by the same backend as `store`.
    pub changes: Arc<dyn ChangeLog>,
    /// The same data as `store`, for seeding (tests and benchmarks load a running store).
    pub loader: Arc<dyn Loader>,
    pub audit: Arc<dyn AuditSink>,
    pub rates: Arc<dyn RateBackend>,
}

/// Opens the backends `config` names, on `clock`, reporting to `metrics`; `cache` is the
/// node's reuse cache, which a shared store's other writers invalidate.
pub async fn open(
    config: &Config,
    clock: &Clock,
    metrics: &Metrics,
    cache: &Arc<ReuseCache>,
) -> Result<Backends, ServerError> {
    let (store, changes, loader, members) = open_store(config, clock, cache, metrics).await?;
    let fsync = metrics.audit_fsync.with_label_values(&[] as &[&str]);
    let on_sync = Some(SyncObserver(Arc::new(move |took| {
        fsync.observe(took.as_secs_f64())
    })));
    let audit: Arc<dyn AuditSink> = match config.audit.backend {
        AuditBackend::File => {
            let mut options = audit_options(&config.audit, clock);
            options.on_sync = on_sync;
            Arc::new(
                AuditLog::open(options).map_err(|source| ServerError::Audit {
                    dir: config.audit.dir.display().to_string(),
                    source,
                })?,
            )
        }
        AuditBackend::Postgres => {
            let url = db_url(config)?;
            let node = config.node_id().to_owned();
            let db = url
                .connector(&format!("popgate-{node}-audit"))
                .map_err(|e| ServerError::Store(StoreError::Unavailable(e)))?;
            let signer = config
                .audit
                .signing_key
                .as_deref()
                .map(Signer::from_pem_file)
                .transpose()
                .map_err(|source| ServerError::Audit {
                    dir: "audit.signing_key".into(),
                    source,
                })?;
            let opts = DbAuditOptions {
                node,
                durability: config.audit.durability,
                checkpoint_every: config.audit.checkpoint_every,
                checkpoint_secs: config.audit.checkpoint_secs,
                signer,
                clock: clock.clone(),
            };
            Arc::new(
                DbAuditLog::open(db, opts)
                    .await
                    .map_err(|source| ServerError::Audit {
                        dir: "the database (audit_log)".into(),
                        source,
                    })?,
            )
        }
    };
    Ok(Backends {
        store,
        changes,
        loader,
        audit,
        rates: match &config.limits.shared_url {
            None => Arc::new(LocalRates {
                clock: clock.clone(),
            }),
            Some(url) => Arc::new(
                SharedRates::new(url, clock.clone(), members, config.node_id())
                    .map_err(|e| ServerError::Limits(format!("limits.shared_url: {e}")))?,
            ),
        },
    })
}

type Opened = (
    Arc<dyn Store>,
    Arc<dyn ChangeLog>,
    Arc<dyn Loader>,
    Membership,
);

async fn open_store(
    config: &Config,
    clock: &Clock,
    cache: &Arc<ReuseCache>,
    metrics: &Metrics,
) -> Result<Opened, ServerError> {
    match config.store.backend {
        StoreBackend::Sled => {
            let sled = Arc::new(
                SledStore::open_with_cache(config.store.sled_path(), config.store.cache_mib)?
                    .with_clock(clock.clone()),
            );
            tracing::info!(
                cache_mib = config.store.cache_mib,
                "population store opened"
            );
            // One node: its share of a rate is the whole of it.
            Ok((sled.clone(), sled.clone(), sled, Arc::new(|| 1)))
        }
        StoreBackend::Postgres => {
            let url = db_url(config)?;
            let cluster = config.cluster.as_ref().ok_or_else(|| {
                ServerError::Store(StoreError::Unavailable("[cluster] is missing".into()))
            })?;
            let wait = metrics.write_wait.clone();
            let node = NodeConfig {
                node_id: cluster.node_id.clone(),
                lease: Duration::from_millis(cluster.lease_ms),
                on_write_wait: Some(Arc::new(move |d| wait.observe(d.as_secs_f64()))),
            };
            let store = Arc::new(postgres::open(&url, node, cache.clone()).await?);
            let loader = PgLoader::open(&url, false)?;
            let count = store.members().expect("a shared store knows its members");
            let members: Membership = Arc::new(move || *count.borrow());
            Ok((store.clone(), store, Arc::new(loader), members))
        }
    }
}

fn db_url(config: &Config) -> Result<DbUrl, ServerError> {
    let url = config.store.url.as_deref().unwrap_or_default();
    DbUrl::parse(url).map_err(|e| ServerError::Store(StoreError::Unavailable(e)))
}

/// The file audit log's options from `[audit]`.
pub fn audit_options(config: &AuditConfig, clock: &Clock) -> AuditOptions {
    let mut o = AuditOptions::new(config.dir.clone());
    o.durability = config.durability;
    o.flush_ms = config.flush_ms;
    o.roll_bytes = config.roll_bytes;
    o.checkpoint_every = config.checkpoint_every;
    o.checkpoint_secs = config.checkpoint_secs;
    o.signing_key = config.signing_key.clone();
    o.clock = clock.clone();
    o
}
