//! Country calling codes with what reading an international number needs: each code's main region,
//! its national prefix and its pattern for national prefixes, as libphonenumber's metadata has them
//! (<https://github.com/google/libphonenumber/blob/master/resources/PhoneNumberMetadata.xml>).
//!
//! The `phonenumber` crate loads all of libphonenumber's metadata the first time it is asked anything,
//! and keeps it: about 4 MiB for the rest of the process's life. A number in E.164 form — what CRMs
//! send — needs only this table to be checked (see `is_already_e164` in the parent module), so a bridge
//! whose numbers come that way never loads the rest. The table is generated from the `phonenumber`
//! crate's metadata; a test compares the two and, when they differ (after an update of the crate),
//! fails with the regenerated table written to a file.

use std::sync::{LazyLock, OnceLock};

use regex::Regex;

/// One country calling code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct CallingCode {
    pub code: u16,
    /// The code's main region (ISO 3166), as libphonenumber names it: `GB` for 44, `US` for 1.
    pub region: &'static str,
    /// The main region's national (trunk) prefix: `0` in most of Europe, `1` in North America.
    pub national_prefix: Option<&'static str>,
    /// The main region's pattern for a national prefix written before a national number.
    pub prefix_for_parsing: Option<&'static str>,
}

/// The calling code `digits` (without the `+`) start with, if it is a country's; `None` for no code,
/// and for codes that are not a country's (`800`, `882`: they are not in [`CODES`]).
pub(super) fn find(digits: &str) -> Option<(usize, &'static CallingCode)> {
    if digits.starts_with('0') {
        return None;
    }
    // Country codes are prefix-free (ITU-T E.164): the first one that matches is the code.
    (1..=3).find_map(|len| {
        let code = digits.get(..len)?.parse::<u16>().ok()?;
        let at = CODES.binary_search_by_key(&code, |c| c.code).ok()?;
        Some((len, CODES.get(at)?))
    })
}

/// Whether `national` starts with `code`'s pattern for national prefixes, matched as libphonenumber
/// matches it (whitespace in the pattern ignored; the leftmost match starting at the beginning).
/// `None` when the pattern cannot be compiled, which the caller takes as "ask libphonenumber".
pub(super) fn starts_with_prefix_pattern(code: &CallingCode, national: &str) -> Option<bool> {
    let Some(source) = code.prefix_for_parsing else {
        return Some(false);
    };
    let at = CODES.binary_search_by_key(&code.code, |c| c.code).ok()?;
    let compiled = COMPILED.get(at)?.get_or_init(|| {
        regex::RegexBuilder::new(source)
            .ignore_whitespace(true)
            .build()
            .ok()
    });
    let pattern = compiled.as_ref()?;
    Some(pattern.find(national).is_some_and(|m| m.start() == 0))
}

/// Each code's compiled pattern, compiled when first needed.
static COMPILED: LazyLock<Vec<OnceLock<Option<Regex>>>> =
    LazyLock::new(|| CODES.iter().map(|_| OnceLock::new()).collect());

const fn c(
    code: u16,
    region: &'static str,
    national_prefix: Option<&'static str>,
    prefix_for_parsing: Option<&'static str>,
) -> CallingCode {
    CallingCode {
        code,
        region,
        national_prefix,
        prefix_for_parsing,
    }
}

/// Generated from the `phonenumber` crate's metadata (see the module documentation), sorted by code.
#[rustfmt::skip]
const CODES: &[CallingCode] = &[
    c(1, "US", Some("1"), None),
    c(7, "RU", Some("8"), None),
    c(20, "EG", Some("0"), None),
    c(27, "ZA", Some("0"), None),
    c(30, "GR", None, None),
    c(31, "NL", Some("0"), None),
    c(32, "BE", Some("0"), None),
    c(33, "FR", Some("0"), None),
    c(34, "ES", None, None),
    c(36, "HU", Some("06"), None),
    c(39, "IT", None, None),
    c(40, "RO", Some("0"), None),
    c(41, "CH", Some("0"), None),
    c(43, "AT", Some("0"), None),
    c(44, "GB", Some("0"), Some("0|180020")),
    c(45, "DK", None, None),
    c(46, "SE", Some("0"), None),
    c(47, "NO", None, None),
    c(48, "PL", None, None),
    c(49, "DE", Some("0"), None),
    c(51, "PE", Some("0"), None),
    c(52, "MX", None, None),
    c(53, "CU", Some("0"), None),
    c(54, "AR", Some("0"), Some("\n                 0?(?:\n                   (\n                     11|\n                     2(?:\n                       2(?:\n                         02?|\n                         [13]|\n                         2[13-79]|\n                         4[1-6]|\n                         5[2457]|\n                         6[124-8]|\n                         7[1-4]|\n                         8[13-6]|\n                         9[1267]\n                       )|\n                       3(?:\n                         02?|\n                         1[467]|\n                         2[03-6]|\n                         3[13-8]|\n                         [49][2-6]|\n                         5[2-8]|\n                         [67]\n                       )|\n                       4(?:\n                         7[3-578]|\n                         9\n                       )|\n                       6(?:\n                         [0136]|\n                         2[24-6]|\n                         4[6-8]?|\n                         5[15-8]\n                       )|\n                       80|\n                       9(?:\n                         0[1-3]|\n                         [19]|\n                         2\\d|\n                         3[1-6]|\n                         4[02568]?|\n                         5[2-4]|\n                         6[2-46]|\n                         72?|\n                         8[23]?\n                       )\n                     )|\n                     3(?:\n                       3(?:\n                         2[79]|\n                         6|\n                         8[2578]\n                       )|\n                       4(?:\n                         0[0-24-9]|\n                         [12]|\n                         3[5-8]?|\n                         4[24-7]|\n                         5[4-68]?|\n                         6[02-9]|\n                         7[126]|\n                         8[2379]?|\n                         9[1-36-8]\n                       )|\n                       5(?:\n                         1|\n                         2[1245]|\n                         3[237]?|\n                         4[1-46-9]|\n                         6[2-4]|\n                         7[1-6]|\n                         8[2-5]?\n                       )|\n                       6[24]|\n                       7(?:\n                         [069]|\n                         1[1568]|\n                         2[15]|\n                         3[145]|\n                         4[13]|\n                         5[14-8]|\n                         7[2-57]|\n                         8[126]\n                       )|\n                       8(?:\n                         [01]|\n                         2[15-7]|\n                         3[2578]?|\n                         4[13-6]|\n                         5[4-8]?|\n                         6[1-357-9]|\n                         7[36-8]?|\n                         8[5-8]?|\n                         9[124]\n                       )\n                     )\n                   )15\n                 )?")),
    c(55, "BR", Some("0"), Some("\n                 (?:\n                   0|\n                   90\n                 )(?:\n                   (\n                     1[245]|\n                     2[1-35]|\n                     31|\n                     4[13]|\n                     [56]5|\n                     99\n                   )(\n                     \\d{10,11}\n                   )\n                 )?")),
    c(56, "CL", None, None),
    c(57, "CO", Some("0"), Some("0([3579]|4(?:[14]4|56))?")),
    c(58, "VE", Some("0"), None),
    c(60, "MY", Some("0"), None),
    c(61, "AU", Some("0"), Some("(183[12])|0")),
    c(62, "ID", Some("0"), None),
    c(63, "PH", Some("0"), None),
    c(64, "NZ", Some("0"), None),
    c(65, "SG", None, None),
    c(66, "TH", Some("0"), None),
    c(81, "JP", Some("0"), Some("(000[2569]\\d{4,6})$|(?:(?:003768)0?)|0")),
    c(82, "KR", Some("0"), Some("0(8(?:[1-46-8]|5\\d\\d))?")),
    c(84, "VN", Some("0"), None),
    c(86, "CN", Some("0"), Some("(1(?:[12]\\d|79)\\d\\d)|0")),
    c(90, "TR", Some("0"), None),
    c(91, "IN", Some("0"), None),
    c(92, "PK", Some("0"), None),
    c(93, "AF", Some("0"), None),
    c(94, "LK", Some("0"), None),
    c(95, "MM", Some("0"), None),
    c(98, "IR", Some("0"), None),
    c(211, "SS", Some("0"), None),
    c(212, "MA", Some("0"), None),
    c(213, "DZ", Some("0"), None),
    c(216, "TN", None, None),
    c(218, "LY", Some("0"), None),
    c(220, "GM", None, None),
    c(221, "SN", None, None),
    c(222, "MR", None, None),
    c(223, "ML", None, None),
    c(224, "GN", None, None),
    c(225, "CI", None, None),
    c(226, "BF", None, None),
    c(227, "NE", None, None),
    c(228, "TG", None, None),
    c(229, "BJ", None, None),
    c(230, "MU", None, None),
    c(231, "LR", Some("0"), None),
    c(232, "SL", Some("0"), None),
    c(233, "GH", Some("0"), None),
    c(234, "NG", Some("0"), None),
    c(235, "TD", None, None),
    c(236, "CF", None, None),
    c(237, "CM", None, None),
    c(238, "CV", None, None),
    c(239, "ST", None, None),
    c(240, "GQ", None, None),
    c(241, "GA", None, Some("0(11\\d{6}|60\\d{6}|61\\d{6}|6[256]\\d{6}|7[467]\\d{6})")),
    c(242, "CG", None, None),
    c(243, "CD", Some("0"), None),
    c(244, "AO", None, None),
    c(245, "GW", None, None),
    c(246, "IO", None, None),
    c(247, "AC", None, None),
    c(248, "SC", None, None),
    c(249, "SD", Some("0"), None),
    c(250, "RW", Some("0"), None),
    c(251, "ET", Some("0"), None),
    c(252, "SO", Some("0"), None),
    c(253, "DJ", None, None),
    c(254, "KE", Some("0"), None),
    c(255, "TZ", Some("0"), None),
    c(256, "UG", Some("0"), None),
    c(257, "BI", None, None),
    c(258, "MZ", None, None),
    c(260, "ZM", Some("0"), None),
    c(261, "MG", Some("0"), Some("([24-9]\\d{6})$|0")),
    c(262, "RE", Some("0"), None),
    c(263, "ZW", Some("0"), None),
    c(264, "NA", Some("0"), None),
    c(265, "MW", Some("0"), None),
    c(266, "LS", None, None),
    c(267, "BW", None, None),
    c(268, "SZ", None, None),
    c(269, "KM", None, None),
    c(290, "SH", None, None),
    c(291, "ER", Some("0"), None),
    c(297, "AW", None, None),
    c(298, "FO", None, Some("(10(?:01|[12]0|88))")),
    c(299, "GL", None, None),
    c(350, "GI", None, None),
    c(351, "PT", None, None),
    c(352, "LU", None, Some("(15(?:0[06]|1[12]|[35]5|4[04]|6[26]|77|88|99)\\d)")),
    c(353, "IE", Some("0"), None),
    c(354, "IS", None, None),
    c(355, "AL", Some("0"), None),
    c(356, "MT", None, None),
    c(357, "CY", None, None),
    c(358, "FI", Some("0"), None),
    c(359, "BG", Some("0"), None),
    c(370, "LT", Some("0"), Some("[08]")),
    c(371, "LV", None, None),
    c(372, "EE", None, None),
    c(373, "MD", Some("0"), None),
    c(374, "AM", Some("0"), None),
    c(375, "BY", Some("8"), Some("0|80?")),
    c(376, "AD", None, None),
    c(377, "MC", Some("0"), None),
    c(378, "SM", None, Some("([89]\\d{5})$")),
    c(380, "UA", Some("0"), None),
    c(381, "RS", Some("0"), None),
    c(382, "ME", Some("0"), None),
    c(383, "XK", Some("0"), None),
    c(385, "HR", Some("0"), None),
    c(386, "SI", Some("0"), None),
    c(387, "BA", Some("0"), None),
    c(389, "MK", Some("0"), None),
    c(420, "CZ", None, None),
    c(421, "SK", Some("0"), None),
    c(423, "LI", Some("0"), Some("(1001)|0")),
    c(500, "FK", None, None),
    c(501, "BZ", None, None),
    c(502, "GT", None, None),
    c(503, "SV", None, None),
    c(504, "HN", None, None),
    c(505, "NI", None, None),
    c(506, "CR", None, Some("(19(?:0[0-2468]|1[09]|20|66|77|99))")),
    c(507, "PA", None, None),
    c(508, "PM", Some("0"), None),
    c(509, "HT", None, None),
    c(590, "GP", Some("0"), None),
    c(591, "BO", Some("0"), Some("0(1\\d)?")),
    c(592, "GY", None, None),
    c(593, "EC", Some("0"), None),
    c(594, "GF", Some("0"), None),
    c(595, "PY", Some("0"), None),
    c(596, "MQ", Some("0"), None),
    c(597, "SR", None, None),
    c(598, "UY", Some("0"), None),
    c(599, "CW", None, None),
    c(670, "TL", None, None),
    c(672, "NF", None, Some("([0-258]\\d{4})$")),
    c(673, "BN", None, None),
    c(674, "NR", None, None),
    c(675, "PG", None, None),
    c(676, "TO", None, None),
    c(677, "SB", None, None),
    c(678, "VU", None, None),
    c(679, "FJ", None, None),
    c(680, "PW", None, None),
    c(681, "WF", None, None),
    c(682, "CK", None, None),
    c(683, "NU", None, None),
    c(685, "WS", None, None),
    c(686, "KI", Some("0"), None),
    c(687, "NC", None, None),
    c(688, "TV", None, None),
    c(689, "PF", None, None),
    c(690, "TK", None, None),
    c(691, "FM", None, None),
    c(692, "MH", Some("1"), None),
    c(850, "KP", Some("0"), None),
    c(852, "HK", None, None),
    c(853, "MO", None, None),
    c(855, "KH", Some("0"), None),
    c(856, "LA", Some("0"), None),
    c(880, "BD", Some("0"), None),
    c(886, "TW", Some("0"), None),
    c(960, "MV", None, None),
    c(961, "LB", Some("0"), None),
    c(962, "JO", Some("0"), None),
    c(963, "SY", Some("0"), None),
    c(964, "IQ", Some("0"), None),
    c(965, "KW", None, None),
    c(966, "SA", Some("0"), None),
    c(967, "YE", Some("0"), None),
    c(968, "OM", None, None),
    c(970, "PS", Some("0"), None),
    c(971, "AE", Some("0"), None),
    c(972, "IL", Some("0"), None),
    c(973, "BH", None, None),
    c(974, "QA", None, None),
    c(975, "BT", None, None),
    c(976, "MN", Some("0"), None),
    c(977, "NP", Some("0"), None),
    c(992, "TJ", None, None),
    c(993, "TM", Some("8"), None),
    c(994, "AZ", Some("0"), None),
    c(995, "GE", Some("0"), None),
    c(996, "KG", Some("0"), None),
    c(998, "UZ", None, None),
];

#[cfg(test)]
mod tests {
    use super::*;

    type Row = (u16, String, Option<String>, Option<String>);

    /// What the table must hold, read from the `phonenumber` crate's metadata: each calling code of a
    /// country, with the first region libphonenumber lists for it (its main region).
    fn from_metadata() -> Vec<Row> {
        use phonenumber::metadata::DATABASE;
        let mut codes: Vec<u16> = DATABASE.iter().map(|meta| meta.country_code()).collect();
        codes.sort_unstable();
        codes.dedup();
        codes
            .into_iter()
            .filter_map(|code| {
                let region = DATABASE.region(&code)?.first()?.to_string();
                region.parse::<phonenumber::country::Id>().ok()?;
                let meta = DATABASE.by_id(region.as_str())?;
                let prefix_for_parsing = meta
                    .national_prefix_for_parsing()
                    .map(|p| p.as_str().to_owned());
                Some((
                    code,
                    region,
                    meta.national_prefix().map(str::to_owned),
                    prefix_for_parsing,
                ))
            })
            .collect()
    }

    fn render(rows: &[Row]) -> String {
        let mut out = String::from("const CODES: &[CallingCode] = &[\n");
        for (code, region, prefix, pattern) in rows {
            out += &format!("    c({code}, {region:?}, {prefix:?}, {pattern:?}),\n");
        }
        out + "];\n"
    }

    #[test]
    fn the_table_is_libphonenumbers() {
        let expected = from_metadata();
        let actual: Vec<Row> = CODES
            .iter()
            .map(|c| {
                (
                    c.code,
                    c.region.to_owned(),
                    c.national_prefix.map(str::to_owned),
                    c.prefix_for_parsing.map(str::to_owned),
                )
            })
            .collect();
        if actual != expected {
            let path = std::env::temp_dir().join("calling_codes.rs");
            let written = std::fs::write(&path, render(&expected));
            panic!(
                "the calling codes differ from the phonenumber crate's metadata; the table regenerated from it is in {} ({written:?}): replace CODES in src/number/calling_codes.rs with it",
                path.display()
            );
        }
        assert!(CODES.len() > 200, "only {} codes", CODES.len());
    }

    #[test]
    fn codes_are_found_by_their_digits_and_others_are_not() {
        assert_eq!(
            find("442079460000").map(|(len, c)| (len, c.region)),
            Some((2, "GB"))
        );
        assert_eq!(
            find("12015550123").map(|(len, c)| (len, c.region)),
            Some((1, "US"))
        );
        assert_eq!(
            find("3531234567").map(|(len, c)| (len, c.region)),
            Some((3, "IE"))
        );
        assert_eq!(find("80012345678"), None, "a code that is not a country's");
        assert_eq!(find(""), None);
        assert_eq!(find("x44"), None);
        assert_eq!(find("0441234"), None, "a leading zero is no code");
    }

    #[test]
    fn prefix_patterns_match_at_the_start_only() {
        let (_, gb) = find("44").expect("+44");
        assert_eq!(gb.prefix_for_parsing, Some("0|180020"));
        assert_eq!(starts_with_prefix_pattern(gb, "02079460000"), Some(true));
        assert_eq!(starts_with_prefix_pattern(gb, "1800201234"), Some(true));
        assert_eq!(starts_with_prefix_pattern(gb, "2079460000"), Some(false));
        assert_eq!(
            starts_with_prefix_pattern(gb, "2079460180020"),
            Some(false),
            "not at the start"
        );
        // A pattern written over many lines, whitespace ignored (Argentina's mobile prefix 15).
        let (_, ar) = find("54").expect("+54");
        assert_eq!(starts_with_prefix_pattern(ar, "0111512345678"), Some(true));
        // Everything in Argentina's pattern is optional, so it matches (nothing) at the start of any
        // number: such numbers are always left to libphonenumber.
        assert_eq!(starts_with_prefix_pattern(ar, "91112345678"), Some(true));
        // Without a pattern nothing is matched (the national prefix itself is checked by the caller).
        let (_, us) = find("1").expect("+1");
        assert_eq!(starts_with_prefix_pattern(us, "12015550123"), Some(false));
    }
}
