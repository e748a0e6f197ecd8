//! What a subscription feeds: the [`EventHandler`] trait for read models that handle one event at a time,
//! [`handler_fn`] for closures, and [`AtLeastOnce`], which saves their checkpoint in the event store.

use std::fmt;
use std::sync::Arc;

use composable_rust_core::{
    ApplyError, BoxError, CheckpointedHandler, EventStore, EventStoreError, GlobalPosition, RecordedEvent, async_trait,
};

#[cfg(doc)]
use super::SubscriptionError;

/// A read model that handles events one at a time; the subscription records its checkpoint after each
/// page (at-least-once delivery, see [`AtLeastOnce`]).
///
/// ```
/// use composable_rust_core::{BoxError, RecordedEvent, async_trait};
/// use composable_rust_runtime::EventHandler;
///
/// #[derive(Debug, Default)]
/// struct PlacedCount(u64);
///
/// #[async_trait]
/// impl EventHandler for PlacedCount {
///     async fn handle(&mut self, event: &RecordedEvent) -> Result<(), BoxError> {
///         if event.event_type == "OrderPlaced.v1" {
///             self.0 += 1;
///         }
///         Ok(())
///     }
///
///     async fn reset(&mut self) -> Result<(), BoxError> {
///         self.0 = 0;
///         Ok(())
///     }
/// }
/// ```
#[async_trait]
pub trait EventHandler: Send + 'static {
    /// Applies one event to the read model.
    ///
    /// # Errors
    /// Any error stops the subscription with [`SubscriptionError::HandlerFailed`] naming this event; the
    /// checkpoint stays before it, so a fixed handler starts again at this event.
    async fn handle(&mut self, event: &RecordedEvent) -> Result<(), BoxError>;

    /// Clears the read model before a rebuild from the start of the log. The default does nothing.
    ///
    /// # Errors
    /// Any error fails the reset with [`SubscriptionError::Reset`].
    async fn reset(&mut self) -> Result<(), BoxError> {
        Ok(())
    }
}

/// Makes an [`EventHandler`] of a closure (a read model without a reset).
///
/// ```
/// use composable_rust_runtime::handler_fn;
///
/// let mut seen = Vec::new();
/// let handler = handler_fn(move |event| {
///     seen.push(event.position);
///     Ok(())
/// });
/// # let _ = handler;
/// ```
pub fn handler_fn<F>(handle: F) -> FnHandler<F>
where
    F: FnMut(&RecordedEvent) -> Result<(), BoxError> + Send + 'static,
{
    FnHandler(handle)
}

/// An [`EventHandler`] made of a closure by [`handler_fn`].
pub struct FnHandler<F>(F);

impl<F> fmt::Debug for FnHandler<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("FnHandler")
    }
}

#[async_trait]
impl<F> EventHandler for FnHandler<F>
where
    F: FnMut(&RecordedEvent) -> Result<(), BoxError> + Send + 'static,
{
    async fn handle(&mut self, event: &RecordedEvent) -> Result<(), BoxError> {
        (self.0)(event)
    }
}

/// Runs an [`EventHandler`] and saves the checkpoint in the event store after it: at-least-once delivery.
///
/// The saves are fenced ([`EventStore::save_checkpoint`] only moves a checkpoint forward): an instance that
/// lost its lease while it finished a page, and saves after a standby has moved on, leaves the standby's
/// checkpoint. [`CheckpointedHandler::reset`] deletes the checkpoint ([`EventStore::delete_checkpoint`]).
///
/// After a page the checkpoint is the page's last position; when the handler fails on an event, the
/// checkpoint is saved at the event before it, so nothing is skipped and nothing handled before the
/// failure is handled again by the next run. A crash between the handler's write and the checkpoint save
/// hands the page to the handler again: make the read model's writes idempotent, or use a backend's
/// transactional handler.
pub struct AtLeastOnce<H> {
    store: Arc<dyn EventStore>,
    handler: H,
}

impl<H> AtLeastOnce<H> {
    /// Wraps `handler`; checkpoints go to `store`.
    pub fn new(store: Arc<dyn EventStore>, handler: H) -> Self {
        Self { store, handler }
    }

    /// The wrapped handler (the read model).
    pub fn handler(&self) -> &H {
        &self.handler
    }

    /// Unwraps the handler.
    pub fn into_handler(self) -> H {
        self.handler
    }
}

impl<H> fmt::Debug for AtLeastOnce<H> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AtLeastOnce").field("store", &self.store).field("handler", &std::any::type_name::<H>()).finish()
    }
}

#[async_trait]
impl<H: EventHandler> CheckpointedHandler for AtLeastOnce<H> {
    async fn load_checkpoint(&mut self, handler: &str) -> Result<Option<GlobalPosition>, EventStoreError> {
        self.store.load_checkpoint(handler).await
    }

    async fn apply(&mut self, handler: &str, events: &[RecordedEvent]) -> Result<(), ApplyError> {
        for (index, event) in events.iter().enumerate() {
            if let Err(source) = self.handler.handle(event).await {
                if let Some(handled) = index.checked_sub(1).and_then(|i| events.get(i)) {
                    self.store.save_checkpoint(handler, handled.position).await?;
                }
                return Err(ApplyError::Handler { index, source });
            }
        }
        if let Some(last) = events.last() {
            self.store.save_checkpoint(handler, last.position).await?;
        }
        Ok(())
    }

    async fn reset(&mut self, handler: &str) -> Result<(), ApplyError> {
        // Checkpoint first: if clearing the read model then fails, the next run re-applies events to the
        // old read model (at-least-once, which idempotent handlers absorb) instead of silently skipping them.
        // A delete, not a save of position 0: saves are fenced and never move a checkpoint back.
        self.store.delete_checkpoint(handler).await?;
        self.handler.reset().await.map_err(ApplyError::Reset)
    }
}
