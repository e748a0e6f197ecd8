//! The backup round trip of issue 16 on a 100k-event log with snapshots and checkpoints:
//! PostgreSQL -> JSONL -> SQLite -> JSONL -> PostgreSQL leaves identical events (every field but the
//! position, in the same order), snapshots and checkpoints (at the same events). Needs PostgreSQL
//! (`DATABASE_URL`, see testing/src/postgres_fixture.rs); without it the test fails.
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "test code: a failure is the test failing")]

use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use chrono::Utc;
use composable_rust_archive::{ReadLimits, Selection, export, import, verify};
use composable_rust_core::{
    AtomicAppend, CodecId, EventStore, ExpectedVersion, GlobalPosition, LogFilter, Metadata, NewEvent, RecordedEvent,
    Snapshot, StreamId, Tag, Version,
};
use composable_rust_postgres::{PostgresConfig, PostgresEventStore};
use composable_rust_sqlite::SqliteEventStore;
use composable_rust_testing::postgres_fixture::PostgresTestDatabase;

const STREAMS: u64 = 1000;
const ROUNDS: u64 = 10;
const PER_ROUND: u64 = 10;
const EVENTS: u64 = STREAMS * ROUNDS * PER_ROUND;

async fn postgres(db: &PostgresTestDatabase) -> Arc<dyn EventStore> {
    let store = PostgresEventStore::connect_with(PostgresConfig::from_options(db.connect_options())).await.unwrap();
    store.migrate().await.unwrap();
    Arc::new(store)
}

/// Event `n` of stream `s`: about 100 bytes of payload, JSON or bincode, some with metadata and tags.
fn event(s: u64, n: u64) -> NewEvent {
    let (codec, payload) = if n % 2 == 0 {
        (CodecId::Json, format!(r#"{{"stream":{s},"n":{n},"note":"{}"}}"#, "x".repeat(60)).into_bytes())
    } else {
        (CodecId::Bincode, [s.to_le_bytes(), n.to_le_bytes()].concat().repeat(6))
    };
    let metadata = if n % 3 == 0 {
        Metadata::correlated(uuid::Uuid::from_u128(u128::from(s))).with_actor(format!("user-{}", s % 7))
    } else {
        Metadata::default()
    };
    let tags = if n % 5 == 0 { vec![Tag::of("stream", s)] } else { Vec::new() };
    NewEvent::new(if n % 2 == 0 { "Noted.v1" } else { "Counted.v2" }, codec, payload, metadata).with_tags(tags)
}

fn stream(s: u64) -> StreamId {
    StreamId::for_entity(if s % 2 == 0 { "order" } else { "user" }, s).unwrap()
}

/// 100k events: ten rounds over 1000 streams, 10 events per stream per round, 1000 events per atomic append,
/// so the streams interleave in the log. A snapshot for every third stream, three checkpoints.
async fn populate(store: &dyn EventStore) {
    for round in 0..ROUNDS {
        for group in 0..STREAMS / 100 {
            let mut append = AtomicAppend::new();
            for s in group * 100..(group + 1) * 100 {
                let events = (0..PER_ROUND).map(|i| event(s, round * PER_ROUND + i)).collect();
                append = append.stream(stream(s), ExpectedVersion::Exact(Version::new(round * PER_ROUND)), events);
            }
            store.append_atomic(append).await.unwrap();
        }
    }
    for s in (0..STREAMS).step_by(3) {
        let snapshot = Snapshot {
            stream_id: stream(s),
            version: Version::new(50 + s % 40),
            schema_version: 3,
            codec: if s % 2 == 0 { CodecId::Json } else { CodecId::Bincode },
            payload: format!(r#"{{"s":{s}}}"#).into_bytes(),
            taken_at: Utc::now(),
        };
        store.save_snapshot(&snapshot).await.unwrap();
    }
    let log = everything(store).await;
    for (handler, index) in [("summaries", 0), ("mailer", 41_999), ("search", 99_999)] {
        store.save_checkpoint(handler, log[index].position).await.unwrap();
    }
}

async fn everything(store: &dyn EventStore) -> Vec<RecordedEvent> {
    let mut events = Vec::with_capacity(usize::try_from(EVENTS).unwrap());
    let mut after = GlobalPosition::START;
    loop {
        let page = store.read_all(after, &LogFilter::all(), 10_000).await.unwrap();
        let Some(last) = page.last() else { break };
        after = last.position;
        events.extend(page);
    }
    events
}

/// What must survive the round trip: every event but its position, in order; every snapshot; and for every
/// checkpoint the id of the last event at or below it.
#[derive(Debug, PartialEq)]
struct Contents {
    events: Vec<RecordedEvent>,
    snapshots: Vec<Snapshot>,
    checkpoints: Vec<(String, Option<composable_rust_core::EventId>)>,
}

async fn contents(store: &dyn EventStore) -> Contents {
    let log = everything(store).await;
    let mut snapshots = Vec::new();
    for s in 0..STREAMS {
        if let Some(mut snapshot) = store.load_snapshot(&stream(s)).await.unwrap() {
            snapshot.taken_at = chrono::SubsecRound::trunc_subsecs(snapshot.taken_at, 6);
            snapshots.push(snapshot);
        }
    }
    let checkpoints = store
        .list_checkpoints()
        .await
        .unwrap()
        .into_iter()
        .map(|(handler, position)| (handler, log.iter().take_while(|e| e.position <= position).last().map(|e| e.id)))
        .collect();
    let events = log.into_iter().map(|e| RecordedEvent { position: GlobalPosition::START, ..e }).collect();
    Contents { events, snapshots, checkpoints }
}

async fn export_to(store: &dyn EventStore, path: &Path) -> f64 {
    let started = Instant::now();
    let file = tokio::fs::File::create(path).await.unwrap();
    let summary = export(store, &Selection::All, file, |_| {}).await.unwrap();
    assert_eq!((summary.events, summary.checkpoints), (EVENTS, 3));
    EVENTS as f64 / started.elapsed().as_secs_f64()
}

async fn import_from(store: &dyn EventStore, path: &Path) -> f64 {
    let started = Instant::now();
    let summary = import(store, path, ReadLimits::default(), |_| {}).await.unwrap();
    assert_eq!(summary.archive.events, EVENTS);
    EVENTS as f64 / started.elapsed().as_secs_f64()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_to_jsonl_to_sqlite_to_jsonl_to_postgres_leaves_identical_events_snapshots_and_checkpoints() {
    let dir = tempfile::tempdir().unwrap();
    let source_db = PostgresTestDatabase::start().await;
    let source = postgres(&source_db).await;
    populate(&*source).await;
    let original = contents(&*source).await;
    assert_eq!(original.events.len(), usize::try_from(EVENTS).unwrap());
    assert_eq!(original.snapshots.len(), 334);

    let first = dir.path().join("from-postgres.jsonl");
    let pg_export = export_to(&*source, &first).await;
    let sqlite: Arc<dyn EventStore> = Arc::new(SqliteEventStore::open(dir.path().join("events.db")).await.unwrap());
    let sqlite_import = import_from(&*sqlite, &first).await;
    assert_eq!(contents(&*sqlite).await, original, "PostgreSQL -> JSONL -> SQLite");

    let second = dir.path().join("from-sqlite.jsonl");
    let sqlite_export = export_to(&*sqlite, &second).await;
    let target_db = PostgresTestDatabase::start().await;
    let target = postgres(&target_db).await;
    let pg_import = import_from(&*target, &second).await;
    assert_eq!(contents(&*target).await, original, "... -> JSONL -> PostgreSQL");

    // A second import changes nothing.
    import_from(&*target, &second).await;
    assert_eq!(contents(&*target).await, original, "importing twice duplicates nothing");
    let verified = verify(&second, ReadLimits::default(), |_| {}).await.unwrap();
    assert_eq!((verified.events, verified.snapshots, verified.checkpoints), (EVENTS, 334, 3));
    println!(
        "events/s: postgres export {pg_export:.0}, sqlite import {sqlite_import:.0}, sqlite export {sqlite_export:.0}, \
         postgres import {pg_import:.0}"
    );
}
