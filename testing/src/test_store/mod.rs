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

use std::fmt::{self, Debug};
use std::future::Future;
use std::panic::Location;
use std::sync::Arc;
use std::time::Duration;

use composable_rust_core::{EventStore, Reducer};
use composable_rust_runtime::Store;
use tokio::runtime::Runtime;

use crate::held_requests::HeldRequests;
use crate::test_clock::TestClock;

mod builder;
mod effects;
mod recorder;
mod report;
mod requests;

pub use builder::TestStoreBuilder;
use recorder::{Log, Recorder, Tagged};
use report::{count, diff, write_actions};
pub use requests::Answer;

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
/// [`Effect::EventStore`]: composable_rust_core::Effect::EventStore
/// [`InMemoryEventStore`]: crate::InMemoryEventStore
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
    /// Where the test built the store and made its last step: a panic in `Drop` cannot point at the test's
    /// line by itself, so the message names them.
    created_at: &'static Location<'static>,
    last_step: Option<&'static Location<'static>>,
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
    /// [`InMemoryEventStore`]: crate::InMemoryEventStore
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
        self.last_step = Some(Location::caller());
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
            self.store.send(Tagged::Sent(action));
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
        self.last_step = Some(Location::caller());
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

    /// Moves the [`TestClock`] forward by `duration`, deadline by deadline, letting the effects woken at
    /// each deadline run before the next fires (a timer that re-arms itself fires as often as it should).
    #[track_caller]
    pub fn advance(&mut self, duration: Duration) {
        self.last_step = Some(Location::caller());
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

    /// Cancels every effect still running, so that [`finish`](TestStore::finish) does not wait for them or
    /// report them: the counterpart of TCA's `skipInFlightEffects()`, for effects a test does not care to
    /// see to the end (a timer, a long poll).
    ///
    /// Delays never fire, tasks stop at their next `.await`, and event store requests still waiting to be
    /// asserted are dropped unanswered (a write they describe does not happen). Actions effects already fed
    /// back are kept: assert them with [`receive`](TestStore::receive) or drop them with
    /// [`skip_received_actions`](TestStore::skip_received_actions).
    ///
    /// ```
    /// # use std::time::Duration;
    /// # use composable_rust_core::{Effect, reducer_fn};
    /// # use composable_rust_testing::TestStore;
    /// #[derive(Debug, Clone, PartialEq)]
    /// enum Action { Poll }
    ///
    /// // Polls every second, forever.
    /// let reducer = reducer_fn(|polls: &mut u32, _: Action, _: &()| {
    ///     *polls += 1;
    ///     Effect::delay(Duration::from_secs(1), Action::Poll)
    /// });
    /// let mut store = TestStore::new(reducer, 0, ());
    /// store.send(Action::Poll, |polls| *polls = 1);
    /// store.skip_in_flight_effects();
    /// store.finish();
    /// ```
    #[track_caller]
    pub fn skip_in_flight_effects(&mut self) {
        self.last_step = Some(Location::caller());
        self.settle();
        {
            let _runtime = self.runtime.enter();
            self.store.send(Tagged::CancelInFlight);
        }
        // The effects that made them are cancelled: their error replies are discarded.
        drop(self.requests.take_all());
        self.settle();
        self.wait_for_idle();
    }

    /// Runs `steps` with `exhaustivity`, then goes back to the store's own setting: a partial assertion
    /// in the middle of an exhaustive test (TCA sets `store.exhaustivity = .off` and back by hand).
    ///
    /// With [`Exhaustivity::Off`] inside an exhaustive test, the steps check only what their closures
    /// set, event store requests are answered from the event store without assertions, and received actions
    /// the steps did not assert are skipped when they end. Effects the steps started keep running: what they
    /// send after the steps must be asserted again.
    ///
    /// ```
    /// # use composable_rust_core::{Effect, reducer_fn};
    /// # use composable_rust_testing::{Exhaustivity, TestStore};
    /// #[derive(Debug, Clone, PartialEq, Default)]
    /// struct Cart { items: u32, total: u32, saved: bool }
    ///
    /// #[derive(Debug, Clone, PartialEq)]
    /// enum Action { Add(u32), Save, Saved }
    ///
    /// let reducer = reducer_fn(|cart: &mut Cart, action: Action, _: &()| match action {
    ///     Action::Add(price) => {
    ///         cart.items += 1;
    ///         cart.total += price;
    ///         Effect::None
    ///     }
    ///     Action::Save => Effect::send(Action::Saved),
    ///     Action::Saved => {
    ///         cart.saved = true;
    ///         Effect::None
    ///     }
    /// });
    /// let mut store = TestStore::new(reducer, Cart::default(), ());
    /// // Only the total matters here; `items` is not asserted.
    /// store.with_exhaustivity(Exhaustivity::Off, |store| {
    ///     store.send(Action::Add(250), |cart| cart.total = 250);
    ///     store.send(Action::Add(100), |cart| cart.total = 350);
    /// });
    /// // Exhaustive again: the whole state, and every action fed back.
    /// store.send(Action::Save, |_| {});
    /// store.receive(Action::Saved, |cart| cart.saved = true);
    /// assert_eq!(store.state().items, 2);
    /// store.finish();
    /// ```
    pub fn with_exhaustivity<T>(&mut self, exhaustivity: Exhaustivity, steps: impl FnOnce(&mut Self) -> T) -> T {
        let previous = self.exhaustivity;
        self.set_exhaustivity(exhaustivity);
        let result = steps(self);
        if exhaustivity == Exhaustivity::Off && previous == Exhaustivity::On {
            self.skip_received_actions();
        }
        self.set_exhaustivity(previous);
        result
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
    ///
    /// [`Effect::EventStore`]: composable_rust_core::Effect::EventStore
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

    #[track_caller]
    fn fail(&mut self, message: &str) -> ! {
        self.done = true;
        // `panic!` in a `#[track_caller]` chain reports the test's line, not this one.
        panic!("{message}");
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
            self.dropped_message()
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
