//! Notifications over real HTTP: provider events injected into a running engine reach a fake CRM on
//! loopback with every value encoded for where it lands.

use std::sync::Arc;
use std::time::Duration;

use callbridge::config::Config;
use callbridge::engine::Services;
use callbridge::provider::{ProviderEvent, ProviderEventKind};
use callbridge::secrets::MemorySecrets;
use callbridge::{Direction, Engine};
use callbridge_e2e::crm::FakeCrm;

fn engine_for(crm: &FakeCrm) -> Engine {
    let text = format!(
        r#"
[[notification]]
event = "incoming"
url = "{crm}/in/$callerid?callerid=$callerid&name=$name"
headers = {{ "X-Caller" = "$name" }}

[[notification]]
event = "answered"
method = "POST"
url = "{crm}/answered"
body = '{{"callerid":"$callerid","name":"$name","direction":"$direction"}}'

[[notification]]
event = "ended"
method = "POST"
url = "{crm}/ended"
body = "callerid=$callerid&name=$name&duration=$duration"

[[notification]]
event = "ended"
direction = "out"
url = "{crm}/never-for-incoming"

[[notification]]
event = "ended"
active = false
url = "{crm}/inactive"
"#,
        crm = crm.url()
    );
    let config = Config::from_toml(&text, std::path::Path::new("test.toml")).expect("config");
    let services = Services::with_secrets(&config, Arc::new(MemorySecrets::default()));
    Engine::start_with(config, services)
}

fn event(kind: ProviderEventKind) -> ProviderEvent {
    let mut e = ProviderEvent::new("pbx", kind);
    e.provider_call_id = Some("pbx-1".into());
    e.direction = Some(Direction::In);
    // As a PBX might send it: a plus and spaces, and a name with quotes and an ampersand.
    e.remote_number = Some("+44 20 7946 0000".into());
    e.remote_name = Some("O'Brien \"Bob\" & Sons".into());
    e
}

#[tokio::test]
async fn values_survive_the_round_trip_in_urls_json_and_forms() {
    let crm = FakeCrm::start().await;
    let engine = engine_for(&crm);
    let sink = engine.event_sink();
    for kind in [ProviderEventKind::Incoming, ProviderEventKind::Answered, ProviderEventKind::Ended] {
        sink.send(event(kind)).expect("engine running");
    }
    let got = crm.wait_for(3, Duration::from_secs(20)).await;
    let paths: Vec<_> = got.iter().map(|r| r.path.as_str()).collect();
    assert_eq!(paths, ["/in/%2B44%2020%207946%200000", "/answered", "/ended"]);

    let incoming = &got[0];
    assert_eq!(incoming.query, "callerid=%2B44%2020%207946%200000&name=O%27Brien%20%22Bob%22%20%26%20Sons");
    assert_eq!(incoming.param("callerid").as_deref(), Some("+44 20 7946 0000"));
    assert_eq!(incoming.param("name").as_deref(), Some("O'Brien \"Bob\" & Sons"));
    assert_eq!(incoming.header("x-caller"), Some("O'Brien \"Bob\" & Sons"));

    let answered = got[1].json();
    assert_eq!(answered["callerid"], "+44 20 7946 0000");
    assert_eq!(answered["name"], "O'Brien \"Bob\" & Sons");
    assert_eq!(answered["direction"], "in");
    assert_eq!(got[1].header("content-type"), Some("application/json"));

    let ended = &got[2];
    assert_eq!(ended.header("content-type"), Some("application/x-www-form-urlencoded"));
    let form: Vec<(String, String)> = url::form_urlencoded::parse(ended.body.as_bytes()).into_owned().collect();
    assert_eq!(form[0], ("callerid".into(), "+44 20 7946 0000".into()));
    assert_eq!(form[1], ("name".into(), "O'Brien \"Bob\" & Sons".into()));
    assert_eq!(form[2].0, "duration");

    // The direction filter and the inactive rule kept their requests back; the log saw three.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(crm.received().len(), 3);
    let log = engine.deliveries().recent(10);
    assert_eq!(log.len(), 3);
    assert!(log.iter().all(|d| d.outcome.status == Some(200) && d.outcome.error.is_none()), "{log:?}");
}

#[tokio::test]
async fn a_failing_crm_is_logged_with_its_status_and_an_unreachable_one_with_the_reason() {
    let crm = FakeCrm::start().await;
    crm.respond_with(503);
    let engine = engine_for(&crm);
    engine.event_sink().send(event(ProviderEventKind::Incoming)).expect("engine running");
    crm.wait_for(1, Duration::from_secs(20)).await;
    let down = crm.down().await;
    engine.event_sink().send(event(ProviderEventKind::Answered)).expect("engine running");
    let log = callbridge_e2e::eventually(Duration::from_secs(20), "two log entries", || {
        let log = engine.deliveries().recent(10);
        (log.len() == 2).then_some(log)
    })
    .await;
    // Newest first.
    assert_eq!(log[1].outcome.status, Some(503));
    assert!(log[1].outcome.error.as_deref().unwrap_or_default().contains("503"), "{:?}", log[1]);
    assert_eq!(log[0].outcome.status, None);
    assert!(log[0].outcome.error.as_deref().unwrap_or_default().contains("could not connect"), "{:?}", log[0]);
    drop(down);
}
