//! What the runtime measures (`composable_rust_runtime::metric`), read back from the `metrics` crate's
//! debugging recorder: appends through the `InstrumentedStore`, loads by the `Repository` and by a `Store`'s
//! requests, and subscriptions. What the tracing spans carry is in `tests/spans.rs`.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "set-up failures should fail the test loudly")]

use std::future::Future;
use std::sync::Arc;

use composable_rust_core::{
    AtomicAppend, BoxError, CodecId, Effect, EventStore, EventStoreOperation, ExpectedVersion, LoadRequest, Metadata,
    NewEvent, StreamId, reducer_fn,
};
use composable_rust_runtime::metric::{
    APPEND_BATCH_SIZE, APPEND_CONFLICTS, APPEND_DURATION, APPENDS, EVENTS_APPENDED, HANDLER_ERRORS, LOAD_DURATION,
    LOAD_EVENTS_REPLAYED, SNAPSHOT_HITS, SNAPSHOT_MISSES, SUBSCRIPTION_LAG_EVENTS, SUBSCRIPTION_LAG_SECONDS,
};
use composable_rust_runtime::{
    InstrumentedStore, Repository, RepositoryConfig, SnapshotPolicy, Store, Subscription, SubscriptionError, handler_fn,
};
use composable_rust_testing::InMemoryEventStore;
use composable_rust_testing::aggregate_scenarios::{Account, AccountCommand, new_account_id};
use metrics_util::debugging::{DebugValue, DebuggingRecorder};

/// One recorded metric: name, labels (sorted) and value.
#[derive(Debug)]
struct Recorded {
    name: String,
    labels: Vec<(String, String)>,
    value: DebugValue,
}

/// Runs `body` on a current-thread runtime with a debugging recorder installed for this thread, and
/// returns what was recorded.
fn measure<F, Fut>(body: F) -> Vec<Recorded>
where
    F: FnOnce() -> Fut,
    Fut: Future<Output = ()>,
{
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    metrics::with_local_recorder(&recorder, || runtime.block_on(body()));
    snapshotter
        .snapshot()
        .into_vec()
        .into_iter()
        .map(|(key, _, _, value)| {
            let (_, key) = key.into_parts();
            let mut labels: Vec<_> = key.labels().map(|l| (l.key().to_owned(), l.value().to_owned())).collect();
            labels.sort();
            Recorded { name: key.name().to_owned(), labels, value }
        })
        .collect()
}

fn find<'a>(recorded: &'a [Recorded], name: &str, labels: &[(&str, &str)]) -> Option<&'a DebugValue> {
    let mut wanted: Vec<(String, String)> = labels.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
    wanted.sort();
    recorded.iter().find(|r| r.name == name && r.labels == wanted).map(|r| &r.value)
}

fn counter(recorded: &[Recorded], name: &str, labels: &[(&str, &str)]) -> u64 {
    match find(recorded, name, labels) {
        Some(DebugValue::Counter(n)) => *n,
        None => 0,
        Some(other) => panic!("{name} is not a counter: {other:?}"),
    }
}

fn histogram(recorded: &[Recorded], name: &str, labels: &[(&str, &str)]) -> Vec<f64> {
    match find(recorded, name, labels) {
        Some(DebugValue::Histogram(values)) => values.iter().map(|v| v.into_inner()).collect(),
        None => Vec::new(),
        Some(other) => panic!("{name} is not a histogram: {other:?}"),
    }
}

fn gauge(recorded: &[Recorded], name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    match find(recorded, name, labels) {
        Some(DebugValue::Gauge(value)) => Some(value.into_inner()),
        None => None,
        Some(other) => panic!("{name} is not a gauge: {other:?}"),
    }
}

fn event(kind: &str) -> NewEvent {
    NewEvent::new(kind, CodecId::Json, b"{}".to_vec(), Metadata::default())
}

fn stream(id: &str) -> StreamId {
    StreamId::new(id).unwrap()
}

fn instrumented() -> Arc<dyn EventStore> {
    InstrumentedStore::shared(Arc::new(InMemoryEventStore::new()), "in-memory")
}

const ORDERS: &[(&str, &str)] = &[("backend", "in-memory"), ("category", "order")];

#[test]
fn appends_are_counted_by_backend_and_category_with_their_events_conflicts_and_latency() {
    let recorded = measure(|| async {
        let store = instrumented();
        store
            .append(&stream("order-1"), ExpectedVersion::NoStream, vec![event("A"), event("B"), event("C")])
            .await
            .unwrap();
        store.append(&stream("order-2"), ExpectedVersion::NoStream, vec![event("A")]).await.unwrap();
        let stale = store.append(&stream("order-1"), ExpectedVersion::NoStream, vec![event("D")]).await;
        assert!(stale.unwrap_err().is_conflict());
        store.append(&stream("invoice-9"), ExpectedVersion::Any, vec![event("A")]).await.unwrap();
    });
    assert_eq!(counter(&recorded, APPENDS, ORDERS), 2);
    assert_eq!(counter(&recorded, EVENTS_APPENDED, ORDERS), 4);
    assert_eq!(counter(&recorded, APPEND_CONFLICTS, ORDERS), 1);
    assert_eq!(histogram(&recorded, APPEND_BATCH_SIZE, ORDERS), vec![3.0, 1.0]);
    assert_eq!(histogram(&recorded, APPEND_DURATION, ORDERS).len(), 3, "every append is timed, the conflict too");
    let invoices = &[("backend", "in-memory"), ("category", "invoice")];
    assert_eq!(counter(&recorded, EVENTS_APPENDED, invoices), 1);
    assert!(recorded.iter().all(|r| !r.labels.iter().any(|(_, v)| v.contains("order-1"))), "no stream id as a label");
}

#[test]
fn an_atomic_append_counts_once_per_stream_it_wrote() {
    let recorded = measure(|| async {
        let store = instrumented();
        let append = AtomicAppend::new()
            .stream(stream("order-1"), ExpectedVersion::NoStream, vec![event("A"), event("B")])
            .stream(stream("payment-1"), ExpectedVersion::NoStream, vec![event("P")]);
        store.append_atomic(append).await.unwrap();
    });
    assert_eq!(counter(&recorded, APPENDS, ORDERS), 1);
    assert_eq!(counter(&recorded, EVENTS_APPENDED, ORDERS), 2);
    assert_eq!(counter(&recorded, EVENTS_APPENDED, &[("backend", "in-memory"), ("category", "payment")]), 1);
}

#[test]
fn repository_loads_count_snapshot_hits_and_misses_and_the_events_they_replayed() {
    let recorded = measure(|| async {
        let config = RepositoryConfig::default().with_snapshot_policy(SnapshotPolicy::every(2));
        let repository = Repository::<Account>::with_config(instrumented(), config);
        let id = new_account_id();
        let open = AccountCommand::Open { owner: "ada".into(), currency: "EUR".into() };
        // Load 1: nothing stored yet. Load 2: one event, no snapshot; its append makes version 2, a snapshot.
        repository.execute(&id, open, Metadata::default()).await.unwrap();
        repository.execute(&id, AccountCommand::Deposit(5), Metadata::default()).await.unwrap();
        repository.flush_snapshots().await;
        // Load 3: from the snapshot at version 2, nothing to replay.
        let loaded = repository.load(&id).await.unwrap();
        assert_eq!(loaded.metrics.snapshot_version.map(|v| v.get()), Some(2));
    });
    let accounts = &[("backend", "in-memory"), ("category", "account")];
    assert_eq!(counter(&recorded, SNAPSHOT_MISSES, accounts), 2);
    assert_eq!(counter(&recorded, SNAPSHOT_HITS, accounts), 1);
    assert_eq!(histogram(&recorded, LOAD_EVENTS_REPLAYED, accounts), vec![0.0, 1.0, 0.0]);
    assert_eq!(histogram(&recorded, LOAD_DURATION, accounts).len(), 3);
}

#[test]
fn a_repository_over_a_store_that_does_not_name_itself_labels_its_loads_unknown() {
    let recorded = measure(|| async {
        let repository = Repository::<Account>::new(Arc::new(InMemoryEventStore::new()));
        repository.load(&new_account_id()).await.unwrap();
    });
    assert_eq!(counter(&recorded, SNAPSHOT_MISSES, &[("backend", "unknown"), ("category", "account")]), 1);
    assert_eq!(counter(&recorded, APPENDS, ORDERS), 0, "an unwrapped store records no appends");
}

#[derive(Debug, Clone, PartialEq)]
enum Action {
    Load,
    Loaded(usize),
}

#[test]
fn a_store_s_load_requests_are_measured_like_the_repository_s_loads() {
    let recorded = measure(|| async {
        let events = instrumented();
        events.append(&stream("order-7"), ExpectedVersion::NoStream, vec![event("A"), event("B")]).await.unwrap();
        let reducer = reducer_fn(|replayed: &mut usize, action: Action, _env: &()| match action {
            Action::Load => Effect::event_store(EventStoreOperation::load(
                LoadRequest::latest(StreamId::new("order-7").unwrap()),
                |history| Action::Loaded(history.map_or(0, |h| h.events.len())),
            )),
            Action::Loaded(n) => {
                *replayed = n;
                Effect::None
            }
        });
        let store = Store::builder(reducer, 0, ()).event_store(events).build();
        store.send(Action::Load).finished().await;
        assert_eq!(store.state(|replayed| *replayed), 2);
    });
    assert_eq!(counter(&recorded, SNAPSHOT_MISSES, ORDERS), 1);
    assert_eq!(histogram(&recorded, LOAD_EVENTS_REPLAYED, ORDERS), vec![2.0]);
}

#[test]
fn a_failing_handler_is_counted_and_each_subscription_reports_its_lag() {
    let recorded = measure(|| async {
        let store = instrumented();
        let batch = vec![event("A"), event("B"), event("C")];
        store.append(&stream("order-1"), ExpectedVersion::NoStream, batch).await.unwrap();

        let failing = handler_fn(|event| -> Result<(), BoxError> {
            if event.version.get() == 2 { Err("the read model refused version 2".into()) } else { Ok(()) }
        });
        let mut broken = Subscription::new(Arc::clone(&store), "broken", failing);
        let error = broken.run_to_end().await.unwrap_err();
        assert!(matches!(error, SubscriptionError::HandlerFailed { .. }), "{error}");

        let mut healthy = Subscription::new(Arc::clone(&store), "healthy", handler_fn(|_| Ok(())));
        assert_eq!(healthy.run_to_end().await.unwrap().handled, 3);
    });
    let broken = &[("subscription", "broken")];
    let healthy = &[("subscription", "healthy")];
    assert_eq!(counter(&recorded, HANDLER_ERRORS, broken), 1);
    assert_eq!(counter(&recorded, HANDLER_ERRORS, healthy), 0);
    // The broken one stopped on the page it read: three events behind its checkpoint, a little while old.
    assert_eq!(gauge(&recorded, SUBSCRIPTION_LAG_EVENTS, broken), Some(3.0));
    assert!(gauge(&recorded, SUBSCRIPTION_LAG_SECONDS, broken).is_some_and(|s| s >= 0.0));
    // The healthy one ended on an empty read: no lag.
    assert_eq!(gauge(&recorded, SUBSCRIPTION_LAG_EVENTS, healthy), Some(0.0));
    assert_eq!(gauge(&recorded, SUBSCRIPTION_LAG_SECONDS, healthy), Some(0.0));
}
