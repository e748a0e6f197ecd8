//! The [`EventStore`] contract every backend (PostgreSQL, SQLite, in-memory) implements, split along its
//! jobs: [`EventLog`], [`SnapshotStore`], [`SubscriptionStore`], [`StoreLifecycle`].
//!
//! The contract, pinned by the conformance suite in `composable-rust-testing`:
//! - Append-only. There is no API to change or delete an event.
//! - Versions are dense per stream, starting at 1 (see [`crate::stream`]). An append of a batch is atomic:
//!   all of its events are stored with consecutive versions, or none is.
//! - A stale [`ExpectedVersion`] fails with
//!   [`EventStoreError::ConcurrencyConflict`]; of two writers racing at the same expectation exactly one wins.
//! - The global log is read in position order, and a reader that has read up to position `N` will later
//!   see every event that commits after its read at a position above `N` (no gaps filled in behind it).
//! - One latest snapshot per stream; checkpoints keyed by handler name.

use std::fmt::Debug;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use futures::TryStreamExt;
use futures::stream::BoxStream;
use uuid::Uuid;

use crate::backend::{LocalLeases, validate_handler_name};
use crate::error::EventStoreError;
use crate::event::{EventId, NewEvent, RecordedEvent};
use crate::projection::HandlerLease;
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
/// ```
/// use composable_rust_core::LogFilter;
///
/// let filter = LogFilter::all().event_types(["OrderPlaced.v1", "OrderShipped.v1"]).stream_prefix("order-");
/// assert!(filter.matches_type("OrderPlaced.v1"));
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

/// The one handle users hold: events, snapshots, subscriptions' bookkeeping and the store's lifecycle.
/// Usable as `Arc<dyn EventStore>`.
///
/// A backend does not implement `EventStore` itself: it implements the four traits of its jobs,
/// [`EventLog`], [`SnapshotStore`], [`SubscriptionStore`] and [`StoreLifecycle`], and every type that has
/// all four is an `EventStore`. Their methods are callable on an `EventStore` (a `dyn EventStore` or a
/// generic `S: EventStore`) with no further import; on a concrete store such as `SqliteEventStore`, bring
/// the traits into scope with the prelude of the `composable-rust` crate.
///
/// Implementations must pass the conformance suite in `composable-rust-testing`.
pub trait EventStore: EventLog + SnapshotStore + SubscriptionStore + StoreLifecycle {}

impl<T> EventStore for T where T: EventLog + SnapshotStore + SubscriptionStore + StoreLifecycle + ?Sized {}

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

    /// Streams the events of `stream_id` in `range`, in version order; an unknown stream yields nothing.
    ///
    /// Rows are fetched as the stream is polled, so a very long stream never sits in memory at once.
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

    /// Reads up to `limit` events of the global log with a position greater than `after` that match
    /// `filter`, in position order. Read pages by passing the last position of a page as the next `after`.
    ///
    /// # Errors
    /// [`EventStoreError::Backend`] when storage fails.
    async fn read_all(
        &self,
        after: GlobalPosition,
        filter: &LogFilter,
        limit: usize,
    ) -> Result<Vec<RecordedEvent>, EventStoreError>;

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
}

/// The latest snapshot per stream: a cache of an aggregate's state that loads can start from.
#[async_trait]
pub trait SnapshotStore: Send + Sync + Debug {
    /// Saves `snapshot` as the stream's latest, replacing any earlier one.
    ///
    /// # Errors
    /// [`EventStoreError::Backend`] when storage fails.
    async fn save_snapshot(&self, snapshot: &Snapshot) -> Result<(), EventStoreError>;

    /// Loads the stream's latest snapshot, if any.
    ///
    /// # Errors
    /// [`EventStoreError::Backend`] when storage fails.
    async fn load_snapshot(&self, stream_id: &StreamId) -> Result<Option<Snapshot>, EventStoreError>;

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
    /// # Errors
    /// [`EventStoreError::InvalidInput`] for an empty handler name; [`EventStoreError::Backend`] when
    /// storage fails.
    async fn save_checkpoint(&self, handler: &str, position: GlobalPosition) -> Result<(), EventStoreError>;

    /// Leases the handler name `handler` for one running instance, or returns `None` when another
    /// instance holds it. Dropping the lease releases it.
    ///
    /// Backends shared between processes override this (PostgreSQL: an advisory lock; SQLite: a lease
    /// row). The default leases within this process only ([`LocalLeases::process`]).
    ///
    /// # Errors
    /// [`EventStoreError::InvalidInput`] for an invalid handler name; [`EventStoreError::Backend`] when
    /// storage fails.
    async fn try_acquire_lease(&self, handler: &str) -> Result<Option<HandlerLease>, EventStoreError> {
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
    /// A cheap round trip that tells whether the backend is reachable and its schema is the one this
    /// code expects.
    ///
    /// # Errors
    /// [`EventStoreError::Unavailable`] when the backend cannot be reached; [`EventStoreError::Schema`] when
    /// its schema is missing or at another version.
    async fn health_check(&self) -> Result<HealthReport, EventStoreError>;

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
