//! The retention suite: the cases every backend that removes events must pass, for each policy kind, with a
//! snapshot present and with none (see [`composable_rust_core::retention`] for the invariants).
//!
//! Like the conformance suite, each case is a public `async fn case(store: Arc<dyn EventStore>)`, and
//! [`retention_suite_tests!`](crate::retention_suite_tests!) declares one test per case for a factory of
//! [`StoreUnderTest`](crate::conformance::StoreUnderTest):
//!
//! ```
//! use composable_rust_testing::InMemoryEventStore;
//! use composable_rust_testing::conformance::StoreUnderTest;
//!
//! async fn in_memory() -> StoreUnderTest {
//!     StoreUnderTest::new(InMemoryEventStore::new())
//! }
//!
//! composable_rust_testing::retention_suite_tests!(in_memory);
//! # fn main() {}
//! ```
//!
//! Cases plan over the whole store, so they want a store of their own (which the factories give).
// A test suite reports failures by panicking.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use chrono::{Duration, SubsecRound, Utc};
use composable_rust_core::{
    CategoryPolicy, CodecId, EventId, EventStore, EventStoreError, GlobalPosition, KeepCriteria, KeptReason, LoadUntil,
    LogFilter, Metadata, RecordedEvent, RemovalBatch, RemovalRefusal, RetentionPlan, RetentionPolicies, RetentionRule,
    RetentionRunId, StreamId, StreamRange, StreamRemoval, Version,
};
use composable_rust_runtime::{
    ArchivedEvents, LoadError, Repository, Subscription, SubscriptionConfig, SubscriptionError, apply_retention,
    handler_fn, plan_retention,
};

use crate::aggregate_scenarios::{Account, AccountCommand, new_account_id};

/// The plan of `store` under `policies`, each event counted as 100 archive bytes.
pub async fn plan(store: &dyn EventStore, policies: &RetentionPolicies) -> RetentionPlan {
    plan_retention(store, policies, Utc::now(), &|_| 100).await.expect("plan retention")
}

/// Imports `count` events into `stream`, one per day ending `days_ago` days ago, of the types `types` in turn.
async fn old_events(store: &dyn EventStore, stream: &StreamId, count: u64, days_ago: i64, types: &[&str]) {
    let start = Utc::now().trunc_subsecs(6) - Duration::days(days_ago + i64::try_from(count).unwrap());
    let version = store.stream_version(stream).await.unwrap().get();
    let events = (1..=count)
        .map(|i| RecordedEvent {
            id: EventId::generate(),
            stream_id: stream.clone(),
            version: Version::new(version + i),
            position: GlobalPosition::START,
            event_type: types[usize::try_from(i).unwrap() % types.len()].into(),
            codec: CodecId::Json,
            payload: b"{}".to_vec().into(),
            metadata: Metadata::default(),
            recorded_at: start + Duration::days(i64::try_from(i).unwrap()),
            tags: Vec::new(),
        })
        .collect();
    store.import(events).await.expect("import old events");
}

fn stream(category: &str) -> StreamId {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    StreamId::new(format!("{category}-{}", NEXT.fetch_add(1, Ordering::Relaxed))).unwrap()
}

fn versions(events: &[RecordedEvent]) -> Vec<u64> {
    events.iter().map(|e| e.version.get()).collect()
}

fn audit_policy(rule: RetentionRule) -> RetentionPolicies {
    RetentionPolicies::default().category("audit", CategoryPolicy { rule, replay_free: true })
}

/// The default policies (keep everything) plan nothing, and nothing was ever removed.
pub async fn the_default_policy_removes_nothing(store: Arc<dyn EventStore>) {
    let audit = stream("audit");
    old_events(&*store, &audit, 5, 400, &["Seen.v1"]).await;
    let plan = plan(&*store, &RetentionPolicies::default()).await;
    assert_eq!(plan.events_to_remove(), 0, "the default policy keeps every event");
    let applied = apply_retention(&*store, &plan, RetentionRunId::generate(), "test", None).await.unwrap();
    assert_eq!(applied.removed, 0);
    assert_eq!(store.removal_horizon().await.unwrap(), None, "nothing was ever removed");
    assert_eq!(store.load_stream(&audit, StreamRange::all()).await.unwrap().len(), 5);
    assert_eq!(store.first_retained_version(&audit).await.unwrap(), Some(Version::FIRST));
}

/// A maximum age removes the old events of a replay-free category, never its last one; reads skip them,
/// the horizon and the audit row record them.
pub async fn max_age_removes_old_events_of_a_replay_free_category(store: Arc<dyn EventStore>) {
    let audit = stream("audit");
    old_events(&*store, &audit, 6, 100, &["Seen.v1"]).await;
    old_events(&*store, &audit, 2, 1, &["Seen.v1"]).await;
    let only_old = stream("audit");
    old_events(&*store, &only_old, 3, 100, &["Seen.v1"]).await;
    let policies = audit_policy(RetentionRule::MaxAge { days: 30 });

    let plan = plan(&*store, &policies).await;
    let category = &plan.categories["audit"];
    assert_eq!((category.streams, category.events, category.remove), (2, 11, 8), "6 + 2 old events go");
    assert_eq!(category.archive_bytes, 800);
    let applied =
        apply_retention(&*store, &plan, RetentionRunId::generate(), "operator", Some("audit.jsonl")).await.unwrap();
    assert_eq!((applied.removed, applied.already_removed), (8, 0));

    let left = store.load_stream(&audit, StreamRange::all()).await.unwrap();
    assert_eq!(versions(&left), vec![7, 8], "the recent events stay");
    let last = store.load_stream(&only_old, StreamRange::all()).await.unwrap();
    assert_eq!(versions(&last), vec![3], "a stream's last event always stays, however old");
    assert_eq!(store.stream_version(&only_old).await.unwrap(), Version::new(3));
    assert_eq!(store.first_retained_version(&audit).await.unwrap(), Some(Version::new(7)));
    let log = store.read_all(GlobalPosition::START, &LogFilter::all().category("audit"), 100).await.unwrap();
    assert_eq!(log.len(), 3, "the global log skips removed events");
    let horizon = store.removal_horizon().await.unwrap().expect("a horizon after a removal");
    assert!(log.iter().any(|e| e.position > horizon), "the recent events lie above the horizon");
    assert_eq!(store.removed_between(GlobalPosition::START, horizon, &LogFilter::all()).await.unwrap(), 8);
    let other = LogFilter::all().category("order");
    assert_eq!(store.removed_between(GlobalPosition::START, horizon, &other).await.unwrap(), 0);

    let runs = store.retention_runs().await.unwrap();
    assert_eq!(runs.len(), 1, "one audit row per run");
    assert_eq!(runs[0].id, applied.run);
    assert_eq!((runs[0].actor.as_str(), runs[0].archive.as_deref()), ("operator", Some("audit.jsonl")));
    assert_eq!(runs[0].events_removed, 8);
    assert_eq!(runs[0].policy, plan.policy);
    assert_eq!(store.stats().await.unwrap().events, 3);
}

/// A maximum count on an aggregate's category keeps every event of a stream without a snapshot, and says
/// why; the aggregate loads as before.
pub async fn max_count_without_a_snapshot_keeps_every_event_and_says_why(store: Arc<dyn EventStore>) {
    let repo = Repository::<Account>::new(Arc::clone(&store));
    let id = opened_account_with_deposits(&repo, 5).await;
    let policies = RetentionPolicies::default()
        .category("account", CategoryPolicy { rule: RetentionRule::MaxCount { keep: 2 }, replay_free: false });
    let plan = plan(&*store, &policies).await;
    assert_eq!(plan.events_to_remove(), 0, "without a snapshot a load replays every event");
    assert_eq!(plan.kept.len(), 1);
    assert_eq!((&plan.kept[0].stream_id, plan.kept[0].reason, plan.kept[0].events), (&id, KeptReason::NoSnapshot, 4));
    assert_eq!(plan.categories["account"].kept_without_snapshot, 4);
    apply_retention(&*store, &plan, RetentionRunId::generate(), "test", None).await.unwrap();
    assert_eq!(repo.load(&id).await.unwrap().state.balance, 15);
}

async fn opened_account_with_deposits(repo: &Repository<Account>, deposits: u64) -> StreamId {
    let id = new_account_id();
    let open = AccountCommand::Open { owner: "ada".into(), currency: "EUR".into() };
    repo.execute(&id, open, Metadata::default()).await.unwrap();
    for amount in 1..=deposits {
        repo.execute(&id, AccountCommand::Deposit(amount), Metadata::default()).await.unwrap();
    }
    id
}

/// With a snapshot, a maximum count truncates the stream below it: the aggregate loads from the snapshot
/// to the same state, takes new commands, and a load that cannot use the snapshot fails naming the gone
/// versions instead of building a wrong state.
pub async fn max_count_with_a_snapshot_truncates_and_the_aggregate_still_loads(store: Arc<dyn EventStore>) {
    let repo = Repository::<Account>::new(Arc::clone(&store));
    let id = opened_account_with_deposits(&repo, 9).await;
    let before = repo.load(&id).await.unwrap();
    let at8 = repo.load_as_of(&id, LoadUntil::Version(Version::new(8))).await.unwrap();
    repo.save_snapshot(&id, &at8.state, Version::new(8)).await.unwrap();
    let policies = RetentionPolicies::default()
        .category("account", CategoryPolicy { rule: RetentionRule::MaxCount { keep: 2 }, replay_free: false });
    let plan = plan(&*store, &policies).await;
    assert_eq!(plan.events_to_remove(), 8, "versions 1..=8 are covered by the snapshot at 8");
    apply_retention(&*store, &plan, RetentionRunId::generate(), "test", None).await.unwrap();

    let after = repo.load(&id).await.unwrap();
    assert_eq!((after.state, after.version), (before.state, before.version), "the same state as before");
    assert_eq!(after.metrics.snapshot_version, Some(Version::new(8)));
    match repo.load_without_snapshot(&id).await {
        Err(LoadError::EventsRemoved { from, to, .. }) => assert_eq!((from.get(), to.get()), (1, 8)),
        other => panic!("a full replay of a truncated stream must fail naming the gone versions, got {other:?}"),
    }
    let executed = repo.execute(&id, AccountCommand::Deposit(100), Metadata::default()).await.unwrap();
    assert_eq!(executed.version, Version::new(11), "appends go on at the stream's version");
}

/// A keep rule keeps the matching events and removes the others (never the last).
pub async fn keep_criteria_keep_matching_events_and_remove_the_rest(store: Arc<dyn EventStore>) {
    let audit = stream("audit");
    old_events(&*store, &audit, 9, 0, &["Login.v1", "Viewed.v1", "Viewed.v1"]).await;
    let keep = KeepCriteria { event_types: vec!["Login.v1".into()], ..KeepCriteria::default() };
    let plan = plan(&*store, &audit_policy(RetentionRule::Keep(keep))).await;
    apply_retention(&*store, &plan, RetentionRunId::generate(), "test", None).await.unwrap();
    let left = store.load_stream(&audit, StreamRange::all()).await.unwrap();
    assert!(left.iter().all(|e| e.event_type.as_str() == "Login.v1" || e.version.get() == 9), "{left:?}");
    assert_eq!(versions(&left), vec![3, 6, 9]);
}

/// The store itself refuses a removal that would break event sourcing, whatever the caller planned, and
/// removes nothing of such a batch.
pub async fn the_store_refuses_to_remove_the_last_event_or_events_above_the_snapshot(store: Arc<dyn EventStore>) {
    let repo = Repository::<Account>::new(Arc::clone(&store));
    let id = opened_account_with_deposits(&repo, 3).await;
    let batch = |versions: &[u64], replay_free| RemovalBatch {
        run: RetentionRunId::generate(),
        actor: "test".into(),
        policy: "by hand".into(),
        archive: None,
        streams: vec![StreamRemoval {
            stream_id: id.clone(),
            versions: versions.iter().copied().map(Version::new).collect(),
            replay_free,
        }],
    };
    let refused = |result: Result<_, EventStoreError>| match result {
        Err(EventStoreError::RemovalRefused { reason, .. }) => reason,
        other => panic!("expected RemovalRefused, got {other:?}"),
    };
    assert_eq!(refused(store.remove_events(&batch(&[1, 4], true)).await), RemovalRefusal::LastEvent);
    assert_eq!(refused(store.remove_events(&batch(&[1], false)).await), RemovalRefusal::NoSnapshot);
    let snapshot_at_1 = composable_rust_core::Snapshot {
        stream_id: id.clone(),
        version: Version::FIRST,
        schema_version: 1,
        codec: CodecId::Json,
        payload: b"{}".to_vec(),
        taken_at: Utc::now(),
    };
    store.save_snapshot(&snapshot_at_1).await.unwrap();
    assert_eq!(
        refused(store.remove_events(&batch(&[1, 2], false)).await),
        RemovalRefusal::AboveSnapshot { snapshot: Version::FIRST }
    );
    assert!(matches!(refused(store.remove_events(&batch(&[9], true)).await), RemovalRefusal::BeyondStream { .. }));
    assert_eq!(store.load_stream(&id, StreamRange::all()).await.unwrap().len(), 4, "nothing was removed");
    assert_eq!(store.removal_horizon().await.unwrap(), None);
    assert!(store.retention_runs().await.unwrap().is_empty(), "a refused batch leaves no audit row");
}

/// Removing what is already gone is counted, not an error: a run repeated after a failure finishes.
pub async fn a_repeated_removal_counts_what_is_already_gone(store: Arc<dyn EventStore>) {
    let audit = stream("audit");
    old_events(&*store, &audit, 4, 100, &["Seen.v1"]).await;
    let plan = plan(&*store, &audit_policy(RetentionRule::MaxAge { days: 1 })).await;
    let first = apply_retention(&*store, &plan, RetentionRunId::generate(), "test", None).await.unwrap();
    let again = apply_retention(&*store, &plan, RetentionRunId::generate(), "test", None).await.unwrap();
    assert_eq!((first.removed, first.already_removed), (3, 0));
    assert_eq!((again.removed, again.already_removed), (0, 3));
    assert_eq!(store.retention_runs().await.unwrap().len(), 2, "each run has its audit row");
}

/// A subscription whose checkpoint lies below removed events stops with an error naming how many are gone,
/// unless it opted in to skipping them; one that reads another category is not concerned.
pub async fn a_subscription_behind_the_removal_horizon_fails_unless_it_skips(store: Arc<dyn EventStore>) {
    let audit = stream("audit");
    old_events(&*store, &audit, 5, 100, &["Seen.v1"]).await;
    let order = stream("order");
    old_events(&*store, &order, 2, 0, &["Placed.v1"]).await;
    let plan = plan(&*store, &audit_policy(RetentionRule::MaxAge { days: 30 })).await;
    apply_retention(&*store, &plan, RetentionRunId::generate(), "test", None).await.unwrap();

    let config = |category: &str, archived| {
        let mut config = SubscriptionConfig::default();
        config.filter = LogFilter::all().category(category);
        config.archived = archived;
        config
    };
    let ignore = || handler_fn(|_| Ok(()));
    let mut strict =
        Subscription::new(Arc::clone(&store), "strict-audit", ignore()).config(config("audit", ArchivedEvents::Fail));
    match strict.run_to_end().await {
        Err(SubscriptionError::EventsArchived { removed, checkpoint: None, .. }) => assert_eq!(removed, 4),
        other => panic!("a subscription behind the horizon must stop, got {other:?}"),
    }
    let mut skipping =
        Subscription::new(Arc::clone(&store), "skipping-audit", ignore()).config(config("audit", ArchivedEvents::Skip));
    let report = skipping.run_to_end().await.unwrap();
    assert_eq!((report.handled, report.skipped_archived), (1, 4));
    let mut orders =
        Subscription::new(Arc::clone(&store), "orders", ignore()).config(config("order", ArchivedEvents::Fail));
    let report = orders.run_to_end().await.unwrap();
    assert_eq!((report.handled, report.skipped_archived), (2, 0), "removed audit events do not concern orders");
}

/// Declares one `#[test]` per retention case for a factory of
/// [`StoreUnderTest`](crate::conformance::StoreUnderTest). See the [module documentation](self).
#[macro_export]
macro_rules! retention_suite_tests {
    ($factory:path) => {
        $crate::retention_suite_tests!(@cases $factory;
            the_default_policy_removes_nothing,
            max_age_removes_old_events_of_a_replay_free_category,
            max_count_without_a_snapshot_keeps_every_event_and_says_why,
            max_count_with_a_snapshot_truncates_and_the_aggregate_still_loads,
            keep_criteria_keep_matching_events_and_remove_the_rest,
            the_store_refuses_to_remove_the_last_event_or_events_above_the_snapshot,
            a_repeated_removal_counts_what_is_already_gone,
            a_subscription_behind_the_removal_horizon_fails_unless_it_skips,
        );
    };
    (@cases $factory:path; $($case:ident),+ $(,)?) => {
        $(
            #[test]
            fn $case() {
                $crate::conformance::run_case(|| $factory(), $crate::retention_suite::$case);
            }
        )+
    };
}
