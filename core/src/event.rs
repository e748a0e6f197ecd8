//! Events: the [`Event`] trait for domain events, [`NewEvent`] (to append) and [`RecordedEvent`]
//! (as stored, with everything the store knows about it), and [`Metadata`].

use std::borrow::Borrow;
use std::fmt;
use std::ops::Deref;
use std::sync::Arc;

pub use bytes::Bytes;
use chrono::{DateTime, Utc};
use serde::Serialize;
use serde::de::DeserializeOwned;
use uuid::Uuid;

use crate::codec::CodecId;
use crate::error::{CodecError, InvalidInput};
use crate::query::Tag;
use crate::stream::{GlobalPosition, StreamId, Version};

/// A domain event that can be stored: any serde type that names its type.
///
/// The name includes a schema version, `OrderPlaced.v1`, so that old events can be upcast when the
/// shape changes. Encoding and decoding come for free from serde.
///
/// ```
/// use composable_rust_core::{CodecId, Event, Metadata};
/// use serde::{Deserialize, Serialize};
///
/// #[derive(Debug, PartialEq, Serialize, Deserialize)]
/// enum OrderEvent {
///     Placed { customer: String },
///     Cancelled { reason: String },
/// }
///
/// impl Event for OrderEvent {
///     fn event_type(&self) -> &'static str {
///         match self {
///             Self::Placed { .. } => "OrderPlaced.v1",
///             Self::Cancelled { .. } => "OrderCancelled.v1",
///         }
///     }
/// }
///
/// let new = OrderEvent::Placed { customer: "ada".into() }.to_new_event(CodecId::Json, Metadata::default())?;
/// assert_eq!(new.event_type, "OrderPlaced.v1");
/// assert_eq!(new.payload, br#"{"Placed":{"customer":"ada"}}"#);
/// # Ok::<(), composable_rust_core::CodecError>(())
/// ```
pub trait Event: Serialize + DeserializeOwned + Send + Sync + 'static {
    /// The stored type name of this event, with its schema version: `OrderPlaced.v1`.
    fn event_type(&self) -> &'static str;

    /// Encodes this event for appending.
    ///
    /// # Errors
    /// [`CodecError::Encode`] when serde refuses the value.
    ///
    /// The event gets a new time-ordered id ([`EventId::generate`]) (set [`NewEvent::id`] to supply your
    /// own) and the tags of [`Event::tags`].
    fn to_new_event(&self, codec: CodecId, metadata: Metadata) -> Result<NewEvent, CodecError> {
        Ok(NewEvent {
            id: EventId::generate(),
            event_type: self.event_type().to_owned(),
            codec,
            payload: codec.encode(self)?,
            metadata,
            tags: self.tags(),
        })
    }

    /// The tags this event carries, so that queries across streams find it (see
    /// [`EventQuery`](crate::EventQuery)): `vec![Tag::of("course", &self.course_id)]`, say. None by default.
    fn tags(&self) -> Vec<Tag> {
        Vec::new()
    }

    /// Decodes a stored event with the codec that wrote it.
    ///
    /// # Errors
    /// [`CodecError::Decode`] naming the stream, version and event type when the payload does not decode.
    fn from_recorded(recorded: &RecordedEvent) -> Result<Self, CodecError> {
        recorded.codec.decode(&recorded.payload, &recorded.describe())
    }
}

/// Facts about an event besides its payload: why it happened and who caused it.
///
/// The ids are typed columns in the database backends, so filtering by them is cheap; `extra` holds
/// free-form JSON as text and is only parsed when a caller asks ([`Metadata::extra_value`]).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct Metadata {
    /// Groups every event caused by one user request or command.
    pub correlation_id: Option<Uuid>,
    /// The id of the command, or the [`EventId`] of the event, that directly caused this one (see
    /// [`Metadata::caused_by`]).
    pub causation_id: Option<Uuid>,
    /// Who or what caused the event (a user id, a service name).
    pub actor: Option<String>,
    /// Free-form JSON (as text), for anything else.
    pub extra: Option<String>,
}

impl Metadata {
    /// Metadata with a correlation id.
    #[must_use]
    pub fn correlated(correlation_id: Uuid) -> Self {
        Self { correlation_id: Some(correlation_id), ..Self::default() }
    }

    /// Metadata for an event caused by `cause`, e.g. in a saga or a process manager: the causation id is
    /// `cause`'s [`EventId`], and the correlation id is carried over, so one request's events stay together.
    ///
    /// ```
    /// # use composable_rust_core::{CodecId, EventId, Metadata, RecordedEvent, StreamId, Version, GlobalPosition};
    /// # let cause = RecordedEvent {
    /// #     id: EventId::generate(), stream_id: StreamId::new("order-1").unwrap(), version: Version::FIRST,
    /// #     position: GlobalPosition::new(1), event_type: "OrderPlaced.v1".into(), codec: CodecId::Json,
    /// #     payload: Default::default(), metadata: Metadata::correlated(uuid::Uuid::from_u128(7)),
    /// #     recorded_at: chrono::Utc::now(), tags: Vec::new(),
    /// # };
    /// let metadata = Metadata::caused_by(&cause).with_actor("shipping-saga");
    /// assert_eq!(metadata.causation_id, Some(cause.id.as_uuid()));
    /// assert_eq!(metadata.correlation_id, cause.metadata.correlation_id);
    /// ```
    #[must_use]
    pub fn caused_by(cause: &RecordedEvent) -> Self {
        Self {
            correlation_id: cause.metadata.correlation_id,
            causation_id: Some(cause.id.as_uuid()),
            ..Self::default()
        }
    }

    /// Sets the causation id.
    #[must_use]
    pub fn with_causation_id(mut self, causation_id: Uuid) -> Self {
        self.causation_id = Some(causation_id);
        self
    }

    /// Sets the actor.
    #[must_use]
    pub fn with_actor(mut self, actor: impl Into<String>) -> Self {
        self.actor = Some(actor.into());
        self
    }

    /// Sets the free-form part from a JSON value.
    #[must_use]
    pub fn with_extra(mut self, extra: &serde_json::Value) -> Self {
        self.extra = Some(extra.to_string());
        self
    }

    /// Parses the free-form part, if there is one.
    ///
    /// # Errors
    /// The JSON parser's error when the stored text is not JSON.
    pub fn extra_value(&self) -> Option<Result<serde_json::Value, serde_json::Error>> {
        self.extra.as_deref().map(serde_json::from_str)
    }
}

/// The identity of an event, unique in the whole store: a UUID.
///
/// [`EventId::generate`] makes a version 7 UUID (time-ordered, so ids of events appended together sort
/// together and index pages fill in order). An append retried with the same ids after an ambiguous
/// failure (the connection dropped during the commit) is written at most once: see
/// [`EventLog::append`](crate::backend::EventLog::append). [`EventId::derived`] makes ids that a retried
/// *command* reproduces, so that it too is applied once.
///
/// ```
/// use composable_rust_core::EventId;
/// use uuid::Uuid;
///
/// let command = Uuid::from_u128(42);
/// assert_eq!(EventId::derived(command, 0), EventId::derived(command, 0));
/// assert_ne!(EventId::derived(command, 0), EventId::derived(command, 1));
/// assert_ne!(EventId::generate(), EventId::generate());
/// ```
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, serde::Deserialize)]
#[serde(transparent)]
pub struct EventId(Uuid);

impl EventId {
    /// A new, time-ordered id (UUID version 7).
    #[must_use]
    pub fn generate() -> Self {
        Self(Uuid::now_v7())
    }

    /// The id of the `index`-th event (from 0) that the command with id `command_id` causes: the same
    /// inputs always give the same id (UUID version 5), so a command retried with its id appends events
    /// with the ids of its first attempt.
    #[must_use]
    pub fn derived(command_id: Uuid, index: u32) -> Self {
        Self(Uuid::new_v5(&command_id, &index.to_be_bytes()))
    }

    /// The UUID.
    #[must_use]
    pub const fn as_uuid(&self) -> Uuid {
        self.0
    }
}

impl From<Uuid> for EventId {
    fn from(id: Uuid) -> Self {
        Self(id)
    }
}

impl From<EventId> for Uuid {
    fn from(id: EventId) -> Self {
        id.0
    }
}

impl fmt::Display for EventId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

impl fmt::Debug for EventId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "EventId({})", self.0)
    }
}

/// An event ready to append: its id, type name, encoded payload, codec and metadata.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewEvent {
    /// The event's id, unique in the store. Appending an event whose id is already stored is idempotent
    /// when the stored event is the same, and an error when it differs (see
    /// [`EventLog::append`](crate::backend::EventLog::append)).
    pub id: EventId,
    /// The event type with its schema version, e.g. `OrderPlaced.v1`.
    pub event_type: String,
    /// The codec that wrote `payload`.
    pub codec: CodecId,
    /// The encoded event.
    pub payload: Vec<u8>,
    /// Correlation, causation, actor and free-form metadata.
    pub metadata: Metadata,
    /// The labels queries select this event by, across streams (see [`EventQuery`](crate::EventQuery)).
    pub tags: Vec<Tag>,
}

impl NewEvent {
    /// An event with a new id ([`EventId::generate`]) and no tags.
    pub fn new(event_type: impl Into<String>, codec: CodecId, payload: Vec<u8>, metadata: Metadata) -> Self {
        Self { id: EventId::generate(), event_type: event_type.into(), codec, payload, metadata, tags: Vec::new() }
    }

    /// The same event with the tags `tags`.
    #[must_use]
    pub fn with_tags(mut self, tags: impl IntoIterator<Item = Tag>) -> Self {
        self.tags = tags.into_iter().collect();
        self
    }

    /// The same event with the id `id`.
    #[must_use]
    pub fn with_id(mut self, id: impl Into<EventId>) -> Self {
        self.id = id.into();
        self
    }

    /// Whether `stored` is this event as appended: same id, type, codec, payload, metadata and tags.
    #[must_use]
    pub fn is_stored_as(&self, stored: &RecordedEvent) -> bool {
        self.id == stored.id
            && self.event_type == stored.event_type.as_str()
            && self.codec == stored.codec
            && self.payload[..] == stored.payload[..]
            && self.metadata == stored.metadata
            && self.tags == stored.tags
    }

    /// Longest accepted event type name, in bytes.
    pub const MAX_EVENT_TYPE_LEN: usize = 255;

    /// Checks the parts a backend cannot store: the event type must be non-empty, short and printable,
    /// `extra` metadata, when present, must be valid JSON, and every tag must be valid
    /// ([`Tag::validate`]).
    ///
    /// # Errors
    /// [`InvalidInput`] naming the problem.
    pub fn validate(&self) -> Result<(), InvalidInput> {
        validate_event_parts(&self.event_type, &self.metadata, &self.tags)
    }
}

/// The checks of [`NewEvent::validate`], on the parts of any event (an imported one too).
pub(crate) fn validate_event_parts(event_type: &str, metadata: &Metadata, tags: &[Tag]) -> Result<(), InvalidInput> {
    {
        let reason = if event_type.is_empty() {
            Some("it is empty")
        } else if event_type.len() > NewEvent::MAX_EVENT_TYPE_LEN {
            Some("it is longer than 255 bytes")
        } else if event_type.chars().any(char::is_control) {
            Some("it contains a control character")
        } else {
            None
        };
        if let Some(reason) = reason {
            return Err(InvalidInput::EventType { value: event_type.chars().take(64).collect(), reason });
        }
        if let Some(extra) = &metadata.extra {
            if serde_json::from_str::<serde::de::IgnoredAny>(extra).is_err() {
                return Err(InvalidInput::Other(format!("metadata.extra of a {event_type} event is not valid JSON")));
            }
        }
        tags.iter().try_for_each(Tag::validate)
    }
}

/// An event as stored: where it is, when it was recorded, and what it holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordedEvent {
    /// The event's id, as appended.
    pub id: EventId,
    /// The stream it belongs to.
    pub stream_id: StreamId,
    /// Its version within the stream (the first event is version 1).
    pub version: Version,
    /// Its position in the global log.
    pub position: GlobalPosition,
    /// The event type with its schema version.
    pub event_type: EventType,
    /// The codec that wrote `payload`.
    pub codec: CodecId,
    /// The encoded event, exactly as appended. Shared, not copied, when the event is cloned.
    pub payload: Bytes,
    /// The metadata given at append time.
    pub metadata: Metadata,
    /// When the store recorded it (UTC, microsecond precision in every backend).
    pub recorded_at: DateTime<Utc>,
    /// Its tags, as appended.
    pub tags: Vec<Tag>,
}

/// The stored name of an event type, such as `OrderPlaced.v1`, in a loaded [`RecordedEvent`].
///
/// Cheap to clone (a reference count), so replaying thousands of events of a few types allocates no
/// strings: backends reuse one `EventType` per distinct name ([`EventTypeCache`]). Compares with `&str`.
///
/// ```
/// use composable_rust_core::EventType;
///
/// let t = EventType::from("OrderPlaced.v1");
/// assert_eq!(t, "OrderPlaced.v1");
/// assert!(t.starts_with("Order"));
/// ```
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct EventType(Arc<str>);

impl EventType {
    /// The name as text.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl Deref for EventType {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl AsRef<str> for EventType {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl Borrow<str> for EventType {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for EventType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for EventType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.0, f)
    }
}

impl From<&str> for EventType {
    fn from(name: &str) -> Self {
        Self(Arc::from(name))
    }
}

impl From<String> for EventType {
    fn from(name: String) -> Self {
        Self(Arc::from(name))
    }
}

impl PartialEq<str> for EventType {
    fn eq(&self, other: &str) -> bool {
        &*self.0 == other
    }
}

impl PartialEq<&str> for EventType {
    fn eq(&self, other: &&str) -> bool {
        &*self.0 == *other
    }
}

impl PartialEq<String> for EventType {
    fn eq(&self, other: &String) -> bool {
        *self.0 == **other
    }
}

impl PartialEq<EventType> for str {
    fn eq(&self, other: &EventType) -> bool {
        self == &*other.0
    }
}

impl PartialEq<EventType> for &str {
    fn eq(&self, other: &EventType) -> bool {
        *self == &*other.0
    }
}

/// Hands out one shared [`EventType`] per distinct name, so that a backend decoding many rows allocates a
/// name only the first time it sees it. Keep one per read (it holds the few names one read meets).
#[derive(Debug, Default)]
pub struct EventTypeCache {
    seen: Vec<EventType>,
}

impl EventTypeCache {
    /// The most names kept; a read that meets more still works, it just allocates for the rest.
    const CAPACITY: usize = 32;

    /// The shared `EventType` for `name`.
    pub fn get(&mut self, name: &str) -> EventType {
        if let Some(known) = self.seen.iter().find(|t| t.as_str() == name) {
            return known.clone();
        }
        let new = EventType::from(name);
        if self.seen.len() < Self::CAPACITY {
            self.seen.push(new.clone());
        }
        new
    }
}

impl RecordedEvent {
    /// Decodes the payload as `E` with the codec that wrote it.
    ///
    /// # Errors
    /// [`CodecError::Decode`] naming the stream, version and event type.
    pub fn decode<E: DeserializeOwned>(&self) -> Result<E, CodecError> {
        self.codec.decode(&self.payload, &self.describe())
    }

    /// `event OrderPlaced.v1 at order-42 version 3`, for messages.
    #[must_use]
    pub fn describe(&self) -> impl fmt::Display + '_ {
        Described(self)
    }
}

struct Described<'a>(&'a RecordedEvent);

impl fmt::Display for Described<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let e = self.0;
        write!(f, "event {} at {} version {}", e.event_type, e.stream_id, e.version)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validate_rejects_bad_types_and_bad_extra_json() {
        let mut event = NewEvent {
            id: crate::EventId::generate(),
            event_type: "Thing.v1".into(),
            codec: CodecId::Json,
            payload: vec![],
            metadata: Metadata::default(),
            tags: Vec::new(),
        };
        assert!(event.validate().is_ok());
        event.metadata.extra = Some("{not json".into());
        assert!(event.validate().is_err());
        event.metadata.extra = None;
        event.event_type = String::new();
        assert!(event.validate().is_err());
    }

    #[test]
    fn metadata_extra_round_trips() {
        let m = Metadata::default().with_extra(&serde_json::json!({"ip": "127.0.0.1"}));
        assert_eq!(m.extra_value().unwrap().unwrap()["ip"], "127.0.0.1");
    }
}
