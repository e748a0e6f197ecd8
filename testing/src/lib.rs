//! Test tools for composable-rust (being written): `TestStore`, `TestClock`, `InMemoryEventStore` and the
//! backend conformance suite.

mod test_clock;
mod test_store;
mod in_memory;
pub mod conformance;
#[cfg(feature = "postgres")]
pub mod postgres_fixture;
