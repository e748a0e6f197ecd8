//! Subscriptions on SQLite: the subscription suite with the transactional handler (read model and
//! checkpoint in one transaction on the write connection), plus crashes mid-page, leases shared by two
//! stores on one file (as two processes would open it), and expiry of a lease left by a dead process.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use composable_rust_core::backend::{HandlerLease, LeaseGuard, SubscriptionStore};
use composable_rust_core::{
    BoxError, CheckpointedHandler, EventStore, EventStoreError, GlobalPosition, RecordedEvent, async_trait,
};
use composable_rust_sqlite::{SqlProjection, SqliteEventStore, Transactional, Writes};
use composable_rust_testing::subscription_suite::{self, Backend, LEASE_TTL};
use composable_rust_testing::{Intercept, Intercepted};

const CREATE_READ_MODEL: &str = r"
CREATE TABLE IF NOT EXISTS applied (
    seq      INTEGER PRIMARY KEY AUTOINCREMENT,
    handler  TEXT    NOT NULL,
    position INTEGER NOT NULL,
    UNIQUE (handler, position)
)";

struct Sqlite {
    store: SqliteEventStore,
    _dir: Arc<tempfile::TempDir>,
}

impl Sqlite {
    async fn open() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteEventStore::open(dir.path().join("events.db")).await.unwrap();
        let mut writer = ReadModelSetup(store.clone());
        writer.create().await;
        Self { store, _dir: Arc::new(dir) }
    }
}

/// Creates the read model's table through a transactional reset (the only write path tests need).
struct ReadModelSetup(SqliteEventStore);

impl ReadModelSetup {
    async fn create(&mut self) {
        struct Create;
        #[async_trait]
        impl SqlProjection<sqlx::Sqlite> for Create {
            async fn apply(&mut self, _: &RecordedEvent, _: &mut Writes<sqlx::Sqlite>) -> Result<(), BoxError> {
                Ok(())
            }
            async fn reset(&mut self, writes: &mut Writes<sqlx::Sqlite>) -> Result<(), BoxError> {
                writes.push(sqlx::query(CREATE_READ_MODEL));
                Ok(())
            }
        }
        Transactional::new(self.0.clone(), Create).reset("setup").await.unwrap();
    }
}

#[derive(Debug)]
struct Applied {
    name: String,
    fail_on: Option<GlobalPosition>,
}

#[async_trait]
impl SqlProjection<sqlx::Sqlite> for Applied {
    async fn apply(&mut self, event: &RecordedEvent, writes: &mut Writes<sqlx::Sqlite>) -> Result<(), BoxError> {
        if Some(event.position) == self.fail_on {
            return Err(format!("refusing {}", event.describe()).into());
        }
        writes.push(
            sqlx::query("INSERT INTO applied (handler, position) VALUES ($1, $2)")
                .bind(self.name.clone())
                .bind(i64::try_from(event.position.get())?),
        );
        Ok(())
    }

    async fn reset(&mut self, writes: &mut Writes<sqlx::Sqlite>) -> Result<(), BoxError> {
        writes.push(sqlx::query("DELETE FROM applied WHERE handler = $1").bind(self.name.clone()));
        Ok(())
    }
}

/// Reads the read model through a connection of its own.
async fn recorded(store: &SqliteEventStore, name: &str) -> Vec<GlobalPosition> {
    // Reads go through a separate connection on the same file.
    let options = sqlx::sqlite::SqliteConnectOptions::new().filename(store.path().unwrap()).read_only(true);
    let pool = sqlx::SqlitePool::connect_with(options).await.unwrap();
    let rows: Vec<i64> = sqlx::query_scalar("SELECT position FROM applied WHERE handler = ?1 ORDER BY seq")
        .bind(name)
        .fetch_all(&pool)
        .await
        .unwrap();
    pool.close().await;
    rows.into_iter().map(|p| GlobalPosition::new(u64::try_from(p).unwrap())).collect()
}

#[async_trait]
impl Backend for Sqlite {
    fn store(&self) -> Arc<dyn EventStore> {
        Arc::new(self.store.clone())
    }

    async fn handler(&self, name: &str, fail_on: Option<GlobalPosition>) -> Box<dyn CheckpointedHandler> {
        Box::new(Transactional::new(self.store.clone(), Applied { name: name.to_owned(), fail_on }))
    }

    async fn recorded(&self, name: &str) -> Vec<GlobalPosition> {
        recorded(&self.store, name).await
    }

    fn exactly_once(&self) -> bool {
        true
    }
}

composable_rust_testing::subscription_suite!(Sqlite::open().await);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_in_the_middle_of_a_page_applies_nothing_twice() {
    subscription_suite::a_crash_in_the_middle_of_a_page_applies_nothing_twice(&Sqlite::open().await).await;
}

/// Two stores on one file (two processes would each open their own): the lease row admits one.
#[tokio::test]
async fn a_lease_row_admits_one_instance_across_stores_on_one_file() {
    let sqlite = Sqlite::open().await;
    let other = SqliteEventStore::open(sqlite.store.path().unwrap()).await.unwrap();
    let held = sqlite
        .store
        .try_acquire_lease("summary", LEASE_TTL)
        .await
        .unwrap()
        .expect("the first instance takes the lease");
    assert!(other.try_acquire_lease("summary", LEASE_TTL).await.unwrap().is_none(), "the second store is refused");
    drop(held);
    let taken = tokio::time::timeout(subscription_suite::DEADLINE, async {
        loop {
            if let Some(lease) = other.try_acquire_lease("summary", LEASE_TTL).await.unwrap() {
                return lease;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .expect("dropping the lease deletes its row");
    assert_eq!(taken.handler(), "summary");
}

/// A lease whose holder died (its row expired) is taken over.
#[tokio::test]
async fn an_expired_lease_row_is_taken_over() {
    let sqlite = Sqlite::open().await;
    let options = sqlx::sqlite::SqliteConnectOptions::new().filename(sqlite.store.path().unwrap());
    let pool = sqlx::SqlitePool::connect_with(options).await.unwrap();
    sqlx::query("INSERT INTO subscription_leases (handler, owner, expires_at) VALUES ('summary', 'dead', 0)")
        .execute(&pool)
        .await
        .unwrap();
    sqlx::query("INSERT INTO subscription_leases (handler, owner, expires_at) VALUES ('busy', 'alive', ?1)")
        .bind(i64::MAX)
        .execute(&pool)
        .await
        .unwrap();
    pool.close().await;
    assert!(
        sqlite.store.try_acquire_lease("summary", LEASE_TTL).await.unwrap().is_some(),
        "the expired row is taken over"
    );
    assert!(sqlite.store.try_acquire_lease("busy", LEASE_TTL).await.unwrap().is_none(), "a live row is respected");
}

/// A catch-up run (a command-line tool) frees the lease row before it returns, so the next run does not
/// wait for an expiry.
#[tokio::test]
async fn a_finished_run_releases_its_lease_row_at_once() {
    let sqlite = Sqlite::open().await;
    subscription_suite::append(&sqlite.store, "order-1", 3).await;
    for _ in 0..2 {
        let handler = sqlite.handler("report", None).await;
        let mut config = composable_rust_runtime::SubscriptionConfig::default();
        config.when_locked = composable_rust_runtime::WhenLocked::Fail;
        let mut run =
            composable_rust_runtime::Subscription::checkpointed(sqlite.store(), "report", handler).config(config);
        run.run_to_end().await.unwrap();
    }
    assert!(sqlite.store.try_acquire_lease("report", LEASE_TTL).await.unwrap().is_some());
}

/// Leases that a dead process leaves behind: dropping one forgets the backend's lease instead of
/// releasing it, so its SQLite row stays until it expires, as a crashed process's row does.
#[derive(Debug, Default)]
struct DiesWithoutRelease {
    left_behind: Arc<AtomicU32>,
}

#[async_trait]
impl Intercept for DiesWithoutRelease {
    async fn try_acquire_lease(
        &self,
        inner: &dyn EventStore,
        handler: &str,
        ttl: Duration,
    ) -> Result<Option<HandlerLease>, EventStoreError> {
        let lease = inner.try_acquire_lease(handler, ttl).await?;
        Ok(lease.map(|lease| {
            HandlerLease::new(handler, LeftBehind { lease: Some(lease), count: Arc::clone(&self.left_behind) })
        }))
    }
}

#[derive(Debug)]
struct LeftBehind {
    lease: Option<HandlerLease>,
    count: Arc<AtomicU32>,
}

#[async_trait]
impl LeaseGuard for LeftBehind {
    async fn confirm(&mut self) -> Result<(), EventStoreError> {
        match &mut self.lease {
            Some(lease) => lease.confirm().await,
            None => Err(EventStoreError::backend("confirm a lease", "released")),
        }
    }

    async fn release(&mut self) -> Result<(), EventStoreError> {
        match self.lease.take() {
            Some(lease) => lease.release().await,
            None => Ok(()),
        }
    }
}

impl Drop for LeftBehind {
    fn drop(&mut self) {
        if let Some(lease) = self.lease.take() {
            self.count.fetch_add(1, Ordering::SeqCst);
            std::mem::forget(lease); // no delete of the row: it has to expire
        }
    }
}

/// The slow-page scenario of the suite where the first instance's death leaves its lease row, so the
/// standby takes over only once the row expires: renewals while the page runs keep the row alive (the
/// page lasts several lifetimes of the lease), and expiry after a death frees it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_page_renews_its_lease_row_and_a_dead_instance_s_row_expires() {
    let sqlite = Sqlite::open().await;
    let dying = Arc::new(Intercepted::new(sqlite.store(), DiesWithoutRelease::default()));
    subscription_suite::a_page_slower_than_the_lease_keeps_it_until_its_instance_dies_on(&sqlite, dying.clone()).await;
    // The aborted instance's lease guard is dropped when the runtime drops its task; wait for that, bounded.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while dying.left_behind.load(Ordering::SeqCst) == 0 && std::time::Instant::now() < deadline {
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    assert_eq!(
        dying.left_behind.load(Ordering::SeqCst),
        1,
        "the aborted instance must die without releasing its lease row (it had to expire)"
    );
}
