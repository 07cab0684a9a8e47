//! Page objects: what a test can do on each page, in the page's own words.

pub mod approve;
pub mod dial;
pub mod incoming;
pub mod settings;

use std::time::Duration;

use thirtyfour::prelude::*;

use crate::TestId;

/// Waits until the element `id` exists.
pub async fn element(driver: &WebDriver, id: TestId) -> WebElement {
    let mut last = None;
    for _ in 0..200 {
        match driver.find(id.by()).await {
            Ok(e) => return e,
            Err(e) => last = Some(e),
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("no element {:?}: {last:?}", id.0)
}

/// Waits until the page says it has loaded (`<body data-ready="true">`).
pub async fn wait_ready(driver: &WebDriver) {
    callbridge_e2e::eventually_async(Duration::from_secs(20), "the page to load", || async {
        let ready = driver.find(By::Css("body[data-ready=\"true\"]")).await.is_ok();
        ready.then_some(())
    })
    .await;
}

/// Waits until the text of `id` satisfies `check`, and returns it.
pub async fn wait_text(driver: &WebDriver, id: TestId, what: &str, check: impl Fn(&str) -> bool) -> String {
    callbridge_e2e::eventually_async(Duration::from_secs(20), what, || async {
        let text = driver.find(id.by()).await.ok()?.text().await.ok()?;
        check(&text).then_some(text)
    })
    .await
}

/// Replaces the value of the input `id` with `text`, as a user typing would.
pub async fn type_into(driver: &WebDriver, id: TestId, text: &str) {
    let input = element(driver, id).await;
    input.clear().await.expect("clear");
    input.send_keys(text).await.expect("type");
}

/// The value of the input `id`.
pub async fn value(driver: &WebDriver, id: TestId) -> String {
    element(driver, id).await.value().await.expect("value").unwrap_or_default()
}
