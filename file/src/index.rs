//! The in-memory index of a [`FileEventStore`](crate::FileEventStore): every committed event in position
//! order, with lookups by stream, id and tag. Rebuilt from the segments on every open; never written
//! anywhere, so it can never disagree with the files.
//!
//! It holds the events themselves, not offsets into the files: closed segments are gzip streams, which
//! cannot be read from the middle, and replay from memory is what makes this backend fast. The price is
//! that the whole log must fit in memory (see "Limits" in docs/operations.md).

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::ops::Bound;

use chrono::{DateTime, Utc};

use composable_rust_core::backend::removed_event_matches;
use composable_rust_core::{
    EventId, EventQuery, EventType, GlobalPosition, LogFilter, RecordedEvent, StreamId, StreamInfo, Tag, Version,
};

/// Every committed event, and the lookups reads need.
#[derive(Debug, Default)]
pub(crate) struct Index {
    /// The global log: entry `i` is the event at position `i + 1`.
    events: Vec<RecordedEvent>,
    /// Each stream's events as indexes into `events`, in version order (entry `i` is version `i + 1`);
    /// ordered by stream id for `list_streams`.
    streams: BTreeMap<StreamId, Vec<usize>>,
    /// Event id to index into `events`: idempotent appends and `load_event`.
    ids: HashMap<EventId, usize>,
    /// Tag to the indexes into `events` of the events that carry it, ascending: reads by query.
    tagged: HashMap<Tag, Vec<usize>>,
    /// Every event type name stored, once: events share it instead of each owning a copy.
    event_types: HashSet<EventType>,
    /// Whether retention removed event `i`; shorter than `events` (empty) until it removes one. A removed
    /// event keeps its slot (positions and versions are indexes), stripped of payload, metadata and tags,
    /// and every read skips it.
    removed: Vec<bool>,
    /// The positions retention removed; the last is the removal horizon.
    removed_positions: BTreeSet<GlobalPosition>,
}

impl Index {
    /// The number of events, which is also the position of the last one.
    pub(crate) fn len(&self) -> usize {
        self.events.len()
    }

    /// The number of events still stored (not removed by retention).
    pub(crate) fn stored_len(&self) -> usize {
        self.events.len() - self.removed_positions.len()
    }

    fn is_removed(&self, index: usize) -> bool {
        self.removed.get(index).copied().unwrap_or(false)
    }

    /// The position of `stream_id`'s event at `version`, and whether it was removed; `None` when the stream
    /// has no such version.
    pub(crate) fn position_at(&self, stream_id: &StreamId, version: Version) -> Option<(GlobalPosition, bool)> {
        let &index = self.streams.get(stream_id)?.get(index_of(version))?;
        Some((position_of(index + 1), self.is_removed(index)))
    }

    /// Removes the event at `position` from every read (retention); `false` when there is no such event.
    pub(crate) fn remove(&mut self, position: GlobalPosition) -> bool {
        let Some(index) = usize::try_from(position.get()).ok().and_then(|p| p.checked_sub(1)) else { return false };
        let Some(event) = self.events.get_mut(index) else { return false };
        if self.removed.len() <= index {
            self.removed.resize(index + 1, false);
        }
        if !self.removed[index] {
            self.removed[index] = true;
            event.payload = composable_rust_core::Bytes::new();
            event.metadata = composable_rust_core::Metadata::default();
            event.tags = Vec::new();
            // The id stays taken: the segments still hold the event, and reopening checks ids are unique.
            self.removed_positions.insert(position);
        }
        true
    }

    /// The greatest position removed, if any.
    pub(crate) fn removal_horizon(&self) -> Option<GlobalPosition> {
        self.removed_positions.last().copied()
    }

    /// How many removed events in `(after, through]` pass `filter` as far as a removed event can.
    pub(crate) fn removed_between(&self, after: GlobalPosition, through: GlobalPosition, filter: &LogFilter) -> u64 {
        if through <= after {
            return 0;
        }
        self.removed_positions
            .range((Bound::Excluded(after), Bound::Included(through)))
            .filter_map(|p| usize::try_from(p.get()).ok()?.checked_sub(1).and_then(|i| self.events.get(i)))
            .filter(|e| removed_event_matches(filter, e.stream_id.as_str(), &e.event_type))
            .count() as u64
    }

    /// The lowest version of `stream_id` still stored.
    pub(crate) fn first_retained(&self, stream_id: &StreamId) -> Option<Version> {
        let stream = self.streams.get(stream_id)?;
        stream.iter().find(|&&index| !self.is_removed(index)).map(|&index| self.events[index].version)
    }

    /// The number of streams.
    pub(crate) fn stream_count(&self) -> usize {
        self.streams.len()
    }

    /// The earliest and the latest `recorded_at` (imports keep old times, so these need not be the first
    /// and last events').
    pub(crate) fn time_range(&self) -> (Option<DateTime<Utc>>, Option<DateTime<Utc>>) {
        let times = self.stored().map(|e| e.recorded_at);
        (times.clone().min(), times.max())
    }

    /// The position of the last event ([`GlobalPosition::START`] when there is none).
    pub(crate) fn last_position(&self) -> GlobalPosition {
        position_of(self.events.len())
    }

    /// The position the next event will take.
    pub(crate) fn next_position(&self) -> GlobalPosition {
        position_of(self.events.len() + 1)
    }

    /// The stream's version: its number of events.
    pub(crate) fn version_of(&self, stream_id: &StreamId) -> Version {
        self.streams.get(stream_id).map_or(Version::INITIAL, |events| version_of_len(events.len()))
    }

    /// The shared name for `name`.
    pub(crate) fn event_type(&mut self, name: &str) -> EventType {
        if let Some(known) = self.event_types.get(name) {
            return known.clone();
        }
        let new = EventType::from(name);
        self.event_types.insert(new.clone());
        new
    }

    /// Why `event` cannot be the next event of the log, if it cannot: its position must follow the last
    /// one, its version must follow its stream's, and its id must be new. Appends satisfy this by
    /// construction; a segment read from disk is checked line by line.
    pub(crate) fn refuse(&self, event: &RecordedEvent) -> Option<String> {
        let expected_position = self.next_position();
        if event.position != expected_position {
            return Some(format!(
                "has position {} where position {expected_position} comes next (positions are dense and ascending)",
                event.position
            ));
        }
        let expected_version = self.version_of(&event.stream_id).next();
        if event.version != expected_version {
            return Some(format!(
                "has version {} of stream {} where version {expected_version} comes next (versions are dense per stream)",
                event.version, event.stream_id
            ));
        }
        if let Some(&earlier) = self.ids.get(&event.id) {
            return Some(format!("repeats event id {} of position {}", event.id, position_of(earlier + 1)));
        }
        None
    }

    /// Adds `event` at the end of the log. The caller has checked it with [`Index::refuse`].
    pub(crate) fn push(&mut self, mut event: RecordedEvent) {
        match self.event_types.get(event.event_type.as_str()) {
            Some(known) => event.event_type = known.clone(),
            None => {
                self.event_types.insert(event.event_type.clone());
            }
        }
        let index = self.events.len();
        match self.streams.get_mut(&event.stream_id) {
            Some(stream) => stream.push(index),
            None => {
                self.streams.insert(event.stream_id.clone(), vec![index]);
            }
        }
        self.ids.insert(event.id, index);
        for tag in &event.tags {
            self.tagged.entry(tag.clone()).or_default().push(index);
        }
        self.events.push(event);
    }

    /// Removes the events after the first `len`: the uncommitted tail of a segment cut on open.
    pub(crate) fn truncate(&mut self, len: usize) {
        while self.events.len() > len {
            let Some(event) = self.events.pop() else { break };
            if let Some(stream) = self.streams.get_mut(&event.stream_id) {
                stream.pop();
                if stream.is_empty() {
                    self.streams.remove(&event.stream_id);
                }
            }
            self.ids.remove(&event.id);
            for tag in &event.tags {
                if let Some(postings) = self.tagged.get_mut(tag) {
                    postings.pop();
                    if postings.is_empty() {
                        self.tagged.remove(tag);
                    }
                }
            }
        }
    }

    /// The stored event with id `id` (not one retention removed).
    pub(crate) fn event(&self, id: EventId) -> Option<&RecordedEvent> {
        self.ids.get(&id).filter(|&&index| !self.is_removed(index)).map(|&index| &self.events[index])
    }

    /// The event with id `id`, also one retention removed (stripped): what an append checks its ids
    /// against, since a removed event's id stays taken in this backend.
    pub(crate) fn event_or_removed(&self, id: EventId) -> Option<&RecordedEvent> {
        self.ids.get(&id).map(|&index| &self.events[index])
    }

    /// The events of `stream_id` from version `from` (at least 1) up to `to` (inclusive), at most `limit`.
    pub(crate) fn stream_events(
        &self,
        stream_id: &StreamId,
        from: Version,
        to: Option<Version>,
        limit: usize,
    ) -> Vec<RecordedEvent> {
        let Some(stream) = self.streams.get(stream_id) else { return Vec::new() };
        let start = index_of(from).min(stream.len());
        // Versions are 1-based, so the index after version `to` is `to` (0 for `to = 0`: nothing).
        let end =
            to.map_or(stream.len(), |to| usize::try_from(to.get()).unwrap_or(usize::MAX).min(stream.len())).max(start);
        stream[start..end]
            .iter()
            .filter(|&&index| !self.is_removed(index))
            .take(limit)
            .map(|&index| self.events[index].clone())
            .collect()
    }

    /// The stored events after `after`, in position order.
    pub(crate) fn after(&self, after: GlobalPosition) -> impl DoubleEndedIterator<Item = &RecordedEvent> {
        let start = usize::try_from(after.get()).unwrap_or(usize::MAX).min(self.events.len());
        self.events[start..].iter().enumerate().filter(move |(i, _)| !self.is_removed(start + i)).map(|(_, e)| e)
    }

    /// Every stored event, in position order.
    fn stored(&self) -> impl Iterator<Item = &RecordedEvent> + Clone {
        self.events.iter().enumerate().filter(|(i, _)| !self.is_removed(*i)).map(|(_, e)| e)
    }

    /// The events before `before`, in position order.
    pub(crate) fn before(&self, before: GlobalPosition) -> impl DoubleEndedIterator<Item = &RecordedEvent> {
        let end = usize::try_from(before.get().saturating_sub(1)).unwrap_or(usize::MAX).min(self.events.len());
        self.events[..end].iter().enumerate().filter(move |(i, _)| !self.is_removed(*i)).map(|(_, e)| e)
    }

    /// Up to `limit` events after `after` matching `query`, in position order. An item with tags walks the
    /// postings of its first tag; an item without tags scans the log from `after`.
    pub(crate) fn query(&self, query: &EventQuery, after: GlobalPosition, limit: usize) -> Vec<&RecordedEvent> {
        let start = usize::try_from(after.get()).unwrap_or(usize::MAX).min(self.events.len());
        let mut found: Vec<usize> = Vec::new();
        for item in &query.items {
            let matching = |&index: &usize| {
                let event = &self.events[index];
                !self.is_removed(index) && item.matches(&event.event_type, &event.tags)
            };
            match item.tags.first() {
                Some(tag) => {
                    let postings = self.tagged.get(tag).map_or(&[][..], Vec::as_slice);
                    let from = postings.partition_point(|&index| index < start);
                    found.extend(postings[from..].iter().copied().filter(matching).take(limit));
                }
                None => found.extend((start..self.events.len()).filter(matching).take(limit)),
            }
        }
        found.sort_unstable();
        found.dedup();
        found.truncate(limit);
        found.into_iter().map(|index| &self.events[index]).collect()
    }

    /// Up to `limit` streams whose id starts with `prefix` and sorts after `after`, in id order.
    pub(crate) fn list_streams(&self, prefix: &str, after: Option<&StreamId>, limit: usize) -> Vec<StreamInfo> {
        let lower = match after {
            Some(after) if after.as_str() >= prefix => Bound::Excluded(after.as_str()),
            _ => Bound::Included(prefix),
        };
        self.streams
            .range::<str, _>((lower, Bound::Unbounded))
            .take_while(|(id, _)| id.as_str().starts_with(prefix))
            .take(limit)
            .map(|(id, events)| StreamInfo { stream_id: id.clone(), version: version_of_len(events.len()) })
            .collect()
    }
}

fn position_of(len: usize) -> GlobalPosition {
    GlobalPosition::new(u64::try_from(len).unwrap_or(u64::MAX))
}

fn version_of_len(len: usize) -> Version {
    Version::new(u64::try_from(len).unwrap_or(u64::MAX))
}

/// Index into a stream's list of the event at `version` (version 1 is index 0).
fn index_of(version: Version) -> usize {
    usize::try_from(version.get().saturating_sub(1)).unwrap_or(usize::MAX)
}
