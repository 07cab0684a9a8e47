//! `POST /api/v1/lookup/test`: the settings page's Test button for the CRM's caller lookup.
//!
//! The body is `{"number":"+442079460000"}`, and optionally `"lookup":{…}` — a `[lookup]` section as
//! `GET config` gives it — to try settings before saving them; without it the saved settings are
//! used. The lookup runs once, past the cache, and the answer says what happened:
//!
//! ```json
//! {"ok":true,"test":{"outcome":"found","contact":{"name":"Ada Lovelace","company":"Acme Corp"},
//!  "attempts":[{"form":"e164","number":"+442079460000",
//!               "request":{"method":"GET","url":"…","headers":[["Authorization","Bearer ***"]]},
//!               "answer":{"status":200,"content_type":"application/json","body_start":"{…}"},
//!               "contact":{…}}],
//!  "elapsed_ms":12}}
//! ```
//!
//! `outcome` is `found`, `no_match` or `failed` (with `error`). The API key is never in the answer.

use axum::extract::rejection::BytesRejection;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};
use utoipa::ToSchema;
use super::openapi::table::{route, Routes};

use super::openapi::model;
use super::settings_api::{invalid, parse};
use super::error::ApiError;
use crate::settings::FieldError;
use crate::engine::Engine;
use crate::lookup::LookupConfig;

pub fn routes() -> Routes {
    Routes::new().route(route!(test_lookup))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct TestRequest {
    /// The number to look up, as a caller's number would arrive.
    #[schema(example = "+442079460000")]
    number: String,
    /// A `[lookup]` section (as `GET config` gives it) to try instead of the saved one.
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    lookup: Option<Value>,
}

/// Run the CRM's caller lookup once, past the cache, and show each request, answer and the fields found.
#[utoipa::path(
    post,
    path = "/lookup/test",
    tag = "settings",
    request_body = TestRequest,
    responses(
        (status = 200, description = "Looked up (found, no match, or failed with `error`): every attempt with its request and answer", body = model::LookupTestAnswer),
        (status = 400, description = "Not the body this route takes, no lookup URL configured, or an empty number (`invalid`, with `field`; `bad_request`)"),
    )
)]
async fn test_lookup(State(engine): State<Engine>, body: Result<axum::body::Bytes, BytesRejection>) -> Response {
    let bytes = match body {
        Ok(b) => b,
        Err(e) => return ApiError::bad_request(e.body_text()).into_response(),
    };
    let request: TestRequest = match parse(&bytes) {
        Ok(r) => r,
        Err(e) => return invalid(e),
    };
    let config: LookupConfig = match request.lookup {
        None => engine.config().lookup.clone(),
        Some(value) => match parse(value.to_string().as_bytes()) {
            Ok(c) => c,
            Err(e) => {
                let field = Some(e.field.map_or_else(|| "lookup".to_owned(), |f| format!("lookup.{f}")));
                return invalid(FieldError { field, message: e.message });
            }
        },
    };
    if let Err(e) = config.validate() {
        return invalid(e.into());
    }
    if !config.enabled() {
        return invalid(FieldError::new("lookup.url", "no lookup URL is set: fill in the CRM's lookup URL first"));
    }
    if request.number.trim().is_empty() {
        return invalid(FieldError::new("number", "type the number to look up"));
    }
    let trial = engine.lookup().trial(&config, &request.number).await;
    Json(json!({ "ok": true, "test": trial })).into_response()
}
