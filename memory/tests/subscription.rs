//! The subscription suite against [`InMemoryEventStore`], with an at-least-once handler whose read model
//! is a list of applied positions, plus in-memory specifics.

#![allow(clippy::unwrap_used)]

use composable_rust_core::backend::SubscriptionStore;
use composable_rust_memory::InMemoryEventStore;
use composable_rust_testing::subscription_suite::{self, LEASE_TTL, RecordingBackend};

composable_rust_testing::subscription_suite!(RecordingBackend::new(InMemoryEventStore::new()));

#[tokio::test]
async fn leases_belong_to_one_in_memory_store() {
    let first = InMemoryEventStore::new();
    let second = InMemoryEventStore::new();
    let held = first.try_acquire_lease("summary", LEASE_TTL).await.unwrap();
    assert!(held.is_some());
    assert!(first.clone().try_acquire_lease("summary", LEASE_TTL).await.unwrap().is_none(), "clones share the leases");
    assert!(second.try_acquire_lease("summary", LEASE_TTL).await.unwrap().is_some(), "another store is independent");
    drop(held);
    assert!(first.try_acquire_lease("summary", LEASE_TTL).await.unwrap().is_some());
}

#[tokio::test]
async fn the_in_memory_store_signals_each_commit() {
    use futures::StreamExt;
    let store = InMemoryEventStore::new();
    let mut commits = store.commit_notifications().expect("the in-memory store notifies");
    subscription_suite::append(&store, "order-1", 2).await;
    tokio::time::timeout(subscription_suite::DEADLINE, commits.next()).await.unwrap();
}
