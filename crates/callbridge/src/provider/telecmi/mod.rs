//! TeleCMI: calls placed through the admin click2call API (https://doc.telecmi.com/chub/docs/click-to-call-admin), events from TeleCMI's webhooks.
//!
//! `/make/NUMBER` becomes `POST {base_url}/v2/webrtc/click2call` with the configured user id, the app
//! secret from the OS keyring, `to` as a JSON number, CallBridge's call id in `extra_params` and the
//! `webrtc`/`followme` pair for "ring my softphone" or "ring my mobile". TeleCMI rings the user's device
//! first and then the number; the call carries TeleCMI's `request_id`, and the live events and CDRs that
//! TeleCMI posts to `/webhooks/telecmi` ([`webhook`]) carry both ids back, so the tracker ties them to
//! the call.
//!
//! What each TeleCMI answer becomes, and what the CRM's listener request gets (the body's `code` is
//! authoritative when the HTTP status says success; TeleCMI's `msg` is quoted in every error):
//!
//! | TeleCMI | error | listener |
//! |---|---|---|
//! | 200 with `request_id` | — (the call is dialing) | 200 |
//! | 407 invalid app secret (also 401) | `NotConfigured` | 503 `provider_not_configured` |
//! | 404 invalid user_id | `NotConfigured` | 503 `provider_not_configured` |
//! | 400 parameter missing / enable webrtc or followme | `Rejected` | 502 `provider_rejected` |
//! | any other code | `Rejected` | 502 `provider_rejected` |
//! | connection refused, reset, or not HTTP | `Unreachable` | 502 `provider_unreachable` |
//! | no answer within `timeout_secs` (or no connection within `connect_timeout_secs`) | `Timeout` | 504 `provider_timeout` |
//! | no app secret in the keyring, no user id | `NotConfigured` | 503 `provider_not_configured` |
//!
//! A rejected secret or an unknown user is the bridge's configuration, not the CRM's request: a 5xx
//! tells the CRM it did nothing wrong, and 503 with `provider_not_configured` that retrying will not
//! help until an admin fixes the setup. A 400 from TeleCMI cannot come from the CRM's input either
//! (the number is validated before it is sent), so it is a 502 with TeleCMI's words.
//!
//! `/answer` is not possible: TeleCMI rings the user's own softphone or mobile, and that is where the
//! call is answered. `/end` works when the user's TeleCMI login is configured (`login_id`, password in
//! the keyring): CallBridge obtains a user token ([`token`]) and calls `/v2/c2c/hangup` with the
//! user's leg of the call ([`legs`]); otherwise the call is ended on the device.
//!
//! Webhooks can overtake each other: a hangup of a call not yet seen answered is held back for
//! `hangup_settle_ms` in case its `answered` or the call's CDR follows ([`settle`]).

pub mod client;
pub mod config;
pub mod legs;
pub mod settle;
pub mod token;
pub mod webhook;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use serde_json::{Map, Value};

use super::forms::ProviderForm;
use super::{Capabilities, Placed, Provider, ProviderError, ProviderHealth, ProviderSection, Start, Support};
use crate::call::Call;
use crate::config::invalid::Invalid;
use crate::config::limits::Limit;
use super::ProviderContext;
use crate::secrets::{Secret, SecretStore};
use client::{Click2Call, Client, HangupRefusal};
pub use config::TelecmiConfig;
use legs::LegBook;
use settle::HangupSettler;
use token::TokenCache;
pub use webhook::CALL_ID_PARAM;

pub use self::config::NAME;

/// TeleCMI in the provider list: its section is checked whether or not it is selected; its webhooks
/// are served under `/webhooks/telecmi`.
impl ProviderSection for TelecmiConfig {
    fn validate(&self, _selected: bool) -> Result<(), Invalid> {
        TelecmiConfig::validate(self)
    }

    fn form(&self) -> ProviderForm {
        config::form(self)
    }

    fn secret_entries(&self, _selected: bool) -> Vec<String> {
        TelecmiConfig::secret_entries(self)
    }

    fn start(&self, start: Start<'_>) -> Arc<dyn Provider> {
        Arc::new(TeleCmi::new(self.clone(), start.context))
    }

    fn limits(&self) -> &'static [Limit] {
        config::LIMITS
    }

    fn is_untouched(&self) -> bool {
        self.is_default()
    }
}

/// How long a keyring lookup may take before the dial gives up (a locked keyring may be prompting).
const KEYRING_WAIT: Duration = Duration::from_secs(10);

/// See the module documentation.
#[derive(Debug)]
pub struct TeleCmi {
    config: TelecmiConfig,
    client: Result<Client, String>,
    secrets: Arc<dyn SecretStore>,
    app_secret: KeyringWatch,
    password: Option<KeyringWatch>,
    tokens: TokenCache,
    legs: LegBook,
    settler: HangupSettler,
}

impl TeleCmi {
    pub fn new(config: TelecmiConfig, context: ProviderContext) -> TeleCmi {
        let secrets = context.secrets;
        let settler = HangupSettler::new(Duration::from_millis(config.hangup_settle_ms), context.sink);
        let app_secret = KeyringWatch::new(Arc::clone(&secrets), config.secret_entry.clone());
        let password = config.login().map(|_| KeyringWatch::new(Arc::clone(&secrets), config.password_entry.clone()));
        app_secret.refresh_in_background();
        if let Some(p) = &password {
            p.refresh_in_background();
        }
        TeleCmi {
            client: Client::new(&config),
            config,
            secrets,
            app_secret,
            password,
            tokens: TokenCache::default(),
            legs: LegBook::default(),
            settler,
        }
    }

    /// Notes what a webhook said about the call's legs, for a later hangup.
    pub fn remember_legs(&self, parsed: &webhook::Parsed) {
        self.legs.remember(parsed);
    }

    /// What a webhook's event means now, in order: a hangup that may have overtaken the call's answer
    /// is held back a while (see [`settle`]).
    pub fn settle(&self, event: crate::provider::ProviderEvent) -> Vec<crate::provider::ProviderEvent> {
        self.settler.settle(event)
    }

    fn client(&self) -> Result<&Client, ProviderError> {
        self.client.as_ref().map_err(|e| ProviderError::Unreachable { provider: NAME.into(), message: e.clone() })
    }

    fn user_id(&self) -> Result<&str, ProviderError> {
        Some(self.config.user_id.trim()).filter(|u| !u.is_empty()).ok_or_else(|| not_configured(missing_user_id()))
    }

    /// Reads a secret from the keyring (off the async threads), and keeps the watch up to date.
    async fn secret(&self, watch: &KeyringWatch, what: &str) -> Result<Secret, ProviderError> {
        let secrets = Arc::clone(&self.secrets);
        let entry = watch.entry.clone();
        let lookup = tokio::task::spawn_blocking(move || secrets.get(&entry));
        let found = match tokio::time::timeout(KEYRING_WAIT, lookup).await {
            Ok(Ok(found)) => found.map_err(|e| e.to_string()),
            Ok(Err(join)) => Err(format!("the keyring lookup failed: {join}")),
            Err(_) => Err(format!("the OS keyring did not answer within {} s (is it locked?)", KEYRING_WAIT.as_secs())),
        };
        watch.set(KeyState::from(&found));
        match found {
            Ok(Some(secret)) => Ok(secret),
            Ok(None) => Err(not_configured(missing_secret(what, &watch.entry))),
            Err(e) => Err(not_configured(format!("cannot read the {what} from the OS keyring: {e}"))),
        }
    }

    /// A user token for the hangup: the cached one, or a fresh login. The bool says it is fresh.
    async fn token(&self, login: &str, password_watch: &KeyringWatch) -> Result<(Secret, bool), ProviderError> {
        if let Some(token) = self.tokens.usable(Instant::now()) {
            return Ok((token, false));
        }
        let password = self.secret(password_watch, "TeleCMI password").await?;
        let token = self.client()?.login(login, &password).await?;
        self.tokens.store(token.clone(), Instant::now());
        tracing::info!(login, "obtained a TeleCMI user token");
        Ok((token, true))
    }

    fn hangup_support(&self) -> Support {
        match self.config.login() {
            Some(_) => Support::yes(),
            None => Support::no(
                "TeleCMI ends the call on the user's softphone or mobile; to end calls from CallBridge set login_id in \
                 [provider.telecmi] and store the user's password with `callbridge secret set telecmi-password`",
            ),
        }
    }
}

fn not_configured(problem: impl Into<String>) -> ProviderError {
    ProviderError::NotConfigured { provider: NAME.into(), problem: problem.into() }
}

fn missing_user_id() -> String {
    "no TeleCMI user id: set user_id in [provider.telecmi] (e.g. \"101_1111112\")".into()
}

fn missing_secret(what: &str, entry: &str) -> String {
    format!("no {what} in the OS keyring (entry {entry:?}): store it with `callbridge secret set {entry}`")
}

/// `+919200000000` → 919200000000: TeleCMI takes digits with the country code.
fn digits_of(number: &str) -> Result<u64, ProviderError> {
    let digits = number.trim().trim_start_matches('+');
    match digits.parse::<u64>() {
        Ok(n) if digits.chars().all(|c| c.is_ascii_digit()) && digits.len() <= 15 => Ok(n),
        _ => Err(ProviderError::Rejected {
            provider: NAME.into(),
            message: format!(
                "TeleCMI dials numbers as digits with the country code; {number:?} is not one (set [dialing] default_country to dial national numbers)"
            ),
            status: Some(400),
        }),
    }
}

#[async_trait]
impl Provider for TeleCmi {
    fn name(&self) -> &'static str {
        NAME
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            dial: Support::yes(),
            answer: Support::no("TeleCMI rings the user's own softphone or mobile; answer the call there"),
            hangup: self.hangup_support(),
        }
    }

    fn health(&self) -> ProviderHealth {
        if let Err(e) = &self.client {
            return ProviderHealth::problem(e.clone());
        }
        if self.config.user_id.trim().is_empty() {
            return ProviderHealth::problem(missing_user_id());
        }
        if let Some(problem) = self.app_secret.problem("TeleCMI app secret") {
            return ProviderHealth::problem(problem);
        }
        match self.password.as_ref().and_then(|p| p.problem("TeleCMI password")) {
            // Dialing works; only hanging up waits for the password.
            Some(problem) => ProviderHealth { ready: true, problem: Some(format!("/end will not work: {problem}")) },
            None => ProviderHealth::ready(),
        }
    }

    async fn dial(&self, call: &Call) -> Result<Placed, ProviderError> {
        let user_id = self.user_id()?;
        let client = self.client()?;
        let to = digits_of(&call.remote_number)?;
        let secret = self.secret(&self.app_secret, "TeleCMI app secret").await?;
        let mut extra_params = Map::new();
        extra_params.insert(CALL_ID_PARAM.into(), Value::String(call.id.to_string()));
        let (webrtc, followme) = self.config.ring.flags();
        let request = Click2Call { to, extra_params, webrtc, followme, callerid: self.config.callerid.map(|c| c.value()) };
        let request_id = client.click2call(user_id, &secret, &self.app_secret.entry, &request).await?;
        tracing::info!(call = %call.id, %request_id, "TeleCMI accepted the click2call");
        Ok(Placed { provider_call_id: None, request_id: Some(request_id) })
    }

    async fn answer(&self, _call: &Call) -> Result<(), ProviderError> {
        let reason = self.capabilities().answer.reason.unwrap_or_default();
        Err(ProviderError::Unsupported { provider: NAME.into(), action: "answer", reason })
    }

    async fn hangup(&self, call: &Call) -> Result<(), ProviderError> {
        let (Some(login), Some(password)) = (self.config.login(), self.password.as_ref()) else {
            let reason = self.hangup_support().reason.unwrap_or_default();
            return Err(ProviderError::Unsupported { provider: NAME.into(), action: "hang up", reason });
        };
        let Some(leg) = self.legs.user_leg(call) else {
            return Err(ProviderError::NoSuchCall {
                provider: NAME.into(),
                message: format!(
                    "TeleCMI has not reported call {} to /webhooks/telecmi yet, so its cmiuuid is unknown; \
                     check the webhook URL in the TeleCMI dashboard, or end the call on the device",
                    call.id
                ),
            });
        };
        let client = self.client()?;
        let (token, fresh) = self.token(login, password).await?;
        let refusal = match client.hangup(&token, &leg).await {
            Ok(()) => return Ok(()),
            Err(refusal) => refusal,
        };
        match refusal {
            // A 404 may be an expired or revoked token: log in again once before believing it.
            HangupRefusal::TokenOrCall(_) if !fresh => {
                self.tokens.forget();
                let (token, _) = self.token(login, password).await?;
                client.hangup(&token, &leg).await.map_err(|r| hangup_error(r, call))
            }
            other => Err(hangup_error(other, call)),
        }
    }

    async fn shutdown(&self) {
        // Hangups still held are applied now rather than lost with this provider.
        self.settler.flush();
    }

    fn as_any(&self) -> Option<&dyn std::any::Any> {
        Some(self)
    }
}

fn hangup_error(refusal: HangupRefusal, call: &Call) -> ProviderError {
    match refusal {
        HangupRefusal::TokenOrCall(said) => {
            ProviderError::NoSuchCall { provider: NAME.into(), message: format!("TeleCMI could not end call {}: {said}", call.id) }
        }
        HangupRefusal::Other(e) => e,
    }
}

/// What the keyring last said about an entry.
#[derive(Debug, Clone, PartialEq, Eq)]
enum KeyState {
    Unchecked,
    Present,
    Missing,
    Unreadable(String),
}

impl KeyState {
    fn from(found: &Result<Option<Secret>, String>) -> KeyState {
        match found {
            Ok(Some(_)) => KeyState::Present,
            Ok(None) => KeyState::Missing,
            Err(e) => KeyState::Unreadable(e.clone()),
        }
    }
}

/// Whether a keyring entry is set, for `status`. `health()` must not block (it runs on the async
/// threads, and a locked keyring can prompt for minutes), so it reports what the last lookup found and
/// starts another one in the background; every dial looks the secret up afresh anyway.
#[derive(Debug)]
struct KeyringWatch {
    secrets: Arc<dyn SecretStore>,
    entry: String,
    state: Arc<Mutex<KeyState>>,
    busy: Arc<AtomicBool>,
}

impl KeyringWatch {
    fn new(secrets: Arc<dyn SecretStore>, entry: String) -> KeyringWatch {
        KeyringWatch { secrets, entry, state: Arc::new(Mutex::new(KeyState::Unchecked)), busy: Arc::default() }
    }

    fn set(&self, state: KeyState) {
        *self.state.lock().unwrap_or_else(PoisonError::into_inner) = state;
    }

    fn refresh_in_background(&self) {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else { return };
        if self.busy.swap(true, Ordering::AcqRel) {
            return;
        }
        let (secrets, entry, state, busy) =
            (Arc::clone(&self.secrets), self.entry.clone(), Arc::clone(&self.state), Arc::clone(&self.busy));
        runtime.spawn_blocking(move || {
            let found = secrets.get(&entry).map_err(|e| e.to_string());
            *state.lock().unwrap_or_else(PoisonError::into_inner) = KeyState::from(&found);
            busy.store(false, Ordering::Release);
        });
    }

    /// What is wrong with the entry as last seen, if anything; checks again in the background.
    fn problem(&self, what: &str) -> Option<String> {
        let state = self.state.lock().unwrap_or_else(PoisonError::into_inner).clone();
        self.refresh_in_background();
        match state {
            KeyState::Present => None,
            KeyState::Unchecked => Some(format!("checking the OS keyring for the {what} (entry {:?})", self.entry)),
            KeyState::Missing => Some(missing_secret(what, &self.entry)),
            KeyState::Unreadable(e) => Some(format!("cannot read the {what} from the OS keyring: {e}")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::call::Direction;
    use crate::secrets::MemorySecrets;

    fn provider(config: TelecmiConfig, secrets: Arc<MemorySecrets>) -> TeleCmi {
        let (sink, _rx) = tokio::sync::mpsc::unbounded_channel();
        TeleCmi::new(config, ProviderContext { sink, secrets })
    }

    fn configured() -> TelecmiConfig {
        // Port 9 on loopback: nothing listens; these tests never get as far as sending.
        TelecmiConfig { base_url: "http://127.0.0.1:9".into(), user_id: "101_1111112".into(), ..TelecmiConfig::default() }
    }

    #[tokio::test]
    async fn a_missing_secret_is_reported_by_health_and_refuses_the_dial() {
        let secrets = Arc::new(MemorySecrets::default());
        let p = provider(configured(), Arc::clone(&secrets));
        let call = Call::new(Direction::Out, "+919200000000", NAME);
        let err = p.dial(&call).await.expect_err("no secret");
        assert!(matches!(&err, ProviderError::NotConfigured { problem, .. } if problem.contains("callbridge secret set telecmi")), "{err}");
        let health = p.health();
        assert!(!health.ready);
        assert!(health.problem.as_deref().is_some_and(|m| m.contains("no TeleCMI app secret")), "{health:?}");

        secrets.set("telecmi", &Secret::new("s3cr3t")).expect("set");
        // health() reports the last lookup and starts another; the next one sees the new secret.
        let mut health = p.health();
        for _ in 0..500 {
            if health.ready {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
            health = p.health();
        }
        assert_eq!(health, ProviderHealth::ready());
    }

    #[tokio::test]
    async fn a_missing_user_id_is_reported() {
        let secrets = Arc::new(MemorySecrets::default());
        let p = provider(TelecmiConfig { user_id: " ".into(), ..configured() }, secrets);
        assert!(p.health().problem.is_some_and(|m| m.contains("user_id")));
        let err = p.dial(&Call::new(Direction::Out, "+919200000000", NAME)).await.expect_err("no user");
        assert!(matches!(err, ProviderError::NotConfigured { .. }), "{err}");
    }

    #[tokio::test]
    async fn answer_is_unsupported_and_hangup_needs_a_login() {
        let secrets = Arc::new(MemorySecrets::default());
        let p = provider(configured(), Arc::clone(&secrets));
        let caps = p.capabilities();
        assert!(!caps.answer.supported && caps.answer.reason.as_deref().is_some_and(|r| r.contains("answer the call there")));
        assert!(!caps.hangup.supported && caps.hangup.reason.as_deref().is_some_and(|r| r.contains("login_id")));
        let call = Call::new(Direction::In, "440000000000", NAME);
        assert!(matches!(p.answer(&call).await, Err(ProviderError::Unsupported { action: "answer", .. })));
        assert!(matches!(p.hangup(&call).await, Err(ProviderError::Unsupported { action: "hang up", .. })));

        let p = provider(TelecmiConfig { login_id: Some("101_1111112".into()), ..configured() }, secrets);
        assert!(p.capabilities().hangup.supported);
        let err = p.hangup(&call).await.expect_err("no leg known");
        assert!(matches!(&err, ProviderError::NoSuchCall { message, .. } if message.contains("webhook")), "{err}");
    }

    #[test]
    fn numbers_go_out_as_digits() {
        assert_eq!(digits_of("+919200000000"), Ok(919200000000));
        assert!(matches!(digits_of("*21#"), Err(ProviderError::Rejected { status: Some(400), .. })));
    }
}
