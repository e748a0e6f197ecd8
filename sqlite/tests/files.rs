//! What `SqliteEventStore::open` does with the file system: creates what is missing, keeps what was
//! written, and refuses (without changing them) files it must not touch.

// The helpers below are test code too; clippy's test allowances only cover `#[test]` functions.
#![allow(clippy::unwrap_used)]

use composable_rust_core::backend::EventLog;
use std::path::Path;

use futures::StreamExt;

use composable_rust_core::{
    CodecId, EventStoreError, ExpectedVersion, GlobalPosition, LogFilter, Metadata, NewEvent, StreamId, StreamRange,
    Version,
};
use composable_rust_sqlite::SqliteEventStore;
use uuid::Uuid;

fn event(n: u32) -> NewEvent {
    NewEvent {
        id: composable_rust_core::EventId::generate(),
        event_type: "Counted.v1".into(),
        codec: CodecId::Json,
        payload: format!("{{\"n\":{n}}}").into_bytes(),
        metadata: Metadata::correlated(Uuid::new_v4()).with_actor("files-test"),
        tags: Vec::new(),
    }
}

fn stream(name: &str) -> StreamId {
    StreamId::new(name).unwrap()
}

async fn write_some_events(path: &Path) -> Vec<composable_rust_core::RecordedEvent> {
    let store = SqliteEventStore::open(path).await.unwrap();
    store.append(&stream("counter-1"), ExpectedVersion::NoStream, (1..=3).map(event).collect()).await.unwrap();
    store.append(&stream("counter-2"), ExpectedVersion::NoStream, vec![event(4)]).await.unwrap();
    let all = store.read_all(GlobalPosition::START, &LogFilter::all(), 100).await.unwrap();
    store.close().await.unwrap();
    all
}

#[tokio::test]
async fn open_creates_missing_parent_folders() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("data").join("nested").join("events.db");
    let store = SqliteEventStore::open(&path).await.unwrap();
    assert!(path.exists(), "the database file was not created");
    assert_eq!(store.path(), Some(path.as_path()));
    store.append(&stream("a-1"), ExpectedVersion::NoStream, vec![event(1)]).await.unwrap();
}

#[tokio::test]
async fn reopening_returns_every_event_unchanged() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("events.db");
    let written = write_some_events(&path).await;

    let reopened = SqliteEventStore::open(&path).await.unwrap();
    let read = reopened.read_all(GlobalPosition::START, &LogFilter::all(), 100).await.unwrap();
    assert_eq!(read, written);
    assert_eq!(reopened.stream_version(&stream("counter-1")).await.unwrap(), Version::new(3));
    // Positions continue after the existing ones and versions after the stream's.
    let more = reopened.append(&stream("counter-1"), ExpectedVersion::Exact(Version::new(3)), vec![event(5)]).await;
    let more = more.unwrap();
    assert_eq!(more.stream_version, Version::new(4));
    assert!(more.positions[0] > written.last().unwrap().position);
}

#[tokio::test]
async fn an_empty_existing_file_becomes_a_new_store() {
    let file = tempfile::NamedTempFile::new().unwrap();
    let store = SqliteEventStore::open(file.path()).await.unwrap();
    assert_eq!(store.stream_version(&stream("x-1")).await.unwrap(), Version::INITIAL);
}

fn assert_schema_error_mentioning(result: Result<SqliteEventStore, EventStoreError>, needle: &str) {
    match result {
        Err(EventStoreError::Schema(message)) => {
            assert!(message.to_string().contains(needle), "unexpected message: {message}")
        }
        Err(other) => panic!("expected a schema error mentioning {needle:?}, got: {other}"),
        Ok(store) => panic!("opening succeeded, but it must fail with a schema error: {store:?}"),
    }
}

#[tokio::test]
async fn a_file_that_is_not_a_database_is_refused_and_left_unchanged() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("notes.txt");
    // Deterministic "random" bytes, larger than an SQLite header.
    let garbage: Vec<u8> = (0u32..10_000).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect();
    std::fs::write(&path, &garbage).unwrap();

    assert_schema_error_mentioning(SqliteEventStore::open(&path).await, "is not an SQLite database");
    assert_eq!(std::fs::read(&path).unwrap(), garbage, "the file was modified");
    let leftovers: Vec<_> = std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(leftovers.len(), 1, "open left files behind: {leftovers:?}");
}

#[tokio::test]
async fn a_short_text_file_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("short.db");
    std::fs::write(&path, b"hello").unwrap();
    assert_schema_error_mentioning(SqliteEventStore::open(&path).await, "is not an SQLite database");
    assert_eq!(std::fs::read(&path).unwrap(), b"hello");
}

#[tokio::test]
async fn a_truncated_database_is_refused_and_left_unchanged() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("events.db");
    {
        let store = SqliteEventStore::open(&path).await.unwrap();
        let big = NewEvent { id: composable_rust_core::EventId::generate(), payload: vec![7; 4096], ..event(0) };
        let batch = (0..20).map(|_| big.clone().with_id(composable_rust_core::EventId::generate())).collect();
        store.append(&stream("big-1"), ExpectedVersion::NoStream, batch).await.unwrap();
        store.close().await.unwrap();
    }
    let full = std::fs::read(&path).unwrap();
    for keep in [full.len() / 2, 4096 + 100, 200] {
        std::fs::write(&path, &full[..keep]).unwrap();
        assert_schema_error_mentioning(SqliteEventStore::open(&path).await, "truncated");
        assert_eq!(std::fs::read(&path).unwrap().len(), keep, "the file was modified");
    }
    // Cut inside the header: not recognisable as a database at all.
    std::fs::write(&path, &full[..50]).unwrap();
    assert_schema_error_mentioning(SqliteEventStore::open(&path).await, "is not an SQLite database");
}

#[tokio::test]
async fn a_database_with_a_newer_schema_is_refused_and_left_unchanged() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("events.db");
    SqliteEventStore::open(&path).await.unwrap().close().await.unwrap();
    {
        // A later version of the crate applied a migration this build does not have.
        let options = sqlx::sqlite::SqliteConnectOptions::new().filename(&path);
        let pool = sqlx::SqlitePool::connect_with(options).await.unwrap();
        sqlx::query(
            "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time) \
             VALUES (99990101000000, 'from the future', TRUE, x'00', 0)",
        )
        .execute(&pool)
        .await
        .unwrap();
        pool.close().await;
    }
    let before = std::fs::read(&path).unwrap();
    assert_schema_error_mentioning(SqliteEventStore::open(&path).await, "newer than this code");
    assert!(std::fs::read(&path).unwrap() == before, "refusing a newer schema must leave the file unchanged");
}

#[tokio::test]
async fn stored_events_cannot_be_updated_or_deleted_even_with_sql() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("events.db");
    let store = SqliteEventStore::open(&path).await.unwrap();
    store.append(&stream("ledger-1"), ExpectedVersion::NoStream, vec![event(1)]).await.unwrap();

    let pool = sqlx::SqlitePool::connect_with(sqlx::sqlite::SqliteConnectOptions::new().filename(&path)).await.unwrap();
    for statement in ["UPDATE events SET payload = x'00'", "DELETE FROM events"] {
        let error = sqlx::query(statement).execute(&pool).await.unwrap_err();
        assert!(error.to_string().contains("append-only"), "{statement}: {error}");
    }
    pool.close().await;
    let events = store.load_stream(&stream("ledger-1"), StreamRange::all()).await.unwrap();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].payload, event(1).payload);
}

#[tokio::test]
async fn in_memory_stores_are_private_and_keep_their_data() {
    let first = SqliteEventStore::in_memory().await.unwrap();
    let second = SqliteEventStore::in_memory().await.unwrap();
    first.append(&stream("m-1"), ExpectedVersion::NoStream, (1..=1500).map(event).collect()).await.unwrap();
    assert_eq!(second.stream_version(&stream("m-1")).await.unwrap(), Version::INITIAL);
    // Longer than one read page, read through the store's single connection.
    let events = first.load_stream(&stream("m-1"), StreamRange::all()).await.unwrap();
    let versions: Vec<u64> = events.iter().map(|e| e.version.get()).collect();
    assert_eq!(versions, (1..=1500).collect::<Vec<_>>());
    assert!(first.path().is_none());
    assert!(format!("{first:?}").contains(":memory:"));
}

/// `close` also closes the read connections of the long reads (rusqlite): later reads fail with the
/// store's "closed" error, and once closed the database is the single file.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_close_reads_fail_and_no_read_connection_keeps_the_log_open() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("events.db");
    let store = SqliteEventStore::open(&path).await.unwrap();
    store.append(&stream("a-1"), ExpectedVersion::NoStream, vec![event(1), event(2)]).await.unwrap();
    // Both kinds of read connection are open before the close: rusqlite for the log, sqlx for a version.
    assert_eq!(store.read_all(GlobalPosition::START, &LogFilter::all(), 10).await.unwrap().len(), 2);
    let streamed: Vec<_> = store.read_stream(&stream("a-1"), StreamRange::all()).collect().await;
    assert_eq!(streamed.len(), 2);
    assert_eq!(store.stream_version(&stream("a-1")).await.unwrap().get(), 2);
    store.close().await.unwrap();

    let error = store.read_all(GlobalPosition::START, &LogFilter::all(), 10).await.unwrap_err();
    let closed = |error: &EventStoreError| composable_rust_core::error_chain(error).contains("the store was closed");
    assert!(closed(&error), "{error:?}");
    let streamed: Vec<_> = store.read_stream(&stream("a-1"), StreamRange::all()).collect().await;
    assert!(matches!(streamed.as_slice(), [Err(error)] if closed(error)), "{streamed:?}");
    let mut wal = path.clone().into_os_string();
    wal.push("-wal");
    // The last connection to close removes the log; `close` returns after every connection closed.
    assert!(!Path::new(&wal).exists(), "the write-ahead log outlived the close: a connection kept it open");
}

/// An import writes through a connection of its own (rusqlite), next to the store's write connection (sqlx):
/// what it wrote is what the other connections see, appends continue after it, and `close` closes it too.
#[tokio::test]
async fn an_import_shares_the_file_with_appends_and_close_closes_its_connection() {
    let dir = tempfile::tempdir().unwrap();
    let original = write_some_events(&dir.path().join("original.db")).await;
    let path = dir.path().join("restored.db");
    let store = SqliteEventStore::open(&path).await.unwrap();
    let positions = store.import(original.clone()).await.unwrap();
    assert_eq!(positions.iter().map(|p| p.get()).collect::<Vec<_>>(), vec![1, 2, 3, 4]);
    let appended = store.append(&stream("counter-1"), ExpectedVersion::Exact(Version::new(3)), vec![event(5)]).await;
    assert_eq!(appended.unwrap().positions[0].get(), 5, "the append sees the imported events");
    let log = store.read_all(GlobalPosition::START, &LogFilter::all(), 100).await.unwrap();
    assert_eq!(log[..4], original[..], "an import keeps every field, positions included here");
    // A rerun is answered from what is stored, through the same connection.
    assert_eq!(store.import(original.clone()).await.unwrap(), positions);
    store.close().await.unwrap();

    let error = store.import(original).await.unwrap_err();
    assert!(composable_rust_core::error_chain(&error).contains("the store was closed"), "{error:?}");
    let mut wal = path.into_os_string();
    wal.push("-wal");
    assert!(!Path::new(&wal).exists(), "the write-ahead log outlived the close: a connection kept it open");
}
