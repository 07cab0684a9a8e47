//! A fake CRM: an HTTP server on loopback that records every request CallBridge sends it and answers
//! with a status the test chooses. It can be taken down and brought back up on the same port, to test
//! what happens to notifications while the CRM is unreachable.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::Router;
use tokio::sync::oneshot;

/// One request as the CRM received it.
#[derive(Debug, Clone, PartialEq)]
pub struct Received {
    pub method: String,
    /// Path as sent, still percent-encoded.
    pub path: String,
    /// Raw query string, still percent-encoded.
    pub query: String,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Received {
    /// Path and query as sent: `/incoming?callerid=%2B4420…`.
    pub fn target(&self) -> String {
        if self.query.is_empty() {
            self.path.clone()
        } else {
            format!("{}?{}", self.path, self.query)
        }
    }

    /// A query parameter, decoded.
    pub fn param(&self, name: &str) -> Option<String> {
        url::form_urlencoded::parse(self.query.as_bytes()).find(|(k, _)| k == name).map(|(_, v)| v.into_owned())
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("body is not JSON ({e}): {}", self.body))
    }
}

#[derive(Debug, Default)]
struct Shared {
    received: Vec<Received>,
    /// Status to answer with; 200 when unset.
    status: Option<u16>,
}

/// See the module documentation.
#[derive(Debug)]
pub struct FakeCrm {
    addr: SocketAddr,
    shared: Arc<Mutex<Shared>>,
    stop: Option<oneshot::Sender<()>>,
}

impl FakeCrm {
    /// Starts on a free loopback port.
    pub async fn start() -> FakeCrm {
        Self::start_on(SocketAddr::from(([127, 0, 0, 1], 0)), Arc::default()).await
    }

    async fn start_on(addr: SocketAddr, shared: Arc<Mutex<Shared>>) -> FakeCrm {
        let listener = tokio::net::TcpListener::bind(addr).await.unwrap_or_else(|e| panic!("fake CRM cannot bind {addr}: {e}"));
        let addr = listener.local_addr().expect("local addr");
        let app = Router::new().fallback(record).with_state(Arc::clone(&shared));
        let stop = crate::serve_until_stopped(listener, app);
        FakeCrm { addr, shared, stop: Some(stop) }
    }

    /// `http://127.0.0.1:PORT`
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Answer every request from now on with `status`.
    pub fn respond_with(&self, status: u16) {
        self.lock().status = Some(status);
    }

    /// Everything received so far, in arrival order.
    pub fn received(&self) -> Vec<Received> {
        self.lock().received.clone()
    }

    /// Waits until at least `n` requests arrived and returns them all.
    pub async fn wait_for(&self, n: usize, timeout: Duration) -> Vec<Received> {
        crate::eventually(timeout, &format!("{n} requests at the fake CRM"), || {
            let got = self.received();
            (got.len() >= n).then_some(got)
        })
        .await
    }

    /// Takes the CRM down: its port refuses connections until [`Self::up`].
    pub async fn down(mut self) -> DownCrm {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        // Wait until the port is really closed.
        let addr = self.addr;
        crate::eventually(Duration::from_secs(10), "the fake CRM port to close", || {
            std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(50)).is_err().then_some(())
        })
        .await;
        DownCrm { addr: self.addr, shared: Arc::clone(&self.shared) }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Shared> {
        self.shared.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Drop for FakeCrm {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// A fake CRM that is down; [`DownCrm::up`] brings it back on the same port with what it had received.
#[derive(Debug)]
pub struct DownCrm {
    addr: SocketAddr,
    shared: Arc<Mutex<Shared>>,
}

impl DownCrm {
    pub async fn up(self) -> FakeCrm {
        FakeCrm::start_on(self.addr, self.shared).await
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

async fn record(
    State(shared): State<Arc<Mutex<Shared>>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    let mut shared = shared.lock().unwrap_or_else(PoisonError::into_inner);
    shared.received.push(Received {
        method: method.to_string(),
        path: uri.path().to_owned(),
        query: uri.query().unwrap_or_default().to_owned(),
        headers: headers
            .iter()
            .map(|(n, v)| (n.as_str().to_owned(), String::from_utf8_lossy(v.as_bytes()).into_owned()))
            .collect(),
        body: String::from_utf8_lossy(&body).into_owned(),
    });
    StatusCode::from_u16(shared.status.unwrap_or(200)).unwrap_or(StatusCode::OK)
}
