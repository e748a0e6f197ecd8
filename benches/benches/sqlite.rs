//! SQLite event store benchmarks, the same workloads as the PostgreSQL ones: appends (1 event per call,
//! batches of 10/100/1000, 1 and 8 writers) under both durability settings, replay of a 10,000-event
//! stream (decoded), and global log reads; and `sqlite_group_commit_full`, single-event appends from 1, 8
//! and 32 writers under `Durability::Full`, the case group commit is for. Each run uses fresh database
//! files in a temporary folder.
//!
//! ```text
//! cargo bench -p composable-rust-benches --bench sqlite -- --warm-up-time 1 --measurement-time 3
//! cargo bench -p composable-rust-benches --bench sqlite -- --warm-up-time 1 --measurement-time 3 group_commit
//! ```
//!
//! Results: docs/performance.md (SQLite section).
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

mod workload;

use std::sync::Arc;

use composable_rust_core::EventStore;
use composable_rust_sqlite::{Durability, SqliteConfig, SqliteEventStore};
use criterion::{Criterion, criterion_group, criterion_main};
use tokio::runtime::Runtime;

struct Bench {
    runtime: Runtime,
    _dir: tempfile::TempDir,
    full: Arc<dyn EventStore>,
    normal: Arc<dyn EventStore>,
}

fn setup() -> Bench {
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    // Under target/ rather than /tmp, which may be a RAM disk where fsync costs nothing.
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let open = |name: &str, durability| {
        let mut config = SqliteConfig::default();
        config.durability = durability;
        let store = runtime.block_on(SqliteEventStore::open_with(dir.path().join(name), config)).unwrap();
        Arc::new(store) as Arc<dyn EventStore>
    };
    let full = open("full.db", Durability::Full);
    let normal = open("normal.db", Durability::Normal);
    Bench { runtime, _dir: dir, full, normal }
}

fn sqlite(c: &mut Criterion) {
    let bench = setup();
    let runtime = &bench.runtime;
    // Replay and global reads first, on a log of known size; appends grow it afterwards.
    workload::replay(c, "sqlite_replay", runtime, &bench.full);
    workload::global_log(c, "sqlite_read_all", runtime, &bench.full);
    // Group commit: single-event appends from 1, 8 and 32 writers under `synchronous=FULL`.
    workload::single_appends(c, "sqlite_group_commit_full", runtime, &bench.full, &[1, 8, 32]);
    workload::appends(c, "sqlite_append_full", runtime, &bench.full);
    workload::appends(c, "sqlite_append_normal", runtime, &bench.normal);
}

criterion_group!(benches, sqlite);
criterion_main!(benches);
