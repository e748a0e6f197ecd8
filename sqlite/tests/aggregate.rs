//! The aggregate scenarios (`composable_rust_testing::aggregate_scenarios`) against `SqliteEventStore` on a
//! real file in a fresh temporary folder per scenario.

use composable_rust_sqlite::SqliteEventStore;
use composable_rust_testing::aggregate_scenarios::ScenarioStore;

async fn sqlite_file() -> ScenarioStore {
    let dir = match tempfile::tempdir() {
        Ok(dir) => dir,
        Err(error) => panic!("could not create a temporary folder: {error}"),
    };
    match SqliteEventStore::open(dir.path().join("events.db")).await {
        Ok(store) => ScenarioStore::new(store).with_guard(dir),
        Err(error) => panic!("could not open the SQLite event store: {error}"),
    }
}

composable_rust_testing::aggregate_scenario_tests!(sqlite_file());
