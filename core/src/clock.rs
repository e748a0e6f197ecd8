//! [`Clock`]: where time comes from, so that tests can move time instead of sleeping.

use std::fmt::Debug;
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures::future::BoxFuture;

/// A source of the current time and of timers.
///
/// The runtime drives [`Effect::Delay`](crate::Effect::Delay) with the store's clock. Reducers that need
/// the time read it from a clock in their environment instead of calling `Utc::now()`, so they stay pure.
/// The runtime provides a system clock; the testing crate provides a test clock moved by hand.
pub trait Clock: Send + Sync + Debug {
    /// The current time.
    fn now(&self) -> DateTime<Utc>;

    /// A future that completes once `duration` has passed on this clock.
    fn sleep(&self, duration: Duration) -> BoxFuture<'static, ()>;
}
