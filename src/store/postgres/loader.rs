//! Seeding PostgreSQL: batches sent with binary `COPY`, each on a connection of its own, from
//! the seeder's threads. Into an empty table the rows go straight in; into one that holds
//! citizens already they go through a per-connection staging table and
//! `INSERT … ON CONFLICT DO UPDATE`, so seeding again overwrites as the sled loader does.
//!
//! `Loader` is synchronous (the seeder runs threads of its own), the database client is not:
//! the loader owns a small runtime for its connections and waits on it, from a thread of its
//! own where the caller is itself inside a runtime.

use std::future::Future;
use std::sync::Mutex;
use std::sync::PoisonError;

use futures_util::pin_mut;
use tokio_postgres::Client;
use tokio_postgres::binary_copy::BinaryCopyInWriter;
use tokio_postgres::types::Type;

use crate::citizen::Citizen;
use crate::pg::{Db, DbUrl, SchemaError, schema, unavailable};
use crate::store::{Loader, StoreError, encoding};

pub struct PgLoader {
    runtime: Option<tokio::runtime::Runtime>,
    db: Db,
    /// Idle connections, each with its staging table made.
    idle: Mutex<Vec<Client>>,
    /// The table was empty when loading started: rows go straight in.
    direct: bool,
}

impl PgLoader {
    /// Connects, brings the schema up to date and prepares to load. `seeding`: nothing else
    /// writes while this loader runs (`popgate seed`), so an empty table takes the rows
    /// straight in; otherwise every batch is staged and merged.
    pub fn open(url: &DbUrl, seeding: bool) -> Result<PgLoader, SchemaError> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("popgate-loader")
            .enable_all()
            .build()
            .map_err(|e| StoreError::Unavailable(format!("cannot start a runtime: {e}")))?;
        let db = url
            .connector("popgate-loader")
            .map_err(StoreError::Unavailable)?;
        let mut loader = PgLoader {
            runtime: Some(runtime),
            db,
            idle: Mutex::new(Vec::new()),
            direct: false,
        };
        let direct = loader.run(async {
            let mut conn = loader.db.connect().await?;
            schema::migrate(&mut conn.client).await?;
            let empty: bool = conn
                .client
                .query_one("SELECT NOT EXISTS (SELECT 1 FROM citizens)", &[])
                .await
                .map_err(unavailable)?
                .get(0);
            Ok::<_, SchemaError>(empty)
        })?;
        loader.direct = seeding && direct;
        Ok(loader)
    }

    /// Runs `f` on the loader's runtime and waits for it.
    fn run<T: Send>(&self, f: impl Future<Output = T> + Send) -> T {
        let rt = self
            .runtime
            .as_ref()
            .expect("the runtime lives as long as the loader");
        if tokio::runtime::Handle::try_current().is_ok() {
            // Waiting inside another runtime would block its worker: wait on a thread.
            std::thread::scope(|s| {
                s.spawn(|| rt.block_on(f))
                    .join()
                    .unwrap_or_else(|p| std::panic::resume_unwind(p))
            })
        } else {
            rt.block_on(f)
        }
    }

    async fn client(&self) -> Result<Client, StoreError> {
        if let Some(c) = self
            .idle
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .pop()
            && !c.is_closed()
        {
            return Ok(c);
        }
        let c = self.db.connect().await?.client;
        c.batch_execute(
            "CREATE TEMP TABLE IF NOT EXISTS popgate_stage
                 (id bigint, version bigint, record bytea) ON COMMIT DELETE ROWS",
        )
        .await
        .map_err(unavailable)?;
        Ok(c)
    }

    async fn load_batch(&self, records: &[Citizen]) -> Result<(), StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(unavailable)?;
        let target = if self.direct {
            "citizens"
        } else {
            "popgate_stage"
        };
        let sink = tx
            .copy_in(&format!(
                "COPY {target} (id, version, record) FROM STDIN BINARY"
            ))
            .await
            .map_err(unavailable)?;
        let writer = BinaryCopyInWriter::new(sink, &[Type::INT8, Type::INT8, Type::BYTEA]);
        pin_mut!(writer);
        for c in records {
            let (id, version, bytes) =
                (c.id.as_u64() as i64, c.version as i64, encoding::encode(c));
            writer
                .as_mut()
                .write(&[&id, &version, &bytes])
                .await
                .map_err(unavailable)?;
        }
        writer.finish().await.map_err(unavailable)?;
        if !self.direct {
            tx.execute(
                "INSERT INTO citizens (id, version, record)
                 SELECT id, version, record FROM popgate_stage
                 ON CONFLICT (id) DO UPDATE SET version = EXCLUDED.version, record = EXCLUDED.record",
                &[],
            )
            .await
            .map_err(unavailable)?;
        }
        tx.commit().await.map_err(unavailable)?;
        self.idle
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(client);
        Ok(())
    }
}

impl Loader for PgLoader {
    fn load(&self, records: &[Citizen]) -> Result<(), StoreError> {
        self.run(self.load_batch(records))
    }

    /// Commits are durable already; this sets the kept count of citizens to the truth.
    fn flush(&self) -> Result<(), StoreError> {
        self.run(async {
            let c = self.client().await?;
            c.execute(
                "UPDATE counters SET citizens = (SELECT count(*) FROM citizens) WHERE id = 1",
                &[],
            )
            .await
            .map_err(unavailable)?;
            self.idle
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push(c);
            Ok(())
        })
    }

    fn count(&self) -> Result<u64, StoreError> {
        self.run(async {
            let c = self.client().await?;
            let n: i64 = c
                .query_one("SELECT citizens FROM counters WHERE id = 1", &[])
                .await
                .map_err(unavailable)?
                .get(0);
            self.idle
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push(c);
            Ok(n.max(0) as u64)
        })
    }
}

impl Drop for PgLoader {
    fn drop(&mut self) {
        // The idle connections belong to the runtime; neither may block a caller's runtime.
        self.idle
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clear();
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_background();
        }
    }
}
