//! Schemas of the engine's objects as the listener sends and takes them, for the OpenAPI document.
//!
//! The engine's types (`Call`, `Config`, the delivery log, …) live in modules that know nothing of
//! HTTP; these structs describe their JSON form field by field and are never built. Two things keep
//! them true: the unit test in [`super`] checks real values of the engine's types against them, and
//! the schemathesis run (`scripts/schemathesis.sh`) checks every response the running bridge gives.
//! A type whose JSON form is up to a phone system (`[provider.telecmi]`, …) is described as an object
//! without listing its keys.

#![allow(dead_code)]

use std::collections::BTreeMap;

use utoipa::openapi::schema::{AdditionalProperties, ObjectBuilder, Schema, Type};
use utoipa::openapi::{Ref, RefOr};
use utoipa::{PartialSchema, ToSchema};

use crate::provider::registry::{self, PROVIDERS};

/// `in`, `out` or `internal`.
#[derive(Debug, ToSchema)]
#[schema(rename_all = "lowercase")]
pub enum Direction {
    In,
    Out,
    Internal,
}

/// Where a call is.
#[derive(Debug, ToSchema)]
#[schema(rename_all = "lowercase")]
pub enum CallState {
    Dialing,
    Ringing,
    Active,
    Ended,
}

/// How an ended call ended.
#[derive(Debug, ToSchema)]
#[schema(rename_all = "lowercase")]
pub enum Disposition {
    Answered,
    Missed,
    Busy,
    Failed,
    Cancelled,
}

/// The kinds of call event sent to the CRM.
#[derive(Debug, ToSchema)]
#[schema(rename_all = "lowercase")]
pub enum CallEventKind {
    Incoming,
    Outgoing,
    Answered,
    Ended,
}

/// What a phone system reported, before it became a call event.
#[derive(Debug, ToSchema)]
#[schema(rename_all = "lowercase")]
pub enum ProviderEventKind {
    Incoming,
    Outgoing,
    Ringing,
    Answered,
    Ended,
}

/// One call, as the tracker and the call history keep it. Absent optional fields are left out.
#[derive(Debug, ToSchema)]
pub struct Call {
    /// CallBridge's id for the call (a UUID).
    pub id: String,
    pub direction: Direction,
    /// The other party's number: E.164 when it could be normalized, else as the provider gave it.
    pub remote_number: String,
    pub remote_name: Option<String>,
    /// The other party's company, from the CRM's caller lookup.
    pub company: Option<String>,
    /// The other party's record in the CRM, from the caller lookup.
    pub record_url: Option<String>,
    pub local_extension: Option<String>,
    pub state: CallState,
    pub disposition: Option<Disposition>,
    /// Which provider carries the call (`simulator`, `telecmi`, …).
    pub provider: String,
    pub provider_call_id: Option<String>,
    pub request_id: Option<String>,
    #[schema(format = DateTime)]
    pub started_at: String,
    #[schema(format = DateTime)]
    pub answered_at: Option<String>,
    #[schema(format = DateTime)]
    pub ended_at: Option<String>,
}

/// Whether the provider can do one thing now, and why not.
#[derive(Debug, ToSchema)]
pub struct Support {
    pub supported: bool,
    pub reason: Option<String>,
}

#[derive(Debug, ToSchema)]
pub struct Capabilities {
    pub dial: Support,
    pub answer: Support,
    pub hangup: Support,
}

#[derive(Debug, ToSchema)]
pub struct ProviderStatus {
    pub name: String,
    pub ready: bool,
    /// What is wrong or missing when not ready.
    pub problem: Option<String>,
    pub capabilities: Capabilities,
}

#[derive(Debug, ToSchema)]
pub struct DeliveryCounts {
    pub pending: u64,
    pub delivered: u64,
    pub failed: u64,
}

/// `strict` or `open`.
#[derive(Debug, ToSchema)]
#[schema(rename_all = "lowercase")]
pub enum SecurityMode {
    Strict,
    Open,
}

/// The listener's security policy as the settings page shows it.
#[derive(Debug, ToSchema)]
pub struct SecuritySummary {
    pub mode: SecurityMode,
    /// Present while open mode is on.
    pub warning: Option<String>,
    /// Listed only for callers who may administer (CallBridge's own pages, programs on this machine);
    /// empty for web pages and token holders.
    pub trusted_origins: Vec<String>,
    pub dials_per_minute: u32,
    /// `ready`, `unavailable` (see `token_problem`) or `unknown` (not needed yet).
    pub token: String,
    pub token_problem: Option<String>,
    pub asks_before_untrusted_dials: bool,
}

/// What `GET /api/v1/status` reports.
#[derive(Debug, ToSchema)]
pub struct Status {
    pub version: String,
    pub provider: ProviderStatus,
    pub listener_url: String,
    pub live_calls: u64,
    pub current_call: Option<Call>,
    pub security: SecuritySummary,
    pub deliveries: DeliveryCounts,
}

/// `pending`, `delivered` or `failed`.
#[derive(Debug, ToSchema)]
#[schema(rename_all = "lowercase")]
pub enum DeliveryStatus {
    Pending,
    Delivered,
    Failed,
}

/// One notification delivery as the log shows it.
#[derive(Debug, ToSchema)]
pub struct DeliveryEntry {
    pub id: i64,
    pub idempotency_key: String,
    pub call_id: String,
    pub event: String,
    pub rule_id: String,
    pub method: String,
    pub url: String,
    pub status: DeliveryStatus,
    pub attempts: u32,
    #[schema(format = DateTime)]
    pub created_at: String,
    #[schema(format = DateTime)]
    pub expires_at: String,
    #[schema(format = DateTime)]
    pub next_attempt_at: Option<String>,
    #[schema(format = DateTime)]
    pub last_attempt_at: Option<String>,
    pub last_http_status: Option<u16>,
    pub last_error: Option<String>,
    #[schema(format = DateTime)]
    pub finished_at: Option<String>,
}

/// One attempt of a delivery.
#[derive(Debug, ToSchema)]
pub struct AttemptEntry {
    pub attempt: u32,
    #[schema(format = DateTime)]
    pub at: String,
    pub http_status: Option<u16>,
    pub error: Option<String>,
    /// The start of the CRM's answer.
    pub response: Option<String>,
    pub elapsed_ms: u64,
    pub retry_in_ms: Option<u64>,
}

/// One HTTP request made for a notification rule.
#[derive(Debug, ToSchema)]
pub struct DeliveryRequest {
    pub rule_id: String,
    pub event: String,
    pub call_id: String,
    pub method: String,
    pub url: String,
    /// `[name, value]` pairs.
    pub headers: Vec<Vec<String>>,
    pub body: Option<String>,
    pub idempotency_key: String,
}

/// What a test send did and what the CRM answered.
#[derive(Debug, ToSchema)]
pub struct TestOutcome {
    pub request: DeliveryRequest,
    /// The CRM's HTTP status, when it answered.
    pub status: Option<u16>,
    /// What went wrong (network error, timeout, or a non-2xx status).
    pub error: Option<String>,
    /// The start of the CRM's answer.
    pub response: Option<String>,
    pub elapsed_ms: u64,
}

/// Where the listener is, or why it is not.
#[derive(Debug, ToSchema)]
pub struct ListenerState {
    pub url: Option<String>,
    /// `ip:port`.
    pub addr: Option<String>,
    pub problem: Option<String>,
}

/// What a saved configuration did.
#[derive(Debug, ToSchema)]
pub struct Saved {
    /// The file written, when there is one.
    pub path: Option<String>,
    /// The listener was started again (new port, address or command segments).
    pub listener_restarted: bool,
    pub listener: ListenerState,
}

/// How a provider-form field is edited: `text`, `number` (with `min`, `max`), `url`, `bool`,
/// `secret` (with `entry`, the keyring entry the configuration names in its key `entry_key`) or
/// `choice` (with `options`).
#[derive(Debug, ToSchema)]
pub struct FormField {
    pub key: String,
    pub label: String,
    #[schema(rename = "type")]
    pub input: String,
    pub min: Option<u64>,
    pub max: Option<u64>,
    pub entry: Option<String>,
    pub entry_key: Option<String>,
    pub options: Option<Vec<String>>,
    pub required: bool,
    pub help: String,
    pub placeholder: Option<String>,
}

/// A phone system as the settings page presents it.
#[derive(Debug, ToSchema)]
pub struct ProviderForm {
    /// The `kind` value in `[provider]`.
    pub kind: String,
    pub label: String,
    pub description: String,
    pub fields: Vec<FormField>,
}

/// Whether one keyring entry of the provider forms is set (never its value).
#[derive(Debug, ToSchema)]
pub struct SecretState {
    pub entry: String,
    pub set: bool,
}

/// The whole configuration, as `config.toml` holds it (docs/configuration.md). Every section may be
/// left out; what is left out takes its default. Unknown keys are refused.
#[derive(Debug, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({
    "security": {"dials_per_minute": 0},
    "provider": {"kind": "simulator", "simulator": {"ring_after_ms": 100, "answer_after_ms": 500, "hangup_after_ms": 1000}},
    "notification": [{"event": "incoming", "method": "GET", "url": "http://127.0.0.1:8080/crm/incoming?number=$callerid"}]
}))]
pub struct Config {
    /// File format version (1); files from a newer CallBridge are refused.
    #[schema(required = false)]
    pub version: u32,
    #[schema(required = false)]
    pub listener: ListenerConfig,
    #[schema(required = false)]
    pub dialing: DialingConfig,
    #[schema(required = false)]
    pub delivery: DeliveryConfig,
    #[schema(required = false)]
    pub provider: ProviderConfig,
    #[schema(required = false)]
    pub security: SecurityConfig,
    #[schema(required = false)]
    pub store: StoreConfig,
    #[schema(required = false)]
    pub desktop: DesktopConfig,
    /// `[lookup]`: the caller lookup in the CRM (URL template, method, body, headers, keyring entry of
    /// the API key, number forms, JSON pointers, timeout, cache); see docs/lookup.md.
    #[schema(required = false, value_type = Object)]
    pub lookup: serde_json::Value,
    /// What to call when a call rings, is answered or ends.
    #[schema(required = false)]
    pub notification: Vec<NotificationRule>,
    /// `PUT` only: the revision of the configuration this one was edited from (as `GET` answered
    /// it); when the configuration changed since, nothing is saved and the answer is 409 `stale`.
    #[schema(required = false)]
    pub revision: Option<String>,
}

/// `[listener]`. The command segments are letters, digits, `-` and `_`, and not `api`, `health`,
/// `webhooks`, `ui` or `assets`.
#[derive(Debug, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ListenerConfig {
    #[schema(required = false)]
    pub port: u16,
    /// An IP address; loopback by default.
    #[schema(required = false)]
    pub bind: String,
    #[schema(required = false, pattern = "^[A-Za-z0-9_-]{1,64}$")]
    pub make: String,
    #[schema(required = false, pattern = "^[A-Za-z0-9_-]{1,64}$")]
    pub answer: String,
    #[schema(required = false, pattern = "^[A-Za-z0-9_-]{1,64}$")]
    pub end: String,
}

/// `[dialing]`.
#[derive(Debug, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DialingConfig {
    /// A two-letter ISO 3166 country code (`GB`) used to read national numbers.
    pub default_country: Option<String>,
}

/// `[delivery]`: how notifications to the CRM are sent and retried.
#[derive(Debug, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DeliveryConfig {
    #[schema(required = false)]
    pub timeout_secs: u64,
    #[schema(required = false)]
    pub retry_initial_ms: u64,
    #[schema(required = false)]
    pub retry_max_delay_secs: u64,
    #[schema(required = false)]
    pub max_age_hours: u32,
}

/// `[provider] kind`: the name of one of the providers CallBridge knows. The names come from the
/// provider list, so a new provider is documented without a change here.
#[derive(Debug)]
pub struct ProviderKind;

impl PartialSchema for ProviderKind {
    fn schema() -> RefOr<Schema> {
        let names: Vec<&str> = PROVIDERS.iter().map(|kind| kind.as_str()).collect();
        ObjectBuilder::new()
            .schema_type(Type::String)
            .description(Some(format!("The phone system that places the calls: {}.", names.join(", "))))
            .enum_values(Some(names))
            .into()
    }
}

impl ToSchema for ProviderKind {}

/// `[provider]`: which phone system places the calls, and each one's settings. The tables of the
/// phone systems other than the simulator are described on the settings page's forms
/// (`GET /api/v1/providers`); here they are objects, one per provider in the provider list.
#[derive(Debug)]
pub struct ProviderConfig;

impl PartialSchema for ProviderConfig {
    fn schema() -> RefOr<Schema> {
        let mut object = ObjectBuilder::new()
            .description(Some("`[provider]`: which phone system places the calls, and each one's settings."))
            .property("kind", Ref::from_schema_name(ProviderKind::name()))
            .additional_properties(Some(AdditionalProperties::<Schema>::FreeForm(false)));
        for &kind in PROVIDERS {
            object = match kind {
                registry::ProviderKind::Simulator => object.property(kind.as_str(), Ref::from_schema_name(SimulatorConfig::name())),
                _ => object.property(kind.as_str(), ObjectBuilder::new().schema_type(Type::Object)),
            };
        }
        object.into()
    }
}

impl ToSchema for ProviderConfig {
    fn schemas(schemas: &mut Vec<(String, RefOr<Schema>)>) {
        schemas.push((ProviderKind::name().into_owned(), ProviderKind::schema()));
        schemas.push((SimulatorConfig::name().into_owned(), SimulatorConfig::schema()));
        <SimulatorConfig as ToSchema>::schemas(schemas);
    }
}

/// `[provider.simulator]`: milliseconds until the simulated far end rings, answers and hangs up.
#[derive(Debug, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SimulatorConfig {
    #[schema(required = false)]
    pub ring_after_ms: u64,
    #[schema(required = false)]
    pub answer_after_ms: u64,
    #[schema(required = false)]
    pub hangup_after_ms: u64,
}

/// `[security]`.
#[derive(Debug, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SecurityConfig {
    #[schema(required = false)]
    pub mode: SecurityMode,
    #[schema(required = false)]
    pub trusted_origins: Vec<String>,
    /// 0 = no limit.
    #[schema(required = false)]
    pub dials_per_minute: u32,
    #[schema(required = false)]
    pub allow_numbers: Vec<String>,
    #[schema(required = false)]
    pub deny_numbers: Vec<String>,
    #[schema(required = false)]
    pub token_entry: String,
    #[schema(required = false)]
    pub allowed_hosts: Vec<String>,
}

/// `crash` or `power-loss`.
#[derive(Debug, ToSchema)]
#[schema(rename_all = "kebab-case")]
pub enum Durability {
    Crash,
    PowerLoss,
}

/// `[store]`.
#[derive(Debug, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StoreConfig {
    pub path: Option<String>,
    #[schema(required = false)]
    pub history_days: u32,
    #[schema(required = false)]
    pub durability: Durability,
}

/// `[desktop]`: the tray app's settings (the headless binary keeps but ignores them).
#[derive(Debug, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DesktopConfig {
    #[schema(required = false)]
    pub popups: bool,
    #[schema(required = false)]
    pub notifications: bool,
    #[schema(required = false)]
    pub do_not_disturb: bool,
    /// "Open in CRM" URL template (`$callerid` and the like are filled in).
    pub crm_url: Option<String>,
    #[schema(required = false)]
    pub dial_shortcut: String,
    /// Open the caller's CRM record by itself: `never`, `incoming` or `answered`.
    #[schema(required = false)]
    pub open_crm_on: OpenCrmOn,
}

/// `[desktop] open_crm_on`.
#[derive(Debug, ToSchema)]
#[schema(rename_all = "lowercase")]
pub enum OpenCrmOn {
    Never,
    Incoming,
    Answered,
}

/// `GET` or `POST` (lower case is read too).
#[derive(Debug, ToSchema)]
pub enum HttpMethod {
    #[schema(rename = "GET")]
    Get,
    #[schema(rename = "POST")]
    Post,
    #[schema(rename = "get")]
    LowerGet,
    #[schema(rename = "post")]
    LowerPost,
}

/// One `[[notification]]`: the request to make for one kind of call event.
#[derive(Debug, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"event": "ended", "method": "POST", "url": "http://127.0.0.1:8080/crm/ended", "headers": {"X-Source": "callbridge"}}))]
pub struct NotificationRule {
    /// Stable id; `{event}-{n}` when left out.
    #[schema(required = false)]
    pub id: String,
    pub event: CallEventKind,
    /// Only calls of this direction; all directions when left out.
    pub direction: Option<Direction>,
    #[schema(required = false)]
    pub method: HttpMethod,
    /// URL template: `http://` or `https://`, with `$callerid` and the like filled in.
    pub url: String,
    /// POST body template; without it a POST sends the call as JSON.
    pub body: Option<String>,
    #[schema(required = false)]
    pub headers: BTreeMap<String, String>,
    #[schema(required = false)]
    pub active: bool,
    #[schema(required = false)]
    pub note: String,
}

/// `PUT /api/v1/config`: what the save did and the configuration now in force, with its revision.
#[derive(Debug, ToSchema)]
pub struct SaveAnswer {
    pub ok: bool,
    pub saved: Saved,
    pub config: Config,
    pub revision: String,
}

/// `PUT /api/v1/config` with a `revision` that is no longer the one in force: nothing was saved;
/// `config` is the configuration in force and `revision` its revision. (A port that cannot be listened
/// on is also a 409, with `error` `invalid` and `field` `listener.port`, and no `config`.)
#[derive(Debug, ToSchema)]
pub struct StaleAnswer {
    pub ok: bool,
    /// `stale` (or `invalid` for a taken port).
    pub error: String,
    pub message: String,
    #[schema(required = false)]
    pub config: Option<Config>,
    #[schema(required = false)]
    pub revision: Option<String>,
    #[schema(required = false)]
    pub field: Option<String>,
}

/// One placeholder a template may use (`$callerid`), and what it stands for.
#[derive(Debug, ToSchema)]
pub struct PlaceholderInfo {
    pub name: String,
    pub description: String,
}

/// The range of one numeric setting.
#[derive(Debug, ToSchema)]
pub struct Limit {
    /// The setting's path in the configuration (`lookup.timeout_ms`).
    pub field: String,
    pub min: u64,
    pub max: u64,
    /// Another setting the value may not exceed either.
    #[schema(required = false)]
    pub at_most: Option<String>,
}

/// `GET /api/v1/settings/schema`: what the settings page validates against.
#[derive(Debug, ToSchema)]
pub struct SchemaAnswer {
    pub ok: bool,
    /// The revision of the configuration in force.
    pub revision: String,
    /// Every placeholder a notification, lookup or CRM-page template may use.
    pub placeholders: Vec<PlaceholderInfo>,
    /// Command segments that are CallBridge's own paths.
    pub reserved_segments: Vec<String>,
    /// The longest command segment, in characters.
    pub segment_max_len: u64,
    /// The bounds of every numeric setting.
    pub limits: Vec<Limit>,
    pub current: ProviderKind,
    /// Each phone system's form, its secret fields naming the keyring entries the configuration names.
    pub providers: Vec<ProviderForm>,
}

/// `GET /api/v1/listener`.
#[derive(Debug, ToSchema)]
pub struct ListenerAnswer {
    pub ok: bool,
    pub listener: ListenerState,
}

/// `POST /api/v1/notifications/test`.
#[derive(Debug, ToSchema)]
pub struct TestAnswer {
    pub ok: bool,
    pub test: TestOutcome,
}

/// `POST /api/v1/lookup/test`: `outcome` (`found`, `no_match`, `failed` with `error`), `attempts` (each
/// number form tried, with the request sent — the API key masked — and the CRM's answer), `contact`
/// and `elapsed_ms`.
#[derive(Debug, ToSchema)]
pub struct LookupTestAnswer {
    pub ok: bool,
    #[schema(value_type = Object)]
    pub test: serde_json::Value,
}

/// `GET /api/v1/providers`: the phone system in use and every one's form.
#[derive(Debug, ToSchema)]
pub struct ProvidersAnswer {
    pub ok: bool,
    pub current: ProviderKind,
    pub providers: Vec<ProviderForm>,
}

/// `GET /api/v1/secrets`.
#[derive(Debug, ToSchema)]
pub struct SecretsAnswer {
    pub ok: bool,
    pub secrets: Vec<SecretState>,
}

/// `PUT` and `DELETE /api/v1/secrets/{entry}`: the entry and whether it is set now.
#[derive(Debug, ToSchema)]
pub struct SecretAnswer {
    pub ok: bool,
    pub entry: String,
    pub set: bool,
    /// With `DELETE`: whether there was a secret to remove.
    #[schema(required = false)]
    pub removed: Option<bool>,
}

/// `GET /api/v1/calls/{id}/crm-url`.
#[derive(Debug, ToSchema)]
pub struct CrmUrlAnswer {
    pub ok: bool,
    pub url: String,
}

/// An ELMA365-style call event. `event` is `NotifyStart`, `NotifyAnswer` or `NotifyEnd`; for incoming
/// calls `srcPhone` is the caller and `dstPhone` the line, for outgoing ones the other way round. Any
/// field may also be a number.
#[derive(Debug, ToSchema)]
#[schema(example = json!({"event": "NotifyStart", "direction": "in", "srcPhone": "+442079460002", "dstPhone": "101", "callId": "elma-1"}))]
pub struct ElmaEvent {
    pub event: String,
    pub direction: Direction,
    #[schema(rename = "srcPhone")]
    pub src_phone: String,
    #[schema(rename = "dstPhone")]
    pub dst_phone: String,
    #[schema(rename = "srcPhoneExt")]
    pub src_phone_ext: Option<String>,
    #[schema(rename = "dstPhoneExt")]
    pub dst_phone_ext: Option<String>,
    #[schema(rename = "callId")]
    pub call_id: Option<String>,
    /// `Answered`, `NoAnswer`, `Busy`, `Failed`, `Cancelled` or `Unknown`.
    pub disposition: Option<String>,
}

/// VoipNow Call Events fields (names are matched without regard to case); `ev` names the event.
#[derive(Debug, ToSchema)]
#[schema(example = json!({"ev": "dialin", "CallID": "voipnow-1", "CallerIDNum": "+442079460003", "CalledExtension": "210", "CallFlow": "IN"}))]
pub struct VoipNowEvent {
    pub ev: Option<String>,
    #[schema(rename = "CallID")]
    pub call_id: Option<String>,
    #[schema(rename = "CallerIDNum")]
    pub caller_id_num: Option<String>,
    #[schema(rename = "CallerIDName")]
    pub caller_id_name: Option<String>,
    #[schema(rename = "CalledDID")]
    pub called_did: Option<String>,
    #[schema(rename = "CalledExtension")]
    pub called_extension: Option<String>,
    #[schema(rename = "CalledNumber")]
    pub called_number: Option<String>,
    #[schema(rename = "CallerExtension")]
    pub caller_extension: Option<String>,
    #[schema(rename = "CallStatus")]
    pub call_status: Option<String>,
    #[schema(rename = "CallFlow")]
    pub call_flow: Option<String>,
}

/// A Kazoo channel webhook: `hook_event` and the channel's fields (`call_id`, `call_direction`,
/// `caller_id_number`, `callee_id_number`, `other_leg_call_id`, `account_id`, …).
#[derive(Debug, ToSchema)]
#[schema(example = json!({"hook_event": "channel_create", "call_id": "kazoo-1", "call_direction": "inbound", "caller_id_number": "+442079460004", "callee_id_number": "210"}))]
pub struct KazooEvent {
    /// `channel_create`, `channel_answer`, `channel_bridge` or `channel_destroy`.
    pub hook_event: String,
    pub call_id: Option<String>,
    pub call_direction: Option<String>,
    pub caller_id_number: Option<String>,
    pub callee_id_number: Option<String>,
    pub account_id: Option<String>,
}

/// A TeleCMI live event or CDR (`type`, `direction`, `status`, `from`, `to`, `cmiuuid`, …), or a list
/// of them.
#[derive(Debug, ToSchema)]
pub struct TelecmiEvent {
    #[schema(rename = "type")]
    pub kind: Option<String>,
    pub direction: Option<String>,
    pub status: Option<String>,
    pub from: Option<String>,
    pub to: Option<String>,
    pub cmiuuid: Option<String>,
    pub request_id: Option<String>,
}

/// A call event a webhook produced.
#[derive(Debug, ToSchema)]
pub struct ProducedEvent {
    pub event: CallEventKind,
    pub call_id: String,
}

/// What a generic webhook was read as.
#[derive(Debug, ToSchema)]
pub struct GenericUnderstood {
    pub event: ProviderEventKind,
    pub direction: Option<Direction>,
    pub number: Option<String>,
    pub extension: Option<String>,
    pub call_id: Option<String>,
}

/// `POST|GET /webhooks/generic`.
#[derive(Debug, ToSchema)]
pub struct GenericAnswer {
    pub ok: bool,
    pub understood: GenericUnderstood,
    pub events: Vec<ProducedEvent>,
}

/// What a Kazoo webhook was read as.
#[derive(Debug, ToSchema)]
pub struct KazooUnderstood {
    pub event: ProviderEventKind,
    pub direction: Option<Direction>,
    pub number: Option<String>,
    pub call_id: Option<String>,
}

/// `POST|GET /webhooks/kazoo`: what was understood, or (another account's event) why it was ignored.
#[derive(Debug, ToSchema)]
pub struct KazooAnswer {
    pub ok: bool,
    #[schema(required = false)]
    pub understood: Option<KazooUnderstood>,
    #[schema(required = false)]
    pub events: Option<Vec<ProducedEvent>>,
    #[schema(required = false)]
    pub ignored: Option<String>,
}

/// What one TeleCMI event was read as.
#[derive(Debug, ToSchema)]
pub struct TelecmiUnderstood {
    pub kind: ProviderEventKind,
    pub direction: Option<Direction>,
}

/// `POST|GET /webhooks/telecmi`.
#[derive(Debug, ToSchema)]
pub struct TelecmiAnswer {
    pub ok: bool,
    pub understood: Vec<TelecmiUnderstood>,
    pub events: Vec<ProducedEvent>,
}
