//! Black-box test kit for CallBridge.
//!
//! The programs under test are run as users run them — the built `callbridge` binary with a config
//! file — and talked to over loopback TCP. What they talk to is here too: a fake CRM that records every
//! notification ([`crm::FakeCrm`]), and fakes of the external clouds that follow
//! the providers' public API documentation to the letter (https://doc.telecmi.com/, https://docs.2600hz.com/).

pub mod bridge;
pub mod cli;
pub mod crm;
pub mod kazoo;
pub mod sipp;
pub mod raw;
pub mod telecmi;

use std::time::Duration;

/// Polls `check` until it returns `Some`, or panics with `what` after `timeout`. For waiting on things
/// that happen asynchronously; never used to assert how fast they happen.
pub async fn eventually<T>(timeout: Duration, what: &str, mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if let Some(v) = check() {
            return v;
        }
        if tokio::time::Instant::now() >= deadline {
            panic!("timed out after {timeout:?} waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Like [`eventually`], for checks that are themselves asynchronous (a WebDriver or HTTP query).
pub async fn eventually_async<T, F, Fut>(timeout: Duration, what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if let Some(v) = check().await {
            return v;
        }
        if tokio::time::Instant::now() >= deadline {
            panic!("timed out after {timeout:?} waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Serves `app` on `listener` in the background until the returned sender is used or dropped: how
/// every fake here (the CRM, TeleCMI) runs its HTTP server.
pub fn serve_until_stopped(listener: tokio::net::TcpListener, app: axum::Router) -> tokio::sync::oneshot::Sender<()> {
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(async move {
        let _ = axum::serve(listener, app)
            .with_graceful_shutdown(async {
                let _ = stopped.await;
            })
            .await;
    });
    stop
}
