//! Aggregate loading: replay of a 100,000-event stream with and without a recent snapshot, per backend.
//!
//! Run: `cargo bench -p composable-rust-benches --bench aggregate -- --warm-up-time 1 --measurement-time 3`.
//! PostgreSQL runs when a server answers (`DATABASE_URL`, or the local default); otherwise it is skipped
//! with a note.
//!
//! - `replay/decode_apply`: the hot path alone (decode each stored event with its codec, apply it), over
//!   events already in memory: what the repository adds on top of the store's read speed.
//! - `replay/<backend>/full`: `Repository::load_without_snapshot` of the whole stream.
//! - `replay/<backend>/snapshot`: `Repository::load` with a snapshot 100 events before the end (the
//!   default policy's worst case).

// criterion's macros generate undocumented public functions.
#![allow(missing_docs)]

use std::sync::Arc;
use std::time::Duration;

use composable_rust_core::{
    Aggregate, CodecId, Event, EventDecoder, EventStore, ExpectedVersion, Metadata, StreamId, StreamRange, Version,
};
use composable_rust_runtime::{Repository, RepositoryConfig, SnapshotPolicy};
use composable_rust_testing::InMemoryEventStore;
use composable_rust_testing::aggregate_scenarios::{Account, AccountEvent, new_account_id};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use tokio::runtime::Runtime;

const EVENTS: u64 = 100_000;
const SNAPSHOT_AT: u64 = EVENTS - 100;

fn events() -> Vec<AccountEvent> {
    let mut events = vec![AccountEvent::Opened { owner: "bench".to_owned(), currency: "EUR".to_owned() }];
    events.extend((1..EVENTS).map(|n| AccountEvent::Deposited { amount: n % 1000 }));
    events
}

#[track_caller]
fn ok<T, E: std::fmt::Display>(result: Result<T, E>) -> T {
    result.unwrap_or_else(|e| panic!("benchmark setup failed: {e}"))
}

/// Two streams of `EVENTS` events: one without a snapshot, one with a snapshot at `SNAPSHOT_AT`.
async fn prepare(store: &Arc<dyn EventStore>) -> (StreamId, StreamId) {
    let events = events();
    let repo = Repository::<Account>::new(Arc::clone(store));
    let (plain, snapshotted) = (new_account_id(), new_account_id());
    for id in [&plain, &snapshotted] {
        for chunk in events.chunks(1000) {
            let batch = chunk.iter().map(|e| ok(e.to_new_event(CodecId::Bincode, Metadata::default()))).collect();
            ok(store.append(id, ExpectedVersion::Any, batch).await);
        }
    }
    let state = Account::from_events(&events[..usize::try_from(SNAPSHOT_AT).unwrap_or(usize::MAX)]);
    ok(repo.save_snapshot(&snapshotted, &state, Version::new(SNAPSHOT_AT)).await);
    (plain, snapshotted)
}

fn bench_backend(c: &mut Criterion, rt: &Runtime, name: &str, store: Arc<dyn EventStore>) {
    let (plain, snapshotted) = rt.block_on(prepare(&store));
    let config = RepositoryConfig::default().with_snapshot_policy(SnapshotPolicy::Never);
    let repo = Repository::<Account>::with_config(store, config);
    let expected = rt.block_on(repo.load_without_snapshot(&plain)).map(|l| l.state);
    let with_snapshot = ok(rt.block_on(repo.load(&snapshotted)));
    assert_eq!(Some(&with_snapshot.state), expected.as_ref().ok(), "snapshot + tail == full replay");
    println!("replay/{name}/snapshot: {}", with_snapshot.metrics);

    let mut group = c.benchmark_group(format!("replay/{name}"));
    group.sample_size(10);
    group.throughput(Throughput::Elements(EVENTS));
    group.bench_function("full", |b| b.to_async(rt).iter(|| repo.load_without_snapshot(&plain)));
    group.bench_function("snapshot", |b| b.to_async(rt).iter(|| repo.load(&snapshotted)));
    group.finish();
}

fn decode_apply(c: &mut Criterion, rt: &Runtime) {
    let store: Arc<dyn EventStore> = Arc::new(InMemoryEventStore::new());
    let (plain, _) = rt.block_on(prepare(&store));
    let recorded = ok(rt.block_on(store.load_stream(&plain, StreamRange::all())));
    let decoder = EventDecoder::<AccountEvent>::for_aggregate::<Account>();
    let mut group = c.benchmark_group("replay");
    group.throughput(Throughput::Elements(EVENTS));
    group.bench_function("decode_apply", |b| {
        b.iter(|| {
            let mut state = Account::default();
            for event in &recorded {
                if let Some(event) = ok(decoder.decode(event)) {
                    state.apply(&event);
                }
            }
            state
        });
    });
    group.finish();
}

fn replay(c: &mut Criterion) {
    let rt = ok(tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build());
    decode_apply(c, &rt);
    bench_backend(c, &rt, "in_memory", Arc::new(InMemoryEventStore::new()));

    let dir = ok(tempfile::tempdir());
    let sqlite = ok(rt.block_on(composable_rust_sqlite::SqliteEventStore::open(dir.path().join("bench.db"))));
    bench_backend(c, &rt, "sqlite", Arc::new(sqlite));

    match rt.block_on(composable_rust_testing::postgres_fixture::PostgresTestDatabase::create()) {
        Ok(db) => {
            let store = ok(rt.block_on(composable_rust_postgres::PostgresEventStore::connect(db.url())));
            ok(rt.block_on(store.migrate()));
            bench_backend(c, &rt, "postgres", Arc::new(store));
            ok(rt.block_on(db.drop_database()));
        }
        Err(error) => println!("replay/postgres skipped: {error}"),
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default().warm_up_time(Duration::from_secs(1)).measurement_time(Duration::from_secs(3));
    targets = replay
}
criterion_main!(benches);
