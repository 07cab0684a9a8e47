//! The floor: a bare axum handler for `GET /make/{number}` in its own process, run as this binary's
//! hidden `floor` command. It parses the path and answers a small JSON body, as CallBridge does, but
//! does nothing else, on the same runtime shape as the headless binary (Tokio, 2 worker threads). What
//! CallBridge takes beyond it is CallBridge's own cost.

use std::net::{Ipv4Addr, SocketAddr};

use axum::extract::Path;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{json, Value};

async fn make(Path(number): Path<String>) -> Json<Value> {
    Json(json!({ "ok": true, "action": "dial", "number": number }))
}

/// Serves on `127.0.0.1:port` until killed.
pub fn serve(port: u16) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    runtime.block_on(async {
        let app = Router::new()
            .route("/make/{number}", get(make))
            .route("/health", get(|| async { Json(json!({ "ok": true })) }));
        let listener = tokio::net::TcpListener::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, port))).await?;
        axum::serve(listener, app).await?;
        Ok(())
    })
}
