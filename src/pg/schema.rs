//! The database's schema, in numbered migrations applied in order and recorded in
//! `popgate_schema`. `popgate db migrate` and `serve` apply the missing ones under an advisory
//! lock (nodes starting at once do not race); a database whose schema is newer than this
//! binary knows is refused, since this binary could misread it.
//!
//! Tables:
//! - `citizens(id, version, record)`: the record in the store's own encoding
//!   (`store::encoding`), its version beside it for the compare-and-swap.
//! - `changes(seq, citizen_id, version, fields, record, node, committed_at)`: one row per
//!   successful write, in the write's transaction. `seq` comes from `counters.change_seq`,
//!   advanced in the same transaction just before it commits: the row lock orders writers, so
//!   seqs are drawn in commit order and a reader of `seq > N` never misses a change that
//!   commits after a higher-numbered one (there is none).
//! - `counters(change_seq, citizens)`: the last seq and the number of citizens, kept by the
//!   writes, so counting never scans.
//! - `nodes(node_id, lease_until, started_at)`: each gateway's lease on serving from its
//!   cache, renewed on its notification connection (`store::postgres::coherence`).
//! - `audit_log(node, seq, record, ts, citizen_id)` (migration 2): with `[audit] backend =
//!   "postgres"`, each node's hash-chained records; `record` is the JSON line exactly as the
//!   file log would hold it (plus its `node` key), `ts` and `citizen_id` copied out of it for
//!   the indexes of queries and access reports. `audit_checkpoints(node, seq, line)`: each
//!   node's signed checkpoints, lines as in `checkpoints.jsonl`.
//! - `follows(client, citizen_id, since_seq, until_seq)` (migration 3): change subscriptions,
//!   one row per span of the change log during which a client followed a citizen (changes
//!   with `since_seq < seq <= until_seq` are carried; `until_seq` NULL while it lasts; see
//!   `store::changes`). At most one open span per client and citizen (`follows_open`); the
//!   index by citizen (`follows_citizen`) lets one change find its followers without looking
//!   at anyone's follow list. `follow_counts(client, following)`: each client's open follows,
//!   kept by Follow and Unfollow so that counting never scans 50 million rows. Spans that
//!   ended are indexed by where they ended (`follows_closed`, migration 4), so that retention
//!   drops those that can carry no kept change without reading every follow list.

use tokio_postgres::Client;

use super::db::unavailable;
use crate::store::StoreError;

/// Migration `i + 1` is `MIGRATIONS[i]`.
const MIGRATIONS: &[&str] = &[
    r#"
CREATE TABLE citizens (
    id bigint PRIMARY KEY,
    version bigint NOT NULL,
    record bytea NOT NULL
);
CREATE TABLE changes (
    seq bigint PRIMARY KEY,
    citizen_id bigint NOT NULL,
    version bigint NOT NULL,
    fields text[] NOT NULL,
    record bytea NOT NULL,
    node text NOT NULL,
    committed_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX changes_committed_at ON changes (committed_at);
CREATE TABLE counters (
    id integer PRIMARY KEY CHECK (id = 1),
    change_seq bigint NOT NULL,
    citizens bigint NOT NULL
);
INSERT INTO counters VALUES (1, 0, 0);
CREATE TABLE nodes (
    node_id text PRIMARY KEY,
    lease_until timestamptz NOT NULL,
    started_at timestamptz NOT NULL
);
"#,
    r#"
CREATE TABLE audit_log (
    node text NOT NULL,
    seq bigint NOT NULL,
    record text NOT NULL,
    ts timestamptz NOT NULL,
    citizen_id text,
    PRIMARY KEY (node, seq)
);
CREATE INDEX audit_log_citizen ON audit_log (citizen_id, ts) WHERE citizen_id IS NOT NULL;
CREATE INDEX audit_log_ts ON audit_log (ts);
CREATE TABLE audit_checkpoints (
    node text NOT NULL,
    seq bigint NOT NULL,
    line text NOT NULL,
    PRIMARY KEY (node, seq)
);
"#,
    r#"
CREATE TABLE follows (
    client text NOT NULL,
    citizen_id bigint NOT NULL,
    since_seq bigint NOT NULL,
    until_seq bigint,
    PRIMARY KEY (client, citizen_id, since_seq)
);
CREATE UNIQUE INDEX follows_open ON follows (client, citizen_id) WHERE until_seq IS NULL;
CREATE INDEX follows_citizen ON follows (citizen_id, client);
CREATE TABLE follow_counts (
    client text PRIMARY KEY,
    following bigint NOT NULL
);
"#,
    r#"
CREATE INDEX follows_closed ON follows (until_seq) WHERE until_seq IS NOT NULL;
"#,
];

/// The schema version this binary writes and reads.
pub const LATEST: i32 = MIGRATIONS.len() as i32;

/// The first version with `audit_log` and `audit_checkpoints`.
pub const AUDIT_LOG: i32 = 2;

/// What a migration did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Migrated {
    pub from: i32,
    pub to: i32,
}

/// Why the schema cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum SchemaError {
    #[error(
        "the database's schema is version {found}, newer than this popgate knows ({known}): run a popgate at least as new as the one that migrated it"
    )]
    TooNew { found: i32, known: i32 },
    /// For a reader that must not migrate: no popgate schema at all (the wrong database?).
    #[error(
        "the database holds no popgate schema (no table popgate_schema): check the URL, or run `popgate db migrate`"
    )]
    Missing,
    /// For a reader that must not migrate: a schema older than what it reads.
    #[error(
        "the database's schema is version {found}; this needs version {need} or later: run `popgate db migrate`"
    )]
    TooOld { found: i32, need: i32 },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Refuses a schema newer than this binary knows: it could misread it.
fn known(found: i32) -> Result<(), SchemaError> {
    if found > LATEST {
        return Err(SchemaError::TooNew {
            found,
            known: LATEST,
        });
    }
    Ok(())
}

/// The schema version, for a reader that must not change the database (`popgate audit …
/// --db`): at least `need`, and not newer than this binary knows. Creates nothing, so it
/// works on a read-only connection or a standby.
pub async fn check(client: &Client, need: i32) -> Result<i32, SchemaError> {
    let exists: bool = client
        .query_one("SELECT to_regclass('popgate_schema') IS NOT NULL", &[])
        .await
        .map_err(unavailable)?
        .get(0);
    if !exists {
        return Err(SchemaError::Missing);
    }
    let found: i32 = client
        .query_one("SELECT coalesce(max(version), 0) FROM popgate_schema", &[])
        .await
        .map_err(unavailable)?
        .get(0);
    known(found)?;
    if found < need {
        return Err(SchemaError::TooOld { found, need });
    }
    Ok(found)
}

/// Applies the migrations the database lacks, in one transaction.
pub async fn migrate(client: &mut Client) -> Result<Migrated, SchemaError> {
    let tx = client.transaction().await.map_err(unavailable)?;
    // Any constant shared by every popgate: one migrator at a time.
    tx.execute("SELECT pg_advisory_xact_lock(7061746531)", &[])
        .await
        .map_err(unavailable)?;
    tx.batch_execute(
        "CREATE TABLE IF NOT EXISTS popgate_schema (
             version integer PRIMARY KEY,
             applied_at timestamptz NOT NULL DEFAULT now()
         )",
    )
    .await
    .map_err(unavailable)?;
    let from: i32 = tx
        .query_one("SELECT coalesce(max(version), 0) FROM popgate_schema", &[])
        .await
        .map_err(unavailable)?
        .get(0);
    known(from)?;
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(from as usize) {
        let version = i as i32 + 1;
        tx.batch_execute(sql).await.map_err(unavailable)?;
        tx.execute(
            "INSERT INTO popgate_schema (version) VALUES ($1)",
            &[&version],
        )
        .await
        .map_err(unavailable)?;
    }
    tx.commit().await.map_err(unavailable)?;
    Ok(Migrated { from, to: LATEST })
}
