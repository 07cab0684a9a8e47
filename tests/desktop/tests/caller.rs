//! Knowing who calls, in the tray app: the incoming popup fills in the CRM's answer to the caller
//! lookup, "Open in CRM" and the automatic screen pop open the caller's own record (once per call),
//! and a missed call raises a notification that calls back through the dial popup and is counted in
//! the tray until the user looks. The CRM is a real HTTP server on loopback; the notification server
//! and the tray host are fakes on the test's own session bus (see `callbridge_desktop_e2e::fakes`).
// Xvfb, tauri-driver with WebKitWebDriver and /proc: the desktop e2e runs on Linux only.
#![cfg(target_os = "linux")]

use std::time::Duration;

use callbridge_desktop_e2e::fakes::{LookupCrm, Notifications, Shown, TrayHost, ADA};
use callbridge_desktop_e2e::harness::free_port;
use callbridge_desktop_e2e::pages::dial::DialPopup;
use callbridge_desktop_e2e::pages::incoming::IncomingPopup;
use callbridge_desktop_e2e::pages::settings::SettingsPage;
use callbridge_desktop_e2e::pages::wait_text;
use callbridge_desktop_e2e::testid::INCOMING_NAME;
use callbridge_desktop_e2e::DesktopApp;
use callbridge_e2e::{eventually, eventually_async};
use serde_json::{json, Value};

const WAIT: Duration = Duration::from_secs(20);

/// The app's config: the simulator, a caller lookup at `crm` (waiting up to 10 s for it) and `desktop`
/// under `[desktop]`.
fn config(port: u16, crm: &LookupCrm, desktop: &str) -> String {
    format!(
        "[listener]\nport = {port}\n\n[provider.simulator]\nring_after_ms = 100\nanswer_after_ms = 0\n\n\
         [lookup]\nurl = \"{}/contacts?phone=$callerid\"\nnumber_forms = [\"e164\"]\ncompany_pointer = \"/company/name\"\n\
         record_url_pointer = \"/url\"\ntimeout_ms = 10000\n\n[desktop]\ncrm_url = \"https://crm.example.com/search?phone=$callerid\"\n{desktop}",
        crm.url()
    )
}

/// Rings a simulated call from `number` and returns its id.
async fn ring(app: &DesktopApp, number: &str) -> String {
    let (status, rang) = app.post("/api/v1/simulate/incoming", json!({ "number": number })).await;
    assert_eq!(status, 200, "{rang}");
    rang["call_id"].as_str().expect("call id").to_owned()
}

async fn call(app: &DesktopApp, id: &str) -> Value {
    app.get(&format!("/api/v1/calls/{id}")).await.1["call"].clone()
}

/// Ends call `id` unanswered (the engine records it as missed) and waits until it has ended.
async fn end_unanswered(app: &DesktopApp, id: &str) {
    let (status, body) = app.post("/api/v1/hangup", json!({ "call_id": id })).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["call"]["disposition"], "missed", "{body}");
}

/// The popup opens with the number while the CRM is still thinking, and fills in the name and company
/// when it answers; "Open in CRM" then opens the caller's own record, not the search template.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_popup_shows_the_number_first_then_the_caller_and_opens_their_record() {
    let crm = LookupCrm::start().await;
    let app = DesktopApp::launch(&config(free_port(), &crm, ""), &["--open", "settings"]).await;
    SettingsPage::ready(&app.driver).await;
    let known = app.driver.windows().await.expect("windows");

    let id = ring(&app, ADA).await;
    let popup_window = app.switch_to_new_window(&known, "the incoming-call popup").await;
    let popup = IncomingPopup::ready(&app.driver).await;
    assert_eq!(popup.number().await, ADA, "the number shows at once");
    // The CRM was asked and has not answered: the popup is not waiting for it.
    eventually(WAIT, "the CRM to be asked", || crm.asked().contains(&ADA.to_owned()).then_some(())).await;
    assert_eq!(popup.name().await, "", "no name before the CRM answers");
    assert!(call(&app, &id).await["remote_name"].is_null());

    crm.release();
    let shown = wait_text(&app.driver, INCOMING_NAME, "the looked-up caller in the popup", |t| !t.is_empty()).await;
    assert_eq!(shown, "Ada Lovelace — Acme Corp");
    assert_eq!(popup.number().await, ADA);
    app.screenshot_from_display("incoming-popup-lookup.png").await;

    let record = format!("{}/contacts/42", crm.url());
    assert_eq!(call(&app, &id).await["record_url"], record.as_str());
    let opened = popup.open_in_crm().await;
    assert!(opened.contains(&record), "{opened}");
    eventually(WAIT, "the OS to be asked to open the record", || (app.opened_urls() == [record.clone()]).then_some(())).await;

    end_unanswered(&app, &id).await;
    app.wait_window_closed(&popup_window, "the popup to close when the call ends").await;
    app.quit().await;
}

/// `open_crm_on = "incoming"` opens the caller's record by itself, once per call — not again when the
/// lookup's `updated` event follows — and not at all in Do not disturb.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_screen_pop_opens_the_record_once_per_call_and_not_in_do_not_disturb() {
    let crm = LookupCrm::start().await;
    let app = DesktopApp::launch(&config(free_port(), &crm, "open_crm_on = \"incoming\"\n"), &["--open", "settings"]).await;
    SettingsPage::ready(&app.driver).await;

    let id = ring(&app, ADA).await;
    // The pop waits for the lookup, which waits for the CRM.
    eventually(WAIT, "the CRM to be asked", || crm.asked().contains(&ADA.to_owned()).then_some(())).await;
    crm.release();
    let record = format!("{}/contacts/42", crm.url());
    eventually(WAIT, "the record to open by itself", || (!app.opened_urls().is_empty()).then_some(())).await;
    eventually_async(WAIT, "the lookup's update", || async { (call(&app, &id).await["remote_name"] == "Ada Lovelace").then_some(()) }).await;
    end_unanswered(&app, &id).await;
    eventually_async(WAIT, "the call to end", || async { (call(&app, &id).await["state"] == "ended").then_some(()) }).await;
    // Whatever was going to be opened for this call has been by now (the pop only waits for the lookup).
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(app.opened_urls(), std::slice::from_ref(&record), "opened exactly once, the caller's own record");

    // Do not disturb: the next call opens nothing.
    let (_, body) = app.get("/api/v1/config").await;
    let mut quiet = body["config"].clone();
    quiet["desktop"]["do_not_disturb"] = json!(true);
    let saved = callbridge_e2e::bridge::request(reqwest::Client::new().put(format!("{}/api/v1/config", app.api)).json(&quiet)).await;
    assert_eq!(saved.0, 200, "{}", saved.1);
    let id = ring(&app, ADA).await;
    eventually_async(WAIT, "the second call's lookup", || async { (call(&app, &id).await["remote_name"] == "Ada Lovelace").then_some(()) }).await;
    end_unanswered(&app, &id).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(app.opened_urls(), [record], "nothing opened in Do not disturb");
    app.quit().await;
}

/// The missed-call notification the server received.
fn missed_notification(shown: &[Shown]) -> Option<Shown> {
    shown.iter().find(|n| n.summary.starts_with("Missed call")).cloned()
}

/// A call that rang out unanswered raises "Missed call from Ada Lovelace"; the tray counts it until the
/// user looks; clicking the notification opens the dial popup with her number in it, dials nothing,
/// and clears the count.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missed_call_notifies_counts_in_the_tray_and_calls_back_through_the_dial_popup() {
    let crm = LookupCrm::start().await;
    crm.release();
    let config = config(free_port(), &crm, "popups = false\n");
    let (app, (notifications, tray)) =
        DesktopApp::launch_with_bus(&config, &["--open", "settings"], |bus| (Notifications::start(bus), TrayHost::start(bus))).await;
    SettingsPage::ready(&app.driver).await;
    let known = app.driver.windows().await.expect("windows");
    let labels = eventually(WAIT, "the tray icon's menu on the tray host", || tray.menu_labels()).await;
    assert!(labels.iter().all(|l| !l.starts_with("Missed calls")), "{labels:?}");

    let id = ring(&app, ADA).await;
    eventually_async(WAIT, "the lookup's name", || async { (call(&app, &id).await["remote_name"] == "Ada Lovelace").then_some(()) }).await;
    end_unanswered(&app, &id).await;

    let missed = eventually(WAIT, "the missed-call notification", || missed_notification(&notifications.shown())).await;
    assert_eq!(missed.summary, "Missed call from Ada Lovelace", "{:?}", notifications.shown());
    assert!(missed.body.contains(ADA), "{missed:?}");
    assert!(missed.actions.chunks(2).any(|a| a[0] == "default"), "a click on it is an action: {missed:?}");
    assert!(notifications.shown().iter().any(|n| n.summary == "Incoming call" && n.body.contains(ADA)), "{:?}", notifications.shown());

    let labels = eventually(WAIT, "the tray to count the missed call", || {
        tray.menu_labels().filter(|l| l.iter().any(|l| l == "Missed calls: 1"))
    })
    .await;
    let recent = format!("{ADA} — Ada Lovelace (missed)");
    assert!(labels.contains(&recent), "the recent call is marked missed: {labels:?}");

    let (_, before) = app.get("/api/v1/calls").await;
    let outgoing = |calls: &Value| calls["calls"].as_array().map(|c| c.iter().filter(|c| c["direction"] == "out").count());
    notifications.invoke(missed.id, "default");
    app.switch_to_new_window(&known, "the dial popup, from the notification").await;
    let popup = DialPopup::ready(&app.driver).await;
    assert_eq!(popup.number().await, ADA, "prefilled to call back");
    let entries = popup.recent().await;
    assert!(entries.iter().any(|(text, missed)| *missed && text.contains(ADA) && text.contains("(missed)")), "{entries:?}");

    // Looking clears the count; and nothing was dialed by the click.
    eventually(WAIT, "the count to clear once the popup is open", || {
        tray.menu_labels().filter(|l| !l.iter().any(|l| l.starts_with("Missed calls")))
    })
    .await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let (_, after) = app.get("/api/v1/calls").await;
    assert_eq!(outgoing(&after), outgoing(&before), "the notification dialed nothing: {after}");
    assert_eq!(outgoing(&after), Some(0));
    app.quit().await;
}
