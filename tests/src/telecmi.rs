//! A fake TeleCMI: the REST API of https://doc.telecmi.com/chub/docs/click-to-call-admin (and its login and hangup) on loopback, and the webhooks
//! TeleCMI sends, so the bridge can be tested end to end without the cloud.
//!
//! * `POST /v2/webrtc/click2call` (JSON) and its documented `GET` form: 400 when `user_id`, `secret`
//!   or `to` is missing or neither `webrtc` nor `followme` is on ("Enable webrtc or followme"), 404 for
//!   an unknown user id, 407 for a wrong app secret, else 200 `{"code":200,"msg":"Call initiated",
//!   "request_id":…}`. Every request is recorded with its raw body, so tests can check JSON types.
//! * `POST /v2/user/login` → a token (404 for a bad id or password); `POST /v2/c2c/hangup` with the
//!   token and a leg's `cmiuuid` → 200 "call ended", or 404 "Failed to authenticate token, cmiuuid not
//!   found".
//! * [`FakeTelecmi::hang`] makes it accept requests and never answer; [`closed_port_url`] is a URL
//!   where nothing listens.
//! * [`outgoing_sequence`] and [`inbound_sequence`] build the documented live events and CDRs for a
//!   click2call and an inbound call, with numbers as strings (the global docs) or numbers (the older
//!   and India pages); [`send`] delivers payloads to a webhook URL by POST or GET.

use std::collections::{HashMap, HashSet, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use serde_json::{json, Map, Value};
use tokio::sync::oneshot;

/// The sample app of TeleCMI's docs.
pub const APP_ID: u64 = 1111112;
/// A user of that app (the sample `user_id` of TeleCMI's click2call documentation).
pub const USER_ID: &str = "101_1111112";

/// One request as the fake received it.
#[derive(Debug, Clone, PartialEq)]
pub struct Recorded {
    pub method: String,
    pub path: String,
    /// Raw query string, still percent-encoded.
    pub query: String,
    /// The body exactly as sent.
    pub body: String,
    /// The fields as the fake read them: the JSON body, or the query with `extra_params[KEY]` gathered
    /// into an object.
    pub params: Value,
}

impl Recorded {
    /// The body as JSON (panics if it is not).
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("body is not JSON ({e}): {}", self.body))
    }
}

/// A click2call the fake accepted.
#[derive(Debug, Clone, PartialEq)]
pub struct Click2Call {
    pub request_id: String,
    pub user_id: String,
    /// `to`, as the fake read it (a JSON number from a POST, a string from a GET).
    pub to: Value,
    /// `extra_params` as an object.
    pub extra_params: Map<String, Value>,
    pub callerid: Option<Value>,
}

#[derive(Debug, Default)]
struct Shared {
    /// user id → the app secret of its app.
    users: HashMap<String, String>,
    /// login id → password.
    logins: HashMap<String, String>,
    requests: Vec<Recorded>,
    calls: Vec<Click2Call>,
    tokens: HashSet<String>,
    /// Legs announced by webhook sequences and not yet hung up.
    live_legs: HashSet<String>,
    /// `(token, cmiuuid)` of every hangup that succeeded.
    hangups: Vec<(String, String)>,
    /// Answers to give the next click2calls instead of the usual ones.
    scripted: VecDeque<(u16, Value)>,
    hang: bool,
    next: u64,
}

impl Shared {
    fn id(&mut self, prefix: &str) -> String {
        self.next += 1;
        format!("{prefix}{}{:06}", uuid::Uuid::new_v4().simple(), self.next)
    }
}

/// See the module documentation.
#[derive(Debug)]
pub struct FakeTelecmi {
    addr: SocketAddr,
    shared: Arc<Mutex<Shared>>,
    stop: Option<oneshot::Sender<()>>,
}

impl FakeTelecmi {
    /// Starts on a free loopback port with one user, [`USER_ID`], whose app secret is `app_secret`.
    pub async fn start(app_secret: &str) -> FakeTelecmi {
        let shared = Arc::new(Mutex::new(Shared::default()));
        shared.lock().unwrap_or_else(PoisonError::into_inner).users.insert(USER_ID.into(), app_secret.into());
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await.expect("fake TeleCMI binds");
        let addr = listener.local_addr().expect("local addr");
        let app = Router::new()
            .route("/v2/webrtc/click2call", post(click2call_post).get(click2call_get))
            .route("/v2/user/login", post(login))
            .route("/v2/c2c/hangup", post(hangup))
            .fallback(unknown)
            .with_state(Arc::clone(&shared));
        let stop = crate::serve_until_stopped(listener, app);
        FakeTelecmi { addr, shared, stop: Some(stop) }
    }

    /// `http://127.0.0.1:PORT`, the bridge's `base_url`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    fn lock(&self) -> MutexGuard<'_, Shared> {
        self.shared.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Lets `id` log in with `password` (for the user token).
    pub fn add_login(&self, id: &str, password: &str) {
        self.lock().logins.insert(id.into(), password.into());
    }

    /// From now on: take every request, record it, and never answer.
    pub fn hang(&self) {
        self.lock().hang = true;
    }

    /// The next click2call is answered with `status` and `body` whatever it contains — for answers the
    /// bridge cannot provoke by itself, such as a 400 for a parameter it always sends.
    pub fn answer_next_click2call(&self, status: u16, body: Value) {
        self.lock().scripted.push_back((status, body));
    }

    /// Every token issued so far stops working (as when one expires).
    pub fn expire_tokens(&self) {
        self.lock().tokens.clear();
    }

    /// Every request so far, in arrival order.
    pub fn requests(&self) -> Vec<Recorded> {
        self.lock().requests.clone()
    }

    /// The requests to `path`.
    pub fn requests_to(&self, path: &str) -> Vec<Recorded> {
        self.requests().into_iter().filter(|r| r.path == path).collect()
    }

    /// The click2calls accepted so far.
    pub fn calls(&self) -> Vec<Click2Call> {
        self.lock().calls.clone()
    }

    /// `(token, cmiuuid)` of the hangups that succeeded.
    pub fn hangups(&self) -> Vec<(String, String)> {
        self.lock().hangups.clone()
    }

    /// Waits until `n` requests arrived at `path`.
    pub async fn wait_for(&self, path: &str, n: usize) -> Vec<Recorded> {
        crate::eventually(Duration::from_secs(20), &format!("{n} requests to {path} at the fake TeleCMI"), || {
            let got = self.requests_to(path);
            (got.len() >= n).then_some(got)
        })
        .await
    }

    /// The documented webhooks of the accepted click2call `call`; its legs become hang-up-able.
    pub fn outgoing_sequence(&self, call: &Click2Call, numbers: Numbers) -> Sequence {
        let mut shared = self.lock();
        let (leg_a, leg_b, conversation) = (shared.id("a-"), shared.id("b-"), shared.id("conv-"));
        shared.live_legs.extend([leg_a.clone(), leg_b.clone()]);
        drop(shared);
        outgoing_sequence(call, numbers, &leg_a, &leg_b, &conversation)
    }

    /// The documented webhooks of an inbound call from `from` to the DID `did`, taken by `user`.
    pub fn inbound_sequence(&self, from: &str, did: &str, user: &str, numbers: Numbers) -> Sequence {
        let mut shared = self.lock();
        let (leg_a, leg_b) = (shared.id("in-a-"), shared.id("in-b-"));
        shared.live_legs.extend([leg_a.clone(), leg_b.clone()]);
        drop(shared);
        inbound_sequence(from, did, user, numbers, &leg_a, &leg_b)
    }
}

impl Drop for FakeTelecmi {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// A loopback URL where nothing listens (the port was just free).
pub fn closed_port_url() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    drop(listener);
    format!("http://127.0.0.1:{port}")
}

fn answer(status: u16, body: Value) -> Response {
    (StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR), Json(body)).into_response()
}

fn refusal(code: u16, msg: &str) -> Response {
    answer(code, json!({ "code": code, "msg": msg }))
}

fn record(shared: &Arc<Mutex<Shared>>, method: &Method, uri: &Uri, body: &[u8], params: Value) -> bool {
    let mut s = shared.lock().unwrap_or_else(PoisonError::into_inner);
    s.requests.push(Recorded {
        method: method.to_string(),
        path: uri.path().to_owned(),
        query: uri.query().unwrap_or_default().to_owned(),
        body: String::from_utf8_lossy(body).into_owned(),
        params,
    });
    s.hang
}

async fn click2call_post(State(shared): State<Arc<Mutex<Shared>>>, method: Method, uri: Uri, body: Bytes) -> Response {
    let params = serde_json::from_slice::<Value>(&body).unwrap_or(Value::Null);
    if record(&shared, &method, &uri, &body, params.clone()) {
        std::future::pending::<()>().await;
    }
    match params {
        Value::Object(p) => click2call(&shared, &p),
        _ => refusal(400, "user_id parameter missing"),
    }
}

async fn click2call_get(State(shared): State<Arc<Mutex<Shared>>>, method: Method, uri: Uri) -> Response {
    let params = query_params(uri.query().unwrap_or_default());
    if record(&shared, &method, &uri, b"", Value::Object(params.clone())) {
        std::future::pending::<()>().await;
    }
    click2call(&shared, &params)
}

/// The GET form's fields; `extra_params[KEY]=VALUE` pairs become the object `extra_params`.
fn query_params(query: &str) -> Map<String, Value> {
    let mut params = Map::new();
    let mut extra = Map::new();
    for (k, v) in url::form_urlencoded::parse(query.as_bytes()) {
        match k.strip_prefix("extra_params[").and_then(|k| k.strip_suffix(']')) {
            Some(key) => {
                extra.insert(key.to_owned(), Value::String(v.into_owned()));
            }
            None => {
                params.insert(k.into_owned(), Value::String(v.into_owned()));
            }
        }
    }
    if !extra.is_empty() {
        params.insert("extra_params".into(), Value::Object(extra));
    }
    params
}

/// A present, non-empty field.
fn given<'a>(p: &'a Map<String, Value>, key: &str) -> Option<&'a Value> {
    p.get(key).filter(|v| !v.is_null() && v.as_str() != Some(""))
}

fn flag(p: &Map<String, Value>, key: &str, default: bool) -> bool {
    match p.get(key) {
        Some(Value::Bool(b)) => *b,
        Some(Value::String(s)) => s == "true",
        _ => default,
    }
}

fn click2call(shared: &Arc<Mutex<Shared>>, p: &Map<String, Value>) -> Response {
    let mut s = shared.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some((status, body)) = s.scripted.pop_front() {
        return answer(status, body);
    }
    let Some(user_id) = given(p, "user_id").map(text) else { return refusal(400, "user_id parameter missing") };
    let Some(secret) = given(p, "secret").map(text) else { return refusal(400, "secret parameter missing") };
    let Some(to) = given(p, "to").cloned() else { return refusal(400, "To parameter missing") };
    if !flag(p, "webrtc", true) && !flag(p, "followme", false) {
        return refusal(400, "Enable webrtc or followme");
    }
    let Some(expected) = s.users.get(&user_id) else { return refusal(404, "invalid user_id") };
    if *expected != secret {
        return refusal(407, "invalid app secret");
    }
    let request_id = s.id("s96C6XK1");
    let extra_params = p.get("extra_params").and_then(Value::as_object).cloned().unwrap_or_default();
    s.calls.push(Click2Call { request_id: request_id.clone(), user_id, to, extra_params, callerid: p.get("callerid").cloned() });
    answer(200, json!({ "code": 200, "msg": "Call initiated", "request_id": request_id }))
}

fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

async fn login(State(shared): State<Arc<Mutex<Shared>>>, method: Method, uri: Uri, body: Bytes) -> Response {
    let params = serde_json::from_slice::<Value>(&body).unwrap_or(Value::Null);
    if record(&shared, &method, &uri, &body, params.clone()) {
        std::future::pending::<()>().await;
    }
    let mut s = shared.lock().unwrap_or_else(PoisonError::into_inner);
    let (id, password) = (params["id"].as_str().unwrap_or_default(), params["password"].as_str().unwrap_or_default());
    if id.is_empty() || password.is_empty() {
        return refusal(400, "id or password parameter missing");
    }
    if s.logins.get(id).map(String::as_str) != Some(password) {
        return refusal(404, "Invalid user id or password");
    }
    let token = s.id("tok-");
    s.tokens.insert(token.clone());
    answer(200, json!({ "code": 200, "msg": "User loged in successfully", "token": token,
                        "agent": { "category": "inr", "id": id, "inet_no": 1111113, "name": "Test User" } }))
}

async fn hangup(State(shared): State<Arc<Mutex<Shared>>>, method: Method, uri: Uri, body: Bytes) -> Response {
    let params = serde_json::from_slice::<Value>(&body).unwrap_or(Value::Null);
    if record(&shared, &method, &uri, &body, params.clone()) {
        std::future::pending::<()>().await;
    }
    let mut s = shared.lock().unwrap_or_else(PoisonError::into_inner);
    let (token, cmiuuid) = (params["token"].as_str().unwrap_or_default(), params["cmiuuid"].as_str().unwrap_or_default());
    if !s.tokens.contains(token) || !s.live_legs.remove(cmiuuid) {
        return refusal(404, "Failed to authenticate token, cmiuuid not found");
    }
    s.hangups.push((token.to_owned(), cmiuuid.to_owned()));
    answer(200, json!({ "code": 200, "msg": "call ended" }))
}

async fn unknown(State(shared): State<Arc<Mutex<Shared>>>, method: Method, uri: Uri, body: Bytes) -> Response {
    record(&shared, &method, &uri, &body, Value::Null);
    refusal(404, "not found")
}

/// How a sequence writes `from`, `to` and `callerid`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Numbers {
    /// `"919200000000"`, as the newer global docs print them.
    Strings,
    /// `919200000000`, as the older and India pages print them.
    Numbers,
}

impl Numbers {
    fn write(self, digits: &str) -> Value {
        let digits = digits.trim_start_matches('+');
        match (self, digits.parse::<u64>()) {
            (Numbers::Numbers, Ok(n)) => json!(n),
            _ => json!(digits),
        }
    }
}

/// A call's webhooks in the order TeleCMI sends them, with the ids they use.
#[derive(Debug, Clone)]
pub struct Sequence {
    pub payloads: Vec<Value>,
    pub leg_a: String,
    pub leg_b: String,
    pub conversation: String,
}

fn now_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or_default()
}

/// Outgoing click2call (/chub/docs/live-outgoing-out-started, -answered, -hangup, and the outgoing
/// answered CDR): the user's leg A rings and is answered, then the far end's leg B; B hangs up, then A;
/// then a CDR per leg. `extra_params` and `custom` are JSON-encoded strings.
pub fn outgoing_sequence(call: &Click2Call, numbers: Numbers, leg_a: &str, leg_b: &str, conversation: &str) -> Sequence {
    let t0 = now_ms();
    let extra = Value::Object(call.extra_params.clone()).to_string();
    let to = numbers.write(&text(&call.to));
    let callerid = numbers.write(&call.callerid.as_ref().map(text).unwrap_or_else(|| "919800000000".into()));
    let live = |i: u64, leg: &str, status: &str| {
        let cmiuuid = if leg == "a" { leg_a } else { leg_b };
        json!({"call_id": format!("{conversation}-c"), "leg": leg, "type": "event", "user": call.user_id, "cmiuuid": cmiuuid,
               "direction": "outbound", "callerid": callerid, "app_id": APP_ID, "time": t0 + i * 1000,
               "custom": "{\"click2call\":\"true\"}", "extra_params": extra, "request_id": call.request_id,
               "status": status, "to": to, "conversation_uuid": conversation})
    };
    let cdr = |leg: &str| {
        let cmiuuid = if leg == "a" { leg_a } else { leg_b };
        let mut v = json!({"virtual_number": callerid, "call_id": format!("{conversation}-c"), "custom": "{\"click2call\":\"true\"}",
               "leg": leg, "type": "cdr", "appid": APP_ID, "to": to, "cmiuuid": cmiuuid, "status": "answered",
               "user": call.user_id, "time": t0 + 40_000, "direction": "outbound", "answeredsec": 30,
               "hangup_reason": "recv_bye", "request_id": call.request_id, "extra_params": extra});
        if leg == "b" {
            v["record"] = json!(true);
            v["filename"] = json!(format!("{cmiuuid}.mp3"));
        }
        v
    };
    Sequence {
        payloads: vec![
            live(0, "a", "started"),
            live(3, "a", "answered"),
            live(4, "b", "started"),
            live(9, "b", "answered"),
            live(39, "b", "hangup"),
            live(39, "a", "hangup"),
            cdr("a"),
            cdr("b"),
        ],
        leg_a: leg_a.into(),
        leg_b: leg_b.into(),
        conversation: conversation.into(),
    }
}

/// Inbound call (/chub/docs/live-incoming-waiting, -answered, -hangup for leg A; live-outgoing-started,
/// -answered, -hangup for the agent's leg B; the incoming answered CDR). On leg A `cmiuuid ==
/// conversation_uuid`; leg B is `direction:"outbound"` with a `from` and no `to`.
pub fn inbound_sequence(from: &str, did: &str, user: &str, numbers: Numbers, leg_a: &str, leg_b: &str) -> Sequence {
    let t0 = now_ms();
    let (from, did) = (numbers.write(from), numbers.write(did));
    let leg_a_event = |i: u64, status: &str| {
        let mut v = json!({"type": "event", "direction": "inbound", "conversation_uuid": leg_a, "cmiuuid": leg_a,
               "from": from, "app_id": APP_ID, "time": t0 + i * 1000, "to": did, "custom": "{}", "status": status});
        if status == "hangup" {
            // The hangup page lists no `custom`.
            v.as_object_mut().map(|m| m.remove("custom"));
        }
        v
    };
    let leg_b_event = |i: u64, status: &str| {
        json!({"leg": "b", "type": "event", "team": "support", "user": user, "conversation_uuid": leg_a, "cmiuuid": leg_b,
               "direction": "outbound", "from": from, "app_id": APP_ID, "time": t0 + i * 1000, "custom": "{}", "status": status})
    };
    let cdr = json!({"virtual_number": did, "custom": "{}", "appid": APP_ID, "type": "cdr", "direction": "inbound",
        "cmiuuid": leg_a, "user": user, "status": "answered", "to": did, "from": from, "time": t0 + 60_000,
        "answeredsec": 50, "team": "support", "hangup_reason": "sent_bye", "record": true,
        "filename": format!("{leg_a}.mp3"), "conversation_uuid": leg_a, "ivr_name": "main"});
    Sequence {
        payloads: vec![
            leg_a_event(0, "waiting"),
            leg_b_event(1, "started"),
            leg_b_event(6, "answered"),
            leg_a_event(6, "answered"),
            leg_b_event(56, "hangup"),
            leg_a_event(56, "hangup"),
            cdr,
        ],
        leg_a: leg_a.into(),
        leg_b: leg_b.into(),
        conversation: leg_a.into(),
    }
}

/// How webhooks reach the bridge: TeleCMI calls "your web server POST or GET method URL".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Via {
    /// A JSON body.
    Post,
    /// The fields in the query string (objects JSON-encoded).
    Get,
}

/// Delivers `payloads` to `url` one after another; the bridge's status and JSON answer for each.
pub async fn send(url: &str, payloads: &[Value], via: Via) -> Vec<(u16, Value)> {
    let client = reqwest::Client::new();
    let mut answers = Vec::new();
    for payload in payloads {
        let request = match via {
            Via::Post => client.post(url).json(payload),
            Via::Get => {
                let query: Vec<(String, String)> =
                    payload.as_object().into_iter().flatten().map(|(k, v)| (k.clone(), text(v))).collect();
                client.get(url).query(&query)
            }
        };
        answers.push(crate::bridge::request(request).await);
    }
    answers
}

/// A loopback address that never completes a TCP connection: a listener that accepts nothing, whose
/// queue is already full, so the kernel drops further connection attempts. Keep the returned listener
/// and connections alive while the address is in use.
pub async fn unanswered_connect() -> (String, tokio::net::TcpListener, Vec<tokio::net::TcpStream>) {
    let socket = tokio::net::TcpSocket::new_v4().expect("socket");
    socket.bind(SocketAddr::from(([127, 0, 0, 1], 0))).expect("bind");
    let listener = socket.listen(0).expect("listen");
    let addr = listener.local_addr().expect("addr");
    let mut queued = Vec::new();
    for _ in 0..16 {
        match tokio::time::timeout(Duration::from_millis(300), tokio::net::TcpStream::connect(addr)).await {
            Ok(Ok(stream)) => queued.push(stream),
            Ok(Err(e)) => panic!("connecting to the full listener failed instead of hanging: {e}"),
            // A connection attempt that hangs: the queue is full.
            Err(_) => return (format!("http://{addr}"), listener, queued),
        }
    }
    panic!("the kernel kept accepting connections on a listener with backlog 0; cannot make a connect hang here");
}
