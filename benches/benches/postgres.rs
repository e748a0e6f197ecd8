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

mod workload;

use std::sync::Arc;

use composable_rust_core::EventStore;
use composable_rust_postgres::{PostgresConfig, PostgresEventStore};
use composable_rust_testing::postgres_fixture::PostgresTestDatabase;
use criterion::{Criterion, criterion_group, criterion_main};
use tokio::runtime::Runtime;

struct Bench {
    runtime: Runtime,
    store: Arc<dyn EventStore>,
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
    Some(Bench { runtime, store: Arc::new(store), _db: db })
}

fn postgres(c: &mut Criterion) {
    let Some(bench) = setup() else { return };
    let (runtime, store) = (&bench.runtime, &bench.store);
    // Replay and global reads first, on a log of known size; appends grow it afterwards.
    workload::replay(c, "postgres_replay", runtime, store);
    workload::global_log(c, "postgres_read_all", runtime, store);
    workload::appends(c, "postgres_append", runtime, store);
}

criterion_group!(benches, postgres);
criterion_main!(benches);
