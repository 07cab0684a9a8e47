//! No request may take CallBridge down: the built `callbridge` is sent requests that once crashed it,
//! and a handler that panics, and must answer each with a clear error and go on serving.

use std::time::Duration;

use callbridge_e2e::bridge::{request, Bridge};
use callbridge_e2e::eventually;
use serde_json::{json, Value};

/// The panicking route a debug build adds when `CALLBRIDGE_TEST_PANIC_ROUTE=1` is set.
const PANIC_PATH: &str = "/api/v1/test/panic";

fn bridge() -> (tempfile::TempDir, Bridge) {
    let home = tempfile::tempdir().expect("tempdir");
    let bridge = Bridge::start_in(home.path(), &[("CALLBRIDGE_TEST_PANIC_ROUTE", "1")]);
    (home, bridge)
}

async fn assert_serving(bridge: &Bridge, after: &str) {
    let (status, body) = bridge.get("/health").await;
    assert_eq!((status, body["ok"].as_bool()), (200, Some(true)), "after {after}: {body}");
}

async fn put_config(bridge: &Bridge, config: &Value) -> (u16, Value) {
    request(reqwest::Client::new().put(format!("{}/api/v1/config", bridge.url)).json(config)).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_test_rule_that_is_not_an_object_is_a_400() {
    let (_home, bridge) = bridge();
    for rule in [json!(5), json!("text"), json!([1, 2]), json!(null), json!(true)] {
        let (status, body) = bridge.post("/api/v1/notifications/test", json!({ "rule": rule })).await;
        assert_eq!(status, 400, "{rule}: {body}");
        assert_eq!((body["error"].as_str(), body["field"].as_str()), (Some("invalid"), Some("rule")), "{body}");
        assert!(body["message"].as_str().is_some_and(|m| m.contains("object")), "{body}");
        assert_serving(&bridge, &format!("{{\"rule\":{rule}}}")).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn out_of_range_settings_are_a_400_naming_the_field_and_change_nothing() {
    let (_home, bridge) = bridge();
    let (_, current) = bridge.get("/api/v1/config").await;
    let config = current["config"].clone();
    assert!(config.is_object(), "{current}");
    let cases = [
        ("provider.simulator.ring_after_ms", json!(1_u64 << 63)),
        ("provider.simulator.answer_after_ms", json!(u64::MAX)),
        ("provider.simulator.hangup_after_ms", json!(3_600_001)),
        ("delivery.timeout_secs", json!(1_u64 << 63)),
        ("delivery.max_age_hours", json!(1_u64 << 40)),
        ("listener.port", json!(70_000)),
    ];
    for (field, value) in cases {
        let mut bad = config.clone();
        let mut at = &mut bad;
        for part in field.split('.') {
            at = &mut at[part];
        }
        *at = value.clone();
        let (status, body) = put_config(&bridge, &bad).await;
        assert_eq!(status, 400, "{field} = {value}: {body}");
        assert_eq!((body["ok"].as_bool(), body["error"].as_str()), (Some(false), Some("invalid")), "{body}");
        assert_eq!(body["field"].as_str(), Some(field), "{body}");
        assert_serving(&bridge, &format!("{field} = {value}")).await;
    }
    let (_, after) = bridge.get("/api/v1/config").await;
    assert_eq!(after["config"], config, "nothing was applied");
    assert!(!bridge.config_path.exists(), "nothing was written");
    // A valid change still goes through afterwards.
    let mut good = config.clone();
    good["provider"]["simulator"]["ring_after_ms"] = json!(3_600_000);
    let (status, body) = put_config(&bridge, &good).await;
    assert_eq!(status, 200, "{body}");
    let written = std::fs::read_to_string(&bridge.config_path).expect("the file is written");
    assert!(written.contains("ring_after_ms = 3600000"), "{written}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_number_longer_than_e164_allows_is_a_400_that_says_so() {
    let (_home, bridge) = bridge();
    let (status, body) = bridge.get("/make/+1234567890123456").await;
    assert_eq!((status, body["error"].as_str()), (400, Some("bad_number")), "{body}");
    let message = body["message"].as_str().unwrap_or_default();
    assert!(message.contains("16 digits") && message.contains("at most 15") && message.contains("E.164"), "{message}");
    assert_serving(&bridge, "a 16-digit number").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panicking_handler_is_a_500_with_an_error_id_that_is_logged() {
    let (_home, bridge) = bridge();
    for _ in 0..2 {
        let (status, body) = bridge.get(PANIC_PATH).await;
        assert_eq!(status, 500, "{body}");
        assert_eq!((body["ok"].as_bool(), body["error"].as_str()), (Some(false), Some("internal")), "{body}");
        let id = body["error_id"].as_str().expect("an error id").to_owned();
        assert!(body["message"].as_str().is_some_and(|m| m.contains(&format!("error id {id}"))), "{body}");
        let logs = eventually(Duration::from_secs(10), "the panic in the log", || {
            let logs = bridge.logs();
            logs.contains(&id).then_some(logs)
        })
        .await;
        let line = logs.lines().find(|l| l.contains(&id)).unwrap_or_default();
        assert!(line.contains("the test route panicked, as asked"), "the log line has the panic message: {line}");
        assert_serving(&bridge, "a panic").await;
    }
    // Everything else still works: a call can be placed.
    let (status, body) = bridge.get("/make/+442079460000").await;
    assert_eq!(status, 200, "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_the_variable_there_is_no_panicking_route() {
    let home = tempfile::tempdir().expect("tempdir");
    let bridge = Bridge::start_in(home.path(), &[]);
    let (status, body) = bridge.get(PANIC_PATH).await;
    assert_eq!(status, 404, "{body}");
}
