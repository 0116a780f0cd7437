//! Every conversion between the protobuf messages and the domain's types, in both directions,
//! as pure functions. Requests convert without failing: whatever is wrong with one is the
//! pipeline's to find, audit and refuse (an unknown enum value becomes the domain's
//! "unspecified" or "unknown", which validation names).

use std::time::{SystemTime, UNIX_EPOCH};

use crate::citizen::{Citizen, Draft, LifeStatus, Sex};
use crate::fields::{Field, FieldSet};
use crate::gateway::{
    Audited, Claims, FollowRequest, Followed, Lookup, LookupRequest, MatchMode, PutRequest, Stats,
    Verification, VerifyRequest, WatchEvent, WatchRequest, Written,
};
use crate::pb;

fn sex(code: i32) -> Sex {
    match pb::Sex::try_from(code) {
        Ok(pb::Sex::Male) => Sex::Male,
        Ok(pb::Sex::Female) => Sex::Female,
        _ => Sex::Unspecified,
    }
}

fn sex_code(s: Sex) -> i32 {
    let code = match s {
        Sex::Unspecified => pb::Sex::Unspecified,
        Sex::Male => pb::Sex::Male,
        Sex::Female => pb::Sex::Female,
    };
    code as i32
}

fn life_status(code: i32) -> LifeStatus {
    match pb::LifeStatus::try_from(code) {
        Ok(pb::LifeStatus::Alive) => LifeStatus::Alive,
        Ok(pb::LifeStatus::Deceased) => LifeStatus::Deceased,
        _ => LifeStatus::Unspecified,
    }
}

fn life_status_code(l: LifeStatus) -> i32 {
    let code = match l {
        LifeStatus::Unspecified => pb::LifeStatus::Unspecified,
        LifeStatus::Alive => pb::LifeStatus::Alive,
        LifeStatus::Deceased => pb::LifeStatus::Deceased,
    };
    code as i32
}

pub fn timestamp(t: SystemTime) -> prost_types::Timestamp {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    prost_types::Timestamp {
        seconds: i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
        nanos: d.subsec_nanos() as i32,
    }
}

fn mask(m: Option<prost_types::FieldMask>) -> Vec<String> {
    m.map(|m| m.paths).unwrap_or_default()
}

pub fn lookup_request(r: pb::LookupRequest) -> LookupRequest {
    LookupRequest {
        citizen_id: r.citizen_id,
        read_mask: mask(r.read_mask),
        purpose: r.purpose,
        request_id: r.request_id,
    }
}

pub fn verify_request(r: pb::VerifyRequest) -> VerifyRequest {
    VerifyRequest {
        citizen_id: r.citizen_id,
        claims: r.claims.map(|c| Claims {
            full_name: c.full_name,
            date_of_birth: c.date_of_birth,
            sex: c.sex.map(sex),
            permanent_address: c.permanent_address,
        }),
        purpose: r.purpose,
        request_id: r.request_id,
        mode: match pb::MatchMode::try_from(r.mode) {
            Ok(pb::MatchMode::Unspecified | pb::MatchMode::Exact) => MatchMode::Exact,
            Ok(pb::MatchMode::Loose) => MatchMode::Loose,
            Err(_) => MatchMode::Unknown(r.mode),
        },
    }
}

/// The registry's record as sent (`version` and `updated_at` are the gateway's to set, so
/// they are not carried over).
pub fn draft(c: pb::Citizen) -> Draft {
    Draft {
        citizen_id: c.citizen_id,
        full_name: c.full_name,
        date_of_birth: c.date_of_birth,
        sex: sex(c.sex),
        place_of_origin: c.place_of_origin,
        permanent_address: c.permanent_address,
        current_address: c.current_address,
        ethnicity: c.ethnicity,
        religion: c.religion,
        nationality: c.nationality,
        card_issued_on: c.card_issued_on,
        card_expires_on: c.card_expires_on,
        household_head_id: c.household_head_id,
        life_status: life_status(c.life_status),
    }
}

pub fn put_request(r: pb::PutCitizenRequest) -> PutRequest {
    PutRequest {
        citizen: r.citizen.map(draft),
        expected_version: r.expected_version,
    }
}

/// `c` as a message holding only `fields` plus the non-personal `citizen_id`, `version` and
/// `updated_at`. Built field by field from an empty message, so a field added to `Citizen`
/// later is withheld until it is given a name here.
pub fn citizen(c: &Citizen, fields: FieldSet) -> pb::Citizen {
    let mut out = pb::Citizen {
        citizen_id: c.id.to_text(),
        version: c.version,
        updated_at: Some(timestamp(c.updated_at)),
        ..Default::default()
    };
    for f in fields.iter() {
        match f {
            Field::FullName => out.full_name.clone_from(&c.full_name),
            Field::DateOfBirth => out.date_of_birth.clone_from(&c.date_of_birth),
            Field::Sex => out.sex = sex_code(c.sex),
            Field::PlaceOfOrigin => out.place_of_origin.clone_from(&c.place_of_origin),
            Field::PermanentAddress => out.permanent_address.clone_from(&c.permanent_address),
            Field::CurrentAddress => out.current_address.clone_from(&c.current_address),
            Field::Ethnicity => out.ethnicity.clone_from(&c.ethnicity),
            Field::Religion => out.religion.clone_from(&c.religion),
            Field::Nationality => out.nationality.clone_from(&c.nationality),
            Field::CardIssuedOn => out.card_issued_on.clone_from(&c.card_issued_on),
            Field::CardExpiresOn => out.card_expires_on.clone_from(&c.card_expires_on),
            Field::HouseholdHeadId => out.household_head_id.clone_from(&c.household_head_id),
            Field::LifeStatus => out.life_status = life_status_code(c.life_status),
        }
    }
    out
}

pub fn lookup_response(a: Audited<Lookup>) -> pb::LookupResponse {
    pb::LookupResponse {
        citizen: Some(citizen(&a.value.citizen, a.value.fields)),
        reused: a.value.reused,
        audit_seq: a.audit_seq,
        request_id: a.value.request_id,
        error: None,
    }
}

pub fn field_matches(v: &Verification) -> Vec<pb::FieldMatch> {
    v.fields
        .iter()
        .map(|f| pb::FieldMatch {
            field: f.field.name().to_owned(),
            matched: f.matched,
        })
        .collect()
}

pub fn verify_response(a: Audited<Verification>) -> pb::VerifyResponse {
    pb::VerifyResponse {
        matched: a.value.matched,
        fields: field_matches(&a.value),
        deceased: a.value.deceased,
        reused: a.value.reused,
        audit_seq: a.audit_seq,
        request_id: a.value.request_id,
        error: None,
    }
}

pub fn put_response(a: Audited<Written>) -> pb::PutCitizenResponse {
    pb::PutCitizenResponse {
        version: a.value.version,
        audit_seq: a.audit_seq,
    }
}

pub fn follow_request(r: pb::FollowRequest) -> FollowRequest {
    FollowRequest {
        citizen_ids: r.citizen_ids,
        purpose: r.purpose,
        request_id: r.request_id,
    }
}

pub fn follow_response(a: Audited<Followed>) -> pb::FollowResponse {
    pb::FollowResponse {
        changed: a.value.changed,
        following: a.value.following,
        not_found: a.value.not_found,
        audit_seq: a.audit_seq,
    }
}

pub fn watch_request(r: pb::WatchChangesRequest) -> WatchRequest {
    WatchRequest {
        after_seq: r.after_seq,
        read_mask: mask(r.read_mask),
        purpose: r.purpose,
        request_id: r.request_id,
    }
}

/// A change as the caller may see it (its values projected like a Lookup's), or a progress
/// event (no citizen).
pub fn change_event(e: WatchEvent) -> pb::ChangeEvent {
    match e.change {
        Some(c) => pb::ChangeEvent {
            seq: e.seq,
            citizen: Some(citizen(&c.record, c.values)),
            changed_fields: c.changed.names().into_iter().map(str::to_owned).collect(),
            audit_seq: e.audit_seq,
        },
        None => pb::ChangeEvent {
            seq: e.seq,
            ..Default::default()
        },
    }
}

pub fn stats_response(a: Audited<Stats>) -> pb::GetStatsResponse {
    let s = a.value;
    pb::GetStatsResponse {
        requests: s.requests,
        reused: s.reused,
        reuse_rate: s.reuse_rate,
        clients: s
            .clients
            .into_iter()
            .map(|c| pb::ClientStats {
                client_id: c.client_id,
                requests: c.requests,
                reused: c.reused,
                denied: c.denied,
                rate_limited: c.rate_limited,
                not_found: c.not_found,
            })
            .collect(),
        records: s.records,
        node_id: s.node_id,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn projection_keeps_only_the_requested_fields_and_the_non_personal_ones() {
        let c = crate::synth::citizen_at(7, 1);
        let p = citizen(&c, [Field::FullName].into_iter().collect());
        assert_eq!(p.full_name, c.full_name);
        assert_eq!((p.citizen_id, p.version), (c.id.to_string(), c.version));
        assert_eq!(p.updated_at, Some(timestamp(c.updated_at)));
        assert!(p.date_of_birth.is_empty() && p.permanent_address.is_empty() && p.sex == 0);
        let all = citizen(&c, Field::ALL.into_iter().collect());
        assert_eq!(draft(all), {
            let mut d = draft(pb::Citizen::default());
            d.citizen_id = c.id.to_string();
            d.full_name = c.full_name.clone();
            d.date_of_birth = c.date_of_birth.clone();
            d.sex = c.sex;
            d.place_of_origin = c.place_of_origin.clone();
            d.permanent_address = c.permanent_address.clone();
            d.current_address = c.current_address.clone();
            d.ethnicity = c.ethnicity.clone();
            d.religion = c.religion.clone();
            d.nationality = c.nationality.clone();
            d.card_issued_on = c.card_issued_on.clone();
            d.card_expires_on = c.card_expires_on.clone();
            d.household_head_id = c.household_head_id.clone();
            d.life_status = c.life_status;
            d
        });
    }

    #[test]
    fn unknown_enum_values_reach_the_domain_as_unspecified_or_unknown() {
        let r = verify_request(pb::VerifyRequest {
            mode: 9,
            claims: Some(pb::Claims {
                sex: Some(7),
                ..Default::default()
            }),
            ..Default::default()
        });
        assert_eq!(r.mode, MatchMode::Unknown(9));
        assert_eq!(r.claims.unwrap().sex, Some(Sex::Unspecified));
        assert_eq!(
            draft(pb::Citizen {
                life_status: 5,
                ..Default::default()
            })
            .life_status,
            LifeStatus::Unspecified
        );
    }
}
