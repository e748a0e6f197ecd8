//! The event store conformance suite, run against `SqliteEventStore` on a real file in a fresh
//! temporary folder per case (the folder is removed when the case ends).

use composable_rust_sqlite::SqliteEventStore;
use composable_rust_testing::conformance::StoreUnderTest;

async fn sqlite_file() -> StoreUnderTest {
    let dir = match tempfile::tempdir() {
        Ok(dir) => dir,
        Err(error) => panic!("could not create a temporary folder: {error}"),
    };
    match SqliteEventStore::open(dir.path().join("events.db")).await {
        Ok(store) => StoreUnderTest::new(store).with_guard(dir),
        Err(error) => panic!("could not open the SQLite event store: {error}"),
    }
}

composable_rust_testing::event_store_conformance_tests!(sqlite_file);

/// The in-memory variant keeps the same contract (one shared connection for reads and writes).
mod in_memory {
    use super::*;

    async fn sqlite_in_memory() -> StoreUnderTest {
        match SqliteEventStore::in_memory().await {
            Ok(store) => StoreUnderTest::new(store),
            Err(error) => panic!("could not open an in-memory SQLite event store: {error}"),
        }
    }

    composable_rust_testing::event_store_conformance_tests!(sqlite_in_memory);
}
