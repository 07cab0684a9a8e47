//! The bounds of numeric settings: [`Limit`], and the table of the core settings' bounds, [`LIMITS`].
//! Each provider keeps the bounds of its own section beside it and lists them in its
//! `ProviderSection::limits`. Validation checks against these, the provider forms take their minimum
//! and maximum from them, and the settings page gets all of them from `GET /api/v1/settings/schema`
//! (`provider::registry::limits`), so the page and the engine cannot disagree about a range.

use serde::Serialize;

use super::invalid::Invalid;

/// The range of one numeric setting, named by its path in the configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Limit {
    /// The setting's path as `GET /api/v1/config` shows it (`delivery.timeout_secs`).
    pub field: &'static str,
    pub min: u64,
    pub max: u64,
    /// Another setting the value may not exceed either (TeleCMI's connect timeout and its request
    /// timeout).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub at_most: Option<&'static str>,
    /// The maximum in words (" (an hour)"), or what 0 means.
    #[serde(skip)]
    pub hint: &'static str,
}

impl Limit {
    /// `field` (its path, `delivery.timeout_secs`) is between `min` and `max`; `hint` says the maximum
    /// in words (" (an hour)") or what 0 means.
    pub const fn new(field: &'static str, min: u64, max: u64, hint: &'static str) -> Limit {
        Limit { field, min, max, at_most: None, hint }
    }

    /// The value may not exceed the setting at `field` either.
    pub const fn at_most(self, field: &'static str) -> Limit {
        Limit { at_most: Some(field), ..self }
    }

    /// Whether `value` is within the range; on error the message names the setting and the range.
    pub fn check(&self, value: u64) -> Result<(), Invalid> {
        self.check_up_to(value, self.max)
    }

    /// Like [`Self::check`] with the maximum lowered to `max` (the value of [`Self::at_most`]).
    pub fn check_up_to(&self, value: u64, max: u64) -> Result<(), Invalid> {
        let max = max.min(self.max);
        if (self.min..=max).contains(&value) {
            return Ok(());
        }
        let hint = if max == self.max { self.hint.to_owned() } else { format!(" ({})", self.at_most.unwrap_or_default()) };
        Err(Invalid::new(self.field, format!("{} must be between {} and {max}{hint}; it is {value}", self.field, self.min)))
    }
}

/// The config file format version this build writes; a file with a higher `version` is refused.
pub const CONFIG_VERSION: u32 = 1;

pub const VERSION: Limit = Limit::new("version", 0, CONFIG_VERSION as u64, " (files from a newer CallBridge are refused)");
pub const LISTENER_PORT: Limit = Limit::new("listener.port", 1, 65_535, "");
pub const DELIVERY_TIMEOUT: Limit = Limit::new("delivery.timeout_secs", 1, 300, " (5 minutes)");
pub const DELIVERY_RETRY_INITIAL: Limit = Limit::new("delivery.retry_initial_ms", 1, 3_600_000, " (an hour)");
pub const DELIVERY_RETRY_MAX: Limit = Limit::new("delivery.retry_max_delay_secs", 1, 86_400, " (a day)");
pub const DELIVERY_MAX_AGE: Limit = Limit::new("delivery.max_age_hours", 1, 720, " (30 days)");
pub const DIALS_PER_MINUTE: Limit = Limit::new("security.dials_per_minute", 0, 10_000, " (0 turns the limit off)");
pub const HISTORY_DAYS: Limit = Limit::new("store.history_days", 0, 36_500, " (100 years; 0 keeps history forever)");
pub const LOOKUP_TIMEOUT: Limit = Limit::new("lookup.timeout_ms", 100, 10_000, " milliseconds");
pub const LOOKUP_CACHE_ENTRIES: Limit = Limit::new("lookup.cache_entries", 0, 100_000, " numbers");
pub const LOOKUP_CACHE_TTL: Limit = Limit::new("lookup.cache_ttl_secs", 0, 86_400, " seconds (a day)");
pub const LOOKUP_MISS_TTL: Limit = Limit::new("lookup.miss_ttl_secs", 0, 86_400, " seconds (a day)");

/// The bounds of the numeric settings outside `[provider]`.
pub const LIMITS: &[Limit] = &[
    VERSION,
    LISTENER_PORT,
    DELIVERY_TIMEOUT,
    DELIVERY_RETRY_INITIAL,
    DELIVERY_RETRY_MAX,
    DELIVERY_MAX_AGE,
    DIALS_PER_MINUTE,
    HISTORY_DAYS,
    LOOKUP_TIMEOUT,
    LOOKUP_CACHE_ENTRIES,
    LOOKUP_CACHE_TTL,
    LOOKUP_MISS_TTL,
];

