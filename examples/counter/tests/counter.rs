//! The counter app tested step by step with a `TestStore`: every state change and every action the
//! delayed effects send back is asserted, and time moves only when the test says so.

use std::time::Duration;

use composable_rust_example_counter::{App, AppAction, CounterAction, app};
use composable_rust_testing::TestStore;

const DELAY: Duration = Duration::from_secs(1);

fn store() -> TestStore<impl composable_rust_core::Reducer<State = App, Action = AppAction, Environment = ()>> {
    TestStore::new(app(DELAY), App::default(), ())
}

#[test]
fn each_counter_changes_only_its_own_state() {
    let mut store = store();
    store.send(AppAction::Left(CounterAction::Increment), |app| app.left.count = 1);
    store.send(AppAction::Right(CounterAction::Decrement), |app| app.right.count = -1);
    store.send(AppAction::Left(CounterAction::Increment), |app| app.left.count = 2);
    store.finish();
}

#[test]
fn increment_later_fires_after_the_delay() {
    let mut store = store();
    store.send(AppAction::Left(CounterAction::IncrementLater), |app| app.left.pending = true);
    store.advance(DELAY);
    store.receive(AppAction::Left(CounterAction::DelayElapsed), |app| {
        app.left.pending = false;
        app.left.count = 1;
    });
    store.finish();
}

#[test]
fn pressing_increment_later_again_restarts_the_wait() {
    let mut store = store();
    store.send(AppAction::Left(CounterAction::IncrementLater), |app| app.left.pending = true);
    store.advance(Duration::from_millis(600));
    store.send(AppAction::Left(CounterAction::IncrementLater), |_| {});
    store.advance(Duration::from_millis(600)); // the first wait would have ended here
    store.advance(Duration::from_millis(400));
    store.receive(AppAction::Left(CounterAction::DelayElapsed), |app| {
        app.left.pending = false;
        app.left.count = 1;
    });
    store.finish();
}

#[test]
fn cancelling_one_counter_leaves_the_other_running() {
    let mut store = store();
    store.send(AppAction::Left(CounterAction::IncrementLater), |app| app.left.pending = true);
    store.send(AppAction::Right(CounterAction::IncrementLater), |app| app.right.pending = true);
    store.send(AppAction::Right(CounterAction::CancelLater), |app| app.right.pending = false);
    store.advance(DELAY);
    store.receive(AppAction::Left(CounterAction::DelayElapsed), |app| {
        app.left.pending = false;
        app.left.count = 1;
    });
    store.finish();
    assert_eq!(store.state().right.count, 0);
}

#[test]
fn reset_all_zeroes_both_counters_and_cancels_their_pending_increments() {
    let mut store = store();
    store.send(AppAction::Left(CounterAction::Increment), |app| app.left.count = 1);
    store.send(AppAction::Left(CounterAction::IncrementLater), |app| app.left.pending = true);
    store.send(AppAction::Right(CounterAction::IncrementLater), |app| app.right.pending = true);
    store.send(AppAction::ResetAll, |app| *app = App::default());
    store.advance(Duration::from_secs(10));
    store.finish();
}
