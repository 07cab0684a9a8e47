//! The HTTP side of TeleCMI: click2call (https://doc.telecmi.com/chub/docs/click-to-call-admin), the user login that yields a token, and the
//! user-level hangup (https://doc.telecmi.com/chub/docs/login-token, https://doc.telecmi.com/chub/docs/user-hangup).
//!
//! Every answer is read the same way ([`Reply`]): the body's `code` is authoritative when the HTTP
//! status is a success (TeleCMI has been seen answering HTTP 200 with an error code), the HTTP status
//! when the body says nothing better, and TeleCMI's `msg` is passed on in the error. The app secret and
//! the token never appear in an error: transport errors are stripped of their URL (the GET form
//! carries the secret in the query) and TeleCMI's own words are scrubbed of both before use.

use std::time::Duration;

use serde_json::{json, Map, Value};

use super::config::{RequestMethod, TelecmiConfig};
use super::config::NAME;
use crate::provider::ProviderError;
use crate::secrets::Secret;

/// What one click2call carries besides the credentials.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Click2Call {
    /// Digits with country code, sent as a JSON number.
    pub to: u64,
    /// Echoed back (as a JSON string) in the call's live events and CDRs.
    pub extra_params: Map<String, Value>,
    pub webrtc: bool,
    pub followme: bool,
    pub callerid: Option<u64>,
}

/// TeleCMI's REST API as one user of one app sees it.
#[derive(Debug, Clone)]
pub struct Client {
    http: reqwest::Client,
    base: String,
    method: RequestMethod,
    connect_timeout_secs: u64,
    timeout_secs: u64,
}

impl Client {
    pub fn new(config: &TelecmiConfig) -> Result<Client, String> {
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(config.connect_timeout_secs))
            .timeout(Duration::from_secs(config.timeout_secs))
            .user_agent(concat!("CallBridge/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| format!("cannot build the HTTP client: {e}"))?;
        Ok(Client {
            http,
            base: config.base_url.trim_end_matches('/').to_owned(),
            method: config.method,
            connect_timeout_secs: config.connect_timeout_secs,
            timeout_secs: config.timeout_secs,
        })
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// `POST|GET /v2/webrtc/click2call`; the `request_id` TeleCMI gives the new call.
    /// `secret_entry` names the keyring entry of `secret`, for the error that says to replace it.
    pub async fn click2call(
        &self,
        user_id: &str,
        secret: &Secret,
        secret_entry: &str,
        call: &Click2Call,
    ) -> Result<String, ProviderError> {
        let url = self.url("/v2/webrtc/click2call");
        let request = match self.method {
            RequestMethod::Post => self.http.post(url).json(&click2call_body(user_id, secret, call)),
            RequestMethod::Get => self.http.get(url).query(&click2call_query(user_id, secret, call)),
        };
        let reply = self.send(request, &[secret.expose()]).await?;
        click2call_outcome(&reply, user_id, secret_entry)
    }

    /// `POST /v2/user/login`: a user token (valid for 30 days).
    pub async fn login(&self, id: &str, password: &Secret) -> Result<Secret, ProviderError> {
        let body = json!({ "id": id, "password": password.expose() });
        let reply = self.send(self.http.post(self.url("/v2/user/login")).json(&body), &[password.expose()]).await?;
        login_outcome(&reply, id)
    }

    /// `POST /v2/c2c/hangup` for the call leg `cmiuuid`.
    pub async fn hangup(&self, token: &Secret, cmiuuid: &str) -> Result<(), HangupRefusal> {
        let body = json!({ "token": token.expose(), "cmiuuid": cmiuuid });
        let reply = self
            .send(self.http.post(self.url("/v2/c2c/hangup")).json(&body), &[token.expose()])
            .await
            .map_err(HangupRefusal::Other)?;
        hangup_outcome(&reply)
    }

    /// Sends `request` and reads the answer, whatever its status. `secrets` are scrubbed from anything
    /// TeleCMI says before it is kept.
    async fn send(&self, request: reqwest::RequestBuilder, secrets: &[&str]) -> Result<Reply, ProviderError> {
        let response = request.send().await.map_err(|e| self.transport_error(e))?;
        let status = response.status().as_u16();
        let text = response.text().await.map_err(|e| self.transport_error(e))?;
        Ok(Reply::read(status, &scrub(&text, secrets)))
    }

    fn transport_error(&self, e: reqwest::Error) -> ProviderError {
        let e = e.without_url();
        if e.is_timeout() {
            let seconds = if e.is_connect() { self.connect_timeout_secs } else { self.timeout_secs };
            return ProviderError::Timeout { provider: NAME.into(), seconds };
        }
        let what = if e.is_connect() { "cannot connect to" } else { "lost the connection to" };
        ProviderError::Unreachable { provider: NAME.into(), message: format!("{what} {}: {}", self.base, causes(&e)) }
    }
}

/// An error and its causes on one line: "error sending request: client error (Connect): Connection refused".
fn causes(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        let more = cause.to_string();
        if !text.contains(&more) {
            text.push_str(": ");
            text.push_str(&more);
        }
        source = cause.source();
    }
    text
}

/// Click2call's documented JSON body, field types included: `to` and `callerid` are numbers.
pub fn click2call_body(user_id: &str, secret: &Secret, call: &Click2Call) -> Value {
    let mut body = json!({
        "user_id": user_id,
        "secret": secret.expose(),
        "to": call.to,
        "extra_params": call.extra_params,
        "webrtc": call.webrtc,
        "followme": call.followme,
    });
    if let (Some(callerid), Some(map)) = (call.callerid, body.as_object_mut()) {
        map.insert("callerid".into(), json!(callerid));
    }
    body
}

/// Click2call's documented GET form: the same fields in the query, `extra_params[KEY]=VALUE` per parameter.
pub fn click2call_query(user_id: &str, secret: &Secret, call: &Click2Call) -> Vec<(String, String)> {
    let mut query = vec![
        ("user_id".to_owned(), user_id.to_owned()),
        ("secret".to_owned(), secret.expose().to_owned()),
        ("to".to_owned(), call.to.to_string()),
    ];
    for (key, value) in &call.extra_params {
        let value = match value {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        query.push((format!("extra_params[{key}]"), value));
    }
    query.push(("webrtc".into(), call.webrtc.to_string()));
    query.push(("followme".into(), call.followme.to_string()));
    if let Some(callerid) = call.callerid {
        query.push(("callerid".into(), callerid.to_string()));
    }
    query
}

/// Replaces every occurrence of a secret with `***`.
fn scrub(text: &str, secrets: &[&str]) -> String {
    secrets.iter().filter(|s| !s.is_empty()).fold(text.to_owned(), |t, s| t.replace(s, "***"))
}

/// One answer from TeleCMI, reduced to what decides the outcome.
#[derive(Debug, Clone, PartialEq)]
pub struct Reply {
    /// The HTTP status.
    pub http: u16,
    /// The outcome: the body's `code` when it has one (and the HTTP status does not say worse), else
    /// the HTTP status.
    pub code: u16,
    /// TeleCMI's `msg`, when it gave one.
    pub msg: Option<String>,
    /// The body, when it was JSON.
    pub body: Option<Value>,
}

impl Reply {
    pub fn read(http: u16, text: &str) -> Reply {
        let body: Option<Value> = serde_json::from_str(text).ok();
        let body_code = body.as_ref().and_then(|b| b.get("code")).and_then(code_of);
        let code = match body_code {
            // A success status with an error in the body: the body is authoritative.
            Some(c) if (200..300).contains(&http) => c,
            // An error status whose body names an error too: the body is more precise.
            Some(c) if c != 200 => c,
            _ => http,
        };
        let msg = body
            .as_ref()
            .and_then(|b| b.get("msg").or_else(|| b.get("message")))
            .and_then(Value::as_str)
            .map(|m| m.trim().to_owned())
            .filter(|m| !m.is_empty())
            .or_else(|| {
                // Not JSON (a proxy's error page, say): its first line says more than nothing.
                let line = text.lines().next().unwrap_or_default().trim();
                (body.is_none() && !line.is_empty()).then(|| line.chars().take(200).collect())
            });
        Reply { http, code, msg, body }
    }

    /// `"invalid app secret" (TeleCMI code 407)`.
    fn said(&self) -> String {
        let code = if self.code == self.http {
            format!("HTTP {}", self.code)
        } else {
            format!("code {}, HTTP {}", self.code, self.http)
        };
        match &self.msg {
            Some(msg) => format!("\"{msg}\" (TeleCMI {code})"),
            None => format!("no message (TeleCMI {code})"),
        }
    }

    fn field(&self, name: &str) -> Option<&str> {
        self.body.as_ref()?.get(name)?.as_str().map(str::trim).filter(|s| !s.is_empty())
    }
}

/// A `code` written as a number or a numeric string.
fn code_of(v: &Value) -> Option<u16> {
    match v {
        Value::Number(n) => n.as_u64().and_then(|n| u16::try_from(n).ok()),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// What a click2call answer means. The mapping (see the module doc of `telecmi` for the listener
/// statuses): 200 with a `request_id` → placed; 407 and 401 (a rejected app secret) and 404 (an
/// unknown user id) → the bridge is not configured right; 400 and anything else → TeleCMI refused.
pub fn click2call_outcome(reply: &Reply, user_id: &str, secret_entry: &str) -> Result<String, ProviderError> {
    let said = reply.said();
    match reply.code {
        200..=299 => reply.field("request_id").map(str::to_owned).ok_or_else(|| ProviderError::Unreachable {
            provider: NAME.into(),
            message: format!("TeleCMI accepted the call but gave no request_id: {said}"),
        }),
        401 | 407 => Err(ProviderError::NotConfigured {
            provider: NAME.into(),
            problem: format!(
                "TeleCMI rejected the app secret: {said}; store the right one with `callbridge secret set {secret_entry}`"
            ),
        }),
        404 => Err(ProviderError::NotConfigured {
            provider: NAME.into(),
            problem: format!("TeleCMI does not know the user id {user_id:?}: {said}; check user_id in [provider.telecmi]"),
        }),
        400 => Err(ProviderError::Rejected {
            provider: NAME.into(),
            message: format!("{said}: a parameter is missing, or neither webrtc nor followme is on"),
            status: None,
        }),
        _ => Err(ProviderError::Rejected { provider: NAME.into(), message: said, status: None }),
    }
}

/// What a login answer means: the token, or why there is none.
pub fn login_outcome(reply: &Reply, id: &str) -> Result<Secret, ProviderError> {
    let said = reply.said();
    match reply.code {
        200..=299 => reply.field("token").map(Secret::new).ok_or_else(|| ProviderError::Unreachable {
            provider: NAME.into(),
            message: format!("TeleCMI's login answered without a token: {said}"),
        }),
        401 | 404 | 407 => Err(ProviderError::NotConfigured {
            provider: NAME.into(),
            problem: format!(
                "TeleCMI refused the login {id:?}: {said}; check login_id in [provider.telecmi] and store the password with `callbridge secret set` (see password_entry)"
            ),
        }),
        _ => Err(ProviderError::Rejected { provider: NAME.into(), message: format!("login {id:?}: {said}"), status: None }),
    }
}

/// Why a hangup did not happen.
#[derive(Debug, Clone, PartialEq)]
pub enum HangupRefusal {
    /// 404: TeleCMI did not accept the token, or knows no such leg; it does not say which.
    TokenOrCall(String),
    Other(ProviderError),
}

pub fn hangup_outcome(reply: &Reply) -> Result<(), HangupRefusal> {
    match reply.code {
        200..=299 => Ok(()),
        401 | 404 => Err(HangupRefusal::TokenOrCall(reply.said())),
        _ => Err(HangupRefusal::Other(ProviderError::Rejected {
            provider: NAME.into(),
            message: format!("hangup: {}", reply.said()),
            status: None,
        })),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call() -> Click2Call {
        let mut extra_params = Map::new();
        extra_params.insert("callbridge_call_id".into(), json!("c-1"));
        Click2Call { to: 919200000000, extra_params, webrtc: true, followme: false, callerid: Some(919800000000) }
    }

    #[test]
    fn the_post_body_has_the_seed_fields_and_types() {
        let body = click2call_body("101_1111112", &Secret::new("2e0d75"), &call());
        assert_eq!(
            body,
            json!({"user_id":"101_1111112","secret":"2e0d75","to":919200000000_u64,
                   "extra_params":{"callbridge_call_id":"c-1"},"webrtc":true,"followme":false,"callerid":919800000000_u64})
        );
        assert!(body["to"].is_u64() && body["callerid"].is_u64());
        let without = click2call_body("u", &Secret::new("s"), &Click2Call { callerid: None, ..call() });
        assert!(without.get("callerid").is_none());
    }

    #[test]
    fn the_get_form_follows_the_seed_example() {
        let q = click2call_query("101_1111112", &Secret::new("s"), &call());
        let q: Vec<(&str, &str)> = q.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        assert_eq!(
            q,
            [
                ("user_id", "101_1111112"),
                ("secret", "s"),
                ("to", "919200000000"),
                ("extra_params[callbridge_call_id]", "c-1"),
                ("webrtc", "true"),
                ("followme", "false"),
                ("callerid", "919800000000"),
            ]
        );
    }

    #[test]
    fn success_carries_the_request_id() {
        let reply = Reply::read(200, r#"{"code":200,"msg":"Call initiated","request_id":"s96C6XK1"}"#);
        assert_eq!(click2call_outcome(&reply, "u", "telecmi"), Ok("s96C6XK1".into()));
        let reply = Reply::read(200, r#"{"code":200,"msg":"Call initiated"}"#);
        assert!(matches!(click2call_outcome(&reply, "u", "telecmi"), Err(ProviderError::Unreachable { .. })));
    }

    #[test]
    fn status_and_body_code_map_to_errors_with_telecmis_words() {
        // Click2call's documented statuses, as HTTP status and body code.
        let cases = [
            (407, r#"{"code":407,"msg":"invalid app secret"}"#, "invalid app secret", "not configured"),
            (404, r#"{"code":404,"msg":"invalid user_id"}"#, "invalid user_id", "not configured"),
            (400, r#"{"code":400,"msg":"Enable webrtc or followme"}"#, "Enable webrtc or followme", "refused"),
            // The body code is authoritative when the HTTP status claims success.
            (200, r#"{"code":407,"msg":"invalid app secret"}"#, "invalid app secret", "not configured"),
            (200, r#"{"code":"404","msg":"invalid user_id"}"#, "invalid user_id", "not configured"),
            // Without a body code the HTTP status decides; a non-JSON body is quoted.
            (407, "", "HTTP 407", "not configured"),
            (503, "Service Unavailable", "Service Unavailable", "refused"),
            (500, r#"{"code":200,"msg":"Call initiated"}"#, "HTTP 500", "refused"),
        ];
        for (http, body, words, kind) in cases {
            let err = click2call_outcome(&Reply::read(http, body), "101_1111112", "telecmi").expect_err(body);
            let text = err.to_string();
            assert!(text.contains(words) && text.contains(kind), "{http} {body}: {text}");
            let expected_variant = match kind {
                "not configured" => matches!(err, ProviderError::NotConfigured { .. }),
                _ => matches!(err, ProviderError::Rejected { status: None, .. }),
            };
            assert!(expected_variant, "{http} {body}: {err:?}");
        }
        let err = click2call_outcome(&Reply::read(404, r#"{"code":404,"msg":"invalid user_id"}"#), "9_9", "telecmi").expect_err("404");
        assert!(err.to_string().contains("\"9_9\""), "{err}");
    }

    #[test]
    fn secrets_are_scrubbed_from_what_telecmi_says() {
        assert_eq!(scrub("bad secret 2e0d75 for 2e0d75", &["2e0d75", ""]), "bad secret *** for ***");
    }

    #[test]
    fn login_and_hangup_answers() {
        let ok = Reply::read(200, r#"{"code":200,"msg":"User loged in successfully","token":"tok","agent":{}}"#);
        assert_eq!(login_outcome(&ok, "103_1").map(|t| t.expose().to_owned()), Ok("tok".into()));
        let bad = Reply::read(404, r#"{"code":404,"msg":"Invalid id or password"}"#);
        assert!(matches!(login_outcome(&bad, "103_1"), Err(ProviderError::NotConfigured { .. })));
        assert_eq!(hangup_outcome(&Reply::read(200, r#"{"code":200,"msg":"call ended"}"#)), Ok(()));
        let gone = hangup_outcome(&Reply::read(404, r#"{"code":404,"msg":"Failed to authenticate token, cmiuuid not found"}"#));
        assert!(matches!(gone, Err(HangupRefusal::TokenOrCall(m)) if m.contains("cmiuuid not found")));
    }
}
