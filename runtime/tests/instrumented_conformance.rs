//! The event store conformance suite through an `InstrumentedStore` over `InMemoryEventStore`: the decorator
//! forwards every operation (those with default methods too) without changing what the store does.

use std::sync::Arc;

use composable_rust_runtime::InstrumentedStore;
use composable_rust_testing::InMemoryEventStore;
use composable_rust_testing::conformance::StoreUnderTest;

async fn instrumented() -> StoreUnderTest {
    StoreUnderTest::from_shared(InstrumentedStore::shared(Arc::new(InMemoryEventStore::new()), "in-memory"))
}

composable_rust_testing::event_store_conformance_tests!(instrumented);
