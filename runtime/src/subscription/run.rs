//! The subscription loop: sessions (lease, checkpoint, pages), retries with backoff after backend errors,
//! and the waits of a live subscription.

use std::time::Duration;

use composable_rust_core::{ApplyError, CheckpointedHandler, EventStoreError, GlobalPosition, RecordedEvent};
use futures::stream::BoxStream;
use futures::{FutureExt, StreamExt};
use tokio_util::sync::CancellationToken;

use composable_rust_core::backend::HandlerLease;

use super::lease::while_renewing;
use super::{ArchivedEvents, Phase, RunReport, Subscription, SubscriptionError, WhenLocked};

impl<H: CheckpointedHandler + 'static> Subscription<H> {
    pub(super) async fn run(
        &mut self,
        cancel: &CancellationToken,
        follow: Follow,
    ) -> Result<RunReport, SubscriptionError> {
        let mut delay = self.config.backoff.initial;
        tracing::info!(handler = %self.name, "subscription started");
        loop {
            let mut healthy = false;
            match self.session(cancel, follow, &mut healthy).await {
                Ok(()) => {
                    self.update(|p| p.phase = Phase::Stopped);
                    tracing::info!(handler = %self.name, handled = self.handled, "subscription stopped");
                    let checkpoint = self.progress.borrow().checkpoint;
                    return Ok(RunReport {
                        handled: self.handled,
                        checkpoint,
                        skipped_archived: self.skipped_archived,
                    });
                }
                Err(Failure::Fatal(error)) => {
                    self.update(|p| p.phase = Phase::Failed);
                    tracing::error!(handler = %self.name, error = %error, source = ?std::error::Error::source(&error), "subscription failed");
                    return Err(error);
                }
                Err(Failure::Retry(error)) => {
                    if healthy {
                        delay = self.config.backoff.initial;
                    }
                    self.update(|p| p.phase = Phase::Retrying);
                    tracing::warn!(
                        handler = %self.name, error = %error, source = ?std::error::Error::source(&error), retry_in = ?delay,
                        "subscription lost its connection or lease; resuming from its checkpoint after a pause"
                    );
                    if sleep_or_cancel(delay, cancel).await.is_err() {
                        self.update(|p| p.phase = Phase::Stopped);
                        let checkpoint = self.progress.borrow().checkpoint;
                        return Ok(RunReport {
                            handled: self.handled,
                            checkpoint,
                            skipped_archived: self.skipped_archived,
                        });
                    }
                    delay = delay.saturating_mul(2).min(self.config.backoff.max);
                }
            }
        }
    }

    /// One lease, one checkpoint load, pages until stopped or failed. The lease is renewed while the
    /// pages run; a renewal that finds it lost drops the pages where they are (mid-page too) and ends
    /// the session.
    async fn session(&mut self, cancel: &CancellationToken, follow: Follow, healthy: &mut bool) -> Result<(), Failure> {
        let Some(mut lease) = self.acquire_lease(cancel).await? else {
            return Ok(());
        };
        let every = self.config.lease_renewal_interval();
        let result = match while_renewing(&mut lease, every, self.pages(cancel, follow, healthy)).await {
            Ok(result) => result,
            Err(lost) => Err(Failure::Retry(lost)),
        };
        // Released here rather than on drop, so that a short-lived process (a catch-up in a command-line
        // tool) frees the name before it exits instead of leaving a lease to expire.
        if let Err(error) = lease.release().await {
            tracing::debug!(handler = %self.name, %error, "could not release the lease; it will expire");
        }
        result
    }

    /// The pages of one session (the caller holds and renews the lease).
    async fn pages(&mut self, cancel: &CancellationToken, follow: Follow, healthy: &mut bool) -> Result<(), Failure> {
        if self.reset_first {
            self.handler.reset(&self.name).await.map_err(|e| self.apply_failure(e, &[]))?;
            self.reset_first = false;
            tracing::info!(handler = %self.name, "handler reset; rebuilding from the start of the log");
        }
        // Subscribe before the first read: a commit after that read then always leaves a signal.
        let mut wakeups = self.store.commit_notifications();
        let mut checkpoint = self.handler.load_checkpoint(&self.name).await.map_err(|e| self.store_failure(e))?;
        self.update(|p| {
            p.checkpoint = checkpoint;
            p.phase = Phase::CatchingUp;
        });
        let page_size = self.config.page_size.max(1);
        // The removal horizon up to which this session counted removed events as skipped (`ArchivedEvents::Skip`).
        let mut acknowledged = GlobalPosition::START;
        loop {
            if cancel.is_cancelled() {
                return Ok(());
            }
            let after = checkpoint.unwrap_or(GlobalPosition::START);
            let page =
                self.store.read_all(after, &self.config.filter, page_size).await.map_err(|e| self.store_failure(e))?;
            *healthy = true;
            // Checked after the read: the horizon only grows, so a horizon at or below `after` now means
            // nothing after `after` was gone when the page was read.
            if self.removed_since(checkpoint, &mut acknowledged).await? {
                continue;
            }
            let Some(last) = page.last().map(|event| event.position) else {
                if follow == Follow::UntilCaughtUp {
                    return Ok(());
                }
                self.update(|p| p.phase = Phase::Live);
                wait_for_commit(&mut wakeups, self.config.poll_interval, cancel, &self.name).await;
                continue;
            };
            self.handler.apply(&self.name, &page).await.map_err(|e| self.apply_failure(e, &page))?;
            checkpoint = Some(last);
            self.handled += page.len() as u64;
            let handled = self.handled;
            self.update(|p| {
                p.checkpoint = checkpoint;
                p.handled = handled;
                if page.len() == page_size {
                    p.phase = Phase::CatchingUp;
                }
            });
        }
    }

    /// Whether retention removed events after `checkpoint` that the filter selects.
    ///
    /// With [`ArchivedEvents::Fail`] that is a [`SubscriptionError::EventsArchived`] failure, counted from the
    /// checkpoint every time (exact, whenever the removal ran). With [`ArchivedEvents::Skip`] they are
    /// counted as skipped once, up to the horizon seen (`acknowledged`), and `Ok(true)` asks for the page to
    /// be read again (it was read before they were acknowledged); an event removed later *below* a horizon
    /// already acknowledged is skipped without being counted.
    async fn removed_since(
        &mut self,
        checkpoint: Option<GlobalPosition>,
        acknowledged: &mut GlobalPosition,
    ) -> Result<bool, Failure> {
        let Some(horizon) = self.store.removal_horizon().await.map_err(|e| self.store_failure(e))? else {
            return Ok(false);
        };
        let after = checkpoint.unwrap_or(GlobalPosition::START);
        let from = match self.config.archived {
            ArchivedEvents::Fail => after,
            ArchivedEvents::Skip => after.max(*acknowledged),
        };
        if horizon <= from {
            return Ok(false);
        }
        let removed =
            self.store.removed_between(from, horizon, &self.config.filter).await.map_err(|e| self.store_failure(e))?;
        if removed == 0 {
            // Only events this subscription does not read are gone: the page is complete.
            return Ok(false);
        }
        if self.config.archived == ArchivedEvents::Fail {
            return Err(Failure::Fatal(SubscriptionError::EventsArchived {
                handler: self.name.clone(),
                checkpoint,
                horizon,
                removed,
            }));
        }
        *acknowledged = horizon;
        self.skipped_archived += removed;
        let skipped = self.skipped_archived;
        self.update(|p| p.skipped_archived = skipped);
        tracing::warn!(
            handler = %self.name, removed, horizon = %horizon,
            "skipping events that retention removed after the checkpoint (ArchivedEvents::Skip)"
        );
        Ok(true)
    }

    /// Takes the lease; `Ok(None)` when cancelled while waiting for it.
    pub(super) async fn acquire_lease(&mut self, cancel: &CancellationToken) -> Result<Option<HandlerLease>, Failure> {
        let mut announced = false;
        loop {
            match self.store.try_acquire_lease(&self.name, self.config.lease_ttl()).await {
                Ok(Some(lease)) => return Ok(Some(lease)),
                Ok(None) if self.config.when_locked == WhenLocked::Fail => {
                    return Err(Failure::Fatal(SubscriptionError::AlreadyRunning { handler: self.name.clone() }));
                }
                Ok(None) => {
                    if !announced {
                        announced = true;
                        self.update(|p| p.phase = Phase::WaitingForLease);
                        tracing::info!(handler = %self.name, "another instance holds the lease; standing by");
                    }
                    if sleep_or_cancel(self.config.lease_retry, cancel).await.is_err() {
                        return Ok(None);
                    }
                }
                Err(error) => return Err(self.store_failure(error)),
            }
        }
    }

    fn store_failure(&self, error: EventStoreError) -> Failure {
        match error {
            EventStoreError::Backend { .. } | EventStoreError::Unavailable { .. } => Failure::Retry(error),
            other => Failure::Fatal(SubscriptionError::Store { handler: self.name.clone(), source: other }),
        }
    }

    pub(super) fn apply_failure(&self, error: ApplyError, page: &[RecordedEvent]) -> Failure {
        match error {
            ApplyError::Store(error) => self.store_failure(error),
            ApplyError::Reset(source) => {
                Failure::Fatal(SubscriptionError::Reset { handler: self.name.clone(), source })
            }
            ApplyError::Handler { index, source } => match page.get(index) {
                Some(event) => Failure::Fatal(SubscriptionError::HandlerFailed {
                    handler: self.name.clone(),
                    stream_id: event.stream_id.clone(),
                    version: event.version,
                    position: event.position,
                    event_type: event.event_type.to_string(),
                    source,
                }),
                None => Failure::Fatal(SubscriptionError::Store {
                    handler: self.name.clone(),
                    source: EventStoreError::backend(
                        format!("apply a page of {} events (the handler named index {index})", page.len()),
                        source,
                    ),
                }),
            },
        }
    }

    pub(super) fn error_of(&self, failure: Failure) -> SubscriptionError {
        match failure {
            Failure::Fatal(error) => error,
            Failure::Retry(source) => SubscriptionError::Store { handler: self.name.clone(), source },
        }
    }
}

/// Whether a run follows the log live or returns once it has caught up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Follow {
    Live,
    UntilCaughtUp,
}

/// How a session ended when it did not end normally.
pub(super) enum Failure {
    /// Start a new session after a pause: the store or the lease failed.
    Retry(EventStoreError),
    /// Stop the subscription.
    Fatal(SubscriptionError),
}

/// Waits for a commit notification, the poll interval or cancellation, whichever comes first.
async fn wait_for_commit(
    wakeups: &mut Option<BoxStream<'static, ()>>,
    poll_interval: Duration,
    cancel: &CancellationToken,
    handler: &str,
) {
    let poll = tokio::time::sleep(poll_interval);
    match wakeups {
        Some(signals) => {
            tokio::select! {
                () = cancel.cancelled() => {}
                () = poll => {}
                signal = signals.next() => match signal {
                    // Coalesce a burst of commits into one read.
                    Some(()) => while let Some(Some(())) = signals.next().now_or_never() {},
                    None => {
                        tracing::debug!(handler = %handler, "commit notifications ended; polling");
                        *wakeups = None;
                    }
                },
            }
        }
        None => {
            tokio::select! {
                () = cancel.cancelled() => {}
                () = poll => {}
            }
        }
    }
}

/// `Err(())` when cancelled before `duration` passed.
async fn sleep_or_cancel(duration: Duration, cancel: &CancellationToken) -> Result<(), ()> {
    tokio::select! {
        () = cancel.cancelled() => Err(()),
        () = tokio::time::sleep(duration) => Ok(()),
    }
}
