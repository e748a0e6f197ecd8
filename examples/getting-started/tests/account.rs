//! The Account aggregate as a reducer (`EventSourced<Account>`): tested step by step with a `TestStore`, then
//! run by a real `Store` on an event store.

use std::sync::Arc;

use composable_rust::aggregate::{LoadedAggregate, RunningCommand};
use composable_rust::memory::InMemoryEventStore;
use composable_rust::prelude::*;
use getting_started::account::{Account, AccountCommand, AccountError, AccountEvent};

type Action = AggregateAction<Account>;

fn teller() -> Metadata {
    Metadata::default().with_actor("teller")
}

fn not_loaded_yet() -> LoadedAggregate<Account> {
    LoadedAggregate { state: Account::default(), version: Version::INITIAL, snapshot_version: None }
}

/// Every step of one command: the load, the exact append, and what each answer does to the state.
#[test]
fn opening_an_account_loads_it_then_appends_exactly_one_event() {
    let id = Account::stream_id(7).unwrap();
    let open = AccountCommand::Open { owner: "ada".into() };
    let mut store =
        TestStore::new(EventSourced::<Account>::new(), Aggregates::default(), AggregateEnvironment::default());

    // The command starts running; the aggregate is not loaded yet.
    store.send(Action::command(id.clone(), open.clone(), teller()), |s| {
        s.slot_mut(&id).running = Some(RunningCommand::new(open.clone(), teller()));
    });
    // The reducer asks for the stream (latest snapshot plus the events after it); the test store answers it from
    // an in-memory event store once asserted.
    store.receive_request(EventStoreRequest::load(id.clone()));
    store.receive(Action::Loaded { stream_id: id.clone(), loaded: not_loaded_yet() }, |s| {
        let slot = s.slot_mut(&id);
        slot.loaded = Some(not_loaded_yet());
        slot.running.as_mut().unwrap().attempts = 1;
    });
    // The exact append: stream, expected version, events and their metadata.
    let opened = AccountEvent::Opened { owner: "ada".into() };
    store.receive_append(&id, ExpectedVersion::Exact(Version::INITIAL), [opened.clone()], &teller());
    store.receive(Action::Appended { stream_id: id.clone(), events: vec![opened], version: Version::new(1) }, |s| {
        let slot = s.slot_mut(&id);
        slot.running = None;
        let open = Account { owner: Some("ada".into()), balance: 0 };
        slot.loaded = Some(LoadedAggregate { state: open, version: Version::new(1), snapshot_version: None });
    });
    store.finish();
}

/// A refused command appends nothing: there is no append to assert, only the rejection.
#[test]
fn a_deposit_to_an_unopened_account_is_rejected() {
    let id = Account::stream_id(8).unwrap();
    let deposit = AccountCommand::Deposit { cents: 100 };
    let mut store =
        TestStore::new(EventSourced::<Account>::new(), Aggregates::default(), AggregateEnvironment::default());

    store.send(Action::command(id.clone(), deposit.clone(), teller()), |s| {
        s.slot_mut(&id).running = Some(RunningCommand::new(deposit.clone(), teller()));
    });
    store.receive_request(EventStoreRequest::load(id.clone()));
    store.receive(Action::Loaded { stream_id: id.clone(), loaded: not_loaded_yet() }, |s| {
        let slot = s.slot_mut(&id);
        slot.loaded = Some(not_loaded_yet());
        slot.running.as_mut().unwrap().attempts = 1;
    });
    store.receive(Action::Rejected { stream_id: id.clone(), error: AccountError::NotOpen }, |s| {
        s.slot_mut(&id).running = None;
    });
    store.finish();
}

/// The same reducer in a real `Store`, on an event store (here in memory; SQLite or PostgreSQL in production).
#[tokio::test]
async fn a_store_runs_commands_against_the_event_store() {
    let events = Arc::new(InMemoryEventStore::new());
    let store = Store::builder(EventSourced::<Account>::new(), Aggregates::default(), AggregateEnvironment::default())
        .event_store(events.clone())
        .build();
    let id = Account::stream_id(9).unwrap();
    let commands = [
        AccountCommand::Open { owner: "ada".into() },
        AccountCommand::Deposit { cents: 500 },
        AccountCommand::Withdraw { cents: 200 },
        AccountCommand::Withdraw { cents: 1_000 },
    ];
    for command in commands {
        store.send(Action::command(id.clone(), command, teller())).finished().await;
    }

    assert_eq!(store.state(|s| s.state(&id).map(|account| account.balance)), Some(300));
    assert_eq!(events.events(&id).len(), 3, "three events were stored; the refused withdrawal added none");
}
