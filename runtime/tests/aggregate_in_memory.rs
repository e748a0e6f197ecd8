//! The aggregate scenarios (`composable_rust_testing::aggregate_scenarios`) against `InMemoryEventStore`.

use std::sync::Arc;

use composable_rust_core::EventStore;
use composable_rust_testing::InMemoryEventStore;

async fn in_memory() -> Arc<dyn EventStore> {
    Arc::new(InMemoryEventStore::new())
}

composable_rust_testing::aggregate_scenario_tests!(in_memory());
