//! The settings page (`ui/settings.html`).

use thirtyfour::prelude::*;

use super::{element, type_into, value, wait_ready, wait_text};
use crate::testid::*;

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
}
