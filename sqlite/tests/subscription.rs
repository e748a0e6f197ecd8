//! Subscriptions on SQLite: the subscription suite with the transactional handler (read model and
//! checkpoint in one transaction on the write connection), plus crashes mid-page, leases shared by two
//! stores on one file (as two processes would open it), and expiry of a lease left by a dead process.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use composable_rust_core::backend::SubscriptionStore;
use std::sync::Arc;
use std::time::Duration;

use composable_rust_core::{BoxError, CheckpointedHandler, EventStore, GlobalPosition, RecordedEvent, async_trait};
use composable_rust_sqlite::{SqliteEventStore, SqliteProjection, SqliteTransactional};
use composable_rust_testing::subscription_suite::{self, Backend};
use sqlx::SqliteConnection;

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
        let mut writer = SqliteTransactionalSetup(store.clone());
        writer.create().await;
        Self { store, _dir: Arc::new(dir) }
    }
}

/// Creates the read model's table through a transactional reset (the only write path tests need).
struct SqliteTransactionalSetup(SqliteEventStore);

impl SqliteTransactionalSetup {
    async fn create(&mut self) {
        struct Create;
        #[async_trait]
        impl SqliteProjection for Create {
            async fn apply(&mut self, _: &mut SqliteConnection, _: &RecordedEvent) -> Result<(), BoxError> {
                Ok(())
            }
            async fn reset(&mut self, tx: &mut SqliteConnection) -> Result<(), BoxError> {
                sqlx::query(CREATE_READ_MODEL).execute(tx).await?;
                Ok(())
            }
        }
        SqliteTransactional::new(self.0.clone(), Create).reset("setup").await.unwrap();
    }
}

#[derive(Debug)]
struct Applied {
    name: String,
    fail_on: Option<GlobalPosition>,
}

#[async_trait]
impl SqliteProjection for Applied {
    async fn apply(&mut self, tx: &mut SqliteConnection, event: &RecordedEvent) -> Result<(), BoxError> {
        if Some(event.position) == self.fail_on {
            return Err(format!("refusing {}", event.describe()).into());
        }
        sqlx::query("INSERT INTO applied (handler, position) VALUES (?1, ?2)")
            .bind(&self.name)
            .bind(i64::try_from(event.position.get())?)
            .execute(tx)
            .await?;
        Ok(())
    }

    async fn reset(&mut self, tx: &mut SqliteConnection) -> Result<(), BoxError> {
        sqlx::query("DELETE FROM applied WHERE handler = ?1").bind(&self.name).execute(tx).await?;
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
        Box::new(SqliteTransactional::new(self.store.clone(), Applied { name: name.to_owned(), fail_on }))
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
    let held = sqlite.store.try_acquire_lease("summary").await.unwrap().expect("the first instance takes the lease");
    assert!(other.try_acquire_lease("summary").await.unwrap().is_none(), "the second store is refused");
    drop(held);
    let taken = tokio::time::timeout(subscription_suite::DEADLINE, async {
        loop {
            if let Some(lease) = other.try_acquire_lease("summary").await.unwrap() {
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
    assert!(sqlite.store.try_acquire_lease("summary").await.unwrap().is_some(), "the expired row is taken over");
    assert!(sqlite.store.try_acquire_lease("busy").await.unwrap().is_none(), "a live row is respected");
}

/// A catch-up run (a command-line tool) frees the lease row before it returns, so the next run does not
/// wait for an expiry.
#[tokio::test]
async fn a_finished_run_releases_its_lease_row_at_once() {
    let sqlite = Sqlite::open().await;
    subscription_suite::append(&sqlite.store, "order-1", 3).await;
    for _ in 0..2 {
        let handler = sqlite.handler("report", None).await;
        let mut run = composable_rust_runtime::Subscription::checkpointed(sqlite.store(), "report", handler).config(
            composable_rust_runtime::SubscriptionConfig {
                when_locked: composable_rust_runtime::WhenLocked::Fail,
                ..composable_rust_runtime::SubscriptionConfig::default()
            },
        );
        run.run_to_end().await.unwrap();
    }
    assert!(sqlite.store.try_acquire_lease("report").await.unwrap().is_some());
}
