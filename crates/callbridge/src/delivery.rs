//! A notification as the store keeps it and the outbox sends it: one HTTP request ([`Delivery`]) and
//! the result of one attempt at it ([`Attempt`]). The notifier makes deliveries, the store writes them
//! and their attempts, the outbox sends them; these types sit below all three.

use serde::Serialize;

use crate::call::CallId;

/// The header carrying [`Delivery::idempotency_key`], so a CRM can drop repeats.
pub const IDEMPOTENCY_HEADER: &str = "Idempotency-Key";

/// One HTTP request to make for one rule and one call event.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Delivery {
    pub rule_id: String,
    pub event: String,
    pub call_id: CallId,
    pub method: &'static str,
    pub url: String,
    pub headers: Vec<(String, String)>,
    pub body: Option<String>,
    /// `{call id}:{event}:{rule id}`: the same for every attempt of this delivery.
    pub idempotency_key: String,
}

impl Delivery {
    /// The CRM server this request goes to; see [`endpoint_of`].
    pub fn endpoint(&self) -> String {
        endpoint_of(&self.url)
    }
}

/// The endpoint a URL names: its scheme, host and port (`https://crm.example`, `http://10.0.0.5:8080`),
/// that is the server that answers it. A call's notifications to one endpoint go out in event order;
/// notifications to different endpoints never wait for each other. A URL that does not parse is an
/// endpoint of its own (sending to it fails at once).
pub fn endpoint_of(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(parsed) if parsed.has_host() => parsed.origin().ascii_serialization(),
        _ => url.to_owned(),
    }
}

/// The result of one attempt.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Attempt {
    /// The CRM's HTTP status, when it answered.
    pub status: Option<u16>,
    /// What went wrong, when it did, in words for the delivery log ("could not connect: connection
    /// refused by 127.0.0.1:9", "timed out: …", "the CRM answered 503 Service Unavailable").
    pub error: Option<String>,
    /// The start of the CRM's answer, for the settings page's "Send test".
    pub response: Option<String>,
    pub elapsed_ms: u64,
    /// Sending the same request again cannot help: it cannot even be built (a rendered URL or header
    /// value HTTP does not allow), or the CRM's redirects never end.
    #[serde(skip)]
    pub permanent: bool,
}

impl Attempt {
    pub fn succeeded(&self) -> bool {
        self.error.is_none()
    }

    /// A failure worth retrying: no answer at all (or not a usable one), or a server error, 408 or
    /// 429. Any other 4xx is the request's fault.
    pub fn retryable(&self) -> bool {
        match self.status {
            None => self.error.is_some() && !self.permanent,
            Some(s) => s >= 500 || s == 429 || s == 408,
        }
    }
}
