//! The event store conformance suite against a real PostgreSQL: a fresh, migrated database per case.

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

composable_rust_testing::event_store_conformance_tests!(postgres);
