//! The settings page (`ui/settings.html`).

use thirtyfour::prelude::*;

use super::{element, type_into, value, wait_ready, wait_text};
use crate::testid::*;
use crate::TestId;

#[derive(Debug)]
pub struct SettingsPage<'a> {
    driver: &'a WebDriver,
}

impl<'a> SettingsPage<'a> {
    /// The settings page in the current window, once loaded.
    pub async fn ready(driver: &'a WebDriver) -> SettingsPage<'a> {
        wait_ready(driver).await;
        SettingsPage { driver }
    }

    pub async fn listen_port(&self) -> String {
        value(self.driver, LISTEN_PORT).await
    }

    pub async fn set_listen_port(&self, port: &str) {
        type_into(self.driver, LISTEN_PORT, port).await;
    }

    /// The inline error under Listen Port ("" when none).
    pub async fn listen_port_error(&self) -> String {
        element(self.driver, LISTEN_PORT_ERROR).await.text().await.expect("text")
    }

    /// The live example URL of Make Call.
    pub async fn make_example(&self) -> String {
        element(self.driver, EXAMPLE_MAKE).await.text().await.expect("text")
    }

    pub async fn set_incoming_url(&self, url: &str) {
        type_into(self.driver, ENREACH_INCOMING, url).await;
    }

    pub async fn rule_count(&self) -> usize {
        self.driver.find_all(RULE_ROW.by()).await.expect("rows").len()
    }

    /// Presses "Send test" on the first rule of the per-event table and returns what it showed.
    pub async fn send_test_on_first_rule(&self) -> String {
        element(self.driver, RULE_TEST).await.click().await.expect("click");
        wait_text(self.driver, RULE_TEST_RESULT, "the Send test result", |t| !t.is_empty() && !t.starts_with("Sending")).await
    }

    pub async fn first_rule_url(&self) -> String {
        value(self.driver, RULE_URL).await
    }

    /// The placeholders the page lists (served by the engine), without their `$`.
    pub async fn placeholders(&self) -> Vec<String> {
        let text = wait_text(self.driver, PLACEHOLDER_LIST, "the placeholder list", |t| !t.is_empty()).await;
        text.split_whitespace().map(|p| p.trim_start_matches('$').to_owned()).collect()
    }

    /// Adds a row to the per-event table and types `url` into it.
    pub async fn add_rule(&self, url: &str) {
        let before = self.rule_count().await;
        element(self.driver, RULE_ADD).await.click().await.expect("click");
        let rows = callbridge_e2e::eventually_async(std::time::Duration::from_secs(20), "the new rule row", || async {
            let rows = self.driver.find_all(RULE_URL.by()).await.ok()?;
            (rows.len() > before).then_some(rows)
        })
        .await;
        let input = rows.last().expect("a row");
        input.send_keys(url).await.expect("type");
    }

    /// The inline error of rule row `index` ("" when none).
    pub async fn rule_error(&self, index: usize) -> String {
        let errors = self.driver.find_all(RULE_ERROR.by()).await.expect("rule errors");
        match errors.get(index) {
            Some(e) => e.text().await.expect("text"),
            None => panic!("no rule row {index}"),
        }
    }

    /// The inline error under the field an engine error names (`provider.kazoo.api_url`).
    pub async fn field_error(&self, field: &str, what: &str) -> String {
        let by = By::Css(format!("[data-error=\"{field}\"]"));
        callbridge_e2e::eventually_async(std::time::Duration::from_secs(20), what, || async {
            let text = self.driver.find(by.clone()).await.ok()?.text().await.ok()?;
            (!text.is_empty()).then_some(text)
        })
        .await
    }

    /// Types `value` into the phone system form's secret field `key` (e.g. `sip_password`).
    pub async fn type_secret(&self, key: &str, value: &str) {
        let by = By::Css(format!("[data-testid=\"provider-secret-{key}\"]"));
        let input = callbridge_e2e::eventually_async(std::time::Duration::from_secs(20), "the secret field", || async {
            self.driver.find(by.clone()).await.ok()
        })
        .await;
        input.send_keys(value).await.expect("type");
    }

    /// Chooses the phone system.
    pub async fn choose_provider(&self, kind: &str) {
        let select = element(self.driver, PROVIDER_KIND).await;
        select.find(By::Css(format!("option[value=\"{kind}\"]"))).await.expect("the option").click().await.expect("click");
    }

    pub async fn do_not_disturb(&self) -> bool {
        element(self.driver, DND).await.is_selected().await.expect("checked")
    }

    pub async fn popups(&self) -> bool {
        element(self.driver, POPUPS).await.is_selected().await.expect("checked")
    }

    /// Clicks "Incoming-call popup" (an unsaved edit).
    pub async fn toggle_popups(&self) {
        element(self.driver, POPUPS).await.click().await.expect("click");
    }

    /// Waits until Do not disturb shows `on`.
    pub async fn wait_do_not_disturb(&self, on: bool) {
        callbridge_e2e::eventually_async(std::time::Duration::from_secs(20), "Do not disturb to show the change", || async {
            (self.do_not_disturb().await == on).then_some(())
        })
        .await;
    }

    /// The status line, once `check` holds for it.
    pub async fn status(&self, what: &str, check: impl Fn(&str) -> bool) -> String {
        wait_text(self.driver, SAVE_STATUS, what, check).await
    }

    pub async fn reload_offered(&self) -> bool {
        element(self.driver, RELOAD).await.is_displayed().await.unwrap_or(false)
    }

    pub async fn set_crm_url(&self, url: &str) {
        type_into(self.driver, CRM_URL, url).await;
    }

    /// Clicks Save and returns the status line once it says how it went.
    pub async fn save(&self) -> String {
        element(self.driver, SAVE).await.click().await.expect("click");
        wait_text(self.driver, SAVE_STATUS, "the save result", |t| !t.is_empty() && !t.starts_with("Saving")).await
    }

    pub async fn listener_status(&self, what: &str, check: impl Fn(&str) -> bool) -> String {
        wait_text(self.driver, LISTENER_STATUS, what, check).await
    }

    pub async fn autostart_checked(&self) -> bool {
        element(self.driver, AUTOSTART).await.is_selected().await.expect("checked")
    }

    /// Clicks "Start at login" and waits until the page reports the new state.
    pub async fn toggle_autostart(&self) -> String {
        let was = self.autostart_checked().await;
        element(self.driver, AUTOSTART).await.click().await.expect("click");
        let expected = if was { "will not start" } else { "will start" };
        wait_text(self.driver, SAVE_STATUS, "the Start at login result", |t| t.contains(expected)).await
    }

    /// The rows of the Activity view as it shows them now (after pressing Refresh), read in one go
    /// so a refresh cannot swap rows halfway through; `None` when the page could not be read.
    pub async fn deliveries(&self) -> Option<Vec<DeliveryRow>> {
        element(self.driver, ACTIVITY_REFRESH).await.click().await.ok()?;
        let read = self.driver.execute(READ_DELIVERIES, Vec::new()).await.ok()?;
        read.convert().ok()
    }

    /// Waits until the Activity view shows a delivery for which `check` holds.
    pub async fn wait_delivery(&self, what: &str, check: impl Fn(&DeliveryRow) -> bool) -> DeliveryRow {
        callbridge_e2e::eventually_async(std::time::Duration::from_secs(20), what, || async {
            self.deliveries().await?.into_iter().find(|r| check(r))
        })
        .await
    }

    /// Clicks Retry on delivery `id` and returns what the view said.
    pub async fn retry(&self, id: &str) -> String {
        let button = By::Css(format!("[data-testid=\"delivery-row\"][data-delivery-id=\"{id}\"] {}", css(DELIVERY_RETRY)));
        // The view refreshes itself: a button found just before a refresh is gone by the click, so
        // find and click again until a click lands.
        callbridge_e2e::eventually_async(std::time::Duration::from_secs(20), "the Retry button", || async {
            self.driver.find(button.clone()).await.ok()?.click().await.ok()
        })
        .await;
        wait_text(self.driver, ACTIVITY_RESULT, "the retry result", |t| !t.is_empty() && !t.starts_with("Retrying")).await
    }

    /// Scrolls the Activity view into sight (for screenshots).
    pub async fn show_activity(&self) {
        element(self.driver, ACTIVITY).await.scroll_into_view().await.expect("scroll");
    }
}

fn css(id: TestId) -> String {
    format!("[data-testid=\"{}\"]", id.0)
}

/// Reads every row of the Activity view by its cells' `data-testid`s.
const READ_DELIVERIES: &str = r#"
const cell = (row, id) => (row.querySelector(`[data-testid="${id}"]`) || {}).textContent || "";
return [...document.querySelectorAll('[data-testid="delivery-row"]')].map((row) => ({
  id: row.dataset.deliveryId,
  event: cell(row, "delivery-event"),
  rule: cell(row, "delivery-rule"),
  url: cell(row, "delivery-url"),
  status: cell(row, "delivery-status"),
  attempts: cell(row, "delivery-attempts"),
  error: cell(row, "delivery-error"),
  can_retry: Boolean(row.querySelector('[data-testid="delivery-retry"]')),
}));
"#;

/// One row of the Activity view, as text.
#[derive(Debug, Clone, serde::Deserialize)]
pub struct DeliveryRow {
    pub id: String,
    pub event: String,
    pub rule: String,
    pub url: String,
    pub status: String,
    pub attempts: String,
    pub error: String,
    pub can_retry: bool,
}
