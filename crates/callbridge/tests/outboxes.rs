//! The durable outbox under many calls at once: every delivery arrives, each call's in the order it
//! was queued, on a real SQLite file with many calls in flight and failed deliveries coming back for
//! their retry. An endpoint that hangs holds up nothing sent elsewhere, and each way an endpoint can
//! fail is reported in words a CRM admin understands.

use std::sync::Arc;
use std::time::Duration;

use callbridge::config::DeliveryConfig;
use callbridge::notify::durable::{DurableOutbox, ENDPOINT_IN_FLIGHT};
use callbridge::notify::{Delivery, DeliveryLog, Outbox, Sender};
use callbridge::store::{Durability, Store};
use callbridge::CallId;
use callbridge_e2e::crm::{FakeCrm, Fault, FaultyEndpoint};

fn delivery(crm: &FakeCrm, call: usize, step: usize) -> Delivery {
    let call_id = CallId::from(format!("call-{call}"));
    Delivery {
        rule_id: "r".into(),
        event: format!("e{step}"),
        call_id: call_id.clone(),
        method: "GET",
        url: format!("{}/n?call={call}&step={step}", crm.url()),
        headers: Vec::new(),
        body: None,
        idempotency_key: format!("{call_id}:e{step}:r"),
    }
}

/// Waits until all `calls × steps` deliveries are delivered, then checks that per call what reached the
/// CRM — with the repeats of a failed delivery collapsed — is its deliveries in queue order: none
/// overtook one still being retried.
async fn every_delivery_arrives_in_order(crm: &FakeCrm, store: &Store, calls: usize, steps: usize) {
    let total = (calls * steps) as u64;
    callbridge_e2e::eventually(Duration::from_secs(60), "every delivery to be delivered", || {
        (store.delivery_counts().expect("counts") == (0, total, 0)).then_some(())
    })
    .await;
    let received = crm.received();
    let expected: Vec<String> = (0..steps).map(|step| step.to_string()).collect();
    for call in 0..calls {
        let mut order: Vec<String> = received
            .iter()
            .filter(|r| r.param("call") == Some(call.to_string()))
            .filter_map(|r| r.param("step"))
            .collect();
        order.dedup();
        assert_eq!(order, expected, "call {call}'s deliveries in order");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_delivery_arrives_once_in_order_per_call_with_many_calls_in_flight() {
    let crm = FakeCrm::start().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(&dir.path().join("callbridge.sqlite3"), Durability::Crash).expect("open the store");
    let config = DeliveryConfig { retry_initial_ms: 50, ..DeliveryConfig::default() };
    let log = Arc::new(DeliveryLog::default());
    let outbox = DurableOutbox::start(store.clone(), &config, Arc::clone(&log));

    // The CRM is failing while the first wave is queued: those are retried, and the calls' later
    // deliveries wait behind them.
    crm.respond_with(503);
    let (calls, steps) = (400, 3);
    for call in 0..calls {
        outbox.enqueue(vec![delivery(&crm, call, 0)]).wait().await.expect("saved");
    }
    callbridge_e2e::eventually(Duration::from_secs(30), "the first attempts to fail", || (log.recent(10_000).len() >= 50).then_some(())).await;
    for step in 1..steps {
        for call in 0..calls {
            outbox.enqueue(vec![delivery(&crm, call, step)]).detach();
        }
    }
    crm.respond_with(200);

    every_delivery_arrives_in_order(&crm, &store, calls, steps).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn past_what_memory_holds_deliveries_are_read_from_the_store_in_order() {
    let crm = FakeCrm::start().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(&dir.path().join("callbridge.sqlite3"), Durability::Crash).expect("open the store");
    let config = DeliveryConfig { retry_initial_ms: 50, ..DeliveryConfig::default() };
    let log = Arc::new(DeliveryLog::default());
    // Memory for 40 pending deliveries: 150 calls with a failing CRM are far more.
    let outbox = DurableOutbox::start_holding(store.clone(), &config, Arc::clone(&log), 40);
    crm.respond_with(503);
    let (calls, steps) = (150, 3);
    for call in 0..calls {
        outbox.enqueue(vec![delivery(&crm, call, 0)]).wait().await.expect("saved");
    }
    callbridge_e2e::eventually(Duration::from_secs(30), "the first attempts to fail", || (log.recent(10_000).len() >= 20).then_some(())).await;
    for step in 1..steps {
        for call in 0..calls {
            outbox.enqueue(vec![delivery(&crm, call, step)]).wait().await.expect("saved");
        }
    }
    crm.respond_with(200);
    every_delivery_arrives_in_order(&crm, &store, calls, steps).await;
    // The worker asks the store every 5 s whether the pending deliveries fit in memory again (they
    // do now); a new delivery after that arrives too.
    tokio::time::sleep(Duration::from_secs(6)).await;
    outbox.enqueue(vec![delivery(&crm, calls, 0)]).wait().await.expect("saved");
    callbridge_e2e::eventually(Duration::from_secs(30), "a delivery after the backlog", || {
        crm.received().iter().any(|r| r.param("call") == Some(calls.to_string())).then_some(())
    })
    .await;
}

/// A delivery of `call`'s `event` for rule `rule` to `base`.
fn to(base: &str, rule: &str, call: usize, event: &str) -> Delivery {
    let call_id = CallId::from(format!("call-{call}"));
    Delivery {
        rule_id: rule.into(),
        event: event.into(),
        call_id: call_id.clone(),
        method: "GET",
        url: format!("{base}/{event}?call={call}"),
        headers: Vec::new(),
        body: None,
        idempotency_key: format!("{call_id}:{event}:{rule}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hanging_endpoint_holds_up_nothing_sent_elsewhere() {
    let hang = FaultyEndpoint::start(Fault::Hang).await;
    let crm = FakeCrm::start().await;
    // Far longer than the test: every attempt at the hanging endpoint is still in flight at the end.
    let config = DeliveryConfig { timeout_secs: 60, ..DeliveryConfig::default() };
    let durable_log = Arc::new(DeliveryLog::default());
    let durable = DurableOutbox::start(Store::in_memory(), &config, Arc::clone(&durable_log));

    // 50 calls, each with a notification to the hanging endpoint queued first and one to the working
    // CRM after it.
    let calls = 50;
    for call in 0..calls {
        durable.enqueue(vec![to(hang.url(), "hang", call, "incoming"), to(&crm.url(), "durable", call, "incoming")]).detach();
    }
    let received = crm.wait_for(calls, Duration::from_secs(10)).await;
    assert_eq!(received.len(), calls, "every notification to the working CRM arrived once");
    // The hanging endpoint gets only its share of the attempt slots.
    callbridge_e2e::eventually(Duration::from_secs(10), "the hanging endpoint's connections", || (hang.hits() >= 1).then_some(())).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let hanging = hang.hits();
    assert!(hanging <= ENDPOINT_IN_FLIGHT, "the durable outbox sent at most {ENDPOINT_IN_FLIGHT} at once: {hanging}");
    assert!(durable_log.recent(1_000).iter().all(|r| r.rule_id == "durable"), "no hanging attempt has finished yet");
}

/// Sends one request to an endpoint with `fault` and returns the attempt.
async fn attempt(fault: Fault) -> callbridge::notify::Attempt {
    let endpoint = FaultyEndpoint::start(fault).await;
    Sender::new(Duration::from_secs(1)).send(&to(endpoint.url(), "r", 1, "incoming")).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_fault_is_reported_in_words_and_retried_only_when_that_can_help() {
    let cases = [
        (Fault::Refused, "could not connect: connection refused by 127.0.0.1:", true),
        (Fault::Hang, "timed out: the CRM did not answer within 1 s", true),
        (Fault::AnswerAfter(Duration::from_secs(30)), "timed out: the CRM did not answer within 1 s", true),
        (Fault::Status(500), "the CRM answered 500 Internal Server Error", true),
        (Fault::Status(503), "the CRM answered 503 Service Unavailable", true),
        (Fault::Status(404), "the CRM answered 404 Not Found", false),
        (Fault::RedirectLoop, "too many redirects", false),
        (Fault::Garbage, "not an HTTP answer from 127.0.0.1:", true),
        (Fault::TlsToPlainHttp, "could not connect: TLS handshake failed with 127.0.0.1:", true),
        (Fault::UnknownHost, "could not connect: host name not found: crm.callbridge-test.invalid", true),
    ];
    for (fault, words, retryable) in cases {
        let got = attempt(fault).await;
        let error = got.error.clone().unwrap_or_default();
        assert!(error.starts_with(words), "{fault:?}: {error:?} should start with {words:?}");
        assert_eq!(got.retryable(), retryable, "{fault:?}: {got:?}");
    }
    let tls = attempt(Fault::TlsToPlainHttp).await;
    assert!(tls.error.unwrap_or_default().contains("should the URL be http://?"), "the likely mistake is named");

    // A 50 MB answer: delivered, and only its start is kept.
    let huge = attempt(Fault::HugeBody(50 * 1024 * 1024)).await;
    assert!(huge.succeeded(), "{:?}", huge.error);
    assert_eq!(huge.response.map(|r| r.len()), Some(500));
}
