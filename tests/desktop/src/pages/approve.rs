//! The approval dialog (`ui/approve.html`): a web page that is not trusted asked to dial.

use thirtyfour::prelude::*;

use super::{element, wait_ready};
use crate::testid::*;
use crate::TestId;

#[derive(Debug)]
pub struct ApprovalDialog<'a> {
    driver: &'a WebDriver,
}

impl<'a> ApprovalDialog<'a> {
    pub async fn ready(driver: &'a WebDriver) -> ApprovalDialog<'a> {
        wait_ready(driver).await;
        ApprovalDialog { driver }
    }

    pub async fn number(&self) -> String {
        element(self.driver, APPROVE_NUMBER).await.text().await.expect("text")
    }

    /// The site that asked.
    pub async fn origin(&self) -> String {
        element(self.driver, APPROVE_ORIGIN).await.text().await.expect("text")
    }

    pub async fn call(&self) {
        self.answer(APPROVE_CALL).await;
    }

    pub async fn block(&self) {
        self.answer(APPROVE_BLOCK).await;
    }

    pub async fn always_allow(&self) {
        self.answer(APPROVE_ALWAYS).await;
    }

    /// Clicks an answer. The app closes the window as it takes the answer, so the click's own reply
    /// may find the window gone: that is the click working.
    async fn answer(&self, id: TestId) {
        if let Err(e) = element(self.driver, id).await.click().await {
            assert!(matches!(*e, thirtyfour::error::WebDriverErrorInner::NoSuchWindow(_)), "click {:?}: {e:?}", id.0);
        }
    }
}
