//! Counts over part of the log: calls by client and outcome, and the reuse rate.

use std::collections::BTreeMap;

use serde::ser::{Serialize, SerializeStruct, Serializer};

use super::fold::{Fold, Skipped};
use crate::audit::record::{Outcome, Record};

/// Counts for one client, or for all.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Counts {
    /// Calls: an aggregated `rate_limited` record with `count` stands for that many.
    pub calls: u64,
    pub ok: u64,
    pub denied: u64,
    pub invalid: u64,
    pub not_found: u64,
    pub rate_limited: u64,
    pub error: u64,
    /// `ok` records answered from the reuse cache.
    pub reused: u64,
}

impl Counts {
    pub fn add(&mut self, r: &Record<'_>) {
        let n = r.calls();
        self.calls += n;
        *self.outcome_mut(r.outcome) += n;
        if r.reused && r.outcome == Outcome::Ok {
            self.reused += 1;
        }
    }

    pub fn merge(&mut self, o: &Counts) {
        self.calls += o.calls;
        self.ok += o.ok;
        self.denied += o.denied;
        self.invalid += o.invalid;
        self.not_found += o.not_found;
        self.rate_limited += o.rate_limited;
        self.error += o.error;
        self.reused += o.reused;
    }

    /// Calls that ended with `o`.
    pub fn outcome(&self, o: Outcome) -> u64 {
        match o {
            Outcome::Ok => self.ok,
            Outcome::Denied => self.denied,
            Outcome::Invalid => self.invalid,
            Outcome::NotFound => self.not_found,
            Outcome::RateLimited => self.rate_limited,
            Outcome::Error => self.error,
        }
    }

    fn outcome_mut(&mut self, o: Outcome) -> &mut u64 {
        match o {
            Outcome::Ok => &mut self.ok,
            Outcome::Denied => &mut self.denied,
            Outcome::Invalid => &mut self.invalid,
            Outcome::NotFound => &mut self.not_found,
            Outcome::RateLimited => &mut self.rate_limited,
            Outcome::Error => &mut self.error,
        }
    }

    /// reused / ok; 0 without `ok` calls.
    pub fn reuse_rate(&self) -> f64 {
        if self.ok == 0 {
            0.0
        } else {
            self.reused as f64 / self.ok as f64
        }
    }
}

/// The counters, then `reuse_rate`: the rate is derived, so it is computed here rather than
/// stored where it could go stale.
impl Serialize for Counts {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut st = s.serialize_struct("Counts", 9)?;
        st.serialize_field("calls", &self.calls)?;
        st.serialize_field("ok", &self.ok)?;
        st.serialize_field("denied", &self.denied)?;
        st.serialize_field("invalid", &self.invalid)?;
        st.serialize_field("not_found", &self.not_found)?;
        st.serialize_field("rate_limited", &self.rate_limited)?;
        st.serialize_field("error", &self.error)?;
        st.serialize_field("reused", &self.reused)?;
        st.serialize_field("reuse_rate", &self.reuse_rate())?;
        st.end()
    }
}

/// Counts over the records of a scan, by client and in all. Parts of the log are counted
/// apart and merged in log order.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Stats {
    /// Records (not calls: see [`Counts::calls`]).
    pub records: u64,
    /// The `ts` of the first and the last record counted.
    pub first_ts: Option<String>,
    pub last_ts: Option<String>,
    pub total: Counts,
    pub clients: BTreeMap<String, Counts>,
    pub skipped: Skipped,
}

impl Stats {
    pub fn add(&mut self, r: &Record<'_>) {
        self.records += 1;
        self.total.add(r);
        // Look up before inserting: a client's id is allocated once, not once per record.
        match self.clients.get_mut(&*r.client) {
            Some(c) => c.add(r),
            None => self.clients.entry(r.client.to_string()).or_default().add(r),
        }
        if self.first_ts.is_none() {
            self.first_ts = Some(r.ts.to_string());
        }
        match &mut self.last_ts {
            Some(t) => {
                t.clear();
                t.push_str(&r.ts);
            }
            None => self.last_ts = Some(r.ts.to_string()),
        }
    }

    /// Adds the counts of a later part of the log.
    pub fn merge(&mut self, later: Stats) {
        self.records += later.records;
        self.total.merge(&later.total);
        for (k, v) in later.clients {
            self.clients.entry(k).or_default().merge(&v);
        }
        if self.first_ts.is_none() {
            self.first_ts = later.first_ts;
        }
        if later.last_ts.is_some() {
            self.last_ts = later.last_ts;
        }
        self.skipped.merge(later.skipped);
    }
}

/// [`Source::stats`](super::Source::stats)'s fold.
pub(super) struct Count;

impl Fold for Count {
    type Part = Stats;

    fn start(&self) -> Stats {
        Stats::default()
    }

    fn add(&self, part: &mut Stats, record: &Record<'_>, _line: &[u8]) -> bool {
        part.add(record);
        true
    }
}
