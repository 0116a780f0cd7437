//! Lookup: the requested fields the caller may read, for one citizen.

use std::sync::Arc;

use super::{Call, Gateway, Handler, not_found};
use crate::citizen::Citizen;
use crate::error::Error;
use crate::fields::FieldSet;
use crate::id::CitizenId;
use crate::policy::{Client, Method};

#[derive(Debug, Clone, Default)]
pub struct LookupRequest {
    pub citizen_id: String,
    /// Field names; empty = every field the caller may read.
    pub read_mask: Vec<String>,
    pub purpose: String,
    pub request_id: String,
}

/// The answer: the record and the fields of it that may be released (the conversion to the
/// wire releases those and the non-personal `citizen_id`, `version`, `updated_at`, nothing
/// else).
#[derive(Debug, Clone)]
pub struct Lookup {
    pub citizen: Arc<Citizen>,
    pub fields: FieldSet,
    pub reused: bool,
    pub request_id: String,
}

pub struct Plan {
    id: CitizenId,
    fields: FieldSet,
    request_id: String,
}

impl Handler for LookupRequest {
    const METHOD: Method = Method::Lookup;
    type Plan = Plan;
    type Answer = Lookup;

    fn echo(&self) -> (&str, &str) {
        (&self.purpose, &self.request_id)
    }

    fn authorize(self, client: &Client, call: &mut Call) -> Result<Plan, Error> {
        let id = call.subject(&self.citizen_id, &self.purpose, &self.request_id)?;
        let fields = client.read_fields(&self.read_mask)?;
        client.require_purpose(&self.purpose)?;
        Ok(Plan {
            id,
            fields,
            request_id: self.request_id,
        })
    }

    async fn execute(plan: Plan, gateway: &Gateway, call: &mut Call) -> Result<Lookup, Error> {
        let (record, reused) = gateway.fetch(plan.id).await?;
        let citizen = record.ok_or_else(|| not_found(plan.id))?;
        call.touched(plan.fields, reused);
        Ok(Lookup {
            citizen,
            fields: plan.fields,
            reused,
            request_id: plan.request_id,
        })
    }
}
