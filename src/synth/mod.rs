//! The synthetic population: realistic, deterministic citizens for the dev setup, tests and
//! benchmarks, and the bulk loader that seeds a store ([`Loader`](crate::store::Loader)) with them.
//!
//! Record `i` of population `seed` is a pure function of `(seed, i)`: generation splits into
//! chunks across threads with no coordination, and a load generator finds the k-th citizen's
//! id with [`citizen_id_at`] without reading the store. Ids are unique for every index below
//! [`max_population`] (see `ids.rs` for how). Nothing here reads a clock or depends on the
//! thread count: dates are relative to the fixed [`SNAPSHOT_DATE`], so a seed gives the same
//! records on any machine, any day, forever. Changing any table or stream changes every
//! seeded store, so the pinned-output test fails first.
//!
//! What a record looks like (shares from DOMAIN.md where it gives them):
//! - the id encodes the province of birth registration (weighted by 2019 census
//!   population), the birth year (1925–2025, shaped like the 2019 census pyramid) and the sex;
//!   `date_of_birth` falls in that year and `sex` matches digit 4;
//! - names are family–middle–given in NFC with diacritics, family names by DOMAIN.md's
//!   shares (Huỳnh and Võ for Hoàng and Vũ in the south), "Văn" mostly for men and "Thị"
//!   mostly for women; about 1% belong to an ethnic minority of the province's region (Ê Đê,
//!   Gia Rai, Ba Na, Mông, Thái, Tày, Khmer, Chăm) with that group's naming pattern,
//!   ethnicity and religions;
//! - place of origin and permanent address lie in the id's province; the current address is
//!   the permanent one for 85%, elsewhere in the province for 5%, and in another province
//!   (mostly the big cities) for 10%;
//! - a card exists from age 14: issued from 2016 on (most in the 2021–22 chip-card campaign),
//!   never before the last renewal age passed; it expires at 25, 40 or 60 (a card issued in
//!   the two years before one of those ages lasts to the next), and one issued at 58 or later
//!   never expires (empty `card_expires_on`), as the Law on Citizen Identification says;
//! - the household head is the person for ~45% of adults, otherwise another generated
//!   citizen; about 1% are deceased, more among the old; `version` is 1 and `updated_at` is
//!   one instant per seed on the snapshot day.

mod dates;
mod ids;
mod rng;
mod seeding;
mod tables;

pub use seeding::{SeedError, SeedPlan, SeedReport, seed_store};

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::citizen::{Citizen, LifeStatus, Sex};
use crate::id::{CitizenId, IdSex};
use dates::{add_years, days_from_civil, days_in_year, format_date};
use rng::{Rng, hash2};
use tables::{Group, Pattern, Region};

/// The day the population is a snapshot of: nobody is born on or after it and no card is
/// issued on or after it, whatever today's date is.
pub const SNAPSHOT_DATE: &str = "2026-01-01";
/// The year of [`SNAPSHOT_DATE`], "now" for ages.
pub const SNAPSHOT_YEAR: i32 = 2026;
/// The seed that `popgate seed` uses when none is given; load generators use it to find ids.
pub const DEFAULT_SEED: u64 = 1;

const FIRST_BIRTH_YEAR: i32 = SNAPSHOT_YEAR - 101;
const LAST_BIRTH_YEAR: i32 = SNAPSHOT_YEAR - 1;

const SNAPSHOT: i32 = days_from_civil(SNAPSHOT_YEAR, 1, 1);
const LAST_DAY: i32 = SNAPSHOT - 1;
/// 12-digit citizen identity cards (CCCD) replaced the 9-digit ones from 2016.
const CARD_ERA: i32 = days_from_civil(2016, 1, 1);
/// The chip-card campaign, when most of the population got its current card.
const CAMPAIGN: (i32, i32) = (days_from_civil(2021, 3, 1), days_from_civil(2022, 6, 30));
/// Ages at which a card must be renewed.
const RENEWAL_AGES: [i32; 3] = [25, 40, 60];

/// Domain separators so the record stream and the timestamp never correlate with the id
/// permutations of the same seed.
const RECORD_KEY: u64 = 0x0C17_12E4_0C17_12E4;
const UPDATED_KEY: u64 = 0x0123_4567_89AB_CDEF;

/// Ethnic minorities with their own naming patterns (see `tables::group`).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Ethnic {
    EDe,
    GiaRai,
    BaNa,
    Mong,
    Thai,
    Tay,
    Khmer,
    Cham,
}

/// How many indexes have distinct ids, for any seed (about 1.1 billion).
pub fn max_population() -> u64 {
    ids::max_population()
}

/// The id of record `index` of population `seed`, without generating the record. Unique over
/// `0..max_population()`.
pub fn citizen_id_at(seed: u64, index: u64) -> CitizenId {
    ids::id_at(seed, index)
}

/// Record `index` of population `seed`.
pub fn citizen_at(seed: u64, index: u64) -> Citizen {
    record_at(seed, index)
}

/// The instant every record of population `seed` was last updated: a second of the snapshot
/// day chosen by the seed, so reseeding never changes it.
pub fn updated_at(seed: u64) -> SystemTime {
    let snapshot_secs = u64::try_from(SNAPSHOT).unwrap_or(0) * 86_400;
    UNIX_EPOCH + Duration::from_secs(snapshot_secs + hash2(seed, UPDATED_KEY) % 86_400)
}

/// Record `index` of population `seed`.
fn record_at(seed: u64, index: u64) -> Citizen {
    let id = citizen_id_at(seed, index);
    let mut rng = Rng::new(hash2(seed ^ RECORD_KEY, index));
    let province = id.province_code();
    let year = id.birth_year();
    let female = id.sex() == IdSex::Female;

    let born = days_from_civil(year, 1, 1) + rng.below(u64::from(days_in_year(year))) as i32;
    let age = completed_years(born, SNAPSHOT);

    let (full_name, ethnicity, religion) = if rng.chance(100) {
        let group = tables::group(*rng.pick(tables::minorities_of(province)));
        (
            minority_name(&mut rng, group, female),
            group.ethnicity,
            *rng.weighted(group.religions),
        )
    } else {
        (
            kinh_name(&mut rng, province, female),
            "Kinh",
            *rng.weighted(tables::KINH_RELIGIONS),
        )
    };

    let place_of_origin = address(&mut rng, province, false);
    let permanent_address = address(&mut rng, province, true);
    let current_address = match rng.below(100) {
        0..85 => permanent_address.clone(),
        85..90 => address(&mut rng, province, true),
        _ => {
            let mut elsewhere = *rng.weighted(tables::MIGRATION_TARGETS);
            if elsewhere == province {
                elsewhere = rng.pick(tables::PROVINCE_INFO).0;
            }
            address(&mut rng, elsewhere, true)
        }
    };

    let (card_issued_on, card_expires_on) = card_dates(&mut rng, born);

    let household_head = if index > 0 && (age < 18 || !rng.chance(4_500)) {
        // A relative seeded just before this person, so the head exists in any store
        // seeded from index 0.
        citizen_id_at(seed, index - 1 - rng.below(index.min(8)))
    } else {
        id
    };

    let deceased = rng.chance(deaths_per_10k(age));

    Citizen {
        id,
        full_name,
        date_of_birth: format_date(born),
        sex: if female { Sex::Female } else { Sex::Male },
        place_of_origin,
        permanent_address,
        current_address,
        ethnicity: ethnicity.to_owned(),
        religion: religion.to_owned(),
        nationality: "Việt Nam".to_owned(),
        card_issued_on,
        card_expires_on,
        household_head_id: household_head.to_string(),
        life_status: if deceased {
            LifeStatus::Deceased
        } else {
            LifeStatus::Alive
        },
        version: 1,
        updated_at: updated_at(seed),
    }
}

/// Age on day `on` of someone born on day `born`: birthdays as [`add_years`] counts them, so
/// the card rules and ages agree even for 29 February.
fn completed_years(born: i32, on: i32) -> i32 {
    let years = dates::civil_from_days(on).0 - dates::civil_from_days(born).0;
    if add_years(born, years) > on {
        years - 1
    } else {
        years
    }
}

/// Share of the records of an age that are marked deceased, per 10,000: about 1% overall.
fn deaths_per_10k(age: i32) -> u32 {
    match age {
        0..40 => 30,
        40..60 => 100,
        60..75 => 300,
        _ => 1_000,
    }
}

/// Huỳnh and Võ are the southern forms of Hoàng and Vũ: from Quảng Nam south most bearers
/// use them.
fn southern_spelling(rng: &mut Rng, province: u16) -> bool {
    province >= 49 && rng.chance(8_000)
}

fn kinh_name(rng: &mut Rng, province: u16, female: bool) -> String {
    let &(north, south) = rng.weighted(tables::FAMILY_NAMES);
    let family = if north != south && southern_spelling(rng, province) {
        south
    } else {
        north
    };
    let middle = *rng.weighted(if female {
        tables::FEMALE_MIDDLE
    } else {
        tables::MALE_MIDDLE
    });
    let givens = if female {
        tables::FEMALE_GIVEN
    } else {
        tables::MALE_GIVEN
    };
    // "Nguyễn Thanh Thanh" exists but is rare; draw again (the lists have many names, so this
    // ends quickly, and the stream stays a function of the seed).
    let mut given = *rng.pick(givens);
    while given == middle {
        given = *rng.pick(givens);
    }
    join(&[family, middle, given])
}

fn minority_name(rng: &mut Rng, group: &Group, female: bool) -> String {
    let (prefix, givens) = if female {
        (group.female_prefix, group.female_given)
    } else {
        (group.male_prefix, group.male_given)
    };
    let family = if group.families.is_empty() {
        ""
    } else {
        *rng.pick(group.families)
    };
    let given = *rng.pick(givens);
    match group.pattern {
        Pattern::PrefixGivenFamily => format!("{prefix}{given} {family}"),
        Pattern::FamilyPrefixGiven => format!("{family} {prefix}{given}"),
        Pattern::PrefixGiven => format!("{prefix}{given}"),
        Pattern::FamilyMiddleGiven { male, female: f } => {
            let middle = *rng.pick(if female { f } else { male });
            join(&[family, middle, given])
        }
    }
}

/// Words joined by single spaces, leaving out empty ones.
fn join(words: &[&str]) -> String {
    let mut s = String::with_capacity(words.iter().map(|w| w.len() + 1).sum());
    for w in words.iter().filter(|w| !w.is_empty()) {
        if !s.is_empty() {
            s.push(' ');
        }
        s.push_str(w);
    }
    s
}

/// An address in `province`: town ("Số 12 Lê Lợi, Phường Bến Thành, Quận 1, TP Hồ Chí Minh")
/// or country ("Thôn 3, Xã Tân Lập, Huyện Yên Lạc, Vĩnh Phúc"). Without `house` it stops at
/// the ward or commune, as a place of origin does.
fn address(rng: &mut Rng, province: u16, house: bool) -> String {
    use std::fmt::Write as _;

    let (name, capital) = match tables::PROVINCE_INFO.binary_search_by_key(&province, |p| p.0) {
        Ok(i) => (crate::id::PROVINCES[i].1, tables::PROVINCE_INFO[i].2),
        Err(_) => ("", ""), // unreachable: provinces come from the same table
    };
    let region = tables::region(province);
    let (city, city_rural) = tables::city_districts(province);
    let urban = rng.chance(if city.is_empty() { 3_000 } else { 8_000 });
    let locality = *rng.pick(tables::LOCALITIES);
    let mut s = String::with_capacity(96);
    // `write!` to a String cannot fail.
    if urban {
        if house {
            let _ = write!(
                s,
                "Số {} {}, ",
                1 + rng.below(300),
                rng.pick(tables::STREETS)
            );
        }
        let district = if city.is_empty() {
            format!("Thành phố {capital}")
        } else {
            (*rng.pick(city)).to_owned()
        };
        let _ = write!(s, "Phường {locality}, {district}, {name}");
    } else {
        if house {
            let hamlet = match region {
                Region::NorthHighlands => "Bản",
                Region::South => "Ấp",
                _ => "Thôn",
            };
            let _ = write!(s, "{hamlet} {}, ", 1 + rng.below(12));
        }
        let district = rng.pick(if city_rural.is_empty() {
            tables::rural_districts(region)
        } else {
            city_rural
        });
        let _ = write!(s, "Xã {locality}, Huyện {district}, {name}");
    }
    s
}

/// Issue and expiry dates of the current card, empty for children under 14.
fn card_dates(rng: &mut Rng, born: i32) -> (String, String) {
    let at14 = add_years(born, 14);
    if at14 > LAST_DAY {
        return (String::new(), String::new());
    }
    // The current card was issued after the last renewal age passed (or in the two years
    // before it, which the law lets count for it), so nobody alive holds an expired card.
    let mut earliest = at14.max(CARD_ERA);
    for age in RENEWAL_AGES {
        if add_years(born, age) <= LAST_DAY {
            earliest = earliest.max(add_years(born, age - 2));
        }
    }
    let (from, to) = (earliest.max(CAMPAIGN.0), LAST_DAY.min(CAMPAIGN.1));
    let in_campaign = rng.chance(6_000);
    let (from, to) = if in_campaign && from <= to {
        (from, to)
    } else {
        (earliest, LAST_DAY)
    };
    let issued = from + rng.below((to - from + 1) as u64) as i32;
    let expires = RENEWAL_AGES
        .into_iter()
        .find(|&age| issued < add_years(born, age - 2))
        .map(|age| format_date(add_years(born, age)))
        .unwrap_or_default();
    (format_date(issued), expires)
}

#[cfg(test)]
mod tests;
