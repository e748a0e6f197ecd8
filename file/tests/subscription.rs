//! The subscription suite against `FileEventStore`, with an at-least-once handler whose read model is a
//! list of applied positions, plus what is particular to this backend: checkpoints survive a reopen.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "test code: a failed step fails the test")]

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use composable_rust_core::backend::{StoreLifecycle, SubscriptionStore};
use composable_rust_core::{BoxError, CheckpointedHandler, EventStore, GlobalPosition, RecordedEvent, async_trait};
use composable_rust_file::FileEventStore;
use composable_rust_runtime::{AtLeastOnce, EventHandler};
use composable_rust_testing::subscription_suite::{self, Backend, LEASE_TTL};

type Models = Arc<Mutex<HashMap<String, Vec<GlobalPosition>>>>;

#[derive(Debug)]
struct Files {
    store: FileEventStore,
    models: Models,
    _dir: Arc<tempfile::TempDir>,
}

impl Files {
    async fn open() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let store = FileEventStore::open(dir.path().join("events")).await.unwrap();
        Self { store, models: Models::default(), _dir: Arc::new(dir) }
    }
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
impl Backend for Files {
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

composable_rust_testing::subscription_suite!(Files::open().await);

#[tokio::test]
async fn the_file_store_signals_each_commit() {
    use futures::StreamExt;
    let files = Files::open().await;
    let mut commits = files.store.commit_notifications().expect("the file store notifies");
    subscription_suite::append(&files.store, "order-1", 2).await;
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
