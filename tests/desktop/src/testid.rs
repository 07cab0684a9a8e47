//! The `data-testid` values of the pages (`ui/*.html`, `ui/*.js`): the only way tests find elements.

use thirtyfour::By;

/// A `data-testid` value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TestId(pub &'static str);

impl TestId {
    /// `[data-testid="…"]`.
    pub fn by(self) -> By {
        By::Css(format!("[data-testid=\"{}\"]", self.0))
    }
}

// Settings page.
pub const LISTENER_STATUS: TestId = TestId("listener-status");
pub const LISTEN_PORT: TestId = TestId("listen-port");
pub const LISTEN_PORT_ERROR: TestId = TestId("error-listener.port");
pub const EXAMPLE_MAKE: TestId = TestId("example-make");
pub const ENREACH_INCOMING: TestId = TestId("enreach-incoming");
pub const RULE_ROW: TestId = TestId("rule-row");
pub const RULE_URL: TestId = TestId("rule-url");
pub const RULE_TEST: TestId = TestId("rule-test");
pub const RULE_TEST_RESULT: TestId = TestId("rule-test-result");
pub const AUTOSTART: TestId = TestId("autostart");
pub const CRM_URL: TestId = TestId("crm-url");
pub const SAVE: TestId = TestId("save");
pub const SAVE_STATUS: TestId = TestId("save-status");
pub const RULE_ADD: TestId = TestId("rule-add");
pub const RULE_ERROR: TestId = TestId("rule-error");
pub const PLACEHOLDER_LIST: TestId = TestId("placeholder-list");
pub const PROVIDER_KIND: TestId = TestId("provider-kind");
pub const DND: TestId = TestId("dnd");
pub const POPUPS: TestId = TestId("popups");
pub const RELOAD: TestId = TestId("reload");

// Settings page, Activity view.
pub const ACTIVITY: TestId = TestId("activity");
pub const ACTIVITY_REFRESH: TestId = TestId("activity-refresh");
pub const ACTIVITY_RESULT: TestId = TestId("activity-result");
pub const DELIVERY_ROW: TestId = TestId("delivery-row");
pub const DELIVERY_RETRY: TestId = TestId("delivery-retry");

// Approval dialog.
pub const APPROVE_NUMBER: TestId = TestId("approve-number");
pub const APPROVE_ORIGIN: TestId = TestId("approve-origin");
pub const APPROVE_CALL: TestId = TestId("approve-call");
pub const APPROVE_BLOCK: TestId = TestId("approve-block");
pub const APPROVE_ALWAYS: TestId = TestId("approve-always");

// Dial popup.
pub const DIAL_NUMBER: TestId = TestId("dial-number");
pub const DIAL_CALL: TestId = TestId("dial-call");
pub const DIAL_STATUS: TestId = TestId("dial-status");
pub const DIAL_HANGUP: TestId = TestId("dial-hangup");
pub const DIAL_CLOSE: TestId = TestId("dial-close");
pub const DIAL_RECENT_ITEM: TestId = TestId("dial-recent-item");

// Incoming-call popup.
pub const INCOMING_NUMBER: TestId = TestId("incoming-number");
pub const INCOMING_NAME: TestId = TestId("incoming-name");
pub const INCOMING_ANSWER: TestId = TestId("incoming-answer");
pub const INCOMING_OPEN_CRM: TestId = TestId("incoming-open-crm");
pub const INCOMING_STATUS: TestId = TestId("incoming-status");
