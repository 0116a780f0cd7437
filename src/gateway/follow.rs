//! Follow and Unfollow: a client's follow list, in batches of up to 10,000 ids (CONTRACT §5).
//!
//! The whole batch is checked before any of it is applied (a malformed id refuses it all);
//! an id given twice counts once. The store applies it ([`ChangeLog`](crate::store::ChangeLog)
//! decides when each follow begins, see `store::changes`). Each id whose state changed gets an
//! audit record of its own, so a citizen's access report shows who began or stopped following
//! them; a call that changed nothing gets one record for itself. The records precede the
//! change: the ids that would change are read first, recorded, and only they are applied.

use std::collections::HashSet;

use futures_util::StreamExt;

use super::{Call, Gateway, Handler, audit_unavailable, check_echoed, parse_id};
use crate::audit::Outcome;
use crate::error::Error;
use crate::fields::FieldSet;
use crate::id::CitizenId;
use crate::policy::{Client, Method};

/// The most ids one Follow or Unfollow takes.
pub const MAX_BATCH: usize = 10_000;

/// Audit records written at once for one call's ids: the audit log's group commit syncs
/// them together instead of one fsync each.
const AUDIT_WINDOW: usize = 512;

#[derive(Debug, Clone, Default)]
pub struct FollowRequest {
    pub citizen_ids: Vec<String>,
    pub purpose: String,
    pub request_id: String,
}

/// Unfollow takes the same request as Follow.
#[derive(Debug, Clone, Default)]
pub struct UnfollowRequest(pub FollowRequest);

/// The answer of Follow or Unfollow.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Followed {
    pub changed: u32,
    pub following: u64,
    pub not_found: Vec<String>,
}

pub struct Plan {
    ids: Vec<CitizenId>,
}

fn authorize(req: &FollowRequest, client: &Client) -> Result<Plan, Error> {
    check_echoed("request_id", &req.request_id)?;
    check_echoed("purpose", &req.purpose)?;
    let n = req.citizen_ids.len();
    if n == 0 {
        return Err(Error::InvalidArgument(
            "citizen_ids: give 1 to 10,000 ids".into(),
        ));
    }
    if n > MAX_BATCH {
        return Err(Error::InvalidArgument(format!(
            "citizen_ids: {n} ids; at most {MAX_BATCH} per call, send the rest in further calls"
        )));
    }
    let mut seen = HashSet::with_capacity(n);
    let mut ids = Vec::with_capacity(n);
    for (i, text) in req.citizen_ids.iter().enumerate() {
        let id = parse_id(text).map_err(|e| {
            Error::InvalidArgument(format!(
                "citizen_ids[{i}] {:?}: {e}; nothing of the batch was applied",
                crate::policy::truncate(text, 32)
            ))
        })?;
        if seen.insert(id) {
            ids.push(id);
        }
    }
    client.change_rights()?;
    client.require_purpose(&req.purpose)?;
    Ok(Plan { ids })
}

async fn execute(
    plan: Plan,
    gateway: &Gateway,
    call: &mut Call,
    follow: bool,
) -> Result<Followed, Error> {
    let client = call.client.clone();
    call.touched(FieldSet::EMPTY, false);
    // Which ids the call would change is read first, so that each has its record before the
    // store applies it; then only those ids are applied. A concurrent call of the same client
    // can only make this one change fewer than were recorded, never one without a record.
    let pending = gateway
        .changes
        .pending(&client, &plan.ids, follow)
        .await
        .map_err(|e| gateway.store_failed(e))?;
    let Some((last, rest)) = pending.changed.split_last() else {
        // Nothing to change: the call's own record, written by the pipeline, is all there is.
        return Ok(answer(0, pending.following, &pending.not_found));
    };
    let events: Vec<_> = rest
        .iter()
        .map(|id| {
            let mut ev = call.event(Outcome::Ok, None);
            ev.citizen_id = Some(id.to_string());
            ev
        })
        .collect();
    let mut appends = futures_util::stream::iter(events)
        .map(|ev| gateway.audit.append(ev))
        .buffered(AUDIT_WINDOW);
    while let Some(r) = appends.next().await {
        r.map_err(audit_unavailable)?;
    }
    // The last id's record is the call's own, so the answer's audit_seq is the call's last.
    call.citizen_id = Some(last.to_string());
    call.audited = Some(gateway.audit_before_effect(call).await?);
    let done = if follow {
        gateway.changes.follow(&client, &pending.changed).await
    } else {
        gateway.changes.unfollow(&client, &pending.changed).await
    }
    .map_err(|e| gateway.store_failed(e))?;
    Ok(answer(
        done.changed.len(),
        done.following,
        &pending.not_found,
    ))
}

fn answer(changed: usize, following: u64, not_found: &[CitizenId]) -> Followed {
    Followed {
        changed: changed as u32,
        following,
        not_found: not_found.iter().map(|id| id.to_string()).collect(),
    }
}

impl Handler for FollowRequest {
    const METHOD: Method = Method::Follow;
    type Plan = Plan;
    type Answer = Followed;

    fn echo(&self) -> (&str, &str) {
        (&self.purpose, &self.request_id)
    }

    fn authorize(self, client: &Client, _call: &mut Call) -> Result<Plan, Error> {
        authorize(&self, client)
    }

    async fn execute(plan: Plan, gateway: &Gateway, call: &mut Call) -> Result<Followed, Error> {
        execute(plan, gateway, call, true).await
    }
}

impl Handler for UnfollowRequest {
    const METHOD: Method = Method::Unfollow;
    type Plan = Plan;
    type Answer = Followed;

    fn echo(&self) -> (&str, &str) {
        (&self.0.purpose, &self.0.request_id)
    }

    fn authorize(self, client: &Client, _call: &mut Call) -> Result<Plan, Error> {
        authorize(&self.0, client)
    }

    async fn execute(plan: Plan, gateway: &Gateway, call: &mut Call) -> Result<Followed, Error> {
        execute(plan, gateway, call, false).await
    }
}
