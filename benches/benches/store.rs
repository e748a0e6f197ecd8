//! `Store::send` overhead: with no effect, with a synchronous `Effect::Send`, with one task that feeds back
//! one action (awaited through the send handle), and through a reducer scoped two levels deep.
//!
//! Run: `cargo bench -p composable-rust-benches --bench store -- --warm-up-time 1 --measurement-time 3`.
//! Results are recorded in `docs/performance.md` under "Store".
#![allow(missing_docs)]

use composable_rust_core::{Combine, Effect, Reducer, Scope, case, reducer_fn};
use composable_rust_runtime::Store;
use criterion::{Criterion, criterion_group, criterion_main};

#[derive(Debug, Clone, PartialEq)]
enum Action {
    Increment,
    /// Answered by `Effect::send(Increment)`: fed back without a task.
    Echo,
    /// Answered by a task that sends `Increment`.
    Ping,
}

fn counter() -> impl Reducer<State = u64, Action = Action, Environment = ()> + Send + Sync + 'static {
    reducer_fn(|count: &mut u64, action: Action, _: &()| match action {
        Action::Increment => {
            *count += 1;
            Effect::None
        }
        Action::Echo => Effect::send(Action::Increment),
        Action::Ping => Effect::future(async { Action::Increment }),
    })
}

#[derive(Debug, Default)]
struct Outer {
    middle: Middle,
    other: u64,
}

#[derive(Debug, Default)]
struct Middle {
    leaf: u64,
    other: u64,
}

#[derive(Debug, Clone, PartialEq)]
enum OuterAction {
    Middle(MiddleAction),
    Other,
}

#[derive(Debug, Clone, PartialEq)]
enum MiddleAction {
    Leaf(Action),
    Other,
}

/// `counter` inside `Middle` inside `Outer`, each level combined with a sibling reducer of its own.
fn scoped_two_levels() -> impl Reducer<State = Outer, Action = OuterAction, Environment = ()> + Send + Sync + 'static {
    let middle = Combine::new(
        Scope::new(|m: &mut Middle| &mut m.leaf, case!(MiddleAction::Leaf), |e: &()| e, counter()),
        reducer_fn(|m: &mut Middle, action: MiddleAction, _: &()| {
            if action == MiddleAction::Other {
                m.other += 1;
            }
            Effect::None
        }),
    );
    Combine::new(
        Scope::new(|o: &mut Outer| &mut o.middle, case!(OuterAction::Middle), |e: &()| e, middle),
        reducer_fn(|o: &mut Outer, action: OuterAction, _: &()| {
            if action == OuterAction::Other {
                o.other += 1;
            }
            Effect::None
        }),
    )
}

fn bench_send(c: &mut Criterion) {
    let mut group = c.benchmark_group("store_send");

    let store = Store::new(counter(), 0, ());
    group.bench_function("no_effect", |b| b.iter(|| store.send(Action::Increment)));

    let store = Store::new(counter(), 0, ());
    group.bench_function("sync_send_feedback", |b| b.iter(|| store.send(Action::Echo)));

    let store = Store::new(scoped_two_levels(), Outer::default(), ());
    group.bench_function("scoped_two_levels_no_effect", |b| {
        b.iter(|| store.send(OuterAction::Middle(MiddleAction::Leaf(Action::Increment))));
    });

    for (name, runtime) in [
        ("task_feedback_awaited/current_thread", tokio::runtime::Builder::new_current_thread().build()),
        ("task_feedback_awaited/multi_thread_2", tokio::runtime::Builder::new_multi_thread().worker_threads(2).build()),
    ] {
        let Ok(runtime) = runtime else { panic!("could not start a tokio runtime for {name}") };
        let store = {
            let _runtime = runtime.enter();
            Store::new(counter(), 0, ())
        };
        group.bench_function(name, |b| {
            b.to_async(&runtime).iter(|| async { store.send(Action::Ping).finished().await });
        });
    }

    group.finish();
}

criterion_group!(benches, bench_send);
criterion_main!(benches);
