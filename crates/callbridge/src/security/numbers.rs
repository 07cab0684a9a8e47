//! Which numbers CallBridge may dial: allow and deny patterns, premium-rate prefixes denied by default.
//!
//! A dialed premium-rate or satellite number costs real money, and toll fraud (International Revenue
//! Share Fraud) is the reason a local dialer needs this check at all. A pattern is a number prefix: `+1900`
//! matches every number that starts with it, in the E.164 form CallBridge dials (`+` and digits).
//! Patterns without `+` match numbers as dialed when they could not be normalized (extensions, national
//! numbers without a default country). A trailing `*` may be written for clarity; it changes nothing.
//!
//! The decision for a number: the longest matching pattern wins — so `allow_numbers = ["+4470 1234"]`
//! can open one number inside a denied range — and with a non-empty allow list, a number that matches
//! neither list is refused ("only these"). The deny list defaults to [`DEFAULT_DENY`]; editing
//! `deny_numbers` in the config replaces it.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::number::{Country, PhoneNumber};

/// The premium-rate and high-risk prefixes denied unless the config says otherwise, each with where
/// it comes from. National ranges are from each country's numbering plan (NANPA; Ofcom; BNetzA; ARCEP;
/// ACM; BIPT; CNMC; AGCOM; RTR; BAKOM; ACMA), the rest from the ITU-T E.164 list of assigned codes.
pub const DEFAULT_DENY: &[(&str, &str)] = &[
    ("+1900", "North America (NANP): 900 premium-rate services"),
    ("+449", "UK: 09 premium-rate services"),
    ("+44871", "UK: 0871 revenue-sharing service numbers"),
    ("+44872", "UK: 0872 revenue-sharing service numbers"),
    ("+44873", "UK: 0873 revenue-sharing service numbers"),
    ("+4470", "UK: 070 personal numbers, a common fraud destination"),
    ("+49900", "Germany: 0900 premium-rate services"),
    ("+49137", "Germany: 0137 televoting (mass-call services)"),
    ("+3389", "France: 089 premium-rate services"),
    ("+31900", "Netherlands: 0900 premium-rate services"),
    ("+31906", "Netherlands: 0906 premium-rate services"),
    ("+31909", "Netherlands: 0909 premium-rate services"),
    ("+3290", "Belgium: 090x premium-rate services"),
    ("+34803", "Spain: 803 premium-rate services"),
    ("+34806", "Spain: 806 premium-rate services"),
    ("+34807", "Spain: 807 premium-rate services"),
    ("+34905", "Spain: 905 televoting"),
    ("+39892", "Italy: 892 premium information services"),
    ("+39899", "Italy: 899 premium-rate services"),
    ("+43900", "Austria: 0900 premium-rate services"),
    ("+43930", "Austria: 0930 premium-rate services"),
    ("+43939", "Austria: 0939 premium-rate services"),
    ("+41900", "Switzerland: 0900 premium-rate services"),
    ("+41901", "Switzerland: 0901 premium-rate services"),
    ("+41906", "Switzerland: 0906 premium-rate services"),
    ("+61190", "Australia: 190x premium-rate services"),
    ("+979", "ITU: International Premium Rate Service"),
    ("+870", "ITU: Inmarsat satellite service"),
    ("+881", "ITU: Global Mobile Satellite System"),
    ("+882", "ITU: international networks"),
    ("+883", "ITU: international networks"),
];

/// The default deny list as patterns.
pub fn default_deny() -> Vec<NumberPattern> {
    DEFAULT_DENY.iter().map(|(p, _)| NumberPattern(p.to_string())).collect()
}

/// A number prefix (see the module documentation).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NumberPattern(String);

impl NumberPattern {
    pub fn parse(s: &str) -> Result<NumberPattern, String> {
        let trimmed = s.trim();
        let body = trimmed.strip_suffix('*').unwrap_or(trimmed);
        let mut prefix = String::with_capacity(body.len());
        for (i, c) in body.chars().enumerate() {
            match c {
                '0'..='9' => prefix.push(c),
                '+' if i == 0 => prefix.push('+'),
                ' ' | '-' | '.' | '(' | ')' => {}
                other => {
                    return Err(format!(
                        "the number pattern {s:?} contains {other:?}; write a number prefix such as \"+1900\" (digits, a leading +, an optional trailing *)"
                    ))
                }
            }
        }
        if prefix.trim_start_matches('+').is_empty() {
            return Err(format!("the number pattern {s:?} has no digits; it would match every number"));
        }
        if prefix.len() > 21 {
            return Err(format!("the number pattern {s:?} is longer than any phone number"));
        }
        Ok(NumberPattern(prefix))
    }

    /// The prefix: `+` and digits, or digits.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    fn matches(&self, number: &str) -> bool {
        number.starts_with(&self.0)
    }
}

impl fmt::Display for NumberPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl Serialize for NumberPattern {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for NumberPattern {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        NumberPattern::parse(&String::deserialize(d)?).map_err(serde::de::Error::custom)
    }
}

/// Why a number may not be dialed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NumberRefusal {
    #[error("{number} matches the denied prefix {pattern}{}; to dial it, add a longer prefix of it to allow_numbers or remove {pattern} from deny_numbers in [security]", note.map(|n| format!(" ({n})")).unwrap_or_default())]
    Denied { number: String, pattern: String, note: Option<&'static str> },
    #[error("{number} matches none of the allowed prefixes in [security] allow_numbers")]
    NotAllowed { number: String },
}

/// Checks `number` against the lists. See the module documentation for the rule.
pub fn check(number: &PhoneNumber, country: Option<Country>, allow: &[NumberPattern], deny: &[NumberPattern]) -> Result<(), NumberRefusal> {
    let candidates = candidates(number, country);
    let mut allowed_somewhere = false;
    for candidate in &candidates {
        let allow_len = longest(allow, candidate);
        let deny_match = deny.iter().filter(|p| p.matches(candidate)).max_by_key(|p| p.0.len());
        if let Some(pattern) = deny_match {
            if allow_len.is_none_or(|len| len < pattern.0.len()) {
                return Err(NumberRefusal::Denied {
                    number: number.dial.clone(),
                    pattern: pattern.0.clone(),
                    note: DEFAULT_DENY.iter().find(|(p, _)| *p == pattern.0).map(|(_, n)| *n),
                });
            }
        }
        allowed_somewhere |= allow_len.is_some();
    }
    if !allow.is_empty() && !allowed_somewhere {
        return Err(NumberRefusal::NotAllowed { number: number.dial.clone() });
    }
    Ok(())
}

fn longest(patterns: &[NumberPattern], number: &str) -> Option<usize> {
    patterns.iter().filter(|p| p.matches(number)).map(|p| p.0.len()).max()
}

/// The forms of `number` the lists are checked against: what is dialed, and — for a number that could
/// not be normalized — how the default country would read it even if libphonenumber thinks it is not a
/// valid number there, so `011 979…` in the US or `0900…` in Germany cannot slip past `+979`/`+49900`.
fn candidates(number: &PhoneNumber, country: Option<Country>) -> Vec<String> {
    let mut out = vec![number.dial.clone()];
    if number.e164.is_none() {
        if let Some(id) = country.and_then(|c| c.to_string().parse::<phonenumber::country::Id>().ok()) {
            if let Ok(parsed) = phonenumber::parse(Some(id), &number.dial) {
                let e164 = parsed.format().mode(phonenumber::Mode::E164).to_string();
                if e164 != number.dial {
                    out.push(e164);
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> NumberPattern {
        NumberPattern::parse(s).unwrap_or_else(|e| panic!("{e}"))
    }

    fn number(s: &str, country: Option<&str>) -> (PhoneNumber, Option<Country>) {
        let country = country.map(|c| c.parse().unwrap_or_else(|e| panic!("{e}")));
        (PhoneNumber::parse(s, country).unwrap_or_else(|e| panic!("{s}: {e}")), country)
    }

    fn verdict(s: &str, country: Option<&str>, allow: &[&str], deny: Option<&[&str]>) -> Result<(), NumberRefusal> {
        let (n, c) = number(s, country);
        let allow: Vec<_> = allow.iter().map(|s| p(s)).collect();
        let deny: Vec<_> = deny.map(|d| d.iter().map(|s| p(s)).collect()).unwrap_or_else(default_deny);
        check(&n, c, &allow, &deny)
    }

    #[test]
    fn the_default_list_parses_and_denies_premium_numbers() {
        for (pattern, _) in DEFAULT_DENY {
            assert_eq!(p(pattern).as_str(), *pattern);
        }
        let err = verdict("+1 900 555 0123", None, &[], None).expect_err("NANP 900");
        assert!(err.to_string().contains("+1900") && err.to_string().contains("premium"), "{err}");
        assert!(verdict("0900 1234567", Some("DE"), &[], None).is_err(), "national German 0900");
        assert!(verdict("09 0 9 8 7 9 0 0 0 0", Some("GB"), &[], None).is_err(), "UK 09");
        assert!(verdict("+979 123456789", None, &[], None).is_err(), "IPRS");
        assert!(verdict("00881 6 1234 5678", None, &[], None).is_err(), "satellite via 00");
        assert!(verdict("011 979 123 456 789", Some("US"), &[], None).is_err(), "IPRS via the US international prefix");
    }

    #[test]
    fn ordinary_numbers_and_extensions_pass() {
        assert_eq!(verdict("+44 20 7946 0000", None, &[], None), Ok(()));
        assert_eq!(verdict("020123456", None, &[], None), Ok(()));
        assert_eq!(verdict("101", Some("GB"), &[], None), Ok(()));
        assert_eq!(verdict("+1 201 555 0123", None, &[], None), Ok(()));
    }

    #[test]
    fn the_longest_pattern_wins_and_an_allow_list_means_only_these() {
        assert_eq!(verdict("+44 70 1234 5678", None, &["+44701234"], None), Ok(()));
        assert!(verdict("+44 70 9999 5678", None, &["+44701234", "+4470"], Some(&["+447099"])).is_err());
        assert_eq!(verdict("+44 20 7946 0000", None, &["+44"], None), Ok(()));
        let err = verdict("+49 30 1234567", None, &["+44"], None).expect_err("not in allow list");
        assert!(matches!(err, NumberRefusal::NotAllowed { .. }), "{err}");
        assert!(verdict("+44 9 0 1234 5678", None, &["+44"], None).is_err(), "a longer deny beats a shorter allow");
        assert_eq!(verdict("101", None, &["1"], Some(&[])), Ok(()));
    }

    #[test]
    fn patterns_are_validated_with_reasons() {
        assert_eq!(p(" +1 900* ").as_str(), "+1900");
        assert!(NumberPattern::parse("+").expect_err("no digits").contains("no digits"));
        assert!(NumberPattern::parse("*").is_err());
        assert!(NumberPattern::parse("+19x0").expect_err("letter").contains("'x'"));
        assert!(NumberPattern::parse("1+900").is_err());
    }
}
