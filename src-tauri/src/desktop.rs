//! The running CallBridge inside the tray app: the engine, its settings and its listener.
//!
//! The engine runs in process, exactly as in the headless binary. The pages reach its API through
//! [`Desktop::request`], which hands each call to the same `/api/v1` router in memory, so the settings
//! page keeps working when the listen port is taken and the listener cannot start.

use std::path::PathBuf;
use std::sync::Arc;

use axum::body::Body;
use axum::http::{header, Method, Request};
use callbridge::config::Config;
use callbridge::engine::Services;
use callbridge::security::approval::DialApprover;
use callbridge::store::StoreError;
use callbridge::settings::{ListenerState, Settings};
use callbridge::{Call, CallState, Direction, Engine};
use serde::Serialize;
use serde_json::Value;
use tower::ServiceExt;

use crate::shortcut;

/// The app's shared state (managed by Tauri, reached with `app.state::<Desktop>()`).
#[derive(Debug)]
pub struct Desktop {
    pub settings: Settings,
}

/// An API answer as the pages see it: the HTTP status and the JSON body.
#[derive(Debug, Clone, Serialize)]
pub struct Reply {
    pub status: u16,
    pub body: Value,
}

/// What the tray shows, worst first.
#[derive(Debug, Clone, PartialEq)]
pub enum Condition {
    /// Something keeps CallBridge from working: the port is taken, the provider is not set up.
    Problem(String),
    Ringing(Call),
    InCall(Call),
    Idle { listening: Option<String>, provider: String },
}

impl Desktop {
    /// Starts the engine on `config` and tries to listen. A taken port is not fatal here: the tray
    /// shows it and the settings page can move the listener. A store that cannot be opened (another
    /// CallBridge holds it, the disk is not writable) is: there would be no history and no outbox.
    pub async fn start(config: Config, path: PathBuf, approver: Arc<dyn DialApprover>) -> Result<Desktop, StoreError> {
        let mut services = Services::standard(&config)?;
        // Dials from web pages that are not trusted are put to the user (Call / Block / Always allow).
        services.approver = approver;
        // "Always allow this site" writes the trusted origin into this file.
        services.config_file = Some(path.clone());
        let engine = Engine::start_with(config, services);
        // Read the listener token from the keyring once, so the first request does not wait for it.
        let _ = engine.listener_token().await;
        let settings = Settings::new(engine, Some(path), Some(Box::new(shortcut::check)), callbridge::listener::router);
        if let Err(e) = settings.start_listener().await {
            tracing::warn!(error = %e, "starting without a listener");
        }
        Ok(Desktop { settings })
    }

    pub fn engine(&self) -> &Engine {
        self.settings.engine()
    }

    /// Sends one API call (`path` under `/api/v1`) to the router in process.
    pub async fn request(&self, method: &str, path: &str, body: Option<Value>) -> Result<Reply, String> {
        if !path.starts_with('/') || path.contains("..") {
            return Err(format!("{path:?} is not an API path"));
        }
        let method = Method::from_bytes(method.as_bytes()).map_err(|_| format!("{method:?} is not an HTTP method"))?;
        let port = self.engine().config().listener.port;
        let mut request = Request::builder()
            .method(method)
            .uri(format!("/api/v1{path}"))
            .header(header::HOST, format!("localhost:{port}"));
        let body = match body {
            Some(json) => {
                request = request.header(header::CONTENT_TYPE, "application/json");
                Body::from(json.to_string())
            }
            None => Body::empty(),
        };
        let mut request = request.body(body).map_err(|e| e.to_string())?;
        // The app's own windows are this machine, whatever address the listener is bound to, and
        // CallBridge's own pages: they present the page key, which opens administration to them.
        request.extensions_mut().insert(axum::extract::ConnectInfo(std::net::SocketAddr::from(([127, 0, 0, 1], 0))));
        if let Some(key) = self.engine().security().page_key().expose().and_then(|k| header::HeaderValue::from_str(k).ok()) {
            request.headers_mut().insert(callbridge::security::tiers::PAGE_KEY_HEADER, key);
        }
        let response = match self.settings.router().oneshot(request).await {
            Ok(r) => r,
            Err(never) => match never {},
        };
        let status = response.status().as_u16();
        let bytes = axum::body::to_bytes(response.into_body(), 16 << 20).await.map_err(|e| e.to_string())?;
        let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        Ok(Reply { status, body })
    }

    /// The tray's state now.
    pub fn condition(&self) -> Condition {
        condition(&self.engine().calls(), &self.settings.listener_state(), self.engine())
    }

    /// The newest call of each of up to `n` different numbers, newest first.
    pub fn recent_calls(&self, n: usize) -> Vec<Call> {
        recent(self.engine().calls(), n)
    }
}

/// The newest call of each of up to `n` different numbers among `calls`, newest first.
fn recent(mut calls: Vec<Call>, n: usize) -> Vec<Call> {
    calls.sort_by_key(|c| std::cmp::Reverse(c.started_at));
    let mut newest: Vec<Call> = Vec::new();
    for call in calls {
        if newest.len() == n {
            break;
        }
        if !newest.iter().any(|c| c.remote_number == call.remote_number) {
            newest.push(call);
        }
    }
    newest
}

fn condition(calls: &[Call], listener: &ListenerState, engine: &Engine) -> Condition {
    if let Some(problem) = &listener.problem {
        return Condition::Problem(problem.clone());
    }
    let status = engine.status();
    if let Some(problem) = status.provider.health.problem.filter(|_| !status.provider.health.ready) {
        return Condition::Problem(format!("{}: {problem}", status.provider.name));
    }
    classify(calls).unwrap_or(Condition::Idle { listening: listener.url.clone(), provider: status.provider.name.to_owned() })
}

/// Ringing beats in-call: a ringing call needs the user now.
fn classify(calls: &[Call]) -> Option<Condition> {
    let newest = |pick: &dyn Fn(&Call) -> bool| calls.iter().filter(|c| pick(c)).max_by_key(|c| c.started_at).cloned();
    if let Some(call) = newest(&|c| c.direction == Direction::In && c.state == CallState::Ringing) {
        return Some(Condition::Ringing(call));
    }
    newest(&|c| c.state == CallState::Active || (c.direction != Direction::In && c.state.is_live())).map(Condition::InCall)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_ringing_call_shows_before_a_call_in_progress() {
        let mut active = Call::new(Direction::Out, "+441", "simulator");
        active.state = CallState::Active;
        let ringing = Call::new(Direction::In, "+442", "simulator");
        let mut ended = Call::new(Direction::In, "+443", "simulator");
        ended.state = CallState::Ended;
        assert_eq!(classify(&[active.clone(), ringing.clone(), ended.clone()]), Some(Condition::Ringing(ringing)));
        assert_eq!(classify(&[active.clone(), ended.clone()]), Some(Condition::InCall(active)));
        assert_eq!(classify(&[ended]), None);
    }

    #[test]
    fn recent_calls_are_the_newest_of_each_number() {
        let mut older = Call::new(Direction::In, "+441", "simulator");
        older.started_at -= std::time::Duration::from_secs(60);
        let newer = Call::new(Direction::Out, "+441", "simulator");
        let mut other = Call::new(Direction::In, "+442", "simulator");
        other.started_at -= std::time::Duration::from_secs(30);
        let got = recent(vec![older, other.clone(), newer.clone()], 5);
        assert_eq!(got, vec![newer.clone(), other]);
        assert_eq!(recent(vec![newer], 0), Vec::<Call>::new());
    }
}
