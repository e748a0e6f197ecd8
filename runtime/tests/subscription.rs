//! Subscription engine behaviour that needs no particular backend: reconnecting after backend errors,
//! stopping on errors that retrying cannot fix, and losing the lease.
#![allow(clippy::unwrap_used)]

use composable_rust_core::backend::SubscriptionStore;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use composable_rust_core::backend::{HandlerLease, LeaseGuard};
use composable_rust_core::{
    CodecId, EventStore, EventStoreError, ExpectedVersion, GlobalPosition, LogFilter, Metadata, NewEvent,
    RecordedEvent, SchemaError, StreamId, async_trait,
};
use composable_rust_runtime::{Backoff, Phase, Subscription, SubscriptionConfig, SubscriptionError, handler_fn};
use composable_rust_testing::subscription_suite::LEASE_TTL;
use composable_rust_testing::{InMemoryEventStore, Intercept, Intercepted};

const DEADLINE: Duration = Duration::from_secs(20);

/// Switches for an in-memory store whose global reads fail while `failures` is above zero, like a dropped
/// connection, and whose leases can be revoked.
#[derive(Debug, Default)]
struct Flaky {
    failures: AtomicU32,
    schema_broken: AtomicBool,
    lease_lost: Arc<AtomicBool>,
    leases_taken: AtomicU32,
    renewals: Arc<AtomicU32>,
}

fn flaky() -> Intercepted<Flaky> {
    Intercepted::new(Arc::new(InMemoryEventStore::new()), Flaky::default())
}

/// A lease that counts its renewals and is lost once when `lost` is set.
#[derive(Debug)]
struct Revocable {
    lost: Arc<AtomicBool>,
    renewals: Arc<AtomicU32>,
}

#[async_trait]
impl LeaseGuard for Revocable {
    async fn confirm(&mut self) -> Result<(), EventStoreError> {
        self.renewals.fetch_add(1, Ordering::SeqCst);
        if self.lost.swap(false, Ordering::SeqCst) {
            return Err(EventStoreError::backend("confirm the lease", "the lock's connection was closed"));
        }
        Ok(())
    }
}

#[async_trait]
impl Intercept for Flaky {
    async fn read_all(
        &self,
        inner: &dyn EventStore,
        after: GlobalPosition,
        filter: &LogFilter,
        limit: usize,
    ) -> Result<Vec<RecordedEvent>, EventStoreError> {
        if self.schema_broken.load(Ordering::SeqCst) {
            return Err(SchemaError::Missing { location: "the test store".into(), fix: "apply the schema" }.into());
        }
        if self.failures.load(Ordering::SeqCst) > 0 {
            self.failures.fetch_sub(1, Ordering::SeqCst);
            return Err(EventStoreError::backend("read the global log", "connection reset by peer"));
        }
        inner.read_all(after, filter, limit).await
    }

    async fn try_acquire_lease(
        &self,
        _inner: &dyn EventStore,
        handler: &str,
        _ttl: Duration,
    ) -> Result<Option<HandlerLease>, EventStoreError> {
        self.leases_taken.fetch_add(1, Ordering::SeqCst);
        let lease = Revocable { lost: Arc::clone(&self.lease_lost), renewals: Arc::clone(&self.renewals) };
        Ok(Some(HandlerLease::new(handler, lease)))
    }
}

fn config() -> SubscriptionConfig {
    let mut config = SubscriptionConfig::default();
    config.poll_interval = Duration::from_millis(10);
    config.lease_check_interval = Duration::from_millis(5);
    config.backoff = Backoff { initial: Duration::from_millis(1), max: Duration::from_millis(20) };
    config
}

async fn append(store: &dyn EventStore, stream: &str, count: usize) -> GlobalPosition {
    let event = NewEvent {
        id: composable_rust_core::EventId::generate(),
        event_type: "Happened.v1".into(),
        codec: CodecId::Json,
        payload: b"{}".to_vec(),
        metadata: Metadata::default(),
        tags: Vec::new(),
    };
    let written = store
        .append(
            &StreamId::new(stream).unwrap(),
            ExpectedVersion::Any,
            (0..count).map(|_| event.clone().with_id(composable_rust_core::EventId::generate())).collect(),
        )
        .await
        .unwrap();
    *written.positions.last().unwrap()
}

fn recorder() -> (Arc<Mutex<Vec<GlobalPosition>>>, impl composable_rust_runtime::EventHandler) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&seen);
    (
        seen,
        handler_fn(move |event| {
            sink.lock().unwrap().push(event.position);
            Ok(())
        }),
    )
}

#[tokio::test]
async fn backend_errors_are_retried_with_backoff_and_resume_from_the_checkpoint() {
    let store = Arc::new(flaky());
    let first = append(&*store, "order-1", 5).await;
    let (seen, handler) = recorder();
    let handle = Subscription::new(store.clone(), "retrying", handler).config(config()).spawn();
    tokio::time::timeout(DEADLINE, handle.wait_until(first)).await.unwrap().unwrap();

    store.failures.store(4, Ordering::SeqCst);
    let last = append(&*store, "order-2", 5).await;
    tokio::time::timeout(DEADLINE, handle.wait_until(last)).await.unwrap().unwrap();
    assert_eq!(store.failures.load(Ordering::SeqCst), 0, "the failing reads were retried");
    assert!(store.leases_taken.load(Ordering::SeqCst) >= 2, "each retry starts a new session with a new lease");
    handle.stop().await.unwrap();
    let expected: Vec<_> = (1..=10).map(GlobalPosition::new).collect();
    assert_eq!(*seen.lock().unwrap(), expected, "nothing was skipped or repeated across the reconnects");
}

#[tokio::test]
async fn a_failing_store_is_reported_as_retrying() {
    let store = Arc::new(flaky());
    store.failures.store(u32::MAX, Ordering::SeqCst);
    let (_, handler) = recorder();
    let handle = Subscription::new(store.clone(), "down", handler).config(config()).spawn();
    tokio::time::timeout(DEADLINE, handle.wait_for(|p| p.phase == Phase::Retrying)).await.unwrap().unwrap();
    store.failures.store(0, Ordering::SeqCst);
    tokio::time::timeout(DEADLINE, handle.wait_for(|p| p.phase == Phase::Live)).await.unwrap().unwrap();
    handle.stop().await.unwrap();
}

#[tokio::test]
async fn an_error_that_retrying_cannot_fix_stops_the_subscription() {
    let store = Arc::new(flaky());
    store.schema_broken.store(true, Ordering::SeqCst);
    let (_, handler) = recorder();
    let handle = Subscription::new(store, "broken", handler).config(config()).spawn();
    let error = tokio::time::timeout(DEADLINE, handle.join()).await.unwrap().unwrap_err();
    assert!(matches!(&error, SubscriptionError::Store { source: EventStoreError::Schema(_), .. }), "{error}");
    assert!(error.to_string().contains("broken"), "{error}");
}

#[tokio::test]
async fn a_lost_lease_ends_the_session_and_a_new_one_continues_without_duplicates() {
    let store = Arc::new(flaky());
    append(&*store, "order-1", 3).await;
    let (seen, handler) = recorder();
    let handle = Subscription::new(store.clone(), "lease", handler).config(config()).spawn();
    tokio::time::timeout(DEADLINE, handle.wait_until(GlobalPosition::new(3))).await.unwrap().unwrap();
    let sessions = store.leases_taken.load(Ordering::SeqCst);
    store.lease_lost.store(true, Ordering::SeqCst);
    tokio::time::timeout(DEADLINE, async {
        while store.leases_taken.load(Ordering::SeqCst) <= sessions {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await
    .expect("the lost lease was not taken again by a new session");
    let last = append(&*store, "order-1", 3).await;
    tokio::time::timeout(DEADLINE, handle.wait_until(last)).await.unwrap().unwrap();
    handle.stop().await.unwrap();
    assert_eq!(*seen.lock().unwrap(), (1..=6).map(GlobalPosition::new).collect::<Vec<_>>());
}

/// Sends on its channel when dropped: tells the test that a handler's page was stopped where it stood.
struct SignalOnDrop(Option<tokio::sync::oneshot::Sender<()>>);

impl Drop for SignalOnDrop {
    fn drop(&mut self) {
        if let Some(signal) = self.0.take() {
            let _ = signal.send(());
        }
    }
}

/// A read model whose first event never finishes (a page slower than any lease); it records the others.
struct StuckOnFirstEvent {
    entered: Option<tokio::sync::oneshot::Sender<()>>,
    stopped: Option<tokio::sync::oneshot::Sender<()>>,
    seen: Arc<Mutex<Vec<GlobalPosition>>>,
}

#[async_trait]
impl composable_rust_runtime::EventHandler for StuckOnFirstEvent {
    async fn handle(&mut self, event: &RecordedEvent) -> Result<(), composable_rust_core::BoxError> {
        if let Some(entered) = self.entered.take() {
            let _stopped = SignalOnDrop(self.stopped.take());
            let _ = entered.send(());
            std::future::pending::<()>().await;
        }
        self.seen.lock().unwrap().push(event.position);
        Ok(())
    }
}

/// While a page runs, the lease is renewed (not only between pages); a renewal that finds the lease lost
/// stops the page where it stands, and a new session handles the page again.
#[tokio::test]
async fn the_lease_is_renewed_during_a_page_and_losing_it_stops_the_page() {
    let store = Arc::new(flaky());
    let last = append(&*store, "order-1", 3).await;
    let (entered, entered_rx) = tokio::sync::oneshot::channel();
    let (stopped, stopped_rx) = tokio::sync::oneshot::channel();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let handler = StuckOnFirstEvent { entered: Some(entered), stopped: Some(stopped), seen: Arc::clone(&seen) };
    let handle = Subscription::new(store.clone(), "slow", handler).config(config()).spawn();
    tokio::time::timeout(DEADLINE, entered_rx).await.unwrap().unwrap();

    let before = store.renewals.load(Ordering::SeqCst);
    tokio::time::timeout(DEADLINE, async {
        while store.renewals.load(Ordering::SeqCst) < before + 3 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await
    .expect("the lease was not renewed while the page ran");
    assert!(seen.lock().unwrap().is_empty(), "the stuck page was meant to be still running");

    let sessions = store.leases_taken.load(Ordering::SeqCst);
    store.lease_lost.store(true, Ordering::SeqCst);
    tokio::time::timeout(DEADLINE, stopped_rx).await.expect("losing the lease did not stop the page").unwrap();
    tokio::time::timeout(DEADLINE, handle.wait_until(last)).await.unwrap().unwrap();
    assert!(store.leases_taken.load(Ordering::SeqCst) > sessions, "a new session took the lease again");
    handle.stop().await.unwrap();
    assert_eq!(*seen.lock().unwrap(), (1..=3).map(GlobalPosition::new).collect::<Vec<_>>());
}

#[tokio::test]
async fn dropping_the_handle_stops_the_subscription_and_releases_the_lease() {
    let store = Arc::new(InMemoryEventStore::new());
    let (_, handler) = recorder();
    let handle = Subscription::new(store.clone(), "dropped", handler).config(config()).spawn();
    tokio::time::timeout(DEADLINE, handle.wait_for(|p| p.phase == Phase::Live)).await.unwrap().unwrap();
    drop(handle);
    let lease = tokio::time::timeout(DEADLINE, async {
        loop {
            if let Some(lease) = store.try_acquire_lease("dropped", LEASE_TTL).await.unwrap() {
                return lease;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await
    .unwrap();
    assert_eq!(lease.handler(), "dropped");
}

#[tokio::test]
async fn an_invalid_handler_name_is_refused() {
    let store = Arc::new(InMemoryEventStore::new());
    let (_, handler) = recorder();
    let mut subscription = Subscription::new(store, "", handler);
    let error = subscription.run_to_end().await.unwrap_err();
    assert!(matches!(error, SubscriptionError::Store { source: EventStoreError::InvalidInput(_), .. }), "{error}");
}
