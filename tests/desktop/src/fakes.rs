//! What the desktop around the app would be, faked on the test's own session bus and loopback:
//!
//! * [`Notifications`] — a notification server (`org.freedesktop.Notifications`, the Desktop
//!   Notifications Specification) that records every `Notify` and emits `ActionInvoked` when the test
//!   "clicks" a notification;
//! * [`TrayHost`] — a tray host (`org.kde.StatusNotifierWatcher`) the app's tray icon registers with,
//!   whose menu the test reads over `com.canonical.dbusmenu`, as a panel would;
//! * [`LookupCrm`] — a CRM on loopback that answers caller lookups when the test lets it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use axum::extract::{Query, State};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::json;
use zbus::blocking::{connection, Connection, Proxy};
use zbus::message::Header;
use zbus::zvariant::{OwnedObjectPath, OwnedValue, Value};

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

const NOTIFICATIONS: &str = "org.freedesktop.Notifications";
const NOTIFICATIONS_PATH: &str = "/org/freedesktop/Notifications";

/// One notification as the server received it.
#[derive(Debug, Clone, PartialEq)]
pub struct Shown {
    pub id: u32,
    pub app_name: String,
    pub summary: String,
    pub body: String,
    /// Action keys and labels, alternating, as sent (`["default", "Call back"]`).
    pub actions: Vec<String>,
}

struct NotificationServer {
    shown: Arc<Mutex<Vec<Shown>>>,
}

#[zbus::interface(name = "org.freedesktop.Notifications")]
impl NotificationServer {
    #[allow(clippy::too_many_arguments)]
    fn notify(
        &self,
        app_name: String,
        _replaces_id: u32,
        _app_icon: String,
        summary: String,
        body: String,
        actions: Vec<String>,
        _hints: HashMap<String, OwnedValue>,
        _expire_timeout: i32,
    ) -> u32 {
        let mut shown = lock(&self.shown);
        let id = u32::try_from(shown.len()).unwrap_or(u32::MAX - 1) + 1;
        shown.push(Shown { id, app_name, summary, body, actions });
        id
    }

    fn close_notification(&self, _id: u32) {}

    fn get_capabilities(&self) -> Vec<String> {
        vec!["actions".into(), "body".into()]
    }

    fn get_server_information(&self) -> (String, String, String, String) {
        ("callbridge-test-notifications".into(), "callbridge".into(), "1".into(), "1.2".into())
    }
}

/// A notification server on the test's session bus.
pub struct Notifications {
    connection: Connection,
    shown: Arc<Mutex<Vec<Shown>>>,
}

impl std::fmt::Debug for Notifications {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Notifications").field("shown", &self.shown()).finish()
    }
}

impl Notifications {
    /// Serves `org.freedesktop.Notifications` on the bus at `address`; fails the test when another
    /// server already owns the name.
    pub fn start(address: &str) -> Notifications {
        let shown = Arc::new(Mutex::new(Vec::new()));
        let server = NotificationServer { shown: Arc::clone(&shown) };
        let connection = connection::Builder::address(address)
            .and_then(|b| b.serve_at(NOTIFICATIONS_PATH, server))
            .and_then(|b| b.name(NOTIFICATIONS))
            .and_then(|b| b.build())
            .unwrap_or_else(|e| panic!("the fake notification server cannot own {NOTIFICATIONS} on {address}: {e}"));
        Notifications { connection, shown }
    }

    /// Every notification received so far, oldest first.
    pub fn shown(&self) -> Vec<Shown> {
        lock(&self.shown).clone()
    }

    /// The user clicks action `key` of notification `id` (`default`: the notification itself).
    pub fn invoke(&self, id: u32, key: &str) {
        self.connection
            .emit_signal(None::<&str>, NOTIFICATIONS_PATH, NOTIFICATIONS, "ActionInvoked", &(id, key))
            .expect("emit ActionInvoked");
    }
}

const WATCHER: &str = "org.kde.StatusNotifierWatcher";

struct Watcher {
    /// (bus name, object path) of each registered item.
    items: Arc<Mutex<Vec<(String, String)>>>,
}

#[zbus::interface(name = "org.kde.StatusNotifierWatcher")]
impl Watcher {
    fn register_status_notifier_item(&self, service: String, #[zbus(header)] header: Header<'_>) {
        let sender = header.sender().map(|s| s.to_string()).unwrap_or_default();
        // The item names its object path (libayatana-appindicator) or its bus name (the KDE default path).
        let item = if service.starts_with('/') { (sender, service) } else { (service, "/StatusNotifierItem".to_owned()) };
        lock(&self.items).push(item);
    }

    fn register_status_notifier_host(&self, _service: String) {}

    #[zbus(property)]
    fn registered_status_notifier_items(&self) -> Vec<String> {
        lock(&self.items).iter().map(|(bus, path)| format!("{bus}{path}")).collect()
    }

    #[zbus(property)]
    fn is_status_notifier_host_registered(&self) -> bool {
        true
    }

    #[zbus(property)]
    fn protocol_version(&self) -> i32 {
        0
    }
}

/// A tray host on the test's session bus: the app's tray icon registers with it, and the test reads
/// the icon's tooltip-less menu as a panel would.
pub struct TrayHost {
    connection: Connection,
    items: Arc<Mutex<Vec<(String, String)>>>,
}

impl std::fmt::Debug for TrayHost {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TrayHost").field("items", &*lock(&self.items)).finish()
    }
}

impl TrayHost {
    /// Serves `org.kde.StatusNotifierWatcher` on the bus at `address` (before the app starts, so its
    /// tray icon registers here rather than falling back to an X11 tray icon).
    pub fn start(address: &str) -> TrayHost {
        let items = Arc::new(Mutex::new(Vec::new()));
        let watcher = Watcher { items: Arc::clone(&items) };
        let connection = connection::Builder::address(address)
            .and_then(|b| b.serve_at("/StatusNotifierWatcher", watcher))
            .and_then(|b| b.name(WATCHER))
            .and_then(|b| b.build())
            .unwrap_or_else(|e| panic!("the fake tray host cannot own {WATCHER} on {address}: {e}"));
        TrayHost { connection, items }
    }

    /// The labels of the tray menu's items, submenus' items included, in order; `None` while no
    /// tray icon registered or its menu cannot be read.
    pub fn menu_labels(&self) -> Option<Vec<String>> {
        let (bus, path) = lock(&self.items).last().cloned()?;
        let item = Proxy::new(&self.connection, bus.clone(), path, "org.kde.StatusNotifierItem").ok()?;
        let menu: OwnedObjectPath = item.get_property("Menu").ok()?;
        let menu = Proxy::new(&self.connection, bus, menu, "com.canonical.dbusmenu").ok()?;
        let reply = menu.call_method("GetLayout", &(0i32, -1i32, Vec::<String>::new())).ok()?;
        type Layout = (i32, HashMap<String, OwnedValue>, Vec<OwnedValue>);
        let (_revision, (_id, props, children)): (u32, Layout) = reply.body().deserialize().ok()?;
        let mut labels = Vec::new();
        labels.extend(props.get("label").and_then(|l| l.downcast_ref::<String>().ok()));
        for child in &children {
            collect_labels(child, &mut labels);
        }
        Some(labels)
    }
}

/// The `label` properties of a dbusmenu layout `(ia{sv}av)` and its children, depth first.
fn collect_labels(node: &Value<'_>, labels: &mut Vec<String>) {
    match node {
        Value::Value(inner) => collect_labels(inner, labels),
        Value::Structure(s) => {
            let fields = s.fields();
            if let Some(Value::Dict(props)) = fields.get(1) {
                for (key, value) in props.iter() {
                    let value = match value {
                        Value::Value(v) => v.as_ref(),
                        v => v,
                    };
                    if let (Value::Str(k), Value::Str(label)) = (key, value) {
                        if k.as_str() == "label" {
                            labels.push(label.as_str().to_owned());
                        }
                    }
                }
            }
            if let Some(Value::Array(children)) = fields.get(2) {
                for child in children.iter() {
                    collect_labels(child, labels);
                }
            }
        }
        _ => {}
    }
}

#[derive(Clone)]
struct CrmState {
    /// The `phone` query parameter of each lookup received.
    asked: Arc<Mutex<Vec<String>>>,
    released: tokio::sync::watch::Receiver<bool>,
}

/// A CRM that answers `GET /contacts?phone=+442079460789` with Ada Lovelace of Acme Corp (her record at
/// `/contacts/42`) — but only once the test [released](LookupCrm::release) it: a lookup asked before
/// waits for that, as a slow CRM would — and any other number with 404 at once.
#[derive(Debug)]
pub struct LookupCrm {
    url: String,
    asked: Arc<Mutex<Vec<String>>>,
    release: tokio::sync::watch::Sender<bool>,
    _stop: tokio::sync::oneshot::Sender<()>,
}

/// The number the lookup CRM knows.
pub const ADA: &str = "+442079460789";

impl LookupCrm {
    pub async fn start() -> LookupCrm {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind the lookup CRM");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        let asked = Arc::new(Mutex::new(Vec::new()));
        let (release, released) = tokio::sync::watch::channel(false);
        let state = CrmState { asked: Arc::clone(&asked), released };
        let app = Router::new().route("/contacts", get(contact)).with_state(state);
        let stop = callbridge_e2e::serve_until_stopped(listener, app);
        LookupCrm { url, asked, release, _stop: stop }
    }

    /// From now on the CRM answers, the lookups waiting among them.
    pub fn release(&self) {
        self.release.send_replace(true);
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    /// The numbers asked for so far.
    pub fn asked(&self) -> Vec<String> {
        lock(&self.asked).clone()
    }
}

async fn contact(State(state): State<CrmState>, Query(query): Query<HashMap<String, String>>) -> Response {
    let phone = query.get("phone").cloned().unwrap_or_default();
    lock(&state.asked).push(phone.clone());
    if phone != ADA {
        return axum::http::StatusCode::NOT_FOUND.into_response();
    }
    let mut released = state.released;
    let _ = released.wait_for(|r| *r).await;
    Json(json!({ "id": 42, "name": "Ada Lovelace", "company": { "name": "Acme Corp" }, "url": "/contacts/42" })).into_response()
}
