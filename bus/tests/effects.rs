//! The long-running effects: a `Store` runs `deliveries` (the bus) and `subscription_deliveries` (the local
//! store) as actions until it cancels them, and what the reducer acknowledges is settled.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests fail loudly on unexpected errors")]

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use composable_rust_bus::{ConsumerConfig, Delivery, EventBus, InMemoryBus, deliveries, subscription_deliveries};
use composable_rust_core::{
    CodecId, Effect, EffectId, EventId, EventStore, ExpectedVersion, GlobalPosition, LogFilter, Metadata, NewEvent,
    StreamId, reducer_fn,
};
use composable_rust_runtime::Store;
use composable_rust_testing::InMemoryEventStore;

#[derive(Debug, Clone, PartialEq)]
enum Action {
    Start,
    Stop,
    Delivered(Delivery),
}

const LISTEN: &str = "listen";

/// A reducer that records each delivered event id and acknowledges it; `start` makes the source effect.
fn store(
    start: impl Fn() -> Effect<Action> + Send + Sync + 'static,
) -> Store<impl composable_rust_core::Reducer<State = Vec<EventId>, Action = Action, Environment = ()>> {
    let reducer = reducer_fn(move |seen: &mut Vec<EventId>, action: Action, _: &()| match action {
        Action::Start => start().cancellable(EffectId::new(LISTEN)),
        Action::Stop => Effect::cancel(EffectId::new(LISTEN)),
        Action::Delivered(delivery) => {
            seen.push(delivery.event.id);
            Effect::run(move |_| async move { delivery.ack.ack().await.unwrap() })
        }
    });
    Store::new(reducer, Vec::new(), ())
}

async fn until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !done() {
        assert!(Instant::now() < deadline, "{what} within 10 s");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn the_deliveries_effect_feeds_the_store_until_cancelled_and_acknowledged_events_are_settled() {
    let bus = InMemoryBus::new();
    let first = common::events("order", 2, 4);
    bus.publish(&first).await.unwrap();
    let source = bus.clone();
    let store = store(move || deliveries(source.clone(), ConsumerConfig::group("g"), Action::Delivered));
    store.send(Action::Start);
    until("four deliveries", || store.state(Vec::len) == 4).await;
    until("all acknowledged", || bus.in_flight("g") == 0).await;
    assert_eq!(store.state(Clone::clone), first.iter().map(|e| e.id).collect::<Vec<_>>());

    store.send(Action::Stop).finished().await;
    bus.publish(&[common::event("order-9", 1, 99)]).await.unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(store.state(Vec::len), 4, "a cancelled effect delivers nothing more");
}

#[tokio::test]
async fn the_subscription_effect_moves_the_checkpoint_only_past_acknowledged_events() {
    let events: Arc<dyn EventStore> = Arc::new(InMemoryEventStore::new());
    for n in 0..3 {
        let event = NewEvent::new("Happened.v1", CodecId::Json, format!("{n}").into_bytes(), Metadata::default());
        events.append(&StreamId::new("order-1").unwrap(), ExpectedVersion::Any, vec![event]).await.unwrap();
    }
    let source = Arc::clone(&events);
    let store =
        store(move || subscription_deliveries(Arc::clone(&source), "reactor", LogFilter::all(), Action::Delivered));
    store.send(Action::Start);
    until("three deliveries", || store.state(Vec::len) == 3).await;
    let checkpoint = async || events.load_checkpoint("reactor").await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while checkpoint().await != Some(GlobalPosition::new(3)) {
        assert!(Instant::now() < deadline, "the checkpoint reaches the last acknowledged event");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    store.send(Action::Stop).finished().await;
}
