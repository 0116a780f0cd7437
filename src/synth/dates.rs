//! Calendar dates as day numbers (days since 1970-01-01, proleptic Gregorian). Integer-only
//! and independent of the clock, so generated dates never depend on when the generator runs.

/// Day number of a calendar date (Howard Hinnant's `days_from_civil`).
pub(super) const fn days_from_civil(year: i32, month: u32, day: u32) -> i32 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = (y - era * 400) as u32;
    let mp = (month + 9) % 12; // March = 0, so the leap day ends the year
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe as i32 - 719_468
}

/// Calendar date (year, month, day) of a day number (Hinnant's `civil_from_days`).
pub(super) const fn civil_from_days(days: i32) -> (i32, u32, u32) {
    let z = days + 719_468;
    let era = if z >= 0 { z } else { z - 146_096 } / 146_097;
    let doe = (z - era * 146_097) as u32;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe as i32 + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (if m <= 2 { y + 1 } else { y }, m, d)
}

pub(super) const fn is_leap(year: i32) -> bool {
    year % 4 == 0 && (year % 100 != 0 || year % 400 == 0)
}

pub(super) const fn days_in_year(year: i32) -> u32 {
    if is_leap(year) { 366 } else { 365 }
}

/// The same calendar day `years` later: a birthday. 29 February falls on 28 February in
/// common years, so an age is reached no later than the anniversary would be.
pub(super) const fn add_years(days: i32, years: i32) -> i32 {
    let (y, m, d) = civil_from_days(days);
    let y = y + years;
    let d = if m == 2 && d == 29 && !is_leap(y) {
        28
    } else {
        d
    };
    days_from_civil(y, m, d)
}

/// Appends `YYYY-MM-DD` (years 1000–9999, all this module ever produces).
pub(super) fn push_date(out: &mut String, days: i32) {
    let (y, m, d) = civil_from_days(days);
    let digits = [
        (y / 1000 % 10) as u32,
        (y / 100 % 10) as u32,
        (y / 10 % 10) as u32,
        (y % 10) as u32,
        10,
        m / 10,
        m % 10,
        10,
        d / 10,
        d % 10,
    ];
    for digit in digits {
        out.push(if digit == 10 {
            '-'
        } else {
            char::from(b'0' + digit as u8)
        });
    }
}

pub(super) fn format_date(days: i32) -> String {
    let mut s = String::with_capacity(10);
    push_date(&mut s, days);
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn agrees_with_the_time_crate() {
        let epoch = time::Date::from_calendar_date(1970, time::Month::January, 1).unwrap();
        // 1900-01-01 .. 2100-12-31, every day.
        for days in days_from_civil(1900, 1, 1)..=days_from_civil(2100, 12, 31) {
            let date = epoch + time::Duration::days(i64::from(days));
            let (y, m, d) = civil_from_days(days);
            assert_eq!(
                (y, m, d),
                (
                    date.year(),
                    u32::from(u8::from(date.month())),
                    u32::from(date.day())
                )
            );
            assert_eq!(days_from_civil(y, m, d), days);
            assert_eq!(format_date(days), date.to_string());
        }
        assert_eq!(days_from_civil(2026, 1, 1), 20_454);
    }

    #[test]
    fn birthdays_of_the_leap_day() {
        let born = days_from_civil(2004, 2, 29);
        assert_eq!(format_date(add_years(born, 14)), "2018-02-28");
        assert_eq!(format_date(add_years(born, 20)), "2024-02-29");
        assert_eq!(
            format_date(add_years(days_from_civil(1990, 7, 15), 25)),
            "2015-07-15"
        );
    }
}
