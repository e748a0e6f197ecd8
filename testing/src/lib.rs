//! Test tools for composable-rust (being written): `TestStore`, `TestClock`, `InMemoryEventStore` and the
//! backend conformance suite.

pub mod aggregate_scenarios;
pub mod conformance;
pub mod subscription_suite;
mod in_memory;
mod test_clock;
mod test_store;

pub use in_memory::InMemoryEventStore;
pub use test_clock::TestClock;
pub use test_store::{Exhaustivity, TestStore, TestStoreBuilder};
#[cfg(feature = "postgres")]
pub mod postgres_fixture;

/// The event sourcing guide, `docs/event-sourcing.md`, included so that its examples run as doctests.
#[doc = include_str!("../../docs/event-sourcing.md")]
#[cfg(doctest)]
pub struct EventSourcingGuide;

/// The concepts guide, `docs/concepts.md`, included so that its examples run as doctests.
#[doc = include_str!("../../docs/concepts.md")]
#[cfg(doctest)]
pub struct ConceptsGuide;
