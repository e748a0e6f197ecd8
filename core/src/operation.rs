//! Event store calls as values: an [`EventStoreRequest`] says what to ask, an [`EventStoreOperation`]
//! adds what to do with the answer, for [`Effect::EventStore`].
//!
//! A reducer cannot await the database, so it returns the request plus a function that turns the
//! [`EventStoreReply`] into an action. The runtime `Store` hands the request to its [`RequestHandler`]
//! (normally the event store itself, through [`execute_request`]) and feeds the action back. Because the
//! request is plain data (`Debug + PartialEq`), a test asserts exactly what a reducer asks for, and the
//! `TestStore` can answer it from an in-memory store or with a reply the test chooses.
//!
//! [`Effect::EventStore`]: crate::Effect::EventStore

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use futures::TryStreamExt;

use crate::error::EventStoreError;
use crate::event::{NewEvent, RecordedEvent};
use crate::event_store::{AppendResult, AtomicAppend, EventStore, LogFilter, StreamRange};
use crate::query::{EventQuery, QueryPage};
use crate::snapshot::Snapshot;
use crate::stream::{ExpectedVersion, GlobalPosition, StreamId, Version};

/// What a reducer asks of the event store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EventStoreRequest {
    /// [`EventLog::append`](crate::backend::EventLog::append): write `events` if the stream's version satisfies `expected`.
    Append {
        /// The stream to append to.
        stream_id: StreamId,
        /// The version the writer expects.
        expected: ExpectedVersion,
        /// The events, in order, with their metadata.
        events: Vec<NewEvent>,
    },
    /// [`EventLog::append_atomic`](crate::backend::EventLog::append_atomic): write to several streams, or
    /// under a condition, all or nothing.
    AppendAtomic(AtomicAppend),
    /// [`EventLog::read_query`](crate::backend::EventLog::read_query): the events matching a query across
    /// streams, and the horizon the read is complete up to.
    ReadQuery {
        /// Which events.
        query: EventQuery,
        /// Read events after this position.
        after: GlobalPosition,
        /// At most this many.
        limit: usize,
    },
    /// Load an aggregate's history: its latest snapshot (when allowed) plus the events after it.
    Load(LoadRequest),
    /// [`EventLog::load_stream`](crate::backend::EventLog::load_stream): the events of one stream in a range.
    ReadStream {
        /// The stream to read.
        stream_id: StreamId,
        /// Which versions.
        range: StreamRange,
    },
    /// [`EventLog::read_all`](crate::backend::EventLog::read_all): a page of the global log.
    ReadAll {
        /// Read events after this position.
        after: GlobalPosition,
        /// Which events.
        filter: LogFilter,
        /// At most this many.
        limit: usize,
    },
    /// [`SnapshotStore::save_snapshot`](crate::backend::SnapshotStore::save_snapshot).
    SaveSnapshot(Snapshot),
    /// [`SnapshotStore::load_snapshot`](crate::backend::SnapshotStore::load_snapshot).
    LoadSnapshot {
        /// The stream whose snapshot to load.
        stream_id: StreamId,
    },
    /// [`SubscriptionStore::load_checkpoint`](crate::backend::SubscriptionStore::load_checkpoint).
    LoadCheckpoint {
        /// The handler's name.
        handler: String,
    },
    /// [`SubscriptionStore::save_checkpoint`](crate::backend::SubscriptionStore::save_checkpoint).
    SaveCheckpoint {
        /// The handler's name.
        handler: String,
        /// The position it has handled.
        position: GlobalPosition,
    },
}

/// How far an aggregate [load](EventStoreRequest::Load) reads: to the end, or as of a point in its past.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LoadUntil {
    /// Every event: the current state.
    #[default]
    End,
    /// The events up to and including this version: the state as it was at that version.
    Version(Version),
    /// The events recorded at or before this time: the state as it was then. Snapshots are not used,
    /// because a snapshot does not say when its events were recorded.
    RecordedAt(DateTime<Utc>),
}

/// An aggregate load: the latest snapshot (unless `use_snapshot` is false, or the snapshot lies past
/// `until`) and the events after it, up to `until`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadRequest {
    /// The aggregate's stream.
    pub stream_id: StreamId,
    /// Whether to start from the latest snapshot. `false` replays every event (after a snapshot turned
    /// out to be unusable, or to verify one).
    pub use_snapshot: bool,
    /// How far to read.
    pub until: LoadUntil,
}

impl LoadRequest {
    /// The current state of `stream_id`, from its latest snapshot.
    #[must_use]
    pub fn latest(stream_id: StreamId) -> Self {
        Self { stream_id, use_snapshot: true, until: LoadUntil::End }
    }

    /// The same load, replaying every event instead of starting from a snapshot.
    #[must_use]
    pub fn without_snapshot(mut self) -> Self {
        self.use_snapshot = false;
        self
    }

    /// The same load, stopping at `until`.
    #[must_use]
    pub fn until(mut self, until: LoadUntil) -> Self {
        self.until = until;
        self
    }
}

/// An aggregate's stored history as a [`LoadRequest`] found it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LoadedHistory {
    /// The snapshot the events continue from, if one was used.
    pub snapshot: Option<Snapshot>,
    /// The events after the snapshot (or from the first), in version order, up to the load's limit.
    pub events: Vec<RecordedEvent>,
}

/// The event store's answer to an [`EventStoreRequest`], before it is turned into an action.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EventStoreReply {
    /// To [`EventStoreRequest::Append`].
    Appended(AppendResult),
    /// To [`EventStoreRequest::AppendAtomic`]: one result per stream, in the request's order.
    AppendedAtomic(Vec<AppendResult>),
    /// To [`EventStoreRequest::ReadQuery`].
    QueryRead(QueryPage),
    /// To [`EventStoreRequest::Load`].
    Loaded(LoadedHistory),
    /// To [`EventStoreRequest::ReadStream`] and [`EventStoreRequest::ReadAll`].
    Events(Vec<RecordedEvent>),
    /// To [`EventStoreRequest::SaveSnapshot`].
    SnapshotSaved,
    /// To [`EventStoreRequest::LoadSnapshot`].
    Snapshot(Option<Snapshot>),
    /// To [`EventStoreRequest::LoadCheckpoint`].
    Checkpoint(Option<GlobalPosition>),
    /// To [`EventStoreRequest::SaveCheckpoint`].
    CheckpointSaved,
}

impl EventStoreRequest {
    /// An append of `events` to `stream_id` at `expected`.
    #[must_use]
    pub fn append(stream_id: StreamId, expected: ExpectedVersion, events: Vec<NewEvent>) -> Self {
        Self::Append { stream_id, expected, events }
    }

    /// A read of up to `limit` events matching `query` after `after`.
    #[must_use]
    pub fn read_query(query: EventQuery, after: GlobalPosition, limit: usize) -> Self {
        Self::ReadQuery { query, after, limit }
    }

    /// A load of the current state of `stream_id` (latest snapshot plus the events after it).
    #[must_use]
    pub fn load(stream_id: StreamId) -> Self {
        Self::Load(LoadRequest::latest(stream_id))
    }

    /// The stream the request is about, if it is about one.
    #[must_use]
    pub fn stream_id(&self) -> Option<&StreamId> {
        match self {
            Self::Append { stream_id, .. }
            | Self::ReadStream { stream_id, .. }
            | Self::LoadSnapshot { stream_id }
            | Self::Load(LoadRequest { stream_id, .. }) => Some(stream_id),
            Self::SaveSnapshot(snapshot) => Some(&snapshot.stream_id),
            Self::AppendAtomic(append) if append.streams.len() == 1 => Some(&append.streams[0].stream_id),
            Self::AppendAtomic(_)
            | Self::ReadQuery { .. }
            | Self::ReadAll { .. }
            | Self::LoadCheckpoint { .. }
            | Self::SaveCheckpoint { .. } => None,
        }
    }

    /// Whether the request writes. A write that has started always completes, even when its effect is
    /// cancelled or the store shuts down: only its reply is dropped.
    #[must_use]
    pub fn is_write(&self) -> bool {
        matches!(
            self,
            Self::Append { .. } | Self::AppendAtomic(_) | Self::SaveSnapshot(_) | Self::SaveCheckpoint { .. }
        )
    }

    /// The event types of an append, in order (empty for other requests).
    #[must_use]
    pub fn event_types(&self) -> Vec<&str> {
        match self {
            Self::Append { events, .. } => events.iter().map(|e| e.event_type.as_str()).collect(),
            Self::AppendAtomic(append) => append.events().map(|e| e.event_type.as_str()).collect(),
            _ => Vec::new(),
        }
    }

    /// Whether `reply` is the kind of answer this request gets (an `Appended` for an `Append`, ...).
    #[must_use]
    pub fn accepts(&self, reply: &EventStoreReply) -> bool {
        matches!(
            (self, reply),
            (Self::Append { .. }, EventStoreReply::Appended(_))
                | (Self::AppendAtomic(_), EventStoreReply::AppendedAtomic(_))
                | (Self::ReadQuery { .. }, EventStoreReply::QueryRead(_))
                | (Self::Load(_), EventStoreReply::Loaded(_))
                | (Self::ReadStream { .. } | Self::ReadAll { .. }, EventStoreReply::Events(_))
                | (Self::SaveSnapshot(_), EventStoreReply::SnapshotSaved)
                | (Self::LoadSnapshot { .. }, EventStoreReply::Snapshot(_))
                | (Self::LoadCheckpoint { .. }, EventStoreReply::Checkpoint(_))
                | (Self::SaveCheckpoint { .. }, EventStoreReply::CheckpointSaved)
        )
    }
}

impl fmt::Display for EventStoreRequest {
    /// A short description for logs and errors, e.g. `append 2 events to order-42 expecting version 3`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Append { stream_id, expected, events } => {
                let n = events.len();
                let s = if n == 1 { "" } else { "s" };
                write!(f, "append {n} event{s} to {stream_id} expecting {expected}")
            }
            Self::AppendAtomic(append) => {
                let n = append.events().count();
                let s = if n == 1 { "" } else { "s" };
                write!(f, "append {n} event{s} to ")?;
                for (i, stream) in append.streams.iter().enumerate() {
                    let separator = if i == 0 { "" } else { ", " };
                    write!(f, "{separator}{} expecting {}", stream.stream_id, stream.expected)?;
                }
                if let Some(condition) = &append.condition {
                    write!(f, " if no event matching the condition follows position {}", condition.after)?;
                }
                Ok(())
            }
            Self::ReadQuery { after, limit, .. } => {
                write!(f, "read up to {limit} events matching a query after position {after}")
            }
            Self::Load(LoadRequest { stream_id, use_snapshot, until }) => {
                write!(f, "load {stream_id}")?;
                if !use_snapshot {
                    f.write_str(" without its snapshot")?;
                }
                match until {
                    LoadUntil::End => Ok(()),
                    LoadUntil::Version(version) => write!(f, " up to version {version}"),
                    LoadUntil::RecordedAt(time) => write!(f, " as of {}", time.to_rfc3339()),
                }
            }
            Self::ReadStream { stream_id, range } => write!(f, "read {stream_id} from version {}", range.from),
            Self::ReadAll { after, limit, .. } => write!(f, "read up to {limit} events of the log after {after}"),
            Self::SaveSnapshot(snapshot) => {
                write!(f, "save a snapshot of {} at version {}", snapshot.stream_id, snapshot.version)
            }
            Self::LoadSnapshot { stream_id } => write!(f, "load the snapshot of {stream_id}"),
            Self::LoadCheckpoint { handler } => write!(f, "load the checkpoint of {handler}"),
            Self::SaveCheckpoint { handler, position } => write!(f, "save the checkpoint of {handler} at {position}"),
        }
    }
}

/// Runs `request` against `store`: what each request means, written once for the runtime, the
/// `TestStore` and anyone else who executes requests.
///
/// # Errors
/// The store's error for the call the request makes.
pub async fn execute_request(
    store: &dyn EventStore,
    request: EventStoreRequest,
) -> Result<EventStoreReply, EventStoreError> {
    Ok(match request {
        EventStoreRequest::Append { stream_id, expected, events } => {
            EventStoreReply::Appended(store.append(&stream_id, expected, events).await?)
        }
        EventStoreRequest::AppendAtomic(append) => EventStoreReply::AppendedAtomic(store.append_atomic(append).await?),
        EventStoreRequest::ReadQuery { query, after, limit } => {
            EventStoreReply::QueryRead(store.read_query(&query, after, limit).await?)
        }
        EventStoreRequest::Load(load) => EventStoreReply::Loaded(load_history(store, load).await?),
        EventStoreRequest::ReadStream { stream_id, range } => {
            EventStoreReply::Events(store.load_stream(&stream_id, range).await?)
        }
        EventStoreRequest::ReadAll { after, filter, limit } => {
            EventStoreReply::Events(store.read_all(after, &filter, limit).await?)
        }
        EventStoreRequest::SaveSnapshot(snapshot) => {
            store.save_snapshot(&snapshot).await?;
            EventStoreReply::SnapshotSaved
        }
        EventStoreRequest::LoadSnapshot { stream_id } => {
            EventStoreReply::Snapshot(store.load_snapshot(&stream_id).await?)
        }
        EventStoreRequest::LoadCheckpoint { handler } => {
            EventStoreReply::Checkpoint(store.load_checkpoint(&handler).await?)
        }
        EventStoreRequest::SaveCheckpoint { handler, position } => {
            store.save_checkpoint(&handler, position).await?;
            EventStoreReply::CheckpointSaved
        }
    })
}

/// Answers a [`LoadRequest`]: the snapshot (when allowed and not past the load's limit) and the events
/// after it, up to the limit.
///
/// # Errors
/// The store's error for the snapshot or the stream read.
pub async fn load_history(store: &dyn EventStore, load: LoadRequest) -> Result<LoadedHistory, EventStoreError> {
    let LoadRequest { stream_id, use_snapshot, until } = load;
    let snapshot = match (use_snapshot, until) {
        (false, _) | (true, LoadUntil::RecordedAt(_)) => None,
        (true, LoadUntil::End) => store.load_snapshot(&stream_id).await?,
        (true, LoadUntil::Version(last)) => {
            store.load_snapshot(&stream_id).await?.filter(|snapshot| snapshot.version <= last)
        }
    };
    let after = snapshot.as_ref().map_or(Version::INITIAL, |s| s.version);
    let range = match until {
        LoadUntil::Version(last) => StreamRange { from: after.next(), to: Some(last) },
        LoadUntil::End | LoadUntil::RecordedAt(_) => StreamRange::after(after),
    };
    let mut events = Vec::new();
    let mut stream = store.read_stream(&stream_id, range);
    while let Some(event) = stream.try_next().await? {
        if let LoadUntil::RecordedAt(time) = until {
            // Versions are recorded in order, so the first later event ends the history as of `time`.
            if event.recorded_at > time {
                break;
            }
        }
        events.push(event);
    }
    Ok(LoadedHistory { snapshot, events })
}

/// Where a runtime `Store` sends the requests of [`Effect::EventStore`](crate::Effect::EventStore).
///
/// Every [`EventStore`] is one (through [`execute_request`]); the `TestStore` has its own, which holds each
/// request until the test asserts it.
#[async_trait]
pub trait RequestHandler: Send + Sync + fmt::Debug {
    /// Answers `request`.
    ///
    /// # Errors
    /// The event store's error.
    async fn handle(&self, request: EventStoreRequest) -> Result<EventStoreReply, EventStoreError>;
}

/// A [`RequestHandler`] that runs every request against an event store.
#[derive(Debug, Clone)]
pub struct StoreRequests(pub Arc<dyn EventStore>);

#[async_trait]
impl RequestHandler for StoreRequests {
    async fn handle(&self, request: EventStoreRequest) -> Result<EventStoreReply, EventStoreError> {
        execute_request(self.0.as_ref(), request).await
    }
}

type OnReply<A> = Box<dyn FnOnce(Result<EventStoreReply, EventStoreError>) -> Option<A> + Send>;

/// An event store request plus the function that turns its answer into an action.
pub struct EventStoreOperation<A> {
    request: EventStoreRequest,
    on_reply: OnReply<A>,
}

/// Builds a reply handler for one request kind. A reply of another kind cannot come from
/// [`execute_request`]; one given by hand is turned into an error that names both.
fn typed<A, T: 'static>(
    extract: fn(EventStoreReply) -> Result<T, EventStoreReply>,
    on_result: impl FnOnce(Result<T, EventStoreError>) -> Option<A> + Send + 'static,
) -> OnReply<A> {
    Box::new(move |reply| {
        on_result(reply.and_then(|reply| {
            extract(reply).map_err(|other| {
                EventStoreError::backend(
                    "match an event store reply to its request",
                    format!("the reply {other:?} answers another kind of request"),
                )
            })
        }))
    })
}

impl<A: 'static> EventStoreOperation<A> {
    /// Any request, with a function of its raw reply; `on_reply` returns `None` to send nothing.
    pub fn new(
        request: EventStoreRequest,
        on_reply: impl FnOnce(Result<EventStoreReply, EventStoreError>) -> Option<A> + Send + 'static,
    ) -> Self {
        Self { request, on_reply: Box::new(on_reply) }
    }

    /// Appends `events` and sends `on_result(result)`.
    pub fn append(
        stream_id: StreamId,
        expected: ExpectedVersion,
        events: Vec<NewEvent>,
        on_result: impl FnOnce(Result<AppendResult, EventStoreError>) -> A + Send + 'static,
    ) -> Self {
        let on_reply = typed(
            |r| match r {
                EventStoreReply::Appended(v) => Ok(v),
                other => Err(other),
            },
            move |r| Some(on_result(r)),
        );
        Self { request: EventStoreRequest::Append { stream_id, expected, events }, on_reply }
    }

    /// Appends atomically across streams, or under a condition (see [`AtomicAppend`]), and sends
    /// `on_result(result)` with one result per stream.
    pub fn append_atomic(
        append: AtomicAppend,
        on_result: impl FnOnce(Result<Vec<AppendResult>, EventStoreError>) -> A + Send + 'static,
    ) -> Self {
        let on_reply = typed(
            |r| match r {
                EventStoreReply::AppendedAtomic(v) => Ok(v),
                other => Err(other),
            },
            move |r| Some(on_result(r)),
        );
        Self { request: EventStoreRequest::AppendAtomic(append), on_reply }
    }

    /// Reads up to `limit` events matching `query` after `after` and sends `on_result(result)`.
    pub fn read_query(
        query: EventQuery,
        after: GlobalPosition,
        limit: usize,
        on_result: impl FnOnce(Result<QueryPage, EventStoreError>) -> A + Send + 'static,
    ) -> Self {
        let on_reply = typed(
            |r| match r {
                EventStoreReply::QueryRead(v) => Ok(v),
                other => Err(other),
            },
            move |r| Some(on_result(r)),
        );
        Self { request: EventStoreRequest::ReadQuery { query, after, limit }, on_reply }
    }

    /// Loads an aggregate's history (see [`LoadRequest`]) and sends `on_result(result)`.
    pub fn load(
        load: LoadRequest,
        on_result: impl FnOnce(Result<LoadedHistory, EventStoreError>) -> A + Send + 'static,
    ) -> Self {
        let on_reply = typed(
            |r| match r {
                EventStoreReply::Loaded(v) => Ok(v),
                other => Err(other),
            },
            move |r| Some(on_result(r)),
        );
        Self { request: EventStoreRequest::Load(load), on_reply }
    }

    /// Reads the events of `stream_id` in `range` and sends `on_result(result)`.
    pub fn read_stream(
        stream_id: StreamId,
        range: StreamRange,
        on_result: impl FnOnce(Result<Vec<RecordedEvent>, EventStoreError>) -> A + Send + 'static,
    ) -> Self {
        Self { request: EventStoreRequest::ReadStream { stream_id, range }, on_reply: events_reply(on_result) }
    }

    /// Reads up to `limit` events of the global log after `after` that match `filter`, and sends
    /// `on_result(result)`.
    pub fn read_all(
        after: GlobalPosition,
        filter: LogFilter,
        limit: usize,
        on_result: impl FnOnce(Result<Vec<RecordedEvent>, EventStoreError>) -> A + Send + 'static,
    ) -> Self {
        Self { request: EventStoreRequest::ReadAll { after, filter, limit }, on_reply: events_reply(on_result) }
    }

    /// Saves `snapshot` and sends `on_result(result)`; return `None` from it to send nothing.
    pub fn save_snapshot(
        snapshot: Snapshot,
        on_result: impl FnOnce(Result<(), EventStoreError>) -> Option<A> + Send + 'static,
    ) -> Self {
        let on_reply = typed(
            |r| match r {
                EventStoreReply::SnapshotSaved => Ok(()),
                other => Err(other),
            },
            on_result,
        );
        Self { request: EventStoreRequest::SaveSnapshot(snapshot), on_reply }
    }

    /// Loads the latest snapshot of `stream_id` and sends `on_result(result)`.
    pub fn load_snapshot(
        stream_id: StreamId,
        on_result: impl FnOnce(Result<Option<Snapshot>, EventStoreError>) -> A + Send + 'static,
    ) -> Self {
        let on_reply = typed(
            |r| match r {
                EventStoreReply::Snapshot(v) => Ok(v),
                other => Err(other),
            },
            move |r| Some(on_result(r)),
        );
        Self { request: EventStoreRequest::LoadSnapshot { stream_id }, on_reply }
    }

    /// Loads the checkpoint of `handler` and sends `on_result(result)`.
    pub fn load_checkpoint(
        handler: impl Into<String>,
        on_result: impl FnOnce(Result<Option<GlobalPosition>, EventStoreError>) -> A + Send + 'static,
    ) -> Self {
        let on_reply = typed(
            |r| match r {
                EventStoreReply::Checkpoint(v) => Ok(v),
                other => Err(other),
            },
            move |r| Some(on_result(r)),
        );
        Self { request: EventStoreRequest::LoadCheckpoint { handler: handler.into() }, on_reply }
    }

    /// Saves the checkpoint of `handler` and sends `on_result(result)`; return `None` to send nothing.
    /// Like [`SubscriptionStore::save_checkpoint`](crate::backend::SubscriptionStore::save_checkpoint), the
    /// save only moves the checkpoint forward.
    pub fn save_checkpoint(
        handler: impl Into<String>,
        position: GlobalPosition,
        on_result: impl FnOnce(Result<(), EventStoreError>) -> Option<A> + Send + 'static,
    ) -> Self {
        let on_reply = typed(
            |r| match r {
                EventStoreReply::CheckpointSaved => Ok(()),
                other => Err(other),
            },
            on_result,
        );
        Self { request: EventStoreRequest::SaveCheckpoint { handler: handler.into(), position }, on_reply }
    }

    /// Runs the request against `store` and returns the action to feed back, if any.
    pub async fn execute(self, store: &dyn EventStore) -> Option<A> {
        let reply = execute_request(store, self.request).await;
        (self.on_reply)(reply)
    }

    /// Turns an answer to the request into the action to feed back, if any.
    pub fn reply(self, reply: Result<EventStoreReply, EventStoreError>) -> Option<A> {
        (self.on_reply)(reply)
    }

    /// Splits the operation into its request and the function of its reply.
    pub fn into_parts(self) -> (EventStoreRequest, impl FnOnce(Result<EventStoreReply, EventStoreError>) -> Option<A>) {
        (self.request, self.on_reply)
    }

    /// Turns the action this operation produces into another type (used by [`crate::Effect::map`]).
    pub(crate) fn map<B: 'static>(self, f: Arc<dyn Fn(A) -> B + Send + Sync>) -> EventStoreOperation<B> {
        let on_reply = self.on_reply;
        EventStoreOperation { request: self.request, on_reply: Box::new(move |reply| on_reply(reply).map(|a| f(a))) }
    }
}

fn events_reply<A: 'static>(
    on_result: impl FnOnce(Result<Vec<RecordedEvent>, EventStoreError>) -> A + Send + 'static,
) -> OnReply<A> {
    typed(
        |r| match r {
            EventStoreReply::Events(v) => Ok(v),
            other => Err(other),
        },
        move |r| Some(on_result(r)),
    )
}

impl<A> EventStoreOperation<A> {
    /// What this operation asks of the store; assert on it in tests.
    #[must_use]
    pub fn request(&self) -> &EventStoreRequest {
        &self.request
    }
}

impl<A> fmt::Debug for EventStoreOperation<A> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.request, f)
    }
}
