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

use futures::future::BoxFuture;

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
    /// Work described by a function of the event store, such as an aggregate command run through the
    /// runtime's repository (see [`EventStoreOperation::custom`]).
    Custom {
        /// The stream the work is about.
        stream_id: StreamId,
        /// What the work does, for tests and logs, e.g. `execute PlaceOrder on order-42`.
        description: String,
    },
}

impl EventStoreRequest {
    /// The stream the request is about.
    #[must_use]
    pub fn stream_id(&self) -> &StreamId {
        match self {
            Self::Append { stream_id, .. }
            | Self::Load { stream_id, .. }
            | Self::LoadSnapshot { stream_id }
            | Self::Custom { stream_id, .. } => stream_id,
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

/// The work of a custom operation: given the store, a future of the action to feed back.
type CustomWork<A> = Box<dyn FnOnce(Arc<dyn EventStore>) -> BoxFuture<'static, Option<A>> + Send>;

/// How an operation produces its action: from the reply to a built-in request, or by custom work.
enum Handler<A> {
    Reply(OnReply<A>),
    Custom(CustomWork<A>),
}

/// An event store call plus the function that turns its result into an action.
pub struct EventStoreOperation<A> {
    request: EventStoreRequest,
    handler: Handler<A>,
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
            handler: Handler::Reply(typed(
                |r| match r {
                    Reply::Appended(v) => Some(v),
                    _ => None,
                },
                move |r| Some(on_result(r)),
            )),
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
            handler: Handler::Reply(typed(
                |r| match r {
                    Reply::Loaded(v) => Some(v),
                    _ => None,
                },
                move |r| Some(on_result(r)),
            )),
        }
    }

    /// Saves `snapshot` and sends `on_result(result)`; return `None` from it to send nothing.
    pub fn save_snapshot(
        snapshot: Snapshot,
        on_result: impl FnOnce(Result<(), EventStoreError>) -> Option<A> + Send + 'static,
    ) -> Self {
        Self {
            request: EventStoreRequest::SaveSnapshot(snapshot),
            handler: Handler::Reply(typed(
                |r| match r {
                    Reply::SnapshotSaved => Some(()),
                    _ => None,
                },
                on_result,
            )),
        }
    }

    /// Loads the latest snapshot of `stream_id` and sends `on_result(result)`.
    pub fn load_snapshot(
        stream_id: StreamId,
        on_result: impl FnOnce(Result<Option<Snapshot>, EventStoreError>) -> A + Send + 'static,
    ) -> Self {
        Self {
            request: EventStoreRequest::LoadSnapshot { stream_id },
            handler: Handler::Reply(typed(
                |r| match r {
                    Reply::SnapshotLoaded(v) => Some(v),
                    _ => None,
                },
                move |r| Some(on_result(r)),
            )),
        }
    }

    /// Runs `work` with the event store the `Store` was built with and feeds back the action it returns,
    /// if any. For work that is more than one call, such as loading an aggregate, deciding and appending
    /// with retries; `description` and `stream_id` are what tests see in [`EventStoreRequest::Custom`].
    pub fn custom<F>(stream_id: StreamId, description: impl Into<String>, work: F) -> Self
    where
        F: FnOnce(Arc<dyn EventStore>) -> BoxFuture<'static, Option<A>> + Send + 'static,
    {
        Self {
            request: EventStoreRequest::Custom { stream_id, description: description.into() },
            handler: Handler::Custom(Box::new(work)),
        }
    }

    /// Runs the request against `store` and returns the action to feed back, if any.
    pub async fn execute(self, store: &Arc<dyn EventStore>) -> Option<A> {
        let on_reply = match self.handler {
            Handler::Reply(on_reply) => on_reply,
            Handler::Custom(work) => return work(Arc::clone(store)).await,
        };
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
            EventStoreRequest::Custom { .. } => Err(EventStoreError::backend(
                "run a custom event store operation",
                "custom request without its work (a bug in composable-rust)",
            )),
        };
        on_reply(reply)
    }

    /// Turns the action this operation produces into another type (used by [`crate::Effect::map`]).
    pub(crate) fn map<B: 'static>(self, f: Arc<dyn Fn(A) -> B + Send + Sync>) -> EventStoreOperation<B> {
        let handler = match self.handler {
            Handler::Reply(on_reply) => Handler::Reply(Box::new(move |reply| on_reply(reply).map(|a| f(a)))),
            Handler::Custom(work) => Handler::Custom(Box::new(move |store| {
                let future = work(store);
                Box::pin(async move { future.await.map(|a| f(a)) })
            })),
        };
        EventStoreOperation { request: self.request, handler }
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
