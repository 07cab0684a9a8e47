//! Asking the user before a web page that is not trusted places a call.
//!
//! A dial command from a browser page whose origin is not on the trusted list (or a cross-site request
//! that does not say where it came from) never dials silently: the engine asks its [`DialApprover`].
//! The desktop shell implements it as a dialog — Call / Block / Always allow this site — and the
//! engine adds an "always allowed" origin to `[security] trusted_origins` and saves the config. The
//! headless binary has nobody to ask: [`RefuseApprover`] refuses, and the 403 says how to let the
//! site through (trust its origin, or give it the token).

use async_trait::async_trait;
use serde::Serialize;

/// What the approver is asked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ApprovalRequest {
    /// The page's origin (`https://crm.example.com`) when the browser said; `None` when it did not
    /// (then "Always allow" cannot be remembered and should not be offered).
    pub origin: Option<String>,
    /// What would be dialed (E.164 when known).
    pub number: String,
    /// The number as the request wrote it.
    pub input: String,
    /// Why the request needs approval, in words for the dialog ("the page https://… is not a trusted origin").
    pub reason: String,
}

/// The user's answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Approval {
    /// Place this call.
    Allow,
    /// Place this call, and trust the origin from now on.
    AllowAlways,
    /// Do not place it.
    Deny,
}

/// Decides about dial commands from pages that are not trusted. Set through
/// the engine's `Services::approver`.
#[async_trait]
pub trait DialApprover: Send + Sync + std::fmt::Debug {
    /// Asks. The engine gives up after [`super::APPROVAL_TIMEOUT`] and refuses the call.
    async fn approve(&self, request: &ApprovalRequest) -> Approval;

    /// Whether anyone is asked at all. `false` makes the refusal say so instead of "the user blocked it".
    fn asks_the_user(&self) -> bool {
        true
    }
}

/// The headless default: there is nobody to ask, so every such call is refused.
#[derive(Debug, Clone, Copy, Default)]
pub struct RefuseApprover;

#[async_trait]
impl DialApprover for RefuseApprover {
    async fn approve(&self, _request: &ApprovalRequest) -> Approval {
        Approval::Deny
    }

    fn asks_the_user(&self) -> bool {
        false
    }
}
