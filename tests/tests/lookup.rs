//! The CRM's caller lookup, against the built `callbridge` binary and a CRM on loopback that answers
//! lookups: a JSON answer read by pointers, a plain-text answer, a number found only in its national
//! form, no match, a 500, a CRM too slow to wait for, the cache, and the API key from the real OS
//! keyring that never reaches the config, the logs or the store file.
//!
//! The key test needs the keyring: run under `scripts/with-keyring.sh` (scripts/test.sh does).

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Router;
use callbridge_e2e::bridge::{request, store_secret, Bridge};
use callbridge_e2e::crm::FakeCrm;
use serde_json::{json, Value};

const WAIT: Duration = Duration::from_secs(30);

/// One lookup request as the CRM received it.
#[derive(Debug, Clone)]
struct Asked {
    /// The `phone` query parameter, decoded.
    phone: String,
    authorization: Option<String>,
}

/// How the CRM answers one lookup.
#[derive(Debug, Clone)]
struct Reply {
    status: u16,
    content_type: Option<&'static str>,
    body: String,
    delay: Duration,
}

impl Reply {
    fn json(body: Value) -> Reply {
        Reply { status: 200, content_type: Some("application/json"), body: body.to_string(), delay: Duration::ZERO }
    }

    fn status(status: u16, body: &str) -> Reply {
        Reply { status, content_type: Some("text/plain"), body: body.to_owned(), delay: Duration::ZERO }
    }

    fn not_found() -> Reply {
        Reply::status(404, "")
    }
}

type Answerer = Arc<dyn Fn(&Asked) -> Reply + Send + Sync>;

#[derive(Clone)]
struct CrmState {
    asked: Arc<Mutex<Vec<Asked>>>,
    answer: Answerer,
}

/// A CRM that answers `GET /contacts?phone=…` with what `answer` says and records every request.
struct LookupCrm {
    url: String,
    asked: Arc<Mutex<Vec<Asked>>>,
    _stop: tokio::sync::oneshot::Sender<()>,
}

impl LookupCrm {
    async fn start(answer: impl Fn(&Asked) -> Reply + Send + Sync + 'static) -> LookupCrm {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind the lookup CRM");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        let asked = Arc::new(Mutex::new(Vec::new()));
        let state = CrmState { asked: Arc::clone(&asked), answer: Arc::new(answer) };
        let app = Router::new().fallback(handle).with_state(state);
        let stop = callbridge_e2e::serve_until_stopped(listener, app);
        LookupCrm { url, asked, _stop: stop }
    }

    fn asked(&self) -> Vec<Asked> {
        self.asked.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }

    fn phones(&self) -> Vec<String> {
        self.asked().into_iter().map(|a| a.phone).collect()
    }
}

async fn handle(State(state): State<CrmState>, uri: Uri, headers: HeaderMap) -> Response {
    let query = uri.query().unwrap_or_default();
    let phone = url::form_urlencoded::parse(query.as_bytes()).find(|(k, _)| k == "phone").map(|(_, v)| v.into_owned()).unwrap_or_default();
    let authorization = headers.get("authorization").and_then(|v| v.to_str().ok()).map(str::to_owned);
    let asked = Asked { phone, authorization };
    state.asked.lock().unwrap_or_else(PoisonError::into_inner).push(asked.clone());
    let reply = (state.answer)(&asked);
    tokio::time::sleep(reply.delay).await;
    let status = StatusCode::from_u16(reply.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    match reply.content_type {
        Some(ct) => (status, [("content-type", ct)], reply.body).into_response(),
        None => (status, reply.body).into_response(),
    }
}

/// A bridge that looks callers up at `lookup` (with `extra` lines in `[lookup]`) and tells `crm` of
/// incoming calls with the looked-up fields.
fn config(lookup: &str, crm: &str, extra: &str) -> String {
    format!(
        r#"
[dialing]
default_country = "GB"

[security]
dials_per_minute = 0

[lookup]
url = "{lookup}/contacts?phone=$callerid"
name_pointer = "/contact/name"
company_pointer = "/contact/company"
record_url_pointer = "/contact/url"
{extra}

[[notification]]
event = "incoming"
url = "{crm}/incoming?callerid=$callerid&name=$name&company=$company&record=$record_url"
"#
    )
}

async fn ring(bridge: &Bridge, number: &str) -> String {
    let (status, body) = bridge.post("/api/v1/simulate/incoming", json!({ "number": number })).await;
    assert_eq!(status, 200, "{body}");
    body["call_id"].as_str().expect("call id").to_owned()
}

async fn call(bridge: &Bridge, id: &str) -> Value {
    let (status, body) = bridge.get(&format!("/api/v1/calls/{id}")).await;
    assert_eq!(status, 200, "{body}");
    body["call"].clone()
}

fn ada(url: &str) -> Reply {
    Reply::json(json!({ "contact": { "name": "Ada Lovelace", "company": "Acme Corp", "url": url } }))
}

/// Reads the event stream until an event whose JSON contains all of `needles`, or panics after `WAIT`.
async fn wait_for_event(stream: &mut reqwest::Response, needles: &[&str]) -> String {
    let mut seen = String::new();
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        for event in seen.split("\n\n") {
            if needles.iter().all(|n| event.contains(n)) {
                return event.to_owned();
            }
        }
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        match tokio::time::timeout(left, stream.chunk()).await {
            Ok(Ok(Some(chunk))) => seen.push_str(&String::from_utf8_lossy(&chunk)),
            other => panic!("no event with {needles:?} on the stream ({other:?}); it sent:\n{seen}"),
        }
    }
}

#[tokio::test]
async fn a_json_answer_names_the_caller_everywhere() {
    let lookup = LookupCrm::start(|asked| if asked.phone == "+442079460000" { ada("/contacts/42") } else { Reply::not_found() }).await;
    let crm = FakeCrm::start().await;
    let bridge = Bridge::start(&config(&lookup.url, &crm.url(), ""));
    let mut stream = reqwest::Client::new().get(format!("{}/api/v1/events", bridge.url)).send().await.expect("event stream");
    assert_eq!(stream.status(), 200);

    let id = ring(&bridge, "+44 20 7946 0000").await;

    // The CRM's notification waited for the lookup and carries its fields.
    let got = crm.wait_for(1, WAIT).await;
    assert_eq!(got[0].param("callerid").as_deref(), Some("+442079460000"));
    assert_eq!(got[0].param("name").as_deref(), Some("Ada Lovelace"));
    assert_eq!(got[0].param("company").as_deref(), Some("Acme Corp"));
    let record = format!("{}/contacts/42", lookup.url);
    assert_eq!(got[0].param("record").as_deref(), Some(record.as_str()));

    // The popup hears of the call at once and of the name in an `updated` event.
    let incoming = wait_for_event(&mut stream, &["\"kind\":\"incoming\"", id.as_str()]).await;
    assert!(incoming.contains("+442079460000"), "{incoming}");
    let updated = wait_for_event(&mut stream, &["\"kind\":\"updated\"", id.as_str()]).await;
    assert!(updated.contains("Ada Lovelace") && updated.contains("Acme Corp"), "{updated}");

    // The API, "Open in CRM" and the history show them.
    let live = call(&bridge, &id).await;
    assert_eq!((live["remote_name"].as_str(), live["company"].as_str()), (Some("Ada Lovelace"), Some("Acme Corp")));
    let (status, body) = bridge.get(&format!("/api/v1/calls/{id}/crm-url")).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!((body["url"].as_str(), body["source"].as_str()), (Some(record.as_str()), Some("lookup")));
    let (status, body) = bridge.post("/api/v1/hangup", json!({ "call_id": id })).await;
    assert_eq!(status, 200, "{body}");
    let (_, history) = bridge.get("/api/v1/calls").await;
    let saved = history["calls"].as_array().and_then(|c| c.iter().find(|c| c["id"] == id.as_str())).cloned().expect("call in history");
    assert_eq!((saved["remote_name"].as_str(), saved["state"].as_str()), (Some("Ada Lovelace"), Some("ended")));
    assert_eq!(lookup.phones(), ["+442079460000"], "one request, in the first form");
}

#[tokio::test]
async fn a_plain_text_answer_is_the_name() {
    let lookup = LookupCrm::start(|_| Reply::status(200, "Grace Hopper\n")).await;
    let crm = FakeCrm::start().await;
    let bridge = Bridge::start(&config(&lookup.url, &crm.url(), ""));
    let id = ring(&bridge, "+442079460001").await;
    let got = crm.wait_for(1, WAIT).await;
    assert_eq!(got[0].param("name").as_deref(), Some("Grace Hopper"));
    assert_eq!(got[0].param("company").as_deref(), Some(""));
    assert_eq!(call(&bridge, &id).await["remote_name"].as_str(), Some("Grace Hopper"));
}

#[tokio::test]
async fn a_number_stored_only_in_national_form_is_found_and_the_rest_are_not_tried() {
    let lookup = LookupCrm::start(|asked| if asked.phone == "02079460002" { ada("https://crm.example/c/7") } else { Reply::not_found() }).await;
    let crm = FakeCrm::start().await;
    // The national form is the first use of libphonenumber's metadata, which a debug build on a busy
    // machine can take most of the default second to load. This test is about which forms are tried;
    // the timeout has its own test below.
    let bridge = Bridge::start(&config(&lookup.url, &crm.url(), "timeout_ms = 5000"));
    ring(&bridge, "+442079460002").await;
    let got = crm.wait_for(1, WAIT).await;
    assert_eq!(got[0].param("name").as_deref(), Some("Ada Lovelace"));
    assert_eq!(got[0].param("record").as_deref(), Some("https://crm.example/c/7"));
    assert_eq!(lookup.phones(), ["+442079460002", "02079460002"]);
}

#[tokio::test]
async fn no_match_and_a_failing_crm_leave_the_name_empty_and_say_why_in_the_log() {
    let lookup = LookupCrm::start(|asked| match asked.phone.as_str() {
        "+442079460003" => Reply::status(500, "database unavailable"),
        "+442079460004" => Reply::json(json!([])),
        _ => Reply::not_found(),
    })
    .await;
    let crm = FakeCrm::start().await;
    let bridge = Bridge::start(&config(&lookup.url, &crm.url(), "number_forms = [\"e164\", \"last:9\"]"));

    let failing = ring(&bridge, "+442079460003").await;
    let got = crm.wait_for(1, WAIT).await;
    assert_eq!((got[0].param("callerid").as_deref(), got[0].param("name").as_deref()), (Some("+442079460003"), Some("")));
    // A failure stops at the first form; the log says what the CRM answered.
    assert_eq!(lookup.phones(), ["+442079460003"]);
    let logs = bridge.logs();
    let line = logs.lines().find(|l| l.contains("caller lookup failed")).unwrap_or_else(|| panic!("no warning in the log:\n{logs}"));
    assert!(line.contains("WARN") && line.contains("500") && line.contains("database unavailable"), "{line}");

    // No match in either form ([] and 404): the name stays empty, nothing is logged as failed.
    ring(&bridge, "+442079460004").await;
    let got = crm.wait_for(2, WAIT).await;
    assert_eq!((got[1].param("callerid").as_deref(), got[1].param("name").as_deref()), (Some("+442079460004"), Some("")));
    assert_eq!(lookup.phones()[1..], ["+442079460004", "079460004"]);
    assert_eq!(bridge.logs().matches("caller lookup failed").count(), 1);
    assert!(call(&bridge, &failing).await.get("remote_name").is_none());

    // A failure is not cached: the next call from that number asks again.
    ring(&bridge, "+442079460003").await;
    crm.wait_for(3, WAIT).await;
    assert_eq!(lookup.phones().iter().filter(|p| *p == "+442079460003").count(), 2);
}

#[tokio::test]
async fn a_crm_slower_than_the_timeout_does_not_hold_the_notification() {
    let lookup = LookupCrm::start(|_| Reply { delay: Duration::from_secs(20), ..ada("/x") }).await;
    let crm = FakeCrm::start().await;
    let bridge = Bridge::start(&config(&lookup.url, &crm.url(), "timeout_ms = 300"));
    ring(&bridge, "+442079460005").await;
    // The CRM would answer after 20 s; the notification arrives long before, without a name.
    let got = crm.wait_for(1, Duration::from_secs(10)).await;
    assert_eq!(got[0].param("name").as_deref(), Some(""));
    assert_eq!(lookup.phones(), ["+442079460005"], "the timeout covers every form, so no second one was tried");
    let logs = bridge.logs();
    assert!(logs.lines().any(|l| l.contains("caller lookup failed") && l.contains("within 300 ms")), "{logs}");
}

#[tokio::test]
async fn a_second_call_from_the_same_number_is_answered_from_the_cache() {
    let lookup = LookupCrm::start(|asked| if asked.phone == "+442079460006" { ada("/c/6") } else { Reply::not_found() }).await;
    let crm = FakeCrm::start().await;
    let bridge = Bridge::start(&config(&lookup.url, &crm.url(), ""));
    ring(&bridge, "+442079460006").await;
    crm.wait_for(1, WAIT).await;
    let second = ring(&bridge, "020 7946 0006").await;
    let got = crm.wait_for(2, WAIT).await;
    assert_eq!(got[1].param("name").as_deref(), Some("Ada Lovelace"));
    assert_eq!(call(&bridge, &second).await["company"].as_str(), Some("Acme Corp"));
    assert_eq!(lookup.phones(), ["+442079460006"], "the second call sent no request");
}

#[tokio::test]
async fn outgoing_calls_are_looked_up_only_with_on_outgoing() {
    let lookup = LookupCrm::start(|asked| if asked.phone == "+442079460012" { ada("/c/12") } else { Reply::not_found() }).await;
    let crm = FakeCrm::start().await;
    let rule = format!("\n[[notification]]\nevent = \"outgoing\"\nurl = \"{}/outgoing?callerid=$callerid&name=$name\"\n", crm.url());
    let off = Bridge::start(&(config(&lookup.url, &crm.url(), "") + &rule));
    let (status, body) = off.post("/api/v1/dial", json!({ "number": "+442079460012" })).await;
    assert_eq!(status, 200, "{body}");
    let got = crm.wait_for(1, WAIT).await;
    assert_eq!((got[0].path.as_str(), got[0].param("name").as_deref()), ("/outgoing", Some("")));
    assert!(lookup.phones().is_empty(), "an outgoing call was looked up without on_outgoing");
    drop(off);

    let on = Bridge::start(&(config(&lookup.url, &crm.url(), "on_outgoing = true") + &rule));
    let (status, body) = on.post("/api/v1/dial", json!({ "number": "+442079460012" })).await;
    assert_eq!(status, 200, "{body}");
    let id = body["call_id"].as_str().expect("call id").to_owned();
    let got = crm.wait_for(2, WAIT).await;
    assert_eq!((got[1].path.as_str(), got[1].param("name").as_deref()), ("/outgoing", Some("Ada Lovelace")));
    assert_eq!(call(&on, &id).await["company"].as_str(), Some("Acme Corp"));
    assert_eq!(lookup.phones(), ["+442079460012"]);
}

/// Every file under `dir` (the config, the SQLite store with its WAL, anything else) as bytes.
fn files_containing(dir: &std::path::Path, needle: &str) -> Vec<std::path::PathBuf> {
    let mut found = Vec::new();
    let mut stack = vec![dir.to_owned()];
    let mut seen_files = 0;
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else if let Ok(bytes) = std::fs::read(&path) {
                seen_files += 1;
                if bytes.windows(needle.len()).any(|w| w == needle.as_bytes()) {
                    found.push(path);
                }
            }
        }
    }
    assert!(seen_files >= 2, "expected the config and the store under {}", dir.display());
    found
}

#[tokio::test]
async fn the_api_key_comes_from_the_keyring_and_goes_nowhere_else() {
    let first_key = format!("lk-{}", uuid::Uuid::new_v4().simple());
    let second_key = format!("lk-{}", uuid::Uuid::new_v4().simple());
    store_secret("lookup-api-key", &first_key);
    let expected = Arc::new(Mutex::new(format!("Bearer {first_key}")));
    let wanted = Arc::clone(&expected);
    // The CRM refuses requests without the key and, like some do, echoes what it got in its errors.
    let lookup = LookupCrm::start(move |asked| {
        let want = wanted.lock().unwrap_or_else(PoisonError::into_inner).clone();
        match asked.authorization.as_deref() {
            Some(got) if got == want && asked.phone == "+442079460009" => Reply::status(500, &format!("internal error handling {got}")),
            Some(got) if got == want => ada("/c/8"),
            other => Reply::status(401, &format!("bad key {other:?}")),
        }
    })
    .await;
    let crm = FakeCrm::start().await;
    let extra = "secret_entry = \"lookup-api-key\"\nsecret_prefix = \"Bearer \"";
    let bridge = Bridge::start(&config(&lookup.url, &crm.url(), extra));

    let id = ring(&bridge, "+442079460007").await;
    let got = crm.wait_for(1, WAIT).await;
    assert_eq!(got[0].param("name").as_deref(), Some("Ada Lovelace"), "the key from the keyring was sent");
    assert_eq!(call(&bridge, &id).await["company"].as_str(), Some("Acme Corp"));

    // The Test button: the request with the key masked, the answer, the fields.
    let (status, body) = bridge.post("/api/v1/lookup/test", json!({ "number": "020 7946 0008" })).await;
    assert_eq!(status, 200, "{body}");
    let test = &body["test"];
    assert_eq!(test["outcome"], "found", "{body}");
    assert_eq!(test["contact"]["name"], "Ada Lovelace");
    let attempt = &test["attempts"][0];
    assert_eq!(attempt["request"]["method"], "GET");
    assert_eq!(attempt["request"]["url"], format!("{}/contacts?phone=%2B442079460008", lookup.url));
    assert!(attempt["request"]["headers"].as_array().is_some_and(|h| h.contains(&json!(["Authorization", "Bearer ***"]))), "{body}");
    assert_eq!(attempt["answer"]["status"], 200);
    assert!(attempt["answer"]["body_start"].as_str().is_some_and(|b| b.contains("Acme Corp")), "{body}");
    assert!(!body.to_string().contains(&first_key));

    // An error that echoes the key: the log and the Test button show *** instead.
    let (_, body) = bridge.post("/api/v1/lookup/test", json!({ "number": "+442079460009" })).await;
    assert_eq!(body["test"]["outcome"], "failed", "{body}");
    assert!(body["test"]["error"].as_str().is_some_and(|e| e.contains("500") && e.contains("Bearer ***")), "{body}");
    ring(&bridge, "+442079460009").await;
    crm.wait_for(2, WAIT).await;
    let logs = bridge.logs();
    assert!(logs.lines().any(|l| l.contains("caller lookup failed") && l.contains("Bearer ***")), "{logs}");

    // A new key set through the API is used from the next lookup on.
    *expected.lock().unwrap_or_else(PoisonError::into_inner) = format!("Bearer {second_key}");
    let put = reqwest::Client::new().put(format!("{}/api/v1/secrets/lookup-api-key", bridge.url)).json(&json!({ "value": second_key }));
    let (status, body) = request(put).await;
    assert_eq!(status, 200, "{body}");
    ring(&bridge, "+442079460010").await;
    let got = crm.wait_for(3, WAIT).await;
    assert_eq!(got[2].param("name").as_deref(), Some("Ada Lovelace"), "the new key was sent");

    // Neither key is in the config, the store (with its WAL) or anything else on disk, nor in the logs.
    let logs = bridge.logs();
    for key in [&first_key, &second_key] {
        assert!(!logs.contains(key.as_str()), "the key is in the logs");
        assert_eq!(files_containing(&bridge.dir, key), Vec::<std::path::PathBuf>::new());
    }
    let config = std::fs::read_to_string(&bridge.config_path).expect("config");
    assert!(config.contains("secret_entry = \"lookup-api-key\""));
}
