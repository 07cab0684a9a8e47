//! Durable notification delivery and call history, against the built `callbridge` binary:
//! nothing is lost when the CRM is down and the bridge is killed, 4xx is not
//! retried, 5xx is retried with backoff, and the delivery log shows it all.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use callbridge_e2e::bridge::{run_cli, Bridge};
use callbridge_e2e::crm::{FakeCrm, Received};
use callbridge_e2e::eventually;
use serde_json::{json, Value};

const WAIT: Duration = Duration::from_secs(60);

/// Rules for incoming and ended calls to `crm`, and quick retries so the test does not wait long.
fn config(crm: &str) -> String {
    format!(
        r#"
[delivery]
retry_initial_ms = 100
retry_max_delay_secs = 1

[security]
dials_per_minute = 0

[[notification]]
event = "incoming"
url = "{crm}/incoming?callerid=$callerid&call=$callid"

[[notification]]
event = "ended"
method = "POST"
url = "{crm}/ended"
"#
    )
}

async fn simulate_incoming(bridge: &Bridge, number: &str) -> String {
    let (status, body) = bridge.post("/api/v1/simulate/incoming", json!({ "number": number })).await;
    assert_eq!(status, 200, "{body}");
    body["call_id"].as_str().expect("call id").to_owned()
}

async fn hangup(bridge: &Bridge, call_id: &str) {
    let (status, body) = bridge.post("/api/v1/hangup", json!({ "call_id": call_id })).await;
    assert_eq!(status, 200, "{body}");
}

async fn deliveries(bridge: &Bridge, query: &str) -> Vec<Value> {
    let (status, body) = bridge.get(&format!("/api/v1/deliveries?limit=500{query}")).await;
    assert_eq!(status, 200, "{body}");
    body["deliveries"].as_array().cloned().unwrap_or_default()
}

/// Polls the delivery log until `check` accepts it.
async fn log_until(bridge: &Bridge, what: &str, check: impl Fn(&[Value]) -> bool) -> Vec<Value> {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let log = deliveries(bridge, "").await;
        if check(&log) {
            return log;
        }
        assert!(tokio::time::Instant::now() < deadline, "timed out waiting for {what}; the log: {log:#?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn key(r: &Received) -> String {
    r.header("idempotency-key").unwrap_or_else(|| panic!("a notification without Idempotency-Key: {r:?}")).to_owned()
}

#[tokio::test]
async fn notifications_survive_a_crm_outage_and_sigkill() {
    let crm = FakeCrm::start().await;
    let url = crm.url();
    let crm = crm.down().await;
    let home = tempfile::tempdir().expect("tempdir");
    std::fs::write(home.path().join("callbridge.toml"), config(&url)).expect("config");
    let mut bridge = Bridge::start_in(home.path(), &[]);

    // Five calls ring and end while the CRM is down: ten notifications owed.
    let mut calls = Vec::new();
    for n in 0..5 {
        let id = simulate_incoming(&bridge, &format!("+4420794600{n:02}")).await;
        hangup(&bridge, &id).await;
        calls.push(id);
    }
    // Killed at once: the notifications were written before the API answered, so none is only in memory.
    bridge.kill();

    let mut bridge = Bridge::start_in(home.path(), &[]);
    // The store is in the platform's data directory (XDG_DATA_HOME here), and only one bridge may own it.
    assert!(home.path().join("data").join("callbridge").join("callbridge.sqlite3").exists());
    let second = run_cli(home.path(), &["serve", "--port", "0"], &[]);
    let stderr = String::from_utf8_lossy(&second.stderr);
    assert!(!second.status.success() && stderr.contains("in use by another CallBridge"), "{stderr}");
    let log = log_until(&bridge, "ten pending deliveries retried after the restart", |log| {
        log.len() == 10 && log.iter().all(|d| d["status"] == "pending") && log.iter().any(|d| d["attempts"].as_u64() > Some(0))
    })
    .await;
    let expected: BTreeSet<String> = log.iter().map(|d| d["idempotency_key"].as_str().expect("key").to_owned()).collect();
    assert_eq!(expected.len(), 10, "one delivery per call and event: {expected:?}");
    for call in &calls {
        assert!(expected.contains(&format!("{call}:incoming:incoming-1")) && expected.contains(&format!("{call}:ended:ended-1")));
    }
    let failed_try = log.iter().find(|d| d["attempts"].as_u64() > Some(0)).expect("one was tried");
    assert!(failed_try["last_error"].as_str().is_some_and(|e| e.contains("connect")), "{failed_try}");

    let crm = crm.up().await;
    let received = eventually(WAIT, "every notification at the CRM", || {
        let got = crm.received();
        let keys: BTreeSet<String> = got.iter().map(key).collect();
        (keys == expected).then_some(got)
    })
    .await;
    // Any repeat on the wire is the same request with the same key.
    let mut by_key: BTreeMap<String, Vec<&Received>> = BTreeMap::new();
    for r in &received {
        by_key.entry(key(r)).or_default().push(r);
    }
    for (k, requests) in &by_key {
        assert!(requests.iter().all(|r| r.target() == requests[0].target() && r.body == requests[0].body), "repeats of {k} differ");
    }
    // Each call's notifications arrived in event order.
    for call in &calls {
        let first = |event: &str| received.iter().position(|r| key(r) == format!("{call}:{event}:{event}-1")).expect("arrived");
        assert!(first("incoming") < first("ended"), "call {call}: ended before incoming");
        let incoming = received.iter().find(|r| key(r).starts_with(&format!("{call}:incoming"))).expect("incoming");
        assert_eq!(incoming.param("call").as_deref(), Some(call.as_str()));
    }
    log_until(&bridge, "all ten delivered", |log| log.len() == 10 && log.iter().all(|d| d["status"] == "delivered")).await;

    // The call history survived the kill too, and pages newest first.
    let (_, page) = bridge.get("/api/v1/calls?limit=3").await;
    let first: Vec<&str> = page["calls"].as_array().expect("calls").iter().map(|c| c["id"].as_str().unwrap_or_default()).collect();
    assert_eq!(first, [calls[4].as_str(), calls[3].as_str(), calls[2].as_str()]);
    let next = page["next_before"].as_i64().expect("a second page");
    let (_, page2) = bridge.get(&format!("/api/v1/calls?limit=3&before={next}")).await;
    let second: Vec<&str> = page2["calls"].as_array().expect("calls").iter().map(|c| c["id"].as_str().unwrap_or_default()).collect();
    assert_eq!(second, [calls[1].as_str(), calls[0].as_str()]);
    assert!(page2["next_before"].is_null());
    assert_eq!(page2["calls"][0]["state"], "ended");
    assert!(bridge.stop(), "a clean stop after the test");
}

#[tokio::test]
async fn client_errors_are_not_retried_server_errors_are_with_backoff() {
    let crm = FakeCrm::start().await;
    let bridge = Bridge::start(&config(&crm.url()));

    // 404: the CRM refuses the request; sending it again will not help.
    crm.respond_with(404);
    let refused_call = simulate_incoming(&bridge, "+442079460001").await;
    let refused_key = format!("{refused_call}:incoming:incoming-1");
    let log = log_until(&bridge, "the 404 delivery to be given up", |log| log.iter().any(|d| d["idempotency_key"] == refused_key.as_str() && d["status"] == "failed")).await;
    let refused = log.iter().find(|d| d["idempotency_key"] == refused_key.as_str()).expect("logged").clone();
    assert_eq!((refused["attempts"].as_u64(), refused["last_http_status"].as_u64()), (Some(1), Some(404)), "{refused}");
    assert!(refused["last_error"].as_str().is_some_and(|e| e.contains("404")), "{refused}");
    assert!(refused.get("next_attempt_at").is_none(), "no retry is planned: {refused}");

    // 503: the CRM is in trouble; the delivery is retried, each time with the same key, waiting longer.
    crm.respond_with(503);
    let retried_call = simulate_incoming(&bridge, "+442079460002").await;
    let retried_key = format!("{retried_call}:incoming:incoming-1");
    let log = log_until(&bridge, "three failed attempts at the 503 delivery", |log| {
        log.iter().any(|d| d["idempotency_key"] == retried_key.as_str() && d["attempts"].as_u64() >= Some(3))
    })
    .await;
    let retried = log.iter().find(|d| d["idempotency_key"] == retried_key.as_str()).expect("logged").clone();
    assert_eq!(retried["status"], "pending", "{retried}");
    assert_eq!(retried["last_http_status"], 503, "{retried}");
    let (_, detail) = bridge.get(&format!("/api/v1/deliveries/{}", retried["id"])).await;
    let attempts = detail["attempt_log"].as_array().expect("attempt log");
    let waits: Vec<u64> = attempts.iter().filter_map(|a| a["retry_in_ms"].as_u64()).collect();
    assert!(waits.len() >= 3, "{detail}");
    // 100 ms doubling with jitter in the upper half: [50,100], [100,200], [200,400] ms.
    assert!(waits[0] <= 100 && waits[2] >= 200 && waits[2] > waits[0], "backoff grows: {waits:?}");
    assert!(attempts.iter().all(|a| a["http_status"] == 503 && a["error"].as_str().is_some()), "{detail}");

    crm.respond_with(200);
    log_until(&bridge, "the 503 delivery to arrive once the CRM recovers", |log| {
        log.iter().any(|d| d["idempotency_key"] == retried_key.as_str() && d["status"] == "delivered")
    })
    .await;
    let received = crm.received();
    let count = |k: &str| received.iter().filter(|r| key(r) == k).count();
    assert_eq!(count(&refused_key), 1, "the 404 was not retried");
    assert!(count(&retried_key) >= 4, "the 503 was retried until it arrived");

    // The Activity view's Retry sends the given-up delivery again, with its original key.
    let (status, body) = bridge.post(&format!("/api/v1/deliveries/{}/retry", refused["id"]), json!({})).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["delivery"]["status"], "pending");
    crm.wait_for(received.len() + 1, WAIT).await;
    log_until(&bridge, "the retried delivery to arrive", |log| {
        log.iter().any(|d| d["idempotency_key"] == refused_key.as_str() && d["status"] == "delivered" && d["attempts"] == 2)
    })
    .await;
    assert_eq!(crm.received().iter().filter(|r| key(r) == refused_key).count(), 2);
    let (status, body) = bridge.post(&format!("/api/v1/deliveries/{}/retry", refused["id"]), json!({})).await;
    assert_eq!((status, body["error"].as_str()), (409, Some("already_delivered")), "{body}");
    let (status, _) = bridge.post("/api/v1/deliveries/999999/retry", json!({})).await;
    assert_eq!(status, 404);

    let failed_only = deliveries(&bridge, "&status=failed").await;
    assert!(failed_only.is_empty(), "{failed_only:?}");
    let (status, body) = bridge.get("/api/v1/deliveries?status=lost").await;
    assert_eq!(status, 400, "{body}");
}

#[tokio::test]
async fn a_dial_the_phone_system_refuses_is_kept_in_the_history_as_failed() {
    // TeleCMI with no app secret in the keyring: the dial fails at the phone system.
    let bridge = Bridge::start(&format!(
        r#"
[provider]
kind = "telecmi"

[provider.telecmi]
base_url = "http://127.0.0.1:9"
user_id = "101_1111112"
secret_entry = "e2e-missing-secret-{}"
"#,
        std::process::id()
    ));
    let (status, body) = bridge.post("/api/v1/dial", json!({ "number": "+919200000000" })).await;
    assert!(status >= 500, "the dial fails: {status} {body}");
    let (_, page) = bridge.get("/api/v1/calls").await;
    let calls = page["calls"].as_array().expect("calls");
    assert_eq!(calls.len(), 1, "{page}");
    assert_eq!((calls[0]["state"].as_str(), calls[0]["disposition"].as_str()), (Some("ended"), Some("failed")), "{page}");
    assert_eq!(calls[0]["remote_number"], "+919200000000");
}

/// Rules for `/make` calls to `crm`, a far end that rings, answers and hangs up at once, and no dial
/// rate limit: every dial makes three call events and two notifications. Every commit is flushed to
/// the disk (`power-loss`), so that group commits take a while and writes wait behind them.
fn make_config(crm: &str) -> String {
    format!(
        r#"
[store]
durability = "power-loss"

[delivery]
retry_initial_ms = 100
retry_max_delay_secs = 1

[security]
dials_per_minute = 0

[provider.simulator]
ring_after_ms = 1
answer_after_ms = 2
hangup_after_ms = 1

[[notification]]
event = "outgoing"
url = "{crm}/outgoing?call=$callid"

[[notification]]
event = "ended"
url = "{crm}/ended?call=$callid"
"#
    )
}

/// Dials over and over until the bridge stops answering; the call ids of the dials it answered with
/// success. Once `armed`, the first dial answered kills the bridge at once (SIGKILL): the moment
/// after an answer is when a write the answer did not wait for would still be in the writer's queue.
async fn dial_until_killed(client: reqwest::Client, base: String, worker: usize, bridge: Arc<Mutex<Bridge>>, armed: Arc<AtomicBool>) -> Vec<String> {
    let mut answered = Vec::new();
    for i in 0.. {
        let url = format!("{base}/make/+44207946{:04}", (worker * 1_000 + i) % 10_000);
        let Ok(response) = client.get(&url).timeout(Duration::from_secs(10)).send().await else { break };
        let status = response.status();
        let Ok(body) = response.json::<Value>().await else { break };
        if armed.swap(false, Ordering::SeqCst) {
            bridge.lock().expect("bridge").kill();
        }
        assert_eq!(status, 200, "a dial failed while the bridge ran: {body}");
        answered.push(body["call_id"].as_str().expect("call id").to_owned());
    }
    answered
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_answered_dial_is_notified_after_a_sigkill_during_group_commits() {
    let crm = FakeCrm::start().await;
    let home = tempfile::tempdir().expect("tempdir");
    std::fs::write(home.path().join("callbridge.toml"), make_config(&crm.url())).expect("config");
    let bridge = Arc::new(Mutex::new(Bridge::start_in(home.path(), &[])));
    let base = bridge.lock().expect("bridge").url.clone();

    // Sixteen CRMs' worth of dials at once, each a write the store's writer groups with the others.
    let client = reqwest::Client::new();
    let armed = Arc::new(AtomicBool::new(false));
    let dialers: Vec<_> =
        (0..16).map(|w| tokio::spawn(dial_until_killed(client.clone(), base.clone(), w, Arc::clone(&bridge), Arc::clone(&armed)))).collect();
    eventually(WAIT, "a few hundred notifications at the CRM", || (crm.received().len() >= 300).then_some(())).await;
    // Killed in the middle, right after a dial was answered: dials, commits and notifications in flight.
    armed.store(true, Ordering::SeqCst);
    eventually(WAIT, "the kill", || (!armed.load(Ordering::SeqCst)).then_some(())).await;
    let before_kill: BTreeSet<String> = crm.received().iter().map(key).collect();
    let mut answered = Vec::new();
    for dialer in dialers {
        answered.extend(dialer.await.expect("dialer"));
    }
    assert!(answered.len() >= 150, "only {} dials were answered before the kill", answered.len());

    let bridge = Bridge::start_in(home.path(), &[]);
    // Every dial answered with success has its `outgoing` notification delivered, however close to
    // the kill it was answered.
    let received = eventually(WAIT, "the outgoing notification of every answered dial", || {
        let got = crm.received();
        let outgoing: BTreeSet<String> = got.iter().filter(|r| r.path == "/outgoing").filter_map(|r| r.param("call")).collect();
        answered.iter().all(|call| outgoing.contains(call)).then_some(got)
    })
    .await;
    // At least once, and no more than the contract says: a notification arrives twice only when it
    // was sent before the kill and its answer not yet recorded; then the repeat is the same request.
    let mut by_key: BTreeMap<String, Vec<&Received>> = BTreeMap::new();
    for r in &received {
        by_key.entry(key(r)).or_default().push(r);
    }
    for (k, requests) in &by_key {
        assert!(requests.len() <= 2, "{k} arrived {} times", requests.len());
        if requests.len() == 2 {
            assert!(before_kill.contains(k), "{k} arrived twice though it was not sent before the kill");
            assert_eq!(requests[0].target(), requests[1].target(), "repeats of {k} differ");
        }
    }
    let repeats = by_key.values().filter(|r| r.len() == 2).count();
    eprintln!("{} dials answered, {} notifications before the kill, {} after the restart, {repeats} sent twice", answered.len(), before_kill.len(), received.len());
    // What the restarted bridge sends is in order per call: no `ended` before its `outgoing`.
    for call in &answered {
        let position = |path: &str| received.iter().position(|r| r.path == path && r.param("call").as_deref() == Some(call.as_str()));
        if let (Some(outgoing), Some(ended)) = (position("/outgoing"), position("/ended")) {
            assert!(outgoing < ended, "call {call}: ended before outgoing");
        }
    }
    drop(bridge);
}
