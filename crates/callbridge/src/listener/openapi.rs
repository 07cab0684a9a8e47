//! The listener's routes and their OpenAPI 3.1 document, served at `GET /api/v1/openapi.json`.
//!
//! Every route is registered through [`table::route!`] from a handler annotated with
//! `#[utoipa::path]`, so the route table and the document come from one description: a route cannot
//! be served without being in the document. The document is built from that table each time it is
//! asked for, not when the listener starts (see [`table`] for why). The URL commands' segments are
//! configurable (`[listener] make`, `answer`, `end`); the document shows the ones this listener serves.
//!
//! Two kinds of answer are added to every operation here rather than on each handler: the security
//! guard's refusals (401, 403, 413, and 503 when the token cannot be read; see
//! [`super::guard`]), and the JSON error body (`{"ok":false,"error":code,"message":…}`, see
//! [`super::ApiError`]) on every 4xx and 5xx answer that names no body of its own.

pub mod model;
pub mod table;

use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json, Router};
use serde::Serialize;
use utoipa::openapi::path::Operation;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{Content, OpenApi as Document, Ref, RefOr, Response as DocResponse};
use utoipa::{Modify, OpenApi, ToSchema};
use utoipa_axum::router::OpenApiRouter;

use self::table::{route, Documentation, Routes};
use super::{api, commands, ui, webhooks};
use crate::config::ListenerConfig;
use crate::engine::Engine;

/// Where the document is served.
pub const PATH: &str = "/api/v1/openapi.json";

/// The error body of every refused or failed request.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    /// Always `false`.
    pub ok: bool,
    /// A stable code: `bad_request`, `bad_number`, `invalid`, `refused`, `bad_host`, `token_required`,
    /// `bad_token`, `token_unavailable`, `too_large`, `unknown_path`, `unknown_call`, `unknown_delivery`,
    /// `unknown_secret`, `method_not_allowed`, `no_call`, `already_delivered`, `not_configured`,
    /// `throttled`, `not_supported`, `provider_rejected`, `provider_unreachable`, `provider_timeout`,
    /// `provider_not_configured`, `store_failed`, `write_failed`, `keyring_failed`, `keyring_unavailable`,
    /// `bad_webhook`.
    pub error: String,
    /// What was wrong, in a sentence for people.
    pub message: String,
    /// With `invalid`: the setting at fault, as a dotted path (`listener.port`).
    #[schema(required = false)]
    pub field: Option<String>,
}

/// `{"ok":true}`.
#[derive(Debug, Serialize, ToSchema)]
pub struct Health {
    pub ok: bool,
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "CallBridge listener",
        description = "The local HTTP listener of CallBridge: URL commands from a CRM, the JSON API under \
/api/v1/ used by the settings page, the CLI and scripts, provider webhooks under /webhooks/, the pages under /ui/, \
and /health.\n\nThe URL command segments (/make/{number}, /answer, /end by default) are configurable \
([listener] make, answer, end); this document shows the ones the listener that served it uses.\n\n\
Requests from this machine without an Origin need no token. Requests from other machines need the listener \
token, as `Authorization: Bearer TOKEN` or `?token=TOKEN`; web pages that are not trusted may only dial \
(see docs/security.md). Every error is JSON: {\"ok\":false,\"error\":code,\"message\":…}.",
        license(name = "MIT OR Apache-2.0")
    ),
    tags(
        (name = "commands", description = "URL commands from the CRM (segments configurable)"),
        (name = "calls", description = "Calls: status, history, dial, answer, hang up"),
        (name = "deliveries", description = "The log of notifications sent to the CRM"),
        (name = "settings", description = "Configuration, notification tests, phone-system forms and secrets"),
        (name = "webhooks", description = "Call events pushed by phone systems"),
        (name = "pages", description = "The settings page and popups for a browser"),
        (name = "meta", description = "Health and this document"),
    ),
    components(schemas(ErrorBody)),
    modifiers(&BearerToken)
)]
struct ApiDoc;

/// The listener token as a bearer scheme, optional for requests from this machine.
struct BearerToken;

impl Modify for BearerToken {
    fn modify(&self, doc: &mut Document) {
        let components = doc.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "token",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some("The listener token (`callbridge token show`); needed from other machines only."))
                    .build(),
            ),
        );
    }
}

/// Every route of the listener for `listener`'s command segments, with `GET /api/v1/openapi.json`.
pub fn routes(listener: &ListenerConfig) -> Router<Engine> {
    let (router, documentation) = table(listener).split();
    router.layer(Extension(documentation))
}

/// The routes and their document, built at once (for tests and tools).
pub fn documented(listener: &ListenerConfig) -> (Router<Engine>, Document) {
    let (router, documentation) = table(listener).split();
    (router, document(&documentation))
}

fn table(listener: &ListenerConfig) -> Routes {
    Routes::new()
        .merge(commands::routes(listener))
        .nest("/api/v1", api::routes().route(route!(openapi_json)))
        .nest("/webhooks", webhooks::routes())
        .merge(ui::routes())
        .route(route!(health))
}

/// The document of a router made by [`table`], as served.
fn document(documentation: &Documentation) -> Document {
    let (_, mut doc) = documentation.replay(OpenApiRouter::with_openapi(ApiDoc::openapi())).split_for_parts();
    complete_responses(&mut doc);
    doc
}

#[utoipa::path(get, path = "/health", tag = "meta", responses((status = 200, description = "The listener is up", body = Health)))]
async fn health() -> Json<Health> {
    Json(Health { ok: true })
}

#[utoipa::path(
    get,
    path = "/openapi.json",
    tag = "meta",
    responses((status = 200, description = "This document (OpenAPI 3.1)", content_type = "application/json", body = Object))
)]
async fn openapi_json(Extension(documentation): Extension<Documentation>) -> Response {
    match document(&documentation).to_json() {
        Ok(json) => ([(header::CONTENT_TYPE, "application/json")], json).into_response(),
        Err(e) => {
            tracing::error!(error = %e, "cannot write the OpenAPI document");
            super::error::ApiError::new(axum::http::StatusCode::INTERNAL_SERVER_ERROR, "internal", format!("cannot write the OpenAPI document: {e}"))
                .into_response()
        }
    }
}

/// The guard's refusals, which can answer any request before its route runs.
const GUARD: [(u16, &str); 4] = [
    (401, "No listener token from another machine, or a wrong one (`token_required`, `bad_token`)"),
    (403, "Refused by the security policy: a Host that is not this machine (`bad_host`), or a web page that is not trusted (`refused`)"),
    (413, "The request body is larger than 64 KiB (`too_large`)"),
    (503, "The listener token is needed but the keyring cannot be read (`token_unavailable`)"),
];

/// Adds the guard's answers to every operation, and the error body to every error answer without one.
fn complete_responses(doc: &mut Document) {
    let error = || Content::new(Some(RefOr::Ref(Ref::from_schema_name("ErrorBody"))));
    for item in doc.paths.paths.values_mut() {
        name_each_method(item);
        for operation in operations(item) {
            let responses = &mut operation.responses.responses;
            for (status, description) in GUARD {
                responses.entry(status.to_string()).or_insert_with(|| RefOr::T(DocResponse::new(description)));
            }
            for (status, response) in responses.iter_mut() {
                let is_error = status.starts_with('4') || status.starts_with('5');
                if let RefOr::T(response) = response {
                    if is_error && response.content.is_empty() {
                        response.content.insert("application/json".into(), error());
                    }
                }
            }
        }
    }
}

/// A handler served on GET and POST is one operation twice; its ids get the method, as ids are unique.
fn name_each_method(item: &mut utoipa::openapi::PathItem) {
    if let (Some(get), Some(post)) = (item.get.as_mut(), item.post.as_mut()) {
        if get.operation_id == post.operation_id {
            if let Some(id) = get.operation_id.take() {
                get.operation_id = Some(format!("{id}_get"));
                post.operation_id = Some(format!("{id}_post"));
            }
        }
    }
}

fn operations(item: &mut utoipa::openapi::PathItem) -> impl Iterator<Item = &mut Operation> {
    [&mut item.get, &mut item.put, &mut item.post, &mut item.delete, &mut item.options, &mut item.head, &mut item.patch, &mut item.trace]
        .into_iter()
        .filter_map(Option::as_mut)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use axum::body::Body;
    use axum::http::{Method, Request, StatusCode};
    use serde_json::{json, Value};
    use tower::ServiceExt;

    use super::*;
    use crate::config::Config;
    use crate::engine::{Engine, Services};
    use crate::secrets::MemorySecrets;

    fn router() -> Router {
        let mut config = Config::default();
        config.security.dials_per_minute = 0;
        let services = Services::with_secrets(&config, Arc::new(MemorySecrets::default()));
        crate::listener::router(Engine::start_with(config, services))
    }

    /// Sends a request as a local script would; the body is read unless it is an event stream.
    async fn send(router: &Router, method: &Method, path: &str, body: Option<Value>) -> (StatusCode, String, Value) {
        let mut request = Request::builder().method(method).uri(path).header("host", "localhost:5678");
        if body.is_some() {
            request = request.header("content-type", "application/json");
        }
        let body = body.map(|b| Body::from(b.to_string())).unwrap_or_default();
        let response = router.clone().oneshot(request.body(body).expect("request")).await.unwrap_or_else(|e| match e {});
        let status = response.status();
        let content_type =
            response.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
        if content_type.starts_with("text/event-stream") || !content_type.starts_with("application/json") {
            return (status, content_type, Value::Null);
        }
        let bytes = axum::body::to_bytes(response.into_body(), 1 << 20).await.expect("body");
        (status, content_type, serde_json::from_slice(&bytes).expect("a JSON body"))
    }

    async fn served_document(router: &Router) -> (Value, Document) {
        let (status, content_type, json) = send(router, &Method::GET, PATH, None).await;
        assert_eq!((status, content_type.as_str()), (StatusCode::OK, "application/json"));
        match serde_json::from_value::<Document>(json.clone()) {
            Ok(doc) => (json, doc),
            Err(e) => panic!("the served document is not an OpenAPI document: {e}; {}", unreadable_parts(&json)),
        }
    }

    /// Which schemas and paths of `json` do not read as utoipa's types.
    fn unreadable_parts(json: &Value) -> String {
        let mut parts = Vec::new();
        for (name, schema) in json["components"]["schemas"].as_object().into_iter().flatten() {
            if let Err(e) = serde_json::from_value::<RefOr<utoipa::openapi::schema::Schema>>(schema.clone()) {
                parts.push(format!("schema {name}: {e}: {schema}"));
            }
        }
        for (path, item) in json["paths"].as_object().into_iter().flatten() {
            if let Err(e) = serde_json::from_value::<utoipa::openapi::PathItem>(item.clone()) {
                parts.push(format!("path {path}: {e}"));
            }
        }
        parts.join("\n")
    }

    /// Every (method, path) of the document, with sample values in the path parameters.
    fn operations_of(doc: &Document) -> Vec<(Method, String, String)> {
        let mut all = Vec::new();
        for (path, item) in &doc.paths.paths {
            let concrete = path.replace("{number}", "+442079460000").replace("{name}", "settings.html").replace(['{', '}'], "");
            let methods = [
                (Method::GET, &item.get),
                (Method::PUT, &item.put),
                (Method::POST, &item.post),
                (Method::DELETE, &item.delete),
                (Method::PATCH, &item.patch),
            ];
            for (method, operation) in methods {
                if operation.is_some() {
                    all.push((method, path.clone(), concrete.clone()));
                }
            }
        }
        all
    }

    fn is_fallback(status: StatusCode, body: &Value) -> bool {
        (status == StatusCode::NOT_FOUND && body["message"].as_str().is_some_and(|m| m.starts_with("there is nothing at")))
            || (status == StatusCode::METHOD_NOT_ALLOWED && body["error"] == "method_not_allowed")
    }

    #[tokio::test]
    async fn the_served_document_is_openapi_and_every_operation_in_it_is_served() {
        let router = router();
        let (_, doc) = served_document(&router).await;
        let operations = operations_of(&doc);
        assert!(operations.len() >= 40, "only {} operations", operations.len());
        for (method, path, concrete) in &operations {
            let (status, _, body) = send(&router, method, concrete, None).await;
            assert!(!is_fallback(status, &body), "{method} {path} is documented but not served: {status} {body}");
        }
        // A method the document does not name for a path is not served there.
        for (path, item) in &doc.paths.paths {
            let concrete = operations.iter().find(|(_, p, _)| p == path).map(|(_, _, c)| c.clone()).expect("an operation");
            let named = [item.get.is_some(), item.put.is_some(), item.post.is_some(), item.delete.is_some(), item.patch.is_some()];
            for (method, named) in [Method::GET, Method::PUT, Method::POST, Method::DELETE, Method::PATCH].into_iter().zip(named) {
                if !named {
                    let (status, _, body) = send(&router, &method, &concrete, None).await;
                    assert!(is_fallback(status, &body), "{method} {path} is served but not documented: {status} {body}");
                }
            }
        }
    }

    /// Routes reach the router only through `route!` (which documents them): no listener module adds
    /// one with axum's own calls, which would bypass the document. The route table (`openapi/table.rs`)
    /// is the one place that builds the axum router, from the handlers' annotations.
    #[test]
    fn no_route_is_added_around_the_document() {
        // Every source file of the listener, read from disk, so a module added later is covered too.
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/listener");
        let mut files = vec![dir.clone()];
        let mut sources: Vec<(String, String)> = Vec::new();
        while let Some(path) = files.pop() {
            if path.is_dir() {
                files.extend(std::fs::read_dir(&path).expect("listener dir").map(|e| e.expect("entry").path()));
            } else if path.extension().is_some_and(|x| x == "rs") {
                let name = path.strip_prefix(&dir).unwrap_or(&path).display().to_string();
                sources.push((name, std::fs::read_to_string(&path).expect("read source")));
            }
        }
        assert!(sources.iter().any(|(name, _)| name == "api.rs"), "the listener's sources were found: {:?}", sources.iter().map(|s| &s.0).collect::<Vec<_>>());
        let bypasses = [
            concat!(".rou", "te("),
            concat!(".route_", "service("),
            concat!(".nest_", "service("),
            concat!(".fallback_", "service("),
            concat!("Router::", "new()"),
            concat!("axum::rou", "ting::"),
        ];
        let table = std::path::Path::new("openapi").join("table.rs").display().to_string();
        assert!(sources.iter().any(|(name, _)| *name == table), "the route table is among the sources");
        let sources: Vec<(String, String)> = sources.into_iter().filter(|(name, _)| *name != table).collect();
        for (file, source) in &sources {
            let source = source.replace(concat!("OpenApiRouter::", "new()"), "OpenApiRouter").replace(concat!(".rou", "te(route", "!("), "(");
            for bypass in bypasses {
                assert!(!source.contains(bypass), "listener/{file} uses {bypass}: register the route with route!(…) instead");
            }
        }
        // And every `route!(…)` handler is an operation of the document.
        let call = concat!("route", "!(");
        let handlers: usize = sources
            .iter()
            .flat_map(|(_, source)| {
                source.match_indices(call).filter(|(at, _)| source[..*at].ends_with('(') || source[..*at].ends_with(", ")).map(|(at, _)| &source[at + call.len()..])
            })
            .map(|args| args.split(')').next().unwrap_or_default().split(',').filter(|h| !h.trim().is_empty()).count())
            .sum();
        let (_, mut doc) = documented(&ListenerConfig::default());
        let mut ids: Vec<String> = doc
            .paths
            .paths
            .values_mut()
            .flat_map(|item| operations(item).map(|o| o.operation_id.clone().unwrap_or_default()).collect::<Vec<_>>())
            .map(|id| id.trim_end_matches("_get").trim_end_matches("_post").to_owned())
            .collect();
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), handlers, "handlers in route!(…) and operations of the document differ: {ids:?}");
    }

    #[test]
    fn operation_ids_are_unique() {
        let (_, mut doc) = documented(&ListenerConfig::default());
        let mut ids: Vec<String> =
            doc.paths.paths.values_mut().flat_map(|item| operations(item).map(|o| o.operation_id.clone().unwrap_or_default()).collect::<Vec<_>>()).collect();
        let all = ids.len();
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), all, "{ids:?}");
    }

    #[test]
    fn the_commands_are_documented_under_the_configured_segments() {
        let listener = ListenerConfig {
            make: crate::config::Segment::parse("call").expect("segment"),
            end: crate::config::Segment::parse("bye").expect("segment"),
            ..ListenerConfig::default()
        };
        let (_, doc) = documented(&listener);
        let paths: Vec<&String> = doc.paths.paths.keys().collect();
        for path in ["/call/{number}", "/call", "/call/", "/answer", "/bye"] {
            assert!(paths.iter().any(|p| *p == path), "{path} missing from {paths:?}");
        }
        assert!(!paths.iter().any(|p| p.starts_with("/make") || *p == "/end"), "{paths:?}");
    }

    /// Real answers of the engine checked against the schemas the document gives for them.
    #[tokio::test]
    async fn real_answers_match_their_schemas() {
        let router = router();
        let (doc, _) = served_document(&router).await;
        let ringing = send(&router, &Method::POST, "/api/v1/simulate/incoming", Some(json!({"number": "+442079460000", "name": "Ada"}))).await;
        let call_id = ringing.2["call_id"].as_str().expect("a call id").to_owned();
        let cases: Vec<(Method, &str, String, Option<Value>)> = vec![
            (Method::GET, "/health", "/health".into(), None),
            (Method::GET, "/api/v1/status", "/api/v1/status".into(), None),
            (Method::GET, "/api/v1/calls/{id}", format!("/api/v1/calls/{call_id}"), None),
            (Method::GET, "/api/v1/calls/{id}/crm-url", format!("/api/v1/calls/{call_id}/crm-url"), None),
            (Method::POST, "/api/v1/answer", "/api/v1/answer".into(), None),
            (Method::POST, "/api/v1/hangup", "/api/v1/hangup".into(), Some(json!({"call_id": call_id}))),
            (Method::POST, "/api/v1/dial", "/api/v1/dial".into(), Some(json!({"number": "+442079460001"}))),
            (Method::GET, "/end", "/end".into(), None),
            (Method::GET, "/make/{number}", "/make/0".into(), None),
            (Method::POST, "/make", "/make".into(), None),
            (Method::GET, "/api/v1/calls", "/api/v1/calls?limit=2".into(), None),
            (Method::GET, "/api/v1/deliveries", "/api/v1/deliveries?status=pending".into(), None),
            (Method::GET, "/api/v1/deliveries/{id}", "/api/v1/deliveries/1".into(), None),
            (Method::POST, "/api/v1/deliveries/{id}/retry", "/api/v1/deliveries/x/retry".into(), None),
            (Method::GET, "/api/v1/security", "/api/v1/security".into(), None),
            (Method::GET, "/api/v1/config", "/api/v1/config".into(), None),
            (Method::PUT, "/api/v1/config", "/api/v1/config".into(), Some(json!({}))),
            (Method::GET, "/api/v1/settings/schema", "/api/v1/settings/schema".into(), None),
            (Method::GET, "/api/v1/providers", "/api/v1/providers".into(), None),
            (Method::GET, "/api/v1/secrets", "/api/v1/secrets".into(), None),
            (Method::PUT, "/api/v1/secrets/{entry}", "/api/v1/secrets/nope".into(), Some(json!({"value": "x"}))),
            (Method::POST, "/api/v1/notifications/test", "/api/v1/notifications/test".into(), Some(json!({"rule": 5}))),
            (
                Method::POST,
                "/webhooks/generic",
                "/webhooks/generic".into(),
                Some(json!({"event": "NotifyStart", "direction": "in", "srcPhone": "+442079460002", "dstPhone": "101", "callId": "e-1"})),
            ),
            (Method::GET, "/webhooks/generic", "/webhooks/generic?ev=hangup&CallID=e-1&CallStatus=ANSWER".into(), None),
            (Method::POST, "/webhooks/kazoo", "/webhooks/kazoo".into(), Some(json!({"hook_event": "channel_create", "call_id": "k-1", "call_direction": "inbound", "caller_id_number": "+442079460003"}))),
            (Method::POST, "/webhooks/telecmi", "/webhooks/telecmi".into(), Some(json!({"type": "event"}))),
            (Method::GET, "/ui/{name}", "/ui/nothing.html".into(), None),
        ];
        for (method, path, concrete, body) in cases {
            let (status, content_type, answer) = send(&router, &method, &concrete, body).await;
            assert_eq!(content_type, "application/json", "{method} {concrete}");
            let schema = response_schema(&doc, path, &method, status.as_u16())
                .unwrap_or_else(|| panic!("{method} {concrete}: {status} is not documented ({answer})"));
            assert!(schema.is_object(), "{method} {concrete}: {status} is documented without a JSON schema");
            if let Err(e) = conforms(&doc, &schema, &answer, "") {
                panic!("{method} {concrete} answered {status} {answer}, which does not fit its schema: {e}");
            }
        }
        // A save from a stale copy, on a router that can change its settings.
        let settings = crate::settings::Settings::new(Engine::start_with(Config::default(), Services::with_secrets(&Config::default(), Arc::new(MemorySecrets::default()))), None, None, crate::listener::router);
        let (status, _, answer) = send(&settings.router(), &Method::PUT, "/api/v1/config", Some(json!({"revision": "0000000000000000"}))).await;
        assert_eq!((status.as_u16(), answer["error"].as_str()), (409, Some("stale")), "{answer}");
        let schema = response_schema(&doc, "/api/v1/config", &Method::PUT, 409).expect("409 documented");
        if let Err(e) = conforms(&doc, &schema, &answer, "") {
            panic!("the stale answer {answer} does not fit its schema: {e}");
        }
    }

    #[test]
    fn the_schema_check_refuses_what_does_not_fit() {
        let (_, doc) = documented(&ListenerConfig::default());
        let doc = serde_json::to_value(&doc).expect("document");
        let call = json!({"$ref": "#/components/schemas/Call"});
        let good = json!({"id": "c", "direction": "in", "remote_number": "+1", "state": "ringing", "provider": "simulator", "started_at": "2026-01-01T00:00:00Z"});
        assert_eq!(conforms(&doc, &call, &good, ""), Ok(()));
        let mut missing = good.clone();
        missing.as_object_mut().map(|o| o.remove("id"));
        assert!(conforms(&doc, &call, &missing, "").is_err());
        let mut wrong_enum = good.clone();
        wrong_enum["state"] = json!("sleeping");
        assert!(conforms(&doc, &call, &wrong_enum, "").is_err());
        let mut wrong_type = good;
        wrong_type["remote_name"] = json!(5);
        assert!(conforms(&doc, &call, &wrong_type, "").is_err());
        let config = json!({"$ref": "#/components/schemas/Config"});
        assert!(conforms(&doc, &config, &json!({"listener": {"port": 1}}), "").is_ok());
        assert!(conforms(&doc, &config, &json!({"listener": {"colour": "red"}}), "").is_err(), "unknown keys are refused");
    }

    /// The schema the document gives for `status` of an operation (exact status, then `4XX`/`5XX`).
    fn response_schema(doc: &Value, path: &str, method: &Method, status: u16) -> Option<Value> {
        let responses = &doc["paths"][path][method.as_str().to_ascii_lowercase()]["responses"];
        let response = responses.get(status.to_string()).or_else(|| responses.get(format!("{}XX", status / 100)))?;
        Some(response["content"]["application/json"]["schema"].clone())
    }

    /// A small JSON Schema check: `$ref`, `type` (one or a list), `properties`, `required`,
    /// `additionalProperties`, `items`, `enum`, `oneOf`, `anyOf`, `allOf` — what utoipa writes.
    fn conforms(doc: &Value, schema: &Value, value: &Value, at: &str) -> Result<(), String> {
        if let Some(reference) = schema["$ref"].as_str() {
            let name = reference.trim_start_matches("#/components/schemas/");
            return conforms(doc, &doc["components"]["schemas"][name], value, at);
        }
        if let Some(any) = schema["oneOf"].as_array().or(schema["anyOf"].as_array()) {
            return if any.iter().any(|s| conforms(doc, s, value, at).is_ok()) { Ok(()) } else { Err(format!("{at}: {value} fits none of {any:?}")) };
        }
        if let Some(all) = schema["allOf"].as_array() {
            for s in all {
                conforms(doc, s, value, at)?;
            }
        }
        if let Some(options) = schema["enum"].as_array() {
            if !options.contains(value) {
                return Err(format!("{at}: {value} is not one of {options:?}"));
            }
        }
        let types: Vec<&str> = match &schema["type"] {
            Value::String(t) => vec![t.as_str()],
            Value::Array(ts) => ts.iter().filter_map(Value::as_str).collect(),
            _ => Vec::new(),
        };
        let kind = match value {
            Value::Null => "null",
            Value::Bool(_) => "boolean",
            Value::Number(n) if n.is_i64() || n.is_u64() => "integer",
            Value::Number(_) => "number",
            Value::String(_) => "string",
            Value::Array(_) => "array",
            Value::Object(_) => "object",
        };
        if !types.is_empty() && !types.iter().any(|t| *t == kind || (*t == "number" && kind == "integer")) {
            return Err(format!("{at}: {value} is {kind}, not {types:?}"));
        }
        if let (Some(object), Some(properties)) = (value.as_object(), schema["properties"].as_object()) {
            for required in schema["required"].as_array().into_iter().flatten().filter_map(Value::as_str) {
                if !object.contains_key(required) {
                    return Err(format!("{at}: {required} is missing from {value}"));
                }
            }
            for (key, field) in object {
                match properties.get(key) {
                    Some(s) => conforms(doc, s, field, &format!("{at}.{key}"))?,
                    None if schema["additionalProperties"] == Value::Bool(false) => {
                        return Err(format!("{at}: {key} is not a property of the schema"));
                    }
                    None => {}
                }
            }
        }
        if let (Some(items), Some(schema)) = (value.as_array(), schema.get("items")) {
            for (i, item) in items.iter().enumerate() {
                conforms(doc, schema, item, &format!("{at}[{i}]"))?;
            }
        }
        Ok(())
    }
}
