//! Asserting the event store requests effects make ([`TestStore::receive_request`] and its variants),
//! and [`Answer`], which answers one.

use std::fmt::{self, Debug, Write as _};
use std::time::Duration;

use composable_rust_core::{
    AppendCondition, Event, EventStoreError, EventStoreReply, EventStoreRequest, ExpectedVersion, Metadata, NewEvent,
    Reducer, StreamId, Tag,
};
use serde::de::DeserializeOwned;

use super::TestStore;
use super::report::{count, diff};
use crate::held_requests::{AppendView, Decoded, HeldRequest, decode_payload};

impl<R> TestStore<R>
where
    R: Reducer + Send + Sync + 'static,
    R::State: Clone + PartialEq + Debug + Send + 'static,
    R::Action: Clone + PartialEq + Debug + Send + 'static,
    R::Environment: Send + Sync + 'static,
{
    /// Asserts that the next event store request an effect made is `expected`, and answers it from the
    /// event store when the returned [`Answer`] is dropped (or as [`Answer::reply`] says).
    ///
    /// Requests are held until the test asserts them (with [`Exhaustivity::On`]), in the order the reducer
    /// made them; the effect that made one waits for its answer meanwhile. For appends of an aggregate's
    /// events, [`TestStore::receive_append`] shows a failing comparison with the events decoded.
    ///
    /// [`Exhaustivity::On`]: super::Exhaustivity::On
    ///
    /// # Panics
    /// When no request is waiting, or the next one differs from `expected` (with a diff of the two).
    #[track_caller]
    pub fn receive_request(&mut self, expected: EventStoreRequest) -> Answer<'_, R> {
        let held = self.next_request(&format!("`{expected}`"));
        if held.request != expected {
            let message = format!(
                "received the request `{}`, but expected `{expected}`\n\n{}\nhint: requests must be asserted in \
                 the order the reducer makes them",
                held.request,
                diff(&format!("{expected:#?}"), &format!("{:#?}", held.request)),
            );
            self.fail_answering(held, &message);
        }
        Answer { store: self, held: Some(held) }
    }

    /// Asserts that the next event store request appends `events` to `stream_id` at `expected`, each
    /// with `metadata`, and answers it from the event store when the returned [`Answer`] is dropped.
    ///
    /// The appended payloads are decoded as `E`, so a mismatch shows the events' fields: a wrong event,
    /// expected version, stream or metadata each shows up as a `-`/`+` line.
    ///
    /// # Panics
    /// When no request is waiting, the next one is not an append, or it differs.
    #[track_caller]
    pub fn receive_append<E>(
        &mut self,
        stream_id: &StreamId,
        expected: ExpectedVersion,
        events: impl IntoIterator<Item = E>,
        metadata: &Metadata,
    ) -> Answer<'_, R>
    where
        E: Event + PartialEq + Debug + DeserializeOwned,
    {
        let events: Vec<E> = events.into_iter().collect();
        let n = events.len();
        let description = format!("an append of {} to {stream_id} expecting {expected}", count(n, "event", "events"));
        let held = self.next_request(&description);
        let wanted = AppendView::expected(stream_id, expected, events, metadata);
        match AppendView::<E>::actual(&held.request) {
            None => {
                let message = format!(
                    "received the request `{}`, but expected {description}\n\nhint: requests must be asserted in \
                     the order the reducer makes them",
                    held.request
                );
                self.fail_answering(held, &message);
            }
            Some(actual) if actual != wanted => {
                let message = format!(
                    "the append to {} does not match\n\n{}",
                    held.request.stream_id().map_or_else(String::new, ToString::to_string),
                    diff(&format!("{wanted:#?}"), &format!("{actual:#?}")),
                );
                self.fail_answering(held, &message);
            }
            Some(_) => {}
        }
        Answer { store: self, held: Some(held) }
    }

    /// Asserts that the next event store request is an atomic append ([`EventStoreRequest::AppendAtomic`])
    /// of `streams` (each stream with its expected version and events, in order) under `condition`, each
    /// event with `metadata`; answers it from the event store when the returned [`Answer`] is dropped.
    ///
    /// The appended payloads are decoded as `E` and shown with their tags, so a mismatch shows the events'
    /// fields: a wrong event, tag, stream, expected version, condition or metadata each shows up as a
    /// `-`/`+` line. Event ids are not compared. This is the append a `Decider` makes, with
    /// [`ExpectedVersion::Any`] and the condition of the read it decided on.
    ///
    /// # Panics
    /// When no request is waiting, the next one is not an atomic append, or it differs.
    #[track_caller]
    pub fn receive_append_atomic<E>(
        &mut self,
        streams: impl IntoIterator<Item = (StreamId, ExpectedVersion, Vec<E>)>,
        condition: Option<&AppendCondition>,
        metadata: &Metadata,
    ) -> Answer<'_, R>
    where
        E: Event + PartialEq + Debug + DeserializeOwned,
    {
        let wanted = AtomicAppendView::expected(streams, condition, metadata);
        let n = wanted.streams.iter().map(|s| s.events.len()).sum();
        let description = format!(
            "an atomic append of {} to {}{}",
            count(n, "event", "events"),
            count(wanted.streams.len(), "stream", "streams"),
            if condition.is_some() { " under a condition" } else { "" },
        );
        let held = self.next_request(&description);
        match AtomicAppendView::<E>::actual(&held.request) {
            None => {
                let message = format!(
                    "received the request `{}`, but expected {description}\n\nhint: requests must be asserted in \
                     the order the reducer makes them; a plain append is asserted with `receive_append`",
                    held.request
                );
                self.fail_answering(held, &message);
            }
            Some(actual) if actual != wanted => {
                let message = format!(
                    "the atomic append does not match\n\n{}\nhint: event ids are not compared; the condition's \
                     `after` is the horizon of the last read the decision made",
                    diff(&format!("{wanted:#?}"), &format!("{actual:#?}")),
                );
                self.fail_answering(held, &message);
            }
            Some(_) => {}
        }
        Answer { store: self, held: Some(held) }
    }

    /// Asserts that the next event store request satisfies `matches`, for requests that cannot be written
    /// out in full; answers it like [`TestStore::receive_request`].
    ///
    /// # Panics
    /// When no request is waiting, or the next one does not match.
    #[track_caller]
    pub fn receive_request_matching(
        &mut self,
        description: &str,
        matches: impl Fn(&EventStoreRequest) -> bool,
    ) -> Answer<'_, R> {
        let held = self.next_request(&format!("a request matching `{description}`"));
        if !matches(&held.request) {
            let message = format!(
                "received the request `{}`, which does not match `{description}`\n\n{:#?}",
                held.request, held.request
            );
            self.fail_answering(held, &message);
        }
        Answer { store: self, held: Some(held) }
    }

    /// The next request an effect made, waiting (up to the timeout) for running effects to make one.
    #[track_caller]
    fn next_request(&mut self, description: &str) -> HeldRequest {
        self.settle();
        if let Some(held) = self.requests.pop() {
            return held;
        }
        if !self.stalled() {
            let requests = &self.requests;
            let store = self.store.clone();
            let _ = self.runtime.block_on(async {
                tokio::time::timeout(self.timeout, async {
                    while requests.len() == 0 && store.effects_in_flight() > 0 {
                        tokio::task::yield_now().await;
                        tokio::time::sleep(Duration::from_millis(1)).await;
                    }
                })
                .await
            });
            if let Some(held) = self.requests.pop() {
                return held;
            }
        }
        let mut message = format!("expected the event store request {description}, but no request was made\n\n");
        let pending = self.log.peek_received_debug();
        if pending.is_empty() {
            message.push_str(
                "hint: check that the reducer returns an `Effect::EventStore` for this step; with \
                 Exhaustivity::Off requests are answered without being asserted",
            );
        } else {
            let _ = writeln!(message, "received actions waiting to be asserted ({}):", pending.len());
            for (i, action) in pending.iter().enumerate() {
                let _ = writeln!(message, "  {}. {action}", i + 1);
            }
            message.push_str("\nhint: `receive` these first: the request may come from reducing one of them");
        }
        self.fail(&message);
    }

    /// Answers `held` from the event store (so its effect does not hang), then fails with `message`.
    #[track_caller]
    fn fail_answering(&mut self, held: HeldRequest, message: &str) -> ! {
        self.runtime.block_on(self.requests.answer_from_store(held));
        self.fail(message);
    }
}

/// An asserted event store request, not yet answered: dropping it answers the request from the
/// `TestStore`'s event store; [`Answer::reply`] answers with a reply the test chooses instead, to simulate
/// a conflict or an outage.
///
/// ```
/// # use std::sync::Arc;
/// # use composable_rust_core::{Effect, EventStoreError, EventStoreOperation, EventStoreRequest, ExpectedVersion, StreamId, Version, reducer_fn};
/// # use composable_rust_testing::TestStore;
/// # #[derive(Debug, Clone, PartialEq)]
/// # enum Action { Load, Loaded(Result<usize, String>) }
/// # let stream = StreamId::new("notes-1").unwrap();
/// # let s = stream.clone();
/// # let reducer = reducer_fn(move |_: &mut (), action: Action, _: &()| match action {
/// #     Action::Load => Effect::event_store(EventStoreOperation::read_stream(s.clone(), Default::default(), |r| {
/// #         Action::Loaded(r.map(|e| e.len()).map_err(|e| e.to_string()))
/// #     })),
/// #     Action::Loaded(_) => Effect::None,
/// # });
/// let mut store = TestStore::new(reducer, (), ());
/// store.send(Action::Load, |_| {});
/// store
///     .receive_request(EventStoreRequest::ReadStream { stream_id: stream.clone(), range: Default::default() })
///     .reply(Err(EventStoreError::backend("read notes-1", "connection reset")));
/// store.receive_matching("Loaded(Err(..))", |a| matches!(a, Action::Loaded(Err(_))), |_| {});
/// store.finish();
/// ```
pub struct Answer<'a, R>
where
    R: Reducer + Send + Sync + 'static,
    R::State: Clone + PartialEq + Debug + Send + 'static,
    R::Action: Clone + PartialEq + Debug + Send + 'static,
    R::Environment: Send + Sync + 'static,
{
    store: &'a mut TestStore<R>,
    held: Option<HeldRequest>,
}

impl<R> Answer<'_, R>
where
    R: Reducer + Send + Sync + 'static,
    R::State: Clone + PartialEq + Debug + Send + 'static,
    R::Action: Clone + PartialEq + Debug + Send + 'static,
    R::Environment: Send + Sync + 'static,
{
    /// Answers the request with `reply` instead of asking the event store: the event store is not
    /// touched.
    ///
    /// # Panics
    /// When `reply` is a success of the wrong kind for the request (an `Events` answer to an append, ...).
    #[track_caller]
    pub fn reply(mut self, reply: Result<EventStoreReply, EventStoreError>) {
        let Some(held) = self.held.take() else { return };
        if let Ok(answer) = &reply {
            if !held.request.accepts(answer) {
                let message = format!(
                    "the reply {answer:?} does not answer the request `{}`\n\nhint: an append is answered with \
                     `EventStoreReply::Appended`, a load with `Loaded`, a read with `Events`, ...",
                    held.request
                );
                self.store.fail_answering(held, &message);
            }
        }
        held.answer(reply);
        self.store.settle();
    }

    /// The request being answered.
    #[must_use]
    pub fn request(&self) -> Option<&EventStoreRequest> {
        self.held.as_ref().map(|held| &held.request)
    }
}

impl<R> Drop for Answer<'_, R>
where
    R: Reducer + Send + Sync + 'static,
    R::State: Clone + PartialEq + Debug + Send + 'static,
    R::Action: Clone + PartialEq + Debug + Send + 'static,
    R::Environment: Send + Sync + 'static,
{
    fn drop(&mut self) {
        if let Some(held) = self.held.take() {
            self.store.runtime.block_on(self.store.requests.answer_from_store(held));
            self.store.settle();
        }
    }
}

impl<R> Debug for Answer<'_, R>
where
    R: Reducer + Send + Sync + 'static,
    R::State: Clone + PartialEq + Debug + Send + 'static,
    R::Action: Clone + PartialEq + Debug + Send + 'static,
    R::Environment: Send + Sync + 'static,
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Answer").field("request", &self.request()).finish_non_exhaustive()
    }
}

/// An atomic append as a test reads it: payloads decoded, tags shown, ids left out.
#[derive(Debug, PartialEq)]
struct AtomicAppendView<E> {
    streams: Vec<StreamView<E>>,
    condition: Option<AppendCondition>,
}

#[derive(Debug, PartialEq)]
struct StreamView<E> {
    stream_id: StreamId,
    expected: ExpectedVersion,
    events: Vec<TaggedEventView<E>>,
}

#[derive(Debug, PartialEq)]
struct TaggedEventView<E> {
    event_type: String,
    event: Decoded<E>,
    tags: Vec<Tag>,
    metadata: Metadata,
}

impl<E: Event + DeserializeOwned> AtomicAppendView<E> {
    fn expected(
        streams: impl IntoIterator<Item = (StreamId, ExpectedVersion, Vec<E>)>,
        condition: Option<&AppendCondition>,
        metadata: &Metadata,
    ) -> Self {
        let streams = streams
            .into_iter()
            .map(|(stream_id, expected, events)| StreamView {
                stream_id,
                expected,
                events: events
                    .into_iter()
                    .map(|event| TaggedEventView {
                        event_type: event.event_type().to_owned(),
                        tags: event.tags(),
                        event: Decoded::Event(event),
                        metadata: metadata.clone(),
                    })
                    .collect(),
            })
            .collect();
        Self { streams, condition: condition.cloned() }
    }

    /// What the reducer asked for, or `None` when the request is not an atomic append.
    fn actual(request: &EventStoreRequest) -> Option<Self> {
        let EventStoreRequest::AppendAtomic(append) = request else { return None };
        let streams = append
            .streams
            .iter()
            .map(|stream| StreamView {
                stream_id: stream.stream_id.clone(),
                expected: stream.expected,
                events: stream.events.iter().map(decode_tagged).collect(),
            })
            .collect();
        Some(Self { streams, condition: append.condition.clone() })
    }
}

fn decode_tagged<E: DeserializeOwned>(event: &NewEvent) -> TaggedEventView<E> {
    TaggedEventView {
        event_type: event.event_type.clone(),
        event: decode_payload(event.codec, &event.payload, &event.event_type),
        tags: event.tags.clone(),
        metadata: event.metadata.clone(),
    }
}
