//! `tel:` and `callto:` links read into the number they carry.
//!
//! Browsers and CRMs write them in many ways — `tel:+44-20-7946-0000`, `tel:020%207946%200000`,
//! `callto://+442079460000`, `tel:+4420…;ext=12` — so only the number part is kept and handed to the
//! dial popup, where the engine's own number rules validate it before anything is dialed.

/// The schemes this app handles (also listed under `plugins.deep-link` in `tauri.conf.json`).
pub const SCHEMES: [&str; 2] = ["tel", "callto"];

/// The number in `link`, or `None` when it is not a `tel:`/`callto:` link with a number in it.
pub fn number_of(link: &str) -> Option<String> {
    let (scheme, rest) = link.trim().split_once(':')?;
    if !SCHEMES.iter().any(|s| s.eq_ignore_ascii_case(scheme)) {
        return None;
    }
    let rest = rest.trim_start_matches('/');
    // Parameters (`;ext=`, `;phone-context=`) and queries are not part of the number.
    let number = rest.split([';', '?', '#']).next().unwrap_or_default();
    let decoded = percent_decode(number);
    let kept: String = decoded.chars().filter(|c| c.is_ascii_digit() || matches!(c, '+' | '*' | '#')).collect();
    kept.chars().any(|c| c.is_ascii_digit()).then_some(kept)
}

fn percent_decode(s: &str) -> String {
    url::form_urlencoded::parse(format!("n={}", s.replace('+', "%2B")).as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_come_out_of_the_links_people_write() {
        assert_eq!(number_of("tel:+44-20-7946-0000").as_deref(), Some("+442079460000"));
        assert_eq!(number_of("tel:020%207946%200000").as_deref(), Some("02079460000"));
        assert_eq!(number_of("callto://+442079460000").as_deref(), Some("+442079460000"));
        assert_eq!(number_of("TEL:+4420;ext=12").as_deref(), Some("+4420"));
        assert_eq!(number_of("tel:+1 (555) 010-9999?x=1").as_deref(), Some("+15550109999"));
    }

    #[test]
    fn other_links_and_empty_numbers_are_refused() {
        assert_eq!(number_of("https://example.com/020"), None);
        assert_eq!(number_of("tel:"), None);
        assert_eq!(number_of("tel:abc"), None);
        assert_eq!(number_of("020123456"), None);
    }
}
