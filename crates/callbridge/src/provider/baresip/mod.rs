//! The baresip provider: a real SIP softphone on the user's desk, driven over its `ctrl_tcp` socket.
//!
//! `dial`, `answer` and `hangup` become baresip's `dial <uri>`, `accept` and `hangup` commands (with the
//! SIP Call-ID as argument, which newer versions use to pick the call and 1.0.0 ignores); the call
//! events baresip sends back (`CALL_INCOMING`, `CALL_RINGING`, `CALL_ESTABLISHED`, `CALL_CLOSED`, and the
//! newer `CALL_OUTGOING`/`CALL_ANSWERED`) become [`ProviderEvent`]s, matched to CallBridge's calls by
//! [`calls::Calls`]. The pieces:
//!
//! * [`netstring`] and [`message`] — the wire format;
//! * [`client`] — the one control connection, reconnecting with backoff, responses matched by token;
//! * [`calls`] — SIP Call-IDs ↔ CallBridge call ids;
//! * [`supervisor`] — optionally, baresip itself, started with a generated configuration.
//!
//! baresip 1.0.0 (Debian 12) only reports `CALL_INCOMING` with `answermode=manual`; the supervised
//! account is added that way, and docs/baresip.md tells users running their own baresip to set it.

pub mod calls;
pub mod client;
pub mod config;
pub mod message;
pub mod netstring;
pub mod supervisor;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use self::calls::Calls;
use self::client::{Client, ClientError, Notice};
use self::config::BaresipConfig;
use self::message::{dialed_call_id, Response};
use self::supervisor::Supervisor;
use super::forms::ProviderForm;
use super::{Capabilities, EventSink, Placed, Provider, ProviderError, ProviderHealth, ProviderSection, Start, Support};
use crate::call::{Call, Direction};
use crate::config::invalid::Invalid;
use super::ProviderContext;
use crate::secrets::SecretStore;

pub use self::config::NAME;

/// baresip in the provider list: its section is checked when it is selected; it takes no webhooks
/// (call events come over its control socket).
impl ProviderSection for BaresipConfig {
    fn validate(&self, selected: bool) -> Result<(), Invalid> {
        if selected {
            self.check()
        } else {
            Ok(())
        }
    }

    fn form(&self) -> ProviderForm {
        config::form(self)
    }

    fn secret_entries(&self, _selected: bool) -> Vec<String> {
        self.password_entry.clone().into_iter().collect()
    }

    fn start(&self, start: Start<'_>) -> Arc<dyn Provider> {
        Arc::new(Baresip::start(self.clone(), start.context))
    }

    fn is_untouched(&self) -> bool {
        self.is_default()
    }
}

/// How long a command may take. baresip answers at once; only a wedged process is slower.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(10);

/// See the module documentation.
#[derive(Debug)]
pub struct Baresip {
    config: BaresipConfig,
    client: Arc<Client>,
    calls: Arc<Mutex<Calls>>,
    /// The SIP account is in place (always, when the user runs baresip; after `uanew` when supervised).
    account_ready: Arc<AtomicBool>,
    account_problem: Arc<Mutex<Option<String>>>,
    supervisor: Option<Supervisor>,
    startup_problem: Option<String>,
    pump: JoinHandle<()>,
}

impl Baresip {
    /// Connects to baresip (starting it first when supervising). Must be called inside a Tokio runtime.
    pub fn start(config: BaresipConfig, context: ProviderContext) -> Baresip {
        let (supervisor, startup_problem) = if config.supervise {
            match Supervisor::start(&config) {
                Ok(s) => (Some(s), None),
                Err(e) => (None, Some(format!("cannot write baresip's configuration directory: {e}"))),
            }
        } else {
            (None, None)
        };
        let (notices_tx, notices) = mpsc::unbounded_channel();
        let client = Arc::new(Client::start(config.control.addr(), notices_tx));
        let calls = Arc::new(Mutex::new(Calls::default()));
        let account_ready = Arc::new(AtomicBool::new(!config.supervise));
        let account_problem = Arc::new(Mutex::new(None));
        let pump = tokio::spawn(
            Pump {
                config: config.clone(),
                client: Arc::clone(&client),
                calls: Arc::clone(&calls),
                sink: context.sink,
                secrets: context.secrets,
                account_ready: Arc::clone(&account_ready),
                account_problem: Arc::clone(&account_problem),
            }
            .run(notices),
        );
        Baresip { config, client, calls, account_ready, account_problem, supervisor, startup_problem, pump }
    }

    fn calls(&self) -> MutexGuard<'_, Calls> {
        self.calls.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Runs a command; a refusal (`ok:false`) is an error with baresip's own words.
    async fn run(&self, command: &str, params: Option<&str>) -> Result<Response, ProviderError> {
        let response = self.client.command(command, params, COMMAND_TIMEOUT).await.map_err(|e| match e {
            ClientError::Timeout(t) => ProviderError::Timeout { provider: NAME.into(), seconds: t.as_secs() },
            other => ProviderError::Unreachable { provider: NAME.into(), message: other.to_string() },
        })?;
        if !response.ok {
            let said = response.data.trim();
            return Err(ProviderError::Rejected {
                provider: NAME.into(),
                message: format!("`{command}` failed: {}", if said.is_empty() { "no reason given" } else { said }),
                status: None,
            });
        }
        Ok(response)
    }
}

#[async_trait]
impl Provider for Baresip {
    fn name(&self) -> &'static str {
        NAME
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities { dial: Support::yes(), answer: Support::yes(), hangup: Support::yes() }
    }

    fn health(&self) -> ProviderHealth {
        if let Some(p) = self.startup_problem.clone().or_else(|| self.supervisor.as_ref().and_then(Supervisor::problem)) {
            return ProviderHealth::problem(p);
        }
        if !self.client.is_connected() {
            let why = self.client.problem().unwrap_or_else(|| format!("connecting to baresip at {}", self.client.addr()));
            return ProviderHealth::problem(why);
        }
        if !self.account_ready.load(Ordering::SeqCst) {
            let why = self.account_problem.lock().unwrap_or_else(PoisonError::into_inner).clone();
            return ProviderHealth::problem(why.unwrap_or_else(|| "adding the SIP account to baresip".into()));
        }
        ProviderHealth::ready()
    }

    async fn dial(&self, call: &Call) -> Result<Placed, ProviderError> {
        let uri = self.config.dial_uri.render(&call.remote_number);
        // Registered before the command goes out: baresip may report the call before it answers.
        self.calls().expect_dial(call.id.clone(), uri.clone());
        match self.run("dial", Some(&uri)).await {
            Ok(response) => {
                let sip_id = dialed_call_id(&response.data);
                if let Some(id) = &sip_id {
                    self.calls().dialed(&call.id, id);
                }
                tracing::info!(call = %call.id, %uri, sip_call_id = ?sip_id, "baresip is dialing");
                Ok(Placed { provider_call_id: sip_id, request_id: None })
            }
            Err(e) => {
                self.calls().forget_dial(&call.id);
                Err(e)
            }
        }
    }

    async fn answer(&self, call: &Call) -> Result<(), ProviderError> {
        let sip_id = {
            let calls = self.calls();
            calls.sip_id_of(call).filter(|id| calls.is_ringing_incoming(id))
        };
        // 1.0.0 answers "ok" even when nothing rings, so only a call baresip reported is answered.
        let Some(sip_id) = sip_id else {
            return Err(ProviderError::NoSuchCall {
                provider: NAME.into(),
                message: format!("baresip has no ringing incoming call for call {}", call.id),
            });
        };
        self.run("accept", Some(&sip_id)).await?;
        Ok(())
    }

    async fn hangup(&self, call: &Call) -> Result<(), ProviderError> {
        let sip_id = self.calls().sip_id_of(call);
        if sip_id.is_none() {
            if call.direction == Direction::Out {
                // Dialed but not reported yet: baresip's current call is the one being placed.
                self.calls().forget_dial(&call.id);
            } else {
                return Err(ProviderError::NoSuchCall {
                    provider: NAME.into(),
                    message: format!("baresip does not know call {} (it may have ended already)", call.id),
                });
            }
        }
        self.run("hangup", sip_id.as_deref()).await?;
        Ok(())
    }

    async fn shutdown(&self) {
        self.pump.abort();
        self.client.stop();
        if let Some(supervisor) = &self.supervisor {
            supervisor.stop().await;
        }
    }
}

impl Drop for Baresip {
    fn drop(&mut self) {
        self.pump.abort();
    }
}

/// Turns the connection's notices into provider events, in order.
#[derive(Debug)]
struct Pump {
    config: BaresipConfig,
    client: Arc<Client>,
    calls: Arc<Mutex<Calls>>,
    sink: EventSink,
    secrets: Arc<dyn SecretStore>,
    account_ready: Arc<AtomicBool>,
    account_problem: Arc<Mutex<Option<String>>>,
}

impl Pump {
    async fn run(self, mut notices: mpsc::UnboundedReceiver<Notice>) {
        while let Some(notice) = notices.recv().await {
            match notice {
                Notice::Connected => {
                    if self.config.supervise {
                        tokio::spawn(ensure_account(
                            self.config.clone(),
                            Arc::clone(&self.client),
                            Arc::clone(&self.secrets),
                            Arc::clone(&self.account_ready),
                            Arc::clone(&self.account_problem),
                        ));
                    }
                }
                Notice::Disconnected { .. } => {
                    if self.config.supervise {
                        self.account_ready.store(false, Ordering::SeqCst);
                    }
                    let ended = self.calls.lock().unwrap_or_else(PoisonError::into_inner).drain();
                    for event in ended {
                        tracing::warn!(sip_call_id = ?event.provider_call_id, "baresip went away during a call; reporting it ended");
                        let _ = self.sink.send(event);
                    }
                }
                Notice::Event(event) => {
                    let Some(signal) = event.signal() else { continue };
                    let out = self.calls.lock().unwrap_or_else(PoisonError::into_inner).observe(&event, signal);
                    // A closed sink only means the engine is shutting down.
                    let _ = self.sink.send(out);
                }
            }
        }
    }
}

/// Makes sure the supervised baresip has our SIP account, adding it with `uanew` when it does not
/// (a fresh or restarted baresip). The password comes from the keyring and is never logged.
async fn ensure_account(
    config: BaresipConfig,
    client: Arc<Client>,
    secrets: Arc<dyn SecretStore>,
    ready: Arc<AtomicBool>,
    problem: Arc<Mutex<Option<String>>>,
) {
    let set_problem = |p: Option<String>| *problem.lock().unwrap_or_else(PoisonError::into_inner) = p;
    let Some(aor) = config.account.as_ref().map(|a| a.as_str().to_owned()) else {
        set_problem(Some("provider.baresip.account is not set".into()));
        return;
    };
    if matches!(client.command("uafind", Some(&aor), COMMAND_TIMEOUT).await, Ok(r) if r.ok) {
        ready.store(true, Ordering::SeqCst);
        return;
    }
    let password = match config.password_entry.clone() {
        None => None,
        Some(entry) => {
            let store = Arc::clone(&secrets);
            let lookup = entry.clone();
            match tokio::task::spawn_blocking(move || store.get(&lookup)).await {
                Ok(Ok(Some(secret))) => Some(secret),
                Ok(Ok(None)) => {
                    set_problem(Some(format!(
                        "no SIP password in the keyring under {entry:?}; store it with `callbridge secret set {entry}`"
                    )));
                    return;
                }
                Ok(Err(e)) => {
                    set_problem(Some(format!("cannot read the SIP password from the keyring: {e}")));
                    return;
                }
                Err(e) => {
                    set_problem(Some(format!("cannot read the SIP password from the keyring: {e}")));
                    return;
                }
            }
        }
    };
    let mut line = format!("<{aor}>;answermode=manual");
    if !config.register {
        line.push_str(";regint=0");
    }
    if let Some(password) = &password {
        line.push_str(";auth_pass=");
        line.push_str(password.expose());
    }
    match client.command("uanew", Some(&line), COMMAND_TIMEOUT).await {
        Ok(r) if r.ok => {
            tracing::info!(account = %aor, "added the SIP account to baresip");
            set_problem(None);
            ready.store(true, Ordering::SeqCst);
        }
        Ok(r) => {
            // The response may echo the account line: never pass it on with the password in it.
            let said = match &password {
                Some(p) => r.data.replace(p.expose(), "***"),
                None => r.data,
            };
            set_problem(Some(format!("baresip refused the SIP account {aor}: {}", said.trim())));
        }
        Err(e) => set_problem(Some(format!("could not add the SIP account to baresip: {e}"))),
    }
}
