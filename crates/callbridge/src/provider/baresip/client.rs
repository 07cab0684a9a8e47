//! A client of baresip's `ctrl_tcp` socket: one connection on loopback, kept up for as long as the
//! provider lives.
//!
//! `ctrl_tcp` serves one client at a time and sends events only to it, so CallBridge holds a single
//! connection and reconnects with backoff whenever it drops (baresip restarted, or another client
//! took the socket over). Commands carry a fresh `token` which baresip echoes in its response; that is
//! how a response finds the command waiting for it, even with events interleaved. What the connection
//! sees besides responses — connects, disconnects, events — goes out as [`Notice`]s, in order.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use crate::backoff::Backoff;

use super::message::{self, Command, Event, Message, Response};
use super::netstring::{self, Decoder};

/// Largest message accepted from baresip. Its own limit is 999999999 bytes; real messages (events,
/// `listcalls` output) are a few hundred.
const MAX_MESSAGE: usize = 1 << 20;

/// Between two connection attempts: 100 ms at first, doubling up to 5 s.
const RECONNECT: Backoff = Backoff::new(Duration::from_millis(100), Duration::from_secs(5));

/// What the connection reports besides responses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Notice {
    Connected,
    Disconnected { reason: String },
    Event(Event),
}

/// Why a command got no response.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClientError {
    #[error("not connected to baresip: {0}")]
    NotConnected(String),
    #[error("the connection to baresip was lost before it answered")]
    Lost,
    #[error("baresip did not answer within {} s", .0.as_secs())]
    Timeout(Duration),
}

#[derive(Debug, Default)]
struct State {
    /// Frames to write on the current connection; `None` while disconnected.
    writer: Option<mpsc::UnboundedSender<Vec<u8>>>,
    /// Commands waiting for their response, oldest first.
    waiting: VecDeque<(String, oneshot::Sender<Response>)>,
    /// Why the last connection attempt failed or the connection ended.
    problem: Option<String>,
}

#[derive(Debug)]
struct Shared {
    addr: SocketAddr,
    state: Mutex<State>,
    next_token: AtomicU64,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Hands a response to the command it answers: by token, else (a baresip that echoes none)
    /// to the oldest command waiting.
    fn deliver(&self, response: Response) {
        let mut state = self.lock();
        let at = match &response.token {
            Some(token) => state.waiting.iter().position(|(t, _)| t == token),
            None => (!state.waiting.is_empty()).then_some(0),
        };
        match at.and_then(|i| state.waiting.remove(i)) {
            Some((_, reply)) => {
                let _ = reply.send(response);
            }
            None => tracing::debug!(token = ?response.token, "baresip answered a command nobody waits for"),
        }
    }

    fn connected(&self, writer: mpsc::UnboundedSender<Vec<u8>>) {
        let mut state = self.lock();
        state.writer = Some(writer);
        state.problem = None;
    }

    /// The connection ended: commands still waiting fail (their senders drop).
    fn disconnected(&self, reason: &str) {
        let mut state = self.lock();
        state.writer = None;
        state.waiting.clear();
        state.problem = Some(reason.to_owned());
    }
}

/// See the module documentation. Dropping it stops the connection.
#[derive(Debug)]
pub struct Client {
    shared: Arc<Shared>,
    task: JoinHandle<()>,
}

impl Client {
    /// Starts connecting to `addr` in the background; `notices` hears what happens.
    pub fn start(addr: SocketAddr, notices: mpsc::UnboundedSender<Notice>) -> Client {
        let shared = Arc::new(Shared {
            addr,
            state: Mutex::new(State { problem: Some(format!("connecting to baresip at {addr}")), ..State::default() }),
            next_token: AtomicU64::new(1),
        });
        let task = tokio::spawn(run(Arc::clone(&shared), notices));
        Client { shared, task }
    }

    pub fn addr(&self) -> SocketAddr {
        self.shared.addr
    }

    pub fn is_connected(&self) -> bool {
        self.shared.lock().writer.is_some()
    }

    /// Why the client is not connected, when it is not.
    pub fn problem(&self) -> Option<String> {
        self.shared.lock().problem.clone()
    }

    /// Runs `command params` and waits up to `timeout` for baresip's response.
    pub async fn command(&self, command: &str, params: Option<&str>, timeout: Duration) -> Result<Response, ClientError> {
        let token = format!("cb-{}", self.shared.next_token.fetch_add(1, Ordering::Relaxed));
        let frame = netstring::encode(
            // A struct of strings always serializes.
            &serde_json::to_vec(&Command { command, params, token: &token }).unwrap_or_default(),
        );
        let (reply, response) = oneshot::channel();
        {
            let mut state = self.shared.lock();
            let Some(writer) = state.writer.clone() else {
                let why = state.problem.clone().unwrap_or_else(|| "not connected".into());
                return Err(ClientError::NotConnected(why));
            };
            state.waiting.push_back((token.clone(), reply));
            if writer.send(frame).is_err() {
                state.waiting.retain(|(t, _)| *t != token);
                return Err(ClientError::Lost);
            }
        }
        tracing::debug!(command, token, "baresip command sent");
        match tokio::time::timeout(timeout, response).await {
            Ok(Ok(response)) => Ok(response),
            Ok(Err(_)) => Err(ClientError::Lost),
            Err(_) => {
                self.shared.lock().waiting.retain(|(t, _)| *t != token);
                Err(ClientError::Timeout(timeout))
            }
        }
    }

    /// Stops the connection for good.
    pub fn stop(&self) {
        self.task.abort();
        self.shared.disconnected("stopped");
    }
}

impl Drop for Client {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Connects, serves the connection until it ends, waits, and again — forever.
async fn run(shared: Arc<Shared>, notices: mpsc::UnboundedSender<Notice>) {
    let mut retries = RECONNECT.retries();
    let mut was_connected = false;
    loop {
        match TcpStream::connect(shared.addr).await {
            Ok(stream) => {
                retries.reset();
                tracing::info!(addr = %shared.addr, "connected to baresip");
                let reason = serve(stream, &shared, &notices).await;
                tracing::warn!(addr = %shared.addr, %reason, "lost the connection to baresip; reconnecting");
                shared.disconnected(&reason);
                was_connected = true;
                let _ = notices.send(Notice::Disconnected { reason });
            }
            Err(e) => {
                let why = format!("cannot connect to baresip's ctrl_tcp at {}: {e}", shared.addr);
                if was_connected {
                    tracing::warn!("{why}");
                    was_connected = false;
                } else {
                    tracing::debug!("{why}");
                }
                shared.lock().problem = Some(why);
            }
        }
        tokio::time::sleep(retries.next_delay()).await;
    }
}

/// Serves one connection; returns why it ended.
async fn serve(stream: TcpStream, shared: &Shared, notices: &mpsc::UnboundedSender<Notice>) -> String {
    let (mut reader, mut writer) = stream.into_split();
    let (frames, mut outgoing) = mpsc::unbounded_channel::<Vec<u8>>();
    shared.connected(frames);
    let _ = notices.send(Notice::Connected);
    let mut decoder = Decoder::new(MAX_MESSAGE);
    let mut buf = vec![0u8; 8192];
    loop {
        tokio::select! {
            read = reader.read(&mut buf) => {
                let n = match read {
                    Ok(0) => return "baresip closed the connection".into(),
                    Ok(n) => n,
                    Err(e) => return format!("reading from baresip failed: {e}"),
                };
                decoder.push(&buf[..n]);
                loop {
                    match decoder.next_frame() {
                        Ok(Some(payload)) => dispatch(&payload, shared, notices),
                        Ok(None) => break,
                        Err(e) => return format!("baresip sent a broken frame ({e})"),
                    }
                }
            }
            frame = outgoing.recv() => {
                let Some(frame) = frame else { return "the client stopped".into() };
                if let Err(e) = writer.write_all(&frame).await {
                    return format!("writing to baresip failed: {e}");
                }
            }
        }
    }
}

fn dispatch(payload: &[u8], shared: &Shared, notices: &mpsc::UnboundedSender<Notice>) {
    match message::parse(payload) {
        Ok(Message::Response(response)) => shared.deliver(response),
        Ok(Message::Event(event)) => {
            tracing::debug!(kind = %event.kind, id = ?event.id, direction = ?event.direction, "baresip event");
            let _ = notices.send(Notice::Event(event));
        }
        Ok(Message::Other) => {}
        // One bad message does not break the framing; skip it.
        Err(e) => tracing::warn!(error = %e, "ignoring a message from baresip"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::net::TcpListener;

    /// A scripted stand-in for baresip's ctrl_tcp, to test the client's framing and matching.
    async fn fake_ctrl() -> (TcpListener, SocketAddr) {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        (listener, addr)
    }

    async fn read_command(stream: &mut TcpStream, decoder: &mut Decoder) -> serde_json::Value {
        let mut buf = [0u8; 1024];
        loop {
            if let Some(frame) = decoder.next_frame().expect("client sends netstrings") {
                return serde_json::from_slice(&frame).expect("client sends JSON");
            }
            let n = stream.read(&mut buf).await.expect("read");
            assert!(n > 0, "client closed");
            decoder.push(&buf[..n]);
        }
    }

    #[tokio::test]
    async fn matches_responses_by_token_with_events_in_between() {
        let (listener, addr) = fake_ctrl().await;
        let (tx, mut notices) = mpsc::unbounded_channel();
        let client = Arc::new(Client::start(addr, tx));
        let (mut conn, _) = listener.accept().await.expect("accept");
        assert_eq!(notices.recv().await, Some(Notice::Connected));

        let first = tokio::spawn({
            let c = Arc::clone(&client);
            async move { c.command("dial", Some("sip:1@x"), Duration::from_secs(10)).await }
        });
        let mut decoder = Decoder::new(4096);
        let cmd1 = read_command(&mut conn, &mut decoder).await;
        assert_eq!((cmd1["command"].as_str(), cmd1["params"].as_str()), (Some("dial"), Some("sip:1@x")));
        let second = tokio::spawn({
            let c = Arc::clone(&client);
            async move { c.command("listcalls", None, Duration::from_secs(10)).await }
        });
        let cmd2 = read_command(&mut conn, &mut decoder).await;
        assert!(cmd2.get("params").is_none());
        // Answer the second command first, with an event before and a split frame.
        let event = netstring::encode(br#"{"event":true,"type":"CALL_RINGING","direction":"outgoing","id":"abc"}"#);
        let r2 = netstring::encode(format!(r#"{{"response":true,"ok":true,"data":"calls","token":"{}"}}"#, cmd2["token"].as_str().expect("token")).as_bytes());
        let r1 = netstring::encode(format!(r#"{{"response":true,"ok":false,"data":"nope","token":"{}"}}"#, cmd1["token"].as_str().expect("token")).as_bytes());
        let wire = [event, r2, r1].concat();
        let (a, b) = wire.split_at(wire.len() / 2);
        conn.write_all(a).await.expect("write");
        conn.write_all(b).await.expect("write");

        let r2 = second.await.expect("join").expect("response");
        assert_eq!((r2.ok, r2.data.as_str()), (true, "calls"));
        let r1 = first.await.expect("join").expect("response");
        assert_eq!((r1.ok, r1.data.as_str()), (false, "nope"));
        match notices.recv().await {
            Some(Notice::Event(e)) => assert_eq!((e.kind.as_str(), e.id.as_deref()), ("CALL_RINGING", Some("abc"))),
            other => panic!("expected the event, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn reconnects_after_baresip_restarts_and_fails_waiting_commands() {
        let (listener, addr) = fake_ctrl().await;
        let (tx, mut notices) = mpsc::unbounded_channel();
        let client = Arc::new(Client::start(addr, tx));
        let (mut conn, _) = listener.accept().await.expect("accept");
        assert_eq!(notices.recv().await, Some(Notice::Connected));
        assert!(client.is_connected());

        let waiting = tokio::spawn({
            let c = Arc::clone(&client);
            async move { c.command("hangup", None, Duration::from_secs(10)).await }
        });
        let mut decoder = Decoder::new(4096);
        let _ = read_command(&mut conn, &mut decoder).await;
        drop(conn); // baresip goes away without answering
        assert!(matches!(notices.recv().await, Some(Notice::Disconnected { .. })));
        assert_eq!(waiting.await.expect("join"), Err(ClientError::Lost));
        assert!(matches!(
            client.command("accept", None, Duration::from_secs(1)).await,
            Err(ClientError::NotConnected(_)) | Err(ClientError::Lost)
        ));

        // "baresip" is back on the same port: the client finds it again by itself.
        let (mut conn, _) = listener.accept().await.expect("accept again");
        assert_eq!(notices.recv().await, Some(Notice::Connected));
        let answered = tokio::spawn({
            let c = Arc::clone(&client);
            async move { c.command("accept", None, Duration::from_secs(10)).await }
        });
        let mut decoder = Decoder::new(4096);
        let cmd = read_command(&mut conn, &mut decoder).await;
        // A baresip that echoes no token: the oldest waiting command gets the answer.
        let _ = cmd;
        conn.write_all(&netstring::encode(br#"{"response":true,"ok":true,"data":"Answering"}"#)).await.expect("write");
        assert_eq!(answered.await.expect("join").map(|r| r.data), Ok("Answering".into()));
    }

    #[tokio::test]
    async fn garbage_drops_the_connection() {
        let (listener, addr) = fake_ctrl().await;
        let (tx, mut notices) = mpsc::unbounded_channel();
        let _client = Client::start(addr, tx);
        let (mut conn, _) = listener.accept().await.expect("accept");
        assert_eq!(notices.recv().await, Some(Notice::Connected));
        conn.write_all(b"HTTP/1.1 200 OK\r\n").await.expect("write");
        match notices.recv().await {
            Some(Notice::Disconnected { reason }) => assert!(reason.contains("broken frame"), "{reason}"),
            other => panic!("expected a disconnect, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn commands_fail_fast_while_disconnected() {
        let (listener, addr) = fake_ctrl().await;
        drop(listener);
        let (tx, _notices) = mpsc::unbounded_channel();
        let client = Client::start(addr, tx);
        match client.command("dial", Some("x"), Duration::from_secs(1)).await {
            Err(ClientError::NotConnected(why)) => assert!(why.contains(&addr.to_string()), "{why}"),
            other => panic!("expected NotConnected, got {other:?}"),
        }
        assert!(client.problem().is_some());
    }

    #[tokio::test]
    async fn a_command_without_an_answer_times_out() {
        let (listener, addr) = fake_ctrl().await;
        let (tx, mut notices) = mpsc::unbounded_channel();
        let client = Client::start(addr, tx);
        let (_conn, _) = listener.accept().await.expect("accept");
        assert_eq!(notices.recv().await, Some(Notice::Connected));
        let got = client.command("listcalls", None, Duration::from_millis(50)).await;
        assert_eq!(got, Err(ClientError::Timeout(Duration::from_millis(50))));
    }
}
