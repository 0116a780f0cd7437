//! The change log and the follow lists (CONTRACT §5), behind [`ChangeLog`], which both
//! backends implement beside [`Store`](super::Store). The gateway's feed and its watch streams
//! see only this trait.
//!
//! ## Which changes a client carries: spans of the change log
//!
//! The contract: a change is carried if the caller followed the citizen when the change was
//! committed, and a replay decides by the same rule. So a follow is not a flag but a position
//! in the log: Follow records the log's head at the moment it takes effect (`since`), Unfollow
//! the head at the moment it takes effect (`until`), and a change `seq` is carried iff some
//! recorded span has `since < seq <= until`. Unfollow closes the span instead of deleting it,
//! so a stream resumed from before the Unfollow still gets the changes committed while the
//! citizen was followed; following again opens a new span.
//!
//! "At the moment it takes effect" is the crux: a backend reads the head and writes the span
//! as one step with respect to writers drawing seqs (sled: under the log lock that orders its
//! writes; PostgreSQL: the counters row held `FOR SHARE`, which a write's seq update waits
//! for). Then every change `<= since` committed before the span existed, every change
//! `> since` commits after it is visible, and the live feed (which asks the follow lists once
//! the change is committed) and a later replay decide alike.
//!
//! ## Horizon
//!
//! [`ChangeLog::horizon`] is the seq up to which every change is committed and durable: a
//! reader of `(after, horizon]` never misses a change that commits later with a smaller seq
//! (there is none below the horizon), and never sees one that a crash could take back.

use std::sync::Arc;
use std::time::SystemTime;

use async_trait::async_trait;
use tokio::sync::watch;

use super::StoreError;
use crate::citizen::Citizen;
use crate::fields::FieldSet;
use crate::id::CitizenId;

/// Ids per step of a Follow or Unfollow: each step holds back writers for as long as it takes,
/// so a batch of 10,000 is applied in steps this size, each with its own `since`.
pub const FOLLOW_STEP: usize = 1000;

/// One entry of the change log: a successful write.
#[derive(Debug, Clone, PartialEq)]
pub struct Change {
    pub seq: u64,
    /// The record as this change left it (`version` = the version it produced).
    pub record: Arc<Citizen>,
    /// The personal fields the change touched.
    pub fields: FieldSet,
}

/// A change and the clients whose follow spans carry it (from the index by citizen, so one
/// change fans out without looking at anyone's follow list).
#[derive(Debug, Clone)]
pub struct Fanned {
    pub change: Change,
    pub carriers: Vec<Arc<str>>,
}

/// A span of the log during which a client followed a citizen: changes with
/// `since < seq <= until` are carried; `until` is [`OPEN`] while the follow lasts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Span {
    pub since: u64,
    pub until: u64,
}

/// The `until` of a follow that has not ended.
pub const OPEN: u64 = u64::MAX;

impl Span {
    pub fn carries(self, seq: u64) -> bool {
        self.since < seq && seq <= self.until
    }
}

/// What a Follow or Unfollow did.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FollowOutcome {
    /// Ids newly followed (Follow) or no longer followed (Unfollow), in request order.
    pub changed: Vec<CitizenId>,
    /// The client's follow list's size after the call.
    pub following: u64,
    /// Follow: ids not in the store (not followed).
    pub not_found: Vec<CitizenId>,
}

/// The changes one client carries within a range, and how far the range was read.
#[derive(Debug, Clone, Default)]
pub struct Carried {
    pub changes: Vec<Change>,
    /// Every change up to here was looked at (`changes` holds those carried).
    pub through: u64,
}

#[async_trait]
pub trait ChangeLog: Send + Sync + 'static {
    /// Follows `ids` (distinct, valid) for `client`; ids not in the store are returned in
    /// `not_found`, already followed ones are no change.
    async fn follow(&self, client: &str, ids: &[CitizenId]) -> Result<FollowOutcome, StoreError>;

    /// Ends the follows of `ids` for `client`; ids not followed are no change.
    async fn unfollow(&self, client: &str, ids: &[CitizenId]) -> Result<FollowOutcome, StoreError>;

    /// What a Follow (`follow`) or Unfollow of `ids` would do if applied now, changing
    /// nothing: the ids it would change, the client's count today, (Follow) the ids not in the
    /// store. The gateway audits those ids first and then applies only them, so no follow
    /// list changes without its record.
    async fn pending(
        &self,
        client: &str,
        ids: &[CitizenId],
        follow: bool,
    ) -> Result<FollowOutcome, StoreError>;

    /// Changes with `after < seq <= upto`, in seq order, at most `limit`, each with its
    /// carriers. `upto` must not pass the horizon.
    async fn read(&self, after: u64, upto: u64, limit: usize) -> Result<Vec<Fanned>, StoreError>;

    /// The changes `client` carries with `after < seq <= upto`, in seq order, at most `limit`.
    async fn read_for(
        &self,
        client: &str,
        after: u64,
        upto: u64,
        limit: usize,
    ) -> Result<Carried, StoreError>;

    /// The seq through which every change is committed and durable, as it moves.
    fn horizon(&self) -> watch::Receiver<u64>;

    /// Asks the store for its horizon now (for a store whose horizon is told by messages that
    /// may be lost, a poll); returns it and moves [`ChangeLog::horizon`] along.
    async fn refresh_horizon(&self) -> Result<u64, StoreError>;

    /// The oldest seq still kept; the horizon + 1 when none is.
    async fn oldest(&self) -> Result<u64, StoreError>;

    /// Drops the oldest changes committed before `before`, stopping at the first one that is
    /// not (so the log stays a contiguous range and "the oldest kept" means what it says).
    /// Returns how many were dropped.
    async fn prune(&self, before: SystemTime) -> Result<u64, StoreError>;
}

/// Raises `w` to `seq` if that is further; never moves it back.
pub(crate) fn advance(w: &watch::Sender<u64>, seq: u64) {
    w.send_if_modified(|h| {
        if seq > *h {
            *h = seq;
            true
        } else {
            false
        }
    });
}

/// Span lists as stored: 16 bytes per span (since, until), big-endian.
pub(crate) fn encode_spans(spans: &[Span]) -> Vec<u8> {
    let mut out = Vec::with_capacity(spans.len() * 16);
    for s in spans {
        out.extend_from_slice(&s.since.to_be_bytes());
        out.extend_from_slice(&s.until.to_be_bytes());
    }
    out
}

pub(crate) fn decode_spans(bytes: &[u8]) -> Result<Vec<Span>, StoreError> {
    if !bytes.len().is_multiple_of(16) {
        return Err(StoreError::Corrupt(format!(
            "a follow entry of {} bytes (spans are 16)",
            bytes.len()
        )));
    }
    Ok(bytes
        .chunks_exact(16)
        .map(|c| Span {
            since: u64::from_be_bytes(c[..8].try_into().unwrap_or_default()),
            until: u64::from_be_bytes(c[8..].try_into().unwrap_or_default()),
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_span_carries_what_was_committed_while_it_was_open() {
        let s = Span {
            since: 10,
            until: 20,
        };
        assert!(!s.carries(10) && s.carries(11) && s.carries(20) && !s.carries(21));
        let open = Span {
            since: 10,
            until: OPEN,
        };
        assert!(open.carries(u64::MAX - 1));
        let spans = vec![s, open];
        assert_eq!(decode_spans(&encode_spans(&spans)).unwrap(), spans);
        assert!(decode_spans(&[1, 2, 3]).is_err());
    }
}
