//! The [`EventStore`] contract every backend (PostgreSQL, SQLite, in-memory) implements, split along its
//! jobs: [`EventLog`], [`SnapshotStore`], [`SubscriptionStore`], [`StoreLifecycle`], [`EventRetention`].
//!
//! The contract, pinned by the conformance suite in `composable-rust-testing`:
//! - Append-only. There is no API to change an event, and none to delete one outside retention
//!   ([`EventRetention`], an explicit, audited operation that keeps the invariants of [`crate::retention`]).
//! - Versions are dense per stream, starting at 1 (see [`crate::stream`]). An append of a batch is atomic:
//!   all of its events are stored with consecutive versions, or none is.
//! - A stale [`ExpectedVersion`] fails with
//!   [`EventStoreError::ConcurrencyConflict`]; of two writers racing at the same expectation exactly one wins.
//! - The global log is read in position order, oldest or newest first ([`LogCursor`]), and a reader that
//!   has read up to position `N` will later see every event that commits after its read at a position above
//!   `N` (no gaps filled in behind it).
//! - One latest snapshot per stream; checkpoints keyed by handler name.
//! - [`EventLog::import`] writes events recorded elsewhere with their versions and times, in order, once.

use std::fmt::Debug;
use std::ops::ControlFlow;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use futures::TryStreamExt;
use futures::stream::BoxStream;
use uuid::Uuid;

use crate::backend::{LocalLeases, validate_handler_name};
use crate::error::EventStoreError;
use crate::event::{EventId, NewEvent, RecordedEvent};
use crate::projection::HandlerLease;
use crate::query::{AppendCondition, EventQuery, QueryPage};
use crate::retention::EventRetention;
use crate::snapshot::Snapshot;
use crate::stream::{ExpectedVersion, GlobalPosition, StreamId, Version};

/// A stream of loaded events, in order. Backends fetch rows as the consumer polls.
pub type EventStream<'a> = BoxStream<'a, Result<RecordedEvent, EventStoreError>>;

/// What a successful append wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppendResult {
    /// The stream's version after the append (the version of the last event written).
    pub stream_version: Version,
    /// The global position of each appended event, in the order given.
    pub positions: Vec<GlobalPosition>,
}

/// The events for one stream in an [`AtomicAppend`], with the version that stream is expected at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamAppend {
    /// The stream to append to.
    pub stream_id: StreamId,
    /// The version the writer expects the stream at.
    pub expected: ExpectedVersion,
    /// The events, in order (at least one).
    pub events: Vec<NewEvent>,
}

/// One atomic write across streams: appends to one or more streams, each with its own expected
/// version, optionally under an [`AppendCondition`]. All of it is written, or nothing.
///
/// ```
/// use composable_rust_core::{AppendCondition, AtomicAppend, EventQuery, ExpectedVersion, StreamId, Tag};
/// # use composable_rust_core::{CodecId, Metadata, NewEvent};
/// # let event = |t: &str| NewEvent::new(t, CodecId::Json, b"{}".to_vec(), Metadata::default());
/// let transfer = AtomicAppend::new()
///     .stream(StreamId::new("account-1")?, ExpectedVersion::Exact(4.into()), vec![event("Debited.v1")])
///     .stream(StreamId::new("account-2")?, ExpectedVersion::Exact(9.into()), vec![event("Credited.v1")]);
/// assert_eq!(transfer.streams.len(), 2);
///
/// let first_of_its_name = AtomicAppend::new()
///     .stream(StreamId::new("user-7")?, ExpectedVersion::NoStream, vec![event("Registered.v1")])
///     .condition(AppendCondition::none_exist(EventQuery::tagged([Tag::of("username", "alice")])));
/// assert!(first_of_its_name.condition.is_some());
/// # Ok::<(), composable_rust_core::InvalidInput>(())
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AtomicAppend {
    /// The streams and their events, each stream at most once.
    pub streams: Vec<StreamAppend>,
    /// The condition the whole append must meet, if any.
    pub condition: Option<AppendCondition>,
}

impl AtomicAppend {
    /// An empty append; add streams with [`AtomicAppend::stream`].
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds `events` for `stream_id`, expected at `expected`.
    #[must_use]
    pub fn stream(mut self, stream_id: StreamId, expected: ExpectedVersion, events: Vec<NewEvent>) -> Self {
        self.streams.push(StreamAppend { stream_id, expected, events });
        self
    }

    /// Sets the condition the append must meet.
    #[must_use]
    pub fn condition(mut self, condition: AppendCondition) -> Self {
        self.condition = Some(condition);
        self
    }

    /// Every event of the append, stream by stream, in order.
    pub fn events(&self) -> impl Iterator<Item = &NewEvent> {
        self.streams.iter().flat_map(|s| &s.events)
    }
}

/// Which versions of a stream to read: `from` (inclusive) up to `to` (inclusive, or the end).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StreamRange {
    /// The first version to read.
    pub from: Version,
    /// The last version to read; `None` reads to the end.
    pub to: Option<Version>,
}

impl StreamRange {
    /// Every event of the stream.
    #[must_use]
    pub const fn all() -> Self {
        Self { from: Version::FIRST, to: None }
    }

    /// The events after `version` (e.g. after a snapshot).
    #[must_use]
    pub const fn after(version: Version) -> Self {
        Self { from: version.next(), to: None }
    }

    /// The events from `from` to `to`, both inclusive.
    #[must_use]
    pub const fn between(from: Version, to: Version) -> Self {
        Self { from, to: Some(to) }
    }

    /// The same range cut to at most `count` events, the first ones: the limit of a stream read.
    ///
    /// Versions are dense, so a count is a version bound: the range ends at the `count`-th version from
    /// its start (or earlier, where it ended already). A count of 0 reads nothing. Every read of a stream
    /// ([`EventLog::read_stream`], [`EventLog::load_stream`], [`EventLog::visit_stream`]) takes it.
    ///
    /// ```
    /// use composable_rust_core::{StreamRange, Version};
    ///
    /// let page = StreamRange::after(Version::new(40)).limit(10);
    /// assert_eq!(page, StreamRange::between(Version::new(41), Version::new(50)));
    /// assert_eq!(StreamRange::between(Version::new(3), Version::new(5)).limit(100).to, Some(Version::new(5)));
    /// assert!(!StreamRange::all().limit(0).contains(Version::FIRST));
    /// ```
    #[must_use]
    pub fn limit(self, count: u64) -> Self {
        // Version 0 holds no event: counting starts at the first version that can.
        let from = self.from.max(Version::FIRST);
        let last = Version::new((from.get() - 1).saturating_add(count));
        Self { from, to: Some(self.to.map_or(last, |to| to.min(last))) }
    }

    /// Whether `version` lies in the range.
    #[must_use]
    pub fn contains(&self, version: Version) -> bool {
        version >= self.from && self.to.is_none_or(|to| version <= to)
    }
}

impl Default for StreamRange {
    fn default() -> Self {
        Self::all()
    }
}

/// Which events of the global log to read. Empty fields match everything; set fields must all match.
///
/// Read with [`EventLog::read_log`] (oldest or newest first, see [`LogCursor`]) or [`EventLog::read_all`]
/// (oldest first). Each field is served by an index on the SQL backends (docs/operations.md, "Queries"):
///
/// | field | builder | PostgreSQL | SQLite |
/// |---|---|---|---|
/// | `event_types` | [`LogFilter::event_types`] | `events_event_type_idx` | `events_event_type` |
/// | `stream_prefix` | [`LogFilter::stream_prefix`], [`LogFilter::category`] | the primary key `(stream_id, version)` | `events_category` (the id up to its first `-`) |
/// | `correlation_id` | [`LogFilter::correlation_id`] | `events_correlation_idx` (partial) | `events_correlation` (partial) |
/// | `recorded_from`, `recorded_before` | [`LogFilter::recorded_between`] | `events_recorded_at_brin` (BRIN) | `events_recorded_at` |
/// | `actor` | [`LogFilter::actor`] | `events_actor_idx` (partial) | `events_actor` (partial) |
///
/// With no field set, a read walks the log in position order (forwards or backwards). When several are
/// set, the database picks the most selective index and checks the rest per event.
///
/// ```
/// use composable_rust_core::LogFilter;
///
/// let filter = LogFilter::all().event_types(["OrderPlaced.v1", "OrderShipped.v1"]).stream_prefix("order-");
/// assert!(filter.matches_type("OrderPlaced.v1"));
/// let by_alice = LogFilter::all().category("order").actor("alice");
/// assert_eq!(by_alice.actor.as_deref(), Some("alice"));
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LogFilter {
    /// Only these event types (empty: all types).
    pub event_types: Vec<String>,
    /// Only streams whose id starts with this text, e.g. `order-` for a category.
    pub stream_prefix: Option<String>,
    /// Only events with this correlation id.
    pub correlation_id: Option<Uuid>,
    /// Only events recorded at or after this time.
    pub recorded_from: Option<DateTime<Utc>>,
    /// Only events recorded before this time.
    pub recorded_before: Option<DateTime<Utc>>,
    /// Only events whose [`Metadata::actor`](crate::Metadata::actor) is exactly this text.
    pub actor: Option<String>,
}

impl LogFilter {
    /// A filter that matches every event.
    #[must_use]
    pub fn all() -> Self {
        Self::default()
    }

    /// Restricts to these event types.
    #[must_use]
    pub fn event_types<I, S>(mut self, types: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.event_types = types.into_iter().map(Into::into).collect();
        self
    }

    /// Restricts to streams whose id starts with `prefix`.
    #[must_use]
    pub fn stream_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.stream_prefix = Some(prefix.into());
        self
    }

    /// Restricts to the streams of one category (`order` matches `order-42`).
    #[must_use]
    pub fn category(self, category: &str) -> Self {
        self.stream_prefix(format!("{category}{}", StreamId::CATEGORY_SEPARATOR))
    }

    /// Restricts to one correlation id.
    #[must_use]
    pub fn correlation_id(mut self, id: Uuid) -> Self {
        self.correlation_id = Some(id);
        self
    }

    /// Restricts to events recorded in `[from, before)`.
    #[must_use]
    pub fn recorded_between(mut self, from: Option<DateTime<Utc>>, before: Option<DateTime<Utc>>) -> Self {
        self.recorded_from = from;
        self.recorded_before = before;
        self
    }

    /// Restricts to the events of one actor ([`Metadata::actor`](crate::Metadata::actor), compared exactly).
    #[must_use]
    pub fn actor(mut self, actor: impl Into<String>) -> Self {
        self.actor = Some(actor.into());
        self
    }

    /// Whether no field is set: the filter matches every event.
    #[must_use]
    pub fn is_all(&self) -> bool {
        self.event_types.is_empty()
            && self.stream_prefix.is_none()
            && self.correlation_id.is_none()
            && self.recorded_from.is_none()
            && self.recorded_before.is_none()
            && self.actor.is_none()
    }

    /// Whether the event type passes the type restriction.
    #[must_use]
    pub fn matches_type(&self, event_type: &str) -> bool {
        self.event_types.is_empty() || self.event_types.iter().any(|t| t == event_type)
    }

    /// Whether `event` passes every restriction. Backends that filter in SQL use this only in tests.
    #[must_use]
    pub fn matches(&self, event: &RecordedEvent) -> bool {
        self.matches_type(&event.event_type)
            && self.stream_prefix.as_deref().is_none_or(|p| event.stream_id.as_str().starts_with(p))
            && self.correlation_id.is_none_or(|c| event.metadata.correlation_id == Some(c))
            && self.recorded_from.is_none_or(|t| event.recorded_at >= t)
            && self.recorded_before.is_none_or(|t| event.recorded_at < t)
            && self.actor.as_deref().is_none_or(|a| event.metadata.actor.as_deref() == Some(a))
    }
}

/// Where a read of the global log starts, and so which way it goes: oldest first after a position, or
/// newest first before one. What [`EventLog::read_log`] takes.
///
/// The direction is part of the cursor, so a position can never be read the wrong way: `After(p)` reads
/// the events above `p` in increasing position order, `Before(p)` the events below `p` in decreasing
/// order. Both exclude `p` itself, so the next page starts at the last event of the previous one, in
/// either direction: pass the page to [`LogCursor::next`].
///
/// - Oldest first from the beginning: [`LogCursor::OLDEST`] (`After(GlobalPosition::START)`).
/// - Newest first from the end: [`LogCursor::Newest`]. Its first page holds the newest events, and the
///   following ones go back in time until a page comes back short: the beginning of the log.
/// - A forward read that comes back short has caught up; reading again with the same cursor later returns
///   what was committed since. A backward read that comes back short has reached the beginning.
///
/// ```
/// use composable_rust_core::{GlobalPosition, LogCursor};
///
/// // The cursor that follows a page ending at position 7, whichever way it went:
/// let forward = LogCursor::OLDEST.after_position(GlobalPosition::new(7));
/// assert_eq!(forward, LogCursor::After(GlobalPosition::new(7)));
/// let backward = LogCursor::Newest.after_position(GlobalPosition::new(7));
/// assert_eq!(backward, LogCursor::Before(GlobalPosition::new(7)));
/// assert!(backward.is_newest_first());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LogCursor {
    /// Oldest first: the events at positions above this one.
    After(GlobalPosition),
    /// Newest first: the events at positions below this one.
    Before(GlobalPosition),
    /// Newest first, from the newest event a reader may see (on PostgreSQL, the newest below the
    /// visibility horizon, so that no event can later commit above the page it starts).
    Newest,
}

impl LogCursor {
    /// Oldest first, from the first event of the log.
    pub const OLDEST: Self = Self::After(GlobalPosition::START);

    /// Whether the read goes from newer to older events.
    #[must_use]
    pub const fn is_newest_first(self) -> bool {
        !matches!(self, Self::After(_))
    }

    /// The cursor of the page that follows one whose last event is at `position`, in the same direction.
    #[must_use]
    pub const fn after_position(self, position: GlobalPosition) -> Self {
        match self {
            Self::After(_) => Self::After(position),
            Self::Before(_) | Self::Newest => Self::Before(position),
        }
    }

    /// The cursor of the page that follows `page` (read with this cursor), in the same direction; this
    /// cursor again when `page` is empty.
    ///
    /// ```
    /// # use composable_rust_core::{EventStore, EventStoreError, LogCursor, LogFilter};
    /// # async fn newest(store: &dyn EventStore) -> Result<(), EventStoreError> {
    /// // Every event of the `order` category, newest first, 100 at a time.
    /// let filter = LogFilter::all().category("order");
    /// let mut cursor = LogCursor::Newest;
    /// loop {
    ///     let page = store.read_log(cursor, &filter, 100).await?;
    ///     for event in &page {
    ///         println!("{} {}", event.position, event.event_type);
    ///     }
    ///     if page.len() < 100 {
    ///         break; // the beginning of the log
    ///     }
    ///     cursor = cursor.next(&page);
    /// }
    /// # Ok(()) }
    /// ```
    #[must_use]
    pub fn next(self, page: &[RecordedEvent]) -> Self {
        page.last().map_or(self, |last| self.after_position(last.position))
    }

    /// Whether an event at `position` lies on this cursor's side (above `After`, below `Before`).
    #[must_use]
    pub fn admits(self, position: GlobalPosition) -> bool {
        match self {
            Self::After(after) => position > after,
            Self::Before(before) => position < before,
            Self::Newest => true,
        }
    }
}

/// One stream and its current version, as listed by [`EventLog::list_streams`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamInfo {
    /// The stream.
    pub stream_id: StreamId,
    /// Its version (the number of events in it).
    pub version: Version,
}

/// What [`StoreLifecycle::health_check`] found: the backend answered and its schema is current.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HealthReport {
    /// The backend's name: `postgres`, `sqlite`, `in-memory`.
    pub backend: &'static str,
    /// How long the check's round trip took.
    pub round_trip: std::time::Duration,
}

/// What [`StoreLifecycle::stats`] counted. Counts are exact at the moment of the count.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct StoreStats {
    /// The backend's name: `postgres`, `sqlite`, `in-memory`.
    pub backend: &'static str,
    /// Events stored.
    pub events: u64,
    /// Streams with at least one event.
    pub streams: u64,
    /// Snapshots stored (at most one per stream).
    pub snapshots: u64,
    /// Checkpoints stored (one per handler name).
    pub checkpoints: u64,
    /// Bytes the store takes on disk (PostgreSQL: its tables and indexes; SQLite: the database file and
    /// its write-ahead log); `None` for a store that keeps nothing on disk.
    pub bytes_on_disk: Option<u64>,
    /// The earliest `recorded_at` of any event; `None` when there is none.
    pub oldest: Option<DateTime<Utc>>,
    /// The latest `recorded_at` of any event; `None` when there is none.
    pub newest: Option<DateTime<Utc>>,
}

impl StoreStats {
    /// Statistics of a `backend` store holding nothing; fill in the fields that are not zero.
    #[must_use]
    pub const fn empty(backend: &'static str) -> Self {
        Self {
            backend,
            events: 0,
            streams: 0,
            snapshots: 0,
            checkpoints: 0,
            bytes_on_disk: None,
            oldest: None,
            newest: None,
        }
    }
}

/// The one handle users hold: events, snapshots, subscriptions' bookkeeping and the store's lifecycle.
/// Usable as `Arc<dyn EventStore>`.
///
/// A backend does not implement `EventStore` itself: it implements the five traits of its jobs,
/// [`EventLog`], [`SnapshotStore`], [`SubscriptionStore`], [`StoreLifecycle`] and [`EventRetention`]
/// (removing old events under a policy, the one way anything leaves a store), and every type that has
/// all five is an `EventStore`. Their methods are callable on an `EventStore` (a `dyn EventStore` or a
/// generic `S: EventStore`) with no further import; on a concrete store such as `SqliteEventStore`, bring
/// the traits into scope with the prelude of the `composable-rust` crate.
///
/// Implementations must pass the conformance suite in `composable-rust-testing`.
pub trait EventStore: EventLog + SnapshotStore + SubscriptionStore + StoreLifecycle + EventRetention {}

impl<T> EventStore for T where T: EventLog + SnapshotStore + SubscriptionStore + StoreLifecycle + EventRetention + ?Sized
{}

/// The events: appends, stream reads, the global log. The part of the [`EventStore`] contract that is the
/// system of record.
#[async_trait]
pub trait EventLog: Send + Sync + Debug {
    /// Appends `events` to `stream_id` atomically if the stream's version satisfies `expected`.
    ///
    /// **Idempotent by event id.** When every event of the batch is already stored, as the same batch of
    /// this stream (same ids, in order, at consecutive versions, with the same type, codec, payload and
    /// metadata), the append writes nothing and returns the [`AppendResult`] of the append that stored them,
    /// whatever `expected` says now. So an append retried after an ambiguous failure (the connection
    /// dropped while the commit was in flight) is stored once. [`idempotent_retry`](crate::backend::idempotent_retry) states the rule;
    /// every backend applies it before reporting a conflict.
    ///
    /// # Errors
    /// [`EventStoreError::ConcurrencyConflict`] when `expected` does not hold (nothing is written);
    /// [`EventStoreError::EventIdInUse`] when an id of the batch is stored for another event, or only part
    /// of the batch is stored (nothing is written); [`EventStoreError::InvalidInput`] for an empty batch, an
    /// invalid event or an id repeated within the batch; [`EventStoreError::Unavailable`] when the store
    /// cannot be reached (retry); [`EventStoreError::Backend`] when storage fails otherwise.
    async fn append(
        &self,
        stream_id: &StreamId,
        expected: ExpectedVersion,
        events: Vec<NewEvent>,
    ) -> Result<AppendResult, EventStoreError>;

    /// Appends to several streams at once, each with its own expected version, under an optional
    /// [`AppendCondition`]: every event is written, or none. Returns one [`AppendResult`] per stream, in the
    /// order given.
    ///
    /// The condition and the expectations are checked and the events written atomically: of two
    /// appends whose conditions each match the other's events, at most one commits, however they
    /// interleave. Idempotent by event id as [`EventLog::append`] is: when every event of the append is
    /// already stored as this append stored it, nothing is written and the stored results are returned.
    ///
    /// # Errors
    /// [`EventStoreError::ConditionFailed`] naming the first position of an event matching the condition
    /// after its position (checked first: when both fail, this is the error); a condition whose position
    /// lies beyond the log cannot fail; [`EventStoreError::ConcurrencyConflict`] for the first stream whose
    /// expectation does not hold; [`EventStoreError::EventIdInUse`] as for [`EventLog::append`];
    /// [`EventStoreError::InvalidInput`] for an append with no stream, a stream named twice, an empty or
    /// invalid batch, or an invalid condition ([`AppendCondition::validate`]); [`EventStoreError::Unavailable`]
    /// and [`EventStoreError::Backend`] as for [`EventLog::append`]. Nothing is written on any error.
    async fn append_atomic(&self, append: AtomicAppend) -> Result<Vec<AppendResult>, EventStoreError>;

    /// Reads up to `limit` events after `after` that match `query`, across all streams, in position order,
    /// with the horizon up to which the read is complete (see [`QueryPage`]).
    ///
    /// Pass [`QueryPage::condition`] to [`EventLog::append_atomic`] to append a decision made from the
    /// events read.
    ///
    /// # Errors
    /// [`EventStoreError::InvalidInput`] for an invalid tag; [`EventStoreError::Backend`] when storage fails.
    async fn read_query(
        &self,
        query: &EventQuery,
        after: GlobalPosition,
        limit: usize,
    ) -> Result<QueryPage, EventStoreError>;

    /// Streams the events of `stream_id` in `range`, in version order; an unknown stream yields nothing.
    ///
    /// Rows are fetched as the stream is polled, so a very long stream never sits in memory at once. To
    /// read at most `n` events, cut the range with [`StreamRange::limit`].
    fn read_stream(&self, stream_id: &StreamId, range: StreamRange) -> EventStream<'_>;

    /// Loads the whole range into memory. Prefer [`EventLog::read_stream`] for long streams.
    ///
    /// # Errors
    /// As [`EventLog::read_stream`].
    async fn load_stream(
        &self,
        stream_id: &StreamId,
        range: StreamRange,
    ) -> Result<Vec<RecordedEvent>, EventStoreError> {
        self.read_stream(stream_id, range).try_collect().await
    }

    /// Shows `visit` each event of `stream_id` in `range`, in version order, until it returns
    /// [`ControlFlow::Break`]: the events [`EventLog::read_stream`] yields, lent instead of handed over.
    ///
    /// For a caller that only looks at each event once (an aggregate's replay). The default reads
    /// through [`EventLog::read_stream`]; a store that keeps its events in memory lends its own, with no
    /// copy per event. `visit` runs synchronously and may run while the store holds a lock on its events,
    /// so it must not wait on anything.
    ///
    /// # Errors
    /// As [`EventLog::read_stream`].
    async fn visit_stream(
        &self,
        stream_id: &StreamId,
        range: StreamRange,
        visit: &mut (dyn for<'e> FnMut(&'e RecordedEvent) -> ControlFlow<()> + Send),
    ) -> Result<(), EventStoreError> {
        let mut events = self.read_stream(stream_id, range);
        while let Some(event) = events.try_next().await? {
            if visit(&event).is_break() {
                break;
            }
        }
        Ok(())
    }

    /// The stream's version: the version of its last event, or [`Version::INITIAL`] when it has none.
    ///
    /// # Errors
    /// [`EventStoreError::Backend`] when storage fails.
    async fn stream_version(&self, stream_id: &StreamId) -> Result<Version, EventStoreError>;

    /// The event with id `id`, wherever it is stored; `None` when no event has it. An indexed lookup.
    ///
    /// # Errors
    /// [`EventStoreError::Backend`] when storage fails.
    async fn load_event(&self, id: EventId) -> Result<Option<RecordedEvent>, EventStoreError>;

    /// Reads up to `limit` events of the global log on the `cursor`'s side that match `filter`, in the
    /// cursor's direction: [`LogCursor::After`] oldest first, [`LogCursor::Before`] and
    /// [`LogCursor::Newest`] newest first. Read the next page with [`LogCursor::next`].
    ///
    /// Either way a reader never misses an event: oldest first, an event that commits later has a position
    /// above every one already read; newest first, every event below the first page is committed when the
    /// page is read, so the pages behind it are stable.
    ///
    /// # Errors
    /// [`EventStoreError::Backend`] when storage fails.
    async fn read_log(
        &self,
        cursor: LogCursor,
        filter: &LogFilter,
        limit: usize,
    ) -> Result<Vec<RecordedEvent>, EventStoreError>;

    /// Reads up to `limit` events of the global log with a position greater than `after` that match
    /// `filter`, in position order (oldest first). Read pages by passing the last position of a page as the
    /// next `after`. The same as [`EventLog::read_log`] with [`LogCursor::After`].
    ///
    /// # Errors
    /// [`EventStoreError::Backend`] when storage fails.
    async fn read_all(
        &self,
        after: GlobalPosition,
        filter: &LogFilter,
        limit: usize,
    ) -> Result<Vec<RecordedEvent>, EventStoreError> {
        self.read_log(LogCursor::After(after), filter, limit).await
    }

    /// Lists up to `limit` streams whose id starts with `prefix` (`""` for all) and sorts after `after`,
    /// in stream id order (byte-wise). Page by passing the last id of a page as the next `after`.
    ///
    /// # Errors
    /// [`EventStoreError::Backend`] when storage fails.
    async fn list_streams(
        &self,
        prefix: &str,
        after: Option<&StreamId>,
        limit: usize,
    ) -> Result<Vec<StreamInfo>, EventStoreError>;

    /// Writes events recorded elsewhere (an archive, another store) again, keeping their ids, streams,
    /// versions, types, codecs, payloads, metadata, tags and **recorded times**, in the order given: the
    /// restore half of a backup. Not for application writes (it takes no expectation and no condition).
    ///
    /// - `events[i].position` is ignored: the store gives each written event a new position, increasing in
    ///   the order of `events` and above every position it already holds, so the global order of the
    ///   events given is kept. Returns the position of each event of `events`, in order.
    /// - **Idempotent, so an import resumes.** An event whose id is already stored as this very event
    ///   (stream, version, type, codec, payload, metadata, tags and recorded time, to the microsecond) is
    ///   skipped, and its stored position returned: an import re-run after a failure writes only what is
    ///   missing. [`plan_import`](crate::backend::plan_import) states the rule for backends.
    /// - Every other event must be the next of its stream: version 1 for a stream without events, else
    ///   the version after its last one (counting the events before it in `events`).
    /// - All or nothing, like an append. `recorded_at` is kept to the microsecond (finer digits are cut).
    ///
    /// # Errors
    /// [`EventStoreError::ConcurrencyConflict`] for the first event that is not the next of its stream
    /// (`expected` is the version before it, `actual` the stream's); [`EventStoreError::EventIdInUse`] for
    /// an id stored for another event; [`EventStoreError::InvalidInput`] for an empty batch, an invalid event
    /// or an id given twice; [`EventStoreError::Unavailable`] and [`EventStoreError::Backend`] as for
    /// [`EventLog::append`]. Nothing is written on any error.
    async fn import(&self, events: Vec<RecordedEvent>) -> Result<Vec<GlobalPosition>, EventStoreError>;
}

/// The latest snapshot per stream: a cache of an aggregate's state that loads can start from.
#[async_trait]
pub trait SnapshotStore: Send + Sync + Debug {
    /// Saves `snapshot` as the stream's latest, replacing the stored one unless that is at a newer version.
    ///
    /// Snapshots never go back in time: a snapshot older than the stored one (a background write that
    /// finished late) is dropped and the call still returns `Ok(())`, because the caller's goal, a snapshot
    /// at least this recent, is met. One at the same version replaces the stored one, so a stream can be
    /// re-snapshotted after a schema change. To store an older snapshot on purpose,
    /// [`delete_snapshot`](SnapshotStore::delete_snapshot) first. Concurrent saves leave the newest version.
    ///
    /// # Errors
    /// [`EventStoreError::Backend`] when storage fails.
    async fn save_snapshot(&self, snapshot: &Snapshot) -> Result<(), EventStoreError>;

    /// Saves `snapshots` as [`save_snapshot`](SnapshotStore::save_snapshot) would one after the other (so a
    /// stream named twice keeps the newer, and a stored newer snapshot stays), in one round trip where the
    /// backend can: what a restore of many streams uses. Not atomic: when it fails, some may be saved, and
    /// calling it again is safe.
    ///
    /// The provided method calls `save_snapshot` for each; the SQL backends override it.
    ///
    /// # Errors
    /// As [`save_snapshot`](SnapshotStore::save_snapshot).
    async fn save_snapshots(&self, snapshots: &[Snapshot]) -> Result<(), EventStoreError> {
        for snapshot in snapshots {
            self.save_snapshot(snapshot).await?;
        }
        Ok(())
    }

    /// Loads the stream's latest snapshot, if any.
    ///
    /// # Errors
    /// [`EventStoreError::Backend`] when storage fails.
    async fn load_snapshot(&self, stream_id: &StreamId) -> Result<Option<Snapshot>, EventStoreError>;

    /// Loads the latest snapshots of many streams at once: the snapshot of each stream of `streams` that
    /// has one, in the order of `streams`. A stream without a snapshot is left out; a stream named twice is
    /// returned once. For reading the snapshots of a page of streams (an export, a cache warm-up) without a
    /// round trip per stream; page long lists (an export asks for 1000 at a time).
    ///
    /// The default calls [`load_snapshot`](SnapshotStore::load_snapshot) for each stream. Backends with a
    /// round trip per call override it with one query (PostgreSQL, SQLite, in-memory), and
    /// [`snapshots_in_order`](crate::backend::snapshots_in_order) puts what a query found in the order
    /// asked. Wrappers forward it, so that the override is used.
    ///
    /// # Errors
    /// [`EventStoreError::Backend`] when storage fails; nothing is returned then.
    async fn load_snapshots(&self, streams: &[StreamId]) -> Result<Vec<Snapshot>, EventStoreError> {
        let mut asked = std::collections::HashSet::with_capacity(streams.len());
        let mut found = Vec::new();
        for stream_id in streams {
            if asked.insert(stream_id) {
                found.extend(self.load_snapshot(stream_id).await?);
            }
        }
        Ok(found)
    }

    /// Deletes the stream's snapshot; returns whether there was one.
    ///
    /// # Errors
    /// [`EventStoreError::Backend`] when storage fails.
    async fn delete_snapshot(&self, stream_id: &StreamId) -> Result<bool, EventStoreError>;
}

/// What subscriptions need besides the log: checkpoints per handler name, a lease so that one instance
/// runs per name, and a wake-up after commits.
#[async_trait]
pub trait SubscriptionStore: Send + Sync + Debug {
    /// The last global position the handler `handler` recorded as processed, if any.
    ///
    /// # Errors
    /// [`EventStoreError::Backend`] when storage fails.
    async fn load_checkpoint(&self, handler: &str) -> Result<Option<GlobalPosition>, EventStoreError>;

    /// Records that `handler` has processed the log up to and including `position`.
    ///
    /// **Fenced: a checkpoint only moves forward.** When the stored checkpoint is already at or past
    /// `position`, it stays and the call succeeds without writing, so a slow or stale instance (one whose
    /// lease ran out while it finished a page) never moves a handler back over events another instance
    /// handled since. To start a handler over from the beginning, use
    /// [`SubscriptionStore::delete_checkpoint`].
    ///
    /// # Errors
    /// [`EventStoreError::InvalidInput`] for an empty handler name; [`EventStoreError::Backend`] when
    /// storage fails.
    async fn save_checkpoint(&self, handler: &str, position: GlobalPosition) -> Result<(), EventStoreError>;

    /// Forgets the checkpoint of `handler`, so that it starts again from the beginning of the log (a
    /// rebuild); returns whether there was one. The one way to move a checkpoint back, since
    /// [`SubscriptionStore::save_checkpoint`] only moves it forward.
    ///
    /// # Errors
    /// [`EventStoreError::InvalidInput`] for an invalid handler name; [`EventStoreError::Backend`] when
    /// storage fails.
    async fn delete_checkpoint(&self, handler: &str) -> Result<bool, EventStoreError>;

    /// Every stored checkpoint, as `(handler, position)`, in handler name order (byte-wise). What a backup
    /// carries and an operator looks at; there are as many as handler names, so a list is fine.
    ///
    /// # Errors
    /// [`EventStoreError::Backend`] when storage fails.
    async fn list_checkpoints(&self) -> Result<Vec<(String, GlobalPosition)>, EventStoreError>;

    /// Leases the handler name `handler` for one running instance, or returns `None` when another
    /// instance holds it. Dropping the lease releases it.
    ///
    /// `ttl` is the lease's lifetime: a lease that is not renewed ([`HandlerLease::confirm`]) for that
    /// long may be taken by another instance, and each renewal extends it by `ttl` again. It bounds how
    /// long a standby waits after the holder died without releasing. Subscriptions pass three times their
    /// check interval and renew every interval, also while a page runs (see
    /// `SubscriptionConfig::lease_check_interval` in `composable-rust-runtime`). Backends whose leases end
    /// with the holder's session or process, not with time, ignore it.
    ///
    /// Backends shared between processes override this (PostgreSQL: an advisory lock that ends with its
    /// connection, `ttl` ignored; SQLite: a lease row that expires after `ttl`). The default leases within
    /// this process only ([`LocalLeases::process`], `ttl` ignored: the lease ends when dropped).
    ///
    /// # Errors
    /// [`EventStoreError::InvalidInput`] for an invalid handler name; [`EventStoreError::Backend`] when
    /// storage fails.
    async fn try_acquire_lease(
        &self,
        handler: &str,
        ttl: std::time::Duration,
    ) -> Result<Option<HandlerLease>, EventStoreError> {
        let _ = ttl;
        validate_handler_name(handler)?;
        Ok(LocalLeases::process().try_acquire(handler))
    }

    /// A stream that yields (at least) once after each committed append, so that subscriptions wake up
    /// instead of polling; `None` when the backend has no such signal and subscriptions poll.
    ///
    /// Signals carry no data and may be coalesced or, after a lost connection, missed: subscribers always
    /// re-read the log after a signal and also poll now and then, so correctness never depends on them.
    /// The default is `None`.
    fn commit_notifications(&self) -> Option<BoxStream<'static, ()>> {
        None
    }
}

/// The store as a running service: is it reachable and current, and closing it.
#[async_trait]
pub trait StoreLifecycle: Send + Sync + Debug {
    /// The backend's name, as metrics and traces label it: `postgres`, `sqlite`, `file`, `in-memory`.
    ///
    /// The default is `unknown`; the runtime's `InstrumentedStore` (which `composable_rust::config::open`
    /// puts around every store it opens) answers with the name it was given. A cheap, synchronous call, so
    /// that a load can label its metrics without a round trip.
    fn backend(&self) -> &'static str {
        "unknown"
    }

    /// A cheap round trip that tells whether the backend is reachable and its schema is the one this
    /// code expects.
    ///
    /// # Errors
    /// [`EventStoreError::Unavailable`] when the backend cannot be reached; [`EventStoreError::Schema`] when
    /// its schema is missing or at another version.
    async fn health_check(&self) -> Result<HealthReport, EventStoreError>;

    /// How much the store holds: events, streams, snapshots, checkpoints, bytes on disk, and the oldest
    /// and newest recorded times. For operators and the admin CLI, not for hot paths: a database backend
    /// counts rows, which reads every event (an index-only scan where it can).
    ///
    /// # Errors
    /// [`EventStoreError::Unavailable`] when the backend cannot be reached; [`EventStoreError::Backend`] when
    /// storage fails.
    async fn stats(&self) -> Result<StoreStats, EventStoreError>;

    /// Finishes pending work and releases connections and files; later calls on this store (or its
    /// clones) may fail. Appends are durable when they return, so closing is tidiness, not safety: an
    /// SQLite store folds its write-ahead log into the database file, a PostgreSQL store closes its pool.
    /// The default does nothing.
    ///
    /// # Errors
    /// [`EventStoreError::Backend`] when the final flush fails (the data already committed is unaffected).
    async fn close(&self) -> Result<(), EventStoreError> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    proptest! {
        /// `limit(n)` keeps exactly the first `n` versions (at least 1) that the range contains.
        #[test]
        fn a_limited_range_holds_the_first_n_versions_of_the_range(
            from in 0_u64..50,
            to in proptest::option::of(0_u64..60),
            count in 0_u64..70,
        ) {
            let range = StreamRange { from: Version::new(from), to: to.map(Version::new) };
            let limited = range.limit(count);
            let wanted: Vec<u64> =
                (1..=120).filter(|&v| range.contains(Version::new(v))).take(usize::try_from(count).unwrap()).collect();
            let got: Vec<u64> = (0..=120).filter(|&v| limited.contains(Version::new(v))).collect();
            prop_assert_eq!(got, wanted);
        }
    }

    #[test]
    fn a_cursor_pages_on_from_the_last_event_of_a_page_in_its_direction() {
        let event = |position: u64| RecordedEvent {
            id: EventId::generate(),
            stream_id: StreamId::new("order-1").unwrap(),
            version: Version::FIRST,
            position: GlobalPosition::new(position),
            event_type: crate::EventType::from("Noted.v1"),
            codec: crate::CodecId::Json,
            payload: crate::Bytes::from(b"{}".to_vec()),
            metadata: crate::Metadata::default(),
            recorded_at: Utc::now(),
            tags: Vec::new(),
        };
        let page = [event(9), event(7)];
        assert_eq!(LogCursor::Newest.next(&page), LogCursor::Before(GlobalPosition::new(7)));
        assert_eq!(LogCursor::Before(GlobalPosition::new(10)).next(&[]), LogCursor::Before(GlobalPosition::new(10)));
        assert_eq!(LogCursor::OLDEST.next(&[event(3), event(5)]), LogCursor::After(GlobalPosition::new(5)));
        assert!(LogCursor::After(GlobalPosition::new(5)).admits(GlobalPosition::new(6)));
        assert!(!LogCursor::After(GlobalPosition::new(5)).admits(GlobalPosition::new(5)));
        assert!(!LogCursor::Before(GlobalPosition::new(5)).admits(GlobalPosition::new(5)));
        assert!(LogCursor::Newest.admits(GlobalPosition::new(u64::MAX)));
        assert!(!LogCursor::OLDEST.is_newest_first() && LogCursor::Newest.is_newest_first());
    }
}
