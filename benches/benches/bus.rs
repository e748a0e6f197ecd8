//! The event bus on NATS JetStream: publish throughput (the bus alone, and the whole outbox from an event
//! store), and the latency from a commit in PostgreSQL to a consumer in another process. A custom harness
//! (figures, not criterion's statistics): every run prints the load average next to its figures.
//!
//! ```text
//! cargo bench -p composable-rust-benches --bench bus
//! BUS_BENCH_EVENTS=100000 BUS_BENCH_LATENCY_EVENTS=2000 cargo bench -p composable-rust-benches --bench bus
//! ```
//!
//! Needs NATS JetStream (`NATS_URL`, default nats://127.0.0.1:4222) and PostgreSQL (`DATABASE_URL` or the
//! local cluster). Each run uses fresh JetStream streams and databases, and deletes them afterwards.
//!
//! Latency method: the producer appends one event per commit to PostgreSQL at a steady rate; the event's
//! payload holds the wall-clock time (`chrono::Utc::now`, microseconds) read just before the append call.
//! An outbox in the producer's process publishes to JetStream; a consumer in a second process (this binary,
//! started again with `BUS_BENCH_ROLE=consumer`) reads the group, acknowledges, and records
//! `now - sent` for each event. Both processes read the same clock, so the figure covers the commit, the
//! outbox's wake-up (PostgreSQL NOTIFY), the read, the publish, JetStream and the delivery.
//!
//! Results: docs/performance.md, "Event bus (NATS JetStream)".
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use composable_rust_bus::{ConsumerConfig, EventBus, JetStreamBus, JetStreamConfig, Outbox, StreamOrder};
use composable_rust_core::{
    Bytes, CodecId, EventId, EventStore, ExpectedVersion, GlobalPosition, Metadata, NewEvent, RecordedEvent, StreamId,
    Version,
};
use composable_rust_postgres::PostgresEventStore;
use composable_rust_testing::InMemoryEventStore;
use composable_rust_testing::postgres_fixture::PostgresTestDatabase;
use futures::StreamExt;

fn env_number(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn nats_url() -> String {
    std::env::var("NATS_URL").unwrap_or_else(|_| "nats://127.0.0.1:4222".to_owned())
}

fn prefix(what: &str) -> String {
    format!("bench{what}{}", &uuid::Uuid::new_v4().simple().to_string()[..8])
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

/// An event shaped like the other benchmarks' (a short bincode payload, an actor).
fn recorded(n: u64) -> RecordedEvent {
    RecordedEvent {
        id: EventId::generate(),
        stream_id: StreamId::new(format!("cart-{}", n % 1000)).unwrap(),
        version: Version::new(n / 1000 + 1),
        position: GlobalPosition::new(n + 1),
        event_type: "ItemAdded.v1".into(),
        codec: CodecId::Bincode,
        payload: Bytes::from(CodecId::Bincode.encode(&(format!("SKU-{:08}", n % 10_000), 3_u32, 1999_i64)).unwrap()),
        metadata: Metadata::default().with_actor("user-42"),
        recorded_at: chrono::Utc::now(),
        tags: Vec::new(),
    }
}

fn new_event(n: u64) -> NewEvent {
    let payload = CodecId::Bincode.encode(&(format!("SKU-{:08}", n % 10_000), 3_u32, 1999_i64)).unwrap();
    NewEvent::new("ItemAdded.v1", CodecId::Bincode, payload, Metadata::default().with_actor("user-42"))
}

/// Appends `count` events in batches of 1,000, one stream per batch.
async fn seed(store: &Arc<dyn EventStore>, count: u64) {
    for batch in 0..count.div_ceil(1000) {
        let size = 1000.min(count - batch * 1000);
        let events = (0..size).map(|i| new_event(batch * 1000 + i)).collect();
        store.append(&StreamId::new(format!("cart-{batch}")).unwrap(), ExpectedVersion::Any, events).await.unwrap();
    }
}

async fn connect(what: &str) -> JetStreamBus {
    connect_with(what, StreamOrder::default()).await
}

async fn connect_with(what: &str, order: StreamOrder) -> JetStreamBus {
    JetStreamBus::connect(JetStreamConfig::new(nats_url(), prefix(what)).stream_order(order))
        .await
        .unwrap_or_else(|e| panic!("the bus benchmark needs NATS JetStream at {}: {e}", nats_url()))
}

async fn postgres() -> (PostgresTestDatabase, Arc<dyn EventStore>) {
    let db = PostgresTestDatabase::start().await;
    let store = PostgresEventStore::connect(db.url()).await.unwrap();
    store.migrate().await.unwrap();
    (db, Arc::new(store))
}

/// `JetStreamBus::publish` alone, batches of `batch`: what the outbox can get out of the bus.
async fn publish_only(events: u64, batch: u64) {
    let bus = connect("publish").await;
    let all: Vec<RecordedEvent> = (0..events).map(recorded).collect();
    let started = Instant::now();
    for chunk in all.chunks(batch as usize) {
        bus.publish(chunk).await.unwrap();
    }
    let elapsed = started.elapsed();
    assert_eq!(bus.stored().await.unwrap(), events);
    println!(
        "publish only, batches of {batch}: {events} events in {:.2} s = {:.0} events/s (load {})",
        elapsed.as_secs_f64(),
        events as f64 / elapsed.as_secs_f64(),
        load_average()
    );
    bus.delete_stream().await.unwrap();
}

/// The whole outbox: read pages of 1,000 from `store`, publish, checkpoint; timed from start to caught up.
async fn outbox(name: &str, store: Arc<dyn EventStore>, events: u64, order: StreamOrder) {
    seed(&store, events).await;
    let bus = connect_with("outbox", order).await;
    let mut outbox = Outbox::subscription(Arc::clone(&store), bus.clone(), "bench-outbox");
    let started = Instant::now();
    let report = outbox.run_to_end().await.unwrap();
    let elapsed = started.elapsed();
    assert_eq!(report.handled, events);
    assert_eq!(bus.stored().await.unwrap(), events);
    println!(
        "outbox {name} -> JetStream, pages of 1000 (one stream each), {order:?}: {events} events in {:.2} s = {:.0} events/s (load {})",
        elapsed.as_secs_f64(),
        events as f64 / elapsed.as_secs_f64(),
        load_average()
    );
    bus.delete_stream().await.unwrap();
}

/// Commit -> consumer in another process, one event per commit at `rate` per second.
async fn latency(events: u64, rate: u64) {
    let (db, store) = postgres().await;
    let bus = connect("latency").await;
    let outbox = Outbox::subscription(Arc::clone(&store), bus.clone(), "bench-outbox").spawn();
    let mut consumer = Command::new(std::env::current_exe().unwrap())
        .env("BUS_BENCH_ROLE", "consumer")
        .env("BUS_BENCH_PREFIX", &bus.config().prefix)
        .env("BUS_BENCH_LATENCY_EVENTS", events.to_string())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(consumer.stdout.take().unwrap()).lines();
    assert_eq!(lines.next().unwrap().unwrap(), "ready");

    let stream = StreamId::new("latency-1").unwrap();
    let every = Duration::from_micros(1_000_000 / rate);
    let mut tick = tokio::time::interval(every);
    for _ in 0..events {
        tick.tick().await;
        let sent = chrono::Utc::now().timestamp_micros();
        let event = NewEvent::new("Sent.v1", CodecId::Json, sent.to_string().into_bytes(), Metadata::default());
        store.append(&stream, ExpectedVersion::Any, vec![event]).await.unwrap();
    }
    let mut micros: Vec<i64> = lines.map(|l| l.unwrap().parse().unwrap()).collect();
    consumer.wait().unwrap();
    assert_eq!(micros.len() as u64, events, "the consumer received every event");
    micros.sort_unstable();
    let at = |q: f64| micros[((micros.len() as f64 * q) as usize).min(micros.len() - 1)] as f64 / 1000.0;
    println!(
        "commit -> consumer in another process, {events} events at {rate}/s: p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms (load {})",
        at(0.50),
        at(0.99),
        at(1.0),
        load_average()
    );
    outbox.stop().await.unwrap();
    bus.delete_stream().await.unwrap();
    db.drop_database().await.unwrap();
}

/// The second process of the latency run: prints `ready`, then one latency in microseconds per event.
async fn consume() {
    let prefix = std::env::var("BUS_BENCH_PREFIX").unwrap();
    let events = env_number("BUS_BENCH_LATENCY_EVENTS", 2000);
    let bus = JetStreamBus::connect(JetStreamConfig::new(nats_url(), prefix)).await.unwrap();
    let mut deliveries = bus.consume(&ConsumerConfig::group("latency")).await.unwrap();
    println!("ready");
    for _ in 0..events {
        let delivery = deliveries.next().await.unwrap().unwrap();
        let received = chrono::Utc::now().timestamp_micros();
        let sent: i64 = std::str::from_utf8(&delivery.event.payload).unwrap().parse().unwrap();
        println!("{}", received - sent);
        delivery.ack.ack().await.unwrap();
    }
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    if std::env::var("BUS_BENCH_ROLE").as_deref() == Ok("consumer") {
        runtime.block_on(consume());
        return;
    }
    // `cargo test --benches` runs this binary too: keep that quick.
    let quick = std::env::args().any(|a| a == "--test") || !std::env::args().any(|a| a == "--bench");
    let events = if quick { 2_000 } else { env_number("BUS_BENCH_EVENTS", 200_000) };
    let latency_events = if quick { 50 } else { env_number("BUS_BENCH_LATENCY_EVENTS", 2_000) };
    runtime.block_on(async {
        publish_only(events, 1000).await;
        publish_only(events / 4, 100).await;
        for order in [StreamOrder::Kept, StreamOrder::Pipelined] {
            outbox("in-memory", Arc::new(InMemoryEventStore::new()), events, order).await;
            let (db, store) = postgres().await;
            outbox("PostgreSQL", store, events, order).await;
            db.drop_database().await.unwrap();
        }
        latency(latency_events, 200).await;
    });
}
