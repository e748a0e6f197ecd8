//! tests/account_store.rs: the Account aggregate driven by a Store, and tested with a TestStore.
//! (The aggregate is repeated from step 2 so that this file stands alone; in your project, `use` it from src.)
use std::sync::Arc;

use composable_rust::aggregate::{LoadedAggregate, RunningCommand};
use composable_rust::memory::InMemoryEventStore;
use composable_rust::prelude::*;
use composable_rust::testing::TestStore;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
enum AccountEvent {
    Opened { owner: String },
    Deposited { cents: u64 },
}

impl Event for AccountEvent {
    fn event_type(&self) -> &'static str {
        match self {
            Self::Opened { .. } => "AccountOpened.v1",
            Self::Deposited { .. } => "Deposited.v1",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
enum AccountCommand {
    Open { owner: String },
    Deposit { cents: u64 },
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
enum AccountError {
    #[error("the account is already open")]
    AlreadyOpen,
    #[error("the account is not open")]
    NotOpen,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
struct Account {
    owner: Option<String>,
    balance: u64,
}

impl Aggregate for Account {
    const CATEGORY: &'static str = "account";
    const EVENT_TYPES: &'static [&'static str] = &["AccountOpened.v1", "Deposited.v1"];
    const SNAPSHOT_SCHEMA_VERSION: u32 = 1;
    type Event = AccountEvent;
    type Command = AccountCommand;
    type Error = AccountError;

    fn apply(&mut self, event: &AccountEvent) {
        match event {
            AccountEvent::Opened { owner } => self.owner = Some(owner.clone()),
            AccountEvent::Deposited { cents } => self.balance += cents,
        }
    }

    fn decide(&self, command: &AccountCommand) -> Result<Vec<AccountEvent>, AccountError> {
        match (command, &self.owner) {
            (AccountCommand::Open { .. }, Some(_)) => Err(AccountError::AlreadyOpen),
            (AccountCommand::Open { owner }, None) => Ok(vec![AccountEvent::Opened { owner: owner.clone() }]),
            (AccountCommand::Deposit { .. }, None) => Err(AccountError::NotOpen),
            (AccountCommand::Deposit { cents }, Some(_)) => Ok(vec![AccountEvent::Deposited { cents: *cents }]),
        }
    }
}

type Action = AggregateAction<Account>;

fn teller() -> Metadata {
    Metadata::default().with_actor("teller")
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
    let empty = LoadedAggregate { state: Account::default(), version: Version::INITIAL, snapshot_version: None };
    store.receive(Action::Loaded { stream_id: id.clone(), loaded: empty.clone() }, |s| {
        let slot = s.slot_mut(&id);
        slot.loaded = Some(empty.clone());
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

/// A refused command appends nothing: there is no request to assert, only the rejection.
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
    let empty = LoadedAggregate { state: Account::default(), version: Version::INITIAL, snapshot_version: None };
    store.receive(Action::Loaded { stream_id: id.clone(), loaded: empty.clone() }, |s| {
        let slot = s.slot_mut(&id);
        slot.loaded = Some(empty.clone());
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
    store.send(Action::command(id.clone(), AccountCommand::Open { owner: "ada".into() }, teller())).finished().await;
    store.send(Action::command(id.clone(), AccountCommand::Deposit { cents: 250 }, teller())).finished().await;

    assert_eq!(store.state(|s| s.state(&id).map(|account| account.balance)), Some(250));
    assert_eq!(events.events(&id).len(), 2, "two events were stored");
}
