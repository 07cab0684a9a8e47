//! Who may do what: the listener's routes fall into tiers, and each kind of [`Caller`] may use some.
//!
//! Trusting a CRM to place calls must not mean trusting it with the phone system's credentials, so
//! there are two main tiers:
//!
//! * **call control** — place, answer and end calls, read the status, the call history and the call
//!   event stream: for programs on this machine, token holders, trusted origins, pages in open mode,
//!   and CallBridge's own pages;
//! * **administration** — the configuration, keyring secrets, notification tests, delivery retries,
//!   simulated calls, the phone-system forms, the listener and security summaries, the delivery log:
//!   only for CallBridge's own pages (which prove it with the per-start [page key](PageKey)) and
//!   programs on this machine that send no `Origin` (curl, the command line). Never for a web origin,
//!   trusted or not, and not in open mode.
//!
//! Besides these, a dial may be *asked for* by any page (the approver decides, see
//! [`super::approval`]); provider webhooks are for programs on this machine and token holders (a
//! tunnel), not for web pages; and the pages under `/ui/` — which carry the page key — are served only
//! to this machine's browser, never to another origin.
//!
//! Which route is in which tier is the listener's business (its path table); this module decides which
//! caller may use which tier.

use subtle::ConstantTimeEq;

/// Who sent a request, as far as the policy is concerned. The guard puts it into each request; what
/// each kind may do is [`Caller::may`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Caller {
    /// A program on this machine (no browser headers) or the browser's address bar.
    Local,
    /// CallBridge's own page, proven by the per-start page key: the desktop's windows, `/ui/` pages.
    OwnPage,
    /// A page at the listener's own origin that did not present the page key (one loaded before a
    /// restart, or a plain link to a command).
    SameOrigin,
    /// Anyone presenting the valid token (from another machine, or from a web page).
    Token,
    /// A page at a trusted origin.
    Trusted { origin: String },
    /// A page that is not trusted, let through because open mode is on.
    Open { origin: Option<String> },
    /// A page that is not trusted: it may only ask to dial.
    Untrusted { origin: Option<String>, reason: String },
}

impl Caller {
    /// The origin to answer with CORS headers, if this caller gets them.
    pub fn cors_origin(&self) -> Option<&str> {
        match self {
            Caller::Trusted { origin } | Caller::Open { origin: Some(origin) } => Some(origin),
            _ => None,
        }
    }
}

/// What a route lets its caller do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tier {
    /// Place a call. Pages that are not trusted may ask; the approver decides.
    Dial,
    /// Answer and end calls, read the status, the call history and the event stream.
    CallControl,
    /// Feed a provider's call events to CallBridge.
    Webhook,
    /// CallBridge's own pages (`/ui/`), which carry the page key.
    Pages,
    /// Configuration, secrets, notification tests, delivery retries, simulation and the like.
    Admin,
}

impl Tier {
    /// The tier's name in refusals and in docs/security.md's table.
    pub fn name(self) -> &'static str {
        match self {
            Tier::Dial => "dialing",
            Tier::CallControl => "call control",
            Tier::Webhook => "provider webhooks",
            Tier::Pages => "CallBridge's own pages",
            Tier::Admin => "administration",
        }
    }
}

impl Caller {
    /// Whether this caller may use a route of `tier`. For [`Tier::Dial`], an untrusted page "may" in
    /// the sense that its dial is put to the approver.
    pub fn may(&self, tier: Tier) -> bool {
        match self {
            Caller::Local | Caller::OwnPage => true,
            Caller::SameOrigin => matches!(tier, Tier::Dial | Tier::CallControl | Tier::Pages),
            Caller::Token => matches!(tier, Tier::Dial | Tier::CallControl | Tier::Webhook),
            Caller::Trusted { .. } | Caller::Open { .. } => matches!(tier, Tier::Dial | Tier::CallControl),
            Caller::Untrusted { .. } => tier == Tier::Dial,
        }
    }

    /// Who this caller is, for a refusal.
    pub fn describe(&self) -> String {
        match self {
            Caller::Local => "a program on this machine".to_owned(),
            Caller::OwnPage => "CallBridge's own page".to_owned(),
            Caller::SameOrigin => "a page from this listener that did not present the page key (reload it)".to_owned(),
            Caller::Token => "a holder of the listener token".to_owned(),
            Caller::Trusted { origin } => format!("the trusted web page {origin}"),
            Caller::Open { origin: Some(origin) } => format!("the web page {origin}, let through by open mode"),
            Caller::Open { origin: None } => "a web page let through by open mode".to_owned(),
            Caller::Untrusted { reason, .. } => reason.clone(),
        }
    }
}

/// The name of the request header CallBridge's own pages send the page key in.
pub const PAGE_KEY_HEADER: &str = "x-callbridge-page";

/// The per-start secret that CallBridge's own pages present to reach administration: the desktop
/// app's windows through IPC, and in a browser the pages under `/ui/`, which get it in their HTML (a
/// page at another origin cannot read that HTML, and it is never served with CORS headers). A new key
/// is made at every start, so it is worth nothing once the process ends.
#[derive(Clone)]
pub struct PageKey(Option<String>);

impl std::fmt::Debug for PageKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_some() { "PageKey(…)" } else { "PageKey(none)" })
    }
}

/// What checking a presented page key found.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum PageKeyCheck {
    /// None was presented.
    #[default]
    Absent,
    Valid,
    /// One was presented and it is not this process's: a page from before a restart.
    Invalid,
}

impl PageKey {
    /// A fresh key: 32 random bytes as hex. Without a random number generator there is none, and only
    /// programs on this machine can administer CallBridge.
    pub fn generate() -> PageKey {
        let mut bytes = [0u8; 32];
        match getrandom::fill(&mut bytes) {
            Ok(()) => PageKey(Some(bytes.iter().map(|b| format!("{b:02x}")).collect())),
            Err(e) => {
                tracing::error!(error = %e, "the OS random number generator failed; CallBridge's pages cannot reach administration");
                PageKey(None)
            }
        }
    }

    /// The key, to hand to CallBridge's own pages.
    pub fn expose(&self) -> Option<&str> {
        self.0.as_deref()
    }

    /// Checks a presented key, in time that does not depend on where it differs.
    pub fn check(&self, presented: Option<&str>) -> PageKeyCheck {
        let Some(presented) = presented else { return PageKeyCheck::Absent };
        match &self.0 {
            Some(key) if bool::from(key.as_bytes().ct_eq(presented.trim().as_bytes())) => PageKeyCheck::Valid,
            _ => PageKeyCheck::Invalid,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn web_origins_never_administer() {
        let trusted = Caller::Trusted { origin: "https://crm.example".into() };
        let open = Caller::Open { origin: Some("https://any.example".into()) };
        for caller in [&trusted, &open, &Caller::Token, &Caller::SameOrigin] {
            assert!(!caller.may(Tier::Admin), "{caller:?}");
            assert!(caller.may(Tier::CallControl) && caller.may(Tier::Dial), "{caller:?}");
        }
        assert!(Caller::Local.may(Tier::Admin) && Caller::OwnPage.may(Tier::Admin));
        let untrusted = Caller::Untrusted { origin: None, reason: "r".into() };
        assert!(untrusted.may(Tier::Dial) && !untrusted.may(Tier::CallControl) && !untrusted.may(Tier::Pages));
        // Webhooks come from programs and tunnels (with the token), never from a web page.
        assert!(Caller::Token.may(Tier::Webhook) && !trusted.may(Tier::Webhook) && !open.may(Tier::Webhook));
        // The pages carry the page key: only this machine's browser gets them.
        assert!(Caller::SameOrigin.may(Tier::Pages) && !trusted.may(Tier::Pages) && !Caller::Token.may(Tier::Pages));
    }

    #[test]
    fn page_keys_are_random_and_checked_exactly() {
        let key = PageKey::generate();
        let text = key.expose().expect("a key").to_owned();
        assert_eq!(text.len(), 64);
        assert_ne!(PageKey::generate().expose(), Some(text.as_str()), "a new key at every start");
        assert_eq!(key.check(Some(&text)), PageKeyCheck::Valid);
        assert_eq!(key.check(Some(&text[..63])), PageKeyCheck::Invalid);
        assert_eq!(key.check(Some("")), PageKeyCheck::Invalid);
        assert_eq!(key.check(None), PageKeyCheck::Absent);
        assert_eq!(PageKey(None).check(Some("")), PageKeyCheck::Invalid);
        assert!(!format!("{key:?}").contains(&text), "the key stays out of logs");
    }
}
