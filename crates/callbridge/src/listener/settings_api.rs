//! The API the settings page and the popups use beyond calls: saving settings, testing notification
//! rules, the phone-system forms and their keyring secrets, and the "Open in CRM" link.
//!
//! | route | what |
//! |---|---|
//! | `PUT config` (the whole config, as `GET config` gives it) | validate, save, apply; `{"ok":false,"error":"invalid","field":…}` names the setting |
//! | `GET listener` | where the listener is, or why it is not |
//! | `POST notifications/test` `{"rule":{…}}` | send one rule now with a sample call; what the CRM answered |
//! | `GET providers` | each phone system's fields (see [`crate::provider::forms`]) |
//! | `GET secrets` | which keyring entries the forms use are set (never their values) |
//! | `PUT secrets/{entry}` `{"value":…}`, `DELETE secrets/{entry}` | store or remove one |
//! | `GET calls/{id}/crm-url` | the `[desktop] crm_url` template filled in for that call |
//!
//! Routes that change settings need the [`Settings`] the listener was started with; a router built
//! without them answers 501.

use std::time::Duration;

use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Extension, Json, Router};
use serde::Deserialize;
use serde_json::{json, Value};

use super::ApiError;
use crate::call::{CallEvent, CallEventKind, CallId};
use crate::config::{Config, NotificationRule};
use crate::engine::Engine;
use crate::notify::sample;
use crate::provider::forms;
use crate::secrets::Secret;
use crate::settings::{FieldError, SaveError, Settings};

pub fn routes() -> Router<Engine> {
    Router::new()
        .route("/config", put(save_config))
        .route("/listener", get(listener))
        .route("/notifications/test", post(test_notification))
        .route("/providers", get(providers))
        .route("/secrets", get(secrets))
        .route("/secrets/{entry}", put(set_secret).delete(delete_secret))
        .route("/calls/{id}/crm-url", get(crm_url))
}

fn settings_missing() -> ApiError {
    ApiError::new(StatusCode::NOT_IMPLEMENTED, "not_supported", "this CallBridge cannot change its settings over the API")
}

/// `{"ok":false,"error":"invalid","field":"listener.port","message":…}` with 400.
fn invalid(e: FieldError) -> Response {
    let mut body = json!({ "ok": false, "error": "invalid", "message": e.message });
    if let Some(field) = e.field {
        body["field"] = json!(field);
    }
    (StatusCode::BAD_REQUEST, Json(body)).into_response()
}

/// A JSON body parsed with the path of the offending value, so the page can mark the field.
fn parse<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T, FieldError> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = e.path().to_string();
        let field = (path != ".").then(|| path.replace("notification[", "notification.").replace(']', ""));
        FieldError { field, message: e.into_inner().to_string() }
    })
}

async fn save_config(settings: Option<Extension<Settings>>, body: Result<axum::body::Bytes, BytesRejection>) -> Response {
    let Some(Extension(settings)) = settings else { return settings_missing().into_response() };
    let bytes = match body {
        Ok(b) => b,
        Err(e) => return ApiError::bad_request(e.body_text()).into_response(),
    };
    let mut config: Config = match parse(&bytes) {
        Ok(c) => c,
        Err(e) => return invalid(e),
    };
    config.assign_missing_rule_ids();
    match settings.save(config).await {
        Ok(saved) => Json(json!({ "ok": true, "saved": saved, "config": *settings.engine().config() })).into_response(),
        Err(SaveError::Invalid(e)) => invalid(e),
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

async fn listener(settings: Option<Extension<Settings>>) -> Result<Json<Value>, ApiError> {
    let Some(Extension(settings)) = settings else { return Err(settings_missing()) };
    Ok(Json(json!({ "ok": true, "listener": settings.listener_state() })))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TestRequest {
    rule: Value,
}

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

async fn providers(State(engine): State<Engine>) -> Json<Value> {
    Json(json!({ "ok": true, "current": engine.config().provider.kind.as_str(), "providers": forms::forms() }))
}

fn known_entry(entry: &str) -> Result<&'static str, ApiError> {
    forms::secret_entries().into_iter().find(|e| *e == entry).ok_or_else(|| {
        ApiError::new(StatusCode::NOT_FOUND, "unknown_secret", format!("no phone-system setting keeps a secret named {entry:?}"))
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

async fn secrets(State(engine): State<Engine>) -> Result<Json<Value>, ApiError> {
    let entries = forms::secret_entries();
    let set = keyring(&engine, move |store| {
        entries.into_iter().map(|e| Ok((e, store.get(e)?.is_some()))).collect::<Result<Vec<_>, _>>()
    })
    .await?;
    let list: Vec<Value> = set.into_iter().map(|(entry, set)| json!({ "entry": entry, "set": set })).collect();
    Ok(Json(json!({ "ok": true, "secrets": list })))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SecretBody {
    value: String,
}

async fn set_secret(State(engine): State<Engine>, Path(entry): Path<String>, body: Result<axum::body::Bytes, BytesRejection>) -> Response {
    let entry = match known_entry(&entry) {
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
    match keyring(&engine, move |store| store.set(entry, &secret)).await {
        Ok(()) => Json(json!({ "ok": true, "entry": entry, "set": true })).into_response(),
        Err(e) => e.into_response(),
    }
}

async fn delete_secret(State(engine): State<Engine>, Path(entry): Path<String>) -> Result<Json<Value>, ApiError> {
    let entry = known_entry(&entry)?;
    let removed = keyring(&engine, move |store| store.delete(entry)).await?;
    Ok(Json(json!({ "ok": true, "entry": entry, "set": false, "removed": removed })))
}

async fn crm_url(State(engine): State<Engine>, Path(id): Path<String>) -> Result<Json<Value>, ApiError> {
    let id = CallId::from(id);
    let call = engine
        .call(&id)
        .ok_or_else(|| ApiError::new(StatusCode::NOT_FOUND, "unknown_call", format!("no call with id {id}")))?;
    let config = engine.config();
    let template = config.desktop.crm_url.as_ref().ok_or_else(|| {
        ApiError::new(StatusCode::CONFLICT, "not_configured", "no CRM page is set: fill in \"Open in CRM\" under Settings → General")
    })?;
    let event = CallEvent { kind: CallEventKind::start_for(call.direction), at: call.started_at, call };
    Ok(Json(json!({ "ok": true, "url": template.render(&event) })))
}
