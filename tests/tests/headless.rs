//! The headless bridge, black box: the built `callbridge` binary, its config file, its listener over
//! TCP, and a fake CRM receiving its notifications.

use std::time::Duration;

use callbridge_e2e::bridge::{command, Bridge};
use callbridge_e2e::crm::{FakeCrm, Received};
use callbridge_e2e::eventually_async;
use serde_json::{json, Value};

const WAIT: Duration = Duration::from_secs(20);

/// Enreach Contact's three notification URLs, plus a POST rule for outgoing calls with a JSON body template and one
/// without a body.
fn seed_000_config(crm: &str, simulator: &str) -> String {
    format!(
        r#"
[provider.simulator]
{simulator}

[[notification]]
event = "incoming"
url = "{crm}/incoming?callerid=$callerid"

[[notification]]
event = "outgoing"
method = "POST"
url = "{crm}/outgoing"
body = '{{"number": "$callerid", "call": "$callid", "direction": "$direction"}}'

[[notification]]
event = "answered"
url = "{crm}/active?callerid=$callerid"

[[notification]]
event = "ended"
url = "{crm}/end?callerid=$callerid&disposition=$disposition"

[[notification]]
event = "ended"
method = "POST"
url = "{crm}/end-json"
active = true
"#
    )
}

fn targets(received: &[Received]) -> Vec<String> {
    received.iter().map(|r| format!("{} {}", r.method, r.path)).collect()
}

async fn call_state(bridge: &Bridge, id: &str) -> String {
    let (status, body) = bridge.get(&format!("/api/v1/calls/{id}")).await;
    assert_eq!(status, 200, "{body}");
    body["call"]["state"].as_str().unwrap_or_default().to_owned()
}

#[tokio::test]
async fn make_rings_is_answered_and_ends_with_every_notification_in_order() {
    let crm = FakeCrm::start().await;
    let bridge = Bridge::start(&seed_000_config(&crm.url(), "ring_after_ms = 50\nanswer_after_ms = 200\nhangup_after_ms = 0"));

    let (status, body) = bridge.get("/make/020123456").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["ok"], true);
    assert_eq!(body["action"], "dial");
    let id = body["call_id"].as_str().expect("call id").to_owned();
    assert_eq!(body["call"]["remote_number"], "020123456");
    assert_eq!(body["call"]["direction"], "out");

    // The simulated far end answers by itself; the call shows as active in the API.
    eventually_async(WAIT, "the call to become active", || async {
        (call_state(&bridge, &id).await == "active").then_some(())
    })
    .await;

    let (status, body) = bridge.get("/end").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["call"]["state"], "ended");
    assert_eq!(body["call"]["disposition"], "answered");

    let got = crm.wait_for(4, WAIT).await;
    assert_eq!(targets(&got), ["POST /outgoing", "GET /active", "GET /end", "POST /end-json"]);
    let outgoing = got[0].json();
    assert_eq!(outgoing, json!({ "number": "020123456", "call": id, "direction": "out" }));
    assert_eq!(got[1].param("callerid").as_deref(), Some("020123456"));
    assert_eq!(got[2].param("disposition").as_deref(), Some("answered"));
    let end_json = got[3].json();
    assert_eq!(end_json["event"], "ended");
    assert_eq!(end_json["call"]["id"], id.as_str());
    assert_eq!(got[3].header("content-type"), Some("application/json"));
    for r in &got {
        assert!(r.header("idempotency-key").is_some_and(|k| k.starts_with(&id)), "{r:?}");
    }
    // Nothing more arrives: each event once.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(crm.received().len(), 4);
}

#[tokio::test]
async fn a_simulated_incoming_call_is_answered_and_ended_by_url_commands() {
    let crm = FakeCrm::start().await;
    let bridge = Bridge::start(&seed_000_config(&crm.url(), ""));

    let (status, body) = bridge.post("/api/v1/simulate/incoming", json!({ "number": "+44 20 7946 0000", "name": "Ada" })).await;
    assert_eq!(status, 200, "{body}");
    let id = body["call_id"].as_str().expect("call id").to_owned();
    assert_eq!(body["call"]["state"], "ringing");
    assert_eq!(body["call"]["direction"], "in");

    let (status, body) = bridge.get("/answer").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["call_id"], id.as_str());
    assert_eq!(call_state(&bridge, &id).await, "active");

    let (status, body) = bridge.post("/end", json!({})).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(call_state(&bridge, &id).await, "ended");

    let got = crm.wait_for(4, WAIT).await;
    assert_eq!(targets(&got), ["GET /incoming", "GET /active", "GET /end", "POST /end-json"]);
    // `+` survives the round trip percent-encoded, as Enreach Contact's $callerid.
    assert_eq!(got[0].query, "callerid=%2B442079460000");
    assert_eq!(got[0].param("callerid").as_deref(), Some("+442079460000"));

    let (_, calls) = bridge.get("/api/v1/calls").await;
    let calls = calls["calls"].as_array().expect("calls");
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0]["remote_name"], "Ada");
    assert_eq!(calls[0]["disposition"], "answered");
}

#[tokio::test]
async fn declining_a_ringing_call_reports_it_missed() {
    let crm = FakeCrm::start().await;
    let bridge = Bridge::start(&seed_000_config(&crm.url(), ""));
    let (status, _) = bridge.post("/api/v1/simulate/incoming", json!({ "number": "0301234567" })).await;
    assert_eq!(status, 200);
    let (status, body) = bridge.get("/end").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["call"]["disposition"], "missed");
    let got = crm.wait_for(3, WAIT).await;
    assert_eq!(targets(&got), ["GET /incoming", "GET /end", "POST /end-json"]);
    assert_eq!(got[1].param("disposition").as_deref(), Some("missed"));
}

#[tokio::test]
async fn bad_input_gets_a_clear_error_and_changes_nothing() {
    let crm = FakeCrm::start().await;
    let bridge = Bridge::start(&seed_000_config(&crm.url(), ""));
    let hundred = "1".repeat(100);
    let cases: Vec<(String, u16, &str, &str)> = vec![
        ("/make/0800FLOWERS".into(), 400, "bad_number", "'F'"),
        ("/make/".into(), 400, "bad_request", "number is missing"),
        ("/make".into(), 400, "bad_request", "number is missing"),
        ("/make/%20".into(), 400, "bad_number", "empty"),
        (format!("/make/{hundred}"), 400, "bad_number", "100 characters"),
        ("/make/1234567890123456789012345".into(), 400, "bad_number", "25 digits"),
        ("/dial/123".into(), 404, "unknown_path", "/make/NUMBER"),
        ("/answer".into(), 409, "no_call", "no incoming call is ringing"),
        ("/end".into(), 409, "no_call", "no call to end"),
        ("/api/v1/calls/nope".into(), 404, "unknown_call", "nope"),
    ];
    for (path, want_status, want_code, want_text) in cases {
        let (status, body) = bridge.get(&path).await;
        assert_eq!(status, want_status, "{path}: {body}");
        assert_eq!(body["ok"], false, "{path}");
        assert_eq!(body["error"], want_code, "{path}: {body}");
        let message = body["message"].as_str().unwrap_or_default();
        assert!(message.contains(want_text), "{path}: {message:?} should mention {want_text:?}");
    }
    let (status, body) = bridge.post("/api/v1/dial", json!({ "numbr": "123" })).await;
    assert_eq!(status, 400, "{body}");
    assert!(body["message"].as_str().unwrap_or_default().contains("numbr"), "{body}");

    // Nothing was dialed, nothing was notified.
    let (_, calls) = bridge.get("/api/v1/calls").await;
    assert_eq!(calls["calls"], json!([]));
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(crm.received().is_empty(), "{:?}", crm.received());
}

#[tokio::test]
async fn a_malformed_config_is_refused_with_its_line_and_left_as_it_was() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("callbridge.toml");
    let text = "[listener]\nport = 5678\n\n[[notification]]\nevent = \"incoming\"\nurl = \"http://crm.example/in?c=$caller_id\"\n";
    std::fs::write(&path, text).expect("write");
    for args in [vec!["serve", "--port", "0"], vec!["config", "check"]] {
        let out = command()
            .args(["--config", path.to_str().expect("utf-8 path")])
            .args(&args)
            .env("HOME", dir.path())
            .output()
            .expect("run callbridge");
        assert!(!out.status.success(), "{args:?} must fail");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains("line 6") && stderr.contains("$caller_id"), "{args:?}: {stderr}");
    }
    assert_eq!(std::fs::read_to_string(&path).expect("still there"), text, "the file is untouched");
    assert!(!dir.path().join("callbridge.toml.bak").exists());
}

#[tokio::test]
async fn the_defaults_listen_on_localhost_5678_with_the_simulator() {
    let dir = tempfile::tempdir().expect("tempdir");
    // No config file and no --port: everything is the default.
    let bridge = Bridge::launch(dir.path(), &[], &[]);
    assert_eq!(bridge.url, "http://localhost:5678");
    let response = reqwest::get("http://127.0.0.1:5678/api/v1/status").await.expect("127.0.0.1 answers");
    assert_eq!(response.status().as_u16(), 200);
    let (_, status_body) = bridge.get("/api/v1/status").await;
    assert_eq!(status_body["status"]["provider"]["name"], "simulator");
    assert_eq!(status_body["status"]["provider"]["ready"], true);
    // Loopback only: the machine's other addresses do not answer.
    let out = std::process::Command::new("hostname").arg("-I").output();
    if let Some(other) = out.ok().and_then(|o| String::from_utf8(o.stdout).ok()).and_then(|s| s.split_whitespace().next().map(str::to_owned)) {
        let refused = std::net::TcpStream::connect_timeout(&format!("{other}:5678").parse().expect("addr"), Duration::from_millis(500));
        assert!(refused.is_err(), "the listener must not answer on {other}");
    }
}

#[tokio::test]
async fn the_cli_talks_to_the_running_bridge() {
    let crm = FakeCrm::start().await;
    let bridge = Bridge::start(&seed_000_config(&crm.url(), "answer_after_ms = 0"));
    let cli = |args: &[&str]| {
        let out = command()
            .args(["--config", bridge.config_path.to_str().expect("utf-8")])
            .args(args)
            .env("CALLBRIDGE_URL", &bridge.url)
            .output()
            .expect("run the CLI");
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        (out.status.success(), stdout, stderr)
    };
    let (ok, out, err) = cli(&["simulate", "incoming", "+4930123456", "--name", "Grace"]);
    assert!(ok, "{out}{err}");
    let (ok, out, _) = cli(&["status"]);
    assert!(ok && out.contains("\"ringing\""), "{out}");
    let (ok, out, _) = cli(&["answer"]);
    assert!(ok && out.contains("\"active\""), "{out}");
    let (ok, out, _) = cli(&["hangup"]);
    assert!(ok && out.contains("\"ended\""), "{out}");
    let (ok, _, err) = cli(&["answer"]);
    assert!(!ok && err.contains("no incoming call is ringing"), "{err}");
    let (ok, out, _) = cli(&["dial", "+44 20 7946 0000"]);
    assert!(ok && out.contains("\"+442079460000\""), "{out}");
    let (ok, out, _) = cli(&["calls"]);
    assert!(ok && out.matches("\"id\"").count() == 2, "{out}");
    // Each call's notifications arrive in order; the two calls' may interleave.
    let got = targets(&crm.wait_for(5, WAIT).await);
    let first_call: Vec<_> = got.iter().filter(|t| *t != "POST /outgoing").collect();
    assert_eq!(first_call, ["GET /incoming", "GET /active", "GET /end", "POST /end-json"]);
    assert!(got.contains(&"POST /outgoing".to_owned()), "{got:?}");
}

#[tokio::test]
async fn sigterm_shuts_down_cleanly() {
    let mut bridge = Bridge::start("");
    let (status, _) = bridge.get("/health").await;
    assert_eq!(status, 200);
    assert!(bridge.stop(), "callbridge exits 0 on SIGTERM; logs:\n{}", bridge.logs());
    assert!(bridge.logs().contains("shutting down"));
}

#[tokio::test]
async fn configured_segments_replace_the_defaults() {
    let crm = FakeCrm::start().await;
    let config = format!(
        "[listener]\nmake = \"call\"\nanswer = \"pickup\"\nend = \"hangup\"\n{}",
        seed_000_config(&crm.url(), "answer_after_ms = 0")
    );
    let bridge = Bridge::start(&config);
    let (status, body) = bridge.get("/make/020123456").await;
    assert_eq!(status, 404, "{body}");
    assert!(body["message"].as_str().unwrap_or_default().contains("/call/NUMBER"), "{body}");
    let (status, body) = bridge.post("/call/020123456", Value::Null).await;
    assert_eq!(status, 200, "{body}");
    let (status, _) = bridge.get("/hangup").await;
    assert_eq!(status, 200);
    let (status, _) = bridge.get("/pickup").await;
    assert_eq!(status, 409);
}
