//! [`SystemClock`]: the real clock, which a [`Store`](crate::Store) uses unless it is given another one.

use std::time::Duration;

use chrono::{DateTime, Utc};
use composable_rust_core::Clock;
use futures::future::BoxFuture;

/// The wall clock: [`Clock::now`] reads the system time and [`Clock::sleep`] waits on tokio's timer.
///
/// The deadline of a sleep is fixed when [`Clock::sleep`] is called, not when the future is first polled,
/// so an [`Effect::Delay`](composable_rust_core::Effect::Delay) measures from the moment the store started
/// it. The future itself needs a tokio runtime with the time driver enabled when it is polled.
///
/// ```
/// use composable_rust_core::Clock;
/// use composable_rust_runtime::SystemClock;
///
/// let before = SystemClock.now();
/// assert!(SystemClock.now() >= before);
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }

    fn sleep(&self, duration: Duration) -> BoxFuture<'static, ()> {
        // `Instant::now` works outside a runtime; `sleep_until` does not, so it is created on first poll.
        let deadline = tokio::time::Instant::now().checked_add(duration);
        Box::pin(async move {
            match deadline {
                Some(deadline) => tokio::time::sleep_until(deadline).await,
                // A delay too long to represent never ends.
                None => futures::future::pending().await,
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn sleep_measures_from_the_call_not_from_the_first_poll() {
        let sleep = SystemClock.sleep(Duration::from_secs(5));
        tokio::time::advance(Duration::from_secs(5)).await;
        let started = tokio::time::Instant::now();
        sleep.await;
        assert_eq!(tokio::time::Instant::now(), started, "the deadline had already passed");
    }

    #[tokio::test(start_paused = true)]
    async fn sleep_waits_for_its_duration() {
        let started = tokio::time::Instant::now();
        SystemClock.sleep(Duration::from_millis(1500)).await;
        assert_eq!(started.elapsed(), Duration::from_millis(1500));
    }
}
