//! The generic retention suite (`composable_rust_testing::retention_suite`) against a real PostgreSQL: a fresh,
//! migrated database per case, the store connected as the schema's owner, which may call
//! `events_retention_remove` (the least-privilege roles are pinned in `retention.rs`).

use composable_rust_postgres::{PostgresConfig, PostgresEventStore};
use composable_rust_testing::conformance::StoreUnderTest;
use composable_rust_testing::postgres_fixture::PostgresTestDatabase;

async fn postgres() -> StoreUnderTest {
    let db = PostgresTestDatabase::start().await;
    let store = PostgresEventStore::connect_with(PostgresConfig::from_options(db.connect_options()))
        .await
        .unwrap_or_else(|e| panic!("connect to the test database: {e}"));
    store.migrate().await.unwrap_or_else(|e| panic!("migrate the test database: {e}"));
    StoreUnderTest::new(store).with_guard(db)
}

composable_rust_testing::retention_suite_tests!(postgres);
