//! [`TestStore`]: exhaustive tests of a reducer and its effects, in the manner of Swift TCA's `TestStore`.
//!
//! # How it works
//!
//! A `TestStore` runs the reducer in a real runtime [`Store`], wrapped in a recorder that remembers, for
//! every action it reduces, the state right after it, and marks actions fed back by effects as *received*.
//! Each assertion compares one recorded step with what the test says it should be.
//!
//! The store owns a single-threaded tokio runtime and drives it only inside its own methods: after each
//! step it lets running effects make progress until they are all waiting (on the [`TestClock`], on I/O,
//! or done). Between steps nothing runs, so a test is deterministic, and its methods are plain functions
//! that can carry `#[track_caller]`: a failure points at the test's line. The price: a `TestStore` cannot
//! be used inside another tokio runtime; write its tests as `#[test]`, not `#[tokio::test]`, and run async
//! setup with [`TestStore::block_on`].

use std::collections::VecDeque;
use std::fmt::{self, Debug, Write as _};
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use composable_rust_core::{
    Effect, Event, EventStore, EventStoreError, EventStoreReply, EventStoreRequest, ExpectedVersion, Metadata, Reducer,
    StreamId,
};
use composable_rust_runtime::Store;
use serde::de::DeserializeOwned;
use similar::{ChangeTag, TextDiff};
use tokio::runtime::Runtime;
use tokio::sync::Notify;

use crate::held_requests::{AppendView, HeldRequest, HeldRequests};
use crate::in_memory::InMemoryEventStore;
use crate::test_clock::TestClock;

/// Whether a [`TestStore`] insists on every state change and every received action being asserted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Exhaustivity {
    /// Every step must be asserted: the whole state after each action, every action effects send back,
    /// and no effect may still run at the end. The default.
    #[default]
    On,
    /// Partial assertions: the closure of `send`/`receive` is applied to the *actual* state, so it only
    /// checks what it sets; `receive` skips actions until one matches; nothing is required at the end.
    /// Useful for integration-style tests of a large feature.
    Off,
}

/// Builds a [`TestStore`] with a specific event store, clock, exhaustivity or wait limit.
///
/// ```
/// use std::sync::Arc;
/// use std::time::Duration;
/// use composable_rust_core::{Effect, reducer_fn};
/// use composable_rust_testing::{Exhaustivity, InMemoryEventStore, TestClock, TestStore};
///
/// let events = Arc::new(InMemoryEventStore::new());
/// let mut store = TestStore::builder(reducer_fn(|n: &mut u8, (): (), _: &()| { *n += 1; Effect::<()>::None }), 0, ())
///     .event_store(events.clone())
///     .clock(TestClock::new())
///     .exhaustivity(Exhaustivity::On)
///     .timeout(Duration::from_secs(2))
///     .build();
/// store.send((), |n| *n = 1);
/// store.finish();
/// ```
pub struct TestStoreBuilder<R: Reducer> {
    reducer: R,
    state: R::State,
    environment: R::Environment,
    event_store: Option<Arc<dyn EventStore>>,
    clock: Option<TestClock>,
    exhaustivity: Exhaustivity,
    timeout: Duration,
}

/// Tests a reducer step by step: every state change and every action its effects send back must be
/// asserted (unless [`Exhaustivity::Off`]).
///
/// - [`send`](TestStore::send) an action and describe the state after it by mutating the state before it;
/// - [`receive`](TestStore::receive) each action an effect feeds back, in order, with the state after it;
/// - [`advance`](TestStore::advance) the [`TestClock`] to fire delays;
/// - [`finish`](TestStore::finish) at the end: fails if received actions were not asserted or effects still
///   run (also checked when the store is dropped).
///
/// Delays use a [`TestClock`]; [`Effect::EventStore`] runs against an [`InMemoryEventStore`] unless the
/// builder is given another store. Methods wait at most one second (see [`TestStoreBuilder::timeout`]) for
/// effects doing real asynchronous work.
///
/// ```
/// use std::time::Duration;
/// use composable_rust_core::{Effect, EffectId, Reducer};
/// use composable_rust_testing::TestStore;
///
/// #[derive(Debug, Clone, PartialEq, Default)]
/// struct Timer { ticks: u32, running: bool }
///
/// #[derive(Debug, Clone, PartialEq)]
/// enum Action { Start, Tick, Stop }
///
/// struct TimerReducer;
///
/// impl Reducer for TimerReducer {
///     type State = Timer;
///     type Action = Action;
///     type Environment = ();
///
///     fn reduce(&self, state: &mut Timer, action: Action, _env: &()) -> Effect<Action> {
///         let id = EffectId::new("timer");
///         match action {
///             Action::Start => {
///                 state.running = true;
///                 Effect::delay(Duration::from_secs(1), Action::Tick).cancellable(id)
///             }
///             Action::Tick => {
///                 state.ticks += 1;
///                 Effect::delay(Duration::from_secs(1), Action::Tick).cancellable(id)
///             }
///             Action::Stop => {
///                 state.running = false;
///                 Effect::cancel(id)
///             }
///         }
///     }
/// }
///
/// let mut store = TestStore::new(TimerReducer, Timer::default(), ());
/// store.send(Action::Start, |s| s.running = true);
/// store.advance(Duration::from_secs(2));
/// store.receive(Action::Tick, |s| s.ticks = 1);
/// store.receive(Action::Tick, |s| s.ticks = 2);
/// store.send(Action::Stop, |s| s.running = false);
/// store.finish();
/// ```
pub struct TestStore<R>
where
    R: Reducer + Send + Sync + 'static,
    R::State: Clone + PartialEq + Debug + Send + 'static,
    R::Action: Clone + PartialEq + Debug + Send + 'static,
    R::Environment: Send + Sync + 'static,
{
    store: Store<Recorder<R>>,
    log: Arc<Log<R::Action, R::State>>,
    /// The state after the last asserted step.
    state: R::State,
    clock: TestClock,
    event_store: Arc<dyn EventStore>,
    /// Event store requests made by effects, waiting for the test to assert them.
    requests: Arc<HeldRequests>,
    exhaustivity: Exhaustivity,
    timeout: Duration,
    /// `finish` ran, or a failure was already reported: the drop check has nothing to add.
    done: bool,
    runtime: Runtime,
}

impl<R> TestStore<R>
where
    R: Reducer + Send + Sync + 'static,
    R::State: Clone + PartialEq + Debug + Send + 'static,
    R::Action: Clone + PartialEq + Debug + Send + 'static,
    R::Environment: Send + Sync + 'static,
{
    /// A test store with a fresh [`TestClock`], an empty [`InMemoryEventStore`] and exhaustive assertions.
    ///
    /// # Panics
    /// When called inside a tokio runtime (e.g. from `#[tokio::test]`): the test store drives its own.
    #[track_caller]
    pub fn new(reducer: R, initial_state: R::State, environment: R::Environment) -> Self {
        Self::builder(reducer, initial_state, environment).build()
    }

    /// A builder to choose the event store, clock, exhaustivity or wait limit.
    pub fn builder(reducer: R, initial_state: R::State, environment: R::Environment) -> TestStoreBuilder<R> {
        TestStoreBuilder {
            reducer,
            state: initial_state,
            environment,
            event_store: None,
            clock: None,
            exhaustivity: Exhaustivity::On,
            timeout: Duration::from_secs(1),
        }
    }

    /// Sends `action` and asserts the state after it: `update` receives the state before the action and
    /// must turn it into the expected state (with [`Exhaustivity::Off`], it receives the actual state after
    /// the action and only what it sets is checked).
    ///
    /// # Panics
    /// When the state differs, or (exhaustive) when actions fed back earlier have not been received yet.
    #[track_caller]
    pub fn send(&mut self, action: R::Action, update: impl FnOnce(&mut R::State)) {
        self.settle();
        let pending = self.log.take_received();
        if !pending.is_empty() {
            match self.exhaustivity {
                Exhaustivity::On => {
                    let mut message = format!(
                        "must handle {} before sending `{action:?}`\n\n",
                        count(pending.len(), "received action", "received actions")
                    );
                    write_actions(&mut message, "unhandled received actions", pending.iter().map(|(a, _)| a));
                    message.push_str(
                        "\nhint: assert them with `receive` first, or call `skip_received_actions()` to ignore them",
                    );
                    self.fail(&message);
                }
                Exhaustivity::Off => {
                    if let Some((_, state)) = pending.into_iter().last() {
                        self.state = state;
                    }
                }
            }
        }

        let name = format!("{action:?}");
        {
            let _runtime = self.runtime.enter();
            self.store.send(Tagged { received: false, action });
        }
        let Some(actual) = self.log.take_sent() else {
            self.fail(&format!("the store did not reduce `{name}`: it has been shut down"));
        };
        self.check_state(&format!("state after `{name}` does not match"), actual, update);
        self.settle();
    }

    /// Asserts that the next action fed back by an effect is `expected`, and the state after it.
    ///
    /// Waits (up to the timeout, one second by default) for running effects to send it; fails at once when
    /// no effect runs or all of them wait on the test clock. `update` works as in [`TestStore::send`]. With [`Exhaustivity::Off`], actions before the first match are skipped.
    ///
    /// # Panics
    /// When no action arrives in time, when the next action is a different one, or the state differs.
    #[track_caller]
    pub fn receive(&mut self, expected: R::Action, update: impl FnOnce(&mut R::State)) {
        let description = format!("`{expected:?}`");
        self.receive_step(&description, Some(&expected), |action| *action == expected, update);
    }

    /// Like [`TestStore::receive`], for actions that cannot be written out in full (they carry loaded
    /// events with timestamps, generated ids, errors): the next received action must satisfy `matches`.
    ///
    /// ```
    /// # use composable_rust_core::{Effect, reducer_fn};
    /// # use composable_rust_testing::TestStore;
    /// #[derive(Debug, Clone, PartialEq)]
    /// enum Action { Load, Loaded(Result<u32, String>) }
    ///
    /// let reducer = reducer_fn(|_: &mut (), action: Action, _: &()| match action {
    ///     Action::Load => Effect::future(async { Action::Loaded(Ok(7)) }),
    ///     Action::Loaded(_) => Effect::None,
    /// });
    /// let mut store = TestStore::new(reducer, (), ());
    /// store.send(Action::Load, |_| {});
    /// store.receive_matching("Loaded(Ok(_))", |a| matches!(a, Action::Loaded(Ok(_))), |_| {});
    /// store.finish();
    /// ```
    ///
    /// # Panics
    /// As [`TestStore::receive`].
    #[track_caller]
    pub fn receive_matching(
        &mut self,
        description: &str,
        matches: impl Fn(&R::Action) -> bool,
        update: impl FnOnce(&mut R::State),
    ) {
        self.receive_step(&format!("an action matching `{description}`"), None, matches, update);
    }

    #[track_caller]
    fn receive_step(
        &mut self,
        description: &str,
        expected: Option<&R::Action>,
        matches: impl Fn(&R::Action) -> bool,
        update: impl FnOnce(&mut R::State),
    ) {
        let received = loop {
            self.settle();
            let next = self.next_received();
            let Some((action, state)) = next else {
                let message = self.nothing_received_message(description);
                self.fail(&message);
            };
            if matches(&action) {
                break (action, state);
            }
            match self.exhaustivity {
                Exhaustivity::On => {
                    let mut message = format!("received `{action:?}`, but expected {description}\n\n");
                    if let Some(expected) = expected {
                        message.push_str(&diff(&format!("{expected:#?}"), &format!("{action:#?}")));
                        message.push('\n');
                    }
                    message.push_str(
                        "hint: received actions must be asserted in the order effects send them; with \
                         Exhaustivity::Off, non-matching actions are skipped",
                    );
                    self.fail(&message);
                }
                Exhaustivity::Off => self.state = state,
            }
        };
        let (action, actual) = received;
        self.check_state(&format!("state after receiving `{action:?}` does not match"), actual, update);
        self.settle();
    }

    /// Asserts that the next event store request an effect made is `expected`, and answers it from the
    /// event store when the returned [`Answer`] is dropped (or as [`Answer::reply`] says).
    ///
    /// Requests are held until the test asserts them (with [`Exhaustivity::On`]), in the order the reducer
    /// made them; the effect that made one waits for its answer meanwhile. For appends of an aggregate's
    /// events, [`TestStore::receive_append`] shows a failing comparison with the events decoded.
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

    /// Moves the [`TestClock`] forward by `duration`, deadline by deadline, letting the effects woken at
    /// each deadline run before the next fires (a timer that re-arms itself fires as often as it should).
    #[track_caller]
    pub fn advance(&mut self, duration: Duration) {
        self.settle();
        let mut remaining = duration;
        while let Some(until) = self.clock.time_until_next_sleep().filter(|until| *until <= remaining) {
            self.clock.advance(until);
            remaining -= until;
            self.settle();
        }
        self.clock.advance(remaining);
        self.settle();
    }

    /// Drops every received action that has not been asserted; the state becomes the state after the last.
    pub fn skip_received_actions(&mut self) {
        self.settle();
        if let Some((_, state)) = self.log.take_received().into_iter().last() {
            self.state = state;
        }
    }

    /// Ends the test: waits (up to the timeout) for running effects, then fails if any received action was
    /// not asserted or any effect still runs. With [`Exhaustivity::Off`] it only waits.
    ///
    /// # Panics
    /// On unasserted received actions or effects in flight (exhaustive mode).
    #[track_caller]
    pub fn finish(&mut self) {
        self.done = true;
        self.settle();
        self.wait_for_idle();
        if self.exhaustivity == Exhaustivity::On {
            if let Some(message) = self.unfinished_message() {
                self.fail(&message);
            }
        }
    }

    /// The state after the last asserted step.
    #[must_use]
    pub fn state(&self) -> &R::State {
        &self.state
    }

    /// The clock that drives delays (a clone of the store's).
    #[must_use]
    pub fn clock(&self) -> &TestClock {
        &self.clock
    }

    /// The event store that [`Effect::EventStore`] operations run against.
    #[must_use]
    pub fn event_store(&self) -> &Arc<dyn EventStore> {
        &self.event_store
    }

    /// How many effect tasks are running now.
    #[must_use]
    pub fn effects_in_flight(&self) -> usize {
        self.store.effects_in_flight()
    }

    /// Changes how strict the assertions are from here on.
    ///
    /// Turning exhaustivity off answers the event store requests still waiting from the event store.
    pub fn set_exhaustivity(&mut self, exhaustivity: Exhaustivity) {
        self.exhaustivity = exhaustivity;
        self.requests.set_hold(exhaustivity == Exhaustivity::On);
        if exhaustivity == Exhaustivity::Off {
            for held in self.requests.take_all() {
                self.runtime.block_on(self.requests.answer_from_store(held));
            }
            self.settle();
        }
    }

    /// Runs `future` to completion on the test store's runtime, for async setup such as seeding the
    /// event store. Effects that are running make progress meanwhile.
    pub fn block_on<F: Future>(&self, future: F) -> F::Output {
        self.runtime.block_on(future)
    }

    /// Lets running effects make progress until they are all waiting (on the clock, on I/O) or done.
    fn settle(&self) {
        let store = &self.store;
        let log = &self.log;
        self.runtime.block_on(async {
            let progress = || (log.reductions.load(Ordering::Acquire), store.effects_in_flight());
            let mut last = progress();
            let mut quiet = 0;
            for _ in 0..SETTLE_MAX_YIELDS {
                if last.1 == 0 {
                    return;
                }
                tokio::task::yield_now().await;
                let now = progress();
                if now == last {
                    quiet += 1;
                    if quiet == SETTLE_QUIET_YIELDS {
                        return;
                    }
                } else {
                    quiet = 0;
                    last = now;
                }
            }
        });
    }

    /// Whether nothing can happen until the test acts: no effect runs, or every running effect may be
    /// waiting on the test clock (delays are the only effects that sleep on it).
    fn stalled(&self) -> bool {
        let in_flight = self.store.effects_in_flight();
        in_flight == 0 || in_flight <= self.clock.pending_sleeps() + self.requests.len()
    }

    /// Waits up to the timeout for every effect to finish, unless nothing can make progress.
    fn wait_for_idle(&self) {
        if self.stalled() {
            return;
        }
        let store = self.store.clone();
        let _ = self.runtime.block_on(async { tokio::time::timeout(self.timeout, store.idle()).await });
        self.settle();
    }

    /// The next received action, waiting up to the timeout for one to arrive.
    fn next_received(&self) -> Option<(R::Action, R::State)> {
        if let Some(next) = self.log.pop_received() {
            return Some(next);
        }
        if self.stalled() {
            return None;
        }
        let log = &self.log;
        self.runtime
            .block_on(async {
                tokio::time::timeout(self.timeout, async {
                    loop {
                        if let Some(next) = log.pop_received() {
                            return next;
                        }
                        log.arrived.notified().await;
                    }
                })
                .await
            })
            .ok()
    }

    #[track_caller]
    fn check_state(&mut self, headline: &str, actual: R::State, update: impl FnOnce(&mut R::State)) {
        let mut expected = match self.exhaustivity {
            Exhaustivity::On => self.state.clone(),
            Exhaustivity::Off => actual.clone(),
        };
        update(&mut expected);
        if expected != actual {
            let message = format!("{headline}\n\n{}", diff(&format!("{expected:#?}"), &format!("{actual:#?}")));
            self.state = actual;
            self.fail(&message);
        }
        self.state = actual;
    }

    fn nothing_received_message(&self, description: &str) -> String {
        let mut message = format!("expected to receive {description}, but no action was received\n\n");
        let held = self.requests.descriptions();
        if !held.is_empty() {
            let _ = writeln!(message, "event store requests waiting to be asserted ({}):", held.len());
            for (i, request) in held.iter().enumerate() {
                let _ = writeln!(message, "  {}. {request}", i + 1);
            }
            message.push_str(
                "\nhint: assert the request with `receive_request` or `receive_append` first; its answer is what \
                 the effect sends back",
            );
            return message;
        }
        let in_flight = self.store.effects_in_flight();
        let sleeps = self.clock.pending_sleeps();
        message.push_str(&match (in_flight, self.clock.time_until_next_sleep()) {
            (_, Some(next)) => format!(
                "hint: {} waiting on the test clock (the next is due in {next:?}); call `advance` to move time",
                count(sleeps, "effect is", "effects are"),
            ),
            (0, None) => "hint: no effect is running, so nothing can send it; check that the reducer returns the \
                          effect, and that it was not cancelled"
                .to_owned(),
            (n, None) => format!(
                "hint: {} still running but sent nothing within {:?}; if it does slow real work, raise the \
                 limit with `TestStoreBuilder::timeout`",
                count(n, "effect is", "effects are"),
                self.timeout,
            ),
        });
        message
    }

    /// What is left undone at the end of a test, if anything.
    fn unfinished_message(&self) -> Option<String> {
        let pending = self.log.peek_received();
        let requests = self.requests.descriptions();
        // Effects waiting for an answer are reported as requests, not as running effects.
        let in_flight = self.store.effects_in_flight().saturating_sub(requests.len());
        if pending.is_empty() && requests.is_empty() && in_flight == 0 {
            return None;
        }
        let mut message = String::new();
        if !requests.is_empty() {
            let _ = writeln!(
                message,
                "{} not asserted at the end of the test\n",
                count(requests.len(), "event store request was", "event store requests were")
            );
            let _ = writeln!(message, "unasserted requests ({}):", requests.len());
            for (i, request) in requests.iter().enumerate() {
                let _ = writeln!(message, "  {}. {request}", i + 1);
            }
            message.push_str(
                "\nhint: assert each with `receive_request` or `receive_append`, in the order the reducer made them\n",
            );
        }
        if !pending.is_empty() {
            if !message.is_empty() {
                message.push('\n');
            }
            let _ = writeln!(
                message,
                "{} not asserted at the end of the test\n",
                count(pending.len(), "received action was", "received actions were")
            );
            write_actions(&mut message, "unhandled received actions", pending.iter());
            message.push_str("\nhint: assert them with `receive`, or call `skip_received_actions()`\n");
        }
        if in_flight > 0 {
            if !message.is_empty() {
                message.push('\n');
            }
            let _ = writeln!(
                message,
                "{} still running at the end of the test\n",
                count(in_flight, "effect is", "effects are")
            );
            if let Some(next) = self.clock.time_until_next_sleep() {
                let _ = writeln!(
                    message,
                    "{} waiting on the test clock (the next is due in {next:?})",
                    count(self.clock.pending_sleeps(), "of them is", "of them are")
                );
            }
            message.push_str(
                "hint: `advance` the test clock until delays have fired, and cancel long-living effects \
                 (timers, subscriptions) with `Effect::cancel` before the test ends",
            );
        }
        Some(message.trim_end().to_owned())
    }

    #[track_caller]
    fn fail(&mut self, message: &str) -> ! {
        self.done = true;
        // `panic!` in a `#[track_caller]` chain reports the test's line, not this one.
        panic!("{message}");
    }
}

/// Yields after which `settle` gives up even if tasks keep making progress (a busy loop in an effect).
const SETTLE_MAX_YIELDS: usize = 10_000;
/// Consecutive yields without progress after which running effects are taken to be waiting.
const SETTLE_QUIET_YIELDS: usize = 3;

impl<R> TestStoreBuilder<R>
where
    R: Reducer + Send + Sync + 'static,
    R::State: Clone + PartialEq + Debug + Send + 'static,
    R::Action: Clone + PartialEq + Debug + Send + 'static,
    R::Environment: Send + Sync + 'static,
{
    /// The event store that [`Effect::EventStore`] operations run against (default: an empty
    /// [`InMemoryEventStore`]).
    #[must_use]
    pub fn event_store(mut self, event_store: Arc<dyn EventStore>) -> Self {
        self.event_store = Some(event_store);
        self
    }

    /// The clock that drives delays (default: [`TestClock::new`]).
    #[must_use]
    pub fn clock(mut self, clock: TestClock) -> Self {
        self.clock = Some(clock);
        self
    }

    /// How strict the assertions are (default: [`Exhaustivity::On`]).
    #[must_use]
    pub fn exhaustivity(mut self, exhaustivity: Exhaustivity) -> Self {
        self.exhaustivity = exhaustivity;
        self
    }

    /// How long `receive` and `finish` wait in real time for effects (default: one second).
    #[must_use]
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Builds the test store.
    ///
    /// # Panics
    /// When called inside a tokio runtime (e.g. from `#[tokio::test]`), or when the test store's own
    /// runtime cannot be started.
    #[track_caller]
    pub fn build(self) -> TestStore<R> {
        if tokio::runtime::Handle::try_current().is_ok() {
            panic!(
                "a TestStore drives its own tokio runtime and cannot be created inside another one: write the \
                 test as a plain #[test] fn instead of #[tokio::test], and run async setup with \
                 `TestStore::block_on`"
            );
        }
        let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
            Ok(runtime) => runtime,
            Err(error) => panic!("could not start the TestStore's tokio runtime: {error}"),
        };
        let clock = self.clock.unwrap_or_default();
        let event_store = self.event_store.unwrap_or_else(|| Arc::new(InMemoryEventStore::new()));
        let log = Arc::new(Log::default());
        let recorder = Recorder { inner: self.reducer, log: Arc::clone(&log) };
        let requests = Arc::new(HeldRequests::new(Arc::clone(&event_store), self.exhaustivity == Exhaustivity::On));
        let store = {
            let _runtime = runtime.enter();
            Store::builder(recorder, self.state.clone(), self.environment)
                .clock(Arc::new(clock.clone()))
                .event_store(Arc::clone(&event_store))
                .request_handler(Arc::clone(&requests) as Arc<dyn composable_rust_core::RequestHandler>)
                .build()
        };
        TestStore {
            store,
            log,
            state: self.state,
            clock,
            event_store,
            requests,
            exhaustivity: self.exhaustivity,
            timeout: self.timeout,
            done: false,
            runtime,
        }
    }
}

impl<R> Drop for TestStore<R>
where
    R: Reducer + Send + Sync + 'static,
    R::State: Clone + PartialEq + Debug + Send + 'static,
    R::Action: Clone + PartialEq + Debug + Send + 'static,
    R::Environment: Send + Sync + 'static,
{
    fn drop(&mut self) {
        let unfinished = if self.done || self.exhaustivity == Exhaustivity::Off || std::thread::panicking() {
            None
        } else {
            self.settle();
            self.wait_for_idle();
            let pending = self.log.peek_received_debug();
            let requests = self.requests.descriptions();
            let in_flight = self.store.effects_in_flight().saturating_sub(requests.len());
            (!pending.is_empty() || !requests.is_empty() || in_flight > 0).then(|| {
                let mut message = String::from(
                    "the TestStore was dropped with work left over; call `finish()` at the end of the test\n\n",
                );
                if !pending.is_empty() {
                    let _ = writeln!(message, "unhandled received actions ({}):", pending.len());
                    for (i, action) in pending.iter().enumerate() {
                        let _ = writeln!(message, "  {}. {action}", i + 1);
                    }
                }
                if !requests.is_empty() {
                    let _ = writeln!(message, "unasserted event store requests ({}):", requests.len());
                    for (i, request) in requests.iter().enumerate() {
                        let _ = writeln!(message, "  {}. {request}", i + 1);
                    }
                }
                if in_flight > 0 {
                    let _ = writeln!(message, "{} still running", count(in_flight, "effect is", "effects are"));
                }
                message
            })
        };
        // Unanswered requests end with an error, so that their effects finish instead of waiting forever.
        drop(self.requests.take_all());
        self.store.shutdown();
        if let Some(message) = unfinished {
            panic!("{}", message.trim_end());
        }
    }
}

impl<R> Debug for TestStore<R>
where
    R: Reducer + Send + Sync + 'static,
    R::State: Clone + PartialEq + Debug + Send + 'static,
    R::Action: Clone + PartialEq + Debug + Send + 'static,
    R::Environment: Send + Sync + 'static,
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TestStore")
            .field("state", &self.state)
            .field("clock", &self.clock)
            .field("exhaustivity", &self.exhaustivity)
            .field("effects_in_flight", &self.store.effects_in_flight())
            .finish_non_exhaustive()
    }
}

impl<R: Reducer> Debug for TestStoreBuilder<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TestStoreBuilder")
            .field("event_store", &self.event_store)
            .field("clock", &self.clock)
            .field("exhaustivity", &self.exhaustivity)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
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

/// An action as the recorder sees it: sent by the test, or fed back by an effect.
#[derive(Debug)]
struct Tagged<A> {
    received: bool,
    action: A,
}

/// Wraps the reducer under test and records the state after every action it reduces.
struct Recorder<R: Reducer> {
    inner: R,
    log: Arc<Log<R::Action, R::State>>,
}

impl<R> Reducer for Recorder<R>
where
    R: Reducer,
    R::State: Clone,
    R::Action: Clone + Send + 'static,
{
    type State = R::State;
    type Action = Tagged<R::Action>;
    type Environment = R::Environment;

    fn reduce(&self, state: &mut R::State, tagged: Self::Action, env: &R::Environment) -> Effect<Self::Action> {
        let Tagged { received, action } = tagged;
        let effect = if received {
            let effect = self.inner.reduce(state, action.clone(), env);
            self.log.record_received(action, state.clone());
            effect
        } else {
            let effect = self.inner.reduce(state, action, env);
            self.log.record_sent(state.clone());
            effect
        };
        effect.map(|action| Tagged { received: true, action })
    }
}

/// What the recorder saw and the test has not asserted yet.
struct Log<A, S> {
    steps: Mutex<Steps<A, S>>,
    /// Woken whenever an action is received.
    arrived: Notify,
    /// Every reduction so far, to tell when effects stop making progress.
    reductions: AtomicU64,
}

struct Steps<A, S> {
    sent: Option<S>,
    received: VecDeque<(A, S)>,
}

impl<A, S> Default for Log<A, S> {
    fn default() -> Self {
        Self {
            steps: Mutex::new(Steps { sent: None, received: VecDeque::new() }),
            arrived: Notify::new(),
            reductions: AtomicU64::new(0),
        }
    }
}

impl<A, S> Log<A, S> {
    fn lock(&self) -> MutexGuard<'_, Steps<A, S>> {
        self.steps.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn record_sent(&self, state: S) {
        self.lock().sent = Some(state);
        self.reductions.fetch_add(1, Ordering::AcqRel);
    }

    fn record_received(&self, action: A, state: S) {
        self.lock().received.push_back((action, state));
        self.reductions.fetch_add(1, Ordering::AcqRel);
        self.arrived.notify_one();
    }

    fn take_sent(&self) -> Option<S> {
        self.lock().sent.take()
    }

    fn pop_received(&self) -> Option<(A, S)> {
        self.lock().received.pop_front()
    }

    fn take_received(&self) -> Vec<(A, S)> {
        self.lock().received.drain(..).collect()
    }
}

impl<A: Clone + Debug, S> Log<A, S> {
    fn peek_received(&self) -> Vec<A> {
        self.lock().received.iter().map(|(a, _)| a.clone()).collect()
    }

    fn peek_received_debug(&self) -> Vec<String> {
        self.lock().received.iter().map(|(a, _)| format!("{a:?}")).collect()
    }
}

/// "1 received action" / "2 received actions".
fn count(n: usize, one: &str, many: &str) -> String {
    if n == 1 { format!("1 {one}") } else { format!("{n} {many}") }
}

fn write_actions<'a, A: Debug + 'a>(out: &mut String, title: &str, actions: impl ExactSizeIterator<Item = &'a A>) {
    let _ = writeln!(out, "{title} ({}):", actions.len());
    for (i, action) in actions.enumerate() {
        let _ = writeln!(out, "  {}. {action:?}", i + 1);
    }
}

/// A line diff of two pretty-printed values: only changed lines with two lines of context around them,
/// `-` for expected and `+` for actual, and a legend.
fn diff(expected: &str, actual: &str) -> String {
    let diff = TextDiff::from_lines(expected, actual);
    let mut out = String::new();
    for (i, group) in diff.grouped_ops(2).iter().enumerate() {
        if i > 0 {
            out.push_str("    …\n");
        }
        for op in group {
            for change in diff.iter_changes(op) {
                let sign = match change.tag() {
                    ChangeTag::Delete => '-',
                    ChangeTag::Insert => '+',
                    ChangeTag::Equal => ' ',
                };
                let _ = writeln!(out, "  {sign} {}", change.value().trim_end_matches('\n'));
            }
        }
    }
    out.push_str("\n(expected: -, actual: +)\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug)]
    #[allow(dead_code, reason = "read through Debug")]
    struct User {
        name: &'static str,
        age: u32,
        tags: Vec<&'static str>,
    }

    #[test]
    fn diff_shows_only_changed_lines_with_context_and_a_legend() {
        let expected = User { name: "ada", age: 36, tags: vec!["a", "b", "c", "d", "e", "f"] };
        let actual = User { name: "ada", age: 37, tags: vec!["a", "b", "c", "d", "e", "f"] };
        let text = diff(&format!("{expected:#?}"), &format!("{actual:#?}"));
        assert_eq!(
            text,
            concat!(
                "    User {\n",
                "        name: \"ada\",\n",
                "  -     age: 36,\n",
                "  +     age: 37,\n",
                "        tags: [\n",
                "            \"a\",\n",
                "\n(expected: -, actual: +)\n",
            )
        );
    }

    #[test]
    fn count_agrees_in_number() {
        assert_eq!(count(1, "effect is", "effects are"), "1 effect is");
        assert_eq!(count(3, "effect is", "effects are"), "3 effects are");
    }
}
