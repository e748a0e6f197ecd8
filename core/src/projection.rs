//! The contract between a subscription and where its handler keeps state: [`HandlerLease`] (one active
//! instance per handler name) and [`CheckpointedHandler`] (applies a page of the global log and records
//! how far it got).
//!
//! The subscription engine lives in `composable-rust-runtime`; it reads the log through
//! [`EventLog::read_all`](crate::backend::EventLog::read_all) and hands each page to a [`CheckpointedHandler`].
//! The runtime's at-least-once adapter saves the checkpoint with
//! [`SubscriptionStore::save_checkpoint`](crate::backend::SubscriptionStore::save_checkpoint) after the handler ran; the database
//! backends provide handlers that write the read model and the checkpoint in one transaction, which makes
//! the effects exactly-once. Both are implementations of the one trait here, so the engine does not know
//! which it drives.

use std::collections::HashSet;
use std::fmt::{self, Debug};
use std::sync::{Arc, Mutex, PoisonError};

use async_trait::async_trait;
use thiserror::Error;

use crate::error::{BoxError, EventStoreError};
use crate::event::RecordedEvent;
use crate::stream::GlobalPosition;

/// The exclusive right to run the handler with one name; released when dropped.
///
/// Obtained from [`SubscriptionStore::try_acquire_lease`](crate::backend::SubscriptionStore::try_acquire_lease). The subscription
/// holds it for as long as it runs and calls [`HandlerLease::confirm`] between pages, so a lease that a
/// backend lost (a dropped connection, an expired lease row) stops the subscription before it handles more.
#[derive(Debug)]
pub struct HandlerLease {
    handler: String,
    guard: Box<dyn LeaseGuard>,
}

impl HandlerLease {
    /// Wraps a backend's guard; dropping the lease drops (and so releases) the guard.
    pub fn new(handler: impl Into<String>, guard: impl LeaseGuard + 'static) -> Self {
        Self { handler: handler.into(), guard: Box::new(guard) }
    }

    /// The handler name the lease is for.
    #[must_use]
    pub fn handler(&self) -> &str {
        &self.handler
    }

    /// Checks that the lease is still held and renews it when it expires on its own.
    ///
    /// # Errors
    /// [`EventStoreError::Backend`] when the lease was lost or cannot be checked; stop handling events.
    pub async fn confirm(&mut self) -> Result<(), EventStoreError> {
        self.guard.confirm().await
    }

    /// Releases the lease now and waits until it is released (dropping it releases it too, but some
    /// backends can only do that in the background).
    ///
    /// # Errors
    /// [`EventStoreError::Backend`] when the release failed; the lease then ends on its own (a closed
    /// session, an expiry).
    pub async fn release(mut self) -> Result<(), EventStoreError> {
        self.guard.release().await
    }
}

/// A backend's hold on a handler lease: an advisory lock on a dedicated connection, a lease row, a name in
/// a process-local set. Releases the hold when dropped.
#[async_trait]
pub trait LeaseGuard: Send + Sync + Debug {
    /// Checks that the hold is still in place (and renews it if it expires).
    ///
    /// # Errors
    /// [`EventStoreError::Backend`] when the hold was lost or cannot be checked.
    async fn confirm(&mut self) -> Result<(), EventStoreError>;

    /// Releases the hold now; dropping the guard afterwards must do nothing more. The default does
    /// nothing and leaves the release to `Drop`.
    ///
    /// # Errors
    /// [`EventStoreError::Backend`] when the release failed.
    async fn release(&mut self) -> Result<(), EventStoreError> {
        Ok(())
    }
}

/// A set of handler names leased within this process: the lease of stores that are not shared between
/// processes (the in-memory store) and the default of [`SubscriptionStore::try_acquire_lease`](crate::backend::SubscriptionStore::try_acquire_lease).
///
/// Cheap to clone; clones share the set.
///
/// ```
/// use composable_rust_core::backend::LocalLeases;
///
/// let leases = LocalLeases::new();
/// let first = leases.try_acquire("order-summary");
/// assert!(first.is_some());
/// assert!(leases.try_acquire("order-summary").is_none(), "a second instance does not get the lease");
/// drop(first);
/// assert!(leases.try_acquire("order-summary").is_some(), "dropping the lease releases it");
/// ```
#[derive(Debug, Clone, Default)]
pub struct LocalLeases {
    held: Arc<Mutex<HashSet<String>>>,
}

impl LocalLeases {
    /// An empty set.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// The set shared by the whole process, used by the default [`SubscriptionStore::try_acquire_lease`](crate::backend::SubscriptionStore::try_acquire_lease).
    #[must_use]
    pub fn process() -> Self {
        static PROCESS: std::sync::LazyLock<LocalLeases> = std::sync::LazyLock::new(LocalLeases::new);
        PROCESS.clone()
    }

    /// Leases `handler` unless it is leased already.
    #[must_use]
    pub fn try_acquire(&self, handler: &str) -> Option<HandlerLease> {
        let mut held = self.held.lock().unwrap_or_else(PoisonError::into_inner);
        if !held.insert(handler.to_owned()) {
            return None;
        }
        Some(HandlerLease::new(handler, LocalGuard { handler: handler.to_owned(), leases: self.clone() }))
    }
}

/// Removes its name from the set when dropped.
struct LocalGuard {
    handler: String,
    leases: LocalLeases,
}

impl Debug for LocalGuard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LocalGuard").field("handler", &self.handler).finish_non_exhaustive()
    }
}

#[async_trait]
impl LeaseGuard for LocalGuard {
    async fn confirm(&mut self) -> Result<(), EventStoreError> {
        Ok(())
    }
}

impl Drop for LocalGuard {
    fn drop(&mut self) {
        // A poisoned set still holds valid names: every mutation is a single insert or remove.
        self.leases.held.lock().unwrap_or_else(PoisonError::into_inner).remove(&self.handler);
    }
}

/// A handler that applies pages of the global log and records its own checkpoint.
///
/// The subscription engine calls [`load_checkpoint`](CheckpointedHandler::load_checkpoint) when it (re)starts,
/// then [`apply`](CheckpointedHandler::apply) with each page of events after that position, in position
/// order. After `apply` returns `Ok`, the position of the page's last event must be the stored checkpoint.
/// Implementations that write the read model and the checkpoint in one transaction apply each event
/// exactly once; implementations that save the checkpoint after the read model deliver at least once
/// (an event may be applied again after a crash between the two).
#[async_trait]
pub trait CheckpointedHandler: Send {
    /// The last position this handler recorded as applied, or `None` when it has applied nothing.
    ///
    /// # Errors
    /// [`EventStoreError`] when the checkpoint cannot be read.
    async fn load_checkpoint(&mut self, handler: &str) -> Result<Option<GlobalPosition>, EventStoreError>;

    /// Applies `events` (non-empty, in position order, all after the checkpoint) and records the last
    /// event's position as the checkpoint.
    ///
    /// # Errors
    /// [`ApplyError::Handler`] when the handler failed on one event: the checkpoint must then stand before
    /// that event (after the events before it, or where it was before the page). [`ApplyError::Store`]
    /// when storage failed: the engine reloads the checkpoint and retries.
    async fn apply(&mut self, handler: &str, events: &[RecordedEvent]) -> Result<(), ApplyError>;

    /// Clears the read model and the checkpoint, so that the next run rebuilds from the start of the log.
    ///
    /// # Errors
    /// [`ApplyError::Store`] when storage failed, [`ApplyError::Reset`] when the read model could not be
    /// cleared.
    async fn reset(&mut self, handler: &str) -> Result<(), ApplyError>;
}

#[async_trait]
impl<T: CheckpointedHandler + ?Sized> CheckpointedHandler for Box<T> {
    async fn load_checkpoint(&mut self, handler: &str) -> Result<Option<GlobalPosition>, EventStoreError> {
        (**self).load_checkpoint(handler).await
    }

    async fn apply(&mut self, handler: &str, events: &[RecordedEvent]) -> Result<(), ApplyError> {
        (**self).apply(handler, events).await
    }

    async fn reset(&mut self, handler: &str) -> Result<(), ApplyError> {
        (**self).reset(handler).await
    }
}

/// Why [`CheckpointedHandler::apply`] or [`CheckpointedHandler::reset`] failed.
#[derive(Debug, Error)]
pub enum ApplyError {
    /// The handler refused or failed on `events[index]`; the checkpoint stands before that event.
    #[error("the handler failed on the event at index {index} of the page")]
    Handler {
        /// The index of the failing event in the page passed to `apply`.
        index: usize,
        /// The handler's error.
        #[source]
        source: BoxError,
    },
    /// The read model could not be cleared.
    #[error("the handler could not clear its read model")]
    Reset(#[source] BoxError),
    /// Reading or writing the checkpoint (or committing the transaction) failed.
    #[error(transparent)]
    Store(#[from] EventStoreError),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn separate_sets_do_not_share_leases() {
        let a = LocalLeases::new();
        let b = LocalLeases::new();
        let _held = a.try_acquire("h").unwrap();
        assert!(b.try_acquire("h").is_some());
        assert!(a.clone().try_acquire("h").is_none(), "clones share the set");
    }
}
