//! Runs the counter app with a real `Store` and prints what happens.

use std::time::Duration;

use composable_rust_example_counter::{App, AppAction, CounterAction, app};
use composable_rust_runtime::Store;

fn show(label: &str, store: &Store<impl composable_rust_core::Reducer<State = App>>) {
    let (left, right) = store.state(|app| (app.left.clone(), app.right.clone()));
    println!(
        "{label:<42} left = {:>2}{}   right = {:>2}{}",
        left.count,
        if left.pending { " (+1 pending)" } else { "             " },
        right.count,
        if right.pending { " (+1 pending)" } else { "" },
    );
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let delay = Duration::from_millis(300);
    let store = Store::new(app(delay), App::default(), ());

    store.send(AppAction::Left(CounterAction::Increment));
    store.send(AppAction::Left(CounterAction::Increment));
    store.send(AppAction::Right(CounterAction::Decrement));
    show("two increments left, one decrement right:", &store);

    let left_later = store.send(AppAction::Left(CounterAction::IncrementLater));
    let right_later = store.send(AppAction::Right(CounterAction::IncrementLater));
    show(&format!("both increment later ({delay:?}):"), &store);

    store.send(AppAction::Right(CounterAction::CancelLater));
    show("right cancels its pending increment:", &store);

    left_later.finished().await;
    right_later.finished().await;
    show("after the delay:", &store);

    store.send(AppAction::Left(CounterAction::IncrementLater));
    store.send(AppAction::ResetAll).finished().await;
    show("increment later, then reset all:", &store);
    store.idle().await; // the cancelled delay stops at its next poll
    println!("effects still running: {}", store.effects_in_flight());
}
