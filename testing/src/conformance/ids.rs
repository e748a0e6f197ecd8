//! Cases about event ids: every event keeps the id it was appended with, ids are looked up directly, and
//! an append retried with the same ids is written once (the idempotency rule of `EventLog::append`).

use composable_rust_core::backend::EventLog;
use std::sync::Arc;

use composable_rust_core::{
    EventId, EventStore, EventStoreError, ExpectedVersion, Metadata, NewEvent, StreamId, Version,
};

use super::{Names, append, assert_invalid_input, batch, load_all, ok, read_log};
use crate::aggregate_scenarios::Flaky;
use crate::intercepted::Intercepted;

/// Checks that `result` is `EventIdInUse` for `id`, naming the stored event's stream and version.
#[track_caller]
fn assert_id_in_use<T: std::fmt::Debug>(
    result: Result<T, EventStoreError>,
    id: EventId,
    stream: &StreamId,
    version: Version,
    what: &str,
) {
    match result {
        Err(EventStoreError::EventIdInUse { id: got, stream_id, version: v, .. }) => {
            assert_eq!(got, id, "{what}: the error must name the id that is in use");
            assert_eq!((&stream_id, v), (stream, version), "{what}: the error must name the stored event");
        }
        other => panic!("{what} must fail with EventStoreError::EventIdInUse for {id}, got {other:?}"),
    }
}

/// Every event keeps its id: stream loads, the global log and `load_event` return it, and an unknown id
/// loads as `None`.
pub async fn event_ids_round_trip_through_loads_reads_and_lookups(store: Arc<dyn EventStore>) {
    let store = &*store;
    let names = Names::new();
    let stream = names.stream("ids");
    let events = batch("Counted.v1", 0, 3);
    let ids: Vec<EventId> = events.iter().map(|e| e.id).collect();
    append(store, &stream, ExpectedVersion::NoStream, events).await;

    let loaded = load_all(store, &stream).await;
    assert_eq!(loaded.iter().map(|e| e.id).collect::<Vec<_>>(), ids, "a stream load returns each event's id");
    let logged = read_log(store, &names.filter(), 10).await;
    assert_eq!(logged.iter().map(|e| e.id).collect::<Vec<_>>(), ids, "the global log returns each event's id");
    let found = ok(store.load_event(ids[1]).await, "load_event");
    assert_eq!(found.as_ref(), Some(&loaded[1]), "load_event returns the whole event with that id");
    let missing = ok(store.load_event(EventId::generate()).await, "load_event of an unknown id");
    assert_eq!(missing, None, "an id no event has loads as None");
}

/// An append retried with the same events returns the first append's result and writes nothing, even
/// though its expected version is stale by then, and even after other appends to the stream.
pub async fn retrying_an_append_with_the_same_ids_returns_the_original_result(store: Arc<dyn EventStore>) {
    let store = &*store;
    let names = Names::new();
    let stream = names.stream("retried");
    let first = batch("Counted.v1", 0, 2);
    let original = append(store, &stream, ExpectedVersion::NoStream, first.clone()).await;

    let retried = ok(store.append(&stream, ExpectedVersion::NoStream, first.clone()).await, "the retried append");
    assert_eq!(retried, original, "a retry returns the versions and positions of the append that stored it");
    append(store, &stream, ExpectedVersion::Exact(Version::new(2)), batch("Counted.v1", 2, 1)).await;
    let later = ok(store.append(&stream, ExpectedVersion::Any, first).await, "a retry after another append");
    assert_eq!(later, original, "a retry still returns the original result after other appends");
    assert_eq!(load_all(store, &stream).await.len(), 3, "retries wrote nothing");
}

/// Reusing a stored id for another event (other payload, other type, other metadata, other stream) is an
/// error that names the stored event, and writes nothing.
pub async fn reusing_an_id_for_another_event_is_an_error(store: Arc<dyn EventStore>) {
    let store = &*store;
    let names = Names::new();
    let (stream, other_stream) = (names.stream("owner"), names.stream("thief"));
    let stored = batch("Counted.v1", 0, 1).remove(0);
    append(store, &stream, ExpectedVersion::NoStream, vec![stored.clone()]).await;

    let other_payload = NewEvent { payload: vec![9, 9], ..stored.clone() };
    let other_type = NewEvent { event_type: "Other.v1".into(), ..stored.clone() };
    let other_metadata = NewEvent { metadata: Metadata::default().with_actor("someone"), ..stored.clone() };
    for (event, what) in [
        (other_payload, "an event with a stored id and another payload"),
        (other_type, "an event with a stored id and another type"),
        (other_metadata, "an event with a stored id and other metadata"),
    ] {
        let result = store.append(&stream, ExpectedVersion::Any, vec![event]).await;
        assert_id_in_use(result, stored.id, &stream, Version::FIRST, what);
    }
    let result = store.append(&other_stream, ExpectedVersion::Any, vec![stored.clone()]).await;
    assert_id_in_use(result, stored.id, &stream, Version::FIRST, "the same event appended to another stream");
    assert_eq!(load_all(store, &stream).await.len(), 1, "nothing more was written to the first stream");
    assert!(load_all(store, &other_stream).await.is_empty(), "nothing was written to the other stream");
}

/// A batch whose ids are stored only in part (one old event with new ones) is not a retry: an error, and
/// none of the new events is written.
pub async fn a_batch_stored_only_in_part_is_an_error_and_writes_nothing(store: Arc<dyn EventStore>) {
    let store = &*store;
    let names = Names::new();
    let stream = names.stream("partial");
    let first = batch("Counted.v1", 0, 2);
    append(store, &stream, ExpectedVersion::NoStream, first.clone()).await;
    let mut mixed = vec![first[1].clone()];
    mixed.extend(batch("Counted.v1", 5, 2));
    let result = store.append(&stream, ExpectedVersion::Any, mixed).await;
    assert!(
        matches!(result, Err(EventStoreError::EventIdInUse { .. })),
        "a batch with one stored id and new ones must fail with EventIdInUse, got {result:?}"
    );
    let reordered = vec![first[1].clone(), first[0].clone()];
    let result = store.append(&stream, ExpectedVersion::Any, reordered).await;
    assert!(
        matches!(result, Err(EventStoreError::EventIdInUse { .. })),
        "a stored batch sent again in another order must fail with EventIdInUse, got {result:?}"
    );
    assert_eq!(load_all(store, &stream).await.len(), 2, "nothing was written");
}

/// The same id twice in one batch is invalid input.
pub async fn an_id_repeated_within_a_batch_is_invalid_input(store: Arc<dyn EventStore>) {
    let store = &*store;
    let names = Names::new();
    let stream = names.stream("twice");
    let mut events = batch("Counted.v1", 0, 2);
    events[1].id = events[0].id;
    assert_invalid_input(store.append(&stream, ExpectedVersion::Any, events).await, "a batch with one id twice");
    assert!(load_all(store, &stream).await.is_empty(), "nothing was written");
}

/// Two writers appending the same batch at the same time: both succeed with the same result, and the
/// events are stored once.
pub async fn the_same_batch_appended_concurrently_is_stored_once(store: Arc<dyn EventStore>) {
    let names = Names::new();
    let stream = names.stream("racing-retries");
    append(&*store, &stream, ExpectedVersion::NoStream, batch("Counted.v1", 0, 1)).await;
    let events = batch("Counted.v1", 1, 3);
    let writers: Vec<_> = (0..4)
        .map(|_| {
            let (store, stream, events) = (Arc::clone(&store), stream.clone(), events.clone());
            tokio::spawn(async move { store.append(&stream, ExpectedVersion::Exact(Version::FIRST), events).await })
        })
        .collect();
    let mut results = Vec::new();
    for writer in writers {
        match writer.await {
            Ok(result) => results.push(ok(result, "a concurrent append of the same batch")),
            Err(error) => panic!("a writer task failed: {error}"),
        }
    }
    assert!(results.windows(2).all(|pair| pair[0] == pair[1]), "every writer gets the same result: {results:?}");
    assert_eq!(load_all(&*store, &stream).await.len(), 4, "the batch is stored once");
}

/// The reply of an append is lost after its commit (a dropped connection): the caller sees a transient
/// error, retries with the same events, and gets the original result; nothing is stored twice.
pub async fn an_append_retried_after_its_reply_was_lost_is_stored_once(store: Arc<dyn EventStore>) {
    let lossy = Intercepted::new(Arc::clone(&store), Flaky::default());
    lossy.lose_next_replies(1);
    let names = Names::new();
    let stream = names.stream("lost-reply");
    let events = batch("Counted.v1", 0, 2);
    let first = lossy.append(&stream, ExpectedVersion::NoStream, events.clone()).await;
    let error = match first {
        Err(error) => error,
        Ok(result) => panic!("the intercept should have lost the reply, got {result:?}"),
    };
    assert!(error.is_transient(), "a lost reply is reported as transient (safe to retry): {error}");
    let retried = ok(lossy.append(&stream, ExpectedVersion::NoStream, events).await, "the retry");
    assert_eq!(retried.stream_version, Version::new(2), "the retry reports the versions of the stored batch");
    let stored = load_all(&*store, &stream).await;
    assert_eq!(stored.len(), 2, "the batch is stored once");
    assert_eq!(retried.positions, stored.iter().map(|e| e.position).collect::<Vec<_>>());
}
