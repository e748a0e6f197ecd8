//! The subscription suite against [`InMemoryEventStore`], with an at-least-once handler whose read model
//! is a list of applied positions, plus in-memory specifics.

#![allow(clippy::unwrap_used)]

use composable_rust_core::backend::SubscriptionStore;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use composable_rust_core::{BoxError, CheckpointedHandler, EventStore, GlobalPosition, RecordedEvent, async_trait};
use composable_rust_runtime::{AtLeastOnce, EventHandler};
use composable_rust_testing::InMemoryEventStore;

use composable_rust_testing::subscription_suite::{self, Backend};

type Models = Arc<Mutex<HashMap<String, Vec<GlobalPosition>>>>;

#[derive(Debug, Default)]
struct InMemory {
    store: InMemoryEventStore,
    models: Models,
}

#[derive(Debug)]
struct Recorder {
    name: String,
    models: Models,
    fail_on: Option<GlobalPosition>,
}

#[async_trait]
impl EventHandler for Recorder {
    async fn handle(&mut self, event: &RecordedEvent) -> Result<(), BoxError> {
        if Some(event.position) == self.fail_on {
            return Err(format!("refusing {}", event.describe()).into());
        }
        self.models.lock().unwrap().entry(self.name.clone()).or_default().push(event.position);
        Ok(())
    }

    async fn reset(&mut self) -> Result<(), BoxError> {
        self.models.lock().unwrap().remove(&self.name);
        Ok(())
    }
}

#[async_trait]
impl Backend for InMemory {
    fn store(&self) -> Arc<dyn EventStore> {
        Arc::new(self.store.clone())
    }

    async fn handler(&self, name: &str, fail_on: Option<GlobalPosition>) -> Box<dyn CheckpointedHandler> {
        let recorder = Recorder { name: name.to_owned(), models: Arc::clone(&self.models), fail_on };
        Box::new(AtLeastOnce::new(self.store(), recorder))
    }

    async fn recorded(&self, name: &str) -> Vec<GlobalPosition> {
        self.models.lock().unwrap().get(name).cloned().unwrap_or_default()
    }

    fn exactly_once(&self) -> bool {
        false
    }
}

composable_rust_testing::subscription_suite!(InMemory::default());

#[tokio::test]
async fn leases_belong_to_one_in_memory_store() {
    let first = InMemoryEventStore::new();
    let second = InMemoryEventStore::new();
    let held = first.try_acquire_lease("summary").await.unwrap();
    assert!(held.is_some());
    assert!(first.clone().try_acquire_lease("summary").await.unwrap().is_none(), "clones share the leases");
    assert!(second.try_acquire_lease("summary").await.unwrap().is_some(), "another store is independent");
    drop(held);
    assert!(first.try_acquire_lease("summary").await.unwrap().is_some());
}

#[tokio::test]
async fn the_in_memory_store_signals_each_commit() {
    use futures::StreamExt;
    let store = InMemoryEventStore::new();
    let mut commits = store.commit_notifications().expect("the in-memory store notifies");
    subscription_suite::append(&store, "order-1", 2).await;
    tokio::time::timeout(subscription_suite::DEADLINE, commits.next()).await.unwrap();
}
