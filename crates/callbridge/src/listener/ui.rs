//! `/ui/`: the settings page and the popups, served to a browser by the headless binary.
//!
//! They are the same files the tray app shows (the top-level `ui/` directory), built into the binary so
//! `callbridge serve` works from anywhere. In a browser the pages talk to `/api/v1/` on this listener;
//! `ui/api.js` is the one place that knows the difference.
//!
//! Each HTML page is served with this start's [page key](crate::security::tiers::PageKey) in a
//! `<meta name="callbridge-page">` tag; `ui/api.js` sends it with every API call, which is what lets
//! these pages (and no web page elsewhere) reach administration. The guard serves `/ui/` only to this
//! machine's browser and never with CORS headers, so no other origin can read a page and its key; the
//! pages are not to be framed by other sites (`frame-ancestors 'none'`) nor kept in a cache.

use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use super::openapi::table::{route, Routes};

use super::commands::path_param;
use super::error::ApiError;
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
    ("validate.js", JS, include_bytes!("../../../../ui/validate.js")),
    ("dial.js", JS, include_bytes!("../../../../ui/dial.js")),
    ("incoming.js", JS, include_bytes!("../../../../ui/incoming.js")),
    ("icon.png", "image/png", include_bytes!("../../../../ui/icon.png")),
];

const HTML: &str = "text/html; charset=utf-8";
const JS: &str = "text/javascript; charset=utf-8";

pub fn routes() -> Routes {
    Routes::new().route(route!(to_pages)).route(route!(settings_page)).route(route!(page))
}

/// Redirects to `/ui/`.
#[utoipa::path(
    get,
    path = "/ui",
    tag = "pages",
    responses((status = 308, description = "To `/ui/`", headers(("location" = String, description = "`/ui/`"))))
)]
async fn to_pages() -> Redirect {
    Redirect::permanent("/ui/")
}

/// The settings page.
#[utoipa::path(get, path = "/ui/", tag = "pages", responses((status = 200, description = "settings.html", content_type = "text/html", body = String)))]
async fn settings_page(State(engine): State<Engine>) -> Response {
    file(&engine, "settings.html")
}

/// A file of the pages: `settings.html`, `dial.html`, `incoming.html`, `index.html`, `style.css`, the
/// scripts, `icon.png`.
#[utoipa::path(
    get,
    path = "/ui/{name}",
    tag = "pages",
    params(("name" = String, Path, description = "The file's name")),
    responses(
        (status = 200, description = "The file", content(
            (String = "text/html"),
            (String = "text/css"),
            (String = "text/javascript"),
            (Vec<u8> = "image/png"),
        )),
        (status = 400, description = "The path is not UTF-8 (`bad_request`)"),
        (status = 404, description = "There is no such page (`unknown_path`)"),
    )
)]
async fn page(State(engine): State<Engine>, name: Result<Path<String>, PathRejection>) -> Response {
    match path_param(name) {
        Ok(name) => file(&engine, &name),
        Err(e) => e.into_response(),
    }
}

/// The `<meta>` tag that hands a page the key, right after `<head>`.
const KEY_TAG: &str = "<meta name=\"callbridge-page\" content=\"";

fn file(engine: &Engine, name: &str) -> Response {
    let Some((_, content_type, bytes)) = FILES.iter().find(|(n, _, _)| *n == name) else {
        return ApiError::new(StatusCode::NOT_FOUND, "unknown_path", format!("there is no page /ui/{name}")).into_response();
    };
    let headers = [
        (header::CONTENT_TYPE, *content_type),
        (header::CACHE_CONTROL, "no-store"),
        (header::CONTENT_SECURITY_POLICY, "frame-ancestors 'none'"),
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::HeaderName::from_static("cross-origin-resource-policy"), "same-origin"),
    ];
    if *content_type != HTML {
        return (headers, *bytes).into_response();
    }
    let page = String::from_utf8_lossy(bytes);
    let page = match engine.security().page_key().expose() {
        Some(key) => page.replacen("<head>", &format!("<head>\n{KEY_TAG}{key}\">"), 1),
        None => page.into_owned(),
    };
    (headers, page).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_page_has_a_head_for_the_key() {
        for (name, content_type, bytes) in FILES {
            if *content_type == HTML {
                assert!(String::from_utf8_lossy(bytes).contains("<head>"), "{name} needs a plain <head> tag for the page key");
            }
        }
    }
}
