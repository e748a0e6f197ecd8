//! Letting a [`TestStore`]'s effects run between steps: until they all wait (on the test clock, on a
//! held request, on I/O) or finish, and never longer than the store's timeout.

use std::fmt::Debug;
use std::sync::atomic::Ordering;

use composable_rust_core::Reducer;

use super::TestStore;

/// Yields after which `settle` gives up even if tasks keep making progress (a busy loop in an effect).
const SETTLE_MAX_YIELDS: usize = 10_000;
/// Consecutive yields without progress after which running effects are taken to be waiting.
const SETTLE_QUIET_YIELDS: usize = 3;

impl<R> TestStore<R>
where
    R: Reducer + Send + Sync + 'static,
    R::State: Clone + PartialEq + Debug + Send + 'static,
    R::Action: Clone + PartialEq + Debug + Send + 'static,
    R::Environment: Send + Sync + 'static,
{
    /// Lets running effects make progress until they are all waiting (on the clock, on I/O) or done.
    pub(super) fn settle(&self) {
        let store = &self.store;
        let log = &self.log;
        self.runtime.block_on(async {
            let progress = || (log.reductions.load(Ordering::Acquire), store.effects_in_flight());
            let mut last = progress();
            let mut quiet = 0;
            for _ in 0..SETTLE_MAX_YIELDS {
                if last.1 == 0 {
                    return;
                }
                tokio::task::yield_now().await;
                let now = progress();
                if now == last {
                    quiet += 1;
                    if quiet == SETTLE_QUIET_YIELDS {
                        return;
                    }
                } else {
                    quiet = 0;
                    last = now;
                }
            }
        });
    }

    /// Whether nothing can happen until the test acts: no effect runs, or every running effect may be
    /// waiting on the test clock (delays are the only effects that sleep on it).
    pub(super) fn stalled(&self) -> bool {
        let in_flight = self.store.effects_in_flight();
        in_flight == 0 || in_flight <= self.clock.pending_sleeps() + self.requests.len()
    }

    /// Waits up to the timeout for every effect to finish, unless nothing can make progress.
    pub(super) fn wait_for_idle(&self) {
        if self.stalled() {
            return;
        }
        let store = self.store.clone();
        let _ = self.runtime.block_on(async { tokio::time::timeout(self.timeout, store.idle()).await });
        self.settle();
    }

    /// The next received action, waiting up to the timeout for one to arrive.
    pub(super) fn next_received(&self) -> Option<(R::Action, R::State)> {
        if let Some(next) = self.log.pop_received() {
            return Some(next);
        }
        if self.stalled() {
            return None;
        }
        let log = &self.log;
        self.runtime
            .block_on(async {
                tokio::time::timeout(self.timeout, async {
                    loop {
                        if let Some(next) = log.pop_received() {
                            return next;
                        }
                        log.arrived.notified().await;
                    }
                })
                .await
            })
            .ok()
    }
}
