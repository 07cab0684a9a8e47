//! A fake Kazoo: Crossbar on one loopback port, the blackhole websocket on another, following
//! Kazoo's Crossbar and blackhole documentation (https://github.com/2600hz/kazoo/blob/master/applications/crossbar/doc/, https://github.com/2600hz/kazoo/blob/master/applications/blackhole/doc/).
//!
//! * `PUT /v2/api_auth` (`{"data":{"api_key":…}}`) and `PUT /v2/user_auth`
//!   (`{"data":{"credentials":md5("user:pass"),"account_name":…,"method":"md5"}}`) answer `201` with an
//!   `auth_token`, or `401` with `{"error":"401","message":"invalid_credentials","status":"error",…}`.
//! * `GET|POST /v2/accounts/{ACCOUNT_ID}/clicktocall/{C2C_ID}/connect` takes `contact` from the query or
//!   from `{"data":{"contact":…}}`, needs `X-Auth-Token`, and answers `202` with the documented originate
//!   body (`outbound_call_id: "c2c-{C2C_ID}-{RANDOM}"`). Then the call plays out on the websocket:
//!   CHANNEL_CREATE and CHANNEL_ANSWER of the click-to-call leg (the user's phone), then of the
//!   contact's leg (`Other-Leg-Call-ID` = the first leg).
//! * `POST /v2/accounts/{ACCOUNT_ID}/channels/{UUID}` with `{"data":{"action":"hangup"}}` ends a live
//!   channel (CHANNEL_DESTROY of both legs, `NORMAL_CLEARING`); an unknown UUID is a `404`.
//! * The websocket takes `{"action":"subscribe","auth_token":…,"request_id":…,"data":{"account_id":…,
//!   "binding":…}}`, replies `{"action":"reply",…,"status":"success"|"error"}`, and sends subscribed
//!   events in the 4.x shape `{"action":"event","name":…,"data":{Hyphen-Case AMQP event}}` — or, with
//!   [`FakeKazoo::use_legacy_shape`], the 3.x `{"name":…,"args":{…}}`.
//!
//! Every HTTP request is recorded. Events are sent only to subscribers of their binding.

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{SystemTime, UNIX_EPOCH};

use axum::body::Bytes;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, put};
use axum::{Json, Router};
use futures_util::{SinkExt, StreamExt};
use md5::{Digest, Md5};
use serde_json::{json, Value};
use tokio::sync::broadcast;

use crate::crm::Received;

/// Kazoo's Gregorian-seconds clock: Unix seconds + 62167219200.
pub fn gregorian_now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or_default() + 62_167_219_200
}

/// The account and credentials the fake knows.
#[derive(Debug, Clone)]
pub struct Account {
    pub account_id: String,
    pub account_name: String,
    pub realm: String,
    pub clicktocall_id: String,
    /// The click-to-call's `extension`: the user's own phone, rung first.
    pub extension: String,
    pub api_key: String,
    pub username: String,
    pub password: String,
}

impl Default for Account {
    fn default() -> Self {
        Account {
            account_id: "3a1bd0c8e9f2a4b6c7d8e9f0a1b2c3d4".into(),
            account_name: "acme".into(),
            realm: "acme.sip.example.com".into(),
            clicktocall_id: "c2c0a9b8c7d6e5f4a3b2c1d0e9f8a7b6".into(),
            extension: "101".into(),
            api_key: "dfdb4869092fcaa210077109e42bdbac255dda8b9fe6eeb962b880bea7f9f372".into(),
            username: "alice".into(),
            password: "correct horse".into(),
        }
    }
}

/// A channel (call leg) the fake knows.
#[derive(Debug, Clone)]
struct Channel {
    direction: &'static str,
    caller: String,
    callee: String,
    other_leg: Option<String>,
    clicktocall: bool,
    contact: Option<String>,
}

#[derive(Debug, Default)]
struct Shared {
    requests: Vec<Received>,
    tokens: HashSet<String>,
    subscriptions: Vec<Value>,
    channels: HashMap<String, Channel>,
    /// Calls (first leg → all legs) still up.
    calls: HashMap<String, Vec<String>>,
    legacy_shape: bool,
    counter: u64,
}

#[derive(Debug, Clone)]
struct Fake {
    account: Arc<Account>,
    shared: Arc<Mutex<Shared>>,
    /// (event name, websocket text) to every connected socket; each filters by its bindings.
    events: broadcast::Sender<(String, String)>,
}

impl Fake {
    fn lock(&self) -> MutexGuard<'_, Shared> {
        self.shared.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn next(&self) -> u64 {
        let mut s = self.lock();
        s.counter += 1;
        s.counter
    }
}

/// See the module documentation.
#[derive(Debug)]
pub struct FakeKazoo {
    fake: Fake,
    api_addr: SocketAddr,
    ws_addr: SocketAddr,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl FakeKazoo {
    pub async fn start() -> FakeKazoo {
        FakeKazoo::start_with(Account::default()).await
    }

    pub async fn start_with(account: Account) -> FakeKazoo {
        let (events, _) = broadcast::channel(256);
        let fake = Fake { account: Arc::new(account), shared: Arc::default(), events };
        let api = Router::new()
            .route("/v2/api_auth", put(api_auth))
            .route("/v2/user_auth", put(user_auth))
            .route("/v2/accounts/{account}/clicktocall/{c2c}/connect", any(connect))
            .route("/v2/accounts/{account}/channels/{uuid}", any(channel_action))
            .fallback(unknown)
            .with_state(fake.clone());
        let ws = Router::new().route("/", any(websocket)).with_state(fake.clone());
        let (api_addr, api_task) = serve(api).await;
        let (ws_addr, ws_task) = serve(ws).await;
        FakeKazoo { fake, api_addr, ws_addr, tasks: vec![api_task, ws_task] }
    }

    pub fn account(&self) -> &Account {
        &self.fake.account
    }

    /// Crossbar's base URL, `http://127.0.0.1:PORT`.
    pub fn api_url(&self) -> String {
        format!("http://{}", self.api_addr)
    }

    /// The blackhole websocket, `ws://127.0.0.1:PORT`.
    pub fn ws_url(&self) -> String {
        format!("ws://{}", self.ws_addr)
    }

    /// From now on, send events in the 3.x `{"name":…,"args":…}` shape.
    pub fn use_legacy_shape(&self) {
        self.fake.lock().legacy_shape = true;
    }

    /// Every HTTP request so far, in order.
    pub fn requests(&self) -> Vec<Received> {
        self.fake.lock().requests.clone()
    }

    /// Every subscribe request received on the websocket (accepted or not).
    pub fn subscriptions(&self) -> Vec<Value> {
        self.fake.lock().subscriptions.clone()
    }

    /// Tokens handed out so far.
    pub fn tokens(&self) -> Vec<String> {
        self.fake.lock().tokens.iter().cloned().collect()
    }

    /// Forgets every token, as when they expire: the next request with one gets a 401.
    pub fn expire_tokens(&self) {
        self.fake.lock().tokens.clear();
    }

    /// Calls still up (their first leg's Call-ID).
    pub fn live_calls(&self) -> Vec<String> {
        self.fake.lock().calls.keys().cloned().collect()
    }

    /// The legs (Call-IDs) of the call whose first leg is `call_id`, first leg first; empty once it ended.
    pub fn legs_of(&self, call_id: &str) -> Vec<String> {
        self.fake.lock().calls.get(call_id).cloned().unwrap_or_default()
    }

    /// A call from `caller` comes into the account for the user's extension: CHANNEL_CREATE of an
    /// inbound leg. Returns its Call-ID.
    pub fn ring_incoming(&self, caller: &str, name: &str) -> String {
        let call_id = format!("{:016x}-inbound@{}", self.fake.next(), self.fake.account.realm);
        let channel = Channel {
            direction: "inbound",
            caller: caller.into(),
            callee: self.fake.account.extension.clone(),
            other_leg: None,
            clicktocall: false,
            contact: None,
        };
        {
            let mut s = self.fake.lock();
            s.channels.insert(call_id.clone(), channel);
            s.calls.insert(call_id.clone(), vec![call_id.clone()]);
        }
        emit(&self.fake, "CHANNEL_CREATE", &call_id, Some(name), None);
        call_id
    }

    /// The user picks up: CHANNEL_ANSWER of `call_id`.
    pub fn answer(&self, call_id: &str) {
        emit(&self.fake, "CHANNEL_ANSWER", call_id, None, None);
    }

    /// The call ends from the far side: CHANNEL_DESTROY of all its legs with `cause`.
    pub fn hang_up(&self, call_id: &str, cause: &str) {
        destroy(&self.fake, call_id, cause);
    }

    /// The webhook body Kazoo would post for `hook` (`channel_create`, …) about leg `call_id`, in
    /// snake_case with a Gregorian timestamp as a string (https://github.com/2600hz/kazoo/blob/master/applications/crossbar/doc/webhooks.md).
    pub fn webhook_payload(&self, hook: &str, call_id: &str) -> Value {
        let s = self.fake.lock();
        let channel = s.channels.get(call_id).cloned().unwrap_or_else(|| panic!("no channel {call_id}"));
        let account = &self.fake.account;
        let mut v = json!({
            "account_id": account.account_id,
            "authorizing_id": if channel.clicktocall { account.clicktocall_id.clone() } else { String::new() },
            "authorizing_type": if channel.clicktocall { "clicktocall" } else { "" },
            "call_direction": channel.direction,
            "call_forwarded": false,
            "call_id": call_id,
            "callee_id_name": channel.callee,
            "callee_id_number": channel.callee,
            "caller_id_name": channel.caller,
            "caller_id_number": channel.caller,
            "custom_application_vars": {},
            "custom_channel_vars": {"account_id": account.account_id},
            "emergency_resource_used": false,
            "from": format!("{}@{}", channel.caller, account.realm),
            "hook_event": hook,
            "inception": if channel.direction == "inbound" { "offnet" } else { "onnet" },
            "is_internal_leg": false,
            "local_resource_used": false,
            "other_leg_call_id": channel.other_leg.clone().unwrap_or_default(),
            "owner_id": "",
            "request": format!("{}@{}", channel.callee, account.realm),
            "reseller_id": account.account_id,
            "timestamp": gregorian_now().to_string(),
            "to": format!("{}@{}", channel.callee, account.realm),
        });
        if hook == "channel_destroy" {
            v["hangup_cause"] = json!("NORMAL_CLEARING");
            v["hangup_code"] = json!("sip:200");
            v["duration_seconds"] = json!(7);
            v["ringing_seconds"] = json!(2);
            v["billing_seconds"] = json!(5);
        }
        v
    }
}

impl Drop for FakeKazoo {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

async fn serve(app: Router) -> (SocketAddr, tokio::task::JoinHandle<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind the fake Kazoo");
    let addr = listener.local_addr().expect("addr");
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (addr, task)
}

fn record(fake: &Fake, method: &Method, uri: &Uri, headers: &HeaderMap, body: &Bytes) {
    fake.lock().requests.push(Received {
        method: method.to_string(),
        path: uri.path().to_owned(),
        query: uri.query().unwrap_or_default().to_owned(),
        headers: headers.iter().map(|(n, v)| (n.as_str().to_owned(), String::from_utf8_lossy(v.as_bytes()).into_owned())).collect(),
        body: String::from_utf8_lossy(body).into_owned(),
    });
}

fn request_id(fake: &Fake) -> String {
    format!("{:032x}", fake.next())
}

/// Kazoo's error envelope.
fn error(fake: &Fake, status: StatusCode, message: &str, data: Value) -> Response {
    let body = json!({
        "data": data,
        "error": status.as_u16().to_string(),
        "message": message,
        "status": "error",
        "request_id": request_id(fake),
        "timestamp": "2024-01-01T00:00:00Z",
        "version": "4.3.1",
        "node": "fake-kazoo",
    });
    (status, Json(body)).into_response()
}

fn unauthorized(fake: &Fake) -> Response {
    error(fake, StatusCode::UNAUTHORIZED, "invalid_credentials", json!({"message": "invalid credentials"}))
}

/// `201` with a fresh token, as `api_auth` and `user_auth` answer.
fn token_response(fake: &Fake) -> Response {
    let token = format!("{:064x}", fake.next() * 7_919);
    fake.lock().tokens.insert(token.clone());
    let account = &fake.account;
    (
        StatusCode::CREATED,
        Json(json!({
            "auth_token": token,
            "data": {
                "account_id": account.account_id,
                "apps": [],
                "is_reseller": false,
                "language": "en-US",
                "owner_id": "0f1e2d3c4b5a69788796a5b4c3d2e1f0",
                "reseller_id": account.account_id,
            },
            "request_id": request_id(fake),
            "revision": "automatic",
            "status": "success",
        })),
    )
        .into_response()
}

async fn api_auth(State(fake): State<Fake>, method: Method, uri: Uri, headers: HeaderMap, body: Bytes) -> Response {
    record(&fake, &method, &uri, &headers, &body);
    let v: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    if v.pointer("/data/api_key").and_then(Value::as_str) == Some(fake.account.api_key.as_str()) {
        token_response(&fake)
    } else {
        unauthorized(&fake)
    }
}

async fn user_auth(State(fake): State<Fake>, method: Method, uri: Uri, headers: HeaderMap, body: Bytes) -> Response {
    record(&fake, &method, &uri, &headers, &body);
    let v: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let expected = format!("{:x}", Md5::digest(format!("{}:{}", fake.account.username, fake.account.password).as_bytes()));
    let ok = v.pointer("/data/credentials").and_then(Value::as_str) == Some(expected.as_str())
        && v.pointer("/data/account_name").and_then(Value::as_str) == Some(fake.account.account_name.as_str())
        && v.pointer("/data/method").and_then(Value::as_str).unwrap_or("md5") == "md5";
    if ok {
        token_response(&fake)
    } else {
        unauthorized(&fake)
    }
}

fn authorized(fake: &Fake, headers: &HeaderMap) -> bool {
    let token = headers.get("x-auth-token").and_then(|v| v.to_str().ok()).unwrap_or_default();
    fake.lock().tokens.contains(token)
}

fn bad_identifier(fake: &Fake, what: &str) -> Response {
    error(fake, StatusCode::NOT_FOUND, "bad identifier", json!({"cause": what, "message": "bad identifier"}))
}

async fn connect(
    State(fake): State<Fake>,
    Path((account, c2c)): Path<(String, String)>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    record(&fake, &method, &uri, &headers, &body);
    if method != Method::GET && method != Method::POST {
        return error(&fake, StatusCode::METHOD_NOT_ALLOWED, "method not allowed", json!({}));
    }
    if !authorized(&fake, &headers) {
        return unauthorized(&fake);
    }
    let a = Arc::clone(&fake.account);
    if account != a.account_id {
        return bad_identifier(&fake, &account);
    }
    if c2c != a.clicktocall_id {
        return bad_identifier(&fake, &c2c);
    }
    // cb_context:req_value: the query string or the body's data.
    let from_query = url::form_urlencoded::parse(uri.query().unwrap_or_default().as_bytes()).find(|(k, _)| k == "contact").map(|(_, v)| v.into_owned());
    let from_body = serde_json::from_slice::<Value>(&body).ok().and_then(|v| v.pointer("/data/contact").and_then(Value::as_str).map(str::to_owned));
    let Some(contact) = from_query.or(from_body).filter(|c| !c.is_empty()) else {
        return error(&fake, StatusCode::BAD_REQUEST, "validation error", json!({"contact": {"required": {"message": "contact required"}}}));
    };
    let outbound_call_id = format!("c2c-{}-{:08x}", a.clicktocall_id, fake.next());
    let data = json!({
        "application_data": {"route": contact},
        "application_name": "transfer",
        "continue_on_fail": true,
        "custom_application_vars": {"contact": contact},
        "custom_channel_vars": {
            "account_id": a.account_id,
            "authorizing_id": a.clicktocall_id,
            "authorizing_type": "clicktocall",
            "auto_answer_loopback": true,
            "from_uri": format!("{}@{}", a.extension, a.realm),
            "inherit_codec": false,
            "loopback_request_uri": format!("{contact}@{}", a.realm),
            "request_uri": format!("{contact}@{}", a.realm),
            "retain_cid": true,
        },
        "dial_endpoint_method": "single",
        "endpoints": [{"invite_format": "loopback", "route": a.extension, "to_did": a.extension, "to_realm": a.realm}],
        "export_custom_channel_vars": ["Account-ID", "Authorizing-ID", "Authorizing-Type", "Loopback-Request-URI", "From-URI", "Request-URI"],
        "ignore_early_media": true,
        "loopback_bowout": "false",
        "outbound_call_id": outbound_call_id,
        "outbound_callee_id_name": a.extension,
        "outbound_callee_id_number": a.extension,
        "outbound_caller_id_name": "CallBridge test click-to-call",
        "outbound_caller_id_number": contact,
        "simplify_loopback": "false",
        "start_control_process": "false",
        "timeout": 30,
    });
    let body = json!({
        "auth_token": headers.get("x-auth-token").and_then(|v| v.to_str().ok()).unwrap_or_default(),
        "data": data,
        "node": "fake-kazoo",
        "request_id": request_id(&fake),
        "revision": "automatic",
        "status": "success",
        "timestamp": "2024-01-01T00:00:00Z",
        "version": "4.3.1",
    });
    // Non-blocking: the originate happens after the 202, as Kazoo does it.
    tokio::spawn(play_click_to_call(fake.clone(), outbound_call_id, contact));
    (StatusCode::ACCEPTED, Json(body)).into_response()
}

/// The user's phone rings and is answered, then the contact's leg is created and answered.
async fn play_click_to_call(fake: Fake, leg_a: String, contact: String) {
    let a = Arc::clone(&fake.account);
    let leg_b = format!("{:016x}-contact@{}", fake.next(), a.realm);
    {
        let mut s = fake.lock();
        s.channels.insert(
            leg_a.clone(),
            Channel { direction: "outbound", caller: contact.clone(), callee: a.extension.clone(), other_leg: None, clicktocall: true, contact: Some(contact.clone()) },
        );
        s.channels.insert(
            leg_b.clone(),
            Channel {
                direction: "outbound",
                caller: a.extension.clone(),
                callee: contact.clone(),
                other_leg: Some(leg_a.clone()),
                clicktocall: false,
                contact: None,
            },
        );
        s.calls.insert(leg_a.clone(), vec![leg_a.clone(), leg_b.clone()]);
    }
    for (name, leg) in [("CHANNEL_CREATE", &leg_a), ("CHANNEL_ANSWER", &leg_a), ("CHANNEL_CREATE", &leg_b), ("CHANNEL_ANSWER", &leg_b)] {
        emit(&fake, name, leg, None, None);
    }
}

async fn channel_action(
    State(fake): State<Fake>,
    Path((account, uuid)): Path<(String, String)>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    record(&fake, &method, &uri, &headers, &body);
    if !authorized(&fake, &headers) {
        return unauthorized(&fake);
    }
    if account != fake.account.account_id {
        return bad_identifier(&fake, &account);
    }
    let v: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let action = match method {
        Method::POST => v.pointer("/data/action").and_then(Value::as_str).map(str::to_owned),
        Method::PUT if v.get("action").and_then(Value::as_str) == Some("metaflow") => {
            v.pointer("/data/data/module").and_then(Value::as_str).map(str::to_owned)
        }
        _ => return error(&fake, StatusCode::METHOD_NOT_ALLOWED, "method not allowed", json!({})),
    };
    let Some(action) = action else {
        return error(&fake, StatusCode::BAD_REQUEST, "validation error", json!({"action": {"required": {"message": "action required"}}}));
    };
    let root = {
        let s = fake.lock();
        s.calls.iter().find(|(_, legs)| legs.contains(&uuid)).map(|(root, _)| root.clone())
    };
    let Some(root) = root else { return bad_identifier(&fake, &uuid) };
    if action != "hangup" {
        return error(&fake, StatusCode::BAD_REQUEST, "validation error", json!({"action": {"enum": {"message": "action not supported by the fake"}}}));
    }
    let body = json!({"data": {}, "request_id": request_id(&fake), "revision": "automatic", "status": "success"});
    tokio::spawn({
        let fake = fake.clone();
        async move { destroy(&fake, &root, "NORMAL_CLEARING") }
    });
    (StatusCode::ACCEPTED, Json(body)).into_response()
}

async fn unknown(State(fake): State<Fake>, method: Method, uri: Uri, headers: HeaderMap, body: Bytes) -> Response {
    record(&fake, &method, &uri, &headers, &body);
    error(&fake, StatusCode::NOT_FOUND, "not found", json!({"message": format!("no such endpoint: {}", uri.path())}))
}

/// CHANNEL_DESTROY for every leg of the call `root` (the contact's leg first), then the call is gone.
fn destroy(fake: &Fake, root: &str, cause: &str) {
    let legs = fake.lock().calls.remove(root).unwrap_or_default();
    for leg in legs.iter().rev() {
        emit(fake, "CHANNEL_DESTROY", leg, None, Some(cause));
    }
}

/// Sends one AMQP channel event about `leg` to the websocket subscribers.
fn emit(fake: &Fake, name: &str, leg: &str, caller_name: Option<&str>, hangup_cause: Option<&str>) {
    let (channel, legacy) = {
        let s = fake.lock();
        (s.channels.get(leg).cloned(), s.legacy_shape)
    };
    let Some(channel) = channel else { return };
    let a = &fake.account;
    let mut ccv = json!({"Account-ID": a.account_id, "Reseller-ID": a.account_id, "Realm": a.realm});
    if channel.clicktocall {
        ccv["Authorizing-ID"] = json!(a.clicktocall_id);
        ccv["Authorizing-Type"] = json!("clicktocall");
    }
    let mut data = json!({
        "Call-ID": leg,
        "Call-Direction": channel.direction,
        "Caller-ID-Name": caller_name.unwrap_or(&channel.caller),
        "Caller-ID-Number": channel.caller,
        "Callee-ID-Name": channel.callee,
        "Callee-ID-Number": channel.callee,
        "Event-Category": "call_event",
        "Event-Name": name,
        "Custom-Channel-Vars": ccv,
        "Timestamp": gregorian_now(),
        "To": format!("{}@{}", channel.callee, a.realm),
        "From": format!("{}@{}", channel.caller, a.realm),
        "Request": format!("{}@{}", channel.callee, a.realm),
        "Presence-ID": format!("{}@{}", a.extension, a.realm),
    });
    if let Some(other) = &channel.other_leg {
        data["Other-Leg-Call-ID"] = json!(other);
    }
    if let Some(contact) = &channel.contact {
        data["Custom-Application-Vars"] = json!({"contact": contact});
    }
    if let Some(cause) = hangup_cause {
        data["Hangup-Cause"] = json!(cause);
        data["Hangup-Code"] = json!("sip:200");
        data["Duration-Seconds"] = json!(7);
        data["Billing-Seconds"] = json!(5);
        data["Ringing-Seconds"] = json!(2);
    }
    let binding = format!("call.{name}.*");
    let message = if legacy {
        json!({"name": name, "args": data})
    } else {
        json!({
            "action": "event",
            "subscribed_key": binding,
            "subscription_key": binding,
            "name": name,
            "routing_key": format!("call.{name}.{leg}"),
            "data": data,
        })
    };
    let _ = fake.events.send((name.to_owned(), message.to_string()));
}

async fn websocket(State(fake): State<Fake>, upgrade: WebSocketUpgrade) -> Response {
    upgrade.on_upgrade(move |socket| blackhole(fake, socket))
}

/// One blackhole connection: subscribes, then events for its bindings.
async fn blackhole(fake: Fake, socket: WebSocket) {
    let (mut tx, mut rx) = socket.split();
    let mut events = fake.events.subscribe();
    let mut bindings: HashSet<String> = HashSet::new();
    loop {
        tokio::select! {
            incoming = rx.next() => {
                let Some(Ok(message)) = incoming else { return };
                let Message::Text(text) = message else { continue };
                let v: Value = serde_json::from_str(text.as_str()).unwrap_or(Value::Null);
                fake.lock().subscriptions.push(v.clone());
                let request_id = v.get("request_id").cloned().unwrap_or(Value::Null);
                let token = v.get("auth_token").and_then(Value::as_str).unwrap_or_default();
                let valid = fake.lock().tokens.contains(token);
                let account_ok = v.pointer("/data/account_id").and_then(Value::as_str) == Some(fake.account.account_id.as_str());
                let binding = v.pointer("/data/binding").and_then(Value::as_str).map(str::to_owned);
                let reply = match (v.get("action").and_then(Value::as_str), valid, account_ok, binding) {
                    (Some("subscribe"), true, true, Some(binding)) => {
                        bindings.insert(binding.clone());
                        json!({"action": "reply", "request_id": request_id, "status": "success", "data": {"subscribed": [binding]}})
                    }
                    (Some("subscribe"), false, _, _) => {
                        json!({"action": "reply", "request_id": request_id, "status": "error", "data": {"message": "invalid auth_token"}})
                    }
                    _ => json!({"action": "reply", "request_id": request_id, "status": "error", "data": {"message": "invalid subscription"}}),
                };
                if tx.send(Message::Text(reply.to_string().into())).await.is_err() {
                    return;
                }
            }
            event = events.recv() => {
                let Ok((name, text)) = event else { return };
                let wanted = bindings.contains(&format!("call.{name}.*")) || bindings.contains("call.*.*");
                if wanted && tx.send(Message::Text(text.into())).await.is_err() {
                    return;
                }
            }
        }
    }
}
