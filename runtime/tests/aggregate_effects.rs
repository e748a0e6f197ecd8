//! Aggregates inside a `Store`: a reducer returns `Repository::execute_operation` as an
//! `Effect::EventStore`, and the command runs against the event store the store was built with.

use std::sync::Arc;

use composable_rust_core::{
    Aggregate, Effect, EventStore, EventStoreRequest, Metadata, Reducer, StreamId, StreamRange, Version,
};
use composable_rust_runtime::{Repository, RepositoryConfig, Store};
use composable_rust_testing::aggregate_scenarios::{Account, AccountCommand, new_account_id};
use composable_rust_testing::{InMemoryEventStore, TestStore};

#[derive(Debug, Clone, PartialEq)]
enum Action {
    Command(StreamId, AccountCommand),
    Done(Result<Version, String>),
}

#[derive(Debug, Clone, Default, PartialEq)]
struct Outcomes {
    succeeded: u32,
    last: Option<Result<Version, String>>,
}

struct Accounts;

struct Env {
    accounts: Repository<Account>,
}

impl Reducer for Accounts {
    type State = Outcomes;
    type Action = Action;
    type Environment = Env;

    fn reduce(&self, state: &mut Outcomes, action: Action, env: &Env) -> Effect<Action> {
        match action {
            Action::Command(id, command) => {
                Effect::event_store(env.accounts.execute_operation(id, command, Metadata::default(), |result| {
                    Action::Done(result.map(|done| done.version).map_err(|e| e.to_string()))
                }))
            }
            Action::Done(result) => {
                state.succeeded += u32::from(result.is_ok());
                state.last = Some(result);
                Effect::None
            }
        }
    }
}

fn open() -> AccountCommand {
    AccountCommand::Open { owner: "ada".into(), currency: "EUR".into() }
}

#[test]
fn commands_run_through_the_repository_in_a_test_store() {
    let events: Arc<dyn EventStore> = Arc::new(InMemoryEventStore::new());
    let env = Env { accounts: Repository::new(Arc::clone(&events)) };
    let mut store = TestStore::builder(Accounts, Outcomes::default(), env).event_store(Arc::clone(&events)).build();
    let id = new_account_id();

    store.send(Action::Command(id.clone(), open()), |_| {});
    store.receive(Action::Done(Ok(Version::new(1))), |s| {
        s.succeeded = 1;
        s.last = Some(Ok(Version::new(1)));
    });
    store.send(Action::Command(id.clone(), AccountCommand::Deposit(5)), |_| {});
    store.receive(Action::Done(Ok(Version::new(2))), |s| {
        s.succeeded = 2;
        s.last = Some(Ok(Version::new(2)));
    });
    store.send(Action::Command(id.clone(), AccountCommand::Withdraw(9)), |_| {});
    store.receive(Action::Done(Err("insufficient funds: balance 5, requested 9".into())), |s| {
        s.last = Some(Err("insufficient funds: balance 5, requested 9".into()));
    });
    store.finish();

    let stored = store.block_on(events.load_stream(&id, StreamRange::all())).unwrap();
    assert_eq!(stored.len(), 2, "the rejected withdrawal appended nothing");
}

#[test]
fn the_operation_is_inspectable_and_survives_effect_map() {
    let events: Arc<dyn EventStore> = Arc::new(InMemoryEventStore::new());
    let env = Env { accounts: Repository::new(Arc::clone(&events)) };
    let id = new_account_id();
    let effect = Accounts.reduce(&mut Outcomes::default(), Action::Command(id.clone(), open()), &env);
    let Effect::EventStore(operation) = effect.map(|action| vec![action]) else {
        panic!("a command becomes an event store effect");
    };
    assert_eq!(
        operation.request(),
        &EventStoreRequest::Custom { stream_id: id.clone(), description: format!("execute command on {id}") }
    );
    assert_eq!(operation.request().stream_id(), &id);

    let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
    let action = runtime.block_on(operation.execute(&events));
    assert_eq!(action, Some(vec![Action::Done(Ok(Version::new(1)))]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_sends_to_a_store_lose_no_update() {
    let events: Arc<dyn EventStore> = Arc::new(InMemoryEventStore::new());
    let config = RepositoryConfig::default().with_max_conflict_retries(1_000);
    let env = Env { accounts: Repository::with_config(Arc::clone(&events), config) };
    let store = Store::builder(Accounts, Outcomes::default(), env).event_store(Arc::clone(&events)).build();
    let id = new_account_id();
    store.send(Action::Command(id.clone(), open())).finished().await;

    let handles: Vec<_> =
        (1..=40).map(|amount| store.send(Action::Command(id.clone(), AccountCommand::Deposit(amount)))).collect();
    for handle in handles {
        handle.finished().await;
    }
    assert_eq!(store.state(|s| s.succeeded), 41);
    store.environment().accounts.flush_snapshots().await;
    let account = store.environment().accounts.load(&id).await.unwrap().state;
    assert_eq!((account.deposits, account.balance), (40, (1..=40).sum()));
    assert_eq!(events.stream_version(&id).await.unwrap(), Version::new(41));
    assert_eq!(Account::CATEGORY, id.category());
}
