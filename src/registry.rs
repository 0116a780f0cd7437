//! Validation of the records the registry writes (`PutCitizen`): a record is checked like a
//! request — id, dates, names — and its text normalised to NFC before it is stored.

use std::time::SystemTime;

use unicode_normalization::UnicodeNormalization;

use crate::citizen::{Citizen, Draft, LifeStatus, Sex};
use crate::error::Error;
use crate::fields::{Field, FieldSet};
use crate::id::{CitizenId, IdSex};
use crate::matching::parse_date;

/// The longest text field accepted, in characters.
const MAX_TEXT: usize = 256;

fn bad(field: &str, why: impl std::fmt::Display) -> Error {
    Error::InvalidArgument(format!("citizen.{field}: {why}"))
}

/// Checks `c` and returns the record as it will be stored: text in NFC, `updated_at` = `now`,
/// version 0 (the store sets the version it writes).
pub fn validate(mut c: Draft, current_year: i32, now: SystemTime) -> Result<Citizen, Error> {
    let id = CitizenId::parse(&c.citizen_id, current_year).map_err(|e| bad("citizen_id", e))?;
    for (name, value) in [
        ("full_name", &mut c.full_name),
        ("place_of_origin", &mut c.place_of_origin),
        ("permanent_address", &mut c.permanent_address),
        ("current_address", &mut c.current_address),
        ("ethnicity", &mut c.ethnicity),
        ("religion", &mut c.religion),
        ("nationality", &mut c.nationality),
    ] {
        if value.chars().any(char::is_control) {
            return Err(bad(name, "contains control characters"));
        }
        // Counted after NFC, which can lengthen text (U+FB2C is three characters in NFC): the
        // limit holds for what is stored, so a stored record always validates again.
        let normalised: String = value.trim().nfc().collect();
        if normalised.chars().count() > MAX_TEXT {
            return Err(bad(
                name,
                format!("longer than {MAX_TEXT} characters (in NFC)"),
            ));
        }
        *value = normalised;
    }
    if c.full_name.is_empty() {
        return Err(bad("full_name", "is required"));
    }
    let dob = parse_date(&c.date_of_birth)
        .ok_or_else(|| bad("date_of_birth", "must be a date YYYY-MM-DD"))?;
    if dob.year() != id.birth_year() {
        return Err(bad(
            "date_of_birth",
            format!(
                "year {} does not match the birth year {} encoded in citizen_id",
                dob.year(),
                id.birth_year()
            ),
        ));
    }
    let id_sex = match id.sex() {
        IdSex::Male => Sex::Male,
        IdSex::Female => Sex::Female,
    };
    match c.sex {
        s if s == id_sex => {}
        Sex::Unspecified => return Err(bad("sex", "must be MALE or FEMALE")),
        _ => return Err(bad("sex", "does not match the sex encoded in citizen_id")),
    }
    let issued = date_or_empty("card_issued_on", &c.card_issued_on)?;
    let expires = date_or_empty("card_expires_on", &c.card_expires_on)?;
    if let (Some(i), Some(e)) = (issued, expires)
        && e <= i
    {
        return Err(bad("card_expires_on", "must be after card_issued_on"));
    }
    if let Some(i) = issued
        && i < dob
    {
        return Err(bad("card_issued_on", "is before date_of_birth"));
    }
    if !c.household_head_id.is_empty() {
        CitizenId::parse(&c.household_head_id, current_year)
            .map_err(|e| bad("household_head_id", e))?;
    }
    if c.life_status == LifeStatus::Unspecified {
        return Err(bad("life_status", "must be ALIVE or DECEASED"));
    }
    Ok(Citizen {
        id,
        full_name: c.full_name,
        date_of_birth: c.date_of_birth,
        sex: c.sex,
        place_of_origin: c.place_of_origin,
        permanent_address: c.permanent_address,
        current_address: c.current_address,
        ethnicity: c.ethnicity,
        religion: c.religion,
        nationality: c.nationality,
        card_issued_on: c.card_issued_on,
        card_expires_on: c.card_expires_on,
        household_head_id: c.household_head_id,
        life_status: c.life_status,
        version: 0,
        updated_at: now,
    })
}

fn date_or_empty(field: &str, s: &str) -> Result<Option<time::Date>, Error> {
    if s.is_empty() {
        return Ok(None);
    }
    parse_date(s)
        .map(Some)
        .ok_or_else(|| bad(field, "must be a date YYYY-MM-DD or empty"))
}

/// The personal fields a record holds (not empty), for the audit record of a write.
pub fn fields_written(c: &Citizen) -> FieldSet {
    Field::ALL
        .into_iter()
        .filter(|f| match f {
            Field::FullName => !c.full_name.is_empty(),
            Field::DateOfBirth => !c.date_of_birth.is_empty(),
            Field::Sex => c.sex != Sex::Unspecified,
            Field::PlaceOfOrigin => !c.place_of_origin.is_empty(),
            Field::PermanentAddress => !c.permanent_address.is_empty(),
            Field::CurrentAddress => !c.current_address.is_empty(),
            Field::Ethnicity => !c.ethnicity.is_empty(),
            Field::Religion => !c.religion.is_empty(),
            Field::Nationality => !c.nationality.is_empty(),
            Field::CardIssuedOn => !c.card_issued_on.is_empty(),
            Field::CardExpiresOn => !c.card_expires_on.is_empty(),
            Field::HouseholdHeadId => !c.household_head_id.is_empty(),
            Field::LifeStatus => c.life_status != LifeStatus::Unspecified,
        })
        .collect()
}

/// The personal fields a write changes: those that differ from the record it replaces, or
/// those it holds when it creates one. For the change log (subscribers are told which).
pub fn fields_changed(old: Option<&Citizen>, new: &Citizen) -> FieldSet {
    let Some(old) = old else {
        return fields_written(new);
    };
    Field::ALL
        .into_iter()
        .filter(|f| match f {
            Field::FullName => old.full_name != new.full_name,
            Field::DateOfBirth => old.date_of_birth != new.date_of_birth,
            Field::Sex => old.sex != new.sex,
            Field::PlaceOfOrigin => old.place_of_origin != new.place_of_origin,
            Field::PermanentAddress => old.permanent_address != new.permanent_address,
            Field::CurrentAddress => old.current_address != new.current_address,
            Field::Ethnicity => old.ethnicity != new.ethnicity,
            Field::Religion => old.religion != new.religion,
            Field::Nationality => old.nationality != new.nationality,
            Field::CardIssuedOn => old.card_issued_on != new.card_issued_on,
            Field::CardExpiresOn => old.card_expires_on != new.card_expires_on,
            Field::HouseholdHeadId => old.household_head_id != new.household_head_id,
            Field::LifeStatus => old.life_status != new.life_status,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn good() -> Draft {
        Draft {
            citizen_id: "001203012345".into(),
            full_name: "Nguye\u{302}\u{303}n Văn An".into(),
            date_of_birth: "2003-04-05".into(),
            sex: Sex::Male,
            card_issued_on: "2021-05-01".into(),
            card_expires_on: "2028-04-05".into(),
            life_status: LifeStatus::Alive,
            ..Default::default()
        }
    }

    fn check(d: Draft) -> Result<Citizen, Error> {
        validate(d, 2026, SystemTime::UNIX_EPOCH)
    }

    #[test]
    fn a_change_names_the_fields_it_changed() {
        let a = check(good()).unwrap();
        let mut b = a.clone();
        b.full_name = "Nguyễn Văn Bình".into();
        b.life_status = LifeStatus::Deceased;
        assert_eq!(
            fields_changed(Some(&a), &b).names(),
            ["full_name", "life_status"]
        );
        assert_eq!(fields_changed(Some(&a), &a), FieldSet::EMPTY);
        assert_eq!(fields_changed(None, &a), fields_written(&a));
    }

    #[test]
    fn a_good_record_is_normalised() {
        let c = check(good()).unwrap();
        assert_eq!(c.id.to_string(), "001203012345");
        assert_eq!(c.full_name, "Nguyễn Văn An");
        assert_eq!((c.version, c.updated_at), (0, SystemTime::UNIX_EPOCH));
    }

    #[test]
    fn each_bad_field_is_named() {
        type Mutation = fn(&mut Draft);
        let cases: Vec<(Mutation, &str)> = vec![
            (|c| c.citizen_id = "12".into(), "citizen.citizen_id"),
            (|c| c.full_name = " ".into(), "citizen.full_name"),
            (
                |c| c.date_of_birth = "2003-02-30".into(),
                "citizen.date_of_birth",
            ),
            (
                |c| c.date_of_birth = "1999-01-01".into(),
                "citizen.date_of_birth",
            ),
            (|c| c.sex = Sex::Female, "citizen.sex"),
            (|c| c.sex = Sex::Unspecified, "citizen.sex"),
            (
                |c| c.card_expires_on = "2020-01-01".into(),
                "citizen.card_expires_on",
            ),
            (
                |c| c.household_head_id = "x".into(),
                "citizen.household_head_id",
            ),
            (
                |c| c.life_status = LifeStatus::Unspecified,
                "citizen.life_status",
            ),
            (|c| c.religion = "a\nb".into(), "citizen.religion"),
        ];
        for (mutate, key) in cases {
            let mut c = good();
            mutate(&mut c);
            let e = check(c).unwrap_err().to_string();
            assert!(e.starts_with(key), "{key}: {e}");
        }
    }
}
