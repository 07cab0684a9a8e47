//! The listener's security policy, against the built `callbridge` binary (docs/security.md).
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
    // TeleCMI's first live event of an inbound call (https://doc.telecmi.com/chub/docs/live-incoming-waiting), as its servers POST it.
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
    assert_eq!(with.json()["events"][0]["event"], "incoming", "{with:?}");
    assert_eq!(calls(&bridge).await.len(), 1);
}

/// The kinds of caller the tiers tell apart, each as the requests it really sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Who {
    /// curl, a script, the command line: no browser headers.
    Program,
    /// A web page elsewhere that holds the listener token.
    TokenWithForeignOrigin,
    /// The CRM page in `trusted_origins` (as after "Always allow this site").
    Trusted,
    /// Any other web page.
    Untrusted,
    /// Any web page while `mode = "open"`.
    OpenMode,
    /// CallBridge's own page under /ui/, sending the key its HTML carries.
    OwnPage,
    /// A page at the listener's origin without the key (one loaded before a restart).
    SameOriginWithoutKey,
}

/// What a route belongs to, per docs/security.md's table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tier {
    Dial,
    CallControl,
    Webhook,
    Pages,
    Admin,
}

/// Every route, with a body that reaches the route's own checks without changing anything (a
/// refused request shows as 403 `refused`, a request let through as anything else).
const ROUTES: &[(&str, &str, &str, Tier)] = &[
    ("GET", "/make/020123456", "", Tier::Dial),
    ("POST", "/make/020123456", "", Tier::Dial),
    ("POST", "/api/v1/dial", r#"{"number":"020123456"}"#, Tier::Dial),
    ("GET", "/answer", "", Tier::CallControl),
    ("GET", "/end", "", Tier::CallControl),
    ("GET", "/health", "", Tier::CallControl),
    ("GET", "/api/v1/status", "", Tier::CallControl),
    ("GET", "/api/v1/calls", "", Tier::CallControl),
    ("GET", "/api/v1/calls/no-such-call", "", Tier::CallControl),
    ("POST", "/api/v1/answer", "{}", Tier::CallControl),
    ("POST", "/api/v1/hangup", "{}", Tier::CallControl),
    ("GET", "/api/v1/events", "", Tier::CallControl),
    ("POST", "/webhooks/generic", "{}", Tier::Webhook),
    ("POST", "/webhooks/kazoo", "{}", Tier::Webhook),
    ("POST", "/webhooks/telecmi", "{}", Tier::Webhook),
    ("GET", "/ui/", "", Tier::Pages),
    ("GET", "/ui/settings.html", "", Tier::Pages),
    ("GET", "/ui/api.js", "", Tier::Pages),
    ("GET", "/api/v1/config", "", Tier::Admin),
    ("PUT", "/api/v1/config", r#"{"listener":"not a table"}"#, Tier::Admin),
    ("GET", "/api/v1/secrets", "", Tier::Admin),
    ("PUT", "/api/v1/secrets/telecmi", r#"{"value":""}"#, Tier::Admin),
    ("DELETE", "/api/v1/secrets/no-such-entry", "", Tier::Admin),
    ("POST", "/api/v1/notifications/test", r#"{"rule":{}}"#, Tier::Admin),
    ("GET", "/api/v1/deliveries", "", Tier::Admin),
    ("GET", "/api/v1/deliveries/999", "", Tier::Admin),
    ("POST", "/api/v1/deliveries/999/retry", "", Tier::Admin),
    ("POST", "/api/v1/simulate/incoming", "{}", Tier::Admin),
    ("GET", "/api/v1/providers", "", Tier::Admin),
    ("GET", "/api/v1/listener", "", Tier::Admin),
    ("GET", "/api/v1/security", "", Tier::Admin),
    ("GET", "/api/v1/calls/no-such-call/crm-url", "", Tier::Admin),
    ("GET", "/api/v1/no-such-route", "", Tier::Admin),
];

/// docs/security.md's table: whether `who` may use `tier` (for a dial by an untrusted page: may ask, and
/// the headless bridge, having nobody to ask, refuses).
fn allowed(who: Who, tier: Tier) -> bool {
    match who {
        Who::Program | Who::OwnPage => true,
        Who::SameOriginWithoutKey => matches!(tier, Tier::Dial | Tier::CallControl | Tier::Pages),
        // The token also lets a provider's webhooks in through a tunnel.
        Who::TokenWithForeignOrigin => matches!(tier, Tier::Dial | Tier::CallControl | Tier::Webhook),
        Who::Trusted | Who::OpenMode => matches!(tier, Tier::Dial | Tier::CallControl),
        Who::Untrusted => false,
    }
}

/// The headers `who` sends to `bridge` (`page_key`: the key from the page's HTML).
fn headers_of(who: Who, bridge: &Bridge, token: &str, page_key: &str, method: &str) -> Vec<(String, String)> {
    let own = format!("http://localhost:{}", bridge.port);
    let mut h = vec![("Host".to_owned(), host(bridge))];
    let mut page = |origin: &str, site: &str| {
        // Browsers send Origin with every request but a GET from the page's own origin.
        if method != "GET" || site != "same-origin" {
            h.push(("Origin".to_owned(), origin.to_owned()));
        }
        h.push(("Sec-Fetch-Site".to_owned(), site.to_owned()));
        h.push(("Referer".to_owned(), format!("{origin}/page")));
    };
    match who {
        Who::Program => {}
        Who::TokenWithForeignOrigin => {
            page("https://other.example", "cross-site");
            h.push(("Authorization".to_owned(), format!("Bearer {token}")));
        }
        Who::Trusted => page("https://crm.example", "cross-site"),
        Who::Untrusted => page("https://evil.example", "cross-site"),
        Who::OpenMode => page("https://any.example", "cross-site"),
        Who::OwnPage => {
            page(&own, "same-origin");
            h.push(("X-CallBridge-Page".to_owned(), page_key.to_owned()));
        }
        Who::SameOriginWithoutKey => page(&own, "same-origin"),
    }
    if method != "GET" && method != "DELETE" {
        h.push(("Content-Type".to_owned(), "application/json".to_owned()));
    }
    h
}

/// The status of an answer whose body may never end (the event stream): only its head is read.
async fn status_only(port: u16, method: &str, target: &str, headers: &[(&str, &str)]) -> u16 {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut text = format!("{method} {target} HTTP/1.1\r\nConnection: close\r\n");
    for (name, value) in headers {
        text.push_str(&format!("{name}: {value}\r\n"));
    }
    text.push_str("\r\n");
    let exchange = async {
        let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port)).await.expect("connect");
        stream.write_all(text.as_bytes()).await.expect("send");
        let mut answer = Vec::new();
        let mut buf = [0u8; 1024];
        while !answer.windows(4).any(|w| w == b"\r\n\r\n") {
            let n = stream.read(&mut buf).await.expect("read");
            assert!(n > 0, "the connection closed before the answer's head");
            answer.extend_from_slice(&buf[..n]);
        }
        answer
    };
    let answer = tokio::time::timeout(Duration::from_secs(30), exchange).await.expect("an answer within 30 s");
    String::from_utf8_lossy(&answer).split_whitespace().nth(1).and_then(|s| s.parse().ok()).expect("a status line")
}

/// Sends every route as `who` and checks each answer against the table.
async fn walk_routes(bridge: &Bridge, who: Who, token: &str, page_key: &str) -> Vec<String> {
    let mut wrong = Vec::new();
    for &(method, path, body, tier) in ROUTES {
        let owned = headers_of(who, bridge, token, page_key, method);
        let headers: Vec<(&str, &str)> = owned.iter().map(|(n, v)| (n.as_str(), v.as_str())).collect();
        let expected = allowed(who, tier);
        let (status, answer) = if path == "/api/v1/events" && expected {
            (status_only(bridge.port, method, path, &headers).await, None)
        } else {
            let r = request(bridge.port, method, path, &headers, body).await;
            (r.status, Some(r))
        };
        let refused = status == 403 && answer.as_ref().is_some_and(|r| r.json()["error"] == "refused");
        if expected == refused || status == 401 {
            wrong.push(format!("{who:?} {method} {path} ({tier:?}): expected {}, got {status} {:?}", if expected { "through" } else { "403 refused" }, answer.map(|a| a.body)));
            continue;
        }
        if let Some(r) = answer.filter(|_| refused) {
            assert!(r.header("access-control-allow-origin").is_none(), "a refusal grants no CORS: {who:?} {path} {r:?}");
        }
    }
    wrong
}

/// The page key as CallBridge's settings page receives it: in the HTML of /ui/, as this machine's
/// browser loads it from the address bar.
async fn page_key_from_html(bridge: &Bridge) -> String {
    let page = request(bridge.port, "GET", "/ui/", &[("Host", &host(bridge)), ("Sec-Fetch-Site", "none"), ("Sec-Fetch-Mode", "navigate")], "").await;
    assert_eq!(page.status, 200, "{page:?}");
    assert!(page.header("access-control-allow-origin").is_none(), "the pages are never served cross-origin");
    assert!(page.header("content-security-policy").is_some_and(|c| c.contains("frame-ancestors 'none'")), "{page:?}");
    let tag = r#"<meta name="callbridge-page" content=""#;
    let start = page.body.find(tag).expect("the page carries its key") + tag.len();
    let key: String = page.body[start..].chars().take_while(|c| *c != '"').collect();
    assert_eq!(key.len(), 64, "{key}");
    key
}

#[tokio::test]
async fn every_route_answers_only_the_callers_its_tier_allows() {
    require_keyring();
    let bridge = Bridge::start(&config("tiers", 0, ""));
    let token = bridge.token();
    let key = page_key_from_html(&bridge).await;
    let mut wrong = Vec::new();
    for who in [Who::Program, Who::TokenWithForeignOrigin, Who::Trusted, Who::Untrusted, Who::OwnPage, Who::SameOriginWithoutKey] {
        wrong.extend(walk_routes(&bridge, who, &token, &key).await);
    }
    let open = Bridge::start(&config("tiers-open", 0, "mode = \"open\""));
    wrong.extend(walk_routes(&open, Who::OpenMode, &token, "").await);
    // Open mode does not open administration to the bridge's own pages without their key either.
    wrong.extend(walk_routes(&open, Who::SameOriginWithoutKey, &token, "").await);
    assert!(wrong.is_empty(), "answers that break the table:\n{}", wrong.join("\n"));

    // Another start, another key: a page from before a restart is told to reload.
    let other_key = page_key_from_html(&open).await;
    assert_ne!(other_key, key);
    let stale = request(bridge.port, "GET", "/api/v1/config", &[("Host", &host(&bridge)), ("X-CallBridge-Page", &other_key)], "").await;
    assert_refused(&stale, 401, "stale_page", "reload");
    // The key is never written to the logs.
    assert!(!bridge.logs().contains(&key), "the page key must stay out of the logs");
}

#[tokio::test]
async fn a_trusted_crm_page_cannot_take_over_the_bridge() {
    let crm = callbridge_e2e::crm::FakeCrm::start().await;
    let bridge = Bridge::start(&config("takeover", 0, ""));
    let h = host(&bridge);
    let before = std::fs::read_to_string(&bridge.config_path).expect("config file");
    let (_, config_before) = bridge.get("/api/v1/config").await;
    let trusted = [("Host", h.as_str()), ("Origin", "https://crm.example"), ("Sec-Fetch-Site", "cross-site"), ("Content-Type", "application/json")];

    // Its preflights for administration are refused, so a browser never sends the request itself …
    for (method, path) in [("PUT", "/api/v1/config"), ("PUT", "/api/v1/secrets/telecmi"), ("POST", "/api/v1/notifications/test")] {
        let preflight = request(
            bridge.port,
            "OPTIONS",
            path,
            &[("Host", &h), ("Origin", "https://crm.example"), ("Access-Control-Request-Method", method), ("Access-Control-Request-Headers", "content-type")],
            "",
        )
        .await;
        assert_refused(&preflight, 403, "refused", "administration");
    }
    // … while call control is still open to it.
    let preflight = request(
        bridge.port,
        "OPTIONS",
        "/api/v1/hangup",
        &[("Host", &h), ("Origin", "https://crm.example"), ("Access-Control-Request-Method", "POST")],
        "",
    )
    .await;
    assert_eq!(preflight.status, 204, "{preflight:?}");

    // … and the requests themselves (as a form or no-cors fetch would send them) are refused.
    let mut hijacked = config_before["config"].clone();
    hijacked["notification"] = serde_json::json!([{ "event": "incoming", "url": format!("{}/stolen", crm.url()) }]);
    hijacked["security"]["trusted_origins"] = serde_json::json!(["https://crm.example", "https://evil.example"]);
    let put = request(bridge.port, "PUT", "/api/v1/config", &trusted, &hijacked.to_string()).await;
    assert_refused(&put, 403, "refused", "administration");
    let secret = request(bridge.port, "PUT", "/api/v1/secrets/telecmi", &trusted, r#"{"value":"attacker"}"#).await;
    assert_refused(&secret, 403, "refused", "administration");
    let probe = serde_json::json!({ "rule": { "event": "incoming", "url": format!("{}/intranet", crm.url()) } }).to_string();
    let fetch = request(bridge.port, "POST", "/api/v1/notifications/test", &trusted, &probe).await;
    assert_refused(&fetch, 403, "refused", "administration");
    let read = request(bridge.port, "GET", "/api/v1/config", &trusted, "").await;
    assert_refused(&read, 403, "refused", "administration");

    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(crm.received().is_empty(), "nothing was fetched for the page: {:?}", crm.received());
    assert_eq!(std::fs::read_to_string(&bridge.config_path).expect("config file"), before, "the config file is untouched");
    assert_eq!(bridge.get("/api/v1/config").await.1, config_before, "the running config is untouched");

    // The settings page itself, with its key, saves the same change.
    let key = page_key_from_html(&bridge).await;
    let own = format!("http://localhost:{}", bridge.port);
    let page = [("Host", h.as_str()), ("Origin", own.as_str()), ("Sec-Fetch-Site", "same-origin"), ("Content-Type", "application/json"), ("X-CallBridge-Page", key.as_str())];
    let saved = request(bridge.port, "PUT", "/api/v1/config", &page, &hijacked.to_string()).await;
    assert_eq!(saved.status, 200, "{saved:?}");
    assert_eq!(saved.json()["config"]["security"]["trusted_origins"][1], "https://evil.example");
}

#[tokio::test]
async fn the_status_lists_trusted_origins_only_to_callers_who_may_administer() {
    let bridge = Bridge::start(&config("status-origins", 0, ""));
    let h = host(&bridge);

    // A program on this machine administers the bridge and sees the whole policy.
    let (status, local) = bridge.get("/api/v1/status").await;
    assert_eq!(status, 200, "{local}");
    assert_eq!(local["status"]["security"]["trusted_origins"], serde_json::json!(["https://crm.example"]), "{local}");

    // A trusted CRM page may read the status (call control) but not the configuration it holds.
    let trusted = [("Host", h.as_str()), ("Origin", "https://crm.example"), ("Sec-Fetch-Site", "cross-site")];
    let page = request(bridge.port, "GET", "/api/v1/status", &trusted, "").await;
    assert_eq!(page.status, 200, "{page:?}");
    let body = page.json();
    assert_eq!(body["status"]["security"]["trusted_origins"], serde_json::json!([]), "{body}");
    assert_eq!(body["status"]["security"]["mode"], local["status"]["security"]["mode"], "the rest of the policy is shown: {body}");
}
