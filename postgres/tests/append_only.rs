//! The events table itself refuses UPDATE, DELETE and TRUNCATE, whatever the client.
#![allow(clippy::unwrap_used)] // helpers outside #[test] fns fail the test the same way

mod common;

use composable_rust_core::backend::{EventLog, SubscriptionStore};
use composable_rust_core::{ExpectedVersion, StreamId};

#[tokio::test]
async fn update_delete_and_truncate_on_events_fail_and_change_nothing() {
    let (store, _db) = common::migrated_store().await;
    let stream = StreamId::new("order-1").unwrap();
    store.append(&stream, ExpectedVersion::NoStream, vec![common::event(0, 0), common::event(0, 1)]).await.unwrap();

    for statement in [
        "UPDATE events SET payload = '\\x00' WHERE stream_id = 'order-1'",
        "DELETE FROM events WHERE stream_id = 'order-1'",
        "TRUNCATE events",
    ] {
        let err = sqlx::query(statement).execute(store.pool()).await.unwrap_err();
        let message = err.to_string();
        assert!(message.contains("append-only"), "{statement}: {message}");
    }
    let loaded = store.load_stream(&stream, composable_rust_core::StreamRange::all()).await.unwrap();
    assert_eq!(loaded.len(), 2);
    assert_eq!(loaded[0].payload, common::event(0, 0).payload);
}

#[tokio::test]
async fn snapshots_and_checkpoints_stay_writable() {
    let (store, _db) = common::migrated_store().await;
    store.save_checkpoint("projection", composable_rust_core::GlobalPosition::new(5)).await.unwrap();
    store.save_checkpoint("projection", composable_rust_core::GlobalPosition::new(9)).await.unwrap();
    assert_eq!(store.load_checkpoint("projection").await.unwrap(), Some(composable_rust_core::GlobalPosition::new(9)));
}
