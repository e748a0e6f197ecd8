//! [`SubscriptionHandle`]: a spawned subscription's progress, and the way to stop it or learn why it
//! stopped.

use std::fmt;

use composable_rust_core::GlobalPosition;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_util::sync::{CancellationToken, DropGuard};

use super::{Phase, Progress, RunReport, SubscriptionError, SubscriptionStopped};

/// A running subscription: its progress, and the way to stop it or learn why it stopped.
///
/// Dropping the handle stops the subscription after the page in hand (without waiting for it).
pub struct SubscriptionHandle {
    handler: String,
    progress: watch::Receiver<Progress>,
    cancel: CancellationToken,
    _stop_on_drop: DropGuard,
    task: JoinHandle<Result<RunReport, SubscriptionError>>,
}

impl SubscriptionHandle {
    /// The handle of a subscription running as `task`, stopped by `cancel` (also when the handle is dropped).
    pub(super) fn new(
        handler: String,
        progress: watch::Receiver<Progress>,
        cancel: CancellationToken,
        task: JoinHandle<Result<RunReport, SubscriptionError>>,
    ) -> Self {
        Self { handler, progress, cancel: cancel.clone(), _stop_on_drop: cancel.drop_guard(), task }
    }

    /// The handler's name.
    #[must_use]
    pub fn handler(&self) -> &str {
        &self.handler
    }

    /// The subscription's progress now.
    #[must_use]
    pub fn progress(&self) -> Progress {
        *self.progress.borrow()
    }

    /// Waits until the handler's checkpoint is at or after `position`.
    ///
    /// # Errors
    /// [`SubscriptionStopped`] when the subscription stops first.
    pub async fn wait_until(&self, position: GlobalPosition) -> Result<Progress, SubscriptionStopped> {
        self.wait_for(|p| p.checkpoint.is_some_and(|c| c >= position)).await
    }

    /// Waits until `condition` holds for the progress.
    ///
    /// # Errors
    /// [`SubscriptionStopped`] when the subscription stops first.
    pub async fn wait_for(
        &self,
        mut condition: impl FnMut(&Progress) -> bool,
    ) -> Result<Progress, SubscriptionStopped> {
        let mut progress = self.progress.clone();
        let result =
            progress.wait_for(|p| condition(p) || matches!(p.phase, Phase::Stopped | Phase::Failed)).await.map(|p| *p);
        match result {
            Ok(p) if condition(&p) => Ok(p),
            Ok(p) => Err(SubscriptionStopped { handler: self.handler.clone(), phase: p.phase }),
            Err(_) => Err(SubscriptionStopped { handler: self.handler.clone(), phase: self.progress().phase }),
        }
    }

    /// Whether the subscription's task has ended.
    #[must_use]
    pub fn is_finished(&self) -> bool {
        self.task.is_finished()
    }

    /// Asks the subscription to stop after the page in hand and waits for it.
    ///
    /// # Errors
    /// As [`SubscriptionHandle::join`], when it had failed already.
    pub async fn stop(self) -> Result<RunReport, SubscriptionError> {
        self.cancel.cancel();
        self.join().await
    }

    /// Waits for the subscription to end on its own: it only does so with an error.
    ///
    /// # Errors
    /// [`SubscriptionError::HandlerFailed`] naming the failing event, [`SubscriptionError::AlreadyRunning`],
    /// [`SubscriptionError::Store`] for a store error that retrying does not fix, or
    /// [`SubscriptionError::Panicked`].
    pub async fn join(self) -> Result<RunReport, SubscriptionError> {
        let Self { handler, task, _stop_on_drop: guard, .. } = self;
        let result = task.await.unwrap_or_else(|_| Err(SubscriptionError::Panicked { handler }));
        drop(guard);
        result
    }

    /// Stops the task at its next await point, even in the middle of a page, like a crash would.
    /// The handler sees no more events; a transaction in flight rolls back.
    pub fn abort(self) {
        // Without disarming, dropping `self` would also cancel the token: a task in the middle of a poll
        // (another worker thread) could then see the cancellation and stop cleanly, releasing its lease,
        // before the abort lands. A crash releases nothing.
        let Self { _stop_on_drop, task, .. } = self;
        _stop_on_drop.disarm();
        task.abort();
    }
}

impl fmt::Debug for SubscriptionHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SubscriptionHandle")
            .field("handler", &self.handler)
            .field("progress", &*self.progress.borrow())
            .finish_non_exhaustive()
    }
}
