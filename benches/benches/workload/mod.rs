//! The event store workloads every backend benchmark runs, so that their figures compare like with like:
//! appends (1 event per call, batches of 10/100/1000, 1 and 8 writers, exact expected versions), replay of a
//! 10,000-event stream decoded, and reading the global log in pages of 1000.

use std::sync::Arc;
use std::time::{Duration, Instant};

use composable_rust_core::{
    CodecId, EventId, EventStore, ExpectedVersion, GlobalPosition, LogFilter, Metadata, NewEvent, RecordedEvent,
    StreamId, StreamRange, Version,
};
use criterion::{BenchmarkId, Criterion, Throughput};
use futures::StreamExt;
use serde::{Deserialize, Serialize};
use tokio::runtime::Runtime;

/// A realistic event: a few strings and numbers, about 60 bytes in bincode, with full metadata.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) enum OrderEvent {
    ItemAdded { sku: String, quantity: u32, price_cents: i64 },
}

pub(crate) fn new_event(seq: u64) -> NewEvent {
    let event = OrderEvent::ItemAdded { sku: format!("SKU-{:08}", seq % 10_000), quantity: 3, price_cents: 1999 };
    NewEvent {
        id: composable_rust_core::EventId::generate(),
        event_type: "ItemAdded.v1".into(),
        codec: CodecId::Bincode,
        payload: CodecId::Bincode.encode(&event).unwrap(),
        metadata: Metadata::correlated(uuid::Uuid::new_v4())
            .with_causation_id(uuid::Uuid::new_v4())
            .with_actor("user-42")
            .with_extra(&serde_json::json!({ "ip": "10.0.0.1", "channel": "web" })),
        tags: Vec::new(),
    }
}

/// Runs `total_batches` appends of `batch` events split over `writers` tasks, each on its own stream with
/// exact expected versions (the aggregate path), and returns the elapsed time.
fn append_run(
    runtime: &Runtime,
    store: &Arc<dyn EventStore>,
    writers: usize,
    batch: usize,
    total_batches: u64,
    round: u64,
) -> Duration {
    let events: Arc<Vec<NewEvent>> = Arc::new((0..batch as u64).map(new_event).collect());
    runtime.block_on(async {
        let start = Instant::now();
        let mut tasks = Vec::new();
        for writer in 0..writers {
            let store = Arc::clone(store);
            let events = Arc::clone(&events);
            let share = total_batches / writers as u64 + u64::from((writer as u64) < total_batches % writers as u64);
            tasks.push(tokio::spawn(async move {
                let stream = StreamId::new(format!("bench-{batch}-{writers}-{round}-{writer}")).unwrap();
                let mut version = Version::INITIAL;
                for _ in 0..share {
                    // Each append is new events with new ids: the same ids again would be a retry, not an append.
                    let fresh = events.iter().map(|e| e.clone().with_id(EventId::generate())).collect();
                    let written = store.append(&stream, ExpectedVersion::Exact(version), fresh).await.unwrap();
                    version = written.stream_version;
                }
            }));
        }
        for task in tasks {
            task.await.unwrap();
        }
        start.elapsed()
    })
}

/// `{group}/batch_{n}/{w}_writers` for every batch size and writer count.
pub(crate) fn appends(c: &mut Criterion, group: &str, runtime: &Runtime, store: &Arc<dyn EventStore>) {
    let mut group = c.benchmark_group(group);
    group.sample_size(10);
    let mut round = 0;
    for batch in [1usize, 10, 100, 1000] {
        for writers in [1usize, 8] {
            group.throughput(Throughput::Elements(batch as u64));
            group.bench_function(BenchmarkId::new(format!("batch_{batch}"), format!("{writers}_writers")), |b| {
                b.iter_custom(|iters| {
                    round += 1;
                    append_run(runtime, store, writers, batch, iters, round)
                });
            });
        }
    }
    group.finish();
}

/// `{group}/{w}_writers` for each count in `writers`: one event per append, each writer on its own stream.
/// What a group commit is for: with one fsync per commit, more writers should mean more appends per second.
#[allow(dead_code, reason = "only the SQLite benchmark runs it; each bench compiles this module on its own")]
pub(crate) fn single_appends(
    c: &mut Criterion,
    group: &str,
    runtime: &Runtime,
    store: &Arc<dyn EventStore>,
    writers: &[usize],
) {
    let mut group = c.benchmark_group(group);
    group.sample_size(10);
    group.throughput(Throughput::Elements(1));
    let mut round = 1_000_000;
    for &writers in writers {
        group.bench_function(format!("{writers}_writers"), |b| {
            b.iter_custom(|iters| {
                round += 1;
                append_run(runtime, store, writers, 1, iters, round)
            });
        });
    }
    group.finish();
}

/// `{group}/stream_10000_decoded`: streams one 10,000-event stream and decodes every payload.
pub(crate) fn replay(c: &mut Criterion, group: &str, runtime: &Runtime, store: &Arc<dyn EventStore>) {
    const LEN: u64 = 10_000;
    let stream = StreamId::new("replay-1").unwrap();
    runtime.block_on(async {
        for chunk in 0..LEN / 1000 {
            let events = (chunk * 1000..(chunk + 1) * 1000).map(new_event).collect();
            store.append(&stream, ExpectedVersion::Any, events).await.unwrap();
        }
    });
    let mut group = c.benchmark_group(group);
    group.sample_size(20);
    group.throughput(Throughput::Elements(LEN));
    group.bench_function("stream_10000_decoded", |b| {
        b.to_async(runtime).iter(|| async {
            let mut events = store.read_stream(&stream, StreamRange::all());
            let mut count = 0u64;
            while let Some(event) = events.next().await {
                let event: RecordedEvent = event.unwrap();
                let decoded: OrderEvent = event.decode().unwrap();
                std::hint::black_box((&decoded, &event.metadata));
                count += 1;
            }
            assert_eq!(count, LEN);
        });
    });
    group.finish();
}

/// `{group}/pages_of_1000`: reads the first 10,000 events of the global log, 1000 per call.
pub(crate) fn global_log(c: &mut Criterion, group: &str, runtime: &Runtime, store: &Arc<dyn EventStore>) {
    const PAGE: usize = 1000;
    const PAGES: usize = 10;
    let mut group = c.benchmark_group(group);
    group.sample_size(20);
    group.throughput(Throughput::Elements((PAGE * PAGES) as u64));
    group.bench_function("pages_of_1000", |b| {
        b.to_async(runtime).iter(|| async {
            let mut after = GlobalPosition::START;
            for _ in 0..PAGES {
                let page = store.read_all(after, &LogFilter::all(), PAGE).await.unwrap();
                assert_eq!(page.len(), PAGE);
                after = page[PAGE - 1].position;
                std::hint::black_box(&page);
            }
        });
    });
    group.finish();
}
