//! Test tools for composable-rust, for its own tests and for yours.
//!
//! - [`TestStore`]: exhaustive, step-by-step tests of a reducer and its effects (every state change and every
//!   action effects feed back is asserted), with a [`TestClock`] so delays take no real time. The guide is
//!   `docs/concepts.md`.
//! - [`InMemoryEventStore`]: the event store contract in memory, with inspection helpers (re-exported from
//!   `composable-rust-memory`, its home, so that production code can use it without the test tools).
//! - [`Intercepted`]: wraps any store and lets an [`Intercept`] take over appends, global reads or leases,
//!   for fault-injection tests (forced conflicts, dropped connections, lost leases).
//! - [`conformance`]: the suite every event store backend runs; [`aggregate_scenarios`] and
//!   [`subscription_suite`](mod@subscription_suite): shared scenarios for aggregates and subscriptions.

pub mod aggregate_scenarios;
pub mod conformance;
mod held_requests;
mod intercepted;
pub mod retention_suite;
pub mod subscription_suite;
mod test_clock;
mod test_store;

pub use composable_rust_memory::InMemoryEventStore;
pub use intercepted::{Intercept, Intercepted};
pub use test_clock::TestClock;
pub use test_store::{Answer, Exhaustivity, TestStore, TestStoreBuilder};
#[cfg(feature = "postgres")]
pub mod postgres_cluster;
#[cfg(feature = "postgres")]
pub mod postgres_fixture;
