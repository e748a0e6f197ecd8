//! Behaviour of the runtime `Store`: ordering, cascades, delays, cancellation, concat, failures, shutdown.
//!
//! Delays run on the `SystemClock` with tokio's time paused, so they take no real time.
#![allow(clippy::unwrap_used, reason = "test helpers outside #[test] functions; a failure should panic")]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use composable_rust_core::{
    ActionSink, Combine, Effect, EffectId, Identifiable, IfLet, Reducer, Scope, case, reducer_fn,
};
use composable_rust_runtime::Store;

/// Every action the reducer saw, in order.
type Log = Vec<String>;

fn log_all<A: std::fmt::Debug>(log: &mut Log, action: &A) {
    log.push(format!("{action:?}"));
}

async fn settle() {
    for _ in 0..20 {
        tokio::task::yield_now().await;
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Step {
    Start,
    A,
    B,
    C,
}

#[tokio::test]
async fn send_without_effects_updates_state_and_is_finished_at_once() {
    let store = Store::new(
        reducer_fn(|n: &mut i32, by: i32, _: &()| {
            *n += by;
            Effect::<i32>::None
        }),
        0,
        (),
    );
    let handle = store.send(5);
    assert!(handle.is_finished());
    handle.finished().await;
    assert_eq!(store.state(|n| *n), 5);
    assert_eq!(store.effects_in_flight(), 0);
}

#[tokio::test]
async fn synchronously_sent_actions_are_reduced_in_fifo_order_before_send_returns() {
    let store = Store::new(
        reducer_fn(|log: &mut Log, action: Step, _: &()| {
            log_all(log, &action);
            match action {
                Step::Start => Effect::merge([Effect::send(Step::A), Effect::send(Step::B)]),
                Step::A => Effect::send(Step::C),
                Step::B | Step::C => Effect::None,
            }
        }),
        Log::new(),
        (),
    );
    let handle = store.send(Step::Start);
    assert!(handle.is_finished(), "no task was needed");
    assert_eq!(store.state(Clone::clone), ["Start", "A", "B", "C"]);
}

#[tokio::test]
async fn finished_waits_for_cascaded_effects() {
    let store = Store::new(
        reducer_fn(|log: &mut Log, action: Step, _: &()| {
            log_all(log, &action);
            let next = match action {
                Step::Start => Step::A,
                Step::A => Step::B,
                Step::B => Step::C,
                Step::C => return Effect::None,
            };
            Effect::future(async move {
                tokio::task::yield_now().await;
                next
            })
        }),
        Log::new(),
        (),
    );
    store.send(Step::Start).finished().await;
    assert_eq!(store.state(Clone::clone), ["Start", "A", "B", "C"]);
    assert_eq!(store.effects_in_flight(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn actions_sent_by_one_task_are_reduced_in_the_order_sent() {
    let store = Store::new(
        reducer_fn(|seen: &mut Vec<u32>, action: Option<u32>, _: &()| match action {
            None => Effect::run(|sink: ActionSink<Option<u32>>| async move {
                for n in 0..500 {
                    sink.send(Some(n));
                    if n % 50 == 0 {
                        tokio::task::yield_now().await;
                    }
                }
            }),
            Some(n) => {
                seen.push(n);
                Effect::None
            }
        }),
        Vec::new(),
        (),
    );
    store.send(None).finished().await;
    assert_eq!(store.state(Clone::clone), (0..500).collect::<Vec<_>>());
}

#[derive(Debug, Clone, PartialEq)]
enum Timer {
    Start,
    Restart,
    Stop,
    Tick,
}

fn timer_reducer() -> impl Reducer<State = u32, Action = Timer, Environment = ()> + Send + Sync + 'static {
    let id = EffectId::new("timer");
    reducer_fn(move |ticks: &mut u32, action: Timer, _: &()| match action {
        Timer::Start => Effect::delay(Duration::from_secs(10), Timer::Tick).cancellable(id.clone()),
        Timer::Restart => Effect::delay(Duration::from_secs(10), Timer::Tick).cancel_in_flight(id.clone()),
        Timer::Stop => Effect::cancel(id.clone()),
        Timer::Tick => {
            *ticks += 1;
            Effect::None
        }
    })
}

#[tokio::test(start_paused = true)]
async fn delay_waits_its_duration_on_the_clock() {
    let store = Store::new(timer_reducer(), 0, ());
    let handle = store.send(Timer::Start);
    tokio::time::advance(Duration::from_secs(9)).await;
    settle().await;
    assert_eq!(store.state(|t| *t), 0, "fired early");
    assert!(!handle.is_finished());
    tokio::time::advance(Duration::from_secs(1)).await;
    handle.finished().await;
    assert_eq!(store.state(|t| *t), 1);
}

#[tokio::test(start_paused = true)]
async fn cancel_from_a_later_send_stops_a_delayed_effect() {
    let store = Store::new(timer_reducer(), 0, ());
    let started = store.send(Timer::Start);
    tokio::time::advance(Duration::from_secs(5)).await;
    store.send(Timer::Stop);
    started.finished().await;
    tokio::time::advance(Duration::from_secs(60)).await;
    settle().await;
    assert_eq!(store.state(|t| *t), 0);
    assert_eq!(store.effects_in_flight(), 0);
}

#[tokio::test(start_paused = true)]
async fn cancel_stops_every_effect_started_under_the_id() {
    let store = Store::new(timer_reducer(), 0, ());
    let first = store.send(Timer::Start);
    let second = store.send(Timer::Start);
    store.send(Timer::Stop);
    first.finished().await;
    second.finished().await;
    tokio::time::advance(Duration::from_secs(60)).await;
    settle().await;
    assert_eq!(store.state(|t| *t), 0);
}

#[tokio::test(start_paused = true)]
async fn cancel_in_flight_restarts_the_effect() {
    let store = Store::new(timer_reducer(), 0, ());
    store.send(Timer::Restart);
    tokio::time::advance(Duration::from_secs(6)).await;
    store.send(Timer::Restart);
    tokio::time::advance(Duration::from_secs(6)).await;
    let last = store.send(Timer::Restart);
    last.finished().await;
    assert_eq!(store.state(|t| *t), 1, "only the last restart fires");
    assert_eq!(store.effects_in_flight(), 0);
}

#[tokio::test(start_paused = true)]
async fn cancelling_an_outer_id_cancels_nested_cancellables() {
    let outer = EffectId::new("outer");
    let inner = EffectId::new("inner");
    let (o, i) = (outer.clone(), inner.clone());
    let store = Store::new(
        reducer_fn(move |log: &mut Log, action: &'static str, _: &()| {
            log.push(action.to_owned());
            match action {
                "start" => Effect::merge([
                    Effect::delay(Duration::from_secs(1), "inner fired").cancellable(i.clone()),
                    Effect::delay(Duration::from_secs(2), "outer fired"),
                ])
                .cancellable(o.clone()),
                "cancel outer" => Effect::cancel(o.clone()),
                "cancel inner" => Effect::cancel(i.clone()),
                _ => Effect::None,
            }
        }),
        Log::new(),
        (),
    );
    store.send("start");
    store.send("cancel outer");
    store.idle().await;
    assert_eq!(store.state(Clone::clone), ["start", "cancel outer"]);

    store.send("start");
    store.send("cancel inner");
    store.idle().await;
    assert_eq!(store.state(Clone::clone)[2..], ["start", "cancel inner", "outer fired"]);
}

#[tokio::test(start_paused = true)]
async fn a_cancelled_task_sends_no_more_actions() {
    let id = EffectId::new("ticker");
    let ticker = id.clone();
    let store = Store::new(
        reducer_fn(move |ticks: &mut u32, action: Timer, _: &()| match action {
            Timer::Start => Effect::run(|sink: ActionSink<Timer>| async move {
                loop {
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    sink.send(Timer::Tick);
                }
            })
            .cancellable(ticker.clone()),
            Timer::Stop => Effect::cancel(ticker.clone()),
            Timer::Tick => {
                *ticks += 1;
                Effect::None
            }
            Timer::Restart => Effect::None,
        }),
        0,
        (),
    );
    let handle = store.send(Timer::Start);
    settle().await; // let the task start its first sleep
    for _ in 0..3 {
        tokio::time::advance(Duration::from_secs(1)).await;
        settle().await;
    }
    assert_eq!(store.state(|t| *t), 3);
    store.send(Timer::Stop);
    handle.finished().await;
    tokio::time::advance(Duration::from_secs(10)).await;
    settle().await;
    assert_eq!(store.state(|t| *t), 3);
}

#[tokio::test(start_paused = true)]
async fn concat_starts_each_step_after_the_previous_one_and_its_cascade() {
    let store = Store::new(
        reducer_fn(|log: &mut Log, action: Step, _: &()| {
            log_all(log, &action);
            match action {
                Step::Start => Effect::concat([
                    Effect::delay(Duration::from_secs(2), Step::A),
                    Effect::send(Step::B),
                    Effect::delay(Duration::from_secs(1), Step::C),
                ]),
                // A's own effect is part of the first step, so B waits for it too.
                Step::A => Effect::future(async {
                    tokio::time::sleep(Duration::from_secs(5)).await;
                    Step::C
                }),
                Step::B | Step::C => Effect::None,
            }
        }),
        Log::new(),
        (),
    );
    let started = tokio::time::Instant::now();
    store.send(Step::Start).finished().await;
    assert_eq!(store.state(Clone::clone), ["Start", "A", "C", "B", "C"]);
    assert_eq!(started.elapsed(), Duration::from_secs(8));
}

#[tokio::test(start_paused = true)]
async fn merge_runs_effects_at_the_same_time() {
    let store = Store::new(
        reducer_fn(|log: &mut Log, action: Step, _: &()| {
            log_all(log, &action);
            match action {
                Step::Start => Effect::merge([
                    Effect::delay(Duration::from_secs(3), Step::A),
                    Effect::delay(Duration::from_secs(1), Step::B),
                ]),
                _ => Effect::None,
            }
        }),
        Log::new(),
        (),
    );
    let started = tokio::time::Instant::now();
    store.send(Step::Start).finished().await;
    assert_eq!(store.state(Clone::clone), ["Start", "B", "A"]);
    assert_eq!(started.elapsed(), Duration::from_secs(3));
}

#[tokio::test(start_paused = true)]
async fn shutdown_cancels_running_effects_and_ignores_new_actions() {
    let store = Store::new(timer_reducer(), 0, ());
    let handle = store.send(Timer::Start);
    store.shutdown();
    handle.finished().await;
    assert!(store.is_shut_down());
    assert_eq!(store.effects_in_flight(), 0);
    store.send(Timer::Tick);
    tokio::time::advance(Duration::from_secs(60)).await;
    settle().await;
    assert_eq!(store.state(|t| *t), 0);
}

#[tokio::test(start_paused = true)]
async fn dropping_the_last_store_handle_cancels_its_effects() {
    let fired = Arc::new(Mutex::new(false));
    let flag = Arc::clone(&fired);
    let store = Store::new(
        reducer_fn(move |_: &mut (), (): (), _: &()| {
            let flag = Arc::clone(&flag);
            Effect::run(|_sink: ActionSink<()>| async move {
                tokio::time::sleep(Duration::from_secs(1)).await;
                *flag.lock().unwrap() = true;
            })
        }),
        (),
        (),
    );
    let handle = store.send(());
    let clone = store.clone();
    drop(store);
    assert!(!handle.is_finished(), "a clone still holds the store");
    drop(clone);
    handle.finished().await;
    tokio::time::advance(Duration::from_secs(5)).await;
    assert!(!*fired.lock().unwrap());
}

#[derive(Debug, Clone, PartialEq)]
enum Child {
    Increment,
    IncrementLater,
}

#[derive(Debug, Clone, PartialEq)]
enum Parent {
    Left(Child),
    Right(Child),
}

#[derive(Debug, Default)]
struct Pair {
    left: i32,
    right: i32,
}

fn child() -> impl Reducer<State = i32, Action = Child, Environment = ()> + Send + Sync + 'static {
    reducer_fn(|n: &mut i32, action: Child, _: &()| match action {
        Child::Increment => {
            *n += 1;
            Effect::None
        }
        Child::IncrementLater => Effect::future(async { Child::Increment }),
    })
}

#[tokio::test]
async fn scoped_children_get_their_own_state_and_their_effects_come_back_to_them() {
    let app = Combine::new(
        Scope::new(|s: &mut Pair| &mut s.left, case!(Parent::Left), |e: &()| e, child()),
        Scope::new(|s: &mut Pair| &mut s.right, case!(Parent::Right), |e: &()| e, child()),
    );
    let store = Store::new(app, Pair::default(), ());
    store.send(Parent::Left(Child::Increment));
    store.send(Parent::Right(Child::IncrementLater)).finished().await;
    assert_eq!(store.state(|p| (p.left, p.right)), (1, 1));
}

#[derive(Debug, Default)]
struct Sheet {
    detail: Option<Detail>,
}

/// A detail screen: which item it shows, and a counter.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Detail {
    item: u32,
    count: i32,
}

impl Identifiable for Detail {
    type Id = u32;
    fn id(&self) -> u32 {
        self.item
    }
}

#[derive(Debug, Clone, PartialEq)]
enum SheetAction {
    Detail(Child),
    Dismiss,
}

#[tokio::test(start_paused = true)]
async fn dismissing_an_if_let_child_cancels_its_running_effects() {
    let app = IfLet::new(
        reducer_fn(|s: &mut Sheet, action: SheetAction, _: &()| {
            if action == SheetAction::Dismiss {
                s.detail = None;
            }
            Effect::None
        }),
        |s: &mut Sheet| &mut s.detail,
        case!(SheetAction::Detail),
        |e: &()| e,
        reducer_fn(|d: &mut Detail, action: Child, _: &()| match action {
            Child::Increment => {
                d.count += 1;
                Effect::None
            }
            Child::IncrementLater => Effect::delay(Duration::from_secs(1), Child::Increment),
        }),
    );
    let store = Store::new(app, Sheet { detail: Some(Detail { item: 1, count: 0 }) }, ());
    let later = store.send(SheetAction::Detail(Child::IncrementLater));
    store.send(SheetAction::Dismiss);
    later.finished().await;
    assert_eq!(store.effects_in_flight(), 0);
    assert_eq!(store.state(|s| s.detail), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_sends_from_many_tasks_all_reach_the_state() {
    let store = Store::new(
        reducer_fn(|n: &mut u64, action: Step, _: &()| match action {
            Step::Start => Effect::future(async { Step::A }),
            Step::A => {
                *n += 1;
                Effect::None
            }
            Step::B | Step::C => Effect::None,
        }),
        0,
        (),
    );
    let senders: Vec<_> = (0..8)
        .map(|_| {
            let store = store.clone();
            tokio::spawn(async move {
                for _ in 0..250 {
                    store.send(Step::Start).finished().await;
                }
            })
        })
        .collect();
    for sender in senders {
        sender.await.unwrap();
    }
    assert_eq!(store.state(|n| *n), 2000);
    assert_eq!(store.effects_in_flight(), 0);
}

#[tokio::test(start_paused = true)]
async fn cancelling_a_concat_stops_its_remaining_steps_and_releases_the_send() {
    let id = EffectId::new("steps");
    let (start, stop) = (id.clone(), id);
    let store = Store::new(
        reducer_fn(move |log: &mut Log, action: Timer, _: &()| {
            log_all(log, &action);
            match action {
                Timer::Start => Effect::concat([
                    Effect::delay(Duration::from_secs(1), Timer::Tick),
                    Effect::delay(Duration::from_secs(1), Timer::Tick),
                    Effect::delay(Duration::from_secs(1), Timer::Tick),
                ])
                .cancellable(start.clone()),
                Timer::Stop => Effect::cancel(stop.clone()),
                Timer::Tick | Timer::Restart => Effect::None,
            }
        }),
        Log::new(),
        (),
    );
    let handle = store.send(Timer::Start);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    store.send(Timer::Stop);
    handle.finished().await;
    tokio::time::advance(Duration::from_secs(10)).await;
    settle().await;
    assert_eq!(store.state(Clone::clone), ["Start", "Tick", "Stop"]);
}

mod reporting {
    //! Failures inside effects are reported through `tracing::error!`; captured here by a tiny subscriber.

    use std::fmt::{Debug, Write as _};
    use std::sync::{Arc, Mutex};

    use composable_rust_core::{ActionSink, Effect, EventStoreOperation, StreamId, StreamRange, reducer_fn};
    use composable_rust_runtime::Store;
    use tracing::field::{Field, Visit};
    use tracing::span::{Attributes, Id, Record};
    use tracing::{Event, Metadata};

    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<String>>>);

    impl Captured {
        fn errors(&self) -> Vec<String> {
            self.0.lock().unwrap().iter().filter(|line| line.starts_with("ERROR")).cloned().collect()
        }
    }

    struct Fields(String);

    impl Visit for Fields {
        fn record_debug(&mut self, field: &Field, value: &dyn Debug) {
            let _ = write!(self.0, " {}={value:?}", field.name());
        }
    }

    impl tracing::Subscriber for Captured {
        fn enabled(&self, _: &Metadata<'_>) -> bool {
            true
        }
        fn new_span(&self, _: &Attributes<'_>) -> Id {
            Id::from_u64(1)
        }
        fn record(&self, _: &Id, _: &Record<'_>) {}
        fn record_follows_from(&self, _: &Id, _: &Id) {}
        fn event(&self, event: &Event<'_>) {
            let mut fields = Fields(event.metadata().level().to_string());
            event.record(&mut fields);
            self.0.lock().unwrap().push(fields.0);
        }
        fn enter(&self, _: &Id) {}
        fn exit(&self, _: &Id) {}
    }

    #[derive(Debug, Clone, PartialEq)]
    enum Action {
        Panic,
        /// The reducer panics on this one.
        Boom,
        /// A task feeds back `Boom`, then `Ok`.
        BoomThenOk,
        Fail,
        Load,
        Loaded,
        Ok,
    }

    fn reducer()
    -> impl composable_rust_core::Reducer<State = Vec<Action>, Action = Action, Environment = ()> + Send + Sync + 'static
    {
        reducer_fn(|seen: &mut Vec<Action>, action: Action, _: &()| {
            seen.push(action.clone());
            match action {
                Action::Panic => Effect::run(|_: ActionSink<Action>| async { panic!("boom in a task") }),
                Action::Boom => panic!("boom in the reducer"),
                Action::BoomThenOk => Effect::run(|sink: ActionSink<Action>| async move {
                    sink.send(Action::Boom);
                    sink.send(Action::Ok);
                }),
                Action::Fail => {
                    Effect::try_run(|_: ActionSink<Action>| async { Err::<(), _>("the mail server said no") })
                }
                Action::Load => Effect::event_store(EventStoreOperation::read_stream(
                    StreamId::new("s-1").unwrap(),
                    StreamRange::all(),
                    |_| Action::Loaded,
                )),
                Action::Loaded | Action::Ok => Effect::None,
            }
        })
    }

    #[tokio::test]
    async fn a_panicking_task_is_reported_and_the_store_keeps_running() {
        let captured = Captured::default();
        let _guard = tracing::subscriber::set_default(captured.clone());
        let store = Store::new(reducer(), Vec::new(), ());
        store.send(Action::Panic).finished().await;
        store.send(Action::Ok);
        assert_eq!(store.state(Clone::clone), [Action::Panic, Action::Ok]);
        let errors = captured.errors();
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert!(errors[0].contains("panicked") && errors[0].contains("boom in a task"), "{errors:?}");
    }

    #[tokio::test]
    async fn a_reducer_panic_in_an_effect_and_the_actions_dropped_after_it_are_reported() {
        let captured = Captured::default();
        let _guard = tracing::subscriber::set_default(captured.clone());
        let store = Store::new(reducer(), Vec::new(), ());
        store.send(Action::BoomThenOk).finished().await;
        assert!(store.is_poisoned());
        assert_eq!(store.state(Clone::clone), [Action::BoomThenOk, Action::Boom], "Ok must not be reduced");
        let errors = captured.errors();
        assert_eq!(errors.len(), 2, "{errors:?}");
        assert!(errors[0].contains("poisoned") && errors[0].contains("boom in the reducer"), "{errors:?}");
        assert!(errors[1].contains("dropped") && errors[1].contains("poisoned"), "{errors:?}");
    }

    #[tokio::test]
    async fn a_task_error_is_reported() {
        let captured = Captured::default();
        let _guard = tracing::subscriber::set_default(captured.clone());
        let store = Store::new(reducer(), Vec::new(), ());
        store.send(Action::Fail).finished().await;
        let errors = captured.errors();
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert!(errors[0].contains("the mail server said no"), "{errors:?}");
    }

    #[tokio::test]
    async fn an_event_store_effect_without_an_event_store_is_reported_and_answered() {
        let captured = Captured::default();
        let _guard = tracing::subscriber::set_default(captured.clone());
        let store = Store::new(reducer(), Vec::new(), ());
        store.send(Action::Load).finished().await;
        assert_eq!(store.state(Clone::clone), [Action::Load, Action::Loaded], "the refusal was fed back at once");
        let errors = captured.errors();
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert!(errors[0].contains("no event store") && errors[0].contains("s-1"), "{errors:?}");
    }
}
