//! The approval dialog (`ui/approve.html`): a web page that is not trusted asked to dial.

use thirtyfour::prelude::*;

use std::time::Duration;

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

    /// Whether the answer buttons take clicks yet (they wait a second after the dialog appears).
    pub async fn armed(&self) -> bool {
        element(self.driver, APPROVE_CALL).await;
        // Both read in one go, so the dialog's timer cannot fire between the two reads.
        let read = self.driver.execute(READ_ARMED, Vec::new()).await.expect("read the buttons");
        let (armed, enabled): (bool, bool) = read.convert().expect("two booleans");
        assert_eq!(armed, enabled, "the buttons are enabled exactly when the dialog says it takes answers");
        armed
    }

    /// Waits until the buttons take answers.
    pub async fn wait_armed(&self) {
        callbridge_e2e::eventually_async(Duration::from_secs(10), "the dialog's buttons to be enabled", || async {
            self.armed().await.then_some(())
        })
        .await;
    }

    /// Clicks Call the moment the dialog has its content — a click meant for the window underneath —
    /// from inside the page, so no WebDriver round trip comes between the dialog appearing and the
    /// click. Returns whether the buttons took answers at that moment.
    pub async fn click_call_on_arrival(driver: &'a WebDriver) -> bool {
        let clicked = driver.execute_async(CLICK_ON_ARRIVAL, Vec::new()).await.expect("the early click");
        clicked.convert().expect("a boolean")
    }

    pub async fn call(&self) {
        self.wait_armed().await;
        self.answer(APPROVE_CALL).await;
    }

    pub async fn block(&self) {
        self.wait_armed().await;
        self.answer(APPROVE_BLOCK).await;
    }

    pub async fn always_allow(&self) {
        self.wait_armed().await;
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

/// Whether the dialog says it takes answers, and whether its Call button is enabled.
const READ_ARMED: &str = r#"
return [document.body.dataset.armed === "true", !document.querySelector('[data-testid="approve-call"]').disabled];
"#;

/// Waits (in the page) until it is ready, then clicks Call at once and reports whether it was armed.
const CLICK_ON_ARRIVAL: &str = r#"
const done = arguments[arguments.length - 1];
const tick = () => {
  if (document.body.dataset.ready !== "true") return setTimeout(tick, 5);
  const armed = document.body.dataset.armed === "true";
  document.querySelector('[data-testid="approve-call"]').click();
  done(armed);
};
tick();
"#;
