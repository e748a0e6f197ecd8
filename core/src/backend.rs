//! What backend authors need and application authors do not: the five traits an event store implements
//! ([`EventLog`], [`SnapshotStore`], [`SubscriptionStore`], [`StoreLifecycle`], [`EventRetention`]; their sum is
//! [`EventStore`](crate::EventStore)), the checks every backend applies before it writes
//! ([`validate_append`], [`validate_atomic_append`], [`idempotent_retry`], [`idempotent_retry_atomic`],
//! [`validate_handler_name`], and for imports [`validate_import`] and [`plan_import`]), lease plumbing ([`HandlerLease`],
//! [`LeaseGuard`], [`LocalLeases`]), decoding help ([`EventTypeCache`]), the range of a stream prefix
//! ([`prefix_end`]), the order of a batch of snapshots ([`snapshots_in_order`]) and the plumbing a runtime uses
//! to run effects ([`Task`], [`RequestHandler`], [`execute_request`]).
//!
//! Retention's invariants are checked by [`check_stream_removal`] inside each backend's removal transaction.
//!
//! A new backend implements the five traits and runs the conformance suite of `composable-rust-testing`.

use std::collections::HashMap;

use chrono::SubsecRound;

use crate::error::EventStoreError;
use crate::event::{EventId, NewEvent, RecordedEvent};
use crate::event_store::{AppendResult, AtomicAppend};
use crate::snapshot::Snapshot;
use crate::stream::{GlobalPosition, StreamId, Version};

pub use crate::effect::{Task, TaskFuture};
pub use crate::event::EventTypeCache;
pub use crate::event_store::{EventLog, SnapshotStore, StoreLifecycle, SubscriptionStore};
pub use crate::operation::{RequestHandler, StoreRequests, execute_request, load_history};
pub use crate::projection::{HandlerLease, LeaseGuard, LocalLeases};
pub use crate::retention::{EventRetention, check_stream_removal, removed_event_matches};

/// Checks what every backend must refuse before touching storage: empty batches and invalid events.
///
/// # Errors
/// [`EventStoreError::InvalidInput`] naming the problem.
pub fn validate_append(stream_id: &StreamId, events: &[NewEvent]) -> Result<(), EventStoreError> {
    if events.is_empty() {
        return Err(crate::error::InvalidInput::EmptyBatch { stream_id: stream_id.clone() }.into());
    }
    for event in events {
        event.validate()?;
    }
    // One event cannot repeat an id: the hot single-event path skips the check and its allocation.
    let repeated = if events.len() > 1 { repeated_id(events.iter().map(|e| e.id)) } else { None };
    if let Some(id) = repeated {
        return Err(crate::error::InvalidInput::Other(format!(
            "event id {id} appears twice in one append to {stream_id}; every event needs its own id"
        ))
        .into());
    }
    Ok(())
}

/// An id that `ids` holds more than once, if any.
fn repeated_id(ids: impl Iterator<Item = EventId>) -> Option<EventId> {
    let mut ids: Vec<EventId> = ids.collect();
    ids.sort_unstable();
    ids.windows(2).find(|pair| pair[0] == pair[1]).map(|pair| pair[0])
}

/// The idempotency rule of [`EventLog::append`], for backends: given the batch and the stored events
/// that carry any of its ids (in any stream, in any order), decide whether the append is a retry.
///
/// - No stored event has an id of the batch: `Ok(None)`, append normally.
/// - Every event of the batch is stored, in `stream_id`, at consecutive versions in the batch's order,
///   each exactly as in the batch: `Ok(Some(result))`, the result of the append that stored them. Write
///   nothing.
/// - Anything else (another stream, another payload, a batch stored only in part or in another order):
///   [`EventStoreError::EventIdInUse`] naming the first id that does not match. Write nothing.
///
/// # Errors
/// [`EventStoreError::EventIdInUse`] as above.
pub fn idempotent_retry(
    stream_id: &StreamId,
    events: &[NewEvent],
    stored: &[RecordedEvent],
) -> Result<Option<AppendResult>, EventStoreError> {
    if stored.is_empty() {
        return Ok(None);
    }
    let in_use = |stored: &RecordedEvent, difference| EventStoreError::EventIdInUse {
        id: stored.id,
        stream_id: stored.stream_id.clone(),
        version: stored.version,
        difference,
    };
    let mut positions = Vec::with_capacity(events.len());
    let mut previous: Option<Version> = None;
    for event in events {
        let Some(found) = stored.iter().find(|s| s.id == event.id) else {
            // Part of the batch is stored and part is not: not a retry of one append.
            return Err(stored.first().map_or_else(
                || EventStoreError::backend("check an append for a retry", "no stored event to compare"),
                |s| in_use(s, "was appended without the other events of this batch"),
            ));
        };
        if found.stream_id != *stream_id {
            return Err(in_use(found, "belongs to another stream"));
        }
        if previous.is_some_and(|v| found.version != v.next()) {
            return Err(in_use(found, "is not in the order of this batch"));
        }
        if !event.is_stored_as(found) {
            let difference = if event.event_type != found.event_type.as_str() {
                "has another event type"
            } else if event.payload[..] != found.payload[..] || event.codec != found.codec {
                "has another payload"
            } else {
                "has other metadata"
            };
            return Err(in_use(found, difference));
        }
        previous = Some(found.version);
        positions.push(found.position);
    }
    if stored.len() > events.len() {
        // The same id twice in storage cannot happen (ids are unique); be strict anyway.
        return Err(in_use(&stored[0], "is stored more than once"));
    }
    Ok(previous.map(|stream_version| AppendResult { stream_version, positions }))
}

/// What a backend does with one event of an [`EventLog::import`], as [`plan_import`] decides it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImportStep {
    /// Write it: it is the next event of its stream.
    Write,
    /// It is stored already, exactly as given, at this position: skip it.
    Stored(GlobalPosition),
}

/// Checks what every backend must refuse in an [`EventLog::import`] before touching storage: an empty
/// batch, an invalid event (type, `extra` metadata, tags, version 0) and an id given twice.
///
/// # Errors
/// [`EventStoreError::InvalidInput`] naming the problem.
pub fn validate_import(events: &[RecordedEvent]) -> Result<(), EventStoreError> {
    if events.is_empty() {
        return Err(crate::error::InvalidInput::Other("an import needs at least one event".into()).into());
    }
    for event in events {
        crate::event::validate_event_parts(&event.event_type, &event.metadata, &event.tags)?;
        if event.version == Version::INITIAL {
            return Err(crate::error::InvalidInput::Other(format!(
                "event {} of stream {} has version 0; versions start at 1",
                event.id, event.stream_id
            ))
            .into());
        }
    }
    if let Some(id) = repeated_id(events.iter().map(|e| e.id)) {
        return Err(crate::error::InvalidInput::Other(format!(
            "event id {id} appears twice in one import; every event needs its own id"
        ))
        .into());
    }
    Ok(())
}

/// The rule of [`EventLog::import`], for backends: given the (validated) batch, the stored events that carry
/// any of its ids, and the current version of each stream of the batch (a stream missing from `versions`
/// has no events), decide for each event whether to write or skip it.
///
/// - An event stored exactly as given (see [`EventLog::import`]; `recorded_at` compared to the
///   microsecond) is [`ImportStep::Stored`].
/// - Any other event must be the next of its stream, counting the events written before it in the batch:
///   [`ImportStep::Write`].
///
/// # Errors
/// [`EventStoreError::EventIdInUse`] when an id is stored for another event;
/// [`EventStoreError::ConcurrencyConflict`] for the first event that is not the next of its stream.
pub fn plan_import(
    events: &[RecordedEvent],
    stored: &[RecordedEvent],
    versions: &HashMap<StreamId, Version>,
) -> Result<Vec<ImportStep>, EventStoreError> {
    let stored: HashMap<EventId, &RecordedEvent> = stored.iter().map(|e| (e.id, e)).collect();
    let mut heads: HashMap<&StreamId, Version> = HashMap::new();
    let mut steps = Vec::with_capacity(events.len());
    for event in events {
        if let Some(found) = stored.get(&event.id) {
            if let Some(difference) = import_difference(event, found) {
                return Err(EventStoreError::EventIdInUse {
                    id: found.id,
                    stream_id: found.stream_id.clone(),
                    version: found.version,
                    difference,
                });
            }
            steps.push(ImportStep::Stored(found.position));
            continue;
        }
        let head = heads
            .entry(&event.stream_id)
            .or_insert_with(|| versions.get(&event.stream_id).copied().unwrap_or(Version::INITIAL));
        if event.version != head.next() {
            return Err(EventStoreError::ConcurrencyConflict {
                stream_id: event.stream_id.clone(),
                expected: crate::stream::ExpectedVersion::Exact(Version::new(event.version.get() - 1)),
                actual: *head,
            });
        }
        *head = event.version;
        steps.push(ImportStep::Write);
    }
    Ok(steps)
}

/// How `stored` differs from the imported `event` with the same id, if it does.
fn import_difference(event: &RecordedEvent, stored: &RecordedEvent) -> Option<&'static str> {
    if event.stream_id != stored.stream_id {
        Some("belongs to another stream")
    } else if event.version != stored.version {
        Some("is stored at another version")
    } else if event.event_type != stored.event_type {
        Some("has another event type")
    } else if event.codec != stored.codec || event.payload != stored.payload {
        Some("has another payload")
    } else if event.metadata != stored.metadata {
        Some("has other metadata")
    } else if event.tags != stored.tags {
        Some("has other tags")
    } else if event.recorded_at.trunc_subsecs(6) != stored.recorded_at.trunc_subsecs(6) {
        Some("was recorded at another time")
    } else {
        None
    }
}

/// Checks what every backend must refuse in an [`AtomicAppend`] before touching storage: no stream, a
/// stream named twice, an invalid batch ([`validate_append`]) or an invalid condition
/// ([`AppendCondition::validate`](crate::AppendCondition::validate)).
///
/// # Errors
/// [`EventStoreError::InvalidInput`] naming the problem.
pub fn validate_atomic_append(append: &AtomicAppend) -> Result<(), EventStoreError> {
    if append.streams.is_empty() {
        return Err(crate::error::InvalidInput::Other(
            "an atomic append names no stream: add at least one stream with its events".into(),
        )
        .into());
    }
    let mut seen = std::collections::HashSet::with_capacity(append.streams.len());
    for stream in &append.streams {
        if !seen.insert(&stream.stream_id) {
            return Err(crate::error::InvalidInput::Other(format!(
                "stream {} appears twice in one atomic append: put all of its events in one entry",
                stream.stream_id
            ))
            .into());
        }
        validate_append(&stream.stream_id, &stream.events)?;
    }
    if let Some(id) = repeated_id(append.events().map(|e| e.id)) {
        return Err(crate::error::InvalidInput::Other(format!(
            "event id {id} appears twice in one atomic append; every event needs its own id"
        ))
        .into());
    }
    if let Some(condition) = &append.condition {
        condition.validate()?;
    }
    Ok(())
}

/// The checks an in-process store makes under its write lock before it commits an atomic append, in the
/// contract's order: a retry of an append already stored returns its results (`Ok(Some(..))`); then the
/// condition (`first_match` gives the position of the first event matching a query after a position); then each
/// stream's expectation (`version_of` gives a stream's version). `Ok(None)`: commit.
///
/// # Errors
/// As [`idempotent_retry_atomic`]; [`EventStoreError::ConditionFailed`] and
/// [`EventStoreError::ConcurrencyConflict`] as [`EventLog::append_atomic`]
/// describes them.
pub fn check_atomic_append(
    atomic: &AtomicAppend,
    stored: &[RecordedEvent],
    first_match: impl FnOnce(&crate::EventQuery, GlobalPosition) -> Option<GlobalPosition>,
    version_of: impl Fn(&StreamId) -> Version,
) -> Result<Option<Vec<AppendResult>>, EventStoreError> {
    if let Some(original) = idempotent_retry_atomic(atomic, stored)? {
        return Ok(Some(original));
    }
    if let Some(condition) = &atomic.condition {
        if let Some(position) = first_match(&condition.fail_if_events_match, condition.after) {
            return Err(EventStoreError::ConditionFailed { after: condition.after, position });
        }
    }
    for append in &atomic.streams {
        let actual = version_of(&append.stream_id);
        if !append.expected.is_satisfied_by(actual) {
            return Err(EventStoreError::ConcurrencyConflict {
                stream_id: append.stream_id.clone(),
                expected: append.expected,
                actual,
            });
        }
    }
    Ok(None)
}

/// [`idempotent_retry`] for an [`AtomicAppend`]: given the stored events that carry any id of the append,
/// `Ok(None)` when none is stored, `Ok(Some(results))` when every stream's batch is stored exactly (a
/// retry: write nothing, return these), and [`EventStoreError::EventIdInUse`] otherwise.
///
/// # Errors
/// [`EventStoreError::EventIdInUse`] naming the first id that does not match, or one stored without the
/// other streams of the append.
pub fn idempotent_retry_atomic(
    append: &AtomicAppend,
    stored: &[RecordedEvent],
) -> Result<Option<Vec<AppendResult>>, EventStoreError> {
    if stored.is_empty() {
        return Ok(None);
    }
    let mut results = Vec::with_capacity(append.streams.len());
    let mut missing = false;
    for stream in &append.streams {
        let mine: Vec<RecordedEvent> =
            stored.iter().filter(|s| stream.events.iter().any(|e| e.id == s.id)).cloned().collect();
        match idempotent_retry(&stream.stream_id, &stream.events, &mine)? {
            Some(result) => results.push(result),
            None => missing = true,
        }
    }
    if missing {
        // Some streams' events are stored and others' are not: not a retry of this append.
        let first = &stored[0];
        return Err(EventStoreError::EventIdInUse {
            id: first.id,
            stream_id: first.stream_id.clone(),
            version: first.version,
            difference: "was appended without the other streams of this atomic append",
        });
    }
    Ok(Some(results))
}

/// Checks a checkpoint's handler name: non-empty, at most 255 bytes, no control characters.
///
/// # Errors
/// [`EventStoreError::InvalidInput`] naming the problem.
pub fn validate_handler_name(handler: &str) -> Result<(), EventStoreError> {
    if handler.is_empty() || handler.len() > 255 || handler.chars().any(char::is_control) {
        return Err(crate::error::InvalidInput::Other(format!(
            "invalid handler name {handler:?}: use a non-empty name of at most 255 bytes without control characters"
        ))
        .into());
    }
    Ok(())
}

/// Of `snapshots`, the one per stream that saving them one after the other would leave stored (the highest
/// version; of equal versions, the later), in the order their streams first appear: for a backend that
/// saves many snapshots in one statement, which may touch a row only once.
#[must_use]
pub fn latest_snapshots(snapshots: &[Snapshot]) -> Vec<&Snapshot> {
    let mut latest: Vec<&Snapshot> = Vec::with_capacity(snapshots.len());
    let mut index: HashMap<&StreamId, usize> = HashMap::with_capacity(snapshots.len());
    for snapshot in snapshots {
        match index.get(&snapshot.stream_id) {
            Some(&at) if latest[at].version > snapshot.version => {}
            Some(&at) => latest[at] = snapshot,
            None => {
                index.insert(&snapshot.stream_id, latest.len());
                latest.push(snapshot);
            }
        }
    }
    latest
}

/// The snapshots a backend's query `found` for `streams`, in any order, put in the order of `streams`, each
/// stream once: what [`SnapshotStore::load_snapshots`] returns.
#[must_use]
pub fn snapshots_in_order(streams: &[StreamId], found: Vec<Snapshot>) -> Vec<Snapshot> {
    let mut by_stream: HashMap<StreamId, Snapshot> =
        found.into_iter().map(|snapshot| (snapshot.stream_id.clone(), snapshot)).collect();
    // `remove` also returns a stream named twice only once.
    streams.iter().filter_map(|stream_id| by_stream.remove(stream_id)).collect()
}

/// The smallest string greater than every string that starts with `prefix`, or `None` when there is
/// none. Turns "starts with" into an indexed range `[prefix, end)` in byte-wise order (SQLite's default,
/// PostgreSQL's `COLLATE "C"`): byte-wise order of UTF-8 is code point order, so incrementing the last
/// character that can be incremented gives the bound.
#[must_use]
pub fn prefix_end(prefix: &str) -> Option<String> {
    let mut chars: Vec<char> = prefix.chars().collect();
    while let Some(last) = chars.pop() {
        let next = (u32::from(last) + 1..=u32::from(char::MAX)).find_map(char::from_u32);
        if let Some(next) = next {
            chars.push(next);
            return Some(chars.into_iter().collect());
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use chrono::Utc;

    use super::*;

    #[test]
    fn prefix_end_bounds_exactly_the_strings_with_the_prefix() {
        assert_eq!(prefix_end("order-"), Some("order.".to_owned()));
        assert_eq!(prefix_end(""), None);
        assert_eq!(prefix_end("a\u{10FFFF}"), Some("b".to_owned()));
        assert_eq!(prefix_end("\u{D7FF}"), Some("\u{E000}".to_owned()));
        let end = prefix_end("ab").unwrap();
        for inside in ["ab", "ab\u{10FFFF}", "abzzz"] {
            assert!(inside >= "ab" && inside < end.as_str(), "{inside}");
        }
        for outside in ["aa", "ac", "b"] {
            assert!(!(outside >= "ab" && outside < end.as_str()), "{outside}");
        }
    }

    use crate::codec::CodecId;
    use crate::event::Metadata;
    use crate::query::{AppendCondition, EventQuery, QueryItem, Tag};
    use crate::stream::{ExpectedVersion, GlobalPosition};

    fn stream(name: &str) -> StreamId {
        StreamId::new(name).unwrap_or_else(|e| panic!("{e}"))
    }

    fn event(n: u8) -> NewEvent {
        NewEvent::new("Noted.v1", CodecId::Json, vec![n], Metadata::default())
    }

    /// `event` as a store holding it at `version`, position `position` of `stream_id` would return it.
    fn stored(event: &NewEvent, stream_id: &StreamId, version: u64, position: u64) -> RecordedEvent {
        RecordedEvent {
            id: event.id,
            stream_id: stream_id.clone(),
            version: Version::new(version),
            position: GlobalPosition::new(position),
            event_type: event.event_type.as_str().into(),
            codec: event.codec,
            payload: event.payload.clone().into(),
            metadata: event.metadata.clone(),
            recorded_at: Utc::now(),
            tags: event.tags.clone(),
        }
    }

    #[test]
    fn an_atomic_append_needs_streams_each_once_with_unique_ids_and_a_tag_per_condition_item() {
        let (a, b) = (stream("a-1"), stream("b-1"));
        let invalid =
            |append: &AtomicAppend| matches!(validate_atomic_append(append), Err(EventStoreError::InvalidInput(_)));
        assert!(invalid(&AtomicAppend::new()), "no stream");
        let twice = AtomicAppend::new().stream(a.clone(), ExpectedVersion::Any, vec![event(1)]).stream(
            a.clone(),
            ExpectedVersion::Any,
            vec![event(2)],
        );
        assert!(invalid(&twice), "a stream named twice");
        let shared = event(1);
        let same_id = AtomicAppend::new().stream(a.clone(), ExpectedVersion::Any, vec![shared.clone()]).stream(
            b.clone(),
            ExpectedVersion::Any,
            vec![shared],
        );
        assert!(invalid(&same_id), "one id in two streams");
        let untagged = AtomicAppend::new()
            .stream(a.clone(), ExpectedVersion::Any, vec![event(1)])
            .condition(AppendCondition::none_exist(EventQuery::item(QueryItem::of_types(["Noted.v1"]))));
        assert!(invalid(&untagged), "a condition item without a tag");
        let bad_tag =
            AtomicAppend::new().stream(a.clone(), ExpectedVersion::Any, vec![event(1).with_tags([Tag::new("")])]);
        assert!(invalid(&bad_tag), "an empty tag");
        let fine = AtomicAppend::new()
            .stream(a, ExpectedVersion::Any, vec![event(1).with_tags([Tag::of("k", 1)])])
            .stream(b, ExpectedVersion::NoStream, vec![event(2)])
            .condition(AppendCondition::none_exist(EventQuery::tagged([Tag::of("k", 1)])));
        assert!(validate_atomic_append(&fine).is_ok());
    }

    #[test]
    fn an_atomic_retry_is_recognised_only_when_every_stream_is_stored_as_sent() {
        let (a, b) = (stream("a-1"), stream("b-1"));
        let (first, second, third) = (event(1), event(2), event(3));
        let append = AtomicAppend::new()
            .stream(a.clone(), ExpectedVersion::NoStream, vec![first.clone(), second.clone()])
            .stream(b.clone(), ExpectedVersion::NoStream, vec![third.clone()]);
        assert_eq!(idempotent_retry_atomic(&append, &[]).unwrap_or_else(|e| panic!("{e}")), None);

        let all = [stored(&first, &a, 1, 10), stored(&second, &a, 2, 11), stored(&third, &b, 1, 12)];
        let results = idempotent_retry_atomic(&append, &all).unwrap_or_else(|e| panic!("{e}"));
        let expected = vec![
            AppendResult {
                stream_version: Version::new(2),
                positions: vec![GlobalPosition::new(10), GlobalPosition::new(11)],
            },
            AppendResult { stream_version: Version::new(1), positions: vec![GlobalPosition::new(12)] },
        ];
        assert_eq!(results, Some(expected));

        // Stream a stored, stream b not: not a retry of this append.
        let partial = idempotent_retry_atomic(&append, &all[..2]);
        assert!(
            matches!(&partial, Err(EventStoreError::EventIdInUse { difference, .. }) if difference.contains("other streams")),
            "{partial:?}"
        );
    }

    /// One statement per stream leaves what saving one after the other leaves.
    #[test]
    fn latest_snapshots_keep_what_sequential_saves_keep() {
        use proptest::prelude::*;
        proptest!(|(saves in proptest::collection::vec((0_u8..4, 0_u64..4, any::<u8>()), 0..24))| {
            let snapshots: Vec<Snapshot> = saves
                .iter()
                .map(|&(stream, version, tag)| Snapshot {
                    stream_id: StreamId::new(format!("s-{stream}")).unwrap(),
                    version: Version::new(version),
                    schema_version: 1,
                    codec: crate::CodecId::Json,
                    payload: vec![tag],
                    taken_at: Utc::now(),
                })
                .collect();
            let mut sequential: Vec<&Snapshot> = Vec::new();
            for snapshot in &snapshots {
                match sequential.iter_mut().find(|s| s.stream_id == snapshot.stream_id) {
                    Some(stored) if stored.version > snapshot.version => {}
                    Some(stored) => *stored = snapshot,
                    None => sequential.push(snapshot),
                }
            }
            prop_assert_eq!(latest_snapshots(&snapshots), sequential);
        });
    }
}
