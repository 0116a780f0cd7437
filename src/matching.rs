//! How Verify compares what a caller claims with what the register holds.
//!
//! EXACT: Unicode NFC, case folding, white space collapsed to single spaces and trimmed.
//! LOOSE: also without diacritics (đ/Đ → d), because telecom and utility records often hold
//! names upper-cased without them: "NGUYEN VAN AN" matches "Nguyễn Văn An".
//! Dates compare as dates, so "2003-1-2" is refused as malformed rather than silently unequal.

use std::iter::{Filter, Map};
use std::str::Chars;

use caseless::{CaseFold, Caseless};
use time::Date;
use time::macros::format_description;
use unicode_normalization::char::is_combining_mark;
use unicode_normalization::{Decompositions, Recompositions, UnicodeNormalization};

/// The two matching modes of CONTRACT §1.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Exact,
    Loose,
}

/// The canonical form of a text for comparison in `mode`.
pub fn normalize(text: &str, mode: Mode) -> String {
    Canonical::new(text, mode).collect()
}

/// Whether a claimed text equals the recorded one in `mode`.
///
/// Compares the two canonical forms char by char as they are produced: no intermediate
/// strings, and it stops at the first difference. This is on every Verify's path, where it
/// used to build both forms as fresh strings (docs/BENCHMARKS.md §7).
pub fn text_matches(claimed: &str, recorded: &str, mode: Mode) -> bool {
    Canonical::new(claimed, mode).eq(Canonical::new(recorded, mode))
}

type Folded<'a> = CaseFold<Recompositions<Chars<'a>>>;
/// LOOSE: the folded text decomposed, marks dropped, đ/ð as d.
type Stripped<'a> = Map<Filter<Decompositions<Folded<'a>>, fn(&char) -> bool>, fn(char) -> char>;

/// The chars of a text's canonical form: NFC, case folded, then NFC again (EXACT) or NFD
/// without combining marks and with đ/ð as d (LOOSE); curly apostrophes as `'`; white space
/// runs as one space, none at either end.
struct Canonical<'a> {
    chars: Chars3<'a>,
    /// A space is owed before the next char (white space seen after some text).
    space: bool,
    /// The char read after a space was owed, given out after the space.
    held: Option<char>,
    started: bool,
}

/// The three ways of producing the folded chars, without boxing.
enum Chars3<'a> {
    /// ASCII text: NFC and NFD leave it as it is and case folding is ASCII lower-casing, so
    /// the Unicode tables are not needed (most claims from telecoms and utilities).
    Ascii(Chars<'a>),
    Exact(Recompositions<Folded<'a>>),
    Loose(Stripped<'a>),
}

impl<'a> Canonical<'a> {
    fn new(text: &'a str, mode: Mode) -> Canonical<'a> {
        let chars = if text.is_ascii() {
            Chars3::Ascii(text.chars())
        } else {
            let folded = text.chars().nfc().default_case_fold();
            match mode {
                Mode::Exact => Chars3::Exact(folded.nfc()),
                // NFD splits "ễ" into "e" plus marks, which are then dropped.
                Mode::Loose => Chars3::Loose(
                    folded
                        .nfd()
                        .filter(not_a_mark as fn(&char) -> bool)
                        .map(strip_letter as fn(char) -> char),
                ),
            }
        };
        Canonical {
            chars,
            space: false,
            held: None,
            started: false,
        }
    }

    fn next_folded(&mut self) -> Option<char> {
        match &mut self.chars {
            Chars3::Ascii(c) => c.next().map(|c| c.to_ascii_lowercase()),
            Chars3::Exact(c) => c.next(),
            Chars3::Loose(c) => c.next(),
        }
    }
}

impl Iterator for Canonical<'_> {
    type Item = char;

    fn next(&mut self) -> Option<char> {
        if let Some(c) = self.held.take() {
            return Some(c);
        }
        loop {
            let c = match self.next_folded()? {
                '\u{2019}' | '\u{2018}' => '\'',
                c => c,
            };
            if c.is_whitespace() {
                self.space = self.started;
                continue;
            }
            self.started = true;
            if std::mem::take(&mut self.space) {
                self.held = Some(c);
                return Some(' ');
            }
            return Some(c);
        }
    }
}

fn not_a_mark(c: &char) -> bool {
    !is_combining_mark(*c)
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

    /// The first implementation, kept as the specification of `normalize`: NFC, case fold,
    /// then NFC or NFD without marks, each step into a string of its own.
    fn reference(text: &str, mode: Mode) -> String {
        let folded = caseless::default_case_fold_str(&text.nfc().collect::<String>());
        let chars: Vec<char> = match mode {
            Mode::Exact => folded.nfc().collect(),
            Mode::Loose => folded
                .nfd()
                .filter(|c| !is_combining_mark(*c))
                .map(strip_letter)
                .collect(),
        };
        let mut out = String::new();
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

    #[test]
    fn the_one_pass_form_equals_the_reference() {
        // Synthetic register names, their claim forms, and texts built from awkward pieces:
        // every kind of white space, curly quotes, combining marks alone and doubled, letters
        // whose folding changes length (ß, ﬁ) or leaves ASCII (K as the Kelvin sign).
        let pieces = [
            "a",
            "Z",
            " ",
            "  ",
            "\t",
            "\n",
            "\u{0B}",
            "\u{A0}",
            "\u{2003}",
            "\u{2019}",
            "\u{2018}",
            "'",
            "\u{301}",
            "\u{302}\u{303}",
            "ễ",
            "Ễ",
            "đ",
            "Đ",
            "Ð",
            "ð",
            "ß",
            "ẞ",
            "ﬁ",
            "\u{212A}",
            "İ",
            "Σ",
            "ς",
            "Ǆ",
            "ŉ",
            "Ⅻ",
            "1",
            "-",
            "é",
            "e\u{301}",
        ];
        let mut texts: Vec<String> = (0..2000)
            .map(|i| crate::synth::citizen_at(20210701, i).full_name)
            .collect();
        texts.extend(texts.clone().iter().map(|n| n.to_uppercase()));
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        for _ in 0..20_000 {
            let mut t = String::new();
            for _ in 0..(x % 9) {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                t.push_str(pieces[(x % pieces.len() as u64) as usize]);
            }
            x = x.wrapping_mul(0x2545_F491_4F6C_DD1D).wrapping_add(1);
            texts.push(t);
        }
        for t in &texts {
            for mode in [Mode::Exact, Mode::Loose] {
                let want = reference(t, mode);
                assert_eq!(normalize(t, mode), want, "{mode:?} of {t:?}");
            }
        }
        // text_matches stops early: check it agrees with comparing the whole forms.
        for pair in texts.windows(2) {
            for mode in [Mode::Exact, Mode::Loose] {
                let want = reference(&pair[0], mode) == reference(&pair[1], mode);
                assert_eq!(text_matches(&pair[0], &pair[1], mode), want);
                assert!(text_matches(&pair[0], &reference(&pair[0], mode), mode));
            }
        }
    }

    #[test]
    fn dates_parse_strictly() {
        assert_eq!(parse_date("2003-01-02"), parse_date(" 2003-01-02 "));
        assert!(parse_date("2003-1-2").is_none());
        assert!(parse_date("2003-02-30").is_none());
        assert!(parse_date("02/01/2003").is_none());
    }
}
