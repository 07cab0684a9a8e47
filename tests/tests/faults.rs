//! The fault matrix: one rule's endpoint misbehaves in each way a CRM can, against the built
//! `callbridge` binary, while a second rule goes to a working CRM.
//!
//! For every fault: the working rule's notifications — for the same calls and for other calls — arrive
//! within 2 s; the faulty rule's are retried or given up as the README's "Delivery guarantees" says; the
//! delivery log (`last_error` of `GET /api/v1/deliveries`, what the Activity view shows) names the fault
//! in plain words; and the faulty rule's own later notification of a call still waits for the earlier
//! one. A 50 MB answer does not grow the bridge's memory by anything like 50 MB. The cases run side by
//! side, one bridge each, with a 3 s delivery timeout so the hanging and slow CRMs are exercised quickly.

use std::time::Duration;

use callbridge_e2e::bridge::Bridge;
use callbridge_e2e::crm::{Fault, FakeCrm, FaultyEndpoint};
use callbridge_e2e::eventually;
use serde_json::{json, Value};

/// How soon the working rule's notifications must arrive, whatever the other rule's endpoint does.
const PROMPTLY: Duration = Duration::from_secs(2);

/// Long enough for anything that is not held to a deadline here.
const WAIT: Duration = Duration::from_secs(30);

/// The configured delivery timeout, seconds, and how the log words it.
const TIMEOUT_SECS: u64 = 3;
const TIMED_OUT: &str = "timed out: the CRM did not answer within 3 s";

const HUGE: usize = 50 * 1024 * 1024;

/// What the faulty rule's first notification must come to.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Expect {
    /// Still pending after failing attempts, with a next retry planned, and the log saying this.
    Retried(&'static str),
    /// Given up after exactly one attempt, the log saying this.
    GivenUp(&'static str),
    /// Delivered at the first attempt.
    Delivered,
}

/// Two CRMs for incoming and ended calls: the faulty one (`faulty-*` rules) and the working one
/// (`good-*` rules). Quick retries, the short timeout.
fn config(faulty: &str, good: &str) -> String {
    format!(
        r#"
[delivery]
timeout_secs = {TIMEOUT_SECS}
retry_initial_ms = 300
retry_max_delay_secs = 1

[security]
dials_per_minute = 0

[[notification]]
id = "faulty-incoming"
event = "incoming"
url = "{faulty}/incoming?call=$callid"

[[notification]]
id = "good-incoming"
event = "incoming"
url = "{good}/incoming?call=$callid"

[[notification]]
id = "faulty-ended"
event = "ended"
method = "POST"
url = "{faulty}/ended?call=$callid"

[[notification]]
id = "good-ended"
event = "ended"
method = "POST"
url = "{good}/ended?call=$callid"
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

/// The delivery with idempotency key `key`, if logged.
async fn delivery(bridge: &Bridge, key: &str) -> Option<Value> {
    let (status, body) = bridge.get("/api/v1/deliveries?limit=100").await;
    assert_eq!(status, 200, "{body}");
    body["deliveries"].as_array()?.iter().find(|d| d["idempotency_key"] == key).cloned()
}

/// Waits until the delivery `key` satisfies `check`, and returns it.
async fn delivery_until(bridge: &Bridge, key: &str, what: &str, check: impl Fn(&Value) -> bool) -> Value {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let entry = delivery(bridge, key).await;
        if let Some(entry) = entry.as_ref().filter(|e| check(e)) {
            return entry.clone();
        }
        assert!(tokio::time::Instant::now() < deadline, "timed out waiting for {key} {what}; it is: {entry:#?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Waits (at most [`PROMPTLY`]) for the working CRM to have the notification `key`.
async fn arrives_promptly(good: &FakeCrm, key: &str, case: &str) {
    eventually(PROMPTLY, &format!("{case}: {key} at the working CRM"), || {
        good.received().iter().any(|r| r.header("idempotency-key") == Some(key)).then_some(())
    })
    .await;
}

/// The bridge's resident memory, from `/proc/PID/status`.
fn rss_kib(bridge: &Bridge) -> u64 {
    let pid = bridge.pid().expect("running");
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("/proc/PID/status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or_else(|| panic!("no VmRSS in {status}"))
}

/// One fault case, start to end. Returns the case's name for the summary.
async fn case(name: &'static str, fault: Fault, expect: Expect) -> &'static str {
    let faulty = FaultyEndpoint::start(fault).await;
    let good = FakeCrm::start().await;
    let cfg = config(faulty.url(), &good.url());
    let bridge = tokio::task::spawn_blocking(move || Bridge::start(&cfg)).await.expect("start the bridge");
    let rss_before = rss_kib(&bridge);

    // Call 1 rings and ends; call 2 rings. The working rules' notifications go out at once, whatever
    // the faulty endpoint is doing with its own.
    let call1 = simulate_incoming(&bridge, "+442079460101").await;
    arrives_promptly(&good, &format!("{call1}:incoming:good-incoming"), name).await;
    hangup(&bridge, &call1).await;
    arrives_promptly(&good, &format!("{call1}:ended:good-ended"), name).await;
    let call2 = simulate_incoming(&bridge, "+442079460102").await;
    arrives_promptly(&good, &format!("{call2}:incoming:good-incoming"), name).await;

    let first = format!("{call1}:incoming:faulty-incoming");
    let later = format!("{call1}:ended:faulty-ended");
    match expect {
        Expect::Retried(words) => {
            let entry = delivery_until(&bridge, &first, "to be retried", |d| d["attempts"].as_u64() >= Some(2)).await;
            assert_eq!(entry["status"], "pending", "{name}: {entry:#}");
            assert!(entry["next_attempt_at"].is_string(), "{name}: a next retry is planned: {entry:#}");
            let error = entry["last_error"].as_str().unwrap_or_default();
            assert!(error.contains(words), "{name}: the log should say {words:?}: {entry:#}");
            // The faulty rule's `ended` of the same call waits behind its `incoming`, untried.
            let held = delivery(&bridge, &later).await.expect("the faulty ended is queued");
            assert_eq!((held["status"].as_str(), held["attempts"].as_u64()), (Some("pending"), Some(0)), "{name}: {held:#}");
            let (_, detail) = bridge.get(&format!("/api/v1/deliveries/{}", entry["id"])).await;
            let attempts = detail["attempt_log"].as_array().expect("attempt log");
            assert!(attempts.iter().all(|a| a["retry_in_ms"].as_u64().is_some()), "{name}: every failure planned a retry: {detail:#}");
        }
        Expect::GivenUp(words) => {
            let entry = delivery_until(&bridge, &first, "to be given up", |d| d["status"] == "failed").await;
            assert_eq!(entry["attempts"], 1, "{name}: one attempt only: {entry:#}");
            assert!(entry.get("next_attempt_at").is_none(), "{name}: no retry planned: {entry:#}");
            let error = entry["last_error"].as_str().unwrap_or_default();
            assert!(error.contains(words), "{name}: the log should say {words:?}: {entry:#}");
            // Given up, it holds nothing back: the rule's `ended` went out (and was given up too).
            delivery_until(&bridge, &later, "to be given up after its incoming", |d| d["status"] == "failed" && d["attempts"] == 1).await;
        }
        Expect::Delivered => {
            let entry = delivery_until(&bridge, &first, "to be delivered", |d| d["status"] == "delivered").await;
            assert_eq!((entry["attempts"].as_u64(), entry["last_http_status"].as_u64()), (Some(1), Some(200)), "{name}: {entry:#}");
            delivery_until(&bridge, &later, "to be delivered", |d| d["status"] == "delivered").await;
        }
    }

    if let Fault::HugeBody(size) = fault {
        // Two answers of 50 MB were sent; the bridge read the start of each and let go.
        let grown_kib = rss_kib(&bridge).saturating_sub(rss_before);
        assert!(grown_kib < 16 * 1024, "{name}: the bridge's memory grew by {grown_kib} KiB");
        eventually(WAIT, "the huge answers to be cut off", || (faulty.hits() == 2).then_some(())).await;
        assert!(faulty.body_sent() < 2 * size, "{name}: the bridge read the whole bodies ({} bytes)", faulty.body_sent());
    }
    if let Expect::GivenUp(_) = expect {
        // Given up stays given up: nothing more reaches the endpoint, longer than a retry would wait.
        let hits = faulty.hits();
        tokio::time::sleep(Duration::from_millis(1_500)).await;
        assert_eq!(faulty.hits(), hits, "{name}: no retries");
        let entry = delivery(&bridge, &first).await.expect("logged");
        assert_eq!((entry["status"].as_str(), entry["attempts"].as_u64()), (Some("failed"), Some(1)), "{name}: {entry:#}");
    }
    // The working CRM got each of its notifications; the faulty rule's troubles added none.
    let keys: Vec<String> = good.received().iter().filter_map(|r| r.header("idempotency-key").map(str::to_owned)).collect();
    for key in [format!("{call1}:incoming:good-incoming"), format!("{call1}:ended:good-ended"), format!("{call2}:incoming:good-incoming")] {
        assert_eq!(keys.iter().filter(|k| **k == key).count(), 1, "{name}: {key} once: {keys:?}");
    }
    name
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_faulty_endpoint_holds_up_only_its_own_rule_and_the_log_names_the_fault() {
    let cases = vec![
        tokio::spawn(case("connection refused", Fault::Refused, Expect::Retried("connection refused"))),
        tokio::spawn(case("accepts and never answers", Fault::Hang, Expect::Retried(TIMED_OUT))),
        tokio::spawn(case("answers after 30 s", Fault::AnswerAfter(Duration::from_secs(30)), Expect::Retried(TIMED_OUT))),
        tokio::spawn(case("500", Fault::Status(500), Expect::Retried("the CRM answered 500 Internal Server Error"))),
        tokio::spawn(case("503", Fault::Status(503), Expect::Retried("the CRM answered 503 Service Unavailable"))),
        tokio::spawn(case("404", Fault::Status(404), Expect::GivenUp("the CRM answered 404 Not Found"))),
        tokio::spawn(case("redirect loop", Fault::RedirectLoop, Expect::GivenUp("too many redirects"))),
        tokio::spawn(case("not HTTP", Fault::Garbage, Expect::Retried("not an HTTP answer"))),
        tokio::spawn(case("TLS to plain HTTP", Fault::TlsToPlainHttp, Expect::Retried("TLS handshake failed"))),
        tokio::spawn(case("unknown host", Fault::UnknownHost, Expect::Retried("host name not found"))),
        tokio::spawn(case("50 MB answer", Fault::HugeBody(HUGE), Expect::Delivered)),
    ];
    let mut failures = Vec::new();
    for task in cases {
        match task.await {
            Ok(name) => eprintln!("fault case passed: {name}"),
            Err(e) => failures.push(e.to_string()),
        }
    }
    assert!(failures.is_empty(), "{} fault case(s) failed: {failures:#?}", failures.len());
}
