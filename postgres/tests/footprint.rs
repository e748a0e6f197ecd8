//! Bytes per event of the PostgreSQL schema (table plus all its indexes, divided by rows), on events
//! shaped like the benchmarks' (`benches/benches/workload/mod.rs`): the figure docs/performance.md records.
//! A measurement, not a check, so it is ignored by default:
//!
//! ```text
//! cargo test -p composable-rust-postgres --test footprint -- --ignored --nocapture
//! ```
#![allow(clippy::unwrap_used, clippy::cast_precision_loss)] // a measurement: failing loudly is fine

use composable_rust_core::backend::EventLog;
use std::sync::Arc;

use composable_rust_core::{CodecId, ExpectedVersion, Metadata, NewEvent, StreamId, Version};
use composable_rust_postgres::{PostgresConfig, PostgresEventStore};
use composable_rust_testing::postgres_fixture::PostgresTestDatabase;
use sqlx::Row;

/// The benchmarks' event: `OrderEvent::ItemAdded { sku, quantity: 3, price_cents: 1999 }` in bincode (the
/// same bytes as the tuple below: variant index, then the fields), with full metadata or none (issue 19's
/// size aim is for the event without metadata or tags).
fn benchmark_event(seq: u64, metadata: bool) -> NewEvent {
    let payload = CodecId::Bincode.encode(&(0_u32, format!("SKU-{:08}", seq % 10_000), 3_u32, 1999_i64)).unwrap();
    let metadata = if metadata {
        Metadata::correlated(uuid::Uuid::new_v4())
            .with_causation_id(uuid::Uuid::new_v4())
            .with_actor("user-42")
            .with_extra(&serde_json::json!({ "ip": "10.0.0.1", "channel": "web" }))
    } else {
        Metadata::default()
    };
    NewEvent::new("ItemAdded.v1", CodecId::Bincode, payload, metadata)
}

/// 100,000 events through the store: 8 concurrent writers, 1000 streams of 100 events appended in batches
/// of 10 with exact expected versions. Prints the total and each relation's share.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a measurement for docs/performance.md; run with --ignored --nocapture"]
async fn bytes_per_event_of_benchmark_shaped_events() {
    measure(true).await;
}

/// The same without metadata.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a measurement for docs/performance.md; run with --ignored --nocapture"]
async fn bytes_per_event_of_benchmark_shaped_events_without_metadata() {
    measure(false).await;
}

async fn measure(metadata: bool) {
    const WRITERS: u64 = 8;
    const STREAMS_PER_WRITER: u64 = 125;
    const APPENDS_PER_STREAM: u64 = 10;
    const BATCH: u64 = 10;
    let db = PostgresTestDatabase::start().await;
    let mut config = PostgresConfig::from_options(db.connect_options());
    config.max_connections = 16;
    let store = Arc::new(PostgresEventStore::connect_with(config).await.unwrap());
    store.migrate().await.unwrap();
    let wal_before: String =
        sqlx::query_scalar("SELECT pg_current_wal_lsn()::text").fetch_one(store.pool()).await.unwrap();
    let mut tasks = Vec::new();
    for writer in 0..WRITERS {
        let store = Arc::clone(&store);
        tasks.push(tokio::spawn(async move {
            for stream in 0..STREAMS_PER_WRITER {
                let stream = StreamId::new(format!("bench-10-8-{stream}-{writer}")).unwrap();
                for append in 0..APPENDS_PER_STREAM {
                    let events = (0..BATCH).map(|i| benchmark_event(append * BATCH + i, metadata)).collect();
                    let expected = ExpectedVersion::Exact(Version::new(append * BATCH));
                    store.append(&stream, expected, events).await.unwrap();
                }
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    // Write-ahead log written by the appends (of the whole cluster: exact only on a server of its own).
    let wal: f64 = sqlx::query_scalar("SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), $1::pg_lsn)::float8")
        .bind(&wal_before)
        .fetch_one(store.pool())
        .await
        .unwrap();
    // As autovacuum would have by now: the free space and visibility maps exist, in every measurement alike.
    sqlx::query("VACUUM ANALYZE events").execute(store.pool()).await.unwrap();
    let row = sqlx::query(
        "SELECT count(*), pg_total_relation_size('events'), pg_relation_size('events'), pg_indexes_size('events') \
         FROM events",
    )
    .fetch_one(store.pool())
    .await
    .unwrap();
    let (rows, total, heap, indexes): (i64, i64, i64, i64) = (row.get(0), row.get(1), row.get(2), row.get(3));
    let per_row = |bytes: i64| bytes as f64 / rows as f64;
    println!(
        "{rows} events: pg_total_relation_size('events') = {total} bytes = {:.1} bytes/event \
         (heap {:.1}, indexes {:.1})",
        per_row(total),
        per_row(heap),
        per_row(indexes)
    );
    let each: Vec<(String, i64)> = sqlx::query_as(
        "SELECT indexrelid::regclass::text, pg_relation_size(indexrelid) FROM pg_index \
         WHERE indrelid = 'events'::regclass ORDER BY 1",
    )
    .fetch_all(store.pool())
    .await
    .unwrap();
    for (index, bytes) in each {
        println!("  {index}: {bytes} bytes = {:.1} bytes/event", per_row(bytes));
    }
    println!("write-ahead log during the appends: {:.1} bytes/event", wal / rows as f64);
}
