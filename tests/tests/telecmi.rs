//! TeleCMI end to end: the built `callbridge` against the fake TeleCMI (https://doc.telecmi.com/chub/docs/click-to-call-admin),
//! the fake CRM, and the real OS keyring (gnome-keyring in a private D-Bus session).
//!
//! Every test keeps the app secret where users keep it — in the keyring, put there with
//! `callbridge secret set` on stdin — so they all need the Secret Service: run them through
//! `scripts/with-keyring.sh` (e.g. `scripts/with-keyring.sh cargo test -p callbridge-e2e --test telecmi`)
//! or `scripts/test.sh`.

use std::path::Path;
use std::time::Duration;

use callbridge_e2e::bridge::{request, Bridge};
use callbridge_e2e::cli;
use callbridge_e2e::crm::{FakeCrm, Received};
use callbridge_e2e::eventually;
use callbridge_e2e::telecmi::{self, closed_port_url, FakeTelecmi, Numbers, Sequence, Via, USER_ID};
use serde_json::{json, Value};

const WAIT: Duration = Duration::from_secs(20);
const CLICK2CALL: &str = "/v2/webrtc/click2call";

fn require_keyring() {
    assert!(
        std::env::var_os("CALLBRIDGE_TEST_KEYRING").is_some(),
        "this test keeps the TeleCMI app secret in the real OS keyring and needs a Secret Service: run it via \
         scripts/with-keyring.sh (scripts/with-keyring.sh cargo test -p callbridge-e2e --test telecmi) or scripts/test.sh"
    );
}

/// One test's fakes and its keyring entry (tests share one keyring, so each has its own entry).
struct World {
    fake: FakeTelecmi,
    crm: FakeCrm,
    secret: String,
    entry: String,
    cli_home: tempfile::TempDir,
}

impl World {
    /// Fakes for `test`, with the app secret stored in the keyring through `callbridge secret set`.
    async fn new(test: &str) -> World {
        require_keyring();
        let secret = format!("{test}-2e0d75-d843-45-945-4171dd7a");
        let entry = format!("telecmi-{test}");
        let world = World {
            fake: FakeTelecmi::start(&secret).await,
            crm: FakeCrm::start().await,
            secret,
            entry,
            cli_home: tempfile::tempdir().expect("tempdir"),
        };
        world.store(&world.entry.clone(), &world.secret.clone());
        world
    }

    /// `callbridge secret set NAME` with the value on stdin, as a script would.
    fn store(&self, name: &str, value: &str) {
        let out = cli::callbridge(self.cli_home.path(), &["secret", "set", name], &format!("{value}\n"));
        assert!(out.success, "secret set failed: {}", out.stderr);
        assert!(!out.stdout.contains(value) && !out.stderr.contains(value), "secret set printed the secret");
    }

    fn config(&self, base_url: &str, user_id: &str, extra: &str) -> String {
        let crm = self.crm.url();
        let entry = &self.entry;
        format!(
            r#"
[provider]
kind = "telecmi"

[provider.telecmi]
base_url = "{base_url}"
user_id = "{user_id}"
callerid = "919800000000"
secret_entry = "{entry}"
connect_timeout_secs = 2
timeout_secs = 5
{extra}

[[notification]]
event = "outgoing"
url = "{crm}/outgoing?callerid=$callerid&call=$callid"

[[notification]]
event = "incoming"
url = "{crm}/incoming?callerid=$callerid&call=$callid"

[[notification]]
event = "answered"
url = "{crm}/answered?callerid=$callerid&call=$callid"

[[notification]]
event = "ended"
url = "{crm}/ended?callerid=$callerid&call=$callid&disposition=$disposition"
"#
        )
    }

    /// A bridge on the fake TeleCMI with `extra` lines in `[provider.telecmi]`.
    fn bridge(&self, extra: &str) -> Bridge {
        Bridge::start(&self.config(&self.fake.url(), USER_ID, extra))
    }

    /// The CRM's requests about `call_id`, once there are `n`.
    async fn notifications(&self, call_id: &str, n: usize) -> Vec<Received> {
        eventually(WAIT, &format!("{n} notifications for call {call_id}"), || {
            let got: Vec<_> = self.crm.received().into_iter().filter(|r| r.param("call").as_deref() == Some(call_id)).collect();
            (got.len() >= n).then_some(got)
        })
        .await
    }
}

fn paths(received: &[Received]) -> Vec<String> {
    received.iter().map(|r| r.path.clone()).collect()
}

/// The `(event, call_id)` pairs the bridge says each webhook produced.
fn produced(answers: &[(u16, Value)]) -> Vec<(String, String)> {
    for (status, body) in answers {
        assert_eq!(*status, 200, "webhook refused: {body}");
    }
    answers
        .iter()
        .flat_map(|(_, body)| body["events"].as_array().cloned().unwrap_or_default())
        .map(|e| (e["event"].as_str().unwrap_or_default().to_owned(), e["call_id"].as_str().unwrap_or_default().to_owned()))
        .collect()
}

/// `payloads` picked by index: every payload twice, the answer ahead of the start and the CDRs ahead
/// of the live hangups. (A live `hangup` says nothing about an answer, so the answer must not come
/// after it; that is the only order kept.)
fn scrambled(seq: &Sequence, order: &[usize]) -> Vec<Value> {
    let mut counts = vec![0; seq.payloads.len()];
    for &i in order {
        counts[i] += 1;
    }
    assert!(counts.iter().all(|&c| c == 2), "every payload is sent twice: {counts:?}");
    order.iter().map(|&i| seq.payloads[i].clone()).collect()
}

async fn dial(bridge: &Bridge, number: &str) -> (u16, Value) {
    bridge.get(&format!("/make/{number}")).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn make_sends_exactly_the_documented_post_body_and_the_call_carries_the_request_id() {
    let world = World::new("post-body").await;
    let bridge = world.bridge("");
    let (status, body) = dial(&bridge, "+919200000000").await;
    assert_eq!(status, 200, "{body}");
    let call_id = body["call_id"].as_str().expect("call id").to_owned();

    let sent = world.fake.requests_to(CLICK2CALL);
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].method, "POST");
    let json = sent[0].json();
    let mut keys: Vec<_> = json.as_object().expect("object").keys().cloned().collect();
    keys.sort();
    assert_eq!(keys, ["callerid", "extra_params", "followme", "secret", "to", "user_id", "webrtc"]);
    // Field types as the seed documents them: strings, numbers, an object, booleans.
    assert_eq!(json["user_id"], json!(USER_ID));
    assert_eq!(json["secret"], json!(world.secret));
    assert!(json["to"].is_u64(), "`to` is a JSON number: {json}");
    assert_eq!(json["to"].as_u64(), Some(919200000000));
    assert_eq!(json["extra_params"], json!({ "callbridge_call_id": call_id }));
    assert_eq!((json["webrtc"].clone(), json["followme"].clone()), (json!(true), json!(false)));
    assert!(json["callerid"].is_u64(), "`callerid` is a JSON number: {json}");
    assert_eq!(json["callerid"].as_u64(), Some(919800000000));

    let request_id = world.fake.calls()[0].request_id.clone();
    assert_eq!(body["call"]["request_id"], json!(request_id));
    assert_eq!(body["call"]["provider"], json!("telecmi"));
    let (_, calls) = bridge.get("/api/v1/calls").await;
    assert_eq!(calls["calls"][0]["request_id"], json!(request_id));
    assert_eq!(calls["calls"][0]["state"], json!("dialing"));

    let outgoing = world.notifications(&call_id, 1).await;
    assert_eq!(paths(&outgoing), ["/outgoing"]);
    assert_eq!(outgoing[0].param("callerid").as_deref(), Some("+919200000000"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_get_form_and_ring_my_mobile_follow_the_seed() {
    let world = World::new("get-mobile").await;
    let bridge = world.bridge("method = \"get\"\nring = \"mobile\"");
    let (status, body) = dial(&bridge, "+919200000000").await;
    assert_eq!(status, 200, "{body}");
    let call_id = body["call_id"].as_str().expect("call id");

    let sent = world.fake.requests_to(CLICK2CALL);
    assert_eq!((sent[0].method.as_str(), sent[0].body.as_str()), ("GET", ""));
    let query: Vec<(String, String)> = url::form_urlencoded::parse(sent[0].query.as_bytes()).into_owned().collect();
    let expected = [
        ("user_id", USER_ID),
        ("secret", world.secret.as_str()),
        ("to", "919200000000"),
        ("extra_params[callbridge_call_id]", call_id),
        // TeleCMI's click2call documentation: webrtc must be false when followme is true.
        ("webrtc", "false"),
        ("followme", "true"),
        ("callerid", "919800000000"),
    ];
    let expected: Vec<(String, String)> = expected.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    assert_eq!(query, expected);
    assert_eq!(body["call"]["request_id"], json!(world.fake.calls()[0].request_id));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn telecmi_refusals_reach_the_crm_as_clear_errors() {
    let world = World::new("refusals").await;
    let bridge = world.bridge("");

    // 400: TeleCMI says a parameter is missing (the bridge always sends them, so the fake is told to).
    world.fake.answer_next_click2call(400, json!({ "code": 400, "msg": "Enable webrtc or followme" }));
    let (status, body) = dial(&bridge, "+919200000000").await;
    assert_eq!((status, body["error"].as_str()), (502, Some("provider_rejected")), "{body}");
    let message = body["message"].as_str().unwrap_or_default();
    assert!(message.contains("telecmi") && message.contains("Enable webrtc or followme"), "{message}");

    // 200 with code 407 in the body: the body's code is authoritative.
    world.fake.answer_next_click2call(200, json!({ "code": 407, "msg": "invalid app secret" }));
    let (status, body) = dial(&bridge, "+919200000000").await;
    assert_eq!((status, body["error"].as_str()), (503, Some("provider_not_configured")), "{body}");

    // 407: the keyring holds a secret TeleCMI does not accept.
    world.store(&world.entry, "not-the-app-secret");
    let (status, body) = dial(&bridge, "+919200000000").await;
    assert_eq!((status, body["error"].as_str()), (503, Some("provider_not_configured")), "{body}");
    let message = body["message"].as_str().unwrap_or_default();
    assert!(message.contains("invalid app secret") && message.contains("rejected the app secret"), "{message}");
    assert!(message.contains(&format!("callbridge secret set {}", world.entry)), "{message}");
    assert!(!message.contains("not-the-app-secret"), "the secret is not in the error: {message}");
    assert_eq!(world.fake.requests_to(CLICK2CALL).last().map(|r| r.json()["secret"].clone()), Some(json!("not-the-app-secret")));
    world.store(&world.entry, &world.secret);

    // 404: a user id TeleCMI does not know.
    let stranger = Bridge::start(&world.config(&world.fake.url(), "999_1111112", ""));
    let (status, body) = dial(&stranger, "+919200000000").await;
    assert_eq!((status, body["error"].as_str()), (503, Some("provider_not_configured")), "{body}");
    let message = body["message"].as_str().unwrap_or_default();
    assert!(message.contains("invalid user_id") && message.contains("999_1111112"), "{message}");

    // The failed calls are kept as failed, and the CRM heard nothing of them: the one notification it
    // gets is for the call that then succeeds.
    let (status, body) = dial(&bridge, "+919200000000").await;
    assert_eq!(status, 200, "{body}");
    let call_id = body["call_id"].as_str().expect("id");
    world.notifications(call_id, 1).await;
    assert_eq!(paths(&world.crm.received()), ["/outgoing"]);
    let (_, calls) = bridge.get("/api/v1/calls").await;
    let dispositions: Vec<_> = calls["calls"].as_array().expect("calls").iter().map(|c| c["disposition"].clone()).collect();
    assert_eq!(dispositions, [json!(null), json!("failed"), json!("failed"), json!("failed")]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outgoing_call_webhooks_notify_answered_and_ended_exactly_once() {
    let world = World::new("outgoing-events").await;
    let bridge = world.bridge("");
    let hook = format!("{}/webhooks/telecmi", bridge.url);
    for (i, numbers) in [Numbers::Strings, Numbers::Numbers].into_iter().enumerate() {
        let (status, body) = dial(&bridge, "+919200000000").await;
        assert_eq!(status, 200, "{body}");
        let call_id = body["call_id"].as_str().expect("id").to_owned();
        let placed = world.fake.calls()[i].clone();
        let seq = world.fake.outgoing_sequence(&placed, numbers);
        // 0 a started, 1 a answered, 2 b started, 3 b answered, 4 b hangup, 5 a hangup, 6 CDR a, 7 CDR b.
        let payloads = scrambled(&seq, &[3, 0, 3, 6, 1, 7, 2, 0, 6, 4, 1, 5, 2, 4, 7, 5]);
        let answers = telecmi::send(&hook, &payloads, Via::Post).await;
        let produced = produced(&answers);
        let expected: Vec<(String, String)> = ["answered", "ended"].iter().map(|e| (e.to_string(), call_id.clone())).collect();
        assert_eq!(produced, expected, "{numbers:?}");

        let got = world.notifications(&call_id, 3).await;
        assert_eq!(paths(&got), ["/outgoing", "/answered", "/ended"], "{numbers:?}");
        assert!(got.iter().all(|r| r.param("callerid").as_deref() == Some("+919200000000")));
        assert_eq!(got[2].param("disposition").as_deref(), Some("answered"));
        let (_, call) = bridge.get(&format!("/api/v1/calls/{call_id}")).await;
        assert_eq!(call["call"]["request_id"], json!(placed.request_id));
        assert_eq!(call["call"]["state"], json!("ended"));
    }
    // Everything the CRM got, per call: three notifications, no more.
    let all = world.crm.received();
    assert_eq!(all.len(), 6, "{:?}", paths(&all));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inbound_call_webhooks_notify_incoming_answered_and_ended_exactly_once() {
    let world = World::new("inbound-events").await;
    let bridge = world.bridge("");
    let hook = format!("{}/webhooks/telecmi", bridge.url);
    let runs = [(Numbers::Strings, Via::Post), (Numbers::Numbers, Via::Post), (Numbers::Strings, Via::Get)];
    let mut seen = Vec::new();
    for (numbers, via) in runs {
        let seq = world.fake.inbound_sequence("440000000000", "441100000000", USER_ID, numbers);
        // 0 A waiting, 1 B started, 2 B answered, 3 A answered, 4 B hangup, 5 A hangup, 6 CDR.
        let payloads = scrambled(&seq, &[2, 0, 2, 1, 0, 3, 6, 4, 1, 5, 3, 6, 4, 5]);
        let answers = telecmi::send(&hook, &payloads, via).await;
        let produced = produced(&answers);
        let call_id = produced.first().map(|(_, id)| id.clone()).expect("a call event");
        let expected: Vec<(String, String)> =
            ["incoming", "answered", "ended"].iter().map(|e| (e.to_string(), call_id.clone())).collect();
        assert_eq!(produced, expected, "{numbers:?} {via:?}");

        let got = world.notifications(&call_id, 3).await;
        assert_eq!(paths(&got), ["/incoming", "/answered", "/ended"], "{numbers:?} {via:?}");
        assert!(got.iter().all(|r| r.param("callerid").as_deref() == Some("440000000000")), "{got:?}");
        assert_eq!(got[2].param("disposition").as_deref(), Some("answered"));
        let (_, call) = bridge.get(&format!("/api/v1/calls/{call_id}")).await;
        assert_eq!(call["call"]["provider_call_id"], json!(seq.conversation));
        assert_eq!(call["call"]["direction"], json!("in"));
        seen.push(call_id);
    }
    seen.dedup();
    assert_eq!(seen.len(), 3, "three separate calls");
    assert_eq!(world.crm.received().len(), 9);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_webhooks_get_a_400_that_says_why() {
    let world = World::new("bad-webhooks").await;
    let bridge = world.bridge("");
    let hook = format!("{}/webhooks/telecmi", bridge.url);
    let client = reqwest::Client::new();
    let cases = [
        (client.post(&hook).body("not json"), "not valid JSON"),
        (client.post(&hook).json(&json!({"type":"event","direction":"inbound","cmiuuid":"x"})), "no status"),
        (client.post(&hook).json(&json!({"type":"event","direction":"inbound","status":"waiting"})), "names no call"),
        (client.post(&hook).json(&json!({"type":"event","direction":"inbound","cmiuuid":"x","status":"dancing"})), "\"dancing\""),
        (client.get(&hook), "no query parameters"),
    ];
    for (req, words) in cases {
        let (status, body) = request(req).await;
        assert_eq!((status, body["error"].as_str()), (400, Some("bad_webhook")), "{body}");
        assert!(body["message"].as_str().unwrap_or_default().contains(words), "{words}: {body}");
    }
    assert!(world.crm.received().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_closed_port_gives_a_clear_error_and_the_bridge_keeps_serving() {
    let world = World::new("closed-port").await;
    let bridge = Bridge::start(&world.config(&closed_port_url(), USER_ID, ""));
    let (status, body) = dial(&bridge, "+919200000000").await;
    assert_eq!((status, body["error"].as_str()), (502, Some("provider_unreachable")), "{body}");
    let message = body["message"].as_str().unwrap_or_default();
    assert!(message.contains("telecmi could not be reached") && message.contains("cannot connect"), "{message}");
    assert!(!message.contains(&world.secret));
    let (status, _) = bridge.get("/health").await;
    assert_eq!(status, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_that_never_completes_ends_at_the_connect_timeout() {
    let world = World::new("connect-timeout").await;
    let (url, _listener, _queued) = telecmi::unanswered_connect().await;
    // connect_timeout_secs = 2, timeout_secs = 5 (see World::config).
    let bridge = Bridge::start(&world.config(&url, USER_ID, ""));
    let (status, body) = dial(&bridge, "+919200000000").await;
    assert_eq!((status, body["error"].as_str()), (504, Some("provider_timeout")), "{body}");
    assert_eq!(body["message"], json!("telecmi did not answer within 2 s"));
    let (status, _) = bridge.get("/health").await;
    assert_eq!(status, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_telecmi_that_never_answers_times_out_while_other_requests_are_served() {
    let world = World::new("hanging").await;
    world.fake.hang();
    let bridge = world.bridge("");
    let make = tokio::spawn(request(reqwest::Client::new().get(format!("{}/make/+919200000000", bridge.url))));
    world.fake.wait_for(CLICK2CALL, 1).await;

    // The click2call is stuck at TeleCMI; the bridge still answers the API, the listener and webhooks.
    let (status, body) = bridge.get("/api/v1/status").await;
    assert_eq!((status, body["status"]["provider"]["name"].as_str()), (200, Some("telecmi")), "{body}");
    let seq = world.fake.inbound_sequence("440000000000", "441100000000", USER_ID, Numbers::Strings);
    let answers = telecmi::send(&format!("{}/webhooks/telecmi", bridge.url), &seq.payloads[..1], Via::Post).await;
    assert_eq!(produced(&answers).first().map(|e| e.0.as_str()), Some("incoming"));
    assert!(!make.is_finished(), "the dial is still waiting for TeleCMI while the other requests were served");

    let (status, body) = make.await.expect("make finishes");
    assert_eq!((status, body["error"].as_str()), (504, Some("provider_timeout")), "{body}");
    assert_eq!(body["message"], json!("telecmi did not answer within 5 s"));
}

/// Every regular file under `dir`, recursively.
fn files_under(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut files = Vec::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else {
                files.push(path);
            }
        }
    }
    files
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_app_secret_lives_in_the_os_keyring_only() {
    let world = World::new("keyring").await;

    // Stored through the CLI (World::new); read back straight from the Secret Service.
    let lookup = callbridge_e2e::bridge::keyring_lookup(&world.entry);
    assert_eq!(lookup.as_deref(), Some(world.secret.as_str()), "the OS keyring holds the secret");

    let bridge = world.bridge("");
    let status = cli::callbridge(&bridge.dir, &["secret", "status", &world.entry], "");
    assert_eq!(status.stdout.trim(), format!("{}: set", world.entry));

    // The bridge reads it from the keyring at dial time.
    let ready = provider_status(&bridge, "the provider to be ready", |p| p["ready"] == json!(true)).await;
    assert!(ready["problem"].is_null(), "{ready}");
    let (code, body) = dial(&bridge, "+919200000000").await;
    assert_eq!(code, 200, "{body}");
    assert_eq!(world.fake.requests_to(CLICK2CALL)[0].json()["secret"], json!(world.secret));

    // Without it: `status` says so, and a dial is refused with what to do.
    let deleted = cli::callbridge(&bridge.dir, &["secret", "delete", &world.entry], "");
    assert!(deleted.success, "{}", deleted.stderr);
    let provider = provider_status(&bridge, "status to report the missing secret", |p| p["problem"].is_string()).await;
    let problem = provider["problem"].as_str().unwrap_or_default();
    assert_eq!(provider["ready"], json!(false));
    assert!(problem.contains("no TeleCMI app secret in the OS keyring") && problem.contains(&world.entry), "{problem}");
    let (code, body) = dial(&bridge, "+919200000000").await;
    assert_eq!((code, body["error"].as_str()), (503, Some("provider_not_configured")), "{body}");
    assert!(body["message"].as_str().unwrap_or_default().contains(&format!("callbridge secret set {}", world.entry)), "{body}");
    assert_eq!(world.fake.requests_to(CLICK2CALL).len(), 1, "nothing was sent without a secret");

    // No secret in the config file, the logs, or any file the bridge wrote.
    let config = std::fs::read_to_string(&bridge.config_path).expect("config");
    assert!(!config.contains(&world.secret));
    let logs = bridge.logs();
    assert!(logs.contains("TeleCMI accepted the click2call"), "the logs are captured: {logs}");
    assert!(!logs.contains(&world.secret), "the logs hold the secret");
    let files = files_under(&bridge.dir);
    assert!(!files.is_empty());
    for file in files {
        let bytes = std::fs::read(&file).unwrap_or_default();
        assert!(!String::from_utf8_lossy(&bytes).contains(&world.secret), "{} holds the secret", file.display());
    }
}

/// Polls `/api/v1/status` until the provider part satisfies `check`, and returns that part.
async fn provider_status(bridge: &Bridge, what: &str, check: impl Fn(&Value) -> bool) -> Value {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let (_, body) = bridge.get("/api/v1/status").await;
        let provider = &body["status"]["provider"];
        if check(provider) {
            return provider.clone();
        }
        assert!(tokio::time::Instant::now() < deadline, "timed out waiting for {what}: {body}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn end_hangs_up_the_users_leg_with_a_renewed_token_and_answer_is_refused() {
    let world = World::new("hangup").await;
    let password = "hangup-password-abc123";
    let password_entry = format!("{}-password", world.entry);
    world.fake.add_login(USER_ID, password);
    world.store(&password_entry, password);
    let bridge = world.bridge(&format!("login_id = \"{USER_ID}\"\npassword_entry = \"{password_entry}\""));
    let hook = format!("{}/webhooks/telecmi", bridge.url);

    // An outgoing click2call: the user's leg A is what /end hangs up.
    let (status, body) = dial(&bridge, "+919200000000").await;
    assert_eq!(status, 200, "{body}");
    let call_id = body["call_id"].as_str().expect("id").to_owned();
    let seq = world.fake.outgoing_sequence(&world.fake.calls()[0], Numbers::Strings);
    produced(&telecmi::send(&hook, &seq.payloads[..3], Via::Post).await);
    let (status, body) = bridge.get("/end").await;
    assert_eq!(status, 200, "{body}");
    let logins = world.fake.requests_to("/v2/user/login");
    assert_eq!(logins.len(), 1);
    assert_eq!(logins[0].json(), json!({ "id": USER_ID, "password": password }));
    let hangups = world.fake.hangups();
    assert_eq!(hangups.len(), 1);
    assert_eq!(hangups[0].1, seq.leg_a);
    let ended = world.notifications(&call_id, 2).await;
    assert_eq!(paths(&ended), ["/outgoing", "/ended"]);

    // An inbound call: the agent's leg B. The token has expired meanwhile: the bridge logs in again.
    world.fake.expire_tokens();
    let inbound = world.fake.inbound_sequence("440000000000", "441100000000", USER_ID, Numbers::Numbers);
    let produced_in = produced(&telecmi::send(&hook, &inbound.payloads[..2], Via::Post).await);
    assert_eq!(produced_in.first().map(|e| e.0.as_str()), Some("incoming"));

    // /answer: TeleCMI rings the user's device; that is where it is answered.
    let (status, body) = bridge.get("/answer").await;
    assert_eq!((status, body["error"].as_str()), (501, Some("not_supported")), "{body}");
    assert!(body["message"].as_str().unwrap_or_default().contains("answer the call there"), "{body}");

    let (status, body) = bridge.get("/end").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(world.fake.requests_to("/v2/user/login").len(), 2, "a new token after the old one was refused");
    let hangups = world.fake.hangups();
    assert_eq!(hangups.len(), 2);
    assert_eq!(hangups[1].1, inbound.leg_b);
    assert_ne!(hangups[0].0, hangups[1].0, "the second hangup used the new token");
    let logs = bridge.logs();
    assert!(!logs.contains(password) && !logs.contains(&hangups[1].0), "no password or token in the logs");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_login_end_and_answer_explain_why_not() {
    let world = World::new("no-login").await;
    let bridge = world.bridge("");
    for path in ["/end", "/answer"] {
        let (status, body) = bridge.get(path).await;
        assert_eq!((status, body["error"].as_str()), (501, Some("not_supported")), "{path}: {body}");
    }
    let (status, body) = dial(&bridge, "+919200000000").await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = bridge.get("/end").await;
    assert_eq!((status, body["error"].as_str()), (501, Some("not_supported")), "{body}");
    let message = body["message"].as_str().unwrap_or_default();
    assert!(message.contains("login_id") && message.contains("callbridge secret set"), "{message}");
    assert!(world.fake.requests_to("/v2/c2c/hangup").is_empty());
}

/// `callbridge secret set` on a terminal prompts and does not echo what is typed. `script` (util-linux)
/// gives the command a pseudo-terminal; what it shows is everything a person at the terminal would see.
#[cfg(target_os = "linux")]
#[test]
fn secret_set_prompts_on_a_terminal_without_echo() {
    use std::io::{Read, Write};
    use std::process::{Command, Stdio};
    require_keyring();
    let home = tempfile::tempdir().expect("tempdir");
    let (entry, value) = ("telecmi-tty", "typed-at-the-terminal-5f2a");
    let command = format!("{} secret set {entry}", callbridge_e2e::bridge::shell_command());
    let mut child = Command::new("script")
        .args(["-qec", &command, "/dev/null"])
        .env("HOME", home.path())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("script runs (util-linux)");
    let mut stdout = child.stdout.take().expect("stdout");
    let (tx, rx) = std::sync::mpsc::channel::<Vec<u8>>();
    std::thread::spawn(move || {
        let mut buf = [0u8; 256];
        while let Ok(n) = stdout.read(&mut buf) {
            if n == 0 || tx.send(buf[..n].to_vec()).is_err() {
                break;
            }
        }
    });
    let mut seen = Vec::new();
    let mut read_until = |needle: &str| {
        while !String::from_utf8_lossy(&seen).contains(needle) {
            match rx.recv_timeout(WAIT) {
                Ok(chunk) => seen.extend(chunk),
                Err(_) => panic!("waited for {needle:?}; the terminal shows {:?}", String::from_utf8_lossy(&seen)),
            }
        }
        String::from_utf8_lossy(&seen).into_owned()
    };
    read_until("not shown as you type");
    // rpassword prints the prompt a moment before it turns echo off; a person cannot type inside that
    // window, but a loaded test machine can. Give the prompt time to settle before typing.
    std::thread::sleep(std::time::Duration::from_millis(500));
    let mut stdin = child.stdin.take().expect("stdin");
    stdin.write_all(format!("{value}\r").as_bytes()).expect("type");
    let screen = read_until("Stored the secret");
    assert!(child.wait().expect("exits").success(), "{screen}");
    assert!(!screen.contains(value), "the secret was echoed: {screen:?}");
    assert_eq!(callbridge_e2e::bridge::keyring_lookup(entry).as_deref(), Some(value));
}

/// TeleCMI posts each webhook on its own, so a live `hangup` can overtake the `answered` before it.
/// The bridge holds an unanswered hangup for `hangup_settle_ms`: a later `answered` or the CDR settles
/// it, and only when nothing comes does the call end unanswered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hangup_that_overtakes_its_answer_still_gives_answered_then_ended() {
    let world = World::new("hangup-first").await;
    let bridge = world.bridge("hangup_settle_ms = 2000");
    let hook = format!("{}/webhooks/telecmi", bridge.url);
    let call_id_of = |answers: &[(u16, Value)]| produced(answers).first().map(|(_, id)| id.clone()).expect("a call event");

    // Both live hangups first, then the answers, then the CDR.
    // 0 A waiting, 1 B started, 2 B answered, 3 A answered, 4 B hangup, 5 A hangup, 6 CDR.
    let seq = world.fake.inbound_sequence("440000000000", "441100000000", USER_ID, Numbers::Strings);
    let order = [0, 1, 5, 4, 3, 2, 6];
    let mut answers = Vec::new();
    for i in order {
        answers.extend(telecmi::send(&hook, &seq.payloads[i..=i], Via::Post).await);
    }
    let call_id = call_id_of(&answers);
    let per_webhook: Vec<Vec<String>> = answers
        .iter()
        .map(|(_, body)| body["events"].as_array().into_iter().flatten().map(|e| e["event"].as_str().unwrap_or_default().to_owned()).collect())
        .collect();
    assert_eq!(
        per_webhook,
        [vec!["incoming"], vec![], vec![], vec![], vec!["answered", "ended"], vec![], vec![]],
        "the hangups were held until the answer came"
    );
    let got = world.notifications(&call_id, 3).await;
    assert_eq!(paths(&got), ["/incoming", "/answered", "/ended"]);
    assert_eq!(got[2].param("disposition").as_deref(), Some("answered"));

    // The CDR settles a held hangup with its own disposition (here: answered, though no live answer came).
    let seq = world.fake.inbound_sequence("440000000001", "441100000000", USER_ID, Numbers::Numbers);
    let answers = [&seq.payloads[0], &seq.payloads[5], &seq.payloads[6]];
    let mut replies = Vec::new();
    for payload in answers {
        replies.extend(telecmi::send(&hook, std::slice::from_ref(payload), Via::Post).await);
    }
    let cdr_call = call_id_of(&replies);
    assert!(replies[1].1["events"].as_array().is_some_and(Vec::is_empty), "the hangup is held: {}", replies[1].1);
    let got = world.notifications(&cdr_call, 3).await;
    assert_eq!(paths(&got), ["/incoming", "/answered", "/ended"]);
    assert_eq!(got[2].param("disposition").as_deref(), Some("answered"));

    // Nothing settles it: when the hold is over the call ends unanswered (missed).
    let seq = world.fake.inbound_sequence("440000000002", "441100000000", USER_ID, Numbers::Strings);
    let mut replies = telecmi::send(&hook, &seq.payloads[0..1], Via::Post).await;
    replies.extend(telecmi::send(&hook, &seq.payloads[5..6], Via::Post).await);
    let missed_call = call_id_of(&replies);
    assert!(replies[1].1["events"].as_array().is_some_and(Vec::is_empty), "the hangup is held: {}", replies[1].1);
    let got = world.notifications(&missed_call, 2).await;
    assert_eq!(paths(&got), ["/incoming", "/ended"]);
    assert_eq!(got[1].param("disposition").as_deref(), Some("missed"));
    // A late answer after the hold changes nothing.
    let late = telecmi::send(&hook, &seq.payloads[3..4], Via::Post).await;
    assert!(produced(&late).is_empty(), "{late:?}");

    // Once each, and nothing more arrives after every hold is over.
    tokio::time::sleep(Duration::from_millis(2_500)).await;
    for (call, n) in [(&call_id, 3), (&cdr_call, 3), (&missed_call, 2)] {
        let all: Vec<_> = world.crm.received().into_iter().filter(|r| r.param("call").as_deref() == Some(call.as_str())).collect();
        assert_eq!(all.len(), n, "{call}: {:?}", paths(&all));
    }
}
