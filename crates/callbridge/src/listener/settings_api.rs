//! The API the settings page and the popups use beyond calls: saving settings, testing notification
//! rules, the phone-system forms and their keyring secrets, and the "Open in CRM" link.
//!
//! | route | what |
//! |---|---|
//! | `GET settings/schema` | what the page validates against: placeholders, reserved segments, every numeric limit, the provider forms |
//! | `PUT config` (the whole config, as `GET config` gives it, with its `revision`) | validate, save, apply; `{"ok":false,"error":"invalid","field":…}` names the setting; 409 `stale` with the config in force when it changed meanwhile |
//! | `GET listener` | where the listener is, or why it is not |
//! | `POST notifications/test` `{"rule":{…}}` | send one rule now with a sample call; what the CRM answered |
//! | `GET providers` | each phone system's fields, with the keyring entries the config names (see [`crate::provider::forms`]) |
//! | `GET secrets` | which keyring entries the forms and `[lookup] secret_entry` use are set (never their values) |
//! | `PUT secrets/{entry}` `{"value":…}`, `DELETE secrets/{entry}` | store or remove one |
//! | `GET calls/{id}/crm-url` | the call's CRM record from the caller lookup, else the `[desktop] crm_url` template filled in |
//!
//! Routes that change settings need the [`Settings`] the listener was started with; a router built
//! without them answers 501.

use std::time::Duration;

use axum::extract::rejection::{BytesRejection, PathRejection};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use serde::Deserialize;
use serde_json::{json, Value};
use utoipa::ToSchema;
use super::openapi::table::{route, Routes};

use super::commands::path_param;
use super::openapi::model;
use super::error::ApiError;
use crate::call::{CallEvent, CallEventKind, CallId};
use crate::config::{Config, NotificationRule, Segment};
use crate::engine::Engine;
use crate::notify::sample;
use crate::notify::template::Placeholder;
use crate::provider::registry;
use crate::secrets::Secret;
use crate::settings::{FieldError, SaveError, Settings};

pub fn routes() -> Routes {
    Routes::new()
        .route(route!(schema))
        .route(route!(save_config))
        .route(route!(listener))
        .route(route!(test_notification))
        .route(route!(providers))
        .route(route!(secrets))
        .route(route!(set_secret, delete_secret))
        .route(route!(crm_url))
}

fn settings_missing() -> ApiError {
    ApiError::new(StatusCode::NOT_IMPLEMENTED, "not_supported", "this CallBridge cannot change its settings over the API")
}

/// `{"ok":false,"error":"invalid","field":"listener.port","message":…}` with 400.
pub(super) fn invalid(e: FieldError) -> Response {
    let mut body = json!({ "ok": false, "error": "invalid", "message": e.message });
    if let Some(field) = e.field {
        body["field"] = json!(field);
    }
    (StatusCode::BAD_REQUEST, Json(body)).into_response()
}

/// A JSON body parsed with the path of the offending value, so the page can mark the field.
pub(super) fn parse<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T, FieldError> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    serde_path_to_error::deserialize(&mut de).map_err(path_error)
}

/// A deserialization error with the path of the value (`notification[2].url`), none at the top.
fn path_error<E: std::fmt::Display>(e: serde_path_to_error::Error<E>) -> FieldError {
    let path = e.path().to_string();
    let field = (path != ".").then_some(path);
    FieldError { field, message: e.into_inner().to_string() }
}

/// The body of `PUT config`: the configuration, and the `revision` of the one it was edited from.
fn parse_edit(bytes: &[u8]) -> Result<(Config, Option<String>), FieldError> {
    let mut value: Value = parse(bytes)?;
    let revision = match value.as_object_mut().and_then(|fields| fields.remove("revision")) {
        None | Some(Value::Null) => None,
        Some(Value::String(r)) => Some(r),
        Some(_) => return Err(FieldError::new("revision", "revision must be the string GET /api/v1/config answered")),
    };
    let config = serde_path_to_error::deserialize(value).map_err(path_error)?;
    Ok((config, revision))
}

/// What the settings page validates against, from the engine's own definitions: the placeholders a
/// template may use, the command segments that are reserved, the bounds of every numeric setting,
/// and each phone system's form with the keyring entries the configuration names.
#[utoipa::path(
    get,
    path = "/settings/schema",
    tag = "settings",
    responses((status = 200, description = "What the settings are checked against", body = model::SchemaAnswer))
)]
async fn schema(State(engine): State<Engine>) -> Json<Value> {
    let config = engine.config();
    let placeholders: Vec<Value> =
        Placeholder::ALL.iter().map(|p| json!({ "name": p.name(), "description": p.description() })).collect();
    Json(json!({
        "ok": true,
        "revision": config.revision(),
        "placeholders": placeholders,
        "reserved_segments": Segment::RESERVED,
        "segment_max_len": Segment::MAX_LEN,
        "limits": registry::limits(&config.provider),
        "current": config.provider.kind.as_str(),
        "providers": registry::forms(&config.provider),
    }))
}

/// Validate, save and apply a whole configuration (as `GET config` gives it). A new port, address or
/// command segment restarts the listener there. With `revision` (as `GET config` answered it), a
/// configuration that changed meanwhile is kept and the answer is 409 `stale` with it and its revision.
#[utoipa::path(
    put,
    path = "/config",
    tag = "settings",
    request_body = model::Config,
    responses(
        (status = 200, description = "Saved and applied", body = model::SaveAnswer),
        (status = 400, description = "Not a valid configuration (`invalid`, with `field` naming the setting), or an unreadable body (`bad_request`)"),
        (status = 409, description = "The configuration changed since `revision` (`stale`, with the `config` in force and its `revision`; nothing was saved), or the new port cannot be listened on (`invalid`, `field` is `listener.port`)", body = model::StaleAnswer),
        (status = 500, description = "The file could not be written; nothing was changed (`write_failed`)"),
        (status = 501, description = "This CallBridge cannot change its settings over the API (`not_supported`)"),
    )
)]
async fn save_config(settings: Option<Extension<Settings>>, body: Result<axum::body::Bytes, BytesRejection>) -> Response {
    let Some(Extension(settings)) = settings else { return settings_missing().into_response() };
    let bytes = match body {
        Ok(b) => b,
        Err(e) => return ApiError::bad_request(e.body_text()).into_response(),
    };
    let (mut config, revision) = match parse_edit(&bytes) {
        Ok(c) => c,
        Err(e) => return invalid(e),
    };
    config.assign_missing_rule_ids();
    match settings.save_edited(config, revision.as_deref()).await {
        Ok(saved) => {
            let config = settings.engine().config();
            Json(json!({ "ok": true, "saved": saved, "config": *config, "revision": config.revision() })).into_response()
        }
        Err(SaveError::Invalid(e)) => invalid(e),
        Err(SaveError::Stale { edited, revision, current }) => {
            let message = format!(
                "the settings were changed elsewhere since this copy was read (revision {edited}, now {revision}); nothing was saved, and the settings in force are in this answer"
            );
            let body = json!({ "ok": false, "error": "stale", "message": message, "config": *current, "revision": revision });
            (StatusCode::CONFLICT, Json(body)).into_response()
        }
        Err(e @ SaveError::PortTaken { .. }) => {
            let mut response = invalid(FieldError::new("listener.port", e.to_string()));
            *response.status_mut() = StatusCode::CONFLICT;
            response
        }
        Err(e @ SaveError::Write(_)) => {
            ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "write_failed", e.to_string()).into_response()
        }
    }
}

/// Where the listener is, or why it is not.
#[utoipa::path(
    get,
    path = "/listener",
    tag = "settings",
    responses(
        (status = 200, description = "The listener's state", body = model::ListenerAnswer),
        (status = 501, description = "This CallBridge cannot change its settings over the API (`not_supported`)"),
    )
)]
async fn listener(settings: Option<Extension<Settings>>) -> Result<Json<Value>, ApiError> {
    let Some(Extension(settings)) = settings else { return Err(settings_missing()) };
    Ok(Json(json!({ "ok": true, "listener": settings.listener_state() })))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct TestRequest {
    /// The rule to send, as in `[[notification]]`; `id` may be left out.
    #[schema(value_type = model::NotificationRule)]
    rule: Value,
}

/// Send one notification rule now with a sample call, and say what the CRM answered. The request goes
/// to the rule's URL, wherever it points.
#[utoipa::path(
    post,
    path = "/notifications/test",
    tag = "settings",
    request_body = TestRequest,
    responses(
        (status = 200, description = "Sent (or tried): the request and what came back", body = model::TestAnswer),
        (status = 400, description = "Not a valid rule (`invalid`, with `field`), or an unreadable body (`bad_request`)"),
    )
)]
async fn test_notification(State(engine): State<Engine>, body: Result<axum::body::Bytes, BytesRejection>) -> Response {
    let bytes = match body {
        Ok(b) => b,
        Err(e) => return ApiError::bad_request(e.body_text()).into_response(),
    };
    let request: TestRequest = match parse(&bytes) {
        Ok(r) => r,
        Err(e) => return invalid(e),
    };
    let mut rule_json = request.rule;
    let Some(fields) = rule_json.as_object_mut() else {
        return invalid(FieldError::new("rule", "the rule must be a JSON object like a [[notification]] table"));
    };
    fields.entry("id").or_insert_with(|| json!("test"));
    let rule: NotificationRule = match parse(rule_json.to_string().as_bytes()) {
        Ok(r) => r,
        Err(e) => return invalid(FieldError { field: e.field.map(|f| format!("rule.{f}")), message: e.message }),
    };
    let timeout = Duration::from_secs(engine.config().delivery.timeout_secs);
    let tested = sample::send_test(&rule, timeout).await;
    Json(json!({ "ok": true, "test": tested })).into_response()
}

/// Each phone system's settings form.
#[utoipa::path(get, path = "/providers", tag = "settings", responses((status = 200, description = "The forms", body = model::ProvidersAnswer)))]
async fn providers(State(engine): State<Engine>) -> Json<Value> {
    let config = engine.config();
    Json(json!({ "ok": true, "current": config.provider.kind.as_str(), "providers": registry::forms(&config.provider) }))
}

/// The keyring entries the settings use: the phone systems' and the caller lookup's API key.
fn secret_entries(engine: &Engine) -> Vec<String> {
    let mut entries = registry::writable_secret_entries(&engine.config().provider);
    if let Some(entry) = &engine.config().lookup.secret_entry {
        if !entries.contains(entry) {
            entries.push(entry.clone());
        }
    }
    entries
}

fn known_entry(engine: &Engine, entry: &str) -> Result<String, ApiError> {
    secret_entries(engine).into_iter().find(|e| e == entry).ok_or_else(|| {
        ApiError::new(StatusCode::NOT_FOUND, "unknown_secret", format!("no setting keeps a secret named {entry:?} (the caller lookup's is [lookup] secret_entry)"))
    })
}

/// Runs a keyring call off the async threads (they block on D-Bus or system calls).
async fn keyring<T: Send + 'static>(
    engine: &Engine,
    f: impl FnOnce(&dyn crate::secrets::SecretStore) -> Result<T, crate::secrets::SecretError> + Send + 'static,
) -> Result<T, ApiError> {
    let store = std::sync::Arc::clone(engine.secrets());
    tokio::task::spawn_blocking(move || f(store.as_ref()))
        .await
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "keyring_failed", e.to_string()))?
        .map_err(|e| ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "keyring_unavailable", e.to_string()))
}

/// Which keyring entries the provider forms use are set (never their values).
#[utoipa::path(
    get,
    path = "/secrets",
    tag = "settings",
    responses(
        (status = 200, description = "Each entry and whether it is set", body = model::SecretsAnswer),
        (status = 500, description = "The keyring call failed (`keyring_failed`)"),
        (status = 503, description = "The keyring cannot be used (`keyring_unavailable`)"),
    )
)]
async fn secrets(State(engine): State<Engine>) -> Result<Json<Value>, ApiError> {
    let entries = secret_entries(&engine);
    let set = keyring(&engine, move |store| {
        entries
            .into_iter()
            .map(|e| {
                let set = store.get(&e)?.is_some();
                Ok((e, set))
            })
            .collect::<Result<Vec<_>, _>>()
    })
    .await?;
    let list: Vec<Value> = set.into_iter().map(|(entry, set)| json!({ "entry": entry, "set": set })).collect();
    Ok(Json(json!({ "ok": true, "secrets": list })))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct SecretBody {
    /// The secret; surrounding white space is dropped.
    value: String,
}

/// Store one secret of a provider form in the keyring.
#[utoipa::path(
    put,
    path = "/secrets/{entry}",
    tag = "settings",
    params(("entry" = String, Path, description = "A keyring entry named by a provider form (`GET /api/v1/secrets`)")),
    request_body = SecretBody,
    responses(
        (status = 200, description = "Stored", body = model::SecretAnswer),
        (status = 400, description = "Not the body this route takes, or an empty secret (`invalid`, `field` is the entry)"),
        (status = 404, description = "No provider form keeps a secret of that name (`unknown_secret`)"),
        (status = 500, description = "The keyring call failed (`keyring_failed`)"),
        (status = 503, description = "The keyring cannot be used (`keyring_unavailable`)"),
    )
)]
async fn set_secret(State(engine): State<Engine>, entry: Result<Path<String>, PathRejection>, body: Result<axum::body::Bytes, BytesRejection>) -> Response {
    let entry = match path_param(entry).and_then(|entry| known_entry(&engine, &entry)) {
        Ok(e) => e,
        Err(e) => return e.into_response(),
    };
    let value: SecretBody = match body.map_err(|e| e.body_text()).and_then(|b| parse(&b).map_err(|e| e.message)) {
        Ok(v) => v,
        Err(message) => return invalid(FieldError::new(entry, message)),
    };
    if value.value.trim().is_empty() {
        return invalid(FieldError::new(entry, "the secret is empty; use DELETE to remove it"));
    }
    let secret = Secret::new(value.value.trim());
    let name = entry.clone();
    match keyring(&engine, move |store| store.set(&name, &secret)).await {
        Ok(()) => Json(json!({ "ok": true, "entry": entry, "set": true })).into_response(),
        Err(e) => e.into_response(),
    }
}

/// Remove one secret of a provider form from the keyring.
#[utoipa::path(
    delete,
    path = "/secrets/{entry}",
    tag = "settings",
    params(("entry" = String, Path, description = "A keyring entry named by a provider form (`GET /api/v1/secrets`)")),
    responses(
        (status = 200, description = "Removed (`removed` is false when it was not set)", body = model::SecretAnswer),
        (status = 400, description = "The path is not UTF-8 (`bad_request`)"),
        (status = 404, description = "No provider form keeps a secret of that name (`unknown_secret`)"),
        (status = 500, description = "The keyring call failed (`keyring_failed`)"),
        (status = 503, description = "The keyring cannot be used (`keyring_unavailable`)"),
    )
)]
async fn delete_secret(State(engine): State<Engine>, entry: Result<Path<String>, PathRejection>) -> Result<Json<Value>, ApiError> {
    let entry = known_entry(&engine, &path_param(entry)?)?;
    let name = entry.clone();
    let removed = keyring(&engine, move |store| store.delete(&name)).await?;
    Ok(Json(json!({ "ok": true, "entry": entry, "set": false, "removed": removed })))
}

/// The `[desktop] crm_url` template filled in for one call ("Open in CRM").
#[utoipa::path(
    get,
    path = "/calls/{id}/crm-url",
    tag = "calls",
    params(("id" = String, Path, description = "The call's id")),
    responses(
        (status = 200, description = "The page to open", body = model::CrmUrlAnswer),
        (status = 400, description = "The path is not UTF-8 (`bad_request`)"),
        (status = 404, description = "No call with that id (`unknown_call`)"),
        (status = 409, description = "No CRM page is configured (`not_configured`)"),
    )
)]
async fn crm_url(State(engine): State<Engine>, id: Result<Path<String>, PathRejection>) -> Result<Json<Value>, ApiError> {
    let id = CallId::from(path_param(id)?);
    let call = engine
        .call(&id)
        .await
        .ok_or_else(|| ApiError::new(StatusCode::NOT_FOUND, "unknown_call", format!("no call with id {id}")))?;
    if let Some(url) = &call.record_url {
        return Ok(Json(json!({ "ok": true, "url": url, "source": "lookup" })));
    }
    let config = engine.config();
    let template = config.desktop.crm_url.as_ref().ok_or_else(|| {
        ApiError::new(StatusCode::CONFLICT, "not_configured", "no CRM page is set: fill in \"Open in CRM\" under Settings → General")
    })?;
    let event = CallEvent { kind: CallEventKind::start_for(call.direction), at: call.started_at, call };
    Ok(Json(json!({ "ok": true, "url": template.render(&event), "source": "crm_url" })))
}
