//! A transactional projection whose handler appends to the same SQLite store. SQLite has one writer; if
//! the page's transaction held the store's write connection while the handler ran, the handler's append
//! would wait for the page that waits for the handler. The projection's code runs before the page's
//! transaction takes the writer, so the run finishes; the tokio timeout turns a deadlock into a failure.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use composable_rust_core::backend::EventLog;
use std::sync::Arc;

use composable_rust_core::{
    BoxError, CodecId, EventId, ExpectedVersion, GlobalPosition, LogFilter, Metadata, NewEvent, RecordedEvent,
    StreamId, Version, async_trait,
};
use composable_rust_runtime::Subscription;
use composable_rust_sqlite::{SqlProjection, SqliteEventStore, Transactional, Writes};
use composable_rust_testing::subscription_suite::{self, DEADLINE};
use sqlx::Sqlite;

/// For each order event: appends an event to the stream `audit-<position>` and records the position.
struct Audit {
    store: SqliteEventStore,
}

#[async_trait]
impl SqlProjection<Sqlite> for Audit {
    async fn apply(&mut self, event: &RecordedEvent, writes: &mut Writes<Sqlite>) -> Result<(), BoxError> {
        let audit = StreamId::new(format!("audit-{}", event.position))?;
        // Derived from the order event's id, so a page applied again appends nothing twice.
        let noted = NewEvent::new("Audited.v1", CodecId::Json, b"{}".to_vec(), Metadata::default())
            .with_id(EventId::derived(event.id.as_uuid(), 0));
        self.store.append(&audit, ExpectedVersion::Any, vec![noted]).await?;
        writes
            .push(sqlx::query("INSERT INTO audited (position) VALUES ($1)").bind(i64::try_from(event.position.get())?));
        Ok(())
    }

    async fn reset(&mut self, writes: &mut Writes<Sqlite>) -> Result<(), BoxError> {
        writes.push(sqlx::query("CREATE TABLE IF NOT EXISTS audited (position INTEGER PRIMARY KEY)"));
        writes.push(sqlx::query("DELETE FROM audited"));
        Ok(())
    }
}

/// Runs the audit projection over five order events of `store` and checks what it wrote.
async fn a_handler_that_appends_to_its_own_store_finishes(store: SqliteEventStore) {
    let orders = subscription_suite::append(&store, "order-1", 5).await;
    let mut handler = Transactional::new(store.clone(), Audit { store: store.clone() });
    composable_rust_core::CheckpointedHandler::reset(&mut handler, "audit").await.unwrap();
    let mut subscription = Subscription::checkpointed(Arc::new(store.clone()), "audit", handler)
        .filter(LogFilter::all().category("order"));

    let run = tokio::time::timeout(DEADLINE, subscription.run_to_end())
        .await
        .expect("deadlock: the handler's append waited for the write connection its own page held")
        .unwrap();

    assert_eq!(run.handled, 5, "every order event is applied once");
    assert_eq!(run.checkpoint, orders.last().copied());
    for position in &orders {
        let audit = StreamId::new(format!("audit-{position}")).unwrap();
        assert_eq!(store.stream_version(&audit).await.unwrap(), Version::new(1), "{audit} holds its one event");
    }
    if let Some(path) = store.path() {
        // In memory the table is only reachable through the store's write connection; the checkpoint
        // and the audit streams above already tell there that each event was applied once.
        assert_eq!(audited(path).await, orders, "the read model holds each order event once");
    }
}

/// The read model, read through a connection of its own.
async fn audited(path: &std::path::Path) -> Vec<GlobalPosition> {
    let options = sqlx::sqlite::SqliteConnectOptions::new().filename(path).read_only(true);
    let pool = sqlx::SqlitePool::connect_with(options).await.unwrap();
    let rows: Vec<i64> =
        sqlx::query_scalar("SELECT position FROM audited ORDER BY position").fetch_all(&pool).await.unwrap();
    pool.close().await;
    rows.into_iter().map(|p| GlobalPosition::new(u64::try_from(p).unwrap())).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transactional_projection_whose_handler_appends_to_the_same_file_does_not_deadlock() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteEventStore::open(dir.path().join("events.db")).await.unwrap();
    a_handler_that_appends_to_its_own_store_finishes(store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transactional_projection_whose_handler_appends_to_the_same_in_memory_store_does_not_deadlock() {
    // In memory, reads share the write connection too: nothing may hold it while the handler runs.
    a_handler_that_appends_to_its_own_store_finishes(SqliteEventStore::in_memory().await.unwrap()).await;
}
