//! Cases about appending to and reading one stream: versions, expected versions, atomic batches, ranges.

use std::ops::ControlFlow;
use std::sync::Arc;

use chrono::{TimeDelta, Timelike, Utc};
use composable_rust_core::{
    CodecId, EventStore, ExpectedVersion, GlobalPosition, LogFilter, Metadata, NewEvent, RecordedEvent, StreamRange,
    Version,
};
use futures::TryStreamExt;
use uuid::Uuid;

use super::{Names, append, assert_conflict, assert_invalid_input, batch, load_all, numbered, ok, read_log, versions};

/// The first event of a stream is version 1, and later appends continue 2, 3, ... without gaps.
pub async fn first_event_is_version_one_and_versions_are_dense(store: Arc<dyn EventStore>) {
    let store = &*store;
    let names = Names::new();
    let stream = names.stream("dense");
    let first = append(store, &stream, ExpectedVersion::NoStream, batch("Counted.v1", 0, 1)).await;
    assert_eq!(first.stream_version, Version::FIRST, "the first event of a new stream must be version 1");
    let second = append(store, &stream, ExpectedVersion::Exact(Version::FIRST), batch("Counted.v1", 1, 3)).await;
    assert_eq!(second.stream_version, Version::new(4), "a batch of 3 after version 1 must end at version 4");
    let third = append(store, &stream, ExpectedVersion::Any, batch("Counted.v1", 4, 2)).await;
    assert_eq!(third.stream_version, Version::new(6), "a batch of 2 after version 4 must end at version 6");

    let events = load_all(store, &stream).await;
    assert_eq!(versions(&events), (1..=6).collect::<Vec<_>>(), "versions must be dense and start at 1");
    for (n, event) in (0u64..).zip(&events) {
        assert_eq!(event.stream_id, stream, "a loaded event must carry its stream id");
        assert_eq!(event.payload, n.to_le_bytes()[..], "events must load in the order they were appended");
    }
}

/// An unknown stream is at version 0; afterwards the stream's version is the version of its last event.
pub async fn stream_version_is_zero_until_the_first_append(store: Arc<dyn EventStore>) {
    let store = &*store;
    let names = Names::new();
    let stream = names.stream("versioned");
    let before = ok(store.stream_version(&stream).await, "stream_version of an unknown stream");
    assert_eq!(before, Version::INITIAL, "a stream with no events must be at version 0");

    append(store, &stream, ExpectedVersion::Any, batch("Counted.v1", 0, 3)).await;
    assert_eq!(ok(store.stream_version(&stream).await, "stream_version"), Version::new(3));
    append(store, &stream, ExpectedVersion::Any, batch("Counted.v1", 3, 2)).await;
    let after = ok(store.stream_version(&stream).await, "stream_version");
    assert_eq!(after, Version::new(5), "the stream's version must equal the number of events appended");
    let last = load_all(store, &stream).await.last().map(|e| e.version);
    assert_eq!(last, Some(after), "the stream's version must be the version of its last event");

    let _ = store.append(&stream, ExpectedVersion::NoStream, batch("Counted.v1", 5, 1)).await;
    let unchanged = ok(store.stream_version(&stream).await, "stream_version");
    assert_eq!(unchanged, Version::new(5), "a conflicting append must not change the stream's version");
}

/// An append returns the stream's new version and one global position per event, matching what loads.
pub async fn append_reports_stream_version_and_positions(store: Arc<dyn EventStore>) {
    let store = &*store;
    let names = Names::new();
    let stream = names.stream("reported");
    let first = append(store, &stream, ExpectedVersion::NoStream, batch("Counted.v1", 0, 4)).await;
    let second = append(store, &stream, ExpectedVersion::Exact(Version::new(4)), batch("Counted.v1", 4, 3)).await;
    assert_eq!(first.positions.len(), 4, "an append must report one position per event");
    assert_eq!(second.positions.len(), 3, "an append must report one position per event");
    assert_eq!(second.stream_version, Version::new(7));

    let reported: Vec<GlobalPosition> = first.positions.iter().chain(&second.positions).copied().collect();
    assert!(reported[0] > GlobalPosition::START, "positions must start above GlobalPosition::START");
    assert!(
        reported.windows(2).all(|w| w[0] < w[1]),
        "positions must increase within and across appends: {reported:?}"
    );
    let loaded: Vec<GlobalPosition> = load_all(store, &stream).await.iter().map(|e| e.position).collect();
    assert_eq!(loaded, reported, "loaded events must carry the positions the appends reported");
}

/// A batch whose expected version fails writes none of its events, to the stream or to the global log.
pub async fn conflicting_batch_writes_nothing(store: Arc<dyn EventStore>) {
    let store = &*store;
    let names = Names::new();
    let stream = names.stream("atomic");
    append(store, &stream, ExpectedVersion::NoStream, batch("Counted.v1", 0, 2)).await;

    let stale = store.append(&stream, ExpectedVersion::Exact(Version::FIRST), batch("Lost.v1", 100, 5)).await;
    assert_conflict(stale, &stream, ExpectedVersion::Exact(Version::FIRST), Version::new(2));
    let exists = store.append(&stream, ExpectedVersion::NoStream, batch("Lost.v1", 200, 3)).await;
    assert_conflict(exists, &stream, ExpectedVersion::NoStream, Version::new(2));

    let events = load_all(store, &stream).await;
    assert_eq!(versions(&events), vec![1, 2], "a conflicting batch must not write any of its events");
    let logged = read_log(store, &names.filter(), 100).await;
    assert_eq!(logged.len(), 2, "a conflicting batch must not reach the global log");
    assert!(logged.iter().all(|e| e.event_type == "Counted.v1"), "no event of a conflicting batch may be stored");

    let next = append(store, &stream, ExpectedVersion::Exact(Version::new(2)), batch("Counted.v1", 2, 1)).await;
    assert_eq!(next.stream_version, Version::new(3), "a conflict must leave the stream writable at its real version");
}

/// `ExpectedVersion::Any` never conflicts.
pub async fn expected_any_appends_at_every_version(store: Arc<dyn EventStore>) {
    let store = &*store;
    let names = Names::new();
    let stream = names.stream("any");
    for n in 0..4 {
        let result = append(store, &stream, ExpectedVersion::Any, batch("Counted.v1", n, 1)).await;
        assert_eq!(result.stream_version, Version::new(n + 1), "Any must append after the current last event");
    }
}

/// `NoStream` (and `Exact(0)`) succeed on a new stream and conflict once it has events.
pub async fn expected_no_stream_conflicts_once_the_stream_exists(store: Arc<dyn EventStore>) {
    let store = &*store;
    let names = Names::new();
    let stream = names.stream("nostream");
    let created = append(store, &stream, ExpectedVersion::NoStream, batch("Counted.v1", 0, 1)).await;
    assert_eq!(created.stream_version, Version::FIRST);
    let again = store.append(&stream, ExpectedVersion::NoStream, batch("Counted.v1", 1, 1)).await;
    assert_conflict(again, &stream, ExpectedVersion::NoStream, Version::FIRST);

    let zero = names.stream("exact-zero");
    let created = append(store, &zero, ExpectedVersion::Exact(Version::INITIAL), batch("Counted.v1", 0, 2)).await;
    assert_eq!(created.stream_version, Version::new(2), "Exact(0) must mean the same as NoStream");
    let again = store.append(&zero, ExpectedVersion::Exact(Version::INITIAL), batch("Counted.v1", 2, 1)).await;
    assert_conflict(again, &zero, ExpectedVersion::Exact(Version::INITIAL), Version::new(2));
}

/// `StreamExists` conflicts (reporting version 0) on a stream without events, and creates nothing.
pub async fn expected_stream_exists_conflicts_on_an_empty_stream(store: Arc<dyn EventStore>) {
    let store = &*store;
    let names = Names::new();
    let stream = names.stream("exists");
    let missing = store.append(&stream, ExpectedVersion::StreamExists, batch("Counted.v1", 0, 2)).await;
    assert_conflict(missing, &stream, ExpectedVersion::StreamExists, Version::INITIAL);
    assert_eq!(ok(store.stream_version(&stream).await, "stream_version"), Version::INITIAL);
    let listed = ok(store.list_streams(&names.prefix(), None, 10).await, "list_streams");
    assert!(listed.is_empty(), "a failed append must not create the stream, but list_streams shows {listed:?}");

    append(store, &stream, ExpectedVersion::Any, batch("Counted.v1", 0, 1)).await;
    let result = append(store, &stream, ExpectedVersion::StreamExists, batch("Counted.v1", 1, 2)).await;
    assert_eq!(result.stream_version, Version::new(3), "StreamExists must append to a stream with events");
}

/// A writer holding a stale version conflicts, as does one expecting a version the stream has not reached.
pub async fn expected_exact_conflicts_for_stale_and_future_versions(store: Arc<dyn EventStore>) {
    let store = &*store;
    let names = Names::new();
    let stream = names.stream("exact");
    append(store, &stream, ExpectedVersion::NoStream, batch("Counted.v1", 0, 2)).await;

    // Two writers both loaded the stream at version 2; the first to append wins.
    let seen = ok(store.stream_version(&stream).await, "stream_version");
    let winner = append(store, &stream, ExpectedVersion::Exact(seen), batch("Winner.v1", 2, 1)).await;
    assert_eq!(winner.stream_version, Version::new(3));
    let loser = store.append(&stream, ExpectedVersion::Exact(seen), batch("Loser.v1", 2, 2)).await;
    assert_conflict(loser, &stream, ExpectedVersion::Exact(Version::new(2)), Version::new(3));

    let future = store.append(&stream, ExpectedVersion::Exact(Version::new(10)), batch("Loser.v1", 2, 1)).await;
    assert_conflict(future, &stream, ExpectedVersion::Exact(Version::new(10)), Version::new(3));

    let retried = append(store, &stream, ExpectedVersion::Exact(Version::new(3)), batch("Retried.v1", 3, 1)).await;
    assert_eq!(retried.stream_version, Version::new(4), "a writer that reloads must be able to append");
    let types: Vec<String> = load_all(store, &stream).await.into_iter().map(|e| e.event_type.to_string()).collect();
    assert_eq!(
        types,
        ["Counted.v1", "Counted.v1", "Winner.v1", "Retried.v1"],
        "no event of a stale writer may be stored"
    );
}

/// Eight writers race to append a batch at the same expected version: one wins, seven conflict, and the
/// stream holds exactly the winner's batch. Run twice: racing to create the stream, then to extend it.
pub async fn racing_writers_at_one_expected_version_exactly_one_wins(store: Arc<dyn EventStore>) {
    const WRITERS: u8 = 8;
    const BATCH: u8 = 3;
    let names = Names::new();
    let stream = names.stream("raced");
    for (round, expected) in
        [ExpectedVersion::NoStream, ExpectedVersion::Exact(Version::new(u64::from(BATCH)))].into_iter().enumerate()
    {
        let barrier = Arc::new(tokio::sync::Barrier::new(usize::from(WRITERS)));
        let mut tasks = Vec::new();
        for writer in 0..WRITERS {
            let (store, stream, barrier) = (Arc::clone(&store), stream.clone(), Arc::clone(&barrier));
            tasks.push(tokio::spawn(async move {
                let events: Vec<NewEvent> = (0..BATCH)
                    .map(|i| NewEvent {
                        id: composable_rust_core::EventId::generate(),
                        event_type: "Raced.v1".into(),
                        codec: CodecId::Bincode,
                        payload: vec![writer, i],
                        metadata: Metadata::default(),
                        tags: Vec::new(),
                    })
                    .collect();
                barrier.wait().await;
                (writer, store.append(&stream, expected, events).await)
            }));
        }
        let mut winners = Vec::new();
        let mut conflicts = 0;
        for task in tasks {
            let (writer, result) = match task.await {
                Ok(outcome) => outcome,
                Err(error) => panic!("a racing writer task failed: {error}"),
            };
            match result {
                Ok(written) => winners.push((writer, written)),
                Err(error) if error.is_conflict() => conflicts += 1,
                Err(error) => panic!("a racing writer must win or get ConcurrencyConflict, got {error:?}"),
            }
        }
        assert_eq!(
            winners.len(),
            1,
            "round {round}: exactly one of {WRITERS} racing writers must win, got {winners:?}"
        );
        assert_eq!(conflicts, WRITERS - 1, "round {round}: every other writer must get ConcurrencyConflict");
        let (winner, written) = &winners[0];
        let end = u64::from(BATCH) * (round as u64 + 1);
        assert_eq!(written.stream_version, Version::new(end));

        let events = load_all(&*store, &stream).await;
        assert_eq!(versions(&events), (1..=end).collect::<Vec<_>>(), "round {round}: versions must stay dense");
        let tail: Vec<Vec<u8>> =
            events[events.len() - usize::from(BATCH)..].iter().map(|e| e.payload.to_vec()).collect();
        let expected_tail: Vec<Vec<u8>> = (0..BATCH).map(|i| vec![*winner, i]).collect();
        assert_eq!(tail, expected_tail, "round {round}: the stream must hold exactly the winner's batch, in order");
    }
}

/// Payload bytes (empty, binary, large), event type, codec and every metadata field load exactly as appended,
/// through `load_stream`, `read_stream` and `read_all` alike.
pub async fn event_fields_round_trip_exactly(store: Arc<dyn EventStore>) {
    let store = &*store;
    let names = Names::new();
    let stream = names.stream("fields");
    let full_metadata = Metadata {
        correlation_id: Some(Uuid::new_v4()),
        causation_id: Some(Uuid::new_v4()),
        actor: Some("user:ädä ☃ \"quoted\"".into()),
        extra: Some(r#"{"ip":"127.0.0.1","tags":["a","b"],"nested":{"n":1.5,"none":null}}"#.into()),
    };
    let appended = vec![
        NewEvent {
            id: composable_rust_core::EventId::generate(),
            event_type: "Empty.v1".into(),
            codec: CodecId::Bincode,
            payload: Vec::new(),
            metadata: Metadata::default(),
            tags: Vec::new(),
        },
        NewEvent {
            id: composable_rust_core::EventId::generate(),
            event_type: "Binary.v2".into(),
            codec: CodecId::Json,
            payload: (0..=255).collect(),
            metadata: full_metadata,
            tags: Vec::new(),
        },
        NewEvent {
            id: composable_rust_core::EventId::generate(),
            event_type: "Large.Thing.v12".into(),
            codec: CodecId::Bincode,
            payload: (0..100_000u32).map(|i| (i % 251) as u8).collect(),
            metadata: Metadata { actor: Some(String::new()), ..Metadata::default() },
            tags: Vec::new(),
        },
        NewEvent {
            id: composable_rust_core::EventId::generate(),
            event_type: "Ünïcode.v1".into(),
            codec: CodecId::Json,
            payload: b"\0\0{\"x\":\0}".to_vec(),
            metadata: Metadata { extra: Some("[]".into()), ..Metadata::correlated(Uuid::new_v4()) },
            tags: Vec::new(),
        },
    ];
    let written = append(store, &stream, ExpectedVersion::NoStream, appended.clone()).await;

    let loaded = load_all(store, &stream).await;
    let streamed: Vec<RecordedEvent> =
        ok(store.read_stream(&stream, StreamRange::all()).try_collect().await, "read_stream");
    let logged = read_log(store, &names.filter(), 100).await;
    for (path, events) in [("load_stream", &loaded), ("read_stream", &streamed), ("read_all", &logged)] {
        assert_eq!(events.len(), appended.len(), "{path} must return every appended event");
        for (i, (event, new)) in events.iter().zip(&appended).enumerate() {
            let at = format!("{path}, event {}", i + 1);
            assert_eq!(event.stream_id, stream, "{at}: stream id");
            assert_eq!(event.version, Version::new(i as u64 + 1), "{at}: version");
            assert_eq!(event.position, written.positions[i], "{at}: position");
            assert_eq!(event.event_type, new.event_type, "{at}: event type");
            assert_eq!(event.codec, new.codec, "{at}: codec");
            assert!(
                event.payload == new.payload,
                "{at}: payload bytes differ ({} bytes stored, {} loaded)",
                new.payload.len(),
                event.payload.len()
            );
            assert_eq!(event.metadata.correlation_id, new.metadata.correlation_id, "{at}: correlation id");
            assert_eq!(event.metadata.causation_id, new.metadata.causation_id, "{at}: causation id");
            assert_eq!(event.metadata.actor, new.metadata.actor, "{at}: actor");
            assert_eq!(
                json(&event.metadata.extra),
                json(&new.metadata.extra),
                "{at}: extra metadata (compared as JSON)"
            );
        }
    }
    assert_eq!(streamed, loaded, "read_stream and load_stream must return the same events");
    assert_eq!(logged, loaded, "read_all and load_stream must return the same events");
}

/// `extra` parsed as JSON, so a backend that stores it as JSONB (reformatted) still conforms.
fn json(extra: &Option<String>) -> Option<serde_json::Value> {
    extra.as_deref().map(|text| match serde_json::from_str(text) {
        Ok(value) => value,
        Err(error) => panic!("extra metadata {text:?} did not load as JSON: {error}"),
    })
}

/// `recorded_at` is the time of the append (within a minute, for clock skew) at microsecond precision,
/// and the stored value filters exactly: `recorded_from` at it includes the event, `recorded_before` excludes it.
pub async fn recorded_at_is_near_now_with_microsecond_precision(store: Arc<dyn EventStore>) {
    let store = &*store;
    let names = Names::new();
    let stream = names.stream("timed");
    let before = Utc::now();
    append(store, &stream, ExpectedVersion::NoStream, batch("Counted.v1", 0, 3)).await;
    let after = Utc::now();
    let skew = TimeDelta::seconds(60);

    let events = load_all(store, &stream).await;
    for event in &events {
        let at = event.recorded_at;
        assert!(
            at >= before - skew && at <= after + skew,
            "recorded_at {at} of version {} is not near the append ({before} .. {after})",
            event.version
        );
        assert_eq!(at.nanosecond() % 1_000, 0, "recorded_at {at} must have microsecond precision, not finer");
    }
    assert_eq!(load_all(store, &stream).await, events, "loading twice must return identical events");

    let first = &events[0];
    let from = names.filter().recorded_between(Some(first.recorded_at), None);
    let included = ok(store.read_all(GlobalPosition::START, &from, 100).await, "read_all recorded_from");
    assert!(
        included.iter().any(|e| e.position == first.position),
        "recorded_from equal to an event's recorded_at must include it (the stored time must round-trip exactly)"
    );
    let before_it = names.filter().recorded_between(None, Some(first.recorded_at));
    let excluded = ok(store.read_all(GlobalPosition::START, &before_it, 100).await, "read_all recorded_before");
    assert!(
        excluded.iter().all(|e| e.position != first.position),
        "recorded_before equal to an event's recorded_at must exclude it"
    );
}

/// Ranges select versions inclusively; ranges past the end or inverted are empty; unknown streams are empty.
pub async fn partial_ranges_load_the_requested_versions(store: Arc<dyn EventStore>) {
    let store = &*store;
    let names = Names::new();
    let stream = names.stream("ranged");
    append(store, &stream, ExpectedVersion::NoStream, batch("Counted.v1", 0, 10)).await;
    let v = Version::new;
    let cases: [(StreamRange, Vec<u64>); 9] = [
        (StreamRange::all(), (1..=10).collect()),
        (StreamRange::after(v(4)), (5..=10).collect()),
        (StreamRange::after(Version::INITIAL), (1..=10).collect()),
        (StreamRange::between(v(3), v(6)), (3..=6).collect()),
        (StreamRange::between(v(5), v(5)), vec![5]),
        (StreamRange::between(v(7), v(20)), (7..=10).collect()),
        (StreamRange::after(v(10)), vec![]),
        (StreamRange::between(v(6), v(3)), vec![]),
        (StreamRange { from: Version::INITIAL, to: Some(v(2)) }, vec![1, 2]),
    ];
    for (range, expected) in cases {
        let loaded = ok(store.load_stream(&stream, range).await, "load_stream");
        assert_eq!(versions(&loaded), expected, "load_stream with {range:?}");
        let streamed: Vec<RecordedEvent> = ok(store.read_stream(&stream, range).try_collect().await, "read_stream");
        assert_eq!(versions(&streamed), expected, "read_stream with {range:?}");
        let mut visited = Vec::new();
        let mut visit = |event: &RecordedEvent| {
            visited.push(event.version.get());
            ControlFlow::Continue(())
        };
        ok(store.visit_stream(&stream, range, &mut visit).await, "visit_stream");
        assert_eq!(visited, expected, "visit_stream with {range:?}");
        assert!(
            loaded.iter().all(|e| e.payload == (e.version.get() - 1).to_le_bytes()[..]),
            "payloads must match versions"
        );
    }
    let unknown = names.stream("never-written");
    let nothing = ok(store.load_stream(&unknown, StreamRange::all()).await, "load_stream of an unknown stream");
    assert!(nothing.is_empty(), "an unknown stream must load as no events, not an error");
}

/// `StreamRange::limit(n)` reads at most the first `n` events of the range, through every stream read
/// (`load_stream`, `read_stream`, `visit_stream`); a limit of 0 reads none.
pub async fn a_stream_range_limit_reads_at_most_that_many_events(store: Arc<dyn EventStore>) {
    let store = &*store;
    let names = Names::new();
    let stream = names.stream("limited");
    append(store, &stream, ExpectedVersion::NoStream, batch("Counted.v1", 0, 10)).await;
    let v = Version::new;
    let cases: [(StreamRange, Vec<u64>); 7] = [
        (StreamRange::all().limit(3), vec![1, 2, 3]),
        (StreamRange::after(v(4)).limit(2), vec![5, 6]),
        (StreamRange::between(v(3), v(4)).limit(10), vec![3, 4]),
        (StreamRange::after(v(8)).limit(5), vec![9, 10]),
        (StreamRange::all().limit(0), vec![]),
        (StreamRange::after(Version::INITIAL).limit(1), vec![1]),
        (StreamRange { from: Version::INITIAL, to: None }.limit(2), vec![1, 2]),
    ];
    for (range, expected) in cases {
        let loaded = ok(store.load_stream(&stream, range).await, "load_stream");
        assert_eq!(versions(&loaded), expected, "load_stream with {range:?}");
        let streamed: Vec<RecordedEvent> = ok(store.read_stream(&stream, range).try_collect().await, "read_stream");
        assert_eq!(versions(&streamed), expected, "read_stream with {range:?}");
        let mut visited = Vec::new();
        let mut visit = |event: &RecordedEvent| {
            visited.push(event.version.get());
            ControlFlow::Continue(())
        };
        ok(store.visit_stream(&stream, range, &mut visit).await, "visit_stream");
        assert_eq!(visited, expected, "visit_stream with {range:?}");
    }
}

/// A stream of 10,000 events, appended in batches of 500, loads completely and in order.
pub async fn long_stream_loads_in_order(store: Arc<dyn EventStore>) {
    const TOTAL: u64 = 10_000;
    const BATCH: u64 = 500;
    let store = &*store;
    let names = Names::new();
    let stream = names.stream("long");
    for first in (0..TOTAL).step_by(BATCH as usize) {
        append(store, &stream, ExpectedVersion::Exact(Version::new(first)), batch("Counted.v1", first, BATCH)).await;
    }
    assert_eq!(ok(store.stream_version(&stream).await, "stream_version"), Version::new(TOTAL));

    let mut reading = store.read_stream(&stream, StreamRange::all());
    let mut expected = 1;
    while let Some(event) = ok(reading.try_next().await, "read_stream of a long stream") {
        assert_eq!(event.version.get(), expected, "read_stream must yield versions in order without gaps");
        assert_eq!(event.payload, (expected - 1).to_le_bytes()[..], "version {expected} holds another event's payload");
        expected += 1;
    }
    assert_eq!(expected - 1, TOTAL, "read_stream must yield all {TOTAL} events");

    let loaded = load_all(store, &stream).await;
    assert_eq!(versions(&loaded), (1..=TOTAL).collect::<Vec<_>>(), "load_stream must return all events in order");
    let mut visited = Vec::new();
    let mut visit = |event: &RecordedEvent| {
        visited.push(event.clone());
        ControlFlow::Continue(())
    };
    ok(store.visit_stream(&stream, StreamRange::all(), &mut visit).await, "visit_stream of a long stream");
    assert!(visited == loaded, "visit_stream must show the events load_stream returns, in order");
    let mut seen = 0;
    let mut stop_at_1500 = |_: &RecordedEvent| {
        seen += 1;
        if seen == 1500 { ControlFlow::Break(()) } else { ControlFlow::Continue(()) }
    };
    ok(store.visit_stream(&stream, StreamRange::all(), &mut stop_at_1500).await, "visit_stream stopped part way");
    assert_eq!(seen, 1500, "visit_stream must stop at the first Break");
    let tail = ok(store.load_stream(&stream, StreamRange::after(Version::new(TOTAL - 10))).await, "load the tail");
    assert_eq!(versions(&tail), ((TOTAL - 9)..=TOTAL).collect::<Vec<_>>(), "the tail after a snapshot version");
}

/// Streams number their events independently and never see each other's events, even with similar ids.
pub async fn streams_are_isolated(store: Arc<dyn EventStore>) {
    let store = &*store;
    let names = Names::new();
    let (a, b, a10) = (names.stream("1"), names.stream("2"), names.stream("10"));
    append(store, &a, ExpectedVersion::NoStream, batch("A.v1", 0, 2)).await;
    append(store, &b, ExpectedVersion::NoStream, batch("B.v1", 0, 1)).await;
    append(store, &a10, ExpectedVersion::NoStream, batch("A10.v1", 0, 4)).await;
    append(store, &a, ExpectedVersion::Exact(Version::new(2)), batch("A.v1", 2, 1)).await;
    let conflict = store.append(&b, ExpectedVersion::Exact(Version::new(3)), batch("B.v1", 9, 1)).await;
    assert_conflict(conflict, &b, ExpectedVersion::Exact(Version::new(3)), Version::FIRST);

    for (stream, event_type, count) in [(&a, "A.v1", 3), (&b, "B.v1", 1), (&a10, "A10.v1", 4)] {
        let events = load_all(store, stream).await;
        assert_eq!(versions(&events), (1..=count).collect::<Vec<_>>(), "{stream} must number its own events from 1");
        assert!(
            events.iter().all(|e| &e.stream_id == stream && e.event_type == event_type),
            "{stream} must load only its own events"
        );
        assert_eq!(ok(store.stream_version(stream).await, "stream_version"), Version::new(count));
    }
}

/// An empty batch is refused as invalid input, before any version check, and creates nothing.
pub async fn empty_batch_is_invalid_input(store: Arc<dyn EventStore>) {
    let store = &*store;
    let names = Names::new();
    let stream = names.stream("empty");
    assert_invalid_input(store.append(&stream, ExpectedVersion::Any, Vec::new()).await, "an empty batch");
    assert_eq!(ok(store.stream_version(&stream).await, "stream_version"), Version::INITIAL);

    append(store, &stream, ExpectedVersion::NoStream, batch("Counted.v1", 0, 1)).await;
    let stale_and_empty = store.append(&stream, ExpectedVersion::NoStream, Vec::new()).await;
    assert_invalid_input(stale_and_empty, "an empty batch with a stale expected version");
}

/// Invalid event types and non-JSON `extra` metadata are refused as invalid input; the batch writes nothing.
pub async fn invalid_events_are_invalid_input_and_write_nothing(store: Arc<dyn EventStore>) {
    let store = &*store;
    let names = Names::new();
    let stream = names.stream("invalid");
    let bad_json = NewEvent {
        id: composable_rust_core::EventId::generate(),
        metadata: Metadata { extra: Some("{not json".into()), ..Metadata::default() },
        ..numbered("Ok.v1", 1)
    };
    let bad: [(&str, NewEvent); 4] = [
        ("an empty event type", numbered("", 1)),
        ("an event type with a control character", numbered("Bad\nType.v1", 1)),
        ("an event type longer than 255 bytes", numbered(&"T".repeat(256), 1)),
        ("extra metadata that is not JSON", bad_json),
    ];
    for (what, event) in bad {
        let result = store.append(&stream, ExpectedVersion::Any, vec![numbered("Ok.v1", 0), event]).await;
        assert_invalid_input(result, &format!("a batch holding {what}"));
        assert_eq!(
            ok(store.stream_version(&stream).await, "stream_version"),
            Version::INITIAL,
            "a batch with {what} must write nothing"
        );
    }
    let logged = read_log(store, &LogFilter::all().stream_prefix(names.prefix()), 10).await;
    assert!(logged.is_empty(), "rejected batches must not reach the global log");
    let longest = numbered(&"T".repeat(255), 0);
    let written = append(store, &stream, ExpectedVersion::NoStream, vec![longest]).await;
    assert_eq!(written.stream_version, Version::FIRST, "an event type of exactly 255 bytes is valid");
}
