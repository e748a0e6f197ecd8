//! An aggregate as a reducer (`EventSourced`), tested step by step with a `TestStore`: every load, append
//! and snapshot is a request the test asserts, and every outcome an action it receives.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test helpers outside #[test] functions; a failure should panic"
)]

use composable_rust_core::backend::{EventLog, SnapshotStore};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;

use chrono::{TimeZone, Utc};
use composable_rust_core::{
    Aggregate, EventId, EventStore, EventStoreError, EventStoreRequest, ExpectedVersion, LoadRequest, LoadUntil,
    Metadata, StreamId, Version,
};
use composable_rust_runtime::{
    AggregateAction, AggregateEnvironment, AggregateFailure, Aggregates, EventSourced, LoadedAggregate,
    RepositoryConfig, RunningCommand, SnapshotPolicy,
};
use composable_rust_testing::aggregate_scenarios::{Account, AccountCommand, AccountError, AccountEvent};
use composable_rust_testing::{InMemoryEventStore, TestClock, TestStore};
use uuid::Uuid;

type Action = AggregateAction<Account>;

fn stream(id: &str) -> StreamId {
    Account::stream_id(id).unwrap()
}

fn v(n: u64) -> Version {
    Version::new(n)
}

fn metadata() -> Metadata {
    Metadata::correlated(Uuid::from_u128(7)).with_actor("teller")
}

fn open() -> AccountCommand {
    AccountCommand::Open { owner: "ada".into(), currency: "EUR".into() }
}

fn opened() -> AccountEvent {
    AccountEvent::Opened { owner: "ada".into(), currency: "EUR".into() }
}

fn command(id: &str, command: AccountCommand) -> Action {
    Action::command(stream(id), command, metadata())
}

fn running(command: AccountCommand, attempts: u32) -> Option<RunningCommand<Account>> {
    Some(RunningCommand { attempts, ..RunningCommand::new(command, metadata()) })
}

fn loaded(state: Account, version: u64) -> LoadedAggregate<Account> {
    LoadedAggregate { state, version: v(version), snapshot_version: None }
}

fn account(balance: u64, deposits: u64) -> Account {
    Account { owner: Some("ada".into()), currency: "EUR".into(), balance, deposits, closed: false }
}

struct Fixture {
    store: TestStore<EventSourced<Account>>,
    events: InMemoryEventStore,
    clock: TestClock,
}

fn fixture(config: RepositoryConfig) -> Fixture {
    let events = InMemoryEventStore::new();
    let clock = TestClock::starting_at(Utc.with_ymd_and_hms(2026, 11, 30, 9, 0, 0).unwrap());
    let env = AggregateEnvironment::new(Arc::new(clock.clone()));
    let store = TestStore::builder(EventSourced::with_config(config), Aggregates::default(), env)
        .event_store(Arc::new(events.clone()))
        .clock(clock.clone())
        .build();
    Fixture { store, events, clock }
}

fn accounts() -> Fixture {
    fixture(RepositoryConfig::default())
}

/// Opens account `id` through every step: command, load, loaded, append, appended.
#[track_caller]
fn open_account(store: &mut TestStore<EventSourced<Account>>, id: &str) {
    let s = stream(id);
    store.send(command(id, open()), |a| a.slot_mut(&s).running = running(open(), 0));
    store.receive_request(EventStoreRequest::load(s.clone()));
    store.receive(Action::Loaded { stream_id: s.clone(), loaded: loaded(Account::default(), 0) }, |a| {
        let slot = a.slot_mut(&s);
        slot.loaded = Some(loaded(Account::default(), 0));
        slot.running = running(open(), 1);
    });
    store.receive_append(&s, ExpectedVersion::Exact(v(0)), [opened()], &metadata());
    store.receive(Action::Appended { stream_id: s.clone(), events: vec![opened()], version: v(1) }, |a| {
        let slot = a.slot_mut(&s);
        slot.running = None;
        slot.loaded = Some(loaded(account(0, 0), 1));
    });
}

#[test]
fn a_command_loads_the_aggregate_decides_and_appends_exactly_the_asserted_events() {
    let Fixture { mut store, events, .. } = accounts();
    open_account(&mut store, "1");
    store.finish();
    let stored = events.events(&stream("1"));
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0].event_type, "AccountOpened.v2");
    assert_eq!(stored[0].metadata, metadata());
}

#[test]
fn a_loaded_aggregate_appends_the_next_command_without_loading_again() {
    let Fixture { mut store, .. } = accounts();
    open_account(&mut store, "1");
    let s = stream("1");
    store.send(command("1", AccountCommand::Deposit(30)), |a| {
        a.slot_mut(&s).running = running(AccountCommand::Deposit(30), 1);
    });
    let deposited = AccountEvent::Deposited { amount: 30 };
    store.receive_append(&s, ExpectedVersion::Exact(v(1)), [deposited.clone()], &metadata());
    store.receive(Action::Appended { stream_id: s.clone(), events: vec![deposited], version: v(2) }, |a| {
        let slot = a.slot_mut(&s);
        slot.running = None;
        slot.loaded = Some(loaded(account(30, 1), 2));
    });
    store.finish();
}

#[test]
fn a_rejected_command_appends_nothing() {
    let Fixture { mut store, events, .. } = accounts();
    open_account(&mut store, "1");
    let s = stream("1");
    store.send(command("1", AccountCommand::Withdraw(5)), |a| {
        a.slot_mut(&s).running = running(AccountCommand::Withdraw(5), 1);
    });
    let error = AccountError::InsufficientFunds { balance: 0, requested: 5 };
    store.receive(Action::Rejected { stream_id: s.clone(), error }, |a| a.slot_mut(&s).running = None);
    store.finish();
    assert_eq!(events.events(&s).len(), 1, "only the opening was stored");
}

#[test]
fn a_command_that_decides_no_events_writes_nothing() {
    let Fixture { mut store, .. } = accounts();
    open_account(&mut store, "1");
    let s = stream("1");
    store.send(command("1", AccountCommand::Deposit(0)), |a| {
        a.slot_mut(&s).running = running(AccountCommand::Deposit(0), 1);
    });
    store.receive(Action::Appended { stream_id: s.clone(), events: vec![], version: v(1) }, |a| {
        a.slot_mut(&s).running = None;
    });
    store.finish();
}

#[test]
fn a_conflict_reloads_and_decides_again_as_visible_steps() {
    let Fixture { mut store, events, .. } = accounts();
    open_account(&mut store, "1");
    let s = stream("1");
    // Another process deposits behind this store's back.
    let other = AccountEvent::Deposited { amount: 100 };
    let batch = EventSourced::<Account>::new()
        .append_request(&s, ExpectedVersion::Exact(v(1)), &[other], &Metadata::default())
        .unwrap();
    let EventStoreRequest::Append { events: batch, .. } = batch else { unreachable!() };
    store.block_on(events.append(&s, ExpectedVersion::Exact(v(1)), batch)).unwrap();

    // The cached aggregate is at version 1, so the append expects 1 and conflicts.
    store.send(command("1", AccountCommand::Deposit(5)), |a| {
        a.slot_mut(&s).running = running(AccountCommand::Deposit(5), 1);
    });
    let five = AccountEvent::Deposited { amount: 5 };
    store.receive_append(&s, ExpectedVersion::Exact(v(1)), [five.clone()], &metadata());
    store.receive(
        Action::Conflicted { stream_id: s.clone(), expected: ExpectedVersion::Exact(v(1)), actual: v(2) },
        |a| {
            a.slot_mut(&s).loaded = None;
        },
    );
    store.receive_request(EventStoreRequest::load(s.clone()));
    store.receive(Action::Loaded { stream_id: s.clone(), loaded: loaded(account(100, 1), 2) }, |a| {
        let slot = a.slot_mut(&s);
        slot.loaded = Some(loaded(account(100, 1), 2));
        slot.running = running(AccountCommand::Deposit(5), 2);
    });
    store.receive_append(&s, ExpectedVersion::Exact(v(2)), [five.clone()], &metadata());
    store.receive(Action::Appended { stream_id: s.clone(), events: vec![five], version: v(3) }, |a| {
        let slot = a.slot_mut(&s);
        slot.running = None;
        slot.loaded = Some(loaded(account(105, 2), 3));
    });
    store.finish();
}

#[test]
fn conflicts_stop_after_the_configured_retries_with_a_failure() {
    let Fixture { mut store, events, .. } = fixture(RepositoryConfig::default().with_max_conflict_retries(1));
    open_account(&mut store, "1");
    let s = stream("1");
    let five = AccountEvent::Deposited { amount: 5 };
    let conflict = || EventStoreError::ConcurrencyConflict {
        stream_id: stream("1"),
        expected: ExpectedVersion::Exact(v(1)),
        actual: v(9),
    };
    store.send(command("1", AccountCommand::Deposit(5)), |a| {
        a.slot_mut(&s).running = running(AccountCommand::Deposit(5), 1);
    });
    for attempt in 1..=2 {
        store.receive_append(&s, ExpectedVersion::Exact(v(1)), [five.clone()], &metadata()).reply(Err(conflict()));
        store.receive(
            Action::Conflicted { stream_id: s.clone(), expected: ExpectedVersion::Exact(v(1)), actual: v(9) },
            |a| {
                a.slot_mut(&s).loaded = None;
            },
        );
        if attempt == 2 {
            break;
        }
        store.receive_request(EventStoreRequest::load(s.clone()));
        store.receive(Action::Loaded { stream_id: s.clone(), loaded: loaded(account(0, 0), 1) }, |a| {
            let slot = a.slot_mut(&s);
            slot.loaded = Some(loaded(account(0, 0), 1));
            slot.running = running(AccountCommand::Deposit(5), 2);
        });
    }
    let error = AggregateFailure::Conflict { expected: ExpectedVersion::Exact(v(1)), actual: v(9), attempts: 2 };
    store.receive(Action::Failed { stream_id: s.clone(), error }, |a| a.slot_mut(&s).running = None);
    store.finish();
    assert_eq!(events.events(&s).len(), 1, "nothing was appended");
}

#[test]
fn an_outage_fails_the_command_and_the_next_one_loads_again() {
    let Fixture { mut store, .. } = accounts();
    open_account(&mut store, "1");
    let s = stream("1");
    let five = AccountEvent::Deposited { amount: 5 };
    store.send(command("1", AccountCommand::Deposit(5)), |a| {
        a.slot_mut(&s).running = running(AccountCommand::Deposit(5), 1);
    });
    store
        .receive_append(&s, ExpectedVersion::Exact(v(1)), [five.clone()], &metadata())
        .reply(Err(EventStoreError::backend("append to account-1", "connection reset by peer")));
    let error = AggregateFailure::Append(
        "event store backend failed while trying to append to account-1: connection reset by peer".into(),
    );
    store.receive(Action::Failed { stream_id: s.clone(), error }, |a| {
        let slot = a.slot_mut(&s);
        slot.running = None;
        slot.loaded = None;
    });
    store.send(command("1", AccountCommand::Deposit(5)), |a| {
        a.slot_mut(&s).running = running(AccountCommand::Deposit(5), 0);
    });
    store.receive_request(EventStoreRequest::load(s.clone()));
    store.skip_received_actions();
    store.receive_append(&s, ExpectedVersion::Exact(v(1)), [five.clone()], &metadata());
    store.skip_received_actions();
    store.finish();
}

#[test]
fn commands_for_one_stream_run_in_order_and_other_streams_run_concurrently() {
    let Fixture { mut store, .. } = accounts();
    let (one, two) = (stream("1"), stream("2"));
    store.send(command("1", open()), |a| a.slot_mut(&one).running = running(open(), 0));
    store.send(command("1", AccountCommand::Deposit(10)), |a| {
        a.slot_mut(&one).waiting.push_back(RunningCommand::new(AccountCommand::Deposit(10), metadata()));
    });
    store.send(command("2", open()), |a| a.slot_mut(&two).running = running(open(), 0));
    // Both streams load at once; the second command of stream 1 waits for the first.
    store.receive_request(EventStoreRequest::load(one.clone()));
    store.receive_request(EventStoreRequest::load(two.clone()));
    store.receive(Action::Loaded { stream_id: one.clone(), loaded: loaded(Account::default(), 0) }, |a| {
        let slot = a.slot_mut(&one);
        slot.loaded = Some(loaded(Account::default(), 0));
        slot.running = running(open(), 1);
    });
    store.receive(Action::Loaded { stream_id: two.clone(), loaded: loaded(Account::default(), 0) }, |a| {
        let slot = a.slot_mut(&two);
        slot.loaded = Some(loaded(Account::default(), 0));
        slot.running = running(open(), 1);
    });
    store.receive_append(&one, ExpectedVersion::Exact(v(0)), [opened()], &metadata());
    store.receive_append(&two, ExpectedVersion::Exact(v(0)), [opened()], &metadata());
    store.receive(Action::Appended { stream_id: one.clone(), events: vec![opened()], version: v(1) }, |a| {
        let slot = a.slot_mut(&one);
        slot.loaded = Some(loaded(account(0, 0), 1));
        slot.running = running(AccountCommand::Deposit(10), 1);
        slot.waiting.clear();
    });
    store.receive(Action::Appended { stream_id: two.clone(), events: vec![opened()], version: v(1) }, |a| {
        let slot = a.slot_mut(&two);
        slot.loaded = Some(loaded(account(0, 0), 1));
        slot.running = None;
    });
    let ten = AccountEvent::Deposited { amount: 10 };
    store.receive_append(&one, ExpectedVersion::Exact(v(1)), [ten.clone()], &metadata());
    store.receive(Action::Appended { stream_id: one.clone(), events: vec![ten], version: v(2) }, |a| {
        let slot = a.slot_mut(&one);
        slot.loaded = Some(loaded(account(10, 1), 2));
        slot.running = None;
    });
    store.finish();
}

#[test]
fn the_snapshot_policy_asks_for_a_snapshot_at_its_threshold() {
    let Fixture { mut store, events, clock } =
        fixture(RepositoryConfig::default().with_snapshot_policy(SnapshotPolicy::every(2)));
    open_account(&mut store, "1");
    let s = stream("1");
    let five = AccountEvent::Deposited { amount: 5 };
    store.send(command("1", AccountCommand::Deposit(5)), |a| {
        a.slot_mut(&s).running = running(AccountCommand::Deposit(5), 1);
    });
    store.receive_append(&s, ExpectedVersion::Exact(v(1)), [five.clone()], &metadata());
    store.receive(Action::Appended { stream_id: s.clone(), events: vec![five], version: v(2) }, |a| {
        let slot = a.slot_mut(&s);
        slot.running = None;
        slot.loaded = Some(LoadedAggregate { state: account(5, 1), version: v(2), snapshot_version: Some(v(2)) });
    });
    let env = AggregateEnvironment::new(Arc::new(clock));
    let snapshot = EventSourced::<Account>::new().snapshot_request(&s, &account(5, 1), v(2), &env).unwrap();
    store.receive_request(snapshot);
    store.finish();
    let saved = store.block_on(events.load_snapshot(&s)).unwrap().unwrap();
    assert_eq!(saved.version, v(2));
}

#[test]
fn an_unusable_snapshot_is_ignored_and_the_aggregate_replayed_from_its_first_event() {
    let Fixture { mut store, events, .. } = accounts();
    let s = stream("1");
    let request = EventSourced::<Account>::new()
        .append_request(&s, ExpectedVersion::NoStream, &[opened()], &Metadata::default())
        .unwrap();
    let EventStoreRequest::Append { events: batch, .. } = request else { unreachable!() };
    store.block_on(events.append(&s, ExpectedVersion::NoStream, batch)).unwrap();
    let mut snapshot = EventSourced::<Account>::new()
        .snapshot_request(&s, &account(0, 0), v(1), &AggregateEnvironment::default())
        .map(|r| match r {
            EventStoreRequest::SaveSnapshot(snapshot) => snapshot,
            _ => unreachable!(),
        })
        .unwrap();
    snapshot.payload = vec![0xff; 3];
    store.block_on(events.save_snapshot(&snapshot)).unwrap();

    store.send(command("1", AccountCommand::Close), |a| a.slot_mut(&s).running = running(AccountCommand::Close, 0));
    store.receive_request(EventStoreRequest::load(s.clone()));
    store.receive_matching("SnapshotIgnored", |a| matches!(a, Action::SnapshotIgnored { .. }), |_| {});
    store.receive_request(EventStoreRequest::Load(LoadRequest::latest(s.clone()).without_snapshot()));
    store.receive(Action::Loaded { stream_id: s.clone(), loaded: loaded(account(0, 0), 1) }, |a| {
        let slot = a.slot_mut(&s);
        slot.loaded = Some(loaded(account(0, 0), 1));
        slot.running = running(AccountCommand::Close, 1);
    });
    store.receive_append(&s, ExpectedVersion::Exact(v(1)), [AccountEvent::Closed], &metadata());
    store.skip_received_actions();
    store.finish();
}

#[test]
fn a_reducer_can_load_an_aggregate_as_of_a_version() {
    let Fixture { mut store, events, .. } = accounts();
    let s = stream("1");
    let history = [opened(), AccountEvent::Deposited { amount: 1 }, AccountEvent::Deposited { amount: 2 }];
    let request =
        EventSourced::<Account>::new().append_request(&s, ExpectedVersion::NoStream, &history, &metadata()).unwrap();
    let EventStoreRequest::Append { events: batch, .. } = request else { unreachable!() };
    store.block_on(events.append(&s, ExpectedVersion::NoStream, batch)).unwrap();

    let operation = EventSourced::<Account>::new().load_as_of(s.clone(), LoadUntil::Version(v(2)), |r| r);
    assert_eq!(
        operation.request(),
        &EventStoreRequest::Load(LoadRequest::latest(s.clone()).until(LoadUntil::Version(v(2))).without_snapshot())
    );
    let result = store.block_on(operation.execute(events_ref(&events)));
    assert_eq!(result, Some(Ok(loaded(account(1, 1), 2))));
    store.finish();
}

fn events_ref(events: &InMemoryEventStore) -> &dyn EventStore {
    events
}

#[test]
fn an_interrupted_append_is_sent_again_with_the_same_events_after_a_backoff() {
    let Fixture { mut store, events, .. } = accounts();
    open_account(&mut store, "1");
    let s = stream("1");
    let five = AccountEvent::Deposited { amount: 5 };
    store.send(command("1", AccountCommand::Deposit(5)), |a| {
        a.slot_mut(&s).running = running(AccountCommand::Deposit(5), 1);
    });
    let answer = store.receive_append(&s, ExpectedVersion::Exact(v(1)), [five.clone()], &metadata());
    let first = answer.request().cloned().unwrap();
    answer.reply(Err(EventStoreError::unavailable("append to account-1", "connection reset by peer")));
    store.receive_matching(
        "Interrupted",
        |a| matches!(a, Action::Interrupted { .. }),
        |a| {
            a.slot_mut(&s).running.as_mut().unwrap().retries = 1;
        },
    );
    // The same request, ids included, after the first backoff (50 ms by default) on the test clock.
    store.advance(std::time::Duration::from_millis(50));
    store.receive_request(first);
    store.receive(Action::Appended { stream_id: s.clone(), events: vec![five], version: v(2) }, |a| {
        let slot = a.slot_mut(&s);
        slot.running = None;
        slot.loaded = Some(loaded(account(5, 1), 2));
    });
    store.finish();
    assert_eq!(events.events(&s).len(), 2, "stored once");
}

#[test]
fn an_append_that_stays_unavailable_fails_after_the_configured_retries() {
    let config = RepositoryConfig::default().with_transient_retries(1, std::time::Duration::from_millis(10));
    let Fixture { mut store, .. } = fixture(config);
    open_account(&mut store, "1");
    let s = stream("1");
    let five = AccountEvent::Deposited { amount: 5 };
    let down = || EventStoreError::unavailable("append to account-1", "connection refused");
    store.send(command("1", AccountCommand::Deposit(5)), |a| {
        a.slot_mut(&s).running = running(AccountCommand::Deposit(5), 1);
    });
    store.receive_append(&s, ExpectedVersion::Exact(v(1)), [five.clone()], &metadata()).reply(Err(down()));
    store.receive_matching(
        "Interrupted",
        |a| matches!(a, Action::Interrupted { .. }),
        |a| {
            a.slot_mut(&s).running.as_mut().unwrap().retries = 1;
        },
    );
    store.advance(std::time::Duration::from_millis(10));
    store.receive_append(&s, ExpectedVersion::Exact(v(1)), [five], &metadata()).reply(Err(down()));
    store.receive_matching(
        "Interrupted",
        |a| matches!(a, Action::Interrupted { .. }),
        |a| {
            a.slot_mut(&s).running.as_mut().unwrap().retries = 2;
        },
    );
    let error = AggregateFailure::Unavailable(
        "the event store is unavailable while trying to append to account-1; retry, appends are idempotent: \
         connection refused"
            .into(),
    );
    store.receive(Action::Failed { stream_id: s.clone(), error }, |a| {
        let slot = a.slot_mut(&s);
        slot.running = None;
        slot.loaded = None;
    });
    store.finish();
}

#[test]
fn a_command_with_an_id_sent_again_is_already_applied_and_writes_nothing() {
    let Fixture { mut store, events, .. } = accounts();
    open_account(&mut store, "1");
    let s = stream("1");
    let key = Uuid::from_u128(0xfeed);
    let keyed = || RunningCommand::new(AccountCommand::Deposit(10), metadata()).with_command_id(key);
    let ten = AccountEvent::Deposited { amount: 10 };
    store.send(Action::command_once(s.clone(), key, AccountCommand::Deposit(10), metadata()), |a| {
        a.slot_mut(&s).running = Some(RunningCommand { attempts: 1, ..keyed() });
    });
    let answer = store.receive_append(&s, ExpectedVersion::Exact(v(1)), [ten.clone()], &metadata());
    let Some(EventStoreRequest::Append { events: batch, .. }) = answer.request() else { panic!("an append") };
    assert_eq!(batch[0].id, EventId::derived(key, 0), "the event's id derives from the command id");
    drop(answer);
    store.receive(Action::Appended { stream_id: s.clone(), events: vec![ten.clone()], version: v(2) }, |a| {
        let slot = a.slot_mut(&s);
        slot.running = None;
        slot.loaded = Some(loaded(account(10, 1), 2));
    });

    // Delivered again: decided again on the new state, appended with the same ids, recognised.
    store.send(Action::command_once(s.clone(), key, AccountCommand::Deposit(10), metadata()), |a| {
        a.slot_mut(&s).running = Some(RunningCommand { attempts: 1, ..keyed() });
    });
    store.receive_append(&s, ExpectedVersion::Exact(v(2)), [ten], &metadata());
    store.receive(Action::AlreadyApplied { stream_id: s.clone() }, |a| {
        let slot = a.slot_mut(&s);
        slot.running = None;
        slot.loaded = None;
    });
    store.finish();
    assert_eq!(events.events(&s).len(), 2, "the deposit is stored once");
}

// ---------------------------------------------------------------- failure messages

/// Runs `test`, which must fail, and returns its panic message.
fn failure(test: impl FnOnce()) -> String {
    let payload = catch_unwind(AssertUnwindSafe(test)).expect_err("the test store should have failed");
    payload
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| payload.downcast_ref::<&str>().map(|s| (*s).to_owned()))
        .unwrap()
}

/// Sends a deposit of 30 to an open account and returns the store, with the append not yet asserted.
fn deposit_pending() -> TestStore<EventSourced<Account>> {
    let Fixture { mut store, .. } = accounts();
    open_account(&mut store, "1");
    let s = stream("1");
    store.send(command("1", AccountCommand::Deposit(30)), |a| {
        a.slot_mut(&s).running = running(AccountCommand::Deposit(30), 1);
    });
    store
}

#[test]
fn an_unasserted_append_fails_at_finish_and_names_it() {
    let message = failure(|| deposit_pending().finish());
    assert!(message.starts_with("1 event store request was not asserted at the end of the test"), "{message}");
    assert!(message.contains("1. append 1 event to account-1 expecting version 1"), "{message}");
    assert!(message.contains("hint: assert each with `receive_request` or `receive_append`"), "{message}");
}

#[test]
fn an_append_with_the_wrong_events_fails_with_a_diff_of_the_decoded_events() {
    let message = failure(|| {
        let mut store = deposit_pending();
        let wrong = AccountEvent::Deposited { amount: 31 };
        store.receive_append(&stream("1"), ExpectedVersion::Exact(v(1)), [wrong], &metadata());
    });
    assert!(message.starts_with("the append to account-1 does not match"), "{message}");
    assert!(message.contains("  -                 amount: 31,"), "{message}");
    assert!(message.contains("  +                 amount: 30,"), "{message}");
    assert!(message.contains("(expected: -, actual: +)"), "{message}");
}

#[test]
fn an_append_with_the_wrong_expected_version_fails_with_a_diff() {
    let message = failure(|| {
        let mut store = deposit_pending();
        let event = AccountEvent::Deposited { amount: 30 };
        store.receive_append(&stream("1"), ExpectedVersion::Exact(v(0)), [event], &metadata());
    });
    assert!(message.starts_with("the append to account-1 does not match"), "{message}");
    assert!(
        message.contains("        expected: Exact(\n            Version(\n  -             0,\n  +             1,"),
        "{message}"
    );
}

#[test]
fn an_append_with_the_wrong_metadata_fails_with_a_diff() {
    let message = failure(|| {
        let mut store = deposit_pending();
        let event = AccountEvent::Deposited { amount: 30 };
        let other = Metadata::correlated(Uuid::from_u128(7)).with_actor("robot");
        store.receive_append(&stream("1"), ExpectedVersion::Exact(v(1)), [event], &other);
    });
    assert!(message.starts_with("the append to account-1 does not match"), "{message}");
    assert!(message.contains("-                     \"robot\","), "{message}");
    assert!(message.contains("+                     \"teller\","), "{message}");
}

#[test]
fn receiving_an_action_while_a_request_waits_says_to_assert_the_request_first() {
    let message = failure(|| {
        let mut store = deposit_pending();
        store.receive(
            Action::Appended {
                stream_id: stream("1"),
                events: vec![AccountEvent::Deposited { amount: 30 }],
                version: v(2),
            },
            |_| {},
        );
    });
    assert!(message.contains("but no action was received"), "{message}");
    assert!(message.contains("1. append 1 event to account-1 expecting version 1"), "{message}");
    assert!(message.contains("hint: assert the request with `receive_request` or `receive_append` first"), "{message}");
}

#[test]
fn expecting_a_request_when_none_was_made_says_so() {
    let message = failure(|| {
        let Fixture { mut store, .. } = accounts();
        store.receive_request(EventStoreRequest::load(stream("1")));
    });
    assert!(
        message.starts_with("expected the event store request `load account-1`, but no request was made"),
        "{message}"
    );
}

#[test]
fn a_request_of_another_kind_fails_naming_both() {
    let message = failure(|| {
        let Fixture { mut store, .. } = accounts();
        store.send(command("1", open()), |a| a.slot_mut(&stream("1")).running = running(open(), 0));
        store.receive_append(&stream("1"), ExpectedVersion::NoStream, [opened()], &metadata());
    });
    assert!(
        message.starts_with(
            "received the request `load account-1`, but expected an append of 1 event to account-1 expecting no stream"
        ),
        "{message}"
    );
}
