//! Commands act on the call they name: with a conversation going on and a second call ringing,
//! declining the ringing call (what the tray's Decline and the incoming popup do, by call id) ends
//! that call and keeps the conversation; only a command without an id picks "the current call".

use std::sync::Arc;

use callbridge::config::Config;
use callbridge::engine::{Engine, Services};
use callbridge::secrets::MemorySecrets;
use callbridge::{CallState, Direction};

fn engine() -> Engine {
    let config = Config::default();
    let services = Services::with_secrets(&config, Arc::new(MemorySecrets::default()));
    Engine::start_with(config, services)
}

#[tokio::test]
async fn declining_a_waiting_call_by_id_keeps_the_conversation() {
    let engine = engine();
    let first = engine.simulate_incoming("+442079460001", Some("Alice")).await.expect("first call rings");
    let conversation = engine.answer(Some(&first.id)).await.expect("answered");
    assert_eq!(conversation.state, CallState::Active);
    let waiting = engine.simulate_incoming("+442079460002", Some("Bob")).await.expect("second call rings");
    assert_eq!((waiting.direction, waiting.state), (Direction::In, CallState::Ringing));

    let declined = engine.hangup(Some(&waiting.id)).await.expect("declined");
    assert_eq!(declined.id, waiting.id);
    assert_eq!(declined.state, CallState::Ended);
    let still = engine.call(&conversation.id).await.expect("the conversation is known");
    assert_eq!(still.state, CallState::Active, "declining the waiting call must not end the conversation");

    // Without an id, "the current call" is the conversation: which is why the shell always names one.
    let third = engine.simulate_incoming("+442079460003", None).await.expect("third call rings");
    let ended = engine.hangup(None).await.expect("ended");
    assert_eq!(ended.id, conversation.id);
    assert_eq!(engine.call(&third.id).await.map(|c| c.state), Some(CallState::Ringing));
}
