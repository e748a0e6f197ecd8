//! [`Store`]: holds the state, runs the reducer for each action and executes the effects it returns.

use std::any::Any;
use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::future::Future;
use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError};
use std::time::Duration;

use composable_rust_core::backend::{RequestHandler, Task};
use composable_rust_core::{
    ActionSink, Clock, Effect, EffectId, EventStore, EventStoreError, EventStoreOperation, Reducer,
};
use futures::FutureExt;
use tokio::runtime::{Handle, Runtime};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::clock::SystemClock;
use crate::instrumented::MeasuredRequests;

/// Runs a [`Reducer`]: holds its state, reduces every action sent to it and executes the returned
/// [`Effect`]s on tokio, feeding the actions they produce back in.
///
/// A store can be built and sent to from anywhere, inside a tokio runtime or not: effects that need a task
/// run on the runtime of the thread that sends, else on the runtime the store was built in, else on a
/// process-wide fallback runtime (see [`Store::send`]).
///
/// Cloning is cheap (one `Arc`); all clones share the state. When the last clone is dropped, every effect
/// still running is cancelled, as with [`Store::shutdown`].
///
/// # How effects run
///
/// `send` takes the state lock, runs the reducer, releases the lock and then starts the effect:
///
/// - `None`, `Send`, `Cancel`, and `Merge`/`Cancellable` of those run inline: no task, no allocation.
///   Actions they produce are reduced in FIFO order before `send` returns.
/// - `Run`, `Delay`, `Concat` and `EventStore` each get one tokio task. Actions a task sends through its
///   [`ActionSink`] are reduced right away, on the task, in the order it sends them.
/// - Every task belongs to the `send` that started it, and so does every task started by the actions it
///   feeds back: [`SendHandle::finished`] waits for whole cascades. In the same way, each step of a
///   `Concat` starts only when everything the previous step led to has finished.
/// - A `Cancellable` scope gets a [`CancellationToken`], a child of the enclosing scope's token (nested
///   scopes) and ultimately of the store's shutdown token. The scope stays registered under its
///   [`EffectId`] while any task started inside it runs. Actions fed back by a task do *not* inherit its
///   scope: cancelling a request does not cancel the effects of the responses it already delivered.
/// - A `Delay` opens the cancellable scopes inside it when the delay starts, not when it ends, so
///   `e.cancellable(id).delayed(d)` can be cancelled while it waits, like `e.delayed(d).cancellable(id)`.
/// - An `EventStore` write (append, save snapshot, save checkpoint) that has started runs to its end even
///   when its scope is cancelled or the store shuts down or is dropped; only its reply is discarded.
///   [`Store::idle`] and [`SendHandle::finished`] wait for it.
///
/// # A reducer panic poisons the store
///
/// A reducer is pure code, so a panic in it is a bug, and it may have left the state half-updated. The
/// store then poisons itself: it records the action type, who sent the action and the panic message,
/// cancels every running effect as [`Store::shutdown`] does (writes in flight complete), and reduces no
/// action again. A panic inside `send` is re-raised to its caller; one while reducing an action an effect
/// fed back is logged with `tracing::error!`. From then on [`Store::send`] panics with a message that says
/// what happened and what to do, [`Store::try_send`] returns [`StorePoisoned`], and actions effects still
/// feed back are dropped with an error log. [`Store::state`] still reads the state, for a post-mortem.
/// A panic in an effect's own code (a task) is only logged: it leaves the state untouched.
///
/// ```
/// use composable_rust_core::{Effect, reducer_fn};
/// use composable_rust_runtime::Store;
///
/// #[derive(Debug, Clone, PartialEq)]
/// enum Action { Increment, Incremented }
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let reducer = reducer_fn(|count: &mut u32, action: Action, _env: &()| match action {
///     Action::Increment => Effect::future(async { Action::Incremented }),
///     Action::Incremented => {
///         *count += 1;
///         Effect::None
///     }
/// });
/// let store = Store::new(reducer, 0, ());
/// store.send(Action::Increment).finished().await;
/// assert_eq!(store.state(|count| *count), 1);
/// # }
/// ```
pub struct Store<R: Reducer> {
    inner: Arc<Inner<R>>,
}

/// Builds a [`Store`] with an event store and a clock other than the default [`SystemClock`].
///
/// ```
/// use std::sync::Arc;
/// use composable_rust_core::{Effect, reducer_fn};
/// use composable_rust_runtime::{Store, SystemClock};
///
/// let reducer = reducer_fn(|_: &mut (), _: (), _: &()| Effect::<()>::None);
/// let store = Store::builder(reducer, (), ()).clock(Arc::new(SystemClock)).build();
/// assert!(store.event_store().is_none());
/// ```
pub struct StoreBuilder<R: Reducer> {
    reducer: R,
    state: R::State,
    environment: R::Environment,
    event_store: Option<Arc<dyn EventStore>>,
    requests: Option<Arc<dyn RequestHandler>>,
    clock: Option<Arc<dyn Clock>>,
}

/// What [`Store::send`] returns: await [`SendHandle::finished`] to wait for the effects that send started.
///
/// Dropping the handle does not cancel anything; effects keep running.
#[derive(Clone)]
pub struct SendHandle {
    tracker: Option<Arc<Tracker>>,
}

struct Inner<R: Reducer> {
    reducer: R,
    state: Mutex<R::State>,
    environment: R::Environment,
    event_store: Option<Arc<dyn EventStore>>,
    /// Where [`Effect::EventStore`] requests go: the event store, or a test's handler.
    requests: Option<Arc<dyn RequestHandler>>,
    clock: Arc<dyn Clock>,
    /// The runtime the store was built in, for sends from threads outside any runtime.
    runtime: Option<Handle>,
    cancellations: Arc<Cancellations>,
    /// Parent of every cancellation token; cancelled by [`Store::shutdown`] and on drop.
    shutdown: CancellationToken,
    /// Mirrors `shutdown` without taking its lock, for the hot path of `send`.
    shut_down: AtomicBool,
    /// Set (under the state lock) when the reducer panics; from then on no action is reduced.
    poisoned: OnceLock<StorePoisoned>,
    /// Counts every running task of the store.
    running: Arc<Tracker>,
}

impl<R> Store<R>
where
    R: Reducer + Send + Sync + 'static,
    R::State: Send + 'static,
    R::Action: Send + 'static,
    R::Environment: Send + Sync + 'static,
{
    /// A store running `reducer` from `initial_state`, with `environment`, the [`SystemClock`] and no event
    /// store. Use [`Store::builder`] to add them.
    pub fn new(reducer: R, initial_state: R::State, environment: R::Environment) -> Self {
        Self::builder(reducer, initial_state, environment).build()
    }

    /// A builder for a store that needs an event store or another clock.
    pub fn builder(reducer: R, initial_state: R::State, environment: R::Environment) -> StoreBuilder<R> {
        StoreBuilder { reducer, state: initial_state, environment, event_store: None, requests: None, clock: None }
    }

    /// Reduces `action` and starts the effects the reducer returns.
    ///
    /// The reducer runs under the state lock, on the caller's thread; so do the reductions of actions that
    /// the effect sends back synchronously ([`Effect::Send`]). Effects that need a task are spawned on the
    /// current tokio runtime, else on the one the store was built in, else (a plain thread and a store
    /// built outside any runtime) on a process-wide fallback runtime with one worker thread: `send` needs
    /// no runtime and never drops an effect for the lack of one. A store that has been shut down ignores
    /// the action.
    ///
    /// # Panics
    /// - When the reducer panics while reducing `action` or an action its effects send synchronously: the
    ///   store [poisons itself](Store#a-reducer-panic-poisons-the-store) and the panic is re-raised here,
    ///   unchanged. A reducer is pure code, so its panic is a bug to fix.
    /// - When the store is poisoned already: the message says which action type the reducer panicked on,
    ///   who sent it, the panic message, and what to do. Use [`Store::try_send`] to get a
    ///   [`StorePoisoned`] error instead.
    #[track_caller]
    pub fn send(&self, action: R::Action) -> SendHandle {
        match self.try_send(action) {
            Ok(handle) => handle,
            Err(poisoned) => refuse(&poisoned),
        }
    }

    /// Like [`Store::send`], but a poisoned store returns an error instead of panicking.
    ///
    /// # Errors
    /// [`StorePoisoned`] when the reducer has panicked before (or, on another thread, while this action
    /// waited for the state lock): the action is dropped, not reduced.
    ///
    /// # Panics
    /// When the reducer panics while reducing `action` or an action its effects send synchronously: the
    /// store poisons itself and the panic is re-raised here, as [`Store::send`] does.
    ///
    /// ```
    /// use std::panic::{AssertUnwindSafe, catch_unwind};
    /// use composable_rust_core::{Effect, reducer_fn};
    /// use composable_rust_runtime::Store;
    ///
    /// let store = Store::new(
    ///     reducer_fn(|n: &mut u8, by: u8, _: &()| {
    ///         *n = n.checked_add(by).expect("the counter overflowed");
    ///         Effect::<u8>::None
    ///     }),
    ///     250,
    ///     (),
    /// );
    /// assert!(store.try_send(5).is_ok());
    /// assert!(catch_unwind(AssertUnwindSafe(|| store.send(1))).is_err()); // the reducer's panic
    /// let refused = store.try_send(1).unwrap_err();
    /// assert!(refused.to_string().contains("the counter overflowed"));
    /// assert!(store.is_poisoned());
    /// ```
    pub fn try_send(&self, action: R::Action) -> Result<SendHandle, StorePoisoned> {
        if self.inner.shut_down.load(Ordering::Acquire) {
            // Poisoning shuts the store down, so this one check keeps the hot path to a single load.
            if let Some(poisoned) = self.inner.poisoned.get() {
                return Err(poisoned.clone());
            }
            tracing::debug!("an action was sent to a store that has been shut down; it was ignored");
            return Ok(SendHandle { tracker: None });
        }
        let mut tracker = None;
        self.inner.process(action, Caller::Send, &mut tracker)?;
        Ok(SendHandle { tracker })
    }
}

/// The panic of a `send` to a poisoned store.
#[cold]
#[track_caller]
fn refuse(poisoned: &StorePoisoned) -> ! {
    panic!("Store::send refused an action: {poisoned}")
}

/// Why a poisoned [`Store`] refuses actions: its reducer panicked, so its state may be half-updated.
///
/// Returned by [`Store::try_send`]; [`Store::send`] panics with the same text. The store does not recover:
/// fix the reducer, and build a new store (from a state you trust) to go on.
#[derive(Debug, Clone, thiserror::Error)]
#[error(
    "the store is poisoned: its reducer panicked while reducing an action of type `{action_type}` {origin}\n\
     panic message: {panic_message}\n\
     the store refuses every action since, because the panic may have left its state half-updated\n\
     fix the reducer so that it cannot panic, then build a new store"
)]
pub struct StorePoisoned {
    action_type: &'static str,
    origin: ActionOrigin,
    panic_message: Arc<str>,
}

impl StorePoisoned {
    /// The reducer's action type (`std::any::type_name`), e.g. `my_app::CartAction`.
    #[must_use]
    pub fn action_type(&self) -> &'static str {
        self.action_type
    }

    /// Who gave the store the action the reducer panicked on.
    #[must_use]
    pub fn origin(&self) -> ActionOrigin {
        self.origin
    }

    /// The panic's message (its payload, when that is a string).
    #[must_use]
    pub fn panic_message(&self) -> &str {
        &self.panic_message
    }
}

/// Who gave a [`Store`] an action: its caller, or one of its own effects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ActionOrigin {
    /// The action passed to [`Store::send`] or [`Store::try_send`].
    Send,
    /// An action an effect fed back: an [`Effect::Send`], an action a task sent through its
    /// [`ActionSink`], the reply to an event store request.
    Effect,
}

impl fmt::Display for ActionOrigin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Send => "sent by the store's caller",
            Self::Effect => "fed back by one of its effects",
        })
    }
}

impl<R: Reducer> Store<R> {
    /// Reads the state: `store.state(|s| s.count)`.
    ///
    /// `read` runs under the state lock, so keep it short and do not call the store from it.
    pub fn state<T>(&self, read: impl FnOnce(&R::State) -> T) -> T {
        read(&self.inner.lock_state())
    }

    /// Cancels every effect that is running and makes the store ignore further actions.
    ///
    /// Tasks stop at their next `.await`. Event store writes that have started (append, save snapshot, save
    /// checkpoint) are the exception: they run to their end, and only their replies are dropped.
    /// [`SendHandle::finished`] and [`Store::idle`] resolve once every task has stopped or ended, writes
    /// included.
    pub fn shutdown(&self) {
        self.inner.shut_down();
    }

    /// Whether [`Store::shutdown`] has been called, or the store has [poisoned](Store::is_poisoned) itself.
    #[must_use]
    pub fn is_shut_down(&self) -> bool {
        self.inner.shut_down.load(Ordering::Acquire)
    }

    /// Whether the reducer has panicked: the store then refuses every action (see [`Store::try_send`]).
    #[must_use]
    pub fn is_poisoned(&self) -> bool {
        self.inner.poisoned.get().is_some()
    }

    /// How many effect tasks are running now (across all sends).
    #[must_use]
    pub fn effects_in_flight(&self) -> usize {
        self.inner.running.count()
    }

    /// Waits until no effect task is running.
    pub async fn idle(&self) {
        self.inner.running.wait_idle().await;
    }

    /// The clock that drives [`Effect::Delay`].
    #[must_use]
    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.inner.clock
    }

    /// The event store that [`Effect::EventStore`] runs against, if the store has one.
    #[must_use]
    pub fn event_store(&self) -> Option<&Arc<dyn EventStore>> {
        self.inner.event_store.as_ref()
    }

    /// The environment the reducer receives.
    #[must_use]
    pub fn environment(&self) -> &R::Environment {
        &self.inner.environment
    }
}

impl<R> StoreBuilder<R>
where
    R: Reducer + Send + Sync + 'static,
    R::State: Send + 'static,
    R::Action: Send + 'static,
    R::Environment: Send + Sync + 'static,
{
    /// The event store that [`Effect::EventStore`] operations run against.
    #[must_use]
    pub fn event_store(mut self, event_store: Arc<dyn EventStore>) -> Self {
        self.requests = Some(Arc::new(MeasuredRequests(Arc::clone(&event_store))));
        self.event_store = Some(event_store);
        self
    }

    /// Sends [`Effect::EventStore`] requests to `handler` instead of an event store. The `TestStore` uses
    /// this to hold each request until the test asserts it; most applications want
    /// [`StoreBuilder::event_store`].
    #[must_use]
    pub fn request_handler(mut self, handler: Arc<dyn RequestHandler>) -> Self {
        self.requests = Some(handler);
        self
    }

    /// The clock that drives [`Effect::Delay`] (default: [`SystemClock`]; tests use a test clock).
    #[must_use]
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = Some(clock);
        self
    }

    /// Builds the store.
    pub fn build(self) -> Store<R> {
        Store {
            inner: Arc::new(Inner {
                reducer: self.reducer,
                state: Mutex::new(self.state),
                environment: self.environment,
                event_store: self.event_store,
                requests: self.requests,
                clock: self.clock.unwrap_or_else(|| Arc::new(SystemClock)),
                runtime: Handle::try_current().ok(),
                cancellations: Arc::default(),
                shutdown: CancellationToken::new(),
                shut_down: AtomicBool::new(false),
                poisoned: OnceLock::new(),
                running: Tracker::root(),
            }),
        }
    }
}

impl SendHandle {
    /// Waits until every effect this send started has finished, including the effects of actions those
    /// effects fed back (cascades). Resolves at once when the send started no task.
    pub async fn finished(&self) {
        if let Some(tracker) = &self.tracker {
            tracker.wait_idle().await;
        }
    }

    /// Whether every effect this send started has finished.
    #[must_use]
    pub fn is_finished(&self) -> bool {
        self.tracker.as_ref().is_none_or(|t| t.count() == 0)
    }
}

/// Where an effect runs: the tracker its tasks count against and the innermost cancellable scope.
#[derive(Clone, Default)]
struct Ctx {
    tracker: Option<Arc<Tracker>>,
    scope: Option<Arc<CancelScope>>,
}

impl Ctx {
    fn token<'a>(&'a self, store_token: &'a CancellationToken) -> &'a CancellationToken {
        self.scope.as_ref().map_or(store_token, |scope| &scope.token)
    }
}

impl<R: Reducer> Inner<R> {
    fn lock_state(&self) -> MutexGuard<'_, R::State> {
        // Reducer panics are caught inside the lock (and poison the store instead), so the lock is poisoned
        // only by a panic in a `state` reader; the state is intact then.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn shut_down(&self) {
        self.shut_down.store(true, Ordering::Release);
        self.shutdown.cancel();
    }
}

impl<R> Inner<R>
where
    R: Reducer + Send + Sync + 'static,
    R::State: Send + 'static,
    R::Action: Send + 'static,
    R::Environment: Send + Sync + 'static,
{
    /// Reduces `action`, then every action its effects send synchronously, in FIFO order (as TCA does).
    /// `tracker` is created the first time an effect needs a task.
    ///
    /// # Errors
    /// The store is poisoned; the action (and those queued behind it) were dropped.
    fn process(
        self: &Arc<Self>,
        action: R::Action,
        caller: Caller,
        tracker: &mut Option<Arc<Tracker>>,
    ) -> Result<(), StorePoisoned> {
        let mut queue = VecDeque::new();
        self.drain(Some(action), &mut queue, tracker, caller)
    }

    /// Reduces `next`, then the queue, until both are empty. A reducer panic poisons the store (see
    /// [`Inner::stopped`]); an action that finds the store poisoned is not reduced.
    ///
    /// # Errors
    /// The store is poisoned (it may have been on another thread, before this action got the lock).
    fn drain(
        self: &Arc<Self>,
        mut next: Option<R::Action>,
        queue: &mut VecDeque<R::Action>,
        tracker: &mut Option<Arc<Tracker>>,
        caller: Caller,
    ) -> Result<(), StorePoisoned> {
        // The action `send` was given came from its caller; every action after it was fed back by an effect.
        let mut origin = match caller {
            Caller::Send => ActionOrigin::Send,
            Caller::Effect => ActionOrigin::Effect,
        };
        while let Some(action) = next.take().or_else(|| queue.pop_front()) {
            let origin = std::mem::replace(&mut origin, ActionOrigin::Effect);
            let mut panicked = None;
            let reduced = {
                let mut state = self.lock_state();
                // Checked under the lock, so that no action is reduced after a panic, even one that waited
                // for the lock on another thread while the reducer panicked; recorded under it for the same
                // reason.
                if self.poisoned.get().is_some() {
                    None
                } else {
                    match panic::catch_unwind(AssertUnwindSafe(|| {
                        self.reducer.reduce(&mut state, action, &self.environment)
                    })) {
                        Ok(effect) => Some(effect),
                        Err(payload) => {
                            self.poison(payload.as_ref(), origin);
                            panicked = Some(payload);
                            None
                        }
                    }
                }
            };
            let Some(effect) = reduced else {
                return Err(self.stopped(panicked, caller));
            };
            if effect.is_none() {
                continue;
            }
            if tracker.is_none() && needs_task(&effect) {
                *tracker = Some(Tracker::child(&self.running));
            }
            let ctx = Ctx { tracker: tracker.clone(), scope: None };
            self.start(effect, &ctx, queue);
        }
        Ok(())
    }

    /// Records the reducer's panic as the store's poison; called under the state lock.
    #[cold]
    fn poison(&self, payload: &(dyn Any + Send), origin: ActionOrigin) {
        self.poisoned.get_or_init(|| StorePoisoned {
            action_type: std::any::type_name::<R::Action>(),
            origin,
            panic_message: panic_message(payload).into(),
        });
    }

    /// Why `drain` stopped: the reducer panicked (`panicked` holds the payload) or the store was poisoned
    /// already. After a panic, shuts the store down (every effect is cancelled except writes in flight,
    /// which complete), then re-raises the panic in `send`, whose caller sees it, or logs it in an effect,
    /// which has no caller to tell. A refused action is logged in an effect and returned to `send`.
    #[cold]
    #[inline(never)]
    fn stopped(&self, panicked: Option<Box<dyn Any + Send>>, caller: Caller) -> StorePoisoned {
        let Some(poisoned) = self.poisoned.get().cloned() else {
            unreachable!("drain stops only when the store is poisoned")
        };
        match (panicked, caller) {
            (Some(payload), Caller::Send) => {
                self.shut_down();
                panic::resume_unwind(payload)
            }
            (Some(_), Caller::Effect) => {
                self.shut_down();
                tracing::error!(
                    error = %poisoned,
                    "the reducer panicked while reducing an action fed back by an effect; the store is poisoned: \
                     its effects are cancelled (writes in flight complete) and it refuses every further action"
                );
            }
            (None, Caller::Effect) => report_dropped(&poisoned),
            (None, Caller::Send) => {}
        }
        poisoned
    }

    /// Runs `effect` and the actions it sends synchronously, from inside a task.
    fn run_in_task(self: &Arc<Self>, effect: Effect<R::Action>, ctx: &Ctx) {
        if ctx.token(&self.shutdown).is_cancelled() {
            return;
        }
        let mut queue = VecDeque::new();
        self.start(effect, ctx, &mut queue);
        let mut tracker = ctx.tracker.clone();
        // A poisoned store has been reported by `drain`; a task has no caller to return the error to.
        let _ = self.drain(None, &mut queue, &mut tracker, Caller::Effect);
    }

    /// Starts `effect`: inline parts now (sent actions go to `queue`), the rest as tasks.
    fn start(self: &Arc<Self>, effect: Effect<R::Action>, ctx: &Ctx, queue: &mut VecDeque<R::Action>) {
        match effect {
            Effect::None => {}
            Effect::Send(action) => queue.push_back(action),
            Effect::Merge(effects) => {
                for effect in effects {
                    self.start(effect, ctx, queue);
                }
            }
            Effect::Cancel(id) => self.cancellations.cancel(&id),
            Effect::Cancellable { id, cancel_in_flight, effect } => {
                if cancel_in_flight {
                    self.cancellations.cancel(&id);
                }
                let scope = CancelScope::open(&self.cancellations, id, ctx.token(&self.shutdown), ctx.scope.clone());
                let scoped = Ctx { tracker: ctx.tracker.clone(), scope: Some(scope) };
                self.start(*effect, &scoped, queue);
            }
            Effect::Run(task) => self.start_task(task, ctx),
            Effect::Delay { duration, effect } => self.start_delayed(duration, *effect, ctx, queue),
            Effect::Concat(effects) => self.start_concat(effects, ctx),
            Effect::EventStore(operation) => self.start_operation(operation, ctx, queue),
        }
    }

    /// The context a task runs in: always with a tracker (the store's, if the caller had none).
    fn task_ctx(&self, ctx: &Ctx) -> Ctx {
        Ctx {
            tracker: Some(ctx.tracker.clone().unwrap_or_else(|| Arc::clone(&self.running))),
            scope: ctx.scope.clone(),
        }
    }

    /// The sink a task sends actions through: each action is reduced at once, under the task's tracker
    /// (so waits include its cascade) but outside its cancellable scope.
    fn sink(self: &Arc<Self>, ctx: &Ctx) -> ActionSink<R::Action> {
        let store = Arc::downgrade(self);
        let token = ctx.token(&self.shutdown).clone();
        let tracker = ctx.tracker.clone();
        ActionSink::new(move |action| {
            if token.is_cancelled() {
                // Poisoning cancels every token, so a poisoned store's feedback ends up here.
                match store.upgrade().as_ref().and_then(|store| store.poisoned.get()) {
                    Some(poisoned) => report_dropped(poisoned),
                    None => tracing::trace!("an action sent by a cancelled effect was dropped"),
                }
                return;
            }
            if let Some(store) = store.upgrade() {
                let mut tracker = tracker.clone();
                // A refusal has been reported by `drain`; an effect has no caller to return it to.
                let _ = store.process(action, Caller::Effect, &mut tracker);
            }
        })
    }

    fn start_task(self: &Arc<Self>, task: Task<R::Action>, ctx: &Ctx) {
        let ctx = self.task_ctx(ctx);
        let sink = self.sink(&ctx);
        self.spawn(&ctx, async move {
            if let Err(error) = task.start(sink).await {
                tracing::error!(error = %error, error_debug = ?error, "an effect task failed; the store keeps running");
            }
        });
    }

    /// Starts `effect` after `duration`, opening the cancellable scopes inside it now rather than after the
    /// wait: `Delay { Cancellable { e } }` starts as `Cancellable { Delay { e } }`, so `Effect::cancel`
    /// reaches the effect during its delay too (and `cancel_in_flight` acts when the delay starts). A
    /// `Merge` that holds a scope is split into one delay per branch; nested delays add up.
    fn start_delayed(
        self: &Arc<Self>,
        duration: Duration,
        effect: Effect<R::Action>,
        ctx: &Ctx,
        queue: &mut VecDeque<R::Action>,
    ) {
        match effect {
            Effect::Cancellable { id, cancel_in_flight, effect } => {
                let delayed = Box::new(Effect::Delay { duration, effect });
                self.start(Effect::Cancellable { id, cancel_in_flight, effect: delayed }, ctx, queue);
            }
            Effect::Merge(effects) if effects.iter().any(opens_scope) => {
                for effect in effects {
                    self.start_delayed(duration, effect, ctx, queue);
                }
            }
            Effect::Delay { duration: more, effect } => {
                self.start_delayed(duration.saturating_add(more), *effect, ctx, queue);
            }
            effect => self.start_delay(duration, effect, ctx),
        }
    }

    fn start_delay(self: &Arc<Self>, duration: Duration, effect: Effect<R::Action>, ctx: &Ctx) {
        let ctx = self.task_ctx(ctx);
        // Called now, so the delay is measured from the moment the effect started.
        let sleep = self.clock.sleep(duration);
        let store = Arc::downgrade(self);
        let task_ctx = ctx.clone();
        self.spawn(&ctx, async move {
            sleep.await;
            if let Some(store) = store.upgrade() {
                store.run_in_task(effect, &task_ctx);
            }
        });
    }

    fn start_concat(self: &Arc<Self>, effects: Vec<Effect<R::Action>>, ctx: &Ctx) {
        let ctx = self.task_ctx(ctx);
        let store = Arc::downgrade(self);
        let task_ctx = ctx.clone();
        self.spawn(&ctx, async move {
            for effect in effects {
                let Some(store) = store.upgrade() else { return };
                // Each step gets its own tracker (counted in the concat's too), and the next step starts
                // only once everything the step started, cascades included, has finished.
                let step = Tracker::child(task_ctx.tracker.as_ref().unwrap_or(&store.running));
                let step_ctx = Ctx { tracker: Some(Arc::clone(&step)), scope: task_ctx.scope.clone() };
                store.run_in_task(effect, &step_ctx);
                drop(store);
                step.wait_idle().await;
            }
        });
    }

    fn start_operation(
        self: &Arc<Self>,
        operation: EventStoreOperation<R::Action>,
        ctx: &Ctx,
        queue: &mut VecDeque<R::Action>,
    ) {
        let (request, on_reply) = operation.into_parts();
        let Some(requests) = self.requests.clone() else {
            // Never a silent no-op: the reducer hears at once that its request could not run.
            let error = EventStoreError::NoEventStore { request: request.to_string() };
            tracing::error!(%error, "an event store request was refused");
            queue.extend(on_reply(Err(error)));
            return;
        };
        let ctx = self.task_ctx(ctx);
        let sink = self.sink(&ctx);
        let is_write = request.is_write();
        let work = async move {
            let reply = requests.handle(request).await;
            // The sink drops the action if the effect was cancelled meanwhile: only the reply is lost.
            if let Some(action) = on_reply(reply) {
                sink.send(action);
            }
        };
        if is_write {
            // A write that has started runs to the end even when its effect is cancelled or the store
            // shuts down or is dropped, so its outcome is never ambiguous.
            self.spawn_uncancellable(&ctx, work);
        } else {
            self.spawn(&ctx, work);
        }
    }

    /// Spawns `work` under `ctx`: it counts against the tracker, keeps the scope registered, stops when the
    /// scope (or the store) is cancelled, and has its panic reported instead of lost.
    fn spawn(&self, ctx: &Ctx, work: impl Future<Output = ()> + Send + 'static) {
        self.spawn_task(ctx, work, true);
    }

    /// Like [`Inner::spawn`], but `work` runs to its end even when the scope or the store is cancelled.
    fn spawn_uncancellable(&self, ctx: &Ctx, work: impl Future<Output = ()> + Send + 'static) {
        self.spawn_task(ctx, work, false);
    }

    fn spawn_task(&self, ctx: &Ctx, work: impl Future<Output = ()> + Send + 'static, cancellable: bool) {
        let token = ctx.token(&self.shutdown).clone();
        let guard = ctx.tracker.as_ref().unwrap_or(&self.running).enter();
        let scope = ctx.scope.clone();
        let task = async move {
            // Dropped in reverse order: the scope is unregistered before the tracker can report idle.
            let _guard = guard;
            let _scope = scope;
            let work = AssertUnwindSafe(work).catch_unwind();
            let outcome = if cancellable {
                tokio::select! {
                    biased;
                    () = token.cancelled() => return,
                    outcome = work => outcome,
                }
            } else {
                work.await
            };
            if let Err(panic) = outcome {
                tracing::error!(
                    panic = panic_message(panic.as_ref()),
                    "an effect task panicked; the store keeps running"
                );
            }
        };
        match Handle::try_current().ok().or_else(|| self.runtime.clone()) {
            Some(runtime) => {
                runtime.spawn(task);
            }
            None => match fallback_runtime() {
                Ok(runtime) => {
                    runtime.spawn(task);
                }
                Err(error) => tracing::error!(
                    %error,
                    "an effect needs a tokio runtime; the action was sent outside one, the store was not built \
                     inside one, and the fallback runtime could not be started, so the effect was not run; \
                     send from inside a tokio runtime or build the store inside one"
                ),
            },
        }
    }
}

impl<R: Reducer> Drop for Inner<R> {
    fn drop(&mut self) {
        self.shut_down.store(true, Ordering::Release);
        self.shutdown.cancel();
    }
}

/// The runtime for effects started where there is none: an action sent from a plain thread to a store that
/// was not built inside a tokio runtime either. Started on first use (one worker thread, named
/// `composable-rust-effects`, with the time driver for delays) and kept for the life of the process: being
/// in a `static`, it is never dropped, so its effects are never cut off by a runtime shutting down. Its
/// one worker is shared by every such store; an effect that blocks it delays the others.
fn fallback_runtime() -> Result<&'static Handle, &'static str> {
    static FALLBACK: OnceLock<Result<Runtime, String>> = OnceLock::new();
    FALLBACK
        .get_or_init(|| {
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .thread_name("composable-rust-effects")
                .enable_all()
                .build()
                .map_err(|error| format!("could not start the fallback tokio runtime: {error}"))
        })
        .as_ref()
        .map(Runtime::handle)
        .map_err(String::as_str)
}

/// Whether starting `effect` spawns a task (and therefore needs a tracker).
fn needs_task<A>(effect: &Effect<A>) -> bool {
    match effect {
        Effect::None | Effect::Send(_) | Effect::Cancel(_) => false,
        Effect::Merge(effects) => effects.iter().any(needs_task),
        Effect::Cancellable { effect, .. } => needs_task(effect),
        Effect::Run(_) | Effect::Delay { .. } | Effect::Concat(_) | Effect::EventStore(_) => true,
    }
}

/// Where the reducer runs: inside [`Store::send`], whose caller sees a reducer panic re-raised, or inside
/// an effect, which has no caller to tell and logs it.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Caller {
    Send,
    Effect,
}

/// Logs an action fed back by an effect that a poisoned store dropped.
fn report_dropped(poisoned: &StorePoisoned) {
    tracing::error!(
        error = %poisoned,
        "an action of type {} fed back by an effect was dropped, not reduced: the store is poisoned",
        poisoned.action_type
    );
}

/// Whether starting `effect` opens a cancellable scope before any wait (so a delay around it must open the
/// scope first).
fn opens_scope<A>(effect: &Effect<A>) -> bool {
    match effect {
        Effect::Cancellable { .. } => true,
        Effect::Merge(effects) => effects.iter().any(opens_scope),
        Effect::Delay { effect, .. } => opens_scope(effect),
        Effect::None
        | Effect::Send(_)
        | Effect::Cancel(_)
        | Effect::Run(_)
        | Effect::Concat(_)
        | Effect::EventStore(_) => false,
    }
}

fn panic_message(payload: &(dyn Any + Send)) -> &str {
    payload
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("(a panic payload that is not a string)")
}

/// Counts running tasks; counts propagate to the parent, so a send's tracker is part of the store's.
///
/// A whole chain (a concat step, its send, the store) is updated under one lock shared by every tracker of a
/// store, and counts are read under it, so observers never see a send finished while the store still counts
/// its last task (or the reverse).
struct Tracker {
    running: AtomicUsize,
    idle: Notify,
    parent: Option<Arc<Tracker>>,
    chain: Arc<Mutex<()>>,
}

impl Tracker {
    fn root() -> Arc<Self> {
        Arc::new(Self { running: AtomicUsize::new(0), idle: Notify::new(), parent: None, chain: Arc::default() })
    }

    fn child(parent: &Arc<Self>) -> Arc<Self> {
        Arc::new(Self {
            running: AtomicUsize::new(0),
            idle: Notify::new(),
            parent: Some(Arc::clone(parent)),
            chain: Arc::clone(&parent.chain),
        })
    }

    fn lock_chain(&self) -> MutexGuard<'_, ()> {
        self.chain.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn count(&self) -> usize {
        let _chain = self.lock_chain();
        self.running.load(Ordering::Acquire)
    }

    fn enter(self: &Arc<Self>) -> TaskGuard {
        let _chain = self.lock_chain();
        let mut tracker = Some(self);
        while let Some(t) = tracker {
            t.running.fetch_add(1, Ordering::AcqRel);
            tracker = t.parent.as_ref();
        }
        TaskGuard(Arc::clone(self))
    }

    fn leave(&self) {
        {
            let _chain = self.lock_chain();
            let mut tracker = Some(self);
            while let Some(t) = tracker {
                t.running.fetch_sub(1, Ordering::AcqRel);
                tracker = t.parent.as_deref();
            }
        }
        // Woken after the whole chain is updated; a spurious wake-up only makes a waiter check again.
        let mut tracker = Some(self);
        while let Some(t) = tracker {
            if t.running.load(Ordering::Acquire) == 0 {
                t.idle.notify_waiters();
            }
            tracker = t.parent.as_deref();
        }
    }

    async fn wait_idle(&self) {
        loop {
            let notified = self.idle.notified();
            tokio::pin!(notified);
            // Registered before the check, so a task finishing in between still wakes us.
            notified.as_mut().enable();
            if self.count() == 0 {
                return;
            }
            notified.await;
        }
    }
}

/// Held by a running task; dropping it leaves the tracker and all of the tracker's ancestors.
struct TaskGuard(Arc<Tracker>);

impl Drop for TaskGuard {
    fn drop(&mut self) {
        self.0.leave();
    }
}

/// The running cancellable scopes, by id. A scope may be registered more than once under one id (every
/// `send` that starts it adds one); `Cancel` cancels them all.
#[derive(Default)]
struct Cancellations {
    next_key: AtomicU64,
    by_id: Mutex<HashMap<EffectId, Vec<(u64, CancellationToken)>>>,
}

impl Cancellations {
    fn lock(&self) -> MutexGuard<'_, HashMap<EffectId, Vec<(u64, CancellationToken)>>> {
        self.by_id.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn cancel(&self, id: &EffectId) {
        let tokens = self.lock().remove(id);
        for (_, token) in tokens.into_iter().flatten() {
            token.cancel();
        }
    }

    fn unregister(&self, id: &EffectId, key: u64) {
        let mut by_id = self.lock();
        if let Some(tokens) = by_id.get_mut(id) {
            tokens.retain(|(k, _)| *k != key);
            if tokens.is_empty() {
                by_id.remove(id);
            }
        }
    }
}

/// One started `Cancellable`: registered under its id until the last task inside it ends.
struct CancelScope {
    id: EffectId,
    key: u64,
    token: CancellationToken,
    registry: Arc<Cancellations>,
    /// Keeps the enclosing scope registered while this one runs, so cancelling it still reaches us.
    _parent: Option<Arc<CancelScope>>,
}

impl CancelScope {
    fn open(
        registry: &Arc<Cancellations>,
        id: EffectId,
        parent_token: &CancellationToken,
        parent: Option<Arc<CancelScope>>,
    ) -> Arc<Self> {
        let token = parent_token.child_token();
        let key = registry.next_key.fetch_add(1, Ordering::Relaxed);
        registry.lock().entry(id.clone()).or_default().push((key, token.clone()));
        Arc::new(Self { id, key, token, registry: Arc::clone(registry), _parent: parent })
    }
}

impl Drop for CancelScope {
    fn drop(&mut self) {
        self.registry.unregister(&self.id, self.key);
    }
}

impl<R: Reducer> Clone for Store<R> {
    fn clone(&self) -> Self {
        Self { inner: Arc::clone(&self.inner) }
    }
}

impl<R: Reducer> fmt::Debug for Store<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Store")
            .field("clock", &self.inner.clock)
            .field("event_store", &self.inner.event_store)
            .field("effects_in_flight", &self.inner.running.count())
            .field("shut_down", &self.inner.shut_down.load(Ordering::Acquire))
            .field("poisoned", &self.inner.poisoned.get().is_some())
            .finish_non_exhaustive()
    }
}

impl<R: Reducer> fmt::Debug for StoreBuilder<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StoreBuilder")
            .field("clock", &self.clock)
            .field("event_store", &self.event_store)
            .finish_non_exhaustive()
    }
}

impl fmt::Debug for SendHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SendHandle").field("finished", &self.is_finished()).finish()
    }
}
