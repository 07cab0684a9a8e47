//! The `[provider.baresip]` section: where baresip's control socket is, how a number becomes a SIP
//! URI, and — when CallBridge runs baresip itself — the SIP account and audio devices.
//!
//! Values are checked as they are read (newtypes), so a bad value is reported with its line.

use std::net::SocketAddr;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::config::invalid::Invalid;
use crate::provider::forms::{self, Field, Input, ProviderForm};

/// The provider's name: its `kind` in the config file and in calls, logs and errors.
pub const NAME: &str = "baresip";

/// The keyring entry of the SIP password when `password_entry` is not set (the settings page sets
/// `password_entry` to it when a password is typed there).
pub const DEFAULT_PASSWORD_ENTRY: &str = "baresip";

/// Where baresip's `ctrl_tcp` module listens. Loopback only: the socket has no authentication, and
/// whoever reaches it can place calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct ControlAddr(SocketAddr);

impl ControlAddr {
    pub fn parse(s: &str) -> Result<ControlAddr, String> {
        let addr: SocketAddr = s
            .trim()
            .parse()
            .map_err(|_| format!("{s:?} is not an address such as \"127.0.0.1:4444\""))?;
        if !addr.ip().is_loopback() {
            return Err(format!(
                "{s:?} is not a loopback address; baresip's ctrl_tcp has no authentication, so it must listen on 127.0.0.1 or [::1]"
            ));
        }
        if addr.port() == 0 {
            return Err(format!("{s:?} has no port; use e.g. \"127.0.0.1:4444\""));
        }
        Ok(ControlAddr(addr))
    }

    pub fn addr(self) -> SocketAddr {
        self.0
    }
}

impl<'de> Deserialize<'de> for ControlAddr {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        ControlAddr::parse(&String::deserialize(d)?).map_err(serde::de::Error::custom)
    }
}

/// What baresip is asked to dial for a number: a template in which `$number` is replaced.
/// `"$number"` alone lets baresip complete it with the account's domain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct DialUri(String);

impl DialUri {
    pub const PLACEHOLDER: &'static str = "$number";

    pub fn parse(s: &str) -> Result<DialUri, String> {
        let s = s.trim();
        if !s.contains(Self::PLACEHOLDER) {
            return Err(format!("{s:?} does not contain $number, the place the dialed number goes (e.g. \"sip:$number@sip.example.com\")"));
        }
        if let Some(c) = s.chars().find(|c| c.is_whitespace() || c.is_control()) {
            return Err(format!("{s:?} contains {c:?}; a SIP URI has no spaces"));
        }
        Ok(DialUri(s.to_owned()))
    }

    /// The URI for `number`.
    pub fn render(&self, number: &str) -> String {
        self.0.replace(Self::PLACEHOLDER, number)
    }
}

impl Default for DialUri {
    fn default() -> Self {
        DialUri(Self::PLACEHOLDER.to_owned())
    }
}

impl<'de> Deserialize<'de> for DialUri {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        DialUri::parse(&String::deserialize(d)?).map_err(serde::de::Error::custom)
    }
}

/// A SIP address of record, `sip:alice@sip.example.com`, used when CallBridge runs baresip.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct SipAor(String);

impl SipAor {
    pub fn parse(s: &str) -> Result<SipAor, String> {
        let s = s.trim();
        let lower = s.to_ascii_lowercase();
        if !(lower.starts_with("sip:") || lower.starts_with("sips:")) {
            return Err(format!("{s:?} is not a SIP address; write it as \"sip:alice@sip.example.com\""));
        }
        if let Some(c) = s.chars().find(|c| c.is_whitespace() || matches!(c, '<' | '>' | ';' | '"')) {
            return Err(format!(
                "{s:?} contains {c:?}; give only the address (the password goes in the keyring, see password_entry)"
            ));
        }
        if !s.contains('@') {
            return Err(format!("{s:?} has no domain; write it as \"sip:alice@sip.example.com\""));
        }
        Ok(SipAor(s.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl<'de> Deserialize<'de> for SipAor {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        SipAor::parse(&String::deserialize(d)?).map_err(serde::de::Error::custom)
    }
}

/// The audio device baresip uses when CallBridge runs it, per platform.
fn default_audio() -> String {
    if cfg!(target_os = "macos") {
        "coreaudio,default".into()
    } else if cfg!(windows) {
        "winwave,default".into()
    } else {
        "alsa,default".into()
    }
}

fn default_module_path() -> Option<PathBuf> {
    cfg!(target_os = "linux").then(|| PathBuf::from("/usr/lib/baresip/modules"))
}

/// `[provider.baresip]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BaresipConfig {
    /// baresip's `ctrl_tcp_listen` address.
    pub control: ControlAddr,
    /// How a number becomes the URI baresip dials; `$number` is replaced.
    pub dial_uri: DialUri,
    /// `true`: CallBridge starts baresip with a generated configuration and restarts it if it exits.
    /// `false`: you run baresip yourself with `ctrl_tcp` and `menu` loaded.
    pub supervise: bool,
    /// The baresip program to run when supervising.
    pub program: PathBuf,
    /// The SIP account baresip uses when supervised.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub account: Option<SipAor>,
    /// The keyring entry holding the account's SIP password (the password itself is never in a file).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub password_entry: Option<String>,
    /// Register the account with its SIP server (`false` for a peer-to-peer or test setup).
    pub register: bool,
    /// Where baresip listens for SIP when supervised (`sip_listen`); baresip's default when absent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sip_listen: Option<SocketAddr>,
    /// baresip's module directory when supervised.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub module_path: Option<PathBuf>,
    /// `driver,device` for playback when supervised; empty for no audio device.
    pub audio_player: String,
    /// `driver,device` for the microphone when supervised; empty for no audio device.
    pub audio_source: String,
}

impl Default for BaresipConfig {
    fn default() -> Self {
        BaresipConfig {
            control: ControlAddr(SocketAddr::from(([127, 0, 0, 1], 4444))),
            dial_uri: DialUri::default(),
            supervise: false,
            program: PathBuf::from("baresip"),
            account: None,
            password_entry: None,
            register: true,
            sip_listen: None,
            module_path: default_module_path(),
            audio_player: default_audio(),
            audio_source: default_audio(),
        }
    }
}

impl BaresipConfig {
    /// Whether nothing was configured (the section is then left out of a saved file).
    pub fn is_default(&self) -> bool {
        *self == BaresipConfig::default()
    }

    /// Checks what the types alone cannot, when baresip is the active provider. On error: the
    /// message, and text to find its line by.
    pub fn check(&self) -> Result<(), Invalid> {
        let invalid = |key: &str, message: String| Invalid::new(format!("provider.baresip.{key}"), message).found_by(key);
        if self.supervise && self.account.is_none() {
            return Err(invalid(
                "account",
                "provider.baresip.account is required when supervise = true: the SIP address baresip uses, e.g. \"sip:alice@sip.example.com\"".into(),
            )
            .found_by("supervise"));
        }
        if self.password_entry.as_deref().is_some_and(|e| e.trim().is_empty()) {
            return Err(invalid("password_entry", "provider.baresip.password_entry cannot be empty; leave it out when the account has no password".into()));
        }
        for (key, value) in [("audio_player", &self.audio_player), ("audio_source", &self.audio_source)] {
            if !value.is_empty() && !value.contains(',') {
                return Err(invalid(
                    key,
                    format!("provider.baresip.{key} = {value:?} is not \"driver,device\" (e.g. \"alsa,default\"); use \"\" for no audio device"),
                ));
            }
            if value.contains(['\n', '\r']) {
                return Err(invalid(key, format!("provider.baresip.{key} must be on one line")));
            }
        }
        Ok(())
    }
}

/// The settings page's baresip form.
pub fn form(config: &BaresipConfig) -> ProviderForm {
    let password_entry = config.password_entry.as_deref().map(str::trim).filter(|e| !e.is_empty());
    ProviderForm {
        kind: NAME,
        label: "baresip softphone",
        description: "A SIP softphone on this computer, controlled over its ctrl_tcp socket on loopback. CallBridge can run it for you.",
        fields: vec![
            forms::text("control", "Control socket", true, "baresip's ctrl_tcp_listen address, on loopback.", "127.0.0.1:4444"),
            forms::text("dial_uri", "Dial URI", true, "How a number becomes a SIP URI; $number is replaced.", "sip:$number@sip.example.com"),
            Field { key: "supervise", label: "Run baresip for me", input: Input::Bool, required: false, help: "CallBridge starts baresip with a generated configuration and restarts it.", placeholder: "" },
            forms::text("account", "SIP account", false, "When CallBridge runs baresip: sip:alice@sip.example.com.", ""),
            forms::text("password_entry", "Password keyring entry", false, "The keyring entry holding the SIP password.", DEFAULT_PASSWORD_ENTRY),
            forms::secret(
                "sip_password",
                "SIP password",
                password_entry.unwrap_or(DEFAULT_PASSWORD_ENTRY),
                "password_entry",
                false,
                "The SIP account's password, kept in the OS keyring under the password keyring entry.",
            ),
        ],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_must_be_loopback_with_a_port() {
        assert!(ControlAddr::parse("127.0.0.1:4444").is_ok());
        assert!(ControlAddr::parse("[::1]:4444").is_ok());
        assert!(ControlAddr::parse("0.0.0.0:4444").expect_err("any").contains("loopback"));
        assert!(ControlAddr::parse("192.168.1.5:4444").expect_err("lan").contains("loopback"));
        assert!(ControlAddr::parse("127.0.0.1:0").expect_err("port").contains("port"));
        assert!(ControlAddr::parse("localhost").expect_err("name").contains("127.0.0.1:4444"));
    }

    #[test]
    fn dial_uri_needs_the_placeholder() {
        let uri = DialUri::parse("sip:$number@pbx.example.com").expect("valid");
        assert_eq!(uri.render("+442079460000"), "sip:+442079460000@pbx.example.com");
        assert_eq!(DialUri::default().render("101"), "101");
        assert!(DialUri::parse("sip:100@pbx").expect_err("no placeholder").contains("$number"));
        assert!(DialUri::parse("sip:$number @pbx").expect_err("space").contains("spaces"));
    }

    #[test]
    fn account_is_a_plain_sip_address() {
        assert!(SipAor::parse("sip:alice@sip.example.com").is_ok());
        assert!(SipAor::parse("alice@sip.example.com").expect_err("scheme").contains("sip:alice"));
        assert!(SipAor::parse("sip:alice@x;auth_pass=secret").expect_err("params").contains("keyring"));
        assert!(SipAor::parse("sip:alice").expect_err("domain").contains("domain"));
    }

    #[test]
    fn supervising_needs_an_account() {
        let mut c = BaresipConfig { supervise: true, ..BaresipConfig::default() };
        assert!(c.check().expect_err("no account").message.contains("account is required"));
        c.account = SipAor::parse("sip:a@b").ok();
        assert!(c.check().is_ok());
        c.audio_player = "alsa".into();
        assert!(c.check().expect_err("no device").message.contains("driver,device"));
        c.audio_player = String::new();
        assert!(c.check().is_ok(), "empty means no audio device");
    }

    fn load(text: &str) -> Result<crate::config::Config, String> {
        crate::config::Config::from_toml(text, std::path::Path::new("test.toml")).map_err(|e| e.to_string())
    }

    #[test]
    fn the_section_loads_round_trips_and_reports_bad_lines() {
        let text = "[provider]\nkind = \"baresip\"\n\n[provider.baresip]\nsupervise = true\naccount = \"sip:alice@sip.example.com\"\n\
                    password_entry = \"sip-alice\"\ndial_uri = \"sip:$number@sip.example.com\"\naudio_player = \"\"\n";
        let config = load(text).expect("loads");
        assert_eq!(config.provider.kind, crate::config::ProviderKind::Baresip);
        assert_eq!(config.provider.baresip.dial_uri.render("101"), "sip:101@sip.example.com");
        assert_eq!(load(&config.to_toml().expect("toml")).expect("reloads"), config);
        assert!(!crate::config::Config::default().to_toml().expect("toml").contains("baresip"), "an unused section is not written");

        let err = load("[provider.baresip]\ncontrol = \"0.0.0.0:4444\"\n").expect_err("not loopback");
        assert!(err.contains("line 2") && err.contains("loopback"), "{err}");
        let err = load("[provider]\nkind = \"baresip\"\n[provider.baresip]\nsupervise = true\n").expect_err("no account");
        assert!(err.contains("line 4") && err.contains("account is required"), "{err}");
        let err = load("[provider.baresip]\npasword_entry = \"x\"\n").expect_err("typo");
        assert!(err.contains("line 2") && err.contains("pasword_entry"), "{err}");
    }
}
