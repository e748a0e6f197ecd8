//! Aggregate scenarios that every backend runs: the runtime `Repository` against a real [`EventStore`].
//!
//! Each scenario takes an `Arc<dyn EventStore>`, works on fresh stream ids (so one database can hold
//! many runs) and panics with a message saying what broke. A backend runs them all with
//! [`aggregate_scenario_tests!`](crate::aggregate_scenario_tests):
//!
//! ```ignore
//! composable_rust_testing::aggregate_scenario_tests!(async { Arc::new(MyStore::connect().await) as Arc<dyn EventStore> });
//! ```
//!
//! The aggregate they use, [`Account`], is a small but complete example: commands that can be rejected,
//! a no-op command, a snapshot schema version and a two-step upcaster chain ([`account_upcasters`]).

use std::collections::BTreeSet;
use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use composable_rust_core::{
    Aggregate, AppendResult, CodecId, Event, EventDecodeError, EventStore, EventStoreError, ExpectedVersion, LoadUntil,
    Metadata, NewEvent, Snapshot, StreamId, StreamRange, Upcasters, Version, async_trait,
};
use composable_rust_runtime::{
    AggregateAction, AggregateEnvironment, Aggregates, EventSourced, LoadError, Repository, RepositoryConfig,
    RepositoryError, SnapshotIgnoreReason, SnapshotPolicy, Store,
};
use serde::{Deserialize, Serialize};

use crate::intercepted::{Intercept, Intercepted};

/// The events of [`Account`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum AccountEvent {
    /// The account was opened (`AccountOpened.v2`; v1 had no currency).
    Opened {
        /// Who owns it.
        owner: String,
        /// Its currency.
        currency: String,
    },
    /// Money came in (`Deposited.v1`).
    Deposited {
        /// How much.
        amount: u64,
    },
    /// Money went out (`Withdrawn.v1`).
    Withdrawn {
        /// How much.
        amount: u64,
    },
    /// The account was closed (`AccountClosed.v1`).
    Closed,
}

impl Event for AccountEvent {
    fn event_type(&self) -> &'static str {
        match self {
            Self::Opened { .. } => "AccountOpened.v2",
            Self::Deposited { .. } => "Deposited.v1",
            Self::Withdrawn { .. } => "Withdrawn.v1",
            Self::Closed => "AccountClosed.v1",
        }
    }
}

/// The commands of [`Account`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AccountCommand {
    /// Open the account.
    Open {
        /// Who owns it.
        owner: String,
        /// Its currency.
        currency: String,
    },
    /// Deposit money; depositing 0 changes nothing and appends nothing.
    Deposit(u64),
    /// Withdraw money, if the balance allows.
    Withdraw(u64),
    /// Close the account.
    Close,
}

/// Why [`Account`] rejects a command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AccountError {
    /// The account is already open.
    AlreadyOpen,
    /// The account has not been opened.
    NotOpen,
    /// The account is closed.
    Closed,
    /// The balance is too low.
    InsufficientFunds {
        /// The balance.
        balance: u64,
        /// The amount asked for.
        requested: u64,
    },
}

impl fmt::Display for AccountError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::AlreadyOpen => f.write_str("the account is already open"),
            Self::NotOpen => f.write_str("the account is not open; open it first"),
            Self::Closed => f.write_str("the account is closed"),
            Self::InsufficientFunds { balance, requested } => {
                write!(f, "insufficient funds: balance {balance}, requested {requested}")
            }
        }
    }
}

impl std::error::Error for AccountError {}

/// A bank account: the aggregate the scenarios, property tests and benchmarks use.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Account {
    /// The owner, once opened.
    pub owner: Option<String>,
    /// The currency, once opened.
    pub currency: String,
    /// The balance.
    pub balance: u64,
    /// How many deposits were made (a lost update shows up here).
    pub deposits: u64,
    /// Whether it was closed.
    pub closed: bool,
}

impl Aggregate for Account {
    const CATEGORY: &'static str = "account";
    const EVENT_TYPES: &'static [&'static str] =
        &["AccountOpened.v2", "Deposited.v1", "Withdrawn.v1", "AccountClosed.v1"];
    const SNAPSHOT_SCHEMA_VERSION: u32 = 1;
    type Event = AccountEvent;
    type Command = AccountCommand;
    type Error = AccountError;

    fn apply(&mut self, event: &AccountEvent) {
        match event {
            AccountEvent::Opened { owner, currency } => {
                self.owner = Some(owner.clone());
                self.currency.clone_from(currency);
            }
            AccountEvent::Deposited { amount } => {
                self.balance = self.balance.saturating_add(*amount);
                self.deposits += 1;
            }
            AccountEvent::Withdrawn { amount } => self.balance = self.balance.saturating_sub(*amount),
            AccountEvent::Closed => self.closed = true,
        }
    }

    fn decide(&self, command: &AccountCommand) -> Result<Vec<AccountEvent>, AccountError> {
        match command {
            AccountCommand::Open { .. } if self.owner.is_some() => Err(AccountError::AlreadyOpen),
            AccountCommand::Open { owner, currency } => {
                Ok(vec![AccountEvent::Opened { owner: owner.clone(), currency: currency.clone() }])
            }
            _ if self.owner.is_none() => Err(AccountError::NotOpen),
            _ if self.closed => Err(AccountError::Closed),
            AccountCommand::Deposit(0) => Ok(Vec::new()),
            AccountCommand::Deposit(amount) => Ok(vec![AccountEvent::Deposited { amount: *amount }]),
            AccountCommand::Withdraw(amount) if *amount > self.balance => {
                Err(AccountError::InsufficientFunds { balance: self.balance, requested: *amount })
            }
            AccountCommand::Withdraw(amount) => Ok(vec![AccountEvent::Withdrawn { amount: *amount }]),
            AccountCommand::Close => Ok(vec![AccountEvent::Closed]),
        }
    }
}

/// How `AccountCreated.v1` events were written, before the account was renamed to "opened".
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum AccountCreatedV1 {
    /// The only variant.
    Created {
        /// The owner's name.
        name: String,
    },
}

/// How `AccountOpened.v1` events were written, before accounts had a currency.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum AccountOpenedV1 {
    /// The only variant.
    Opened {
        /// The owner.
        owner: String,
    },
}

/// The upcaster chain `AccountCreated.v1 -> AccountOpened.v1 -> AccountOpened.v2` (currency `EUR`).
#[must_use]
pub fn account_upcasters() -> Upcasters<AccountEvent> {
    Upcasters::new()
        .register("AccountCreated.v1", "AccountOpened.v1", |AccountCreatedV1::Created { name }| {
            AccountOpenedV1::Opened { owner: name }
        })
        .register("AccountOpened.v1", "AccountOpened.v2", |AccountOpenedV1::Opened { owner }| AccountEvent::Opened {
            owner,
            currency: "EUR".to_owned(),
        })
}

/// A fresh account stream id, unique across runs.
#[must_use]
pub fn new_account_id() -> StreamId {
    match Account::stream_id(uuid::Uuid::new_v4().simple()) {
        Ok(id) => id,
        Err(error) => panic!("a uuid makes a valid stream id: {error}"),
    }
}

fn open() -> AccountCommand {
    AccountCommand::Open { owner: "ada".to_owned(), currency: "EUR".to_owned() }
}

#[track_caller]
fn ok<T, E: fmt::Display>(result: Result<T, E>, what: &str) -> T {
    match result {
        Ok(value) => value,
        Err(error) => panic!("{what} failed: {error}"),
    }
}

fn raw_event<T: Serialize>(event_type: &str, value: &T) -> NewEvent {
    NewEvent {
        id: composable_rust_core::EventId::generate(),
        event_type: event_type.to_owned(),
        codec: CodecId::Bincode,
        payload: ok(CodecId::Bincode.encode(value), "encoding a raw event"),
        metadata: Metadata::default(),
        tags: Vec::new(),
    }
}

/// Commands append events, a load returns the same state, versions count from 1.
pub async fn execute_then_load_round_trips(store: Arc<dyn EventStore>) {
    let repo = Repository::<Account>::new(store);
    let id = new_account_id();
    let empty = ok(repo.load(&id).await, "loading an unknown aggregate");
    assert_eq!((empty.state, empty.version), (Account::default(), Version::INITIAL), "unknown aggregates load empty");

    let opened = ok(repo.execute(&id, open(), Metadata::default()).await, "open");
    assert_eq!(opened.version, Version::new(1), "the first event is version 1");
    ok(repo.execute(&id, AccountCommand::Deposit(30), Metadata::default()).await, "deposit");
    let last = ok(repo.execute(&id, AccountCommand::Withdraw(12), Metadata::default()).await, "withdraw");
    assert_eq!(last.version, Version::new(3));
    assert_eq!(last.events, vec![AccountEvent::Withdrawn { amount: 12 }]);

    let loaded = ok(repo.load(&id).await, "load");
    assert_eq!(loaded.version, Version::new(3));
    assert_eq!(loaded.state, last.state, "a load sees what execute returned");
    assert_eq!(loaded.state.balance, 18);
    assert_eq!(loaded.metrics.events_replayed, 3);
    assert_eq!(loaded.metrics.snapshot_version, None);
}

/// A rejected command returns the domain error and writes nothing; an empty decision writes nothing.
pub async fn domain_error_appends_nothing(store: Arc<dyn EventStore>) {
    let repo = Repository::<Account>::new(Arc::clone(&store));
    let id = new_account_id();
    match repo.execute(&id, AccountCommand::Deposit(5), Metadata::default()).await {
        Err(RepositoryError::Domain(AccountError::NotOpen)) => {}
        other => panic!("depositing into an unopened account must be NotOpen, got {other:?}"),
    }
    assert_eq!(ok(store.stream_version(&id).await, "stream_version"), Version::INITIAL);

    ok(repo.execute(&id, open(), Metadata::default()).await, "open");
    let err = repo.execute(&id, AccountCommand::Withdraw(1), Metadata::default()).await;
    assert_eq!(
        err.as_ref().err().and_then(RepositoryError::domain),
        Some(&AccountError::InsufficientFunds { balance: 0, requested: 1 })
    );
    let noop = ok(repo.execute(&id, AccountCommand::Deposit(0), Metadata::default()).await, "deposit 0");
    assert!(noop.events.is_empty());
    assert_eq!(noop.version, Version::new(1));
    assert_eq!(ok(store.stream_version(&id).await, "stream_version"), Version::new(1), "nothing was appended");
}

/// Metadata given to `execute` is stored with every event of the command.
pub async fn metadata_is_stored_with_the_events(store: Arc<dyn EventStore>) {
    let repo = Repository::<Account>::new(Arc::clone(&store));
    let id = new_account_id();
    let metadata = Metadata::correlated(uuid::Uuid::new_v4()).with_actor("teller-7");
    ok(repo.execute(&id, open(), metadata.clone()).await, "open");
    let stored = ok(store.load_stream(&id, StreamRange::all()).await, "load_stream");
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0].metadata, metadata);
    assert_eq!(stored[0].event_type, "AccountOpened.v2");
}

/// The policy snapshots every N events in the background; loads start from it and equal full replay.
pub async fn snapshots_follow_the_policy_and_equal_full_replay(store: Arc<dyn EventStore>) {
    let config = RepositoryConfig::default().with_snapshot_policy(SnapshotPolicy::every(5));
    let repo = Repository::<Account>::with_config(Arc::clone(&store), config);
    let id = new_account_id();
    ok(repo.execute(&id, open(), Metadata::default()).await, "open");
    let mut started = Vec::new();
    for amount in 1..=11 {
        let done = ok(repo.execute(&id, AccountCommand::Deposit(amount), Metadata::default()).await, "deposit");
        started.extend(done.snapshot_started);
    }
    repo.flush_snapshots().await;
    assert_eq!(started, vec![Version::new(5), Version::new(10)], "a snapshot every 5 events");
    let snapshot = ok(store.load_snapshot(&id).await, "load_snapshot");
    assert_eq!(snapshot.map(|s| (s.version, s.schema_version)), Some((Version::new(10), 1)));

    let loaded = ok(repo.load(&id).await, "load");
    assert_eq!(loaded.metrics.snapshot_version, Some(Version::new(10)));
    assert_eq!(loaded.metrics.events_replayed, 2);
    let full = ok(repo.load_without_snapshot(&id).await, "full replay");
    assert_eq!(full.metrics.events_replayed, 12);
    assert_eq!((loaded.state, loaded.version), (full.state, full.version), "snapshot + tail == full replay");
}

/// With `SnapshotPolicy::Never` no snapshot is written.
pub async fn snapshots_can_be_turned_off(store: Arc<dyn EventStore>) {
    let config = RepositoryConfig::default().with_snapshot_policy(SnapshotPolicy::Never);
    let repo = Repository::<Account>::with_config(Arc::clone(&store), config);
    let id = new_account_id();
    ok(repo.execute(&id, open(), Metadata::default()).await, "open");
    for _ in 0..3 {
        let done = ok(repo.execute(&id, AccountCommand::Deposit(1), Metadata::default()).await, "deposit");
        assert_eq!(done.snapshot_started, None);
    }
    repo.flush_snapshots().await;
    assert!(ok(store.load_snapshot(&id).await, "load_snapshot").is_none());
}

/// A snapshot that does not decode, or has another schema version, is ignored and replaced later.
pub async fn unusable_snapshots_fall_back_to_full_replay(store: Arc<dyn EventStore>) {
    let config = RepositoryConfig::default().with_snapshot_policy(SnapshotPolicy::every(3));
    let repo = Repository::<Account>::with_config(Arc::clone(&store), config);
    let id = new_account_id();
    ok(repo.execute(&id, open(), Metadata::default()).await, "open");
    ok(repo.execute(&id, AccountCommand::Deposit(7), Metadata::default()).await, "deposit");
    let expected = ok(repo.load_without_snapshot(&id).await, "full replay").state;

    let corrupt = Snapshot {
        stream_id: id.clone(),
        version: Version::new(2),
        schema_version: Account::SNAPSHOT_SCHEMA_VERSION,
        codec: CodecId::Bincode,
        payload: vec![0xff; 3],
        taken_at: chrono::Utc::now(),
    };
    ok(store.save_snapshot(&corrupt).await, "saving a corrupt snapshot");
    let loaded = ok(repo.load(&id).await, "load with a corrupt snapshot");
    assert_eq!(loaded.state, expected, "the corrupt snapshot is ignored");
    assert_eq!((loaded.metrics.snapshot_version, loaded.metrics.events_replayed), (None, 2));
    let ignored = loaded.metrics.ignored_snapshot.unwrap_or_else(|| panic!("the ignored snapshot is reported"));
    assert!(matches!(ignored.reason, SnapshotIgnoreReason::Undecodable(_)), "{ignored}");

    let old_schema =
        Snapshot { schema_version: 0, payload: ok(CodecId::Bincode.encode(&Account::default()), "encode"), ..corrupt };
    ok(store.save_snapshot(&old_schema).await, "saving an old-schema snapshot");
    let loaded = ok(repo.load(&id).await, "load with an old-schema snapshot");
    assert_eq!(loaded.state, expected, "the old-schema snapshot is ignored");
    assert_eq!(
        loaded.metrics.ignored_snapshot.map(|i| i.reason),
        Some(SnapshotIgnoreReason::SchemaVersion { stored: 0, current: 1 })
    );

    // The next write counts from "no usable snapshot" and replaces it.
    let done = ok(repo.execute(&id, AccountCommand::Deposit(1), Metadata::default()).await, "deposit");
    assert_eq!(done.snapshot_started, Some(Version::new(3)));
    repo.flush_snapshots().await;
    let healed = ok(repo.load(&id).await, "load after the snapshot was replaced");
    assert_eq!((healed.metrics.snapshot_version, healed.metrics.ignored_snapshot), (Some(Version::new(3)), None));
    assert_eq!(healed.state.balance, 8);
}

/// An event type the aggregate does not know fails the load with a message naming stream, version, type.
pub async fn unknown_event_type_is_a_clear_error(store: Arc<dyn EventStore>) {
    let repo = Repository::<Account>::new(Arc::clone(&store));
    let id = new_account_id();
    ok(repo.execute(&id, open(), Metadata::default()).await, "open");
    let refund = raw_event("Refunded.v1", &AccountEvent::Deposited { amount: 3 });
    ok(store.append(&id, ExpectedVersion::Exact(Version::new(1)), vec![refund]).await, "append");
    match repo.load(&id).await {
        Err(error @ LoadError::Decode(EventDecodeError::UnknownEventType { .. })) => {
            let message = error.to_string();
            for part in ["Refunded.v1", id.as_str(), "version 2"] {
                assert!(message.contains(part), "the error names {part}: {message}");
            }
        }
        other => panic!("an unknown event type must fail the load, got {other:?}"),
    }
    match repo.execute(&id, AccountCommand::Deposit(1), Metadata::default()).await {
        Err(RepositoryError::Load(LoadError::Decode(_))) => {}
        other => panic!("execute must not decide on a state it could not load, got {other:?}"),
    }
    assert_eq!(ok(store.stream_version(&id).await, "stream_version"), Version::new(2));
}

/// Old event types are upcast through a chain while loading; the stored events are not rewritten.
pub async fn upcaster_chain_runs_while_loading(store: Arc<dyn EventStore>) {
    let repo = Repository::<Account>::new(Arc::clone(&store)).with_upcasters(account_upcasters());
    let plain = Repository::<Account>::new(Arc::clone(&store));
    for (event_type, first) in [
        ("AccountCreated.v1", raw_event("AccountCreated.v1", &AccountCreatedV1::Created { name: "ada".into() })),
        ("AccountOpened.v1", raw_event("AccountOpened.v1", &AccountOpenedV1::Opened { owner: "ada".into() })),
    ] {
        let id = new_account_id();
        let deposit = raw_event("Deposited.v1", &AccountEvent::Deposited { amount: 4 });
        ok(store.append(&id, ExpectedVersion::NoStream, vec![first, deposit]).await, "append old events");

        let loaded = ok(repo.load(&id).await, "load through upcasters");
        let expected = Account::from_events(&[
            AccountEvent::Opened { owner: "ada".into(), currency: "EUR".into() },
            AccountEvent::Deposited { amount: 4 },
        ]);
        assert_eq!(loaded.state, expected, "{event_type} is upcast to AccountOpened.v2");
        ok(repo.execute(&id, AccountCommand::Deposit(1), Metadata::default()).await, "deposit after upcasting");

        let stored = ok(store.load_stream(&id, StreamRange::all()).await, "load_stream");
        let types: Vec<&str> = stored.iter().map(|e| e.event_type.as_str()).collect();
        assert_eq!(types, [event_type, "Deposited.v1", "Deposited.v1"], "stored events are never rewritten");
        assert!(
            matches!(plain.load(&id).await, Err(LoadError::Decode(EventDecodeError::UnknownEventType { .. }))),
            "without upcasters {event_type} is unknown"
        );
    }
}

/// Many writers on one aggregate at once: every command lands exactly once (no lost update).
pub async fn concurrent_commands_lose_no_update(store: Arc<dyn EventStore>) {
    const WRITERS: u64 = 4;
    const COMMANDS: u64 = 20;
    let config = RepositoryConfig::default().with_max_conflict_retries(10_000);
    let repo = Repository::<Account>::with_config(store, config);
    let id = new_account_id();
    ok(repo.execute(&id, open(), Metadata::default()).await, "open");

    let tasks: Vec<_> = (0..WRITERS)
        .map(|writer| {
            let (repo, id) = (repo.clone(), id.clone());
            tokio::spawn(async move {
                let mut versions = Vec::new();
                for n in 0..COMMANDS {
                    let amount = writer * 1000 + n + 1;
                    let done =
                        ok(repo.execute(&id, AccountCommand::Deposit(amount), Metadata::default()).await, "deposit");
                    versions.push(done.version);
                }
                versions
            })
        })
        .collect();
    let mut versions = BTreeSet::new();
    for task in tasks {
        versions.extend(ok(task.await, "a writer task"));
    }
    repo.flush_snapshots().await;

    let expected_versions: BTreeSet<Version> = (2..=WRITERS * COMMANDS + 1).map(Version::new).collect();
    assert_eq!(versions, expected_versions, "each command got its own version");
    let loaded = ok(repo.load_without_snapshot(&id).await, "load");
    let expected_sum: u64 = (0..WRITERS).flat_map(|w| (0..COMMANDS).map(move |n| w * 1000 + n + 1)).sum();
    assert_eq!(loaded.state.deposits, WRITERS * COMMANDS, "no lost update");
    assert_eq!(loaded.state.balance, expected_sum);
    assert_eq!(ok(repo.load(&id).await, "load with snapshot").state, loaded.state);
}

/// A conflicting append is retried on the reloaded state (deciding again); after the limit the conflict is
/// returned and the command wrote nothing.
pub async fn conflicts_are_retried_then_returned(store: Arc<dyn EventStore>) {
    // One competing deposit lands before each of the first two appends: the third attempt wins, and
    // was decided on the reloaded state that includes both competing deposits.
    let contended = contended_store(Arc::clone(&store), 2);
    let config = RepositoryConfig::default().with_max_conflict_retries(2);
    let repo = Repository::<Account>::with_config(Arc::new(contended.clone()), config.clone());
    let id = new_account_id();
    let direct = Repository::<Account>::new(Arc::clone(&store));
    ok(direct.execute(&id, open(), Metadata::default()).await, "open");
    ok(direct.execute(&id, AccountCommand::Deposit(10), Metadata::default()).await, "deposit");

    let done = ok(repo.execute(&id, AccountCommand::Withdraw(10), Metadata::default()).await, "contended withdraw");
    assert_eq!(done.attempts, 3);
    assert_eq!(done.version, Version::new(5), "two competing deposits, then the withdrawal");
    assert_eq!(done.state.balance, 2, "10 + 1 + 1 - 10");

    // Always contended: gives up after max_conflict_retries + 1 attempts and appends nothing of its own.
    let hopeless = contended_store(Arc::clone(&store), u32::MAX);
    let repo = Repository::<Account>::with_config(Arc::new(hopeless), config);
    match repo.execute(&id, AccountCommand::Withdraw(1), Metadata::default()).await {
        Err(error @ RepositoryError::Conflict { attempts: 3, .. }) => {
            assert!(error.is_conflict());
            assert!(error.to_string().contains(id.as_str()), "{error}");
        }
        other => panic!("a command that always conflicts must return the conflict, got {other:?}"),
    }
    let stored = ok(store.load_stream(&id, StreamRange::all()).await, "load_stream");
    assert_eq!(stored.len(), 8, "5 events plus 3 competing deposits, no withdrawal");
    assert!(stored[5..].iter().all(|e| e.event_type == "Deposited.v1"));
}

/// Runs every scenario against the store `make_store` returns (one store per scenario).
pub async fn run_all<F, Fut>(make_store: F)
where
    F: Fn() -> Fut,
    Fut: Future<Output = Arc<dyn EventStore>>,
{
    execute_then_load_round_trips(make_store().await).await;
    domain_error_appends_nothing(make_store().await).await;
    metadata_is_stored_with_the_events(make_store().await).await;
    snapshots_follow_the_policy_and_equal_full_replay(make_store().await).await;
    snapshots_can_be_turned_off(make_store().await).await;
    unusable_snapshots_fall_back_to_full_replay(make_store().await).await;
    unknown_event_type_is_a_clear_error(make_store().await).await;
    upcaster_chain_runs_while_loading(make_store().await).await;
    concurrent_commands_lose_no_update(make_store().await).await;
    conflicts_are_retried_then_returned(make_store().await).await;
}

/// A command run with an id is applied once: running it again, or twice at the same time, appends nothing
/// more and reports the events of the first run.
pub async fn a_command_with_an_id_is_applied_once(store: Arc<dyn EventStore>) {
    let repo = Repository::<Account>::new(Arc::clone(&store));
    let id = new_account_id();
    ok(repo.execute(&id, open(), Metadata::default()).await, "open");
    let deposit = uuid::Uuid::new_v4();
    let first = ok(repo.execute_once(&id, deposit, AccountCommand::Deposit(10), Metadata::default()).await, "deposit");
    assert!(!first.already_applied);
    let again = ok(repo.execute_once(&id, deposit, AccountCommand::Deposit(10), Metadata::default()).await, "again");
    assert!(again.already_applied, "the second run reports that the command was already applied");
    assert_eq!((again.version, again.events.clone()), (first.version, first.events.clone()));
    assert_eq!(again.state.balance, 10, "the deposit counted once");

    let twice = uuid::Uuid::new_v4();
    let (a, b) = tokio::join!(
        repo.execute_once(&id, twice, AccountCommand::Deposit(5), Metadata::default()),
        repo.execute_once(&id, twice, AccountCommand::Deposit(5), Metadata::default()),
    );
    let (a, b) = (ok(a, "the first of two concurrent runs"), ok(b, "the second of two concurrent runs"));
    assert_eq!(a.version, b.version, "both runs report the one append");
    let loaded = ok(repo.load(&id).await, "load");
    assert_eq!((loaded.state.balance, loaded.state.deposits), (15, 2), "each command was applied once");

    let elsewhere = new_account_id();
    let reused = repo.execute_once(&elsewhere, deposit, AccountCommand::Deposit(10), Metadata::default()).await;
    assert!(
        matches!(reused, Err(RepositoryError::Store(EventStoreError::EventIdInUse { .. }))),
        "a command id used on another stream is an error, got {reused:?}"
    );
}

/// A store that loses the reply of an append after committing it, or refuses a few appends before writing:
/// the repository retries with the same events, and every command is applied exactly once. A store that
/// stays unavailable ends in `RepositoryError::Unavailable`.
pub async fn transient_failures_are_retried_without_duplicates(store: Arc<dyn EventStore>) {
    let config = RepositoryConfig::default().with_transient_retries(3, std::time::Duration::from_millis(1));
    let flaky = Arc::new(Intercepted::new(Arc::clone(&store), Flaky::default()));
    let repo = Repository::<Account>::with_config(Arc::clone(&flaky) as Arc<dyn EventStore>, config);
    let id = new_account_id();
    ok(repo.execute(&id, open(), Metadata::default()).await, "open");

    flaky.lose_next_replies(1);
    let lost =
        ok(repo.execute(&id, AccountCommand::Deposit(7), Metadata::default()).await, "a deposit whose reply is lost");
    assert_eq!(lost.version, Version::new(2), "the retry reports the append that landed");
    flaky.refuse_next(2);
    let refused =
        ok(repo.execute(&id, AccountCommand::Deposit(3), Metadata::default()).await, "a deposit refused twice");
    assert_eq!(refused.version, Version::new(3));
    let stored = ok(store.load_stream(&id, StreamRange::all()).await, "load_stream");
    assert_eq!(stored.len(), 3, "each command was stored once");

    flaky.refuse_next(u32::MAX);
    match repo.execute(&id, AccountCommand::Deposit(1), Metadata::default()).await {
        Err(error @ RepositoryError::Unavailable { attempts: 4, .. }) => {
            assert!(error.to_string().contains("execute_once"), "the error says how to retry safely: {error}");
        }
        other => panic!("a store that stays unavailable must end in Unavailable after 4 attempts, got {other:?}"),
    }
    assert_eq!(ok(store.stream_version(&id).await, "stream_version"), Version::new(3), "nothing more was written");
}

/// Loses the reply of the next `lose_replies` appends after they commit; refuses the next `refuse`
/// appends before they reach the store. Both look like a dropped connection.
#[derive(Debug, Default)]
pub struct Flaky {
    lose_replies: AtomicU32,
    refuse: AtomicU32,
}

impl Flaky {
    /// Loses the replies of the next `n` appends after they commit.
    pub fn lose_next_replies(&self, n: u32) {
        self.lose_replies.store(n, Ordering::SeqCst);
    }

    /// Refuses the next `n` appends before they reach the store.
    pub fn refuse_next(&self, n: u32) {
        self.refuse.store(n, Ordering::SeqCst);
    }
}

fn take_one(counter: &AtomicU32) -> bool {
    counter.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1)).is_ok()
}

#[async_trait]
impl Intercept for Flaky {
    async fn append(
        &self,
        inner: &dyn EventStore,
        stream_id: &StreamId,
        expected: ExpectedVersion,
        events: Vec<NewEvent>,
    ) -> Result<AppendResult, EventStoreError> {
        if take_one(&self.refuse) {
            return Err(EventStoreError::unavailable(format!("append to {stream_id}"), "connection refused"));
        }
        let result = inner.append(stream_id, expected, events).await;
        if result.is_ok() && take_one(&self.lose_replies) {
            return Err(EventStoreError::unavailable(format!("append to {stream_id}"), "connection reset by peer"));
        }
        result
    }
}

/// Past states: a load as of a version stops there (ignoring a snapshot taken later), a load as of a
/// recorded time holds exactly the events recorded up to it.
pub async fn past_states_load_as_of_a_version_and_a_time(store: Arc<dyn EventStore>) {
    let config = RepositoryConfig::default().with_snapshot_policy(SnapshotPolicy::every(3));
    let repo = Repository::<Account>::with_config(Arc::clone(&store), config);
    let id = new_account_id();
    ok(repo.execute(&id, open(), Metadata::default()).await, "open");
    for amount in [10, 20, 40] {
        ok(repo.execute(&id, AccountCommand::Deposit(amount), Metadata::default()).await, "deposit");
    }
    repo.flush_snapshots().await;
    assert!(ok(store.load_snapshot(&id).await, "load_snapshot").is_some(), "the policy took a snapshot at 3");

    let at_two = ok(repo.load_as_of(&id, LoadUntil::Version(Version::new(2))).await, "load as of version 2");
    assert_eq!((at_two.version, at_two.state.balance), (Version::new(2), 10));
    assert_eq!(at_two.metrics.snapshot_version, None, "the snapshot at 3 lies past version 2");
    let at_four = ok(repo.load_as_of(&id, LoadUntil::Version(Version::new(4))).await, "load as of version 4");
    assert_eq!((at_four.version, at_four.state.balance), (Version::new(4), 70));
    assert_eq!(at_four.metrics.snapshot_version, Some(Version::new(3)), "a snapshot before the version is used");
    let current = ok(repo.load_as_of(&id, LoadUntil::End).await, "load as of the end");
    assert_eq!(current.state, ok(repo.load(&id).await, "load").state);

    let stored = ok(store.load_stream(&id, StreamRange::all()).await, "load_stream");
    let first = stored[0].recorded_at;
    let recorded_by_then = stored.iter().take_while(|e| e.recorded_at <= first).count() as u64;
    let then = ok(repo.load_as_of(&id, LoadUntil::RecordedAt(first)).await, "load as of the first event's time");
    assert_eq!(then.version, Version::new(recorded_by_then), "every event recorded by then, and no other");
    assert_eq!(then.metrics.snapshot_version, None, "a load as of a time replays from the first event");
    let before = first - chrono::Duration::seconds(1);
    let nothing = ok(repo.load_as_of(&id, LoadUntil::RecordedAt(before)).await, "load as of a time before");
    assert_eq!((nothing.version, nothing.state), (Version::INITIAL, Account::default()));
}

/// The aggregate as a reducer (`EventSourced`) in a runtime `Store` on this backend: commands, a rejection and a
/// snapshot at the policy's threshold; the repository then loads the same state, from the snapshot and in full.
pub async fn event_sourced_reducer_round_trips(store: Arc<dyn EventStore>) {
    let config = RepositoryConfig::default().with_snapshot_policy(SnapshotPolicy::every(2));
    let app = Store::builder(
        EventSourced::<Account>::with_config(config),
        Aggregates::default(),
        AggregateEnvironment::default(),
    )
    .event_store(Arc::clone(&store))
    .build();
    let id = new_account_id();
    let commands = [open(), AccountCommand::Deposit(5), AccountCommand::Withdraw(9), AccountCommand::Deposit(7)];
    for command in commands {
        app.send(AggregateAction::command(id.clone(), command, Metadata::default())).finished().await;
    }
    let (state, version) = app
        .state(|a| {
            let loaded = a.loaded(&id).cloned();
            loaded.map(|l| (l.state, l.version))
        })
        .unwrap_or_else(|| panic!("the reducer holds the aggregate it changed"));
    assert_eq!((state.balance, version), (12, Version::new(3)), "the withdrawal of 9 was rejected");
    assert!(!app.state(Aggregates::is_busy), "every command finished");

    let repo = Repository::<Account>::new(Arc::clone(&store));
    let loaded = ok(repo.load(&id).await, "load");
    assert_eq!(loaded.metrics.snapshot_version, Some(Version::new(2)), "the reducer saved a snapshot at 2");
    assert_eq!((loaded.state.clone(), loaded.version), (state.clone(), version));
    let full = ok(repo.load_without_snapshot(&id).await, "full replay");
    assert_eq!(full.state, state, "snapshot plus tail equals full replay");
}

/// The store one scenario runs against, plus whatever must live as long as it (a temporary folder, a
/// test database).
pub struct ScenarioStore {
    store: Arc<dyn EventStore>,
    _guard: Option<Box<dyn std::any::Any + Send + Sync>>,
}

impl ScenarioStore {
    /// A store with nothing else to keep alive.
    pub fn new(store: impl EventStore + 'static) -> Self {
        Self { store: Arc::new(store), _guard: None }
    }

    /// Keeps `guard` alive until the scenario has finished.
    #[must_use]
    pub fn with_guard(mut self, guard: impl std::any::Any + Send + Sync) -> Self {
        self._guard = Some(Box::new(guard));
        self
    }

    /// The store.
    #[must_use]
    pub fn store(&self) -> Arc<dyn EventStore> {
        Arc::clone(&self.store)
    }
}

impl From<Arc<dyn EventStore>> for ScenarioStore {
    fn from(store: Arc<dyn EventStore>) -> Self {
        Self { store, _guard: None }
    }
}

impl fmt::Debug for ScenarioStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ScenarioStore").field("store", &self.store).finish_non_exhaustive()
    }
}

/// Generates one `#[tokio::test]` per aggregate scenario. `$make_store` is an expression of type
/// `impl Future<Output = T>` with `T: Into<ScenarioStore>` (an `Arc<dyn EventStore>`, or a
/// [`ScenarioStore`] with a guard), evaluated once per test.
///
/// The calling crate needs `tokio` (with `macros` and `rt-multi-thread`) as a dev-dependency.
#[macro_export]
macro_rules! aggregate_scenario_tests {
    ($make_store:expr) => {
        $crate::aggregate_scenario_tests!(@tests $make_store;
            execute_then_load_round_trips,
            domain_error_appends_nothing,
            metadata_is_stored_with_the_events,
            snapshots_follow_the_policy_and_equal_full_replay,
            snapshots_can_be_turned_off,
            unusable_snapshots_fall_back_to_full_replay,
            unknown_event_type_is_a_clear_error,
            upcaster_chain_runs_while_loading,
            concurrent_commands_lose_no_update,
            conflicts_are_retried_then_returned,
            past_states_load_as_of_a_version_and_a_time,
            event_sourced_reducer_round_trips,
            a_command_with_an_id_is_applied_once,
            transient_failures_are_retried_without_duplicates,
        );
    };
    (@tests $make_store:expr; $($name:ident),* $(,)?) => {
        $(
            #[::tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                let under_test: $crate::aggregate_scenarios::ScenarioStore = $make_store.await.into();
                $crate::aggregate_scenarios::$name(under_test.store()).await;
                drop(under_test);
            }
        )*
    };
}

/// Makes appends conflict: before each of the first `conflicts` appends it appends a competing
/// `Deposited { amount: 1 }` to the same stream, so the caller's expectation is stale. Clones share the count.
#[derive(Debug, Clone)]
pub struct Contention {
    remaining: Arc<AtomicU32>,
}

/// `inner`, with its first `conflicts` appends made to conflict (see [`Contention`]).
#[must_use]
pub fn contended_store(inner: Arc<dyn EventStore>, conflicts: u32) -> Intercepted<Contention> {
    Intercepted::new(inner, Contention { remaining: Arc::new(AtomicU32::new(conflicts)) })
}

#[async_trait]
impl Intercept for Contention {
    async fn append(
        &self,
        inner: &dyn EventStore,
        stream_id: &StreamId,
        expected: ExpectedVersion,
        events: Vec<NewEvent>,
    ) -> Result<AppendResult, EventStoreError> {
        let take = self.remaining.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1)).is_ok();
        if take {
            let competing =
                AccountEvent::Deposited { amount: 1 }.to_new_event(CodecId::Bincode, Metadata::default())?;
            inner.append(stream_id, ExpectedVersion::Any, vec![competing]).await?;
        }
        inner.append(stream_id, expected, events).await
    }
}
