//! The subscription suite against `FileEventStore`, with an at-least-once handler whose read model is a
//! list of applied positions, plus what is particular to this backend: checkpoints survive a reopen.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "test code: a failed step fails the test")]

use composable_rust_core::GlobalPosition;
use composable_rust_core::backend::{StoreLifecycle, SubscriptionStore};
use composable_rust_file::FileEventStore;
use composable_rust_testing::subscription_suite::{self, LEASE_TTL, RecordingBackend};

/// A store in a temporary directory of its own, removed when the backend is dropped.
async fn files() -> RecordingBackend {
    let dir = tempfile::tempdir().unwrap();
    let store = FileEventStore::open(dir.path().join("events")).await.unwrap();
    RecordingBackend::new(store).keeping(dir)
}

composable_rust_testing::subscription_suite!(files().await);

#[tokio::test]
async fn the_file_store_signals_each_commit() {
    use futures::StreamExt;
    let dir = tempfile::tempdir().unwrap();
    let store = FileEventStore::open(dir.path().join("events")).await.unwrap();
    let mut commits = store.commit_notifications().expect("the file store notifies");
    subscription_suite::append(&store, "order-1", 2).await;
    tokio::time::timeout(subscription_suite::DEADLINE, commits.next()).await.unwrap();
}

#[tokio::test]
async fn checkpoints_and_leases_survive_and_end_with_the_store() {
    let dir = tempfile::tempdir().unwrap();
    let store = FileEventStore::open(dir.path().join("events")).await.unwrap();
    store.save_checkpoint("summary", GlobalPosition::new(7)).await.unwrap();
    store.save_checkpoint("gone", GlobalPosition::new(3)).await.unwrap();
    assert!(store.delete_checkpoint("gone").await.unwrap());
    let lease = store.try_acquire_lease("summary", LEASE_TTL).await.unwrap();
    assert!(lease.is_some());
    assert!(store.clone().try_acquire_lease("summary", LEASE_TTL).await.unwrap().is_none(), "clones share leases");
    drop(lease);
    store.close().await.unwrap();
    drop(store);

    let reopened = FileEventStore::open(dir.path().join("events")).await.unwrap();
    assert_eq!(reopened.load_checkpoint("summary").await.unwrap(), Some(GlobalPosition::new(7)));
    assert_eq!(reopened.load_checkpoint("gone").await.unwrap(), None);
    assert!(reopened.try_acquire_lease("summary", LEASE_TTL).await.unwrap().is_some());
}
