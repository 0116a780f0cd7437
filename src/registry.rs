//! Validation of the records the registry writes (`PutCitizen`): a record is checked like a
//! request — id, dates, names — and its text normalised to NFC before it is stored.

use unicode_normalization::UnicodeNormalization;

use crate::error::Error;
use crate::fields::{Field, FieldSet};
use crate::id::{CitizenId, IdSex};
use crate::matching::parse_date;
use crate::pb::{Citizen, LifeStatus, Sex};

/// The longest text field accepted, in characters.
const MAX_TEXT: usize = 256;

fn bad(field: &str, why: impl std::fmt::Display) -> Error {
    Error::InvalidArgument(format!("citizen.{field}: {why}"))
}

/// Checks `c` and returns its id and the record as it will be stored (text in NFC; version
/// and `updated_at` are the gateway's to set).
pub fn validate(mut c: Citizen, current_year: i32) -> Result<(CitizenId, Citizen), Error> {
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
        if value.chars().count() > MAX_TEXT {
            return Err(bad(name, format!("longer than {MAX_TEXT} characters")));
        }
        *value = value.trim().nfc().collect();
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
    match Sex::try_from(c.sex) {
        Ok(s) if s == id_sex => {}
        Ok(Sex::Unspecified) | Err(_) => return Err(bad("sex", "must be MALE or FEMALE")),
        Ok(_) => return Err(bad("sex", "does not match the sex encoded in citizen_id")),
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
    match LifeStatus::try_from(c.life_status) {
        Ok(LifeStatus::Alive | LifeStatus::Deceased) => {}
        _ => return Err(bad("life_status", "must be ALIVE or DECEASED")),
    }
    c.citizen_id = id.to_string();
    c.version = 0;
    c.updated_at = None;
    Ok((id, c))
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
            Field::Sex => c.sex != 0,
            Field::PlaceOfOrigin => !c.place_of_origin.is_empty(),
            Field::PermanentAddress => !c.permanent_address.is_empty(),
            Field::CurrentAddress => !c.current_address.is_empty(),
            Field::Ethnicity => !c.ethnicity.is_empty(),
            Field::Religion => !c.religion.is_empty(),
            Field::Nationality => !c.nationality.is_empty(),
            Field::CardIssuedOn => !c.card_issued_on.is_empty(),
            Field::CardExpiresOn => !c.card_expires_on.is_empty(),
            Field::HouseholdHeadId => !c.household_head_id.is_empty(),
            Field::LifeStatus => c.life_status != 0,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn good() -> Citizen {
        Citizen {
            citizen_id: "001203012345".into(),
            full_name: "Nguye\u{302}\u{303}n Văn An".into(),
            date_of_birth: "2003-04-05".into(),
            sex: Sex::Male as i32,
            card_issued_on: "2021-05-01".into(),
            card_expires_on: "2028-04-05".into(),
            life_status: LifeStatus::Alive as i32,
            ..Default::default()
        }
    }

    #[test]
    fn a_good_record_is_normalised() {
        let (id, c) = validate(good(), 2026).unwrap();
        assert_eq!(id.to_string(), "001203012345");
        assert_eq!(c.full_name, "Nguyễn Văn An");
    }

    #[test]
    fn each_bad_field_is_named() {
        type Mutation = fn(&mut Citizen);
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
            (|c| c.sex = Sex::Female as i32, "citizen.sex"),
            (|c| c.sex = 7, "citizen.sex"),
            (
                |c| c.card_expires_on = "2020-01-01".into(),
                "citizen.card_expires_on",
            ),
            (
                |c| c.household_head_id = "x".into(),
                "citizen.household_head_id",
            ),
            (|c| c.life_status = 0, "citizen.life_status"),
            (|c| c.religion = "a\nb".into(), "citizen.religion"),
        ];
        for (mutate, key) in cases {
            let mut c = good();
            mutate(&mut c);
            let e = validate(c, 2026).unwrap_err().to_string();
            assert!(e.starts_with(key), "{key}: {e}");
        }
    }
}
