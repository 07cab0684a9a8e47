//! Kazoo's Crossbar REST API, as far as CallBridge uses it (https://github.com/2600hz/kazoo/blob/master/applications/crossbar/doc/ — api_authentication.md, clicktocall.md, channels.md):
//! getting an `X-Auth-Token`, executing the click-to-call, and hanging up a channel.
//!
//! The token comes from the account's API key (`PUT /v2/api_auth`) or from user credentials
//! (`PUT /v2/user_auth` with md5 of `user:password`); the key or password is read from the keyring
//! when a token is needed and never kept. Tokens expire, so a `401` gets one fresh token and one retry.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use md5::{Digest, Md5};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use super::config::{ApiUrl, KazooAuth, KazooConfig, KazooId, NAME};
use crate::provider::ProviderError;
use crate::secrets::{Secret, SecretStore};

const TIMEOUT: Duration = Duration::from_secs(15);
pub const AUTH_HEADER: &str = "X-Auth-Token";

/// What an executed click-to-call tells.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Connected {
    /// `data.outbound_call_id`, `c2c-{C2C_ID}-{RANDOM}`: the Call-ID of the call's first leg.
    pub outbound_call_id: Option<String>,
}

/// See the module documentation.
#[derive(Debug)]
pub struct Crossbar {
    api: ApiUrl,
    account_id: KazooId,
    clicktocall_id: KazooId,
    auth: KazooAuth,
    username: String,
    account_name: String,
    secret_entry: String,
    http: reqwest::Client,
    secrets: Arc<dyn SecretStore>,
    token: tokio::sync::Mutex<Option<Secret>>,
    problem: Mutex<Option<String>>,
}

fn not_configured(problem: impl Into<String>) -> ProviderError {
    ProviderError::NotConfigured { provider: NAME.into(), problem: problem.into() }
}

fn unreachable(e: impl std::fmt::Display) -> ProviderError {
    ProviderError::Unreachable { provider: NAME.into(), message: e.to_string() }
}

/// Kazoo's own words from an error body: `message`, plus the first detail under `data`
/// (validation errors nest it, e.g. `{"contact":{"required":{"message":"contact required"}}}`).
pub fn kazoo_message(status: StatusCode, body: &str) -> String {
    fn first_message(v: &Value) -> Option<String> {
        match v {
            Value::Object(map) => map
                .get("message")
                .and_then(Value::as_str)
                .map(str::to_owned)
                .or_else(|| map.values().find_map(first_message)),
            Value::String(s) if !s.is_empty() => Some(s.clone()),
            _ => None,
        }
    }
    let Ok(v) = serde_json::from_str::<Value>(body) else {
        let text: String = body.chars().take(200).collect();
        return format!("HTTP {status}{}", if text.trim().is_empty() { String::new() } else { format!(": {}", text.trim()) });
    };
    let top = v.get("message").and_then(Value::as_str).map(str::to_owned);
    let detail = v.get("data").and_then(first_message);
    match (top, detail) {
        (Some(t), Some(d)) if t != d => format!("HTTP {status}: {t} ({d})"),
        (Some(t), _) => format!("HTTP {status}: {t}"),
        (None, Some(d)) => format!("HTTP {status}: {d}"),
        (None, None) => format!("HTTP {status}"),
    }
}

/// md5 of `user:password`, hex, as `user_auth` takes it.
pub fn credentials_hash(username: &str, password: &str) -> String {
    format!("{:x}", Md5::digest(format!("{username}:{password}").as_bytes()))
}

impl Crossbar {
    /// Fails when the configuration lacks what every request needs (checked on load already).
    pub fn new(config: &KazooConfig, secrets: Arc<dyn SecretStore>) -> Result<Crossbar, ProviderError> {
        let api = config.api_url.clone().ok_or_else(|| not_configured("provider.kazoo.api_url is not set"))?;
        let account_id = config.account_id.clone().ok_or_else(|| not_configured("provider.kazoo.account_id is not set"))?;
        let clicktocall_id =
            config.clicktocall_id.clone().ok_or_else(|| not_configured("provider.kazoo.clicktocall_id is not set"))?;
        let http = reqwest::Client::builder()
            .timeout(TIMEOUT)
            .user_agent(concat!("CallBridge/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(unreachable)?;
        Ok(Crossbar {
            api,
            account_id,
            clicktocall_id,
            auth: config.auth,
            username: config.username.trim().to_owned(),
            account_name: config.account_name.trim().to_owned(),
            secret_entry: config.secret_entry().to_owned(),
            http,
            secrets,
            token: tokio::sync::Mutex::new(None),
            problem: Mutex::new(None),
        })
    }

    pub fn account_id(&self) -> &str {
        self.account_id.as_str()
    }

    pub fn auth(&self) -> KazooAuth {
        self.auth
    }

    /// The last authentication problem, if the last attempt failed.
    pub fn problem(&self) -> Option<String> {
        self.problem.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }

    fn set_problem(&self, problem: Option<String>) {
        *self.problem.lock().unwrap_or_else(PoisonError::into_inner) = problem;
    }

    /// The current token, getting one first if there is none. `None` with `auth = "none"`.
    pub async fn token(&self) -> Result<Option<Secret>, ProviderError> {
        if self.auth == KazooAuth::None {
            return Ok(None);
        }
        let mut token = self.token.lock().await;
        if let Some(t) = token.as_ref() {
            return Ok(Some(t.clone()));
        }
        let fresh = self.authenticate().await;
        self.set_problem(fresh.as_ref().err().map(ToString::to_string));
        let fresh = fresh?;
        *token = Some(fresh.clone());
        Ok(Some(fresh))
    }

    /// Forgets `stale` (a token Kazoo refused), so the next [`Self::token`] gets a new one.
    pub async fn invalidate(&self, stale: &Secret) {
        let mut token = self.token.lock().await;
        if token.as_ref() == Some(stale) {
            *token = None;
        }
    }

    async fn secret(&self) -> Result<Secret, ProviderError> {
        let store = Arc::clone(&self.secrets);
        let entry = self.secret_entry.clone();
        let what = if self.auth == KazooAuth::User { "password" } else { "API key" };
        match tokio::task::spawn_blocking(move || store.get(&entry)).await {
            Ok(Ok(Some(secret))) => Ok(secret),
            Ok(Ok(None)) => Err(not_configured(format!(
                "no Kazoo {what} in the keyring under {:?}; store it with `callbridge secret set {}`",
                self.secret_entry, self.secret_entry
            ))),
            Ok(Err(e)) => Err(not_configured(format!("cannot read the Kazoo {what} from the keyring: {e}"))),
            Err(e) => Err(not_configured(format!("cannot read the Kazoo {what} from the keyring: {e}"))),
        }
    }

    async fn authenticate(&self) -> Result<Secret, ProviderError> {
        let secret = self.secret().await?;
        let (path, body) = match self.auth {
            KazooAuth::User => (
                "user_auth",
                json!({"data": {
                    "credentials": credentials_hash(&self.username, secret.expose()),
                    "account_name": self.account_name,
                    "method": "md5",
                }}),
            ),
            KazooAuth::ApiKey | KazooAuth::None => ("api_auth", json!({"data": {"api_key": secret.expose()}})),
        };
        let response = self.http.put(self.api.v2(path)).json(&body).send().await.map_err(unreachable)?;
        let status = response.status();
        let text = response.text().await.map_err(unreachable)?;
        if !status.is_success() {
            return Err(ProviderError::Rejected {
                provider: NAME.into(),
                message: format!("authentication ({path}) failed: {}", kazoo_message(status, &text)),
                status: None,
            });
        }
        let token = serde_json::from_str::<Value>(&text)
            .ok()
            .and_then(|v| v.get("auth_token").and_then(Value::as_str).map(str::to_owned))
            .filter(|t| !t.is_empty())
            .ok_or_else(|| unreachable(format!("{path} answered {status} without an auth_token")))?;
        tracing::info!(method = path, "got a Kazoo auth token");
        Ok(Secret::new(token))
    }

    /// Sends a request with the token; on `401`, once more with a fresh token.
    async fn send(&self, method: Method, url: &str, body: Option<&Value>) -> Result<(StatusCode, String), ProviderError> {
        let mut retried = false;
        loop {
            let token = self.token().await?;
            let mut request = self.http.request(method.clone(), url);
            if let Some(t) = &token {
                request = request.header(AUTH_HEADER, t.expose());
            }
            if let Some(body) = body {
                request = request.json(body);
            }
            let response = request.send().await.map_err(unreachable)?;
            let status = response.status();
            let text = response.text().await.map_err(unreachable)?;
            match (status, &token) {
                (StatusCode::UNAUTHORIZED, Some(stale)) if !retried => {
                    tracing::info!("Kazoo refused the auth token; getting a new one");
                    self.invalidate(stale).await;
                    retried = true;
                }
                _ => return Ok((status, text)),
            }
        }
    }

    /// Executes the click-to-call to `contact` (non-blocking: Kazoo answers `202` at once).
    pub async fn connect(&self, contact: &str) -> Result<Connected, ProviderError> {
        let mut url = url::Url::parse(&self.api.v2(&format!(
            "accounts/{}/clicktocall/{}/connect",
            self.account_id.as_str(),
            self.clicktocall_id.as_str()
        )))
        .map_err(unreachable)?;
        url.query_pairs_mut().append_pair("contact", contact);
        let (status, text) = self.send(Method::GET, url.as_str(), None).await?;
        if !status.is_success() {
            return Err(ProviderError::Rejected {
                provider: NAME.into(),
                message: format!("click-to-call failed: {}", kazoo_message(status, &text)),
                status: None,
            });
        }
        let body: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        let outbound_call_id = body.pointer("/data/outbound_call_id").and_then(Value::as_str).map(str::to_owned);
        Ok(Connected { outbound_call_id })
    }

    /// Hangs up channel `uuid`: `POST …/channels/{uuid}` with `{"data":{"action":"hangup"}}`. When that
    /// is refused, the metaflow variant (`PUT`, `{"action":"metaflow",…}`) is tried too: installations
    /// differ in which they allow, and both need Kazoo's Konami app. `Ok(false)`: Kazoo has no such
    /// channel (the call is over already).
    pub async fn hangup(&self, uuid: &str) -> Result<bool, ProviderError> {
        let uuid = url::form_urlencoded::byte_serialize(uuid.as_bytes()).collect::<String>();
        let url = self.api.v2(&format!("accounts/{}/channels/{uuid}", self.account_id.as_str()));
        let (status, text) = self.send(Method::POST, &url, Some(&json!({"data": {"action": "hangup"}}))).await?;
        if status.is_success() {
            return Ok(true);
        }
        if status == StatusCode::NOT_FOUND {
            return Ok(false);
        }
        let first = kazoo_message(status, &text);
        let metaflow = json!({"action": "metaflow", "data": {"data": {"module": "hangup"}}});
        let (status, text) = self.send(Method::PUT, &url, Some(&metaflow)).await?;
        if status.is_success() {
            return Ok(true);
        }
        Err(ProviderError::Rejected {
            provider: NAME.into(),
            message: format!(
                "hangup failed: {first}; the metaflow hangup failed too: {} (Kazoo's channel actions need the Konami app; end the call on your phone)",
                kazoo_message(status, &text)
            ),
            status: None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_are_md5_of_user_colon_password() {
        // echo -n "alice:secret" | md5sum
        assert_eq!(credentials_hash("alice", "secret"), "6f622058968bb90757e6c6ed79e5df81");
        assert_eq!(credentials_hash("user", "pass"), "21a39285884a268d6458e3fdeb08beac");
    }

    /// A stand-in Crossbar whose channel `POST` is refused and whose metaflow `PUT` is `put_status`.
    async fn crossbar(put_status: u16) -> (Crossbar, Arc<std::sync::Mutex<Vec<String>>>) {
        use axum::routing::{post, put};
        let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
        let log = |seen: &Arc<std::sync::Mutex<Vec<String>>>, what: String| {
            if let Ok(mut s) = seen.lock() {
                s.push(what);
            }
        };
        let app = axum::Router::new()
            .route("/v2/api_auth", put(|| async { (StatusCode::CREATED, r#"{"auth_token":"t1","status":"success"}"#) }))
            .route(
                "/v2/accounts/acc/channels/{uuid}",
                post({
                    let seen = Arc::clone(&seen);
                    move |body: String| async move {
                        log(&seen, format!("POST {body}"));
                        (StatusCode::BAD_REQUEST, r#"{"error":"400","message":"invalid request","status":"error"}"#)
                    }
                })
                .put({
                    let seen = Arc::clone(&seen);
                    move |body: String| async move {
                        log(&seen, format!("PUT {body}"));
                        (StatusCode::from_u16(put_status).unwrap_or(StatusCode::OK), r#"{"status":"success","data":{}}"#)
                    }
                }),
            );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        let secrets = Arc::new(crate::secrets::MemorySecrets::default());
        secrets.set("kazoo", &Secret::new("key")).expect("set");
        let config = KazooConfig {
            api_url: ApiUrl::parse(&format!("http://{addr}")).ok(),
            account_id: KazooId::parse("acc").ok(),
            clicktocall_id: KazooId::parse("c2c").ok(),
            ..KazooConfig::default()
        };
        (Crossbar::new(&config, secrets).expect("configured"), seen)
    }

    #[tokio::test]
    async fn a_refused_hangup_falls_back_to_the_metaflow_variant() {
        let (api, seen) = crossbar(200).await;
        assert_eq!(api.hangup("leg-1").await, Ok(true));
        let seen = seen.lock().map(|s| s.clone()).unwrap_or_default();
        assert_eq!(
            seen,
            [
                r#"POST {"data":{"action":"hangup"}}"#.to_owned(),
                r#"PUT {"action":"metaflow","data":{"data":{"module":"hangup"}}}"#.to_owned()
            ]
        );
    }

    #[tokio::test]
    async fn when_both_hangups_fail_the_error_says_why_and_what_to_do() {
        let (api, _) = crossbar(500).await;
        match api.hangup("leg-1").await {
            Err(ProviderError::Rejected { message, .. }) => {
                assert!(message.contains("invalid request") && message.contains("Konami") && message.contains("on your phone"), "{message}");
            }
            other => panic!("expected a refusal, got {other:?}"),
        }
    }

    #[test]
    fn error_messages_keep_kazoos_words() {
        let body = r#"{"data":{"message":"invalid credentials"},"error":"401","message":"invalid_credentials","status":"error"}"#;
        assert_eq!(kazoo_message(StatusCode::UNAUTHORIZED, body), "HTTP 401 Unauthorized: invalid_credentials (invalid credentials)");
        let body = r#"{"data":{"contact":{"required":{"message":"contact required"}}},"error":"400","message":"validation error","status":"error"}"#;
        assert_eq!(kazoo_message(StatusCode::BAD_REQUEST, body), "HTTP 400 Bad Request: validation error (contact required)");
        assert_eq!(kazoo_message(StatusCode::BAD_GATEWAY, "<html>oops</html>"), "HTTP 502 Bad Gateway: <html>oops</html>");
    }
}
