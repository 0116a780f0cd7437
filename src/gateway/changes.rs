//! WatchChanges: a stream of the changes to the citizens a client follows (CONTRACT §5), the
//! node's change feed that serves every such stream, and the retention of the change log.
//!
//! **The feed** (one task per node, etcd's "synced watchers"): follows the change log's
//! horizon (`store::changes`), reads each new change once with the clients that carry it
//! (the store's index by citizen, so a change touches only its own followers' entries), and
//! broadcasts it in seq order. A PutCitizen never waits for it.
//!
//! **A stream** reads the feed from the position it was opened at, or — when it is behind,
//! because it resumed from an older `after_seq` or fell more than the feed's buffer behind
//! (a slow reader, or one paced by its rate) — catches up by reading the log itself
//! ([`ChangeLog::read_for`], "unsynced watchers"), then goes back to the feed. Either way it
//! sees every seq in order, so it misses none and repeats none. Each event is checked against
//! the caller's current rights, paced by its rate (a fast log waits, never drops), audited,
//! then put into the stream's own bounded buffer: a slow reader holds only that buffer and
//! delays no one. A progress event says how far the stream has got: once it has caught up
//! (at once for `after_seq` 0) and then whenever 10 s passed without anything sent.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{broadcast, mpsc, watch};

use super::{Call, Caller, Gateway, Handler, audit_unavailable, check_echoed};
use crate::audit::Outcome;
use crate::citizen::Citizen;
use crate::error::Error;
use crate::fields::FieldSet;
use crate::policy::{Client, Method};
use crate::store::ChangeLog;
use crate::store::changes::{Change, Fanned};

/// Changes the feed holds for streams that have not taken them yet; a stream further behind
/// reads the log instead.
const FEED_BUFFER: usize = 4096;
/// Changes read from the log at once, by the feed or by a stream catching up.
const READ_BATCH: usize = 256;
/// Events a stream holds for a reader that has not taken them yet.
pub const STREAM_BUFFER: usize = 32;
/// A progress event at least this often while nothing else is sent.
pub const PROGRESS_EVERY: Duration = Duration::from_secs(10);
/// How often the feed asks the store for its horizon, besides being told (for a store told
/// by notifications, which a lost connection can lose).
const FEED_POLL: Duration = Duration::from_secs(1);
/// How often retention drops old changes: well within the minute the contract allows.
pub const PRUNE_EVERY: Duration = Duration::from_secs(30);

#[derive(Debug, Clone, Default)]
pub struct WatchRequest {
    /// Changes after this seq; 0 = from now on.
    pub after_seq: u64,
    /// Values each event carries; empty = none.
    pub read_mask: Vec<String>,
    pub purpose: String,
    pub request_id: String,
}

/// One message of a change stream.
#[derive(Debug, Clone)]
pub struct WatchEvent {
    pub seq: u64,
    /// `None` in a progress event.
    pub change: Option<ChangeSeen>,
    /// 0 in a progress event.
    pub audit_seq: u64,
}

/// A change as one caller may see it.
#[derive(Debug, Clone)]
pub struct ChangeSeen {
    pub record: Arc<Citizen>,
    /// The values carried (the read mask, within the caller's read rights).
    pub values: FieldSet,
    /// The fields the change touched, within the caller's read and verify rights.
    pub changed: FieldSet,
}

/// A stream allowed to start: where from, and what it carries.
pub struct Opened {
    from: u64,
    values: FieldSet,
    purpose: String,
    request_id: String,
    /// Subscribed before the position was read, so nothing broadcast after it is missed.
    feed: broadcast::Receiver<Arc<Fanned>>,
}

pub struct Plan {
    after_seq: u64,
    values: FieldSet,
    purpose: String,
    request_id: String,
}

impl Handler for WatchRequest {
    const METHOD: Method = Method::WatchChanges;
    type Plan = Plan;
    type Answer = Opened;

    fn echo(&self) -> (&str, &str) {
        (&self.purpose, &self.request_id)
    }

    fn authorize(self, client: &Client, _call: &mut Call) -> Result<Plan, Error> {
        check_echoed("request_id", &self.request_id)?;
        check_echoed("purpose", &self.purpose)?;
        client.change_rights()?;
        let values = client.change_values(&self.read_mask)?;
        client.require_purpose(&self.purpose)?;
        Ok(Plan {
            after_seq: self.after_seq,
            values,
            purpose: self.purpose,
            request_id: self.request_id,
        })
    }

    async fn execute(plan: Plan, gateway: &Gateway, _call: &mut Call) -> Result<Opened, Error> {
        let feed = gateway.feed.subscribe();
        let log = &gateway.changes;
        let mut head = *log.horizon().borrow();
        if plan.after_seq > head {
            // This node may not have heard of the latest commits yet (another node wrote
            // them): ask before refusing a position the client saw elsewhere.
            head = log
                .refresh_horizon()
                .await
                .map_err(|e| gateway.store_failed(e))?;
        }
        if plan.after_seq > head {
            return Err(Error::InvalidArgument(format!(
                "after_seq {} is past the change log's head ({head}); give a seq this gateway sent, or 0 for changes from now on",
                plan.after_seq
            )));
        }
        if plan.after_seq > 0 {
            let oldest = log.oldest().await.map_err(|e| gateway.store_failed(e))?;
            if plan.after_seq + 1 < oldest {
                return Err(Error::FailedPrecondition(format!(
                    "after_seq {}: changes before seq {oldest} are no longer kept (the oldest kept seq is {oldest}); resync with Lookup, then watch with after_seq 0 and keep the seq of its first progress event",
                    plan.after_seq
                )));
            }
        }
        Ok(Opened {
            from: if plan.after_seq == 0 {
                head
            } else {
                plan.after_seq
            },
            values: plan.values,
            purpose: plan.purpose,
            request_id: plan.request_id,
            feed,
        })
    }
}

/// The node's change feed: the changes broadcast so far, and how far that is.
pub(crate) struct Feed {
    tx: broadcast::Sender<Arc<Fanned>>,
    /// The last seq broadcast (or skipped as gone).
    position: watch::Sender<u64>,
}

impl Feed {
    pub(crate) fn new(start: u64) -> Feed {
        Feed {
            tx: broadcast::Sender::new(FEED_BUFFER),
            position: watch::Sender::new(start),
        }
    }

    fn subscribe(&self) -> broadcast::Receiver<Arc<Fanned>> {
        self.tx.subscribe()
    }
}

/// Why a stream stops delivering.
enum Stop {
    /// The reader went away: nothing more to do.
    Gone,
    /// The stream ends with this status.
    Failed(Error),
}

impl From<Error> for Stop {
    fn from(e: Error) -> Stop {
        Stop::Failed(e)
    }
}

/// One open change stream's state.
struct Stream {
    caller: Caller,
    opened: Opened,
    pos: u64,
    tx: mpsc::Sender<Result<WatchEvent, Error>>,
    progress_due: crate::clock::Tick,
}

impl Gateway {
    /// Opens a change stream for `caller`: the request is checked and audited like a call
    /// (and counts as one request), then its events flow into the returned receiver, which
    /// ends after an error.
    pub async fn watch(
        self: &Arc<Self>,
        caller: Caller,
        req: WatchRequest,
    ) -> Result<mpsc::Receiver<Result<WatchEvent, Error>>, Error> {
        let opened = self.stream_item(&caller, req).await?.value;
        let (tx, rx) = mpsc::channel(STREAM_BUFFER);
        let gw = self.clone();
        tokio::spawn(async move {
            let mut s = Stream {
                caller,
                pos: opened.from,
                opened,
                tx,
                progress_due: gw.clock.now(),
            };
            if let Err(Stop::Failed(e)) = gw.run_stream(&mut s).await {
                let _ = s.tx.send(Err(e)).await;
            }
        });
        Ok(rx)
    }

    async fn run_stream(&self, s: &mut Stream) -> Result<(), Stop> {
        let mut position = self.feed.position.subscribe();
        let mut caught_up = false;
        loop {
            // Behind the feed: read the log up to where the feed is.
            loop {
                let target = *position.borrow_and_update();
                if s.pos >= target {
                    break;
                }
                self.catch_up(s, target).await?;
            }
            if !caught_up {
                caught_up = true;
                self.progress(s).await?;
            }
            // With the feed.
            loop {
                tokio::select! {
                    m = s.opened.feed.recv() => match m {
                        Ok(f) => {
                            let seq = f.change.seq;
                            if seq <= s.pos {
                                continue;
                            }
                            if seq > s.pos + 1 {
                                // Broadcast before this stream was listening: from the log.
                                self.catch_up(s, seq - 1).await?;
                            }
                            if f.carriers.iter().any(|c| **c == *s.caller.client.id) {
                                self.deliver(s, &f.change).await?;
                            }
                            s.pos = seq;
                        }
                        // Fell more than the feed's buffer behind: the log has it all.
                        Err(broadcast::error::RecvError::Lagged(_)) => break,
                        Err(broadcast::error::RecvError::Closed) => return Err(Stop::Gone),
                    },
                    () = self.clock.sleep_until(s.progress_due) => {
                        // Report as far as the log is committed, not only as far as the feed
                        // has got: a write that has answered is behind every progress after.
                        let horizon = *self.changes.horizon().borrow();
                        self.catch_up(s, horizon).await?;
                        self.progress(s).await?
                    }
                    () = s.tx.closed() => return Err(Stop::Gone),
                }
            }
        }
    }

    /// Reads from the log what `s`'s client carries up to `target`, delivering it.
    async fn catch_up(&self, s: &mut Stream, target: u64) -> Result<(), Stop> {
        while s.pos < target {
            let got = self
                .changes
                .read_for(&s.caller.client.id, s.pos, target, READ_BATCH)
                .await
                .map_err(|e| self.store_failed(e))?;
            for c in &got.changes {
                self.deliver(s, c).await?;
            }
            // A read that got no further has nothing more to give (never expected; a guard
            // against looping on a store that answers oddly).
            s.pos = if got.through > s.pos {
                got.through.min(target)
            } else {
                target
            };
        }
        Ok(())
    }

    /// Sends `change` to `s` if its caller may hear of it: re-checked (a client removed or
    /// revoked ends the stream), paced, audited, then sent.
    async fn deliver(&self, s: &mut Stream, change: &Change) -> Result<(), Stop> {
        let caller = self.recheck(&s.caller, Method::WatchChanges)?;
        let client = &caller.client;
        let changed = change.fields.intersect(client.read.union(client.verify));
        if changed.is_empty() {
            // Touched nothing this caller may know of: not carried.
            return Ok(());
        }
        // Rights may have shrunk since the stream opened (reload): never more than now.
        let values = s.opened.values.intersect(client.read);
        caller.limit.acquire(&self.clock).await;
        let mut call = Call::new(
            client.id.clone(),
            Some(caller.peer.clone()),
            Method::WatchChanges,
        )
        .echoing((&s.opened.purpose, &s.opened.request_id));
        call.citizen_id = Some(change.record.id.to_string());
        call.touched(values, false);
        let audit_seq = match self.audit.append(call.event(Outcome::Ok, None)).await {
            Ok(seq) => seq,
            Err(e) => {
                self.count(&caller.metrics, &call, Outcome::Error);
                return Err(Stop::Failed(audit_unavailable(e)));
            }
        };
        self.count(&caller.metrics, &call, Outcome::Ok);
        let event = WatchEvent {
            seq: change.seq,
            change: Some(ChangeSeen {
                record: change.record.clone(),
                values,
                changed,
            }),
            audit_seq,
        };
        s.caller = caller;
        self.send(s, event).await
    }

    /// A progress event at `s`'s position.
    async fn progress(&self, s: &mut Stream) -> Result<(), Stop> {
        let event = WatchEvent {
            seq: s.pos,
            change: None,
            audit_seq: 0,
        };
        self.send(s, event).await
    }

    async fn send(&self, s: &mut Stream, event: WatchEvent) -> Result<(), Stop> {
        // The next progress is due 10 s after anything was sent, counted from now: the wait
        // for room in the buffer is the reader's, not the stream's silence.
        s.progress_due = self.clock.now().after(PROGRESS_EVERY);
        s.tx.send(Ok(event)).await.map_err(|_| Stop::Gone)
    }

    /// Runs the node's change feed until the gateway is dropped.
    pub fn spawn_change_feed(self: &Arc<Self>) {
        let weak = Arc::downgrade(self);
        let (log, clock) = (self.changes.clone(), self.clock.clone());
        let mut horizon = log.horizon();
        tokio::spawn(async move {
            let mut pos = match weak.upgrade() {
                Some(gw) => *gw.feed.position.borrow(),
                None => return,
            };
            loop {
                let target = *horizon.borrow_and_update();
                if pos < target {
                    let Some(gw) = weak.upgrade() else { return };
                    match log.read(pos, target, READ_BATCH).await {
                        Ok(batch) => {
                            let last = batch.last().map(|f| f.change.seq);
                            for f in batch {
                                // No receiver is no error: nobody is watching right now.
                                let _ = gw.feed.tx.send(Arc::new(f));
                            }
                            // An empty read of a non-empty range: pruned meanwhile.
                            pos = last.unwrap_or(target);
                            gw.feed.position.send_replace(pos);
                        }
                        Err(e) => {
                            tracing::warn!(error = %e, "change feed cannot read the change log; retrying");
                            drop(gw);
                            clock.sleep(FEED_POLL).await;
                        }
                    }
                    continue;
                }
                tokio::select! {
                    changed = horizon.changed() => if changed.is_err() { return },
                    () = clock.sleep(FEED_POLL) => {
                        if weak.strong_count() == 0 {
                            return;
                        }
                        if let Err(e) = log.refresh_horizon().await {
                            tracing::debug!(error = %e, "change feed cannot read the log's head");
                        }
                    }
                }
            }
        });
    }

    /// Drops changes older than `retain` every [`PRUNE_EVERY`], until the gateway is dropped.
    pub fn spawn_change_pruner(self: &Arc<Self>, retain: Duration) {
        let weak = Arc::downgrade(self);
        let (log, clock) = (self.changes.clone(), self.clock.clone());
        tokio::spawn(async move {
            // Deadlines on the clock, not sleeps from whenever a pass ended: a pass that ran
            // late (or a test's clock moved far at once) does not push the next ones back.
            let mut next = clock.now();
            loop {
                next = next.after(PRUNE_EVERY);
                clock.sleep_until(next).await;
                let Some(gw) = weak.upgrade() else { return };
                let before = clock.wall().checked_sub(retain);
                if let Some(before) = before {
                    match log.prune(before).await {
                        Ok(n) if n > 0 => tracing::info!(dropped = n, "change log pruned"),
                        Ok(_) => {}
                        Err(e) => {
                            tracing::warn!(error = %e, "cannot prune the change log; will retry")
                        }
                    }
                }
                gw.prunes.send_modify(|n| *n += 1);
            }
        });
    }

    /// How many retention passes have run (tests wait for one).
    pub fn change_prunes(&self) -> watch::Receiver<u64> {
        self.prunes.subscribe()
    }

    /// The change log, for operators' tools and tests.
    pub fn change_log(&self) -> &Arc<dyn ChangeLog> {
        &self.changes
    }
}
