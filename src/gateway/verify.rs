//! Verify: whether the claimed fields match the register, releasing nothing else.

use super::{Call, Gateway, Handler, not_found};
use crate::citizen::{Citizen, Sex};
use crate::error::Error;
use crate::fields::Field;
use crate::id::CitizenId;
use crate::matching::{Mode, parse_date, text_matches};
use crate::policy::{Client, Method};

#[derive(Debug, Clone, Default)]
pub struct VerifyRequest {
    pub citizen_id: String,
    pub claims: Option<Claims>,
    pub purpose: String,
    pub request_id: String,
    pub mode: MatchMode,
}

/// What the caller believes; only the fields set are checked.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Claims {
    pub full_name: Option<String>,
    pub date_of_birth: Option<String>,
    /// `Some(Sex::Unspecified)`: a sex was claimed but is neither male nor female.
    pub sex: Option<Sex>,
    pub permanent_address: Option<String>,
}

/// The comparison the caller asked for.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum MatchMode {
    #[default]
    Exact,
    Loose,
    /// A value the API does not define, refused with its number.
    Unknown(i32),
}

/// The answer.
#[derive(Debug, Clone, PartialEq)]
pub struct Verification {
    /// Every claimed field matched and the person is alive.
    pub matched: bool,
    /// One per claim, in Claims field order.
    pub fields: Vec<FieldMatch>,
    /// Told to every caller that may verify: `matched` is already false for a deceased
    /// person, so this adds no fact, and a telecom must know to stop the subscription.
    pub deceased: bool,
    pub reused: bool,
    pub request_id: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FieldMatch {
    pub field: Field,
    pub matched: bool,
}

pub struct Plan {
    id: CitizenId,
    claims: Parsed,
    request_id: String,
}

impl Handler for VerifyRequest {
    const METHOD: Method = Method::Verify;
    type Plan = Plan;
    type Answer = Verification;

    fn echo(&self) -> (&str, &str) {
        (&self.purpose, &self.request_id)
    }

    fn authorize(self, client: &Client, call: &mut Call) -> Result<Plan, Error> {
        let id = call.subject(&self.citizen_id, &self.purpose, &self.request_id)?;
        if client.verify.is_empty() {
            return Err(Error::PermissionDenied(format!(
                "client {:?} may verify no field: Verify is not available to it",
                client.id
            )));
        }
        let claims = Parsed::parse(&self)?;
        for (field, _) in &claims.items {
            client.check_verify(*field)?;
        }
        client.require_purpose(&self.purpose)?;
        Ok(Plan {
            id,
            claims,
            request_id: self.request_id,
        })
    }

    async fn execute(
        plan: Plan,
        gateway: &Gateway,
        call: &mut Call,
    ) -> Result<Verification, Error> {
        let (record, reused) = gateway.fetch(plan.id).await?;
        let record = record.ok_or_else(|| not_found(plan.id))?;
        call.touched(plan.claims.items.iter().map(|(f, _)| *f).collect(), reused);
        let fields = plan.claims.field_matches(&record);
        let deceased = record.is_deceased();
        Ok(Verification {
            matched: !deceased && fields.iter().all(|f| f.matched),
            fields,
            deceased,
            reused,
            request_id: plan.request_id,
        })
    }
}

/// The pure part of Verify: parses the claims of `req` (`INVALID_ARGUMENT` naming the bad one)
/// and compares each with `record`, in Claims field order. Rights, purpose and the store are
/// the pipeline's business, not this function's. Public so that the fuzz targets and tests can
/// reach the parsing of a request without a server.
pub fn match_claims(req: &VerifyRequest, record: &Citizen) -> Result<Vec<FieldMatch>, Error> {
    Ok(Parsed::parse(req)?.field_matches(record))
}

/// One claimed value, parsed.
enum Claim {
    Text(String),
    Date(time::Date),
    Sex(Sex),
}

/// Whether the claim on `field` matches the record.
fn claim_matches(field: Field, claim: &Claim, record: &Citizen, mode: Mode) -> bool {
    match (field, claim) {
        (Field::FullName, Claim::Text(t)) => text_matches(t, &record.full_name, mode),
        (Field::PermanentAddress, Claim::Text(t)) => {
            text_matches(t, &record.permanent_address, mode)
        }
        (Field::DateOfBirth, Claim::Date(d)) => parse_date(&record.date_of_birth) == Some(*d),
        (Field::Sex, Claim::Sex(s)) => record.sex == *s,
        _ => false,
    }
}

/// The claims of a Verify request, in Claims field order.
struct Parsed {
    items: Vec<(Field, Claim)>,
    mode: Mode,
}

impl Parsed {
    /// One answer per claim, in Claims field order.
    fn field_matches(&self, record: &Citizen) -> Vec<FieldMatch> {
        self.items
            .iter()
            .map(|(field, claim)| FieldMatch {
                field: *field,
                matched: claim_matches(*field, claim, record, self.mode),
            })
            .collect()
    }

    fn parse(req: &VerifyRequest) -> Result<Parsed, Error> {
        let mode = match req.mode {
            MatchMode::Exact => Mode::Exact,
            MatchMode::Loose => Mode::Loose,
            MatchMode::Unknown(n) => {
                return Err(Error::InvalidArgument(format!(
                    "mode: {n} is not a MatchMode (EXACT = 1, LOOSE = 2)"
                )));
            }
        };
        let none = || Error::InvalidArgument("claims: set at least one claim".into());
        let claims = req.claims.as_ref().ok_or_else(none)?;
        let text = |field: &str, s: &str| -> Result<Claim, Error> {
            if s.chars().count() > 256 || s.chars().any(char::is_control) {
                return Err(Error::InvalidArgument(format!(
                    "claims.{field}: at most 256 characters, no control characters"
                )));
            }
            Ok(Claim::Text(s.to_owned()))
        };
        let mut items = Vec::new();
        if let Some(name) = &claims.full_name {
            items.push((Field::FullName, text("full_name", name)?));
        }
        if let Some(dob) = &claims.date_of_birth {
            let d = parse_date(dob).ok_or_else(|| {
                Error::InvalidArgument("claims.date_of_birth: must be a date YYYY-MM-DD".into())
            })?;
            items.push((Field::DateOfBirth, Claim::Date(d)));
        }
        if let Some(sex) = claims.sex {
            match sex {
                s @ (Sex::Male | Sex::Female) => items.push((Field::Sex, Claim::Sex(s))),
                Sex::Unspecified => {
                    return Err(Error::InvalidArgument(
                        "claims.sex: must be MALE or FEMALE".into(),
                    ));
                }
            }
        }
        if let Some(addr) = &claims.permanent_address {
            items.push((Field::PermanentAddress, text("permanent_address", addr)?));
        }
        if items.is_empty() {
            return Err(none());
        }
        Ok(Parsed { items, mode })
    }
}
