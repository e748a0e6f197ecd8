//! Archive speed (issue 16: export and import at >= 200k events/s on PostgreSQL and SQLite): `verify` alone,
//! `import` into a fresh store and `export` of a full one, on every backend, for a 20,000-event archive of
//! the round trip's shape (`workload.rs`: 1000 interleaved streams, ~100-byte payloads, snapshots and
//! checkpoints). The in-memory store shows what the archive itself costs; the others add their storage.
//! SQLite and the file backend run with their default `Durability::Full`, in a folder under `target/`.
//! PostgreSQL: `DATABASE_URL` (see `composable-rust-testing`'s fixture); each import gets a fresh database.
//!
//! ```text
//! DATABASE_URL=postgres://composable:composable@127.0.0.1:5432/postgres \
//!   nice -n 19 cargo bench -p composable-rust-archive --bench archive
//! ```
//!
//! Results: docs/performance.md ("Backup and restore").

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "benchmark set-up; a failure should panic")]
#![allow(missing_docs, reason = "criterion_group! generates undocumented functions")]

mod workload;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use composable_rust_archive::{ReadLimits, Selection, export, import, verify};
use composable_rust_core::EventStore;
use composable_rust_file::FileEventStore;
use composable_rust_memory::InMemoryEventStore;
use composable_rust_postgres::{PostgresConfig, PostgresEventStore};
use composable_rust_sqlite::SqliteEventStore;
use composable_rust_testing::postgres_fixture::PostgresTestDatabase;
use criterion::measurement::WallTime;
use criterion::{BenchmarkGroup, Criterion, SamplingMode, Throughput, criterion_group, criterion_main};

/// Events in the benchmark's archive.
const EVENTS: u64 = 20_000;

/// The backends, by the name their benchmarks carry.
const BACKENDS: [&str; 4] = ["memory", "file", "sqlite", "postgres"];

/// A fresh, empty store of `backend` under `dir`, and the PostgreSQL database to drop after it.
async fn fresh(backend: &str, dir: &Path) -> (Arc<dyn EventStore>, Option<PostgresTestDatabase>) {
    match backend {
        "memory" => (Arc::new(InMemoryEventStore::new()), None),
        "file" => (Arc::new(FileEventStore::open(dir.join("file-store")).await.unwrap()), None),
        "sqlite" => (Arc::new(SqliteEventStore::open(dir.join("events.db")).await.unwrap()), None),
        _ => {
            let db = PostgresTestDatabase::start().await;
            let config = PostgresConfig::from_options(db.connect_options());
            let store = PostgresEventStore::connect_with(config).await.unwrap();
            store.migrate().await.unwrap();
            (Arc::new(store), Some(db))
        }
    }
}

/// Closes `store` and drops its database.
async fn dispose(store: Arc<dyn EventStore>, db: Option<PostgresTestDatabase>) {
    store.close().await.unwrap();
    drop(store);
    if let Some(db) = db {
        db.drop_database().await.unwrap();
    }
}

/// A group of slow operations: ten samples of one run each.
fn group<'a>(c: &'a mut Criterion, name: &str) -> BenchmarkGroup<'a, WallTime> {
    let mut group = c.benchmark_group(name);
    group.throughput(Throughput::Elements(EVENTS));
    group.sampling_mode(SamplingMode::Flat);
    group.sample_size(10);
    group.warm_up_time(Duration::from_secs(1));
    group.measurement_time(Duration::from_secs(10));
    group
}

fn archive(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    // Under target/ rather than /tmp, which may be a RAM disk where fsync costs nothing.
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let path = dir.path().join("archive.jsonl");
    rt.block_on(workload::write_archive(&path, EVENTS));

    let mut verifying = group(c, "archive/verify");
    let archive = &path;
    verifying.bench_function("archive", |b| {
        b.to_async(&rt).iter(|| async move { verify(archive, ReadLimits::default(), |_| {}).await.unwrap() });
    });
    verifying.finish();

    let mut importing = group(c, "archive/import");
    for backend in BACKENDS {
        importing.bench_function(backend, |b| {
            b.to_async(&rt).iter_custom(|iters| import_runs(backend, path.clone(), iters));
        });
    }
    importing.finish();

    let mut exporting = group(c, "archive/export");
    for backend in BACKENDS {
        let (store, db, _dir) = rt.block_on(async {
            let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
            let (store, db) = fresh(backend, dir.path()).await;
            import(&*store, &path, ReadLimits::default(), |_| {}).await.unwrap();
            (store, db, dir)
        });
        let full = &*store;
        exporting.bench_function(backend, |b| {
            b.to_async(&rt).iter(|| async move {
                let summary = export(full, &Selection::All, tokio::io::sink(), |_| {}).await.unwrap();
                assert_eq!(summary.events, EVENTS);
            });
        });
        rt.block_on(dispose(store, db));
    }
    exporting.finish();
}

/// `iters` imports of the archive at `path`, each into a fresh store of `backend`; the time of the imports.
async fn import_runs(backend: &'static str, path: PathBuf, iters: u64) -> Duration {
    let mut total = Duration::ZERO;
    for _ in 0..iters {
        let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
        let (store, db) = fresh(backend, dir.path()).await;
        let started = Instant::now();
        let summary = import(&*store, &path, ReadLimits::default(), |_| {}).await.unwrap();
        total += started.elapsed();
        assert_eq!(summary.archive.events, EVENTS);
        dispose(store, db).await;
    }
    total
}

criterion_group!(benches, archive);
criterion_main!(benches);
