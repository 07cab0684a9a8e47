//! The settings API as the settings page uses it, against the built `callbridge serve`: what the page
//! validates against comes from the engine (`GET /api/v1/settings/schema`), engine errors name the
//! setting by its path, a save from a stale copy is refused with 409 and the newer change kept, and
//! secrets typed into a provider form land in the keyring entry the configuration names.

use std::path::Path;
use std::process::Command;

use callbridge_e2e::bridge::{keyring_lookup, request, Bridge};
use serde_json::{json, Value};

async fn put(bridge: &Bridge, path: &str, body: &Value) -> (u16, Value) {
    request(reqwest::Client::new().put(format!("{}/api/v1{path}", bridge.url)).json(body)).await
}

/// `GET /api/v1/config`: the configuration and its revision.
async fn current(bridge: &Bridge) -> (Value, String) {
    let (status, body) = bridge.get("/api/v1/config").await;
    assert_eq!(status, 200, "{body}");
    let revision = body["revision"].as_str().unwrap_or_else(|| panic!("GET config has a revision: {body}")).to_owned();
    (body["config"].clone(), revision)
}

/// `config` as the page sends it: with the revision it was edited from.
fn edited(config: &Value, revision: &str) -> Value {
    let mut body = config.clone();
    body["revision"] = json!(revision);
    body
}

async fn schema(bridge: &Bridge) -> Value {
    let (status, body) = bridge.get("/api/v1/settings/schema").await;
    assert_eq!(status, 200, "{body}");
    body
}

fn rule(url: &str) -> Value {
    json!({ "event": "incoming", "method": "GET", "url": url })
}

/// Every placeholder the schema serves is one the engine takes in a rule URL, and the page's own
/// validation (ui/validate.js, run by node) takes each; a placeholder the engine refuses the page
/// refuses too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_served_placeholder_is_taken_by_the_engine_and_by_the_page() {
    let bridge = Bridge::start("");
    let schema = schema(&bridge).await;
    let names: Vec<String> = schema["placeholders"]
        .as_array()
        .expect("a placeholder list")
        .iter()
        .map(|p| p["name"].as_str().expect("a name").to_owned())
        .collect();
    // The README documents these; the page once refused the last two.
    for documented in ["callerid", "direction", "name", "company", "record_url", "state", "provider"] {
        assert!(names.iter().any(|n| n == documented), "${documented} is not served: {names:?}");
    }

    // The engine: one rule per placeholder, saved in one go.
    let (mut config, revision) = current(&bridge).await;
    config["notification"] =
        Value::Array(names.iter().map(|n| rule(&format!("https://crm.example.com/calls?value=${n}"))).collect());
    let (status, body) = put(&bridge, "/config", &edited(&config, &revision)).await;
    assert_eq!(status, 200, "a rule per served placeholder: {body}");
    assert_eq!(body["config"]["notification"].as_array().map(Vec::len), Some(names.len()), "{body}");

    // A name that is not served is refused, under the rule's URL.
    let (config, revision) = current(&bridge).await;
    let mut bad = config.clone();
    bad["notification"][1]["url"] = json!("https://crm.example.com/calls?value=$no_such_placeholder");
    let (status, body) = put(&bridge, "/config", &edited(&bad, &revision)).await;
    assert_eq!((status, body["field"].as_str()), (400, Some("notification[1].url")), "{body}");

    // The page: the same list through ui/validate.js.
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("schema.json");
    std::fs::write(&file, schema.to_string()).expect("write schema");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("ui/check_placeholders.mjs");
    let out = Command::new("node").arg(&script).arg(&file).output().expect("node runs (apt-get install nodejs; scripts/deps.sh test does)");
    let report = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "the page refuses a served placeholder: {report}{}", String::from_utf8_lossy(&out.stderr));
    let report: Value = serde_json::from_str(report.trim()).expect("the checker's report");
    assert_eq!(report["accepted"].as_array().map(Vec::len), Some(names.len() * 3), "{report}");
    assert_eq!(report["unknown_refused"], json!(true), "{report}");
}

/// The schema's limits are the ones the engine enforces: just past each end is refused naming the
/// setting, both ends are taken.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_served_limits_are_the_ones_enforced() {
    let bridge = Bridge::start("");
    let limits = schema(&bridge).await["limits"].as_array().cloned().expect("limits");
    for field in ["listener.port", "lookup.timeout_ms", "delivery.timeout_secs", "provider.simulator.ring_after_ms", "store.history_days"] {
        let limit = limits.iter().find(|l| l["field"] == field).unwrap_or_else(|| panic!("no limit for {field}: {limits:?}"));
        let (min, max) = (limit["min"].as_u64().expect("min"), limit["max"].as_u64().expect("max"));
        let (config, revision) = current(&bridge).await;
        let set = |value: u64| {
            let mut body = edited(&config, &revision);
            let (section, key) = field.rsplit_once('.').expect("a dotted path");
            let mut at = &mut body;
            for part in section.split('.') {
                at = &mut at[part];
            }
            at[key] = json!(value);
            body
        };
        let (status, body) = put(&bridge, "/config", &set(max + 1)).await;
        assert_eq!((status, body["field"].as_str()), (400, Some(field)), "{field} = {}: {body}", max + 1);
        if min > 0 {
            let (status, body) = put(&bridge, "/config", &set(min - 1)).await;
            assert_eq!((status, body["field"].as_str()), (400, Some(field)), "{field} = {}: {body}", min - 1);
        }
        if field != "listener.port" {
            let (status, body) = put(&bridge, "/config", &set(max)).await;
            assert_eq!(status, 200, "{field} = {max}: {body}");
        }
    }
}

/// Errors raised by validation name the setting by its path, so the page can show each under its
/// field.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn engine_errors_name_the_setting_by_its_path() {
    let bridge = Bridge::start("");
    let (config, _) = current(&bridge).await;
    let with = |change: &dyn Fn(&mut Value)| {
        let mut c = config.clone();
        c["notification"] = json!([rule("https://crm.example.com/a"), rule("https://crm.example.com/b"), rule("https://crm.example.com/c")]);
        change(&mut c);
        c
    };
    let cases: Vec<(&str, Value)> = vec![
        ("notification[2].url", with(&|c| c["notification"][2]["url"] = json!("https://crm.example.com/?n=$caller"))),
        ("notification[1].id", with(&|c| {
            c["notification"][0]["id"] = json!("same");
            c["notification"][1]["id"] = json!("same");
        })),
        ("notification[2].body", with(&|c| c["notification"][2]["body"] = json!("{}"))),
        ("notification[0].headers", with(&|c| c["notification"][0]["headers"] = json!({ "Bad Header": "x" }))),
        ("lookup.timeout_ms", with(&|c| c["lookup"]["timeout_ms"] = json!(50))),
        ("lookup.name_pointer", with(&|c| c["lookup"]["name_pointer"] = json!("name"))),
        ("listener.end", with(&|c| c["listener"]["end"] = c["listener"]["make"].clone())),
        ("provider.kazoo.api_url", with(&|c| c["provider"]["kind"] = json!("kazoo"))),
        ("provider.baresip.account", with(&|c| {
            c["provider"]["kind"] = json!("baresip");
            c["provider"]["baresip"] = json!({ "supervise": true });
        })),
        ("security.allowed_hosts", with(&|c| c["security"]["allowed_hosts"] = json!(["http://x"]))),
    ];
    for (field, body) in cases {
        let (status, answer) = put(&bridge, "/config", &body).await;
        assert_eq!(status, 400, "{field}: {answer}");
        assert_eq!((answer["error"].as_str(), answer["field"].as_str()), (Some("invalid"), Some(field)), "{answer}");
        assert!(answer["message"].as_str().is_some_and(|m| !m.is_empty()), "{answer}");
    }
    assert_eq!(std::fs::read_to_string(&bridge.config_path).expect("the file"), "", "nothing was written");
}

/// A page that read the settings, while another writer changed them, cannot save its stale copy:
/// 409 with the configuration in force and its revision, and the newer change stays.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stale_save_is_refused_and_the_newer_change_kept() {
    let bridge = Bridge::start("");
    let (page_copy, page_revision) = current(&bridge).await;

    // Someone else (the tray's Do not disturb, another page) changes a setting.
    let mut other = page_copy.clone();
    other["desktop"]["do_not_disturb"] = json!(true);
    let (status, body) = put(&bridge, "/config", &edited(&other, &page_revision)).await;
    assert_eq!(status, 200, "{body}");
    let newer = body["revision"].as_str().expect("the new revision").to_owned();
    assert_ne!(newer, page_revision, "a change is a new revision");

    // The page saves its own change from its stale copy.
    let mut stale = page_copy.clone();
    stale["desktop"]["popups"] = json!(false);
    let (status, body) = put(&bridge, "/config", &edited(&stale, &page_revision)).await;
    assert_eq!((status, body["error"].as_str()), (409, Some("stale")), "{body}");
    assert_eq!(body["revision"].as_str(), Some(newer.as_str()), "{body}");
    assert_eq!(body["config"]["desktop"]["do_not_disturb"], json!(true), "the answer has the settings in force: {body}");
    assert!(body["message"].as_str().is_some_and(|m| m.contains("changed elsewhere")), "{body}");

    let (now, revision) = current(&bridge).await;
    assert_eq!((now["desktop"]["do_not_disturb"].clone(), now["desktop"]["popups"].clone()), (json!(true), json!(true)), "{now}");
    assert_eq!(revision, newer);
    let file = std::fs::read_to_string(&bridge.config_path).expect("the newer change was written");
    assert!(file.contains("do_not_disturb = true") && !file.contains("popups = false"), "{file}");

    // Made again from the settings in force, the page's change goes through.
    let mut again = now.clone();
    again["desktop"]["popups"] = json!(false);
    let (status, body) = put(&bridge, "/config", &edited(&again, &revision)).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!((body["config"]["desktop"]["do_not_disturb"].clone(), body["config"]["desktop"]["popups"].clone()), (json!(true), json!(false)));

    // A revision that is not a string is a 400 naming it.
    let (status, body) = put(&bridge, "/config", &edited(&again, "x").as_object().map(|o| {
        let mut o = o.clone();
        o.insert("revision".into(), json!(5));
        Value::Object(o)
    }).expect("an object")).await;
    assert_eq!((status, body["field"].as_str()), (400, Some("revision")), "{body}");
}

/// Secrets typed into a provider form go to the keyring entries the configuration names (not the
/// defaults), the baresip SIP password included; an entry no setting names is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_secret_set_through_a_form_lands_in_the_configured_entry() {
    assert!(
        std::env::var_os("CALLBRIDGE_TEST_KEYRING").is_some(),
        "this test needs the OS keyring: run it through scripts/with-keyring.sh (scripts/test.sh does)"
    );
    let tag = uuid::Uuid::new_v4().simple().to_string();
    let (app, login, kazoo) = (format!("acme-telecmi-{tag}"), format!("acme-login-{tag}"), format!("acme-kazoo-{tag}"));
    let bridge = Bridge::start(&format!(
        "[provider.telecmi]\nsecret_entry = \"{app}\"\npassword_entry = \"{login}\"\n\n[provider.kazoo]\nsecret_entry = \"{kazoo}\"\n"
    ));
    let forms = schema(&bridge).await["providers"].clone();
    let entry_of = |forms: &Value, kind: &str, key: &str| -> String {
        let form = forms.as_array().and_then(|f| f.iter().find(|f| f["kind"] == kind)).unwrap_or_else(|| panic!("no {kind} form"));
        let field = form["fields"].as_array().and_then(|f| f.iter().find(|f| f["key"] == key)).unwrap_or_else(|| panic!("no {kind}.{key}"));
        assert_eq!(field["type"], "secret", "{field}");
        field["entry"].as_str().expect("an entry").to_owned()
    };
    assert_eq!(entry_of(&forms, "telecmi", "app_secret"), app);
    assert_eq!(entry_of(&forms, "telecmi", "password"), login);
    assert_eq!(entry_of(&forms, "kazoo", "secret"), kazoo);

    for (entry, value) in [(&app, format!("app-{tag}")), (&login, format!("login-{tag}")), (&kazoo, format!("key-{tag}"))] {
        let (status, body) = put(&bridge, &format!("/secrets/{entry}"), &json!({ "value": value })).await;
        assert_eq!(status, 200, "{entry}: {body}");
        assert_eq!(keyring_lookup(entry).as_deref(), Some(value.as_str()), "{entry} in the OS keyring");
    }
    // The default entries are not what the configuration names: nothing may be written there.
    for default in ["telecmi", "kazoo"] {
        let (status, body) = put(&bridge, &format!("/secrets/{default}"), &json!({ "value": "wrong" })).await;
        assert_eq!((status, body["error"].as_str()), (404, Some("unknown_secret")), "{default}: {body}");
    }

    // The SIP password: the page names an entry in the config, saves, then stores the password there.
    let sip = format!("acme-sip-{tag}");
    let (mut config, revision) = current(&bridge).await;
    config["provider"]["kind"] = json!("baresip");
    config["provider"]["baresip"]["password_entry"] = json!(sip);
    let (status, body) = put(&bridge, "/config", &edited(&config, &revision)).await;
    assert_eq!(status, 200, "{body}");
    let forms = schema(&bridge).await["providers"].clone();
    assert_eq!(entry_of(&forms, "baresip", "sip_password"), sip);
    let (status, body) = put(&bridge, &format!("/secrets/{sip}"), &json!({ "value": format!("sip-{tag}") })).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(keyring_lookup(&sip).as_deref(), Some(format!("sip-{tag}").as_str()));
    let (_, listed) = bridge.get("/api/v1/secrets").await;
    let set = listed["secrets"].as_array().and_then(|s| s.iter().find(|s| s["entry"] == sip.as_str())).cloned();
    assert_eq!(set.map(|s| s["set"].clone()), Some(json!(true)), "{listed}");
}
