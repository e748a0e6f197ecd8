//! `FileEventStore` speed: 1000-event batch appends (both durabilities), replay of a 10,000-event stream with
//! every payload decoded, and the open of a 100,000-event store (the index rebuilt from the segments).
//! Events carry ~100-byte bincode payloads.

#![allow(clippy::unwrap_used, reason = "benchmark set-up; a failure should panic")]
#![allow(missing_docs, reason = "criterion_group! generates undocumented functions")]

use std::time::{Duration, Instant};

use composable_rust_core::backend::{EventLog, StoreLifecycle};
use composable_rust_core::{CodecId, ExpectedVersion, Metadata, NewEvent, StreamId, StreamRange};
use composable_rust_file::{Durability, FileConfig, FileEventStore};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use serde::{Deserialize, Serialize};

const BATCH: u64 = 1_000;
const REPLAY: u64 = 10_000;
const OPEN: u64 = 100_000;

#[derive(Debug, Serialize, Deserialize)]
struct Credited {
    amount: u64,
    reference: String,
}

fn event(n: u64) -> NewEvent {
    let credited =
        Credited { amount: n, reference: format!("payment {n:020} from the monthly run of account batches") };
    let payload = CodecId::Bincode.encode(&credited).unwrap();
    NewEvent::new("AccountCredited.v1", CodecId::Bincode, payload, Metadata::default())
}

fn config(durability: Durability) -> FileConfig {
    let mut config = FileConfig::default();
    config.durability = durability;
    config
}

async fn fill(store: &FileEventStore, stream: &StreamId, events: u64) {
    for first in (0..events).step_by(usize::try_from(BATCH).unwrap()) {
        store.append(stream, ExpectedVersion::Any, (first..first + BATCH).map(event).collect()).await.unwrap();
    }
}

fn append(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).build().unwrap();
    let mut group = c.benchmark_group("file/append_batch_1000");
    group.throughput(Throughput::Elements(BATCH));
    for (name, durability) in [("normal", Durability::Normal), ("full", Durability::Full)] {
        group.bench_function(name, |b| {
            b.to_async(&rt).iter_custom(|iters| async move {
                // A fresh store per run, so the index does not grow across criterion's samples.
                let dir = tempfile::tempdir().unwrap();
                let store = FileEventStore::open_with(dir.path(), config(durability)).await.unwrap();
                let stream = StreamId::new("account-1").unwrap();
                let batches: Vec<Vec<NewEvent>> =
                    (0..iters).map(|i| (i * BATCH..(i + 1) * BATCH).map(event).collect()).collect();
                let started = Instant::now();
                for batch in batches {
                    store.append(&stream, ExpectedVersion::Any, batch).await.unwrap();
                }
                let elapsed = started.elapsed();
                store.close().await.unwrap();
                elapsed
            });
        });
    }
    group.finish();
}

fn replay(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).build().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let stream = StreamId::new("account-1").unwrap();
    let store = rt.block_on(async {
        let store = FileEventStore::open_with(dir.path(), config(Durability::Normal)).await.unwrap();
        fill(&store, &stream, REPLAY).await;
        store
    });
    let mut group = c.benchmark_group("file/replay_10k");
    group.throughput(Throughput::Elements(REPLAY));
    group.bench_function("load_stream_decoded", |b| {
        b.to_async(&rt).iter(|| async {
            let events = store.load_stream(&stream, StreamRange::all()).await.unwrap();
            events.iter().map(|e| e.decode::<Credited>().unwrap().amount).sum::<u64>()
        });
    });
    group.finish();
}

fn open(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).build().unwrap();
    let dir = tempfile::tempdir().unwrap();
    rt.block_on(async {
        let mut small_segments = config(Durability::Normal);
        small_segments.segment_size = 4 * 1024 * 1024; // several compressed segments, as a long-lived store has
        let store = FileEventStore::open_with(dir.path(), small_segments).await.unwrap();
        fill(&store, &StreamId::new("account-1").unwrap(), OPEN).await;
        store.close().await.unwrap();
    });
    let mut group = c.benchmark_group("file/open_100k");
    group.throughput(Throughput::Elements(OPEN));
    group.sample_size(10);
    group.bench_function("rebuild_index", |b| {
        b.to_async(&rt).iter(|| async {
            let store = FileEventStore::open_with(dir.path(), config(Durability::Normal)).await.unwrap();
            store.close().await.unwrap();
        });
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().warm_up_time(Duration::from_secs(1)).measurement_time(Duration::from_secs(3));
    targets = append, replay, open
}
criterion_main!(benches);
