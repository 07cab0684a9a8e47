//! The listener's security guard: the [policy](crate::security) applied to every request.
//!
//! Before any route runs, the guard refuses oversized bodies (413), a `Host` that is not this machine
//! (403), requests from other machines without the token (401), a wrong token (401) and a page key
//! from before a restart (401); looks up the route's [`Tier`] in [`route_tier`]'s path table and
//! refuses a caller that may not use it (403) — web pages, trusted or not, never reach
//! administration, and pages that are not trusted may only ask to dial; answers CORS preflights (204
//! with CORS headers for trusted origins on routes they may use, 403 for everything else); and hands
//! the route the [`Caller`] it found, so a dial command from an untrusted page goes to the approver. A
//! `?token=` parameter is removed from the request once checked, so routes and logs never see it.
//! Responses to trusted origins carry `Access-Control-Allow-Origin`.

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::header::{self, HeaderMap, HeaderName, HeaderValue};
use axum::http::{Method, StatusCode, Uri};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::error::ApiError;
use super::serve;
use crate::config::ListenerConfig;
use crate::engine::Engine;
use crate::security::tiers::{Tier, PAGE_KEY_HEADER};
use crate::security::{self, Caller, Refusal, RequestFacts};

/// The largest request body the listener reads. Commands and webhooks are small; this is 16 times the
/// largest TeleCMI CDR seen.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// The API route that dials, besides the `/{make}/…` command.
const API_DIAL: &str = "/api/v1/dial";

/// See the module documentation.
pub async fn guard(State(engine): State<Engine>, mut request: Request, next: Next) -> Response {
    if content_length(request.headers()).is_some_and(|len| len > MAX_BODY_BYTES) {
        return too_large();
    }
    let config = engine.config();
    let presented = presented_token(&request);
    let token = engine.security().check_token(presented.as_deref()).await;
    let bind_loopback = config.listener.bind.is_loopback();
    let peer = request.extensions().get::<ConnectInfo<SocketAddr>>().map(|c| c.0);
    let host = header_text(request.headers(), &header::HOST).or_else(|| request.uri().authority().map(|a| a.to_string()));
    let origin = header_text(request.headers(), &header::ORIGIN);
    let referer = header_text(request.headers(), &header::REFERER);
    let site = header_text(request.headers(), &HeaderName::from_static("sec-fetch-site"));
    let page_key = header_text(request.headers(), &HeaderName::from_static(PAGE_KEY_HEADER));
    let facts = RequestFacts {
        host: host.as_deref(),
        origin: origin.as_deref(),
        referer: referer.as_deref(),
        sec_fetch_site: site.as_deref(),
        peer_is_local: bind_loopback || serve::is_local(peer),
        token,
        page_key: engine.security().page_key().check(page_key.as_deref()),
    };
    let caller = match security::classify(&facts, &config.security, bind_loopback) {
        Ok(caller) => caller,
        Err(refusal) => return refused(refusal, request.uri()),
    };
    let tier = route_tier(request.uri().path(), &config.listener);
    if is_preflight(&request) {
        return preflight(&caller, tier, request.headers());
    }
    if !caller.may(tier) {
        return forbidden(&caller, tier, request.uri());
    }
    if presented.is_some() {
        strip_token(request.uri_mut());
    }
    let cors = caller.cors_origin().and_then(|o| HeaderValue::from_str(o).ok());
    request.extensions_mut().insert(caller);
    let mut response = next.run(request).await;
    if let Some(origin) = cors {
        let headers = response.headers_mut();
        headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
        headers.append(header::VARY, HeaderValue::from_static("Origin"));
    }
    response
}

fn header_text(headers: &HeaderMap, name: &HeaderName) -> Option<String> {
    // A value that is not text is kept (lossily) rather than dropped: a garbled Origin must count as
    // an Origin, not as none.
    headers.get(name).map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
}

fn content_length(headers: &HeaderMap) -> Option<usize> {
    headers.get(header::CONTENT_LENGTH)?.to_str().ok()?.trim().parse().ok()
}

/// The token from `Authorization: Bearer …`, else from `?token=…`.
fn presented_token(request: &Request) -> Option<String> {
    let bearer = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token.trim().to_owned());
    bearer.or_else(|| {
        form_urlencoded::parse(request.uri().query()?.as_bytes()).find(|(k, _)| k == "token").map(|(_, v)| v.into_owned())
    })
}

/// Removes `token` from the query string.
fn strip_token(uri: &mut Uri) {
    let Some(query) = uri.query() else { return };
    let kept: Vec<&str> = query
        .split('&')
        .filter(|pair| {
            let key = pair.split('=').next().unwrap_or_default();
            form_urlencoded::parse(key.as_bytes()).next().is_none_or(|(k, _)| k != "token")
        })
        .collect();
    let path_and_query = if kept.is_empty() { uri.path().to_owned() } else { format!("{}?{}", uri.path(), kept.join("&")) };
    let mut parts = uri.clone().into_parts();
    parts.path_and_query = path_and_query.parse().ok();
    if let Ok(stripped) = Uri::from_parts(parts) {
        *uri = stripped;
    }
}

fn is_preflight(request: &Request) -> bool {
    request.method() == Method::OPTIONS
        && request.headers().contains_key(header::ORIGIN)
        && request.headers().contains_key(header::ACCESS_CONTROL_REQUEST_METHOD)
}

/// The tier of the route at `path`: the listener's path table. A path that is not listed here is
/// administration, so a route added later is closed to web pages until it is listed.
pub fn route_tier(path: &str, listener: &ListenerConfig) -> Tier {
    if is_dial(path, listener) {
        return Tier::Dial;
    }
    let command = |segment: &crate::config::Segment| path.strip_prefix('/') == Some(segment.as_str());
    if command(&listener.answer) || command(&listener.end) || path == "/health" {
        return Tier::CallControl;
    }
    if path == "/ui" || path.starts_with("/ui/") {
        return Tier::Pages;
    }
    if path.starts_with("/webhooks/") {
        return Tier::Webhook;
    }
    match path.strip_prefix("/api/v1") {
        Some("/status" | "/calls" | "/answer" | "/hangup" | "/events") => Tier::CallControl,
        // One call; `calls/{id}/crm-url` (the CRM link template) is administration.
        Some(api) if api.strip_prefix("/calls/").is_some_and(|id| !id.is_empty() && !id.contains('/')) => Tier::CallControl,
        _ => Tier::Admin,
    }
}

/// The 403 for a caller that may not use `tier`.
fn forbidden(caller: &Caller, tier: Tier, uri: &Uri) -> Response {
    let message = match (caller, tier) {
        (Caller::Untrusted { reason, .. }, _) => format!(
            "refused: {reason}; a web page that is not trusted may only ask to dial (trust it with [security] trusted_origins, or give it the listener token)"
        ),
        (_, Tier::Admin) => format!(
            "refused: {} may use call control but not {}; the settings, secrets, notification tests, deliveries and simulation are only for CallBridge's own pages and programs on this machine that send no Origin",
            caller.describe(),
            tier.name()
        ),
        (_, Tier::Pages) => format!(
            "refused: {} may not load {}; open {} in the browser's address bar on this machine",
            caller.describe(),
            tier.name(),
            uri.path()
        ),
        _ => format!("refused: {} may not use {}", caller.describe(), tier.name()),
    };
    tracing::warn!(path = uri.path(), ?caller, tier = tier.name(), "refused a request outside the caller's tier");
    ApiError::new(StatusCode::FORBIDDEN, "refused", message).into_response()
}

/// Whether `path` is a dial command.
fn is_dial(path: &str, listener: &ListenerConfig) -> bool {
    let make = listener.make.as_str();
    path == API_DIAL || path.strip_prefix('/').and_then(|p| p.strip_prefix(make)).is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
}

/// The answer to a CORS preflight: allowed for trusted origins (and in open mode) on the routes they
/// may use, refused otherwise.
fn preflight(caller: &Caller, tier: Tier, headers: &HeaderMap) -> Response {
    if caller.cors_origin().is_some() && !caller.may(tier) {
        return ApiError::new(
            StatusCode::FORBIDDEN,
            "refused",
            format!("refused: {} may use call control but not {}", caller.describe(), tier.name()),
        )
        .into_response();
    }
    let Some(origin) = caller.cors_origin().and_then(|o| HeaderValue::from_str(o).ok()) else {
        let who = match caller {
            Caller::Untrusted { reason, .. } => reason.clone(),
            _ => "the request did not come from a trusted web page".to_owned(),
        };
        return ApiError::new(
            StatusCode::FORBIDDEN,
            "refused",
            format!("refused: {who}; only trusted origins get cross-origin access ([security] trusted_origins)"),
        )
        .into_response();
    };
    let mut response = StatusCode::NO_CONTENT.into_response();
    let out = response.headers_mut();
    out.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
    out.insert(header::ACCESS_CONTROL_ALLOW_METHODS, HeaderValue::from_static("GET, POST"));
    let requested = headers.get(header::ACCESS_CONTROL_REQUEST_HEADERS).cloned();
    out.insert(header::ACCESS_CONTROL_ALLOW_HEADERS, requested.unwrap_or(HeaderValue::from_static("authorization, content-type")));
    out.insert(header::ACCESS_CONTROL_MAX_AGE, HeaderValue::from_static("600"));
    // Chrome's Private/Local Network Access asks before a public page may reach localhost.
    if headers.get("access-control-request-private-network").is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"true")) {
        out.insert("access-control-allow-private-network", HeaderValue::from_static("true"));
    }
    out.insert(header::VARY, HeaderValue::from_static("Origin, Access-Control-Request-Method, Access-Control-Request-Headers"));
    response
}

fn refused(refusal: Refusal, uri: &Uri) -> Response {
    let (status, code) = match refusal {
        Refusal::BadHost(_) => (StatusCode::FORBIDDEN, "bad_host"),
        Refusal::TokenRequired(_) => (StatusCode::UNAUTHORIZED, "token_required"),
        Refusal::BadToken => (StatusCode::UNAUTHORIZED, "bad_token"),
        Refusal::TokenUnusable(_) => (StatusCode::SERVICE_UNAVAILABLE, "token_unavailable"),
        Refusal::StalePage => (StatusCode::UNAUTHORIZED, "stale_page"),
    };
    tracing::warn!(path = uri.path(), code, "refused a request: {refusal}");
    let mut response = ApiError::new(status, code, format!("refused: {refusal}")).into_response();
    if status == StatusCode::UNAUTHORIZED {
        response.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    }
    response
}

fn too_large() -> Response {
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "too_large",
        format!("the request body is larger than {MAX_BODY_BYTES} bytes, the most CallBridge reads"),
    )
    .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dial_paths_follow_the_make_segment() {
        let mut listener = ListenerConfig::default();
        assert!(is_dial("/make/020123456", &listener));
        assert!(is_dial("/make", &listener));
        assert!(is_dial("/api/v1/dial", &listener));
        assert!(!is_dial("/maker/1", &listener));
        assert!(!is_dial("/answer", &listener));
        assert!(!is_dial("/api/v1/hangup", &listener));
        listener.make = crate::config::Segment::parse("call").expect("segment");
        assert!(is_dial("/call/1", &listener));
        assert!(!is_dial("/make/1", &listener));
    }

    #[test]
    fn routes_fall_into_tiers_and_unlisted_ones_are_administration() {
        let listener = ListenerConfig::default();
        let tier = |path: &str| route_tier(path, &listener);
        for path in ["/make/1", "/api/v1/dial"] {
            assert_eq!(tier(path), Tier::Dial, "{path}");
        }
        for path in ["/answer", "/end", "/health", "/api/v1/status", "/api/v1/calls", "/api/v1/calls/abc", "/api/v1/answer", "/api/v1/hangup", "/api/v1/events"] {
            assert_eq!(tier(path), Tier::CallControl, "{path}");
        }
        for path in [
            "/api/v1/config",
            "/api/v1/secrets",
            "/api/v1/secrets/kazoo",
            "/api/v1/notifications/test",
            "/api/v1/deliveries",
            "/api/v1/deliveries/1/retry",
            "/api/v1/simulate/incoming",
            "/api/v1/providers",
            "/api/v1/settings/schema",
            "/api/v1/listener",
            "/api/v1/security",
            "/api/v1/calls/abc/crm-url",
            "/api/v1/calls/",
            "/api/v1/status/",
            "/api/v1//config",
            "/api/v1/something-new",
            "/nothing",
            "/",
        ] {
            assert_eq!(tier(path), Tier::Admin, "{path}");
        }
        assert_eq!(tier("/webhooks/kazoo"), Tier::Webhook);
        assert_eq!(tier("/ui/"), Tier::Pages);
        assert_eq!(tier("/ui"), Tier::Pages);
        assert_eq!(tier("/uix"), Tier::Admin);
    }

    #[test]
    fn the_token_is_removed_from_the_query() {
        let mut uri: Uri = "/make/0201?token=abc&x=1".parse().expect("uri");
        strip_token(&mut uri);
        assert_eq!(uri.to_string(), "/make/0201?x=1");
        let mut only: Uri = "/webhooks/generic?token=abc".parse().expect("uri");
        strip_token(&mut only);
        assert_eq!(only.to_string(), "/webhooks/generic");
        let mut encoded: Uri = "/a?%74oken=abc&tokens=1".parse().expect("uri");
        strip_token(&mut encoded);
        assert_eq!(encoded.to_string(), "/a?tokens=1");
    }
}
