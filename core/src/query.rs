//! Consistency beyond one stream, after the Dynamic Consistency Boundary pattern (dcb.events): events
//! carry [`Tag`]s, an [`EventQuery`] selects events by type and tag across streams, and an append can
//! carry an [`AppendCondition`]: "fail if an event matching this query was appended after the position
//! my decision read up to".
//!
//! A decision reads by query ([`EventLog::read_query`](crate::backend::EventLog::read_query)), which returns
//! the matching events and the [`QueryPage::horizon`] up to which the read is complete, decides, and
//! appends with [`QueryPage::condition`]. The store checks the condition and writes atomically, so two
//! decisions whose queries overlap cannot both commit on stale knowledge. See docs/dcb.md.
//!
//! ```
//! use composable_rust_core::{EventQuery, QueryItem, Tag};
//!
//! // "Any enrolment or cancellation of student s1, or any event about course c1."
//! let query = EventQuery::item(QueryItem::tagged([Tag::of("student", "s1")]).types(["Enrolled.v1", "Cancelled.v1"]))
//!     .or(QueryItem::tagged([Tag::of("course", "c1")]));
//! assert!(query.matches("Enrolled.v1", &[Tag::of("student", "s1"), Tag::of("course", "c9")]));
//! assert!(query.matches("CourseDefined.v1", &[Tag::of("course", "c1")]));
//! assert!(!query.matches("Renamed.v1", &[Tag::of("student", "s1")]));
//! ```

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::error::InvalidInput;
use crate::event::RecordedEvent;
use crate::stream::GlobalPosition;

/// An opaque label on an event, such as `username:alice` or `course:c1`, that queries select by.
///
/// Any text of 1 to [`Tag::MAX_LEN`] bytes without control characters; the store checks it when an
/// event or a query carrying it reaches it ([`Tag::validate`]). Tags are stored with the event, returned
/// on every read, in the order appended, and indexed. A tag given twice on one event is kept twice; a query
/// naming a tag twice matches as if it were named once.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Tag(String);

impl Tag {
    /// Longest accepted tag, in bytes.
    pub const MAX_LEN: usize = 255;

    /// A tag with this exact text.
    pub fn new(text: impl Into<String>) -> Self {
        Self(text.into())
    }

    /// The tag `{kind}:{value}`, the usual shape: `Tag::of("course", "c1")` is `course:c1`.
    pub fn of(kind: &str, value: impl fmt::Display) -> Self {
        Self(format!("{kind}:{value}"))
    }

    /// The tag's text.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Checks that a backend can store and index the tag: 1 to 255 bytes, no control characters.
    ///
    /// # Errors
    /// [`InvalidInput::Tag`] naming the problem.
    pub fn validate(&self) -> Result<(), InvalidInput> {
        let reason = if self.0.is_empty() {
            "it is empty"
        } else if self.0.len() > Self::MAX_LEN {
            "it is longer than 255 bytes"
        } else if self.0.chars().any(char::is_control) {
            "it contains a control character"
        } else {
            return Ok(());
        };
        Err(InvalidInput::Tag { value: self.0.chars().take(64).collect(), reason })
    }
}

impl fmt::Debug for Tag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

impl fmt::Display for Tag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<&str> for Tag {
    fn from(text: &str) -> Self {
        Self::new(text)
    }
}

impl From<String> for Tag {
    fn from(text: String) -> Self {
        Self(text)
    }
}

impl AsRef<str> for Tag {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

/// One alternative of an [`EventQuery`]: events of one of `event_types` (any type when empty) that carry
/// every tag of `tags` (and possibly more).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueryItem {
    /// The event types to match, any of them (empty: every type).
    pub event_types: Vec<String>,
    /// The tags an event must all carry (empty: no tag is required).
    pub tags: Vec<Tag>,
}

impl QueryItem {
    /// Events that carry all of `tags`, of any type.
    pub fn tagged(tags: impl IntoIterator<Item = Tag>) -> Self {
        Self { event_types: Vec::new(), tags: tags.into_iter().collect() }
    }

    /// Events of any of `types`, with any tags.
    pub fn of_types<I, S>(types: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Self { event_types: types.into_iter().map(Into::into).collect(), tags: Vec::new() }
    }

    /// The same item, restricted to events of any of `types`.
    #[must_use]
    pub fn types<I, S>(mut self, types: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.event_types = types.into_iter().map(Into::into).collect();
        self
    }

    /// The same item, also requiring `tag`.
    #[must_use]
    pub fn tag(mut self, tag: Tag) -> Self {
        self.tags.push(tag);
        self
    }

    /// Whether an event of type `event_type` carrying `tags` matches this item.
    #[must_use]
    pub fn matches(&self, event_type: &str, tags: &[Tag]) -> bool {
        (self.event_types.is_empty() || self.event_types.iter().any(|t| t == event_type))
            && self.tags.iter().all(|wanted| tags.contains(wanted))
    }
}

/// Which events, across all streams, a decision depends on: the events matching any of its
/// [`QueryItem`]s. A query with no items matches nothing; [`EventQuery::all`] matches everything.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventQuery {
    /// The alternatives; an event matches the query when it matches any of them.
    pub items: Vec<QueryItem>,
}

impl EventQuery {
    /// A query matching every event.
    #[must_use]
    pub fn all() -> Self {
        Self { items: vec![QueryItem::default()] }
    }

    /// A query with one item.
    #[must_use]
    pub fn item(item: QueryItem) -> Self {
        Self { items: vec![item] }
    }

    /// The events carrying all of `tags`, of any type: the most common query.
    pub fn tagged(tags: impl IntoIterator<Item = Tag>) -> Self {
        Self::item(QueryItem::tagged(tags))
    }

    /// The same query, also matching the events of `item`.
    #[must_use]
    pub fn or(mut self, item: QueryItem) -> Self {
        self.items.push(item);
        self
    }

    /// The union of two queries.
    #[must_use]
    pub fn union(mut self, other: Self) -> Self {
        self.items.extend(other.items);
        self
    }

    /// Whether an event of type `event_type` carrying `tags` matches the query.
    #[must_use]
    pub fn matches(&self, event_type: &str, tags: &[Tag]) -> bool {
        self.items.iter().any(|item| item.matches(event_type, tags))
    }

    /// Whether `event` matches the query.
    #[must_use]
    pub fn matches_event(&self, event: &RecordedEvent) -> bool {
        self.matches(&event.event_type, &event.tags)
    }

    /// Checks every tag of the query ([`Tag::validate`]).
    ///
    /// # Errors
    /// [`InvalidInput::Tag`] for the first invalid tag.
    pub fn validate(&self) -> Result<(), InvalidInput> {
        self.items.iter().flat_map(|item| &item.tags).try_for_each(Tag::validate)
    }
}

/// A condition an append must meet to be written: no event matching `fail_if_events_match` was appended
/// after position `after`. Checked and written atomically, even against concurrent appenders.
///
/// Every item of the query must name at least one tag: the stores enforce conditions per tag (on
/// PostgreSQL, appends whose tags meet a condition's tags are serialised), so an item that matches by
/// type alone would have to serialise every append of that type. Such a condition is refused as
/// [`InvalidInput`]. Reads by query accept untagged items.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppendCondition {
    /// The events whose appearance after `after` fails the append.
    pub fail_if_events_match: EventQuery,
    /// The position the decision read up to: [`QueryPage::horizon`], or [`GlobalPosition::START`] for
    /// "no matching event may exist at all".
    pub after: GlobalPosition,
}

impl AppendCondition {
    /// Fails the append if an event matching `query` was appended after `after`.
    #[must_use]
    pub fn new(query: EventQuery, after: GlobalPosition) -> Self {
        Self { fail_if_events_match: query, after }
    }

    /// Fails the append if any event matching `query` exists: the append must be the first of its kind
    /// (a unique username, say).
    #[must_use]
    pub fn none_exist(query: EventQuery) -> Self {
        Self::new(query, GlobalPosition::START)
    }

    /// Checks the condition's query: valid tags, and at least one tag per item (see above).
    ///
    /// # Errors
    /// [`InvalidInput`] naming the problem.
    pub fn validate(&self) -> Result<(), InvalidInput> {
        self.fail_if_events_match.validate()?;
        if let Some(index) = self.fail_if_events_match.items.iter().position(|item| item.tags.is_empty()) {
            return Err(InvalidInput::Other(format!(
                "item {index} of the append condition's query names no tag: a condition is enforced per tag; \
                 tag the events it is about (e.g. `course:c1`) and name that tag in the item"
            )));
        }
        Ok(())
    }
}

/// What a read by query returned: the matching events after the requested position, in position order,
/// and the horizon up to which the read is complete.
///
/// Every event matching the query with a position at or below `horizon` is in `events` (or was before the
/// requested position), and no such event can be appended later: positions of later commits lie above
/// it. So the decision made from `events` is safe to append with [`QueryPage::condition`]. When the page
/// is full (`events.len() == limit`), `horizon` is the last event's position: read on from there; a read
/// with `limit == 0` returns the requested position.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct QueryPage {
    /// The matching events, in position order.
    pub events: Vec<RecordedEvent>,
    /// The position up to which the read is complete.
    pub horizon: GlobalPosition,
}

impl QueryPage {
    /// The page of a read of up to `limit` events after `after` that found `events`, on a store where no
    /// matching event can still appear at or below `complete_up_to`: a full page is complete up to its last
    /// event, a read of nothing (`limit == 0`) up to `after`, any other read up to `complete_up_to`, never
    /// below `after`. The horizon rule of every backend, stated once.
    #[must_use]
    pub fn new(
        events: Vec<RecordedEvent>,
        after: GlobalPosition,
        limit: usize,
        complete_up_to: GlobalPosition,
    ) -> Self {
        let horizon = match events.last() {
            Some(last) if events.len() >= limit => last.position,
            _ if limit == 0 => after,
            _ => complete_up_to.max(after),
        };
        Self { events, horizon }
    }

    /// The condition that makes a decision based on this read safe: fail if an event matching `query`
    /// (usually the query this page was read with) appears after [`QueryPage::horizon`].
    #[must_use]
    pub fn condition(&self, query: EventQuery) -> AppendCondition {
        AppendCondition::new(query, self.horizon)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_item_needs_one_of_its_types_and_all_of_its_tags() {
        let item = QueryItem::tagged([Tag::of("course", "c1"), Tag::of("student", "s1")]).types(["Enrolled.v1"]);
        let both = [Tag::of("student", "s1"), Tag::of("course", "c1"), Tag::new("extra")];
        assert!(item.matches("Enrolled.v1", &both));
        assert!(!item.matches("Left.v1", &both), "another type");
        assert!(!item.matches("Enrolled.v1", &both[..1]), "a tag missing");
        assert!(QueryItem::default().matches("Anything.v1", &[]));
    }

    #[test]
    fn a_query_without_items_matches_nothing_and_all_matches_everything() {
        assert!(!EventQuery::default().matches("Anything.v1", &[Tag::new("t")]));
        assert!(EventQuery::all().matches("Anything.v1", &[]));
    }

    #[test]
    fn tags_are_checked_and_conditions_need_a_tag_per_item() {
        assert!(Tag::new("").validate().is_err());
        assert!(Tag::new("a\u{1f}b").validate().is_err());
        assert!(Tag::new("x".repeat(256)).validate().is_err());
        assert!(Tag::of("username", "alice").validate().is_ok());
        let untagged = AppendCondition::none_exist(EventQuery::item(QueryItem::of_types(["Registered.v1"])));
        let message = untagged.validate().unwrap_err().to_string();
        assert!(message.contains("item 0") && message.contains("names no tag"), "{message}");
        assert!(AppendCondition::none_exist(EventQuery::tagged([Tag::of("username", "alice")])).validate().is_ok());
    }
}
