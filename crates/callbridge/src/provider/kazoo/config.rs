//! The `[provider.kazoo]` section: which Crossbar server, account and click-to-call to use, how to
//! authenticate (the secret itself lives in the keyring), and where the blackhole websocket is.

use serde::{Deserialize, Serialize};
use url::Url;

use crate::config::invalid::Invalid;
use crate::provider::forms::{self, Field, Input, ProviderForm};

/// The provider's name: its `kind` in the config file and in calls, logs and errors.
pub const NAME: &str = "kazoo";

/// Crossbar's base URL, `https://kazoo.example.com:8443`. A trailing `/v2` is accepted and dropped:
/// CallBridge adds the `/v2/...` paths itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct ApiUrl(String);

impl ApiUrl {
    pub fn parse(s: &str) -> Result<ApiUrl, String> {
        let url = Url::parse(s.trim()).map_err(|e| format!("{s:?} is not a URL ({e}); write it as \"https://kazoo.example.com:8443\""))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(format!("{s:?} must start with http:// or https://"));
        }
        if url.query().is_some() || url.fragment().is_some() {
            return Err(format!("{s:?} must not have a query or fragment"));
        }
        let text = url.as_str().trim_end_matches('/');
        let text = text.strip_suffix("/v2").unwrap_or(text);
        Ok(ApiUrl(text.to_owned()))
    }

    /// `{base}/v2/{path}`.
    pub fn v2(&self, path: &str) -> String {
        format!("{}/v2/{}", self.0, path.trim_start_matches('/'))
    }
}

impl<'de> Deserialize<'de> for ApiUrl {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        ApiUrl::parse(&String::deserialize(d)?).map_err(serde::de::Error::custom)
    }
}

/// The blackhole websocket, `ws://kazoo.example.com:5555` (or `wss://` behind a TLS proxy).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct WsUrl(String);

impl WsUrl {
    pub fn parse(s: &str) -> Result<WsUrl, String> {
        let url = Url::parse(s.trim()).map_err(|e| format!("{s:?} is not a URL ({e}); write it as \"wss://kazoo.example.com:7777\""))?;
        if !matches!(url.scheme(), "ws" | "wss") {
            return Err(format!("{s:?} must start with ws:// or wss://"));
        }
        Ok(WsUrl(url.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl<'de> Deserialize<'de> for WsUrl {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        WsUrl::parse(&String::deserialize(d)?).map_err(serde::de::Error::custom)
    }
}

/// A Kazoo document id (account, click-to-call). It goes into URL paths, so only id characters.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct KazooId(String);

impl KazooId {
    pub fn parse(s: &str) -> Result<KazooId, String> {
        let s = s.trim();
        if s.is_empty() {
            return Err("a Kazoo id cannot be empty".into());
        }
        if let Some(c) = s.chars().find(|c| !(c.is_ascii_alphanumeric() || *c == '-' || *c == '_')) {
            return Err(format!("{s:?} contains {c:?}; a Kazoo id has only letters, digits, '-' and '_'"));
        }
        Ok(KazooId(s.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl<'de> Deserialize<'de> for KazooId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        KazooId::parse(&String::deserialize(d)?).map_err(serde::de::Error::custom)
    }
}

/// How CallBridge gets its `X-Auth-Token`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KazooAuth {
    /// `PUT /v2/api_auth` with the account's API key (keyring entry `secret_entry`).
    #[default]
    ApiKey,
    /// `PUT /v2/user_auth` with md5("username:password") (the password in keyring entry `secret_entry`).
    User,
    /// No token: the click-to-call has `auth_required: false`. Hangup and the websocket need a token.
    None,
}

/// `[provider.kazoo]`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct KazooConfig {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub api_url: Option<ApiUrl>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub account_id: Option<KazooId>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub clicktocall_id: Option<KazooId>,
    pub auth: KazooAuth,
    /// For `auth = "user"`.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub username: String,
    /// For `auth = "user"`: the account name that goes with the username.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub account_name: String,
    /// The keyring entry holding the API key or the password; `kazoo` when empty.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub secret_entry: String,
    /// The blackhole websocket to take call events from; none means events come only through the
    /// `/webhooks/kazoo` URL.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub websocket_url: Option<WsUrl>,
}

impl KazooConfig {
    pub const DEFAULT_SECRET_ENTRY: &'static str = "kazoo";

    /// Whether nothing was configured (the section is then left out of a saved file).
    pub fn is_default(&self) -> bool {
        *self == KazooConfig::default()
    }

    pub fn secret_entry(&self) -> &str {
        if self.secret_entry.trim().is_empty() {
            Self::DEFAULT_SECRET_ENTRY
        } else {
            self.secret_entry.trim()
        }
    }

    /// Checks what the types alone cannot, when Kazoo is the active provider. On error: the
    /// message, and text to find its line by.
    pub fn check(&self) -> Result<(), Invalid> {
        let missing = |key: &str, example: &str| {
            Err(Invalid::new(format!("provider.kazoo.{key}"), format!("provider.kazoo.{key} is required when kind = \"kazoo\" (e.g. {key} = {example})"))
                .found_by("[provider.kazoo]"))
        };
        let invalid = |key: &str, message: &str, needle: &str| Err(Invalid::new(format!("provider.kazoo.{key}"), message).found_by(needle));
        if self.api_url.is_none() {
            return missing("api_url", "\"https://kazoo.example.com:8443\"");
        }
        if self.account_id.is_none() {
            return missing("account_id", "\"3a1b…\", your 32-character account id");
        }
        if self.clicktocall_id.is_none() {
            return missing("clicktocall_id", "the id of the click-to-call to execute");
        }
        if self.auth == KazooAuth::User {
            if self.username.trim().is_empty() {
                return invalid("username", "provider.kazoo.username is required when auth = \"user\"", "auth");
            }
            if self.account_name.trim().is_empty() {
                return invalid("account_name", "provider.kazoo.account_name is required when auth = \"user\"", "auth");
            }
        }
        if self.auth == KazooAuth::None && self.websocket_url.is_some() {
            return invalid("websocket_url", "provider.kazoo.websocket_url needs a token: set auth = \"api_key\" or \"user\"", "websocket_url");
        }
        Ok(())
    }
}

/// The settings page's Kazoo form.
pub fn form(config: &KazooConfig) -> ProviderForm {
    ProviderForm {
        kind: NAME,
        label: "Kazoo click-to-call",
        description: "A Kazoo (2600Hz) click-to-call rings your extension, then the number; call events come from the \
                      blackhole websocket or the /webhooks/kazoo URL.",
        fields: vec![
            Field { key: "api_url", label: "Crossbar API address", input: Input::Url, required: true, help: "Usually port 8000.", placeholder: "http://kazoo.example.com:8000" },
            forms::text("account_id", "Account id", true, "The 32-character account id.", ""),
            forms::text("clicktocall_id", "Click-to-call id", true, "The click-to-call to connect through.", ""),
            forms::choice("auth", "Sign in with", &["api_key", "user", "none"], "An API key, a user and password, or nothing (auth_required false)."),
            forms::secret("secret", "API key or password", config.secret_entry(), "secret_entry", false, "Kept in the OS keyring."),
            forms::text("username", "User name", false, "For signing in with a user.", ""),
            forms::text("account_name", "Account name", false, "For signing in with a user.", ""),
            forms::text("websocket_url", "Blackhole websocket", false, "Where call events come from, e.g. ws://kazoo.example.com:5555.", ""),
        ],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_url_drops_a_trailing_v2() {
        let a = ApiUrl::parse("https://kazoo.example.com:8443/v2/").expect("valid");
        assert_eq!(a.v2("api_auth"), "https://kazoo.example.com:8443/v2/api_auth");
        let a = ApiUrl::parse("http://127.0.0.1:8000").expect("valid");
        assert_eq!(a.v2("/accounts/x"), "http://127.0.0.1:8000/v2/accounts/x");
        assert!(ApiUrl::parse("ftp://x").is_err());
        assert!(ApiUrl::parse("kazoo.example.com").is_err());
    }

    #[test]
    fn ids_and_websocket_urls_are_checked() {
        assert!(KazooId::parse("3a1b2c4d5e6f").is_ok());
        assert!(KazooId::parse("../admin").expect_err("path").contains("'.'"));
        assert!(WsUrl::parse("wss://kazoo.example.com:7777").is_ok());
        assert!(WsUrl::parse("https://kazoo.example.com").expect_err("scheme").contains("ws://"));
    }

    #[test]
    fn required_fields_are_named() {
        let mut c = KazooConfig::default();
        assert!(c.check().expect_err("api_url").message.contains("api_url"));
        c.api_url = ApiUrl::parse("http://k:8000").ok();
        c.account_id = KazooId::parse("acc").ok();
        assert!(c.check().expect_err("c2c").message.contains("clicktocall_id"));
        c.clicktocall_id = KazooId::parse("c2c").ok();
        assert!(c.check().is_ok());
        c.auth = KazooAuth::User;
        assert!(c.check().expect_err("user").message.contains("username"));
        c.username = "alice".into();
        c.account_name = "acme".into();
        assert!(c.check().is_ok());
        assert_eq!(c.secret_entry(), "kazoo");
    }

    #[test]
    fn the_section_loads_round_trips_and_reports_bad_lines() {
        let load = |text: &str| crate::config::Config::from_toml(text, std::path::Path::new("t.toml")).map_err(|e| e.to_string());
        let text = "[provider]\nkind = \"kazoo\"\n\n[provider.kazoo]\napi_url = \"https://k.example.com:8443/v2\"\n\
                    account_id = \"acc1\"\nclicktocall_id = \"c2c1\"\nwebsocket_url = \"wss://k.example.com:7777\"\n";
        let config = load(text).expect("loads");
        assert_eq!(config.provider.kazoo.auth, KazooAuth::ApiKey);
        assert_eq!(load(&config.to_toml().expect("toml")).expect("reloads"), config);
        assert!(!crate::config::Config::default().to_toml().expect("toml").contains("kazoo"), "an unused section is not written");

        let err = load("[provider.kazoo]\naccount_id = \"a/../b\"\n").expect_err("bad id");
        assert!(err.contains("line 2") && err.contains("Kazoo id"), "{err}");
        let err = load("[provider]\nkind = \"kazoo\"\n\n[provider.kazoo]\naccount_id = \"a\"\n").expect_err("incomplete");
        assert!(err.contains("line 4") && err.contains("api_url is required"), "{err}");
        let err = load("[provider.kazoo]\napi_key = \"secret\"\n").expect_err("secret in the file");
        assert!(err.contains("line 2") && err.contains("api_key"), "{err}");
    }
}
