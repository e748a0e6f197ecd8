//! Reducer composition: build a parent from children without cloning child state.
//!
//! - [`Scope`]: a child reducer runs on one field of the parent state for one case of the parent action.
//! - [`IfLet`]: a parent plus an optional child; the child runs only while its state is `Some`, and its
//!   in-flight effects are cancelled when the parent sets it to `None` or replaces it with a child of
//!   another [identity](Identifiable).
//! - [`ForEach`]: a parent plus a collection of children addressed by key; removing a child cancels its
//!   effects.
//!
//! An [`ActionCase`] says how a child action sits inside a parent action; the [`case!`](crate::case)
//! macro builds one from an enum variant.
//!
//! [`ReducerExt`](crate::ReducerExt) builds these from a parent, left to right:
//! `parent.scope(..).if_let(..).for_each(..)`.
//!
//! Cancelling a child never loses a write: an event store write that has started (append, save
//! snapshot, save checkpoint) completes, and only its reply, which the child is no longer there to
//! receive, is discarded.

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
/// Actions of other cases are ignored (the effect is [`Effect::None`]). Attach it to the parent's own
/// reducer with [`ReducerExt::scope`](crate::ReducerExt::scope), which runs the child first, or combine
/// the two yourself with [`Combine`](crate::Combine).
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

/// The identity of a piece of state: what stays the same while the state changes.
///
/// [`IfLet`] uses it to tell a child that was edited (same identity: its effects keep running) from a
/// child that was replaced by another one (new identity: the old child's effects are cancelled, so they
/// never feed their results into the new child). [`ForEach`] needs no such trait: the key of a child in
/// its map is its identity.
///
/// ```
/// use composable_rust_core::Identifiable;
///
/// struct Detail { order_id: u64, quantity: u32 }
///
/// impl Identifiable for Detail {
///     type Id = u64;
///     fn id(&self) -> u64 {
///         self.order_id
///     }
/// }
///
/// let edited = Detail { order_id: 7, quantity: 3 };
/// assert_eq!(edited.id(), Detail { order_id: 7, quantity: 1 }.id());
/// ```
///
/// A child with no natural identity (only one can ever be shown) can return a constant, such as `()`;
/// replacing it then keeps its effects running, as an edit would.
pub trait Identifiable {
    /// The identity's type. Its `Debug` text becomes part of the [`EffectId`] the child's effects run
    /// under, so two different ids must print differently.
    type Id: fmt::Debug + PartialEq + Send + Sync + 'static;

    /// This state's identity.
    fn id(&self) -> Self::Id;
}

/// A parent reducer with an optional child: the child runs while its state is `Some`.
///
/// For each action, the child runs first (if the action is its case and its state exists), then the
/// parent. The child's effects run under an id made from this `IfLet` and the child's
/// [identity](Identifiable). After the parent has run, the old child's in-flight effects are cancelled
/// when the parent has set the child to `None` or replaced it with a child of another identity
/// (`Some(a)` to `Some(b)`), so neither a dismissed child nor its successor receives stale results.
/// Editing the child in place, or replacing it with a value of the same identity, keeps its effects.
///
/// An event store write the child started (append, save snapshot, save checkpoint) is not undone by the
/// cancellation: once started it completes and is stored; only its reply is discarded.
///
/// ```
/// use std::time::Duration;
/// use composable_rust_core::{Effect, Identifiable, IfLet, Reducer, case, reducer_fn};
///
/// #[derive(Debug)]
/// struct Detail { id: u32, refreshed: u32 }
///
/// impl Identifiable for Detail {
///     type Id = u32;
///     fn id(&self) -> u32 { self.id }
/// }
///
/// #[derive(Debug, Clone, PartialEq)]
/// enum DetailAction { Refresh, Refreshed }
///
/// #[derive(Debug, Clone, PartialEq)]
/// enum Action { Detail(DetailAction), Show(u32) }
///
/// let detail = reducer_fn(|d: &mut Detail, action: DetailAction, _: &()| match action {
///     DetailAction::Refresh => Effect::delay(Duration::from_secs(1), DetailAction::Refreshed),
///     DetailAction::Refreshed => {
///         d.refreshed += 1;
///         Effect::None
///     }
/// });
/// let parent = reducer_fn(|shown: &mut Option<Detail>, action: Action, _: &()| {
///     if let Action::Show(id) = action {
///         *shown = Some(Detail { id, refreshed: 0 });
///     }
///     Effect::None
/// });
/// let app = IfLet::new(parent, |s: &mut Option<Detail>| s, case!(Action::Detail), |e: &()| e, detail);
///
/// let mut state = Some(Detail { id: 1, refreshed: 0 });
/// let refresh = app.reduce(&mut state, Action::Detail(DetailAction::Refresh), &());
/// assert!(matches!(refresh, Effect::Cancellable { .. }));
/// // Showing another detail cancels the refresh that detail 1 started.
/// assert!(matches!(app.reduce(&mut state, Action::Show(2), &()), Effect::Cancel(_)));
/// ```
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
    Ch::State: Identifiable,
    Ch::Action: Send + 'static,
{
    type State = Par::State;
    type Action = Par::Action;
    type Environment = Par::Environment;

    fn reduce(&self, state: &mut Self::State, action: Self::Action, env: &Self::Environment) -> Effect<Self::Action> {
        // The identity the child had when the action arrived: its effects, old and new, run under it.
        let child_before = (self.state)(state).as_ref().map(Identifiable::id);
        let child = (self.state)(state).as_mut().zip(child_before.as_ref());
        let child_effect = match (self.action.extract(action.clone()), child) {
            (Some(child_action), Some((child_state, child_id))) => {
                let effect = self.child.reduce(child_state, child_action, (self.env)(env));
                // The id is text built from the child's id: built only when there is an effect to scope.
                if effect.is_none() {
                    Effect::None
                } else {
                    effect.map_shared(&self.action.embed).cancellable(self.id.child(child_id))
                }
            }
            (Some(_), None) => {
                tracing::warn!(id = %self.id, "a child action arrived while the optional child state is None; it was ignored");
                Effect::None
            }
            (None, _) => Effect::None,
        };
        let parent_effect = self.parent.reduce(state, action, env);
        let cancel = match child_before {
            Some(before) if (self.state)(state).as_ref().is_none_or(|child| child.id() != before) => {
                Effect::cancel(self.id.child(&before))
            }
            _ => Effect::None,
        };
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
/// A child action carries the key of the child it is for. The child runs first, then the parent. The key
/// is the child's identity (as in TCA's `IdentifiedArray`): each child's effects run under an id made
/// from this `ForEach` and its key. Children the parent removes from the collection have their in-flight
/// effects cancelled; replacing the value at a key, or removing and re-inserting the key within one
/// action, keeps the child's identity, so its effects keep running and feed into the new value.
///
/// An event store write a removed child started (append, save snapshot, save checkpoint) is not undone:
/// once started it completes and is stored; only its reply is discarded.
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
        Show(u32),
        EditSheet,
        Item((u32, Child)),
        Remove(u32),
    }

    #[derive(Debug, Default)]
    struct State {
        left: i32,
        right: i32,
        optional: Option<Sheet>,
        items: BTreeMap<u32, i32>,
    }

    /// An optional child: a counter that knows which sheet it belongs to.
    #[derive(Debug, Clone, Copy, PartialEq)]
    struct Sheet {
        id: u32,
        count: i32,
    }

    impl Identifiable for Sheet {
        type Id = u32;
        fn id(&self) -> u32 {
            self.id
        }
    }

    fn sheet(id: u32) -> Option<Sheet> {
        Some(Sheet { id, count: 0 })
    }

    fn sheet_child() -> impl Reducer<State = Sheet, Action = Child, Environment = ()> + Send + Sync {
        let counter = child();
        reducer_fn(move |s: &mut Sheet, action: Child, env: &()| counter.reduce(&mut s.count, action, env))
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

    /// The parent of the `IfLet` tests: dismisses, replaces or edits the optional child.
    fn sheet_parent() -> impl Reducer<State = State, Action = Parent, Environment = ()> + Send + Sync {
        reducer_fn(|s: &mut State, action: Parent, _: &()| {
            match action {
                Parent::Dismiss => s.optional = None,
                Parent::Show(id) => s.optional = sheet(id),
                Parent::EditSheet => {
                    if let Some(sheet) = &mut s.optional {
                        sheet.count += 10;
                    }
                }
                _ => {}
            }
            Effect::None
        })
    }

    fn with_sheet() -> impl Reducer<State = State, Action = Parent, Environment = ()> + Send + Sync {
        IfLet::new(sheet_parent(), |s: &mut State| &mut s.optional, case!(Parent::Left), |e: &()| e, sheet_child())
    }

    /// The id the child's effect runs under, from the effect the child's `Later` returns.
    fn started_id(effect: &Effect<Parent>) -> EffectId {
        let Effect::Cancellable { id, .. } = effect else { panic!("expected a cancellable child effect: {effect:?}") };
        id.clone()
    }

    #[test]
    fn if_let_cancels_child_effects_when_the_child_goes_away() {
        let app = with_sheet();
        let mut state = State { optional: sheet(1), ..State::default() };
        let id = started_id(&app.reduce(&mut state, Parent::Left(Child::Later), &()));
        let dismissed = app.reduce(&mut state, Parent::Dismiss, &());
        assert_eq!(dismissed, Effect::Cancel(id));
        assert!(app.reduce(&mut state, Parent::Left(Child::Inc), &()).is_none());
    }

    #[test]
    fn if_let_cancels_the_old_child_effects_when_a_child_of_another_identity_replaces_it() {
        let app = with_sheet();
        let mut state = State { optional: sheet(1), ..State::default() };
        let first = started_id(&app.reduce(&mut state, Parent::Left(Child::Later), &()));
        assert_eq!(app.reduce(&mut state, Parent::Show(2), &()), Effect::Cancel(first.clone()));
        let second = started_id(&app.reduce(&mut state, Parent::Left(Child::Later), &()));
        assert_ne!(first, second, "the new child's effects must not be cancellable by the old child's id");
    }

    #[test]
    fn if_let_keeps_the_child_effects_when_the_child_is_edited_or_replaced_by_the_same_identity() {
        let app = with_sheet();
        let mut state = State { optional: sheet(1), ..State::default() };
        let _ = app.reduce(&mut state, Parent::Left(Child::Later), &());
        assert!(app.reduce(&mut state, Parent::EditSheet, &()).is_none());
        assert!(app.reduce(&mut state, Parent::Show(1), &()).is_none());
        assert_eq!(state.optional, sheet(1));
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
