//! The event store conformance suite, run against `InMemoryEventStore`.

use composable_rust_memory::InMemoryEventStore;
use composable_rust_testing::conformance::StoreUnderTest;

async fn in_memory() -> StoreUnderTest {
    StoreUnderTest::new(InMemoryEventStore::new())
}

composable_rust_testing::event_store_conformance_tests!(in_memory);
