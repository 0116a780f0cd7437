//! The one place that knows which backends exist and picks them from the configuration: the
//! population store, the audit sink and where rate limits are kept. Everything above sees the
//! traits only ([`Store`], [`AuditSink`], [`RateBackend`]).

use std::sync::Arc;

use crate::audit::{AuditLog, AuditOptions, AuditSink, SyncObserver};
use crate::clock::Clock;
use crate::config::{AuditConfig, Config};
use crate::limits::RateBackend;
use crate::limits::local::LocalRates;
use crate::store::{Loader, SledStore, Store};

use super::ServerError;

/// The backends of one gateway.
pub struct Backends {
    pub store: Arc<dyn Store>,
    /// The same data as `store`, for seeding (tests and benchmarks load a running store).
    pub loader: Arc<dyn Loader>,
    pub audit: Arc<dyn AuditSink>,
    pub rates: Arc<dyn RateBackend>,
}

/// Opens the backends `config` names, on `clock`; `on_sync` is told each audit sync's time.
pub fn open(
    config: &Config,
    clock: &Clock,
    on_sync: Option<SyncObserver>,
) -> Result<Backends, ServerError> {
    let sled = Arc::new(SledStore::open_with_cache(
        &config.store.path,
        config.store.cache_mib,
    )?);
    tracing::info!(
        cache_mib = config.store.cache_mib,
        "population store opened"
    );
    let mut options = audit_options(&config.audit, clock);
    options.on_sync = on_sync;
    let audit = AuditLog::open(options).map_err(|source| ServerError::Audit {
        dir: config.audit.dir.display().to_string(),
        source,
    })?;
    Ok(Backends {
        store: sled.clone(),
        loader: sled,
        audit: Arc::new(audit),
        rates: Arc::new(LocalRates {
            clock: clock.clone(),
        }),
    })
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
