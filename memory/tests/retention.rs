//! The retention suite against the in-memory store, the reference implementation of removal.

use composable_rust_memory::InMemoryEventStore;
use composable_rust_testing::conformance::StoreUnderTest;

async fn in_memory() -> StoreUnderTest {
    StoreUnderTest::new(InMemoryEventStore::new())
}

composable_rust_testing::retention_suite_tests!(in_memory);
