//! The engine: one object that the listener, the headless binary and the desktop shell all drive.
//!
//! It owns the configuration, the active provider (and the simulator, which is always there for
//! simulated calls and tests), the [`CallTracker`] and the [`Notifier`]. Commands (`dial`, `answer`,
//! `hangup`) are validated here, carried out by the provider that owns the call, and their effect is
//! fed through the tracker like any provider event, so every path — URL command, API, tray menu,
//! webhook — produces the same call events, notifications and UI updates.
//!
//! When the CRM's caller lookup is on (`[lookup]`, see [`crate::lookup`]), a call's start starts its
//! lookup, and the call's notifications wait for it — in order, and at most the lookup's timeout — so
//! the CRM hears the looked-up `$name`, `$company` and `$record_url`. Subscribers (the popup) hear of
//! the call at once, and get an `updated` event when the lookup filled something in. A notification
//! held this way is only queued in the outbox once the lookup is done: if CallBridge stops within
//! that second, it is not sent.

use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, RwLock};
use std::time::Duration;

use serde::Serialize;
use tokio::sync::{broadcast, mpsc};

use crate::call::{Call, CallMap, CallEvent, CallEventKind, CallId, CallState, Direction, Disposition};
use crate::config::{Config, ConfigError};
use crate::notify::durable::{DurableOutbox, RetryPolicy};
use crate::lookup::{Contact, Lookup, LookupError};
use crate::notify::{DeliveryLog, Notifier, Outbox};
use crate::number::{NumberError, PhoneNumber};
use crate::secrets::{Keyring, Secret, SecretStore};
use crate::security::approval::{DialApprover, RefuseApprover};
use crate::security::origin::TrustedOrigin;
use crate::security::token::TokenError;
use crate::security::{numbers, Caller, DialRefusal, Security, SecuritySummary};
use crate::store::deliveries::{DeliveryEntry, RetryError};
use crate::store::{Commit, Commits, Store, StoreError, Write};
use crate::provider::simulator::{self, Simulator};
use crate::provider::registry;
use crate::provider::{Capabilities, EventSink, Provider, ProviderError, ProviderEvent, ProviderEventKind, ProviderHealth, Start, Support};
use crate::tracker::CallTracker;

/// Why a command was not carried out. Each maps to one HTTP status (see [`CommandError::status`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CommandError {
    #[error("invalid number: {0}")]
    BadNumber(#[from] NumberError),
    #[error("{0}")]
    BadRequest(String),
    #[error("refused: {0}")]
    Refused(String),
    #[error("{0}")]
    NoCall(String),
    #[error("no call with id {0}")]
    UnknownCall(CallId),
    #[error("too many dial commands; try again in {retry_after_secs} s")]
    Throttled { retry_after_secs: u64 },
    #[error(transparent)]
    Provider(#[from] ProviderError),
    /// The command was carried out, but what it caused could not be saved (disk full, …).
    #[error("done, but not saved: {0}")]
    NotSaved(String),
}

impl From<DialRefusal> for CommandError {
    fn from(r: DialRefusal) -> Self {
        match r {
            DialRefusal::Refused(why) => CommandError::Refused(why),
            DialRefusal::Throttled { retry_after_secs } => CommandError::Throttled { retry_after_secs },
        }
    }
}

impl From<StoreError> for CommandError {
    fn from(e: StoreError) -> Self {
        CommandError::NotSaved(e.to_string())
    }
}

impl CommandError {
    /// The HTTP status that fits, as the README's table of URL command errors lists them: 4xx for the
/// request, 501 when the provider cannot, 502–504 for the provider's failures.
    pub fn status(&self) -> u16 {
        match self {
            CommandError::BadNumber(_) | CommandError::BadRequest(_) => 400,
            CommandError::Refused(_) => 403,
            CommandError::UnknownCall(_) => 404,
            CommandError::NoCall(_) => 409,
            CommandError::Throttled { .. } => 429,
            CommandError::NotSaved(_) => 503,
            CommandError::Provider(e) => match e {
                ProviderError::Unsupported { .. } => 501,
                ProviderError::Rejected { status: Some(s), .. } if (400..600).contains(s) => *s,
                ProviderError::Rejected { .. } | ProviderError::Unreachable { .. } => 502,
                ProviderError::Timeout { .. } => 504,
                ProviderError::NotConfigured { .. } => 503,
                ProviderError::NoSuchCall { .. } => 409,
            },
        }
    }

    /// A stable machine-readable code for the JSON error body.
    pub fn code(&self) -> &'static str {
        match self {
            CommandError::BadNumber(_) => "bad_number",
            CommandError::BadRequest(_) => "bad_request",
            CommandError::Refused(_) => "refused",
            CommandError::UnknownCall(_) => "unknown_call",
            CommandError::NoCall(_) => "no_call",
            CommandError::Throttled { .. } => "throttled",
            CommandError::NotSaved(_) => "not_saved",
            CommandError::Provider(e) => match e {
                ProviderError::Unsupported { .. } => "not_supported",
                ProviderError::Rejected { .. } => "provider_rejected",
                ProviderError::Unreachable { .. } => "provider_unreachable",
                ProviderError::Timeout { .. } => "provider_timeout",
                ProviderError::NotConfigured { .. } => "provider_not_configured",
                ProviderError::NoSuchCall { .. } => "no_call",
            },
        }
    }
}

/// What `status` reports.
#[derive(Debug, Clone, Serialize)]
pub struct Status {
    pub version: &'static str,
    pub provider: ProviderStatus,
    pub listener_url: String,
    pub live_calls: usize,
    pub current_call: Option<Call>,
    pub security: SecuritySummary,
    pub deliveries: DeliveryCounts,
}

/// How many notifications are waiting, arrived, or were given up.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct DeliveryCounts {
    pub pending: u64,
    pub delivered: u64,
    pub failed: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct ProviderStatus {
    pub name: &'static str,
    #[serde(flatten)]
    pub health: ProviderHealth,
    pub capabilities: Capabilities,
}

/// What an engine is built with besides its configuration; tests and the desktop swap parts.
#[derive(Debug, Clone)]
pub struct Services {
    /// Where provider secrets and the listener token are kept.
    pub secrets: Arc<dyn SecretStore>,
    /// Where notifications go to be sent.
    pub outbox: Arc<dyn Outbox>,
    /// The most recent delivery attempts in memory (the outbox writes each attempt here too).
    pub deliveries: Arc<DeliveryLog>,
    /// The SQLite store: call history, and the outbox's deliveries and their log.
    pub store: Store,
    /// Who decides about dial commands from web pages that are not trusted: the desktop's
    /// Call / Block / Always allow dialog; headless, [`RefuseApprover`].
    pub approver: Arc<dyn DialApprover>,
    /// The config file the engine saves when it changes the configuration itself (an origin the user
    /// chose to always allow). `None`: such changes last until the process ends.
    pub config_file: Option<PathBuf>,
}

impl Services {
    /// The OS keyring; the store file (`[store] path`, else the platform's data directory) with the
    /// durable outbox; the refusing approver. Must be called inside a Tokio runtime.
    pub fn standard(config: &Config) -> Result<Services, StoreError> {
        let store = Store::open(&config.store.file()?, config.store.durability)?;
        Ok(Services::with_store(config, Arc::new(Keyring), store))
    }

    /// The given secret store and an in-memory store (the same durable outbox, nothing on disk).
    pub fn with_secrets(config: &Config, secrets: Arc<dyn SecretStore>) -> Services {
        Services::with_store(config, secrets, Store::in_memory())
    }

    /// The given secret store and store, with the durable outbox started on it.
    pub fn with_store(config: &Config, secrets: Arc<dyn SecretStore>, store: Store) -> Services {
        let deliveries = Arc::new(DeliveryLog::default());
        let outbox = Arc::new(DurableOutbox::start(store.clone(), &config.delivery, Arc::clone(&deliveries)));
        Services { secrets, outbox, deliveries, store, approver: Arc::new(RefuseApprover), config_file: None }
    }
}

/// How often old history is purged.
const PURGE_EVERY: Duration = Duration::from_secs(3_600);

pub use crate::provider::ProviderContext;

/// Builds the provider a configuration asks for (see [`crate::provider::registry`]).
pub fn build_provider(config: &Config, context: ProviderContext, simulator: &Arc<Simulator>) -> Arc<dyn Provider> {
    let simulator: Arc<dyn Provider> = Arc::clone(simulator) as Arc<dyn Provider>;
    registry::start(&config.provider, Start { context, simulator: &simulator })
}

/// Refuses a command the provider says it cannot do, with its reason (HTTP 501).
fn ensure_can(provider: &dyn Provider, action: &'static str, pick: impl Fn(&Capabilities) -> &Support) -> Result<(), CommandError> {
    let capabilities = provider.capabilities();
    let support = pick(&capabilities);
    if support.supported {
        return Ok(());
    }
    let reason = support.reason.clone().unwrap_or_else(|| "not supported".into());
    Err(ProviderError::Unsupported { provider: provider.name().into(), action, reason }.into())
}

#[derive(Debug)]
struct Inner {
    config: RwLock<Arc<Config>>,
    provider: RwLock<Arc<dyn Provider>>,
    simulator: Arc<Simulator>,
    tracker: Mutex<CallTracker>,
    notifier: Notifier,
    /// The CRM's caller lookup.
    lookup: Lookup,
    /// Calls whose lookup is running, with the events whose notifications wait for it, in order.
    /// Locked only while the tracker is.
    held: Mutex<CallMap<Vec<CallEvent>>>,
    outbox: Arc<dyn Outbox>,
    deliveries: Arc<DeliveryLog>,
    store: Store,
    security: Security,
    config_file: Option<PathBuf>,
    /// Held by every writer of the configuration for the whole of its read, check and write, so a
    /// change made from a stale copy is noticed (see [`Engine::config_writer`]).
    config_writes: tokio::sync::Mutex<()>,
    /// Told of every configuration applied (the settings announce it to the open pages).
    config_applied: ConfigHook,
    events: broadcast::Sender<CallEvent>,
    sink: EventSink,
    secrets: Arc<dyn SecretStore>,
}

/// A function told of each configuration applied.
type ConfigCallback = Box<dyn Fn(&Config) + Send + Sync>;

/// What [`Engine::on_config_applied`] installed.
#[derive(Default)]
struct ConfigHook(RwLock<Option<ConfigCallback>>);

impl std::fmt::Debug for ConfigHook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ConfigHook")
    }
}

/// See the module documentation. Cheap to clone; all clones share one engine.
#[derive(Debug, Clone)]
pub struct Engine {
    inner: Arc<Inner>,
}

impl Engine {
    /// Starts an engine with the [standard services](Services::standard). Must be called inside a
    /// Tokio runtime. Fails when the store cannot be opened.
    pub fn start(config: Config) -> Result<Engine, StoreError> {
        let services = Services::standard(&config)?;
        Ok(Engine::start_with(config, services))
    }

    /// Starts an engine with the given services.
    pub fn start_with(config: Config, services: Services) -> Engine {
        let Services { secrets, outbox, deliveries, store, approver, config_file } = services;
        let security = Security::new(&config.security, Arc::clone(&secrets), approver);
        let (sink, mut provider_events) = mpsc::unbounded_channel::<ProviderEvent>();
        let simulator = Arc::new(Simulator::new(config.provider.simulator.clone(), sink.clone()));
        let context = ProviderContext { sink: sink.clone(), secrets: Arc::clone(&secrets) };
        let provider = build_provider(&config, context, &simulator);
        let (events, _) = broadcast::channel(256);
        let engine = Engine {
            inner: Arc::new(Inner {
                notifier: Notifier::new(config.notifications.clone(), Arc::clone(&outbox)),
                lookup: Lookup::new(&config.lookup, config.dialing.default_country, Arc::clone(&secrets)),
                held: Mutex::default(),
                outbox,
                store,
                security,
                config_file,
                config_writes: tokio::sync::Mutex::new(()),
                config_applied: ConfigHook::default(),
                config: RwLock::new(Arc::new(config)),
                provider: RwLock::new(provider),
                simulator,
                tracker: Mutex::new(CallTracker::new()),
                deliveries,
                events,
                sink,
                secrets,
            }),
        };
        // Provider events are applied one at a time, in arrival order. The task holds only a weak
        // reference so dropping the last engine handle stops it.
        let weak = Arc::downgrade(&engine.inner);
        tokio::spawn(async move {
            while let Some(event) = provider_events.recv().await {
                let Some(inner) = weak.upgrade() else { break };
                Engine { inner }.observe(event);
            }
        });
        let weak = Arc::downgrade(&engine.inner);
        tokio::spawn(async move {
            loop {
                let Some(inner) = weak.upgrade() else { break };
                Engine { inner }.purge_history().await;
                tokio::time::sleep(PURGE_EVERY).await;
            }
        });
        engine
    }

    /// Removes history older than the retention period.
    async fn purge_history(&self) {
        match self.inner.store.purge_older_than_days(self.config().store.history_days).await {
            Ok(report) if report.calls + report.deliveries > 0 => {
                tracing::info!(calls = report.calls, deliveries = report.deliveries, "removed history past its retention period");
            }
            Ok(_) => {}
            Err(e) => tracing::error!(error = %e, "cannot remove old history"),
        }
    }

    pub fn config(&self) -> Arc<Config> {
        Arc::clone(&self.inner.config.read().unwrap_or_else(PoisonError::into_inner))
    }

    /// The revision of the configuration in force ([`Config::revision`]).
    pub fn config_revision(&self) -> String {
        self.config().revision()
    }

    /// Waits for the right to change the configuration. Every writer — the settings page, the tray's
    /// Do not disturb, "Always allow this site" — holds it from reading the configuration it changes
    /// until the change is applied and written, so no writer works from a copy another one has
    /// meanwhile replaced.
    pub async fn config_writer(&self) -> tokio::sync::MutexGuard<'_, ()> {
        self.inner.config_writes.lock().await
    }

    /// Calls `hook` with every configuration applied from now on (it replaces an earlier hook).
    pub fn on_config_applied(&self, hook: ConfigCallback) {
        *self.inner.config_applied.0.write().unwrap_or_else(PoisonError::into_inner) = Some(hook);
    }

    /// Applies a new configuration at once: rules, dialing, simulator timings, and the provider if its
    /// settings changed. The listener is the caller's to restart if its address or segments changed.
    /// Callers that change the configuration hold [`Self::config_writer`] (see
    /// [`crate::settings::Settings`], which does).
    pub async fn apply_config(&self, config: Config) {
        let old = self.config();
        self.inner.notifier.set_rules(config.notifications.clone());
        self.inner.lookup.reconfigure(&config.lookup, config.dialing.default_country);
        self.inner.security.reconfigure(&config.security);
        self.inner.outbox.reconfigure(&config.delivery);
        self.inner.simulator.reconfigure(config.provider.simulator.clone());
        let provider_changed = old.provider != config.provider;
        *self.inner.config.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(config.clone());
        if let Some(hook) = &*self.inner.config_applied.0.read().unwrap_or_else(PoisonError::into_inner) {
            hook(&config);
        }
        if provider_changed {
            let new = build_provider(&config, self.provider_context(), &self.inner.simulator);
            let old_provider = std::mem::replace(&mut *self.inner.provider.write().unwrap_or_else(PoisonError::into_inner), new);
            if old_provider.name() != simulator::NAME {
                old_provider.shutdown().await;
            }
        }
    }

    pub fn provider(&self) -> Arc<dyn Provider> {
        Arc::clone(&self.inner.provider.read().unwrap_or_else(PoisonError::into_inner))
    }

    /// The provider that carries `call`: simulated calls stay with the simulator whatever is configured.
    fn provider_for(&self, call: &Call) -> Arc<dyn Provider> {
        if call.provider == simulator::NAME {
            Arc::clone(&self.inner.simulator) as Arc<dyn Provider>
        } else {
            self.provider()
        }
    }

    fn provider_context(&self) -> ProviderContext {
        ProviderContext { sink: self.inner.sink.clone(), secrets: Arc::clone(&self.inner.secrets) }
    }

    /// The secret store this engine uses.
    pub fn secrets(&self) -> &Arc<dyn SecretStore> {
        &self.inner.secrets
    }

    /// Where providers (and webhook handlers) report what they observe.
    pub fn event_sink(&self) -> EventSink {
        self.inner.sink.clone()
    }

    /// Every call event, as it happens. Slow subscribers may miss events (they get `Lagged`); the
    /// notifier does not depend on this channel.
    pub fn subscribe(&self) -> broadcast::Receiver<CallEvent> {
        self.inner.events.subscribe()
    }

    pub fn deliveries(&self) -> &Arc<DeliveryLog> {
        &self.inner.deliveries
    }

    /// The SQLite store: call history and the delivery log.
    pub fn store(&self) -> &Store {
        &self.inner.store
    }

    /// The listener's security state: token, rate limit, approver.
    pub fn security(&self) -> &Security {
        &self.inner.security
    }

    /// The policy as the settings page shows it.
    pub fn security_summary(&self) -> SecuritySummary {
        self.inner.security.summary(&self.config().security)
    }

    /// The listener token (created and stored in the keyring at first use), for the settings page.
    pub async fn listener_token(&self) -> Result<Secret, TokenError> {
        self.inner.security.token().await
    }

    /// Replaces the listener token; the old one stops working at once.
    pub async fn regenerate_token(&self) -> Result<Secret, TokenError> {
        self.inner.security.regenerate_token().await
    }

    /// Sends a pending or failed delivery again now (the Activity view's "Retry").
    pub async fn retry_delivery(&self, id: i64) -> Result<DeliveryEntry, RetryError> {
        let max_age = RetryPolicy::from_config(&self.config().delivery).max_age_ms();
        self.inner.store.retry_delivery(id, max_age).await
    }

    /// Adds `origin` to the trusted origins ("Always allow this site"), applies it, and saves the
    /// config file when the engine has one.
    pub async fn trust_origin(&self, origin: &str) -> Result<(), ConfigError> {
        let path = self.inner.config_file.clone();
        let invalid = |message: String| ConfigError::Invalid { path: path.clone().unwrap_or_default(), line: None, message };
        let origin = TrustedOrigin::parse(origin).map_err(invalid)?;
        let _writer = self.config_writer().await;
        let mut config = (*self.config()).clone();
        if config.security.trusted_origins.contains(&origin) {
            return Ok(());
        }
        tracing::info!(%origin, "trusting a web origin from now on");
        config.security.trusted_origins.push(origin);
        self.apply_config(config.clone()).await;
        let Some(path) = path else { return Ok(()) };
        let saved = tokio::task::spawn_blocking(move || config.save(&path))
            .await
            .unwrap_or_else(|e| Err(ConfigError::Write { path: PathBuf::new(), source: std::io::Error::other(e.to_string()) }));
        if let Err(e) = &saved {
            tracing::error!(error = %e, "cannot save the trusted origin to the config file");
        }
        saved
    }

    fn tracker(&self) -> MutexGuard<'_, CallTracker> {
        self.inner.tracker.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Applies a provider event now: tracker, then notifications and subscribers, in order. Does not
    /// wait for the store: for events no one waits on (a provider's own reports).
    pub fn observe(&self, event: ProviderEvent) -> Vec<CallEvent> {
        let (events, commits) = self.observe_now(event);
        commits.detach();
        events
    }

    /// [`Self::observe`], and waits until the history and notifications it caused are committed to
    /// the store: for a request (a webhook) that must not be answered before.
    pub async fn observe_durably(&self, event: ProviderEvent) -> Result<Vec<CallEvent>, StoreError> {
        let (events, commits) = self.observe_now(event);
        commits.wait().await?;
        Ok(events)
    }

    fn observe_now(&self, event: ProviderEvent) -> (Vec<CallEvent>, Commits) {
        let (events, commits) = {
            let mut tracker = self.tracker();
            let events = tracker.observe(event);
            let commits = self.publish(&events);
            (events, commits)
        };
        log_events(&events);
        (events, commits)
    }

    /// Hands events to the store, the notifier and subscribers. Called with the tracker locked, which
    /// keeps the order of events the same everywhere (the store's writer takes writes in the order they
    /// are handed over); returns the notifications' commits, to be awaited once the lock is let go. A call's
    /// start starts its caller lookup; the call's notifications wait for it (see
    /// [`Self::finish_lookup`]).
    fn publish(&self, events: &[CallEvent]) -> Commits {
        let mut commits = Commits::default();
        for event in events {
            // The history row is noted, not awaited: the writer writes a call's latest state within
            // a moment (sooner with the next notifications written), and readers of the history
            // settle it first (`Store::settled`).
            self.inner.store.note_call(event.call.clone());
            let starts = event.kind == CallEventKind::start_for(event.call.direction);
            if starts && self.inner.lookup.wants(&event.call) {
                self.start_lookup(&event.call);
            }
            let mut held = self.held();
            match held.get_mut(&event.call.id) {
                Some(waiting) => waiting.push(event.clone()),
                None => {
                    drop(held);
                    if let Some(commit) = self.inner.notifier.notify(event) {
                        commits.push(commit);
                    }
                }
            }
            // Subscribers hear of the event once its notifications are committed. With none
            // subscribed now there is no one to tell: a later subscriber hears of later events.
            if self.inner.events.receiver_count() > 0 {
                let (subscribers, event) = (self.inner.events.clone(), event.clone());
                self.inner.store.after_commit(Box::new(move || {
                    let _ = subscribers.send(event);
                }));
            }
        }
        commits
    }

    fn held(&self) -> MutexGuard<'_, CallMap<Vec<CallEvent>>> {
        self.inner.held.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Starts `call`'s lookup; its notifications are held from now until [`Self::finish_lookup`].
    /// The lookup ends by itself within its timeout.
    fn start_lookup(&self, call: &Call) {
        self.held().insert(call.id.clone(), Vec::new());
        let weak = Arc::downgrade(&self.inner);
        let call = call.clone();
        tokio::spawn(async move {
            let Some(inner) = weak.upgrade() else { return };
            let engine = Engine { inner };
            let result = engine.inner.lookup.find(&call).await;
            engine.finish_lookup(&call.id, result);
        });
    }

    /// Fills in what the lookup found, then sends the notifications that waited for it, in order, with
    /// the found name, company and record; subscribers get an `updated` event when something changed.
    fn finish_lookup(&self, id: &CallId, result: Result<Option<Contact>, LookupError>) {
        let contact = result.ok().flatten();
        let mut tracker = self.tracker();
        let updated = contact.as_ref().and_then(|contact| tracker.update(id, |call| contact.fill(call)));
        let waiting = self.held().remove(id).unwrap_or_default();
        for mut event in waiting {
            if let Some(contact) = &contact {
                contact.fill(&mut event.call);
            }
            if let Some(commit) = self.inner.notifier.notify(&event) {
                commit.detach();
            }
        }
        if let Some(call) = updated {
            tracing::info!(call = %call.id, name = ?call.remote_name, company = ?call.company, "call updated from the caller lookup");
            self.inner.store.note_call(call.clone());
            let _ = self.inner.events.send(CallEvent { kind: CallEventKind::Updated, at: chrono::Utc::now(), call });
        }
        drop(tracker);
    }

    /// Waits until call `id`'s caller lookup is done (at once when none runs), at most the lookup's
    /// timeout: for opening the caller's own CRM record rather than a search.
    pub async fn lookup_done(&self, id: &CallId) {
        let deadline = tokio::time::Instant::now() + self.inner.lookup.timeout() + Duration::from_millis(200);
        while self.held().contains_key(id) && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    /// The CRM's caller lookup (the settings page's Test button runs it through [`Lookup::trial`]).
    pub fn lookup(&self) -> &Lookup {
        &self.inner.lookup
    }

    /// Hands `call` to the store's history; the writer logs it if that fails.
    fn record_history(&self, call: &Call) -> Commit {
        self.inner.store.write(vec![Write::Call(Box::new(call.clone()))])
    }

    pub fn calls(&self) -> Vec<Call> {
        self.tracker().calls().cloned().collect()
    }

    /// A live or recent call, else one from the history (once what was handed to the store is in it).
    pub async fn call(&self, id: &CallId) -> Option<Call> {
        let live = self.tracker().get(id).cloned();
        if live.is_some() {
            return live;
        }
        let read = async {
            self.inner.store.settled().wait().await?;
            self.inner.store.call(id)
        };
        read.await.unwrap_or_else(|e| {
            tracing::error!(error = %e, "cannot read the call history");
            None
        })
    }

    pub fn status(&self) -> Status {
        let provider = self.provider();
        let tracker = self.tracker();
        Status {
            version: env!("CARGO_PKG_VERSION"),
            provider: ProviderStatus { name: provider.name(), health: provider.health(), capabilities: provider.capabilities() },
            listener_url: self.config().listener.base_url(),
            live_calls: tracker.calls().filter(|c| c.state.is_live()).count(),
            current_call: tracker.current().cloned(),
            security: self.security_summary(),
            deliveries: self
                .inner
                .store
                .delivery_counts()
                .map(|(pending, delivered, failed)| DeliveryCounts { pending, delivered, failed })
                .unwrap_or_default(),
        }
    }

    /// Validates `number` as the configuration reads numbers.
    pub fn parse_number(&self, number: &str) -> Result<PhoneNumber, NumberError> {
        PhoneNumber::parse(number, self.config().dialing.default_country)
    }

    /// Places a call to `number` through the active provider, for the user at this desk (the dial
    /// popup, a `tel:` link, the tray): the number rules apply, the rate limit and approval do not.
    pub async fn dial(&self, number: &str) -> Result<Call, CommandError> {
        let number = self.admit_number(number)?;
        self.place(number, None).await
    }

    /// Places a call for a listener request from `caller`: the number rules, the dial rate limit, and
    /// for a page that is not trusted, the approver's answer.
    pub async fn dial_from(&self, number: &str, caller: &Caller) -> Result<Call, CommandError> {
        let number = self.admit_number(number)?;
        let security = &self.inner.security;
        let untrusted = matches!(caller, Caller::Untrusted { .. });
        // A dial that will be put to the user counts against the limit (it bounds how often the user is
        // asked); one that is refused outright does not.
        if !untrusted || security.asks_the_user() {
            security.throttle().inspect_err(|_| {
                tracing::warn!(number = %number.dial, ?caller, "dial refused: over the rate limit");
            })?;
        }
        if let Caller::Untrusted { origin, reason } = caller {
            let hint = match &self.inner.config_file {
                Some(path) => path.display().to_string(),
                None => "the config file".to_owned(),
            };
            let trust = security.approve(&number, origin.as_deref(), reason, &hint).await?;
            if let Some(origin) = trust {
                // The call goes ahead either way; a config that cannot be saved is logged.
                let _ = self.trust_origin(&origin).await;
            }
        }
        self.place(number, Some(caller)).await
    }

    /// Parses `input` and checks it against the number rules.
    fn admit_number(&self, input: &str) -> Result<PhoneNumber, CommandError> {
        let config = self.config();
        let number = PhoneNumber::parse(input, config.dialing.default_country)?;
        let rules = &config.security;
        numbers::check(&number, config.dialing.default_country, &rules.allow_numbers, &rules.deny_numbers).map_err(|e| {
            tracing::warn!(number = %number.dial, "dial refused: {e}");
            CommandError::Refused(e.to_string())
        })?;
        Ok(number)
    }

    /// Dials `number` for `caller` (`None`: the user at this desk).
    async fn place(&self, number: PhoneNumber, caller: Option<&Caller>) -> Result<Call, CommandError> {
        let provider = self.provider();
        ensure_can(provider.as_ref(), "dial", |c| &c.dial)?;
        let call = Call::new(Direction::Out, number.dial.clone(), provider.name());
        self.tracker().begin_outgoing(call.clone());
        log_dial(&call, caller, provider.name());
        match provider.dial(&call).await {
            Ok(placed) => {
                let (placed, events, commits) = {
                    let mut tracker = self.tracker();
                    let events = tracker.placed(&call.id, placed);
                    let commits = self.publish(&events);
                    (tracker.get(&call.id).cloned().unwrap_or(call), events, commits)
                };
                log_events(&events);
                commits.wait().await?;
                Ok(placed)
            }
            Err(e) => {
                tracing::warn!(call = %call.id, error = %e, "dial failed");
                let failed = self.tracker().failed(&call.id);
                if let Some(failed) = failed {
                    // The answer is the provider's refusal; a history row that could not be saved is logged.
                    let _ = self.record_history(&failed).wait().await;
                }
                Err(e.into())
            }
        }
    }

    /// Answers `id`, or the newest ringing incoming call.
    pub async fn answer(&self, id: Option<&CallId>) -> Result<Call, CommandError> {
        let call = {
            let tracker = self.tracker();
            match id {
                Some(id) => tracker.get(id).cloned().ok_or_else(|| CommandError::UnknownCall(id.clone()))?,
                None => match tracker.ringing_incoming() {
                    Some(call) => call.clone(),
                    // A provider that cannot answer at all says so, rather than "nothing to answer".
                    None => {
                        ensure_can(self.provider().as_ref(), "answer", |c| &c.answer)?;
                        return Err(CommandError::NoCall("no incoming call is ringing".into()));
                    }
                },
            }
        };
        if call.direction != Direction::In || call.state != CallState::Ringing {
            return Err(CommandError::NoCall(format!("call {} is {}, not a ringing incoming call", call.id, call.state.as_str())));
        }
        let provider = self.provider_for(&call);
        ensure_can(provider.as_ref(), "answer", |c| &c.answer)?;
        provider.answer(&call).await?;
        self.settle(&call, ProviderEventKind::Answered, None).await
    }

    /// Ends `id`, or the current call (the newest active one, else the newest ringing or dialing one).
    pub async fn hangup(&self, id: Option<&CallId>) -> Result<Call, CommandError> {
        let call = {
            let tracker = self.tracker();
            match id {
                Some(id) => tracker.get(id).cloned().ok_or_else(|| CommandError::UnknownCall(id.clone()))?,
                None => match tracker.current() {
                    Some(call) => call.clone(),
                    None => {
                        ensure_can(self.provider().as_ref(), "hang up", |c| &c.hangup)?;
                        return Err(CommandError::NoCall("there is no call to end".into()));
                    }
                },
            }
        };
        if !call.state.is_live() {
            return Err(CommandError::NoCall(format!("call {} has already ended", call.id)));
        }
        let provider = self.provider_for(&call);
        ensure_can(provider.as_ref(), "hang up", |c| &c.hangup)?;
        provider.hangup(&call).await?;
        let disposition = match (call.state, call.direction) {
            (CallState::Active, _) => Disposition::Answered,
            (_, Direction::In) => Disposition::Missed,
            _ => Disposition::Cancelled,
        };
        self.settle(&call, ProviderEventKind::Ended, Some(disposition)).await
    }

    /// Records the effect of a command that succeeded, as if the provider had reported it (it may
    /// also report it itself; the tracker keeps it to once).
    async fn settle(&self, call: &Call, kind: ProviderEventKind, disposition: Option<Disposition>) -> Result<Call, CommandError> {
        let mut event = ProviderEvent::for_call(call, kind);
        event.disposition = disposition;
        let (settled, events, commits) = {
            let mut tracker = self.tracker();
            let events = tracker.observe(event);
            let commits = self.publish(&events);
            (tracker.get(&call.id).cloned().unwrap_or_else(|| call.clone()), events, commits)
        };
        log_events(&events);
        commits.wait().await?;
        Ok(settled)
    }

    /// Rings a simulated incoming call from `number`, whatever provider is configured.
    pub async fn simulate_incoming(&self, number: &str, name: Option<&str>) -> Result<Call, CommandError> {
        let number = self.parse_number(number)?;
        let event = self.inner.simulator.ring(&number.dial, name);
        let pid = event.provider_call_id.clone();
        let (call, events, commits) = {
            let mut tracker = self.tracker();
            let events = tracker.observe(event);
            let commits = self.publish(&events);
            let call = events.first().map(|e| e.call.clone()).or_else(|| tracker.calls().find(|c| c.provider_call_id == pid).cloned());
            (call, events, commits)
        };
        log_events(&events);
        commits.wait().await?;
        call.ok_or_else(|| CommandError::BadRequest("the simulated call could not be created".into()))
    }

    /// Stops provider background work.
    pub async fn shutdown(&self) {
        self.provider().shutdown().await;
        self.inner.simulator.shutdown().await;
    }
}

/// Logs a dial about to be placed. A dial asked for by a web page or from another machine (with the
/// token) is logged at info, with who asked: what to look at when a call was placed that the user did
/// not expect. A dial by the user's own programs on this machine or CallBridge's own windows is at
/// debug (`CALLBRIDGE_LOG=debug`): the call history keeps every call, and a log line per dialed call was
/// 6% of the CPU a `/make` costs under load.
fn log_dial(call: &Call, caller: Option<&Caller>, provider: &str) {
    match caller {
        None | Some(Caller::Local | Caller::OwnPage | Caller::SameOrigin) => {
            tracing::debug!(call = %call.id, number = %call.remote_number, provider, ?caller, "dialing")
        }
        Some(caller) => tracing::info!(call = %call.id, number = %call.remote_number, provider, ?caller, "dialing"),
    }
}

/// Logs call events once the call tracker is let go, so no other request waits on a log line. At
/// info: an incoming call's arrival and end, what the user did not start and what to look for when a
/// popup or a notification did not come. An outgoing call's start is logged by [`log_dial`]; its
/// steps, and an incoming call's answer, are at debug (`CALLBRIDGE_LOG=debug`). The call history keeps
/// every call; a line per call event cost a `/make` as much as a dial's line does.
fn log_events(events: &[CallEvent]) {
    for event in events {
        let call = &event.call;
        let arrived_or_left = matches!(event.kind, CallEventKind::Incoming | CallEventKind::Ended);
        if arrived_or_left && call.direction != Direction::Out {
            tracing::info!(call = %call.id, event = %event.kind, direction = %call.direction, number = %call.remote_number, "call event");
        } else {
            tracing::debug!(call = %call.id, event = %event.kind, direction = %call.direction, number = %call.remote_number, "call event");
        }
    }
}
