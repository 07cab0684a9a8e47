//! Notifications: telling the CRM that a call rings, was answered or ended.
//!
//! The [`Notifier`] turns each [`CallEvent`] into one [`Delivery`] per active rule that matches it
//! (three URLs for incoming, answered and ended calls, or VoipNow-style per-event rows), rendering the
//! URL, headers and body from the rule's templates. It hands deliveries to an [`Outbox`], the one seam
//! through which requests are sent: [`durable::DurableOutbox`] keeps deliveries in the SQLite store,
//! sends them in order per call and endpoint, retries them until they arrive, and records every
//! attempt in the [`DeliveryLog`].

pub mod sample;
pub mod durable;
pub mod template;

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use serde::Serialize;
use crate::call::{CallEvent, CallId};
use crate::config::notification::{Method, NotificationRule};
use crate::store::Commit;
use template::{Encoding, Template};

pub use crate::delivery::{endpoint_of, Attempt, Delivery, IDEMPOTENCY_HEADER};

/// How much of the CRM's answer is read: enough for the log's [`Attempt::response`], never a large
/// body (the rest is not read; the connection is closed).
const ANSWER_READ_BYTES: usize = 2_048;

/// How much of the answer the log keeps, in characters.
const ANSWER_SHOWN_CHARS: usize = 500;

/// Sends one delivery once: the HTTP request itself, with the per-request timeout.
#[derive(Debug, Clone)]
pub struct Sender {
    client: reqwest::Client,
    timeout: Duration,
    connect_timeout: Duration,
}

impl Sender {
    /// `timeout` bounds a whole attempt: connecting, sending, and the CRM's answer with the part of its
    /// body that is read.
    pub fn new(timeout: Duration) -> Self {
        let connect_timeout = timeout.min(Duration::from_secs(5));
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(connect_timeout)
            .user_agent(concat!("CallBridge/", env!("CARGO_PKG_VERSION")))
            .build()
            // Building a client only fails when the TLS backend cannot initialise: nothing works then.
            .unwrap_or_else(|e| panic!("cannot build the HTTP client: {e}"));
        Sender { client, timeout, connect_timeout }
    }

    pub async fn send(&self, delivery: &Delivery) -> Attempt {
        let started = Instant::now();
        let method = if delivery.method == "POST" { reqwest::Method::POST } else { reqwest::Method::GET };
        let mut request = self.client.request(method, &delivery.url).header(IDEMPOTENCY_HEADER, &delivery.idempotency_key);
        for (name, value) in &delivery.headers {
            request = request.header(name.as_str(), value.as_str());
        }
        if let Some(body) = &delivery.body {
            request = request.body(body.clone());
        }
        let result = request.send().await;
        let elapsed_ms = started.elapsed().as_millis().try_into().unwrap_or(u64::MAX);
        match result {
            Ok(mut response) => {
                let status = response.status();
                let prefix = answer_prefix(&mut response).await;
                let text: String = String::from_utf8_lossy(&prefix).chars().take(ANSWER_SHOWN_CHARS).collect();
                let response = Some(text).filter(|t| !t.is_empty());
                let error = (!status.is_success()).then(|| format!("the CRM answered {status}"));
                Attempt { status: Some(status.as_u16()), error, response, elapsed_ms, permanent: false }
            }
            Err(e) => {
                let failure = self.describe(&e, &delivery.url);
                Attempt { status: None, error: Some(failure.message), response: None, elapsed_ms, permanent: failure.permanent }
            }
        }
    }

    /// A reqwest error in words a CRM admin understands, with the technical cause after them.
    fn describe(&self, e: &reqwest::Error, url: &str) -> Failure {
        let server = server_of(url);
        let detail = causes(e);
        let failure = |message: String, permanent: bool| Failure { message, permanent };
        if e.is_builder() {
            return failure(format!("the request cannot be built (a URL or header value HTTP does not allow){detail}"), true);
        }
        if e.is_redirect() {
            let last = e.url().map(|u| format!(", last to {u}")).unwrap_or_default();
            return failure(format!("too many redirects: the CRM kept redirecting (a redirect loop?){last}"), true);
        }
        if e.is_timeout() {
            return if e.is_connect() {
                failure(format!("timed out: no connection to {server} within {} s", self.connect_timeout.as_secs_f32()), false)
            } else {
                failure(format!("timed out: the CRM did not answer within {} s", self.timeout.as_secs_f32()), false)
            };
        }
        if has_io_error(e, std::io::ErrorKind::ConnectionRefused) {
            return failure(format!("could not connect: connection refused by {server} (is the CRM running, and is the port right?)"), false);
        }
        if e.is_connect() && detail.contains("dns error") {
            let host = url::Url::parse(url).ok().and_then(|u| u.host_str().map(str::to_owned)).unwrap_or_default();
            return failure(format!("could not connect: host name not found: {host}{detail}"), false);
        }
        let https = url::Url::parse(url).is_ok_and(|u| u.scheme() == "https");
        if e.is_connect() && https && !has_any_io_error(e, CONNECT_KINDS) {
            let hint = if detail.contains("InvalidContentType") { " (the port answers plain HTTP: should the URL be http://?)" } else { "" };
            return failure(format!("could not connect: TLS handshake failed with {server}{hint}{detail}"), false);
        }
        if e.is_connect() {
            return failure(format!("could not connect to {server}{detail}"), false);
        }
        if has_hyper_error(e, hyper::Error::is_parse) || has_hyper_error(e, hyper::Error::is_parse_status) {
            return failure(format!("not an HTTP answer from {server}{detail}"), false);
        }
        if has_hyper_error(e, hyper::Error::is_incomplete_message) || has_any_io_error(e, CLOSED_KINDS) {
            return failure(format!("the connection to {server} closed before the CRM answered{detail}"), false);
        }
        failure(format!("request failed{detail}"), false)
    }
}

/// An error's cause chain as `: cause: its cause…`, for after the plain words; the HTTP client's own
/// wrappers (`client error (Connect)`), which say nothing the words do not, are left out.
fn causes(e: &reqwest::Error) -> String {
    let mut detail = String::new();
    let mut source = std::error::Error::source(e);
    while let Some(cause) = source {
        let text = cause.to_string();
        if !text.starts_with("client error (") {
            detail.push_str(": ");
            detail.push_str(&text);
        }
        source = cause.source();
    }
    detail
}

/// A failed attempt's message and whether retrying can help.
struct Failure {
    message: String,
    permanent: bool,
}

/// Network errors that mean no connection was made (as opposed to one made and then failing).
const CONNECT_KINDS: &[std::io::ErrorKind] = &[
    std::io::ErrorKind::ConnectionRefused,
    std::io::ErrorKind::HostUnreachable,
    std::io::ErrorKind::NetworkUnreachable,
    std::io::ErrorKind::AddrNotAvailable,
];

/// Network errors that mean the other side closed the connection.
const CLOSED_KINDS: &[std::io::ErrorKind] =
    &[std::io::ErrorKind::ConnectionReset, std::io::ErrorKind::ConnectionAborted, std::io::ErrorKind::UnexpectedEof, std::io::ErrorKind::BrokenPipe];

fn has_io_error(e: &reqwest::Error, kind: std::io::ErrorKind) -> bool {
    has_any_io_error(e, &[kind])
}

fn has_any_io_error(e: &reqwest::Error, kinds: &[std::io::ErrorKind]) -> bool {
    let mut source = std::error::Error::source(e);
    while let Some(cause) = source {
        if cause.downcast_ref::<std::io::Error>().is_some_and(|io| kinds.contains(&io.kind())) {
            return true;
        }
        source = cause.source();
    }
    false
}

fn has_hyper_error(e: &reqwest::Error, test: fn(&hyper::Error) -> bool) -> bool {
    let mut source = std::error::Error::source(e);
    while let Some(cause) = source {
        if cause.downcast_ref::<hyper::Error>().is_some_and(test) {
            return true;
        }
        source = cause.source();
    }
    false
}

/// `host:port` of a URL, for messages; the URL itself when it does not parse.
fn server_of(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(u) => match (u.host_str(), u.port_or_known_default()) {
            (Some(host), Some(port)) => format!("{host}:{port}"),
            (Some(host), None) => host.to_owned(),
            _ => url.to_owned(),
        },
        Err(_) => url.to_owned(),
    }
}

/// The first [`ANSWER_READ_BYTES`] of the answer's body, however large it is; a body that breaks
/// off or takes too long ends the reading with what came.
async fn answer_prefix(response: &mut reqwest::Response) -> Vec<u8> {
    let mut prefix = Vec::new();
    while prefix.len() < ANSWER_READ_BYTES {
        match response.chunk().await {
            Ok(Some(chunk)) => {
                let room = ANSWER_READ_BYTES - prefix.len();
                prefix.extend(chunk.iter().take(room));
            }
            Ok(None) | Err(_) => break,
        }
    }
    prefix
}

/// One line of the delivery log.
#[derive(Debug, Clone, Serialize)]
pub struct DeliveryRecord {
    pub at: DateTime<Utc>,
    pub rule_id: String,
    pub event: String,
    pub call_id: CallId,
    pub method: &'static str,
    pub url: String,
    pub idempotency_key: String,
    pub attempt: u32,
    #[serde(flatten)]
    pub outcome: Attempt,
}

/// The most recent delivery attempts, newest last, for the API and the settings page.
#[derive(Debug, Default)]
pub struct DeliveryLog {
    records: Mutex<VecDeque<DeliveryRecord>>,
}

impl DeliveryLog {
    const KEEP: usize = 1_000;

    pub fn record(&self, delivery: &Delivery, attempt: u32, outcome: Attempt) {
        if outcome.succeeded() {
            tracing::info!(rule = %delivery.rule_id, event = %delivery.event, status = ?outcome.status, url = %delivery.url, "notification delivered");
        } else {
            tracing::warn!(rule = %delivery.rule_id, event = %delivery.event, error = ?outcome.error, url = %delivery.url, "notification failed");
        }
        let mut records = self.records.lock().unwrap_or_else(PoisonError::into_inner);
        if records.len() == Self::KEEP {
            records.pop_front();
        }
        records.push_back(DeliveryRecord {
            at: Utc::now(),
            rule_id: delivery.rule_id.clone(),
            event: delivery.event.clone(),
            call_id: delivery.call_id.clone(),
            method: delivery.method,
            url: delivery.url.clone(),
            idempotency_key: delivery.idempotency_key.clone(),
            attempt,
            outcome,
        });
    }

    /// Newest first.
    pub fn recent(&self, limit: usize) -> Vec<DeliveryRecord> {
        let records = self.records.lock().unwrap_or_else(PoisonError::into_inner);
        records.iter().rev().take(limit).cloned().collect()
    }
}

/// Where rendered deliveries go to be sent.
pub trait Outbox: Send + Sync + std::fmt::Debug {
    /// Accepts deliveries for sending; the [`Commit`] says when they are durable. Must not block: it
    /// is called while call state is locked, which is also what keeps deliveries of one call in event
    /// order. The lock is let go before the commit is awaited.
    fn enqueue(&self, deliveries: Vec<Delivery>) -> Commit;

    /// Takes new delivery settings (timeouts, retry policy). Outboxes without settings ignore it.
    fn reconfigure(&self, _config: &crate::config::notification::DeliveryConfig) {}
}

/// Renders call events into deliveries for the configured rules.
#[derive(Debug)]
pub struct Notifier {
    rules: RwLock<Arc<Vec<NotificationRule>>>,
    outbox: Arc<dyn Outbox>,
}

impl Notifier {
    pub fn new(rules: Vec<NotificationRule>, outbox: Arc<dyn Outbox>) -> Self {
        Notifier { rules: RwLock::new(Arc::new(rules)), outbox }
    }

    pub fn set_rules(&self, rules: Vec<NotificationRule>) {
        *self.rules.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(rules);
    }

    /// Queues the deliveries `event` calls for; their commit, if there are any.
    pub fn notify(&self, event: &CallEvent) -> Option<Commit> {
        let rules = Arc::clone(&self.rules.read().unwrap_or_else(PoisonError::into_inner));
        let deliveries: Vec<Delivery> = rules
            .iter()
            .filter(|rule| rule.active && rule.event == event.kind)
            .filter(|rule| rule.direction.is_none_or(|d| d == event.call.direction))
            .map(|rule| render(rule, event))
            .collect();
        (!deliveries.is_empty()).then(|| self.outbox.enqueue(deliveries))
    }
}

/// The request `rule` makes for `event`.
pub fn render(rule: &NotificationRule, event: &CallEvent) -> Delivery {
    let mut headers: Vec<(String, String)> = rule
        .headers
        .iter()
        .map(|(name, value)| (name.clone(), value.render(event, Encoding::Raw).replace(['\r', '\n'], " ")))
        .collect();
    let body = match rule.method {
        Method::Get => None,
        Method::Post => Some(match &rule.body {
            Some(template) => {
                let (encoding, content_type) = body_encoding(template, &headers);
                if let Some(ct) = content_type {
                    headers.push(("Content-Type".into(), ct.into()));
                }
                template.render(event, encoding)
            }
            None => {
                if !has_header(&headers, "content-type") {
                    headers.push(("Content-Type".into(), "application/json".into()));
                }
                default_body(event)
            }
        }),
    };
    Delivery {
        rule_id: rule.id.clone(),
        event: event.kind.as_str().to_owned(),
        call_id: event.call.id.clone(),
        method: match rule.method {
            Method::Get => "GET",
            Method::Post => "POST",
        },
        url: rule.url.render(event),
        headers,
        body,
        idempotency_key: format!("{}:{}:{}", event.call.id, event.kind, rule.id),
    }
}

fn has_header(headers: &[(String, String)], name: &str) -> bool {
    headers.iter().any(|(n, _)| n.eq_ignore_ascii_case(name))
}

/// How to encode values in a body, from the rule's Content-Type or, without one, from the body's
/// shape (JSON if it looks like JSON, else a form). Returns the Content-Type to add, if any.
fn body_encoding(template: &Template, headers: &[(String, String)]) -> (Encoding, Option<&'static str>) {
    if let Some((_, ct)) = headers.iter().find(|(n, _)| n.eq_ignore_ascii_case("content-type")) {
        let ct = ct.to_ascii_lowercase();
        let encoding = if ct.contains("json") {
            Encoding::Json
        } else if ct.contains("x-www-form-urlencoded") {
            Encoding::Form
        } else {
            Encoding::Raw
        };
        return (encoding, None);
    }
    let trimmed = template.as_str().trim_start();
    if trimmed.starts_with('{') || trimmed.starts_with('[') {
        (Encoding::Json, Some("application/json"))
    } else {
        (Encoding::Form, Some("application/x-www-form-urlencoded"))
    }
}

/// The body of a POST rule without a body template: the event and the call as JSON.
pub fn default_body(event: &CallEvent) -> String {
    serde_json::json!({
        "event": event.kind,
        "timestamp": template::rfc3339(event.at),
        "callerid": event.call.remote_number,
        "call": event.call,
    })
    .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::call::{Call, CallEventKind, Direction};
    use template::UrlTemplate;

    fn rule(method: Method, body: Option<&str>, headers: &[(&str, &str)]) -> NotificationRule {
        NotificationRule {
            id: "r1".into(),
            event: CallEventKind::Incoming,
            direction: None,
            method,
            url: UrlTemplate::parse("https://crm.example/in?callerid=$callerid&name=$name").expect("url"),
            body: body.map(|b| Template::parse(b).expect("body")),
            headers: headers.iter().map(|(k, v)| (k.to_string(), Template::parse(v).expect("header"))).collect(),
            active: true,
            note: String::new(),
        }
    }

    fn event() -> CallEvent {
        let mut call = Call::new(Direction::In, "+44 20", "simulator");
        call.remote_name = Some("Zoë & \"Co\"".into());
        CallEvent { kind: CallEventKind::Incoming, at: call.started_at, call }
    }

    #[test]
    fn get_rule_renders_the_url_only() {
        let e = event();
        let d = render(&rule(Method::Get, None, &[]), &e);
        assert_eq!(d.method, "GET");
        assert_eq!(d.url, "https://crm.example/in?callerid=%2B44%2020&name=Zo%C3%AB%20%26%20%22Co%22");
        assert!(d.body.is_none());
        assert_eq!(d.idempotency_key, format!("{}:incoming:r1", e.call.id));
    }

    #[test]
    fn post_without_a_body_sends_the_call_as_json() {
        let e = event();
        let d = render(&rule(Method::Post, None, &[]), &e);
        let body: serde_json::Value = serde_json::from_str(d.body.as_deref().unwrap_or_default()).expect("JSON");
        assert_eq!(body["event"], "incoming");
        assert_eq!(body["callerid"], "+44 20");
        assert_eq!(body["call"]["id"], e.call.id.as_str());
        assert!(d.headers.contains(&("Content-Type".into(), "application/json".into())));
    }

    #[test]
    fn body_encoding_follows_content_type_or_shape() {
        let e = event();
        let json = render(&rule(Method::Post, Some(r#"{"who":"$name"}"#), &[]), &e);
        let v: serde_json::Value = serde_json::from_str(json.body.as_deref().unwrap_or_default()).expect("JSON");
        assert_eq!(v["who"], "Zoë & \"Co\"");
        let form = render(&rule(Method::Post, Some("who=$name"), &[]), &e);
        assert_eq!(form.body.as_deref(), Some("who=Zo%C3%AB+%26+%22Co%22"));
        assert!(form.headers.contains(&("Content-Type".into(), "application/x-www-form-urlencoded".into())));
        let plain = render(&rule(Method::Post, Some("who: $name"), &[("Content-Type", "text/plain")]), &e);
        assert_eq!(plain.body.as_deref(), Some("who: Zoë & \"Co\""));
    }

    #[test]
    fn header_values_cannot_inject_lines() {
        let mut e = event();
        e.call.remote_name = Some("evil\r\nX-Injected: 1".into());
        let d = render(&rule(Method::Get, None, &[("X-Caller", "$name")]), &e);
        assert_eq!(d.headers[0].1, "evil  X-Injected: 1");
    }
}
