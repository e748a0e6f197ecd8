//! The `TestStore`'s event store: every request a reducer makes waits here until the test asserts it.
//!
//! The runtime `Store` sends each [`EventStoreRequest`] to a [`HeldRequests`] handler. In exhaustive mode
//! the handler parks the request with a one-shot reply channel; the test takes it with `receive_request`
//! (or `receive_append`), compares it with what it expects and answers it, from the event store or with
//! a reply it gives. In non-exhaustive mode requests are answered from the event store at once.

use std::collections::VecDeque;
use std::fmt::{self, Debug};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use composable_rust_core::backend::{RequestHandler, execute_request};
use composable_rust_core::{
    CodecId, Event, EventStore, EventStoreError, EventStoreReply, EventStoreRequest, ExpectedVersion, Metadata,
    NewEvent, StreamId, async_trait,
};
use serde::de::DeserializeOwned;
use tokio::sync::oneshot;

/// A request waiting for the test, with the channel its answer goes back on.
pub(crate) struct HeldRequest {
    pub(crate) request: EventStoreRequest,
    reply: oneshot::Sender<Result<EventStoreReply, EventStoreError>>,
}

impl HeldRequest {
    /// Sends `reply` back to the effect that made the request.
    pub(crate) fn answer(self, reply: Result<EventStoreReply, EventStoreError>) {
        // The effect may have been dropped with its store; then nobody waits for the answer.
        let _ = self.reply.send(reply);
    }
}

/// The request handler of a `TestStore`.
pub(crate) struct HeldRequests {
    event_store: Arc<dyn EventStore>,
    hold: AtomicBool,
    held: Mutex<VecDeque<HeldRequest>>,
}

impl HeldRequests {
    pub(crate) fn new(event_store: Arc<dyn EventStore>, hold: bool) -> Self {
        Self { event_store, hold: AtomicBool::new(hold), held: Mutex::new(VecDeque::new()) }
    }

    fn lock(&self) -> MutexGuard<'_, VecDeque<HeldRequest>> {
        self.held.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Whether new requests wait for the test (exhaustive mode) or are answered at once.
    pub(crate) fn set_hold(&self, hold: bool) {
        self.hold.store(hold, Ordering::Release);
    }

    pub(crate) fn pop(&self) -> Option<HeldRequest> {
        self.lock().pop_front()
    }

    pub(crate) fn len(&self) -> usize {
        self.lock().len()
    }

    /// One line per waiting request, e.g. `append 1 event to order-1 expecting version 0`.
    pub(crate) fn descriptions(&self) -> Vec<String> {
        self.lock().iter().map(|held| held.request.to_string()).collect()
    }

    /// Every waiting request, removed.
    pub(crate) fn take_all(&self) -> Vec<HeldRequest> {
        self.lock().drain(..).collect()
    }

    /// Answers `held` from the event store.
    pub(crate) async fn answer_from_store(&self, held: HeldRequest) {
        let reply = execute_request(self.event_store.as_ref(), held.request.clone()).await;
        held.answer(reply);
    }
}

#[async_trait]
impl RequestHandler for HeldRequests {
    async fn handle(&self, request: EventStoreRequest) -> Result<EventStoreReply, EventStoreError> {
        if !self.hold.load(Ordering::Acquire) {
            return execute_request(self.event_store.as_ref(), request).await;
        }
        let (reply, answer) = oneshot::channel();
        self.lock().push_back(HeldRequest { request, reply });
        answer.await.unwrap_or_else(|_| {
            Err(EventStoreError::backend(
                "answer an event store request in a TestStore",
                "the TestStore ended before the test asserted the request",
            ))
        })
    }
}

impl Debug for HeldRequests {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HeldRequests")
            .field("event_store", &self.event_store)
            .field("held", &self.descriptions())
            .finish()
    }
}

/// An append as a test reads it: the events decoded, so that a diff shows fields, not payload bytes.
#[derive(Debug, PartialEq)]
pub(crate) struct AppendView<E> {
    stream_id: StreamId,
    expected: ExpectedVersion,
    events: Vec<EventView<E>>,
}

#[derive(Debug, PartialEq)]
struct EventView<E> {
    event_type: String,
    event: Decoded<E>,
    metadata: Metadata,
}

/// An event's payload, decoded as the test's event type.
#[derive(PartialEq)]
pub(crate) enum Decoded<E> {
    Event(E),
    Undecodable(String),
}

impl<E: Debug> Debug for Decoded<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Event(event) => event.fmt(f),
            Self::Undecodable(error) => write!(f, "<payload that does not decode: {error}>"),
        }
    }
}

impl<E: Event> AppendView<E> {
    /// What the test expects.
    pub(crate) fn expected(
        stream_id: &StreamId,
        expected: ExpectedVersion,
        events: Vec<E>,
        metadata: &Metadata,
    ) -> Self {
        let events = events
            .into_iter()
            .map(|event| EventView {
                event_type: event.event_type().to_owned(),
                event: Decoded::Event(event),
                metadata: metadata.clone(),
            })
            .collect();
        Self { stream_id: stream_id.clone(), expected, events }
    }
}

impl<E: DeserializeOwned> AppendView<E> {
    /// What the reducer asked for, or `None` when the request is not an append.
    pub(crate) fn actual(request: &EventStoreRequest) -> Option<Self> {
        let EventStoreRequest::Append { stream_id, expected, events } = request else { return None };
        let events = events.iter().map(decode).collect();
        Some(Self { stream_id: stream_id.clone(), expected: *expected, events })
    }
}

fn decode<E: DeserializeOwned>(event: &NewEvent) -> EventView<E> {
    let decoded = decode_payload(event.codec, &event.payload, &event.event_type);
    EventView { event_type: event.event_type.clone(), event: decoded, metadata: event.metadata.clone() }
}

/// `payload` decoded as `E`, or the codec's error as text (shown in a diff instead of bytes).
pub(crate) fn decode_payload<E: DeserializeOwned>(codec: CodecId, payload: &[u8], event_type: &str) -> Decoded<E> {
    match codec.decode(payload, &format_args!("appended event {event_type}")) {
        Ok(event) => Decoded::Event(event),
        Err(error) => Decoded::Undecodable(error.to_string()),
    }
}
