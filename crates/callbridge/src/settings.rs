//! Settings: the running configuration, and how it changes while CallBridge runs.
//!
//! The settings page — in a browser against the headless binary, or inside the tray app — changes the
//! configuration through [`Settings::save`]. It validates the new configuration, binds the new listen
//! port first when that changed (a port that is taken is reported, and the running listener keeps
//! serving), writes the file atomically, applies the configuration to the engine, and only then moves
//! the listener over. When a step fails nothing is half-applied: the old configuration keeps running
//! and the file is unchanged.
//!
//! Every save names the revision of the configuration it was edited from ([`Config::revision`]); when
//! the configuration changed meanwhile (the tray's Do not disturb, "Always allow this site", another
//! page) the save is refused with [`SaveError::Stale`] and the newer change is kept. All writers hold
//! the engine's [`Engine::config_writer`] while they read, check and write.
//!
//! `Settings` also owns the listener, so the tray app can start without one when its port is taken,
//! show that problem, and let the user pick another port. Every change is announced on a
//! [`watch`] channel ([`Settings::watch`]) that the tray and the event stream follow.

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use axum::{Extension, Router};
use serde::Serialize;
use tokio::sync::{watch, Mutex};

use crate::config::{Config, ConfigError, Invalid};
use crate::engine::Engine;
use crate::listener::serve::RunningListener;

/// Builds the application router for an engine: `listener::router`. The listener's routes use the
/// settings (to save them), so the settings are handed the router rather than naming the listener.
pub type AppRouter = fn(Engine) -> Router;

/// An extra check a front end adds to validation (the tray app checks its shortcut syntax).
pub type Check = Box<dyn Fn(&Config) -> Result<(), FieldError> + Send + Sync>;

/// A problem with one setting, named by its path in the config (`listener.port`, `desktop.crm_url`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FieldError {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    pub message: String,
}

impl FieldError {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        FieldError { field: Some(field.into()), message: message.into() }
    }
}

impl From<Invalid> for FieldError {
    fn from(e: Invalid) -> Self {
        FieldError { field: Some(e.field), message: e.message }
    }
}

/// Why a save did not happen. In every case the previous configuration is still in force.
#[derive(Debug, thiserror::Error)]
pub enum SaveError {
    #[error("{}", .0.message)]
    Invalid(FieldError),
    #[error("port {port} cannot be used ({reason}); CallBridge keeps listening where it was and nothing was saved")]
    PortTaken { port: u16, reason: String },
    #[error("{0}; nothing was changed")]
    Write(#[from] ConfigError),
    /// The configuration changed since the copy this save was edited from; the newer one is kept.
    #[error("the settings were changed elsewhere (revision {revision}) since this copy (revision {edited}) was read; nothing was saved")]
    Stale { edited: String, revision: String, current: Arc<Config> },
}

/// Where the listener is, or why it is not.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ListenerState {
    /// `http://localhost:5678` while listening.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub addr: Option<SocketAddr>,
    /// Why nothing is listening ("port 5678 is in use by another program").
    #[serde(skip_serializing_if = "Option::is_none")]
    pub problem: Option<String>,
}

/// What [`Settings::watch`] reports: a new revision after every change.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct SettingsState {
    /// Counts saves and listener changes.
    pub revision: u64,
    /// The revision of the configuration in force ([`Config::revision`]): a page whose copy has
    /// another one is out of date.
    pub config_revision: String,
    /// Counts listeners retired; streams on a retired listener end so that it can stop.
    pub listener_generation: u64,
    pub listener: ListenerState,
}

/// What a successful save did.
#[derive(Debug, Clone, Serialize)]
pub struct Saved {
    /// The file written, when there is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<PathBuf>,
    /// The listener was started again (new port, address or command segments).
    pub listener_restarted: bool,
    pub listener: ListenerState,
}

struct Inner {
    engine: Engine,
    path: Option<PathBuf>,
    /// Held for the whole of a save, so saves and listener changes happen one at a time.
    listener: Mutex<Option<RunningListener>>,
    state: watch::Sender<SettingsState>,
    check: Option<Check>,
    app: AppRouter,
    /// The application router last built by `app`, with the configuration it was built for: the tray
    /// app sends every API call of its pages through [`Settings::router`], which builds it again only
    /// after a change. It is kept without these settings' extension, which would make `Inner` hold
    /// itself (the settings are only held weakly from below, see [`Settings::new`]).
    router: std::sync::Mutex<Option<(Arc<Config>, Router)>>,
}

/// See the module documentation. Cheap to clone; clones share the listener and the state.
#[derive(Clone)]
pub struct Settings {
    inner: Arc<Inner>,
}

impl fmt::Debug for Settings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Settings").field("path", &self.inner.path).field("state", &*self.inner.state.borrow()).finish()
    }
}

impl Settings {
    /// Settings for `engine`, saved to `path` (none: changes apply but are not written anywhere), whose
    /// listener serves the router `app` makes (`listener::router`). Nothing listens until
    /// [`Self::start_listener`].
    pub fn new(engine: Engine, path: Option<PathBuf>, check: Option<Check>, app: AppRouter) -> Settings {
        let initial = SettingsState { config_revision: engine.config_revision(), ..SettingsState::default() };
        let (state, _) = watch::channel(initial);
        let settings = Settings { inner: Arc::new(Inner { engine, path, listener: Mutex::new(None), state, check, app, router: std::sync::Mutex::new(None) }) };
        // Every configuration applied, whoever applied it, is announced with its revision.
        let weak = Arc::downgrade(&settings.inner);
        settings.inner.engine.on_config_applied(Box::new(move |config| {
            if let Some(inner) = weak.upgrade() {
                let revision = config.revision();
                inner.state.send_modify(|s| {
                    s.revision += 1;
                    s.config_revision = revision;
                });
            }
        }));
        settings
    }

    pub fn engine(&self) -> &Engine {
        &self.inner.engine
    }

    pub fn path(&self) -> Option<&Path> {
        self.inner.path.as_deref()
    }

    /// Follows every change: saves and listener moves.
    pub fn watch(&self) -> watch::Receiver<SettingsState> {
        self.inner.state.subscribe()
    }

    pub fn listener_state(&self) -> ListenerState {
        self.inner.state.borrow().listener.clone()
    }

    /// The application router with these settings available to the API (`PUT /api/v1/config`…). The
    /// tray app also sends its pages' API calls through it, in process.
    pub fn router(&self) -> Router {
        self.app_router().layer(Extension(self.clone()))
    }

    /// `app`'s router for the configuration in force, built again only when that changed.
    fn app_router(&self) -> Router {
        let config = self.inner.engine.config();
        let mut built = self.inner.router.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some((built_for, router)) = built.as_ref() {
            if Arc::ptr_eq(built_for, &config) {
                return router.clone();
            }
        }
        let router = (self.inner.app)(self.inner.engine.clone());
        *built = Some((config, router.clone()));
        router
    }

    /// Starts listening where the configuration says. On failure nothing listens, the problem is kept
    /// for [`Self::listener_state`], and the error is returned; a later save can pick another port.
    /// Port 0 picks a free port, which then becomes the effective configuration.
    pub async fn start_listener(&self) -> Result<SocketAddr, std::io::Error> {
        let mut slot = self.inner.listener.lock().await;
        if let Some(running) = slot.take() {
            self.retire();
            running.stop().await;
        }
        // Port 0 becomes the port picked: a change of the configuration like any other.
        let _writer = self.inner.engine.config_writer().await;
        let config = self.inner.engine.config();
        let addr = SocketAddr::new(config.listener.bind, config.listener.port);
        match tokio::net::TcpListener::bind(addr).await {
            Ok(socket) => {
                let actual = socket.local_addr()?;
                if actual.port() != config.listener.port {
                    let mut effective = (*config).clone();
                    effective.listener.port = actual.port();
                    self.inner.engine.apply_config(effective).await;
                }
                let running = RunningListener::serve(socket, self.router())?;
                *slot = Some(running);
                self.publish(listening(&self.inner.engine.config(), actual));
                Ok(actual)
            }
            Err(e) => {
                let problem = port_problem(addr, &e);
                tracing::warn!(%addr, error = %e, "cannot listen");
                self.publish(ListenerState { url: None, addr: None, problem: Some(problem) });
                Err(e)
            }
        }
    }

    /// Validates, saves and applies `new` whatever changed meanwhile (for callers that just read the
    /// configuration; [`Self::update`] reads and changes it in one step).
    pub async fn save(&self, new: Config) -> Result<Saved, SaveError> {
        self.save_edited(new, None).await
    }

    /// Changes the configuration in force with `change`, read and written under the writers' lock,
    /// so no other change is lost (the tray's Do not disturb).
    pub async fn update(&self, change: impl FnOnce(&mut Config)) -> Result<Saved, SaveError> {
        let mut slot = self.inner.listener.lock().await;
        let writer = self.inner.engine.config_writer().await;
        let mut new = (*self.inner.engine.config()).clone();
        change(&mut new);
        let saved = self.apply(&mut slot, new).await;
        drop(writer);
        saved
    }

    /// Validates, saves and applies `new`, edited from the configuration of revision `edited`; see
    /// the module documentation for the order and guarantees. When the configuration in force has
    /// another revision, nothing is saved and [`SaveError::Stale`] carries the configuration in force.
    pub async fn save_edited(&self, new: Config, edited: Option<&str>) -> Result<Saved, SaveError> {
        let mut slot = self.inner.listener.lock().await;
        let writer = self.inner.engine.config_writer().await;
        if let Some(edited) = edited {
            let current = self.inner.engine.config();
            let revision = current.revision();
            if revision != edited {
                return Err(SaveError::Stale { edited: edited.to_owned(), revision, current });
            }
        }
        let saved = self.apply(&mut slot, new).await;
        drop(writer);
        saved
    }

    async fn apply(&self, slot: &mut Option<RunningListener>, new: Config) -> Result<Saved, SaveError> {
        new.validate().map_err(|e| SaveError::Invalid(e.into()))?;
        if let Some(check) = &self.inner.check {
            check(&new).map_err(SaveError::Invalid)?;
        }
        let old = self.inner.engine.config();
        let new_addr = SocketAddr::new(new.listener.bind, new.listener.port);
        let running_addr = slot.as_ref().map(RunningListener::local_addr);
        // A new address is bound before anything else changes: a taken port must change nothing.
        let bound = if running_addr != Some(new_addr) {
            let socket = tokio::net::TcpListener::bind(new_addr)
                .await
                .map_err(|e| SaveError::PortTaken { port: new_addr.port(), reason: io_reason(&e) })?;
            Some(socket)
        } else {
            None
        };
        if let Some(path) = &self.inner.path {
            new.save(path)?;
        }
        let segments_changed = old.listener.make != new.listener.make
            || old.listener.answer != new.listener.answer
            || old.listener.end != new.listener.end;
        self.inner.engine.apply_config(new.clone()).await;
        tracing::info!(path = ?self.inner.path, "settings saved and applied");

        let mut restarted = false;
        if let Some(socket) = bound {
            // Streams on the old listener end now, so stopping it does not wait on them.
            self.retire();
            let actual = socket.local_addr().map_err(|e| SaveError::PortTaken { port: new_addr.port(), reason: io_reason(&e) })?;
            let running = RunningListener::serve(socket, self.router())
                .map_err(|e| SaveError::PortTaken { port: new_addr.port(), reason: io_reason(&e) })?;
            if let Some(old_listener) = slot.replace(running) {
                old_listener.stop().await;
            }
            self.publish(listening(&new, actual));
            restarted = true;
        } else if segments_changed {
            // Same address, new command paths: the router is built from the configuration.
            self.retire();
            if let Some(old_listener) = slot.take() {
                old_listener.stop().await;
            }
            match RunningListener::start_router(self.router(), new_addr).await {
                Ok(running) => {
                    let actual = running.local_addr();
                    *slot = Some(running);
                    self.publish(listening(&new, actual));
                }
                Err(e) => self.publish(ListenerState { url: None, addr: None, problem: Some(port_problem(new_addr, &e)) }),
            }
            restarted = true;
        }
        Ok(Saved { path: self.inner.path.clone(), listener_restarted: restarted, listener: self.listener_state() })
    }

    /// Stops the listener (streams first, then requests in flight).
    pub async fn stop_listener(&self) {
        let mut slot = self.inner.listener.lock().await;
        self.retire();
        if let Some(running) = slot.take() {
            running.stop().await;
        }
        self.publish(ListenerState::default());
    }

    fn retire(&self) {
        self.inner.state.send_modify(|s| {
            s.revision += 1;
            s.listener_generation += 1;
        });
    }

    fn publish(&self, listener: ListenerState) {
        self.inner.state.send_modify(|s| {
            s.revision += 1;
            s.listener = listener;
        });
    }
}

impl RunningListener {
    /// Binds `addr` and serves `app` there.
    pub async fn start_router(app: Router, addr: SocketAddr) -> std::io::Result<RunningListener> {
        let socket = tokio::net::TcpListener::bind(addr).await?;
        RunningListener::serve(socket, app)
    }
}

fn listening(config: &Config, actual: SocketAddr) -> ListenerState {
    let mut shown = config.listener.clone();
    shown.port = actual.port();
    ListenerState { url: Some(shown.base_url()), addr: Some(actual), problem: None }
}

/// A bind error in words a user can act on.
fn port_problem(addr: SocketAddr, e: &std::io::Error) -> String {
    format!("cannot listen on port {} ({}); pick another Listen Port in Settings", addr.port(), io_reason(e))
}

fn io_reason(e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::AddrInUse => "another program is already listening there".into(),
        std::io::ErrorKind::PermissionDenied => "permission denied: ports below 1024 need administrator rights".into(),
        std::io::ErrorKind::AddrNotAvailable => "this machine has no such address".into(),
        _ => e.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::Services;
    use crate::secrets::MemorySecrets;

    fn engine(port: u16) -> Engine {
        let mut config = Config::default();
        config.listener.port = port;
        let services = Services::with_secrets(&config, Arc::new(MemorySecrets::default()));
        Engine::start_with(config, services)
    }

    async fn get(url: &str) -> u16 {
        reqwest::get(url).await.map(|r| r.status().as_u16()).unwrap_or(0)
    }

    #[tokio::test]
    async fn a_new_port_is_served_and_written_and_the_old_one_freed() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("callbridge.toml");
        let settings = Settings::new(engine(0), Some(path.clone()), None, crate::listener::router);
        let first = settings.start_listener().await.expect("listens");
        assert_eq!(settings.engine().config().listener.port, first.port(), "port 0 became the effective port");

        let free = std::net::TcpListener::bind("127.0.0.1:0").expect("probe").local_addr().expect("addr").port();
        let mut new = (*settings.engine().config()).clone();
        new.listener.port = free;
        let saved = settings.save(new).await.expect("saves");
        assert!(saved.listener_restarted);
        assert_eq!(get(&format!("http://127.0.0.1:{free}/health")).await, 200);
        assert_eq!(get(&format!("http://127.0.0.1:{}/health", first.port())).await, 0, "old port closed");
        assert!(std::fs::read_to_string(&path).expect("file").contains(&format!("port = {free}")));
    }

    #[tokio::test]
    async fn a_taken_port_changes_nothing() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("callbridge.toml");
        let settings = Settings::new(engine(0), Some(path.clone()), None, crate::listener::router);
        let first = settings.start_listener().await.expect("listens");
        let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("squat");
        let mut new = (*settings.engine().config()).clone();
        new.listener.port = taken.local_addr().expect("addr").port();
        new.desktop.popups = false;
        let err = settings.save(new).await.expect_err("port is taken");
        assert!(matches!(err, SaveError::PortTaken { .. }), "{err}");
        assert!(err.to_string().contains("keeps listening"), "{err}");
        assert_eq!(get(&format!("http://127.0.0.1:{}/health", first.port())).await, 200, "old listener serves");
        assert!(settings.engine().config().desktop.popups, "nothing applied");
        assert!(!path.exists(), "nothing written");
    }

    #[tokio::test]
    async fn a_taken_port_at_start_is_a_problem_that_a_save_fixes() {
        let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("squat");
        let settings = Settings::new(engine(taken.local_addr().expect("addr").port()), None, None, crate::listener::router);
        assert!(settings.start_listener().await.is_err());
        let problem = settings.listener_state().problem.unwrap_or_default();
        assert!(problem.contains("another program"), "{problem}");
        let free = std::net::TcpListener::bind("127.0.0.1:0").expect("probe").local_addr().expect("addr").port();
        let mut new = (*settings.engine().config()).clone();
        new.listener.port = free;
        settings.save(new).await.expect("saves");
        assert_eq!(settings.listener_state().problem, None);
        assert_eq!(get(&format!("http://127.0.0.1:{free}/health")).await, 200);
    }

    #[tokio::test]
    async fn new_segments_take_effect_on_the_same_port() {
        let settings = Settings::new(engine(0), None, None, crate::listener::router);
        let addr = settings.start_listener().await.expect("listens");
        let mut new = (*settings.engine().config()).clone();
        new.listener.make = crate::config::Segment::parse("dial").expect("segment");
        assert!(settings.save(new).await.expect("saves").listener_restarted);
        assert_eq!(get(&format!("http://{addr}/make/020123456")).await, 404);
        let (code, _) = (get(&format!("http://{addr}/dial/+442079460000")).await, ());
        assert_eq!(code, 200);
    }

    static ROUTERS_BUILT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

    fn counted_router(engine: Engine) -> Router {
        ROUTERS_BUILT.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        crate::listener::router(engine)
    }

    /// The tray app sends each of its pages' API calls through `router()`: it is built again only
    /// after the configuration changed, and then serves the new configuration.
    #[tokio::test]
    async fn the_router_is_built_again_only_after_a_change() {
        use tower::ServiceExt;
        let built = || ROUTERS_BUILT.load(std::sync::atomic::Ordering::SeqCst);
        let status = |router: Router, path: &'static str| async move {
            let mut request = axum::http::Request::builder().uri(path).header("host", "localhost").body(axum::body::Body::empty()).expect("request");
            request.extensions_mut().insert(axum::extract::ConnectInfo(SocketAddr::from(([127, 0, 0, 1], 0))));
            router.oneshot(request).await.map(|r| r.status().as_u16()).unwrap_or_else(|e| match e {})
        };
        let settings = Settings::new(engine(0), None, None, counted_router);
        let before = built();
        settings.start_listener().await.expect("listens");
        assert_eq!(status(settings.router(), "/make/+442079460000").await, 200);
        assert_eq!(status(settings.router(), "/health").await, 200);
        assert_eq!(built() - before, 1, "built once for the listener and the calls, one configuration");

        let before_save = built();
        let mut new = (*settings.engine().config()).clone();
        new.listener.make = crate::config::Segment::parse("dial").expect("segment");
        settings.save(new).await.expect("saves");
        assert_eq!(status(settings.router(), "/dial/+442079460000").await, 200, "the new segment is served");
        assert_eq!(status(settings.router(), "/make/+442079460000").await, 404, "the old one is not");
        assert_eq!(built() - before_save, 1, "built once more after the change");

        // The kept router does not keep the settings alive: once the listener is stopped, nothing does.
        settings.stop_listener().await;
        let engine = settings.engine().clone();
        let weak = Arc::downgrade(&settings.inner);
        drop(settings);
        assert!(weak.upgrade().is_none(), "the settings outlive their last handle");
        engine.shutdown().await;
    }

    /// Every numeric setting, with its bounds, from the one table validation, the forms and the page
    /// use: `None` when the low end is 0, which is valid. The walk in
    /// [`every_numeric_setting_is_bounded_in_the_file_and_over_the_api`] fails when a numeric setting
    /// is missing from [`crate::provider::registry::limits`], so a new one cannot go without a bound.
    fn bounded() -> Vec<(&'static str, Option<u64>, u64)> {
        crate::provider::registry::limits(&Config::default().provider).iter().map(|l| (l.field, (l.min > 0).then_some(l.min), l.max)).collect()
    }

    /// The default configuration as JSON with every section written out (a provider's section is left
    /// out while it holds its defaults), every provider's included.
    fn full_config() -> serde_json::Value {
        let config = Config::default();
        let mut json = serde_json::to_value(&config).expect("json");
        for kind in crate::provider::registry::PROVIDERS {
            json["provider"][kind.as_str()] = kind.section(&config.provider).to_json();
        }
        json
    }

    fn numeric_paths(value: &serde_json::Value, prefix: &str, out: &mut Vec<String>) {
        match value {
            serde_json::Value::Number(_) => out.push(prefix.to_owned()),
            serde_json::Value::Object(map) => {
                for (key, v) in map {
                    let path = if prefix.is_empty() { key.clone() } else { format!("{prefix}.{key}") };
                    numeric_paths(v, &path, out);
                }
            }
            serde_json::Value::Array(items) => {
                for (i, v) in items.iter().enumerate() {
                    numeric_paths(v, &format!("{prefix}[{i}]"), out);
                }
            }
            _ => {}
        }
    }

    fn set_path(value: &mut serde_json::Value, path: &str, new: serde_json::Value) {
        let mut at = value;
        for part in path.split('.') {
            at = at.get_mut(part).unwrap_or_else(|| panic!("{path}: no {part}"));
        }
        *at = new;
    }

    /// `[table]\nkey = value` after two lines of something else, so the reported line can be checked.
    fn file_with(path: &str, value: u64) -> (String, usize) {
        let head = "# a file with a bad value\n[desktop]\npopups = true\n";
        match path.rsplit_once('.') {
            Some((table, key)) => (format!("{head}[{table}]\n{key} = {value}\n"), 5),
            None => (format!("{key} = {value}\n{head}", key = path), 1),
        }
    }

    async fn put_config(addr: SocketAddr, body: &serde_json::Value) -> (u16, serde_json::Value) {
        let response = reqwest::Client::new()
            .put(format!("http://{addr}/api/v1/config"))
            .json(body)
            .send()
            .await
            .expect("the listener answers");
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or_default())
    }

    #[tokio::test]
    async fn every_numeric_setting_is_bounded_in_the_file_and_over_the_api() {
        let full = full_config();
        let mut found = Vec::new();
        numeric_paths(&full, "", &mut found);
        found.sort();
        let bounded = bounded();
        let mut listed: Vec<String> = bounded.iter().map(|(p, _, _)| (*p).to_owned()).collect();
        listed.sort();
        assert_eq!(found, listed, "every numeric setting needs a bound (and a row in BOUNDED and docs/configuration.md)");

        let settings = Settings::new(engine(0), None, None, crate::listener::router);
        let addr = settings.start_listener().await.expect("listens");
        let mut base = full.clone();
        set_path(&mut base, "listener.port", serde_json::json!(addr.port()));
        let before = settings.engine().config();

        for &(path, min, max) in &bounded {
            let mut bad_values = vec![serde_json::json!(max + 1), serde_json::json!(1_u64 << 63), serde_json::json!(u64::MAX)];
            if let Some(min) = min {
                bad_values.push(serde_json::json!(min - 1));
            }
            for bad in bad_values {
                let mut body = base.clone();
                set_path(&mut body, path, bad.clone());
                let (status, answer) = put_config(addr, &body).await;
                assert_eq!(status, 400, "{path} = {bad}: {answer}");
                assert_eq!(answer["error"], "invalid", "{path} = {bad}: {answer}");
                assert_eq!(answer["field"].as_str(), Some(path), "{path} = {bad}: {answer}");
            }
            // The file: just past each end, where TOML can write the number.
            let mut file_values = vec![max + 1];
            file_values.extend(min.map(|m| m - 1));
            for bad in file_values {
                let (text, line) = file_with(path, bad);
                let err = Config::from_toml(&text, Path::new("t.toml")).expect_err(&format!("{path} = {bad}")).to_string();
                assert!(err.contains(&format!("(line {line})")), "{path} = {bad}: {err}");
                let key = path.rsplit('.').next().unwrap_or(path);
                let named = err.contains(path) || err.contains("expected u16") || (path == "version" && err.contains(key));
                assert!(named, "{path} = {bad}: the error does not say what is wrong: {err}");
            }
            // Both ends themselves are accepted by the file loader.
            for good in [min.unwrap_or(0), max] {
                let (text, _) = file_with(path, good);
                // TeleCMI's request timeout may not be below its connect timeout (5 s by default).
                if path == "provider.telecmi.timeout_secs" && good == 1 {
                    continue;
                }
                // …nor its connect timeout above the request timeout (15 s by default).
                if path == "provider.telecmi.connect_timeout_secs" && good == max {
                    continue;
                }
                Config::from_toml(&text, Path::new("t.toml")).unwrap_or_else(|e| panic!("{path} = {good}: {e}"));
            }
        }
        assert_eq!(settings.engine().config(), before, "nothing was applied");
    }

    #[tokio::test]
    async fn a_test_rule_that_is_not_an_object_is_refused_not_a_crash() {
        let settings = Settings::new(engine(0), None, None, crate::listener::router);
        let addr = settings.start_listener().await.expect("listens");
        let client = reqwest::Client::new();
        for rule in [serde_json::json!(5), serde_json::json!("x"), serde_json::json!([1]), serde_json::json!(null)] {
            let response = client
                .post(format!("http://{addr}/api/v1/notifications/test"))
                .json(&serde_json::json!({ "rule": rule }))
                .send()
                .await
                .expect("answered");
            assert_eq!(response.status().as_u16(), 400, "{rule}");
            let body: serde_json::Value = response.json().await.expect("json");
            assert_eq!((body["error"].as_str(), body["field"].as_str()), (Some("invalid"), Some("rule")), "{body}");
        }
        assert_eq!(get(&format!("http://{addr}/health")).await, 200);
    }

    /// The settings page validates against `GET /api/v1/settings/schema`: it serves every placeholder
    /// the engine accepts, the reserved segments the engine refuses, and every limit.
    #[tokio::test]
    async fn the_schema_serves_what_the_engine_checks() {
        let settings = Settings::new(engine(0), None, None, crate::listener::router);
        let addr = settings.start_listener().await.expect("listens");
        let schema: serde_json::Value =
            reqwest::get(format!("http://{addr}/api/v1/settings/schema")).await.expect("answered").json().await.expect("json");
        let served: Vec<&str> = schema["placeholders"].as_array().into_iter().flatten().filter_map(|p| p["name"].as_str()).collect();
        for p in crate::notify::template::Placeholder::ALL {
            assert!(served.contains(&p.name()), "${} is accepted by the engine but not served: {served:?}", p.name());
        }
        for name in &served {
            assert!(crate::notify::template::Template::parse(&format!("${name}")).is_ok(), "${name} is served but refused");
        }
        let reserved: Vec<&str> = schema["reserved_segments"].as_array().into_iter().flatten().filter_map(|s| s.as_str()).collect();
        assert!(!reserved.is_empty());
        for segment in &reserved {
            assert!(crate::config::Segment::parse(segment).is_err(), "{segment} is served as reserved but accepted");
        }
        for segment in ["api", "health", "webhooks", "ui", "assets"] {
            assert!(crate::config::Segment::parse(segment).is_err() == reserved.contains(&segment), "{segment}");
        }
        let limits = schema["limits"].as_array().map(Vec::len);
        assert_eq!(limits, Some(bounded().len()), "{schema}");
    }

    /// "Always allow this site" and the tray's Do not disturb change the configuration under the same
    /// revision as the settings page: a page's stale copy is refused, and no writer loses another's
    /// change.
    #[tokio::test]
    async fn every_writer_changes_the_revision_and_a_stale_copy_is_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("callbridge.toml");
        let config = Config::default();
        let mut services = Services::with_secrets(&config, Arc::new(MemorySecrets::default()));
        services.config_file = Some(path.clone());
        let engine = Engine::start_with(config, services);
        let settings = Settings::new(engine.clone(), Some(path.clone()), None, crate::listener::router);
        let mut watch = settings.watch();
        let page_copy = (*engine.config()).clone();
        let page_revision = engine.config_revision();
        assert_eq!(watch.borrow_and_update().config_revision, page_revision);

        engine.trust_origin("https://crm.example.com").await.expect("trusted");
        let after_trust = engine.config_revision();
        assert_ne!(after_trust, page_revision);
        assert!(watch.has_changed().unwrap_or(false), "the change was announced");
        assert_eq!(watch.borrow_and_update().config_revision, after_trust, "with its revision");

        let mut stale = page_copy.clone();
        stale.desktop.popups = false;
        match settings.save_edited(stale, Some(&page_revision)).await {
            Err(SaveError::Stale { revision, current, .. }) => {
                assert_eq!(revision, after_trust);
                assert_eq!(current.security.trusted_origins.len(), 1);
            }
            other => panic!("expected a stale save, got {other:?}"),
        }
        assert!(engine.config().desktop.popups, "the stale change was not applied");
        assert!(std::fs::read_to_string(&path).expect("file").contains("crm.example.com"), "the origin is in the file");

        // Do not disturb, from the tray, while origins are trusted at the same time: nothing is lost.
        let mut tasks = Vec::new();
        for i in 0..8 {
            let (engine, settings) = (engine.clone(), settings.clone());
            tasks.push(tokio::spawn(async move {
                engine.trust_origin(&format!("https://crm{i}.example.com")).await.expect("trusted");
                settings.update(|c| c.desktop.do_not_disturb = !c.desktop.do_not_disturb).await.expect("toggled");
            }));
        }
        for task in tasks {
            task.await.expect("task");
        }
        let now = engine.config();
        assert_eq!(now.security.trusted_origins.len(), 9, "{:?}", now.security.trusted_origins);
        assert!(!now.desktop.do_not_disturb, "toggled an even number of times");
        assert_eq!(Config::load(&path).expect("the file loads").security.trusted_origins.len(), 9);

        // A copy of the revision in force saves.
        let mut fresh = (*engine.config()).clone();
        fresh.desktop.popups = false;
        settings.save_edited(fresh, Some(&engine.config_revision())).await.expect("saves");
        assert!(!engine.config().desktop.popups);
    }

    #[tokio::test]
    async fn invalid_settings_name_the_field_and_a_check_can_refuse() {
        let check: Check = Box::new(|c: &Config| {
            if c.desktop.dial_shortcut == "nonsense" {
                Err(FieldError::new("desktop.dial_shortcut", "not a shortcut"))
            } else {
                Ok(())
            }
        });
        let settings = Settings::new(engine(0), None, Some(check), crate::listener::router);
        let mut new = (*settings.engine().config()).clone();
        new.listener.port = 0;
        match settings.save(new.clone()).await {
            Err(SaveError::Invalid(e)) => assert_eq!(e.field.as_deref(), Some("listener.port")),
            other => panic!("expected invalid, got {other:?}"),
        }
        new.listener.port = 5999;
        new.desktop.dial_shortcut = "nonsense".into();
        match settings.save(new).await {
            Err(SaveError::Invalid(e)) => assert_eq!(e.field.as_deref(), Some("desktop.dial_shortcut")),
            other => panic!("expected invalid, got {other:?}"),
        }
    }
}
