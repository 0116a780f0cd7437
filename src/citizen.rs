//! A citizen's record as the gateway's domain holds it: what the store keeps, the reuse cache
//! shares, Verify compares and Lookup projects. Not the protobuf message: `grpc::convert`
//! turns it into one for an answer, and the store has its own encoding on disk, so the wire,
//! the domain and the disk can each change without dragging the others along.
//!
//! A [`Citizen`] is always a validated record (`registry::validate` makes them from a
//! [`Draft`]; the store and the synthetic population hand out only what was validated).

use std::time::SystemTime;

use crate::id::CitizenId;

/// Sex as the register holds it; `Unspecified` only in a draft or a claim that set none (or a
/// value the API does not know), which validation refuses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Sex {
    #[default]
    Unspecified,
    Male,
    Female,
}

/// Whether the person is alive; `Unspecified` as for [`Sex`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum LifeStatus {
    #[default]
    Unspecified,
    Alive,
    Deceased,
}

/// One citizen's record. Text is NFC; dates are `YYYY-MM-DD` (the card dates and the household
/// head may be empty: unknown).
#[derive(Debug, Clone, PartialEq)]
pub struct Citizen {
    pub id: CitizenId,
    pub full_name: String,
    pub date_of_birth: String,
    pub sex: Sex,
    pub place_of_origin: String,
    pub permanent_address: String,
    pub current_address: String,
    pub ethnicity: String,
    pub religion: String,
    pub nationality: String,
    pub card_issued_on: String,
    pub card_expires_on: String,
    pub household_head_id: String,
    pub life_status: LifeStatus,
    /// 1 for a new record, +1 on every change; set by the store when it writes.
    pub version: u64,
    /// When the record last changed; set by the gateway when it accepts a write.
    pub updated_at: SystemTime,
}

impl Citizen {
    pub fn is_deceased(&self) -> bool {
        self.life_status == LifeStatus::Deceased
    }

    /// The record as a registry would send it again (a stored record validates unchanged).
    pub fn to_draft(&self) -> Draft {
        Draft {
            citizen_id: self.id.to_string(),
            full_name: self.full_name.clone(),
            date_of_birth: self.date_of_birth.clone(),
            sex: self.sex,
            place_of_origin: self.place_of_origin.clone(),
            permanent_address: self.permanent_address.clone(),
            current_address: self.current_address.clone(),
            ethnicity: self.ethnicity.clone(),
            religion: self.religion.clone(),
            nationality: self.nationality.clone(),
            card_issued_on: self.card_issued_on.clone(),
            card_expires_on: self.card_expires_on.clone(),
            household_head_id: self.household_head_id.clone(),
            life_status: self.life_status,
        }
    }
}

/// A record as the registry sent it, not yet validated: every field as given.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Draft {
    pub citizen_id: String,
    pub full_name: String,
    pub date_of_birth: String,
    pub sex: Sex,
    pub place_of_origin: String,
    pub permanent_address: String,
    pub current_address: String,
    pub ethnicity: String,
    pub religion: String,
    pub nationality: String,
    pub card_issued_on: String,
    pub card_expires_on: String,
    pub household_head_id: String,
    pub life_status: LifeStatus,
}
