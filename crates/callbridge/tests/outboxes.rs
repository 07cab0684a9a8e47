//! Both outboxes under many calls at once: every delivery arrives, each call's in the order it was
//! queued — the in-memory one while it closes the lanes of calls whose deliveries are all sent, the
//! durable one on a real SQLite file with many calls in flight and failed deliveries coming back for
//! their retry.

use std::sync::Arc;
use std::time::Duration;

use callbridge::config::DeliveryConfig;
use callbridge::notify::durable::DurableOutbox;
use callbridge::notify::{Delivery, DeliveryLog, MemoryOutbox, Outbox, Sender};
use callbridge::store::{Durability, Store};
use callbridge::CallId;
use callbridge_e2e::crm::FakeCrm;

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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_delivery_arrives_in_order_per_call_across_lane_sweeps() {
    let crm = FakeCrm::start().await;
    let log = Arc::new(DeliveryLog::default());
    let outbox = MemoryOutbox::start(Sender::new(Duration::from_secs(10)), Arc::clone(&log));
    // 300 calls (several sweeps of idle lanes), three deliveries each, queued in waves so that some
    // calls' lanes go idle and are closed between their deliveries.
    let (calls, steps) = (300, 3);
    for step in 0..steps {
        for call in 0..calls {
            outbox.enqueue(vec![delivery(&crm, call, step)]);
        }
        if step == 0 {
            crm.wait_for(calls, Duration::from_secs(30)).await;
        }
    }
    let received = crm.wait_for(calls * steps, Duration::from_secs(30)).await;
    assert_eq!(received.len(), calls * steps, "every delivery arrived once");
    for call in 0..calls {
        let order: Vec<String> = received
            .iter()
            .filter(|r| r.param("call") == Some(call.to_string()))
            .filter_map(|r| r.param("step"))
            .collect();
        assert_eq!(order, ["0", "1", "2"], "call {call}'s deliveries in order");
    }
    assert_eq!(log.recent(1_000).len(), calls * steps, "every attempt was logged");
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
        outbox.enqueue(vec![delivery(&crm, call, 0)]);
    }
    callbridge_e2e::eventually(Duration::from_secs(30), "the first attempts to fail", || (log.recent(10_000).len() >= 50).then_some(())).await;
    for step in 1..steps {
        for call in 0..calls {
            outbox.enqueue(vec![delivery(&crm, call, step)]);
        }
    }
    crm.respond_with(200);

    let total = (calls * steps) as u64;
    callbridge_e2e::eventually(Duration::from_secs(60), "every delivery to be delivered", || {
        (store.delivery_counts().expect("counts") == (0, total, 0)).then_some(())
    })
    .await;
    // Per call, what reached the CRM — with the repeats of a failed delivery collapsed — is its
    // deliveries in queue order: none overtook one still being retried.
    let received = crm.received();
    for call in 0..calls {
        let mut order: Vec<String> = received
            .iter()
            .filter(|r| r.param("call") == Some(call.to_string()))
            .filter_map(|r| r.param("step"))
            .collect();
        order.dedup();
        assert_eq!(order, ["0", "1", "2"], "call {call}'s deliveries in order");
    }
}
