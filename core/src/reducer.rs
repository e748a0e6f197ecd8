//! [`Reducer`]: the pure function at the heart of an application, and the simplest ways to build one.
//!
//! Composition of reducers (scoping a child to part of the state, optional children, collections)
//! lives in [`crate::compose`].

use std::fmt;
use std::marker::PhantomData;

use crate::effect::Effect;

/// Application logic: given the state, an action and the environment, mutate the state and describe
/// the work to do next as an [`Effect`].
///
/// A reducer performs no I/O and reads no clock or random source except through its environment, so it
/// can be tested without a runtime and replayed deterministically.
///
/// ```
/// use composable_rust_core::{Effect, Reducer};
///
/// #[derive(Debug, Default, Clone, PartialEq)]
/// struct Counter { count: i64 }
///
/// #[derive(Debug, Clone, PartialEq)]
/// enum Action { Increment, Decrement }
///
/// struct CounterReducer;
///
/// impl Reducer for CounterReducer {
///     type State = Counter;
///     type Action = Action;
///     type Environment = ();
///
///     fn reduce(&self, state: &mut Counter, action: Action, _env: &()) -> Effect<Action> {
///         match action {
///             Action::Increment => state.count += 1,
///             Action::Decrement => state.count -= 1,
///         }
///         Effect::None
///     }
/// }
///
/// let mut state = Counter::default();
/// let effect = CounterReducer.reduce(&mut state, Action::Increment, &());
/// assert_eq!(state.count, 1);
/// assert!(effect.is_none());
/// ```
pub trait Reducer {
    /// The state this reducer owns.
    type State;
    /// The actions it handles.
    type Action;
    /// Its dependencies: clocks, id generators, clients. Effects capture what they need from it.
    type Environment;

    /// Handles one action: mutates `state` and returns the effects to run.
    fn reduce(&self, state: &mut Self::State, action: Self::Action, env: &Self::Environment) -> Effect<Self::Action>;
}

impl<R: Reducer + ?Sized> Reducer for Box<R> {
    type State = R::State;
    type Action = R::Action;
    type Environment = R::Environment;

    fn reduce(&self, state: &mut Self::State, action: Self::Action, env: &Self::Environment) -> Effect<Self::Action> {
        (**self).reduce(state, action, env)
    }
}

impl<R: Reducer + ?Sized> Reducer for std::sync::Arc<R> {
    type State = R::State;
    type Action = R::Action;
    type Environment = R::Environment;

    fn reduce(&self, state: &mut Self::State, action: Self::Action, env: &Self::Environment) -> Effect<Self::Action> {
        (**self).reduce(state, action, env)
    }
}

/// A reducer made from a function; see [`reducer_fn`].
pub struct FnReducer<F, S, A, E> {
    f: F,
    _types: PhantomData<fn(&mut S, A, &E)>,
}

/// Makes a reducer from a function or closure, handy in tests and small programs.
///
/// ```
/// use composable_rust_core::{reducer_fn, Effect, Reducer};
///
/// let double = reducer_fn(|n: &mut i32, by: i32, _env: &()| {
///     *n *= by;
///     Effect::<i32>::None
/// });
/// let mut n = 3;
/// let _ = double.reduce(&mut n, 2, &());
/// assert_eq!(n, 6);
/// ```
pub fn reducer_fn<S, A, E, F>(f: F) -> FnReducer<F, S, A, E>
where
    F: Fn(&mut S, A, &E) -> Effect<A>,
{
    FnReducer { f, _types: PhantomData }
}

impl<F, S, A, E> Reducer for FnReducer<F, S, A, E>
where
    F: Fn(&mut S, A, &E) -> Effect<A>,
{
    type State = S;
    type Action = A;
    type Environment = E;

    fn reduce(&self, state: &mut S, action: A, env: &E) -> Effect<A> {
        (self.f)(state, action, env)
    }
}

impl<F, S, A, E> fmt::Debug for FnReducer<F, S, A, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("FnReducer(..)")
    }
}

/// Two reducers over the same state and actions, run one after the other; their effects are merged.
///
/// The action is cloned for the first reducer.
#[derive(Debug, Clone)]
pub struct Combine<R1, R2> {
    first: R1,
    second: R2,
}

impl<R1, R2> Combine<R1, R2> {
    /// Runs `first`, then `second`, for every action.
    pub fn new(first: R1, second: R2) -> Self {
        Self { first, second }
    }
}

impl<R1, R2> Reducer for Combine<R1, R2>
where
    R1: Reducer,
    R1::Action: Clone,
    R2: Reducer<State = R1::State, Action = R1::Action, Environment = R1::Environment>,
{
    type State = R1::State;
    type Action = R1::Action;
    type Environment = R1::Environment;

    fn reduce(&self, state: &mut Self::State, action: Self::Action, env: &Self::Environment) -> Effect<Self::Action> {
        let first = self.first.reduce(state, action.clone(), env);
        let second = self.second.reduce(state, action, env);
        Effect::merge([first, second])
    }
}
