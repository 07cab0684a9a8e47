//! `/ui/`: the settings page and the popups, served to a browser by the headless binary.
//!
//! They are the same files the tray app shows (the top-level `ui/` directory), built into the binary so
//! `callbridge serve` works from anywhere. In a browser the pages talk to `/api/v1/` on this listener;
//! `ui/api.js` is the one place that knows the difference.

use axum::extract::Path;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::Router;

use super::ApiError;
use crate::engine::Engine;

/// Every file of `ui/`: name, content type, bytes.
const FILES: &[(&str, &str, &[u8])] = &[
    ("index.html", HTML, include_bytes!("../../../../ui/index.html")),
    ("settings.html", HTML, include_bytes!("../../../../ui/settings.html")),
    ("dial.html", HTML, include_bytes!("../../../../ui/dial.html")),
    ("incoming.html", HTML, include_bytes!("../../../../ui/incoming.html")),
    ("style.css", "text/css; charset=utf-8", include_bytes!("../../../../ui/style.css")),
    ("api.js", JS, include_bytes!("../../../../ui/api.js")),
    ("settings.js", JS, include_bytes!("../../../../ui/settings.js")),
    ("activity.js", JS, include_bytes!("../../../../ui/activity.js")),
    ("dial.js", JS, include_bytes!("../../../../ui/dial.js")),
    ("incoming.js", JS, include_bytes!("../../../../ui/incoming.js")),
    ("icon.png", "image/png", include_bytes!("../../../../ui/icon.png")),
];

const HTML: &str = "text/html; charset=utf-8";
const JS: &str = "text/javascript; charset=utf-8";

pub fn routes() -> Router<Engine> {
    Router::new()
        .route("/ui", get(|| async { Redirect::permanent("/ui/") }))
        .route("/ui/", get(|| async { file("settings.html") }))
        .route("/ui/{name}", get(|Path(name): Path<String>| async move { file(&name) }))
}

fn file(name: &str) -> Response {
    match FILES.iter().find(|(n, _, _)| *n == name) {
        Some((_, content_type, bytes)) => (
            [(header::CONTENT_TYPE, *content_type), (header::CACHE_CONTROL, "no-cache")],
            *bytes,
        )
            .into_response(),
        None => ApiError::new(StatusCode::NOT_FOUND, "unknown_path", format!("there is no page /ui/{name}")).into_response(),
    }
}
