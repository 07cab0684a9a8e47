//! `/webhooks/generic`: a PBX reporting calls ELMA365-style (JSON) or VoipNow-style (Call Events
//! parameters, GET query or POST form, event type in `?ev=`) drives the same notifications; a
//! malformed request gets a 400 that says what is wrong, and notifies nothing.

use std::time::Duration;

use callbridge_e2e::bridge::{request, Bridge};
use callbridge_e2e::crm::{FakeCrm, Received};
use callbridge_e2e::eventually;
use serde_json::{json, Value};

const WAIT: Duration = Duration::from_secs(30);

fn config(crm: &FakeCrm) -> String {
    let url = crm.url();
    ["incoming", "outgoing", "answered", "ended"]
        .iter()
        .map(|event| {
            format!(
                "[[notification]]\nevent = \"{event}\"\nurl = \"{url}/{event}?callerid=$callerid&direction=$direction&extension=$extension&disposition=$disposition\"\n\n"
            )
        })
        .collect()
}

/// One notification: path, then the callerid, direction, extension and disposition parameters.
type Told = (String, Option<String>, Option<String>, Option<String>, Option<String>);

/// What the CRM was told, without what differs between runs (call ids, times).
fn story(received: &[Received]) -> Vec<Told> {
    received
        .iter()
        .map(|r| (r.path.clone(), r.param("callerid"), r.param("direction"), r.param("extension"), r.param("disposition")))
        .collect()
}

async fn wait_for(crm: &FakeCrm, n: usize) -> Vec<Received> {
    crm.wait_for(n, WAIT).await
}

async fn post_json(bridge: &Bridge, body: &Value) -> (u16, Value) {
    request(reqwest::Client::new().post(format!("{}/webhooks/generic", bridge.url)).json(body)).await
}

async fn get_query(bridge: &Bridge, query: &str) -> (u16, Value) {
    request(reqwest::Client::new().get(format!("{}/webhooks/generic?{query}", bridge.url))).await
}

async fn post_form(bridge: &Bridge, ev: &str, form: &str) -> (u16, Value) {
    let request_builder = reqwest::Client::new()
        .post(format!("{}/webhooks/generic?ev={ev}", bridge.url))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form.to_owned());
    request(request_builder).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn elma365_and_voipnow_shapes_drive_the_same_notifications() {
    // ELMA365-style: an incoming call answered and ended, then an outgoing one nobody answers.
    let elma_crm = FakeCrm::start().await;
    let mut elma = Bridge::start(&config(&elma_crm));
    let incoming = json!({"direction": "in", "srcPhone": "+442079460000", "dstPhone": "0003", "srcPhoneExt": "210", "callId": "e-1"});
    for (event, disposition) in [("NotifyStart", "Unknown"), ("NotifyAnswer", "Answered"), ("NotifyEnd", "Answered")] {
        let mut body = incoming.clone();
        body["event"] = event.into();
        body["disposition"] = disposition.into();
        let (status, answer) = post_json(&elma, &body).await;
        assert_eq!(status, 200, "{event}: {answer}");
    }
    wait_for(&elma_crm, 3).await;
    // No callId: the start and the end are tied by numbers, extension and direction.
    let outgoing = json!({"direction": "out", "srcPhone": "0003", "dstPhone": "+15550100", "dstPhoneExt": "210"});
    for (event, disposition) in [("NotifyStart", "Unknown"), ("NotifyEnd", "NoAnswer")] {
        let mut body = outgoing.clone();
        body["event"] = event.into();
        body["disposition"] = disposition.into();
        let (status, answer) = post_json(&elma, &body).await;
        assert_eq!(status, 200, "{event}: {answer}");
    }
    let elma_story = story(&wait_for(&elma_crm, 5).await);

    // VoipNow Call Events: Dial-In by GET, Answer and Hangup by POST form; then a Dial-Out by GET
    // and its Hangup by POST, with the call id.
    let voip_crm = FakeCrm::start().await;
    let mut voip = Bridge::start(&config(&voip_crm));
    let (status, answer) = get_query(
        &voip,
        "ev=dialin&CallID=v-1&CallerIDNum=%2B442079460000&CallerIDNam=Alice&CalledDID=0003&CalledExtension=210&CallStatus=CALLING&CallFlow=IN",
    )
    .await;
    assert_eq!(status, 200, "{answer}");
    let (status, answer) = post_form(&voip, "answer", "CallID=v-1&CallerIDNum=%2B442079460000&CalledExtension=210&CallFlow=IN").await;
    assert_eq!(status, 200, "{answer}");
    let (status, answer) = post_form(&voip, "hangup", "CallID=v-1&CallerIDNum=%2B442079460000&CalledExtension=210&CallStatus=ANSWER&CallFlow=IN").await;
    assert_eq!(status, 200, "{answer}");
    wait_for(&voip_crm, 3).await;
    let (status, answer) = get_query(&voip, "ev=dialout&CallID=v-2&CallerExtension=210&CalledNumber=%2B15550100&CallStatus=CALLING&CallFlow=OUT").await;
    assert_eq!(status, 200, "{answer}");
    let (status, answer) = post_form(&voip, "hangup", "CallID=v-2&CallerExtension=210&CalledNumber=%2B15550100&CallStatus=UNKNOWN&CallFlow=OUT").await;
    assert_eq!(status, 200, "{answer}");
    let voip_story = story(&wait_for(&voip_crm, 5).await);

    let s = |p: &str| Some(p.to_owned());
    let expected = vec![
        ("/incoming".to_owned(), s("+442079460000"), s("in"), s("210"), s("")),
        ("/answered".to_owned(), s("+442079460000"), s("in"), s("210"), s("")),
        ("/ended".to_owned(), s("+442079460000"), s("in"), s("210"), s("answered")),
        ("/outgoing".to_owned(), s("+15550100"), s("out"), s("210"), s("")),
        ("/ended".to_owned(), s("+15550100"), s("out"), s("210"), s("cancelled")),
    ];
    // VoipNow's UNKNOWN hangup status leaves it to CallBridge (cancelled); ELMA365 said NoAnswer.
    let mut elma_expected = expected.clone();
    elma_expected[4].4 = s("missed");
    assert_eq!(elma_story, elma_expected);
    assert_eq!(voip_story, expected);
    let (_, calls) = voip.get("/api/v1/calls").await;
    assert_eq!(calls["calls"].as_array().map(Vec::len), Some(2), "{calls}");
    let (_, calls) = elma.get("/api/v1/calls").await;
    assert_eq!(calls["calls"].as_array().map(Vec::len), Some(2), "matched without callId: {calls}");
    assert!(elma.stop() && voip.stop());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_events_get_400_with_the_reason_and_notify_nothing() {
    let crm = FakeCrm::start().await;
    let mut bridge = Bridge::start(&config(&crm));
    let cases: Vec<(u16, Value, &str)> = vec![
        {
            let (s, b) = post_json(&bridge, &json!({"direction": "in", "srcPhone": "1", "dstPhone": "2"})).await;
            (s, b, "event is missing")
        },
        {
            let (s, b) = post_json(&bridge, &json!({"event": "NotifyStart", "srcPhone": "1", "dstPhone": "2"})).await;
            (s, b, "direction is missing")
        },
        {
            let (s, b) = post_json(&bridge, &json!({"event": "NotifyStart", "direction": "up", "srcPhone": "1", "dstPhone": "2"})).await;
            (s, b, "direction \"up\"")
        },
        {
            let (s, b) = post_json(&bridge, &json!({"event": "NotifyStart", "direction": "in", "dstPhone": "2"})).await;
            (s, b, "srcPhone is missing")
        },
        {
            let (s, b) = post_json(&bridge, &json!({"event": "Ringing", "direction": "in", "srcPhone": "1", "dstPhone": "2"})).await;
            (s, b, "NotifyStart, NotifyAnswer, NotifyEnd")
        },
        {
            let (s, b) = get_query(&bridge, "CallID=1&CallerIDNum=2&CallFlow=IN").await;
            (s, b, "?ev=")
        },
        {
            let (s, b) = get_query(&bridge, "ev=ring&CallID=1").await;
            (s, b, "ev=\"ring\"")
        },
        {
            let (s, b) = get_query(&bridge, "ev=hangup").await;
            (s, b, "neither CallID")
        },
        {
            let (s, b) = post_form(&bridge, "dialin", "CallID=1&CallerIDNum=2&CallFlow=SIDEWAYS").await;
            (s, b, "CallFlow")
        },
        {
            let r = reqwest::Client::new()
                .post(format!("{}/webhooks/generic", bridge.url))
                .header("content-type", "application/json")
                .body("{\"event\": ");
            let (s, b) = request(r).await;
            (s, b, "not valid JSON")
        },
    ];
    for (status, body, reason) in cases {
        assert_eq!(status, 400, "{reason}: {body}");
        assert_eq!(body["ok"], false);
        assert_eq!(body["error"], "bad_webhook", "{reason}: {body}");
        assert!(body["message"].as_str().is_some_and(|m| m.contains(reason)), "expected {reason:?} in {body}");
    }
    // Only well-formed events count: one good event after all that is the first notification.
    let (status, body) = get_query(&bridge, "ev=dialin&CallID=ok&CallerIDNum=%2B15550199&CallFlow=IN").await;
    assert_eq!(status, 200, "{body}");
    let got = eventually(WAIT, "the one good event", || {
        let r = crm.received();
        (!r.is_empty()).then_some(r)
    })
    .await;
    assert_eq!(got.len(), 1, "{got:#?}");
    assert_eq!(got[0].path, "/incoming");
    assert!(bridge.stop());
}

/// Sends `body` to `path` in chunks, without a `Content-Length` (so only the body limit, not the
/// length check before it, can stop it), and returns the status and body of the answer.
async fn post_chunked(bridge: &Bridge, path: &str, body: &[u8]) -> (u16, Value) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", bridge.port)).await.expect("connect");
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
    );
    let mut request = head.into_bytes();
    for chunk in body.chunks(8 * 1024) {
        request.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
        request.extend_from_slice(chunk);
        request.extend_from_slice(b"\r\n");
    }
    request.extend_from_slice(b"0\r\n\r\n");
    // The bridge may answer and close before it has read everything: a failed write is not a failure.
    let _ = stream.write_all(&request).await;
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(WAIT, stream.read_to_end(&mut answer)).await;
    let text = String::from_utf8_lossy(&answer).into_owned();
    let status = text.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or_else(|| panic!("not an HTTP answer: {text:?}"));
    let json = text.split_once("\r\n\r\n").and_then(|(_, b)| b.find('{').and_then(|i| b.rfind('}').map(|j| b[i..=j].to_owned())));
    (status, json.and_then(|j| serde_json::from_str(&j).ok()).unwrap_or(Value::Null))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_webhook_reads_refuses_and_answers_alike() {
    let bridge = Bridge::start("");
    let client = reqwest::Client::new();
    for webhook in ["generic", "kazoo", "telecmi"] {
        let url = format!("{}/webhooks/{webhook}", bridge.url);
        // Neither JSON nor form fields, with no content type: read as JSON, refused as such.
        let (status, body) = request(client.post(&url).body("not json")).await;
        assert_eq!((status, body["error"].as_str()), (400, Some("bad_webhook")), "{webhook}: {body}");
        let message = body["message"].as_str().unwrap_or_default();
        assert!(message.starts_with(&format!("{webhook} webhook: ")) && message.contains("not valid JSON"), "{webhook}: {body}");
        // Nothing at all.
        let (status, body) = request(client.get(&url)).await;
        assert_eq!((status, body["error"].as_str()), (400, Some("bad_webhook")), "{webhook}: {body}");
        assert!(body["message"].as_str().is_some_and(|m| m.contains("no body and no query parameters")), "{webhook}: {body}");
        // One body limit, the listener's 64 KiB, whether the length is announced or not.
        let big = format!("{{\"pad\":\"{}\"}}", "x".repeat(100 * 1024));
        let (status, body) = request(client.post(&url).header("content-type", "application/json").body(big.clone())).await;
        assert_eq!((status, body["error"].as_str()), (413, Some("too_large")), "{webhook}, Content-Length: {body}");
        let (status, body) = post_chunked(&bridge, &format!("/webhooks/{webhook}"), big.as_bytes()).await;
        assert_eq!((status, body["error"].as_str()), (413, Some("too_large")), "{webhook}, chunked: {body}");
        // Just under the limit is read (and refused for what it says, not for its size).
        let fits = format!("{{\"pad\":\"{}\"}}", "x".repeat(60 * 1024));
        let (status, body) = post_chunked(&bridge, &format!("/webhooks/{webhook}"), fits.as_bytes()).await;
        assert_eq!((status, body["error"].as_str()), (400, Some("bad_webhook")), "{webhook}, 60 KiB chunked: {body}");
    }
    // What was understood and the call events produced, under the same names.
    let (status, body) = post_json(&bridge, &json!({"event":"NotifyStart","direction":"in","srcPhone":"+442079460000","dstPhone":"0003","callId":"alike-1"})).await;
    assert_eq!(status, 200, "{body}");
    assert!(body["understood"].is_object() && body["events"][0]["event"] == "incoming", "generic: {body}");
    let telecmi = json!({"type":"event","direction":"inbound","conversation_uuid":"alike-2","cmiuuid":"alike-2","from":"440000000000",
                         "app_id":1111112,"time":1585804590000_u64,"to":"441100000000","status":"waiting"});
    let (status, body) = request(client.post(format!("{}/webhooks/telecmi", bridge.url)).json(&telecmi)).await;
    assert_eq!(status, 200, "{body}");
    assert!(body["understood"].is_array() && body["events"][0]["event"] == "incoming", "telecmi: {body}");
}
