//! The personal-data fields of a `Citizen`: their names and rights sets.
//!
//! `citizen_id`, `version` and `updated_at` are not personal data: they always come back and
//! are not valid in a read mask or a right. Everything else is a [`Field`]. A [`FieldSet`] is
//! a bitset so that checking a request against a client's rights costs a few instructions.

use std::fmt;

/// A personal-data field of `Citizen`, in proto field order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Field {
    FullName,
    DateOfBirth,
    Sex,
    PlaceOfOrigin,
    PermanentAddress,
    CurrentAddress,
    Ethnicity,
    Religion,
    Nationality,
    CardIssuedOn,
    CardExpiresOn,
    HouseholdHeadId,
    LifeStatus,
}

impl Field {
    pub const ALL: [Field; 13] = [
        Field::FullName,
        Field::DateOfBirth,
        Field::Sex,
        Field::PlaceOfOrigin,
        Field::PermanentAddress,
        Field::CurrentAddress,
        Field::Ethnicity,
        Field::Religion,
        Field::Nationality,
        Field::CardIssuedOn,
        Field::CardExpiresOn,
        Field::HouseholdHeadId,
        Field::LifeStatus,
    ];

    /// The proto field name, as used in read masks, rights and audit records.
    pub fn name(self) -> &'static str {
        match self {
            Field::FullName => "full_name",
            Field::DateOfBirth => "date_of_birth",
            Field::Sex => "sex",
            Field::PlaceOfOrigin => "place_of_origin",
            Field::PermanentAddress => "permanent_address",
            Field::CurrentAddress => "current_address",
            Field::Ethnicity => "ethnicity",
            Field::Religion => "religion",
            Field::Nationality => "nationality",
            Field::CardIssuedOn => "card_issued_on",
            Field::CardExpiresOn => "card_expires_on",
            Field::HouseholdHeadId => "household_head_id",
            Field::LifeStatus => "life_status",
        }
    }

    /// The field named `name`; `None` for anything else, including the always-returned
    /// `citizen_id`, `version` and `updated_at`.
    pub fn from_name(name: &str) -> Option<Field> {
        Field::ALL.into_iter().find(|f| f.name() == name)
    }

    /// Whether `name` is one of the non-personal fields that always come back.
    pub fn is_always_returned(name: &str) -> bool {
        matches!(name, "citizen_id" | "version" | "updated_at")
    }

    fn bit(self) -> u16 {
        1 << (self as u16)
    }
}

impl fmt::Display for Field {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A set of [`Field`]s.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FieldSet(u16);

impl FieldSet {
    pub const EMPTY: FieldSet = FieldSet(0);

    pub fn insert(&mut self, f: Field) {
        self.0 |= f.bit();
    }

    pub fn contains(self, f: Field) -> bool {
        self.0 & f.bit() != 0
    }

    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// The fields in proto order.
    pub fn iter(self) -> impl Iterator<Item = Field> {
        Field::ALL.into_iter().filter(move |f| self.contains(*f))
    }

    /// The fields that are in both sets.
    pub fn intersect(self, other: FieldSet) -> FieldSet {
        FieldSet(self.0 & other.0)
    }

    /// The fields of either set.
    pub fn union(self, other: FieldSet) -> FieldSet {
        FieldSet(self.0 | other.0)
    }

    /// The set as bits (bit n = the n-th field in proto order), for a store's encoding.
    pub fn bits(self) -> u16 {
        self.0
    }

    /// The set from [`FieldSet::bits`]; bits naming no field are dropped.
    pub fn from_bits(bits: u16) -> FieldSet {
        FieldSet(bits & ((1 << Field::ALL.len()) - 1))
    }

    /// The field names in proto order, for audit records.
    pub fn names(self) -> Vec<&'static str> {
        // Sized up front: collecting the filtered iterator would grow the vector 4 → 8 → 16
        // for the nine fields a typical call releases.
        let mut names = Vec::with_capacity(self.0.count_ones() as usize);
        names.extend(self.iter().map(Field::name));
        names
    }
}

impl FromIterator<Field> for FieldSet {
    fn from_iter<I: IntoIterator<Item = Field>>(iter: I) -> Self {
        let mut set = FieldSet::EMPTY;
        for f in iter {
            set.insert(f);
        }
        set
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_exclude_non_personal_fields() {
        for f in Field::ALL {
            assert_eq!(Field::from_name(f.name()), Some(f));
        }
        for name in ["citizen_id", "version", "updated_at", "fullName", ""] {
            assert_eq!(Field::from_name(name), None);
        }
    }
}
