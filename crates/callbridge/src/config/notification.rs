//! The `[[notification]]` rules and the `[delivery]` section: what to send the CRM for which call
//! event, and how hard to try.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::call::{CallEventKind, Direction};
use crate::notify::template::{Template, UrlTemplate};

/// HTTP method of a notification.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Method {
    #[default]
    #[serde(alias = "get")]
    Get,
    #[serde(alias = "post")]
    Post,
}

/// One notification: VoipNow's per-event request row, of which Enreach's three URLs are the simple case.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NotificationRule {
    /// Stable id, used in idempotency keys and the delivery log. Defaults to `{event}-{n}`.
    #[serde(default)]
    pub id: String,
    pub event: CallEventKind,
    /// Only calls of this direction; all directions when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub direction: Option<Direction>,
    #[serde(default)]
    pub method: Method,
    pub url: UrlTemplate,
    /// POST body; without it a POST sends the call as JSON.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<Template>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, Template>,
    #[serde(default = "yes")]
    pub active: bool,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub note: String,
}

fn yes() -> bool {
    true
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DeliveryConfig {
    /// How long one notification request may take before it counts as failed.
    pub timeout_secs: u64,
    /// The wait before the first retry of a failed notification; it doubles with each further failure.
    pub retry_initial_ms: u64,
    /// The longest wait between two retries.
    pub retry_max_delay_secs: u64,
    /// How long after the call event a failing notification is still retried.
    pub max_age_hours: u32,
}

impl Default for DeliveryConfig {
    fn default() -> Self {
        DeliveryConfig { timeout_secs: 10, retry_initial_ms: 1_000, retry_max_delay_secs: 3_600, max_age_hours: 24 }
    }
}
