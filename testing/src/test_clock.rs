//! [`TestClock`]: a [`Clock`] that moves only when a test tells it to, so delays take no real time.

use std::collections::BTreeMap;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use composable_rust_core::Clock;
use futures::future::BoxFuture;

/// A [`Clock`] for tests: [`now`](Clock::now) starts at a fixed time and only [`TestClock::advance`] moves it.
///
/// A sleep completes when the clock is advanced past its deadline; sleeps never wait in real time. Advancing
/// fires due sleeps in deadline order (sleeps with the same deadline in the order they were started), so
/// the effects they guard run in that order. A sleep of zero completes at once. Cloning is cheap and clones
/// share the time, so a test keeps one clone and gives another to the store.
///
/// ```
/// use std::time::Duration;
/// use composable_rust_core::Clock;
/// use composable_rust_testing::TestClock;
///
/// let clock = TestClock::new();
/// let start = clock.now();
/// let sleep = clock.sleep(Duration::from_secs(5));
/// assert_eq!(clock.pending_sleeps(), 1);
/// clock.advance(Duration::from_secs(5));
/// assert_eq!(clock.now() - start, chrono::TimeDelta::seconds(5));
/// futures::executor::block_on(sleep); // already due: completes without waiting
/// ```
#[derive(Clone)]
pub struct TestClock {
    shared: Arc<Mutex<ClockState>>,
}

struct ClockState {
    start: DateTime<Utc>,
    elapsed: Duration,
    next_seq: u64,
    /// Waiting sleeps by (deadline as time since start, start order).
    sleepers: BTreeMap<(Duration, u64), Arc<Slot>>,
}

/// The shared part of one sleep: whether it fired, and who to wake.
#[derive(Default)]
struct Slot {
    fired: AtomicBool,
    waker: Mutex<Option<Waker>>,
}

impl Slot {
    fn fire(&self) {
        self.fired.store(true, Ordering::Release);
        let waker = self.waker.lock().unwrap_or_else(PoisonError::into_inner).take();
        if let Some(waker) = waker {
            waker.wake();
        }
    }
}

impl TestClock {
    /// The time a new clock reads: 2024-01-01T00:00:00Z.
    pub const START_SECONDS: i64 = 1_704_067_200;

    /// A clock reading 2024-01-01T00:00:00Z.
    #[must_use]
    pub fn new() -> Self {
        Self::starting_at(DateTime::from_timestamp(Self::START_SECONDS, 0).unwrap_or(DateTime::UNIX_EPOCH))
    }

    /// A clock reading `start`.
    #[must_use]
    pub fn starting_at(start: DateTime<Utc>) -> Self {
        Self {
            shared: Arc::new(Mutex::new(ClockState {
                start,
                elapsed: Duration::ZERO,
                next_seq: 0,
                sleepers: BTreeMap::new(),
            })),
        }
    }

    fn lock(&self) -> MutexGuard<'_, ClockState> {
        self.shared.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Moves time forward by `duration`, firing every sleep whose deadline is reached, in deadline order.
    ///
    /// The sleeping tasks run when their executor next polls them; a `TestStore` advances step by step
    /// and lets them run between deadlines, so a timer that re-arms itself fires as often as it should.
    pub fn advance(&self, duration: Duration) {
        let target = self.lock().elapsed.saturating_add(duration);
        loop {
            let due = {
                let mut state = self.lock();
                match state.sleepers.first_key_value() {
                    Some((&(deadline, _), _)) if deadline <= target => {
                        state.elapsed = state.elapsed.max(deadline);
                        state.sleepers.pop_first().map(|(_, slot)| slot)
                    }
                    _ => {
                        state.elapsed = state.elapsed.max(target);
                        None
                    }
                }
            };
            match due {
                // Fired outside the lock: waking may run code that starts another sleep.
                Some(slot) => slot.fire(),
                None => return,
            }
        }
    }

    /// How long until the earliest waiting sleep is due, if any sleep is waiting.
    #[must_use]
    pub fn time_until_next_sleep(&self) -> Option<Duration> {
        let state = self.lock();
        state.sleepers.first_key_value().map(|(&(deadline, _), _)| deadline.saturating_sub(state.elapsed))
    }

    /// How many sleeps are waiting for the clock to move.
    #[must_use]
    pub fn pending_sleeps(&self) -> usize {
        self.lock().sleepers.len()
    }

    /// How far the clock has moved since it was made.
    #[must_use]
    pub fn elapsed(&self) -> Duration {
        self.lock().elapsed
    }
}

impl Default for TestClock {
    fn default() -> Self {
        Self::new()
    }
}

impl Clock for TestClock {
    fn now(&self) -> DateTime<Utc> {
        let state = self.lock();
        TimeDelta::from_std(state.elapsed)
            .ok()
            .and_then(|elapsed| state.start.checked_add_signed(elapsed))
            .unwrap_or(DateTime::<Utc>::MAX_UTC)
    }

    fn sleep(&self, duration: Duration) -> BoxFuture<'static, ()> {
        let slot = Arc::new(Slot::default());
        let mut state = self.lock();
        if duration.is_zero() {
            slot.fired.store(true, Ordering::Release);
            return Box::pin(TestSleep { slot, key: None, clock: Weak::new() });
        }
        // A deadline past what `Duration` holds never comes.
        let deadline = state.elapsed.checked_add(duration).unwrap_or(Duration::MAX);
        let key = (deadline, state.next_seq);
        state.next_seq += 1;
        state.sleepers.insert(key, Arc::clone(&slot));
        Box::pin(TestSleep { slot, key: Some(key), clock: Arc::downgrade(&self.shared) })
    }
}

impl fmt::Debug for TestClock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let now = self.now();
        let state = self.lock();
        f.debug_struct("TestClock")
            .field("now", &now)
            .field("elapsed", &state.elapsed)
            .field("pending_sleeps", &state.sleepers.len())
            .finish()
    }
}

/// The future [`TestClock::sleep`] returns. Dropping it (a cancelled delay) removes it from the clock.
struct TestSleep {
    slot: Arc<Slot>,
    key: Option<(Duration, u64)>,
    clock: Weak<Mutex<ClockState>>,
}

impl Future for TestSleep {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.slot.fired.load(Ordering::Acquire) {
            return Poll::Ready(());
        }
        *self.slot.waker.lock().unwrap_or_else(PoisonError::into_inner) = Some(cx.waker().clone());
        // Checked again: the clock may have fired between the first check and storing the waker.
        if self.slot.fired.load(Ordering::Acquire) { Poll::Ready(()) } else { Poll::Pending }
    }
}

impl Drop for TestSleep {
    fn drop(&mut self) {
        if let (Some(key), Some(clock)) = (self.key, self.clock.upgrade()) {
            clock.lock().unwrap_or_else(PoisonError::into_inner).sleepers.remove(&key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::FutureExt;

    #[test]
    fn now_starts_at_a_fixed_time_and_moves_only_when_advanced() {
        let clock = TestClock::new();
        assert_eq!(clock.now().to_rfc3339(), "2024-01-01T00:00:00+00:00");
        assert_eq!(clock.now(), clock.now());
        clock.advance(Duration::from_millis(1500));
        assert_eq!(clock.now().to_rfc3339(), "2024-01-01T00:00:01.500+00:00");
        assert_eq!(clock.elapsed(), Duration::from_millis(1500));
    }

    #[test]
    fn a_sleep_completes_only_once_its_deadline_has_passed() {
        let clock = TestClock::new();
        let mut sleep = clock.sleep(Duration::from_secs(10));
        assert!(sleep.as_mut().now_or_never().is_none());
        clock.advance(Duration::from_secs(9));
        assert!(sleep.as_mut().now_or_never().is_none());
        clock.advance(Duration::from_secs(1));
        assert!(sleep.now_or_never().is_some());
        assert_eq!(clock.pending_sleeps(), 0);
    }

    #[test]
    fn advance_fires_sleeps_in_deadline_order_then_start_order() {
        let clock = TestClock::new();
        let fired = Arc::new(Mutex::new(Vec::new()));
        let mut pool = futures::executor::LocalPool::new();
        for (name, secs) in [("c", 3), ("a", 1), ("b1", 2), ("b2", 2)] {
            let sleep = clock.sleep(Duration::from_secs(secs));
            let fired = Arc::clone(&fired);
            futures::task::LocalSpawnExt::spawn_local(&pool.spawner(), async move {
                sleep.await;
                fired.lock().unwrap().push(name);
            })
            .unwrap();
        }
        pool.run_until_stalled();
        assert_eq!(clock.time_until_next_sleep(), Some(Duration::from_secs(1)));
        clock.advance(Duration::from_secs(5));
        pool.run_until_stalled();
        assert_eq!(*fired.lock().unwrap(), ["a", "b1", "b2", "c"]);
    }

    #[test]
    fn a_dropped_sleep_no_longer_counts_as_pending() {
        let clock = TestClock::new();
        let sleep = clock.sleep(Duration::from_secs(1));
        assert_eq!(clock.pending_sleeps(), 1);
        drop(sleep);
        assert_eq!(clock.pending_sleeps(), 0);
        assert_eq!(clock.time_until_next_sleep(), None);
    }

    #[test]
    fn a_zero_sleep_completes_at_once() {
        let clock = TestClock::new();
        assert!(clock.sleep(Duration::ZERO).now_or_never().is_some());
    }

    #[test]
    fn clones_share_the_time() {
        let clock = TestClock::new();
        let other = clock.clone();
        other.advance(Duration::from_secs(60));
        assert_eq!(clock.elapsed(), Duration::from_secs(60));
    }
}
