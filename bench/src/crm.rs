//! The CRM's server, as far as the benchmark needs one: an HTTP server on loopback, in this process, that
//! notes when each notification arrived. The notification URLs carry `$event` and `$callerid` (each
//! benchmark call has a number of its own), so each arrival can be matched afterwards to the moment the
//! event was injected into CallBridge.

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

use axum::extract::{RawQuery, State};
use axum::Router;

/// One notification as it arrived.
#[derive(Debug, Clone)]
pub struct Arrival {
    pub event: String,
    /// The call's number (`$callerid`), decoded.
    pub number: String,
    pub at: Instant,
}

type Arrivals = Arc<Mutex<Vec<Arrival>>>;

/// See the module documentation. Serves until the runtime stops.
#[derive(Debug)]
pub struct TimingCrm {
    pub addr: SocketAddr,
    arrivals: Arrivals,
}

impl TimingCrm {
    /// Starts on a free loopback port. Must be called inside a Tokio runtime.
    pub async fn start() -> anyhow::Result<TimingCrm> {
        let listener = tokio::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await?;
        let addr = listener.local_addr()?;
        let arrivals = Arrivals::default();
        let app = Router::new().fallback(arrive).with_state(Arc::clone(&arrivals));
        tokio::spawn(async move {
            if let Err(e) = axum::serve(listener, app).await {
                eprintln!("callbridge-bench: the timing CRM stopped: {e}");
            }
        });
        Ok(TimingCrm { addr, arrivals })
    }

    /// The notification URL template for CallBridge's config.
    pub fn url_template(&self) -> String {
        format!("http://{}/notify?event=$event&number=$callerid", self.addr)
    }

    pub fn count(&self) -> usize {
        self.arrivals.lock().unwrap_or_else(PoisonError::into_inner).len()
    }

    /// Everything that arrived so far; the record starts empty again.
    pub fn take(&self) -> Vec<Arrival> {
        std::mem::take(&mut *self.arrivals.lock().unwrap_or_else(PoisonError::into_inner))
    }
}

async fn arrive(State(arrivals): State<Arrivals>, RawQuery(query): RawQuery) -> &'static str {
    let at = Instant::now();
    let query = query.unwrap_or_default();
    let mut arrival = Arrival { event: String::new(), number: String::new(), at };
    for pair in query.split('&') {
        match pair.split_once('=') {
            Some(("event", v)) => arrival.event = v.to_owned(),
            // Numbers are digits and a leading `+`, which arrives percent-encoded.
            Some(("number", v)) => arrival.number = v.replace("%2B", "+"),
            _ => {}
        }
    }
    arrivals.lock().unwrap_or_else(PoisonError::into_inner).push(arrival);
    "ok"
}
