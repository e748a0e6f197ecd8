//! Cases about consistency beyond one stream (the Dynamic Consistency Boundary pattern, dcb.events): tags on
//! events, reads by query across streams, append conditions and atomic multi-stream appends.
//!
//! The rules they pin, one per line:
//! - Tags round-trip exactly, in the order appended, through every read; an untagged event reads back untagged.
//! - A tag that is empty, holds a control character or is longer than 255 bytes is `InvalidInput` wherever it
//!   reaches the store (append, atomic append, condition, read by query), and nothing is written.
//! - An atomic append with no stream, a stream named twice, an empty batch or a condition item without a tag
//!   is `InvalidInput`, and nothing is written.
//! - A read by query returns the events matching any item (one of its types, all of its tags), once each, in
//!   position order, after `after`, at most `limit`; a query without items matches nothing.
//! - Its horizon is the last event's position when the page is full, and otherwise at least `after` and every
//!   returned position, with every later append above it.
//! - A condition fails the append with `ConditionFailed` naming the first matching position after `after`,
//!   and only when such an event exists; a failed append writes nothing to any of its streams.
//! - Of writers racing to claim one tag under `none_exist`, exactly one wins and every other gets
//!   `ConditionFailed`; writers booking a limited resource never overbook it; writers whose queries do not
//!   overlap never fail each other.
//! - An atomic append across streams is all or nothing: one stale expectation is a `ConcurrencyConflict`
//!   naming that stream and writes nothing; a retry returns the stored results; a reused id is `EventIdInUse`.
//! - Under any interleaving, no committed conditional append has an event matching its query between the
//!   position it read up to and its own first event.
//!
//! Every case tags its events with its own random prefix ([`tag`]) and queries only by its own tags, so
//! cases never see each other's events, even on a shared store.

use std::fmt::Debug;
use std::sync::Arc;

use composable_rust_core::{
    AppendCondition, AppendResult, AtomicAppend, EventId, EventQuery, EventStore, EventStoreError, ExpectedVersion,
    GlobalPosition, NewEvent, QueryItem, QueryPage, RecordedEvent, StreamId, StreamRange, Tag, Version,
};
use futures::TryStreamExt;

use super::{Names, append, assert_conflict, assert_invalid_input, load_all, numbered, ok, read_log, versions};

/// A limit larger than any case's number of matching events: one page reads everything.
const EVERYTHING: usize = 100_000;

/// The tag `conf<random>:<name>`, unique to the case that owns `names`.
fn tag(names: &Names, name: &str) -> Tag {
    Tag::of(&names.category, name)
}

/// A tag of exactly `len` bytes in the case's namespace, filled with two-byte characters (`é`) so that a
/// backend counting characters instead of bytes gets it wrong.
fn tag_of_len(names: &Names, len: usize) -> Tag {
    let mut text = format!("{}:", names.category);
    while text.len() + 'é'.len_utf8() <= len {
        text.push('é');
    }
    while text.len() < len {
        text.push('x');
    }
    assert_eq!(text.len(), len, "the suite built a tag of the wrong length");
    Tag::new(text)
}

/// An event of `event_type` numbered `n` carrying `tags` in this order.
fn tagged(event_type: &str, n: u64, tags: &[&Tag]) -> NewEvent {
    NewEvent { tags: tags.iter().map(|&t| t.clone()).collect(), ..numbered(event_type, n) }
}

/// The tags of each event, in order.
fn tags_of(events: &[RecordedEvent]) -> Vec<Vec<Tag>> {
    events.iter().map(|e| e.tags.clone()).collect()
}

/// The positions of `events`, as numbers.
fn positions(events: &[RecordedEvent]) -> Vec<u64> {
    events.iter().map(|e| e.position.get()).collect()
}

/// Reads by query and unwraps.
async fn query(store: &dyn EventStore, query: &EventQuery, after: GlobalPosition, limit: usize) -> QueryPage {
    ok(store.read_query(query, after, limit).await, &format!("read_query({query:?}, after {after}, limit {limit})"))
}

/// Every event matching `q`, in one page.
async fn query_all(store: &dyn EventStore, q: &EventQuery) -> Vec<RecordedEvent> {
    query(store, q, GlobalPosition::START, EVERYTHING).await.events
}

/// Appends atomically and unwraps.
async fn atomic(store: &dyn EventStore, append: AtomicAppend, step: &str) -> Vec<AppendResult> {
    ok(store.append_atomic(append).await, step)
}

/// The version of every stream, to check that a refused append wrote nothing.
async fn versions_of(store: &dyn EventStore, streams: &[&StreamId]) -> Vec<Version> {
    let mut out = Vec::with_capacity(streams.len());
    for stream in streams {
        out.push(ok(store.stream_version(stream).await, &format!("stream_version of {stream}")));
    }
    out
}

/// Checks that `result` is `ConditionFailed` with exactly these positions.
#[track_caller]
fn assert_condition_failed<T: Debug>(
    result: Result<T, EventStoreError>,
    after: GlobalPosition,
    position: GlobalPosition,
    what: &str,
) {
    match result {
        Err(error @ EventStoreError::ConditionFailed { .. }) => {
            assert!(error.is_conflict(), "ConditionFailed must be a conflict (is_conflict): {error}");
            if let EventStoreError::ConditionFailed { after: a, position: p } = error {
                assert_eq!(a, after, "{what}: ConditionFailed must report the condition's `after`");
                assert_eq!(
                    p, position,
                    "{what}: ConditionFailed must report the FIRST position after `after` holding a matching event"
                );
            }
        }
        other => panic!(
            "{what} must fail with ConditionFailed {{ after: {after}, position: {position} }} (an event matching \
             the condition lies after its position), got {other:?}"
        ),
    }
}

/// Tags come back exactly as appended, in the same order, through `read_stream`, `load_stream`,
/// `load_event`, `read_all` and `read_query`, for plain and atomic appends; an untagged event reads back
/// with no tags; a 255-byte tag of two-byte characters is accepted and kept whole.
pub async fn tags_round_trip_in_order_through_every_read(store: Arc<dyn EventStore>) {
    let store = &*store;
    let names = Names::new();
    let stream = names.stream("tagged");
    let (zebra, alpha, odd) = (tag(&names, "zebra"), tag(&names, "alpha"), tag(&names, "odd é:x y/z"));
    let longest = tag_of_len(&names, Tag::MAX_LEN);
    let events = vec![
        tagged("Tagged.v1", 0, &[&zebra, &alpha, &odd]),
        tagged("Untagged.v1", 1, &[]),
        tagged("Tagged.v1", 2, &[&alpha]),
        tagged("Tagged.v1", 3, &[&longest, &zebra]),
    ];
    let appended: Vec<Vec<Tag>> = events.iter().map(|e| e.tags.clone()).collect();
    append(store, &stream, ExpectedVersion::NoStream, events.clone()).await;

    let loaded = load_all(store, &stream).await;
    assert_eq!(tags_of(&loaded), appended, "load_stream must return each event's tags as appended, in order");
    let streamed: Vec<RecordedEvent> =
        ok(store.read_stream(&stream, StreamRange::all()).try_collect().await, "read_stream");
    assert_eq!(tags_of(&streamed), appended, "read_stream must return each event's tags as appended, in order");
    for (event, tags) in events.iter().zip(&appended) {
        let found = ok(store.load_event(event.id).await, "load_event");
        assert_eq!(found.map(|e| e.tags).as_ref(), Some(tags), "load_event must return the event's tags");
    }
    let logged = read_log(store, &names.filter(), 10).await;
    assert_eq!(tags_of(&logged), appended, "read_all must return each event's tags as appended, in order");
    let by_alpha = query_all(store, &EventQuery::tagged([alpha.clone()])).await;
    assert_eq!(
        tags_of(&by_alpha),
        vec![appended[0].clone(), appended[2].clone()],
        "read_query must return the matching events with all of their tags, in order"
    );
    let by_longest = query_all(store, &EventQuery::tagged([longest.clone()])).await;
    assert_eq!(by_longest.len(), 1, "a query by a 255-byte tag must find the event carrying it");
    assert!(
        loaded.iter().all(|e| e.event_type != "Untagged.v1" || e.tags.is_empty()),
        "an event appended without tags must read back with none"
    );

    let (a, b) = (names.stream("atomic-a"), names.stream("atomic-b"));
    let for_a = vec![tagged("Tagged.v1", 4, &[&odd, &zebra])];
    let for_b = vec![tagged("Untagged.v1", 5, &[]), tagged("Tagged.v1", 6, &[&alpha, &longest])];
    let both = AtomicAppend::new().stream(a.clone(), ExpectedVersion::NoStream, for_a.clone()).stream(
        b.clone(),
        ExpectedVersion::NoStream,
        for_b.clone(),
    );
    atomic(store, both, "an atomic append of tagged events").await;
    assert_eq!(
        tags_of(&load_all(store, &a).await),
        vec![for_a[0].tags.clone()],
        "an atomic append must store each event's tags in order"
    );
    assert_eq!(
        tags_of(&load_all(store, &b).await),
        vec![Vec::new(), for_b[1].tags.clone()],
        "an atomic append must store each event's tags in order, and none for an untagged event"
    );
    let by_alpha = query_all(store, &EventQuery::tagged([alpha])).await;
    assert_eq!(
        by_alpha.iter().map(|e| e.id).collect::<Vec<_>>(),
        vec![events[0].id, events[2].id, for_b[1].id],
        "read_query must find events of atomic appends too"
    );
    assert_eq!(by_alpha[2].tags, for_b[1].tags, "read_query must return the tags of an atomically appended event");
}

/// A tag that is empty, holds a control character, or is longer than 255 bytes (also when it is 128
/// characters) is `InvalidInput` in `append`, `append_atomic` (in an event and in a condition) and
/// `read_query`, and nothing is written.
pub async fn invalid_tags_are_invalid_input_and_write_nothing(store: Arc<dyn EventStore>) {
    let store = &*store;
    let names = Names::new();
    let good = tag(&names, "good");
    let (plain, first, second) = (names.stream("plain"), names.stream("first"), names.stream("second"));
    let too_long_in_bytes = tag_of_len(&names, Tag::MAX_LEN + 1);
    let bad_tags = [
        (Tag::new(""), "an empty tag"),
        (Tag::new(format!("{}:a\u{7}b", names.category)), "a tag with a control character"),
        (Tag::new(format!("{}:line\n", names.category)), "a tag with a newline"),
        (Tag::new("x".repeat(Tag::MAX_LEN + 1)), "a tag of 256 bytes"),
        (too_long_in_bytes, "a tag of 256 bytes in two-byte characters"),
    ];
    for (bad, what) in bad_tags {
        let event = || tagged("Tagged.v1", 0, &[&good, &bad]);
        let result = store.append(&plain, ExpectedVersion::Any, vec![event()]).await;
        assert_invalid_input(result, &format!("append of an event with {what}"));

        let two = AtomicAppend::new()
            .stream(first.clone(), ExpectedVersion::Any, vec![tagged("Tagged.v1", 1, &[&good])])
            .stream(second.clone(), ExpectedVersion::Any, vec![event()]);
        assert_invalid_input(store.append_atomic(two).await, &format!("append_atomic of an event with {what}"));

        let query = EventQuery::tagged([good.clone()]).or(QueryItem::tagged([bad.clone()]));
        let conditioned = AtomicAppend::new()
            .stream(first.clone(), ExpectedVersion::Any, vec![tagged("Tagged.v1", 2, &[&good])])
            .condition(AppendCondition::none_exist(query.clone()));
        assert_invalid_input(
            store.append_atomic(conditioned).await,
            &format!("append_atomic with a condition naming {what}"),
        );

        let result = store.read_query(&query, GlobalPosition::START, 10).await;
        assert_invalid_input(result, &format!("read_query naming {what}"));
        let typed = EventQuery::item(QueryItem::of_types(["Tagged.v1"]).tag(bad.clone()));
        let result = store.read_query(&typed, GlobalPosition::START, 10).await;
        assert_invalid_input(result, &format!("read_query with an item of a type and {what}"));
    }
    assert_eq!(
        versions_of(store, &[&plain, &first, &second]).await,
        vec![Version::INITIAL; 3],
        "a refused append must write nothing to any of its streams"
    );
    assert!(query_all(store, &EventQuery::tagged([good])).await.is_empty(), "a refused append wrote no event");
}

/// An atomic append with no stream, a stream named twice, an empty batch for one stream, one id twice
/// across streams, or a condition with an item that names no tag is `InvalidInput`, and nothing is written.
pub async fn malformed_atomic_appends_are_invalid_input_and_write_nothing(store: Arc<dyn EventStore>) {
    let store = &*store;
    let names = Names::new();
    let good = tag(&names, "good");
    let (a, b) = (names.stream("a"), names.stream("b"));
    let event = |n| tagged("Tagged.v1", n, &[&good]);

    assert_invalid_input(store.append_atomic(AtomicAppend::new()).await, "an atomic append with no stream");
    let only_condition = AtomicAppend::new().condition(AppendCondition::none_exist(EventQuery::tagged([good.clone()])));
    assert_invalid_input(store.append_atomic(only_condition).await, "an atomic append with a condition and no stream");
    let twice = AtomicAppend::new()
        .stream(a.clone(), ExpectedVersion::Any, vec![event(0)])
        .stream(b.clone(), ExpectedVersion::Any, vec![event(1)])
        .stream(a.clone(), ExpectedVersion::Any, vec![event(2)]);
    assert_invalid_input(store.append_atomic(twice).await, "an atomic append naming one stream twice");
    let empty = AtomicAppend::new().stream(a.clone(), ExpectedVersion::Any, vec![event(0)]).stream(
        b.clone(),
        ExpectedVersion::Any,
        Vec::new(),
    );
    assert_invalid_input(store.append_atomic(empty).await, "an atomic append with an empty batch for one stream");
    let shared = event(3);
    let same_id = AtomicAppend::new().stream(a.clone(), ExpectedVersion::Any, vec![shared.clone()]).stream(
        b.clone(),
        ExpectedVersion::Any,
        vec![NewEvent { payload: vec![1], ..shared }],
    );
    assert_invalid_input(store.append_atomic(same_id).await, "an atomic append with one event id in two streams");

    let untagged_conditions = [
        (EventQuery::item(QueryItem::of_types(["Tagged.v1"])), "an item with a type and no tag"),
        (EventQuery::all(), "an item with neither type nor tag (EventQuery::all)"),
        (
            EventQuery::tagged([good.clone()]).or(QueryItem::of_types(["Tagged.v1"])),
            "a tagged item and an item without tags",
        ),
    ];
    for (query, what) in untagged_conditions {
        let append = AtomicAppend::new()
            .stream(a.clone(), ExpectedVersion::Any, vec![event(4)])
            .condition(AppendCondition::none_exist(query));
        assert_invalid_input(store.append_atomic(append).await, &format!("a condition with {what}"));
    }
    assert_eq!(
        versions_of(store, &[&a, &b]).await,
        vec![Version::INITIAL; 2],
        "a refused atomic append must write nothing to any of its streams"
    );
}

/// `read_query`: an item matches events of any of its types (any type when it names none) carrying all of
/// its tags; a query matches events matching any item, each once, in position order; a query without
/// items matches nothing.
pub async fn read_query_matches_types_or_tags_and_items_or(store: Arc<dyn EventStore>) {
    let store = &*store;
    let names = Names::new();
    let (course, student, other) = (tag(&names, "course"), tag(&names, "student"), tag(&names, "other"));
    let (s1, s2) = (names.stream("one"), names.stream("two"));
    // Interleaved across two streams, so position order differs from stream order.
    let plan: Vec<(&StreamId, NewEvent)> = vec![
        (&s1, tagged("Defined.v1", 0, &[&course])),
        (&s2, tagged("Enrolled.v1", 1, &[&student, &course])),
        (&s1, tagged("Enrolled.v1", 2, &[&course])),
        (&s2, tagged("Renamed.v1", 3, &[&student])),
        (&s1, tagged("Enrolled.v1", 4, &[&other, &student])),
        (&s2, tagged("Cancelled.v1", 5, &[&course, &student, &other])),
        (&s1, tagged("Enrolled.v1", 6, &[])),
    ];
    let mut ids = Vec::new();
    for (stream, event) in plan {
        ids.push(event.id);
        append(store, stream, ExpectedVersion::Any, vec![event]).await;
    }
    let expect = |indexes: &[usize]| indexes.iter().map(|&i| ids[i]).collect::<Vec<EventId>>();
    let found = |events: Vec<RecordedEvent>| events.iter().map(|e| e.id).collect::<Vec<EventId>>();

    let cases = [
        (EventQuery::tagged([course.clone()]), expect(&[0, 1, 2, 5]), "one tag, any type"),
        (EventQuery::tagged([course.clone(), student.clone()]), expect(&[1, 5]), "two tags: an event must carry both"),
        (
            EventQuery::item(QueryItem::tagged([course.clone()]).types(["Enrolled.v1", "Cancelled.v1"])),
            expect(&[1, 2, 5]),
            "one tag and two types: an event of either type",
        ),
        (
            EventQuery::item(QueryItem::tagged([student.clone()]).types(["Enrolled.v1"]))
                .or(QueryItem::tagged([other.clone()]).types(["Cancelled.v1"])),
            expect(&[1, 4, 5]),
            "two items: an event matching either",
        ),
        (
            EventQuery::tagged([course.clone()]).or(QueryItem::tagged([student.clone()])),
            expect(&[0, 1, 2, 3, 4, 5]),
            "two overlapping items: an event matching both appears once, in position order",
        ),
        (
            EventQuery::tagged([course.clone()]).or(QueryItem::tagged([course.clone()])),
            expect(&[0, 1, 2, 5]),
            "the same item twice",
        ),
        (
            EventQuery::item(QueryItem::tagged([course.clone()]).types(["Unknown.v1"])),
            Vec::new(),
            "a type no matching event has",
        ),
        (EventQuery::tagged([tag(&names, "unused")]), Vec::new(), "a tag no event carries"),
        (EventQuery::default(), Vec::new(), "a query without items"),
    ];
    for (q, wanted, what) in cases {
        let page = query(store, &q, GlobalPosition::START, EVERYTHING).await;
        let got = positions(&page.events);
        assert!(got.windows(2).all(|w| w[0] < w[1]), "{what}: read_query must return events in position order");
        assert_eq!(found(page.events), wanted, "{what}: read_query returned the wrong events");
    }

    let logged = read_log(store, &names.filter(), 100).await;
    let by_query = query_all(store, &EventQuery::tagged([course])).await;
    let from_log: Vec<RecordedEvent> = logged.into_iter().filter(|e| by_query.iter().any(|q| q.id == e.id)).collect();
    assert_eq!(by_query, from_log, "read_query must return the same events as the stream and the global log");
}

/// Paging a query with `after` and `limit` returns every match exactly once, whether the next page starts
/// at the last event's position or at the horizon; a full page's horizon is its last event's position; any
/// other horizon is at least `after` and every returned position; an event appended after a read lands
/// above its horizon.
pub async fn read_query_pages_by_after_and_limit_with_a_horizon(store: Arc<dyn EventStore>) {
    let store = &*store;
    let names = Names::new();
    let (wanted, noise) = (tag(&names, "wanted"), tag(&names, "noise"));
    for n in 0..23 {
        let stream = names.stream(&format!("p{}", n % 3));
        let tag = if n % 4 == 3 { &noise } else { &wanted };
        append(store, &stream, ExpectedVersion::Any, vec![tagged("Paged.v1", n, &[tag])]).await;
    }
    let q = EventQuery::tagged([wanted.clone()]);
    let all = query_all(store, &q).await;
    assert_eq!(all.len(), 18, "the query must match the 18 events tagged with its tag");

    for limit in [1, 2, 5, 17, 18, 19, 100] {
        for by_horizon in [false, true] {
            let mut seen: Vec<RecordedEvent> = Vec::new();
            let mut after = GlobalPosition::START;
            loop {
                let page = query(store, &q, after, limit).await;
                let what = format!("page after {after} with limit {limit}");
                assert!(page.events.len() <= limit, "{what}: read_query returned more events than the limit");
                assert!(page.events.iter().all(|e| e.position > after), "{what}: an event at or before `after`");
                assert!(page.horizon >= after, "{what}: the horizon {} lies below `after`", page.horizon);
                if page.events.len() == limit {
                    assert_eq!(
                        page.events.last().map(|e| e.position),
                        Some(page.horizon),
                        "{what}: a full page's horizon must be its last event's position"
                    );
                } else if let Some(last) = page.events.last() {
                    assert!(page.horizon >= last.position, "{what}: the horizon lies below a returned event");
                }
                let full = page.events.len() == limit;
                let next = if by_horizon { page.horizon } else { page.events.last().map_or(after, |e| e.position) };
                seen.extend(page.events);
                if !full {
                    break;
                }
                after = next;
            }
            assert_eq!(
                seen,
                all,
                "paging with limit {limit} (next page after the {}) must return every match once, in order",
                if by_horizon { "horizon" } else { "last event" }
            );
        }
    }

    let everything = query(store, &q, GlobalPosition::START, EVERYTHING).await;
    let last = all.last().map(|e| e.position).unwrap_or_default();
    assert!(everything.horizon >= last, "a partial page's horizon must be at least its last event's position");
    let beyond = query(store, &q, everything.horizon, 10).await;
    assert!(beyond.events.is_empty(), "nothing matches after the horizon of a complete read");
    assert!(beyond.horizon >= everything.horizon, "the horizon must be at least `after`");
    let later =
        append(store, &names.stream("late"), ExpectedVersion::Any, vec![tagged("Paged.v1", 99, &[&wanted])]).await;
    assert!(
        later.positions[0] > everything.horizon,
        "an event appended after a read must land above that read's horizon ({} <= {})",
        later.positions[0],
        everything.horizon
    );
    let after_append = query(store, &q, everything.horizon, 10).await;
    assert_eq!(positions(&after_append.events), vec![later.positions[0].get()], "a read after the horizon finds it");
    let nothing = query(store, &EventQuery::default(), GlobalPosition::START, 10).await;
    assert!(nothing.events.is_empty(), "a query without items matches nothing");
}

/// A condition fails only when an event matching its query lies after its position: `ConditionFailed`
/// names the first such position, is a conflict, and nothing of the append is written; matching events at
/// or below the position, events of other tags or types after it, and a query without items never fail
/// it; read, decide, append with `page.condition(query)` succeeds when nothing changed.
pub async fn a_condition_fails_only_on_a_matching_event_after_its_position(store: Arc<dyn EventStore>) {
    let store = &*store;
    let names = Names::new();
    let (seat, other) = (tag(&names, "seat"), tag(&names, "other"));
    let (history, decided, fresh) = (names.stream("history"), names.stream("decided"), names.stream("fresh"));
    let q = EventQuery::tagged([seat.clone()]);

    // Read, decide, append: nothing changed in between, so it commits.
    let page = query(store, &q, GlobalPosition::START, EVERYTHING).await;
    assert!(page.events.is_empty(), "a fresh tag matches nothing");
    let first = AtomicAppend::new()
        .stream(history.clone(), ExpectedVersion::NoStream, vec![tagged("Booked.v1", 0, &[&seat])])
        .condition(page.condition(q.clone()));
    let written = atomic(store, first, "a conditional append after an unchanged read").await;
    let booked = written[0].positions[0];

    let before = query(store, &q, GlobalPosition::START, EVERYTHING).await;
    assert_eq!(positions(&before.events), vec![booked.get()], "the booking is read back");
    // Two more matching events (plain appends), with a non-matching one first.
    append(store, &history, ExpectedVersion::Any, vec![tagged("Booked.v1", 1, &[&other])]).await;
    let matching = append(
        store,
        &history,
        ExpectedVersion::Any,
        vec![tagged("Booked.v1", 2, &[&seat]), tagged("Booked.v1", 3, &[&other, &seat])],
    )
    .await;
    let first_match = matching.positions[0];
    let versions_before = versions_of(store, &[&history, &decided, &fresh]).await;

    let stale = || {
        AtomicAppend::new()
            .stream(history.clone(), ExpectedVersion::Any, vec![tagged("Booked.v1", 4, &[&seat])])
            .stream(fresh.clone(), ExpectedVersion::NoStream, vec![tagged("Noted.v1", 5, &[])])
            .condition(before.condition(q.clone()))
    };
    let failed = stale();
    let failed_ids: Vec<EventId> = failed.events().map(|e| e.id).collect();
    assert_condition_failed(
        store.append_atomic(failed).await,
        before.horizon,
        first_match,
        "an append whose condition's query matches two events after its position",
    );
    assert_condition_failed(
        store.append_atomic(stale().condition(AppendCondition::none_exist(q.clone()))).await,
        GlobalPosition::START,
        booked,
        "an append under none_exist when a matching event exists",
    );
    let two_items = EventQuery::tagged([tag(&names, "unused")]).or(QueryItem::tagged([seat.clone(), other.clone()]));
    assert_condition_failed(
        store.append_atomic(stale().condition(AppendCondition::new(two_items, before.horizon))).await,
        before.horizon,
        matching.positions[1],
        "an append whose condition's second item (two tags) matches an event after its position",
    );
    assert_eq!(
        versions_of(store, &[&history, &decided, &fresh]).await,
        versions_before,
        "a failed condition must write nothing to any stream of the append"
    );
    for id in failed_ids {
        assert_eq!(ok(store.load_event(id).await, "load_event").map(|e| e.id), None, "a failed append stored an event");
    }

    let last_match = matching.positions[1];
    let passing = [
        (AppendCondition::new(q.clone(), last_match), "matching events only at or below its position"),
        (
            AppendCondition::new(EventQuery::tagged([seat.clone(), tag(&names, "unused")]), GlobalPosition::START),
            "an item whose tags no event carries all of",
        ),
        (
            AppendCondition::new(EventQuery::item(QueryItem::tagged([seat.clone()]).types(["Other.v1"])), booked),
            "matching tags but another type after its position",
        ),
        (AppendCondition::new(EventQuery::default(), GlobalPosition::START), "a query without items"),
    ];
    let mut n = 10;
    for (condition, what) in passing {
        n += 1;
        let append = AtomicAppend::new()
            .stream(decided.clone(), ExpectedVersion::Any, vec![tagged("Decided.v1", n, &[&other])])
            .condition(condition);
        let written = store.append_atomic(append).await;
        assert!(written.is_ok(), "a condition with {what} must not fail the append, got {written:?}");
    }
    // A non-matching event (tag `other`) was appended after `last_match` by the loop: still no failure.
    let page = query(store, &q, GlobalPosition::START, EVERYTHING).await;
    let decide = AtomicAppend::new()
        .stream(decided.clone(), ExpectedVersion::Any, vec![tagged("Decided.v1", 20, &[&seat])])
        .condition(page.condition(q.clone()));
    atomic(store, decide, "read, decide, append after non-matching appends").await;
}

/// An atomic append across three streams is all or nothing: one stale expectation is a
/// `ConcurrencyConflict` naming that stream and writes nothing anywhere; all fresh writes every stream with
/// dense versions and one result per stream in order; a retry returns the same results and writes nothing;
/// reusing one stored id among new ones is `EventIdInUse` and writes nothing.
pub async fn atomic_appends_across_streams_are_all_or_nothing(store: Arc<dyn EventStore>) {
    let store = &*store;
    let names = Names::new();
    let t = tag(&names, "multi");
    let (a, b, c) = (names.stream("a"), names.stream("b"), names.stream("c"));
    let event = |n| tagged("Moved.v1", n, &[&t]);
    append(store, &a, ExpectedVersion::NoStream, vec![event(0), event(1)]).await;
    let stored_b = event(2);
    append(store, &b, ExpectedVersion::NoStream, vec![stored_b.clone()]).await;
    let streams = [&a, &b, &c];

    let stale = AtomicAppend::new()
        .stream(a.clone(), ExpectedVersion::Exact(Version::new(2)), vec![event(3)])
        .stream(b.clone(), ExpectedVersion::NoStream, vec![event(4), event(5)])
        .stream(c.clone(), ExpectedVersion::NoStream, vec![event(6)]);
    assert_conflict(store.append_atomic(stale).await, &b, ExpectedVersion::NoStream, Version::FIRST);
    assert_eq!(
        versions_of(store, &streams).await,
        vec![Version::new(2), Version::FIRST, Version::INITIAL],
        "an atomic append with one stale expectation must write nothing to any of its streams"
    );

    let fresh = AtomicAppend::new()
        .stream(a.clone(), ExpectedVersion::Exact(Version::new(2)), vec![event(7)])
        .stream(b.clone(), ExpectedVersion::StreamExists, vec![event(8), event(9)])
        .stream(c.clone(), ExpectedVersion::NoStream, vec![event(10), event(11), event(12)]);
    let results = atomic(store, fresh.clone(), "an atomic append to three streams at their versions").await;
    assert_eq!(results.len(), 3, "append_atomic must return one result per stream");
    let stream_versions: Vec<u64> = results.iter().map(|r| r.stream_version.get()).collect();
    assert_eq!(stream_versions, vec![3, 3, 3], "each result must report its stream's new version, in order");
    let counts: Vec<usize> = results.iter().map(|r| r.positions.len()).collect();
    assert_eq!(counts, vec![1, 2, 3], "each result must hold one position per event of its stream, in order");
    let all_positions: Vec<GlobalPosition> = results.iter().flat_map(|r| r.positions.clone()).collect();
    assert!(
        all_positions.windows(2).all(|w| w[0] < w[1]),
        "the events of an atomic append take increasing positions in the order given: {all_positions:?}"
    );
    for (stream, result) in streams.iter().zip(&results) {
        let loaded = load_all(store, stream).await;
        assert_eq!(versions(&loaded), vec![1, 2, 3], "{stream} must have dense versions after an atomic append");
        let tail: Vec<GlobalPosition> =
            loaded.iter().rev().take(result.positions.len()).rev().map(|e| e.position).collect();
        assert_eq!(tail, result.positions, "the stored positions of {stream} must be the reported ones");
    }
    let logged = read_log(store, &names.filter(), 100).await;
    let ids: Vec<EventId> = logged.iter().filter(|e| all_positions.contains(&e.position)).map(|e| e.id).collect();
    let sent: Vec<EventId> = fresh.events().map(|e| e.id).collect();
    assert_eq!(ids, sent, "the global log must hold the atomic append's events in the order given");

    let retried = atomic(store, fresh.clone(), "a retry of a committed atomic append").await;
    assert_eq!(retried, results, "a retry of a committed atomic append must return the stored results");
    append(store, &a, ExpectedVersion::Any, vec![event(13)]).await;
    let later = atomic(store, fresh.clone(), "a retry after another append to one of its streams").await;
    assert_eq!(later, results, "a retry must return the stored results even when its expectations are stale");
    let now = vec![Version::new(4), Version::new(3), Version::new(3)];
    assert_eq!(versions_of(store, &streams).await, now, "a retry must write nothing");

    let reused = AtomicAppend::new().stream(a.clone(), ExpectedVersion::Any, vec![event(14)]).stream(
        b.clone(),
        ExpectedVersion::Any,
        vec![event(15), stored_b.clone(), event(16)],
    );
    let result = store.append_atomic(reused).await;
    assert!(
        matches!(result, Err(EventStoreError::EventIdInUse { id, .. }) if id == stored_b.id),
        "an atomic append reusing one stored id among new ones must fail with EventIdInUse for that id, got {result:?}"
    );
    let half = AtomicAppend::new().stream(a.clone(), ExpectedVersion::Any, vec![event(17)]).stream(
        b.clone(),
        ExpectedVersion::Any,
        vec![stored_b],
    );
    let result = store.append_atomic(half).await;
    assert!(
        matches!(result, Err(EventStoreError::EventIdInUse { .. })),
        "an atomic append with one stream's events stored and another's new must fail with EventIdInUse, got \
         {result:?}"
    );
    assert_eq!(versions_of(store, &streams).await, now, "an append refused for a reused id must write nothing");
}

/// How a racing writer's conditional append ended.
#[derive(Debug)]
enum Claim {
    Won(AppendResult),
    Lost { after: GlobalPosition, position: GlobalPosition },
}

/// Sorts an append's outcome into won or lost; any error other than `ConditionFailed` breaks the rule.
#[track_caller]
fn claim(result: Result<Vec<AppendResult>, EventStoreError>, what: &str) -> Claim {
    match result {
        Ok(mut results) if results.len() == 1 => Claim::Won(results.remove(0)),
        Ok(results) => panic!("{what}: append_atomic to one stream returned {} results", results.len()),
        Err(EventStoreError::ConditionFailed { after, position }) => Claim::Lost { after, position },
        Err(error) => panic!(
            "{what}: a writer losing a race on an append condition must get ConditionFailed, got: {error} \
             ({error:?})"
        ),
    }
}

/// Awaits every task, failing the case if one panicked.
async fn join_all<T>(tasks: Vec<tokio::task::JoinHandle<T>>) -> Vec<T> {
    let mut out = Vec::with_capacity(tasks.len());
    for task in tasks {
        match task.await {
            Ok(value) => out.push(value),
            Err(error) => panic!("a writer task failed: {error}"),
        }
    }
    out
}

/// 200 rounds of 8 concurrent writers, each appending to its own stream under `none_exist` on the same
/// username tag: in every round exactly one wins, every other gets `ConditionFailed` naming the winner's
/// position, and one event carries the tag.
pub async fn racing_claims_of_one_tag_under_none_exist_exactly_one_wins(store: Arc<dyn EventStore>) {
    const ROUNDS: usize = 200;
    const WRITERS: usize = 8;
    let names = Names::new();
    for round in 0..ROUNDS {
        let username = tag(&names, &format!("username-{round}"));
        let barrier = Arc::new(tokio::sync::Barrier::new(WRITERS));
        let tasks = (0..WRITERS)
            .map(|writer| {
                let (store, barrier) = (Arc::clone(&store), Arc::clone(&barrier));
                let expected = if writer % 2 == 0 { ExpectedVersion::NoStream } else { ExpectedVersion::Any };
                let event = tagged("Registered.v1", writer as u64, &[&username]);
                let append = AtomicAppend::new()
                    .stream(names.stream(&format!("user-{round}-{writer}")), expected, vec![event])
                    .condition(AppendCondition::none_exist(EventQuery::tagged([username.clone()])));
                tokio::spawn(async move {
                    barrier.wait().await;
                    store.append_atomic(append).await
                })
            })
            .collect();
        let what = format!("round {round} of racing claims of one username");
        let claims: Vec<Claim> = join_all(tasks).await.into_iter().map(|result| claim(result, &what)).collect();
        let winners: Vec<&AppendResult> =
            claims.iter().filter_map(|c| if let Claim::Won(result) = c { Some(result) } else { None }).collect();
        assert_eq!(winners.len(), 1, "{what}: exactly one writer must win a claim under none_exist, got {claims:?}");
        let won_at = winners[0].positions[0];
        for lost in &claims {
            if let Claim::Lost { after, position } = lost {
                assert_eq!(
                    *after,
                    GlobalPosition::START,
                    "{what}: ConditionFailed must report the condition's `after`"
                );
                assert_eq!(*position, won_at, "{what}: ConditionFailed must name the winner's position");
            }
        }
        let stored = query_all(&*store, &EventQuery::tagged([username])).await;
        assert_eq!(positions(&stored), vec![won_at.get()], "{what}: exactly the winner's event carries the tag");
    }
}

/// A course with a capacity of 5 and 12 students booking it at once, each reading the course's enrolments,
/// deciding, and appending under `page.condition(query)`, retrying on `ConditionFailed`: exactly 5 are
/// booked, never more, and the others see the course full.
pub async fn racing_bookings_never_exceed_the_capacity(store: Arc<dyn EventStore>) {
    const CAPACITY: usize = 5;
    const STUDENTS: usize = 12;
    const MAX_ATTEMPTS: usize = 1_000;
    let names = Names::new();
    let course = tag(&names, "course");
    let enrolments = EventQuery::item(QueryItem::tagged([course.clone()]).types(["Enrolled.v1"]));
    let barrier = Arc::new(tokio::sync::Barrier::new(STUDENTS));
    let tasks = (0..STUDENTS)
        .map(|student| {
            let (store, barrier, q) = (Arc::clone(&store), Arc::clone(&barrier), enrolments.clone());
            let stream = names.stream(&format!("student-{student}"));
            let tags = [course.clone(), tag(&names, &format!("student-{student}"))];
            tokio::spawn(async move {
                barrier.wait().await;
                for _ in 0..MAX_ATTEMPTS {
                    let page = query(&*store, &q, GlobalPosition::START, EVERYTHING).await;
                    if page.events.len() >= CAPACITY {
                        return false;
                    }
                    // Deciding takes a moment: let the other students read meanwhile, even on a store that
                    // never suspends.
                    tokio::task::yield_now().await;
                    let event = tagged("Enrolled.v1", student as u64, &[&tags[0], &tags[1]]);
                    let append = AtomicAppend::new()
                        .stream(stream.clone(), ExpectedVersion::Any, vec![event])
                        .condition(page.condition(q.clone()));
                    match store.append_atomic(append).await {
                        Ok(_) => return true,
                        Err(EventStoreError::ConditionFailed { .. }) => {}
                        Err(error) => {
                            panic!("student {student}: a booking must succeed or fail its condition, got: {error}")
                        }
                    }
                }
                panic!("student {student} retried {MAX_ATTEMPTS} times: the condition keeps failing without cause")
            })
        })
        .collect();
    let booked = join_all(tasks).await.into_iter().filter(|&booked| booked).count();
    assert_eq!(booked, CAPACITY, "exactly as many students as the capacity must be booked, never more");
    let stored = query_all(&*store, &enrolments).await;
    assert_eq!(stored.len(), CAPACITY, "the store must hold exactly as many enrolments as the capacity");
}

/// 8 writers in a loop of 25 read-decide-append steps, each querying only its own tag (their events also
/// share a type and a tag that no query names): none gets a conflict, and none blocks the others.
pub async fn writers_with_disjoint_queries_never_fail_each_other(store: Arc<dyn EventStore>) {
    const WRITERS: usize = 8;
    const STEPS: u64 = 25;
    // A guard against a deadlock only (the work takes well under a second); it measures nothing.
    const DEADLOCK_GUARD: std::time::Duration = std::time::Duration::from_secs(120);
    let names = Names::new();
    let shared = tag(&names, "shared");
    let barrier = Arc::new(tokio::sync::Barrier::new(WRITERS));
    let tasks = (0..WRITERS)
        .map(|writer| {
            let (store, barrier) = (Arc::clone(&store), Arc::clone(&barrier));
            let stream = names.stream(&format!("writer-{writer}"));
            let (own, shared) = (tag(&names, &format!("writer-{writer}")), shared.clone());
            tokio::spawn(async move {
                let q = EventQuery::tagged([own.clone()]);
                barrier.wait().await;
                for step in 0..STEPS {
                    let page = query(&*store, &q, GlobalPosition::START, EVERYTHING).await;
                    assert_eq!(page.events.len() as u64, step, "writer {writer} must read back its own events");
                    let append = AtomicAppend::new()
                        .stream(
                            stream.clone(),
                            ExpectedVersion::Exact(Version::new(step)),
                            vec![tagged("Stepped.v1", step, &[&shared, &own])],
                        )
                        .condition(page.condition(q.clone()));
                    if let Err(error) = store.append_atomic(append).await {
                        panic!(
                            "writer {writer}, step {step}: an append conditioned on a query no other writer's events \
                             match must not fail, got: {error}"
                        );
                    }
                }
            })
        })
        .collect();
    if tokio::time::timeout(DEADLOCK_GUARD, join_all(tasks)).await.is_err() {
        panic!(
            "writers with disjoint queries did not finish within {DEADLOCK_GUARD:?}: a conditional append blocks \
             on another writer's (a deadlock?)"
        );
    }
    let stored = query_all(&*store, &EventQuery::tagged([shared])).await;
    assert_eq!(stored.len(), WRITERS * STEPS as usize, "every writer's every step must be stored");
}

/// The plans the interleaving properties run: a few writers over a universe of [`TAGS`] tags and two types.
mod plan {
    use proptest::prelude::*;
    use proptest::sample::subsequence;

    /// How many tags the writers of one plan choose from.
    pub(super) const TAGS: usize = 3;
    /// The event types the writers of one plan choose from.
    pub(super) const TYPES: [&str; 2] = ["Left.v1", "Right.v1"];

    /// One query item: any of `types` (every type when empty), all of `tags` (indexes into the tag universe).
    #[derive(Debug, Clone)]
    pub(super) struct Item {
        pub(super) types: Vec<usize>,
        pub(super) tags: Vec<usize>,
    }

    /// One event to append: its type and tags, as indexes.
    #[derive(Debug, Clone)]
    pub(super) struct Event {
        pub(super) kind: usize,
        pub(super) tags: Vec<usize>,
    }

    /// One writer: reads by `query`, then appends `events` to its own stream, under the condition of its
    /// read when `conditional`, with a plain append otherwise (which must still fail the conditions of
    /// others). `pause` is how often a racing writer yields between its read and its append.
    #[derive(Debug, Clone)]
    pub(super) struct Writer {
        pub(super) query: Vec<Item>,
        pub(super) events: Vec<Event>,
        pub(super) conditional: bool,
        pub(super) pause: u8,
    }

    /// The writers and an interleaving of their steps: each index appears twice, read then append.
    #[derive(Debug, Clone)]
    pub(super) struct Plan {
        pub(super) writers: Vec<Writer>,
        pub(super) order: Vec<usize>,
    }

    fn item() -> impl Strategy<Value = Item> {
        (subsequence(vec![0, 1], 0..=2), subsequence((0..TAGS).collect::<Vec<_>>(), 1..=2))
            .prop_map(|(types, tags)| Item { types, tags })
    }

    fn event() -> impl Strategy<Value = Event> {
        (0..TYPES.len(), subsequence((0..TAGS).collect::<Vec<_>>(), 0..=TAGS))
            .prop_map(|(kind, tags)| Event { kind, tags })
    }

    fn writer() -> impl Strategy<Value = Writer> {
        (prop::collection::vec(item(), 1..=2), prop::collection::vec(event(), 1..=2), prop::bool::weighted(0.8), 0..4u8)
            .prop_map(|(query, events, conditional, pause)| Writer { query, events, conditional, pause })
    }

    /// 2 to 5 writers in a random interleaving.
    pub(super) fn plan() -> impl Strategy<Value = Plan> {
        prop::collection::vec(writer(), 2..=5).prop_flat_map(|writers| {
            let order: Vec<usize> = (0..writers.len()).flat_map(|w| [w, w]).collect();
            (Just(writers), Just(order).prop_shuffle()).prop_map(|(writers, order)| Plan { writers, order })
        })
    }
}

/// The tags, query and events of a plan's writer, in the namespace of one run.
struct Universe {
    names: Names,
    tags: Vec<Tag>,
}

impl Universe {
    fn new() -> Self {
        let names = Names::new();
        let tags = (0..plan::TAGS).map(|i| tag(&names, &format!("t{i}"))).collect();
        Self { names, tags }
    }

    fn query(&self, writer: &plan::Writer) -> EventQuery {
        let items = writer.query.iter().map(|item| QueryItem {
            event_types: item.types.iter().map(|&t| plan::TYPES[t].to_owned()).collect(),
            tags: item.tags.iter().map(|&t| self.tags[t].clone()).collect(),
        });
        EventQuery { items: items.collect() }
    }

    fn events(&self, writer: &plan::Writer) -> Vec<NewEvent> {
        let tags = |event: &plan::Event| event.tags.iter().map(|&t| &self.tags[t]).collect::<Vec<_>>();
        writer.events.iter().zip(0..).map(|(e, n)| tagged(plan::TYPES[e.kind], n, &tags(e))).collect()
    }

    fn stream(&self, writer: usize) -> StreamId {
        self.names.stream(&format!("writer-{writer}"))
    }
}

/// What became of one conditional append.
#[derive(Debug)]
enum Outcome {
    /// Committed: its query, the position its read reached, the events it read, and the position of its
    /// first event.
    Committed { query: EventQuery, after: GlobalPosition, seen: Vec<EventId>, first: GlobalPosition },
    /// Refused: its query and the `ConditionFailed` values.
    Refused { query: EventQuery, after: GlobalPosition, position: GlobalPosition },
}

/// Checks the outcomes against the stored log: no committed conditional append has an event matching its
/// query strictly between its `after` and its first event, nor any matching event before its first that its
/// read did not return (so a horizon set too high cannot hide one), and every refusal names the first
/// matching event after its `after`.
fn check_outcomes(log: &[RecordedEvent], outcomes: &[Outcome]) -> Result<(), String> {
    let first_match = |query: &EventQuery, after: GlobalPosition| {
        log.iter().find(|e| e.position > after && query.matches_event(e)).map(|e| e.position)
    };
    for outcome in outcomes {
        match outcome {
            Outcome::Committed { query, after, seen, first } => {
                if let Some(position) = first_match(query, *after).filter(|p| p < first) {
                    return Err(format!(
                        "an append conditioned on {query:?} after {after} committed at {first}, but the event at \
                         {position} matches its query: the condition should have failed it"
                    ));
                }
                let unseen =
                    log.iter().find(|e| e.position < *first && query.matches_event(e) && !seen.contains(&e.id));
                if let Some(event) = unseen {
                    return Err(format!(
                        "an append conditioned on {query:?} after {after} committed at {first}, but the event at \
                         {} matches its query and was not returned by its read: the horizon hid it",
                        event.position
                    ));
                }
            }
            Outcome::Refused { query, after, position } => {
                if first_match(query, *after) != Some(*position) {
                    return Err(format!(
                        "an append conditioned on {query:?} after {after} was refused naming position {position}, \
                         but the first matching event after {after} is at {:?}",
                        first_match(query, *after)
                    ));
                }
            }
        }
    }
    Ok(())
}

/// Runs `plan` one step at a time in its order, checking each conditional append against the exact
/// outcome the log demands (refused naming the first matching event after its read, or committed when
/// there is none), then the outcomes against the whole log.
async fn run_in_order(store: &dyn EventStore, plan: &plan::Plan) -> Result<(), String> {
    let universe = Universe::new();
    let mut reads: Vec<Option<QueryPage>> = vec![None; plan.writers.len()];
    let mut outcomes = Vec::new();
    for &w in &plan.order {
        let writer = &plan.writers[w];
        let q = universe.query(writer);
        let Some(page) = reads[w].take() else {
            reads[w] = Some(query(store, &q, GlobalPosition::START, EVERYTHING).await);
            continue;
        };
        let (stream, events) = (universe.stream(w), universe.events(writer));
        if !writer.conditional {
            append(store, &stream, ExpectedVersion::NoStream, events).await;
            continue;
        }
        // Independent of the store's horizon: the first matching event the read did not return.
        let seen: Vec<EventId> = page.events.iter().map(|e| e.id).collect();
        let log = read_log(store, &universe.names.filter(), 1_000).await;
        let expected = log.iter().find(|e| q.matches_event(e) && !seen.contains(&e.id)).map(|e| e.position);
        let append =
            AtomicAppend::new().stream(stream, ExpectedVersion::NoStream, events).condition(page.condition(q.clone()));
        match (store.append_atomic(append).await, expected) {
            (Ok(results), None) => {
                let first = results.first().and_then(|r| r.positions.first()).copied().unwrap_or_default();
                outcomes.push(Outcome::Committed { query: q, after: page.horizon, seen, first });
            }
            (Err(EventStoreError::ConditionFailed { after, position }), Some(unseen)) => {
                if (after, position) != (page.horizon, unseen) {
                    return Err(format!(
                        "writer {w}: ConditionFailed reported after {after} and position {position}; the condition \
                         was after {} and the first matching event its read did not return is at {unseen}",
                        page.horizon
                    ));
                }
                outcomes.push(Outcome::Refused { query: q, after, position });
            }
            (result, expected) => {
                return Err(format!(
                    "writer {w}: an append conditioned on {q:?} after {} (first matching event after it: \
                     {expected:?}) returned {result:?}",
                    page.horizon
                ));
            }
        }
    }
    check_outcomes(&read_log(store, &universe.names.filter(), 1_000).await, &outcomes)
}

/// Runs `plan` with one task per writer, all racing (each yields `pause` times between its read and its
/// append), then checks the outcomes against the stored log.
async fn run_racing(store: &Arc<dyn EventStore>, plan: &plan::Plan) -> Result<(), String> {
    let universe = Universe::new();
    let barrier = Arc::new(tokio::sync::Barrier::new(plan.writers.len()));
    let tasks = plan
        .writers
        .iter()
        .enumerate()
        .map(|(w, writer)| {
            let (store, barrier) = (Arc::clone(store), Arc::clone(&barrier));
            let (q, stream, events) = (universe.query(writer), universe.stream(w), universe.events(writer));
            let (conditional, pause) = (writer.conditional, writer.pause);
            tokio::spawn(async move {
                barrier.wait().await;
                let page = query(&*store, &q, GlobalPosition::START, EVERYTHING).await;
                for _ in 0..pause {
                    tokio::task::yield_now().await;
                }
                if !conditional {
                    append(&*store, &stream, ExpectedVersion::NoStream, events).await;
                    return Ok(None);
                }
                let append = AtomicAppend::new()
                    .stream(stream, ExpectedVersion::NoStream, events)
                    .condition(page.condition(q.clone()));
                match store.append_atomic(append).await {
                    Ok(results) => {
                        let first = results.first().and_then(|r| r.positions.first()).copied().unwrap_or_default();
                        let seen = page.events.iter().map(|e| e.id).collect();
                        Ok(Some(Outcome::Committed { query: q, after: page.horizon, seen, first }))
                    }
                    Err(EventStoreError::ConditionFailed { after, position }) => {
                        Ok(Some(Outcome::Refused { query: q, after, position }))
                    }
                    Err(error) => Err(format!("writer {w}: a conditional append failed with {error} ({error:?})")),
                }
            })
        })
        .collect();
    let mut outcomes = Vec::new();
    for result in join_all(tasks).await {
        outcomes.extend(result?);
    }
    check_outcomes(&read_log(&**store, &universe.names.filter(), 1_000).await, &outcomes)
}

/// Runs `property` on 24 random plans with proptest, from inside a case on the multi-threaded runtime.
fn check_plans<F>(what: &str, property: F)
where
    F: Fn(plan::Plan) -> Result<(), String>,
{
    use proptest::test_runner::{Config, TestCaseError, TestRunner};
    let config = Config { cases: 24, failure_persistence: None, max_shrink_iters: 512, ..Config::default() };
    let mut runner = TestRunner::new(config);
    let result =
        tokio::task::block_in_place(|| runner.run(&plan::plan(), |plan| property(plan).map_err(TestCaseError::fail)));
    if let Err(error) = result {
        panic!("{what}: {error}");
    }
}

/// Random interleavings of reads and conditional (and plain) appends by a few writers over three tags,
/// run step by step: each conditional append is refused exactly when an event matching its query was
/// appended after its read (naming the first), and no committed one has such an event before its own.
pub async fn conditional_appends_in_any_interleaving_never_commit_on_a_stale_read(store: Arc<dyn EventStore>) {
    let handle = tokio::runtime::Handle::current();
    check_plans("an interleaving of conditional appends broke the condition", |plan| {
        handle.block_on(run_in_order(&*store, &plan))
    });
}

/// Random plans of a few writers racing as real tasks: no committed conditional append has an event
/// matching its query between its read and its own first event, and every refusal names the first one.
pub async fn racing_conditional_appends_never_commit_on_a_stale_read(store: Arc<dyn EventStore>) {
    let handle = tokio::runtime::Handle::current();
    check_plans("racing conditional appends broke the condition", |plan| handle.block_on(run_racing(&store, &plan)));
}
