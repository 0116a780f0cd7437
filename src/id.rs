//! The 12-digit citizen identity number (CCCD): parsing, validation and the province table.
//!
//! Digits 1–3 are the province of birth registration, digit 4 the century and sex, digits 5–6
//! the last two digits of the year of birth, 7–12 random. There is no checksum. This module
//! owns those rules; nothing else in the crate re-derives them.

use std::fmt;

use thiserror::Error;

/// A validated citizen id. Stored as its numeric value: the store key is its big-endian u64,
/// so keys sort like the ids themselves.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CitizenId(u64);

/// Why a string is not a citizen id. Each message says what is wrong and what is expected.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum IdError {
    #[error("citizen_id must be exactly 12 ASCII digits, got {0} characters")]
    Length(usize),
    #[error("citizen_id must be exactly 12 ASCII digits, found a non-digit at position {0}")]
    NotDigit(usize),
    #[error(
        "citizen_id has unknown province code {0:03} (digits 1-3; see Circular 07/2016/TT-BCA)"
    )]
    UnknownProvince(u16),
    #[error("citizen_id encodes birth year {0}, which is in the future (digits 4-6)")]
    FutureBirthYear(i32),
}

/// Sex as encoded in digit 4 (even = male, odd = female).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdSex {
    Male,
    Female,
}

impl CitizenId {
    /// Parses and validates `s` against the current year (birth years after it are refused).
    pub fn parse(s: &str, current_year: i32) -> Result<Self, IdError> {
        // Count characters, not bytes, so "12 Arabic-Indic digits" is reported as a non-digit.
        let count = s.chars().count();
        if count != 12 {
            return Err(IdError::Length(count));
        }
        let mut value: u64 = 0;
        for (i, c) in s.chars().enumerate() {
            let Some(d) = c.to_digit(10).filter(|_| c.is_ascii_digit()) else {
                return Err(IdError::NotDigit(i + 1));
            };
            value = value * 10 + u64::from(d);
        }
        let id = CitizenId(value);
        let province = id.province_code();
        if province_name(province).is_none() {
            return Err(IdError::UnknownProvince(province));
        }
        let year = id.birth_year();
        if year > current_year {
            return Err(IdError::FutureBirthYear(year));
        }
        Ok(id)
    }

    /// Builds an id from its parts. The caller guarantees the parts are in range
    /// (province known, `year` in 1900..=2399, `random` < 1,000,000).
    pub fn from_parts(province: u16, year: i32, sex: IdSex, random: u32) -> Self {
        let century = ((year - 1900) / 100) as u64;
        let sex_digit = century * 2 + u64::from(sex == IdSex::Female);
        let yy = (year % 100) as u64;
        CitizenId(
            u64::from(province) * 1_000_000_000
                + sex_digit * 100_000_000
                + yy * 1_000_000
                + u64::from(random % 1_000_000),
        )
    }

    /// Rebuilds an id from a store key. `None` when the value has more than 12 digits.
    pub fn from_u64(v: u64) -> Option<Self> {
        (v < 1_000_000_000_000).then_some(CitizenId(v))
    }

    pub fn as_u64(self) -> u64 {
        self.0
    }

    /// The store key: big-endian so that sled's byte order is numeric order.
    pub fn key(self) -> [u8; 8] {
        self.0.to_be_bytes()
    }

    pub fn province_code(self) -> u16 {
        (self.0 / 1_000_000_000) as u16
    }

    fn century_sex_digit(self) -> u64 {
        (self.0 / 100_000_000) % 10
    }

    pub fn birth_year(self) -> i32 {
        let digit = self.century_sex_digit();
        let yy = (self.0 / 1_000_000) % 100;
        1900 + (digit / 2) as i32 * 100 + yy as i32
    }

    pub fn sex(self) -> IdSex {
        if self.century_sex_digit().is_multiple_of(2) {
            IdSex::Male
        } else {
            IdSex::Female
        }
    }
}

impl CitizenId {
    /// The 12 digits as ASCII.
    pub fn digits(self) -> [u8; 12] {
        let mut out = [b'0'; 12];
        let mut v = self.0;
        for d in out.iter_mut().rev() {
            *d = b'0' + (v % 10) as u8;
            v /= 10;
        }
        out
    }

    /// The 12 digits as text. On every answer's path: cheaper than `to_string`, which goes
    /// through the formatting machinery.
    pub fn to_text(self) -> String {
        // Only ASCII digits: the conversion cannot fail.
        String::from_utf8(self.digits().to_vec()).unwrap_or_default()
    }
}

impl fmt::Display for CitizenId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Only ASCII digits are written.
        f.write_str(std::str::from_utf8(&self.digits()).unwrap_or_default())
    }
}

impl fmt::Debug for CitizenId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CitizenId({self})")
    }
}

/// Province codes of Circular 07/2016/TT-BCA, Appendix I, with their names.
pub const PROVINCES: &[(u16, &str)] = &[
    (1, "Hà Nội"),
    (2, "Hà Giang"),
    (4, "Cao Bằng"),
    (6, "Bắc Kạn"),
    (8, "Tuyên Quang"),
    (10, "Lào Cai"),
    (11, "Điện Biên"),
    (12, "Lai Châu"),
    (14, "Sơn La"),
    (15, "Yên Bái"),
    (17, "Hòa Bình"),
    (19, "Thái Nguyên"),
    (20, "Lạng Sơn"),
    (22, "Quảng Ninh"),
    (24, "Bắc Giang"),
    (25, "Phú Thọ"),
    (26, "Vĩnh Phúc"),
    (27, "Bắc Ninh"),
    (30, "Hải Dương"),
    (31, "Hải Phòng"),
    (33, "Hưng Yên"),
    (34, "Thái Bình"),
    (35, "Hà Nam"),
    (36, "Nam Định"),
    (37, "Ninh Bình"),
    (38, "Thanh Hóa"),
    (40, "Nghệ An"),
    (42, "Hà Tĩnh"),
    (44, "Quảng Bình"),
    (45, "Quảng Trị"),
    (46, "Thừa Thiên Huế"),
    (48, "Đà Nẵng"),
    (49, "Quảng Nam"),
    (51, "Quảng Ngãi"),
    (52, "Bình Định"),
    (54, "Phú Yên"),
    (56, "Khánh Hòa"),
    (58, "Ninh Thuận"),
    (60, "Bình Thuận"),
    (62, "Kon Tum"),
    (64, "Gia Lai"),
    (66, "Đắk Lắk"),
    (67, "Đắk Nông"),
    (68, "Lâm Đồng"),
    (70, "Bình Phước"),
    (72, "Tây Ninh"),
    (74, "Bình Dương"),
    (75, "Đồng Nai"),
    (77, "Bà Rịa–Vũng Tàu"),
    (79, "TP Hồ Chí Minh"),
    (80, "Long An"),
    (82, "Tiền Giang"),
    (83, "Bến Tre"),
    (84, "Trà Vinh"),
    (86, "Vĩnh Long"),
    (87, "Đồng Tháp"),
    (89, "An Giang"),
    (91, "Kiên Giang"),
    (92, "Cần Thơ"),
    (93, "Hậu Giang"),
    (94, "Sóc Trăng"),
    (95, "Bạc Liêu"),
    (96, "Cà Mau"),
];

/// The name of a province code, `None` for a code that is not in the table.
pub fn province_name(code: u16) -> Option<&'static str> {
    PROVINCES
        .binary_search_by_key(&code, |&(c, _)| c)
        .ok()
        .map(|i| PROVINCES[i].1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_valid_id_and_its_parts() {
        let id = CitizenId::parse("001203012345", 2026).unwrap();
        assert_eq!(id.province_code(), 1);
        assert_eq!(id.birth_year(), 2003);
        assert_eq!(id.sex(), IdSex::Male);
        assert_eq!(id.to_string(), "001203012345");
        let f = CitizenId::parse("079185000001", 2026).unwrap();
        assert_eq!(f.birth_year(), 1985);
        assert_eq!(f.sex(), IdSex::Female);
    }

    #[test]
    fn refuses_malformed_ids_with_the_reason() {
        let cases = [
            ("00120301234", IdError::Length(11)),
            ("0012030123456", IdError::Length(13)),
            ("", IdError::Length(0)),
            ("00120301234a", IdError::NotDigit(12)),
            ("001 03012345", IdError::NotDigit(4)),
            ("٠٠١٢٠٣٠١٢٣٤٥", IdError::NotDigit(1)),
            ("003203012345", IdError::UnknownProvince(3)),
            ("999203012345", IdError::UnknownProvince(999)),
            ("001299012345", IdError::FutureBirthYear(2099)),
            ("001427012345", IdError::FutureBirthYear(2127)),
        ];
        for (s, want) in cases {
            assert_eq!(CitizenId::parse(s, 2026), Err(want), "{s:?}");
        }
    }

    #[test]
    fn from_parts_round_trips() {
        let id = CitizenId::from_parts(79, 2001, IdSex::Female, 42);
        assert_eq!(id.to_string(), "079301000042");
        assert_eq!(id.to_text(), "079301000042");
        assert_eq!(CitizenId::from_u64(7).unwrap().to_text(), "000000000007");
        assert_eq!(CitizenId::parse(&id.to_string(), 2026), Ok(id));
        assert_eq!(CitizenId::from_u64(id.as_u64()), Some(id));
    }

    #[test]
    fn province_table_is_sorted_for_binary_search() {
        assert!(PROVINCES.windows(2).all(|w| w[0].0 < w[1].0));
        assert_eq!(PROVINCES.len(), 63);
    }
}
