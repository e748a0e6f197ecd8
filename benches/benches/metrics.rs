//! The cost of metrics and tracing on the append path: single-event appends, one writer with exact expected
//! versions (the aggregate path), to the same backend three ways:
//!
//! - `bare`: the backend as it is, no decorator;
//! - `instrumented`: wrapped in `InstrumentedStore` (spans and metric calls) with no recorder installed,
//!   which is what every store opened by `composable_rust::config::open` is when the application installs
//!   no recorder;
//! - `prometheus`: the same with `metrics-exporter-prometheus`'s recorder installed (as the recorder of the
//!   benchmark's thread, so the two other variants stay without one).
//!
//! Backends: SQLite with `Durability::Normal` (a real append: a transaction through the writer connection,
//! without the fsync per commit of `Full`, whose ~3 ms on this disk would hide any difference in its noise),
//! and in-memory, where an append costs about a microsecond and the overhead is at its largest share.
//!
//! ```text
//! cargo bench -p composable-rust-benches --bench metrics -- --warm-up-time 1 --measurement-time 5
//! ```
//!
//! Results: docs/performance.md ("Metrics and tracing").
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use composable_rust_core::{CodecId, EventId, EventStore, ExpectedVersion, Metadata, NewEvent, StreamId, Version};
use composable_rust_runtime::InstrumentedStore;
use composable_rust_sqlite::{Durability, SqliteConfig, SqliteEventStore};
use composable_rust_testing::InMemoryEventStore;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusRecorder};
use tokio::runtime::Runtime;

/// The event of the other append benchmarks (`workload::new_event`): an item added, about 60 bytes in
/// bincode, with a correlation id, a causation id, an actor and free-form metadata.
fn event() -> NewEvent {
    let payload = CodecId::Bincode.encode(&("SKU-00000001", 3_u32, 1999_i64)).unwrap();
    let metadata = Metadata::correlated(uuid::Uuid::new_v4())
        .with_causation_id(uuid::Uuid::new_v4())
        .with_actor("user-42")
        .with_extra(&serde_json::json!({ "ip": "10.0.0.1", "channel": "web" }));
    NewEvent::new("ItemAdded.v1", CodecId::Bincode, payload, metadata)
}

/// `iters` single-event appends to a new stream of `store`, one after the other.
fn append_run(runtime: &Runtime, store: &Arc<dyn EventStore>, event: &NewEvent, iters: u64, round: u64) -> Duration {
    runtime.block_on(async {
        let stream = StreamId::new(format!("order-{round}")).unwrap();
        let mut version = Version::INITIAL;
        let start = Instant::now();
        for _ in 0..iters {
            let fresh = vec![event.clone().with_id(EventId::generate())];
            version = store.append(&stream, ExpectedVersion::Exact(version), fresh).await.unwrap().stream_version;
        }
        start.elapsed()
    })
}

fn variants(
    c: &mut Criterion,
    group: &str,
    runtime: &Runtime,
    bare: Arc<dyn EventStore>,
    backend: &'static str,
    recorder: &PrometheusRecorder,
) {
    let instrumented = InstrumentedStore::shared(Arc::clone(&bare), backend);
    let event = event();
    let mut group = c.benchmark_group(group);
    group.sample_size(20);
    group.throughput(Throughput::Elements(1));
    let mut round = 0;
    group.bench_function("bare", |b| {
        b.iter_custom(|iters| {
            round += 1;
            append_run(runtime, &bare, &event, iters, round)
        });
    });
    group.bench_function("instrumented", |b| {
        b.iter_custom(|iters| {
            round += 1;
            append_run(runtime, &instrumented, &event, iters, round)
        });
    });
    group.bench_function("prometheus", |b| {
        b.iter_custom(|iters| {
            round += 1;
            metrics::with_local_recorder(recorder, || append_run(runtime, &instrumented, &event, iters, round))
        });
    });
    group.finish();
}

fn metrics_cost(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let recorder = PrometheusBuilder::new().build_recorder();
    // Under target/ rather than /tmp, which may be a RAM disk.
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let mut config = SqliteConfig::default();
    config.durability = Durability::Normal;
    let sqlite = runtime.block_on(SqliteEventStore::open_with(dir.path().join("metrics.db"), config)).unwrap();
    variants(c, "metrics_append_sqlite_normal", &runtime, Arc::new(sqlite), "sqlite", &recorder);
    variants(c, "metrics_append_in_memory", &runtime, Arc::new(InMemoryEventStore::new()), "in-memory", &recorder);
    // What the recorder holds, so that the appends above are known to have reached it.
    let handle = recorder.handle();
    assert!(handle.render().contains("composable_appends_total"), "the recorder saw no append");
}

criterion_group!(benches, metrics_cost);
criterion_main!(benches);
