//! What the operating system provides, through the built `callbridge` as a user meets it: secrets and
//! the listener token in the OS keyring (the Secret Service on Linux, the Credential Manager on
//! Windows), read back with the platform's own tool, and the errors a user sees when the port is taken
//! or a secret is missing. `scripts/test.sh` runs these against the Linux build and, through
//! `scripts/windows.sh`, against `callbridge.exe` under wine.

use std::time::Duration;

use callbridge_e2e::bridge::{keyring_lookup, run_cli, Bridge};
use callbridge_e2e::cli;
use serde_json::{json, Value};

fn require_keyring() {
    assert!(
        std::env::var_os("CALLBRIDGE_TEST_KEYRING").is_some(),
        "these tests use the real OS keyring: run them via scripts/with-keyring.sh or scripts/windows.sh (scripts/test.sh runs both)"
    );
}

/// A keyring entry of this test's own: tests share one keyring.
fn entry(test: &str) -> String {
    format!("e2e-platform-{test}-{}", std::process::id())
}

#[test]
fn secret_set_status_and_delete_go_through_the_os_keyring() {
    require_keyring();
    let home = tempfile::tempdir().expect("tempdir");
    let name = entry("secret");
    let value = "s3cret-from-stdin-7d1e";

    let set = cli::callbridge(home.path(), &["secret", "set", &name], &format!("{value}\n"));
    assert!(set.success, "secret set: {}", set.stderr);
    assert!(!set.stdout.contains(value) && !set.stderr.contains(value), "secret set printed the secret");
    // Read back with the platform's own tool, not through CallBridge: the value is in the OS keyring.
    assert_eq!(keyring_lookup(&name).as_deref(), Some(value), "the OS keyring holds exactly what was typed");

    let status = cli::callbridge(home.path(), &["secret", "status", &name], "");
    assert!(status.success, "{}", status.stderr);
    assert_eq!(status.stdout.trim(), format!("{name}: set"));
    assert!(!status.stdout.contains(value));

    let deleted = cli::callbridge(home.path(), &["secret", "delete", &name], "");
    assert!(deleted.success && deleted.stdout.contains("Deleted"), "{}{}", deleted.stdout, deleted.stderr);
    assert_eq!(keyring_lookup(&name), None, "deleted from the OS keyring");
    let status = cli::callbridge(home.path(), &["secret", "status", &name], "");
    assert_eq!(status.stdout.trim(), format!("{name}: not set"));
    let again = cli::callbridge(home.path(), &["secret", "delete", &name], "");
    assert!(again.success && again.stdout.contains("There was no secret"), "{}{}", again.stdout, again.stderr);

    // A name that cannot be an entry is refused, saying what a name looks like.
    let bad = cli::callbridge(home.path(), &["secret", "set", "two words"], "x\n");
    assert!(!bad.success && bad.stderr.contains("is not a secret name"), "{}", bad.stderr);
}

#[tokio::test]
async fn the_listener_token_lives_in_the_os_keyring_and_the_bridge_takes_it() {
    require_keyring();
    let name = entry("token");
    let config = format!("[security]\ntoken_entry = \"{name}\"\n");
    let bridge = Bridge::start(&config);

    let token = bridge.token();
    assert!(token.len() >= 32, "a long random token: {token:?}");
    assert_eq!(bridge.token(), token, "`token show` shows the same token every time");
    assert_eq!(keyring_lookup(&name).as_deref(), Some(token.as_str()), "the token is kept in the OS keyring");

    // A request that is not from a program on this machine's loopback with a trusted origin needs it:
    // a page from elsewhere is refused without the token and let through with it.
    let client = reqwest::Client::new();
    let dial = |auth: Option<&str>| {
        let mut request = client
            .post(format!("{}/api/v1/dial", bridge.url))
            .header("Origin", "https://evil.example")
            .json(&json!({ "number": "+442079460000" }));
        if let Some(token) = auth {
            request = request.bearer_auth(token);
        }
        request.timeout(Duration::from_secs(30)).send()
    };
    let refused = dial(None).await.expect("answers");
    assert_eq!(refused.status().as_u16(), 403, "a foreign page without the token is refused");
    let allowed = dial(Some(&token)).await.expect("answers");
    assert_eq!(allowed.status().as_u16(), 200, "the token lets it through");

    let regenerated = run_cli(&bridge.dir, &["token", "regenerate"], &[]);
    assert!(regenerated.status.success(), "{}", String::from_utf8_lossy(&regenerated.stderr));
    let new = String::from_utf8_lossy(&regenerated.stdout).trim().to_owned();
    assert_ne!(new, token);
    assert_eq!(keyring_lookup(&name).as_deref(), Some(new.as_str()));
    // The running bridge stops taking the old token (it reads the keyring again within a second).
    callbridge_e2e::eventually_async(Duration::from_secs(10), "the old token to be refused", || async {
        (dial(Some(&token)).await.ok()?.status().as_u16() == 401).then_some(())
    })
    .await;
}

#[test]
fn a_taken_port_is_named_with_what_to_do() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = taken.local_addr().expect("addr").port().to_string();
    let dir = tempfile::tempdir().expect("tempdir");
    let out = run_cli(dir.path(), &["serve", "--port", &port], &[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "serve must fail on a taken port: {stderr}");
    assert!(stderr.contains(&format!("cannot listen on 127.0.0.1:{port}")), "{stderr}");
    assert!(stderr.contains("is another CallBridge running") && stderr.contains("[listener] port"), "{stderr}");
}

#[test]
fn a_bad_config_value_is_refused_with_its_line() {
    let dir = tempfile::tempdir().expect("tempdir");
    let text = "# CallBridge\n[listener]\nport = 5678\nbind = \"not an address\"\n";
    std::fs::write(dir.path().join("callbridge.toml"), text).expect("write");
    for args in [&["config", "check"][..], &["serve", "--port", "0"][..]] {
        let out = run_cli(dir.path(), args, &[]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{args:?} must fail");
        assert!(stderr.contains("is not valid (line 4)") && stderr.contains("callbridge.toml"), "{args:?}: {stderr}");
    }
}

#[tokio::test]
async fn a_missing_secret_is_named_with_the_command_that_stores_it() {
    require_keyring();
    let name = entry("missing");
    let bridge = Bridge::start(&format!(
        "[provider]\nkind = \"telecmi\"\n\n[provider.telecmi]\nbase_url = \"http://127.0.0.1:9\"\nuser_id = \"101_1111112\"\nsecret_entry = \"{name}\"\n"
    ));
    let (status, body) = bridge.post("/api/v1/dial", json!({ "number": "+919200000000" })).await;
    assert!(status >= 500, "{status} {body}");
    let message = body["message"].as_str().unwrap_or_default();
    let want = format!("callbridge secret set {name}");
    assert!(message.contains("OS keyring") && message.contains(&want), "{body}");
    let (_, status_body) = bridge.get("/api/v1/status").await;
    let provider: &Value = &status_body["status"]["provider"];
    assert_eq!(provider["ready"], false, "{status_body}");
    assert!(provider["problem"].as_str().unwrap_or_default().contains(&want), "{status_body}");
}
