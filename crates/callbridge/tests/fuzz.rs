//! Property tests: everything that reads input from outside CallBridge survives any input.
//!
//! Two tables say what is covered, so that adding a parser — a provider's webhook decoder, say — is
//! one line:
//!
//! * [`PARSERS`]: functions that take text or bytes from outside (phone numbers, templates, the config
//!   file, origins, number patterns, `Host` headers, provider webhook payloads and baresip's control messages). Each must return, never panic, for any bytes.
//! * [`ROUTES`]: HTTP routes that decode a request body or query (the JSON API, the URL commands, the
//!   provider webhooks). Each must answer, never panic and never answer 500, for
//!   any body, content type and query.
//! * [`ADMIN_ROUTES`]: the administration routes (config, notification tests, secrets), served by a
//!   router with the settings a listener is started with, so their handlers really run: the same
//!   property, for any body and for configs with one value replaced by anything.
//!
//! On top of "no panic", the number parser, the template renderer and the security classifier have
//! properties of their own (idempotence, escaping round trips, no foreign host ever passes).
//!
//! Every case runs first over the committed corpus (`tests/fuzz-corpus/*.txt`, one input per line,
//! `\n`, `\r`, `\t`, `\0` and `\\` escaped), then over random inputs. The number of random cases is
//! `PROPTEST_CASES` (scripts/test.sh sets it, so CI time is bounded); a failure is saved by proptest in
//! `tests/fuzz.proptest-regressions` and replayed first from then on — commit that file.

use std::sync::{Arc, OnceLock};

use axum::body::Body;
use axum::http::Request;
use callbridge::call::{Call, CallEvent, CallEventKind, Direction};
use callbridge::config::Config;
use callbridge::engine::{Engine, Services};
use callbridge::notify::template::{Encoding, Placeholder, Template, UrlTemplate};
use callbridge::number::{Country, PhoneNumber};
use callbridge::provider::baresip::{message as baresip_message, netstring};
use callbridge::provider::kazoo::events as kazoo;
use callbridge::provider::telecmi::webhook as telecmi;
use callbridge::secrets::MemorySecrets;
use callbridge::settings::Settings;
use callbridge::security::numbers::{self, NumberPattern};
use callbridge::security::origin::{is_loopback_host, page_origin, TrustedOrigin};
use callbridge::security::{classify, Caller, RequestFacts, SecurityConfig};
use proptest::prelude::*;
use tower::ServiceExt;

/// A parser under test: its name and how to feed it bytes.
type Parser = (&'static str, fn(&[u8]));

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Every parser of outside input. Add a line for a new one.
const PARSERS: &[Parser] = &[
    ("phone number", |b| drop(PhoneNumber::parse(&text(b), "GB".parse().ok()))),
    ("phone number without a country", |b| drop(PhoneNumber::parse(&text(b), None))),
    ("template", |b| drop(Template::parse(&text(b)))),
    ("URL template", |b| drop(UrlTemplate::parse(&text(b)))),
    ("config file", |b| drop(Config::from_toml(&text(b), std::path::Path::new("fuzz.toml")))),
    ("trusted origin", |b| drop(TrustedOrigin::parse(&text(b)))),
    ("number pattern", |b| drop(NumberPattern::parse(&text(b)))),
    ("page origin (Origin / Referer header)", |b| drop(page_origin(&text(b)))),
    ("Host header", |b| {
        let _ = is_loopback_host(&text(b));
    }),
    ("TeleCMI webhook, JSON", |b| {
        if let Ok(payload) = serde_json::from_slice(b) {
            let _ = telecmi::parse_all(&payload);
        }
    }),
    ("TeleCMI webhook, form or query", |b| drop(telecmi::parse_all(&telecmi::form_payload(form_urlencoded::parse(b).into_owned())))),
    ("Kazoo blackhole websocket message", |b| drop(kazoo::parse_blackhole(&text(b)))),
    ("Kazoo webhook, JSON", |b| {
        if let Ok(payload) = serde_json::from_slice(b) {
            let _ = kazoo::parse_webhook(&payload);
        }
    }),
    ("baresip ctrl_tcp message", |b| drop(baresip_message::parse(b))),
    ("baresip netstring stream", |b| {
        let mut decoder = netstring::Decoder::new(4096);
        decoder.push(b);
        while let Ok(Some(frame)) = decoder.next_frame() {
            let _ = baresip_message::parse(&frame);
        }
    }),
];

/// Every route that decodes outside input: method and path. Add a line for a new webhook.
const ROUTES: &[(&str, &str)] = &[
    ("POST", "/api/v1/dial"),
    ("POST", "/api/v1/answer"),
    ("POST", "/api/v1/hangup"),
    ("POST", "/api/v1/simulate/incoming"),
    ("GET", "/api/v1/calls"),
    ("GET", "/api/v1/deliveries"),
    ("POST", "/api/v1/deliveries/1/retry"),
    ("GET", "/make/"),
    ("POST", "/answer"),
    ("POST", "/end"),
    ("POST", "/webhooks/telecmi"),
    ("GET", "/webhooks/telecmi"),
    ("POST", "/webhooks/generic"),
    ("GET", "/webhooks/generic?ev=dialin"),
    ("POST", "/webhooks/generic?ev=hangup"),
    ("POST", "/webhooks/kazoo"),
    ("GET", "/webhooks/kazoo"),
];

const CONTENT_TYPES: &[Option<&str>] = &[
    None,
    Some("application/json"),
    Some("application/json; charset=utf-8"),
    Some("application/x-www-form-urlencoded"),
    Some("text/plain"),
    Some("multipart/form-data; boundary=x"),
    Some("application/xml"),
];

/// The corpus: every line of every file in `tests/fuzz-corpus/`, unescaped.
fn corpus() -> &'static [Vec<u8>] {
    static CORPUS: OnceLock<Vec<Vec<u8>>> = OnceLock::new();
    CORPUS.get_or_init(|| {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests").join("fuzz-corpus");
        let mut files: Vec<_> = std::fs::read_dir(&dir).expect("tests/fuzz-corpus").filter_map(Result::ok).map(|e| e.path()).collect();
        files.sort();
        let mut inputs = Vec::new();
        for file in files {
            let content = std::fs::read_to_string(&file).expect("corpus file");
            inputs.extend(content.lines().map(unescape));
            inputs.push(content.into_bytes());
        }
        assert!(inputs.len() > 50, "the corpus is missing");
        inputs
    })
}

fn unescape(line: &str) -> Vec<u8> {
    let mut out = String::new();
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('n') => out.push('\n'),
            Some('r') => out.push('\r'),
            Some('t') => out.push('\t'),
            Some('0') => out.push('\0'),
            Some(other) => out.push(other),
            None => out.push('\\'),
        }
    }
    out.into_bytes()
}

/// Inputs that look like what each parser expects, so the random cases reach past the first check.
fn input() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        3 => proptest::collection::vec(any::<u8>(), 0..256),
        3 => any::<String>().prop_map(String::into_bytes),
        2 => "(tel:|callto:|TEL:)?[+]?[0-9 ().%/-]{0,30}(;ext=[0-9]{0,5})?".prop_map(String::into_bytes),
        2 => "[a-z$\\{\\}:/.?=&%+ 0-9\"\\[\\]]{0,60}".prop_map(String::into_bytes),
        1 => "(https?://)?(\\*\\.)?[a-z0-9.-]{0,20}(:[0-9]{0,6})?(/[a-z]{0,5})?".prop_map(String::into_bytes),
        1 => proptest::sample::select(corpus().to_vec()),
        2 => webhook_json().prop_map(|v| v.to_string().into_bytes()),
        1 => webhook_json().prop_map(|v| form_of(&v).into_bytes()),
    ]
}

/// Field names providers' webhooks use (TeleCMI's, Kazoo's, ELMA365's and VoipNow's documented payloads). Add a provider's names with its parser.
const WEBHOOK_FIELDS: &[&str] = &[
    // TeleCMI
    "type", "status", "cmiuuid", "cmiuid", "conversation_uuid", "parent_uid", "request_id", "extra_params", "custom",
    "leg", "from", "to", "direction", "user", "time", "hangup_reason", "answeredsec", "duration", "name",
    // generic (ELMA365 / VoipNow)
    "event", "srcPhone", "dstPhone", "srcPhoneExt", "dstPhoneExt", "callId", "disposition", "CallID", "CallerIDNum",
    "CallerIDNam", "CallerIDName", "CalledDID", "CalledExtension", "CallerExtension", "CalledNumber", "CallFlow",
    "CallStatus",
    // Kazoo webhooks (snake_case)
    "hook_event", "call_id", "call_direction", "caller_id_number", "caller_id_name", "callee_id_number",
    "other_leg_call_id", "hangup_cause", "timestamp", "account_id", "authorizing_type",
];

/// A JSON object (or a list of them) with webhook field names and values of every JSON type.
fn webhook_json() -> impl Strategy<Value = serde_json::Value> {
    let value = prop_oneof![
        Just(serde_json::Value::Null),
        any::<bool>().prop_map(serde_json::Value::from),
        any::<i64>().prop_map(serde_json::Value::from),
        any::<f64>().prop_map(serde_json::Value::from),
        "(event|cdr|answered|hangup|started|waiting|inbound|outbound|a|b|[0-9]{1,13}|[ -~]{0,16})".prop_map(serde_json::Value::from),
        "\\{\"[a-z_]{1,10}\":\"[ -~]{0,10}\"\\}".prop_map(serde_json::Value::from),
    ];
    let object = proptest::collection::btree_map(proptest::sample::select(WEBHOOK_FIELDS), value.clone(), 0..10)
        .prop_map(|m| serde_json::Value::Object(m.into_iter().map(|(k, v)| (k.to_owned(), v)).collect()));
    prop_oneof![4 => object.clone(), 1 => proptest::collection::vec(object, 0..3).prop_map(serde_json::Value::from), 1 => value]
}

/// A JSON object's fields as a form (or query string).
fn form_of(v: &serde_json::Value) -> String {
    let mut form = form_urlencoded::Serializer::new(String::new());
    if let Some(object) = v.as_object() {
        for (k, v) in object {
            form.append_pair(k, &v.as_str().map(str::to_owned).unwrap_or_else(|| v.to_string()));
        }
    }
    form.finish()
}

#[test]
fn every_parser_survives_the_corpus() {
    for (name, parse) in PARSERS {
        for input in corpus() {
            let outcome = std::panic::catch_unwind(|| parse(input));
            assert!(outcome.is_ok(), "the {name} parser panicked on {:?}", text(input));
        }
    }
}

proptest! {
    #[test]
    fn every_parser_survives_any_input(input in input()) {
        for (_, parse) in PARSERS {
            parse(&input);
        }
    }

    /// A parsed number is digits (after an optional +), within the limits, and parsing what it dials
    /// dials the same again.
    #[test]
    fn parsed_numbers_are_clean_and_stable(input in input(), country in proptest::sample::select(vec![None, Some("GB"), Some("US"), Some("DE"), Some("IN")])) {
        let country: Option<Country> = country.and_then(|c| c.parse().ok());
        if let Ok(n) = PhoneNumber::parse(&text(&input), country) {
            let digits = n.dial.strip_prefix('+').unwrap_or(&n.dial);
            prop_assert!(!digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()), "{n:?}");
            prop_assert!(digits.len() <= callbridge::number::MAX_DIGITS, "{n:?}");
            if let Some(e164) = &n.e164 {
                prop_assert_eq!(e164, &n.dial);
                prop_assert!(e164.starts_with('+'));
            }
            let again = PhoneNumber::parse(&n.dial, country);
            prop_assert!(again.as_ref().is_ok_and(|a| a.dial == n.dial), "{:?} then {:?}", n, again);
            // The number rules decide for every number without panicking.
            let _ = numbers::check(&n, country, &[], &numbers::default_deny());
        }
    }

    /// Values land in a body or URL exactly as they were, whatever characters they hold.
    #[test]
    fn rendered_values_round_trip_through_their_encoding(value in any::<String>(), name in any::<String>()) {
        let event = event_with(&value, &name);
        let json = Template::parse(r#"{"n":"$callerid","m":"${name}"}"#).expect("template").render(&event, Encoding::Json);
        let parsed: serde_json::Value = serde_json::from_str(&json).map_err(|e| TestCaseError::fail(format!("{e}: {json}")))?;
        prop_assert_eq!(parsed["n"].as_str(), Some(value.as_str()));
        prop_assert_eq!(parsed["m"].as_str(), Some(name.as_str()));

        let form = Template::parse("n=$callerid&m=$name").expect("template").render(&event, Encoding::Form);
        let pairs: Vec<(String, String)> = form_urlencoded::parse(form.as_bytes()).into_owned().collect();
        prop_assert_eq!(pairs, vec![("n".to_owned(), value.clone()), ("m".to_owned(), name.clone())]);

        let url = UrlTemplate::parse("https://crm.example/in/$callerid?m=$name&k=1").expect("template").render(&event);
        let parsed = url::Url::parse(&url).map_err(|e| TestCaseError::fail(format!("{e}: {url}")))?;
        prop_assert_eq!(parsed.host_str(), Some("crm.example"));
        let m: Vec<(String, String)> = parsed.query_pairs().into_owned().collect();
        prop_assert_eq!(m, vec![("m".to_owned(), name.clone()), ("k".to_owned(), "1".to_owned())]);
        // The value stays in its own path segment: it never moves the request to another path.
        let segments: Vec<String> = parsed.path_segments().map(|s| s.map(percent_decode).collect()).unwrap_or_default();
        prop_assert_eq!(segments.len(), 2, "{}", url);
        prop_assert_eq!(segments[0].as_str(), "in");
        if value != "." && value != ".." {
            prop_assert_eq!(&segments[1], &value);
        }

        // Every placeholder, whatever the call holds, keeps a JSON body valid.
        let all = Placeholder::ALL.iter().map(|p| format!(r#""{0}":"${{{0}}}""#, p.name())).collect::<Vec<_>>().join(",");
        let body = Template::parse(&format!("{{{all}}}")).expect("template").render(&event, Encoding::Json);
        let parsed: serde_json::Value = serde_json::from_str(&body).map_err(|e| TestCaseError::fail(format!("{e}: {body}")))?;
        prop_assert_eq!(parsed["name"].as_str(), Some(name.as_str()));
    }

    /// Any template that parses renders with any values, and keeps its own text.
    #[test]
    fn parsed_templates_render_anything(source in input(), value in any::<String>()) {
        let source = text(&source);
        if let Ok(t) = Template::parse(&source) {
            prop_assert_eq!(t.as_str(), source.as_str());
            let event = event_with(&value, &value);
            for encoding in [Encoding::Url, Encoding::Json, Encoding::Form, Encoding::Raw] {
                let _ = t.render(&event, encoding);
            }
        }
        if let Ok(t) = UrlTemplate::parse(&source) {
            let _ = t.render(&event_with(&value, &value));
        }
    }

    /// Whatever the other headers say, a Host that is not this machine never passes on a loopback
    /// listener, and a page that is not trusted never counts as trusted.
    #[test]
    fn foreign_hosts_and_untrusted_pages_never_pass(
        host in input(), origin in proptest::option::of(input()), referer in proptest::option::of(input()),
        site in proptest::option::of(proptest::sample::select(vec!["cross-site", "same-site", "same-origin", "none", "garbage"])),
    ) {
        let config = SecurityConfig { trusted_origins: vec![TrustedOrigin::parse("https://crm.example").expect("origin")], ..SecurityConfig::default() };
        let (host, origin, referer) = (text(&host), origin.map(|o| text(&o)), referer.map(|r| text(&r)));
        let facts = RequestFacts {
            host: Some(&host),
            origin: origin.as_deref(),
            referer: referer.as_deref(),
            sec_fetch_site: site,
            peer_is_local: true,
            ..RequestFacts::default()
        };
        let verdict = classify(&facts, &config, true);
        if !is_loopback_host(&host) {
            prop_assert!(verdict.is_err(), "{host:?} passed: {verdict:?}");
        }
        if let Ok(Caller::Trusted { origin: trusted }) = &verdict {
            prop_assert_eq!(trusted.as_str(), "https://crm.example");
        }
    }
}

/// One engine for all route cases: the real router with its guard, an in-memory store, no dial limit.
fn router() -> &'static (tokio::runtime::Runtime, axum::Router) {
    static ROUTER: OnceLock<(tokio::runtime::Runtime, axum::Router)> = OnceLock::new();
    ROUTER.get_or_init(|| {
        let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().expect("runtime");
        let router = runtime.block_on(async {
            let mut config = Config::default();
            config.security.dials_per_minute = 0;
            let services = Services::with_secrets(&config, Arc::new(MemorySecrets::default()));
            callbridge::listener::router(Engine::start_with(config, services))
        });
        (runtime, router)
    })
}

fn route_status(method: &str, path: &str, query: &str, content_type: Option<&str>, body: Vec<u8>) -> u16 {
    let (runtime, router) = router();
    let uri = if query.is_empty() { path.to_owned() } else { format!("{path}?{query}") };
    let mut request = Request::builder().method(method).uri(uri).header("host", "localhost:5678");
    if let Some(ct) = content_type {
        request = request.header("content-type", ct);
    }
    let request = request.body(Body::from(body)).expect("request");
    runtime.block_on(router.clone().oneshot(request)).unwrap_or_else(|e| match e {}).status().as_u16()
}

/// A query string: pieces the API reads (`before`, `limit`, `status`, `token`) and noise, or a
/// webhook's fields as a GET webhook sends them.
fn query() -> impl Strategy<Value = String> {
    prop_oneof![3 => api_query(), 2 => webhook_json().prop_map(|v| form_of(&v))]
}

fn api_query() -> impl Strategy<Value = String> {
    proptest::collection::vec(
        prop_oneof![
            "(before|limit|status|token|x)=[-0-9a-z%+]{0,12}",
            "[ -~]{0,12}",
        ],
        0..4,
    )
    .prop_map(|pieces| pieces.iter().map(|p| percent_encode_query(p)).collect::<Vec<_>>().join("&"))
}

/// The administration routes. `{entry}` stands for each keyring entry a provider form names.
/// `POST /api/v1/lookup/test` is left out: a body that happened to configure a lookup URL would make
/// the test fetch it; the schemathesis run covers that route with its URLs kept on this machine.
const ADMIN_ROUTES: &[(&str, &str)] = &[
    ("PUT", "/api/v1/config"),
    ("POST", "/api/v1/notifications/test"),
    ("PUT", "/api/v1/secrets/{entry}"),
    ("DELETE", "/api/v1/secrets/{entry}"),
    ("POST", "/api/v1/deliveries/1/retry"),
];

/// A router with settings (saved to a private directory) and an in-memory keyring.
fn admin_router() -> &'static (tokio::runtime::Runtime, axum::Router) {
    static ROUTER: OnceLock<(tokio::runtime::Runtime, axum::Router)> = OnceLock::new();
    ROUTER.get_or_init(|| {
        let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().expect("runtime");
        let dir = std::env::temp_dir().join(format!("callbridge-fuzz-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("settings dir");
        let router = runtime.block_on(async {
            let mut config = Config::default();
            config.security.dials_per_minute = 0;
            let services = Services::with_secrets(&config, Arc::new(MemorySecrets::default()));
            Settings::new(Engine::start_with(config, services), Some(dir.join("callbridge.toml")), None, callbridge::listener::router).router()
        });
        (runtime, router)
    })
}

fn admin_status(method: &str, path: &str, content_type: Option<&str>, body: Vec<u8>) -> u16 {
    let (runtime, router) = admin_router();
    let mut request = Request::builder().method(method).uri(path).header("host", "localhost:5678");
    if let Some(ct) = content_type {
        request = request.header("content-type", ct);
    }
    let request = request.body(Body::from(body)).expect("request");
    runtime.block_on(router.clone().oneshot(request)).unwrap_or_else(|e| match e {}).status().as_u16()
}

/// The default config as JSON, with the value at one of its paths replaced by `value` (or a new key).
fn config_with(path_index: usize, value: serde_json::Value) -> Vec<u8> {
    fn paths(v: &serde_json::Value, prefix: &mut Vec<String>, out: &mut Vec<Vec<String>>) {
        if let Some(map) = v.as_object() {
            for (k, child) in map {
                prefix.push(k.clone());
                out.push(prefix.clone());
                paths(child, prefix, out);
                prefix.pop();
            }
        }
    }
    let mut config = serde_json::to_value(Config::default()).expect("config as JSON");
    let mut all = Vec::new();
    paths(&config, &mut Vec::new(), &mut all);
    all.push(vec!["lookup".into(), "timeout_ms".into()]);
    all.push(vec!["provider".into(), "telecmi".into(), "hangup_settle_ms".into()]);
    let path = &all[path_index % all.len()];
    let mut at = &mut config;
    for key in &path[..path.len() - 1] {
        if !at.get(key).is_some_and(serde_json::Value::is_object) {
            if let Some(map) = at.as_object_mut() {
                map.insert(key.clone(), serde_json::json!({}));
            }
        }
        match at.get_mut(key) {
            Some(next) => at = next,
            None => return config.to_string().into_bytes(),
        }
    }
    if let (Some(map), Some(last)) = (at.as_object_mut(), path.last()) {
        map.insert(last.clone(), value);
    }
    config.to_string().into_bytes()
}

/// Any JSON value, numbers at the edges of every integer type included.
fn any_json() -> impl Strategy<Value = serde_json::Value> {
    let leaf = prop_oneof![
        Just(serde_json::Value::Null),
        any::<bool>().prop_map(serde_json::Value::from),
        any::<i64>().prop_map(serde_json::Value::from),
        any::<u64>().prop_map(serde_json::Value::from),
        proptest::sample::select(vec![0u64, 1, 65_535, 65_536, u64::from(u32::MAX), 1 << 53, 1 << 63, u64::MAX]).prop_map(serde_json::Value::from),
        any::<f64>().prop_map(serde_json::Value::from),
        "[ -~]{0,24}".prop_map(serde_json::Value::from),
    ];
    leaf.prop_recursive(2, 8, 4, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..4).prop_map(serde_json::Value::from),
            proptest::collection::btree_map("[a-z_]{1,8}", inner, 0..4).prop_map(|m| serde_json::Value::Object(m.into_iter().collect())),
        ]
    })
}

fn admin_body() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        2 => input(),
        3 => (any::<usize>(), any_json()).prop_map(|(i, v)| config_with(i, v)),
        2 => any_json().prop_map(|rule| serde_json::json!({ "rule": rule }).to_string().into_bytes()),
        1 => any_json().prop_map(|value| serde_json::json!({ "value": value }).to_string().into_bytes()),
    ]
}

fn admin_paths() -> Vec<(&'static str, String)> {
    let entries = callbridge::provider::registry::writable_secret_entries(&callbridge::Config::default().provider);
    ADMIN_ROUTES
        .iter()
        .flat_map(|(method, path)| {
            if path.contains("{entry}") {
                entries.iter().map(|e| (*method, path.replace("{entry}", e))).collect::<Vec<_>>()
            } else {
                vec![(*method, (*path).to_owned())]
            }
        })
        .collect()
}

#[test]
fn every_route_survives_the_corpus() {
    for (method, path) in ROUTES {
        for body in corpus() {
            for content_type in CONTENT_TYPES {
                let status = route_status(method, path, "", *content_type, body.clone());
                assert!(status != 500, "{method} {path} ({content_type:?}) answered 500 to {:?}", text(body));
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: ProptestConfig::default().cases.min(512), ..ProptestConfig::default() })]

    #[test]
    fn every_route_answers_any_request_without_failing(
        route in proptest::sample::select(ROUTES.to_vec()),
        content_type in proptest::sample::select(CONTENT_TYPES.to_vec()),
        body in input(),
        query in query(),
        number in "[ -~]{0,24}",
    ) {
        let (method, path) = route;
        // The URL command takes its number in the path.
        let path = if path.ends_with('/') { format!("{path}{}", percent_encode_path(&number)) } else { path.to_owned() };
        let status = route_status(method, &path, &query, content_type, body.clone());
        prop_assert!(status != 500, "{} {}?{} answered 500 to {:?}", method, path, query, text(&body));
        prop_assert!((200..600).contains(&status));
    }
}

fn event_with(number: &str, name: &str) -> CallEvent {
    let mut call = Call::new(Direction::In, number, "simulator");
    call.remote_name = Some(name.to_owned());
    call.local_extension = Some(name.to_owned());
    CallEvent { kind: CallEventKind::Incoming, at: call.started_at, call }
}

fn percent_decode(s: &str) -> String {
    percent_encoding::percent_decode_str(s).decode_utf8_lossy().into_owned()
}

fn percent_encode_path(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string()
}

fn percent_encode_query(s: &str) -> String {
    const QUERY: &percent_encoding::AsciiSet = &percent_encoding::CONTROLS.add(b' ').add(b'"').add(b'#').add(b'<').add(b'>').add(b'&');
    percent_encoding::utf8_percent_encode(s, QUERY).to_string()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: ProptestConfig::default().cases.min(512), ..ProptestConfig::default() })]

    #[test]
    fn every_admin_route_answers_any_request_without_failing(
        route in proptest::sample::select(admin_paths()),
        content_type in proptest::sample::select(vec![Some("application/json"), None, Some("text/plain")]),
        body in admin_body(),
    ) {
        let (method, path) = route;
        let status = admin_status(method, &path, content_type, body.clone());
        prop_assert!(status != 500, "{} {} answered 500 to {:?}", method, path, text(&body));
        prop_assert!((200..600).contains(&status));
    }
}

/// The administration router really has its settings: the default config saves (200), and a value
/// out of range is refused with 400 — not 501, which a router without settings would answer.
#[test]
fn the_admin_router_runs_the_settings_handlers() {
    let default = serde_json::to_vec(&Config::default()).expect("config as JSON");
    assert_eq!(admin_status("PUT", "/api/v1/config", Some("application/json"), default), 200);
    let huge = config_with(0, serde_json::json!(u64::MAX));
    let status = admin_status("PUT", "/api/v1/config", Some("application/json"), huge.clone());
    assert!(status == 400, "{status} for {}", text(&huge));
}
