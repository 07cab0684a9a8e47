//! The approval seam the desktop shell builds its Call / Block / Always allow dialog on: a dial command
//! from a page that is not trusted goes to `Services::approver`, and its answer decides — through the
//! real router and its security guard.

use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use axum::body::Body;
use axum::http::Request;
use callbridge::config::Config;
use callbridge::engine::{Engine, Services};
use callbridge::secrets::MemorySecrets;
use callbridge::security::approval::{Approval, ApprovalRequest, DialApprover};
use tower::ServiceExt;

/// Answers with a fixed choice, or never (`None`), and remembers what it was asked.
#[derive(Debug)]
struct Scripted {
    answer: Option<Approval>,
    asked: Mutex<Vec<ApprovalRequest>>,
}

#[async_trait]
impl DialApprover for Scripted {
    async fn approve(&self, request: &ApprovalRequest) -> Approval {
        self.asked.lock().expect("lock").push(request.clone());
        match self.answer {
            Some(answer) => answer,
            None => std::future::pending().await,
        }
    }
}

struct Setup {
    engine: Engine,
    approver: Arc<Scripted>,
    config_file: std::path::PathBuf,
    _dir: tempfile::TempDir,
}

fn setup(answer: Option<Approval>) -> Setup {
    let dir = tempfile::tempdir().expect("tempdir");
    let config_file = dir.path().join("callbridge.toml");
    let config = Config::default();
    config.save(&config_file).expect("initial config");
    let approver = Arc::new(Scripted { answer, asked: Mutex::default() });
    let mut services = Services::with_secrets(&config, Arc::new(MemorySecrets::default()));
    services.approver = Arc::clone(&approver) as Arc<dyn DialApprover>;
    services.config_file = Some(config_file.clone());
    Setup { engine: Engine::start_with(config, services), approver, config_file, _dir: dir }
}

/// `GET /make/{number}` as a link on `origin`'s page sends it.
async fn click(engine: &Engine, number: &str, origin: &str) -> (u16, serde_json::Value) {
    let request = Request::get(format!("/make/{number}"))
        .header("host", "localhost:5678")
        .header("sec-fetch-site", "cross-site")
        .header("origin", origin)
        .body(Body::empty())
        .expect("request");
    let response = callbridge::listener::router(engine.clone()).oneshot(request).await.unwrap_or_else(|e| match e {});
    let status = response.status().as_u16();
    let body = axum::body::to_bytes(response.into_body(), 1 << 20).await.expect("body");
    (status, serde_json::from_slice(&body).unwrap_or_default())
}

#[tokio::test]
async fn allow_places_the_call_once_and_asks_again_next_time() {
    let s = setup(Some(Approval::Allow));
    let (status, body) = click(&s.engine, "020123456", "https://new-crm.example").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["call"]["remote_number"], "020123456");
    let asked = s.approver.asked.lock().expect("lock").clone();
    assert_eq!(asked.len(), 1);
    assert_eq!(asked[0].origin.as_deref(), Some("https://new-crm.example"));
    assert_eq!(asked[0].number, "020123456");
    assert!(asked[0].reason.contains("not a trusted origin"), "{}", asked[0].reason);
    let (status, _) = click(&s.engine, "020123457", "https://new-crm.example").await;
    assert_eq!(status, 200);
    assert_eq!(s.approver.asked.lock().expect("lock").len(), 2, "Allow is for one call");
    assert!(s.engine.config().security.trusted_origins.is_empty());
}

#[tokio::test]
async fn always_allow_trusts_the_site_and_saves_it() {
    let s = setup(Some(Approval::AllowAlways));
    let (status, body) = click(&s.engine, "020123456", "https://new-crm.example").await;
    assert_eq!(status, 200, "{body}");
    let trusted: Vec<String> = s.engine.config().security.trusted_origins.iter().map(|o| o.to_string()).collect();
    assert_eq!(trusted, ["https://new-crm.example"]);
    let saved = Config::load(&s.config_file).expect("saved config loads");
    assert_eq!(saved.security.trusted_origins, s.engine.config().security.trusted_origins);
    // Trusted now: the next call is placed without asking, and the page may read the answer (CORS).
    let (status, _) = click(&s.engine, "020123457", "https://new-crm.example").await;
    assert_eq!(status, 200);
    assert_eq!(s.approver.asked.lock().expect("lock").len(), 1);
}

#[tokio::test]
async fn block_refuses_and_says_how_to_allow_the_site() {
    let s = setup(Some(Approval::Deny));
    let (status, body) = click(&s.engine, "020123456", "https://new-crm.example").await;
    assert_eq!(status, 403, "{body}");
    let message = body["message"].as_str().unwrap_or_default();
    assert!(message.contains("chose not to dial") && message.contains("trusted_origins"), "{message}");
    assert!(s.engine.calls().is_empty(), "nothing was dialed");
}

#[tokio::test(start_paused = true)]
async fn no_answer_in_time_is_a_refusal() {
    let s = setup(None);
    let (status, body) = click(&s.engine, "020123456", "https://new-crm.example").await;
    assert_eq!(status, 403, "{body}");
    assert!(body["message"].as_str().is_some_and(|m| m.contains("nobody answered")), "{body}");
    assert!(s.engine.calls().is_empty());
}

#[tokio::test]
async fn premium_numbers_are_refused_before_anyone_is_asked() {
    let s = setup(Some(Approval::Allow));
    let (status, body) = click(&s.engine, "+19005550123", "https://new-crm.example").await;
    assert_eq!(status, 403, "{body}");
    assert!(s.approver.asked.lock().expect("lock").is_empty(), "the user is not asked about a number that may not be dialed");
}
