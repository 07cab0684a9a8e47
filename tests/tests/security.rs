//! The listener's security policy, against the built `callbridge` binary (issue #5, Done when 1 and 5).
//!
//! Requests are sent byte for byte as browsers and scripts send them (see `raw`), and "nothing is
//! dialed" is checked in the bridge's own call history after every refusal.

use std::time::Duration;

use callbridge_e2e::bridge::{run_cli, Bridge};
use callbridge_e2e::raw::{request, RawResponse};
use serde_json::Value;

/// The token tests use the real OS keyring (a private gnome-keyring, see scripts/with-keyring.sh).
fn require_keyring() {
    assert_eq!(
        std::env::var("CALLBRIDGE_TEST_KEYRING").as_deref(),
        Ok("1"),
        "these tests need the OS keyring: run them through scripts/with-keyring.sh (scripts/test.sh does)"
    );
}

/// A config with one trusted CRM origin, the given dial limit, and a keyring entry of its own so that
/// tests running side by side do not share (or regenerate) each other's token.
fn config(name: &str, dials_per_minute: u32, extra: &str) -> String {
    format!(
        r#"
[security]
trusted_origins = ["https://crm.example"]
dials_per_minute = {dials_per_minute}
token_entry = "e2e-{name}-{pid}"
{extra}
"#,
        pid = std::process::id()
    )
}

fn host(bridge: &Bridge) -> String {
    format!("localhost:{}", bridge.port)
}

async fn calls(bridge: &Bridge) -> Vec<Value> {
    let (status, body) = bridge.get("/api/v1/calls").await;
    assert_eq!(status, 200, "{body}");
    body["calls"].as_array().cloned().unwrap_or_default()
}

fn assert_refused(r: &RawResponse, status: u16, code: &str, mentions: &str) {
    assert_eq!(r.status, status, "{r:?}");
    let body = r.json();
    assert_eq!(body["ok"], false, "{body}");
    assert_eq!(body["error"], code, "{body}");
    let message = body["message"].as_str().unwrap_or_default();
    assert!(message.contains(mentions), "the message should mention {mentions:?}: {message}");
    assert!(r.header("access-control-allow-origin").is_none(), "a refusal must not grant CORS: {r:?}");
}

#[tokio::test]
async fn browser_attacks_are_refused_and_nothing_is_dialed() {
    let bridge = Bridge::start(&config("attacks", 0, ""));
    let h = host(&bridge);

    // What `<img src="http://localhost:5678/make/…">` on any web page sends: no Origin.
    let img = request(bridge.port, "GET", "/make/020123456", &[("Host", &h), ("Sec-Fetch-Site", "cross-site"), ("Sec-Fetch-Mode", "no-cors"), ("Sec-Fetch-Dest", "image")], "").await;
    assert_refused(&img, 403, "refused", "cross-site");
    assert!(img.json()["message"].as_str().unwrap_or_default().contains("token"), "the refusal says how to get through: {img:?}");

    // DNS rebinding: the attacker's name resolves to 127.0.0.1 but the Host header still names it.
    let rebinding = request(bridge.port, "GET", "/make/020123456", &[("Host", "evil.example")], "").await;
    assert_refused(&rebinding, 403, "bad_host", "evil.example");
    let rebinding_api = request(bridge.port, "GET", "/api/v1/calls", &[("Host", &format!("evil.example:{}", bridge.port))], "").await;
    assert_refused(&rebinding_api, 403, "bad_host", "DNS rebinding");

    // An untrusted Origin without a preflight: a simple form POST and a fetch in no-cors mode.
    let body = r#"{"number":"020123456"}"#;
    let form_post = request(
        bridge.port,
        "POST",
        "/api/v1/dial",
        &[("Host", &h), ("Origin", "https://evil.example"), ("Sec-Fetch-Site", "cross-site"), ("Content-Type", "application/json")],
        body,
    )
    .await;
    assert_refused(&form_post, 403, "refused", "https://evil.example");
    let get_with_origin = request(bridge.port, "GET", "/make/020123456", &[("Host", &h), ("Origin", "https://evil.example")], "").await;
    assert_refused(&get_with_origin, 403, "refused", "not a trusted origin");
    // Reading the history or ending calls from such a page is refused too.
    let read = request(bridge.port, "GET", "/api/v1/calls", &[("Host", &h), ("Origin", "https://evil.example")], "").await;
    assert_refused(&read, 403, "refused", "may only ask to dial");

    // An untrusted Origin with a preflight: the preflight is refused, so the browser never sends the POST.
    let preflight = request(
        bridge.port,
        "OPTIONS",
        "/api/v1/dial",
        &[
            ("Host", &h),
            ("Origin", "https://evil.example"),
            ("Access-Control-Request-Method", "POST"),
            ("Access-Control-Request-Headers", "content-type"),
        ],
        "",
    )
    .await;
    assert_refused(&preflight, 403, "refused", "trusted origins");

    // A premium-rate number, from a program on this machine (which may otherwise dial).
    let premium = request(bridge.port, "GET", "/make/+19005550123", &[("Host", &h)], "").await;
    assert_refused(&premium, 403, "refused", "+1900");
    let premium_national = request(bridge.port, "GET", "/make/00447012345678", &[("Host", &h)], "").await;
    assert_refused(&premium_national, 403, "refused", "+4470");

    // A wrong token is refused, not ignored.
    let wrong = request(bridge.port, "GET", "/make/020123456?token=0000", &[("Host", &h)], "").await;
    if std::env::var("CALLBRIDGE_TEST_KEYRING").as_deref() == Ok("1") {
        assert_refused(&wrong, 401, "bad_token", "token");
    } else {
        assert_refused(&wrong, 503, "token_unavailable", "keyring");
    }

    assert!(calls(&bridge).await.is_empty(), "a refused request must not dial");
    let (_, status) = bridge.get("/api/v1/status").await;
    assert_eq!(status["status"]["live_calls"], 0, "{status}");
    assert!(bridge.logs().contains("refused"), "refusals are logged");
}

#[tokio::test]
async fn local_programs_trusted_origins_and_the_token_pass() {
    require_keyring();
    let bridge = Bridge::start(&config("pass", 0, ""));
    let h = host(&bridge);

    // The README's `curl http://localhost:5678/make/020123456`.
    let curl = request(bridge.port, "GET", "/make/020123456", &[("Host", &h), ("User-Agent", "curl/7.88.1"), ("Accept", "*/*")], "").await;
    assert_eq!(curl.status, 200, "{curl:?}");
    assert_eq!(curl.json()["action"], "dial");

    // A trusted CRM page: the preflight is answered with CORS headers, then the call is placed.
    let preflight = request(
        bridge.port,
        "OPTIONS",
        "/api/v1/dial",
        &[
            ("Host", &h),
            ("Origin", "https://crm.example"),
            ("Access-Control-Request-Method", "POST"),
            ("Access-Control-Request-Headers", "content-type"),
            ("Access-Control-Request-Private-Network", "true"),
        ],
        "",
    )
    .await;
    assert_eq!(preflight.status, 204, "{preflight:?}");
    assert_eq!(preflight.header("access-control-allow-origin"), Some("https://crm.example"));
    assert!(preflight.header("access-control-allow-methods").is_some_and(|m| m.contains("POST")));
    assert_eq!(preflight.header("access-control-allow-headers"), Some("content-type"));
    assert_eq!(preflight.header("access-control-allow-private-network"), Some("true"));
    let trusted = request(
        bridge.port,
        "POST",
        "/api/v1/dial",
        &[("Host", &h), ("Origin", "https://crm.example"), ("Sec-Fetch-Site", "cross-site"), ("Content-Type", "application/json")],
        r#"{"number":"+44 20 7946 0000"}"#,
    )
    .await;
    assert_eq!(trusted.status, 200, "{trusted:?}");
    assert_eq!(trusted.header("access-control-allow-origin"), Some("https://crm.example"));
    // A link on the trusted CRM page: no Origin, but a Referer from it.
    let link = request(
        bridge.port,
        "GET",
        "/make/020123457",
        &[("Host", &h), ("Sec-Fetch-Site", "cross-site"), ("Referer", "https://crm.example/contacts/42")],
        "",
    )
    .await;
    assert_eq!(link.status, 200, "{link:?}");

    // The token lets a cross-site page (or anything else) through, in the query or as a bearer token.
    let token = bridge.token();
    assert_eq!(token.len(), 64, "a 256-bit token in hex");
    let img_with_token = request(
        bridge.port,
        "GET",
        &format!("/make/020123458?token={token}"),
        &[("Host", &h), ("Sec-Fetch-Site", "cross-site")],
        "",
    )
    .await;
    assert_eq!(img_with_token.status, 200, "{img_with_token:?}");
    let bearer = request(
        bridge.port,
        "POST",
        "/api/v1/dial",
        &[("Host", &h), ("Origin", "https://evil.example"), ("Authorization", &format!("Bearer {token}")), ("Content-Type", "application/json")],
        r#"{"number":"020123459"}"#,
    )
    .await;
    assert_eq!(bearer.status, 200, "{bearer:?}");
    assert!(bearer.header("access-control-allow-origin").is_none(), "the token does not make an origin trusted");
    assert!(!bridge.logs().contains(&token), "the token never appears in the logs");

    let numbers: Vec<String> = calls(&bridge).await.iter().map(|c| c["remote_number"].as_str().unwrap_or_default().to_owned()).collect();
    assert_eq!(numbers, ["020123459", "020123458", "020123457", "+442079460000", "020123456"]);

    // `callbridge token regenerate` replaces it: the running bridge accepts only the new one.
    let out = run_cli(&bridge.dir, &["token", "regenerate"], &[]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let new = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    assert_ne!(new, token);
    // The bridge reads the keyring again within a second; from then on the old token is refused.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let old = request(bridge.port, "GET", &format!("/api/v1/status?token={token}"), &[("Host", &h)], "").await;
        if old.status == 401 {
            assert_eq!(old.json()["error"], "bad_token");
            break;
        }
        assert_eq!(old.status, 200, "{old:?}");
        assert!(tokio::time::Instant::now() < deadline, "the old token still works after regenerate");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let fresh = request(bridge.port, "GET", &format!("/api/v1/status?token={new}"), &[("Host", &h)], "").await;
    assert_eq!(fresh.status, 200, "{fresh:?}");
    assert_eq!(fresh.json()["status"]["security"]["token"], "ready");
}

#[tokio::test]
async fn a_burst_past_the_rate_limit_is_throttled() {
    let bridge = Bridge::start(&config("burst", 3, ""));
    let h = host(&bridge);
    for n in 0..3 {
        let ok = request(bridge.port, "GET", &format!("/make/02012345{n}"), &[("Host", &h)], "").await;
        assert_eq!(ok.status, 200, "dial {n} is within the limit: {ok:?}");
    }
    let throttled = request(bridge.port, "GET", "/make/020123459", &[("Host", &h)], "").await;
    assert_eq!(throttled.status, 429, "{throttled:?}");
    assert_eq!(throttled.json()["error"], "throttled");
    let retry_after: u64 = throttled.header("retry-after").and_then(|v| v.parse().ok()).expect("a Retry-After in seconds");
    assert!((1..=20).contains(&retry_after), "one dial comes back every 20 s at 3 a minute: {retry_after}");
    let via_api = bridge.post("/api/v1/dial", serde_json::json!({ "number": "020123450" })).await;
    assert_eq!(via_api.0, 429, "the API shares the limit: {:?}", via_api.1);
    assert_eq!(calls(&bridge).await.len(), 3, "the throttled dials were not placed");
}

#[tokio::test]
async fn open_mode_lets_pages_dial_and_warns() {
    let bridge = Bridge::start(&config("open", 0, "mode = \"open\""));
    let h = host(&bridge);
    let img = request(bridge.port, "GET", "/make/020123456", &[("Host", &h), ("Sec-Fetch-Site", "cross-site")], "").await;
    assert_eq!(img.status, 200, "{img:?}");
    // Still no DNS rebinding and no premium numbers.
    let rebinding = request(bridge.port, "GET", "/make/020123456", &[("Host", "evil.example")], "").await;
    assert_eq!(rebinding.status, 403);
    let premium = request(bridge.port, "GET", "/make/+19005550123", &[("Host", &h), ("Sec-Fetch-Site", "cross-site")], "").await;
    assert_eq!(premium.status, 403);
    assert!(bridge.logs().contains("open mode is on"), "a warning at start: {}", bridge.logs());
    let (_, status) = bridge.get("/api/v1/security").await;
    assert_eq!(status["security"]["mode"], "open");
    assert!(status["security"]["warning"].as_str().is_some_and(|w| w.contains("any web page")), "{status}");
}

#[tokio::test]
async fn an_oversized_body_is_refused() {
    let bridge = Bridge::start(&config("body", 0, ""));
    let huge = format!(r#"{{"number":"{}"}}"#, "1".repeat(100_000));
    let r = request(bridge.port, "POST", "/api/v1/dial", &[("Host", &host(&bridge)), ("Content-Type", "application/json")], &huge).await;
    assert_eq!(r.status, 413, "{r:?}");
    assert_eq!(r.json()["error"], "too_large");
}

#[tokio::test]
async fn a_client_that_never_finishes_its_headers_is_cut_off() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let bridge = Bridge::start(&config("slow", 0, ""));
    let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", bridge.port)).await.expect("connect");
    stream.write_all(b"GET /health HTTP/1.1\r\nHost: localhost\r\n").await.expect("half a request");
    // The server closes the connection (hyper answers 408 or just closes) instead of waiting for ever.
    let mut rest = Vec::new();
    let closed = tokio::time::timeout(Duration::from_secs(60), stream.read_to_end(&mut rest)).await;
    assert!(closed.is_ok(), "the listener must not wait for ever for the rest of the headers");
}

#[tokio::test]
async fn the_headless_bridge_refuses_a_network_bind_without_a_token() {
    if callbridge_e2e::bridge::unsupported_on_windows(
        "it takes the keyring away by pointing D-Bus at a bus that does not exist; the Windows Credential Manager is part of the OS and cannot be taken away from one process",
    ) {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("callbridge.toml"), config("bind", 0, "").replace("[security]", "[listener]\nbind = \"0.0.0.0\"\n\n[security]"))
        .expect("config");
    // No Secret Service on this bus: no token can be kept.
    let no_keyring = [("DBUS_SESSION_BUS_ADDRESS", "unix:path=/nonexistent/callbridge-test-bus")];
    let out = run_cli(dir.path(), &["serve", "--port", "0"], &no_keyring);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "it must not start: {stderr}");
    assert!(stderr.contains("refusing to listen on 0.0.0.0"), "{stderr}");
    assert!(stderr.contains("token") && stderr.contains("keyring") && stderr.contains("bind"), "the error says why and what to do: {stderr}");
    assert!(!String::from_utf8_lossy(&out.stdout).contains("is listening"), "nothing was listening");

    // Loopback is fine without a keyring: programs on this machine need no token.
    let loopback = tempfile::tempdir().expect("tempdir");
    std::fs::write(loopback.path().join("callbridge.toml"), config("bind-loopback", 0, "")).expect("config");
    let bridge = Bridge::start_in(loopback.path(), &no_keyring);
    let ok = request(bridge.port, "GET", "/make/020123456", &[("Host", &host(&bridge))], "").await;
    assert_eq!(ok.status, 200, "{ok:?}");
    let (_, status) = bridge.get("/api/v1/security").await;
    assert_eq!(status["security"]["token"], "unavailable", "{status}");
}

#[tokio::test]
async fn a_network_bind_with_a_token_requires_it_from_other_names() {
    require_keyring();
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("callbridge.toml"), config("lan", 0, "").replace("[security]", "[listener]\nbind = \"0.0.0.0\"\n\n[security]"))
        .expect("config");
    let bridge = Bridge::start_in(dir.path(), &[]);
    let token = bridge.token();
    // A LAN client names the machine by its address; without the token it is refused.
    let lan_host = format!("192.0.2.10:{}", bridge.port);
    let without = request(bridge.port, "GET", "/make/020123456", &[("Host", &lan_host)], "").await;
    assert_refused(&without, 401, "token_required", "token");
    assert_eq!(without.header("www-authenticate"), Some("Bearer"));
    let with = request(bridge.port, "GET", "/make/020123456", &[("Host", &lan_host), ("Authorization", &format!("Bearer {token}"))], "").await;
    assert_eq!(with.status, 200, "{with:?}");
    assert!(bridge.logs().contains("other machines must send the listener token"), "a warning at start");
}

#[tokio::test]
async fn provider_webhooks_through_a_tunnel_need_the_listed_name_and_the_token() {
    require_keyring();
    let bridge = Bridge::start(&config("tunnel", 0, "allowed_hosts = [\"hooks.example.com\"]"));
    let token = bridge.token();
    // TeleCMI's first live event of an inbound call (wire-formats.md §1.4), as its servers POST it.
    let event = serde_json::json!({
        "type": "event", "direction": "inbound", "status": "waiting", "cmiuuid": "tunnel-a", "conversation_uuid": "tunnel-a",
        "from": "440000000000", "to": "441100000000", "time": 1_700_000_000_000_u64, "custom": "{}"
    })
    .to_string();
    let json = ("Content-Type", "application/json");
    // The tunnel forwards with the public name in Host. Without the token: refused.
    let without = request(bridge.port, "POST", "/webhooks/telecmi", &[("Host", "hooks.example.com"), json], &event).await;
    assert_refused(&without, 401, "token_required", "hooks.example.com");
    // A name that is not listed stays refused whatever it carries (DNS rebinding).
    let unlisted = request(bridge.port, "POST", &format!("/webhooks/telecmi?token={token}"), &[("Host", "evil.example"), json], &event).await;
    assert_refused(&unlisted, 403, "bad_host", "allowed_hosts");
    // With the token in the webhook URL, as the TeleCMI dashboard would hold it: accepted.
    let with = request(bridge.port, "POST", &format!("/webhooks/telecmi?token={token}"), &[("Host", "hooks.example.com"), json], &event).await;
    assert_eq!(with.status, 200, "{with:?}");
    assert_eq!(with.json()["call_events"][0]["event"], "incoming", "{with:?}");
    assert_eq!(calls(&bridge).await.len(), 1);
}
