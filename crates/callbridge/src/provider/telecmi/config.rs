//! The `[provider.telecmi]` section of the config file.
//!
//! It holds everything needed to reach TeleCMI except the secrets: the app secret and the user's
//! password live in the OS keyring, and this section only names their entries (`secret_entry`,
//! `password_entry`), which `callbridge secret set NAME` fills in.

use serde::{Deserialize, Serialize};

use crate::config::invalid::Invalid;
use crate::config::limits::Limit;
use crate::provider::forms::{self, Field, Input, ProviderForm};

/// The provider's name: its `kind` in the config file and in calls, logs and errors.
pub const NAME: &str = "telecmi";

/// The public TeleCMI REST endpoint (https://doc.telecmi.com/chub/docs/click-to-call-admin).
pub const DEFAULT_BASE_URL: &str = "https://rest.telecmi.com";

/// Keyring entry of the app secret unless the config names another.
pub const DEFAULT_SECRET_ENTRY: &str = "telecmi";

/// Keyring entry of the user's password unless the config names another.
pub const DEFAULT_PASSWORD_ENTRY: &str = "telecmi-password";

/// The bounds of `[provider.telecmi]`'s numbers.
pub const CONNECT_TIMEOUT: Limit =
    Limit::new("provider.telecmi.connect_timeout_secs", 1, 300, " (5 minutes)").at_most("provider.telecmi.timeout_secs");
pub const TIMEOUT: Limit = Limit::new("provider.telecmi.timeout_secs", 1, 300, " (5 minutes)");
pub const HANGUP_SETTLE: Limit = Limit::new("provider.telecmi.hangup_settle_ms", 0, 30_000, " (30 s)");
pub const LIMITS: &[Limit] = &[CONNECT_TIMEOUT, TIMEOUT, HANGUP_SETTLE];

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TelecmiConfig {
    /// Where TeleCMI's REST API is; tests point this at a fake.
    pub base_url: String,
    /// The TeleCMI user whose device rings first, written `"<extension>_<appid>"` (e.g. `101_1111112`).
    pub user_id: String,
    /// Which of the user's devices rings first: the WebRTC softphone or the mobile (follow-me).
    pub ring: Ring,
    /// The caller id the far end sees (digits with country code); TeleCMI's default when absent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub callerid: Option<CallerId>,
    /// The documented POST form (JSON body), or the GET form (query string).
    pub method: RequestMethod,
    /// Seconds to wait for a TCP (and TLS) connection to TeleCMI.
    pub connect_timeout_secs: u64,
    /// Seconds one request to TeleCMI may take in all.
    pub timeout_secs: u64,
    /// The keyring entry that holds the app secret.
    pub secret_entry: String,
    /// The user's TeleCMI login id (often the same as `user_id`). With it (and the password in the
    /// keyring) `/end` hangs up through `/v2/c2c/hangup`; without it, hanging up is left to the device.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub login_id: Option<String>,
    /// The keyring entry that holds the user's password, used only when `login_id` is set.
    pub password_entry: String,
    /// Milliseconds a live `hangup` of a call not yet answered is held back, in case the `answered`
    /// it overtook or the call's CDR arrives after it (see `provider::telecmi::settle`); 0 = never.
    pub hangup_settle_ms: u64,
}

impl TelecmiConfig {
    /// The longest hold of a hangup: 30 s.
    pub const MAX_HANGUP_SETTLE_MS: u64 = HANGUP_SETTLE.max;
}

impl Default for TelecmiConfig {
    fn default() -> Self {
        TelecmiConfig {
            base_url: DEFAULT_BASE_URL.into(),
            user_id: String::new(),
            ring: Ring::Softphone,
            callerid: None,
            method: RequestMethod::Post,
            connect_timeout_secs: 5,
            timeout_secs: 15,
            secret_entry: DEFAULT_SECRET_ENTRY.into(),
            login_id: None,
            password_entry: DEFAULT_PASSWORD_ENTRY.into(),
            hangup_settle_ms: 2_000,
        }
    }
}

impl TelecmiConfig {
    /// True when the section says nothing the defaults do not (it is then left out of a saved file).
    pub fn is_default(&self) -> bool {
        *self == TelecmiConfig::default()
    }

    /// The keyring entries read: the app secret's, and the password's when a login is configured.
    pub fn secret_entries(&self) -> Vec<String> {
        let mut entries = vec![self.secret_entry.clone()];
        if self.login().is_some() {
            entries.push(self.password_entry.clone());
        }
        entries
    }

    /// The login id, when hanging up through TeleCMI is configured.
    pub fn login(&self) -> Option<&str> {
        self.login_id.as_deref().map(str::trim).filter(|l| !l.is_empty())
    }

    /// Checks what the types alone cannot; the error names the setting.
    pub fn validate(&self) -> Result<(), Invalid> {
        let key = |k: &str, message: String| Invalid::new(format!("provider.telecmi.{k}"), message).found_by(k);
        match url::Url::parse(&self.base_url) {
            Ok(u) if matches!(u.scheme(), "http" | "https") && u.host().is_some() => {}
            _ => {
                return Err(key(
                    "base_url",
                    format!("provider.telecmi.base_url {:?} is not an http(s) URL such as {DEFAULT_BASE_URL}", self.base_url),
                ))
            }
        }
        if self.user_id.chars().any(char::is_whitespace) {
            return Err(key("user_id", format!("provider.telecmi.user_id {:?} contains spaces", self.user_id)));
        }
        TIMEOUT.check(self.timeout_secs)?;
        CONNECT_TIMEOUT.check_up_to(self.connect_timeout_secs, self.timeout_secs)?;
        HANGUP_SETTLE.check(self.hangup_settle_ms)?;
        for (name, entry) in [("secret_entry", &self.secret_entry), ("password_entry", &self.password_entry)] {
            if entry.trim().is_empty() {
                return Err(key(name, format!("provider.telecmi.{name} cannot be empty: it names a keyring entry")));
            }
        }
        Ok(())
    }
}

/// Which of the user's devices TeleCMI rings first (click2call's `webrtc`/`followme` pair).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Ring {
    /// The WebRTC softphone: `webrtc: true, followme: false`.
    #[default]
    Softphone,
    /// The user's mobile: `webrtc: false, followme: true` (the seed requires webrtc off with followme).
    Mobile,
}

impl Ring {
    /// `(webrtc, followme)` as click2call takes them.
    pub fn flags(self) -> (bool, bool) {
        match self {
            Ring::Softphone => (true, false),
            Ring::Mobile => (false, true),
        }
    }
}

/// How click2call is sent.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RequestMethod {
    /// `POST` with a JSON body (the documented sample request).
    #[default]
    #[serde(alias = "POST")]
    Post,
    /// `GET` with the fields in the query string (the documented alternative).
    #[serde(alias = "GET")]
    Get,
}

/// A caller id: digits with country code, sent to TeleCMI as a JSON number. Written in the file as a
/// string (`"919800000000"`, `"+91 98000 00000"`) or a bare integer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CallerId(u64);

impl CallerId {
    pub fn parse(text: &str) -> Result<CallerId, String> {
        let digits: String = text.trim().trim_start_matches('+').chars().filter(|c| !matches!(c, ' ' | '-')).collect();
        if digits.is_empty() || digits.len() > 15 || !digits.chars().all(|c| c.is_ascii_digit()) {
            return Err(format!("callerid {text:?} is not a phone number: use digits with the country code, e.g. \"919800000000\""));
        }
        digits.parse().map(CallerId).map_err(|_| format!("callerid {text:?} is too long"))
    }

    pub fn value(self) -> u64 {
        self.0
    }
}

impl Serialize for CallerId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0.to_string())
    }
}

impl<'de> Deserialize<'de> for CallerId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Text(String),
            Number(u64),
        }
        match Raw::deserialize(d)? {
            Raw::Text(t) => CallerId::parse(&t).map_err(serde::de::Error::custom),
            Raw::Number(n) => CallerId::parse(&n.to_string()).map_err(serde::de::Error::custom),
        }
    }
}

/// The settings page's TeleCMI form.
pub fn form(config: &TelecmiConfig) -> ProviderForm {
    let telecmi = config;
    ProviderForm {
        kind: NAME,
        label: "TeleCMI click-to-call",
        description: "TeleCMI rings your softphone or mobile first, then the number. You answer and hang up on that device; \
                      with your TeleCMI login, /end hangs up too.",
        fields: vec![
            forms::text("user_id", "User id", true, "Your TeleCMI user id, written extension_appid.", "101_1111112"),
            forms::secret("app_secret", "App secret", &telecmi.secret_entry, "secret_entry", true, "From the TeleCMI dashboard; kept in the OS keyring."),
            forms::choice("ring", "Ring first", &["softphone", "mobile"], "Your WebRTC softphone, or your mobile (follow-me)."),
            forms::text("callerid", "Caller id", false, "Digits with country code the far end sees; TeleCMI's default when empty.", "919800000000"),
            forms::text("login_id", "Login id (for hang-up)", false, "With your login and password, /end hangs up through TeleCMI.", ""),
            forms::secret("password", "Login password", &telecmi.password_entry, "password_entry", false, "Kept in the OS keyring."),
            Field { key: "base_url", label: "API address", input: Input::Url, required: true, help: "TeleCMI's REST API.", placeholder: "" },
            forms::choice("method", "Request form", &["post", "get"], "The documented JSON POST, or the GET form."),
            forms::number(CONNECT_TIMEOUT, "Connect timeout (s)", "How long to wait for a connection to TeleCMI; at most the request timeout."),
            forms::number(TIMEOUT, "Request timeout (s)", "How long one request to TeleCMI may take."),
        ],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ring_choice_gives_the_seed_flags() {
        assert_eq!(Ring::Softphone.flags(), (true, false));
        // TeleCMI's click2call documentation: "The WebRTC value should be set to false when the followme value set to true."
        assert_eq!(Ring::Mobile.flags(), (false, true));
    }

    #[test]
    fn caller_ids_are_digits() {
        assert_eq!(CallerId::parse("+91 98000-00000").map(CallerId::value), Ok(919800000000));
        assert!(CallerId::parse("abc").is_err());
        assert!(CallerId::parse("").is_err());
        let from_int: TelecmiConfig = toml::from_str("callerid = 919800000000").expect("integer");
        let from_str: TelecmiConfig = toml::from_str("callerid = \"919800000000\"").expect("string");
        assert_eq!(from_int.callerid, from_str.callerid);
    }

    #[test]
    fn the_section_loads_round_trips_and_holds_no_secret() {
        use crate::config::{Config, ProviderKind};
        let text = r#"
[provider]
kind = "telecmi"

[provider.telecmi]
user_id = "101_1111112"
ring = "mobile"
callerid = "+91 98000 00000"
method = "get"
timeout_secs = 20
login_id = "101_1111112"
"#;
        let config = Config::from_toml(text, std::path::Path::new("t.toml")).expect("loads");
        assert_eq!(config.provider.kind, ProviderKind::Telecmi);
        let t = &config.provider.telecmi;
        assert_eq!((t.ring, t.method, t.timeout_secs, t.connect_timeout_secs), (Ring::Mobile, RequestMethod::Get, 20, 5));
        assert_eq!(t.callerid.map(CallerId::value), Some(919800000000));
        assert_eq!((t.secret_entry.as_str(), t.login()), (DEFAULT_SECRET_ENTRY, Some("101_1111112")));
        let saved = config.to_toml().expect("toml");
        assert_eq!(Config::from_toml(&saved, std::path::Path::new("t.toml")).expect("reloads"), config);
        assert!(!Config::default().to_toml().expect("toml").contains("telecmi"), "an unused section is not written");

        // A secret has no place in the file: the key does not exist.
        let err = Config::from_toml("[provider.telecmi]\nsecret = \"x\"\n", std::path::Path::new("t.toml")).expect_err("no secret key");
        assert!(err.to_string().contains("line 2") && err.to_string().contains("secret"), "{err}");
        let err = Config::from_toml("[provider.telecmi]\nuser_id = \"1\"\nbase_url = \"ftp://x\"\n", std::path::Path::new("t.toml"))
            .expect_err("bad url");
        assert!(err.to_string().contains("line 3") && err.to_string().contains("base_url"), "{err}");
    }

    #[test]
    fn validation_names_the_key() {
        let bad = TelecmiConfig { base_url: "rest.telecmi.com".into(), ..TelecmiConfig::default() };
        assert_eq!(bad.validate().map_err(|e| e.field), Err("provider.telecmi.base_url".into()));
        let bad = TelecmiConfig { connect_timeout_secs: 20, timeout_secs: 10, ..TelecmiConfig::default() };
        let err = bad.validate().expect_err("connect above the request timeout");
        assert_eq!(err.field, "provider.telecmi.connect_timeout_secs");
        assert!(err.message.contains("between 1 and 10 (provider.telecmi.timeout_secs)"), "{}", err.message);
        let bad = TelecmiConfig { hangup_settle_ms: 30_001, ..TelecmiConfig::default() };
        let err = bad.validate().expect_err("settle too long");
        assert_eq!(err.field, "provider.telecmi.hangup_settle_ms");
        assert!(err.message.contains("between 0 and 30000"), "{}", err.message);
        assert!(TelecmiConfig::default().validate().is_ok());
    }
}
