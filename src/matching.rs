//! How Verify compares what a caller claims with what the register holds.
//!
//! EXACT: Unicode NFC, case folding, white space collapsed to single spaces and trimmed.
//! LOOSE: also without diacritics (đ/Đ → d), because telecom and utility records often hold
//! names upper-cased without them: "NGUYEN VAN AN" matches "Nguyễn Văn An".
//! Dates compare as dates, so "2003-1-2" is refused as malformed rather than silently unequal.

use time::Date;
use time::macros::format_description;
use unicode_normalization::UnicodeNormalization;
use unicode_normalization::char::is_combining_mark;

/// The two matching modes of CONTRACT §1.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Exact,
    Loose,
}

/// The canonical form of a text for comparison in `mode`.
pub fn normalize(text: &str, mode: Mode) -> String {
    let folded = caseless::default_case_fold_str(&text.nfc().collect::<String>());
    let mut out = String::with_capacity(folded.len());
    let chars: Box<dyn Iterator<Item = char>> = match mode {
        Mode::Exact => Box::new(folded.nfc()),
        // NFD splits "ễ" into "e" plus marks, which are then dropped.
        Mode::Loose => Box::new(
            folded
                .nfd()
                .filter(|c| !is_combining_mark(*c))
                .map(strip_letter),
        ),
    };
    let mut pending_space = false;
    for c in chars {
        let c = if c == '\u{2019}' || c == '\u{2018}' {
            '\''
        } else {
            c
        };
        if c.is_whitespace() {
            pending_space = !out.is_empty();
            continue;
        }
        if pending_space {
            out.push(' ');
            pending_space = false;
        }
        out.push(c);
    }
    out
}

/// Letters that carry their "diacritic" in the base letter itself, so NFD leaves them alone.
fn strip_letter(c: char) -> char {
    match c {
        // đ (Vietnamese d with stroke) and ð (eth, which case-folds from the look-alike Ð
        // used in some minority names) are both written "d" without diacritics.
        'đ' | 'ð' => 'd',
        other => other,
    }
}

/// Whether a claimed text equals the recorded one in `mode`.
pub fn text_matches(claimed: &str, recorded: &str, mode: Mode) -> bool {
    normalize(claimed, mode) == normalize(recorded, mode)
}

/// Parses a `YYYY-MM-DD` date; `None` when it is not one.
pub fn parse_date(s: &str) -> Option<Date> {
    let s = s.trim();
    if s.len() != 10 {
        return None;
    }
    Date::parse(s, format_description!("[year]-[month]-[day]")).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_folds_case_and_space_but_keeps_diacritics() {
        assert!(text_matches(
            "  nguyễn   VĂN an ",
            "Nguyễn Văn An",
            Mode::Exact
        ));
        // NFD input matches NFC record.
        assert!(text_matches(
            "Nguye\u{302}\u{303}n Văn An",
            "Nguyễn Văn An",
            Mode::Exact
        ));
        assert!(!text_matches("NGUYEN VAN AN", "Nguyễn Văn An", Mode::Exact));
        assert!(!text_matches(
            "Nguyễn Văn Anh",
            "Nguyễn Văn An",
            Mode::Exact
        ));
    }

    #[test]
    fn loose_also_drops_diacritics_and_stroke() {
        assert!(text_matches("NGUYEN VAN AN", "Nguyễn Văn An", Mode::Loose));
        assert!(text_matches("DANG DUC DUNG", "Đặng Đức Dũng", Mode::Loose));
        assert!(text_matches("KSOR Y DHAM", "Ksor Y Ðhăm", Mode::Loose));
        assert!(text_matches("H’HEN NIE", "H'Hen Niê", Mode::Loose));
        assert!(!text_matches(
            "NGUYEN VAN ANH",
            "Nguyễn Văn An",
            Mode::Loose
        ));
    }

    #[test]
    fn dates_parse_strictly() {
        assert_eq!(parse_date("2003-01-02"), parse_date(" 2003-01-02 "));
        assert!(parse_date("2003-1-2").is_none());
        assert!(parse_date("2003-02-30").is_none());
        assert!(parse_date("02/01/2003").is_none());
    }
}
