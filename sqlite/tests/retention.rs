//! Retention on SQLite: the retention suite on a real file and in memory, and the least-privilege rule of
//! the schema: a plain `DELETE` or `UPDATE` of an event is refused by the triggers, while the store's
//! retention path removes events.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use composable_rust_core::backend::{EventLog, EventRetention};
use composable_rust_core::{
    CodecId, ExpectedVersion, GlobalPosition, Metadata, NewEvent, RemovalBatch, RetentionRunId, StreamId, StreamRange,
    StreamRemoval, Version,
};
use composable_rust_sqlite::SqliteEventStore;
use composable_rust_testing::conformance::StoreUnderTest;
use sqlx::Connection;

async fn sqlite_file() -> StoreUnderTest {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteEventStore::open(dir.path().join("events.db")).await.unwrap();
    StoreUnderTest::new(store).with_guard(dir)
}

composable_rust_testing::retention_suite_tests!(sqlite_file);

mod in_memory {
    use super::*;

    async fn sqlite_in_memory() -> StoreUnderTest {
        StoreUnderTest::new(SqliteEventStore::in_memory().await.unwrap())
    }

    composable_rust_testing::retention_suite_tests!(sqlite_in_memory);
}

fn event() -> NewEvent {
    NewEvent::new("Seen.v1", CodecId::Json, b"{}".to_vec(), Metadata::default())
}

#[tokio::test]
async fn the_application_cannot_delete_or_update_events_but_retention_removes_them() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("events.db");
    let store = SqliteEventStore::open(&path).await.unwrap();
    let stream = StreamId::new("audit-1").unwrap();
    store.append(&stream, ExpectedVersion::NoStream, vec![event(), event(), event()]).await.unwrap();

    // What application code with its own connection to the file would try.
    let url = format!("sqlite://{}", path.display());
    let mut app = sqlx::SqliteConnection::connect(&url).await.unwrap();
    let delete = sqlx::query("DELETE FROM events WHERE version = 1").execute(&mut app).await;
    let message = delete.expect_err("a plain DELETE must be refused").to_string();
    assert!(message.contains("append-only"), "{message}");
    let update = sqlx::query("UPDATE events SET payload = x'00' WHERE version = 1").execute(&mut app).await;
    assert!(update.is_err(), "a plain UPDATE must be refused");
    app.close().await.unwrap();

    let batch = RemovalBatch {
        run: RetentionRunId::generate(),
        actor: "operator".into(),
        policy: "by hand".into(),
        archive: None,
        streams: vec![StreamRemoval { stream_id: stream.clone(), versions: vec![Version::new(1)], replay_free: true }],
    };
    let outcome = store.remove_events(&batch).await.unwrap();
    assert_eq!(outcome.removed, 1);
    let left = store.load_stream(&stream, StreamRange::all()).await.unwrap();
    assert_eq!(left.iter().map(|e| e.version.get()).collect::<Vec<_>>(), vec![2, 3]);
    assert_eq!(store.removal_horizon().await.unwrap(), Some(GlobalPosition::new(1)));
    let runs = store.retention_runs().await.unwrap();
    assert_eq!((runs.len(), runs[0].actor.as_str(), runs[0].events_removed), (1, "operator", 1));

    // The audit cannot be erased from outside either.
    let mut app = sqlx::SqliteConnection::connect(&url).await.unwrap();
    for statement in
        ["DELETE FROM retention_removed", "DELETE FROM retention_runs", "UPDATE retention_removed SET run_id = x'00'"]
    {
        assert!(sqlx::query(statement).execute(&mut app).await.is_err(), "{statement} must be refused");
    }
    app.close().await.unwrap();

    // Reopened, the removal and its audit are still there.
    store.close().await.unwrap();
    let reopened = SqliteEventStore::open(&path).await.unwrap();
    assert_eq!(reopened.first_retained_version(&stream).await.unwrap(), Some(Version::new(2)));
    assert_eq!(reopened.retention_runs().await.unwrap().len(), 1);
}
