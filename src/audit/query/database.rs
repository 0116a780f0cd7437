//! The audit log in the database (`audit_log`) as a [`Source`]: the rows that can match, in
//! log order, a batch at a time. Beside [`FileLog`](super::FileLog), and like it the only part
//! of the engine that knows where lines come from.
//!
//! The filters that an index serves go into the SQL: the citizen (`audit_log_citizen`) and the
//! time range (`audit_log_ts`); the other filters' needles become `strpos` tests, which cost
//! the server little and spare sending rows that cannot match. Every row is then judged on
//! its `record` text by the same [`Matcher`] as a file's lines, so the index columns only
//! narrow the scan and never decide what matches (`audit verify --db` checks that they agree
//! with the records).
//!
//! Log order across nodes is `ts`, then node and seq: each node's `ts` never decreases along
//! its seq, so every node's records keep their chain order and the nodes interleave in time.
//! One part is one batch of rows ([`db_read::BATCH`]), so memory stays bounded whatever the
//! table holds.

use tokio::runtime::Runtime;
use tokio::sync::Mutex;
use tokio_postgres::Client;
use tokio_postgres::types::ToSql;

use super::filter::{Filter, Matcher};
use super::fold::{BadLine, Fold, Order, Part, Skipped};
use super::{Page, QueryError, Source};
use crate::audit::db_read::{self, DbReadError, Rows};
use crate::audit::record::Record;
use crate::pg::DbUrl;

/// The records of every node in one database. The engine's interface is synchronous, so the
/// log carries its own single-threaded runtime and drives the connection on it.
pub struct DbLog {
    runtime: Runtime,
    /// One scan at a time: a snapshot transaction needs the connection to itself.
    client: Mutex<Client>,
}

impl std::fmt::Debug for DbLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DbLog")
    }
}

impl DbLog {
    /// Connects and checks the schema (read-only: it never migrates).
    pub fn open(url: &DbUrl) -> Result<DbLog, QueryError> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| QueryError::Db(DbReadError::Read(format!("no async runtime: {e}"))))?;
        let client = runtime.block_on(db_read::connect(url))?;
        Ok(DbLog {
            runtime,
            client: Mutex::new(client),
        })
    }
}

/// The statement and its parameters (all text) for `filter` in `order`.
fn select(filter: &Filter, order: Order) -> (String, Vec<String>) {
    let mut sql = String::from("SELECT node, seq, record FROM audit_log WHERE true");
    let mut params = Vec::new();
    let mut param = |sql: &mut String, clause: &str, value: String| {
        params.push(value);
        sql.push_str(&clause.replace('?', &format!("${}", params.len())));
    };
    if let Some(c) = &filter.citizen {
        param(&mut sql, " AND citizen_id = ?", c.clone());
    }
    if let Some(s) = filter.range.since() {
        param(&mut sql, " AND ts >= ?::text::timestamptz", s.to_string());
    }
    if let Some(u) = filter.range.until() {
        param(&mut sql, " AND ts < ?::text::timestamptz", u.to_string());
    }
    for n in filter.needles() {
        param(&mut sql, " AND strpos(record, ?) > 0", n);
    }
    sql.push_str(match order {
        Order::OldestFirst => " ORDER BY ts, node, seq",
        Order::NewestFirst => " ORDER BY ts DESC, node DESC, seq DESC",
    });
    (sql, params)
}

impl Source for DbLog {
    fn page<T>(
        &self,
        filter: &Filter,
        offset: u64,
        limit: u64,
        map: impl FnMut(&Record<'_>, &[u8]) -> T,
    ) -> Result<Page<T>, QueryError> {
        // One more than the page, to tell whether there is a next one.
        let keep =
            usize::try_from(offset.saturating_add(limit).saturating_add(1)).unwrap_or(usize::MAX);
        let (newest, skipped) = self.newest_lines(filter, keep)?;
        Ok(super::page::cut(newest, offset, limit, skipped, map))
    }

    fn fold<F: Fold, E: From<QueryError>>(
        &self,
        filter: &Filter,
        order: Order,
        fold: &F,
        mut merge: impl FnMut(Part<F::Part>) -> Result<bool, E>,
    ) -> Result<(), E> {
        let (sql, params) = select(filter, order);
        let params: Vec<&(dyn ToSql + Sync)> =
            params.iter().map(|p| p as &(dyn ToSql + Sync)).collect();
        let matcher = Matcher::new(filter);
        self.runtime.block_on(async {
            let mut client = self.client.lock().await;
            let tx = db_read::snapshot(&mut client)
                .await
                .map_err(QueryError::Db)?;
            let mut rows = Rows::open(&tx, &sql, &params)
                .await
                .map_err(QueryError::Db)?;
            loop {
                let mut batch = rows.batch().await.map_err(QueryError::Db)?;
                if batch.is_empty() {
                    return Ok(());
                }
                // Within a part, records come oldest first, whichever end the scan reads from.
                if order == Order::NewestFirst {
                    batch.reverse();
                }
                let mut part = new_part(fold);
                for row in &batch {
                    let line: &str = row.get(2);
                    if !matcher.may_match(line.as_bytes()) {
                        continue;
                    }
                    let rec = match Record::parse(line.as_bytes()) {
                        Ok(r) => r,
                        Err(e) => {
                            part.skipped.push(|| BadLine {
                                at: format!(
                                    "node {} seq {}",
                                    row.get::<_, &str>(0),
                                    row.get::<_, i64>(1)
                                ),
                                reason: e.to_string(),
                            });
                            continue;
                        }
                    };
                    if matcher.matches(&rec) && !fold.add(&mut part.value, &rec, line.as_bytes()) {
                        // This part is full; the rest of the batch starts the next one.
                        let full = std::mem::replace(&mut part, new_part(fold));
                        if !merge(full)? {
                            return Ok(());
                        }
                    }
                }
                if !merge(part)? {
                    return Ok(());
                }
            }
        })
    }
}

impl DbLog {
    /// [`Source::page`] with a `LIMIT`: the database reads the newest rows by `audit_log_ts`
    /// and sends only about a page of them, instead of a batch per part.
    fn newest_lines(
        &self,
        filter: &Filter,
        keep: usize,
    ) -> Result<(Vec<Vec<u8>>, Skipped), QueryError> {
        let (sql, params) = select(filter, Order::NewestFirst);
        let params: Vec<&(dyn ToSql + Sync)> =
            params.iter().map(|p| p as &(dyn ToSql + Sync)).collect();
        let matcher = Matcher::new(filter);
        let mut newest = Vec::new();
        let mut skipped = Skipped::default();
        // The SQL narrows, the matcher decides (module docs): rows it turns down are made up
        // for with the next ones.
        let step = keep.clamp(50, db_read::BATCH as usize);
        self.runtime.block_on(async {
            let mut client = self.client.lock().await;
            let tx = db_read::snapshot(&mut client)
                .await
                .map_err(QueryError::Db)?;
            let mut from = 0;
            loop {
                let rows = tx
                    .query(&format!("{sql} LIMIT {step} OFFSET {from}"), &params)
                    .await
                    .map_err(|e| QueryError::Db(db_read::read_error(e)))?;
                for row in &rows {
                    let line: &str = row.get(2);
                    if !matcher.may_match(line.as_bytes()) {
                        continue;
                    }
                    match Record::parse(line.as_bytes()) {
                        Ok(rec) if matcher.matches(&rec) => newest.push(line.as_bytes().to_vec()),
                        Ok(_) => {}
                        Err(e) => skipped.push(|| BadLine {
                            at: format!(
                                "node {} seq {}",
                                row.get::<_, &str>(0),
                                row.get::<_, i64>(1)
                            ),
                            reason: e.to_string(),
                        }),
                    }
                    if newest.len() >= keep {
                        return Ok::<(), QueryError>(());
                    }
                }
                if rows.len() < step {
                    return Ok(());
                }
                from += step;
            }
        })?;
        Ok((newest, skipped))
    }
}

fn new_part<F: Fold>(fold: &F) -> Part<F::Part> {
    Part {
        value: fold.start(),
        skipped: Skipped::default(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::query::{Bound, TimeRange};

    #[test]
    fn filters_that_an_index_serves_go_into_the_sql() {
        let f = Filter {
            range: TimeRange::new(Some(Bound::parse("2026-11-24").unwrap()), None).unwrap(),
            citizen: Some("001087000001".into()),
            client: Some("it's".into()),
            ..Filter::default()
        };
        let (sql, params) = select(&f, Order::NewestFirst);
        assert_eq!(
            sql,
            "SELECT node, seq, record FROM audit_log WHERE true AND citizen_id = $1 \
             AND ts >= $2::text::timestamptz AND strpos(record, $3) > 0 AND strpos(record, $4) > 0 \
             ORDER BY ts DESC, node DESC, seq DESC"
        );
        assert_eq!(
            params,
            [
                "001087000001",
                "2026-11-24T00:00:00.000000Z",
                r#""client":"it's""#,
                r#""citizen_id":"001087000001""#
            ]
        );
    }
}
