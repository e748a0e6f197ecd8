//! The aggregate scenarios (`composable_rust_testing::aggregate_scenarios`) against `PostgresEventStore` on a
//! fresh database per scenario (see `composable_rust_testing::postgres_fixture`).

use composable_rust_postgres::{PostgresConfig, PostgresEventStore};
use composable_rust_testing::aggregate_scenarios::ScenarioStore;
use composable_rust_testing::postgres_fixture::PostgresTestDatabase;

async fn postgres() -> ScenarioStore {
    let db = PostgresTestDatabase::start().await;
    let store = match PostgresEventStore::connect_with(PostgresConfig::from_options(db.connect_options())).await {
        Ok(store) => store,
        Err(error) => panic!("could not connect to the test database: {error}"),
    };
    if let Err(error) = store.migrate().await {
        panic!("could not migrate the test database: {error}");
    }
    ScenarioStore::new(store).with_guard(db)
}

composable_rust_testing::aggregate_scenario_tests!(postgres());
