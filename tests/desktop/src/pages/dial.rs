//! The dial popup (`ui/dial.html`).

use thirtyfour::prelude::*;

use super::{element, value, wait_ready, wait_text};
use crate::testid::*;

#[derive(Debug)]
pub struct DialPopup<'a> {
    driver: &'a WebDriver,
}

impl<'a> DialPopup<'a> {
    pub async fn ready(driver: &'a WebDriver) -> DialPopup<'a> {
        wait_ready(driver).await;
        DialPopup { driver }
    }

    pub async fn number(&self) -> String {
        value(self.driver, DIAL_NUMBER).await
    }

    /// Clicks Call and waits until the status names the call's progress or an error.
    pub async fn call(&self) -> String {
        element(self.driver, DIAL_CALL).await.click().await.expect("click");
        wait_text(self.driver, DIAL_STATUS, "the dial status", |t| !t.is_empty() && !t.starts_with("Dialing")).await
    }

    /// Clicks Hang up (shown while the call is live).
    pub async fn hang_up(&self) {
        element(self.driver, DIAL_HANGUP).await.click().await.expect("click");
    }

    /// Clicks Close: the app destroys the popup's window. The click's own answer may be lost with the
    /// window (WebKitWebDriver then says "no such window"): callers check that the window is gone.
    pub async fn close(&self) {
        let _ = element(self.driver, DIAL_CLOSE).await.click().await;
    }

    /// The Recent list: each entry's text and whether it is marked missed.
    pub async fn recent(&self) -> Vec<(String, bool)> {
        let mut entries = Vec::new();
        for item in self.driver.find_all(DIAL_RECENT_ITEM.by()).await.expect("recent items") {
            let text = item.text().await.expect("text");
            let missed = item.attr("data-missed").await.expect("data-missed").as_deref() == Some("true");
            entries.push((text, missed));
        }
        entries
    }

    pub async fn status(&self, what: &str, check: impl Fn(&str) -> bool) -> String {
        wait_text(self.driver, DIAL_STATUS, what, check).await
    }
}
