//! `TestStore`: the passing paths a user writes every day, and each failure it reports (message and the
//! line it points at).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test helpers outside #[test] functions; a failure should panic"
)]

use std::cell::RefCell;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Arc, Once};
use std::time::Duration;

use composable_rust_core::{
    Clock, CodecId, Effect, EffectId, EventId, EventStoreError, EventStoreOperation, EventStoreRequest,
    ExpectedVersion, Metadata, NewEvent, Reducer, StreamId, StreamRange, Version, reducer_fn,
};
use composable_rust_testing::{Exhaustivity, InMemoryEventStore, TestClock, TestStore};

#[derive(Debug, Clone, PartialEq, Default)]
struct Timer {
    ticks: u32,
    running: bool,
}

#[derive(Debug, Clone, PartialEq)]
enum Action {
    Start,
    Tick,
    Stop,
    /// Sends `Tick` back twice: once synchronously, once from a task.
    Echo,
}

struct TimerReducer;

impl Reducer for TimerReducer {
    type State = Timer;
    type Action = Action;
    type Environment = ();

    fn reduce(&self, state: &mut Timer, action: Action, _env: &()) -> Effect<Action> {
        let id = EffectId::new("timer");
        match action {
            Action::Start => {
                state.running = true;
                Effect::delay(Duration::from_secs(1), Action::Tick).cancellable(id)
            }
            Action::Tick => {
                state.ticks += 1;
                if state.running {
                    Effect::delay(Duration::from_secs(1), Action::Tick).cancellable(id)
                } else {
                    Effect::None
                }
            }
            Action::Stop => {
                state.running = false;
                Effect::cancel(id)
            }
            Action::Echo => Effect::merge([Effect::send(Action::Tick), Effect::future(async { Action::Tick })]),
        }
    }
}

fn store() -> TestStore<TimerReducer> {
    TestStore::new(TimerReducer, Timer::default(), ())
}

// ---------------------------------------------------------------- passing paths

#[test]
fn a_timer_fires_once_per_second_of_test_clock_and_stops_when_cancelled() {
    let mut store = store();
    store.send(Action::Start, |s| s.running = true);
    store.advance(Duration::from_secs(3));
    store.receive(Action::Tick, |s| s.ticks = 1);
    store.receive(Action::Tick, |s| s.ticks = 2);
    store.receive(Action::Tick, |s| s.ticks = 3);
    store.send(Action::Stop, |s| s.running = false);
    store.advance(Duration::from_secs(10));
    store.finish();
    assert_eq!(store.state(), &Timer { ticks: 3, running: false });
}

#[test]
fn nothing_fires_before_the_clock_reaches_the_deadline() {
    let mut store = store();
    store.send(Action::Start, |s| s.running = true);
    store.advance(Duration::from_millis(999));
    assert_eq!(store.clock().time_until_next_sleep(), Some(Duration::from_millis(1)));
    store.send(Action::Stop, |s| s.running = false);
    store.finish();
}

#[test]
fn actions_fed_back_synchronously_and_by_tasks_are_received_in_order() {
    let mut store = store();
    store.send(Action::Echo, |_| {});
    store.receive(Action::Tick, |s| s.ticks = 1);
    store.receive(Action::Tick, |s| s.ticks = 2);
    store.finish();
}

#[test]
fn skip_received_actions_moves_to_the_state_after_the_last_one() {
    let mut store = store();
    store.send(Action::Echo, |_| {});
    store.skip_received_actions();
    assert_eq!(store.state().ticks, 2);
    store.send(Action::Tick, |s| s.ticks = 3);
    store.finish();
}

#[test]
fn non_exhaustive_mode_checks_only_what_the_test_sets_and_skips_other_actions() {
    let mut store = TestStore::builder(TimerReducer, Timer::default(), ()).exhaustivity(Exhaustivity::Off).build();
    store.send(Action::Start, |_| {}); // `running` changed, but the test does not care
    store.advance(Duration::from_secs(3));
    store.receive(Action::Tick, |s| s.ticks = 1);
    store.send(Action::Stop, |s| s.running = false); // two unasserted ticks are skipped
    assert_eq!(store.state().ticks, 3);
    store.finish();
}

#[test]
fn the_test_clock_given_to_the_builder_is_the_one_delays_use() {
    let clock = TestClock::new();
    let mut store = TestStore::builder(TimerReducer, Timer::default(), ()).clock(clock.clone()).build();
    store.send(Action::Start, |s| s.running = true);
    assert_eq!(clock.pending_sleeps(), 1);
    store.advance(Duration::from_secs(1));
    assert_eq!(clock.now(), store.clock().now());
    store.receive(Action::Tick, |s| s.ticks = 1);
    store.send(Action::Stop, |s| s.running = false);
    store.finish();
}

// ---------------------------------------------------------------- event store effects

#[derive(Debug, Clone, PartialEq, Default)]
struct Notes {
    saved: Vec<String>,
    version: u64,
    loaded: Vec<String>,
}

#[derive(Debug, Clone, PartialEq)]
enum NoteAction {
    Save(String),
    Saved(Result<Version, String>),
    Load,
    Loaded(Result<Vec<String>, String>),
}

struct NotesReducer;

fn notes_stream() -> StreamId {
    StreamId::new("notes-1").unwrap()
}

impl Reducer for NotesReducer {
    type State = Notes;
    type Action = NoteAction;
    type Environment = ();

    fn reduce(&self, state: &mut Notes, action: NoteAction, _env: &()) -> Effect<NoteAction> {
        match action {
            NoteAction::Save(text) => {
                let event = note(&text);
                state.saved.push(text);
                let expected = ExpectedVersion::Exact(Version::new(state.version));
                Effect::event_store(EventStoreOperation::append(notes_stream(), expected, vec![event], |result| {
                    NoteAction::Saved(result.map(|r| r.stream_version).map_err(|e| e.to_string()))
                }))
            }
            NoteAction::Saved(Ok(version)) => {
                state.version = version.get();
                Effect::None
            }
            NoteAction::Saved(Err(_)) | NoteAction::Loaded(Err(_)) => Effect::None,
            NoteAction::Load => {
                Effect::event_store(EventStoreOperation::read_stream(notes_stream(), StreamRange::all(), |r| {
                    NoteAction::Loaded(
                        r.map(|events| events.iter().map(|e| e.decode::<String>().unwrap()).collect())
                            .map_err(|e| e.to_string()),
                    )
                }))
            }
            NoteAction::Loaded(Ok(texts)) => {
                state.loaded = texts;
                Effect::None
            }
        }
    }
}

/// A saved note; its id is derived from its text, so that a test can state the exact append.
fn note(text: &str) -> NewEvent {
    NewEvent {
        id: EventId::from(uuid::Uuid::new_v5(&uuid::Uuid::NAMESPACE_OID, text.as_bytes())),
        event_type: "NoteSaved.v1".into(),
        codec: CodecId::Json,
        payload: serde_json::to_vec(text).unwrap(),
        metadata: Metadata::default(),
        tags: Vec::new(),
    }
}

fn save_request(expected: u64, text: &str) -> EventStoreRequest {
    EventStoreRequest::append(notes_stream(), ExpectedVersion::Exact(Version::new(expected)), vec![note(text)])
}

#[test]
fn a_reducer_appends_and_loads_through_event_store_requests_the_test_asserts() {
    let events = Arc::new(InMemoryEventStore::new());
    let mut store = TestStore::builder(NotesReducer, Notes::default(), ()).event_store(events.clone()).build();
    store.send(NoteAction::Save("milk".into()), |s| s.saved = vec!["milk".into()]);
    store.receive_request(save_request(0, "milk"));
    store.receive(NoteAction::Saved(Ok(Version::new(1))), |s| s.version = 1);
    store.send(NoteAction::Save("eggs".into()), |s| s.saved.push("eggs".into()));
    store.receive_request(save_request(1, "eggs"));
    store.receive(NoteAction::Saved(Ok(Version::new(2))), |s| s.version = 2);
    store.send(NoteAction::Load, |_| {});
    store.receive_request(EventStoreRequest::ReadStream { stream_id: notes_stream(), range: StreamRange::all() });
    store.receive(NoteAction::Loaded(Ok(vec!["milk".into(), "eggs".into()])), |s| {
        s.loaded = vec!["milk".into(), "eggs".into()];
    });
    store.finish();
    assert_eq!(events.events(&notes_stream()).len(), 2);
}

#[test]
fn a_request_is_not_run_before_the_test_asserts_it() {
    let events = Arc::new(InMemoryEventStore::new());
    let mut store = TestStore::builder(NotesReducer, Notes::default(), ()).event_store(events.clone()).build();
    store.send(NoteAction::Save("milk".into()), |s| s.saved = vec!["milk".into()]);
    assert!(events.events(&notes_stream()).is_empty(), "the append ran before it was asserted");
    store.receive_request(save_request(0, "milk"));
    assert_eq!(events.events(&notes_stream()).len(), 1);
    store.receive(NoteAction::Saved(Ok(Version::new(1))), |s| s.version = 1);
    store.finish();
}

#[test]
fn a_stale_expected_version_comes_back_as_a_conflict() {
    let mut store = TestStore::new(NotesReducer, Notes::default(), ());
    let event_store = Arc::clone(store.event_store());
    store.block_on(event_store.append(&notes_stream(), ExpectedVersion::NoStream, vec![note("seed")])).unwrap();
    store.send(NoteAction::Save("late".into()), |s| s.saved = vec!["late".into()]);
    store.receive_request(save_request(0, "late"));
    store.receive_matching(
        "Saved(Err(concurrency conflict ..))",
        |a| matches!(a, NoteAction::Saved(Err(e)) if e.contains("concurrency conflict")),
        |_| {},
    );
    store.finish();
}

#[test]
fn a_test_can_answer_a_request_itself_and_the_event_store_is_not_touched() {
    let events = Arc::new(InMemoryEventStore::new());
    let mut store = TestStore::builder(NotesReducer, Notes::default(), ()).event_store(events.clone()).build();
    store.send(NoteAction::Save("milk".into()), |s| s.saved = vec!["milk".into()]);
    store
        .receive_request(save_request(0, "milk"))
        .reply(Err(EventStoreError::backend("append to notes-1", "connection reset by peer")));
    store.receive(NoteAction::Saved(Err("could not append to notes-1".into())), |_| {});
    store.finish();
    assert!(events.events(&notes_stream()).is_empty());
}

#[test]
fn non_exhaustive_mode_answers_requests_without_assertions() {
    let mut store = TestStore::builder(NotesReducer, Notes::default(), ()).exhaustivity(Exhaustivity::Off).build();
    store.send(NoteAction::Save("milk".into()), |s| s.saved = vec!["milk".into()]);
    store.receive(NoteAction::Saved(Ok(Version::new(1))), |s| s.version = 1);
    store.finish();
}

#[test]
fn skip_in_flight_effects_cancels_a_running_timer_so_finish_passes() {
    let mut store = store();
    store.send(Action::Start, |s| s.running = true);
    store.advance(Duration::from_secs(1));
    store.receive(Action::Tick, |s| s.ticks = 1);
    assert_eq!(store.effects_in_flight(), 1, "the timer re-armed itself");
    store.skip_in_flight_effects();
    assert_eq!(store.effects_in_flight(), 0);
    assert_eq!(store.clock().time_until_next_sleep(), None, "the cancelled delay no longer waits on the clock");
    // The timer never fires again: no tick arrives to be asserted.
    store.advance(Duration::from_secs(10));
    store.finish();
    assert_eq!(store.state(), &Timer { ticks: 1, running: true });
}

#[test]
fn skip_in_flight_effects_drops_a_request_waiting_to_be_asserted_and_nothing_is_written() {
    let events = Arc::new(InMemoryEventStore::new());
    let mut store = TestStore::builder(NotesReducer, Notes::default(), ()).event_store(events.clone()).build();
    store.send(NoteAction::Save("milk".into()), |s| s.saved = vec!["milk".into()]);
    store.skip_in_flight_effects();
    store.finish();
    assert!(events.events(&notes_stream()).is_empty(), "a skipped append must not run");
}

#[test]
fn skip_in_flight_effects_keeps_actions_already_fed_back() {
    let mut store = store();
    store.send(Action::Echo, |_| {});
    store.skip_in_flight_effects();
    store.receive(Action::Tick, |s| s.ticks = 1);
    store.receive(Action::Tick, |s| s.ticks = 2);
    store.finish();
}

#[test]
fn with_exhaustivity_off_checks_only_what_the_steps_set_then_is_exhaustive_again() {
    let mut store = store();
    store.with_exhaustivity(Exhaustivity::Off, |store| {
        store.send(Action::Start, |_| {}); // `running` changed, but these steps do not care
        store.advance(Duration::from_secs(2));
        store.receive(Action::Tick, |s| s.ticks = 1); // the second tick is skipped when the steps end
    });
    assert_eq!(store.state(), &Timer { ticks: 2, running: true });
    // Exhaustive again: the next tick must be asserted, and with the whole state.
    store.advance(Duration::from_secs(1));
    store.receive(Action::Tick, |s| s.ticks = 3);
    store.send(Action::Stop, |s| s.running = false);
    store.finish();
}

#[test]
fn with_exhaustivity_off_answers_requests_from_the_event_store_then_holds_them_again() {
    let events = Arc::new(InMemoryEventStore::new());
    let mut store = TestStore::builder(NotesReducer, Notes::default(), ()).event_store(events.clone()).build();
    let version = store.with_exhaustivity(Exhaustivity::Off, |store| {
        store.send(NoteAction::Save("milk".into()), |s| s.saved = vec!["milk".into()]);
        store.receive(NoteAction::Saved(Ok(Version::new(1))), |_| {});
        store.state().version
    });
    assert_eq!(version, 1);
    store.send(NoteAction::Save("eggs".into()), |s| s.saved.push("eggs".into()));
    assert_eq!(events.events(&notes_stream()).len(), 1, "the append waits for its assertion again");
    store.receive_request(save_request(1, "eggs"));
    store.receive(NoteAction::Saved(Ok(Version::new(2))), |s| s.version = 2);
    store.finish();
}

// ---------------------------------------------------------------- failures

thread_local! {
    static PANIC_LOCATION: RefCell<Option<String>> = const { RefCell::new(None) };
}

/// Runs `test`, which must fail, and returns its message and the `file:line` the failure points at.
fn failure(test: impl FnOnce()) -> (String, String) {
    static HOOK: Once = Once::new();
    HOOK.call_once(|| {
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let location = info.location().map(|l| format!("{}:{}", l.file(), l.line()));
            PANIC_LOCATION.with(|cell| *cell.borrow_mut() = location);
            default(info);
        }));
    });
    let payload = catch_unwind(AssertUnwindSafe(test)).expect_err("the test store should have failed");
    let message = payload
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| payload.downcast_ref::<&str>().map(|s| (*s).to_owned()))
        .unwrap();
    let location = PANIC_LOCATION.with(|cell| cell.borrow_mut().take()).unwrap();
    (message, location)
}

fn this_line(line: u32) -> String {
    format!("{}:{line}", file!())
}

#[test]
fn a_wrong_state_fails_with_a_headline_a_minimal_diff_and_the_test_line() {
    let (message, location) = failure(|| {
        let mut store = store();
        store.send(Action::Tick, |s| s.ticks = 2);
    });
    assert_eq!(location, this_line(line!() - 2));
    assert_eq!(
        message,
        concat!(
            "state after `Tick` does not match\n\n",
            "  at ticks:\n",
            "    Timer {\n",
            "  -     ticks: 2,\n",
            "  +     ticks: 1,\n",
            "        running: false,\n",
            "    }\n",
            "\n(expected: -, actual: +)\n",
        )
    );
}

#[test]
fn sending_before_receiving_fed_back_actions_fails_and_lists_them() {
    let (message, location) = failure(|| {
        let mut store = store();
        store.send(Action::Echo, |_| {});
        store.send(Action::Stop, |_| {});
    });
    assert_eq!(location, this_line(line!() - 2));
    assert!(message.starts_with("must handle 2 received actions before sending `Stop`\n"), "{message}");
    assert!(message.contains("unhandled received actions (2):\n  1. Tick\n  2. Tick\n"), "{message}");
    assert!(message.contains("hint: assert them with `receive`"), "{message}");
}

#[test]
fn receiving_a_different_action_fails_with_a_diff_of_the_actions() {
    let (message, location) = failure(|| {
        let mut store = store();
        store.send(Action::Echo, |_| {});
        store.receive(Action::Stop, |_| {});
    });
    assert_eq!(location, this_line(line!() - 2));
    assert!(message.starts_with("received `Tick`, but expected `Stop`\n\n  - Stop\n  + Tick\n"), "{message}");
}

#[test]
fn receiving_when_a_delay_has_not_fired_hints_at_advancing_the_clock() {
    let (message, location) = failure(|| {
        let mut store =
            TestStore::builder(TimerReducer, Timer::default(), ()).timeout(Duration::from_millis(50)).build();
        store.send(Action::Start, |s| s.running = true);
        store.receive(Action::Tick, |s| s.ticks = 1);
    });
    assert_eq!(location, this_line(line!() - 2));
    assert!(message.starts_with("expected to receive `Tick`, but no action was received\n"), "{message}");
    assert!(
        message.contains("hint: 1 effect is waiting on the test clock (the next is due in 1s); call `advance`"),
        "{message}"
    );
}

#[test]
fn receiving_when_no_effect_runs_says_so() {
    let (message, _) = failure(|| {
        let mut store =
            TestStore::builder(TimerReducer, Timer::default(), ()).timeout(Duration::from_millis(10)).build();
        store.send(Action::Stop, |_| {});
        store.receive(Action::Tick, |_| {});
    });
    assert!(message.contains("hint: no effect is running, so nothing can send it"), "{message}");
}

#[test]
fn receiving_from_a_slow_effect_waits_then_suggests_a_longer_timeout() {
    #[derive(Debug, Clone, PartialEq)]
    enum Slow {
        Go,
        Done,
    }
    let (message, _) = failure(|| {
        let reducer = reducer_fn(|(): &mut (), action: Slow, _: &()| match action {
            Slow::Go => Effect::future(async {
                tokio::time::sleep(Duration::from_secs(30)).await; // real time, not the test clock
                Slow::Done
            }),
            Slow::Done => Effect::None,
        });
        let mut store = TestStore::builder(reducer, (), ()).timeout(Duration::from_millis(20)).build();
        store.send(Slow::Go, |()| {});
        store.receive(Slow::Done, |()| {});
    });
    assert!(
        message.contains("hint: 1 effect is still running but sent nothing within 20ms; if it does slow real work"),
        "{message}"
    );
}

#[test]
fn a_wrong_state_after_a_received_action_names_it() {
    let (message, _) = failure(|| {
        let mut store = store();
        store.send(Action::Echo, |_| {});
        store.receive(Action::Tick, |s| s.ticks = 5);
    });
    assert!(message.starts_with("state after receiving `Tick` does not match\n\n"), "{message}");
    assert!(message.contains("  -     ticks: 5,\n  +     ticks: 1,\n"), "{message}");
}

#[test]
fn with_exhaustivity_on_inside_a_non_exhaustive_test_fails_on_a_wrong_state_at_the_test_line() {
    let (message, location) = failure(|| {
        let mut store = TestStore::builder(TimerReducer, Timer::default(), ()).exhaustivity(Exhaustivity::Off).build();
        store.with_exhaustivity(Exhaustivity::On, |store| {
            store.send(Action::Start, |_| {});
        });
    });
    assert_eq!(location, this_line(line!() - 3));
    assert!(message.starts_with("state after `Start` does not match\n"), "{message}");
    assert!(message.contains("running"), "{message}");
}

#[test]
fn finish_fails_on_received_actions_that_were_not_asserted() {
    let (message, location) = failure(|| {
        let mut store = store();
        store.send(Action::Echo, |_| {});
        store.receive(Action::Tick, |s| s.ticks = 1);
        store.finish();
    });
    assert_eq!(location, this_line(line!() - 2));
    assert!(message.starts_with("1 received action was not asserted at the end of the test\n"), "{message}");
    assert!(message.contains("  1. Tick\n"), "{message}");
}

#[test]
fn finish_fails_on_effects_still_running_and_points_at_the_clock() {
    let (message, location) = failure(|| {
        let mut store =
            TestStore::builder(TimerReducer, Timer::default(), ()).timeout(Duration::from_millis(20)).build();
        store.send(Action::Start, |s| s.running = true);
        store.finish();
    });
    assert_eq!(location, this_line(line!() - 2));
    assert!(message.starts_with("1 effect is still running at the end of the test\n"), "{message}");
    assert!(message.contains("1 of them is waiting on the test clock (the next is due in 1s)"), "{message}");
    assert!(message.contains("hint: `advance` the test clock"), "{message}");
}

#[test]
fn dropping_a_store_with_work_left_over_fails_naming_the_tests_lines_with_a_hint() {
    let (message, _) = failure(|| {
        let mut store =
            TestStore::builder(TimerReducer, Timer::default(), ()).timeout(Duration::from_millis(20)).build();
        store.send(Action::Echo, |_| {});
    });
    // A panic in `Drop` is reported at the drop glue, so the message itself names the test's lines.
    let (built, sent) = (this_line(line!() - 4), this_line(line!() - 3));
    let headline = message.lines().next().unwrap_or_default();
    assert!(headline.starts_with(&format!("the TestStore created at {built}:")), "{message}");
    assert!(
        headline.contains(&format!(" was dropped with work left over after its last step at {sent}:")),
        "{message}"
    );
    assert!(message.contains("unhandled received actions (2):"), "{message}");
    assert!(message.contains("hint: end the test with `store.finish()`"), "{message}");
}

#[test]
fn a_test_store_cannot_be_made_inside_a_tokio_runtime() {
    let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
    let (message, _) = failure(|| {
        runtime.block_on(async {
            let _store = store();
        });
    });
    assert!(message.contains("write the test as a plain #[test] fn instead of #[tokio::test]"), "{message}");
}
