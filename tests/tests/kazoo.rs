//! CallBridge against a fake Kazoo that follows Kazoo's documentation (https://docs.2600hz.com/): the click-to-call connect request
//! (path, query, `X-Auth-Token`), call events over the blackhole websocket in both the 4.x and the
//! 3.x shape, `/end` through the channels API, token expiry, and the `/webhooks/kazoo` URL with JSON
//! and form data. Secrets go through the real OS keyring (`callbridge secret set`).

use std::time::Duration;

use callbridge_e2e::bridge::{store_secret, Bridge};
use callbridge_e2e::crm::{FakeCrm, Received};
use callbridge_e2e::eventually;
use callbridge_e2e::kazoo::FakeKazoo;
use serde_json::Value;

const WAIT: Duration = Duration::from_secs(30);

fn rules(crm: &FakeCrm) -> String {
    let url = crm.url();
    ["incoming", "outgoing", "answered", "ended"]
        .iter()
        .map(|event| {
            format!("[[notification]]\nevent = \"{event}\"\nurl = \"{url}/{event}?callerid=$callerid&direction=$direction&disposition=$disposition&name=$name\"\n\n")
        })
        .collect()
}

/// A keyring entry name no other test uses.
fn entry(test: &str) -> String {
    format!("kazoo-test-{test}-{}", std::process::id())
}

fn config(kazoo: &FakeKazoo, crm: &FakeCrm, auth: &str, secret_entry: &str, websocket: bool) -> String {
    let a = kazoo.account();
    let ws = if websocket { format!("websocket_url = \"{}\"\n", kazoo.ws_url()) } else { String::new() };
    format!(
        "[provider]\nkind = \"kazoo\"\n\n[provider.kazoo]\napi_url = \"{}/v2\"\naccount_id = \"{}\"\nclicktocall_id = \"{}\"\n\
         auth = \"{auth}\"\nusername = \"{}\"\naccount_name = \"{}\"\nsecret_entry = \"{secret_entry}\"\n{ws}\n{}",
        kazoo.api_url(),
        a.account_id,
        a.clicktocall_id,
        a.username,
        a.account_name,
        rules(crm)
    )
}

async fn wait_ready(bridge: &Bridge) {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let (_, body) = bridge.get("/api/v1/status").await;
        if body["status"]["provider"]["ready"] == true {
            return;
        }
        assert!(tokio::time::Instant::now() < deadline, "Kazoo never became ready: {}\n{}", body["status"]["provider"], bridge.logs());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn of(received: &[Received], event: &str) -> Vec<Received> {
    received.iter().filter(|r| r.path == format!("/{event}")).cloned().collect()
}

async fn wait_for_event(crm: &FakeCrm, event: &str) -> Received {
    eventually(WAIT, &format!("the {event} notification"), || of(&crm.received(), event).into_iter().next()).await
}

fn counts(crm: &FakeCrm) -> [usize; 4] {
    let all = crm.received();
    ["incoming", "outgoing", "answered", "ended"].map(|e| of(&all, e).len())
}

async fn wait_subscribed(kazoo: &FakeKazoo, bridge: &Bridge) {
    eventually(WAIT, "three websocket subscriptions", || (kazoo.subscriptions().len() >= 3).then_some(())).await;
    wait_ready(bridge).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn click_to_call_with_an_api_key_then_websocket_events_and_hangup_through_channels() {
    let kazoo = FakeKazoo::start().await;
    let crm = FakeCrm::start().await;
    let secret = entry("apikey");
    store_secret(&secret, &kazoo.account().api_key);
    let mut bridge = Bridge::start(&config(&kazoo, &crm, "api_key", &secret, true));
    wait_subscribed(&kazoo, &bridge).await;

    // The subscriptions: one per binding, with the token and the account.
    let subs = kazoo.subscriptions();
    let mut bindings: Vec<_> = subs.iter().filter_map(|s| s["data"]["binding"].as_str()).collect();
    bindings.sort_unstable();
    assert_eq!(bindings, ["call.CHANNEL_ANSWER.*", "call.CHANNEL_CREATE.*", "call.CHANNEL_DESTROY.*"]);
    for s in &subs {
        assert_eq!(s["action"], "subscribe");
        assert_eq!(s["data"]["account_id"], kazoo.account().account_id.as_str());
        assert!(kazoo.tokens().iter().any(|t| s["auth_token"] == t.as_str()), "{s}");
    }

    let (status, body) = bridge.get("/make/+15550100").await;
    assert_eq!(status, 200, "{body}");
    let c2c_leg = body["call"]["provider_call_id"].as_str().expect("outbound_call_id").to_owned();
    assert!(c2c_leg.starts_with(&format!("c2c-{}-", kazoo.account().clicktocall_id)), "{c2c_leg}");

    // The auth and connect requests, exactly as Kazoo documents them.
    let requests = kazoo.requests();
    let auth = requests.iter().find(|r| r.path == "/v2/api_auth").expect("api_auth");
    assert_eq!(auth.method, "PUT");
    assert_eq!(auth.json()["data"]["api_key"], kazoo.account().api_key.as_str());
    let a = kazoo.account();
    let connect = requests.iter().find(|r| r.path.ends_with("/connect")).expect("connect request");
    assert_eq!(connect.path, format!("/v2/accounts/{}/clicktocall/{}/connect", a.account_id, a.clicktocall_id));
    assert_eq!(connect.param("contact").as_deref(), Some("+15550100"));
    assert_eq!(connect.query, "contact=%2B15550100");
    let token = connect.header("X-Auth-Token").expect("X-Auth-Token").to_owned();
    assert!(kazoo.tokens().contains(&token));

    // The websocket tells the story: the user's phone, then the contact, answers.
    let outgoing = wait_for_event(&crm, "outgoing").await;
    assert_eq!(outgoing.param("callerid").as_deref(), Some("+15550100"));
    assert_eq!(outgoing.param("direction").as_deref(), Some("out"));
    wait_for_event(&crm, "answered").await;

    let (status, body) = bridge.get("/end").await;
    assert_eq!(status, 200, "{body}");
    let hangup = kazoo.requests().into_iter().find(|r| r.path.contains("/channels/")).expect("channels request");
    assert_eq!(hangup.method, "POST");
    assert_eq!(hangup.path, format!("/v2/accounts/{}/channels/{c2c_leg}", a.account_id));
    assert_eq!(hangup.json(), serde_json::json!({"data": {"action": "hangup"}}));
    assert_eq!(hangup.header("X-Auth-Token"), Some(token.as_str()));
    eventually(WAIT, "Kazoo to tear the call down", || kazoo.live_calls().is_empty().then_some(())).await;

    let ended = wait_for_event(&crm, "ended").await;
    assert_eq!(ended.param("disposition").as_deref(), Some("answered"));
    assert_eq!(counts(&crm), [0, 1, 1, 1], "{:#?}", crm.received());
    let (_, calls) = bridge.get("/api/v1/calls").await;
    assert_eq!(calls["calls"].as_array().map(Vec::len), Some(1), "the websocket legs joined the dialed call: {calls}");
    assert!(bridge.stop());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn user_credentials_and_3x_events_drive_an_incoming_call() {
    let kazoo = FakeKazoo::start().await;
    kazoo.use_legacy_shape();
    let crm = FakeCrm::start().await;
    let secret = entry("user");
    store_secret(&secret, &kazoo.account().password);
    let mut bridge = Bridge::start(&config(&kazoo, &crm, "user", &secret, true));
    wait_subscribed(&kazoo, &bridge).await;

    let auth = kazoo.requests().into_iter().find(|r| r.path == "/v2/user_auth").expect("user_auth");
    let body = auth.json();
    // md5("alice:correct horse")
    assert_eq!(body["data"]["credentials"], "23faea553e61d105a779b78a1f289030");
    assert_eq!(body["data"]["account_name"], "acme");
    assert_eq!(body["data"]["method"], "md5");

    let call = kazoo.ring_incoming("+442079460000", "Alice Example");
    let incoming = wait_for_event(&crm, "incoming").await;
    assert_eq!(incoming.param("callerid").as_deref(), Some("+442079460000"));
    assert_eq!(incoming.param("name").as_deref(), Some("Alice Example"));
    assert_eq!(incoming.param("direction").as_deref(), Some("in"));
    kazoo.answer(&call);
    wait_for_event(&crm, "answered").await;
    kazoo.hang_up(&call, "NORMAL_CLEARING");
    let ended = wait_for_event(&crm, "ended").await;
    assert_eq!(ended.param("disposition").as_deref(), Some("answered"));
    assert_eq!(counts(&crm), [1, 0, 1, 1], "{:#?}", crm.received());

    // Kazoo cannot answer for the user: a clear refusal, not a silent success.
    let call = kazoo.ring_incoming("+442079460001", "Bob");
    eventually(WAIT, "the second incoming call", || (of(&crm.received(), "incoming").len() == 2).then_some(())).await;
    let (status, body) = bridge.get("/answer").await;
    assert_eq!(status, 501, "{body}");
    assert!(body["message"].as_str().is_some_and(|m| m.contains("kazoo") && m.contains("answer")), "{body}");
    kazoo.hang_up(&call, "ORIGINATOR_CANCEL");
    eventually(WAIT, "the missed call's end", || (of(&crm.received(), "ended").len() == 2).then_some(())).await;
    let missed = of(&crm.received(), "ended").pop().expect("ended");
    assert_eq!(missed.param("disposition").as_deref(), Some("missed"));
    assert!(bridge.stop());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_token_is_replaced_and_the_request_retried() {
    let kazoo = FakeKazoo::start().await;
    let crm = FakeCrm::start().await;
    let secret = entry("expiry");
    store_secret(&secret, &kazoo.account().api_key);
    let mut bridge = Bridge::start(&config(&kazoo, &crm, "api_key", &secret, false));

    let (status, body) = bridge.get("/make/+15550101").await;
    assert_eq!(status, 200, "{body}");
    kazoo.expire_tokens();
    let (status, body) = bridge.get("/make/+15550102").await;
    assert_eq!(status, 200, "{body}");

    let requests = kazoo.requests();
    let kinds: Vec<&str> = requests.iter().map(|r| r.path.rsplit('/').next().unwrap_or_default()).collect();
    assert_eq!(kinds, ["api_auth", "connect", "connect", "api_auth", "connect"], "401, new token, retry: {requests:#?}");
    let tokens: Vec<_> = requests.iter().filter(|r| r.path.ends_with("/connect")).filter_map(|r| r.header("X-Auth-Token").map(str::to_owned)).collect();
    assert_eq!(tokens.len(), 3);
    assert_eq!(tokens[0], tokens[1], "the stale token was tried once");
    assert_ne!(tokens[1], tokens[2], "then a fresh one");
    assert!(bridge.stop());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_secret_or_a_wrong_key_is_an_error_that_says_what_to_do() {
    let kazoo = FakeKazoo::start().await;
    let crm = FakeCrm::start().await;
    let mut bridge = Bridge::start(&config(&kazoo, &crm, "api_key", &entry("missing"), false));
    let (status, body) = bridge.get("/make/+15550103").await;
    assert_eq!(status, 503, "{body}");
    let message = body["message"].as_str().unwrap_or_default();
    assert!(message.contains("callbridge secret set kazoo-test-missing"), "{body}");
    assert!(!kazoo.requests().iter().any(|r| r.path.ends_with("/connect")), "no call without a token");
    bridge.stop();

    let secret = entry("wrong");
    store_secret(&secret, "not-the-api-key");
    let mut bridge = Bridge::start(&config(&kazoo, &crm, "api_key", &secret, false));
    let (status, body) = bridge.get("/make/+15550103").await;
    assert_eq!(status, 502, "{body}");
    let message = body["message"].as_str().unwrap_or_default();
    assert!(message.contains("invalid_credentials") && message.contains("api_auth"), "{body}");
    assert!(!message.contains("not-the-api-key"), "the secret never appears in errors: {body}");
    let (_, status) = bridge.get("/api/v1/status").await;
    assert_eq!(status["status"]["provider"]["ready"], false, "{status}");
    assert!(!bridge.logs().contains("not-the-api-key"), "the secret never appears in logs");
    assert!(bridge.stop());
}

/// A Kazoo webhook body as form data (Kazoo's default `format`), nested objects as `a[b]`.
fn form(v: &Value) -> String {
    let mut out = url::form_urlencoded::Serializer::new(String::new());
    for (k, v) in v.as_object().expect("object") {
        match v {
            Value::Object(inner) => {
                for (ik, iv) in inner {
                    out.append_pair(&format!("{k}[{ik}]"), iv.as_str().unwrap_or_default());
                }
            }
            Value::String(s) => {
                out.append_pair(k, s);
            }
            other => {
                out.append_pair(k, &other.to_string());
            }
        }
    }
    out.finish()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kazoo_webhooks_in_json_and_form_data_drive_the_notifications() {
    let kazoo = FakeKazoo::start().await;
    let crm = FakeCrm::start().await;
    let mut bridge = Bridge::start(&config(&kazoo, &crm, "api_key", &entry("webhooks"), false));
    let url = format!("{}/webhooks/kazoo", bridge.url);
    let client = reqwest::Client::new();
    let call = kazoo.ring_incoming("+442079460000", "Alice");

    let create = kazoo.webhook_payload("channel_create", &call);
    let (status, body) = callbridge_e2e::bridge::request(client.post(&url).json(&create)).await;
    assert_eq!(status, 200, "{body}");
    let incoming = wait_for_event(&crm, "incoming").await;
    assert_eq!(incoming.param("callerid").as_deref(), Some("+442079460000"));

    let answer = kazoo.webhook_payload("channel_answer", &call);
    let request = client.post(&url).header("content-type", "application/x-www-form-urlencoded").body(form(&answer));
    let (status, body) = callbridge_e2e::bridge::request(request).await;
    assert_eq!(status, 200, "{body}");
    wait_for_event(&crm, "answered").await;

    // A duplicate (Kazoo retries) changes nothing.
    let (status, _) = callbridge_e2e::bridge::request(client.post(&url).json(&answer)).await;
    assert_eq!(status, 200);

    let destroy = kazoo.webhook_payload("channel_destroy", &call);
    let (status, body) = callbridge_e2e::bridge::request(client.get(format!("{url}?{}", form(&destroy)))).await;
    assert_eq!(status, 200, "{body}");
    let ended = wait_for_event(&crm, "ended").await;
    assert_eq!(ended.param("disposition").as_deref(), Some("answered"));
    assert_eq!(counts(&crm), [1, 0, 1, 1], "{:#?}", crm.received());

    // Another account's events are acknowledged and ignored.
    let mut other = kazoo.webhook_payload("channel_create", &kazoo.ring_incoming("+15550000", "X"));
    other["account_id"] = "someone-else".into();
    let (status, body) = callbridge_e2e::bridge::request(client.post(&url).json(&other)).await;
    assert_eq!((status, body["ignored"].is_string()), (200, true), "{body}");

    // Malformed payloads get a 400 that says what is wrong.
    for (payload, reason) in [
        (serde_json::json!({"call_id": "x"}), "hook_event is missing"),
        (serde_json::json!({"hook_event": "channel_create"}), "call_id is missing"),
        (serde_json::json!({"hook_event": "parking", "call_id": "x"}), "hook_event is \"parking\""),
    ] {
        let (status, body) = callbridge_e2e::bridge::request(client.post(&url).json(&payload)).await;
        assert_eq!(status, 400, "{body}");
        assert!(body["message"].as_str().is_some_and(|m| m.contains(reason)), "{reason}: {body}");
    }
    let (status, body) = callbridge_e2e::bridge::request(client.post(&url).header("content-type", "application/json").body("{not json")).await;
    assert_eq!(status, 400);
    assert!(body["message"].as_str().is_some_and(|m| m.contains("not valid JSON")), "{body}");
    assert_eq!(counts(&crm), [1, 0, 1, 1], "nothing more was notified");
    assert!(bridge.stop());
}

/// A port nobody listens on right now.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).expect("a free port")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhook_legs_stay_tied_when_the_listener_moves_mid_call() {
    let kazoo = FakeKazoo::start().await;
    let crm = FakeCrm::start().await;
    let secret = entry("moves");
    store_secret(&secret, &kazoo.account().api_key);
    let mut bridge = Bridge::start(&config(&kazoo, &crm, "api_key", &secret, false));
    let client = reqwest::Client::new();

    // A click-to-call: Kazoo rings the user's phone (leg A, the outbound_call_id), then the contact (leg B).
    let (status, body) = bridge.get("/make/+15550110").await;
    assert_eq!(status, 200, "{body}");
    let leg_a = body["call"]["provider_call_id"].as_str().expect("outbound_call_id").to_owned();
    let legs = callbridge_e2e::eventually_async(WAIT, "Kazoo to create the contact's leg", || {
        let legs = kazoo.legs_of(&leg_a);
        async move { (legs.len() == 2).then_some(legs) }
    })
    .await;
    let leg_b = legs[1].clone();
    let post = |base: &str, hook: &str, leg: &str| {
        let request = client.post(format!("{base}/webhooks/kazoo")).json(&kazoo.webhook_payload(hook, leg));
        callbridge_e2e::bridge::request(request)
    };
    for hook in ["channel_create", "channel_answer"] {
        let (status, body) = post(&bridge.url, hook, &leg_a).await;
        assert_eq!(status, 200, "{hook}: {body}");
    }
    let (status, body) = post(&bridge.url, "channel_create", &leg_b).await;
    assert_eq!(status, 200, "{body}");
    wait_for_event(&crm, "outgoing").await;

    // The settings page moves the listener to another port, mid-call.
    let (status, current) = bridge.get("/api/v1/config").await;
    assert_eq!(status, 200, "{current}");
    let mut moved = current["config"].clone();
    let port = free_port();
    moved["listener"]["port"] = port.into();
    let (status, saved) = callbridge_e2e::bridge::request(client.put(format!("{}/api/v1/config", bridge.url)).json(&moved)).await;
    assert_eq!(status, 200, "{saved}");
    assert_eq!(saved["saved"]["listener_restarted"], true, "{saved}");
    let new_base = format!("http://localhost:{port}");
    let (status, _) = callbridge_e2e::bridge::request(client.get(format!("{new_base}/health"))).await;
    assert_eq!(status, 200, "the listener answers on its new port");

    // The contact answers and the call ends: these legs reach the new listener and still belong to the call.
    let (status, body) = post(&new_base, "channel_answer", &leg_b).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["understood"]["call_id"], leg_a.as_str(), "leg B is tied to leg A after the move: {body}");
    let answered = wait_for_event(&crm, "answered").await;
    assert_eq!(answered.param("callerid").as_deref(), Some("+15550110"));
    for leg in [&leg_b, &leg_a] {
        let (status, body) = post(&new_base, "channel_destroy", leg).await;
        assert_eq!(status, 200, "{body}");
    }
    let ended = wait_for_event(&crm, "ended").await;
    assert_eq!(ended.param("disposition").as_deref(), Some("answered"));
    assert_eq!(counts(&crm), [0, 1, 1, 1], "one call, its events once each: {:#?}", crm.received());
    let (_, calls) = callbridge_e2e::bridge::request(client.get(format!("{new_base}/api/v1/calls"))).await;
    assert_eq!(calls["calls"].as_array().map(Vec::len), Some(1), "the legs joined the dialed call: {calls}");
    assert!(bridge.stop());
}
