//! Call events from Kazoo's blackhole websocket (https://github.com/2600hz/kazoo/blob/master/applications/blackhole/doc/README.md).
//!
//! The connection goes out from CallBridge, so it works from behind NAT where Kazoo's webhooks could
//! not reach the desk. After connecting it subscribes to `call.CHANNEL_CREATE.*`,
//! `call.CHANNEL_ANSWER.*` and `call.CHANNEL_DESTROY.*` for the account, with the Crossbar token;
//! every event is tied to its call by [`Legs`] (and, for a click-to-call, to the dial by [`Dials`])
//! and sent to the tracker. A dropped connection is
//! retried with backoff; a refused token is replaced before the next try.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::json;
use tokio_tungstenite::tungstenite::Message;

use super::api::Crossbar;
use super::config::WsUrl;
use super::dials::Dials;
use super::events::{parse_blackhole, BlackholeMessage, Legs};
use crate::backoff::Backoff;
use crate::provider::EventSink;

pub const BINDINGS: [&str; 3] = ["call.CHANNEL_CREATE.*", "call.CHANNEL_ANSWER.*", "call.CHANNEL_DESTROY.*"];

/// Between two connection attempts: half a second at first, doubling up to 30 s.
const RECONNECT: Backoff = Backoff::new(Duration::from_millis(500), Duration::from_secs(30));
const CONNECT_TIMEOUT: Duration = Duration::from_secs(15);
/// Pings keep proxies (the HAProxy in front of wss) from closing an idle connection.
const PING_EVERY: Duration = Duration::from_secs(30);

/// Whether the subscription is live, and if not, why. Shared with the provider's `health`.
#[derive(Debug, Default)]
pub struct Status {
    problem: Mutex<Option<String>>,
}

impl Status {
    pub fn problem(&self) -> Option<String> {
        self.problem.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }

    fn set(&self, problem: Option<String>) {
        *self.problem.lock().unwrap_or_else(PoisonError::into_inner) = problem;
    }
}

/// Keeps a subscription up until the task is aborted.
pub async fn run(url: WsUrl, api: Arc<Crossbar>, legs: Arc<Mutex<Legs>>, dials: Arc<Dials>, sink: EventSink, status: Arc<Status>) {
    status.set(Some(format!("connecting to the Kazoo websocket at {}", url.as_str())));
    let mut retries = RECONNECT.retries();
    let requests = AtomicU64::new(1);
    loop {
        match session(&url, &api, &legs, &dials, &sink, &status, &requests).await {
            Ok(()) => retries.reset(),
            Err(why) => {
                tracing::warn!(url = url.as_str(), %why, "Kazoo websocket");
                status.set(Some(why));
            }
        }
        tokio::time::sleep(retries.next_delay()).await;
    }
}

/// One connection: connect, subscribe, pass events on until it ends. `Ok` when it was subscribed
/// and then closed; `Err` with the reason when it never got that far.
async fn session(
    url: &WsUrl,
    api: &Crossbar,
    legs: &Mutex<Legs>,
    dials: &Dials,
    sink: &EventSink,
    status: &Status,
    requests: &AtomicU64,
) -> Result<(), String> {
    let token = api.token().await.map_err(|e| e.to_string())?.ok_or("the websocket needs a token (auth = \"none\")")?;
    let (mut ws, _) = tokio::time::timeout(CONNECT_TIMEOUT, tokio_tungstenite::connect_async(url.as_str()))
        .await
        .map_err(|_| format!("no answer within {} s", CONNECT_TIMEOUT.as_secs()))?
        .map_err(|e| format!("cannot connect: {e}"))?;
    let mut pending = Vec::new();
    for binding in BINDINGS {
        let request_id = format!("callbridge-{}", requests.fetch_add(1, Ordering::Relaxed));
        let subscribe = json!({
            "action": "subscribe",
            "auth_token": token.expose(),
            "request_id": request_id,
            "data": {"account_id": api.account_id(), "binding": binding},
        });
        ws.send(Message::text(subscribe.to_string())).await.map_err(|e| format!("cannot subscribe: {e}"))?;
        pending.push(request_id);
    }
    let mut ping = tokio::time::interval(PING_EVERY);
    ping.tick().await;
    let mut subscribed = false;
    loop {
        let message = tokio::select! {
            m = ws.next() => m,
            _ = ping.tick() => {
                ws.send(Message::Ping(Vec::new().into())).await.map_err(|e| format!("connection lost: {e}"))?;
                continue;
            }
        };
        let text = match message {
            None => return closed(subscribed, "closed by Kazoo"),
            Some(Err(e)) => return closed(subscribed, &format!("connection lost: {e}")),
            Some(Ok(Message::Text(t))) => t.to_string(),
            Some(Ok(Message::Close(frame))) => {
                let why = frame.map(|f| format!("closed by Kazoo: {} {}", f.code, f.reason)).unwrap_or_else(|| "closed by Kazoo".into());
                return closed(subscribed, &why);
            }
            Some(Ok(_)) => continue,
        };
        match parse_blackhole(&text) {
            Ok(BlackholeMessage::Reply { request_id, status: outcome, message }) => {
                if outcome != "success" {
                    // Most likely an expired token: get a new one before the next try.
                    api.invalidate(&token).await;
                    return Err(format!("Kazoo refused the subscription: {}", message.unwrap_or(outcome)));
                }
                pending.retain(|r| Some(r) != request_id.as_ref());
                if pending.is_empty() && !subscribed {
                    subscribed = true;
                    status.set(None);
                    tracing::info!(url = url.as_str(), "subscribed to Kazoo call events");
                }
            }
            Ok(BlackholeMessage::Event(event)) => {
                if event.account_id.as_deref().is_some_and(|a| a != api.account_id()) {
                    continue;
                }
                let (mut out, clicktocall) = {
                    let mut legs = legs.lock().unwrap_or_else(PoisonError::into_inner);
                    let out = legs.observe(&event);
                    let clicktocall = out.provider_call_id.as_deref().is_some_and(|root| legs.is_clicktocall(root));
                    (out, clicktocall)
                };
                if clicktocall {
                    if let Some(root) = out.provider_call_id.clone() {
                        out.call_id = dials.call_for(&root).await;
                    }
                }
                let _ = sink.send(out);
            }
            Ok(BlackholeMessage::Ignored) => {}
            Err(e) => tracing::warn!(error = %e, "ignoring a Kazoo websocket message"),
        }
    }
}

fn closed(subscribed: bool, why: &str) -> Result<(), String> {
    if subscribed {
        tracing::warn!(%why, "Kazoo websocket closed; reconnecting");
        Ok(())
    } else {
        Err(why.to_owned())
    }
}
