//! The SQLite driver spike of issue 19: the same 10,000 rows of one file, read and decoded into
//! `RecordedEvent`s (payload decoded too) through sqlx's SQLite driver and through rusqlite on tokio's
//! blocking threads, side by side in one run. The decision it fed is in docs/decisions.md ("SQLite reads").
//!
//! ```text
//! cargo bench -p composable-rust-benches --bench sqlite_driver -- --warm-up-time 1 --measurement-time 3
//! ```
//!
//! Variants, each reading the stream in pages of 1000 rows with the store's own query:
//! - `store_read_stream`: `SqliteEventStore::read_stream`, the product path.
//! - `sqlx_fetch_all`: sqlx, one `fetch_all` per page.
//! - `sqlx_fetch`: sqlx, rows streamed with `fetch` as they arrive from the driver's worker thread.
//! - `rusqlite_blocking`: rusqlite, each page read on a blocking thread (`spawn_blocking`) and sent back.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

#[allow(dead_code, reason = "the spike uses only the benchmark event of the shared workloads")]
mod workload;

use std::sync::{Arc, Mutex};

use composable_rust_core::backend::{EventLog, EventTypeCache};
use composable_rust_core::{
    Bytes, CodecId, EventId, EventStore, ExpectedVersion, GlobalPosition, Metadata, RecordedEvent, StreamId,
    StreamRange, Tag, Version,
};
use composable_rust_sqlite::SqliteEventStore;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use futures::TryStreamExt;
use sqlx::Row;
use sqlx::sqlite::{SqlitePool, SqlitePoolOptions, SqliteRow};
use tokio::runtime::Runtime;
use workload::OrderEvent;

const LEN: i64 = 10_000;
const PAGE: i64 = 1000;

/// The store's stream page query (`READ_STREAM_PAGE` in the sqlite crate).
const PAGE_SQL: &str = "SELECT global_position, version, event_type, codec, payload, correlation_id, causation_id, \
     actor, extra, recorded_at, event_id, tags FROM events \
     WHERE stream_id = ?1 AND version >= ?2 AND version <= ?3 ORDER BY version LIMIT ?4";

fn uuid(bytes: &[u8]) -> uuid::Uuid {
    uuid::Uuid::from_slice(bytes).unwrap()
}

fn tags(stored: Option<&str>) -> Vec<Tag> {
    stored.map(|s| s.split('\u{1f}').map(Tag::new).collect()).unwrap_or_default()
}

fn from_sqlx(row: &SqliteRow, stream_id: &StreamId, types: &mut EventTypeCache) -> RecordedEvent {
    RecordedEvent {
        id: EventId::from(uuid(row.get::<&[u8], _>(10))),
        stream_id: stream_id.clone(),
        position: GlobalPosition::new(row.get::<i64, _>(0) as u64),
        version: Version::new(row.get::<i64, _>(1) as u64),
        event_type: types.get(row.get(2)),
        codec: row.get::<&str, _>(3).parse::<CodecId>().unwrap(),
        payload: row.get::<Vec<u8>, _>(4).into(),
        metadata: Metadata {
            correlation_id: row.get::<Option<&[u8]>, _>(5).map(uuid),
            causation_id: row.get::<Option<&[u8]>, _>(6).map(uuid),
            actor: row.get(7),
            extra: row.get(8),
        },
        recorded_at: chrono::DateTime::from_timestamp_micros(row.get(9)).unwrap(),
        tags: tags(row.get(11)),
    }
}

fn from_rusqlite(row: &rusqlite::Row<'_>, stream_id: &StreamId, types: &mut EventTypeCache) -> RecordedEvent {
    let text = |i: usize| row.get_ref(i).unwrap().as_str_or_null().unwrap();
    let blob = |i: usize| row.get_ref(i).unwrap().as_blob_or_null().unwrap();
    RecordedEvent {
        id: EventId::from(uuid(blob(10).unwrap())),
        stream_id: stream_id.clone(),
        position: GlobalPosition::new(row.get::<_, i64>(0).unwrap() as u64),
        version: Version::new(row.get::<_, i64>(1).unwrap() as u64),
        event_type: types.get(text(2).unwrap()),
        codec: text(3).unwrap().parse::<CodecId>().unwrap(),
        payload: Bytes::copy_from_slice(blob(4).unwrap()),
        metadata: Metadata {
            correlation_id: blob(5).map(uuid),
            causation_id: blob(6).map(uuid),
            actor: text(7).map(str::to_owned),
            extra: text(8).map(str::to_owned),
        },
        recorded_at: chrono::DateTime::from_timestamp_micros(row.get(9).unwrap()).unwrap(),
        tags: tags(text(11)),
    }
}

/// Decodes every payload, as a replay would, and checks the count.
fn consume(events: &[RecordedEvent]) -> usize {
    for event in events {
        let decoded: OrderEvent = event.decode().unwrap();
        std::hint::black_box((&decoded, &event.metadata));
    }
    events.len()
}

async fn sqlx_pages(pool: &SqlitePool, stream_id: &StreamId, streamed: bool) -> usize {
    let mut read = 0;
    let mut next = 1;
    while next <= LEN {
        let query = sqlx::query(PAGE_SQL).bind(stream_id.as_str()).bind(next).bind(LEN).bind(PAGE);
        let mut types = EventTypeCache::default();
        let page: Vec<RecordedEvent> = if streamed {
            query.fetch(pool).map_ok(|row| from_sqlx(&row, stream_id, &mut types)).try_collect().await.unwrap()
        } else {
            query.fetch_all(pool).await.unwrap().iter().map(|row| from_sqlx(row, stream_id, &mut types)).collect()
        };
        read += consume(&page);
        next += PAGE;
    }
    read
}

async fn rusqlite_pages(connection: &Arc<Mutex<rusqlite::Connection>>, stream_id: &StreamId) -> usize {
    let mut read = 0;
    let mut next = 1;
    while next <= LEN {
        let (connection, stream) = (Arc::clone(connection), stream_id.clone());
        let page = tokio::task::spawn_blocking(move || {
            let connection = connection.lock().unwrap();
            let mut statement = connection.prepare_cached(PAGE_SQL).unwrap();
            let mut rows = statement.query(rusqlite::params![stream.as_str(), next, LEN, PAGE]).unwrap();
            let mut types = EventTypeCache::default();
            let mut page = Vec::with_capacity(PAGE as usize);
            while let Some(row) = rows.next().unwrap() {
                page.push(from_rusqlite(row, &stream, &mut types));
            }
            page
        })
        .await
        .unwrap();
        read += consume(&page);
        next += PAGE;
    }
    read
}

fn spike(c: &mut Criterion) {
    let runtime = Runtime::new().unwrap();
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let path = dir.path().join("spike.db");
    let stream = StreamId::new("replay-1").unwrap();
    let store = runtime.block_on(async {
        let store = SqliteEventStore::open(&path).await.unwrap();
        for chunk in 0..LEN as u64 / 1000 {
            let events = (chunk * 1000..(chunk + 1) * 1000).map(workload::new_event).collect();
            store.append(&stream, ExpectedVersion::Any, events).await.unwrap();
        }
        Arc::new(store) as Arc<dyn EventStore>
    });
    let pool = runtime.block_on(async {
        let options = sqlx::sqlite::SqliteConnectOptions::new().filename(&path).pragma("query_only", "ON");
        SqlitePoolOptions::new().max_connections(1).test_before_acquire(false).connect_with(options).await.unwrap()
    });
    let flags = rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let connection = Arc::new(Mutex::new(rusqlite::Connection::open_with_flags(&path, flags).unwrap()));

    let mut group = c.benchmark_group("sqlite_driver/stream_10000_decoded");
    group.sample_size(20);
    group.throughput(Throughput::Elements(LEN as u64));
    group.bench_function("store_read_stream", |b| {
        b.to_async(&runtime).iter(|| async {
            let events: Vec<RecordedEvent> =
                store.read_stream(&stream, StreamRange::all()).try_collect().await.unwrap();
            assert_eq!(consume(&events), LEN as usize);
        });
    });
    group.bench_function("sqlx_fetch_all", |b| {
        b.to_async(&runtime).iter(|| async { assert_eq!(sqlx_pages(&pool, &stream, false).await, LEN as usize) });
    });
    group.bench_function("sqlx_fetch", |b| {
        b.to_async(&runtime).iter(|| async { assert_eq!(sqlx_pages(&pool, &stream, true).await, LEN as usize) });
    });
    group.bench_function("rusqlite_blocking", |b| {
        b.to_async(&runtime).iter(|| async { assert_eq!(rusqlite_pages(&connection, &stream).await, LEN as usize) });
    });
    group.finish();
}

criterion_group!(benches, spike);
criterion_main!(benches);
