//! Subscriptions: catch-up rate over a large log (events/s through `Subscription::run_to_end` with a
//! counting handler and at-least-once checkpoints), and live latency from an append to the handler call
//! (median and 99th percentile, a small custom harness after the criterion groups).
//!
//! Backends: in-memory, SQLite (a file in a temporary directory) and PostgreSQL (`DATABASE_URL`, or the
//! local cluster at postgres://postgres@127.0.0.1:5432/postgres; skipped with a message without one).
//! The log size is `SUBSCRIPTION_BENCH_EVENTS` (default 1,000,000), seeded in batches of 1,000.
//!
//! ```text
//! cargo bench -p composable-rust-benches --bench subscription
//! SUBSCRIPTION_BENCH_EVENTS=200000 SUBSCRIPTION_BENCH_BACKENDS=postgres,sqlite \
//!     cargo bench -p composable-rust-benches --bench subscription
//! ```
//!
//! Results: docs/performance.md, "Subscriptions".
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use composable_rust_core::{
    BoxError, CodecId, EventStore, ExpectedVersion, GlobalPosition, Metadata, NewEvent, RecordedEvent, StreamId,
};
use composable_rust_postgres::{PostgresConfig, PostgresEventStore};
use composable_rust_runtime::{EventHandler, Subscription, SubscriptionConfig, handler_fn};
use composable_rust_sqlite::SqliteEventStore;
use composable_rust_testing::InMemoryEventStore;
use composable_rust_testing::postgres_fixture::PostgresTestDatabase;
use criterion::{Criterion, SamplingMode, Throughput};
use tokio::runtime::Runtime;

fn log_size() -> u64 {
    std::env::var("SUBSCRIPTION_BENCH_EVENTS").ok().and_then(|v| v.parse().ok()).unwrap_or(1_000_000)
}

fn new_event(seq: u64) -> NewEvent {
    let payload = CodecId::Bincode.encode(&(format!("SKU-{:08}", seq % 10_000), 3_u32, 1999_i64)).unwrap();
    NewEvent {
        id: composable_rust_core::EventId::generate(),
        event_type: "ItemAdded.v1".into(),
        codec: CodecId::Bincode,
        payload,
        metadata: Metadata::default().with_actor("user-42"),
        tags: Vec::new(),
    }
}

/// Appends `count` events in batches of 1,000 (one stream per batch), two writers at a time; returns the
/// highest position written.
async fn seed(store: Arc<dyn EventStore>, count: u64) -> GlobalPosition {
    let started = Instant::now();
    let batches = count.div_ceil(1000);
    let writers: Vec<_> = (0..2)
        .map(|w| {
            let store = Arc::clone(&store);
            tokio::spawn(async move {
                let mut end = GlobalPosition::START;
                for b in (w..batches).step_by(2) {
                    let size = 1000.min(count - b * 1000);
                    let events = (0..size).map(|i| new_event(b * 1000 + i)).collect();
                    let stream = StreamId::new(format!("order-{b}")).unwrap();
                    let written = store.append(&stream, ExpectedVersion::Any, events).await.unwrap();
                    end = end.max(written.positions.last().copied().unwrap_or_default());
                }
                end
            })
        })
        .collect();
    let mut end = GlobalPosition::START;
    for writer in writers {
        end = end.max(writer.await.unwrap());
    }
    eprintln!("seeded {count} events in {:.1?}", started.elapsed());
    end
}

struct Backend {
    name: &'static str,
    runtime: Runtime,
    store: Arc<dyn EventStore>,
    /// The last position seeded (the latency run starts after it).
    end: AtomicU64,
    _keep: Box<dyn std::any::Any>,
}

fn runtime() -> Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap()
}

fn backends() -> Vec<Backend> {
    let mut out = Vec::new();
    let rt = runtime();
    out.push(Backend {
        name: "in-memory",
        store: Arc::new(InMemoryEventStore::new()),
        runtime: rt,
        end: AtomicU64::new(0),
        _keep: Box::new(()),
    });

    let rt = runtime();
    let dir = tempfile::tempdir().unwrap();
    let sqlite = rt.block_on(SqliteEventStore::open(dir.path().join("events.db"))).unwrap();
    out.push(Backend {
        name: "sqlite",
        store: Arc::new(sqlite),
        runtime: rt,
        end: AtomicU64::new(0),
        _keep: Box::new(dir),
    });

    let rt = runtime();
    match rt.block_on(PostgresTestDatabase::create()) {
        Ok(db) => {
            let mut config = PostgresConfig::from_options(db.connect_options());
            config.max_connections = 8;
            let store = rt.block_on(async {
                let store = PostgresEventStore::connect_with(config).await.unwrap();
                store.migrate().await.unwrap();
                store
            });
            out.push(Backend {
                name: "postgres",
                store: Arc::new(store),
                runtime: rt,
                end: AtomicU64::new(0),
                _keep: Box::new(db),
            });
        }
        Err(e) => eprintln!("skipping the PostgreSQL subscription benchmarks: {e}"),
    }
    out
}

#[derive(Debug, Default)]
struct Count(u64);

#[composable_rust_core::async_trait]
impl EventHandler for Count {
    async fn handle(&mut self, event: &RecordedEvent) -> Result<(), BoxError> {
        self.0 += event.payload.len() as u64;
        Ok(())
    }
}

fn catch_up(c: &mut Criterion, backends: &[Backend]) {
    let count = log_size();
    let mut group = c.benchmark_group("subscription_catch_up");
    // Flat sampling: every sample is one or a few full catch-ups, not a growing series of them.
    group
        .sample_size(10)
        .sampling_mode(SamplingMode::Flat)
        .throughput(Throughput::Elements(count))
        .warm_up_time(Duration::from_millis(1))
        .measurement_time(Duration::from_secs(1));
    static RUN: AtomicU64 = AtomicU64::new(0);
    for backend in backends {
        if !selected(backend.name) {
            continue;
        }
        let end = backend.runtime.block_on(seed(Arc::clone(&backend.store), count));
        backend.end.store(end.get(), Ordering::Relaxed);
        for page_size in [500, 2000] {
            group.bench_function(format!("{}/page_{page_size}", backend.name), |b| {
                b.iter_custom(|iters| {
                    let mut total = Duration::ZERO;
                    for _ in 0..iters {
                        let name = format!("catch-up-{}", RUN.fetch_add(1, Ordering::Relaxed));
                        let mut subscription = Subscription::new(Arc::clone(&backend.store), name, Count::default())
                            .config({
                                let mut config = SubscriptionConfig::default();
                                config.page_size = page_size;
                                config
                            });
                        let started = Instant::now();
                        let report = backend.runtime.block_on(subscription.run_to_end()).unwrap();
                        total += started.elapsed();
                        assert_eq!(report.handled, count);
                    }
                    total
                });
            });
        }
    }
    group.finish();
}

/// Whether `SUBSCRIPTION_BENCH_BACKENDS` (comma-separated, default: all) selects this backend.
fn selected(backend: &str) -> bool {
    std::env::var("SUBSCRIPTION_BENCH_BACKENDS").map_or(true, |list| list.split(',').any(|b| b.trim() == backend))
}

/// Appends one event at a time to a live subscription and records append-start -> handler-call.
fn live_latency(backends: &[Backend]) {
    const SAMPLES: usize = 1000;
    for backend in backends {
        if !selected(backend.name) {
            continue;
        }
        let store = Arc::clone(&backend.store);
        let end = GlobalPosition::new(backend.end.load(Ordering::Relaxed));
        let (latencies, appends) = backend.runtime.block_on(async move {
            let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Instant>();
            let handler = handler_fn(move |_event| {
                tx.send(Instant::now())?;
                Ok(())
            });
            let name = format!("latency-{}", std::process::id());
            // Start at the end of the seeded log: only the events appended below are handled.
            store.save_checkpoint(&name, end).await.unwrap();
            let handle = Subscription::new(Arc::clone(&store), name, handler).spawn();
            handle.wait_for(|p| p.phase == composable_rust_runtime::Phase::Live).await.unwrap();
            let stream = StreamId::new(format!("latency-{}", std::process::id())).unwrap();
            let mut latencies = Vec::with_capacity(SAMPLES);
            let mut appends = Vec::with_capacity(SAMPLES);
            for i in 0..SAMPLES as u64 {
                let started = Instant::now();
                store.append(&stream, ExpectedVersion::Any, vec![new_event(i)]).await.unwrap();
                appends.push(started.elapsed());
                let handled = rx.recv().await.unwrap();
                latencies.push(handled.saturating_duration_since(started));
            }
            handle.stop().await.unwrap();
            (latencies, appends)
        });
        let (p50, p99) = percentiles(latencies);
        let (a50, _) = percentiles(appends);
        println!(
            "subscription_live_latency/{}: append start -> handler call median {p50:.2?}, p99 {p99:.2?} \
             ({SAMPLES} sequential appends; the append round trip alone has median {a50:.2?})",
            backend.name
        );
    }
}

fn percentiles(mut samples: Vec<Duration>) -> (Duration, Duration) {
    samples.sort();
    let at = |q: f64| samples[((samples.len() as f64 * q) as usize).min(samples.len() - 1)];
    (at(0.50), at(0.99))
}

fn main() {
    let backends = backends();
    let mut criterion = Criterion::default().configure_from_args();
    catch_up(&mut criterion, &backends);
    criterion.final_summary();
    live_latency(&backends);
}
