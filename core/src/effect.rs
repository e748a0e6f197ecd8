//! [`Effect`]: the description of work a reducer wants done, returned as a value.
//!
//! A reducer never performs I/O. It returns an `Effect`, and the runtime `Store` (or the `TestStore`)
//! executes it: sends actions back, runs async tasks, waits on the clock, talks to the event store.
//! Because effects are values, a test can inspect them, and [`Effect::map`] lets a parent reducer embed a
//! child's effects in its own action type.

use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use futures::future::BoxFuture;

use crate::error::BoxError;
use crate::operation::EventStoreOperation;

/// Work a reducer asks the runtime to do. Built with the constructors ([`Effect::send`],
/// [`Effect::run`], [`Effect::delay`], ...) and combined with [`Effect::merge`] and [`Effect::concat`].
///
/// ```
/// use std::time::Duration;
/// use composable_rust_core::{Effect, EffectId};
///
/// #[derive(Debug, Clone, PartialEq)]
/// enum Action { Tick, Stop }
///
/// let timer = EffectId::new("timer");
/// let effect = Effect::delay(Duration::from_secs(1), Action::Tick).cancellable(timer.clone());
/// assert_eq!(effect, Effect::delay(Duration::from_secs(1), Action::Tick).cancellable(timer.clone()));
/// assert_eq!(Effect::<Action>::cancel(timer.clone()), Effect::Cancel(timer));
/// ```
#[must_use = "an effect does nothing unless it is returned to the store"]
pub enum Effect<A> {
    /// No work.
    None,
    /// Feed this action back into the store immediately.
    Send(A),
    /// Run an async task that may send any number of actions through its [`ActionSink`].
    Run(Task<A>),
    /// Wait `duration` on the store's clock, then run `effect`.
    ///
    /// A `Cancellable` that `effect` is (or that a `Merge` or `Delay` in it holds) is opened when the wait
    /// starts, so a [`Cancel`](Effect::Cancel) during the wait stops it (see [`Effect::delayed`]); the
    /// steps of a `Concat` open theirs only when they start.
    Delay {
        /// How long to wait, measured by the store's clock (a test clock in tests).
        duration: Duration,
        /// What to run after the wait.
        effect: Box<Effect<A>>,
    },
    /// Run all of these at the same time.
    Merge(Vec<Effect<A>>),
    /// Run these one after another; each starts when the previous one (and what it started) has finished.
    Concat(Vec<Effect<A>>),
    /// Run `effect` so that [`Effect::Cancel`] with the same `id` can stop it, even from a later send.
    ///
    /// An event store write inside (append, save snapshot, save checkpoint) that has started is not
    /// stopped: it completes, and only its reply is discarded.
    Cancellable {
        /// The identifier to cancel by.
        id: EffectId,
        /// Cancel anything already running under `id` before starting this.
        cancel_in_flight: bool,
        /// The work to run.
        effect: Box<Effect<A>>,
    },
    /// Cancel every running effect started under this id.
    Cancel(EffectId),
    /// Execute an operation against the store's event store and feed its result back as an action.
    ///
    /// A write (append, save snapshot, save checkpoint) that has started always completes, even when it
    /// is cancelled, its child is dismissed or the store shuts down or is dropped, so whether it happened
    /// is never in doubt: only its reply is discarded then. A store built without an event store answers
    /// at once with [`EventStoreError::NoEventStore`](crate::EventStoreError::NoEventStore).
    EventStore(EventStoreOperation<A>),
}

impl<A> Effect<A> {
    /// Feeds `action` back into the store immediately.
    pub fn send(action: A) -> Self {
        Self::Send(action)
    }

    /// Runs an async task that sends actions through the [`ActionSink`] it is given.
    pub fn run<F, Fut>(task: F) -> Self
    where
        F: FnOnce(ActionSink<A>) -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        Self::Run(Task::new(move |sink| {
            let fut = task(sink);
            Box::pin(async move {
                fut.await;
                Ok(())
            })
        }))
    }

    /// Runs a fallible async task; an error is reported by the runtime (through `tracing`), never dropped.
    pub fn try_run<F, Fut, E>(task: F) -> Self
    where
        F: FnOnce(ActionSink<A>) -> Fut + Send + 'static,
        Fut: Future<Output = Result<(), E>> + Send + 'static,
        E: Into<BoxError>,
    {
        Self::Run(Task::new(move |sink| {
            let fut = task(sink);
            Box::pin(async move { fut.await.map_err(Into::into) })
        }))
    }

    /// Runs a future and feeds the action it resolves to back into the store.
    pub fn future<Fut>(future: Fut) -> Self
    where
        A: Send + 'static,
        Fut: Future<Output = A> + Send + 'static,
    {
        Self::run(move |sink| async move { sink.send(future.await) })
    }

    /// Sends `action` after `duration` has passed on the store's clock.
    pub fn delay(duration: Duration, action: A) -> Self {
        Self::Delay { duration, effect: Box::new(Self::Send(action)) }
    }

    /// Runs this effect after `duration` has passed on the store's clock.
    ///
    /// Cancellation works during the delay in either order: `e.cancellable(id).delayed(d)` and
    /// `e.delayed(d).cancellable(id)` can both be cancelled by [`Effect::cancel`]`(id)` while they wait
    /// (the runtime opens the cancellable scope when the delay starts), and a
    /// [`cancel_in_flight`](Effect::cancel_in_flight) inside a delay takes effect when the delay starts,
    /// which makes `e.cancel_in_flight(id).delayed(d)` a debounce.
    pub fn delayed(self, duration: Duration) -> Self {
        Self::Delay { duration, effect: Box::new(self) }
    }

    /// Runs all `effects` at the same time. Empty lists and single effects are simplified.
    pub fn merge(effects: impl IntoIterator<Item = Self>) -> Self {
        Self::flatten(effects, Self::Merge)
    }

    /// Runs `effects` one after another. Empty lists and single effects are simplified.
    pub fn concat(effects: impl IntoIterator<Item = Self>) -> Self {
        Self::flatten(effects, Self::Concat)
    }

    fn flatten(effects: impl IntoIterator<Item = Self>, wrap: fn(Vec<Self>) -> Self) -> Self {
        let mut effects: Vec<Self> = effects.into_iter().filter(|e| !e.is_none()).collect();
        match effects.len() {
            0 => Self::None,
            1 => effects.pop().unwrap_or(Self::None),
            _ => wrap(effects),
        }
    }

    /// Makes this effect cancellable by `id` (see [`Effect::cancel`]). `None` stays `None`.
    ///
    /// A delayed effect can be cancelled during its delay whichever way round the two are combined:
    /// `e.delayed(d).cancellable(id)` and `e.cancellable(id).delayed(d)` behave the same.
    ///
    /// An event store write inside that has started (append, save snapshot, save checkpoint) is not
    /// stopped by a cancel: it completes, and only its reply is discarded.
    pub fn cancellable(self, id: EffectId) -> Self {
        if self.is_none() {
            return self;
        }
        Self::Cancellable { id, cancel_in_flight: false, effect: Box::new(self) }
    }

    /// Cancels whatever already runs under `id`, then runs this effect under `id` (a debounce or restart).
    pub fn cancel_in_flight(self, id: EffectId) -> Self {
        Self::Cancellable { id, cancel_in_flight: true, effect: Box::new(self) }
    }

    /// Cancels every running effect started under `id`: tasks stop at their next `.await`, delays never
    /// fire, actions they would send are dropped.
    ///
    /// An event store write that has started (append, save snapshot, save checkpoint) is the exception:
    /// it completes, so the write is never left half-known, and only its reply is discarded.
    pub fn cancel(id: EffectId) -> Self {
        Self::Cancel(id)
    }

    /// Runs an event store operation (see [`EventStoreOperation`] and [`Effect::EventStore`]); a write that
    /// has started completes even when cancelled, and only its reply is discarded.
    pub fn event_store(operation: EventStoreOperation<A>) -> Self {
        Self::EventStore(operation)
    }

    /// Whether this is [`Effect::None`].
    #[must_use]
    pub fn is_none(&self) -> bool {
        matches!(self, Self::None)
    }

    /// Turns the actions this effect produces into another action type, typically a parent's.
    pub fn map<B, F>(self, f: F) -> Effect<B>
    where
        A: Send + 'static,
        B: Send + 'static,
        F: Fn(A) -> B + Send + Sync + 'static,
    {
        self.map_shared(&(Arc::new(f) as Arc<dyn Fn(A) -> B + Send + Sync>))
    }

    pub(crate) fn map_shared<B>(self, f: &Arc<dyn Fn(A) -> B + Send + Sync>) -> Effect<B>
    where
        A: Send + 'static,
        B: Send + 'static,
    {
        match self {
            Self::None => Effect::None,
            Self::Send(action) => Effect::Send(f(action)),
            Self::Run(task) => Effect::Run(task.map(Arc::clone(f))),
            Self::Delay { duration, effect } => Effect::Delay { duration, effect: Box::new(effect.map_shared(f)) },
            Self::Merge(effects) => Effect::Merge(effects.into_iter().map(|e| e.map_shared(f)).collect()),
            Self::Concat(effects) => Effect::Concat(effects.into_iter().map(|e| e.map_shared(f)).collect()),
            Self::Cancellable { id, cancel_in_flight, effect } => {
                Effect::Cancellable { id, cancel_in_flight, effect: Box::new(effect.map_shared(f)) }
            }
            Self::Cancel(id) => Effect::Cancel(id),
            Self::EventStore(operation) => Effect::EventStore(operation.map(Arc::clone(f))),
        }
    }
}

impl<A: fmt::Debug> fmt::Debug for Effect<A> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::None => f.write_str("None"),
            Self::Send(action) => f.debug_tuple("Send").field(action).finish(),
            Self::Run(_) => f.write_str("Run(..)"),
            Self::Delay { duration, effect } => {
                f.debug_struct("Delay").field("duration", duration).field("effect", effect).finish()
            }
            Self::Merge(effects) => f.debug_tuple("Merge").field(effects).finish(),
            Self::Concat(effects) => f.debug_tuple("Concat").field(effects).finish(),
            Self::Cancellable { id, cancel_in_flight, effect } => f
                .debug_struct("Cancellable")
                .field("id", id)
                .field("cancel_in_flight", cancel_in_flight)
                .field("effect", effect)
                .finish(),
            Self::Cancel(id) => f.debug_tuple("Cancel").field(id).finish(),
            Self::EventStore(operation) => f.debug_tuple("EventStore").field(operation).finish(),
        }
    }
}

/// Structural equality for the data-only parts of an effect.
///
/// [`Effect::Run`] holds a closure and never equals anything, not even itself; event store
/// operations compare by their request (stream, expected version, events), not by their callback.
impl<A: PartialEq> PartialEq for Effect<A> {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (Self::None, Self::None) => true,
            (Self::Send(a), Self::Send(b)) => a == b,
            (Self::Delay { duration: d1, effect: e1 }, Self::Delay { duration: d2, effect: e2 }) => {
                d1 == d2 && e1 == e2
            }
            (Self::Merge(a), Self::Merge(b)) | (Self::Concat(a), Self::Concat(b)) => a == b,
            (
                Self::Cancellable { id: i1, cancel_in_flight: c1, effect: e1 },
                Self::Cancellable { id: i2, cancel_in_flight: c2, effect: e2 },
            ) => i1 == i2 && c1 == c2 && e1 == e2,
            (Self::Cancel(a), Self::Cancel(b)) => a == b,
            (Self::EventStore(a), Self::EventStore(b)) => a.request() == b.request(),
            _ => false,
        }
    }
}

/// The identifier under which effects can be cancelled.
///
/// Ids compare by their text. [`EffectId::unique`] makes one that no other call returns, for
/// combinators that cancel their own effects.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct EffectId(Arc<str>);

impl EffectId {
    /// An id with the given name.
    pub fn new(name: impl Into<Arc<str>>) -> Self {
        Self(name.into())
    }

    /// An id that differs from every other id this process makes with `unique`.
    #[must_use]
    pub fn unique(prefix: &str) -> Self {
        static NEXT: AtomicU64 = AtomicU64::new(1);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        Self(format!("{prefix}#{n}").into())
    }

    /// An id nested under this one, e.g. for one element of a collection.
    #[must_use]
    pub fn child(&self, key: impl fmt::Debug) -> Self {
        Self(format!("{}/{key:?}", self.0).into())
    }

    /// The id's text.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for EffectId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "EffectId({:?})", self.0)
    }
}

impl fmt::Display for EffectId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<&'static str> for EffectId {
    fn from(name: &'static str) -> Self {
        Self::new(name)
    }
}

/// The handle a running task sends actions through. Cheap to clone; sending never blocks.
///
/// Sending after the store has shut down does nothing.
pub struct ActionSink<A> {
    send: Arc<dyn Fn(A) + Send + Sync>,
}

impl<A> ActionSink<A> {
    /// A sink that hands every action to `send`. The runtime builds these; tests rarely need to.
    pub fn new(send: impl Fn(A) + Send + Sync + 'static) -> Self {
        Self { send: Arc::new(send) }
    }

    /// Feeds `action` back into the store.
    pub fn send(&self, action: A) {
        (self.send)(action);
    }
}

impl<A> Clone for ActionSink<A> {
    fn clone(&self) -> Self {
        Self { send: Arc::clone(&self.send) }
    }
}

impl<A> fmt::Debug for ActionSink<A> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ActionSink(..)")
    }
}

/// The future a [`Task`] runs.
pub type TaskFuture = BoxFuture<'static, Result<(), BoxError>>;

/// An async unit of work inside [`Effect::Run`]: given a sink, it produces a future.
pub struct Task<A> {
    start: Box<dyn FnOnce(ActionSink<A>) -> TaskFuture + Send>,
}

impl<A> Task<A> {
    /// Wraps a function that starts the work.
    pub fn new(start: impl FnOnce(ActionSink<A>) -> TaskFuture + Send + 'static) -> Self {
        Self { start: Box::new(start) }
    }

    /// Starts the work, sending actions into `sink`.
    pub fn start(self, sink: ActionSink<A>) -> TaskFuture {
        (self.start)(sink)
    }

    fn map<B>(self, f: Arc<dyn Fn(A) -> B + Send + Sync>) -> Task<B>
    where
        A: Send + 'static,
        B: Send + 'static,
    {
        Task::new(move |sink: ActionSink<B>| {
            let inner = ActionSink::new(move |action: A| sink.send(f(action)));
            self.start(inner)
        })
    }
}

impl<A> fmt::Debug for Task<A> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Task(..)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Clone, PartialEq)]
    enum Child {
        Ping,
    }

    #[derive(Debug, Clone, PartialEq)]
    enum Parent {
        Child(Child),
    }

    #[test]
    fn merge_and_concat_simplify() {
        assert_eq!(Effect::<Child>::merge([]), Effect::None);
        assert_eq!(Effect::merge([Effect::None, Effect::send(Child::Ping)]), Effect::send(Child::Ping));
        assert!(matches!(Effect::concat([Effect::send(1), Effect::send(2)]), Effect::Concat(v) if v.len() == 2));
    }

    #[test]
    fn map_lifts_data_effects_into_the_parent_action() {
        let id = EffectId::new("t");
        let child = Effect::merge([
            Effect::send(Child::Ping),
            Effect::delay(Duration::from_secs(2), Child::Ping).cancellable(id.clone()),
            Effect::cancel(id.clone()),
        ]);
        let expected = Effect::merge([
            Effect::send(Parent::Child(Child::Ping)),
            Effect::delay(Duration::from_secs(2), Parent::Child(Child::Ping)).cancellable(id.clone()),
            Effect::cancel(id),
        ]);
        assert_eq!(child.map(Parent::Child), expected);
    }

    #[test]
    fn map_lifts_actions_sent_by_tasks() {
        let effect = Effect::run(|sink: ActionSink<Child>| async move { sink.send(Child::Ping) }).map(Parent::Child);
        let Effect::Run(task) = effect else { panic!("expected Run") };
        let received = Arc::new(std::sync::Mutex::new(Vec::new()));
        let r = Arc::clone(&received);
        let fut = task.start(ActionSink::new(move |a| r.lock().unwrap().push(a)));
        futures::executor::block_on(fut).unwrap();
        assert_eq!(*received.lock().unwrap(), vec![Parent::Child(Child::Ping)]);
    }

    #[test]
    fn unique_ids_differ() {
        assert_ne!(EffectId::unique("x"), EffectId::unique("x"));
        assert_eq!(EffectId::new("a").child(3).as_str(), "a/3");
    }
}
