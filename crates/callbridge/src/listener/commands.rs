//! The URL commands of Enreach Contact's desktop client (https://help.enreach.com/desktop/1.00/web/Enreach/en-US/help/chap_settings.4.18.html): `GET|POST /{make}/{number}`, `/{answer}`, `/{end}`.
//!
//! The segments come from the configuration, so a CRM built for Enreach's client works unchanged. A
//! number may be written as people paste it (`/make/+44%2020%207946%200000`, `/make/tel:+4420…`).
//! The handlers are annotated with the default segments; [`routes`] serves (and documents) them
//! under the configured ones.

use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::{Extension, Json};
use serde::Serialize;
use utoipa::ToSchema;

use super::openapi::model;
use super::openapi::table::{route, Routes};
use super::error::ApiError;
use crate::call::{Call, CallId};
use crate::config::ListenerConfig;
use crate::engine::Engine;
use crate::security::Caller;

pub fn routes(listener: &ListenerConfig) -> Routes {
    let (make_at, answer_at, end_at) = (listener.make.as_str(), listener.answer.as_str(), listener.end.as_str());
    Routes::new()
        .route(route!(make).at(format!("/{make_at}/{{number}}")))
        .route(route!(make_without_number).at(format!("/{make_at}")))
        .route(route!(make_without_number_slash).at(format!("/{make_at}/")))
        .route(route!(answer).at(format!("/{answer_at}")))
        .route(route!(end).at(format!("/{end_at}")))
}

/// What a call command did: `{"ok":true,"action":…,"call_id":…,"call":{…}}`.
#[derive(Debug, Serialize, ToSchema)]
pub struct Done {
    /// Always `true`.
    pub ok: bool,
    /// `dial`, `answer`, `hangup` or `simulate_incoming`.
    pub action: &'static str,
    #[schema(value_type = String)]
    pub call_id: CallId,
    #[schema(value_type = model::Call)]
    pub call: Call,
}

pub fn done(action: &'static str, call: Call) -> Json<Done> {
    Json(Done { ok: true, action, call_id: call.id.clone(), call })
}

/// A path parameter, or a 400 that says what was wrong with it (it is not UTF-8 once decoded).
pub fn path_param(p: Result<Path<String>, PathRejection>) -> Result<String, ApiError> {
    p.map(|Path(v)| v).map_err(|e| ApiError::bad_request(format!("the path is not what this route takes: {}", e.body_text())))
}

/// Dial `number` (segment `make` by default, `[listener] make`).
///
/// The number may be written as people paste it (`+44 20 7946 0000`, `tel:+4420…`, `020…` with
/// `[dialing] default_country`). A web page that is not trusted may only use this command (and
/// `POST /api/v1/dial`); its dial is put to the user or refused.
#[utoipa::path(
    method(get, post),
    path = "/make/{number}",
    operation_id = "command_make",
    tag = "commands",
    params(("number" = String, Path, description = "The number to dial", example = "+442079460000")),
    responses(
        (status = 200, description = "The call was placed", body = Done),
        (status = 400, description = "Not a number that can be dialed (`bad_number`), or a path that is not UTF-8 (`bad_request`)"),
        (status = 403, description = "Refused: a number rule, the user declined, or a page that is not trusted (`refused`)"),
        (status = 409, description = "The phone system has no such call (`no_call`)"),
        (status = 429, description = "Too many dials a minute (`throttled`, with `Retry-After`)"),
        (status = "4XX", description = "The phone system refused the dial with this status (`provider_rejected`)"),
        (status = 501, description = "The phone system cannot dial (`not_supported`)"),
        (status = 502, description = "The phone system refused or could not be reached (`provider_rejected`, `provider_unreachable`)"),
        (status = 503, description = "The phone system is not configured (`provider_not_configured`), or the call was placed but its notifications could not be saved (`not_saved`: disk full, …)"),
        (status = 504, description = "The phone system did not answer in time (`provider_timeout`)"),
        (status = "5XX", description = "The phone system failed with this status (`provider_rejected`)"),
    )
)]
async fn make(
    State(engine): State<Engine>,
    Extension(caller): Extension<Caller>,
    number: Result<Path<String>, PathRejection>,
) -> Result<Json<Done>, ApiError> {
    let number = path_param(number)?;
    let call = engine.dial_from(&number, &caller).await?;
    Ok(done("dial", call))
}

/// The dial command without a number: always 400.
#[utoipa::path(
    method(get, post),
    path = "/make",
    operation_id = "command_make_without_number",
    tag = "commands",
    responses((status = 400, description = "The number is missing (`bad_request`)"))
)]
async fn make_without_number(State(engine): State<Engine>) -> ApiError {
    missing_number(&engine)
}

/// The dial command without a number: always 400.
#[utoipa::path(
    method(get, post),
    path = "/make/",
    operation_id = "command_make_without_number_slash",
    tag = "commands",
    responses((status = 400, description = "The number is missing (`bad_request`)"))
)]
async fn make_without_number_slash(State(engine): State<Engine>) -> ApiError {
    missing_number(&engine)
}

fn missing_number(engine: &Engine) -> ApiError {
    ApiError::bad_request(format!("the number is missing: use /{}/NUMBER", engine.config().listener.make))
}

/// Answer the ringing call (segment `answer` by default, `[listener] answer`).
#[utoipa::path(
    method(get, post),
    path = "/answer",
    operation_id = "command_answer",
    tag = "commands",
    responses(
        (status = 200, description = "The call was answered", body = Done),
        (status = 409, description = "No call is ringing (`no_call`)"),
        (status = "4XX", description = "The phone system refused with this status (`provider_rejected`)"),
        (status = 501, description = "The phone system cannot answer calls (`not_supported`)"),
        (status = 502, description = "The phone system refused or could not be reached"),
        (status = 503, description = "The phone system is not configured (`provider_not_configured`), or the command was carried out but what it caused could not be saved (`not_saved`: disk full, …)"),
        (status = 504, description = "The phone system did not answer in time (`provider_timeout`)"),
        (status = "5XX", description = "The phone system failed with this status (`provider_rejected`)"),
    )
)]
async fn answer(State(engine): State<Engine>) -> Result<Json<Done>, ApiError> {
    let call = engine.answer(None).await?;
    Ok(done("answer", call))
}

/// End the current call (segment `end` by default, `[listener] end`).
#[utoipa::path(
    method(get, post),
    path = "/end",
    operation_id = "command_end",
    tag = "commands",
    responses(
        (status = 200, description = "The call was ended", body = Done),
        (status = 409, description = "There is no call to end (`no_call`)"),
        (status = "4XX", description = "The phone system refused with this status (`provider_rejected`)"),
        (status = 501, description = "The phone system cannot end calls (`not_supported`)"),
        (status = 502, description = "The phone system refused or could not be reached"),
        (status = 503, description = "The phone system is not configured (`provider_not_configured`), or the command was carried out but what it caused could not be saved (`not_saved`: disk full, …)"),
        (status = 504, description = "The phone system did not answer in time (`provider_timeout`)"),
        (status = "5XX", description = "The phone system failed with this status (`provider_rejected`)"),
    )
)]
async fn end(State(engine): State<Engine>) -> Result<Json<Done>, ApiError> {
    let call = engine.hangup(None).await?;
    Ok(done("hangup", call))
}
