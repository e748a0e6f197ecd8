//! [`EventStoreOperation`]: an event store call described as data, for [`Effect::EventStore`].
//!
//! A reducer cannot await the database, so it returns the operation plus a function that turns the
//! result into an action. The runtime (or the `TestStore`) executes it with [`EventStoreOperation::execute`]
//! against the store it was built with. The [`EventStoreRequest`] part is plain data that tests can
//! assert on.
//!
//! [`Effect::EventStore`]: crate::Effect::EventStore

use std::fmt;
use std::sync::Arc;

use crate::error::EventStoreError;
use crate::event::{NewEvent, RecordedEvent};
use crate::event_store::{AppendResult, EventStore, StreamRange};
use crate::snapshot::Snapshot;
use crate::stream::{ExpectedVersion, StreamId};

/// What an operation asks of the event store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EventStoreRequest {
    /// [`EventStore::append`].
    Append {
        /// The stream to append to.
        stream_id: StreamId,
        /// The version the writer expects.
        expected: ExpectedVersion,
        /// The events, in order.
        events: Vec<NewEvent>,
    },
    /// [`EventStore::load_stream`].
    Load {
        /// The stream to load.
        stream_id: StreamId,
        /// Which versions.
        range: StreamRange,
    },
    /// [`EventStore::save_snapshot`].
    SaveSnapshot(Snapshot),
    /// [`EventStore::load_snapshot`].
    LoadSnapshot {
        /// The stream whose snapshot to load.
        stream_id: StreamId,
    },
}

impl EventStoreRequest {
    /// The stream the request is about.
    #[must_use]
    pub fn stream_id(&self) -> &StreamId {
        match self {
            Self::Append { stream_id, .. } | Self::Load { stream_id, .. } | Self::LoadSnapshot { stream_id } => {
                stream_id
            }
            Self::SaveSnapshot(snapshot) => &snapshot.stream_id,
        }
    }

    /// The event types of an append, in order (empty for other requests).
    #[must_use]
    pub fn event_types(&self) -> Vec<&str> {
        match self {
            Self::Append { events, .. } => events.iter().map(|e| e.event_type.as_str()).collect(),
            _ => Vec::new(),
        }
    }
}

/// The store's answer to a request, before it is turned into an action.
enum Reply {
    Appended(AppendResult),
    Loaded(Vec<RecordedEvent>),
    SnapshotSaved,
    SnapshotLoaded(Option<Snapshot>),
}

type OnReply<A> = Box<dyn FnOnce(Result<Reply, EventStoreError>) -> Option<A> + Send>;

/// An event store call plus the function that turns its result into an action.
pub struct EventStoreOperation<A> {
    request: EventStoreRequest,
    on_reply: OnReply<A>,
}

/// Builds the reply handler for one request kind; a reply of another kind cannot happen because
/// [`EventStoreOperation::execute`] answers each request with its own kind, but it is handled as an error.
fn typed<A, T: 'static>(
    extract: fn(Reply) -> Option<T>,
    on_result: impl FnOnce(Result<T, EventStoreError>) -> Option<A> + Send + 'static,
) -> OnReply<A> {
    Box::new(move |reply| {
        on_result(reply.and_then(|r| {
            extract(r).ok_or_else(|| {
                EventStoreError::backend(
                    "match an event store reply",
                    "reply of the wrong kind (a bug in composable-rust)",
                )
            })
        }))
    })
}

impl<A: 'static> EventStoreOperation<A> {
    /// Appends `events` and sends `on_result(result)`.
    pub fn append(
        stream_id: StreamId,
        expected: ExpectedVersion,
        events: Vec<NewEvent>,
        on_result: impl FnOnce(Result<AppendResult, EventStoreError>) -> A + Send + 'static,
    ) -> Self {
        Self {
            request: EventStoreRequest::Append { stream_id, expected, events },
            on_reply: typed(
                |r| match r {
                    Reply::Appended(v) => Some(v),
                    _ => None,
                },
                move |r| Some(on_result(r)),
            ),
        }
    }

    /// Loads the events of `stream_id` in `range` and sends `on_result(result)`.
    pub fn load(
        stream_id: StreamId,
        range: StreamRange,
        on_result: impl FnOnce(Result<Vec<RecordedEvent>, EventStoreError>) -> A + Send + 'static,
    ) -> Self {
        Self {
            request: EventStoreRequest::Load { stream_id, range },
            on_reply: typed(
                |r| match r {
                    Reply::Loaded(v) => Some(v),
                    _ => None,
                },
                move |r| Some(on_result(r)),
            ),
        }
    }

    /// Saves `snapshot` and sends `on_result(result)`; return `None` from it to send nothing.
    pub fn save_snapshot(
        snapshot: Snapshot,
        on_result: impl FnOnce(Result<(), EventStoreError>) -> Option<A> + Send + 'static,
    ) -> Self {
        Self {
            request: EventStoreRequest::SaveSnapshot(snapshot),
            on_reply: typed(
                |r| match r {
                    Reply::SnapshotSaved => Some(()),
                    _ => None,
                },
                on_result,
            ),
        }
    }

    /// Loads the latest snapshot of `stream_id` and sends `on_result(result)`.
    pub fn load_snapshot(
        stream_id: StreamId,
        on_result: impl FnOnce(Result<Option<Snapshot>, EventStoreError>) -> A + Send + 'static,
    ) -> Self {
        Self {
            request: EventStoreRequest::LoadSnapshot { stream_id },
            on_reply: typed(
                |r| match r {
                    Reply::SnapshotLoaded(v) => Some(v),
                    _ => None,
                },
                move |r| Some(on_result(r)),
            ),
        }
    }

    /// Runs the request against `store` and returns the action to feed back, if any.
    pub async fn execute(self, store: &Arc<dyn EventStore>) -> Option<A> {
        let reply = match self.request {
            EventStoreRequest::Append { stream_id, expected, events } => {
                store.append(&stream_id, expected, events).await.map(Reply::Appended)
            }
            EventStoreRequest::Load { stream_id, range } => {
                store.load_stream(&stream_id, range).await.map(Reply::Loaded)
            }
            EventStoreRequest::SaveSnapshot(snapshot) => {
                store.save_snapshot(&snapshot).await.map(|()| Reply::SnapshotSaved)
            }
            EventStoreRequest::LoadSnapshot { stream_id } => {
                store.load_snapshot(&stream_id).await.map(Reply::SnapshotLoaded)
            }
        };
        (self.on_reply)(reply)
    }

    /// Turns the action this operation produces into another type (used by [`crate::Effect::map`]).
    pub(crate) fn map<B: 'static>(self, f: Arc<dyn Fn(A) -> B + Send + Sync>) -> EventStoreOperation<B> {
        let on_reply = self.on_reply;
        EventStoreOperation { request: self.request, on_reply: Box::new(move |reply| on_reply(reply).map(|a| f(a))) }
    }
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
