//! One archive import in a process of its own, for counting its instructions with callgrind (repeatable on a
//! noisy machine, unlike time). First write the benchmark's archive, then import it into a fresh store:
//!
//! ```text
//! cargo build --release -p composable-rust-archive --example import_profile
//! target/release/examples/import_profile write /tmp/a.jsonl 20000
//! valgrind --tool=callgrind --callgrind-out-file=/tmp/cg.out target/release/examples/import_profile sqlite /tmp/a.jsonl
//! callgrind_annotate /tmp/cg.out | head -60
//! ```
//!
//! Backends: `memory`, `file`, `sqlite` (both with their default `Durability::Full`, in a temporary folder),
//! `postgres` (a scratch database on `DATABASE_URL`, dropped afterwards), and `verify` (no store: the check
//! alone). Prints the events per second of the import. With `LOG_STATEMENTS=1`, the PostgreSQL server logs
//! the duration of every statement of the import (`log_min_duration_statement = 0` on the scratch database).
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

#[path = "../benches/workload/mod.rs"]
mod workload;

use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use composable_rust_archive::{ReadLimits, import, verify};
use composable_rust_core::EventStore;
use composable_rust_file::FileEventStore;
use composable_rust_memory::InMemoryEventStore;
use composable_rust_postgres::{PostgresConfig, PostgresEventStore};
use composable_rust_sqlite::SqliteEventStore;
use composable_rust_testing::postgres_fixture::PostgresTestDatabase;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (Some(what), Some(path)) = (args.get(1), args.get(2)) else {
        eprintln!("usage: import_profile write PATH [EVENTS] | import_profile memory|file|sqlite|postgres|verify PATH");
        std::process::exit(2);
    };
    let path = Path::new(path);
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    runtime.block_on(async {
        if what == "write" {
            let events = args.get(3).and_then(|n| n.parse().ok()).unwrap_or(20_000);
            workload::write_archive(path, events).await;
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let mut db = None;
        let store: Option<Arc<dyn EventStore>> = match what.as_str() {
            "memory" => Some(Arc::new(InMemoryEventStore::new())),
            "file" => Some(Arc::new(FileEventStore::open(dir.path().join("file-store")).await.unwrap())),
            "sqlite" => Some(Arc::new(SqliteEventStore::open(dir.path().join("events.db")).await.unwrap())),
            "postgres" => {
                let scratch = PostgresTestDatabase::start().await;
                if std::env::var_os("LOG_STATEMENTS").is_some() {
                    // Every statement's duration in the server's log, for this database only.
                    let admin = PostgresEventStore::connect_with(PostgresConfig::from_options(
                        scratch.connect_options().database("postgres"),
                    ))
                    .await
                    .unwrap();
                    let set = format!("ALTER DATABASE \"{}\" SET log_min_duration_statement = 0", scratch.name());
                    sqlx::query(&set).execute(admin.pool()).await.unwrap();
                    admin.pool().close().await;
                }
                let config = PostgresConfig::from_options(scratch.connect_options());
                let store = PostgresEventStore::connect_with(config).await.unwrap();
                store.migrate().await.unwrap();
                db = Some(scratch);
                Some(Arc::new(store))
            }
            _ => None,
        };
        let started = Instant::now();
        let events = match &store {
            Some(store) => import(&**store, path, ReadLimits::default(), |_| {}).await.unwrap().archive.events,
            None => verify(path, ReadLimits::default(), |_| {}).await.unwrap().events,
        };
        let seconds = started.elapsed().as_secs_f64();
        println!("{what}: {events} events in {seconds:.3} s, {:.0} events/s", events as f64 / seconds);
        if let Some(store) = store {
            store.close().await.unwrap();
        }
        if let Some(db) = db {
            db.drop_database().await.unwrap();
        }
    });
}
