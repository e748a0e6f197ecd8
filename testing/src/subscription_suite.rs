//! The subscription suite: the scenarios every backend's subscriptions must pass (see docs/projections.md).
//!
//! A backend supplies a [`Backend`]: a store, and a handler that records the positions it applied in a read
//! model the test can inspect (at-least-once for the in-memory store, the transactional handler for the
//! SQL backends). [`subscription_suite!`](crate::subscription_suite!) declares one test per scenario. Every
//! scenario uses its own stream category and handler names, so the suite can run against a shared database
//! while other tests write to it.
//!
//! ```ignore
//! composable_rust_testing::subscription_suite!(MyBackend::new().await);
//! ```
// A test suite reports failures by panicking.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::any::Any;
use std::collections::{BTreeSet, HashMap};
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use composable_rust_core::{
    ApplyError, BoxError, CheckpointedHandler, CodecId, EventStore, EventStoreError, ExpectedVersion, GlobalPosition,
    LogFilter, Metadata, NewEvent, RecordedEvent, StreamId, async_trait,
};
use composable_rust_runtime::{
    AtLeastOnce, Backoff, EventHandler, Phase, Subscription, SubscriptionConfig, SubscriptionError, SubscriptionHandle,
    WhenLocked,
};

/// How long any wait in the suite may take before the test fails.
pub const DEADLINE: Duration = Duration::from_secs(30);

/// A lease lifetime for tests that take leases by hand (`EventStore::try_acquire_lease`): far longer than
/// any test, so that a lease only ends when its test ends it.
pub const LEASE_TTL: Duration = Duration::from_secs(30);

/// A backend under test.
#[async_trait]
pub trait Backend: Send + Sync {
    /// The store (shared by every handler of a scenario).
    fn store(&self) -> Arc<dyn EventStore>;

    /// A handler named `name` that records each applied event's position; it fails with an error on the
    /// event at `fail_on`, if given.
    async fn handler(&self, name: &str, fail_on: Option<GlobalPosition>) -> Box<dyn CheckpointedHandler>;

    /// The positions the handler `name` has applied, in the order applied, duplicates included.
    async fn recorded(&self, name: &str) -> Vec<GlobalPosition>;

    /// Whether the handler writes its read model and checkpoint in one transaction.
    fn exactly_once(&self) -> bool;
}

/// A [`Backend`] for a store without transactional read models: each handler is [`AtLeastOnce`] and records
/// the positions it applied in memory. The in-memory and file backends run the suite through it; the SQL
/// backends supply their own, whose handlers write the read model and the checkpoint in one transaction.
///
/// ```ignore
/// composable_rust_testing::subscription_suite!(RecordingBackend::new(InMemoryEventStore::new()));
/// ```
pub struct RecordingBackend {
    store: Arc<dyn EventStore>,
    models: Arc<Mutex<HashMap<String, Vec<GlobalPosition>>>>,
    /// Whatever must live as long as the store (a temporary directory).
    _keep: Option<Box<dyn Any + Send + Sync>>,
}

impl RecordingBackend {
    /// A backend over `store`.
    pub fn new(store: impl EventStore + 'static) -> Self {
        Self { store: Arc::new(store), models: Arc::default(), _keep: None }
    }

    /// Keeps `resource` (a temporary directory holding the store's files) alive as long as the backend.
    #[must_use]
    pub fn keeping(mut self, resource: impl Any + Send + Sync) -> Self {
        self._keep = Some(Box::new(resource));
        self
    }
}

impl fmt::Debug for RecordingBackend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RecordingBackend").field("store", &self.store).finish_non_exhaustive()
    }
}

#[async_trait]
impl Backend for RecordingBackend {
    fn store(&self) -> Arc<dyn EventStore> {
        Arc::clone(&self.store)
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

/// The handler of [`RecordingBackend`]: appends each applied position to its list, and fails at `fail_on`.
#[derive(Debug)]
struct Recorder {
    name: String,
    models: Arc<Mutex<HashMap<String, Vec<GlobalPosition>>>>,
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

/// A category and handler-name prefix unique to this process and call.
pub fn unique(label: &str) -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.subsec_nanos());
    format!("{label}{}x{}x{}", std::process::id(), nanos, NEXT.fetch_add(1, Ordering::Relaxed))
}

/// The suite's subscription settings: short intervals, small pages, only `category`.
pub fn config(category: &str) -> SubscriptionConfig {
    let mut config = SubscriptionConfig::default();
    config.filter = LogFilter::all().category(category);
    config.page_size = 7;
    config.poll_interval = Duration::from_millis(20);
    config.lease_retry = Duration::from_millis(20);
    config.lease_check_interval = Duration::from_millis(50);
    config.backoff = Backoff { initial: Duration::from_millis(10), max: Duration::from_millis(100) };
    config
}

/// An event of type `event_type` with an empty JSON payload.
pub fn event(event_type: &str) -> NewEvent {
    NewEvent {
        id: composable_rust_core::EventId::generate(),
        event_type: event_type.into(),
        codec: CodecId::Json,
        payload: b"{}".to_vec(),
        metadata: Metadata::default(),
        tags: Vec::new(),
    }
}

/// Appends `count` events to `stream`; returns their positions.
pub async fn append(store: &dyn EventStore, stream: &str, count: usize) -> Vec<GlobalPosition> {
    let stream = StreamId::new(stream).unwrap();
    let events = (0..count).map(|_| event("Happened.v1")).collect();
    store.append(&stream, ExpectedVersion::Any, events).await.unwrap().positions
}

/// Every position in the category, read from the store.
pub async fn positions_in(store: &dyn EventStore, category: &str) -> Vec<GlobalPosition> {
    let filter = LogFilter::all().category(category);
    let mut out = Vec::new();
    let mut after = GlobalPosition::START;
    loop {
        let page = store.read_all(after, &filter, 1000).await.unwrap();
        let Some(last) = page.last() else { return out };
        after = last.position;
        out.extend(page.iter().map(|e| e.position));
    }
}

/// Spawns the handler `name` of `backend`, following `category`.
pub async fn start(backend: &dyn Backend, name: &str, category: &str) -> SubscriptionHandle {
    let handler = backend.handler(name, None).await;
    Subscription::checkpointed(backend.store(), name, handler).config(config(category)).spawn()
}

/// Waits (at most [`DEADLINE`]) until the handle's checkpoint reaches `position`.
pub async fn wait_until(handle: &SubscriptionHandle, position: GlobalPosition) {
    tokio::time::timeout(DEADLINE, handle.wait_until(position))
        .await
        .unwrap_or_else(|_| panic!("{} did not reach {position} in time: {:?}", handle.handler(), handle.progress()))
        .unwrap_or_else(|e| panic!("{e}"));
}

#[track_caller]
fn assert_exactly_once(recorded: &[GlobalPosition], expected: &[GlobalPosition]) {
    let unique: BTreeSet<_> = recorded.iter().collect();
    assert_eq!(unique.len(), recorded.len(), "an event was applied twice: {recorded:?}");
    assert!(recorded.windows(2).all(|w| w[0] < w[1]), "events were applied out of order: {recorded:?}");
    assert_eq!(recorded, expected, "the read model does not hold every event of the log exactly once");
}

/// Events there before the subscription starts come by catch-up, later ones live; each once, in order.
pub async fn catch_up_then_live_delivers_every_event_once_in_order(backend: &dyn Backend) {
    let store = backend.store();
    let category = unique("live");
    let name = unique("h");
    append(&*store, &format!("{category}-1"), 20).await;
    append(&*store, "elsewhere-1", 3).await;
    let handle = start(backend, &name, &category).await;
    let before = positions_in(&*store, &category).await;
    wait_until(&handle, *before.last().unwrap()).await;
    for i in 0..10 {
        append(&*store, &format!("{category}-{i}"), 2).await;
    }
    let all = positions_in(&*store, &category).await;
    wait_until(&handle, *all.last().unwrap()).await;
    tokio::time::timeout(DEADLINE, handle.wait_for(|p| p.phase == Phase::Live)).await.unwrap().unwrap();
    let report = handle.stop().await.unwrap();
    assert_eq!(report.handled, all.len() as u64);
    assert_exactly_once(&backend.recorded(&name).await, &all);
}

/// Many writers append at once while the subscription follows: it applies every event exactly once,
/// and a rebuild from scratch produces the same read model.
pub async fn concurrent_writers_deliver_every_event_exactly_once_and_match_a_rebuild(backend: &dyn Backend) {
    let store = backend.store();
    let category = unique("conc");
    let name = unique("h");
    let handle = start(backend, &name, &category).await;
    let writers: Vec<_> = (0..8)
        .map(|w| {
            let store = Arc::clone(&store);
            let category = category.clone();
            tokio::spawn(async move {
                for i in 0..40 {
                    append(&*store, &format!("{category}-{w}"), 1 + (i % 3)).await;
                    if i % 10 == 0 {
                        tokio::task::yield_now().await;
                    }
                }
            })
        })
        .collect();
    for writer in writers {
        writer.await.unwrap();
    }
    let all = positions_in(&*store, &category).await;
    assert_eq!(all.len(), 8 * (14 + 13 * 2 + 13 * 3));
    wait_until(&handle, *all.last().unwrap()).await;
    handle.stop().await.unwrap();
    assert_exactly_once(&backend.recorded(&name).await, &all);

    let rebuilt = unique("rebuild");
    let handler = backend.handler(&rebuilt, None).await;
    let mut subscription = Subscription::checkpointed(Arc::clone(&store), &rebuilt, handler).config(config(&category));
    let report = tokio::time::timeout(DEADLINE, subscription.run_to_end()).await.unwrap().unwrap();
    assert_eq!(report.checkpoint, all.last().copied());
    assert_eq!(backend.recorded(&rebuilt).await, backend.recorded(&name).await);
}

/// Stopping a subscription and starting a new instance resumes from the checkpoint: the new instance
/// gets the events appended in between, and nothing twice.
pub async fn restart_in_the_middle_resumes_from_the_checkpoint(backend: &dyn Backend) {
    let store = backend.store();
    let category = unique("restart");
    let name = unique("h");
    for i in 0..5 {
        append(&*store, &format!("{category}-{i}"), 10).await;
    }
    let first_half = positions_in(&*store, &category).await;
    let first = start(backend, &name, &category).await;
    wait_until(&first, *first_half.last().unwrap()).await;
    let stopped = first.stop().await.unwrap();
    assert_eq!(stopped.handled, 50);

    for i in 0..5 {
        append(&*store, &format!("{category}-{i}"), 10).await;
    }
    let all = positions_in(&*store, &category).await;
    let second = start(backend, &name, &category).await;
    wait_until(&second, *all.last().unwrap()).await;
    let resumed = second.stop().await.unwrap();
    assert_eq!(resumed.handled, 50, "the second run repeated or skipped events");
    assert_exactly_once(&backend.recorded(&name).await, &all);
}

/// A crash (the task aborted at any await point, even inside a page) and a restart still apply every
/// event exactly once, when the handler commits its read model with its checkpoint.
pub async fn a_crash_in_the_middle_of_a_page_applies_nothing_twice(backend: &dyn Backend) {
    assert!(backend.exactly_once());
    let store = backend.store();
    let category = unique("crash");
    let name = unique("h");
    for i in 0..20 {
        append(&*store, &format!("{category}-{i}"), 10).await;
    }
    let all = positions_in(&*store, &category).await;
    for _ in 0..5 {
        let handle = start(backend, &name, &category).await;
        let _ = tokio::time::timeout(DEADLINE, handle.wait_for(|p| p.handled >= 1)).await;
        // Abort wherever the task is: between pages, in the read, or inside the transaction.
        tokio::task::yield_now().await;
        handle.abort();
    }
    let last = start(backend, &name, &category).await;
    wait_until(&last, *all.last().unwrap()).await;
    last.stop().await.unwrap();
    assert_exactly_once(&backend.recorded(&name).await, &all);
}

/// While one instance runs, a second one of the same name waits and processes nothing; it takes over
/// from the checkpoint when the first stops. With `WhenLocked::Fail` it reports the conflict.
pub async fn a_second_instance_waits_and_takes_over(backend: &dyn Backend) {
    let store = backend.store();
    let category = unique("pair");
    let name = unique("h");
    append(&*store, &format!("{category}-1"), 30).await;
    let first = start(backend, &name, &category).await;
    let all = positions_in(&*store, &category).await;
    wait_until(&first, *all.last().unwrap()).await;

    let second = start(backend, &name, &category).await;
    tokio::time::timeout(DEADLINE, second.wait_for(|p| p.phase == Phase::WaitingForLease)).await.unwrap().unwrap();
    append(&*store, &format!("{category}-2"), 10).await;
    let all = positions_in(&*store, &category).await;
    wait_until(&first, *all.last().unwrap()).await;
    assert_eq!(second.progress().handled, 0, "the standby handled events while the first instance ran");

    let refused = backend.handler(&name, None).await;
    let refused = Subscription::checkpointed(Arc::clone(&store), &name, refused)
        .config({
            let mut config = config(&category);
            config.when_locked = WhenLocked::Fail;
            config
        })
        .spawn();
    let error = tokio::time::timeout(DEADLINE, refused.join()).await.unwrap().unwrap_err();
    assert!(matches!(error, SubscriptionError::AlreadyRunning { .. }), "{error}");
    assert!(error.to_string().contains(&name), "{error}");

    let first = first.stop().await.unwrap();
    append(&*store, &format!("{category}-3"), 10).await;
    let all = positions_in(&*store, &category).await;
    wait_until(&second, *all.last().unwrap()).await;
    let second = second.stop().await.unwrap();
    assert_eq!(first.handled, 40);
    assert_eq!(second.handled, 10, "the standby resumed from the first instance's checkpoint");
    assert_exactly_once(&backend.recorded(&name).await, &all);
}

/// A handler error stops the subscription with the failing event named, the checkpoint stays before it,
/// and a fixed handler resumes at that event.
pub async fn a_failing_handler_stops_at_the_event_and_resumes_there(backend: &dyn Backend) {
    let store = backend.store();
    let category = unique("fail");
    let name = unique("h");
    append(&*store, &format!("{category}-a"), 5).await;
    append(&*store, &format!("{category}-b"), 5).await;
    let all = positions_in(&*store, &category).await;
    let failing = all[7]; // stream b, version 3
    let handler = backend.handler(&name, Some(failing)).await;
    let handle = Subscription::checkpointed(Arc::clone(&store), &name, handler).config(config(&category)).spawn();
    let error = tokio::time::timeout(DEADLINE, handle.join()).await.unwrap().unwrap_err();
    match &error {
        SubscriptionError::HandlerFailed { stream_id, version, position, handler, .. } => {
            assert_eq!(stream_id.as_str(), format!("{category}-b"));
            assert_eq!(version.get(), 3);
            assert_eq!(*position, failing);
            assert_eq!(handler, &name);
        }
        other => panic!("expected HandlerFailed, got {other}"),
    }
    let message = error.to_string();
    assert!(message.contains(&format!("{category}-b")) && message.contains("version 3"), "{message}");
    let mut probe = backend.handler(&name, None).await;
    let checkpoint = probe.load_checkpoint(&name).await.unwrap().unwrap_or(GlobalPosition::START);
    assert!(checkpoint < failing, "the checkpoint moved past the failing event");
    assert!(!backend.recorded(&name).await.contains(&failing));

    let fixed = start(backend, &name, &category).await;
    wait_until(&fixed, *all.last().unwrap()).await;
    fixed.stop().await.unwrap();
    assert_exactly_once(&backend.recorded(&name).await, &all);
}

/// Resetting clears the read model and the checkpoint; the next run rebuilds the same read model.
pub async fn reset_rebuilds_the_read_model_from_the_start(backend: &dyn Backend) {
    let store = backend.store();
    let category = unique("reset");
    let name = unique("h");
    append(&*store, &format!("{category}-1"), 12).await;
    let all = positions_in(&*store, &category).await;
    let handler = backend.handler(&name, None).await;
    let mut subscription = Subscription::checkpointed(Arc::clone(&store), &name, handler).config(config(&category));
    assert_eq!(subscription.run_to_end().await.unwrap().handled, 12);
    let before = backend.recorded(&name).await;
    subscription.reset().await.unwrap();
    assert!(backend.recorded(&name).await.is_empty(), "reset left the read model");
    let mut probe = backend.handler(&name, None).await;
    assert!(probe.load_checkpoint(&name).await.unwrap().unwrap_or(GlobalPosition::START) < all[0]);
    assert_eq!(subscription.run_to_end().await.unwrap().handled, 12);
    assert_eq!(backend.recorded(&name).await, before);

    let rebuilt = backend.handler(&name, None).await;
    let mut again = Subscription::checkpointed(Arc::clone(&store), &name, rebuilt).config(config(&category)).rebuild();
    assert_eq!(again.run_to_end().await.unwrap().handled, 12);
    assert_exactly_once(&backend.recorded(&name).await, &all);
}

/// Only the events that match the filter reach the handler.
pub async fn the_filter_selects_event_types_and_categories(backend: &dyn Backend) {
    let store = backend.store();
    let category = unique("filter");
    let name = unique("h");
    let stream = StreamId::new(format!("{category}-1")).unwrap();
    let written = store
        .append(&stream, ExpectedVersion::Any, vec![event("Kept.v1"), event("Dropped.v1"), event("Kept.v1")])
        .await
        .unwrap();
    append(&*store, &format!("other{category}-1"), 2).await;
    let handler = backend.handler(&name, None).await;
    let filter = LogFilter::all().category(&category).event_types(["Kept.v1"]);
    let mut subscription =
        Subscription::checkpointed(Arc::clone(&store), &name, handler).config(config(&category)).filter(filter);
    subscription.run_to_end().await.unwrap();
    assert_eq!(backend.recorded(&name).await, vec![written.positions[0], written.positions[2]]);
}

/// With commit notifications, a live subscription handles a new event without waiting for its poll.
pub async fn commit_notifications_wake_a_live_subscription(backend: &dyn Backend) {
    let store = backend.store();
    if store.commit_notifications().is_none() {
        return;
    }
    let category = unique("wake");
    let name = unique("h");
    let handler = backend.handler(&name, None).await;
    let handle = Subscription::checkpointed(Arc::clone(&store), &name, handler)
        .config({
            let mut config = config(&category);
            config.poll_interval = Duration::from_secs(3600);
            config
        })
        .spawn();
    tokio::time::timeout(DEADLINE, handle.wait_for(|p| p.phase == Phase::Live)).await.unwrap().unwrap();
    for i in 0..5 {
        let positions = append(&*store, &format!("{category}-{i}"), 1).await;
        wait_until(&handle, positions[0]).await;
    }
    handle.stop().await.unwrap();
    assert_eq!(backend.recorded(&name).await.len(), 5);
}

/// Wraps a handler so that its first page waits, before applying anything, until `go` is sent (or
/// forever, if it never is): a page as slow as the test wants.
struct SlowFirstPage {
    inner: Box<dyn CheckpointedHandler>,
    entered: Option<tokio::sync::oneshot::Sender<()>>,
    go: Option<tokio::sync::oneshot::Receiver<()>>,
}

#[async_trait]
impl CheckpointedHandler for SlowFirstPage {
    async fn load_checkpoint(&mut self, handler: &str) -> Result<Option<GlobalPosition>, EventStoreError> {
        self.inner.load_checkpoint(handler).await
    }

    async fn apply(&mut self, handler: &str, events: &[RecordedEvent]) -> Result<(), ApplyError> {
        if let (Some(entered), Some(go)) = (self.entered.take(), self.go.take()) {
            let _ = entered.send(());
            if go.await.is_err() {
                std::future::pending::<()>().await; // the test dropped the sender: never finish
            }
        }
        self.inner.apply(handler, events).await
    }

    async fn reset(&mut self, handler: &str) -> Result<(), ApplyError> {
        self.inner.reset(handler).await
    }
}

/// A page slower than the lease's lifetime: while the first instance is alive, stuck in that page for
/// several lifetimes, its renewals keep the lease and the standby handles nothing; the first finishes
/// its page and the log. When it then dies (its task aborted, nothing stopped cleanly), the standby takes
/// over and handles the rest, every event once.
pub async fn a_page_slower_than_the_lease_keeps_it_until_its_instance_dies(backend: &dyn Backend) {
    a_page_slower_than_the_lease_keeps_it_until_its_instance_dies_on(backend, backend.store()).await;
}

/// [`a_page_slower_than_the_lease_keeps_it_until_its_instance_dies`] with the first instance on
/// `first_store` (the backend's store, or a wrapper that makes its death leave its lease behind, as a
/// crashed process leaves an SQLite lease row to expire).
pub async fn a_page_slower_than_the_lease_keeps_it_until_its_instance_dies_on(
    backend: &dyn Backend,
    first_store: Arc<dyn EventStore>,
) {
    let store = backend.store();
    let category = unique("slow");
    let name = unique("h");
    append(&*store, &format!("{category}-1"), 14).await; // two pages of 7
    let before = positions_in(&*store, &category).await;
    let mut config = config(&category);
    // A lease of 750 ms: long enough that a loaded test machine does not starve a renewal past it (which
    // would rightly stop the first instance), short enough that the test waits four lifetimes in 3 s.
    config.lease_check_interval = Duration::from_millis(250);
    let lease = config.lease_ttl();

    let (entered, entered_rx) = tokio::sync::oneshot::channel();
    let (go, go_rx) = tokio::sync::oneshot::channel();
    let slow = SlowFirstPage { inner: backend.handler(&name, None).await, entered: Some(entered), go: Some(go_rx) };
    let first = Subscription::checkpointed(first_store, &name, slow).config(config.clone()).spawn();
    tokio::time::timeout(DEADLINE, entered_rx)
        .await
        .unwrap_or_else(|_| panic!("the first instance did not start its first page: {:?}", first.progress()))
        .unwrap();
    let standby = backend.handler(&name, None).await;
    let second = Subscription::checkpointed(Arc::clone(&store), &name, standby).config(config).spawn();
    tokio::time::timeout(DEADLINE, second.wait_for(|p| p.phase == Phase::WaitingForLease)).await.unwrap().unwrap();

    // Several lifetimes of the lease pass while the first instance is inside its page.
    tokio::time::sleep(lease * 4).await;
    assert!(!first.is_finished(), "the first instance stopped while in its page: {:?}", first.progress());
    assert_eq!(first.progress().handled, 0, "the first page was meant to be still running");
    assert_eq!(
        second.progress().phase,
        Phase::WaitingForLease,
        "the standby took the lease while the first instance was alive and renewing it"
    );
    assert!(backend.recorded(&name).await.is_empty(), "the standby handled events while the first instance ran");

    // The slow page ends, under the lease it kept; the first instance catches up.
    go.send(()).unwrap();
    wait_until(&first, *before.last().unwrap()).await;
    assert_eq!(second.progress().handled, 0, "the standby handled events while the first instance ran");

    // The first instance dies; the standby takes over (on a backend whose leases expire, once the dead
    // instance's lease has run out) and handles what comes next from the first one's checkpoint.
    first.abort();
    // Append only once the standby holds the lease: an abort takes effect asynchronously, and a first
    // instance still alive for a moment would otherwise handle the new events itself.
    tokio::time::timeout(DEADLINE, second.wait_for(|p| !matches!(p.phase, Phase::Starting | Phase::WaitingForLease)))
        .await
        .unwrap_or_else(|_| panic!("the standby did not take over in time: {:?}", second.progress()))
        .unwrap();
    append(&*store, &format!("{category}-2"), 5).await;
    let all = positions_in(&*store, &category).await;
    wait_until(&second, *all.last().unwrap()).await;
    let second = second.stop().await.unwrap();
    assert_eq!(second.handled, 5, "the standby resumed from the first instance's checkpoint");
    // The first instance died after its checkpoint had caught up, so even at-least-once repeats nothing.
    assert_exactly_once(&backend.recorded(&name).await, &all);
}

/// Declares one `#[tokio::test]` per scenario of the subscription suite; `$backend` is an expression (it
/// may `.await`) giving a [`Backend`](crate::subscription_suite::Backend). The calling crate needs `tokio`
/// (with the `macros` and `rt-multi-thread` features) as a dev-dependency.
#[macro_export]
macro_rules! subscription_suite {
    ($backend:expr) => {
        $crate::subscription_suite!(@tests $backend;
            catch_up_then_live_delivers_every_event_once_in_order,
            concurrent_writers_deliver_every_event_exactly_once_and_match_a_rebuild,
            restart_in_the_middle_resumes_from_the_checkpoint,
            a_second_instance_waits_and_takes_over,
            a_failing_handler_stops_at_the_event_and_resumes_there,
            reset_rebuilds_the_read_model_from_the_start,
            the_filter_selects_event_types_and_categories,
            commit_notifications_wake_a_live_subscription,
            a_page_slower_than_the_lease_keeps_it_until_its_instance_dies,
        );
    };
    (@tests $backend:expr; $($name:ident,)*) => {
        $(
            #[::tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                let backend = $backend;
                $crate::subscription_suite::$name(&backend).await;
            }
        )*
    };
}
