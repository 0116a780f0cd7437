//! PutCitizen: a conditional create or replace, durable and visible to every later call before
//! it answers.
//!
//! The store decides the version check ([`Store::put`](crate::store::Store::put)); the audit
//! record of the write is made durable after that decision and before the write is committed
//! (the store asks `AuditGate` in between, holding the id meanwhile). So of two writers
//! racing on one version only the winner is audited `ok` — the loser's record says `invalid`
//! with the store's reason — and a crash between the record and the commit leaves a record of
//! a write that did not land (and was never acknowledged), never a change nobody can account
//! for.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::SystemTime;

use async_trait::async_trait;

use super::{Call, Gateway, Handler, current_year};
use crate::citizen::{Citizen, Draft};
use crate::error::Error;
use crate::policy::{Client, Method};
use crate::registry;
use crate::store::{BeforeCommit, PutOutcome, Vetoed};

#[derive(Debug, Clone, Default)]
pub struct PutRequest {
    pub citizen: Option<Draft>,
    /// 0 = the record must not exist yet.
    pub expected_version: u64,
}

/// The answer: the version written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Written {
    pub version: u64,
}

pub struct Plan {
    record: Citizen,
    expected: u64,
}

impl Handler for PutRequest {
    const METHOD: Method = Method::PutCitizen;
    type Plan = Plan;
    type Answer = Written;

    fn authorize(self, _client: &Client, call: &mut Call) -> Result<Plan, Error> {
        let draft = self
            .citizen
            .ok_or_else(|| Error::InvalidArgument("citizen: is required".into()))?;
        let record = registry::validate(draft, current_year(), SystemTime::now())?;
        call.citizen_id = Some(record.id.to_string());
        call.fields = registry::fields_written(&record);
        Ok(Plan {
            record,
            expected: self.expected_version,
        })
    }

    async fn execute(plan: Plan, gateway: &Gateway, call: &mut Call) -> Result<Written, Error> {
        let (id, expected) = (plan.record.id, plan.expected);
        let (written, audited) = {
            let gate = AuditGate {
                gateway,
                call,
                outcome: Mutex::new(None),
            };
            let written = gateway.store.put(plan.record, expected, &gate).await;
            (written, gate.take())
        };
        let audited_seq = match &audited {
            Some(Ok(seq)) => Some(*seq),
            _ => None,
        };
        let outcome = match written {
            Ok(o) => o,
            Err(e) => {
                let e = gateway.store_failed(e);
                let Some(seq) = audited_seq else {
                    return Err(e);
                };
                // Recorded as written, but the store failed at the commit: the call's final
                // record says so. That record (by seq) names the citizen; the process log
                // must not. A commit that failed may still have reached the disk.
                tracing::error!(audit_seq = seq, error = %e, "PutCitizen recorded but not written");
                return Err(Error::Unavailable(
                    "population store unavailable while committing: the write may or may not \
                     have been applied; re-read the record before retrying"
                        .into(),
                ));
            }
        };
        match outcome {
            PutOutcome::Written(record) => {
                let version = record.version;
                gateway.cache.write(Arc::from(record), id);
                call.audited = audited_seq;
                Ok(Written { version })
            }
            PutOutcome::AlreadyExists { current: v } => Err(Error::AlreadyExists(format!(
                "citizen {id} already exists (version {v}); to replace it set expected_version = {v}"
            ))),
            PutOutcome::VersionMismatch { current: 0 } => Err(Error::Aborted(format!(
                "citizen {id} does not exist; to create it set expected_version = 0"
            ))),
            PutOutcome::VersionMismatch { current: v } => Err(Error::Aborted(format!(
                "citizen {id} is at version {v}, not {expected}; re-read it and retry"
            ))),
            PutOutcome::Vetoed => Err(match audited {
                Some(Err(e)) => e,
                _ => Error::Internal("the store reported a refusal nobody made".into()),
            }),
        }
    }
}

/// Writes the call's `ok` record when the store has decided the write goes ahead.
struct AuditGate<'a> {
    gateway: &'a Gateway,
    call: &'a Call,
    /// The record's seq, or why it could not be written.
    outcome: Mutex<Option<Result<u64, Error>>>,
}

impl AuditGate<'_> {
    fn take(&self) -> Option<Result<u64, Error>> {
        self.outcome
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
    }
}

#[async_trait]
impl BeforeCommit for AuditGate<'_> {
    async fn approve(&self, _record: &Citizen) -> Result<(), Vetoed> {
        let r = self.gateway.audit_before_effect(self.call).await;
        let ok = r.is_ok();
        *self.outcome.lock().unwrap_or_else(PoisonError::into_inner) = Some(r);
        if ok { Ok(()) } else { Err(Vetoed) }
    }
}
