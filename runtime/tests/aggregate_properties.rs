//! Property tests of the repository: replay is deterministic, snapshot + tail equals full replay for any
//! events and any snapshot point, and concurrent commands lose no update.

// Helpers outside `#[test]` functions fail the test the same way an assertion does.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeSet;
use std::sync::Arc;

use composable_rust_core::{Aggregate, CodecId, Event, EventStore, ExpectedVersion, Metadata, Version};
use composable_rust_runtime::{Repository, RepositoryConfig, SnapshotPolicy};
use composable_rust_testing::InMemoryEventStore;
use composable_rust_testing::aggregate_scenarios::{Account, AccountCommand, AccountEvent, new_account_id};
use proptest::prelude::*;

fn event() -> impl Strategy<Value = AccountEvent> {
    prop_oneof![
        ("[a-z]{0,8}", "[A-Z]{3}").prop_map(|(owner, currency)| AccountEvent::Opened { owner, currency }),
        (0_u64..1_000).prop_map(|amount| AccountEvent::Deposited { amount }),
        (0_u64..1_000).prop_map(|amount| AccountEvent::Withdrawn { amount }),
        Just(AccountEvent::Closed),
    ]
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap()
}

fn never_snapshot(store: Arc<dyn EventStore>) -> Repository<Account> {
    Repository::with_config(store, RepositoryConfig::default().with_snapshot_policy(SnapshotPolicy::Never))
}

/// Appends `events` with `codec` in batches of at most 7 (so batch boundaries vary too).
async fn append_all(
    store: &Arc<dyn EventStore>,
    id: &composable_rust_core::StreamId,
    events: &[AccountEvent],
    codec: CodecId,
) {
    for chunk in events.chunks(7) {
        let batch = chunk.iter().map(|e| e.to_new_event(codec, Metadata::default()).unwrap()).collect();
        store.append(id, ExpectedVersion::Any, batch).await.unwrap();
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn replay_is_deterministic_and_codec_independent(events in prop::collection::vec(event(), 0..60)) {
        let expected = Account::from_events(&events);
        prop_assert_eq!(&Account::from_events(&events), &expected);
        runtime().block_on(async {
            let store: Arc<dyn EventStore> = Arc::new(InMemoryEventStore::new());
            let repo = never_snapshot(Arc::clone(&store));
            for codec in [CodecId::Bincode, CodecId::Json] {
                let id = new_account_id();
                append_all(&store, &id, &events, codec).await;
                for _ in 0..2 {
                    let loaded = repo.load(&id).await.unwrap();
                    assert_eq!(loaded.state, expected);
                    assert_eq!(loaded.version, Version::new(events.len() as u64));
                    assert_eq!(loaded.metrics.events_replayed, events.len() as u64);
                }
            }
        });
    }

    #[test]
    fn snapshot_plus_tail_equals_full_replay(
        events in prop::collection::vec(event(), 0..60),
        point in any::<prop::sample::Index>(),
        codec in prop_oneof![Just(CodecId::Bincode), Just(CodecId::Json)],
    ) {
        let at = point.index(events.len() + 1);
        runtime().block_on(async {
            let store: Arc<dyn EventStore> = Arc::new(InMemoryEventStore::new());
            let config = RepositoryConfig::default().with_snapshot_policy(SnapshotPolicy::Never).with_codec(codec);
            let repo = Repository::<Account>::with_config(Arc::clone(&store), config);
            let id = new_account_id();
            append_all(&store, &id, &events, codec).await;
            let at_snapshot = Account::from_events(&events[..at]);
            repo.save_snapshot(&id, &at_snapshot, Version::new(at as u64)).await.unwrap();

            let with_snapshot = repo.load(&id).await.unwrap();
            let full = repo.load_without_snapshot(&id).await.unwrap();
            assert_eq!(&with_snapshot.state, &full.state);
            assert_eq!(with_snapshot.version, full.version);
            assert_eq!(with_snapshot.metrics.snapshot_version, Some(Version::new(at as u64)));
            assert_eq!(with_snapshot.metrics.events_replayed, (events.len() - at) as u64);
            assert_eq!(full.metrics.events_replayed, events.len() as u64);
        });
    }

    #[test]
    fn policy_snapshots_never_change_what_a_load_returns(
        amounts in prop::collection::vec(0_u64..50, 1..40),
        every in 1_u64..10,
    ) {
        runtime().block_on(async {
            let store: Arc<dyn EventStore> = Arc::new(InMemoryEventStore::new());
            let config = RepositoryConfig::default().with_snapshot_policy(SnapshotPolicy::every(every));
            let repo = Repository::<Account>::with_config(Arc::clone(&store), config);
            let id = new_account_id();
            let open = AccountCommand::Open { owner: "p".into(), currency: "EUR".into() };
            repo.execute(&id, open, Metadata::default()).await.unwrap();
            for amount in amounts {
                let done = repo.execute(&id, AccountCommand::Deposit(amount), Metadata::default()).await.unwrap();
                repo.flush_snapshots().await;
                let loaded = repo.load(&id).await.unwrap();
                assert_eq!(&loaded.state, &done.state);
                assert_eq!(loaded.version, done.version);
                assert!(loaded.metrics.events_replayed < every, "a snapshot is at most {every} events old");
            }
        });
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 12, ..ProptestConfig::default() })]

    #[test]
    fn retry_on_conflict_converges_without_lost_updates(
        plan in prop::collection::vec(prop::collection::vec(1_u64..100, 1..12), 2..5),
    ) {
        runtime().block_on(async {
            let store: Arc<dyn EventStore> = Arc::new(InMemoryEventStore::new());
            let config = RepositoryConfig::default().with_max_conflict_retries(u32::MAX);
            let repo = Repository::<Account>::with_config(store, config);
            let id = new_account_id();
            let open = AccountCommand::Open { owner: "p".into(), currency: "EUR".into() };
            repo.execute(&id, open, Metadata::default()).await.unwrap();
            let writers: Vec<_> = plan
                .iter()
                .cloned()
                .map(|amounts| {
                    let (repo, id) = (repo.clone(), id.clone());
                    tokio::spawn(async move {
                        let mut versions = Vec::new();
                        for amount in amounts {
                            let done = repo.execute(&id, AccountCommand::Deposit(amount), Metadata::default()).await;
                            versions.push(done.unwrap().version);
                        }
                        versions
                    })
                })
                .collect();
            let mut versions = BTreeSet::new();
            for writer in writers {
                for version in writer.await.unwrap() {
                    assert!(versions.insert(version), "version {version} was returned twice");
                }
            }
            repo.flush_snapshots().await;
            let commands: usize = plan.iter().map(Vec::len).sum();
            let total: u64 = plan.iter().flatten().sum();
            let loaded = repo.load_without_snapshot(&id).await.unwrap();
            assert_eq!(loaded.state.balance, total, "no lost update");
            assert_eq!(loaded.state.deposits, commands as u64);
            assert_eq!(loaded.version, Version::new(commands as u64 + 1));
        });
    }
}
