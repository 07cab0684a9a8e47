//! The listener's security policy: who may make CallBridge dial, and which numbers.
//!
//! A local listener that dials numbers is a target: any web page the user visits can send it requests
//! (the pattern behind the 2019 Zoom localhost flaw), and a dialed premium-rate number costs money.
//! So, by default:
//!
//! * the listener binds loopback, and answers only to `Host: localhost` / `127.0.0.1` / `[::1]`, which
//!   defeats DNS rebinding ([`origin::is_loopback_host`]);
//! * a request with neither `Origin` nor `Sec-Fetch-Site` is a program on this machine (curl, a script,
//!   the CLI) and is served; so is the browser's own address bar (`Sec-Fetch-Site: none`), a page
//!   CallBridge served itself, and — with the per-start [page key](tiers::PageKey) — CallBridge's own
//!   pages;
//! * a browser request from a page whose origin is not in `trusted_origins` — or a cross-site one that
//!   does not say where it came from, like an `<img>` tag — is refused, except a dial command, which is
//!   put to the [`approval::DialApprover`] (the desktop asks the user; headless, it is refused);
//! * the per-install [`token`] lets anything through (`Authorization: Bearer …` or `?token=…`), and is
//!   required from other machines when the listener is bound to a non-loopback address, and for
//!   requests under a name listed in `allowed_hosts` (a tunnel's public name for provider webhooks);
//! * every dial is checked against the [`numbers`] allow/deny lists, and dial commands from the listener
//!   are rate-limited ([`rate`]);
//! * `mode = "open"` lets browser pages through without asking, for CRMs that can neither send a token
//!   nor be listed; CallBridge warns about it at start and in the settings page;
//! * whoever gets through may use only the [tiers] of routes its kind may: web pages, trusted or
//!   not, and token holders get call control; administration is for programs on this machine and
//!   CallBridge's own pages.
//!
//! [`classify`] is the pure decision about a request; the listener's guard middleware applies it, and
//! [`Security`] holds the state: the token, the rate limit and the approver.

pub mod approval;
pub mod numbers;
pub mod origin;
pub mod rate;
pub mod tiers;
pub mod token;

use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::config::invalid::Invalid;
use crate::config::limits;
use crate::number::PhoneNumber;
use crate::secrets::SecretStore;
use approval::{Approval, ApprovalRequest, DialApprover};
use numbers::NumberPattern;
use origin::TrustedOrigin;
use rate::DialRate;
pub use tiers::Caller;
use tiers::{PageKey, PageKeyCheck};
use token::{TokenCheck, TokenKeeper};

/// How long a dial waits for the user's answer before it is refused.
pub const APPROVAL_TIMEOUT: Duration = Duration::from_secs(60);

/// What CallBridge says at start (and the settings page shows) while open mode is on.
pub const OPEN_MODE_WARNING: &str = "open mode is on: any web page you visit can make CallBridge dial without asking \
     (the number rules and the rate limit still apply); set [security] mode = \"strict\" to turn it off";

/// `[security]` in the config file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SecurityConfig {
    /// `strict` (default) or `open`.
    pub mode: Mode,
    /// Web origins whose pages may dial without asking: `https://crm.example.com`, `https://*.example.com`.
    pub trusted_origins: Vec<TrustedOrigin>,
    /// Dial commands a minute through the listener (also the burst size); 0 = no limit.
    pub dials_per_minute: u32,
    /// Number prefixes that may be dialed; when not empty, only these.
    pub allow_numbers: Vec<NumberPattern>,
    /// Number prefixes that are refused; premium-rate and high-risk prefixes by default.
    pub deny_numbers: Vec<NumberPattern>,
    /// The keyring entry that holds the listener token.
    pub token_entry: String,
    /// Host names besides this machine's that requests may use (a tunnel's or reverse proxy's public
    /// name, for provider webhooks); such requests must carry the token.
    pub allowed_hosts: Vec<String>,
}

impl Default for SecurityConfig {
    fn default() -> Self {
        SecurityConfig {
            mode: Mode::Strict,
            trusted_origins: Vec::new(),
            dials_per_minute: 10,
            allow_numbers: Vec::new(),
            deny_numbers: numbers::default_deny(),
            token_entry: token::DEFAULT_ENTRY.to_owned(),
            allowed_hosts: Vec::new(),
        }
    }
}

impl SecurityConfig {
    /// Checks what the types cannot; the error names the setting.
    pub fn validate(&self) -> Result<(), Invalid> {
        limits::DIALS_PER_MINUTE.check(u64::from(self.dials_per_minute))?;
        let entry = self.token_entry.trim();
        if entry.is_empty() || entry.len() > 128 || entry.chars().any(char::is_control) {
            return Err(Invalid::new("security.token_entry", "security.token_entry must be a keyring entry name of 1 to 128 printable characters"));
        }
        for host in &self.allowed_hosts {
            let valid = !host.is_empty()
                && host.len() <= 253
                && host.chars().all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-')
                && !origin::is_loopback_host(host);
            if !valid {
                return Err(Invalid::new(
                    "security.allowed_hosts",
                    format!("security.allowed_hosts has {host:?}; write a host name such as \"hooks.example.com\", without scheme, port or path"),
                ));
            }
        }
        Ok(())
    }

    /// Whether a `Host` header names one of [`Self::allowed_hosts`] (any port).
    pub fn allows_host(&self, host: &str) -> bool {
        let name = match host.trim().rsplit_once(':') {
            Some((name, port)) if port.bytes().all(|b| b.is_ascii_digit()) => name,
            _ => host.trim(),
        };
        let name = name.strip_suffix('.').unwrap_or(name);
        self.allowed_hosts.iter().any(|allowed| allowed.eq_ignore_ascii_case(name))
    }

    /// Whether `origin` (a page origin) is on the trusted list.
    pub fn trusts(&self, origin: &url::Url) -> bool {
        self.trusted_origins.iter().any(|t| t.matches(origin))
    }
}

/// How strict the listener is with browser pages.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Pages that are not trusted never dial silently.
    #[default]
    Strict,
    /// Every page may dial (number rules and rate limit still apply). For CRMs that cannot do better.
    Open,
}

/// The facts about a request that the policy looks at.
#[derive(Debug, Clone, Default)]
pub struct RequestFacts<'a> {
    pub host: Option<&'a str>,
    pub origin: Option<&'a str>,
    pub referer: Option<&'a str>,
    pub sec_fetch_site: Option<&'a str>,
    /// Whether the connection comes from this machine.
    pub peer_is_local: bool,
    pub token: TokenCheck,
    pub page_key: PageKeyCheck,
}

/// Why a request is refused before anything else is looked at.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("the Host header {0:?} does not name this machine; CallBridge answers only to localhost, 127.0.0.1 and [::1], so that a web page cannot reach it through DNS rebinding (a tunnel's or proxy's public name can be listed in [security] allowed_hosts; such requests must carry the token)")]
    BadHost(String),
    #[error("{0}; send the listener token as `Authorization: Bearer TOKEN` or `?token=TOKEN` (`callbridge token show` prints it)")]
    TokenRequired(String),
    #[error("the token is wrong; `callbridge token show` prints the current one (regenerating it replaces the old one)")]
    BadToken,
    #[error("{0}")]
    TokenUnusable(String),
    #[error("this page's key is not this CallBridge's: the page was loaded before CallBridge restarted; reload it")]
    StalePage,
}

/// Decides who sent a request. `bind_loopback`: whether the listener is bound to a loopback address.
pub fn classify(req: &RequestFacts<'_>, config: &SecurityConfig, bind_loopback: bool) -> Result<Caller, Refusal> {
    match &req.token {
        TokenCheck::Invalid => return Err(Refusal::BadToken),
        TokenCheck::Unusable(reason) => return Err(Refusal::TokenUnusable(reason.clone())),
        TokenCheck::Absent | TokenCheck::Valid => {}
    }
    let token_valid = req.token == TokenCheck::Valid;
    let host = req.host.unwrap_or_default();
    let host_is_local = origin::is_loopback_host(host);
    if !host_is_local && bind_loopback && !config.allows_host(host) {
        return Err(Refusal::BadHost(host.to_owned()));
    }
    if !req.peer_is_local || !host_is_local {
        if token_valid {
            return Ok(Caller::Token);
        }
        let why = if req.peer_is_local {
            format!("this request names the listener as {host:?} instead of localhost")
        } else {
            "this request comes from another machine".to_owned()
        };
        return Err(Refusal::TokenRequired(why));
    }
    match req.page_key {
        PageKeyCheck::Invalid => return Err(Refusal::StalePage),
        // A key from a page at another origin is not honoured, however it got there.
        PageKeyCheck::Valid if from_own_page_or_none(req, own_origin(host).as_ref()) => return Ok(Caller::OwnPage),
        PageKeyCheck::Valid | PageKeyCheck::Absent => {}
    }
    if token_valid {
        // A program on this machine needs no token; with one it is still a program on this machine.
        let program = req.origin.is_none() && req.referer.is_none() && req.sec_fetch_site.is_none();
        return Ok(if program { Caller::Local } else { Caller::Token });
    }
    Ok(browser(req, config, host))
}

/// The listener's own origin as a page on it has it: `http://` and the `Host` the request named.
fn own_origin(host: &str) -> Option<url::Url> {
    origin::page_origin(&format!("http://{host}"))
}

/// Whether the request names no page, or only the listener's own origin.
fn from_own_page_or_none(req: &RequestFacts<'_>, own: Option<&url::Url>) -> bool {
    let names_own = |header: Option<&str>| header.map(str::trim).filter(|h| !h.is_empty()).is_none_or(|h| origin::page_origin(h).as_ref() == own);
    names_own(req.origin) && names_own(req.referer)
}

/// The browser part of [`classify`], for a request on a loopback host without a token.
fn browser(req: &RequestFacts<'_>, config: &SecurityConfig, host: &str) -> Caller {
    let site = req.sec_fetch_site.map(|s| s.trim().to_ascii_lowercase());
    let origin_header = req.origin.map(str::trim).filter(|o| !o.is_empty());
    let page = match origin_header {
        Some(header) => origin::page_origin(header),
        None => req.referer.and_then(origin::page_origin),
    };
    if let Some(page) = &page {
        if own_origin(host).as_ref() == Some(page) {
            return Caller::SameOrigin;
        }
        if config.trusts(page) {
            return Caller::Trusted { origin: origin::origin_text(page) };
        }
    }
    let cross = match (origin_header, site.as_deref(), &page) {
        // An Origin that is neither ours nor trusted (or `null`): a browser page we do not know.
        (Some(_), _, _) => true,
        // No browser headers at all: a program on this machine.
        (None, None, None) => false,
        // Only a Referer from another site: a browser too old to send Sec-Fetch-Site.
        (None, None, Some(_)) => true,
        // The address bar or a bookmark: the user.
        (None, Some("none"), _) => false,
        // A page at this very origin that sent no Referer.
        (None, Some("same-origin"), _) => return Caller::SameOrigin,
        (None, Some(_), _) => true,
    };
    if !cross {
        return Caller::Local;
    }
    let origin = page.as_ref().map(origin::origin_text);
    if config.mode == Mode::Open {
        return Caller::Open { origin };
    }
    let reason = match (&origin, origin_header) {
        (Some(o), _) => format!("the request came from the web page {o}, which is not a trusted origin"),
        (None, Some(header)) => format!("the request came from a web page with the opaque origin {header:?} (a sandboxed frame or a local file)"),
        (None, None) => format!(
            "the request came from a web page on another site (Sec-Fetch-Site: {}) that did not say which",
            site.as_deref().unwrap_or("unknown")
        ),
    };
    Caller::Untrusted { origin, reason }
}

/// What the settings page and `status` show about the policy.
#[derive(Debug, Clone, Serialize)]
pub struct SecuritySummary {
    pub mode: Mode,
    /// Present while open mode is on.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub warning: Option<&'static str>,
    pub trusted_origins: Vec<String>,
    pub dials_per_minute: u32,
    /// `ready`, `unavailable` (see `token_problem`) or `unknown` (not needed yet).
    pub token: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token_problem: Option<String>,
    /// Whether the approver asks a user (the desktop) or refuses (headless).
    pub asks_before_untrusted_dials: bool,
}

/// Why the policy stopped a dial. The engine answers it as its own `CommandError` (403 or 429).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DialRefusal {
    /// Not allowed: the message says why and how to let it through.
    #[error("refused: {0}")]
    Refused(String),
    /// Over the dial rate limit.
    #[error("too many dial commands; try again in {retry_after_secs} s")]
    Throttled { retry_after_secs: u64 },
}

/// The policy's state: the token, the dial rate limit and the approver.
#[derive(Debug)]
pub struct Security {
    token: TokenKeeper,
    rate: Mutex<DialRate>,
    approver: Arc<dyn DialApprover>,
    /// The last keyring outcome for the token: `None` unknown, `Some(None)` ready, `Some(Some(why))` not.
    token_state: RwLock<Option<Option<String>>>,
    /// This start's key for CallBridge's own pages.
    page_key: PageKey,
}

impl Security {
    pub fn new(config: &SecurityConfig, secrets: Arc<dyn SecretStore>, approver: Arc<dyn DialApprover>) -> Self {
        Security {
            token: TokenKeeper::new(secrets, &config.token_entry),
            rate: Mutex::new(DialRate::new(config.dials_per_minute)),
            approver,
            token_state: RwLock::new(None),
            page_key: PageKey::generate(),
        }
    }

    /// This start's key for CallBridge's own pages (see [`tiers::PageKey`]); never logged.
    pub fn page_key(&self) -> &PageKey {
        &self.page_key
    }

    /// Takes a new configuration: the rate limit (reset if it changed) and the token's keyring entry.
    pub fn reconfigure(&self, config: &SecurityConfig) {
        let mut rate = self.rate.lock().unwrap_or_else(PoisonError::into_inner);
        if rate.per_minute() != config.dials_per_minute {
            *rate = DialRate::new(config.dials_per_minute);
        }
        self.token.set_entry(&config.token_entry);
    }

    /// The listener token, created at first use. Blocks on the keyring (off the async threads).
    pub async fn token(&self) -> Result<crate::secrets::Secret, token::TokenError> {
        let result = self.token.token().await;
        self.note_token(result.as_ref().err().map(ToString::to_string));
        result
    }

    /// Replaces the listener token.
    pub async fn regenerate_token(&self) -> Result<crate::secrets::Secret, token::TokenError> {
        let result = self.token.regenerate().await;
        self.note_token(result.as_ref().err().map(ToString::to_string));
        result
    }

    /// Checks a token a request presented.
    pub async fn check_token(&self, presented: Option<&str>) -> TokenCheck {
        let Some(presented) = presented else { return TokenCheck::Absent };
        let check = self.token.check(presented).await;
        self.note_token(match &check {
            TokenCheck::Unusable(why) => Some(why.clone()),
            _ => None,
        });
        check
    }

    fn note_token(&self, problem: Option<String>) {
        *self.token_state.write().unwrap_or_else(PoisonError::into_inner) = Some(problem);
    }

    /// Whether dials from pages that are not trusted are put to a user (desktop) or refused (headless).
    pub fn asks_the_user(&self) -> bool {
        self.approver.asks_the_user()
    }

    /// Takes one dial from the rate limit.
    pub fn throttle(&self) -> Result<(), DialRefusal> {
        let mut rate = self.rate.lock().unwrap_or_else(PoisonError::into_inner);
        rate.take(tokio::time::Instant::now())
            .map_err(|wait| DialRefusal::Throttled { retry_after_secs: rate::retry_after_secs(wait) })
    }

    /// Asks the approver about a dial from an untrusted page. `Ok(Some(origin))` means "allowed, and
    /// trust this origin from now on".
    pub async fn approve(&self, number: &PhoneNumber, origin: Option<&str>, reason: &str, config_hint: &str) -> Result<Option<String>, DialRefusal> {
        let request = ApprovalRequest {
            origin: origin.map(str::to_owned),
            number: number.dial.clone(),
            input: number.input.clone(),
            reason: reason.to_owned(),
        };
        let how = match origin {
            Some(o) => format!(
                "to let this site dial, add \"{o}\" to trusted_origins in [security] of {config_hint}, or give it the listener token (`callbridge token show`)"
            ),
            None => "to let a page dial, give it the listener token (`callbridge token show`) or add its origin to trusted_origins in [security]".to_owned(),
        };
        if !self.approver.asks_the_user() {
            tracing::warn!(number = %number.dial, reason, "refused a dial from a web page that is not trusted");
            return Err(DialRefusal::Refused(format!("{reason}; this headless CallBridge has nobody to ask, so it does not dial; {how}")));
        }
        tracing::info!(number = %number.dial, reason, "asking the user whether to dial");
        match tokio::time::timeout(APPROVAL_TIMEOUT, self.approver.approve(&request)).await {
            Ok(Approval::Allow) => Ok(None),
            Ok(Approval::AllowAlways) => Ok(request.origin),
            Ok(Approval::Deny) => Err(DialRefusal::Refused(format!("{reason}, and the user chose not to dial; {how}"))),
            Err(_) => Err(DialRefusal::Refused(format!(
                "{reason}, and nobody answered the question within {} s; {how}",
                APPROVAL_TIMEOUT.as_secs()
            ))),
        }
    }

    pub fn summary(&self, config: &SecurityConfig) -> SecuritySummary {
        let state = self.token_state.read().unwrap_or_else(PoisonError::into_inner).clone();
        let (token, token_problem) = match state {
            None => ("unknown", None),
            Some(None) => ("ready", None),
            Some(Some(why)) => ("unavailable", Some(why)),
        };
        SecuritySummary {
            mode: config.mode,
            warning: (config.mode == Mode::Open).then_some(OPEN_MODE_WARNING),
            trusted_origins: config.trusted_origins.iter().map(|o| o.as_str().to_owned()).collect(),
            dials_per_minute: config.dials_per_minute,
            token,
            token_problem,
            asks_before_untrusted_dials: self.approver.asks_the_user(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(trusted: &[&str]) -> SecurityConfig {
        SecurityConfig {
            trusted_origins: trusted.iter().map(|o| TrustedOrigin::parse(o).expect("origin")).collect(),
            ..SecurityConfig::default()
        }
    }

    fn local<'a>() -> RequestFacts<'a> {
        RequestFacts { host: Some("localhost:5678"), peer_is_local: true, ..RequestFacts::default() }
    }

    fn untrusted(c: Result<Caller, Refusal>) -> String {
        match c {
            Ok(Caller::Untrusted { reason, .. }) => reason,
            other => panic!("expected an untrusted caller, got {other:?}"),
        }
    }

    #[test]
    fn programs_on_this_machine_and_the_address_bar_are_local_and_our_origin_is_same_origin() {
        let c = config(&[]);
        assert_eq!(classify(&local(), &c, true), Ok(Caller::Local));
        let typed = RequestFacts { sec_fetch_site: Some("none"), ..local() };
        assert_eq!(classify(&typed, &c, true), Ok(Caller::Local));
        let own_page = RequestFacts { origin: Some("http://localhost:5678"), sec_fetch_site: Some("same-origin"), ..local() };
        assert_eq!(classify(&own_page, &c, true), Ok(Caller::SameOrigin));
        let own_get = RequestFacts { sec_fetch_site: Some("same-origin"), referer: Some("http://localhost:5678/ui/"), ..local() };
        assert_eq!(classify(&own_get, &c, true), Ok(Caller::SameOrigin));
        let no_referrer = RequestFacts { sec_fetch_site: Some("same-origin"), ..local() };
        assert_eq!(classify(&no_referrer, &c, true), Ok(Caller::SameOrigin));
        // A local program that sends the token anyway is still a program on this machine.
        let curl_with_token = RequestFacts { token: TokenCheck::Valid, ..local() };
        assert_eq!(classify(&curl_with_token, &c, true), Ok(Caller::Local));
    }

    #[test]
    fn the_page_key_makes_our_own_page_but_only_from_our_origin_and_this_machine() {
        let c = config(&["https://crm.example.com"]);
        let keyed = RequestFacts { page_key: PageKeyCheck::Valid, ..local() };
        assert_eq!(classify(&keyed, &c, true), Ok(Caller::OwnPage));
        let keyed_post = RequestFacts { origin: Some("http://localhost:5678"), sec_fetch_site: Some("same-origin"), ..keyed.clone() };
        assert_eq!(classify(&keyed_post, &c, true), Ok(Caller::OwnPage));
        // A key that leaked to another page does not make that page ours.
        let elsewhere = RequestFacts { origin: Some("https://crm.example.com"), ..keyed.clone() };
        assert_eq!(classify(&elsewhere, &c, true), Ok(Caller::Trusted { origin: "https://crm.example.com".into() }));
        let referred = RequestFacts { referer: Some("https://evil.example/"), sec_fetch_site: Some("cross-site"), ..keyed.clone() };
        assert!(matches!(classify(&referred, &c, true), Ok(Caller::Untrusted { .. })));
        // Nor does it open the listener to other machines.
        let remote = RequestFacts { peer_is_local: false, ..keyed.clone() };
        assert!(matches!(classify(&remote, &c, false), Err(Refusal::TokenRequired(_))));
        let remote_token = RequestFacts { token: TokenCheck::Valid, ..remote };
        assert_eq!(classify(&remote_token, &c, false), Ok(Caller::Token));
        // A page from before a restart is told to reload.
        let stale = RequestFacts { page_key: PageKeyCheck::Invalid, ..local() };
        assert_eq!(classify(&stale, &c, true), Err(Refusal::StalePage));
    }

    #[test]
    fn cross_site_pages_are_untrusted_with_a_reason() {
        let c = config(&["https://crm.example.com"]);
        // What an <img src="http://localhost:5678/make/…"> on another site sends.
        let img = RequestFacts { sec_fetch_site: Some("cross-site"), ..local() };
        assert!(untrusted(classify(&img, &c, true)).contains("cross-site"));
        let same_site = RequestFacts { sec_fetch_site: Some("same-site"), origin: Some("http://localhost:3000"), ..local() };
        assert!(untrusted(classify(&same_site, &c, true)).contains("http://localhost:3000"));
        let evil = RequestFacts { origin: Some("https://evil.example"), sec_fetch_site: Some("cross-site"), ..local() };
        assert!(untrusted(classify(&evil, &c, true)).contains("https://evil.example"));
        let sandboxed = RequestFacts { origin: Some("null"), ..local() };
        assert!(untrusted(classify(&sandboxed, &c, true)).contains("opaque"));
        let old_browser = RequestFacts { referer: Some("https://evil.example/page"), ..local() };
        assert!(untrusted(classify(&old_browser, &c, true)).contains("https://evil.example"));
    }

    #[test]
    fn trusted_origins_pass_by_origin_or_referer() {
        let c = config(&["https://crm.example.com", "https://*.tenant.example"]);
        let fetch = RequestFacts { origin: Some("https://crm.example.com"), sec_fetch_site: Some("cross-site"), ..local() };
        assert_eq!(classify(&fetch, &c, true), Ok(Caller::Trusted { origin: "https://crm.example.com".into() }));
        let link = RequestFacts { sec_fetch_site: Some("cross-site"), referer: Some("https://acme.tenant.example/deal/1"), ..local() };
        assert_eq!(classify(&link, &c, true), Ok(Caller::Trusted { origin: "https://acme.tenant.example".into() }));
        // A trusted Referer does not vouch for a different Origin.
        let mixed = RequestFacts { origin: Some("https://evil.example"), referer: Some("https://crm.example.com/"), ..local() };
        assert!(matches!(classify(&mixed, &c, true), Ok(Caller::Untrusted { .. })));
    }

    #[test]
    fn foreign_hosts_are_refused_and_the_token_is_needed_from_elsewhere() {
        let c = config(&[]);
        let rebinding = RequestFacts { host: Some("evil.example:5678"), ..local() };
        assert_eq!(classify(&rebinding, &c, true), Err(Refusal::BadHost("evil.example:5678".into())));
        let no_host = RequestFacts { host: None, ..local() };
        assert!(matches!(classify(&no_host, &c, true), Err(Refusal::BadHost(_))));
        // Bound to the network: other machines (and other names) need the token.
        let lan = RequestFacts { host: Some("192.168.1.5:5678"), peer_is_local: false, ..RequestFacts::default() };
        assert!(matches!(classify(&lan, &c, false), Err(Refusal::TokenRequired(why)) if why.contains("another machine")));
        let lan_token = RequestFacts { token: TokenCheck::Valid, ..lan.clone() };
        assert_eq!(classify(&lan_token, &c, false), Ok(Caller::Token));
        let spoofed = RequestFacts { host: Some("localhost"), peer_is_local: false, ..RequestFacts::default() };
        assert!(matches!(classify(&spoofed, &c, false), Err(Refusal::TokenRequired(_))));
        assert_eq!(classify(&local(), &c, false), Ok(Caller::Local));
    }

    #[test]
    fn allowed_hosts_pass_with_the_token_only() {
        let c = SecurityConfig { allowed_hosts: vec!["hooks.example.com".into()], ..config(&[]) };
        let tunnel = RequestFacts { host: Some("Hooks.Example.com"), ..local() };
        assert!(matches!(classify(&tunnel, &c, true), Err(Refusal::TokenRequired(why)) if why.contains("Hooks.Example.com")));
        let with_token = RequestFacts { token: TokenCheck::Valid, ..tunnel };
        assert_eq!(classify(&with_token, &c, true), Ok(Caller::Token));
        let other = RequestFacts { host: Some("evil.example"), token: TokenCheck::Valid, ..local() };
        assert!(matches!(classify(&other, &c, true), Err(Refusal::BadHost(_))));
        assert!(c.allows_host("hooks.example.com:443") && !c.allows_host("hooks.example.com.evil.example"));
        for bad in ["https://hooks.example.com", "hooks.example.com/x", "localhost", ""] {
            let c = SecurityConfig { allowed_hosts: vec![bad.into()], ..SecurityConfig::default() };
            assert!(c.validate().is_err(), "{bad}");
        }
    }

    #[test]
    fn the_token_beats_origins_and_a_wrong_token_is_refused() {
        let c = config(&[]);
        let with_token = RequestFacts { origin: Some("https://evil.example"), token: TokenCheck::Valid, ..local() };
        assert_eq!(classify(&with_token, &c, true), Ok(Caller::Token));
        let wrong = RequestFacts { token: TokenCheck::Invalid, ..local() };
        assert_eq!(classify(&wrong, &c, true), Err(Refusal::BadToken));
        let unusable = RequestFacts { token: TokenCheck::Unusable("no keyring".into()), ..local() };
        assert_eq!(classify(&unusable, &c, true), Err(Refusal::TokenUnusable("no keyring".into())));
    }

    #[test]
    fn open_mode_lets_pages_through_but_not_foreign_hosts() {
        let c = SecurityConfig { mode: Mode::Open, ..config(&[]) };
        let evil = RequestFacts { origin: Some("https://evil.example"), ..local() };
        assert_eq!(classify(&evil, &c, true), Ok(Caller::Open { origin: Some("https://evil.example".into()) }));
        let rebinding = RequestFacts { host: Some("evil.example"), ..local() };
        assert!(matches!(classify(&rebinding, &c, true), Err(Refusal::BadHost(_))));
        let summary = Security::new(&c, Arc::new(crate::secrets::MemorySecrets::default()), Arc::new(approval::RefuseApprover)).summary(&c);
        assert_eq!(summary.warning, Some(OPEN_MODE_WARNING));
    }
}
