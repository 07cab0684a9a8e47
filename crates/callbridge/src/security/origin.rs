//! Origins and hosts: who a browser says sent a request, and which name the request used for us.
//!
//! A [`TrustedOrigin`] is a CRM's web origin the user allows to dial without asking —
//! `https://crm.example.com`, `http://localhost:8080`, or `https://*.example.com` for every subdomain.
//! [`page_origin`] reads the origin a browser request came from (its `Origin` header, else its
//! `Referer`, which browsers set and pages cannot forge, only suppress). [`is_loopback_host`] checks
//! the `Host` header against this machine's names, which is what stops DNS rebinding: a page on
//! `evil.example` that re-resolves to 127.0.0.1 still sends `Host: evil.example`.

use std::fmt;
use std::net::{IpAddr, Ipv6Addr};

use serde::{Deserialize, Serialize};

/// A web origin allowed to use CallBridge from a browser. Compared by scheme, host and port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrustedOrigin {
    /// As written in the config, normalized (`https://crm.example.com`, `https://*.example.com:8443`).
    text: String,
    scheme: String,
    /// The host, or for a wildcard the suffix after `*.`.
    host: String,
    wildcard: bool,
    port: Option<u16>,
}

impl TrustedOrigin {
    pub fn parse(s: &str) -> Result<TrustedOrigin, String> {
        let s = s.trim();
        let (wildcard, parsable) = match s.split_once("://*.") {
            Some((scheme, rest)) => (true, format!("{scheme}://wildcard.{rest}")),
            None => (false, s.to_owned()),
        };
        let url = url::Url::parse(&parsable)
            .map_err(|e| format!("{s:?} is not an origin such as \"https://crm.example.com\": {e}"))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(format!("{s:?} uses the scheme {:?}; a trusted origin is http or https", url.scheme()));
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(format!("{s:?} contains a user name or password; an origin is only scheme, host and port"));
        }
        if url.path() != "/" || url.query().is_some() || url.fragment().is_some() {
            return Err(format!("{s:?} has a path, query or fragment; an origin is only scheme, host and port, e.g. \"https://crm.example.com\""));
        }
        let Some(host) = url.host_str().filter(|h| !h.is_empty()) else {
            return Err(format!("{s:?} has no host"));
        };
        let host = if wildcard { host.trim_start_matches("wildcard.").to_owned() } else { host.to_owned() };
        if wildcard && !host.contains('.') {
            return Err(format!("{s:?} would trust every subdomain of a top-level domain; name the CRM's own domain"));
        }
        let port = url.port_or_known_default();
        let shown_port = url.port().map(|p| format!(":{p}")).unwrap_or_default();
        let text = format!("{}://{}{}{}", url.scheme(), if wildcard { "*." } else { "" }, host, shown_port);
        Ok(TrustedOrigin { text, scheme: url.scheme().to_owned(), host, wildcard, port })
    }

    /// Whether the browser origin `origin` (as [`page_origin`] returns it) is this one.
    pub fn matches(&self, origin: &url::Url) -> bool {
        if origin.scheme() != self.scheme || origin.port_or_known_default() != self.port {
            return false;
        }
        let Some(host) = origin.host_str() else { return false };
        if self.wildcard {
            host.len() > self.host.len() && host.ends_with(&self.host) && host[..host.len() - self.host.len()].ends_with('.')
        } else {
            host == self.host
        }
    }

    pub fn as_str(&self) -> &str {
        &self.text
    }
}

impl fmt::Display for TrustedOrigin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl Serialize for TrustedOrigin {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.text)
    }
}

impl<'de> Deserialize<'de> for TrustedOrigin {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        TrustedOrigin::parse(&String::deserialize(d)?).map_err(serde::de::Error::custom)
    }
}

/// A browser-sent `Origin` or `Referer` header as an origin URL (scheme, host, port). `None` for an
/// opaque origin (`null`: sandboxed frames, local files) or anything that is not an http(s) URL.
pub fn page_origin(header: &str) -> Option<url::Url> {
    let url = url::Url::parse(header.trim()).ok()?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return None;
    }
    let origin = url.origin();
    if !origin.is_tuple() {
        return None;
    }
    url::Url::parse(&origin.ascii_serialization()).ok()
}

/// The origin as people write it: `https://crm.example.com` (no trailing slash).
pub fn origin_text(origin: &url::Url) -> String {
    origin.origin().ascii_serialization()
}

/// Whether a `Host` header names this machine: `localhost`, an address in 127.0.0.0/8, or `[::1]`,
/// with any port.
pub fn is_loopback_host(host: &str) -> bool {
    let host = host.trim();
    let name = if let Some(rest) = host.strip_prefix('[') {
        match rest.split_once(']') {
            Some((v6, port)) if port.is_empty() || port.strip_prefix(':').is_some_and(is_port) => {
                return v6.parse::<Ipv6Addr>().is_ok_and(|ip| ip.is_loopback());
            }
            _ => return false,
        }
    } else {
        match host.rsplit_once(':') {
            Some((name, port)) if is_port(port) => name,
            Some(_) => return false,
            None => host,
        }
    };
    let name = name.strip_suffix('.').unwrap_or(name);
    name.eq_ignore_ascii_case("localhost") || name.parse::<IpAddr>().is_ok_and(|ip| ip.is_ipv4() && ip.is_loopback())
}

fn is_port(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) && s.parse::<u16>().is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn origin(s: &str) -> url::Url {
        page_origin(s).unwrap_or_else(|| panic!("{s} is an origin"))
    }

    #[test]
    fn trusted_origins_normalize_and_match_exactly() {
        let t = TrustedOrigin::parse("HTTPS://CRM.Example.com:443/").expect("parses");
        assert_eq!(t.as_str(), "https://crm.example.com");
        assert!(t.matches(&origin("https://crm.example.com")));
        assert!(t.matches(&origin("https://crm.example.com:443")));
        assert!(!t.matches(&origin("http://crm.example.com")));
        assert!(!t.matches(&origin("https://crm.example.com:8443")));
        assert!(!t.matches(&origin("https://evil-crm.example.com")));
        assert!(!t.matches(&origin("https://crm.example.com.evil.example")));

        let local = TrustedOrigin::parse("http://localhost:8080").expect("parses");
        assert_eq!(local.as_str(), "http://localhost:8080");
        assert!(local.matches(&origin("http://localhost:8080")));
        assert!(!local.matches(&origin("http://localhost:8081")));
    }

    #[test]
    fn wildcards_match_subdomains_only() {
        let t = TrustedOrigin::parse("https://*.example.com").expect("parses");
        assert_eq!(t.as_str(), "https://*.example.com");
        assert!(t.matches(&origin("https://acme.example.com")));
        assert!(t.matches(&origin("https://a.b.example.com")));
        assert!(!t.matches(&origin("https://example.com")));
        assert!(!t.matches(&origin("https://evilexample.com")));
        assert!(TrustedOrigin::parse("https://*.com").is_err());
    }

    #[test]
    fn bad_trusted_origins_say_why() {
        for (bad, why) in [
            ("crm.example.com", "not an origin"),
            ("ftp://crm.example.com", "scheme"),
            ("https://crm.example.com/app", "path"),
            ("https://user:pw@crm.example.com", "user name"),
            ("https://crm.example.com/?a=1", "path, query"),
        ] {
            let err = TrustedOrigin::parse(bad).expect_err(bad);
            assert!(err.contains(why), "{bad}: {err}");
        }
    }

    #[test]
    fn page_origins_come_from_origin_or_referer() {
        assert_eq!(origin_text(&origin("https://crm.example.com")), "https://crm.example.com");
        assert_eq!(origin_text(&origin("https://crm.example.com/deals/42?x=1#y")), "https://crm.example.com");
        assert!(page_origin("null").is_none());
        assert!(page_origin("file:///home/me/x.html").is_none());
        assert!(page_origin("").is_none());
    }

    #[test]
    fn only_this_machine_is_a_loopback_host() {
        for ok in ["localhost", "localhost:5678", "LOCALHOST:1", "localhost.:5678", "127.0.0.1", "127.0.0.1:5678", "127.1.2.3:80", "[::1]", "[::1]:5678"] {
            assert!(is_loopback_host(ok), "{ok}");
        }
        for bad in [
            "evil.example",
            "evil.example:5678",
            "localhost.evil.example",
            "127.0.0.1.nip.io",
            "10.0.0.1:5678",
            "[::2]:5678",
            "[::1",
            "localhost:notaport",
            "localhost:99999",
            "",
            "0.0.0.0:5678",
        ] {
            assert!(!is_loopback_host(bad), "{bad}");
        }
    }
}
