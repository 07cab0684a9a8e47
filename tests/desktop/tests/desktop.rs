//! The tray app end to end: the real `callbridge-desktop` under Xvfb, driven over WebDriver
//! (tauri-driver + WebKitWebDriver), its effects checked on its HTTP listener, on a fake CRM and on
//! the file system. Run with `scripts/desktop-e2e.sh` (it builds the app and installs tauri-driver).
// Xvfb, tauri-driver with WebKitWebDriver and /proc: the desktop e2e runs on Linux only.
#![cfg(target_os = "linux")]

use std::time::Duration;

use callbridge_desktop_e2e::harness::{free_port, mapped_files, process_env};
use callbridge_desktop_e2e::pages::approve::ApprovalDialog;
use callbridge_desktop_e2e::pages::dial::DialPopup;
use callbridge_desktop_e2e::pages::incoming::IncomingPopup;
use callbridge_desktop_e2e::pages::settings::SettingsPage;
use callbridge_desktop_e2e::DesktopApp;
use callbridge_e2e::crm::FakeCrm;
use callbridge_e2e::{eventually, eventually_async};
use serde_json::json;

const WAIT: Duration = Duration::from_secs(20);

fn config(port: u16, extra: &str) -> String {
    format!("[listener]\nport = {port}\n\n[provider.simulator]\nring_after_ms = 100\nanswer_after_ms = 0\n\n{extra}")
}

async fn reachable(url: &str) -> bool {
    reqwest::get(url).await.map(|r| r.status().is_success()).unwrap_or(false)
}

/// Done-when 1 and 5: settings change the listen port and a notification URL, Save applies both at
/// once; bad input is caught inline; a taken port is refused while the old listener keeps serving.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn settings_move_the_listener_and_route_notifications_without_a_restart() {
    let crm = FakeCrm::start().await;
    let old_port = free_port();
    let app = DesktopApp::launch(&config(old_port, ""), &["--open", "settings"]).await;
    let page = SettingsPage::ready(&app.driver).await;
    assert_eq!(page.listen_port().await, old_port.to_string());
    page.listener_status("the listener status", |t| t.contains(&format!("localhost:{old_port}"))).await;

    // Inline validation: an impossible port is marked and not saved.
    page.set_listen_port("70000").await;
    assert!(page.listen_port_error().await.contains("between 1 and 65535"));
    assert!(page.save().await.contains("Fix the fields"));

    // A port another program holds is refused by the app, and the old listener keeps serving.
    let squatter = std::net::TcpListener::bind("127.0.0.1:0").expect("squat");
    let taken = squatter.local_addr().expect("addr").port();
    page.set_listen_port(&taken.to_string()).await;
    let refused = page.save().await;
    assert!(refused.contains("keeps listening"), "{refused}");
    assert!(reachable(&format!("http://127.0.0.1:{old_port}/health")).await);

    // The real change: a new port and an Enreach "Incoming Call" URL.
    let new_port = free_port();
    page.set_listen_port(&new_port.to_string()).await;
    assert!(page.make_example().await.contains(&format!("localhost:{new_port}/make/020123456")));
    page.set_incoming_url(&format!("{}/incoming?callerid=$callerid", crm.url())).await;
    assert_eq!(page.rule_count().await, 1, "the Enreach row is a rule of the per-event table");
    let saved = page.save().await;
    assert!(saved.starts_with("Saved"), "{saved}\n{}", app.logs());

    let new_url = format!("http://127.0.0.1:{new_port}");
    assert!(reachable(&format!("{new_url}/health")).await, "the new port answers");
    assert!(!reachable(&format!("http://127.0.0.1:{old_port}/health")).await, "the old port is closed");
    let file = std::fs::read_to_string(&app.config_path).expect("config file");
    assert!(file.contains(&format!("port = {new_port}")) && file.contains("/incoming?callerid=$callerid"), "{file}");

    // "Send test" reaches the CRM and shows its answer.
    let tested = page.send_test_on_first_rule().await;
    assert!(tested.contains("answered 200"), "{tested}");
    page.listener_status("the status to follow the move", |t| t.contains(&format!("localhost:{new_port}"))).await;
    app.screenshot("settings.png").await;
    let before = crm.received().len();

    // The next (simulated) call is announced at the new URL.
    let (status, _) = callbridge_e2e::bridge::request(
        reqwest::Client::new().post(format!("{new_url}/api/v1/simulate/incoming")).json(&json!({ "number": "+442079460123" })),
    )
    .await;
    assert_eq!(status, 200);
    let got = crm.wait_for(before + 1, WAIT).await;
    let last = got.last().expect("a request");
    assert_eq!(last.path, "/incoming");
    assert_eq!(last.param("callerid").as_deref(), Some("+442079460123"));
    drop(squatter);
    app.quit().await;
}

/// The settings page validates against what the engine serves: a rule URL using each placeholder
/// the engine lists is accepted by the page and saved by the engine; an engine error is shown under
/// the field it names.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_placeholder_saves_and_engine_errors_land_under_their_field() {
    let port = free_port();
    let app = DesktopApp::launch(&config(port, ""), &["--open", "settings"]).await;
    let page = SettingsPage::ready(&app.driver).await;
    let (_, schema) = app.get("/api/v1/settings/schema").await;
    let served: Vec<String> = schema["placeholders"].as_array().expect("placeholders").iter().filter_map(|p| p["name"].as_str().map(str::to_owned)).collect();
    assert_eq!(page.placeholders().await, served, "the page lists what the engine serves");
    for name in ["state", "provider"] {
        assert!(served.iter().any(|n| n == name), "${name} is served: {served:?}");
    }
    for (i, name) in served.iter().enumerate() {
        page.add_rule(&format!("https://crm.example.com/calls?value=${name}")).await;
        assert_eq!(page.rule_error(i).await, "", "the page refuses ${name}");
    }
    let saved = page.save().await;
    assert!(saved.starts_with("Saved"), "{saved}\n{}", app.logs());
    let (_, body) = app.get("/api/v1/config").await;
    let urls: Vec<&str> = body["config"]["notification"].as_array().expect("rules").iter().filter_map(|r| r["url"].as_str()).collect();
    assert_eq!(urls.len(), served.len(), "{urls:?}");
    for name in &served {
        assert!(urls.iter().any(|u| u.ends_with(&format!("=${name}"))), "${name} not saved: {urls:?}");
    }

    // Kazoo with its fields left empty: the engine says which one is missing, under that field.
    page.choose_provider("kazoo").await;
    let refused = page.save().await;
    assert!(refused.starts_with("Not saved") && refused.contains("api_url"), "{refused}");
    let under = page.field_error("provider.kazoo.api_url", "the engine's error under Crossbar API address").await;
    assert!(under.contains("required"), "{under}");
    app.quit().await;
}

/// A secret typed into the phone system's form goes to the keyring entry the configuration names:
/// Kazoo's `secret_entry`, and baresip's SIP password (its `password_entry` is named by the save
/// when none was set).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secrets_typed_in_the_form_land_in_the_configured_entries() {
    let port = free_port();
    let kazoo = "[provider]\nkind = \"kazoo\"\n\n[provider.kazoo]\napi_url = \"http://127.0.0.1:9/\"\naccount_id = \"acc1\"\nclicktocall_id = \"c2c1\"\nsecret_entry = \"acme-kazoo\"\n";
    let app = DesktopApp::launch_with_keyring(&config(port, kazoo), &["--open", "settings"]).await;
    let page = SettingsPage::ready(&app.driver).await;
    page.type_secret("secret", "kazoo-key-1").await;
    let saved = page.save().await;
    assert!(saved.starts_with("Saved") && !saved.contains("not stored"), "{saved}\n{}", app.logs());
    assert_eq!(app.keyring_secret("acme-kazoo").as_deref(), Some("kazoo-key-1"), "in the configured entry");
    assert_eq!(app.keyring_secret("kazoo"), None, "not in the default entry");

    page.choose_provider("baresip").await;
    page.type_secret("sip_password", "sip-pass-1").await;
    let saved = page.save().await;
    assert!(saved.starts_with("Saved") && !saved.contains("not stored"), "{saved}\n{}", app.logs());
    let (_, body) = app.get("/api/v1/config").await;
    let entry = body["config"]["provider"]["baresip"]["password_entry"].as_str().map(str::to_owned);
    assert_eq!(entry.as_deref(), Some("baresip"), "{body}");
    assert_eq!(app.keyring_secret("baresip").as_deref(), Some("sip-pass-1"));
    app.quit().await;
}

/// Switches Do not disturb as the tray does: read, change, save with the revision read.
async fn set_dnd(app: &DesktopApp, on: bool) {
    let (_, body) = app.get("/api/v1/config").await;
    let mut changed = body["config"].clone();
    changed["desktop"]["do_not_disturb"] = json!(on);
    changed["revision"] = body["revision"].clone();
    let (status, answer) = callbridge_e2e::bridge::request(reqwest::Client::new().put(format!("{}/api/v1/config", app.api)).json(&changed)).await;
    assert_eq!(status, 200, "{answer}");
}

/// A change made elsewhere while the settings page is open (Do not disturb from the tray here, made
/// through the API with the revision as the tray does) shows up in the page; a page with unsaved
/// edits is told, and its save is refused, keeping the newer change.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_page_follows_changes_made_elsewhere_and_cannot_save_over_them() {
    let port = free_port();
    let app = DesktopApp::launch(&config(port, ""), &["--open", "settings"]).await;
    let page = SettingsPage::ready(&app.driver).await;
    assert!(!page.do_not_disturb().await);

    // No unsaved edits: the page shows the change by itself.
    set_dnd(&app, true).await;
    page.wait_do_not_disturb(true).await;
    page.status("the page to say it reloaded", |t| t.contains("changed elsewhere")).await;

    // With an unsaved edit: the page says so, and its save is refused with the newer settings shown.
    page.toggle_popups().await;
    assert!(!page.popups().await);
    set_dnd(&app, false).await;
    page.status("the page to warn about the change", |t| t.contains("while you were editing")).await;
    assert!(page.reload_offered().await, "Reload is offered");
    let refused = page.save().await;
    assert!(refused.contains("changed elsewhere"), "{refused}");
    page.wait_do_not_disturb(false).await;
    assert!(page.popups().await, "the form shows the settings in force again");
    let (_, body) = app.get("/api/v1/config").await;
    assert_eq!((body["config"]["desktop"]["do_not_disturb"].clone(), body["config"]["desktop"]["popups"].clone()), (json!(false), json!(true)));
    app.quit().await;
}

/// Done-when 2: a `tel:` link launched while the app runs opens the dial popup in the running app,
/// prefilled; Call places the call through the simulator and the CRM hears `outgoing`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tel_link_opens_the_dial_popup_and_the_call_reaches_the_crm() {
    let crm = FakeCrm::start().await;
    let port = free_port();
    let rule = format!("[[notification]]\nevent = \"outgoing\"\nurl = \"{}/outgoing?number=$callerid&call=$callid\"\n", crm.url());
    let app = DesktopApp::launch(&config(port, &rule), &["--open", "settings"]).await;
    SettingsPage::ready(&app.driver).await;
    let known = app.driver.windows().await.expect("windows");

    // A second launch with a link hands it to the running app and exits at once.
    let second = app.launch_again(&["tel:+44-20-7946-0456"]);
    assert!(second.success(), "the second instance exits cleanly: {second:?}");
    let dial_window = app.switch_to_new_window(&known, "the dial popup").await;
    let popup = DialPopup::ready(&app.driver).await;
    assert_eq!(popup.number().await, "+442079460456", "prefilled from the link, cleaned");
    app.screenshot("dial-popup.png").await;

    let progress = popup.call().await;
    assert!(progress.contains("+442079460456"), "{progress}");
    let got = crm.wait_for(1, WAIT).await;
    assert_eq!(got[0].path, "/outgoing");
    assert_eq!(got[0].param("number").as_deref(), Some("+442079460456"));
    let call_id = got[0].param("call").expect("call id");
    let (_, call) = app.get(&format!("/api/v1/calls/{call_id}")).await;
    assert_eq!(call["call"]["provider"], "simulator");
    assert_eq!(call["call"]["direction"], "out");
    eventually_async(WAIT, "the simulator's far end to ring", || async {
        let (_, body) = app.get(&format!("/api/v1/calls/{call_id}")).await;
        (body["call"]["state"] == "ringing").then_some(())
    })
    .await;

    // Hang up from the popup: the call ends and the popup says so.
    popup.hang_up().await;
    popup.status("the call to end", |t| t.contains("ended")).await;
    let (_, body) = app.get(&format!("/api/v1/calls/{call_id}")).await;
    assert_eq!(body["call"]["state"], "ended");
    assert_eq!(app.driver.window().await.expect("current window"), dial_window);
    app.quit().await;
}

/// The dial shortcut (the default, Ctrl+Alt+C) opens the dial popup from anywhere on the desktop, and
/// a changed shortcut takes over at once: the old combination no longer opens anything.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dial_shortcut_opens_the_dial_popup() {
    let port = free_port();
    let app = DesktopApp::launch(&config(port, ""), &["--open", "settings"]).await;
    SettingsPage::ready(&app.driver).await;
    let known = app.driver.windows().await.expect("windows");

    app.press_keys("ctrl+alt+c");
    let dial = app.switch_to_new_window(&known, "the dial popup, opened by the shortcut").await;
    DialPopup::ready(&app.driver).await.close().await;
    app.wait_window_closed(&dial, "the dial popup").await;
    app.driver.switch_to_window(known[0].clone()).await.expect("back to settings");

    // Another shortcut, saved through the API as the settings page does.
    let (_, body) = app.get("/api/v1/config").await;
    let mut changed = body["config"].clone();
    changed["desktop"]["dial_shortcut"] = json!("CommandOrControl+Shift+F9");
    let saved = callbridge_e2e::bridge::request(
        reqwest::Client::new().put(format!("{}/api/v1/config", app.api)).json(&changed),
    )
    .await;
    assert_eq!(saved.0, 200, "{}", saved.1);
    let dial = eventually_async(WAIT, "the new shortcut to open the dial popup", || async {
        app.press_keys("ctrl+shift+F9");
        tokio::time::sleep(Duration::from_millis(500)).await;
        let handles = app.driver.windows().await.ok()?;
        handles.into_iter().find(|h| !known.contains(h))
    })
    .await;
    app.driver.switch_to_window(dial.clone()).await.expect("switch to the dial popup");
    DialPopup::ready(&app.driver).await.close().await;
    app.wait_window_closed(&dial, "the dial popup").await;

    // The old combination is released: pressing it opens nothing (given two seconds to do so).
    app.press_keys("ctrl+alt+c");
    tokio::time::sleep(Duration::from_secs(2)).await;
    let windows = app.driver.windows().await.expect("windows");
    assert_eq!(windows, known, "the old shortcut opened a window after it was replaced");
    app.quit().await;
}

/// Done-when 3 and 5: a simulated incoming call opens the popup with number and name; Open in CRM
/// hands the filled-in template to the OS; Answer makes the call active. A call answered elsewhere
/// closes its popup by itself.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_incoming_popup_answers_and_opens_the_crm() {
    let port = free_port();
    let desktop = "[desktop]\ncrm_url = \"https://crm.example.com/contacts?phone=$callerid&name=$name\"\n";
    let app = DesktopApp::launch(&config(port, desktop), &["--open", "settings"]).await;
    SettingsPage::ready(&app.driver).await;
    let known = app.driver.windows().await.expect("windows");

    let (status, rang) = app.post("/api/v1/simulate/incoming", json!({ "number": "+442079460789", "name": "Ada Lovelace" })).await;
    assert_eq!(status, 200, "{rang}");
    let call_id = rang["call_id"].as_str().expect("call id").to_owned();
    let popup_window = app.switch_to_new_window(&known, "the incoming-call popup").await;
    let popup = IncomingPopup::ready(&app.driver).await;
    assert_eq!(popup.number().await, "+442079460789");
    assert_eq!(popup.name().await, "Ada Lovelace");
    app.screenshot("incoming-popup.png").await;

    let opened = popup.open_in_crm().await;
    let expected = "https://crm.example.com/contacts?phone=%2B442079460789&name=Ada%20Lovelace";
    assert!(opened.contains(expected), "{opened}");
    eventually(WAIT, "the OS to be asked to open the CRM", || app.opened_urls().contains(&expected.to_owned()).then_some(())).await;

    popup.answer().await;
    eventually_async(WAIT, "the call to be active", || async {
        let (_, body) = app.get(&format!("/api/v1/calls/{call_id}")).await;
        (body["call"]["state"] == "active").then_some(())
    })
    .await;
    let (_, ended) = app.post("/api/v1/hangup", json!({ "call_id": call_id })).await;
    assert_eq!(ended["call"]["state"], "ended");
    app.wait_window_closed(&popup_window, "the popup to close when the call ends").await;

    // Answered elsewhere (here: through the API, as a desk phone would): the popup goes away.
    let known = app.driver.windows().await.expect("windows");
    let (_, second) = app.post("/api/v1/simulate/incoming", json!({ "number": "+442079460790" })).await;
    let second_window = app.switch_to_new_window(&known, "the second popup").await;
    IncomingPopup::ready(&app.driver).await;
    let (status, _) = app.post("/api/v1/answer", json!({ "call_id": second["call_id"] })).await;
    assert_eq!(status, 200);
    app.wait_window_closed(&second_window, "the popup to close when answered elsewhere").await;
    app.quit().await;
}

/// Closing the last window gives WebKit's memory back: the windows live in a window host process that
/// ends a few seconds after its last window closed, taking WebKit's web and network processes with it,
/// while the tray app keeps serving. The next window starts a new host.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn closing_the_last_window_leaves_no_webkit_process() {
    let port = free_port();
    let app = DesktopApp::launch(&config(port, ""), &["--open", "settings"]).await;
    SettingsPage::ready(&app.driver).await;
    let windowing = |names: &[String]| names.iter().filter(|n| n.starts_with("WebKit") || n.starts_with("callbridge-desk")).cloned().collect::<Vec<_>>();
    let open = windowing(&app.app_children());
    assert!(open.iter().any(|n| n.starts_with("WebKitWebProces")) && open.iter().any(|n| n.starts_with("callbridge-desk")), "{open:?}");
    // The host and WebKit's processes start with the most used libraries first in their lookup order
    // (LD_PRELOAD), naming only libraries each of them has loaded anyway.
    for (pid, comm) in app.app_child_processes().into_iter().filter(|(_, n)| n.starts_with("WebKit") || n.starts_with("callbridge-desk")) {
        let preload = process_env(pid, "LD_PRELOAD").unwrap_or_else(|| panic!("{comm} ({pid}) has no LD_PRELOAD"));
        let named: Vec<&str> = preload.split(':').collect();
        assert!(named.iter().any(|f| f.contains("/libc.so")) && named.len() > 10, "{comm}: LD_PRELOAD={preload}");
        let mapped = mapped_files(pid);
        for file in &named {
            assert!(mapped.iter().any(|m| m == file), "{comm} ({pid}) was given {file}, which it does not map: {mapped:?}");
        }
    }

    // The close button. The WebDriver session ends with the host, whose window it drove.
    app.close_window_titled("CallBridge Settings");
    eventually(Duration::from_secs(30), "the window host and WebKit to end after the grace period", || {
        windowing(&app.app_children()).is_empty().then_some(())
    })
    .await;
    assert!(reachable(&format!("http://127.0.0.1:{port}/health")).await, "the app keeps serving");
    assert!(app.app_pid().is_some(), "the app is still running");

    // Opening settings again (a relaunch hands it to the running app) starts a new host.
    assert!(app.launch_again(&["--open", "settings"]).success());
    eventually(WAIT, "a new window host with its WebKit process", || {
        windowing(&app.app_children()).iter().any(|n| n.starts_with("WebKitWebProces")).then_some(())
    })
    .await;
    eventually(WAIT, "the reopened page to report its first paint", || {
        (app.logs().matches("window first paint").count() >= 2).then_some(())
    })
    .await;
    // No `quit`: the session's browser has gone; dropping the app stops everything.
    drop(app);
}

/// Done-when 4: "Start at login" creates and removes the autostart entry (on Linux
/// `~/.config/autostart/CallBridge.desktop`, pointing at the app).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn start_at_login_creates_and_removes_the_autostart_entry() {
    let port = free_port();
    let app = DesktopApp::launch(&config(port, ""), &["--open", "settings"]).await;
    let page = SettingsPage::ready(&app.driver).await;
    let entry = app.home.join(".config/autostart/CallBridge.desktop");
    assert!(!page.autostart_checked().await);
    assert!(!entry.exists());

    page.toggle_autostart().await;
    let desktop_file = std::fs::read_to_string(&entry).unwrap_or_else(|e| panic!("{} was not created: {e}", entry.display()));
    assert!(desktop_file.contains("callbridge-desktop"), "{desktop_file}");
    assert!(page.autostart_checked().await);

    page.toggle_autostart().await;
    assert!(!entry.exists(), "{} was not removed", entry.display());
    assert!(!page.autostart_checked().await);
    app.quit().await;
}

/// The Activity view lists each notification with its status, attempts and last error; a
/// failed one (the CRM refused it with a 4xx, which is not retried by itself) is sent again by Retry.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_activity_view_shows_a_failed_delivery_and_retries_it() {
    let crm = FakeCrm::start().await;
    crm.respond_with(404);
    let port = free_port();
    let rule = format!("[[notification]]\nid = \"crm-incoming\"\nevent = \"incoming\"\nurl = \"{}/incoming?callerid=$callerid\"\n", crm.url());
    let app = DesktopApp::launch(&config(port, &rule), &["--open", "settings"]).await;
    let page = SettingsPage::ready(&app.driver).await;

    let (status, _) = app.post("/api/v1/simulate/incoming", json!({ "number": "+442079460321" })).await;
    assert_eq!(status, 200);
    crm.wait_for(1, WAIT).await;
    let failed = page.wait_delivery("the failed delivery in the Activity view", |r| r.status == "failed").await;
    assert_eq!(failed.event, "incoming");
    assert_eq!(failed.rule, "crm-incoming");
    assert!(failed.url.contains("/incoming?callerid=%2B442079460321"), "{failed:?}");
    assert_eq!(failed.attempts, "1");
    assert!(failed.error.contains("404"), "{failed:?}");
    assert!(failed.can_retry, "a failed delivery offers Retry");
    page.show_activity().await;
    app.screenshot("activity.png").await;

    // The CRM is fixed; Retry sends it again and the view shows it delivered on the second attempt.
    crm.respond_with(200);
    let said = page.retry(&failed.id).await;
    assert!(said.contains("being sent again"), "{said}");
    let got = crm.wait_for(2, WAIT).await;
    assert_eq!(got[1].param("callerid").as_deref(), Some("+442079460321"));
    let delivered = page.wait_delivery("the delivery to show delivered", |r| r.id == failed.id && r.status == "delivered").await;
    assert_eq!(delivered.attempts, "2");
    assert!(!delivered.can_retry, "a delivered one has nothing to retry");
    let (_, body) = app.get(&format!("/api/v1/deliveries/{}", failed.id)).await;
    assert_eq!(body["delivery"]["status"], "delivered");
    app.quit().await;
}

const UNTRUSTED: &str = "https://crm.untrusted.example";

/// A link on a page of `UNTRUSTED` asking the app's listener to dial `number` (in the background: the
/// answer waits for the user).
fn cross_site_dial(app: &DesktopApp, number: &str) -> tokio::task::JoinHandle<(u16, serde_json::Value)> {
    let request = reqwest::Client::new()
        .get(format!("{}/make/{number}", app.api))
        .header("Origin", UNTRUSTED)
        .header("Sec-Fetch-Site", "cross-site");
    tokio::spawn(callbridge_e2e::bridge::request(request))
}

/// Waits for the approval window of the next cross-site dial and returns its handle.
async fn approval_window(app: &DesktopApp, known: &[thirtyfour::WindowHandle]) -> thirtyfour::WindowHandle {
    app.switch_to_new_window(known, "the approval dialog").await
}

/// A cross-site dial never dials silently. The app asks (site and number shown): Call
/// places it, Block refuses it with 403 and dials nothing, Always allow places it and saves the site
/// as trusted, after which that site is not asked again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cross_site_dial_is_put_to_the_user() {
    let port = free_port();
    let app = DesktopApp::launch(&config(port, ""), &["--open", "settings"]).await;
    SettingsPage::ready(&app.driver).await;
    let settings = app.driver.window().await.expect("settings window");
    let known = app.driver.windows().await.expect("windows");

    // Call: placed once. A click the moment the dialog appears (one meant for the page underneath)
    // does nothing: the buttons are disabled for the dialog's first second on screen.
    let (_, before) = app.get("/api/v1/calls").await;
    let calls_at_start = before["calls"].as_array().map(Vec::len);
    let asked = cross_site_dial(&app, "+442079460111");
    let window = approval_window(&app, &known).await;
    let armed_at_click = ApprovalDialog::click_call_on_arrival(&app.driver).await;
    assert!(!armed_at_click, "the buttons must not take answers the moment the dialog appears");
    let dialog = ApprovalDialog::ready(&app.driver).await;
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert!(!asked.is_finished(), "the early click answered the dialog");
    let (_, now) = app.get("/api/v1/calls").await;
    assert_eq!(now["calls"].as_array().map(Vec::len), calls_at_start, "nothing is dialed by an early click: {now}");
    assert_eq!(dialog.number().await, "+442079460111");
    assert_eq!(dialog.origin().await, UNTRUSTED);
    // After the delay, the same click places the call.
    dialog.call().await;
    let (status, body) = asked.await.expect("request task");
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["call"]["remote_number"], "+442079460111");
    app.wait_window_closed(&window, "the dialog to close after Call").await;
    app.driver.switch_to_window(settings.clone()).await.expect("back to settings");

    // Block: 403, nothing dialed.
    let (_, before) = app.get("/api/v1/calls").await;
    let calls_before = before["calls"].as_array().map(Vec::len);
    let asked = cross_site_dial(&app, "+442079460222");
    let window = approval_window(&app, &known).await;
    ApprovalDialog::ready(&app.driver).await.block().await;
    let (status, body) = asked.await.expect("request task");
    assert_eq!(status, 403, "{body}");
    assert!(body["message"].as_str().is_some_and(|m| m.contains("chose not to dial")), "{body}");
    app.wait_window_closed(&window, "the dialog to close after Block").await;
    app.driver.switch_to_window(settings.clone()).await.expect("back to settings");
    let (_, after) = app.get("/api/v1/calls").await;
    assert_eq!(after["calls"].as_array().map(Vec::len), calls_before, "Block dialed nothing: {after}");

    // Always allow: placed, and the site is trusted in the saved config.
    let asked = cross_site_dial(&app, "+442079460333");
    let window = approval_window(&app, &known).await;
    ApprovalDialog::ready(&app.driver).await.always_allow().await;
    let (status, body) = asked.await.expect("request task");
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["call"]["remote_number"], "+442079460333");
    app.wait_window_closed(&window, "the dialog to close after Always allow").await;
    app.driver.switch_to_window(settings).await.expect("back to settings");
    let file = std::fs::read_to_string(&app.config_path).expect("config file");
    assert!(file.contains("trusted_origins") && file.contains(UNTRUSTED), "{file}");

    // Trusted now: the next dial from that site goes through without a dialog.
    let (status, body) = cross_site_dial(&app, "+442079460444").await.expect("request task");
    assert_eq!(status, 200, "{body}");
    assert_eq!(app.driver.windows().await.expect("windows").len(), known.len(), "no dialog was opened");
    app.quit().await;
}
