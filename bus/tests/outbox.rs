//! The outbox: committed events reach the bus at least once, in position order, and a restarted outbox
//! resumes from its checkpoint; a bus outage delays the events and loses none.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests fail loudly on unexpected errors")]

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use composable_rust_bus::{BusError, ConsumerConfig, Deliveries, EventBus, InMemoryBus, Outbox, PublishReport};
use composable_rust_core::{
    CodecId, EventStore, ExpectedVersion, GlobalPosition, Metadata, NewEvent, RecordedEvent, StreamId, async_trait,
};
use composable_rust_postgres::PostgresEventStore;
use composable_rust_runtime::SubscriptionConfig;
use composable_rust_testing::InMemoryEventStore;
use composable_rust_testing::postgres_fixture::PostgresTestDatabase;
use futures::StreamExt;

fn new_event(n: usize) -> NewEvent {
    NewEvent::new("Happened.v1", CodecId::Json, format!("{{\"n\":{n}}}").into_bytes(), Metadata::default())
}

/// Appends `count` events, one per commit, to `streams` streams of category `category`.
async fn commit(store: &Arc<dyn EventStore>, category: &str, streams: usize, count: usize) {
    for n in 0..count {
        let stream = StreamId::new(format!("{category}-{}", n % streams)).unwrap();
        store.append(&stream, ExpectedVersion::Any, vec![new_event(n)]).await.unwrap();
    }
}

fn positions(events: &[RecordedEvent]) -> Vec<u64> {
    events.iter().map(|e| e.position.get()).collect()
}

#[tokio::test]
async fn the_outbox_publishes_in_position_order_and_a_restarted_one_resumes_from_its_checkpoint() {
    let store: Arc<dyn EventStore> = Arc::new(InMemoryEventStore::new());
    let bus = InMemoryBus::new();
    commit(&store, "order", 3, 10).await;
    let mut first = Outbox::subscription(Arc::clone(&store), bus.clone(), "outbox");
    first.run_to_end().await.unwrap();
    assert_eq!(positions(&bus.events()), (1..=10).collect::<Vec<_>>());
    assert_eq!(store.load_checkpoint("outbox").await.unwrap(), Some(GlobalPosition::new(10)));

    commit(&store, "order", 3, 5).await;
    let mut restarted = Outbox::subscription(Arc::clone(&store), bus.clone(), "outbox");
    restarted.run_to_end().await.unwrap();
    assert_eq!(restarted.handler().published(), 5, "only what came after the checkpoint");
    assert_eq!(positions(&bus.events()), (1..=15).collect::<Vec<_>>());
}

#[tokio::test]
async fn an_outbox_that_lost_its_checkpoint_republishes_and_the_bus_keeps_one_copy() {
    let store: Arc<dyn EventStore> = Arc::new(InMemoryEventStore::new());
    let bus = InMemoryBus::new();
    commit(&store, "order", 2, 8).await;
    Outbox::subscription(Arc::clone(&store), bus.clone(), "outbox").run_to_end().await.unwrap();
    // A crash after the publish and before the checkpoint save looks like this: the page goes out again.
    let mut again = Outbox::subscription(Arc::clone(&store), bus.clone(), "outbox").rebuild();
    again.run_to_end().await.unwrap();
    assert_eq!(again.handler().published(), 8, "everything was published a second time");
    assert_eq!(bus.events().len(), 8, "and stored once, by event id");
}

/// A bus that refuses the first `failures` publishes, as a bus does while its server is down.
#[derive(Debug)]
struct Flaky {
    bus: InMemoryBus,
    failures: AtomicUsize,
}

#[async_trait]
impl EventBus for Flaky {
    async fn publish(&self, events: &[RecordedEvent]) -> Result<PublishReport, BusError> {
        if self.failures.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1)).is_ok() {
            return Err(BusError::Publish {
                subject: "test".into(),
                event_id: events[0].id,
                source: "the server is down".into(),
            });
        }
        self.bus.publish(events).await
    }

    async fn consume(&self, config: &ConsumerConfig) -> Result<Deliveries, BusError> {
        self.bus.consume(config).await
    }
}

#[tokio::test]
async fn a_bus_outage_holds_the_checkpoint_and_the_events_go_out_when_it_ends() {
    let store: Arc<dyn EventStore> = Arc::new(InMemoryEventStore::new());
    let bus = InMemoryBus::new();
    commit(&store, "order", 2, 6).await;
    let flaky = Flaky { bus: bus.clone(), failures: AtomicUsize::new(3) };
    let mut config = SubscriptionConfig::default();
    config.backoff.initial = Duration::from_millis(10);
    config.backoff.max = Duration::from_millis(40);
    let mut outbox = Outbox::subscription(Arc::clone(&store), flaky, "outbox").config(config);
    outbox.run_to_end().await.unwrap();
    assert_eq!(positions(&bus.events()), (1..=6).collect::<Vec<_>>(), "nothing lost, nothing reordered");
}

#[tokio::test]
async fn committed_events_in_postgres_reach_a_jetstream_consumer_in_order_per_stream() {
    let db = PostgresTestDatabase::start().await;
    let postgres = PostgresEventStore::connect(db.url()).await.unwrap();
    postgres.migrate().await.unwrap();
    let store: Arc<dyn EventStore> = Arc::new(postgres);
    let bus = common::bus("outbox").await;
    let outbox = Outbox::subscription(Arc::clone(&store), bus.clone(), "outbox").spawn();
    commit(&store, "order", 5, 200).await;

    let mut deliveries = bus.consume(&ConsumerConfig::group("reader").category("order")).await.unwrap();
    let mut last_version = std::collections::HashMap::new();
    for _ in 0..200 {
        let delivery = tokio::time::timeout(Duration::from_secs(10), deliveries.next())
            .await
            .expect("every committed event within 10 s")
            .unwrap()
            .unwrap();
        let event = &delivery.event;
        let previous = last_version.insert(event.stream_id.clone(), event.version.get()).unwrap_or(0);
        assert_eq!(event.version.get(), previous + 1, "{} arrives in version order", event.stream_id);
        delivery.ack.ack().await.unwrap();
    }
    assert_eq!(bus.stored().await.unwrap(), 200, "each event once on the bus");
    outbox.stop().await.unwrap();
    bus.delete_stream().await.unwrap();
    db.drop_database().await.unwrap();
}
