//! Panics: a bug must cost one request, never the process.
//!
//! Release builds unwind on panic (the root `Cargo.toml`), so a panic stays in the thread or task it
//! happened in. Two things make sure it is seen and answered:
//!
//! * [`catch_layer`] wraps the listener's router: a request handler that panics is answered `500`
//!   with `{"ok":false,"error":"internal","message":"… error id X"}`, and the panic message is logged
//!   with the same error id, so a user's report can be matched to the log line.
//! * [`install_hook`] routes every panic — in a spawned background task, a blocking thread, anywhere
//!   — to the log through `tracing`, with where it happened, instead of the standard error output that
//!   a tray app does not show. Tokio keeps its worker threads alive when a task panics; the panic ends
//!   only that task.

use std::any::Any;
use std::sync::Once;

use axum::body::Body;
use axum::http::{header, Response, StatusCode};
use tower_http::catch_panic::CatchPanicLayer;

/// What [`catch_layer`] calls with a panic's payload.
pub type PanicAnswer = fn(Box<dyn Any + Send + 'static>) -> Response<Body>;

/// The layer that turns a handler's panic into a `500` (see the module documentation).
pub fn catch_layer() -> CatchPanicLayer<PanicAnswer> {
    CatchPanicLayer::custom(answer_panic as PanicAnswer)
}

/// The panic's message, when it has one (`panic!("…")` gives a `&str` or a `String`).
pub fn message(payload: &(dyn Any + Send)) -> &str {
    if let Some(s) = payload.downcast_ref::<&str>() {
        s
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s
    } else {
        "a panic without a message"
    }
}

/// A short id that ties the answer to the log line.
fn error_id() -> String {
    uuid::Uuid::new_v4().simple().to_string()[..12].to_owned()
}

fn answer_panic(payload: Box<dyn Any + Send + 'static>) -> Response<Body> {
    let id = error_id();
    tracing::error!(error_id = %id, panic = %message(payload.as_ref()), "a request handler panicked; answered 500");
    let body = serde_json::json!({
        "ok": false,
        "error": "internal",
        "message": format!("CallBridge hit an internal error and did not finish this request; it keeps running (error id {id}, logged with the details)"),
        "error_id": id,
    });
    let mut response = Response::new(Body::from(body.to_string()));
    *response.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
    response.headers_mut().insert(header::CONTENT_TYPE, header::HeaderValue::from_static("application/json"));
    response
}

/// Logs every panic through `tracing` (once tracing is set up; before that, the standard hook prints
/// it). Call once at start-up, after the tracing subscriber is installed; later calls do nothing.
pub fn install_hook() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let standard = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if !tracing::dispatcher::has_been_set() {
                standard(info);
                return;
            }
            let thread = std::thread::current();
            let location = info.location().map(|l| format!("{}:{}", l.file(), l.line())).unwrap_or_default();
            tracing::error!(
                thread = thread.name().unwrap_or("unnamed"),
                %location,
                panic = %message(info.payload()),
                "panic (only the request or task it happened in was stopped)"
            );
        }));
    });
}

/// A route that panics, for tests of the layer against the real router: present only in debug
/// builds, and only when the environment variable `CALLBRIDGE_TEST_PANIC_ROUTE=1` is set when the
/// router is built. Release builds never have it.
pub fn test_routes() -> axum::Router<crate::engine::Engine> {
    #[cfg(debug_assertions)]
    if std::env::var("CALLBRIDGE_TEST_PANIC_ROUTE").as_deref() == Ok("1") {
        return axum::Router::new().route(TEST_PANIC_PATH, axum::routing::get(test_panic));
    }
    axum::Router::new()
}

#[cfg(debug_assertions)]
async fn test_panic() -> &'static str {
    panic!("the test route panicked, as asked")
}

/// Where [`test_routes`] puts its panicking route.
pub const TEST_PANIC_PATH: &str = "/api/v1/test/panic";

#[cfg(test)]
mod tests {
    use super::*;
    use axum::routing::get;
    use axum::Router;

    #[test]
    fn the_message_is_found_for_both_kinds_of_payload() {
        let literal: Box<dyn Any + Send> = Box::new("static text");
        let formatted: Box<dyn Any + Send> = Box::new(format!("formatted {}", 1));
        let other: Box<dyn Any + Send> = Box::new(42_u8);
        assert_eq!(message(literal.as_ref()), "static text");
        assert_eq!(message(formatted.as_ref()), "formatted 1");
        assert_eq!(message(other.as_ref()), "a panic without a message");
    }

    async fn boom() -> &'static str {
        panic!("boom at {}", 7)
    }

    /// A router with a panicking route behind the layer, served on loopback: the panic is a 500 with an
    /// error id, and the server keeps answering.
    #[tokio::test]
    async fn a_panicking_handler_is_a_500_and_the_server_keeps_serving() {
        let app = Router::new()
            .route("/boom", get(boom))
            .route("/fine", get(|| async { "fine" }))
            .layer(catch_layer());
        let socket = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = socket.local_addr().expect("addr");
        let server = tokio::spawn(async move { axum::serve(socket, app).await });

        for _ in 0..3 {
            let response = reqwest::get(format!("http://{addr}/boom")).await.expect("an answer, not a dropped connection");
            assert_eq!(response.status(), 500);
            let body: serde_json::Value = response.json().await.expect("json");
            assert_eq!((body["ok"].as_bool(), body["error"].as_str()), (Some(false), Some("internal")), "{body}");
            let id = body["error_id"].as_str().expect("an error id").to_owned();
            assert_eq!(id.len(), 12);
            assert!(body["message"].as_str().is_some_and(|m| m.contains(&format!("error id {id}"))), "{body}");
            let fine = reqwest::get(format!("http://{addr}/fine")).await.expect("still serving");
            assert_eq!(fine.text().await.expect("text"), "fine");
        }
        server.abort();
    }
}
