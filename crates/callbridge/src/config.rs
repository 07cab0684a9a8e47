//! The configuration file: one TOML file in the platform's config directory.
//!
//! It is validated as it is read — unknown keys, bad values, placeholders that do not exist — and every
//! error names the key and the line, so an admin can fix the file by hand. A file that does not load is
//! never overwritten: CallBridge refuses to start on it rather than replace the user's work with
//! defaults. Writes (from the settings page) go to a temporary file in the same directory that is then
//! renamed over the old one, so a crash never leaves half a file; the previous version is kept beside
//! it as `callbridge.toml.bak`.
//!
//! Secrets never live here: provider sections name a keyring entry instead (see `secrets`).

use std::collections::BTreeMap;
use std::io::Write;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::call::{CallEventKind, Direction};
use crate::notify::template::UrlTemplate;
use crate::number::Country;
use crate::security::SecurityConfig;
use crate::store::StoreConfig;
pub use crate::provider::registry::{ProviderConfig, ProviderKind};
pub use crate::provider::simulator::SimulatorConfig;

pub mod invalid;
pub mod limits;
pub mod notification;
pub use invalid::Invalid;
pub use limits::{Limit, CONFIG_VERSION};
pub use notification::{DeliveryConfig, Method, NotificationRule};

/// The file name inside the platform's config directory.
pub const FILE_NAME: &str = "callbridge.toml";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// File format version; files from a newer CallBridge are refused rather than misread.
    pub version: u32,
    pub listener: ListenerConfig,
    pub dialing: DialingConfig,
    pub delivery: DeliveryConfig,
    pub provider: ProviderConfig,
    /// Who may make CallBridge dial, and which numbers (see `security`).
    pub security: SecurityConfig,
    /// The SQLite store: where, and how long history is kept (see `store`).
    pub store: StoreConfig,
    /// `[desktop]`: the tray app's own settings; the headless binary ignores them.
    pub desktop: DesktopConfig,
    /// `[lookup]`: the CRM asked who is calling (see `lookup`); off until its `url` is set.
    pub lookup: crate::lookup::LookupConfig,
    /// `[[notification]]` tables: what to call when a call rings, is answered or ends.
    #[serde(rename = "notification", skip_serializing_if = "Vec::is_empty")]
    pub notifications: Vec<NotificationRule>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            version: CONFIG_VERSION,
            listener: ListenerConfig::default(),
            dialing: DialingConfig::default(),
            delivery: DeliveryConfig::default(),
            provider: ProviderConfig::default(),
            security: SecurityConfig::default(),
            store: StoreConfig::default(),
            desktop: DesktopConfig::default(),
            lookup: crate::lookup::LookupConfig::default(),
            notifications: Vec::new(),
        }
    }
}

/// The local HTTP listener that takes URL commands (Enreach Contact's "Accept URL Commands", https://help.enreach.com/desktop/1.00/web/Enreach/en-US/help/chap_settings.4.18.html).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ListenerConfig {
    /// "Listen Port".
    pub port: u16,
    /// Loopback by default: a listener that dials numbers must not face the network.
    pub bind: IpAddr,
    /// "Make Call" segment: `http://localhost:5678/{make}/020123456`.
    pub make: Segment,
    /// "Answer Call" segment: `http://localhost:5678/{answer}`.
    pub answer: Segment,
    /// "End Call" segment: `http://localhost:5678/{end}`.
    pub end: Segment,
}

impl Default for ListenerConfig {
    fn default() -> Self {
        ListenerConfig {
            port: 5678,
            bind: IpAddr::from([127, 0, 0, 1]),
            make: Segment("make".into()),
            answer: Segment("answer".into()),
            end: Segment("end".into()),
        }
    }
}

impl ListenerConfig {
    /// The URL a CRM on this machine uses to reach the listener.
    pub fn base_url(&self) -> String {
        let host = if self.bind.is_unspecified() || self.bind.is_loopback() {
            "localhost".to_owned()
        } else if self.bind.is_ipv6() {
            format!("[{}]", self.bind)
        } else {
            self.bind.to_string()
        };
        format!("http://{host}:{}", self.port)
    }
}

/// One path segment of a URL command: letters, digits, `-` and `_`, not a reserved word.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct Segment(String);

impl Segment {
    /// Paths CallBridge itself serves, which a command segment must not shadow.
    pub const RESERVED: [&'static str; 5] = ["api", "health", "webhooks", "ui", "assets"];
    /// The longest segment, in characters.
    pub const MAX_LEN: usize = 64;

    pub fn parse(s: &str) -> Result<Segment, String> {
        let s = s.trim().trim_matches('/');
        if s.is_empty() {
            return Err("a command segment cannot be empty".into());
        }
        if s.len() > Self::MAX_LEN {
            return Err(format!("the command segment {s:?} is longer than {} characters", Self::MAX_LEN));
        }
        if let Some(c) = s.chars().find(|c| !(c.is_ascii_alphanumeric() || *c == '-' || *c == '_')) {
            return Err(format!(
                "the command segment {s:?} contains {c:?}; use letters, digits, '-' and '_' only"
            ));
        }
        if Self::RESERVED.contains(&s.to_ascii_lowercase().as_str()) {
            return Err(format!("the command segment {s:?} is reserved for CallBridge's own paths"));
        }
        Ok(Segment(s.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl<'de> Deserialize<'de> for Segment {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Segment::parse(&String::deserialize(d)?).map_err(serde::de::Error::custom)
    }
}

impl std::fmt::Display for Segment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DialingConfig {
    /// Country used to read national numbers (`020 7946 0000` in `GB` is `+442079460000`). Without it,
    /// numbers without a `+` or `00` are dialed as given.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub default_country: Option<Country>,
}

/// `[desktop]`: what the tray app shows and how it is reached. The headless binary ignores it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DesktopConfig {
    /// Show the incoming-call popup (with Answer, Decline and Open in CRM).
    pub popups: bool,
    /// Show a native desktop notification for incoming calls.
    pub notifications: bool,
    /// Do not disturb: no popups and no desktop notifications. Calls still reach the phone system and
    /// the CRM is still notified.
    pub do_not_disturb: bool,
    /// "Open in CRM": the page to open for a caller, e.g. `https://crm.example/search?phone=$callerid`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub crm_url: Option<UrlTemplate>,
    /// Global shortcut that opens the dial popup (`CommandOrControl+Alt+C`); empty for none.
    pub dial_shortcut: String,
    /// Open the caller's CRM page by itself when an incoming call rings or is answered.
    pub open_crm_on: OpenCrmOn,
}

/// When the tray app opens the CRM page of an incoming call by itself (as "Open in CRM" would).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OpenCrmOn {
    #[default]
    Never,
    /// When it rings (once the caller lookup has answered, so the caller's own record opens).
    Incoming,
    /// When it is answered.
    Answered,
}

impl DesktopConfig {
    /// Whether `event` opens the call's CRM page by itself: incoming calls only, never in Do not disturb.
    pub fn opens_crm_on(&self, event: CallEventKind, direction: Direction) -> bool {
        let wanted = match self.open_crm_on {
            OpenCrmOn::Never => return false,
            OpenCrmOn::Incoming => CallEventKind::Incoming,
            OpenCrmOn::Answered => CallEventKind::Answered,
        };
        !self.do_not_disturb && direction == Direction::In && event == wanted
    }
}

impl Default for DesktopConfig {
    fn default() -> Self {
        DesktopConfig {
            popups: true,
            notifications: true,
            do_not_disturb: false,
            crm_url: None,
            dial_shortcut: "CommandOrControl+Alt+C".into(),
            open_crm_on: OpenCrmOn::Never,
        }
    }
}

/// Why a configuration could not be loaded or saved.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read the config file {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("the config file {path} is not valid{}: {message}", line.map(|l| format!(" (line {l})")).unwrap_or_default())]
    Invalid { path: PathBuf, line: Option<usize>, message: String },
    #[error("cannot write the config file {path}: {source}")]
    Write { path: PathBuf, source: std::io::Error },
    #[error("no config directory is known for this user; pass --config PATH")]
    NoConfigDir,
    #[error("the configuration cannot be written as TOML: {message}")]
    Unwritable { message: String },
}

impl Config {
    /// The platform's config file: `~/.config/callbridge/callbridge.toml` on Linux,
    /// `~/Library/Application Support/dev.callbridge.CallBridge/` on macOS,
    /// `%APPDATA%\callbridge\CallBridge\config\callbridge.toml` on Windows.
    pub fn default_path() -> Result<PathBuf, ConfigError> {
        directories::ProjectDirs::from("dev", "callbridge", "CallBridge")
            .map(|dirs| dirs.config_dir().join(FILE_NAME))
            .ok_or(ConfigError::NoConfigDir)
    }

    /// Loads `path`; a missing file means the defaults (the simulator, no notifications).
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        match std::fs::read_to_string(path) {
            Ok(text) => Config::from_toml(&text, path),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Config::default()),
            Err(source) => Err(ConfigError::Read { path: path.to_owned(), source }),
        }
    }

    /// Parses and validates TOML text; `path` only names the file in errors.
    pub fn from_toml(text: &str, path: &Path) -> Result<Config, ConfigError> {
        let mut config: Config = toml::from_str(text).map_err(|e| ConfigError::Invalid {
            path: path.to_owned(),
            line: e.span().map(|span| line_of(text, span.start)),
            message: e.message().trim().to_owned(),
        })?;
        config.assign_rule_ids();
        config.validate().map_err(|e| ConfigError::Invalid {
            path: path.to_owned(),
            line: e.needle().and_then(|n| line_of_needle(text, n)),
            message: e.message,
        })?;
        Ok(config)
    }

    /// A short fingerprint of this configuration's content: it changes whenever a setting does, so a
    /// writer can tell that the configuration it edited is still the one in force.
    pub fn revision(&self) -> String {
        use md5::{Digest, Md5};
        let bytes = serde_json::to_vec(self).unwrap_or_else(|_| format!("{self:?}").into_bytes());
        Md5::digest(&bytes).iter().take(8).map(|b| format!("{b:02x}")).collect()
    }

    /// Gives rules without an id one, as loading a file does (for configs that arrive as JSON).
    pub fn assign_missing_rule_ids(&mut self) {
        self.assign_rule_ids();
    }

    /// Gives rules without an id the id `{event}-{n}`, n counting rules of that event from 1.
    fn assign_rule_ids(&mut self) {
        let mut counts: BTreeMap<CallEventKind, usize> = BTreeMap::new();
        for rule in &mut self.notifications {
            let n = counts.entry(rule.event).or_default();
            *n += 1;
            if rule.id.trim().is_empty() {
                rule.id = format!("{}-{}", rule.event, n);
            }
        }
    }

    /// Checks what the types alone cannot. The error names the setting it is about.
    pub fn validate(&self) -> Result<(), Invalid> {
        if self.version > CONFIG_VERSION {
            return Err(Invalid::new(
                "version",
                format!("version = {} was written by a newer CallBridge; this one reads version {CONFIG_VERSION}", self.version),
            ));
        }
        let l = &self.listener;
        limits::LISTENER_PORT.check(u64::from(l.port))?;
        let segments = [("make", &l.make), ("answer", &l.answer), ("end", &l.end)];
        for (i, (a, sa)) in segments.iter().enumerate() {
            for (b, sb) in &segments[i + 1..] {
                if sa.as_str().eq_ignore_ascii_case(sb.as_str()) {
                    return Err(Invalid::new(
                        format!("listener.{b}"),
                        format!("listener.{a} and listener.{b} are both {:?}; each command needs its own segment", sa.as_str()),
                    )
                    .found_by(format!("{b} =")));
                }
            }
        }
        let d = &self.delivery;
        limits::DELIVERY_TIMEOUT.check(d.timeout_secs)?;
        limits::DELIVERY_RETRY_INITIAL.check(d.retry_initial_ms)?;
        limits::DELIVERY_RETRY_MAX.check(d.retry_max_delay_secs)?;
        limits::DELIVERY_MAX_AGE.check(u64::from(d.max_age_hours))?;
        self.provider.validate()?;
        self.security.validate()?;
        self.store.validate()?;
        self.lookup.validate()?;
        let mut seen = std::collections::BTreeSet::new();
        for (i, rule) in self.notifications.iter().enumerate() {
            let field = |key: &str| format!("notification[{i}].{key}");
            if !seen.insert(rule.id.as_str()) {
                return Err(Invalid::new(field("id"), format!("two notification rules have the id {:?}; ids must be unique", rule.id))
                    .found_by(format!("\"{}\"", rule.id)));
            }
            if rule.method == Method::Get && rule.body.is_some() {
                return Err(Invalid::new(
                    field("body"),
                    format!("notification {:?} has a body but method GET; use method = \"POST\" to send a body", rule.id),
                )
                .found_by("body"));
            }
            for name in rule.headers.keys() {
                if reqwest::header::HeaderName::from_bytes(name.as_bytes()).is_err() {
                    return Err(Invalid::new(
                        field("headers"),
                        format!("notification {:?} has the header name {name:?}, which is not a valid HTTP header name", rule.id),
                    )
                    .found_by(name.clone()));
                }
            }
        }
        Ok(())
    }

    /// The file as TOML text. Fails only for a configuration that [`Self::validate`] refuses (TOML
    /// integers stop at 2^63 - 1, for one), so validate first.
    pub fn to_toml(&self) -> Result<String, ConfigError> {
        toml::to_string_pretty(self)
            .map_err(|e| ConfigError::Unwritable { message: e.to_string() })
    }

    /// Writes the config atomically to `path`, keeping the previous file as `.bak`.
    pub fn save(&self, path: &Path) -> Result<(), ConfigError> {
        let write_err = |source| ConfigError::Write { path: path.to_owned(), source };
        if let Err(e) = self.validate() {
            return Err(ConfigError::Invalid { path: path.to_owned(), line: None, message: e.message });
        }
        let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
        std::fs::create_dir_all(dir).map_err(write_err)?;
        let mut tmp = tempfile::NamedTempFile::new_in(dir).map_err(write_err)?;
        tmp.write_all(HEADER.as_bytes()).map_err(write_err)?;
        let text = self.to_toml()?;
        tmp.write_all(text.as_bytes()).map_err(write_err)?;
        tmp.as_file().sync_all().map_err(write_err)?;
        if path.exists() {
            let mut backup = path.as_os_str().to_owned();
            backup.push(".bak");
            std::fs::copy(path, PathBuf::from(backup)).map_err(write_err)?;
        }
        tmp.persist(path).map_err(|e| write_err(e.error))?;
        Ok(())
    }
}

const HEADER: &str = "\
# CallBridge configuration. docs/configuration.md explains every key; `callbridge config check` validates this file.
# Secrets (app secrets, passwords, tokens) are not kept here but in the OS keyring.

";

/// The line a validation error is about. A dotted path (`provider.telecmi.timeout_secs`) is looked up
/// as the key `timeout_secs` inside the table `[provider.telecmi]`; anything else is the first line
/// containing the text.
fn line_of_needle(text: &str, needle: &str) -> Option<usize> {
    if let Some((table, key)) = needle.rsplit_once('.').filter(|(_, key)| is_bare_key(key)) {
        if let Some(line) = line_of_key(text, table, key) {
            return Some(line);
        }
        if let Some(line) = line_of_key(text, "", needle) {
            return Some(line);
        }
        return text.find(key).map(|at| line_of(text, at));
    }
    text.find(needle).map(|at| line_of(text, at))
}

fn is_bare_key(key: &str) -> bool {
    !key.is_empty() && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

/// The 1-based line where `key = …` is set directly inside the table `[table]` ("" for the top level).
fn line_of_key(text: &str, table: &str, key: &str) -> Option<usize> {
    let mut current = String::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if let Some(header) = line.strip_prefix('[') {
            let header = header.trim_start_matches('[');
            let name = header.split(']').next().unwrap_or_default();
            current = name.split('.').map(|part| part.trim().trim_matches('"')).collect::<Vec<_>>().join(".");
            continue;
        }
        if current != table {
            continue;
        }
        let Some((k, _)) = line.split_once('=') else { continue };
        if k.trim().trim_matches('"') == key {
            return Some(i + 1);
        }
    }
    None
}

/// 1-based line number of byte offset `at` in `text`. Counted over bytes: an offset from the TOML
/// parser's error span may fall inside a multi-byte character.
fn line_of(text: &str, at: usize) -> usize {
    let bytes = text.as_bytes();
    bytes[..at.min(bytes.len())].iter().filter(|&&b| b == b'\n').count() + 1
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::notify::template::Template;

    fn load(text: &str) -> Result<Config, ConfigError> {
        Config::from_toml(text, Path::new("test.toml"))
    }

    #[test]
    fn empty_file_is_the_defaults() {
        let c = load("").expect("empty loads");
        assert_eq!(c, Config::default());
        assert_eq!(c.listener.base_url(), "http://localhost:5678");
        assert_eq!(c.provider.kind, ProviderKind::Simulator);
    }

    #[test]
    fn seed_000_rules_load_with_ids() {
        let c = load(
            r#"
[listener]
port = 5679
make = "dial"

[[notification]]
event = "incoming"
url = "https://example.com/incoming?callerid=$callerid"

[[notification]]
event = "active"
url = "https://example.com/active?callerid=$callerid"
note = "Enreach 'Active Call'"

[[notification]]
id = "end-post"
event = "ended"
method = "POST"
url = "https://example.com/end"
headers = { "X-Api-Key" = "k" }
"#,
        )
        .expect("loads");
        assert_eq!(c.listener.make.as_str(), "dial");
        let ids: Vec<_> = c.notifications.iter().map(|r| r.id.as_str()).collect();
        assert_eq!(ids, ["incoming-1", "answered-1", "end-post"]);
        assert_eq!(c.notifications[1].event, CallEventKind::Answered);
        assert!(c.notifications[0].active);
    }

    #[test]
    fn errors_name_the_key_and_line() {
        let err = load("[listener]\nport = 5678\ncolour = \"blue\"\n").expect_err("unknown key");
        let msg = err.to_string();
        assert!(msg.contains("line 3") && msg.contains("colour"), "{msg}");

        let err = load("[listener]\nmake = \"ma ke\"\n").expect_err("bad segment").to_string();
        assert!(err.contains("line 2") && err.contains("' '"), "{err}");

        let err = load("[[notification]]\nevent = \"incoming\"\nurl = \"https://x.example/?c=$caller\"\n")
            .expect_err("bad placeholder")
            .to_string();
        assert!(err.contains("line 3") && err.contains("$caller"), "{err}");

        let err = load("[listener]\nport = 70000\n").expect_err("port").to_string();
        assert!(err.contains("line 2"), "{err}");

        let err = load("[listener]\nmake = \"go\"\nend = \"go\"\n").expect_err("dup").to_string();
        assert!(err.contains("line 3") && err.contains("own segment"), "{err}");

        let err = load("[dialing]\ndefault_country = \"Britain\"\n").expect_err("country").to_string();
        assert!(err.contains("line 2") && err.contains("ISO 3166"), "{err}");
    }

    fn refused(text: &str) -> String {
        load(text).expect_err(text).to_string()
    }

    #[test]
    fn durations_are_bounded() {
        let err = refused("[delivery]\ntimeout_secs = 0\n");
        assert!(err.contains("delivery.timeout_secs must be between 1 and 300") && err.contains("line 2"), "{err}");
        let err = refused("[delivery]\nmax_age_hours = 721\n");
        assert!(err.contains("delivery.max_age_hours must be between 1 and 720") && err.contains("it is 721"), "{err}");
        // The same key in two tables: the line is the one in the table the error is about.
        let err = refused("[delivery]\ntimeout_secs = 10\n\n[provider.telecmi]\ntimeout_secs = 301\n");
        assert!(err.contains("provider.telecmi.timeout_secs") && err.contains("line 5"), "{err}");
    }

    #[test]
    fn delays_are_bounded() {
        for key in ["ring_after_ms", "answer_after_ms", "hangup_after_ms"] {
            let err = refused(&format!("[provider.simulator]\n{key} = 3600001\n"));
            assert!(err.contains(&format!("provider.simulator.{key} must be between 0 and 3600000")) && err.contains("line 2"), "{err}");
            assert!(load(&format!("[provider.simulator]\n{key} = 3600000\n")).is_ok(), "an hour is allowed");
        }
        let err = refused("[delivery]\nretry_initial_ms = 3600001\n");
        assert!(err.contains("delivery.retry_initial_ms"), "{err}");
    }

    #[test]
    fn ports_are_bounded() {
        let err = refused("\n[listener]\nport = 0\n");
        assert!(err.contains("listener.port must be between 1 and 65535") && err.contains("line 3"), "{err}");
        let err = refused("[listener]\nport = 65536\n");
        assert!(err.contains("line 2"), "{err}");
        let err = refused("[provider.baresip]\ncontrol = \"127.0.0.1:0\"\n");
        assert!(err.contains("line 2") && err.contains("port"), "{err}");
    }

    #[test]
    fn counts_and_limits_are_bounded() {
        let err = refused("[security]\ndials_per_minute = 10001\n");
        assert!(err.contains("security.dials_per_minute") && err.contains("line 2"), "{err}");
        let err = refused("[store]\nhistory_days = 36501\n");
        assert!(err.contains("store.history_days") && err.contains("line 2"), "{err}");
        let err = refused("version = 2\n");
        assert!(err.contains("newer CallBridge") && err.contains("line 1"), "{err}");
    }

    #[test]
    fn a_value_toml_cannot_hold_is_an_error_not_a_panic() {
        // TOML integers stop at 2^63 - 1; a u64 beyond that cannot be written.
        let mut c = Config::default();
        c.provider.simulator.ring_after_ms = 1 << 63;
        assert!(matches!(c.to_toml(), Err(ConfigError::Unwritable { .. })));
        let dir = tempfile::tempdir().expect("tempdir");
        let err = c.save(&dir.path().join(FILE_NAME)).expect_err("refused");
        assert!(err.to_string().contains("provider.simulator.ring_after_ms"), "{err}");
        assert!(!dir.path().join(FILE_NAME).exists());
    }

    #[test]
    fn an_error_inside_a_multibyte_character_still_has_a_line() {
        // The parser's span can start inside a character; the line is still found, without a panic.
        assert_eq!(line_of("a\nb\u{ffdc}c", 5), 2);
        // Found by the fuzz test: a backslash escape followed by a three-byte character.
        let err = refused("\"\\\u{ffda}");
        assert!(err.contains("line 1"), "{err}");
    }

    #[test]
    fn the_crm_opens_by_itself_only_when_asked_and_not_in_do_not_disturb() {
        let mut d = load("[desktop]\nopen_crm_on = \"answered\"\n").expect("loads").desktop;
        assert!(d.opens_crm_on(CallEventKind::Answered, Direction::In));
        assert!(!d.opens_crm_on(CallEventKind::Incoming, Direction::In));
        assert!(!d.opens_crm_on(CallEventKind::Answered, Direction::Out));
        d.do_not_disturb = true;
        assert!(!d.opens_crm_on(CallEventKind::Answered, Direction::In));
        assert!(!DesktopConfig::default().opens_crm_on(CallEventKind::Incoming, Direction::In));
        let err = load("[desktop]\nopen_crm_on = \"always\"\n").expect_err("unknown").to_string();
        assert!(err.contains("line 2") && err.contains("never"), "{err}");
    }

    #[test]
    fn save_is_atomic_and_round_trips() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("sub").join(FILE_NAME);
        let mut c = Config::default();
        c.dialing.default_country = "GB".parse().ok();
        c.notifications.push(NotificationRule {
            id: "in".into(),
            event: CallEventKind::Incoming,
            direction: Some(Direction::In),
            method: Method::Post,
            url: UrlTemplate::parse("http://127.0.0.1:9/in?c=$callerid").expect("url"),
            body: Some(Template::parse(r#"{"n":"$callerid"}"#).expect("body")),
            headers: BTreeMap::new(),
            active: false,
            note: "test".into(),
        });
        c.save(&path).expect("first save");
        assert_eq!(Config::load(&path).expect("reload"), c);
        c.listener.port = 6000;
        c.save(&path).expect("second save");
        assert_eq!(Config::load(&path).expect("reload").listener.port, 6000);
        let backup = std::fs::read_to_string(dir.path().join("sub").join("callbridge.toml.bak")).expect("bak");
        assert!(backup.contains("port = 5678"), "{backup}");
    }
}
