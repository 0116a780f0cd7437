//! A record's bytes on disk: a protobuf message of its own, with the field numbers of
//! `popgate.v1.Citizen` so that stores written before the two were separated read unchanged.
//! The API message may grow (or rename) fields without touching what is stored, and the other
//! way round; only this file maps between the disk and [`Citizen`].

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use prost::Message;

use super::StoreError;
use crate::citizen::{Citizen, LifeStatus, Sex};
use crate::id::CitizenId;

#[derive(Clone, PartialEq, prost::Message)]
struct Stored {
    #[prost(string, tag = "1")]
    citizen_id: String,
    #[prost(string, tag = "2")]
    full_name: String,
    #[prost(string, tag = "3")]
    date_of_birth: String,
    #[prost(int32, tag = "4")]
    sex: i32,
    #[prost(string, tag = "5")]
    place_of_origin: String,
    #[prost(string, tag = "6")]
    permanent_address: String,
    #[prost(string, tag = "7")]
    current_address: String,
    #[prost(string, tag = "8")]
    ethnicity: String,
    #[prost(string, tag = "9")]
    religion: String,
    #[prost(string, tag = "10")]
    nationality: String,
    #[prost(string, tag = "11")]
    card_issued_on: String,
    #[prost(string, tag = "12")]
    card_expires_on: String,
    #[prost(string, tag = "13")]
    household_head_id: String,
    #[prost(int32, tag = "14")]
    life_status: i32,
    #[prost(uint64, tag = "15")]
    version: u64,
    #[prost(message, optional, tag = "16")]
    updated_at: Option<prost_types::Timestamp>,
}

fn sex_code(s: Sex) -> i32 {
    match s {
        Sex::Unspecified => 0,
        Sex::Male => 1,
        Sex::Female => 2,
    }
}

fn life_code(l: LifeStatus) -> i32 {
    match l {
        LifeStatus::Unspecified => 0,
        LifeStatus::Alive => 1,
        LifeStatus::Deceased => 2,
    }
}

fn timestamp(t: SystemTime) -> prost_types::Timestamp {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    prost_types::Timestamp {
        seconds: i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
        nanos: d.subsec_nanos() as i32,
    }
}

fn system_time(t: Option<prost_types::Timestamp>) -> SystemTime {
    let Some(t) = t else { return UNIX_EPOCH };
    let secs = u64::try_from(t.seconds).unwrap_or(0);
    let nanos = u32::try_from(t.nanos).unwrap_or(0).min(999_999_999);
    UNIX_EPOCH + Duration::new(secs, nanos)
}

pub(super) fn encode(c: &Citizen) -> Vec<u8> {
    Stored {
        citizen_id: c.id.to_string(),
        full_name: c.full_name.clone(),
        date_of_birth: c.date_of_birth.clone(),
        sex: sex_code(c.sex),
        place_of_origin: c.place_of_origin.clone(),
        permanent_address: c.permanent_address.clone(),
        current_address: c.current_address.clone(),
        ethnicity: c.ethnicity.clone(),
        religion: c.religion.clone(),
        nationality: c.nationality.clone(),
        card_issued_on: c.card_issued_on.clone(),
        card_expires_on: c.card_expires_on.clone(),
        household_head_id: c.household_head_id.clone(),
        life_status: life_code(c.life_status),
        version: c.version,
        updated_at: Some(timestamp(c.updated_at)),
    }
    .encode_to_vec()
}

/// The record stored under `id`. The id comes from the key, which is what the store looks up
/// by; the copy inside the value is kept for readers of the raw data.
pub(super) fn decode(id: CitizenId, bytes: &[u8]) -> Result<Citizen, StoreError> {
    let s = Stored::decode(bytes).map_err(|e| StoreError::Corrupt(e.to_string()))?;
    Ok(Citizen {
        id,
        full_name: s.full_name,
        date_of_birth: s.date_of_birth,
        sex: match s.sex {
            1 => Sex::Male,
            2 => Sex::Female,
            _ => Sex::Unspecified,
        },
        place_of_origin: s.place_of_origin,
        permanent_address: s.permanent_address,
        current_address: s.current_address,
        ethnicity: s.ethnicity,
        religion: s.religion,
        nationality: s.nationality,
        card_issued_on: s.card_issued_on,
        card_expires_on: s.card_expires_on,
        household_head_id: s.household_head_id,
        life_status: match s.life_status {
            1 => LifeStatus::Alive,
            2 => LifeStatus::Deceased,
            _ => LifeStatus::Unspecified,
        },
        version: s.version,
        updated_at: system_time(s.updated_at),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_round_trips_and_reads_the_api_encoding_of_the_same_fields() {
        let c = crate::synth::citizen_at(7, 3);
        assert_eq!(decode(c.id, &encode(&c)).unwrap(), c);
        // Stores written when the record on disk was the API message must still read.
        let api = crate::pb::Citizen {
            citizen_id: c.id.to_string(),
            full_name: c.full_name.clone(),
            date_of_birth: c.date_of_birth.clone(),
            sex: crate::pb::Sex::Female as i32,
            life_status: crate::pb::LifeStatus::Deceased as i32,
            version: 4,
            updated_at: Some(prost_types::Timestamp {
                seconds: 1_700_000_000,
                nanos: 5,
            }),
            ..Default::default()
        };
        let got = decode(c.id, &api.encode_to_vec()).unwrap();
        assert_eq!(got.full_name, c.full_name);
        assert_eq!(
            (got.sex, got.life_status, got.version),
            (Sex::Female, LifeStatus::Deceased, 4)
        );
        assert_eq!(got.updated_at, UNIX_EPOCH + Duration::new(1_700_000_000, 5));
        assert!(matches!(
            decode(c.id, b"\xff\xff"),
            Err(StoreError::Corrupt(_))
        ));
    }
}
