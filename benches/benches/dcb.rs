//! Consistency beyond one stream (issue 20), on every backend in one run so that the figures compare as ratios:
//!
//! - `dcb_{backend}_append/{kind}/{w}_writers`: single-event appends by `w` writers, each on its own streams and
//!   tags (no contention): `plain` (untagged, `append`), `plain_tagged` (one tag, `append`), `conditional`
//!   (one tag, `append_atomic` under a one-item condition on that tag: "no such username yet"). The aim is
//!   conditional ≥ 0.7 × plain, and writers scaling alike.
//! - `dcb_{backend}_query/selective_tag`: a read by query of one tag carried by 100 events, in a log of
//!   `DCB_LOG_EVENTS` events (default 1,000,000; 100 events per tag).
//!
//! PostgreSQL needs a server (`DATABASE_URL`, or postgres://postgres@127.0.0.1:5432/postgres) and is skipped
//! without one. Each run uses a fresh database and fresh SQLite files.
//!
//! ```text
//! cargo bench -p composable-rust-benches --bench dcb -- --warm-up-time 1 --measurement-time 3
//! ```
//!
//! Results: docs/performance.md ("Consistency beyond one stream").
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use composable_rust_core::{
    AppendCondition, AtomicAppend, CodecId, EventQuery, EventStore, ExpectedVersion, GlobalPosition, Metadata,
    NewEvent, StreamId, Tag,
};
use composable_rust_postgres::{PostgresConfig, PostgresEventStore};
use composable_rust_sqlite::{SqliteConfig, SqliteEventStore};
use composable_rust_testing::InMemoryEventStore;
use composable_rust_testing::postgres_fixture::PostgresTestDatabase;
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use tokio::runtime::Runtime;

/// Events per tag in the query log.
const PER_TAG: u64 = 100;

/// How the appends of a run are made.
#[derive(Clone, Copy)]
enum Kind {
    Plain,
    PlainTagged,
    Conditional,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Self::Plain => "plain",
            Self::PlainTagged => "plain_tagged",
            Self::Conditional => "conditional",
        }
    }
}

fn event(tags: Vec<Tag>) -> NewEvent {
    NewEvent::new("UsernameClaimed.v1", CodecId::Bincode, vec![7; 48], Metadata::default()).with_tags(tags)
}

/// `total` single-event appends split over `writers` tasks, every one on a new stream with a new tag.
fn run(runtime: &Runtime, store: &Arc<dyn EventStore>, kind: Kind, writers: u64, total: u64, round: u64) -> Duration {
    runtime.block_on(async {
        let start = Instant::now();
        let mut tasks = Vec::new();
        for writer in 0..writers {
            let store = Arc::clone(store);
            let share = total / writers + u64::from(writer < total % writers);
            tasks.push(tokio::spawn(async move {
                for i in 0..share {
                    let name = format!("{}-{round}-{writer}-{i}", kind.name());
                    let stream = StreamId::new(format!("user-{name}")).unwrap();
                    let tag = Tag::of("username", &name);
                    match kind {
                        Kind::Plain => {
                            store.append(&stream, ExpectedVersion::NoStream, vec![event(Vec::new())]).await.unwrap();
                        }
                        Kind::PlainTagged => {
                            store.append(&stream, ExpectedVersion::NoStream, vec![event(vec![tag])]).await.unwrap();
                        }
                        Kind::Conditional => {
                            let condition = AppendCondition::none_exist(EventQuery::tagged([tag.clone()]));
                            let append = AtomicAppend::new()
                                .stream(stream, ExpectedVersion::NoStream, vec![event(vec![tag])])
                                .condition(condition);
                            store.append_atomic(append).await.unwrap();
                        }
                    }
                }
            }));
        }
        for task in tasks {
            task.await.unwrap();
        }
        start.elapsed()
    })
}

fn appends(c: &mut Criterion, backend: &str, runtime: &Runtime, store: &Arc<dyn EventStore>) {
    let mut group = c.benchmark_group(format!("dcb_{backend}_append"));
    group.sample_size(10);
    group.throughput(Throughput::Elements(1));
    let mut round = 0;
    for writers in [1u64, 8] {
        // Interleaved per writer count, so that a drift of the machine's load hits all three alike.
        for kind in [Kind::Plain, Kind::PlainTagged, Kind::Conditional] {
            group.bench_function(BenchmarkId::new(kind.name(), format!("{writers}_writers")), |b| {
                b.iter_custom(|iters| {
                    round += 1;
                    run(runtime, store, kind, writers, iters, round)
                });
            });
        }
    }
    group.finish();
}

fn log_size() -> u64 {
    std::env::var("DCB_LOG_EVENTS").ok().and_then(|v| v.parse().ok()).unwrap_or(1_000_000)
}

/// Fills the log with `events` events in batches of 1000; event `i` carries the tag `course:{i % tags}`, so each
/// tag's `PER_TAG` events are scattered through the whole log.
fn fill(runtime: &Runtime, store: &Arc<dyn EventStore>, events: u64) {
    let tags = (events / PER_TAG).max(1);
    runtime.block_on(async {
        for chunk in 0..events.div_ceil(1000) {
            let stream = StreamId::new(format!("fill-{chunk}")).unwrap();
            let batch = (chunk * 1000..((chunk + 1) * 1000).min(events))
                .map(|i| event(vec![Tag::of("course", i % tags)]))
                .collect();
            store.append(&stream, ExpectedVersion::NoStream, batch).await.unwrap();
        }
    });
}

fn query(c: &mut Criterion, backend: &str, runtime: &Runtime, store: &Arc<dyn EventStore>) {
    let events = log_size();
    let query = EventQuery::tagged([Tag::of("course", 42)]);
    let mut group = c.benchmark_group(format!("dcb_{backend}_query"));
    group.sample_size(20);
    let mut filled = false;
    group.bench_function("selective_tag", |b| {
        // Filled here, not before, so that a run filtered to other benchmarks does not wait for it.
        if !filled {
            let started = Instant::now();
            fill(runtime, store, events);
            eprintln!("dcb_{backend}_query: filled {events} events in {:.1} s", started.elapsed().as_secs_f64());
            filled = true;
        }
        b.to_async(runtime).iter(|| async {
            let page = store.read_query(&query, GlobalPosition::START, 1000).await.unwrap();
            assert_eq!(page.events.len() as u64, PER_TAG.min(events));
            std::hint::black_box(&page);
        });
    });
    group.finish();
}

fn dcb(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let memory: Arc<dyn EventStore> = Arc::new(InMemoryEventStore::new());
    appends(c, "memory", &runtime, &memory);
    query(c, "memory", &runtime, &memory);
    drop(memory);

    // Under target/ rather than /tmp, which may be a RAM disk where fsync costs nothing.
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let sqlite: Arc<dyn EventStore> = Arc::new(
        runtime.block_on(SqliteEventStore::open_with(dir.path().join("dcb.db"), SqliteConfig::default())).unwrap(),
    );
    appends(c, "sqlite", &runtime, &sqlite);
    query(c, "sqlite", &runtime, &sqlite);
    drop(sqlite);

    let db = match runtime.block_on(PostgresTestDatabase::create()) {
        Ok(db) => db,
        Err(e) => {
            eprintln!("skipping the PostgreSQL benchmarks: {e}");
            return;
        }
    };
    let mut config = PostgresConfig::from_options(db.connect_options());
    config.max_connections = 16;
    let postgres: Arc<dyn EventStore> = Arc::new(runtime.block_on(async {
        let store = PostgresEventStore::connect_with(config).await.unwrap();
        store.migrate().await.unwrap();
        store
    }));
    appends(c, "postgres", &runtime, &postgres);
    query(c, "postgres", &runtime, &postgres);
}

criterion_group!(benches, dcb);
criterion_main!(benches);
