//! Raw `InMemoryEventStore` speed: stream replay (streamed, visited and loaded), global-log pages, batch
//! appends.
//! No decoding: this is the store's share of an in-memory aggregate replay.

#![allow(clippy::unwrap_used, reason = "benchmark set-up; a failure should panic")]
#![allow(missing_docs, reason = "criterion_group! generates undocumented functions")]

use composable_rust_core::backend::EventLog;
use std::ops::ControlFlow;
use std::sync::Arc;

use composable_rust_core::{
    CodecId, EventStore, ExpectedVersion, GlobalPosition, LogFilter, Metadata, NewEvent, RecordedEvent, StreamId,
    StreamRange, Version,
};
use composable_rust_memory::InMemoryEventStore;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use futures::TryStreamExt;

const EVENTS: u64 = 10_000;

fn event(n: u64) -> NewEvent {
    NewEvent {
        id: composable_rust_core::EventId::generate(),
        event_type: "AccountCredited.v1".into(),
        codec: CodecId::Bincode,
        // About the size of a small bincode event: an amount and a short reference.
        payload: [n.to_le_bytes().as_slice(), b"ref-0000000000"].concat(),
        metadata: Metadata::default(),
        tags: Vec::new(),
    }
}

fn store_with_stream(rt: &tokio::runtime::Runtime) -> (Arc<dyn EventStore>, StreamId) {
    let store: Arc<dyn EventStore> = Arc::new(InMemoryEventStore::new());
    let stream = StreamId::new("account-1").unwrap();
    rt.block_on(async {
        for first in (0..EVENTS).step_by(1_000) {
            store.append(&stream, ExpectedVersion::Any, (first..first + 1_000).map(event).collect()).await.unwrap();
        }
    });
    (store, stream)
}

fn replay(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
    let (store, stream) = store_with_stream(&rt);
    let mut group = c.benchmark_group("in_memory/replay_10k");
    group.throughput(Throughput::Elements(EVENTS));
    group.bench_function("read_stream", |b| {
        b.to_async(&rt).iter(|| async {
            let mut reading = store.read_stream(&stream, StreamRange::all());
            let mut count = 0u64;
            while let Some(event) = reading.try_next().await.unwrap() {
                count += event.version.get() & 1;
            }
            count
        });
    });
    group.bench_function("visit_stream", |b| {
        b.to_async(&rt).iter(|| async {
            let mut count = 0u64;
            let mut visit = |event: &RecordedEvent| {
                count += event.version.get() & 1;
                ControlFlow::Continue(())
            };
            store.visit_stream(&stream, StreamRange::all(), &mut visit).await.unwrap();
            count
        });
    });
    group.bench_function("load_stream", |b| {
        b.to_async(&rt).iter(|| async { store.load_stream(&stream, StreamRange::all()).await.unwrap().len() });
    });
    group.bench_function("read_all_pages_of_1000", |b| {
        b.to_async(&rt).iter(|| async {
            let mut after = GlobalPosition::START;
            let mut count = 0;
            loop {
                let page = store.read_all(after, &LogFilter::all(), 1_000).await.unwrap();
                let Some(last) = page.last() else { break count };
                after = last.position;
                count += page.len();
            }
        });
    });
    group.finish();
}

fn append(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
    let stream = StreamId::new("account-append").unwrap();
    let mut group = c.benchmark_group("in_memory/append");
    for size in [1u64, 100] {
        group.throughput(Throughput::Elements(size));
        group.bench_function(format!("batch_{size}"), |b| {
            // A fresh store per iteration keeps memory flat; it already holds the stream, so what is timed is
            // an append to an existing stream. The store is returned so that dropping it is not timed.
            b.to_async(&rt).iter_batched(
                || {
                    let store = InMemoryEventStore::new();
                    futures::executor::block_on(store.append(&stream, ExpectedVersion::NoStream, vec![event(0)]))
                        .unwrap();
                    (store, (1..=size).map(event).collect::<Vec<_>>())
                },
                |(store, events)| async {
                    store.append(&stream, ExpectedVersion::Exact(Version::FIRST), events).await.unwrap();
                    store
                },
                criterion::BatchSize::SmallInput,
            );
        });
    }
    group.finish();
}

criterion_group!(benches, replay, append);
criterion_main!(benches);
