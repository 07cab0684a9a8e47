//! What a webhook sent — a JSON body, or fields: a form body and/or the query string — read the same
//! way for every provider's webhook, with one answer for a request that cannot be taken.
//!
//! PBXs differ: ELMA365-style modules post JSON, VoipNow sends its parameters in the query string
//! (GET) or a form body (POST), Kazoo posts JSON or form data, TeleCMI posts JSON (or sends a GET).
//! Form fields named like `custom_channel_vars[account_id]` are nested, as PHP-style forms mean them.
//! Bodies are limited by the listener as every request is ([`crate::listener::guard::MAX_BODY_BYTES`]).

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::http::{header, HeaderMap, StatusCode};
use serde_json::{Map, Value};

use crate::listener::error::ApiError;

/// The error code of every webhook request that cannot be taken (400).
pub const BAD_WEBHOOK: &str = "bad_webhook";

#[derive(Debug, Clone, PartialEq)]
pub enum Payload {
    Json(Value),
    /// Form and query fields as a JSON object of strings (nested for `a[b]` names).
    Fields(Value),
}

impl Payload {
    /// The JSON body, or the fields as a JSON object.
    pub fn into_value(self) -> Value {
        match self {
            Payload::Json(v) | Payload::Fields(v) => v,
        }
    }
}

/// The answer to a request to the `webhook` (`telecmi`, `kazoo`, `generic`) that cannot be taken: 400
/// `bad_webhook`, saying which webhook and what was wrong.
pub fn refused(webhook: &str, why: impl std::fmt::Display) -> ApiError {
    ApiError::new(StatusCode::BAD_REQUEST, BAD_WEBHOOK, format!("{webhook} webhook: {why}"))
}

/// Reads a request to the `webhook`: its body (413 `too_large` past the listener's limit), then
/// [`parse`]; what cannot be read is [`refused`].
pub fn read(webhook: &str, headers: &HeaderMap, query: Option<&str>, body: Result<Bytes, BytesRejection>) -> Result<Payload, ApiError> {
    let body = body.map_err(|e| match e.status() {
        StatusCode::PAYLOAD_TOO_LARGE => ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "too_large", e.body_text()),
        _ => refused(webhook, format!("the body could not be read: {}", e.body_text())),
    })?;
    parse(headers, query, &body).map_err(|why| refused(webhook, why))
}

/// What the request holds; `Err` says what was wrong with it. JSON when the content type says so, or
/// when there is none (or a textual one) and the body is not form fields (`a=b&c=d`); form fields
/// (the body's and the query string's) otherwise. A request with neither a body nor a query is refused.
pub fn parse(headers: &HeaderMap, query: Option<&str>, body: &Bytes) -> Result<Payload, String> {
    let content_type = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or_default().to_ascii_lowercase();
    let body_text = std::str::from_utf8(body).map_err(|_| "the body is not UTF-8 text".to_owned())?;
    let trimmed = body_text.trim();
    if content_type.starts_with("multipart/") {
        return Err("multipart bodies are not accepted; send JSON or application/x-www-form-urlencoded".into());
    }
    let is_form = content_type.starts_with("application/x-www-form-urlencoded");
    let looks_json = trimmed.starts_with('{') || trimmed.starts_with('[');
    let looks_form = trimmed.is_empty() || (trimmed.contains('=') && !looks_json);
    if content_type.contains("json") || (!is_form && !looks_form) {
        return serde_json::from_str(body_text).map(Payload::Json).map_err(|e| format!("the body is not valid JSON: {e}"));
    }
    let query = query.unwrap_or_default();
    if trimmed.is_empty() && query.is_empty() {
        return Err("nothing was sent: the request has no body and no query parameters".into());
    }
    let mut fields = Map::new();
    for source in [query, body_text] {
        for (key, value) in form_urlencoded::parse(source.as_bytes()) {
            insert(&mut fields, &key, value.into_owned());
        }
    }
    Ok(Payload::Fields(Value::Object(fields)))
}

/// `a[b][c]=v` → `{"a":{"b":{"c":"v"}}}`; a plain key is set as is. Later values win.
fn insert(fields: &mut Map<String, Value>, key: &str, value: String) {
    let mut parts = key.split('[').map(|p| p.trim_end_matches(']'));
    let Some(first) = parts.next() else { return };
    let rest: Vec<&str> = parts.collect();
    if rest.is_empty() {
        fields.insert(first.to_owned(), Value::String(value));
        return;
    }
    let mut node = fields.entry(first.to_owned()).or_insert_with(|| Value::Object(Map::new()));
    for part in rest {
        if !node.is_object() {
            *node = Value::Object(Map::new());
        }
        let Some(map) = node.as_object_mut() else { return };
        node = map.entry(part.to_owned()).or_insert(Value::Null);
    }
    *node = Value::String(value);
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;
    use serde_json::json;

    fn headers(content_type: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        if let Ok(v) = HeaderValue::from_str(content_type) {
            h.insert(header::CONTENT_TYPE, v);
        }
        h
    }

    #[test]
    fn json_bodies() {
        let got = parse(&headers("application/json"), None, &Bytes::from_static(br#"{"event":"NotifyStart"}"#));
        assert_eq!(got, Ok(Payload::Json(json!({"event": "NotifyStart"}))));
        let got = parse(&headers(""), None, &Bytes::from_static(br#" {"a":1}"#));
        assert_eq!(got, Ok(Payload::Json(json!({"a": 1}))), "JSON without a content type");
        let err = parse(&headers("application/json"), None, &Bytes::from_static(b"{oops")).expect_err("bad JSON");
        assert!(err.contains("not valid JSON"), "{err}");
    }

    #[test]
    fn form_bodies_and_query_strings_merge_with_nesting() {
        let got = parse(
            &headers("application/x-www-form-urlencoded"),
            Some("ev=dialin&CallID=q"),
            &Bytes::from_static(b"CallID=123&CallerIDNum=%2B4420&custom_channel_vars[account_id]=acc"),
        );
        assert_eq!(
            got,
            Ok(Payload::Fields(json!({
                "ev": "dialin", "CallID": "123", "CallerIDNum": "+4420",
                "custom_channel_vars": {"account_id": "acc"}
            })))
        );
        let got = parse(&HeaderMap::new(), Some("CallID=9"), &Bytes::new());
        assert_eq!(got, Ok(Payload::Fields(json!({"CallID": "9"}))));
    }

    #[test]
    fn without_a_form_content_type_a_body_is_json_unless_it_is_form_fields() {
        for content_type in ["", "text/plain"] {
            let got = parse(&headers(content_type), None, &Bytes::from_static(br#"{"type":"event"}"#));
            assert_eq!(got, Ok(Payload::Json(json!({"type": "event"}))), "{content_type:?}");
            let err = parse(&headers(content_type), None, &Bytes::from_static(b"not json")).expect_err("neither JSON nor a form");
            assert!(err.contains("not valid JSON"), "{content_type:?}: {err}");
            let got = parse(&headers(content_type), None, &Bytes::from_static(b"CallID=1&ev=answer"));
            assert_eq!(got, Ok(Payload::Fields(json!({"CallID": "1", "ev": "answer"}))), "{content_type:?}");
        }
        let got = parse(&headers("application/x-www-form-urlencoded"), None, &Bytes::from_static(b"{x"));
        assert_eq!(got, Ok(Payload::Fields(json!({"{x": ""}))), "a declared form is read as one");
    }

    #[test]
    fn a_request_with_no_body_and_no_query_is_refused() {
        let err = parse(&HeaderMap::new(), None, &Bytes::new()).expect_err("nothing sent");
        assert!(err.contains("no body and no query parameters"), "{err}");
        let err = parse(&headers("application/x-www-form-urlencoded"), Some(""), &Bytes::from_static(b"  ")).expect_err("blank");
        assert!(err.contains("nothing was sent"), "{err}");
    }

    #[test]
    fn refusals_are_400_bad_webhook_naming_the_webhook() {
        let err = refused("telecmi", "the body is not valid JSON");
        assert_eq!(err.status, StatusCode::BAD_REQUEST);
        assert_eq!(err.code, BAD_WEBHOOK);
        assert_eq!(err.message, "telecmi webhook: the body is not valid JSON");
    }

    #[test]
    fn multipart_and_binary_are_refused() {
        assert!(parse(&headers("multipart/form-data; boundary=x"), None, &Bytes::from_static(b"--x")).is_err());
        assert!(parse(&HeaderMap::new(), None, &Bytes::from_static(&[0xff, 0xfe])).is_err());
    }
}
