//! JSON rendering of gateway answers for the command-line client.

use serde_json::{Value, json};

use crate::pb::{Citizen, LifeStatus, Sex};

fn ts(t: &Option<prost_types::Timestamp>) -> Value {
    let Some(t) = t else { return Value::Null };
    time::OffsetDateTime::from_unix_timestamp(t.seconds)
        .ok()
        .and_then(|d| {
            d.replace_nanosecond(t.nanos.clamp(0, 999_999_999) as u32)
                .ok()
        })
        .and_then(|d| {
            d.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .map_or(Value::Null, Value::String)
}

/// A citizen as JSON: only the fields that came back (empty strings and unspecified enums are
/// left out, since the gateway withholds fields by leaving them empty).
pub fn citizen(c: &Citizen) -> Value {
    let mut m = serde_json::Map::new();
    let mut text = |k: &str, v: &str| {
        if !v.is_empty() {
            m.insert(k.into(), Value::String(v.into()));
        }
    };
    text("citizen_id", &c.citizen_id);
    text("full_name", &c.full_name);
    text("date_of_birth", &c.date_of_birth);
    text("place_of_origin", &c.place_of_origin);
    text("permanent_address", &c.permanent_address);
    text("current_address", &c.current_address);
    text("ethnicity", &c.ethnicity);
    text("religion", &c.religion);
    text("nationality", &c.nationality);
    text("card_issued_on", &c.card_issued_on);
    text("card_expires_on", &c.card_expires_on);
    text("household_head_id", &c.household_head_id);
    if let Ok(s) = Sex::try_from(c.sex)
        && s != Sex::Unspecified
    {
        m.insert("sex".into(), json!(s.as_str_name()));
    }
    if let Ok(s) = LifeStatus::try_from(c.life_status)
        && s != LifeStatus::Unspecified
    {
        m.insert("life_status".into(), json!(s.as_str_name()));
    }
    m.insert("version".into(), json!(c.version));
    m.insert("updated_at".into(), ts(&c.updated_at));
    Value::Object(m)
}
