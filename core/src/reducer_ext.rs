//! [`ReducerExt`]: composition written left to right, `parent.scope(..).if_let(..).combine(..)`, in the
//! manner of the reducer builders of Point-Free's Composable Architecture (TCA).
//!
//! Each method only builds one of the explicit types ([`Scope`], [`IfLet`], [`ForEach`], [`Combine`]);
//! a builder chain and the nesting it stands for reduce to the same state and the same effects.

use std::collections::BTreeMap;

use crate::compose::{ActionCase, ForEach, IfLet, Scope};
use crate::reducer::{Combine, Reducer};

/// What [`ReducerExt::scope`] returns: the child `Ch` scoped into `Par`'s domain, run before `Par`.
///
/// Name it to keep a composed reducer in a struct field.
pub type Scoped<Par, Ch> =
    Combine<Scope<Ch, <Par as Reducer>::State, <Par as Reducer>::Action, <Par as Reducer>::Environment>, Par>;

/// Composition methods on every [`Reducer`], so that a parent and its children read top to bottom.
///
/// ```
/// use std::collections::BTreeMap;
/// use composable_rust_core::{Effect, Identifiable, Reducer, ReducerExt, case, reducer_fn};
///
/// #[derive(Debug, Default)]
/// struct Screen { total: i32, badge: i32, editor: Option<Editor>, rows: BTreeMap<u32, i32> }
///
/// #[derive(Debug)]
/// struct Editor { id: u32, text: String }
///
/// impl Identifiable for Editor {
///     type Id = u32;
///     fn id(&self) -> u32 { self.id }
/// }
///
/// #[derive(Debug, Clone, PartialEq)]
/// enum Action { Badge(i32), Editor(String), Row((u32, i32)), Close }
///
/// let add = || reducer_fn(|n: &mut i32, by: i32, _: &()| { *n += by; Effect::<i32>::None });
/// let editor = reducer_fn(|e: &mut Editor, text: String, _: &()| { e.text = text; Effect::<String>::None });
/// let parent = reducer_fn(|s: &mut Screen, action: Action, _: &()| {
///     match action {
///         Action::Close => s.editor = None,
///         // Children run first, so the parent sees a row after the row's own action.
///         Action::Row((key, _)) => s.total = s.rows.get(&key).copied().unwrap_or_default(),
///         _ => {}
///     }
///     Effect::None
/// });
///
/// let screen = parent
///     .scope(|s| &mut s.badge, case!(Action::Badge), |env| env, add())
///     .if_let(|s| &mut s.editor, case!(Action::Editor), |env| env, editor)
///     .for_each(|s| &mut s.rows, case!(Action::Row), |env| env, add());
///
/// let mut state = Screen { editor: Some(Editor { id: 1, text: String::new() }), ..Screen::default() };
/// state.rows.insert(7, 1);
/// let _ = screen.reduce(&mut state, Action::Badge(3), &());
/// let _ = screen.reduce(&mut state, Action::Editor("hello".into()), &());
/// let _ = screen.reduce(&mut state, Action::Row((7, 4)), &());
/// assert_eq!((state.badge, state.rows[&7], state.total), (3, 5, 5));
/// assert_eq!(state.editor.as_ref().map(|e| e.text.as_str()), Some("hello"));
/// let _ = screen.reduce(&mut state, Action::Close, &());
/// assert!(state.editor.is_none());
/// ```
///
/// # Order
/// [`combine`](Self::combine) runs the reducer it is called on, then its argument: `a.combine(b)` runs `a`
/// first, as reading it suggests and as TCA's `CombineReducers { A(); B() }` does.
///
/// [`scope`](Self::scope), [`if_let`](Self::if_let) and [`for_each`](Self::for_each) attach a child and
/// run **the child first, then the reducer they are called on**, as TCA's `Scope` placed before
/// `Reduce`, `ifLet` and `forEach` do. Two reasons:
/// - a parent that removes a child (`Close` above sets the editor to `None`) must not do so before the
///   child has handled its own action, or the child's last action would find no state and be ignored;
/// - a parent that reacts to a child's action (`Row` above reads the row's new value) sees the child's
///   state after the child's change.
///
/// Every builder wraps the whole chain to its left, so in `parent.scope(a..).scope(b..)` the child `b`
/// runs first, then `a`, then `parent`. Children on separate fields and separate action cases never
/// see each other's actions, so that order only matters between a child and the parents above it.
///
/// The effects are merged in the same order: child, then parent, then the cancellations of dismissed
/// children ([`IfLet`], [`ForEach`]).
pub trait ReducerExt: Reducer + Sized {
    /// Runs `self`, then `next`, for every action; their effects are merged in that order.
    ///
    /// The same as [`Combine::new(self, next)`](Combine::new).
    ///
    /// ```
    /// use composable_rust_core::{Effect, Reducer, ReducerExt, reducer_fn};
    ///
    /// let double = reducer_fn(|n: &mut i32, _: (), _: &()| { *n *= 2; Effect::<()>::None });
    /// let add_one = reducer_fn(|n: &mut i32, _: (), _: &()| { *n += 1; Effect::<()>::None });
    /// let mut n = 3;
    /// let _ = double.combine(add_one).reduce(&mut n, (), &());
    /// assert_eq!(n, 7); // (3 * 2) + 1: left to right
    /// ```
    fn combine<Next>(self, next: Next) -> Combine<Self, Next>
    where
        Next: Reducer<State = Self::State, Action = Self::Action, Environment = Self::Environment>,
    {
        Combine::new(self, next)
    }

    /// Runs `child` on the field `state` picks, for the actions of the case `action`, then `self` for
    /// every action.
    ///
    /// The same as [`Combine::new(Scope::new(state, action, env, child), self)`](Scope::new). For a
    /// child with no parent logic beside it, call it on a parent that does nothing, or use [`Scope`]
    /// alone.
    fn scope<Ch>(
        self,
        state: impl Fn(&mut Self::State) -> &mut Ch::State + Send + Sync + 'static,
        action: ActionCase<Self::Action, Ch::Action>,
        env: impl Fn(&Self::Environment) -> &Ch::Environment + Send + Sync + 'static,
        child: Ch,
    ) -> Scoped<Self, Ch>
    where
        Ch: Reducer,
    {
        Combine::new(Scope::new(state, action, env, child), self)
    }

    /// Attaches `child` to the optional field `state` picks: the child runs while that field is `Some`,
    /// before `self`, and its effects are cancelled when `self` sets it to `None` or to a child of
    /// another identity.
    ///
    /// The same as [`IfLet::new(self, state, action, env, child)`](IfLet::new); see [`IfLet`] for the
    /// cancellation rules.
    fn if_let<Ch>(
        self,
        state: impl Fn(&mut Self::State) -> &mut Option<Ch::State> + Send + Sync + 'static,
        action: ActionCase<Self::Action, Ch::Action>,
        env: impl Fn(&Self::Environment) -> &Ch::Environment + Send + Sync + 'static,
        child: Ch,
    ) -> IfLet<Self, Ch>
    where
        Ch: Reducer,
    {
        IfLet::new(self, state, action, env, child)
    }

    /// Attaches `child` to each element of the map `state` picks: an action of the case `action` carries
    /// `(key, child action)` and runs the child at that key, before `self`; removing a key cancels that
    /// child's effects.
    ///
    /// The same as [`ForEach::new(self, state, action, env, child)`](ForEach::new); see [`ForEach`] for
    /// the cancellation rules.
    fn for_each<Ch, K>(
        self,
        state: impl Fn(&mut Self::State) -> &mut BTreeMap<K, Ch::State> + Send + Sync + 'static,
        action: ActionCase<Self::Action, (K, Ch::Action)>,
        env: impl Fn(&Self::Environment) -> &Ch::Environment + Send + Sync + 'static,
        child: Ch,
    ) -> ForEach<Self, Ch, K>
    where
        Ch: Reducer,
    {
        ForEach::new(self, state, action, env, child)
    }
}

impl<R: Reducer> ReducerExt for R {}

#[cfg(test)]
mod tests {
    //! Each builder against the explicit type it stands for: the same state and the same effects after
    //! every action, and the child before the parent.

    use std::time::Duration;

    use super::*;
    use crate::compose::Identifiable;
    use crate::effect::Effect;
    use crate::{case, reducer_fn};

    #[derive(Debug, Clone, PartialEq)]
    enum Child {
        Inc,
        Later,
    }

    #[derive(Debug, Clone, PartialEq)]
    enum Parent {
        Left(Child),
        Right(Child),
        Sheet(Child),
        Row((u32, Child)),
        Show(u32),
        Dismiss,
        Remove(u32),
        Ping,
    }

    #[derive(Debug, Clone, Default, PartialEq)]
    struct Counter {
        id: u32,
        count: i32,
    }

    impl Identifiable for Counter {
        type Id = u32;
        fn id(&self) -> u32 {
            self.id
        }
    }

    /// The children's counts as the parent saw them when it ran.
    type Seen = (i32, i32, Option<i32>, Vec<i32>);

    #[derive(Debug, Clone, Default, PartialEq)]
    struct State {
        /// One entry per parent run: shows whether the child had already handled the action.
        seen: Vec<Seen>,
        left: Counter,
        right: Counter,
        sheet: Option<Counter>,
        rows: BTreeMap<u32, Counter>,
    }

    /// Adds `weight` on `Inc`; answers `Later` with `Inc` after `weight` seconds, so that the effects of
    /// different children differ.
    fn counter(weight: u8) -> impl Reducer<State = Counter, Action = Child, Environment = ()> + Send + Sync {
        reducer_fn(move |c: &mut Counter, action: Child, _: &()| match action {
            Child::Inc => {
                c.count += i32::from(weight);
                Effect::None
            }
            Child::Later => Effect::delay(Duration::from_secs(u64::from(weight)), Child::Inc),
        })
    }

    /// Records what it sees, shows, dismisses and removes children, and answers every action but `Ping`
    /// with `send(Ping)`, so that the order of child and parent effects shows in the merged effect.
    fn parent() -> impl Reducer<State = State, Action = Parent, Environment = ()> + Send + Sync {
        reducer_fn(|s: &mut State, action: Parent, _: &()| {
            let rows = s.rows.values().map(|c| c.count).collect();
            s.seen.push((s.left.count, s.right.count, s.sheet.as_ref().map(|c| c.count), rows));
            match action {
                Parent::Show(id) => s.sheet = Some(Counter { id, count: 0 }),
                Parent::Dismiss => s.sheet = None,
                Parent::Remove(key) => {
                    s.rows.remove(&key);
                }
                Parent::Ping => return Effect::None,
                _ => {}
            }
            Effect::send(Parent::Ping)
        })
    }

    fn start() -> State {
        State {
            sheet: Some(Counter { id: 1, count: 0 }),
            rows: BTreeMap::from([(1, Counter::default()), (2, Counter::default())]),
            ..State::default()
        }
    }

    /// Every kind of action, including child actions after their child is gone.
    fn actions() -> Vec<Parent> {
        vec![
            Parent::Left(Child::Inc),
            Parent::Right(Child::Later),
            Parent::Sheet(Child::Inc),
            Parent::Sheet(Child::Later),
            Parent::Show(2),
            Parent::Sheet(Child::Later),
            Parent::Row((1, Child::Inc)),
            Parent::Row((2, Child::Later)),
            Parent::Ping,
            Parent::Remove(2),
            Parent::Dismiss,
            Parent::Sheet(Child::Inc),
            Parent::Row((2, Child::Inc)),
        ]
    }

    /// Every action of [`actions`] run from [`start`]: the state and the effect after each.
    fn trace(reducer: &impl Reducer<State = State, Action = Parent, Environment = ()>) -> Vec<(Parent, State, String)> {
        let mut state = start();
        actions()
            .into_iter()
            .map(|action| {
                let effect = reducer.reduce(&mut state, action.clone(), &());
                (action, state.clone(), without_instance_ids(&effect))
            })
            .collect()
    }

    fn assert_same(
        built: &impl Reducer<State = State, Action = Parent, Environment = ()>,
        explicit: &impl Reducer<State = State, Action = Parent, Environment = ()>,
    ) {
        assert_eq!(trace(built), trace(explicit));
    }

    /// The effect's debug text, with the number that makes each `IfLet` and `ForEach` id unique
    /// (`if-let#12`) removed: two instances never share ids, but the rest of their ids must match.
    fn without_instance_ids(effect: &Effect<Parent>) -> String {
        let text = format!("{effect:?}");
        let mut out = String::with_capacity(text.len());
        let mut rest = text.as_str();
        while let Some(at) = rest.find('#') {
            out.push_str(&rest[..=at]);
            rest = rest[at + 1..].trim_start_matches(|c: char| c.is_ascii_digit());
        }
        out.push_str(rest);
        out
    }

    fn left() -> Scope<impl Reducer<State = Counter, Action = Child, Environment = ()>, State, Parent, ()> {
        Scope::new(|s: &mut State| &mut s.left, case!(Parent::Left), |e: &()| e, counter(1))
    }

    fn right() -> Scope<impl Reducer<State = Counter, Action = Child, Environment = ()>, State, Parent, ()> {
        Scope::new(|s: &mut State| &mut s.right, case!(Parent::Right), |e: &()| e, counter(2))
    }

    #[test]
    fn combine_runs_the_receiver_first_like_combine_new() {
        let step = |name: &'static str| {
            reducer_fn(move |log: &mut Vec<&'static str>, _: (), _: &()| {
                log.push(name);
                Effect::send(())
            })
        };
        let mut log = Vec::new();
        let effect = step("first").combine(step("second")).reduce(&mut log, (), &());
        assert_eq!(log, ["first", "second"]);
        assert_eq!(effect, Effect::merge([Effect::send(()), Effect::send(())]));

        let mut explicit_log = Vec::new();
        let explicit = Combine::new(step("first"), step("second")).reduce(&mut explicit_log, (), &());
        assert_eq!((log, effect), (explicit_log, explicit));
    }

    #[test]
    fn scope_is_a_scoped_child_combined_before_the_parent() {
        let built = parent().scope(|s| &mut s.left, case!(Parent::Left), |e| e, counter(1)).scope(
            |s| &mut s.right,
            case!(Parent::Right),
            |e| e,
            counter(2),
        );
        assert_same(&built, &Combine::new(right(), Combine::new(left(), parent())));

        let mut state = start();
        let _ = built.reduce(&mut state, Parent::Left(Child::Inc), &());
        assert_eq!(state.seen[0].0, 1, "the parent must see the child's change");
        let effect = built.reduce(&mut state, Parent::Right(Child::Later), &());
        let child_first = Effect::merge([
            Effect::delay(Duration::from_secs(2), Parent::Right(Child::Inc)),
            Effect::send(Parent::Ping),
        ]);
        assert_eq!(effect, child_first);
    }

    #[test]
    fn if_let_is_if_let_new_with_the_child_before_the_parent() {
        let built = parent().if_let(|s| &mut s.sheet, case!(Parent::Sheet), |e| e, counter(3));
        assert_same(
            &built,
            &IfLet::new(parent(), |s: &mut State| &mut s.sheet, case!(Parent::Sheet), |e: &()| e, counter(3)),
        );

        let mut state = start();
        let _ = built.reduce(&mut state, Parent::Sheet(Child::Inc), &());
        assert_eq!(state.seen[0].2, Some(3), "the parent must see the child's change");
        let Effect::Merge(effects) = built.reduce(&mut state, Parent::Sheet(Child::Later), &()) else {
            panic!("expected the child's effect and the parent's")
        };
        assert!(matches!(effects[..], [Effect::Cancellable { .. }, Effect::Send(Parent::Ping)]), "{effects:?}");
    }

    #[test]
    fn for_each_is_for_each_new_with_the_child_before_the_parent() {
        let built = parent().for_each(|s| &mut s.rows, case!(Parent::Row), |e| e, counter(4));
        assert_same(
            &built,
            &ForEach::new(parent(), |s: &mut State| &mut s.rows, case!(Parent::Row), |e: &()| e, counter(4)),
        );

        let mut state = start();
        let _ = built.reduce(&mut state, Parent::Row((2, Child::Inc)), &());
        assert_eq!(state.seen[0].3, [0, 4], "the parent must see the child's change");
        let Effect::Merge(effects) = built.reduce(&mut state, Parent::Row((1, Child::Later)), &()) else {
            panic!("expected the child's effect and the parent's")
        };
        assert!(matches!(effects[..], [Effect::Cancellable { .. }, Effect::Send(Parent::Ping)]), "{effects:?}");
    }

    #[test]
    fn a_chain_of_builders_nests_like_the_explicit_types() {
        let built = parent()
            .scope(|s| &mut s.left, case!(Parent::Left), |e| e, counter(1))
            .if_let(|s| &mut s.sheet, case!(Parent::Sheet), |e| e, counter(3))
            .for_each(|s| &mut s.rows, case!(Parent::Row), |e| e, counter(4))
            .combine(right());
        let explicit = Combine::new(
            ForEach::new(
                IfLet::new(
                    Combine::new(left(), parent()),
                    |s: &mut State| &mut s.sheet,
                    case!(Parent::Sheet),
                    |e: &()| e,
                    counter(3),
                ),
                |s: &mut State| &mut s.rows,
                case!(Parent::Row),
                |e: &()| e,
                counter(4),
            ),
            right(),
        );
        assert_same(&built, &explicit);
    }

    #[test]
    fn the_comparison_tells_child_first_from_parent_first() {
        // The comparisons above must be able to fail: running the parent before the child differs.
        let child_first = parent().scope(|s| &mut s.left, case!(Parent::Left), |e| e, counter(1));
        assert_ne!(trace(&child_first), trace(&Combine::new(parent(), left())));
    }
}
