//! PostgreSQL event store benchmarks: appends (1 event per call, batches of 10/100/1000, 1 and 8 writers),
//! replay of a 10,000-event stream (decoded), and global log reads.
//!
//! Needs a server: `DATABASE_URL`, or the local cluster at postgres://postgres@127.0.0.1:5432/postgres.
//! Without one the benchmarks are skipped with a message. Each run uses a fresh database, dropped at the end.
//!
//! ```text
//! cargo bench -p composable-rust-benches --bench postgres -- --warm-up-time 1 --measurement-time 3
//! ```
//!
//! Results and the pgbench ceiling they are compared with: docs/performance.md (PostgreSQL section).
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use composable_rust_core::{
    CodecId, EventStore, ExpectedVersion, GlobalPosition, LogFilter, Metadata, NewEvent, RecordedEvent, StreamId,
    StreamRange, Version,
};
use composable_rust_postgres::{PostgresConfig, PostgresEventStore};
use composable_rust_testing::postgres_fixture::PostgresTestDatabase;
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use futures::StreamExt;
use serde::{Deserialize, Serialize};
use tokio::runtime::Runtime;

/// A realistic event: a few strings and numbers, about 60 bytes in bincode.
#[derive(Debug, Clone, Serialize, Deserialize)]
enum OrderEvent {
    ItemAdded { sku: String, quantity: u32, price_cents: i64 },
}

fn new_event(seq: u64) -> NewEvent {
    let event = OrderEvent::ItemAdded { sku: format!("SKU-{:08}", seq % 10_000), quantity: 3, price_cents: 1999 };
    NewEvent {
        event_type: "ItemAdded.v1".into(),
        codec: CodecId::Bincode,
        payload: CodecId::Bincode.encode(&event).unwrap(),
        metadata: Metadata::correlated(uuid::Uuid::new_v4())
            .with_causation_id(uuid::Uuid::new_v4())
            .with_actor("user-42")
            .with_extra(&serde_json::json!({ "ip": "10.0.0.1", "channel": "web" })),
    }
}

struct Bench {
    runtime: Runtime,
    store: PostgresEventStore,
    _db: PostgresTestDatabase,
}

fn setup() -> Option<Bench> {
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let db = match runtime.block_on(PostgresTestDatabase::create()) {
        Ok(db) => db,
        Err(e) => {
            eprintln!("skipping the PostgreSQL benchmarks: {e}");
            return None;
        }
    };
    let mut config = PostgresConfig::from_options(db.connect_options());
    config.max_connections = 16;
    let store = runtime.block_on(async {
        let store = PostgresEventStore::connect_with(config).await.unwrap();
        store.migrate().await.unwrap();
        store
    });
    Some(Bench { runtime, store, _db: db })
}

/// Runs `total_batches` appends of `batch` events split over `writers` tasks, each on its own streams with
/// exact expected versions (the aggregate path), and returns the elapsed time.
fn append_run(bench: &Bench, writers: usize, batch: usize, total_batches: u64, round: &mut u64) -> Duration {
    *round += 1;
    let round = *round;
    let events: Arc<Vec<NewEvent>> = Arc::new((0..batch as u64).map(new_event).collect());
    bench.runtime.block_on(async {
        let start = Instant::now();
        let mut tasks = Vec::new();
        for writer in 0..writers {
            let store = bench.store.clone();
            let events = Arc::clone(&events);
            let share = total_batches / writers as u64 + u64::from((writer as u64) < total_batches % writers as u64);
            tasks.push(tokio::spawn(async move {
                let stream = StreamId::new(format!("bench-{batch}-{writers}-{round}-{writer}")).unwrap();
                let mut version = Version::INITIAL;
                for _ in 0..share {
                    let written =
                        store.append(&stream, ExpectedVersion::Exact(version), events.as_ref().clone()).await.unwrap();
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

fn appends(c: &mut Criterion, bench: &Bench) {
    let mut group = c.benchmark_group("postgres_append");
    group.sample_size(10);
    let mut round = 0;
    for batch in [1usize, 10, 100, 1000] {
        for writers in [1usize, 8] {
            group.throughput(Throughput::Elements(batch as u64));
            group.bench_function(BenchmarkId::new(format!("batch_{batch}"), format!("{writers}_writers")), |b| {
                b.iter_custom(|iters| append_run(bench, writers, batch, iters, &mut round));
            });
        }
    }
    group.finish();
}

fn replay(c: &mut Criterion, bench: &Bench) {
    const LEN: u64 = 10_000;
    let stream = StreamId::new("replay-1").unwrap();
    bench.runtime.block_on(async {
        for chunk in 0..LEN / 1000 {
            let events = (chunk * 1000..(chunk + 1) * 1000).map(new_event).collect();
            bench.store.append(&stream, ExpectedVersion::Any, events).await.unwrap();
        }
    });
    let mut group = c.benchmark_group("postgres_replay");
    group.sample_size(20);
    group.throughput(Throughput::Elements(LEN));
    group.bench_function("stream_10000_decoded", |b| {
        b.to_async(&bench.runtime).iter(|| async {
            let mut events = bench.store.read_stream(&stream, StreamRange::all());
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

fn global_log(c: &mut Criterion, bench: &Bench) {
    const PAGE: usize = 1000;
    const PAGES: usize = 10;
    let mut group = c.benchmark_group("postgres_read_all");
    group.sample_size(20);
    group.throughput(Throughput::Elements((PAGE * PAGES) as u64));
    group.bench_function("pages_of_1000", |b| {
        b.to_async(&bench.runtime).iter(|| async {
            let mut after = GlobalPosition::START;
            for _ in 0..PAGES {
                let page = bench.store.read_all(after, &LogFilter::all(), PAGE).await.unwrap();
                assert_eq!(page.len(), PAGE);
                after = page[PAGE - 1].position;
                std::hint::black_box(&page);
            }
        });
    });
    group.finish();
}

fn postgres(c: &mut Criterion) {
    let Some(bench) = setup() else { return };
    // Replay and global reads first, on a log of known size; appends grow it afterwards.
    replay(c, &bench);
    global_log(c, &bench);
    appends(c, &bench);
}

criterion_group!(benches, postgres);
criterion_main!(benches);
