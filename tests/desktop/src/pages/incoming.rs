//! The incoming-call popup (`ui/incoming.html`).

use thirtyfour::prelude::*;

use super::{element, wait_ready, wait_text};
use crate::testid::*;

#[derive(Debug)]
pub struct IncomingPopup<'a> {
    driver: &'a WebDriver,
}

impl<'a> IncomingPopup<'a> {
    pub async fn ready(driver: &'a WebDriver) -> IncomingPopup<'a> {
        wait_ready(driver).await;
        IncomingPopup { driver }
    }

    pub async fn number(&self) -> String {
        wait_text(self.driver, INCOMING_NUMBER, "the caller's number", |t| !t.is_empty()).await
    }

    pub async fn name(&self) -> String {
        element(self.driver, INCOMING_NAME).await.text().await.expect("text")
    }

    /// Clicks "Open in CRM" and returns the status line ("Opened URL" or the error).
    pub async fn open_in_crm(&self) -> String {
        element(self.driver, INCOMING_OPEN_CRM).await.click().await.expect("click");
        wait_text(self.driver, INCOMING_STATUS, "the Open in CRM result", |t| !t.is_empty() && !t.starts_with("Opening")).await
    }

    pub async fn answer(&self) {
        element(self.driver, INCOMING_ANSWER).await.click().await.expect("click");
    }
}
