//! CallBridge: the engine behind the tray app and the headless `callbridge` binary.
//!
//! A CRM tells CallBridge to place, answer or end a call over a local HTTP listener; CallBridge has a
//! phone system carry it out; and when calls ring, are answered or end, it calls the URLs the user
//! configured. The pieces, in the order a call flows through them:
//!
//! * [`listener`] — the axum HTTP listener: URL commands (as Enreach Contact's desktop client takes them), the JSON API, webhooks.
//! * [`engine`] — the one object every front end drives: commands in, events out.
//! * [`number`] — what people paste, validated and normalized to E.164.
//! * [`provider`] — the phone systems behind a common trait; [`provider::simulator`] is the default.
//! * [`tracker`] — provider events matched to calls; each call event exactly once, in order.
//! * [`call`] — the vocabulary: `Call`, `CallEvent`, directions, states, dispositions.
//! * [`lookup`] — the CRM asked who is calling: name, company and record for the popup and notifications.
//! * [`notify`] — call events rendered into the CRM's URLs and sent through an outbox.
//! * [`config`] — the TOML file, validated with line numbers, written atomically.
//! * [`settings`] — the running configuration changed safely: validate, bind, save, apply, move the listener.
//! * [`security`] — the listener's policy: hosts, origins, the token, number rules, the dial rate limit.
//! * [`store`] — the SQLite file: call history, the notification outbox and its delivery log.
//! * [`backoff`] — exponential backoff with a cap (and jitter), for every retry and reconnect loop.
//! * [`panics`] — a panic costs one request (answered 500) or one task, never the process; all are logged.
//!
//! This crate has no GUI dependencies: the desktop shell is a thin layer over [`engine::Engine`].

pub mod backoff;
pub mod call;
pub mod config;
pub mod delivery;
pub mod engine;
pub mod listener;
pub mod lookup;
pub mod notify;
pub mod number;
pub mod panics;
pub mod provider;
pub mod secrets;
pub mod settings;
pub mod security;
pub mod store;
pub mod tracker;

pub use call::{Call, CallEvent, CallEventKind, CallId, CallState, Direction, Disposition};
pub use config::Config;
pub use engine::{CommandError, Engine};
