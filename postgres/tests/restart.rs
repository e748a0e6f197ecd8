//! A PostgreSQL restart loses and duplicates nothing: writers that retry transient failures with the same
//! events, and a subscription with a transactional handler, run while the server restarts twice (`pg_ctl
//! stop -m fast` then start; the second time it stays down longer than the pool's acquire timeout). The
//! server is a private cluster of this test's own (`PrivateCluster`: initdb/pg_ctl on a free port), so no
//! other test sees the restarts.
//!
//! Afterwards every acknowledged append is stored exactly once where its acknowledgement says, the
//! streams are dense, the subscription's table holds each event of the log once, and every error a writer
//! saw was transient (`EventStoreError::is_transient`), so callers never need to downcast to retry.
#![allow(clippy::unwrap_used, clippy::expect_used)] // set-up failures should fail the test loudly

mod common;

use composable_rust_core::backend::{EventLog, StoreLifecycle};
use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use composable_rust_core::{
    BoxError, EventId, EventStoreError, ExpectedVersion, GlobalPosition, LogFilter, RecordedEvent, StreamId, Version,
    async_trait, error_chain,
};
use composable_rust_postgres::{PostgresConfig, PostgresEventStore, SqlProjection, Transactional, Writes};
use composable_rust_runtime::{Backoff, Subscription, SubscriptionConfig};
use composable_rust_testing::postgres_cluster::PrivateCluster;
use sqlx::Postgres;

const WRITERS: usize = 4;
const RESTARTS: usize = 2;
/// Acknowledged appends each writer makes between restarts (and before the first, and after the last).
const APPENDS_BETWEEN_RESTARTS: u64 = 25;
/// Attempts of one append before a writer gives up (each attempt fails within the acquire timeout).
const MAX_ATTEMPTS: u32 = 200;
/// How long anything may take before the test gives up: generous, this is not a timing test.
const DEADLINE: Duration = Duration::from_secs(180);

/// The read model: one row per handled event. The primary key makes a second application of an event fail
/// the handler, so the test would see it.
const CREATE_HANDLED: &str = r"
CREATE TABLE handled (
    position  BIGINT PRIMARY KEY,
    event_id  UUID   NOT NULL UNIQUE,
    stream_id TEXT   NOT NULL,
    version   BIGINT NOT NULL
)";

#[derive(Debug)]
struct Handled;

#[async_trait]
impl SqlProjection<Postgres> for Handled {
    async fn apply(&mut self, event: &RecordedEvent, writes: &mut Writes<Postgres>) -> Result<(), BoxError> {
        writes.push(
            sqlx::query("INSERT INTO handled (position, event_id, stream_id, version) VALUES ($1, $2, $3, $4)")
                .bind(i64::try_from(event.position.get())?)
                .bind(event.id.as_uuid())
                .bind(event.stream_id.to_string())
                .bind(i64::try_from(event.version.get())?),
        );
        Ok(())
    }

    async fn reset(&mut self, writes: &mut Writes<Postgres>) -> Result<(), BoxError> {
        writes.push(sqlx::query("DELETE FROM handled"));
        Ok(())
    }
}

/// What one acknowledged append said it stored.
#[derive(Debug, Clone, Copy)]
struct Ack {
    id: EventId,
    version: Version,
    position: GlobalPosition,
}

/// What a writer did: its acknowledgements in order, and every error it saw on the way.
#[derive(Debug, Default)]
struct WriterReport {
    acks: Vec<Ack>,
    errors: Vec<String>,
    non_transient: Vec<String>,
}

/// Appends single events to its own stream until told to stop, retrying each transient failure with the
/// same event (so an append that landed before its reply was lost is not written twice). Writers 0 and 1
/// expect exact versions, 2 and 3 append with `Any` (a retry then meets the event id index, not the
/// version check).
async fn writer(store: PostgresEventStore, index: usize, acked: Arc<AtomicU64>, stop: Arc<AtomicBool>) -> WriterReport {
    let stream = StreamId::new(format!("writer-{index}")).unwrap();
    let mut report = WriterReport::default();
    let mut version = Version::INITIAL;
    let mut seq = 0;
    while !stop.load(Ordering::Acquire) {
        let event = common::event(index, seq);
        let expected = if index < 2 { ExpectedVersion::Exact(version) } else { ExpectedVersion::Any };
        let mut attempts = 0;
        let result = loop {
            attempts += 1;
            match store.append(&stream, expected, vec![event.clone()]).await {
                Ok(result) => break Some(result),
                Err(error) => {
                    report.errors.push(error_chain(&error));
                    if !error.is_transient() {
                        report.non_transient.push(format!("{error:?}"));
                        break None;
                    }
                    if attempts >= MAX_ATTEMPTS {
                        report.non_transient.push(format!("gave up after {attempts} attempts: {error}"));
                        break None;
                    }
                    tokio::time::sleep(Duration::from_millis(20 * u64::from(attempts.min(10)))).await;
                }
            }
        };
        let Some(result) = result else { return report };
        version = result.stream_version;
        report.acks.push(Ack { id: event.id, version, position: result.positions[0] });
        acked.fetch_add(1, Ordering::AcqRel);
        seq += 1;
    }
    report
}

/// Waits until every writer has `target` acknowledged appends (or one of them stopped).
async fn until_acked(counters: &[Arc<AtomicU64>], target: u64, writers: &[tokio::task::JoinHandle<WriterReport>]) {
    tokio::time::timeout(DEADLINE, async {
        while counters.iter().any(|c| c.load(Ordering::Acquire) < target) {
            assert!(!writers.iter().any(|w| w.is_finished()), "a writer stopped early; see its report below");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .unwrap_or_else(|_| panic!("the writers did not reach {target} acknowledged appends each in {DEADLINE:?}"));
}

/// Every event of the log, in position order, read with retries (the server is up again, but pooled
/// connections may still be broken).
async fn whole_log(store: &PostgresEventStore) -> Vec<RecordedEvent> {
    let mut log = Vec::new();
    let everything = LogFilter::all();
    loop {
        let after = log.last().map_or(GlobalPosition::START, |e: &RecordedEvent| e.position);
        let page = retried("read the log", || store.read_all(after, &everything, 1000)).await;
        if page.is_empty() {
            return log;
        }
        log.extend(page);
    }
}

async fn retried<T, F, Fut>(what: &str, mut call: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, EventStoreError>>,
{
    for _ in 0..50 {
        match call().await {
            Ok(value) => return value,
            Err(error) if error.is_transient() => tokio::time::sleep(Duration::from_millis(100)).await,
            Err(error) => panic!("{what}: {error:?}"),
        }
    }
    panic!("{what} kept failing")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_restart_during_appends_and_a_subscription_loses_and_duplicates_nothing() {
    let cluster = tokio::task::spawn_blocking(PrivateCluster::start)
        .await
        .unwrap()
        .unwrap_or_else(|e| panic!("this test needs a private PostgreSQL cluster (initdb/pg_ctl): {e}"));
    let cluster = Arc::new(cluster);
    let mut config = PostgresConfig::from_url(&cluster.url()).unwrap();
    config.max_connections = 12;
    // While the server is down an attempt fails after this long, and the writer tries again.
    config.acquire_timeout = Duration::from_secs(2);
    let store = PostgresEventStore::connect_with(config).await.unwrap();
    store.migrate().await.unwrap();
    sqlx::query(CREATE_HANDLED).execute(store.pool()).await.unwrap();

    let mut subscription_config = SubscriptionConfig::default();
    subscription_config.poll_interval = Duration::from_millis(100);
    subscription_config.lease_retry = Duration::from_millis(200);
    subscription_config.lease_check_interval = Duration::from_millis(500);
    subscription_config.backoff = Backoff { initial: Duration::from_millis(50), max: Duration::from_secs(1) };
    let handler = Transactional::new(store.clone(), Handled);
    let subscription = Subscription::checkpointed(Arc::new(store.clone()), "restart-counter", handler)
        .config(subscription_config)
        .spawn();

    let stop = Arc::new(AtomicBool::new(false));
    let counters: Vec<Arc<AtomicU64>> = (0..WRITERS).map(|_| Arc::new(AtomicU64::new(0))).collect();
    let writers: Vec<_> = (0..WRITERS)
        .map(|i| tokio::spawn(writer(store.clone(), i, Arc::clone(&counters[i]), Arc::clone(&stop))))
        .collect();

    let mut target = APPENDS_BETWEEN_RESTARTS;
    until_acked(&counters, target, &writers).await;
    for restart in 0..RESTARTS {
        let restarting = Arc::clone(&cluster);
        tokio::task::spawn_blocking(move || {
            if restart == 0 {
                restarting.restart()
            } else {
                // Down for longer than the acquire timeout: attempts also fail with pool timeouts.
                restarting.stop()?;
                std::thread::sleep(Duration::from_secs(3));
                restarting.start_server()
            }
        })
        .await
        .unwrap()
        .expect("restart the cluster");
        // Appends that straddle the restart, then enough after it to show the writers recovered.
        target = counters.iter().map(|c| c.load(Ordering::Acquire)).max().unwrap_or(0) + APPENDS_BETWEEN_RESTARTS;
        until_acked(&counters, target, &writers).await;
    }
    stop.store(true, Ordering::Release);
    let mut reports = Vec::new();
    for writer in writers {
        reports.push(writer.await.expect("a writer panicked"));
    }

    // Every error any writer saw, printed, and each must say it is transient.
    let mut seen: BTreeMap<&str, usize> = BTreeMap::new();
    for error in reports.iter().flat_map(|r| &r.errors) {
        *seen.entry(error.as_str()).or_default() += 1;
    }
    eprintln!("errors the writers saw across {RESTARTS} restarts ({} in all):", seen.values().sum::<usize>());
    for (error, count) in &seen {
        eprintln!("  {count:>4} x {error}");
    }
    let non_transient: Vec<&String> = reports.iter().flat_map(|r| &r.non_transient).collect();
    assert!(non_transient.is_empty(), "writers saw errors that are not transient: {non_transient:#?}");
    assert!(!seen.is_empty(), "the writers saw no error at all: did the server restart under them?");

    // Every acknowledged append is stored once, where its acknowledgement says; ids are unique; streams
    // are dense; nothing else is stored.
    let log = whole_log(&store).await;
    let acked: usize = reports.iter().map(|r| r.acks.len()).sum();
    assert_eq!(log.len(), acked, "the log holds exactly the acknowledged appends");
    let ids: HashSet<EventId> = log.iter().map(|e| e.id).collect();
    assert_eq!(ids.len(), log.len(), "every stored event has its own id");
    for (index, report) in reports.iter().enumerate() {
        let stream = StreamId::new(format!("writer-{index}")).unwrap();
        let stored: Vec<&RecordedEvent> = log.iter().filter(|e| e.stream_id == stream).collect();
        assert_eq!(stored.len(), report.acks.len(), "{stream}: one stored event per acknowledged append");
        for (n, (event, ack)) in stored.iter().zip(&report.acks).enumerate() {
            assert_eq!(event.version, Version::new(n as u64 + 1), "{stream} is dense");
            assert_eq!(
                (event.id, event.version, event.position),
                (ack.id, ack.version, ack.position),
                "{stream}: the stored event is the acknowledged one"
            );
        }
    }

    // The subscription handled each event of the log exactly once.
    let last = log.last().expect("the writers wrote events").position;
    tokio::time::timeout(DEADLINE, subscription.wait_until(last))
        .await
        .unwrap_or_else(|_| panic!("the subscription did not reach {last}: {:?}", subscription.progress()))
        .unwrap_or_else(|e| panic!("the subscription stopped: {e}"));
    let report = subscription.stop().await.expect("the subscription ran without a fatal error");
    let handled: Vec<(i64, uuid::Uuid)> = retried("read the read model", || async {
        sqlx::query_as("SELECT position, event_id FROM handled ORDER BY position")
            .fetch_all(store.pool())
            .await
            .map_err(|e| EventStoreError::unavailable("read the read model", e))
    })
    .await;
    let expected: Vec<(i64, uuid::Uuid)> =
        log.iter().map(|e| (i64::try_from(e.position.get()).unwrap(), e.id.as_uuid())).collect();
    assert_eq!(handled, expected, "the read model holds every event of the log once");
    eprintln!(
        "{acked} appends acknowledged and stored once; the subscription handled {} events in this run",
        report.handled
    );
    store.close().await.unwrap();
}
