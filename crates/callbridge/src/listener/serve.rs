//! The listener's connection loop: hyper with read timeouts, the peer address handed to the router.
//!
//! `axum::serve` sets no timeouts, so a client that opens a connection and sends its headers one byte
//! a minute would hold it for ever. This loop serves each connection with hyper's HTTP/1 header read
//! timeout ([`HEADER_READ_TIMEOUT`]) and a body timeout between pieces ([`BODY_READ_TIMEOUT`]), and puts the peer's address into every request as
//! [`axum::extract::ConnectInfo`], which the [security guard](super::guard) uses to tell this machine from
//! others. Stopping lets requests in flight finish (for at most [`DRAIN_TIMEOUT`]).

use std::convert::Infallible;
use std::net::SocketAddr;
use std::time::Duration;

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::Router;
use hyper::body::Incoming;
use hyper::server::conn::http1::Builder;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tower_http::timeout::TimeoutBody;

/// How long a client may take to send a request's headers.
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);

/// How long a request's body may pause between two pieces.
pub const BODY_READ_TIMEOUT: Duration = Duration::from_secs(10);

/// How long stopping waits for requests in flight.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);

/// Serves `app` on `listener` until `stop` fires (or its sender is dropped).
pub async fn serve(listener: TcpListener, app: Router, mut stop: oneshot::Receiver<()>) {
    // HTTP/1.1 only: CRMs and browsers speak it to http://localhost (browsers use HTTP/2 only over TLS),
    // and serving HTTP/2 too brought the `h2` crate into the binary (docs/performance.md).
    let mut builder = Builder::new();
    builder.timer(TokioTimer::new()).header_read_timeout(HEADER_READ_TIMEOUT);
    let graceful = GracefulShutdown::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let (stream, peer) = match accepted {
                    Ok(accepted) => accepted,
                    Err(e) => {
                        // Out of file descriptors and the like: wait a little rather than spin.
                        tracing::warn!(error = %e, "cannot accept a connection");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    }
                };
                let app = app.clone();
                let service = hyper::service::service_fn(move |request: hyper::Request<Incoming>| {
                    // A body that stops arriving for BODY_READ_TIMEOUT fails the request instead of holding it.
                    let mut request = request.map(|body| Body::new(TimeoutBody::new(BODY_READ_TIMEOUT, body)));
                    request.extensions_mut().insert(ConnectInfo(peer));
                    let app = app.clone();
                    async move { Ok::<_, Infallible>(tower::ServiceExt::oneshot(app, request).await.unwrap_or_else(|e| match e {})) }
                });
                let connection = graceful.watch(builder.serve_connection(TokioIo::new(stream), service));
                tokio::spawn(async move {
                    if let Err(e) = connection.await {
                        tracing::debug!(%peer, error = %e, "connection ended with an error");
                    }
                });
            }
            _ = &mut stop => break,
        }
    }
    drop(listener);
    if tokio::time::timeout(DRAIN_TIMEOUT, graceful.shutdown()).await.is_err() {
        tracing::warn!("requests still in flight after {DRAIN_TIMEOUT:?}; closing them");
    }
}

/// Whether `peer` is this machine.
pub fn is_local(peer: Option<SocketAddr>) -> bool {
    peer.is_some_and(|p| match p.ip() {
        std::net::IpAddr::V4(ip) => ip.is_loopback(),
        std::net::IpAddr::V6(ip) => ip.is_loopback() || ip.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback()),
    })
}

/// A listener serving in the background.
#[derive(Debug)]
pub struct RunningListener {
    addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<()>,
}

impl RunningListener {
    /// Serves `app` on an already bound socket (so a caller can find out that a port is taken before
    /// changing anything else).
    pub fn serve(listener: tokio::net::TcpListener, app: Router) -> std::io::Result<RunningListener> {
        let addr = listener.local_addr()?;
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(serve(listener, app, stopped));
        tracing::info!(%addr, "listening");
        Ok(RunningListener { addr, stop: Some(stop), task })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops accepting, lets requests in flight finish, and waits until the port is free. A request
    /// that does not finish within [`Self::DRAIN`] (a stream nobody closed) is cut off.
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if tokio::time::timeout(Self::DRAIN, &mut self.task).await.is_err() {
            tracing::warn!(addr = %self.addr, "requests still open after {:?}; closing the listener anyway", Self::DRAIN);
            self.task.abort();
            let _ = (&mut self.task).await;
        }
    }

    /// How long [`Self::stop`] waits for requests in flight.
    pub const DRAIN: std::time::Duration = std::time::Duration::from_secs(10);
}
