//! `GET /api/v1/events`: what happens, as Server-Sent Events, for pages in a browser.
//!
//! Each call event is sent as `event: call` with the [`CallEvent`] as JSON data; each settings change
//! as `event: settings` with the new [`SettingsState`]. The tray app does not use this stream: it
//! subscribes to the engine directly and forwards the same two kinds to its windows as Tauri events.
//! A stream ends when the listener it runs on is moved or stopped (the page reconnects), so stopping a
//! listener never waits on an open stream.

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::State;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::Extension;
use futures_util::stream::{self, Stream};
use tokio::sync::{broadcast, watch};
use super::openapi::table::{route, Routes};

use crate::call::CallEvent;
use crate::engine::Engine;
use crate::settings::{Settings, SettingsState};

pub fn routes() -> Routes {
    Routes::new().route(route!(events))
}

struct Feed {
    calls: broadcast::Receiver<CallEvent>,
    settings: Option<watch::Receiver<SettingsState>>,
    /// The listener generation this stream runs on; a newer one ends the stream.
    generation: u64,
}

/// Call events (`event: call`, a call event as JSON), settings changes (`event: settings`) and
/// `event: resync` (events were missed: reload), as Server-Sent Events, until the listener moves.
#[utoipa::path(
    get,
    path = "/events",
    tag = "calls",
    responses((status = 200, description = "An event stream (it stays open)", content_type = "text/event-stream", body = String))
)]
async fn events(State(engine): State<Engine>, settings: Option<Extension<Settings>>) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let settings = settings.map(|Extension(s)| s.watch());
    let generation = settings.as_ref().map(|w| w.borrow().listener_generation).unwrap_or_default();
    let feed = Feed { calls: engine.subscribe(), settings, generation };
    let stream = stream::unfold(feed, |mut feed| async move {
        let event = next(&mut feed).await?;
        Some((Ok(event), feed))
    });
    Sse::new(stream).keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
}

/// The next event to send, or `None` to end the stream.
async fn next(feed: &mut Feed) -> Option<Event> {
    let Feed { calls, settings, generation } = feed;
    loop {
        let settings_changed = async {
            match settings.as_mut() {
                Some(w) => w.changed().await.is_ok(),
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            call = calls.recv() => match call {
                Ok(event) => return Event::default().event("call").json_data(&event).ok(),
                // A slow page missed events: tell it to reload its state rather than end the stream.
                Err(broadcast::error::RecvError::Lagged(_)) => return Some(Event::default().event("resync").data("{}")),
                Err(broadcast::error::RecvError::Closed) => return None,
            },
            alive = settings_changed => {
                let state = settings.as_ref().filter(|_| alive).map(|w| w.borrow().clone())?;
                if state.listener_generation != *generation {
                    return None;
                }
                if let Ok(event) = Event::default().event("settings").json_data(&state) {
                    return Some(event);
                }
            }
        }
    }
}
