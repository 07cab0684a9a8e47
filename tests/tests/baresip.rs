//! End to end with real SIP: the built `callbridge` drives a real baresip (Debian's `baresip-core`) as
//! the user's phone, and sipp (Debian's `sip-tester`) is the other party, all on loopback.
//!
//! * `/make/NUMBER` → sipp receives the INVITE for NUMBER, answers, and gets CallBridge's BYE on `/end`;
//! * sipp's INVITE → the CRM hears `incoming`, `/answer` sends sipp its 200 OK, `/end` its BYE;
//! * baresip run by the user (not supervised) is found again after it restarts.
//!
//! Each notification is counted once the call's `ended` has arrived: the tracker emits nothing for a
//! call after `ended`, and deliveries of one call go out in order, so the counts are final then.

use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use callbridge_e2e::bridge::Bridge;
use callbridge_e2e::crm::{FakeCrm, Received};
use callbridge_e2e::eventually;
use callbridge_e2e::sipp::{free_port, Sipp};

const WAIT: Duration = Duration::from_secs(60);

/// Notification rules: one per event, to paths named after the event.
fn rules(crm: &FakeCrm) -> String {
    let url = crm.url();
    ["incoming", "outgoing", "answered", "ended"]
        .iter()
        .map(|event| {
            format!(
                "[[notification]]\nevent = \"{event}\"\nurl = \"{url}/{event}?callerid=$callerid&direction=$direction&disposition=$disposition&callid=$callid\"\n\n"
            )
        })
        .collect()
}

/// A config in which CallBridge runs baresip itself on free loopback ports, with no audio device.
/// Returns it with baresip's SIP address.
fn supervised_config(crm: &FakeCrm, far_end_port: u16) -> (String, SocketAddr) {
    let sip: SocketAddr = ([127, 0, 0, 1], free_port()).into();
    let control = free_port();
    let config = format!(
        r#"[provider]
kind = "baresip"

[provider.baresip]
supervise = true
control = "127.0.0.1:{control}"
sip_listen = "{sip}"
account = "sip:callbridge@127.0.0.1"
register = false
dial_uri = "sip:$number@127.0.0.1:{far_end_port}"
audio_player = ""
audio_source = ""

{}"#,
        rules(crm)
    );
    (config, sip)
}

/// Waits until the provider reports ready: connected to baresip, account in place.
async fn wait_ready(bridge: &Bridge) {
    wait_ready_or_explain(bridge, String::new).await;
}

/// [`wait_ready`], adding `explain()` (baresip's own account of itself) to the failure message.
async fn wait_ready_or_explain(bridge: &Bridge, explain: impl Fn() -> String) {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let (_, body) = bridge.get("/api/v1/status").await;
        if body["status"]["provider"]["ready"] == true {
            assert_eq!(body["status"]["provider"]["name"], "baresip");
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "baresip never became ready: {}\n{}\nlogs:\n{}",
            body["status"]["provider"],
            explain(),
            bridge.logs()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The requests the CRM got for `event`.
fn of(received: &[Received], event: &str) -> Vec<Received> {
    received.iter().filter(|r| r.path == format!("/{event}")).cloned().collect()
}

async fn wait_for_event(crm: &FakeCrm, event: &str) -> Received {
    eventually(WAIT, &format!("the {event} notification"), || of(&crm.received(), event).into_iter().next()).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn make_dials_through_baresip_and_end_hangs_up() {
    let crm = FakeCrm::start().await;
    let far_end = Sipp::far_end();
    let (config, _) = supervised_config(&crm, far_end.port());
    let mut bridge = Bridge::start(&config);
    wait_ready(&bridge).await;

    let (status, body) = bridge.get("/make/020123456").await;
    assert_eq!(status, 200, "{body}");
    let call_id = body["call_id"].as_str().expect("call id").to_owned();

    // The far end gets the INVITE for the number, over real SIP.
    eventually(WAIT, "sipp to receive the INVITE", || far_end.messages().contains("INVITE sip:020123456@127.0.0.1").then_some(())).await;
    let outgoing = wait_for_event(&crm, "outgoing").await;
    assert_eq!(outgoing.param("callerid").as_deref(), Some("020123456"));
    assert_eq!(outgoing.param("direction").as_deref(), Some("out"));
    assert_eq!(outgoing.param("callid").as_deref(), Some(call_id.as_str()));
    // sipp answers by itself; CallBridge hears it from baresip's CALL_ESTABLISHED.
    wait_for_event(&crm, "answered").await;

    let (status, body) = bridge.get("/end").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["call_id"], call_id.as_str());
    let outcome = far_end.finish(WAIT).await;
    assert!(outcome.succeeded(), "sipp did not complete the call (no BYE?): {}", outcome.report);
    assert!(outcome.messages.contains("BYE sip:"), "{}", outcome.messages);

    let ended = wait_for_event(&crm, "ended").await;
    assert_eq!(ended.param("disposition").as_deref(), Some("answered"));
    let all = crm.received();
    assert_eq!(
        ["incoming", "outgoing", "answered", "ended"].map(|e| of(&all, e).len()),
        [0, 1, 1, 1],
        "each event exactly once: {all:#?}"
    );
    let (_, calls) = bridge.get("/api/v1/calls").await;
    assert_eq!(calls["calls"].as_array().map(Vec::len), Some(1), "one call: {calls}");
    assert!(bridge.stop(), "callbridge stops cleanly, and baresip with it");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_incoming_sip_call_rings_the_crm_and_answer_and_end_control_it() {
    let crm = FakeCrm::start().await;
    let (config, sip) = supervised_config(&crm, 9);
    let mut bridge = Bridge::start(&config);
    wait_ready(&bridge).await;

    let caller = Sipp::caller(sip, "callbridge", "02079460000");
    let incoming = wait_for_event(&crm, "incoming").await;
    assert_eq!(incoming.param("callerid").as_deref(), Some("02079460000"));
    assert_eq!(incoming.param("direction").as_deref(), Some("in"));

    let (status, body) = bridge.get("/answer").await;
    assert_eq!(status, 200, "{body}");
    // sipp got its 200 OK: it sent the ACK that follows it in the scenario.
    eventually(WAIT, "sipp to receive the 200 OK", || caller.messages().contains("ACK sip:callbridge@").then_some(())).await;
    wait_for_event(&crm, "answered").await;

    let (status, body) = bridge.get("/end").await;
    assert_eq!(status, 200, "{body}");
    let outcome = caller.finish(WAIT).await;
    assert!(outcome.succeeded(), "sipp did not complete the call: {}", outcome.report);
    assert!(outcome.messages.contains("SIP/2.0 200"), "{}", outcome.messages);
    assert!(outcome.messages.contains("BYE sip:02079460000@"), "{}", outcome.messages);

    let ended = wait_for_event(&crm, "ended").await;
    assert_eq!(ended.param("disposition").as_deref(), Some("answered"));
    let all = crm.received();
    assert_eq!(
        ["incoming", "outgoing", "answered", "ended"].map(|e| of(&all, e).len()),
        [1, 0, 1, 1],
        "each event exactly once: {all:#?}"
    );
    assert!(bridge.stop());
}

/// baresip as a user runs it: their own config directory with ctrl_tcp and menu loaded.
struct OwnBaresip {
    child: Child,
    log: std::path::PathBuf,
}

impl OwnBaresip {
    fn start(dir: &Path, control: u16, sip: u16) -> OwnBaresip {
        // RTP below the test kit's ports, so a call's media never takes a port handed to another test.
        std::fs::write(
            dir.join("config"),
            format!(
                "sip_listen 127.0.0.1:{sip}\naudio_player\naudio_source\naudio_alert\nrtp_ports 10000-19999\n\
                 module_path /usr/lib/baresip/modules\nmodule g711.so\nmodule_tmp account.so\nmodule_app menu.so\n\
                 module_app ctrl_tcp.so\nctrl_tcp_listen 127.0.0.1:{control}\n"
            ),
        )
        .expect("write baresip config");
        std::fs::write(dir.join("accounts"), "<sip:me@127.0.0.1>;regint=0;answermode=manual\n").expect("write accounts");
        let log = dir.join("baresip.log");
        let output = std::fs::File::create(&log).expect("create baresip.log");
        let child = Command::new("baresip")
            .arg("-f")
            .arg(dir)
            .stdin(Stdio::null())
            .stdout(output.try_clone().expect("dup baresip.log"))
            .stderr(output)
            .spawn()
            .expect("baresip runs (scripts/deps.sh test installs baresip-core)");
        OwnBaresip { child, log }
    }

    /// Whether baresip still runs, and what it printed: for failure messages.
    fn explain(&mut self) -> String {
        let state = match self.child.try_wait() {
            Ok(Some(status)) => format!("baresip exited: {status}"),
            Ok(None) => "baresip is running".to_owned(),
            Err(e) => format!("baresip's state is unknown: {e}"),
        };
        format!("{state}; its output:\n{}", std::fs::read_to_string(&self.log).unwrap_or_default())
    }
}

impl Drop for OwnBaresip {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn callbridge_finds_a_user_run_baresip_again_after_it_restarts() {
    let crm = FakeCrm::start().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let (control, sip) = (free_port(), free_port());
    let far_end = Sipp::far_end();
    let config = format!(
        "[provider]\nkind = \"baresip\"\n\n[provider.baresip]\ncontrol = \"127.0.0.1:{control}\"\ndial_uri = \"sip:$number@127.0.0.1:{}\"\n\n{}",
        far_end.port(),
        rules(&crm)
    );
    let mut bridge = Bridge::start(&config);
    // CallBridge starts first and keeps trying; baresip comes up later.
    let (_, status) = bridge.get("/api/v1/status").await;
    assert_eq!(status["status"]["provider"]["ready"], false);
    assert!(status["status"]["provider"]["problem"].as_str().is_some_and(|p| p.contains(&control.to_string())), "{status}");
    let baresip = std::sync::Mutex::new(OwnBaresip::start(dir.path(), control, sip));
    wait_ready_or_explain(&bridge, || baresip.lock().map(|mut b| b.explain()).unwrap_or_default()).await;

    // baresip goes away: commands fail with a reason, and CallBridge waits for it to come back.
    drop(baresip);
    eventually(WAIT, "baresip's control port to close", || Some(()).filter(|()| std::net::TcpStream::connect(("127.0.0.1", control)).is_err())).await;
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let (status, body) = bridge.get("/make/0301234567").await;
        if status == 502 {
            assert!(body["message"].as_str().is_some_and(|m| m.contains("baresip")), "{body}");
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "dialing without baresip kept answering {status}: {body}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let baresip = std::sync::Mutex::new(OwnBaresip::start(dir.path(), control, sip));
    wait_ready_or_explain(&bridge, || baresip.lock().map(|mut b| b.explain()).unwrap_or_default()).await;
    let (status, body) = bridge.get("/make/0301234567").await;
    assert_eq!(status, 200, "{body}");
    eventually(WAIT, "sipp to receive the INVITE", || far_end.messages().contains("INVITE sip:0301234567@").then_some(())).await;
    wait_for_event(&crm, "answered").await;
    let (status, body) = bridge.get("/end").await;
    assert_eq!(status, 200, "{body}");
    let outcome = far_end.finish(WAIT).await;
    assert!(outcome.succeeded(), "{}", outcome.report);
    wait_for_event(&crm, "ended").await;
    assert!(bridge.stop());
}
