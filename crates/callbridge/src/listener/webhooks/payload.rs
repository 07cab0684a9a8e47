//! What a webhook sent: a JSON body, or fields — a form body and/or the query string.
//!
//! PBXs differ: ELMA365-style modules post JSON, VoipNow sends its parameters in the query string
//! (GET) or a form body (POST), Kazoo posts JSON or form data. Form fields named like
//! `custom_channel_vars[account_id]` are nested, as PHP-style forms mean them.

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::http::{header, HeaderMap, StatusCode};
use serde_json::{Map, Value};

use crate::listener::ApiError;

/// The largest webhook body read; real ones are a few KiB.
pub const MAX_BODY: usize = 256 * 1024;

#[derive(Debug, Clone, PartialEq)]
pub enum Payload {
    Json(Value),
    /// Form and query fields as a JSON object of strings (nested for `a[b]` names).
    Fields(Value),
}

/// The body, or an error that says why it could not be read (too large, or cut off).
pub fn body(body: Result<Bytes, BytesRejection>) -> Result<Bytes, ApiError> {
    body.map_err(|e| match e.status() {
        StatusCode::PAYLOAD_TOO_LARGE => ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "too_large", e.body_text()),
        _ => ApiError::bad_request(format!("the body could not be read: {}", e.body_text())),
    })
}

/// Reads the request; `Err` says what was wrong with it.
pub fn read(headers: &HeaderMap, query: Option<&str>, body: &Bytes) -> Result<Payload, String> {
    let content_type = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or_default().to_ascii_lowercase();
    let body_text = std::str::from_utf8(body).map_err(|_| "the body is not UTF-8 text".to_owned())?;
    let looks_json = body_text.trim_start().starts_with('{') || body_text.trim_start().starts_with('[');
    if content_type.contains("json") || (content_type.is_empty() && looks_json) {
        return serde_json::from_str(body_text).map(Payload::Json).map_err(|e| format!("the body is not valid JSON: {e}"));
    }
    if content_type.starts_with("multipart/") {
        return Err("multipart bodies are not accepted; send JSON or application/x-www-form-urlencoded".into());
    }
    let mut fields = Map::new();
    for source in [query.unwrap_or_default(), body_text] {
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
        let got = read(&headers("application/json"), None, &Bytes::from_static(br#"{"event":"NotifyStart"}"#));
        assert_eq!(got, Ok(Payload::Json(json!({"event": "NotifyStart"}))));
        let got = read(&headers(""), None, &Bytes::from_static(br#" {"a":1}"#));
        assert_eq!(got, Ok(Payload::Json(json!({"a": 1}))), "JSON without a content type");
        let err = read(&headers("application/json"), None, &Bytes::from_static(b"{oops")).expect_err("bad JSON");
        assert!(err.contains("not valid JSON"), "{err}");
    }

    #[test]
    fn form_bodies_and_query_strings_merge_with_nesting() {
        let got = read(
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
        let got = read(&HeaderMap::new(), Some("CallID=9"), &Bytes::new());
        assert_eq!(got, Ok(Payload::Fields(json!({"CallID": "9"}))));
    }

    #[test]
    fn multipart_and_binary_are_refused() {
        assert!(read(&headers("multipart/form-data; boundary=x"), None, &Bytes::from_static(b"--x")).is_err());
        assert!(read(&HeaderMap::new(), None, &Bytes::from_static(&[0xff, 0xfe])).is_err());
    }
}
