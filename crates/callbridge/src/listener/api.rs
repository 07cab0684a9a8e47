//! The JSON API under `/api/v1/`, used by the settings page in a browser, the CLI and scripts.
//!
//! | route | what |
//! |---|---|
//! | `GET status` | provider, its health and capabilities, live calls |
//! | `GET calls?before=SEQ&limit=N` | the call history, newest first, paged (`next_before` in the answer) |
//! | `GET calls/{id}` | one call |
//! | `POST dial` `{"number":…}` | place a call |
//! | `POST answer` `{"call_id"?:…}` | answer (the ringing call by default) |
//! | `POST hangup` `{"call_id"?:…}` | end (the current call by default) |
//! | `POST simulate/incoming` `{"number":…,"name"?:…}` | ring a simulated incoming call |
//! | `GET deliveries?before=ID&limit=N&status=S` | the delivery log, newest first, paged (`next_before`) |
//! | `GET deliveries/{id}` | one delivery with every attempt |
//! | `POST deliveries/{id}/retry` | send a pending or failed delivery again now |
//! | `GET security` | the listener's security policy as the settings page shows it |
//! | `GET config` | the effective configuration |
//! | `PUT config`, `GET listener`, `POST notifications/test`, `GET providers`, `…/secrets…`, `GET calls/{id}/crm-url` | see [`super::settings_api`] |
//! | `POST lookup/test` `{"number":…}` | run the CRM's caller lookup once, see [`super::lookup_api`] |
//! | `GET events` | call events and settings changes as Server-Sent Events, see [`super::events`] |
//! | `GET openapi.json` | the OpenAPI document of every route, see [`super::openapi`] |

use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::{Extension, Json};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use super::openapi::table::{route, Routes};

use super::commands::{done, path_param, Done};
use super::openapi::model;
use super::error::ApiError;
use crate::call::{Call, CallId};
use crate::engine::{Engine, Status};
use crate::security::tiers::Tier;
use crate::security::{Caller, SecuritySummary};
use crate::store::deliveries::{AttemptEntry, DeliveryEntry, DeliveryStatus, RetryError};
use crate::store::StoreError;

pub fn routes() -> Routes {
    Routes::new()
        .route(route!(status))
        .route(route!(calls))
        .route(route!(call))
        .route(route!(dial))
        .route(route!(answer))
        .route(route!(hangup))
        .route(route!(simulate_incoming))
        .route(route!(deliveries))
        .route(route!(delivery))
        .route(route!(retry_delivery))
        .route(route!(security))
        .route(route!(config))
        .merge(super::settings_api::routes())
        .merge(super::lookup_api::routes())
        .merge(super::events::routes())
}

/// A JSON body, or a 400 that says what was wrong with it.
fn body<T>(payload: Result<Json<T>, JsonRejection>) -> Result<T, ApiError> {
    payload.map(|Json(v)| v).map_err(|e| ApiError::bad_request(format!("the request body is not what this route takes: {}", e.body_text())))
}

/// Like [`body`], but an empty body means the defaults.
fn optional_body<T: Default>(payload: Result<Json<T>, JsonRejection>) -> Result<T, ApiError> {
    match payload {
        Err(JsonRejection::MissingJsonContentType(_)) => Ok(T::default()),
        other => body(other),
    }
}

/// `{"ok":true,"status":{…}}`.
#[derive(Debug, Serialize, ToSchema)]
struct StatusAnswer {
    ok: bool,
    #[schema(value_type = model::Status)]
    status: Status,
}

/// The provider, its health and capabilities, the live calls, the security policy and the delivery counts.
///
/// The list of trusted origins is part of the configuration, so only callers who may administer see
/// it; a CRM page (trusted or in open mode) and a token holder get an empty list.
#[utoipa::path(get, path = "/status", tag = "calls", responses((status = 200, description = "The bridge's status", body = StatusAnswer)))]
async fn status(State(engine): State<Engine>, caller: Option<Extension<Caller>>) -> Json<StatusAnswer> {
    let mut status = engine.status();
    let may_administer = caller.is_some_and(|Extension(c)| c.may(Tier::Admin));
    if !may_administer {
        status.security.trusted_origins.clear();
    }
    Json(StatusAnswer { ok: true, status })
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        tracing::error!(error = %e, "the store failed");
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "store_failed", e.to_string())
    }
}

/// `?before=…&limit=…` (and `status=…` for deliveries).
#[derive(Debug, Deserialize)]
struct Page {
    before: Option<i64>,
    limit: Option<usize>,
    status: Option<String>,
}

impl Page {
    const DEFAULT: usize = 50;
    const MAX: usize = 500;

    fn limit(&self) -> usize {
        self.limit.unwrap_or(Self::DEFAULT).clamp(1, Self::MAX)
    }
}

/// A query string, or a 400 that says what was wrong with it.
fn query<T>(q: Result<Query<T>, QueryRejection>) -> Result<T, ApiError> {
    q.map(|Query(v)| v).map_err(|e| ApiError::bad_request(format!("the query string is not what this route takes: {}", e.body_text())))
}

/// A page of the call history, newest first.
#[derive(Debug, Serialize, ToSchema)]
struct CallsAnswer {
    ok: bool,
    #[schema(value_type = Vec<model::Call>)]
    calls: Vec<Call>,
    /// Pass as `before` for the next (older) page; null on the last page.
    next_before: Option<i64>,
}

/// The call history, newest first, a page at a time.
#[utoipa::path(
    get,
    path = "/calls",
    tag = "calls",
    params(
        ("before" = Option<i64>, Query, description = "Only calls older than this (`next_before` of the previous page)"),
        ("limit" = Option<u64>, Query, description = "Calls a page: 50 by default, 1 to 500 (others are brought into that range)"),
    ),
    responses(
        (status = 200, description = "A page of calls", body = CallsAnswer),
        (status = 400, description = "A query parameter is not a number (`bad_request`)"),
        (status = 500, description = "The store failed (`store_failed`)"),
    )
)]
async fn calls(State(engine): State<Engine>, q: Result<Query<Page>, QueryRejection>) -> Result<Json<CallsAnswer>, ApiError> {
    let page = query(q)?;
    // What was handed to the store's writer before this request is in the page.
    engine.store().settled().wait().await?;
    let calls = engine.store().calls_page(page.before, page.limit())?;
    Ok(Json(CallsAnswer { ok: true, calls: calls.calls, next_before: calls.next_before }))
}

/// `{"ok":true,"call":{…}}`.
#[derive(Debug, Serialize, ToSchema)]
struct CallAnswer {
    ok: bool,
    #[schema(value_type = model::Call)]
    call: Call,
}

/// One call, live or from the history.
#[utoipa::path(
    get,
    path = "/calls/{id}",
    tag = "calls",
    params(("id" = String, Path, description = "The call's id")),
    responses(
        (status = 200, description = "The call", body = CallAnswer),
        (status = 400, description = "The path is not UTF-8 (`bad_request`)"),
        (status = 404, description = "No call with that id (`unknown_call`)"),
    )
)]
async fn call(State(engine): State<Engine>, id: Result<Path<String>, PathRejection>) -> Result<Json<CallAnswer>, ApiError> {
    let id = CallId::from(path_param(id)?);
    let call = engine
        .call(&id)
        .await
        .ok_or_else(|| ApiError::new(StatusCode::NOT_FOUND, "unknown_call", format!("no call with id {id}")))?;
    Ok(Json(CallAnswer { ok: true, call }))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct DialRequest {
    /// The number to dial, as people write it.
    #[schema(example = "+44 20 7946 0000")]
    number: String,
}

/// Place a call. The API's twin of the `make` command; the same rules apply.
#[utoipa::path(
    post,
    path = "/dial",
    tag = "calls",
    request_body = DialRequest,
    responses(
        (status = 200, description = "The call was placed", body = Done),
        (status = 400, description = "Not a number that can be dialed (`bad_number`), or not the body this route takes (`bad_request`)"),
        (status = 403, description = "Refused: a number rule, the user declined, or a page that is not trusted (`refused`)"),
        (status = 409, description = "The phone system has no such call (`no_call`)"),
        (status = 429, description = "Too many dials a minute (`throttled`, with `Retry-After`)"),
        (status = "4XX", description = "The phone system refused the dial with this status (`provider_rejected`)"),
        (status = 501, description = "The phone system cannot dial (`not_supported`)"),
        (status = 502, description = "The phone system refused or could not be reached"),
        (status = 503, description = "The phone system is not configured (`provider_not_configured`), or the command was carried out but what it caused could not be saved (`not_saved`: disk full, …)"),
        (status = 504, description = "The phone system did not answer in time (`provider_timeout`)"),
        (status = "5XX", description = "The phone system failed with this status (`provider_rejected`)"),
    )
)]
async fn dial(
    State(engine): State<Engine>,
    Extension(caller): Extension<Caller>,
    payload: Result<Json<DialRequest>, JsonRejection>,
) -> Result<Json<Done>, ApiError> {
    let request = body(payload)?;
    let call = engine.dial_from(&request.number, &caller).await?;
    Ok(done("dial", call))
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct CallRequest {
    /// The call; by default the ringing one (answer) or the current one (hang up).
    #[schema(value_type = Option<String>)]
    call_id: Option<CallId>,
}

/// Answer a call (the ringing one by default). No body, or a JSON body.
#[utoipa::path(
    post,
    path = "/answer",
    tag = "calls",
    request_body(content = Option<CallRequest>, description = "Which call; leave the body out for the ringing call"),
    responses(
        (status = 200, description = "The call was answered", body = Done),
        (status = 400, description = "Not the body this route takes (`bad_request`)"),
        (status = 404, description = "No call with that id (`unknown_call`)"),
        (status = 409, description = "No call is ringing, or that call is not a ringing incoming call (`no_call`)"),
        (status = "4XX", description = "The phone system refused with this status (`provider_rejected`)"),
        (status = 501, description = "The phone system cannot answer calls (`not_supported`)"),
        (status = 502, description = "The phone system refused or could not be reached"),
        (status = 503, description = "The phone system is not configured (`provider_not_configured`), or the command was carried out but what it caused could not be saved (`not_saved`: disk full, …)"),
        (status = 504, description = "The phone system did not answer in time (`provider_timeout`)"),
        (status = "5XX", description = "The phone system failed with this status (`provider_rejected`)"),
    )
)]
async fn answer(State(engine): State<Engine>, payload: Result<Json<CallRequest>, JsonRejection>) -> Result<Json<Done>, ApiError> {
    let request = optional_body(payload)?;
    let call = engine.answer(request.call_id.as_ref()).await?;
    Ok(done("answer", call))
}

/// End a call (the current one by default). No body, or a JSON body.
#[utoipa::path(
    post,
    path = "/hangup",
    tag = "calls",
    request_body(content = Option<CallRequest>, description = "Which call; leave the body out for the current call"),
    responses(
        (status = 200, description = "The call was ended", body = Done),
        (status = 400, description = "Not the body this route takes (`bad_request`)"),
        (status = 404, description = "No call with that id (`unknown_call`)"),
        (status = 409, description = "There is no call to end, or it has already ended (`no_call`)"),
        (status = "4XX", description = "The phone system refused with this status (`provider_rejected`)"),
        (status = 501, description = "The phone system cannot end calls (`not_supported`)"),
        (status = 502, description = "The phone system refused or could not be reached"),
        (status = 503, description = "The phone system is not configured (`provider_not_configured`), or the command was carried out but what it caused could not be saved (`not_saved`: disk full, …)"),
        (status = 504, description = "The phone system did not answer in time (`provider_timeout`)"),
        (status = "5XX", description = "The phone system failed with this status (`provider_rejected`)"),
    )
)]
async fn hangup(State(engine): State<Engine>, payload: Result<Json<CallRequest>, JsonRejection>) -> Result<Json<Done>, ApiError> {
    let request = optional_body(payload)?;
    let call = engine.hangup(request.call_id.as_ref()).await?;
    Ok(done("hangup", call))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct SimulateRequest {
    /// The caller's number.
    #[schema(example = "+442079460001")]
    number: String,
    /// The caller's name.
    #[schema(example = "Ada Lovelace")]
    name: Option<String>,
}

/// Ring a simulated incoming call (any provider; the call is CallBridge's own).
#[utoipa::path(
    post,
    path = "/simulate/incoming",
    tag = "calls",
    request_body = SimulateRequest,
    responses(
        (status = 200, description = "The call rings", body = Done),
        (status = 400, description = "Not a number (`bad_number`), or not the body this route takes (`bad_request`)"),
    )
)]
async fn simulate_incoming(
    State(engine): State<Engine>,
    payload: Result<Json<SimulateRequest>, JsonRejection>,
) -> Result<Json<Done>, ApiError> {
    let request = body(payload)?;
    let call = engine.simulate_incoming(&request.number, request.name.as_deref()).await?;
    Ok(done("simulate_incoming", call))
}

/// A page of the delivery log, newest first.
#[derive(Debug, Serialize, ToSchema)]
struct DeliveriesAnswer {
    ok: bool,
    #[schema(value_type = Vec<model::DeliveryEntry>)]
    deliveries: Vec<DeliveryEntry>,
    /// Pass as `before` for the next (older) page; null on the last page.
    next_before: Option<i64>,
}

/// The log of notifications to the CRM, newest first, a page at a time.
#[utoipa::path(
    get,
    path = "/deliveries",
    tag = "deliveries",
    params(
        ("before" = Option<i64>, Query, description = "Only deliveries with a smaller id (`next_before` of the previous page)"),
        ("limit" = Option<u64>, Query, description = "Deliveries a page: 50 by default, 1 to 500 (others are brought into that range)"),
        ("status" = Option<String>, Query, description = "`pending`, `delivered` or `failed`; empty or `all` for every one"),
    ),
    responses(
        (status = 200, description = "A page of deliveries", body = DeliveriesAnswer),
        (status = 400, description = "A query parameter is not a number or not a status (`bad_request`)"),
        (status = 500, description = "The store failed (`store_failed`)"),
    )
)]
async fn deliveries(State(engine): State<Engine>, q: Result<Query<Page>, QueryRejection>) -> Result<Json<DeliveriesAnswer>, ApiError> {
    let page = query(q)?;
    let status = match page.status.as_deref() {
        None | Some("") | Some("all") => None,
        Some(s) => Some(DeliveryStatus::from_query(s).ok_or_else(|| {
            ApiError::bad_request(format!("status={s:?} is not a delivery status; use pending, delivered or failed"))
        })?),
    };
    let limit = page.limit();
    let mut entries = engine.store().deliveries(page.before, status, limit.saturating_add(1))?;
    let next_before = (entries.len() > limit).then(|| {
        entries.truncate(limit);
        entries.last().map(|e| e.id)
    });
    Ok(Json(DeliveriesAnswer { ok: true, deliveries: entries, next_before: next_before.flatten() }))
}

/// One delivery with every attempt.
#[derive(Debug, Serialize, ToSchema)]
struct DeliveryAnswer {
    ok: bool,
    #[schema(value_type = model::DeliveryEntry)]
    delivery: DeliveryEntry,
    #[schema(value_type = Vec<model::AttemptEntry>)]
    attempt_log: Vec<AttemptEntry>,
}

/// One delivery with every attempt made.
#[utoipa::path(
    get,
    path = "/deliveries/{id}",
    tag = "deliveries",
    params(("id" = i64, Path, description = "The delivery's id")),
    responses(
        (status = 200, description = "The delivery", body = DeliveryAnswer),
        (status = 400, description = "Not a delivery id (`bad_request`)"),
        (status = 404, description = "No delivery with that id (`unknown_delivery`)"),
        (status = 500, description = "The store failed (`store_failed`)"),
    )
)]
async fn delivery(State(engine): State<Engine>, id: Result<Path<String>, PathRejection>) -> Result<Json<DeliveryAnswer>, ApiError> {
    let id = delivery_id(&path_param(id)?)?;
    let entry = engine.store().delivery(id)?.ok_or_else(|| unknown_delivery(id))?;
    let attempts = engine.store().attempts(id)?;
    Ok(Json(DeliveryAnswer { ok: true, delivery: entry, attempt_log: attempts }))
}

/// `{"ok":true,"action":"retry","delivery":{…}}`.
#[derive(Debug, Serialize, ToSchema)]
struct RetryAnswer {
    ok: bool,
    /// `retry`.
    action: &'static str,
    #[schema(value_type = model::DeliveryEntry)]
    delivery: DeliveryEntry,
}

/// Send a pending or failed delivery again now.
#[utoipa::path(
    post,
    path = "/deliveries/{id}/retry",
    tag = "deliveries",
    params(("id" = i64, Path, description = "The delivery's id")),
    responses(
        (status = 200, description = "The delivery is due now", body = RetryAnswer),
        (status = 400, description = "Not a delivery id (`bad_request`)"),
        (status = 404, description = "No delivery with that id (`unknown_delivery`)"),
        (status = 409, description = "It was already delivered (`already_delivered`)"),
        (status = 500, description = "The store failed (`store_failed`)"),
    )
)]
async fn retry_delivery(State(engine): State<Engine>, id: Result<Path<String>, PathRejection>) -> Result<Json<RetryAnswer>, ApiError> {
    let id = delivery_id(&path_param(id)?)?;
    match engine.retry_delivery(id).await {
        Ok(entry) => Ok(Json(RetryAnswer { ok: true, action: "retry", delivery: entry })),
        Err(RetryError::Unknown(id)) => Err(unknown_delivery(id)),
        Err(e @ RetryError::AlreadyDelivered(_)) => Err(ApiError::new(StatusCode::CONFLICT, "already_delivered", e.to_string())),
        Err(RetryError::Store(e)) => Err(e.into()),
    }
}

fn delivery_id(id: &str) -> Result<i64, ApiError> {
    id.parse().map_err(|_| ApiError::bad_request(format!("{id:?} is not a delivery id (a number from GET /api/v1/deliveries)")))
}

fn unknown_delivery(id: i64) -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "unknown_delivery", format!("no delivery with id {id}"))
}

/// `{"ok":true,"security":{…}}`.
#[derive(Debug, Serialize, ToSchema)]
struct SecurityAnswer {
    ok: bool,
    #[schema(value_type = model::SecuritySummary)]
    security: SecuritySummary,
}

/// The listener's security policy as the settings page shows it.
#[utoipa::path(get, path = "/security", tag = "settings", responses((status = 200, description = "The policy", body = SecurityAnswer)))]
async fn security(State(engine): State<Engine>) -> Json<SecurityAnswer> {
    Json(SecurityAnswer { ok: true, security: engine.security_summary() })
}

/// `{"ok":true,"config":{…},"revision":"…"}`.
#[derive(Debug, Serialize, ToSchema)]
struct ConfigAnswer {
    ok: bool,
    #[schema(value_type = model::Config)]
    config: crate::config::Config,
    /// Changes with every change of the configuration; `PUT config` sends it back so that a change
    /// made meanwhile is not overwritten.
    revision: String,
}

/// The effective configuration (the file's, with defaults filled in).
#[utoipa::path(get, path = "/config", tag = "settings", responses((status = 200, description = "The configuration", body = ConfigAnswer)))]
async fn config(State(engine): State<Engine>) -> Json<ConfigAnswer> {
    let config = engine.config();
    Json(ConfigAnswer { ok: true, revision: config.revision(), config: (*config).clone() })
}
