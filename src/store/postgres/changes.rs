//! The change log and follow lists in PostgreSQL (tables `changes`, `follows`,
//! `follow_counts`: `crate::pg::schema`).
//!
//! The horizon: seqs are drawn in commit order (`schema`), so the committed value of
//! `counters.change_seq` is a seq through which every change is committed, and so is any seq
//! heard in a `popgate_changes` notification (sent at commit, delivered in commit order). The
//! notification connection (`coherence`) moves the horizon as changes commit on any node;
//! [`ChangeLog::refresh_horizon`] reads the counter, for notifications lost while that
//! connection was down.
//!
//! A Follow step takes the `counters` row `FOR SHARE` before it reads the head: a write in
//! progress holds that row (it advances the seq last before its commit), so the step waits
//! for it to commit and then holds off the next write's seq until the step commits. That makes
//! "read the head, write the spans" one step with respect to writers (`store::changes`), at
//! the price of writes waiting for one step of at most [`FOLLOW_STEP`] ids.

use std::sync::Arc;
use std::time::SystemTime;

use async_trait::async_trait;
use tokio::sync::watch;

use super::{PgStore, encoding, key};
use crate::fields::{Field, FieldSet};
use crate::id::CitizenId;
use crate::pg::unavailable;
use crate::store::StoreError;
use crate::store::changes::{
    Carried, Change, ChangeLog, FOLLOW_STEP, Fanned, FollowOutcome, OPEN, Span,
};

/// Advisory locks of follow lists use the two-key form (a key space apart from the citizen
/// ids the writes lock), first key this constant, second the client's hash: one Follow or
/// Unfollow per client at a time, so two cannot both open a span for the same citizen.
const FOLLOW_LOCK: i32 = 7061;

fn change_from_row(row: &tokio_postgres::Row) -> Result<Change, StoreError> {
    let seq: i64 = row.get(0);
    let id: i64 = row.get(1);
    let fields: Vec<String> = row.get(2);
    let id = CitizenId::from_u64(id as u64)
        .ok_or_else(|| StoreError::Corrupt(format!("change {seq} names no valid citizen")))?;
    Ok(Change {
        seq: seq as u64,
        record: Arc::new(encoding::decode(id, row.get::<_, &[u8]>(3))?),
        fields: fields
            .iter()
            .filter_map(|f| Field::from_name(f))
            .collect::<FieldSet>(),
    })
}

fn ids_param(ids: &[CitizenId]) -> Vec<i64> {
    ids.iter().map(|id| key(*id)).collect()
}

impl PgStore {
    async fn follow_step(
        &self,
        client: &str,
        ids: &[CitizenId],
        follow: bool,
    ) -> Result<(Vec<CitizenId>, u64), StoreError> {
        let mut guard = self.writers.get().await?;
        let conn = guard
            .as_mut()
            .ok_or_else(|| StoreError::Unavailable("no write connection".into()))?;
        let tx = conn.client.transaction().await.map_err(unavailable)?;
        tx.execute(
            "SELECT pg_advisory_xact_lock($1::integer, hashtext($2::text))",
            &[&FOLLOW_LOCK, &client],
        )
        .await
        .map_err(unavailable)?;
        let head: i64 = tx
            .query_one(
                "SELECT change_seq FROM counters WHERE id = 1 FOR SHARE",
                &[],
            )
            .await
            .map_err(unavailable)?
            .get(0);
        let wanted = ids_param(ids);
        let rows = if follow {
            // Unfollowed and followed again at the same head: the span reopens (conflict on
            // the primary key); otherwise a new span opens where none is open.
            tx.query(
                "INSERT INTO follows (client, citizen_id, since_seq)
                 SELECT $1::text, w.id, $3::bigint FROM unnest($2::bigint[]) AS w(id)
                 WHERE NOT EXISTS (SELECT 1 FROM follows f
                                   WHERE f.client = $1 AND f.citizen_id = w.id AND f.until_seq IS NULL)
                   AND NOT EXISTS (SELECT 1 FROM follows f
                                   WHERE f.client = $1 AND f.citizen_id = w.id AND f.until_seq = $3)
                 ON CONFLICT (client, citizen_id, since_seq) DO UPDATE SET until_seq = NULL
                 RETURNING citizen_id",
                &[&client, &wanted, &head],
            )
            .await
            .map_err(unavailable)?
            .into_iter()
            .chain(
                tx.query(
                    "UPDATE follows SET until_seq = NULL
                     WHERE client = $1 AND citizen_id = ANY($2) AND until_seq = $3
                       AND since_seq < $3
                     RETURNING citizen_id",
                    &[&client, &wanted, &head],
                )
                .await
                .map_err(unavailable)?,
            )
            .collect::<Vec<_>>()
        } else {
            // A span that carried nothing goes; the others close at the head.
            let mut gone = tx
                .query(
                    "DELETE FROM follows
                     WHERE client = $1 AND citizen_id = ANY($2) AND until_seq IS NULL
                       AND since_seq = $3
                     RETURNING citizen_id",
                    &[&client, &wanted, &head],
                )
                .await
                .map_err(unavailable)?;
            gone.extend(
                tx.query(
                    "UPDATE follows SET until_seq = $3
                     WHERE client = $1 AND citizen_id = ANY($2) AND until_seq IS NULL
                     RETURNING citizen_id",
                    &[&client, &wanted, &head],
                )
                .await
                .map_err(unavailable)?,
            );
            gone
        };
        let changed: std::collections::HashSet<i64> = rows.iter().map(|r| r.get(0)).collect();
        let delta = if follow {
            changed.len() as i64
        } else {
            -(changed.len() as i64)
        };
        let following: i64 = tx
            .query_one(
                "INSERT INTO follow_counts (client, following) VALUES ($1, greatest($2::bigint, 0))
                 ON CONFLICT (client) DO UPDATE
                 SET following = greatest(follow_counts.following + $2::bigint, 0)
                 RETURNING following",
                &[&client, &delta],
            )
            .await
            .map_err(unavailable)?
            .get(0);
        tx.commit().await.map_err(unavailable)?;
        let changed = ids
            .iter()
            .copied()
            .filter(|id| changed.contains(&key(*id)))
            .collect();
        Ok((changed, following.max(0) as u64))
    }

    async fn follow_all(
        &self,
        client: &str,
        ids: &[CitizenId],
        follow: bool,
    ) -> Result<FollowOutcome, StoreError> {
        let mut out = FollowOutcome::default();
        let mut wanted = ids.to_vec();
        if follow {
            let r = self.readers.get()?;
            let found: std::collections::HashSet<i64> = r
                .client
                .query(
                    "SELECT id FROM citizens WHERE id = ANY($1)",
                    &[&ids_param(ids)],
                )
                .await
                .map_err(unavailable)?
                .iter()
                .map(|row| row.get(0))
                .collect();
            (wanted, out.not_found) = ids.iter().partition(|id| found.contains(&key(**id)));
        }
        out.following = self.following(client).await?;
        for step in wanted.chunks(FOLLOW_STEP) {
            let (changed, n) = self.follow_step(client, step, follow).await?;
            out.changed.extend(changed);
            out.following = n;
        }
        Ok(out)
    }
}

impl PgStore {
    async fn following(&self, client: &str) -> Result<u64, StoreError> {
        let r = self.readers.get()?;
        Ok(r.client
            .query_opt(
                "SELECT following FROM follow_counts WHERE client = $1",
                &[&client],
            )
            .await
            .map_err(unavailable)?
            .map_or(0, |row| row.get::<_, i64>(0).max(0) as u64))
    }

    /// [`ChangeLog::pending`]: one read, no lock; a Follow that races it changes at most
    /// fewer ids than it said.
    async fn pending_ids(
        &self,
        client: &str,
        ids: &[CitizenId],
        follow: bool,
    ) -> Result<FollowOutcome, StoreError> {
        let rows = {
            let r = self.readers.get()?;
            r.client
                .query(
                    "SELECT w.id,
                            EXISTS (SELECT 1 FROM citizens c WHERE c.id = w.id),
                            EXISTS (SELECT 1 FROM follows f WHERE f.client = $1
                                    AND f.citizen_id = w.id AND f.until_seq IS NULL)
                     FROM unnest($2::bigint[]) AS w(id)",
                    &[&client, &ids_param(ids)],
                )
                .await
                .map_err(unavailable)?
        };
        let state: std::collections::HashMap<i64, (bool, bool)> = rows
            .iter()
            .map(|row| (row.get(0), (row.get(1), row.get(2))))
            .collect();
        let mut out = FollowOutcome {
            following: self.following(client).await?,
            ..FollowOutcome::default()
        };
        for &id in ids {
            let (exists, open) = state.get(&key(id)).copied().unwrap_or_default();
            if follow && !exists {
                out.not_found.push(id);
            } else if open != follow {
                out.changed.push(id);
            }
        }
        Ok(out)
    }
}

#[async_trait]
impl ChangeLog for PgStore {
    async fn follow(&self, client: &str, ids: &[CitizenId]) -> Result<FollowOutcome, StoreError> {
        self.follow_all(client, ids, true).await
    }

    async fn unfollow(&self, client: &str, ids: &[CitizenId]) -> Result<FollowOutcome, StoreError> {
        self.follow_all(client, ids, false).await
    }

    async fn pending(
        &self,
        client: &str,
        ids: &[CitizenId],
        follow: bool,
    ) -> Result<FollowOutcome, StoreError> {
        self.pending_ids(client, ids, follow).await
    }

    async fn read(&self, after: u64, upto: u64, limit: usize) -> Result<Vec<Fanned>, StoreError> {
        if after >= upto {
            return Ok(Vec::new());
        }
        let r = self.readers.get()?;
        let rows = r
            .client
            .query(
                "SELECT seq, citizen_id, fields, record FROM changes
                 WHERE seq > $1 AND seq <= $2 ORDER BY seq LIMIT $3",
                &[&(after as i64), &(upto as i64), &(limit as i64)],
            )
            .await
            .map_err(unavailable)?;
        let changes = rows
            .iter()
            .map(change_from_row)
            .collect::<Result<Vec<_>, _>>()?;
        let ids: Vec<i64> = changes.iter().map(|c| key(c.record.id)).collect();
        // One query for the batch's followers, through the index by citizen.
        let spans = r
            .client
            .query(
                "SELECT citizen_id, client, since_seq, until_seq FROM follows
                 WHERE citizen_id = ANY($1)",
                &[&ids],
            )
            .await
            .map_err(unavailable)?;
        let mut by_id: std::collections::HashMap<i64, Vec<(Arc<str>, Span)>> =
            std::collections::HashMap::new();
        for row in &spans {
            let until: Option<i64> = row.get(3);
            by_id.entry(row.get(0)).or_default().push((
                Arc::from(row.get::<_, &str>(1)),
                Span {
                    since: row.get::<_, i64>(2) as u64,
                    until: until.map_or(OPEN, |u| u as u64),
                },
            ));
        }
        Ok(changes
            .into_iter()
            .map(|change| {
                let mut carriers: Vec<Arc<str>> = by_id
                    .get(&key(change.record.id))
                    .into_iter()
                    .flatten()
                    .filter(|(_, s)| s.carries(change.seq))
                    .map(|(c, _)| c.clone())
                    .collect();
                carriers.dedup();
                Fanned { change, carriers }
            })
            .collect())
    }

    async fn read_for(
        &self,
        client: &str,
        after: u64,
        upto: u64,
        limit: usize,
    ) -> Result<Carried, StoreError> {
        if after >= upto {
            return Ok(Carried {
                changes: Vec::new(),
                through: after,
            });
        }
        let r = self.readers.get()?;
        let rows = r
            .client
            .query(
                "SELECT c.seq, c.citizen_id, c.fields, c.record FROM changes c
                 WHERE c.seq > $2 AND c.seq <= $3 AND EXISTS (
                     SELECT 1 FROM follows f
                     WHERE f.client = $1 AND f.citizen_id = c.citizen_id AND f.since_seq < c.seq
                       AND (f.until_seq IS NULL OR c.seq <= f.until_seq))
                 ORDER BY c.seq LIMIT $4",
                &[&client, &(after as i64), &(upto as i64), &(limit as i64)],
            )
            .await
            .map_err(unavailable)?;
        let changes = rows
            .iter()
            .map(change_from_row)
            .collect::<Result<Vec<_>, _>>()?;
        // A full page may stop short of `upto`; a short one looked at everything.
        let through = match changes.last() {
            Some(last) if changes.len() >= limit => last.seq,
            _ => upto,
        };
        Ok(Carried { changes, through })
    }

    fn horizon(&self) -> watch::Receiver<u64> {
        self.coherence.horizon()
    }

    async fn refresh_horizon(&self) -> Result<u64, StoreError> {
        let r = self.readers.get()?;
        let head: i64 = r
            .client
            .query_one("SELECT change_seq FROM counters WHERE id = 1", &[])
            .await
            .map_err(unavailable)?
            .get(0);
        self.coherence.heard(head.max(0) as u64);
        Ok(*self.coherence.horizon().borrow())
    }

    async fn oldest(&self) -> Result<u64, StoreError> {
        let r = self.readers.get()?;
        let row = r
            .client
            .query_one(
                "SELECT (SELECT min(seq) FROM changes), (SELECT change_seq FROM counters WHERE id = 1)",
                &[],
            )
            .await
            .map_err(unavailable)?;
        let min: Option<i64> = row.get(0);
        let head: i64 = row.get(1);
        Ok(min.map_or(head.max(0) as u64 + 1, |m| m as u64))
    }

    async fn prune(&self, before: SystemTime) -> Result<u64, StoreError> {
        let r = self.readers.get()?;
        // `committed_at` is the writing transaction's start, so it is not quite in seq order:
        // drop only the prefix before the first change that must be kept, so no change is
        // dropped early and the log stays contiguous.
        let n = r
            .client
            .execute(
                "DELETE FROM changes WHERE seq < coalesce(
                     (SELECT seq FROM changes WHERE committed_at >= $1 ORDER BY seq LIMIT 1),
                     (SELECT change_seq + 1 FROM counters WHERE id = 1))",
                &[&before],
            )
            .await
            .map_err(unavailable)?;
        // Spans that ended before the oldest change kept carry only changes that are gone, and
        // no stream may resume from before it: they can carry nothing any more.
        r.client
            .execute(
                "DELETE FROM follows WHERE until_seq IS NOT NULL AND until_seq < coalesce(
                     (SELECT min(seq) FROM changes),
                     (SELECT change_seq + 1 FROM counters WHERE id = 1))",
                &[],
            )
            .await
            .map_err(unavailable)?;
        Ok(n)
    }
}
