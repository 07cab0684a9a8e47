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

/// One way a CRM endpoint can misbehave, for [`FaultyEndpoint`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Nothing listens on the port: connections are refused.
    Refused,
    /// Accepts the connection, reads the request, and never answers.
    Hang,
    /// Answers 200, but only after this long.
    AnswerAfter(Duration),
    /// Answers every request with this status.
    Status(u16),
    /// Answers every request with `301 Moved Permanently` to itself.
    RedirectLoop,
    /// Answers with bytes that are not HTTP (an SSH server's greeting) and closes.
    Garbage,
    /// A plain-HTTP server, addressed with an `https://` URL.
    TlsToPlainHttp,
    /// A host name that does not resolve (the `.invalid` top-level domain never does, RFC 2606).
    UnknownHost,
    /// Answers 200 with a body this many bytes long, streamed.
    HugeBody(usize),
}

/// A CRM endpoint with one [`Fault`], on loopback. It counts the connections (or requests) it got and,
/// for [`Fault::HugeBody`], how much of the body it handed to the connection before the client let go.
#[derive(Debug)]
pub struct FaultyEndpoint {
    url: String,
    hits: Arc<std::sync::atomic::AtomicUsize>,
    body_sent: Arc<std::sync::atomic::AtomicUsize>,
    _stop: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

/// What an SSH server says first: not HTTP.
const NOT_HTTP: &[u8] = b"SSH-2.0-OpenSSH_9.6p1 Ubuntu-3ubuntu13\r\n";

impl FaultyEndpoint {
    pub async fn start(fault: Fault) -> FaultyEndpoint {
        use std::sync::atomic::AtomicUsize;
        let hits = Arc::new(AtomicUsize::new(0));
        let body_sent = Arc::new(AtomicUsize::new(0));
        let loopback = SocketAddr::from(([127, 0, 0, 1], 0));
        let bind = || async move { tokio::net::TcpListener::bind(loopback).await.expect("bind a loopback port") };
        let mut endpoint = FaultyEndpoint { url: String::new(), hits: Arc::clone(&hits), body_sent: Arc::clone(&body_sent), _stop: None, task: None };
        match fault {
            Fault::Refused => {
                let listener = bind().await;
                endpoint.url = format!("http://{}", listener.local_addr().expect("addr"));
                drop(listener);
            }
            Fault::UnknownHost => endpoint.url = "http://crm.callbridge-test.invalid".into(),
            Fault::Hang | Fault::AnswerAfter(_) | Fault::Garbage => {
                let listener = bind().await;
                endpoint.url = format!("http://{}", listener.local_addr().expect("addr"));
                endpoint.task = Some(tokio::spawn(raw_server(listener, fault, hits)));
            }
            Fault::Status(_) | Fault::RedirectLoop | Fault::TlsToPlainHttp | Fault::HugeBody(_) => {
                let listener = bind().await;
                let addr = listener.local_addr().expect("addr");
                let scheme = if fault == Fault::TlsToPlainHttp { "https" } else { "http" };
                endpoint.url = format!("{scheme}://{addr}");
                let app = Router::new().fallback(move |uri: Uri| answer(fault, uri, Arc::clone(&hits), Arc::clone(&body_sent)));
                endpoint._stop = Some(crate::serve_until_stopped(listener, app));
            }
        }
        endpoint
    }

    /// `http://127.0.0.1:PORT` (`https://` for [`Fault::TlsToPlainHttp`], a `.invalid` host for
    /// [`Fault::UnknownHost`]), without a trailing slash.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Connections accepted (raw faults) or requests answered (HTTP faults).
    pub fn hits(&self) -> usize {
        self.hits.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// For [`Fault::HugeBody`]: body bytes handed to the connection so far.
    pub fn body_sent(&self) -> usize {
        self.body_sent.load(std::sync::atomic::Ordering::SeqCst)
    }
}

impl Drop for FaultyEndpoint {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

/// Accepts connections and misbehaves on each in the raw faults' way.
async fn raw_server(listener: tokio::net::TcpListener, fault: Fault, hits: Arc<std::sync::atomic::AtomicUsize>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut connections = tokio::task::JoinSet::new();
    while let Ok((mut stream, _)) = listener.accept().await {
        hits.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        connections.spawn(async move {
            let mut buf = vec![0u8; 16 * 1024];
            let _ = stream.read(&mut buf).await;
            match fault {
                Fault::AnswerAfter(delay) => {
                    tokio::time::sleep(delay).await;
                    let _ = stream.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n").await;
                }
                Fault::Garbage => {
                    let _ = stream.write_all(NOT_HTTP).await;
                    let _ = stream.shutdown().await;
                }
                _ => {}
            }
            // Hold the connection open (the hang) until the client closes it.
            while matches!(stream.read(&mut buf).await, Ok(n) if n > 0) {}
        });
    }
}

/// The HTTP faults' answers.
async fn answer(
    fault: Fault,
    uri: Uri,
    hits: Arc<std::sync::atomic::AtomicUsize>,
    body_sent: Arc<std::sync::atomic::AtomicUsize>,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    hits.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    match fault {
        Fault::Status(status) => StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR).into_response(),
        Fault::RedirectLoop => (StatusCode::MOVED_PERMANENTLY, [(axum::http::header::LOCATION, uri.to_string())]).into_response(),
        Fault::HugeBody(size) => {
            const CHUNK: usize = 64 * 1024;
            let chunk = Bytes::from(vec![b'x'; CHUNK]);
            let stream = futures_util::stream::unfold(0usize, move |sent| {
                let chunk = chunk.clone();
                let body_sent = Arc::clone(&body_sent);
                async move {
                    if sent >= size {
                        return None;
                    }
                    let part = chunk.slice(..CHUNK.min(size - sent));
                    body_sent.fetch_add(part.len(), std::sync::atomic::Ordering::SeqCst);
                    Some((Ok::<_, std::io::Error>(part), sent + CHUNK))
                }
            });
            (StatusCode::OK, axum::body::Body::from_stream(stream)).into_response()
        }
        _ => StatusCode::OK.into_response(),
    }
}
