//! The fault matrix: one rule's endpoint misbehaves in each way a CRM can, against the built
//! `callbridge` binary, while a second rule goes to a working CRM.
//!
//! For every fault: the working rule's notifications — for the same calls and for other calls — arrive
//! within 2 s; the faulty rule's are retried or given up as docs/delivery.md says; the
//! delivery log (`last_error` of `GET /api/v1/deliveries`, what the Activity view shows) names the fault
//! in plain words; and the faulty rule's own later notification of a call still waits for the earlier
//! one. A 50 MB answer does not grow the bridge's memory by anything like 50 MB. All eleven faulty
//! endpoints are rules of one bridge at once, with a 3 s delivery timeout so the hanging and slow CRMs
//! are exercised quickly.

use std::sync::Arc;
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

/// One fault case: the endpoint of rules `{slug}-incoming` and `{slug}-ended`.
#[derive(Debug, Clone, Copy)]
struct Case {
    slug: &'static str,
    name: &'static str,
    fault: Fault,
    expect: Expect,
}

const CASES: [Case; 11] = [
    Case { slug: "refused", name: "connection refused", fault: Fault::Refused, expect: Expect::Retried("connection refused") },
    Case { slug: "hang", name: "accepts and never answers", fault: Fault::Hang, expect: Expect::Retried(TIMED_OUT) },
    Case { slug: "slow", name: "answers after 30 s", fault: Fault::AnswerAfter(Duration::from_secs(30)), expect: Expect::Retried(TIMED_OUT) },
    Case { slug: "s500", name: "500", fault: Fault::Status(500), expect: Expect::Retried("the CRM answered 500 Internal Server Error") },
    Case { slug: "s503", name: "503", fault: Fault::Status(503), expect: Expect::Retried("the CRM answered 503 Service Unavailable") },
    Case { slug: "s404", name: "404", fault: Fault::Status(404), expect: Expect::GivenUp("the CRM answered 404 Not Found") },
    Case { slug: "redirect", name: "301 to itself", fault: Fault::RedirectLoop, expect: Expect::GivenUp("too many redirects") },
    Case { slug: "garbage", name: "not HTTP", fault: Fault::Garbage, expect: Expect::Retried("not an HTTP answer") },
    Case { slug: "tls", name: "https:// at a plain-HTTP port", fault: Fault::TlsToPlainHttp, expect: Expect::Retried("TLS handshake failed") },
    Case { slug: "dns", name: "host name that does not resolve", fault: Fault::UnknownHost, expect: Expect::Retried("host name not found") },
    Case { slug: "huge", name: "50 MB answer", fault: Fault::HugeBody(HUGE), expect: Expect::Delivered },
];

/// Rules for incoming and ended calls to each faulty endpoint and to the working CRM (`good-*`); all
/// for incoming calls only, so an outgoing call can warm the bridge up without notifying anyone. Quick
/// retries, the short timeout.
fn config(faulty: &[(Case, String)], good: &str) -> String {
    let mut config = format!(
        r#"
[delivery]
timeout_secs = {TIMEOUT_SECS}
retry_initial_ms = 300
retry_max_delay_secs = 1

[security]
dials_per_minute = 0
"#
    );
    for (case, url) in faulty {
        let slug = case.slug;
        config.push_str(&format!(
            r#"
[[notification]]
id = "{slug}-incoming"
event = "incoming"
direction = "in"
url = "{url}/incoming?call=$callid"

[[notification]]
id = "{slug}-ended"
event = "ended"
direction = "in"
method = "POST"
url = "{url}/ended?call=$callid"
"#
        ));
    }
    // The working CRM's rules come last: each of its notifications is queued after the faulty ones.
    config.push_str(&format!(
        r#"
[[notification]]
id = "good-incoming"
event = "incoming"
direction = "in"
url = "{good}/incoming?call=$callid"

[[notification]]
id = "good-ended"
event = "ended"
direction = "in"
method = "POST"
url = "{good}/ended?call=$callid"
"#
    ));
    config
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
async fn arrives_promptly(good: &FakeCrm, key: &str) {
    eventually(PROMPTLY, &format!("{key} at the working CRM"), || {
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

/// Checks what became of case `case`'s notifications of call 1 (rang and ended) and call 2 (rang).
async fn check(bridge: Arc<Bridge>, case: Case, faulty: Arc<FaultyEndpoint>, call1: String, call2: String) -> &'static str {
    let Case { slug, name, fault, expect } = case;
    let first = format!("{call1}:incoming:{slug}-incoming");
    let later = format!("{call1}:ended:{slug}-ended");
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
            delivery_until(&bridge, &format!("{call2}:incoming:{slug}-incoming"), "to be given up", |d| d["status"] == "failed").await;
            // Given up stays given up: nothing more reaches the endpoint, longer than a retry would wait.
            let hits = faulty.hits();
            tokio::time::sleep(Duration::from_millis(1_500)).await;
            assert_eq!(faulty.hits(), hits, "{name}: no retries");
            let entry = delivery(&bridge, &first).await.expect("logged");
            assert_eq!((entry["status"].as_str(), entry["attempts"].as_u64()), (Some("failed"), Some(1)), "{name}: {entry:#}");
        }
        Expect::Delivered => {
            let entry = delivery_until(&bridge, &first, "to be delivered", |d| d["status"] == "delivered").await;
            assert_eq!((entry["attempts"].as_u64(), entry["last_http_status"].as_u64()), (Some(1), Some(200)), "{name}: {entry:#}");
            delivery_until(&bridge, &later, "to be delivered", |d| d["status"] == "delivered").await;
            delivery_until(&bridge, &format!("{call2}:incoming:{slug}-incoming"), "to be delivered", |d| d["status"] == "delivered").await;
            if let Fault::HugeBody(size) = fault {
                // Three answers of 50 MB each were sent (call 1's incoming and ended, call 2's
                // incoming); the bridge read the start of each and let go.
                assert_eq!(faulty.hits(), 3, "{name}: one request per notification");
                assert!(faulty.body_sent() < size, "{name}: the bridge read the whole bodies ({} bytes)", faulty.body_sent());
            }
        }
    }
    name
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_faulty_endpoint_holds_up_only_its_own_rule_and_the_log_names_the_fault() {
    let mut faulty = Vec::new();
    for case in CASES {
        faulty.push((case, Arc::new(FaultyEndpoint::start(case.fault).await)));
    }
    let good = FakeCrm::start().await;
    let cfg = config(&faulty.iter().map(|(case, e)| (*case, e.url().to_owned())).collect::<Vec<_>>(), &good.url());
    let bridge = Arc::new(tokio::task::spawn_blocking(move || Bridge::start(&cfg)).await.expect("start the bridge"));

    // Warm up with an outgoing call, which no rule is for: the memory the bridge needs anyway (number
    // metadata, the first call) is in use before the baseline is read.
    let (status, body) = bridge.get("/make/+442079460100").await;
    assert_eq!(status, 200, "{body}");
    hangup(&bridge, body["call_id"].as_str().expect("call id")).await;
    let rss_before = rss_kib(&bridge);

    // Call 1 rings and ends; call 2 rings. The working rules' notifications go out at once, whatever
    // the eleven faulty endpoints are doing with theirs.
    let call1 = simulate_incoming(&bridge, "+442079460101").await;
    arrives_promptly(&good, &format!("{call1}:incoming:good-incoming")).await;
    hangup(&bridge, &call1).await;
    arrives_promptly(&good, &format!("{call1}:ended:good-ended")).await;
    let call2 = simulate_incoming(&bridge, "+442079460102").await;
    arrives_promptly(&good, &format!("{call2}:incoming:good-incoming")).await;

    let checks: Vec<_> = faulty
        .iter()
        .map(|(case, endpoint)| tokio::spawn(check(Arc::clone(&bridge), *case, Arc::clone(endpoint), call1.clone(), call2.clone())))
        .collect();
    let mut failures = Vec::new();
    for task in checks {
        match task.await {
            Ok(name) => eprintln!("fault case passed: {name}"),
            Err(e) => failures.push(e.to_string()),
        }
    }
    assert!(failures.is_empty(), "{} fault case(s) failed: {failures:#?}", failures.len());

    // Three 50 MB answers did not grow the bridge's memory by anything like one of them.
    let grown_kib = rss_kib(&bridge).saturating_sub(rss_before);
    eprintln!("the bridge's memory grew by {grown_kib} KiB");
    assert!(grown_kib < 20 * 1024, "the bridge's memory grew by {grown_kib} KiB");

    // The working CRM got each of its notifications once; the faulty rules' troubles added none.
    let keys: Vec<String> = good.received().iter().filter_map(|r| r.header("idempotency-key").map(str::to_owned)).collect();
    let expected = [format!("{call1}:incoming:good-incoming"), format!("{call1}:ended:good-ended"), format!("{call2}:incoming:good-incoming")];
    for key in &expected {
        assert_eq!(keys.iter().filter(|k| *k == key).count(), 1, "{key} once: {keys:?}");
    }
    assert_eq!(keys.len(), expected.len(), "{keys:?}");
}
