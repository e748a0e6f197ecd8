//! Bytes per event of the SQLite schema (the `events` table plus all its indexes, from `dbstat`, divided
//! by rows), on events shaped like the benchmarks' (`benches/benches/workload/mod.rs`): the figure
//! docs/performance.md records. A measurement, not a check, so it is ignored by default:
//!
//! ```text
//! cargo test -p composable-rust-sqlite --test footprint -- --ignored --nocapture
//! ```
#![allow(clippy::unwrap_used, clippy::cast_precision_loss)] // a measurement: failing loudly is fine

use composable_rust_core::backend::EventLog;
use std::sync::Arc;

use composable_rust_core::{CodecId, ExpectedVersion, Metadata, NewEvent, StreamId, Version};
use composable_rust_sqlite::SqliteEventStore;
use sqlx::{ConnectOptions, Connection};

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
/// of 10 with exact expected versions. Prints the total and each b-tree's share.
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
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("footprint.db");
    let store = Arc::new(SqliteEventStore::open(&path).await.unwrap());
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
    store.close().await.unwrap();

    let mut conn = sqlx::sqlite::SqliteConnectOptions::new().filename(&path).connect().await.unwrap();
    let rows: i64 = sqlx::query_scalar("SELECT count(*) FROM events").fetch_one(&mut conn).await.unwrap();
    // Every b-tree of the events table: the table itself and each of its indexes.
    let each: Vec<(String, i64)> = sqlx::query_as(
        "SELECT name, SUM(pgsize) FROM dbstat WHERE name = 'events' \
         OR name IN (SELECT name FROM sqlite_schema WHERE type = 'index' AND tbl_name = 'events') \
         GROUP BY name ORDER BY name",
    )
    .fetch_all(&mut conn)
    .await
    .unwrap();
    conn.close().await.unwrap();
    let per_row = |bytes: i64| bytes as f64 / rows as f64;
    let total: i64 = each.iter().map(|(_, bytes)| bytes).sum();
    println!("{rows} events: events table plus indexes = {total} bytes = {:.1} bytes/event", per_row(total));
    for (btree, bytes) in each {
        println!("  {btree}: {bytes} bytes = {:.1} bytes/event", per_row(bytes));
    }
}
