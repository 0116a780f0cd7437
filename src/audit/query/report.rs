//! The access report: who read or wrote one citizen's data, when, which fields and why.

use std::borrow::Cow;
use std::collections::BTreeSet;

use super::filter::{Filter, TimeRange};
use super::fold::{Fold, Order, Skipped};
use super::{QueryError, Source};
use crate::audit::record::{Record, Str};

/// A citizen's accesses, newest first.
#[derive(Debug, Clone, PartialEq)]
pub struct Report<T> {
    /// One per record about the citizen, as the caller's `map` made it.
    pub accesses: Vec<T>,
    /// The client ids among them.
    pub clients: BTreeSet<String>,
    pub skipped: Skipped,
}

/// A record that owns its text, to keep after the line it was parsed from is gone.
pub fn owned(r: &Record<'_>) -> Record<'static> {
    fn own(s: &Str<'_>) -> Str<'static> {
        Str(Cow::Owned(s.0.clone().into_owned()))
    }
    Record {
        seq: r.seq,
        ts: own(&r.ts),
        client: own(&r.client),
        cert_sha256: own(&r.cert_sha256),
        peer: own(&r.peer),
        method: own(&r.method),
        citizen_id: r.citizen_id.as_ref().map(own),
        fields: r.fields.iter().map(own).collect(),
        purpose: own(&r.purpose),
        request_id: own(&r.request_id),
        outcome: r.outcome,
        reused: r.reused,
        latency_us: r.latency_us,
        count: r.count,
        reason: r.reason.as_ref().map(own),
        prev: own(&r.prev),
        hash: own(&r.hash),
        node: r.node.as_ref().map(own),
    }
}

struct Collect<M> {
    map: M,
}

impl<T: Send, M: Fn(&Record<'_>, &[u8]) -> T + Sync> Fold for Collect<M> {
    type Part = (Vec<T>, BTreeSet<String>);

    fn start(&self) -> Self::Part {
        (Vec::new(), BTreeSet::new())
    }

    fn add(&self, (found, clients): &mut Self::Part, r: &Record<'_>, line: &[u8]) -> bool {
        found.push((self.map)(r, line));
        if !clients.contains(&*r.client) {
            clients.insert(r.client.to_string());
        }
        true
    }
}

pub(super) fn report<S: Source + ?Sized, T: Send>(
    source: &S,
    citizen: &str,
    range: &TimeRange,
    map: impl Fn(&Record<'_>, &[u8]) -> T + Sync,
) -> Result<Report<T>, QueryError> {
    let filter = Filter {
        range: range.clone(),
        citizen: Some(citizen.to_owned()),
        ..Filter::default()
    };
    let mut rep = Report {
        accesses: Vec::new(),
        clients: BTreeSet::new(),
        skipped: Skipped::default(),
    };
    // Oldest first, then turned round: the newest are last in every part, and every part is
    // needed anyway.
    source.fold(&filter, Order::OldestFirst, &Collect { map }, |part| {
        let (mut found, clients) = part.value;
        rep.accesses.append(&mut found);
        rep.clients.extend(clients);
        rep.skipped.merge(part.skipped);
        Ok::<_, QueryError>(true)
    })?;
    rep.accesses.reverse();
    Ok(rep)
}
