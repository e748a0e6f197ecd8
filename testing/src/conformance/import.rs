//! Cases about `EventLog::import` (events recorded elsewhere written again with their ids, versions, times
//! and tags, in order, once), and about what operators read: `StoreLifecycle::stats` and
//! `SubscriptionStore::list_checkpoints`.

use std::sync::Arc;

use chrono::{DateTime, TimeZone, Utc};
use composable_rust_core::{
    EventId, EventStore, EventStoreError, ExpectedVersion, GlobalPosition, LogCursor, LogFilter, Metadata,
    RecordedEvent, StreamId, Tag, Version,
};

use super::{Names, append, assert_conflict, assert_invalid_input, batch, load_all, numbered, ok, read_log};

/// A time long before any test ran, with microseconds, `offset` seconds in.
fn long_ago(offset: i64) -> DateTime<Utc> {
    let base = Utc.with_ymd_and_hms(2020, 2, 29, 23, 59, 0).single().unwrap_or_default();
    base + chrono::Duration::seconds(offset) + chrono::Duration::microseconds(123_456)
}

/// Event `n` of `stream` at `version`, as another store recorded it (its position there: `1000 + n`).
fn recorded(stream: &StreamId, version: u64, n: u64) -> RecordedEvent {
    let new = numbered("Imported.v1", n);
    RecordedEvent {
        id: new.id,
        stream_id: stream.clone(),
        version: Version::new(version),
        position: GlobalPosition::new(1000 + n),
        event_type: new.event_type.into(),
        codec: new.codec,
        payload: new.payload.into(),
        metadata: Metadata::correlated(uuid::Uuid::from_u128(u128::from(n) + 1))
            .with_actor("importer")
            .with_extra(&serde_json::json!({ "n": n })),
        recorded_at: long_ago(i64::try_from(n).unwrap_or_default()),
        tags: if n % 2 == 0 { vec![Tag::of("n", n), Tag::new("even")] } else { Vec::new() },
    }
}

/// Two streams interleaved, a: 1 2 _ 3, b: _ _ 1 _ 2.
fn interleaved(a: &StreamId, b: &StreamId) -> Vec<RecordedEvent> {
    vec![recorded(a, 1, 0), recorded(a, 2, 1), recorded(b, 1, 2), recorded(a, 3, 3), recorded(b, 2, 4)]
}

/// `event` without its position, which an import does not keep.
fn placeless(event: &RecordedEvent) -> RecordedEvent {
    RecordedEvent { position: GlobalPosition::START, ..event.clone() }
}

/// An import keeps every field but the position, and keeps the order given across streams: the positions
/// it returns increase in that order, and the global log lists the events in it.
pub async fn import_keeps_ids_versions_times_tags_and_the_order_given(store: Arc<dyn EventStore>) {
    let store = &*store;
    let names = Names::new();
    let (a, b) = (names.stream("a"), names.stream("b"));
    let events = interleaved(&a, &b);
    let positions = ok(store.import(events.clone()).await, "import five events into two streams");
    assert_eq!(positions.len(), events.len(), "an import returns one position per event");
    assert!(positions.windows(2).all(|p| p[0] < p[1]), "positions increase in the order given: {positions:?}");

    let logged = read_log(store, &names.filter(), 100).await;
    assert_eq!(
        logged.iter().map(|e| e.position).collect::<Vec<_>>(),
        positions,
        "the log holds them at those positions"
    );
    assert_eq!(
        logged.iter().map(placeless).collect::<Vec<_>>(),
        events.iter().map(placeless).collect::<Vec<_>>(),
        "the global log returns every imported field (id, stream, version, type, codec, payload, metadata, \
         recorded time, tags) in the order given"
    );
    let loaded_a = load_all(store, &a).await;
    assert_eq!(loaded_a.iter().map(|e| e.version.get()).collect::<Vec<_>>(), vec![1, 2, 3], "stream a's versions");
    assert_eq!(ok(store.stream_version(&b).await, "stream_version"), Version::new(2), "stream b's version");
    // Appends go on after imported events as after appended ones.
    let next = append(store, &a, ExpectedVersion::Exact(Version::new(3)), batch("After.v1", 0, 1)).await;
    assert_eq!(next.stream_version, Version::new(4), "an append continues an imported stream");
    assert!(next.positions[0] > positions[4], "and lands after the imported events in the log");
}

/// Re-running an import, or running it on from where it stopped, writes only the events not yet stored and
/// returns the stored positions of the others.
pub async fn an_import_rerun_skips_what_is_stored_and_writes_the_rest(store: Arc<dyn EventStore>) {
    let store = &*store;
    let names = Names::new();
    let (a, b) = (names.stream("a"), names.stream("b"));
    let events = interleaved(&a, &b);
    let first = ok(store.import(events[..3].to_vec()).await, "import the first three events");
    // What tells an importer which events a call wrote (the archive's `ImportSummary::written`).
    let newest = ok(store.read_log(LogCursor::Newest, &LogFilter::all(), 1).await, "read the newest event");
    let newest_before = newest.first().map_or(GlobalPosition::START, |e| e.position);
    let all = ok(store.import(events.clone()).await, "import all five, the first three again");
    assert_eq!(all[..3], first[..], "events already stored keep their positions");
    assert!(
        all[..3].iter().all(|p| *p <= newest_before) && all[3..].iter().all(|p| *p > newest_before),
        "the written events land above every position the store held, the skipped ones keep theirs: {all:?}, \
         newest before {newest_before}"
    );
    let again = ok(store.import(events.clone()).await, "import all five a third time");
    assert_eq!(again, all, "a complete re-run writes nothing and returns the same positions");
    let logged = read_log(store, &names.filter(), 100).await;
    assert_eq!(
        logged.iter().map(|e| e.id).collect::<Vec<_>>(),
        events.iter().map(|e| e.id).collect::<Vec<_>>(),
        "each event is stored once, in the order given"
    );
}

/// An event that is not the next of its stream (a version taken, or a gap) is a conflict naming the stream
/// and its version, and the whole import writes nothing.
pub async fn an_import_out_of_version_order_is_a_conflict_and_writes_nothing(store: Arc<dyn EventStore>) {
    let store = &*store;
    let names = Names::new();
    let (a, b) = (names.stream("a"), names.stream("b"));
    append(store, &a, ExpectedVersion::NoStream, batch("Appended.v1", 0, 2)).await;

    let taken = vec![recorded(&b, 1, 0), recorded(&a, 2, 1)];
    let result = store.import(taken).await;
    assert_conflict(result, &a, ExpectedVersion::Exact(Version::new(1)), Version::new(2));
    let gap = vec![recorded(&a, 3, 2), recorded(&a, 5, 3)];
    let result = store.import(gap).await;
    assert_conflict(result, &a, ExpectedVersion::Exact(Version::new(4)), Version::new(3));
    assert_eq!(ok(store.stream_version(&b).await, "stream_version"), Version::INITIAL, "nothing of b was written");
    assert_eq!(load_all(store, &a).await.len(), 2, "nothing of a was written");
}

/// An id stored for another event is `EventIdInUse`; bad batches are invalid input; nothing is written.
pub async fn an_import_reusing_an_id_or_malformed_is_refused_and_writes_nothing(store: Arc<dyn EventStore>) {
    let store = &*store;
    let names = Names::new();
    let (a, b) = (names.stream("a"), names.stream("b"));
    let stored = recorded(&a, 1, 0);
    ok(store.import(vec![stored.clone()]).await, "import one event");
    let other_payload = RecordedEvent { payload: vec![9, 9].into(), ..stored.clone() };
    match store.import(vec![recorded(&b, 1, 1), other_payload]).await {
        Err(EventStoreError::EventIdInUse { id, stream_id, .. }) => {
            assert_eq!((id, &stream_id), (stored.id, &a), "the error names the stored event");
        }
        other => panic!("an imported event whose id is stored for another payload must be EventIdInUse, got {other:?}"),
    }
    // An id stored for an event of another stream, on an event that would otherwise be written (the next of
    // its stream): a store that looks ids up only when its plan fails must still refuse it.
    let c = names.stream("c");
    let elsewhere = RecordedEvent { stream_id: c.clone(), ..stored.clone() };
    match store.import(vec![recorded(&b, 1, 5), elsewhere]).await {
        Err(EventStoreError::EventIdInUse { id, stream_id, .. }) => {
            assert_eq!((id, &stream_id), (stored.id, &a), "the error names the stored event");
        }
        other => panic!("an imported event whose id is stored in another stream must be EventIdInUse, got {other:?}"),
    }
    assert_eq!(ok(store.stream_version(&c).await, "stream_version"), Version::INITIAL, "nothing of c was written");
    let other_time = RecordedEvent { recorded_at: long_ago(99), ..stored.clone() };
    assert!(
        matches!(store.import(vec![other_time]).await, Err(EventStoreError::EventIdInUse { .. })),
        "an event stored at another time is another event"
    );
    assert_invalid_input(store.import(Vec::new()).await, "an empty import");
    assert_invalid_input(store.import(vec![recorded(&b, 0, 2)]).await, "an event at version 0");
    let twice = recorded(&b, 1, 3);
    assert_invalid_input(
        store.import(vec![twice.clone(), RecordedEvent { version: Version::new(2), ..twice }]).await,
        "one id twice",
    );
    let bad_type = RecordedEvent { event_type: "".into(), ..recorded(&b, 1, 4) };
    assert_invalid_input(store.import(vec![bad_type]).await, "an empty event type");
    assert_eq!(ok(store.stream_version(&b).await, "stream_version"), Version::INITIAL, "nothing of b was written");
    let ids: Vec<EventId> = read_log(store, &names.filter(), 100).await.iter().map(|e| e.id).collect();
    assert_eq!(ids, vec![stored.id], "only the first import is stored");
}

/// `stats` counts what the store holds; compared before and after this case's writes, since other cases
/// may share the store.
pub async fn stats_count_events_streams_snapshots_checkpoints_and_times(store: Arc<dyn EventStore>) {
    let store = &*store;
    let names = Names::new();
    let before = ok(store.stats().await, "stats before");
    let (a, b) = (names.stream("a"), names.stream("b"));
    ok(store.import(interleaved(&a, &b)).await, "import five events");
    append(store, &a, ExpectedVersion::Any, batch("Appended.v1", 0, 2)).await;
    ok(store.save_checkpoint(&names.handler("stats"), GlobalPosition::new(1)).await, "save a checkpoint");
    let snapshot = composable_rust_core::Snapshot {
        stream_id: a.clone(),
        version: Version::new(3),
        schema_version: 1,
        codec: composable_rust_core::CodecId::Json,
        payload: b"{}".to_vec(),
        taken_at: Utc::now(),
    };
    ok(store.save_snapshot(&snapshot).await, "save a snapshot");
    let after = ok(store.stats().await, "stats after");
    assert_eq!(after.backend, before.backend, "stats name the backend");
    assert!(after.events >= before.events + 7, "7 events more: {} -> {}", before.events, after.events);
    assert!(after.streams >= before.streams + 2, "2 streams more: {} -> {}", before.streams, after.streams);
    assert!(after.snapshots > before.snapshots, "a snapshot more: {} -> {}", before.snapshots, after.snapshots);
    assert!(after.checkpoints > before.checkpoints, "a checkpoint more");
    let oldest = after.oldest.unwrap_or_else(|| panic!("a store with events has an oldest time"));
    let newest = after.newest.unwrap_or_else(|| panic!("a store with events has a newest time"));
    assert!(oldest <= long_ago(0), "the oldest time is at or before the oldest imported event: {oldest}");
    assert!(newest >= Utc::now() - chrono::Duration::minutes(10), "the newest is the recent append: {newest}");
    if let (Some(before), Some(after)) = (before.bytes_on_disk, after.bytes_on_disk) {
        assert!(after > 0 && before > 0, "a store on disk takes bytes");
    }
}

/// `list_checkpoints` returns every handler's checkpoint, in name order.
pub async fn list_checkpoints_returns_every_handler_in_name_order(store: Arc<dyn EventStore>) {
    let store = &*store;
    let names = Names::new();
    for (name, position) in [("c", 30), ("a", 10), ("b", 20)] {
        ok(store.save_checkpoint(&names.handler(name), GlobalPosition::new(position)).await, "save a checkpoint");
    }
    let prefix = names.handler("");
    let mine: Vec<(String, u64)> = ok(store.list_checkpoints().await, "list checkpoints")
        .into_iter()
        .filter(|(handler, _)| handler.starts_with(&prefix))
        .map(|(handler, position)| (handler, position.get()))
        .collect();
    let expected: Vec<(String, u64)> =
        [("a", 10), ("b", 20), ("c", 30)].iter().map(|&(n, p)| (names.handler(n), p)).collect();
    assert_eq!(mine, expected, "every checkpoint, in handler name order");
}
