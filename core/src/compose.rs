//! Reducer composition: build a parent from children without cloning child state.
//!
//! - [`Scope`]: a child reducer runs on one field of the parent state for one case of the parent action.
//! - [`IfLet`]: a parent plus an optional child; the child runs only while its state is `Some`, and its
//!   in-flight effects are cancelled when the parent sets it to `None`.
//! - [`ForEach`]: a parent plus a collection of children addressed by id; removing a child cancels its
//!   effects.
//!
//! An [`ActionCase`] says how a child action sits inside a parent action; the [`case!`](crate::case)
//! macro builds one from an enum variant.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use crate::effect::{Effect, EffectId};
use crate::reducer::Reducer;

type Extract<P, C> = Arc<dyn Fn(P) -> Option<C> + Send + Sync>;
type Embed<C, P> = Arc<dyn Fn(C) -> P + Send + Sync>;
type StateLens<P, C> = Box<dyn Fn(&mut P) -> &mut C + Send + Sync>;
type EnvLens<P, C> = Box<dyn Fn(&P) -> &C + Send + Sync>;

/// How a child action `C` is embedded in a parent action `P`: extract it from, and wrap it into, `P`.
pub struct ActionCase<P, C> {
    extract: Extract<P, C>,
    embed: Embed<C, P>,
}

impl<P, C> ActionCase<P, C> {
    /// A case from its two directions. Most code uses [`case!`](crate::case) instead.
    pub fn new(
        extract: impl Fn(P) -> Option<C> + Send + Sync + 'static,
        embed: impl Fn(C) -> P + Send + Sync + 'static,
    ) -> Self {
        Self { extract: Arc::new(extract), embed: Arc::new(embed) }
    }

    /// The child action inside `parent`, if `parent` is this case.
    pub fn extract(&self, parent: P) -> Option<C> {
        (self.extract)(parent)
    }

    /// Wraps a child action into the parent action.
    pub fn embed(&self, child: C) -> P {
        (self.embed)(child)
    }
}

impl<P, C> Clone for ActionCase<P, C> {
    fn clone(&self) -> Self {
        Self { extract: Arc::clone(&self.extract), embed: Arc::clone(&self.embed) }
    }
}

impl<P, C> fmt::Debug for ActionCase<P, C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ActionCase(..)")
    }
}

/// Builds an [`ActionCase`] from a single-field enum variant: `case!(AppAction::Counter)`.
///
/// ```
/// use composable_rust_core::case;
///
/// #[derive(Debug, PartialEq)]
/// enum App { Counter(i32), Other }
///
/// let counter = case!(App::Counter);
/// assert_eq!(counter.extract(App::Counter(3)), Some(3));
/// assert_eq!(counter.extract(App::Other), None);
/// assert_eq!(counter.embed(4), App::Counter(4));
/// ```
#[macro_export]
macro_rules! case {
    ($variant:path) => {
        $crate::ActionCase::new(
            |parent| match parent {
                $variant(child) => ::core::option::Option::Some(child),
                #[allow(unreachable_patterns)]
                _ => ::core::option::Option::None,
            },
            $variant,
        )
    };
}

/// Runs a child reducer on part of the parent state, for one case of the parent action.
///
/// Actions of other cases are ignored (the effect is [`Effect::None`]); combine the scope with the
/// parent's own reducer using [`Combine`](crate::Combine).
pub struct Scope<R: Reducer, P, PA, E> {
    child: R,
    state: StateLens<P, R::State>,
    action: ActionCase<PA, R::Action>,
    env: EnvLens<E, R::Environment>,
}

impl<R: Reducer, P, PA, E> Scope<R, P, PA, E> {
    /// Scopes `child` to the state `state` picks, the action case `action` and the environment `env` picks.
    pub fn new(
        state: impl Fn(&mut P) -> &mut R::State + Send + Sync + 'static,
        action: ActionCase<PA, R::Action>,
        env: impl Fn(&E) -> &R::Environment + Send + Sync + 'static,
        child: R,
    ) -> Self {
        Self { child, state: Box::new(state), action, env: Box::new(env) }
    }
}

impl<R, P, PA, E> Reducer for Scope<R, P, PA, E>
where
    R: Reducer,
    R::Action: Send + 'static,
    PA: Send + 'static,
{
    type State = P;
    type Action = PA;
    type Environment = E;

    fn reduce(&self, state: &mut P, action: PA, env: &E) -> Effect<PA> {
        match self.action.extract(action) {
            Some(child_action) => {
                self.child.reduce((self.state)(state), child_action, (self.env)(env)).map_shared(&self.action.embed)
            }
            None => Effect::None,
        }
    }
}

impl<R: Reducer + fmt::Debug, P, PA, E> fmt::Debug for Scope<R, P, PA, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Scope").field("child", &self.child).finish_non_exhaustive()
    }
}

/// A parent reducer with an optional child: the child runs while its state is `Some`.
///
/// For each action, the child runs first (if the action is its case and its state exists), then the
/// parent. If the parent turns the child state from `Some` into `None`, the child's in-flight effects
/// are cancelled, so a dismissed child never receives stale results.
pub struct IfLet<Par: Reducer, Ch: Reducer> {
    parent: Par,
    child: Ch,
    state: StateLens<Par::State, Option<Ch::State>>,
    action: ActionCase<Par::Action, Ch::Action>,
    env: EnvLens<Par::Environment, Ch::Environment>,
    id: EffectId,
}

impl<Par: Reducer, Ch: Reducer> IfLet<Par, Ch> {
    /// Attaches `child` to `parent` through the optional state `state` picks and the action case `action`.
    pub fn new(
        parent: Par,
        state: impl Fn(&mut Par::State) -> &mut Option<Ch::State> + Send + Sync + 'static,
        action: ActionCase<Par::Action, Ch::Action>,
        env: impl Fn(&Par::Environment) -> &Ch::Environment + Send + Sync + 'static,
        child: Ch,
    ) -> Self {
        Self { parent, child, state: Box::new(state), action, env: Box::new(env), id: EffectId::unique("if-let") }
    }
}

impl<Par, Ch> Reducer for IfLet<Par, Ch>
where
    Par: Reducer,
    Par::Action: Clone + Send + 'static,
    Ch: Reducer,
    Ch::Action: Send + 'static,
{
    type State = Par::State;
    type Action = Par::Action;
    type Environment = Par::Environment;

    fn reduce(&self, state: &mut Self::State, action: Self::Action, env: &Self::Environment) -> Effect<Self::Action> {
        let child_effect = match (self.action.extract(action.clone()), (self.state)(state).as_mut()) {
            (Some(child_action), Some(child_state)) => self
                .child
                .reduce(child_state, child_action, (self.env)(env))
                .map_shared(&self.action.embed)
                .cancellable(self.id.clone()),
            (Some(_), None) => {
                tracing::warn!(id = %self.id, "a child action arrived while the optional child state is None; it was ignored");
                Effect::None
            }
            (None, _) => Effect::None,
        };
        let had_child = (self.state)(state).is_some();
        let parent_effect = self.parent.reduce(state, action, env);
        let cancel =
            if had_child && (self.state)(state).is_none() { Effect::cancel(self.id.clone()) } else { Effect::None };
        Effect::merge([child_effect, parent_effect, cancel])
    }
}

impl<Par: Reducer + fmt::Debug, Ch: Reducer + fmt::Debug> fmt::Debug for IfLet<Par, Ch> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IfLet").field("parent", &self.parent).field("child", &self.child).finish_non_exhaustive()
    }
}

/// A parent reducer with a collection of children, each addressed by a key.
///
/// A child action carries the key of the child it is for. The child runs first, then the parent. Children
/// the parent removes from the collection have their in-flight effects cancelled.
pub struct ForEach<Par: Reducer, Ch: Reducer, K> {
    parent: Par,
    child: Ch,
    state: StateLens<Par::State, BTreeMap<K, Ch::State>>,
    action: ActionCase<Par::Action, (K, Ch::Action)>,
    env: EnvLens<Par::Environment, Ch::Environment>,
    id: EffectId,
}

impl<Par: Reducer, Ch: Reducer, K> ForEach<Par, Ch, K> {
    /// Attaches `child` to each element of the map `state` picks; `action` carries `(key, child action)`.
    pub fn new(
        parent: Par,
        state: impl Fn(&mut Par::State) -> &mut BTreeMap<K, Ch::State> + Send + Sync + 'static,
        action: ActionCase<Par::Action, (K, Ch::Action)>,
        env: impl Fn(&Par::Environment) -> &Ch::Environment + Send + Sync + 'static,
        child: Ch,
    ) -> Self {
        Self { parent, child, state: Box::new(state), action, env: Box::new(env), id: EffectId::unique("for-each") }
    }
}

impl<Par, Ch, K> Reducer for ForEach<Par, Ch, K>
where
    Par: Reducer,
    Par::Action: Clone + Send + 'static,
    Ch: Reducer,
    Ch::Action: Send + 'static,
    K: Ord + Clone + fmt::Debug + Send + Sync + 'static,
{
    type State = Par::State;
    type Action = Par::Action;
    type Environment = Par::Environment;

    fn reduce(&self, state: &mut Self::State, action: Self::Action, env: &Self::Environment) -> Effect<Self::Action> {
        let child_effect = match self.action.extract(action.clone()) {
            Some((key, child_action)) => match (self.state)(state).get_mut(&key) {
                Some(child_state) => {
                    let embed = Arc::clone(&self.action.embed);
                    let id = self.id.child(&key);
                    self.child
                        .reduce(child_state, child_action, (self.env)(env))
                        .map(move |a| embed((key.clone(), a)))
                        .cancellable(id)
                }
                None => {
                    tracing::warn!(id = %self.id, ?key, "a child action arrived for a key that is not in the collection; it was ignored");
                    Effect::None
                }
            },
            None => Effect::None,
        };
        let keys_before: Vec<K> = (self.state)(state).keys().cloned().collect();
        let parent_effect = self.parent.reduce(state, action, env);
        let children = (self.state)(state);
        let cancels = keys_before
            .into_iter()
            .filter(|key| !children.contains_key(key))
            .map(|key| Effect::cancel(self.id.child(&key)));
        Effect::merge([child_effect, parent_effect].into_iter().chain(cancels))
    }
}

impl<Par: Reducer + fmt::Debug, Ch: Reducer + fmt::Debug, K> fmt::Debug for ForEach<Par, Ch, K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ForEach").field("parent", &self.parent).field("child", &self.child).finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Combine, reducer_fn};
    use std::time::Duration;

    #[derive(Debug, Clone, PartialEq)]
    enum Child {
        Inc,
        Later,
    }

    #[derive(Debug, Clone, PartialEq)]
    enum Parent {
        Left(Child),
        Right(Child),
        Dismiss,
        Item((u32, Child)),
        Remove(u32),
    }

    #[derive(Debug, Default)]
    struct State {
        left: i32,
        right: i32,
        optional: Option<i32>,
        items: BTreeMap<u32, i32>,
    }

    fn child() -> impl Reducer<State = i32, Action = Child, Environment = ()> + Send + Sync {
        reducer_fn(|n: &mut i32, action: Child, _: &()| match action {
            Child::Inc => {
                *n += 1;
                Effect::None
            }
            Child::Later => Effect::delay(Duration::from_secs(1), Child::Inc),
        })
    }

    #[test]
    fn scope_runs_the_child_on_its_field_and_lifts_effects() {
        let app = Combine::new(
            Scope::new(|s: &mut State| &mut s.left, case!(Parent::Left), |e: &()| e, child()),
            Scope::new(|s: &mut State| &mut s.right, case!(Parent::Right), |e: &()| e, child()),
        );
        let mut state = State::default();
        assert!(app.reduce(&mut state, Parent::Left(Child::Inc), &()).is_none());
        assert_eq!((state.left, state.right), (1, 0));
        let effect = app.reduce(&mut state, Parent::Right(Child::Later), &());
        assert_eq!(effect, Effect::delay(Duration::from_secs(1), Parent::Right(Child::Inc)));
    }

    #[test]
    fn if_let_cancels_child_effects_when_the_child_goes_away() {
        let parent = reducer_fn(|s: &mut State, action: Parent, _: &()| {
            if action == Parent::Dismiss {
                s.optional = None;
            }
            Effect::None
        });
        let app = IfLet::new(parent, |s: &mut State| &mut s.optional, case!(Parent::Left), |e: &()| e, child());
        let mut state = State { optional: Some(0), ..State::default() };
        let started = app.reduce(&mut state, Parent::Left(Child::Later), &());
        let Effect::Cancellable { id, .. } = &started else {
            panic!("expected a cancellable child effect: {started:?}")
        };
        let dismissed = app.reduce(&mut state, Parent::Dismiss, &());
        assert_eq!(dismissed, Effect::Cancel(id.clone()));
        assert!(app.reduce(&mut state, Parent::Left(Child::Inc), &()).is_none());
    }

    #[test]
    fn for_each_routes_by_key_and_cancels_removed_children() {
        let parent = reducer_fn(|s: &mut State, action: Parent, _: &()| {
            if let Parent::Remove(key) = action {
                s.items.remove(&key);
            }
            Effect::None
        });
        let app = ForEach::new(parent, |s: &mut State| &mut s.items, case!(Parent::Item), |e: &()| e, child());
        let mut state = State { items: BTreeMap::from([(1, 0), (2, 0)]), ..State::default() };
        let _ = app.reduce(&mut state, Parent::Item((2, Child::Inc)), &());
        assert_eq!(state.items, BTreeMap::from([(1, 0), (2, 1)]));
        let Effect::Cancellable { id, effect, .. } = app.reduce(&mut state, Parent::Item((1, Child::Later)), &())
        else {
            panic!("expected a cancellable child effect")
        };
        assert_eq!(*effect, Effect::delay(Duration::from_secs(1), Parent::Item((1, Child::Inc))));
        assert_eq!(app.reduce(&mut state, Parent::Remove(1), &()), Effect::Cancel(id));
    }
}
