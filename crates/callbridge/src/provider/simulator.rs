//! The built-in simulator: a pretend phone system, the default when nothing is configured.
//!
//! It lets an admin wire up a CRM integration without a phone account: a dial rings the far end after
//! `ring_after_ms`, is answered after `answer_after_ms`, and (if `hangup_after_ms` is set) the far end
//! hangs up after that long; [`Simulator::ring`] rings an incoming call that `/answer` and `/end` then act
//! on. It reports through the same [`EventSink`] as every real provider, so notifications, the tracker
//! and the UI cannot tell the difference.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use tokio::task::JoinHandle;

use super::forms::{self, ProviderForm};
use super::{Capabilities, EventSink, Placed, Provider, ProviderError, ProviderEvent, ProviderEventKind, ProviderSection, Start, Support};
use crate::call::{Call, CallId, CallMap, CallState, Direction, Disposition};
use crate::config::invalid::Invalid;
use crate::config::limits::Limit;

pub const NAME: &str = "simulator";

/// The bounds of `[provider.simulator]`'s delays.
pub const RING_AFTER: Limit = Limit::new("provider.simulator.ring_after_ms", 0, 3_600_000, " (an hour)");
pub const ANSWER_AFTER: Limit = Limit::new("provider.simulator.answer_after_ms", 0, 3_600_000, " (an hour; 0 = never)");
pub const HANGUP_AFTER: Limit = Limit::new("provider.simulator.hangup_after_ms", 0, 3_600_000, " (an hour; 0 = never)");

/// The simulated far end.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SimulatorConfig {
    /// Milliseconds from dialing until the far end rings.
    pub ring_after_ms: u64,
    /// Milliseconds from dialing until the far end answers; 0 = it never answers by itself.
    pub answer_after_ms: u64,
    /// Milliseconds from answering until the far end hangs up; 0 = it never hangs up by itself.
    pub hangup_after_ms: u64,
}

impl Default for SimulatorConfig {
    fn default() -> Self {
        SimulatorConfig { ring_after_ms: 300, answer_after_ms: 2_000, hangup_after_ms: 0 }
    }
}

impl SimulatorConfig {
    /// The longest simulated wait: an hour.
    pub const MAX_DELAY_MS: u64 = RING_AFTER.max;

    /// Each delay is at most [`Self::MAX_DELAY_MS`].
    pub fn validate(&self) -> Result<(), Invalid> {
        RING_AFTER.check(self.ring_after_ms)?;
        ANSWER_AFTER.check(self.answer_after_ms)?;
        HANGUP_AFTER.check(self.hangup_after_ms)
    }
}

/// The simulator in the provider list. It is always running (simulated incoming calls need it);
/// selecting it makes it the provider that dials too.
impl ProviderSection for SimulatorConfig {
    fn validate(&self, _selected: bool) -> Result<(), Invalid> {
        SimulatorConfig::validate(self)
    }

    fn form(&self) -> ProviderForm {
        form()
    }

    fn secret_entries(&self, _selected: bool) -> Vec<String> {
        Vec::new()
    }

    fn start(&self, start: Start<'_>) -> Arc<dyn Provider> {
        Arc::clone(start.simulator)
    }

    fn limits(&self) -> &'static [Limit] {
        &[RING_AFTER, ANSWER_AFTER, HANGUP_AFTER]
    }

    /// Always written: the file shows the timings a simulated call takes.
    fn is_untouched(&self) -> bool {
        false
    }
}

fn form() -> ProviderForm {
    ProviderForm {
        kind: NAME,
        label: "Simulator (no phone account)",
        description: "A pretend phone system built in: dialed calls ring, are answered and end on a timer, \
                      and incoming calls can be simulated. Use it to wire up the CRM before connecting a real one.",
        fields: vec![
            forms::number(RING_AFTER, "Far end rings after (ms)", "Time from dialing until the far end rings."),
            forms::number(ANSWER_AFTER, "Far end answers after (ms)", "Time from dialing until the far end answers; 0 = never."),
            forms::number(HANGUP_AFTER, "Far end hangs up after (ms)", "Time from answering until the far end hangs up; 0 = never."),
        ],
    }
}

#[derive(Debug)]
pub struct Simulator {
    config: Mutex<SimulatorConfig>,
    sink: EventSink,
    /// The far end's pending actions per call, cancelled when the call ends from here.
    timers: Arc<Mutex<CallMap<JoinHandle<()>>>>,
    next_id: AtomicU64,
}

impl Simulator {
    pub fn new(config: SimulatorConfig, sink: EventSink) -> Self {
        Simulator { config: Mutex::new(config), sink, timers: Arc::default(), next_id: AtomicU64::new(1) }
    }

    /// Applies new timings to calls placed from now on.
    pub fn reconfigure(&self, config: SimulatorConfig) {
        *self.config.lock().unwrap_or_else(PoisonError::into_inner) = config;
    }

    fn provider_call_id(&self) -> String {
        format!("sim-{}", self.next_id.fetch_add(1, Ordering::Relaxed))
    }

    /// Rings an incoming call from `number` (already validated). The caller waits until it is answered
    /// or ended from here.
    pub fn ring(&self, number: &str, name: Option<&str>) -> ProviderEvent {
        let mut event = ProviderEvent::new(NAME, ProviderEventKind::Incoming);
        event.direction = Some(Direction::In);
        event.provider_call_id = Some(self.provider_call_id());
        event.remote_number = Some(number.to_owned());
        event.remote_name = name.map(str::to_owned);
        event
    }

    /// Runs the far end of `call` on a timer: ring, answer, hang up, as configured.
    fn schedule_far_end(&self, call: &Call) {
        let cfg = self.config.lock().unwrap_or_else(PoisonError::into_inner).clone();
        let sink = self.sink.clone();
        let timers = Arc::clone(&self.timers);
        let base = ProviderEvent::for_call(call, ProviderEventKind::Ringing);
        let id = call.id.clone();
        let task = tokio::spawn({
            let id = id.clone();
            async move {
                let emit = |kind: ProviderEventKind, disposition: Option<Disposition>| {
                    // The engine outlives its providers; a closed sink only means it is shutting down.
                    let _ = sink.send(ProviderEvent { kind, disposition, ..base.clone() });
                };
                tokio::time::sleep(Duration::from_millis(cfg.ring_after_ms)).await;
                emit(ProviderEventKind::Ringing, None);
                if cfg.answer_after_ms > 0 {
                    let wait = cfg.answer_after_ms.saturating_sub(cfg.ring_after_ms);
                    tokio::time::sleep(Duration::from_millis(wait)).await;
                    emit(ProviderEventKind::Answered, None);
                    if cfg.hangup_after_ms > 0 {
                        tokio::time::sleep(Duration::from_millis(cfg.hangup_after_ms)).await;
                        emit(ProviderEventKind::Ended, Some(Disposition::Answered));
                    }
                }
                timers.lock().unwrap_or_else(PoisonError::into_inner).remove(&id);
            }
        });
        self.timers.lock().unwrap_or_else(PoisonError::into_inner).insert(id, task);
    }

    fn cancel_far_end(&self, id: &CallId) {
        if let Some(task) = self.timers.lock().unwrap_or_else(PoisonError::into_inner).remove(id) {
            task.abort();
        }
    }
}

#[async_trait]
impl Provider for Simulator {
    fn name(&self) -> &'static str {
        NAME
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities { dial: Support::yes(), answer: Support::yes(), hangup: Support::yes() }
    }

    async fn dial(&self, call: &Call) -> Result<Placed, ProviderError> {
        self.schedule_far_end(call);
        Ok(Placed { provider_call_id: Some(self.provider_call_id()), request_id: None })
    }

    async fn answer(&self, call: &Call) -> Result<(), ProviderError> {
        if call.direction != Direction::In || call.state != CallState::Ringing {
            return Err(ProviderError::NoSuchCall {
                provider: NAME.into(),
                message: format!("call {} is not a ringing incoming call", call.id),
            });
        }
        Ok(())
    }

    async fn hangup(&self, call: &Call) -> Result<(), ProviderError> {
        self.cancel_far_end(&call.id);
        Ok(())
    }

    async fn shutdown(&self) {
        let timers: Vec<_> = self.timers.lock().unwrap_or_else(PoisonError::into_inner).drain().collect();
        for (_, task) in timers {
            task.abort();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::sync::mpsc;

    #[tokio::test(start_paused = true)]
    async fn the_far_end_rings_answers_and_hangs_up_on_schedule() {
        let (tx, mut rx) = mpsc::unbounded_channel();
        let sim = Simulator::new(SimulatorConfig { ring_after_ms: 100, answer_after_ms: 1_000, hangup_after_ms: 5_000 }, tx);
        let call = Call::new(Direction::Out, "+442079460000", NAME);
        sim.dial(&call).await.expect("dial");
        let kinds: Vec<_> = [rx.recv().await, rx.recv().await, rx.recv().await]
            .into_iter()
            .map(|e| e.map(|e| (e.kind, e.call_id)))
            .collect();
        let id = Some(call.id.clone());
        assert_eq!(
            kinds,
            [
                Some((ProviderEventKind::Ringing, id.clone())),
                Some((ProviderEventKind::Answered, id.clone())),
                Some((ProviderEventKind::Ended, id)),
            ]
        );
    }

    #[tokio::test(start_paused = true)]
    async fn hanging_up_cancels_the_far_end() {
        let (tx, mut rx) = mpsc::unbounded_channel();
        let sim = Simulator::new(SimulatorConfig { ring_after_ms: 100, answer_after_ms: 1_000, hangup_after_ms: 0 }, tx);
        let call = Call::new(Direction::Out, "+442079460000", NAME);
        sim.dial(&call).await.expect("dial");
        assert_eq!(rx.recv().await.map(|e| e.kind), Some(ProviderEventKind::Ringing));
        sim.hangup(&call).await.expect("hangup");
        tokio::time::sleep(Duration::from_secs(10)).await;
        assert!(rx.try_recv().is_err(), "no answer after the call was hung up");
    }
}
