//! Property tests of the event store invariants, against `InMemoryEventStore`: whatever the interleaving of
//! appends across streams, versions stay dense per stream and the global log holds each appended event
//! exactly once, at increasing positions.

#![allow(clippy::unwrap_used, reason = "test helpers outside #[test] functions; a failure should panic")]

use composable_rust_core::backend::EventLog;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use composable_rust_core::{
    CodecId, EventStore, EventStoreError, ExpectedVersion, GlobalPosition, LogFilter, Metadata, NewEvent,
    RecordedEvent, StreamId, StreamRange, Version,
};
use composable_rust_memory::InMemoryEventStore;
use proptest::prelude::*;

const STREAMS: usize = 4;

fn stream(index: usize) -> StreamId {
    StreamId::new(format!("prop-{index}")).unwrap()
}

/// An event whose payload identifies who appended it: (writer, step, index in batch).
fn tagged(writer: u16, step: u16, index: u16) -> NewEvent {
    let mut payload = Vec::with_capacity(6);
    for part in [writer, step, index] {
        payload.extend(part.to_le_bytes());
    }
    NewEvent {
        id: composable_rust_core::EventId::generate(),
        event_type: "Tagged.v1".into(),
        codec: CodecId::Bincode,
        payload,
        metadata: Metadata::default(),
        tags: Vec::new(),
    }
}

/// How a step of a sequential plan states its expectation.
#[derive(Debug, Clone, Copy)]
enum Expect {
    /// `ExpectedVersion::Any`.
    Any,
    /// The right exact version (NoStream for an empty stream).
    Current,
    /// A wrong exact version: must conflict and write nothing.
    Stale,
    /// `StreamExists`: conflicts only on an empty stream.
    Exists,
}

fn expect_strategy() -> impl Strategy<Value = Expect> {
    prop_oneof![Just(Expect::Any), Just(Expect::Current), Just(Expect::Stale), Just(Expect::Exists)]
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap()
}

async fn read_whole_log(store: &dyn EventStore) -> Vec<RecordedEvent> {
    let mut events = Vec::new();
    let mut after = GlobalPosition::START;
    loop {
        let page = store.read_all(after, &LogFilter::all(), 7).await.unwrap();
        let Some(last) = page.last() else { break };
        after = last.position;
        events.extend(page);
    }
    events
}

/// Checks the invariants and returns each stream's payloads in version order.
async fn check_invariants(store: &dyn EventStore) -> HashMap<StreamId, Vec<Vec<u8>>> {
    let log = read_whole_log(store).await;
    let positions: Vec<u64> = log.iter().map(|e| e.position.get()).collect();
    assert!(positions.windows(2).all(|w| w[0] < w[1]), "log positions must strictly increase: {positions:?}");

    let mut per_stream: HashMap<StreamId, Vec<Vec<u8>>> = HashMap::new();
    for index in 0..STREAMS {
        let id = stream(index);
        let events = store.load_stream(&id, StreamRange::all()).await.unwrap();
        let versions: Vec<u64> = events.iter().map(|e| e.version.get()).collect();
        assert_eq!(versions, (1..=events.len() as u64).collect::<Vec<_>>(), "{id}: versions must be dense from 1");
        assert_eq!(store.stream_version(&id).await.unwrap(), Version::new(events.len() as u64));
        let in_log: Vec<&RecordedEvent> = log.iter().filter(|e| e.stream_id == id).collect();
        assert_eq!(in_log.len(), events.len(), "{id}: the log must hold each of the stream's events once");
        assert!(in_log.iter().zip(&events).all(|(a, b)| *a == b), "{id}: log and stream must agree, in order");
        per_stream.insert(id, events.into_iter().map(|e| e.payload.to_vec()).collect());
    }
    let unique: HashSet<&[u8]> = log.iter().map(|e| &e.payload[..]).collect();
    assert_eq!(unique.len(), log.len(), "every appended event must appear in the log exactly once");
    per_stream
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    /// Any sequence of appends, with right and wrong expectations, matches a simple model: successful
    /// batches land whole with the next versions, conflicting ones leave no trace.
    #[test]
    fn sequential_appends_keep_versions_dense_and_the_log_complete(
        plan in prop::collection::vec((0..STREAMS, 1..5u16, expect_strategy()), 1..40)
    ) {
        runtime().block_on(async {
            let store = InMemoryEventStore::new();
            let mut model: HashMap<StreamId, Vec<Vec<u8>>> = (0..STREAMS).map(|i| (stream(i), Vec::new())).collect();
            let mut model_log: Vec<Vec<u8>> = Vec::new();
            for (step, (index, size, expect)) in (0u16..).zip(plan) {
                let id = stream(index);
                let current = Version::new(model[&id].len() as u64);
                let expected = match expect {
                    Expect::Any => ExpectedVersion::Any,
                    Expect::Current if current == Version::INITIAL => ExpectedVersion::NoStream,
                    Expect::Current => ExpectedVersion::Exact(current),
                    Expect::Stale => ExpectedVersion::Exact(current.next()),
                    Expect::Exists => ExpectedVersion::StreamExists,
                };
                let batch: Vec<NewEvent> = (0..size).map(|i| tagged(0, step, i)).collect();
                let payloads: Vec<Vec<u8>> = batch.iter().map(|e| e.payload.clone()).collect();
                match store.append(&id, expected, batch).await {
                    Ok(written) => {
                        prop_assert!(expected.is_satisfied_by(current), "{expected} at {current} must conflict");
                        prop_assert_eq!(written.stream_version, current.advanced_by(u64::from(size)));
                        model.get_mut(&id).unwrap().extend(payloads.iter().cloned());
                        model_log.extend(payloads);
                    }
                    Err(EventStoreError::ConcurrencyConflict { actual, .. }) => {
                        prop_assert!(!expected.is_satisfied_by(current), "{expected} at {current} must succeed");
                        prop_assert_eq!(actual, current);
                    }
                    Err(other) => prop_assert!(false, "unexpected error {other:?}"),
                }
            }
            let stored = check_invariants(&store).await;
            prop_assert_eq!(stored, model);
            let log: Vec<Vec<u8>> = store.all_events().into_iter().map(|e| e.payload.to_vec()).collect();
            prop_assert_eq!(log, model_log, "the log must list events in append order");
            Ok(())
        })?;
    }

    /// Concurrent writers, each following its own random plan with optimistic retries, never break
    /// density or lose, duplicate or reorder an event; each writer's events keep its order within a stream.
    #[test]
    fn concurrent_appends_keep_versions_dense_and_the_log_complete(
        plans in prop::collection::vec(prop::collection::vec((0..STREAMS, 1..4u16, any::<bool>()), 1..15), 2..5)
    ) {
        runtime().block_on(async {
            let store: Arc<dyn EventStore> = Arc::new(InMemoryEventStore::new());
            let total: usize = plans.iter().flatten().map(|&(_, size, _)| usize::from(size)).sum();
            let tasks: Vec<_> = (0u16..).zip(plans).map(|(writer, plan)| {
                let store = Arc::clone(&store);
                tokio::spawn(async move {
                    for (step, (index, size, optimistic)) in (0u16..).zip(plan) {
                        let id = stream(index);
                        loop {
                            let expected = if optimistic {
                                ExpectedVersion::Exact(store.stream_version(&id).await.unwrap())
                            } else {
                                ExpectedVersion::Any
                            };
                            let batch = (0..size).map(|i| tagged(writer, step, i)).collect();
                            match store.append(&id, expected, batch).await {
                                Ok(_) => break,
                                Err(error) if error.is_conflict() => tokio::task::yield_now().await,
                                Err(error) => panic!("unexpected error {error:?}"),
                            }
                        }
                    }
                })
            }).collect();
            for task in tasks {
                task.await.unwrap();
            }
            let stored = check_invariants(&*store).await;
            prop_assert_eq!(stored.values().map(Vec::len).sum::<usize>(), total, "every appended event must be stored");
            for payloads in stored.values() {
                // Batches are atomic: an event that is not first in its batch follows its batch predecessor.
                for pair in payloads.windows(2) {
                    let index = u16::from_le_bytes([pair[1][4], pair[1][5]]);
                    if index > 0 {
                        let mut predecessor = pair[1].clone();
                        predecessor[4..6].copy_from_slice(&(index - 1).to_le_bytes());
                        prop_assert_eq!(&pair[0], &predecessor, "a batch was interleaved with another append");
                    }
                }
                // Within one stream, one writer's events keep the order the writer appended them in.
                let mut last_seen: HashMap<&[u8], &[u8]> = HashMap::new();
                for payload in payloads {
                    let (writer, rest) = payload.split_at(2);
                    if let Some(previous) = last_seen.insert(writer, rest) {
                        let key = |p: &[u8]| (u16::from_le_bytes([p[0], p[1]]), u16::from_le_bytes([p[2], p[3]]));
                        prop_assert!(key(previous) < key(rest), "a writer's events were reordered within a stream");
                    }
                }
            }
            Ok(())
        })?;
    }
}
