//! Subscriptions on a real PostgreSQL: the subscription suite with the transactional handler (read model
//! and checkpoint in one transaction), plus writers with deliberately slow transactions, crashes in the
//! middle of a page, two processes' worth of instances, and commit notifications.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use composable_rust_core::backend::SubscriptionStore;
use std::sync::Arc;
use std::time::Duration;

use composable_rust_core::{
    BoxError, CheckpointedHandler, EventStore, EventStoreError, ExpectedVersion, GlobalPosition, LogFilter,
    RecordedEvent, async_trait,
};
use composable_rust_postgres::{PgProjection, PgTransactional, PostgresConfig, PostgresEventStore};
use composable_rust_runtime::Subscription;
use composable_rust_testing::postgres_fixture::PostgresTestDatabase;
use composable_rust_testing::subscription_suite::{self, Backend, DEADLINE};
use sqlx::{PgConnection, PgPool};

/// The read model: one row per applied event, keyed by handler and position, so a second application
/// of an event breaks the primary key and the test sees it.
const CREATE_READ_MODEL: &str = r"
CREATE TABLE IF NOT EXISTS applied (
    handler  TEXT   NOT NULL,
    position BIGINT NOT NULL,
    seq      BIGSERIAL,
    PRIMARY KEY (handler, position)
)";

struct Pg {
    store: PostgresEventStore,
    _db: Arc<PostgresTestDatabase>,
}

impl Pg {
    async fn start() -> Self {
        let db = PostgresTestDatabase::start().await;
        let mut config = PostgresConfig::from_options(db.connect_options());
        config.max_connections = 20;
        let store = PostgresEventStore::connect_with(config).await.unwrap();
        store.migrate().await.unwrap();
        sqlx::query(CREATE_READ_MODEL).execute(store.pool()).await.unwrap();
        Self { store, _db: Arc::new(db) }
    }
}

#[derive(Debug)]
struct Applied {
    name: String,
    fail_on: Option<GlobalPosition>,
}

#[async_trait]
impl PgProjection for Applied {
    async fn apply(&mut self, tx: &mut PgConnection, event: &RecordedEvent) -> Result<(), BoxError> {
        if Some(event.position) == self.fail_on {
            return Err(format!("refusing {}", event.describe()).into());
        }
        sqlx::query("INSERT INTO applied (handler, position) VALUES ($1, $2)")
            .bind(&self.name)
            .bind(i64::try_from(event.position.get())?)
            .execute(tx)
            .await?;
        Ok(())
    }

    async fn reset(&mut self, tx: &mut PgConnection) -> Result<(), BoxError> {
        sqlx::query("DELETE FROM applied WHERE handler = $1").bind(&self.name).execute(tx).await?;
        Ok(())
    }
}

async fn recorded(pool: &PgPool, name: &str) -> Vec<GlobalPosition> {
    let rows: Vec<i64> = sqlx::query_scalar("SELECT position FROM applied WHERE handler = $1 ORDER BY seq")
        .bind(name)
        .fetch_all(pool)
        .await
        .unwrap();
    rows.into_iter().map(|p| GlobalPosition::new(u64::try_from(p).unwrap())).collect()
}

#[async_trait]
impl Backend for Pg {
    fn store(&self) -> Arc<dyn EventStore> {
        Arc::new(self.store.clone())
    }

    async fn handler(&self, name: &str, fail_on: Option<GlobalPosition>) -> Box<dyn CheckpointedHandler> {
        Box::new(PgTransactional::new(self.store.pool().clone(), Applied { name: name.to_owned(), fail_on }))
    }

    async fn recorded(&self, name: &str) -> Vec<GlobalPosition> {
        recorded(self.store.pool(), name).await
    }

    fn exactly_once(&self) -> bool {
        true
    }
}

composable_rust_testing::subscription_suite!(Pg::start().await);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_in_the_middle_of_a_page_applies_nothing_twice() {
    subscription_suite::a_crash_in_the_middle_of_a_page_applies_nothing_twice(&Pg::start().await).await;
}

/// Writers whose transactions stay open for a while (they take a transaction id, sleep, then insert)
/// commit out of position order; the subscription still applies every event exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_concurrent_writers_never_make_a_subscription_miss_an_event() {
    let pg = Pg::start().await;
    let store = pg.store();
    let category = subscription_suite::unique("slow");
    let name = subscription_suite::unique("h");
    let handle = subscription_suite::start(&pg, &name, &category).await;
    let mut writers = Vec::new();
    for w in 0..8_i64 {
        let pool = pg.store.pool().clone();
        let stream = format!("{category}-{w}");
        writers.push(tokio::spawn(async move {
            for version in 1..=15_i64 {
                let mut tx = pool.begin().await.unwrap();
                // Take the xid (and so the position) first, then hold the transaction open: later
                // transactions commit first with higher positions, the case that loses events in
                // BIGSERIAL-based stores.
                sqlx::query("SELECT pg_current_xact_id()").execute(&mut *tx).await.unwrap();
                let pause = 1 + (w * 7 + version * 3) % 20;
                sqlx::query("SELECT pg_sleep($1::float8 / 1000)").bind(pause).execute(&mut *tx).await.unwrap();
                sqlx::query(
                    "INSERT INTO events (stream_id, version, global_position, event_type, codec, payload) \
                     VALUES ($1, $2, (pg_current_xact_id()::text::bigint << 20) + 1, 'Slow.v1', 'json', '\\x7b7d')",
                )
                .bind(&stream)
                .bind(version)
                .execute(&mut *tx)
                .await
                .unwrap();
                tx.commit().await.unwrap();
            }
        }));
    }
    // Fast writers through the store at the same time.
    for i in 0..40 {
        subscription_suite::append(&*store, &format!("{category}-fast{}", i % 4), 1 + i % 3).await;
    }
    for writer in writers {
        writer.await.unwrap();
    }
    let all = subscription_suite::positions_in(&*store, &category).await;
    assert_eq!(all.len(), 8 * 15 + (0..40).map(|i| 1 + i % 3).sum::<usize>());
    subscription_suite::wait_until(&handle, *all.last().unwrap()).await;
    handle.stop().await.unwrap();
    assert_eq!(pg.recorded(&name).await, all, "every event exactly once, in position order");
}

/// Two stores (as two processes would have) running the same handler: the advisory lock lets only one
/// process handle events.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_advisory_lock_holds_across_connection_pools() {
    let pg = Pg::start().await;
    let other = PostgresEventStore::connect_with(PostgresConfig::from_options(pg._db.connect_options())).await.unwrap();
    let name = subscription_suite::unique("h");
    let held = pg.store.try_acquire_lease(&name).await.unwrap().expect("the first instance takes the lock");
    assert!(other.try_acquire_lease(&name).await.unwrap().is_none(), "a second pool cannot take it");
    drop(held);
    let taken = tokio::time::timeout(DEADLINE, async {
        loop {
            if let Some(lease) = other.try_acquire_lease(&name).await.unwrap() {
                return lease;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .expect("dropping the lease closes its connection and releases the lock");
    assert_eq!(taken.handler(), name);
}

/// A subscription whose lock connection is killed by the server notices at its next lease check, starts
/// a new session, and carries on without applying anything twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_connection_is_survived_by_reconnecting() {
    let pg = Pg::start().await;
    let store = pg.store();
    let category = subscription_suite::unique("kill");
    let name = subscription_suite::unique("h");
    subscription_suite::append(&*store, &format!("{category}-1"), 10).await;
    let handle = subscription_suite::start(&pg, &name, &category).await;
    let first = subscription_suite::positions_in(&*store, &category).await;
    subscription_suite::wait_until(&handle, *first.last().unwrap()).await;
    // Kill every other connection to this database: the lock's, the listener's and the pool's.
    sqlx::query(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()",
    )
    .execute(pg.store.pool())
    .await
    .unwrap();
    // The pool's idle connections were killed too: calls may fail, transiently, until the pool has replaced
    // them (as an application's would). The append is retried with the same events, so it lands once.
    let stream = composable_rust_core::StreamId::new(format!("{category}-1")).unwrap();
    let events: Vec<_> = (0..10).map(|_| subscription_suite::event("Happened.v1")).collect();
    until_reconnected("the append", || store.append(&stream, ExpectedVersion::Any, events.clone())).await;
    let mut all = Vec::new();
    loop {
        let after = all.last().copied().unwrap_or(GlobalPosition::START);
        let filter = LogFilter::all().category(&category);
        let page = until_reconnected("reading the log", || store.read_all(after, &filter, 1000)).await;
        if page.is_empty() {
            break;
        }
        all.extend(page.iter().map(|e| e.position));
    }
    assert_eq!(all.len(), 20);
    subscription_suite::wait_until(&handle, *all.last().unwrap()).await;
    handle.stop().await.unwrap();
    assert_eq!(pg.recorded(&name).await, all);
}

/// Runs `call` until it succeeds; every failure must be transient (a killed connection the pool handed out).
async fn until_reconnected<T, F, Fut>(what: &str, mut call: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, EventStoreError>>,
{
    for _ in 0..20 {
        match call().await {
            Ok(value) => return value,
            Err(error) => {
                assert!(error.is_transient(), "{what} failed after the kill with a non-transient error: {error}")
            }
        }
    }
    panic!("{what} still failed after 20 attempts: the pool does not replace killed connections")
}

/// The at-least-once adapter works on PostgreSQL too (checkpoints through the store).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_at_least_once_handler_catches_up_on_postgres() {
    let pg = Pg::start().await;
    let store = pg.store();
    let category = subscription_suite::unique("alo");
    subscription_suite::append(&*store, &format!("{category}-1"), 25).await;
    let count = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let counter = Arc::clone(&count);
    let mut subscription = Subscription::new(
        Arc::clone(&store),
        subscription_suite::unique("h"),
        composable_rust_runtime::handler_fn(move |_| {
            counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            Ok(())
        }),
    )
    .filter(LogFilter::all().category(&category));
    let report = subscription.run_to_end().await.unwrap();
    assert_eq!(report.handled, 25);
    assert_eq!(count.load(std::sync::atomic::Ordering::SeqCst), 25);
}
