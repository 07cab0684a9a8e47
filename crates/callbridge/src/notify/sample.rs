//! "Send test": one notification rule sent once, now, with a made-up call, so an admin can see what
//! the CRM answers before a real call comes in.
//!
//! The request goes straight out through a [`Sender`] — not through the outbox — so nothing is queued
//! or retried, and the answer (status, body, error) comes back to the settings page.

use std::time::Duration;

use serde::Serialize;

use super::{render, Attempt, Delivery, Sender};
use crate::call::{Call, CallEvent, CallEventKind, CallState, Direction, Disposition};
use crate::config::notification::NotificationRule;

/// The sample caller every test uses, so the CRM's side can recognise test requests.
pub const SAMPLE_NUMBER: &str = "+442079460000";
pub const SAMPLE_NAME: &str = "CallBridge Test";

/// What a test send did and what came back.
#[derive(Debug, Clone, Serialize)]
pub struct TestOutcome {
    /// The request as sent (method, URL, headers, body).
    pub request: Delivery,
    /// The CRM's answer.
    #[serde(flatten)]
    pub outcome: Attempt,
}

/// A call event that fits `rule`: its event, its direction (incoming when the rule has none and the
/// event does not imply one), the sample caller.
pub fn sample_event(rule: &NotificationRule) -> CallEvent {
    let direction = rule.direction.unwrap_or(match rule.event {
        CallEventKind::Outgoing => Direction::Out,
        _ => Direction::In,
    });
    let mut call = Call::new(direction, SAMPLE_NUMBER, "test");
    call.remote_name = Some(SAMPLE_NAME.into());
    call.local_extension = Some("100".into());
    let now = call.started_at;
    match rule.event {
        CallEventKind::Incoming | CallEventKind::Updated => call.state = CallState::Ringing,
        CallEventKind::Outgoing => call.state = CallState::Dialing,
        CallEventKind::Answered => {
            call.state = CallState::Active;
            call.answered_at = Some(now);
        }
        CallEventKind::Ended => {
            call.state = CallState::Ended;
            call.answered_at = Some(now);
            call.ended_at = Some(now + chrono::Duration::seconds(42));
            call.disposition = Some(Disposition::Answered);
        }
    }
    CallEvent { kind: rule.event, at: now, call }
}

/// Sends `rule` once with [`sample_event`] and returns what happened. Inactive rules are sent too:
/// testing a rule before switching it on is the point.
pub async fn send_test(rule: &NotificationRule, timeout: Duration) -> TestOutcome {
    let event = sample_event(rule);
    let request = render(rule, &event);
    let outcome = Sender::new(timeout).send(&request).await;
    TestOutcome { request, outcome }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Method;
    use crate::notify::template::UrlTemplate;

    fn rule(event: CallEventKind, url: &str) -> NotificationRule {
        NotificationRule {
            id: "t".into(),
            event,
            direction: None,
            method: Method::Get,
            url: UrlTemplate::parse(url).expect("url"),
            body: None,
            headers: Default::default(),
            active: false,
            note: String::new(),
        }
    }

    #[test]
    fn the_sample_fits_the_rule() {
        let out = sample_event(&rule(CallEventKind::Outgoing, "http://x.example/?n=$callerid"));
        assert_eq!((out.call.direction, out.call.state), (Direction::Out, CallState::Dialing));
        let ended = sample_event(&rule(CallEventKind::Ended, "http://x.example/"));
        assert_eq!(ended.call.disposition, Some(Disposition::Answered));
        assert_eq!(ended.call.talk_seconds(ended.at), 42);
    }

    #[tokio::test]
    async fn an_unreachable_crm_is_reported_not_hidden() {
        // Port 9 on loopback (discard) is closed on test machines; the error must say so.
        let got = send_test(&rule(CallEventKind::Incoming, "http://127.0.0.1:9/in?c=$callerid"), Duration::from_secs(5)).await;
        assert_eq!(got.request.url, "http://127.0.0.1:9/in?c=%2B442079460000");
        assert!(got.outcome.status.is_none());
        assert!(got.outcome.error.as_deref().unwrap_or_default().contains("could not connect"), "{:?}", got.outcome);
    }
}
