//! Two counters built from one child reducer: the smallest complete composable-rust program.
//!
//! - [`CounterReducer`] is the child: increment, decrement, and "increment later", a delayed effect that
//!   can be cancelled before it fires.
//! - [`app`] attaches two of them to the parent's own logic with [`ReducerExt::scope`] (each child sees
//!   only its own state and actions, selected with [`case!`]); the parent adds an action that resets both
//!   and cancels their pending increments.
//!
//! The tests in `tests/counter.rs` drive it with a `TestStore`; `src/main.rs` runs it with a real `Store`.
//!
//! One thing composition asks of the child: the id it cancels its timer by must differ between the two
//! instances, or cancelling one counter's timer would cancel the other's. So the id is a field of
//! [`CounterReducer`], given by the parent.

use std::time::Duration;

use composable_rust_core::{Effect, EffectId, Reducer, ReducerExt, case, reducer_fn};

/// The state of one counter.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Counter {
    /// The current count.
    pub count: i64,
    /// Whether a delayed increment is waiting to fire.
    pub pending: bool,
}

/// What can happen to one counter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CounterAction {
    /// Add one now.
    Increment,
    /// Subtract one now.
    Decrement,
    /// Add one after the counter's delay; pressing it again restarts the wait.
    IncrementLater,
    /// Cancel a pending delayed increment.
    CancelLater,
    /// The delay has passed (sent by the delayed effect, not by users).
    DelayElapsed,
}

/// The child reducer: one counter with a cancellable delayed increment.
#[derive(Debug, Clone)]
pub struct CounterReducer {
    timer: EffectId,
    delay: Duration,
}

impl CounterReducer {
    /// A counter whose delayed increments wait `delay` and are cancelled by `timer`.
    #[must_use]
    pub fn new(timer: EffectId, delay: Duration) -> Self {
        Self { timer, delay }
    }

    /// The id under which this counter's delayed increment runs.
    #[must_use]
    pub fn timer(&self) -> &EffectId {
        &self.timer
    }
}

impl Reducer for CounterReducer {
    type State = Counter;
    type Action = CounterAction;
    type Environment = ();

    fn reduce(&self, state: &mut Counter, action: CounterAction, _env: &()) -> Effect<CounterAction> {
        match action {
            CounterAction::Increment => {
                state.count += 1;
                Effect::None
            }
            CounterAction::Decrement => {
                state.count -= 1;
                Effect::None
            }
            CounterAction::IncrementLater => {
                state.pending = true;
                Effect::delay(self.delay, CounterAction::DelayElapsed).cancel_in_flight(self.timer.clone())
            }
            CounterAction::CancelLater => {
                state.pending = false;
                Effect::cancel(self.timer.clone())
            }
            CounterAction::DelayElapsed => {
                state.pending = false;
                state.count += 1;
                Effect::None
            }
        }
    }
}

/// The parent state: two counters side by side.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct App {
    /// The left counter.
    pub left: Counter,
    /// The right counter.
    pub right: Counter,
}

/// What can happen in the app: an action for one of the counters, or a reset of both.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AppAction {
    /// An action for the left counter.
    Left(CounterAction),
    /// An action for the right counter.
    Right(CounterAction),
    /// Set both counters to zero and cancel their pending increments.
    ResetAll,
}

/// The id of the left counter's delayed increment.
pub const LEFT_TIMER: &str = "counter/left/timer";
/// The id of the right counter's delayed increment.
pub const RIGHT_TIMER: &str = "counter/right/timer";

/// The app reducer: each counter scoped to its half of the state and its case of the action, plus the
/// parent's own logic for [`AppAction::ResetAll`]. Delayed increments wait `delay`.
pub fn app(delay: Duration) -> impl Reducer<State = App, Action = AppAction, Environment = ()> + Send + Sync + 'static {
    let parent = reducer_fn(|app: &mut App, action: AppAction, _env: &()| match action {
        AppAction::ResetAll => {
            *app = App::default();
            Effect::merge([Effect::cancel(EffectId::new(LEFT_TIMER)), Effect::cancel(EffectId::new(RIGHT_TIMER))])
        }
        AppAction::Left(_) | AppAction::Right(_) => Effect::None,
    });
    // Each child runs before the parent; neither sees the other's actions.
    parent
        .scope(
            |app| &mut app.left,
            case!(AppAction::Left),
            |env| env,
            CounterReducer::new(EffectId::new(LEFT_TIMER), delay),
        )
        .scope(
            |app| &mut app.right,
            case!(AppAction::Right),
            |env| env,
            CounterReducer::new(EffectId::new(RIGHT_TIMER), delay),
        )
}

#[cfg(test)]
mod tests {
    use super::*;

    // The reducer is a plain function: effects are values, so they can be checked without a runtime.
    #[test]
    fn increment_later_returns_a_restartable_delay() {
        let reducer = CounterReducer::new(EffectId::new("t"), Duration::from_secs(1));
        let mut counter = Counter::default();
        let effect = reducer.reduce(&mut counter, CounterAction::IncrementLater, &());
        assert!(counter.pending);
        assert_eq!(
            effect,
            Effect::delay(Duration::from_secs(1), CounterAction::DelayElapsed).cancel_in_flight(EffectId::new("t"))
        );
    }

    #[test]
    fn the_parent_lifts_child_effects_into_its_own_actions() {
        let mut state = App::default();
        let effect =
            app(Duration::from_secs(1)).reduce(&mut state, AppAction::Right(CounterAction::IncrementLater), &());
        assert_eq!(
            effect,
            Effect::delay(Duration::from_secs(1), AppAction::Right(CounterAction::DelayElapsed))
                .cancel_in_flight(EffectId::new(RIGHT_TIMER))
        );
        assert!(state.right.pending && !state.left.pending);
    }
}
