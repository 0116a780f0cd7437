//! Reading the audit log in the database (`[audit] backend = "postgres"`) without changing it:
//! the connection, the schema check, one consistent snapshot, and rows streamed from a portal
//! a batch at a time. Shared by the query engine's database source
//! ([`DbLog`](super::query::DbLog)), `audit verify --db` ([`super::verify_db`]) and `audit
//! export` ([`super::export`]); what the rows mean is theirs.
//!
//! Read-only by construction: the schema is checked, never migrated (a reader pointed at the
//! wrong database must not create tables in it), and every read runs in a `REPEATABLE READ
//! READ ONLY` transaction. The snapshot is what makes a check of a live log sound: the writers
//! commit a node's records before the checkpoint that names them, so a reader that saw the
//! checkpoint in a later snapshot than the records would report records cut off that are not.

use std::collections::VecDeque;

use thiserror::Error;
use tokio_postgres::types::ToSql;
use tokio_postgres::{Client, IsolationLevel, Portal, Row, Transaction};

use crate::pg::{DbUrl, SchemaError, schema};
use crate::store::StoreError;

/// Rows fetched from a portal at a time: what a reader holds in memory, whatever the table's
/// size.
pub const BATCH: i32 = 2000;

/// What can go wrong reading the database log, by whose fault.
#[derive(Debug, Error)]
pub enum DbReadError {
    /// The URL is not one (the caller's).
    #[error("{0}")]
    BadUrl(String),
    /// The database cannot be reached (the network's, or the URL's).
    #[error("{0}")]
    Unreachable(String),
    /// No popgate schema, or one this binary cannot read (the operator's: the wrong database,
    /// or a binary too old).
    #[error(transparent)]
    Schema(SchemaError),
    /// A query failed midway (the database's).
    #[error("reading the audit log in the database: {0}")]
    Read(String),
}

pub(crate) fn read_error(e: impl std::fmt::Display) -> DbReadError {
    DbReadError::Read(e.to_string())
}

/// Connects for reading and checks that the schema holds the audit tables and is not newer
/// than this binary knows.
pub async fn connect(url: &DbUrl) -> Result<Client, DbReadError> {
    let db = url
        .connector("popgate-audit-reader")
        .map_err(DbReadError::BadUrl)?;
    let conn = db.connect().await.map_err(|e| match e {
        StoreError::Unavailable(m) => DbReadError::Unreachable(m),
        e => DbReadError::Unreachable(e.to_string()),
    })?;
    schema::check(&conn.client, schema::AUDIT_LOG)
        .await
        .map_err(|e| match e {
            SchemaError::Store(StoreError::Unavailable(m)) => DbReadError::Read(m),
            e => DbReadError::Schema(e),
        })?;
    Ok(conn.client)
}

/// One consistent, read-only snapshot of the database.
pub async fn snapshot(client: &mut Client) -> Result<Transaction<'_>, DbReadError> {
    client
        .build_transaction()
        .isolation_level(IsolationLevel::RepeatableRead)
        .read_only(true)
        .start()
        .await
        .map_err(read_error)
}

/// The rows of one query, fetched from a portal [`BATCH`] at a time.
pub struct Rows<'a> {
    tx: &'a Transaction<'a>,
    portal: Portal,
    buf: VecDeque<Row>,
    done: bool,
}

impl<'a> Rows<'a> {
    pub async fn open(
        tx: &'a Transaction<'a>,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Rows<'a>, DbReadError> {
        let portal = tx.bind(sql, params).await.map_err(read_error)?;
        Ok(Rows {
            tx,
            portal,
            buf: VecDeque::new(),
            done: false,
        })
    }

    /// The next batch of rows, empty at the end.
    pub async fn batch(&mut self) -> Result<Vec<Row>, DbReadError> {
        if !self.buf.is_empty() {
            return Ok(self.buf.drain(..).collect());
        }
        if self.done {
            return Ok(Vec::new());
        }
        let rows = self
            .tx
            .query_portal(&self.portal, BATCH)
            .await
            .map_err(read_error)?;
        // A short batch is the last: no round trip to learn that there is nothing more.
        self.done = rows.len() < BATCH as usize;
        Ok(rows)
    }

    /// The next row without taking it.
    pub async fn peek(&mut self) -> Result<Option<&Row>, DbReadError> {
        if self.buf.is_empty() && !self.done {
            let rows = self.batch().await?;
            self.buf.extend(rows);
        }
        Ok(self.buf.front())
    }

    /// The next row.
    pub async fn next(&mut self) -> Result<Option<Row>, DbReadError> {
        self.peek().await?;
        Ok(self.buf.pop_front())
    }
}

/// The nodes that have records or checkpoints, in order. Each table is read by skipping
/// through its primary key from one node to the next, so a huge log costs a few index probes
/// per node, not a scan.
pub async fn nodes(tx: &Transaction<'_>) -> Result<Vec<String>, DbReadError> {
    let sql = |table: &str| {
        format!(
            "WITH RECURSIVE n(node) AS (
                 (SELECT node FROM {table} ORDER BY node LIMIT 1)
                 UNION ALL
                 SELECT (SELECT t.node FROM {table} t WHERE t.node > n.node ORDER BY t.node LIMIT 1)
                 FROM n WHERE n.node IS NOT NULL
             )
             SELECT node FROM n WHERE node IS NOT NULL"
        )
    };
    let mut nodes = std::collections::BTreeSet::new();
    for table in ["audit_log", "audit_checkpoints"] {
        for row in tx.query(&sql(table), &[]).await.map_err(read_error)? {
            nodes.insert(row.get::<_, String>(0));
        }
    }
    Ok(nodes.into_iter().collect())
}

/// `text` as an SQL string literal, for the statements printed for an operator to run.
pub fn sql_literal(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}
