//! Cases about the global log (`read_all` and `read_log`: filters, paging, oldest and newest first) and about
//! `list_streams`.

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use composable_rust_core::{
    EventStore, ExpectedVersion, GlobalPosition, LogCursor, LogFilter, Metadata, NewEvent, RecordedEvent, StreamId,
    StreamInfo, Version,
};
use uuid::Uuid;

use super::{Names, append, batch, load_all, numbered, ok, read_log, read_newest_first};

/// Stream ids and versions, in the order a list of events holds them.
fn ids(events: &[RecordedEvent]) -> Vec<(String, u64)> {
    events.iter().map(|e| (e.stream_id.as_str().to_owned(), e.version.get())).collect()
}

/// The global log holds every event once, in append order across streams, at strictly increasing positions
/// equal to the ones the appends reported and the stream loads carry.
pub async fn global_log_orders_events_by_strictly_increasing_position(store: Arc<dyn EventStore>) {
    let store = &*store;
    let names = Names::new();
    let (a, b, c) = (names.stream("a"), names.stream("b"), names.stream("c"));
    let plan: [(&StreamId, u64); 5] = [(&a, 2), (&b, 1), (&a, 1), (&c, 3), (&b, 2)];
    let mut expected = Vec::new();
    let mut reported = Vec::new();
    for (stream, count) in plan {
        let before = ok(store.stream_version(stream).await, "stream_version").get();
        let written = append(store, stream, ExpectedVersion::Any, batch("Logged.v1", before, count)).await;
        expected.extend((before + 1..=before + count).map(|v| (stream.as_str().to_owned(), v)));
        reported.extend(written.positions);
    }

    let logged = read_log(store, &names.filter(), 100).await;
    assert_eq!(ids(&logged), expected, "the global log must list events in the order they were appended");
    let positions: Vec<GlobalPosition> = logged.iter().map(|e| e.position).collect();
    assert!(positions.windows(2).all(|w| w[0] < w[1]), "positions must strictly increase: {positions:?}");
    assert_eq!(positions, reported, "the log must hold the positions the appends reported");
    for stream in [&a, &b, &c] {
        let loaded = load_all(store, stream).await;
        let from_log: Vec<RecordedEvent> = logged.iter().filter(|e| &e.stream_id == stream).cloned().collect();
        assert_eq!(from_log, loaded, "the log and {stream} must hold identical events");
    }
}

/// Paging with `after` = the last position of the previous page visits every event exactly once, for any
/// page size, filtered or not.
pub async fn paging_the_global_log_covers_each_event_once(store: Arc<dyn EventStore>) {
    let store = &*store;
    let names = Names::new();
    for n in 0..25 {
        let stream = names.stream(&format!("p{}", n % 4));
        append(store, &stream, ExpectedVersion::Any, vec![numbered("Paged.v1", n)]).await;
    }
    let everything = read_log(store, &names.filter(), 1_000).await;
    assert_eq!(everything.len(), 25, "the log must hold each of the 25 appended events");
    let positions: Vec<GlobalPosition> = everything.iter().map(|e| e.position).collect();
    for page in [1, 2, 7, 25, 26] {
        let paged: Vec<GlobalPosition> =
            read_log(store, &names.filter(), page).await.iter().map(|e| e.position).collect();
        assert_eq!(paged, positions, "paging by {page} must visit every event exactly once, in order");
    }

    // Unfiltered pages (other tests may share the store): this case's events appear once each, in order.
    let mut after = GlobalPosition::new(positions[0].get() - 1);
    let last = positions[positions.len() - 1];
    let mut mine = Vec::new();
    while after < last {
        let page = ok(store.read_all(after, &LogFilter::all(), 4).await, "read_all without a filter");
        let Some(end) = page.last() else { break };
        assert!(page.iter().all(|e| e.position > after), "read_all must return only positions after `after`");
        after = end.position;
        mine.extend(page.iter().filter(|e| e.stream_id.as_str().starts_with(&names.prefix())).map(|e| e.position));
    }
    assert_eq!(mine, positions, "unfiltered paging must visit this case's events exactly once, in order");
}

/// `limit` caps the number of matching events returned (not the number scanned); a limit of 0 returns none.
pub async fn read_all_limit_counts_matching_events(store: Arc<dyn EventStore>) {
    let store = &*store;
    let names = Names::new();
    let stream = names.stream("limited");
    let events: Vec<NewEvent> = (0..10).map(|n| numbered(if n % 2 == 0 { "Even.v1" } else { "Odd.v1" }, n)).collect();
    append(store, &stream, ExpectedVersion::NoStream, events).await;

    let odd = names.filter().event_types(["Odd.v1"]);
    let page = ok(store.read_all(GlobalPosition::START, &odd, 3).await, "read_all with a limit");
    assert_eq!(versions_of(&page), vec![2, 4, 6], "a limit of 3 must return the first 3 matching events");
    let rest = ok(store.read_all(page[2].position, &odd, 100).await, "read_all the rest");
    assert_eq!(versions_of(&rest), vec![8, 10], "the next page must continue after the last position");
    let none = ok(store.read_all(GlobalPosition::START, &names.filter(), 0).await, "read_all with limit 0");
    assert!(none.is_empty(), "a limit of 0 must return no events");
}

fn versions_of(events: &[RecordedEvent]) -> Vec<u64> {
    events.iter().map(|e| e.version.get()).collect()
}

/// `event_types` keeps only the listed types; an empty list keeps all.
pub async fn filter_by_event_type_matches_only_those_types(store: Arc<dyn EventStore>) {
    let store = &*store;
    let names = Names::new();
    let stream = names.stream("typed");
    let types = ["Placed.v1", "Shipped.v1", "Cancelled.v1", "Placed.v1", "Placed.v2"];
    let events: Vec<NewEvent> = (0u64..).zip(types).map(|(n, t)| numbered(t, n)).collect();
    append(store, &stream, ExpectedVersion::NoStream, events).await;

    let chosen = read_log(store, &names.filter().event_types(["Placed.v1", "Cancelled.v1"]), 100).await;
    assert_eq!(
        versions_of(&chosen),
        vec![1, 3, 4],
        "event_types must keep exactly the listed types (schema version included)"
    );
    let unknown = read_log(store, &names.filter().event_types(["Nope.v1"]), 100).await;
    assert!(unknown.is_empty(), "a type no event has must match nothing");
    let all = read_log(store, &names.filter().event_types(Vec::<String>::new()), 100).await;
    assert_eq!(all.len(), types.len(), "an empty type list must match every type");
}

/// `stream_prefix` matches ids that start with the text, literally (no `LIKE` wildcards); `category` matches
/// `category-*` only.
pub async fn filter_by_stream_prefix_and_category_matches_only_those_streams(store: Arc<dyn EventStore>) {
    let store = &*store;
    let names = Names::new();
    let other_category = format!("{}x", names.category);
    let other = |name: &str| match StreamId::new(format!("{other_category}-{name}")) {
        Ok(id) => id,
        Err(error) => panic!("the conformance suite built an invalid stream id: {error}"),
    };
    let streams = [
        names.stream("1"),
        names.stream("12"),
        names.stream("2"),
        names.stream("a_b"),
        names.stream("a%b"),
        names.stream("axb"),
        names.stream("A_B"),
        other("1"),
    ];
    for stream in &streams {
        append(store, stream, ExpectedVersion::NoStream, batch("Prefixed.v1", 0, 1)).await;
    }
    let stream_ids =
        |events: Vec<RecordedEvent>| -> Vec<StreamId> { events.into_iter().map(|e| e.stream_id).collect() };

    let category = stream_ids(read_log(store, &LogFilter::all().category(&names.category), 100).await);
    assert_eq!(category, streams[..7], "category must match exactly the streams `<category>-*`");
    let other_only = stream_ids(read_log(store, &LogFilter::all().category(&other_category), 100).await);
    assert_eq!(other_only, streams[7..], "a category must not match a longer category that shares its prefix");

    let cases: [(&str, &[usize]); 4] = [("1", &[0, 1]), ("12", &[1]), ("a_", &[3]), ("a%", &[4])];
    for (suffix, expected) in cases {
        let prefix = format!("{}{suffix}", names.prefix());
        let got = stream_ids(read_log(store, &LogFilter::all().stream_prefix(prefix.clone()), 100).await);
        let want: Vec<StreamId> = expected.iter().map(|&i| streams[i].clone()).collect();
        assert_eq!(
            got, want,
            "stream_prefix {prefix:?} must match ids starting with exactly that text (case-sensitive, no wildcards)"
        );
    }
}

/// `correlation_id` keeps only events carrying that correlation id, across streams.
pub async fn filter_by_correlation_id_matches_only_that_correlation(store: Arc<dyn EventStore>) {
    let store = &*store;
    let names = Names::new();
    let (first, second) = (Uuid::new_v4(), Uuid::new_v4());
    let with = |n: u64, metadata: Metadata| NewEvent {
        id: composable_rust_core::EventId::generate(),
        metadata,
        ..numbered("Correlated.v1", n)
    };
    append(
        store,
        &names.stream("a"),
        ExpectedVersion::Any,
        vec![with(0, Metadata::correlated(first)), with(1, Metadata::default())],
    )
    .await;
    append(store, &names.stream("b"), ExpectedVersion::Any, vec![with(2, Metadata::correlated(second))]).await;
    let caused = Metadata { causation_id: Some(first), ..Metadata::correlated(first) };
    append(store, &names.stream("c"), ExpectedVersion::Any, vec![with(3, caused)]).await;

    let got = read_log(store, &names.filter().correlation_id(first), 100).await;
    let payloads: Vec<Vec<u8>> = got.iter().map(|e| e.payload.to_vec()).collect();
    assert_eq!(
        payloads,
        [0u64.to_le_bytes().to_vec(), 3u64.to_le_bytes().to_vec()],
        "correlation_id must keep exactly the events correlated with it"
    );
    let alone = read_log(store, &LogFilter::all().correlation_id(second), 100).await;
    assert_eq!(alone.len(), 1, "a correlation id must match its events in every stream and nothing else");
    let unknown = read_log(store, &LogFilter::all().correlation_id(Uuid::new_v4()), 100).await;
    assert!(unknown.is_empty(), "an unused correlation id must match nothing");
}

/// `recorded_from` is inclusive and `recorded_before` exclusive: `[from, before)`.
pub async fn filter_by_recorded_time_is_a_half_open_window(store: Arc<dyn EventStore>) {
    let store = &*store;
    let names = Names::new();
    let mut batches = Vec::new();
    for (i, name) in ["early", "middle", "late"].into_iter().enumerate() {
        if i > 0 {
            // Time must visibly pass between the batches; this is not a timing measurement.
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let stream = names.stream(name);
        append(store, &stream, ExpectedVersion::NoStream, batch("Timed.v1", 0, 2)).await;
        batches.push(load_all(store, &stream).await);
    }
    let start = |b: &Vec<RecordedEvent>| b.iter().map(|e| e.recorded_at).min();
    let (Some(t_middle), Some(t_late)) = (start(&batches[1]), start(&batches[2])) else {
        panic!("every batch must load its events")
    };
    let early_end = batches[0].iter().map(|e| e.recorded_at).max();
    assert!(
        early_end < Some(t_middle) && t_middle < t_late,
        "recorded_at must increase between appends 20 ms apart: {early_end:?}, {t_middle}, {t_late}"
    );
    let stream_names = |events: Vec<RecordedEvent>| -> Vec<String> {
        let mut seen: Vec<String> = Vec::new();
        for event in events {
            let name = event.stream_id.as_str().trim_start_matches(&names.prefix()).to_owned();
            if !seen.contains(&name) {
                seen.push(name);
            }
        }
        seen
    };
    let cases = [
        (Some(t_middle), None, vec!["middle", "late"]),
        (None, Some(t_middle), vec!["early"]),
        (Some(t_middle), Some(t_late), vec!["middle"]),
        (Some(t_late), Some(t_late), vec![]),
    ];
    for (from, before, expected) in cases {
        let filter = names.filter().recorded_between(from, before);
        let got = stream_names(read_log(store, &filter, 100).await);
        assert_eq!(got, expected, "recorded window [{from:?}, {before:?}) must keep exactly these batches");
    }
}

/// Every set field of a filter must match.
pub async fn filter_fields_must_all_match(store: Arc<dyn EventStore>) {
    let store = &*store;
    let names = Names::new();
    let correlation = Uuid::new_v4();
    let event = |event_type: &str, correlated: bool| NewEvent {
        id: composable_rust_core::EventId::generate(),
        metadata: if correlated { Metadata::correlated(correlation) } else { Metadata::default() },
        ..numbered(event_type, 0)
    };
    let (x, y) = (names.stream("x-1"), names.stream("y-1"));
    append(store, &x, ExpectedVersion::Any, vec![event("A.v1", true), event("A.v1", false), event("B.v1", true)]).await;
    append(store, &y, ExpectedVersion::Any, vec![event("A.v1", true)]).await;

    let filter = LogFilter::all()
        .stream_prefix(format!("{}x-", names.prefix()))
        .event_types(["A.v1"])
        .correlation_id(correlation);
    let got = read_log(store, &filter, 100).await;
    assert_eq!(
        ids(&got),
        vec![(x.as_str().to_owned(), 1)],
        "a filter must keep only events matching all of its fields"
    );
}

/// A reader tailing the log while writers commit concurrently sees every event exactly once: no event ever
/// commits at a position below one the reader has already passed.
pub async fn tailing_reader_sees_every_event_committed_by_concurrent_writers(store: Arc<dyn EventStore>) {
    const WRITERS: u64 = 4;
    const APPENDS: u64 = 40;
    let names = Arc::new(Names::new());
    let done = Arc::new(AtomicBool::new(false));

    let reader = {
        let (store, names, done) = (Arc::clone(&store), Arc::clone(&names), Arc::clone(&done));
        tokio::spawn(async move {
            let filter = names.filter();
            let mut seen = Vec::new();
            let mut after = GlobalPosition::START;
            loop {
                let finished = done.load(Ordering::Acquire);
                let page = ok(store.read_all(after, &filter, 16).await, "tail the global log");
                if let Some(last) = page.last() {
                    assert!(
                        page.iter().all(|e| e.position > after),
                        "read_all returned a position at or before `after`"
                    );
                    after = last.position;
                    seen.extend(page.iter().map(|e| e.position));
                } else if finished {
                    break seen;
                } else {
                    tokio::task::yield_now().await;
                }
            }
        })
    };
    let writers: Vec<_> = (0..WRITERS)
        .map(|w| {
            let (store, stream) = (Arc::clone(&store), names.stream(&format!("w{w}")));
            tokio::spawn(async move {
                for n in 0..APPENDS {
                    append(&*store, &stream, ExpectedVersion::Exact(Version::new(n)), vec![numbered("Tailed.v1", n)])
                        .await;
                }
            })
        })
        .collect();
    for writer in writers {
        if let Err(error) = writer.await {
            panic!("a writer task failed: {error}");
        }
    }
    done.store(true, Ordering::Release);
    let seen = match reader.await {
        Ok(seen) => seen,
        Err(error) => panic!("the tailing reader failed: {error}"),
    };
    let all: Vec<GlobalPosition> = read_log(&*store, &names.filter(), 1_000).await.iter().map(|e| e.position).collect();
    assert_eq!(all.len() as u64, WRITERS * APPENDS, "the log must hold every appended event");
    let unique: HashSet<&GlobalPosition> = seen.iter().collect();
    assert_eq!(unique.len(), seen.len(), "the tailing reader saw an event twice");
    assert_eq!(
        seen, all,
        "the tailing reader missed events: a commit became visible below a position it had already read"
    );
}

/// `list_streams` lists streams with their versions in byte-wise id order, filtered by a literal prefix,
/// starting after `after`, at most `limit` per call.
pub async fn list_streams_pages_by_prefix_after_and_limit_in_byte_order(store: Arc<dyn EventStore>) {
    let store = &*store;
    let names = Names::new();
    let suffixes = ["b", "B", "a", "a-1", "a_", "_", "é", "Z", "a10", "a2", "~"];
    let mut expected: Vec<StreamInfo> = Vec::new();
    for (count, suffix) in (1u64..).zip(suffixes) {
        let stream = names.stream(suffix);
        append(store, &stream, ExpectedVersion::NoStream, batch("Listed.v1", 0, count)).await;
        expected.push(StreamInfo { stream_id: stream, version: Version::new(count) });
    }
    // Another category sharing the text prefix must not appear under this one's `category-` prefix.
    let neighbour = match StreamId::new(format!("{}x-1", names.category)) {
        Ok(id) => id,
        Err(error) => panic!("the conformance suite built an invalid stream id: {error}"),
    };
    append(store, &neighbour, ExpectedVersion::NoStream, batch("Listed.v1", 0, 1)).await;
    expected.sort_by(|a, b| a.stream_id.as_str().as_bytes().cmp(b.stream_id.as_str().as_bytes()));
    let prefix = names.prefix();

    let all = ok(store.list_streams(&prefix, None, 100).await, "list_streams");
    assert_eq!(all, expected, "list_streams must list every stream under the prefix with its version, in byte order");

    for limit in [1, 3, 4] {
        let mut paged = Vec::new();
        let mut after: Option<StreamId> = None;
        loop {
            let page = ok(store.list_streams(&prefix, after.as_ref(), limit).await, "list_streams page");
            assert!(page.len() <= limit, "list_streams returned {} streams for a limit of {limit}", page.len());
            let Some(last) = page.last() else { break };
            after = Some(last.stream_id.clone());
            paged.extend(page);
        }
        assert_eq!(paged, expected, "paging list_streams by {limit} must list each stream once, in order");
    }

    let narrowed = ok(store.list_streams(&format!("{prefix}a"), None, 100).await, "list_streams with a longer prefix");
    let want: Vec<StreamInfo> =
        expected.iter().filter(|s| s.stream_id.as_str().starts_with(&format!("{prefix}a"))).cloned().collect();
    assert_eq!(narrowed, want, "a longer prefix must narrow the list");
    let literal =
        ok(store.list_streams(&format!("{prefix}a_"), None, 100).await, "list_streams with `_` in the prefix");
    assert_eq!(literal.len(), 1, "`_` in a prefix is a literal character, not a wildcard: {literal:?}");

    let gap = match StreamId::new(format!("{prefix}a0")) {
        Ok(id) => id,
        Err(error) => panic!("the conformance suite built an invalid stream id: {error}"),
    };
    let after_gap = ok(store.list_streams(&prefix, Some(&gap), 100).await, "list_streams after a missing id");
    let want: Vec<StreamInfo> = expected.iter().filter(|s| s.stream_id.as_str() > gap.as_str()).cloned().collect();
    assert_eq!(after_gap, want, "`after` need not be an existing stream");
    let none = ok(store.list_streams(&prefix, None, 0).await, "list_streams with limit 0");
    assert!(none.is_empty(), "a limit of 0 must list no streams");
}

/// `actor` keeps only the events whose metadata names exactly that actor, across streams.
pub async fn filter_by_actor_matches_only_that_actor(store: Arc<dyn EventStore>) {
    let store = &*store;
    let names = Names::new();
    let by = |n: u64, actor: Option<&str>| NewEvent {
        id: composable_rust_core::EventId::generate(),
        metadata: Metadata { actor: actor.map(str::to_owned), ..Metadata::default() },
        ..numbered("Acted.v1", n)
    };
    append(
        store,
        &names.stream("a"),
        ExpectedVersion::Any,
        vec![by(0, Some("alice")), by(1, None), by(2, Some("bob")), by(3, Some("Alice"))],
    )
    .await;
    append(store, &names.stream("b"), ExpectedVersion::Any, vec![by(4, Some("alice")), by(5, Some("alice-2"))]).await;

    let payloads = |events: Vec<RecordedEvent>| -> Vec<u64> {
        events.iter().map(|e| e.payload.iter().rev().fold(0, |n, b| (n << 8) | u64::from(*b))).collect()
    };
    let alice = payloads(read_log(store, &names.filter().actor("alice"), 100).await);
    assert_eq!(
        alice,
        vec![0, 4],
        "actor must keep exactly that actor's events, in every stream (case-sensitive, whole)"
    );
    let bob = payloads(read_log(store, &names.filter().actor("bob"), 1).await);
    assert_eq!(bob, vec![2], "actor must match when paged one event at a time");
    let nobody = read_log(store, &names.filter().actor("carol"), 100).await;
    assert!(nobody.is_empty(), "an actor with no events must match nothing");
    let newest = payloads(read_newest_first(store, &names.filter().actor("alice"), 1).await);
    assert_eq!(newest, vec![4, 0], "actor must match newest first too");
}

/// `LogCursor::Newest` reads the log backwards from its newest event; `LogCursor::next` pages on with
/// `Before(last position)`, which excludes that position, until a short page: every event once, in
/// exactly the reverse of the oldest-first order, for any page size.
pub async fn newest_first_reads_the_log_backwards_and_pages_by_before(store: Arc<dyn EventStore>) {
    let store = &*store;
    let names = Names::new();
    for n in 0..25 {
        let stream = names.stream(&format!("n{}", n % 3));
        append(store, &stream, ExpectedVersion::Any, vec![numbered("Reversed.v1", n)]).await;
    }
    let mut oldest_first: Vec<GlobalPosition> =
        read_log(store, &names.filter(), 1_000).await.iter().map(|e| e.position).collect();
    assert_eq!(oldest_first.len(), 25, "the log must hold each of the 25 appended events");
    oldest_first.reverse();
    for page in [1, 2, 7, 25, 26, 1_000] {
        let newest_first: Vec<GlobalPosition> =
            read_newest_first(store, &names.filter(), page).await.iter().map(|e| e.position).collect();
        assert_eq!(newest_first, oldest_first, "newest first by {page} must be the log in reverse, each event once");
    }

    let (newest, oldest) = (oldest_first[0], oldest_first[24]);
    let first = ok(store.read_log(LogCursor::Newest, &names.filter(), 3).await, "read_log newest first");
    assert_eq!(first.first().map(|e| e.position), Some(newest), "the first page must start at the newest event");
    let below = ok(store.read_log(LogCursor::Before(newest), &names.filter(), 1).await, "read_log before a position");
    assert_eq!(
        below.iter().map(|e| e.position).collect::<Vec<_>>(),
        vec![oldest_first[1]],
        "Before(p) must exclude p and start just below it"
    );
    let nothing = ok(store.read_log(LogCursor::Before(oldest), &names.filter(), 10).await, "read_log below the oldest");
    assert!(nothing.is_empty(), "nothing of this case lies below its oldest event");
    for cursor in [LogCursor::Before(GlobalPosition::START), LogCursor::Before(GlobalPosition::new(1))] {
        let empty = ok(store.read_log(cursor, &LogFilter::all(), 10).await, "read_log below the first position");
        assert!(empty.is_empty(), "{cursor:?} must read nothing: no position lies below it");
    }
    let zero = ok(store.read_log(LogCursor::Newest, &names.filter(), 0).await, "read_log with limit 0");
    assert!(zero.is_empty(), "a limit of 0 must return no events, newest first too");

    // Unfiltered, from just above this case's newest event (other tests may share the store).
    let mut cursor = LogCursor::Before(GlobalPosition::new(newest.get() + 1));
    let mut mine = Vec::new();
    while mine.len() < 25 {
        let page = ok(store.read_log(cursor, &LogFilter::all(), 4).await, "read_log newest first without a filter");
        assert!(page.windows(2).all(|w| w[0].position > w[1].position), "a newest-first page must go down");
        assert!(page.iter().all(|e| cursor.admits(e.position)), "read_log must return only positions below `before`");
        if page.is_empty() {
            break;
        }
        cursor = cursor.next(&page);
        mine.extend(page.iter().filter(|e| e.stream_id.as_str().starts_with(&names.prefix())).map(|e| e.position));
    }
    assert_eq!(mine, oldest_first, "unfiltered newest-first paging must visit this case's events once, newest first");
}

/// Every filter selects the same events newest first as oldest first, in reverse, paged or not: event
/// types (one, several, many), category, stream prefix, correlation id, actor, recorded time, and all of
/// them together.
pub async fn every_filter_reads_the_same_events_newest_first(store: Arc<dyn EventStore>) {
    let store = &*store;
    let names = Names::new();
    let correlation = Uuid::new_v4();
    let event = |n: u64| NewEvent {
        id: composable_rust_core::EventId::generate(),
        metadata: Metadata {
            correlation_id: (n % 3 == 0).then_some(correlation),
            actor: (n % 4 == 0).then(|| "alice".to_owned()),
            ..Metadata::default()
        },
        ..numbered(["A.v1", "B.v1", "C.v1", "D.v1", "E.v1"][usize::try_from(n % 5).unwrap_or(0)], n)
    };
    for n in 0..40 {
        let stream = names.stream(&format!("{}{}", ["x", "y"][usize::try_from(n % 2).unwrap_or(0)], n % 3));
        append(store, &stream, ExpectedVersion::Any, vec![event(n)]).await;
    }
    let all = read_log(store, &names.filter(), 1_000).await;
    let middle = all[10].recorded_at;
    let late = all[30].recorded_at;
    let many_types: Vec<String> = (0..40).map(|n| format!("T{n}.v1")).chain(["B.v1".to_owned()]).collect();
    let filters = [
        ("one type", names.filter().event_types(["C.v1"])),
        ("two types", names.filter().event_types(["A.v1", "D.v1"])),
        ("41 types", names.filter().event_types(many_types)),
        ("category", LogFilter::all().category(&names.category)),
        ("stream prefix", LogFilter::all().stream_prefix(format!("{}x", names.prefix()))),
        ("correlation id", names.filter().correlation_id(correlation)),
        ("actor", names.filter().actor("alice")),
        ("recorded time", names.filter().recorded_between(Some(middle), Some(late))),
        (
            "all together",
            LogFilter::all()
                .stream_prefix(format!("{}y", names.prefix()))
                .event_types(["A.v1", "E.v1", "C.v1"])
                .correlation_id(correlation)
                .recorded_between(Some(all[0].recorded_at), None),
        ),
        ("actor and type", names.filter().actor("alice").event_types(["A.v1"])),
    ];
    for (what, filter) in filters {
        let expected: Vec<GlobalPosition> =
            all.iter().filter(|e| filter.matches(e)).map(|e| e.position).rev().collect();
        // (Times may repeat on a fast store: the window of two times may hold nothing.)
        assert!(!expected.is_empty() || what == "recorded time", "the case must give {what} something to match");
        let oldest_first: Vec<GlobalPosition> =
            read_log(store, &filter, 3).await.iter().rev().map(|e| e.position).collect();
        assert_eq!(oldest_first, expected, "filtering by {what} oldest first must keep exactly the matching events");
        for page in [1, 3, 100] {
            let newest_first: Vec<GlobalPosition> =
                read_newest_first(store, &filter, page).await.iter().map(|e| e.position).collect();
            assert_eq!(
                newest_first, expected,
                "filtering by {what} newest first, by {page}, must read the same events"
            );
        }
    }
}
