//! The population store in PostgreSQL, shared by every gateway node of a cluster
//! (`[store] backend = "postgres"`).
//!
//! Connections and the schema are `crate::pg`'s. Here:
//! - `coherence`: the cache lease and the commit-driven invalidation that keep every node's
//!   reuse cache from answering with an older version once a write has returned.
//! - `changes`: the change log and the follow lists ([`ChangeLog`](crate::store::ChangeLog)).
//! - `loader`: seeding with `COPY`.
//!
//! A write is one transaction: the id's advisory lock (so two nodes writing one citizen take
//! turns, creates included), the current version read, the compare decided here, the audit
//! record approved (`BeforeCommit`), the row written, the change logged with the next seq
//! (`schema`), the notification queued; then commit. Of two nodes racing on one version, the
//! second sees the first's version and gets `VersionMismatch`.

mod changes;
mod coherence;
mod loader;

use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use tokio::sync::watch;

pub use crate::pg::{DbUrl, Migrated, SchemaError};
pub use loader::PgLoader;

use self::coherence::Coherence;
use super::{BeforeCommit, PutOutcome, Store, StoreError, encoding};
use crate::cache::ReuseCache;
use crate::citizen::Citizen;
use crate::id::CitizenId;
use crate::pg::{Readers, Writers, schema, unavailable};
use crate::registry;

/// Read connections shared by every call; each pipelines many queries at once.
const READERS: usize = 2;
/// Write connections: a transaction holds one from its first statement to its commit.
const WRITERS: usize = 2;
/// `GetStats.records` may be this old (the contract allows 5 s).
const COUNT_FRESH: Duration = Duration::from_secs(2);

/// Told how long each write waited for the other nodes' caches.
pub type WaitObserver = Arc<dyn Fn(Duration) + Send + Sync>;

/// Where this node stands in the cluster.
#[derive(Clone)]
pub struct NodeConfig {
    pub node_id: String,
    /// How long this node may serve from its cache without hearing from the database.
    pub lease: Duration,
    pub on_write_wait: Option<WaitObserver>,
}

pub struct PgStore {
    on_write_wait: Option<WaitObserver>,
    readers: Readers,
    writers: Writers,
    coherence: Arc<Coherence>,
    count: Mutex<Option<(u64, Instant)>>,
}

/// Connects, applies missing migrations (refusing a schema newer than this binary's), and
/// opens the store. `cache` is this node's reuse cache, which other nodes' writes invalidate.
pub async fn open(
    url: &DbUrl,
    node: NodeConfig,
    cache: Arc<ReuseCache>,
) -> Result<PgStore, SchemaError> {
    let db = url
        .connector(&format!("popgate-{}", node.node_id))
        .map_err(StoreError::Unavailable)?;
    let mut conn = db.connect().await?;
    let migrated = schema::migrate(&mut conn.client).await?;
    if migrated.from != migrated.to {
        tracing::info!(
            from = migrated.from,
            to = migrated.to,
            "database schema migrated"
        );
    }
    drop(conn);
    let coherence = Coherence::new(node.node_id.clone(), node.lease, cache);
    // Its own name, so that an operator (or a test) can tell the notification connection.
    let listen = url
        .connector(&format!("popgate-{}-listen", node.node_id))
        .map_err(StoreError::Unavailable)?;
    tokio::spawn(coherence.clone().run(listen));
    tracing::info!(database = %db.describe(), node = %node.node_id, "population store in PostgreSQL");
    let store = PgStore {
        on_write_wait: node.on_write_wait.clone(),
        readers: Readers::start(&db, READERS),
        writers: Writers::new(&db, WRITERS),
        coherence,
        count: Mutex::new(None),
    };
    // The horizon starts where the log is; notifications move it from here.
    if let Err(e) = crate::store::ChangeLog::refresh_horizon(&store).await {
        tracing::warn!(error = %e, "cannot read the change log's head yet; the change feed will retry");
    }
    Ok(store)
}

/// `popgate db migrate`: the schema up to date, without starting a store.
pub async fn migrate(url: &DbUrl) -> Result<Migrated, SchemaError> {
    let db = url
        .connector("popgate-migrate")
        .map_err(StoreError::Unavailable)?;
    let mut conn = db.connect().await?;
    schema::migrate(&mut conn.client).await
}

fn key(id: CitizenId) -> i64 {
    // Ids have 12 digits: far inside i64.
    id.as_u64() as i64
}

/// The statements of a write, prepared once per write connection.
const LOCK_ID: &str = "SELECT pg_advisory_xact_lock($1)";
const READ_FOR_WRITE: &str = "SELECT record FROM citizens WHERE id = $1";
const UPSERT: &str = "INSERT INTO citizens (id, version, record) VALUES ($1, $2, $3)
     ON CONFLICT (id) DO UPDATE SET version = EXCLUDED.version, record = EXCLUDED.record";
/// The next seq, the change log's row and the notification (payload "seq id node"), at once.
const LOG_CHANGE: &str = "WITH s AS (
         UPDATE counters SET change_seq = change_seq + 1, citizens = citizens + $1
         WHERE id = 1 RETURNING change_seq),
     c AS (
         INSERT INTO changes (seq, citizen_id, version, fields, record, node)
         SELECT change_seq, $2, $3, $4, $5, $6 FROM s RETURNING seq)
     SELECT seq, pg_notify($7, seq::text || ' ' || $8::text || ' ' || $6::text) FROM c";

impl PgStore {
    /// The other nodes holding a live lease, with how long each has left.
    async fn live_nodes(&self) -> Result<Vec<(String, Duration)>, StoreError> {
        let r = self.readers.get()?;
        let rows = r
            .client
            .query(
                "SELECT node_id, (extract(epoch FROM lease_until - now()) * 1000)::bigint
                 FROM nodes WHERE lease_until > now() AND node_id <> $1",
                &[&self.coherence.node()],
            )
            .await
            .map_err(unavailable)?;
        Ok(rows
            .iter()
            .map(|row| {
                let left: i64 = row.get(1);
                (
                    row.get::<_, String>(0),
                    Duration::from_millis(left.max(0) as u64),
                )
            })
            .collect())
    }
}

#[async_trait]
impl Store for PgStore {
    async fn get(&self, id: CitizenId) -> Result<Option<Citizen>, StoreError> {
        let r = self.readers.get()?;
        let row = r
            .client
            .query_opt(&r.get, &[&key(id)])
            .await
            .map_err(unavailable)?;
        match row {
            Some(row) => Ok(Some(encoding::decode(id, row.get::<_, &[u8]>(0))?)),
            None => Ok(None),
        }
    }

    async fn put(
        &self,
        mut record: Citizen,
        expected_version: u64,
        before_commit: &dyn BeforeCommit,
    ) -> Result<PutOutcome, StoreError> {
        let id = record.id;
        let seq = {
            let mut guard = self.writers.get().await?;
            let conn = guard
                .as_mut()
                .ok_or_else(|| StoreError::Unavailable("no write connection".into()))?;
            let lock = conn.statement(LOCK_ID).await?;
            let read = conn.statement(READ_FOR_WRITE).await?;
            let upsert = conn.statement(UPSERT).await?;
            let log = conn.statement(LOG_CHANGE).await?;
            let tx = conn.client.transaction().await.map_err(unavailable)?;
            tx.execute(&lock, &[&key(id)]).await.map_err(unavailable)?;
            let old = tx
                .query_opt(&read, &[&key(id)])
                .await
                .map_err(unavailable)?
                .map(|row| encoding::decode(id, row.get::<_, &[u8]>(0)))
                .transpose()?;
            let current = old.as_ref().map(|c| c.version);
            match (current, expected_version) {
                (Some(v), 0) => return Ok(PutOutcome::AlreadyExists { current: v }),
                (None, e) if e != 0 => return Ok(PutOutcome::VersionMismatch { current: 0 }),
                (Some(v), e) if v != e => return Ok(PutOutcome::VersionMismatch { current: v }),
                _ => {}
            }
            record.version = current.unwrap_or(0) + 1;
            if before_commit.approve(&record).await.is_err() {
                // Dropping the transaction rolls it back.
                return Ok(PutOutcome::Vetoed);
            }
            let bytes = encoding::encode(&record);
            let version = record.version as i64;
            tx.execute(&upsert, &[&key(id), &version, &bytes])
                .await
                .map_err(unavailable)?;
            // Last before the commit, in one statement: the counter's row lock orders the
            // writers, so seqs are drawn in commit order (see `schema`), and it is held from
            // here to the commit — one round trip and the commit, nothing more.
            let new = i64::from(old.is_none());
            let fields: Vec<&str> = registry::fields_changed(old.as_ref(), &record).names();
            let id_text = id.as_u64().to_string();
            let seq: i64 = tx
                .query_one(
                    &log,
                    &[
                        &new,
                        &key(id),
                        &version,
                        &fields,
                        &bytes,
                        &self.coherence.node(),
                        &coherence::CHANGES,
                        &id_text,
                    ],
                )
                .await
                .map_err(unavailable)?
                .get(0);
            tx.commit().await.map_err(unavailable)?;
            seq as u64
        };
        // Committed: visible to every read of the database from here on. Before answering,
        // every other node's cache must have dropped the old version (`coherence`).
        let committed = Instant::now();
        match self.live_nodes().await {
            Ok(live) => self.coherence.await_acks(seq, live).await,
            Err(e) => {
                // Without the list, wait out the longest lease any node may hold.
                tracing::warn!(error = %e, "cannot read the cluster's leases: waiting one lease");
                tokio::time::sleep(self.coherence.lease()).await;
            }
        }
        if let Some(observe) = &self.on_write_wait {
            observe(committed.elapsed());
        }
        if record.version == 1 {
            // One more citizen: count again next time.
            *self.count.lock().unwrap_or_else(PoisonError::into_inner) = None;
        }
        Ok(PutOutcome::Written(Box::new(record)))
    }

    async fn count(&self) -> Result<u64, StoreError> {
        if let Some((n, at)) = *self.count.lock().unwrap_or_else(PoisonError::into_inner)
            && at.elapsed() < COUNT_FRESH
        {
            return Ok(n);
        }
        let r = self.readers.get()?;
        let n: i64 = r
            .client
            .query_one(&r.count, &[])
            .await
            .map_err(unavailable)?
            .get(0);
        let n = n.max(0) as u64;
        *self.count.lock().unwrap_or_else(PoisonError::into_inner) = Some((n, Instant::now()));
        Ok(n)
    }

    async fn check(&self) -> Result<(), StoreError> {
        let r = self.readers.get()?;
        r.client
            .simple_query("SELECT 1")
            .await
            .map_err(unavailable)?;
        if !*self.coherence.held().borrow() {
            return Err(StoreError::Unavailable(
                "this node holds no cache lease: its notification connection is down".into(),
            ));
        }
        Ok(())
    }

    fn may_cache(&self) -> bool {
        self.coherence.may_cache()
    }

    fn health(&self) -> Option<watch::Receiver<bool>> {
        Some(self.coherence.held())
    }

    fn members(&self) -> Option<watch::Receiver<usize>> {
        Some(self.coherence.members())
    }

    async fn leave(&self) {
        self.coherence.leave();
        // Ends the lease now (the database's clock), so a write on another node no longer
        // waits for this node's acknowledgement. If the database cannot be reached, the lease
        // simply runs out, as for a node that died.
        let ended = async {
            let mut guard = self.writers.get().await?;
            let conn = guard
                .as_mut()
                .ok_or_else(|| StoreError::Unavailable("no write connection".into()))?;
            conn.client
                .execute(
                    "UPDATE nodes SET lease_until = now() WHERE node_id = $1",
                    &[&self.coherence.node()],
                )
                .await
                .map_err(unavailable)
        };
        match tokio::time::timeout(self.coherence.lease(), ended).await {
            Ok(Ok(_)) => {
                tracing::info!(node = %self.coherence.node(), "left the cluster: cache lease given up")
            }
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "cannot give up the cache lease: it runs out by itself")
            }
            Err(_) => tracing::warn!("giving up the cache lease timed out: it runs out by itself"),
        }
    }
}
