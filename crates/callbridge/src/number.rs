//! Phone numbers as people paste them, turned into what a phone system can dial.
//!
//! A CRM sends whatever its users typed: `+44 (0)20 7946-0000`, `0049.30.1234567`, `tel:+1-201-555-0123`,
//! an internal extension `101`. [`PhoneNumber::parse`] cleans that up, refuses what cannot be a number
//! (letters, nothing at all, absurd lengths) with a reason a CRM admin can act on, and normalizes to
//! E.164 with the configured default country through the `phonenumber` crate (Google's libphonenumber
//! metadata). What cannot be normalized (short extensions, feature codes) is kept as cleaned digits, so
//! it still reaches the phone system as the user meant it.

use std::fmt;

use phonenumber::country;
use serde::{Deserialize, Serialize};

mod calling_codes;

/// E.164 allows 15 digits; an international prefix (`00`, `011`) or a PBX line prefix adds a few.
/// Anything longer is a paste accident, not a number.
pub const MAX_DIGITS: usize = 20;

/// An international number (E.164) has at most 15 digits after the `+`: country code and national
/// number together (ITU-T Recommendation E.164, section 6.1).
pub const E164_MAX_DIGITS: usize = 15;

/// Input longer than this is refused before it is even looked at.
const MAX_INPUT_LEN: usize = 64;

/// Why a number was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NumberError {
    #[error("the number is empty")]
    Empty,
    #[error("the number contains {found:?}, which is not a digit; only digits, a leading + and the separators space - . ( ) / are accepted")]
    InvalidCharacter { found: char },
    #[error("the number has {digits} digits; at most {max} are accepted")]
    TooLong { digits: usize, max: usize },
    #[error("the input is {len} characters long; a phone number is at most {MAX_INPUT_LEN}")]
    InputTooLong { len: usize },
    #[error("{number} has {digits} digits after the +; an international (E.164) number has at most {E164_MAX_DIGITS}")]
    TooLongForE164 { number: String, digits: usize },
    #[error("a + may only stand at the start of the number")]
    MisplacedPlus,
    #[error("{number} is not a valid international number: {reason}")]
    NotInternational { number: String, reason: String },
}

/// An ISO 3166 country code used to read national numbers (`GB`, `DE`, `IN`, `US`, …).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Country(country::Id);

impl std::str::FromStr for Country {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let upper = s.trim().to_ascii_uppercase();
        if upper.len() != 2 {
            return Err(format!("{s:?} is not a two-letter ISO 3166 country code such as \"GB\", \"DE\" or \"IN\""));
        }
        upper
            .parse::<country::Id>()
            .map(Country)
            .map_err(|_| format!("{s:?} is not a known ISO 3166 country code"))
    }
}

impl fmt::Display for Country {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let id: &str = self.0.as_ref();
        f.write_str(id)
    }
}

impl Serialize for Country {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Country {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// A number that passed validation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PhoneNumber {
    /// What the user gave, trimmed.
    pub input: String,
    /// E.164 (`+442079460000`) when the number could be normalized.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub e164: Option<String>,
    /// What the phone system should dial: the E.164 form when known, else the cleaned digits.
    pub dial: String,
}

impl PhoneNumber {
    /// Cleans, validates and normalizes `input`, reading national numbers in `default_country`.
    pub fn parse(input: &str, default_country: Option<Country>) -> Result<PhoneNumber, NumberError> {
        if input.len() > MAX_INPUT_LEN {
            return Err(NumberError::InputTooLong { len: input.len() });
        }
        let trimmed = input.trim();
        let cleaned = clean(trimmed)?;
        if cleaned.is_empty() {
            return Err(NumberError::Empty);
        }
        let digits = cleaned.trim_start_matches('+').len();
        if cleaned.starts_with('+') && digits > E164_MAX_DIGITS {
            return Err(NumberError::TooLongForE164 { number: cleaned, digits });
        }
        if digits > MAX_DIGITS {
            return Err(NumberError::TooLong { digits, max: MAX_DIGITS });
        }

        let e164 = if cleaned.starts_with('+') {
            if is_already_e164(&cleaned) {
                Some(cleaned.clone())
            } else {
                // An explicit international number must at least have a real country code.
                let parsed = phonenumber::parse(main_region(&cleaned), &cleaned).map_err(|e| {
                    NumberError::NotInternational { number: cleaned.clone(), reason: e.to_string() }
                })?;
                Some(e164(&parsed))
            }
        } else {
            default_country.and_then(|country| national_to_e164(&cleaned, country))
        };

        Ok(PhoneNumber { input: trimmed.to_owned(), dial: e164.clone().unwrap_or_else(|| cleaned.clone()), e164 })
    }

    /// The digits of [`Self::dial`] without a leading `+`: what APIs that take the number as a JSON
    /// number (TeleCMI's `to`) or a bare digit string need.
    pub fn digits(&self) -> &str {
        self.dial.trim_start_matches('+')
    }
}

impl fmt::Display for PhoneNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.dial)
    }
}

/// The main region of the country code `international` (`+` and digits) starts with — `GB` for
/// +44, `US` for +1 — as libphonenumber's metadata names it; `None` when no code matches or it is
/// not a country (`+800`, `+882`: the region "001").
///
/// Parsing with the region given reads the number by that region's rules at once. Without it,
/// libphonenumber tries each region that shares the code (GB, GG, IM and JE for +44), matching the
/// number against every number pattern of each — most of a `/make`'s CPU before this. The regions
/// sharing a code share its national prefix, and E.164 does not depend on the region.
fn main_region(international: &str) -> Option<country::Id> {
    let (_, code) = calling_codes::find(international.strip_prefix('+')?)?;
    code.region.parse().ok()
}

/// Fewest digits of a national significant number, as libphonenumber counts them
/// (`MIN_LENGTH_FOR_NSN`): fewer is refused as too short.
const MIN_NATIONAL_DIGITS: usize = 2;

/// Whether `international` (`+` and digits) is its own E.164 form, as libphonenumber would give it, so
/// parsing it with libphonenumber can be skipped; `false` when libphonenumber must read it.
///
/// What libphonenumber does to such a number, with the main region of its country code: it takes the
/// code off, strips the region's national prefix (`0` in most of Europe, `1` in North America) when the
/// rest starts with it — by the region's pattern for national prefixes, or the prefix itself — and
/// refuses a national number of fewer than [`MIN_NATIONAL_DIGITS`]. The number written as E.164 is then
/// the code and the rest as given. So a number whose country code has a main region and whose rest is
/// long enough, starts with no zero (which Italy's leading zero and a written trunk zero need read),
/// and does not start with the region's national prefix comes out of libphonenumber as it went in —
/// the shape of almost every number a CRM sends, and most of a `/make`'s CPU when it was parsed anyway.
/// The tests compare both ways for every example number of every region, with and without a prefix.
fn is_already_e164(international: &str) -> bool {
    let Some(digits) = international.strip_prefix('+').filter(|d| d.bytes().all(|b| b.is_ascii_digit())) else {
        return false;
    };
    let Some((code_len, code)) = calling_codes::find(digits) else { return false };
    let national = digits.get(code_len..).unwrap_or_default();
    if national.len() < MIN_NATIONAL_DIGITS || national.starts_with('0') {
        return false;
    }
    if code.national_prefix.is_some_and(|prefix| national.starts_with(prefix)) {
        return false;
    }
    // A pattern that cannot be compiled leaves the number to libphonenumber.
    calling_codes::starts_with_prefix_pattern(code, national) == Some(false)
}

/// `parsed` in E.164: `+`, the country code and the national number (with an Italian leading zero).
fn e164(parsed: &phonenumber::PhoneNumber) -> String {
    format!("+{}{}", parsed.country().code(), parsed.national())
}

/// A national number in `country` as E.164, when libphonenumber considers it a real number there.
/// Short extensions and feature codes are not, and stay as they are.
fn national_to_e164(digits: &str, country: Country) -> Option<String> {
    let parsed = phonenumber::parse(Some(country.0), digits).ok()?;
    phonenumber::is_valid(&parsed).then(|| e164(&parsed))
}

/// Strips a `tel:`/`callto:`/`sip:`-less scheme, URI parameters and visual separators; turns a leading
/// `00` into `+`. Returns `+` followed by digits, or digits only.
fn clean(input: &str) -> Result<String, NumberError> {
    let decoded = percent_encoding::percent_decode_str(input).decode_utf8_lossy();
    let mut rest: &str = decoded.trim();
    for scheme in ["tel:", "callto:", "TEL:", "Tel:", "CALLTO:", "Callto:"] {
        if let Some(r) = rest.strip_prefix(scheme) {
            rest = r.trim_start_matches('/');
            break;
        }
    }
    // RFC 3966 parameters (`;ext=`, `;phone-context=`) are not part of what is dialed.
    if let Some((number, _params)) = rest.split_once(';') {
        rest = number;
    }

    // "+44 (0)20…": the trunk zero in parentheses is not dialed after a country code.
    let international = rest.starts_with('+') || rest.starts_with("00");
    let rest = if international { rest.replacen("(0)", "", 1) } else { rest.to_owned() };

    let mut out = String::with_capacity(rest.len());
    for (i, c) in rest.trim().chars().enumerate() {
        match c {
            '0'..='9' => out.push(c),
            '+' if i == 0 => out.push('+'),
            '+' => return Err(NumberError::MisplacedPlus),
            ' ' | '-' | '.' | '(' | ')' | '/' | '\u{a0}' | '\t' => {}
            other => return Err(NumberError::InvalidCharacter { found: other }),
        }
    }
    // The ITU international prefix written out: 0049… is +49….
    if let Some(rest) = out.strip_prefix("00") {
        if !rest.is_empty() {
            out = format!("+{rest}");
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The E.164 form libphonenumber gives when it picks the region itself, as it did before
    /// [`main_region`]: parsing with the main region must not change a single answer.
    fn e164_the_slow_way(input: &str) -> Result<String, String> {
        phonenumber::parse(None, input).map(|p| p.format().mode(phonenumber::Mode::E164).to_string()).map_err(|e| e.to_string())
    }

    #[test]
    fn the_shortcuts_give_every_example_number_of_every_region_the_same_e164() {
        use phonenumber::Type;
        let kinds = [
            Type::FixedLine, Type::Mobile, Type::TollFree, Type::PremiumRate, Type::SharedCost, Type::PersonalNumber,
            Type::Voip, Type::Pager, Type::Uan, Type::Voicemail, Type::NoInternational,
        ];
        let (mut checked, mut verbatim) = (0, 0);
        for meta in phonenumber::metadata::DATABASE.iter() {
            let examples = kinds.iter().filter_map(|k| meta.descriptors().get(*k)).filter_map(|d| d.example());
            for example in examples {
                let code = meta.country_code();
                // As dialed, with the trunk prefix people write after the code, and truncated.
                // As dialed, with the trunk prefix people write after the code, and truncated: the
                // main region must give what libphonenumber gives when it picks the region itself.
                for input in [format!("+{code}{example}"), format!("+{code}0{example}"), format!("+{code}{}", &example[..example.len() / 2])] {
                    match (e164_the_slow_way(&input), PhoneNumber::parse(&input, None)) {
                        (Ok(slow), Ok(fast)) => assert_eq!(slow, fast.dial, "{input} in {}", meta.id()),
                        (Err(_), Err(NumberError::NotInternational { .. })) => {}
                        // Refused before libphonenumber is asked (too many digits): as before.
                        (_, Err(e)) if !matches!(e, NumberError::NotInternational { .. }) => {}
                        (slow, fast) => panic!("{input} in {}: {slow:?} before, {fast:?} now", meta.id()),
                    }
                    checked += 1;
                }
                // A number taken as already E.164 is what libphonenumber makes of it, with the main
                // region and without; here also with the region's own national prefix and very short.
                let national_prefix = meta.national_prefix().unwrap_or("0");
                for input in [
                    format!("+{code}{example}"),
                    format!("+{code}0{example}"),
                    format!("+{code}{national_prefix}{example}"),
                    format!("+{code}{}", &example[..example.len() / 2]),
                    format!("+{code}{}", &example[..1]),
                ] {
                    if is_already_e164(&input) {
                        let with_main_region = phonenumber::parse(main_region(&input), &input).map(|p| e164(&p)).map_err(|e| e.to_string());
                        assert_eq!(with_main_region.as_deref(), Ok(input.as_str()), "{input} in {}", meta.id());
                        assert_eq!(e164_the_slow_way(&input).as_deref(), Ok(input.as_str()), "{input} in {}", meta.id());
                        verbatim += 1;
                    }
                }
            }
        }
        assert!(checked > 2_000, "only {checked} numbers checked");
        assert!(verbatim > 1_000, "only {verbatim} of {checked} numbers were taken as already E.164");
    }

    #[test]
    fn a_number_as_crms_send_it_skips_libphonenumber_and_one_it_must_read_does_not() {
        for input in ["+442079460123", "+12015550123", "+4930123456", "+919876543210"] {
            assert!(is_already_e164(input), "{input}");
        }
        // A written trunk prefix, Italy's leading zero, a code with no main region, too short.
        for input in ["+4402079460123", "+112015550123", "+390212345678", "+80012345678", "+447", "+0441234"] {
            assert!(!is_already_e164(input), "{input}");
        }
    }

    fn gb() -> Option<Country> {
        "GB".parse().ok()
    }

    #[test]
    fn accepts_what_people_paste() {
        let cases = [
            ("020 7946 0000", "+442079460000"),
            ("020-7946-0000", "+442079460000"),
            ("(020) 7946.0000", "+442079460000"),
            ("+44 20 7946 0000", "+442079460000"),
            ("0044 20 7946 0000", "+442079460000"),
            ("+44 (0)20 7946 0000", "+442079460000"),
            ("tel:+44-20-7946-0000", "+442079460000"),
            ("tel:+44%2020%207946%200000", "+442079460000"),
            ("callto:+442079460000", "+442079460000"),
            ("tel:+442079460000;ext=12", "+442079460000"),
            ("  +1 (201) 555-0123 ", "+12015550123"),
        ];
        for (input, want) in cases {
            let n = PhoneNumber::parse(input, gb()).unwrap_or_else(|e| panic!("{input:?}: {e}"));
            assert_eq!(n.dial, want, "{input:?}");
            assert_eq!(n.e164.as_deref(), Some(want), "{input:?}");
        }
    }

    #[test]
    fn keeps_extensions_and_numbers_without_a_country_as_digits() {
        let ext = PhoneNumber::parse("101", gb()).expect("extension");
        assert_eq!((ext.dial.as_str(), ext.e164.as_deref()), ("101", None));
        // Enreach Contact's documented example (`/make/020123456`), with no default country configured.
        let n = PhoneNumber::parse("020123456", None).expect("the documented example number");
        assert_eq!((n.dial.as_str(), n.e164.as_deref()), ("020123456", None));
        assert_eq!(n.digits(), "020123456");
    }

    #[test]
    fn refuses_letters_empty_and_absurd_input_with_the_reason() {
        assert_eq!(PhoneNumber::parse("", gb()), Err(NumberError::Empty));
        assert_eq!(PhoneNumber::parse(" - ( ) ", gb()), Err(NumberError::Empty));
        assert_eq!(PhoneNumber::parse("0800-FLOWERS", gb()), Err(NumberError::InvalidCharacter { found: 'F' }));
        assert_eq!(PhoneNumber::parse("12+34", gb()), Err(NumberError::MisplacedPlus));
        let long = "1".repeat(30);
        assert_eq!(PhoneNumber::parse(&long, gb()), Err(NumberError::TooLong { digits: 30, max: MAX_DIGITS }));
        let hundred = "9".repeat(100);
        assert!(matches!(PhoneNumber::parse(&hundred, gb()), Err(NumberError::InputTooLong { len: 100 })));
        assert!(matches!(PhoneNumber::parse("+999 123", gb()), Err(NumberError::NotInternational { .. })));
        let msg = PhoneNumber::parse("abc", gb()).expect_err("letters").to_string();
        assert!(msg.contains("'a'"), "{msg}");
    }

    #[test]
    fn an_international_number_has_at_most_15_digits() {
        // 15 digits after the + is the most E.164 allows; libphonenumber decides whether it is real.
        assert!(!matches!(PhoneNumber::parse("+123456789012345", None), Err(NumberError::TooLongForE164 { .. })));
        for input in ["+1234567890123456", "+44 2079 4600 0012 34", "0044207946000012345"] {
            let err = PhoneNumber::parse(input, gb()).expect_err(input);
            assert!(matches!(err, NumberError::TooLongForE164 { digits: 16..=17, .. }), "{input}: {err:?}");
            let msg = err.to_string();
            assert!(msg.contains("at most 15") && msg.contains("E.164"), "{msg}");
        }
        // Without a + the number may carry a PBX prefix: only the general limit applies.
        assert!(PhoneNumber::parse("9001234567890123", None).is_ok());
    }

    #[test]
    fn country_codes_parse_and_display() {
        let c: Country = "in".parse().expect("IN");
        assert_eq!(c.to_string(), "IN");
        assert!("XX".parse::<Country>().is_err());
        assert!("Britain".parse::<Country>().is_err());
    }
}
