//! [`Outbox`]: a checkpointed subscription that publishes committed events to the bus.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use composable_rust_core::{
    ApplyError, CheckpointedHandler, EventStore, EventStoreError, GlobalPosition, RecordedEvent, async_trait,
};
use composable_rust_runtime::{Subscription, SubscriptionConfig};

use crate::bus::EventBus;

/// Publishes the event store's committed events to an [`EventBus`], page by page, and records its
/// checkpoint after the bus has stored each page.
///
/// Run it as a [`Subscription`] ([`Outbox::subscription`]), which brings the lease (one outbox per name
/// at a time), the catch-up and live reads in global position order, and the restart with backoff:
/// - **at least once**: the checkpoint moves only after the bus acknowledged the whole page, so a crash
///   or a bus outage republishes from the checkpoint; the bus drops the copies by event id;
/// - **in order per stream**: pages are read in position order and published in that order, one page at a
///   time;
/// - **resumes from its checkpoint** after a crash or a restart.
///
/// A page the bus refuses is reported as the store being unavailable, so the subscription retries it
/// after a pause rather than stopping.
pub struct Outbox<B> {
    store: Arc<dyn EventStore>,
    bus: B,
    published: u64,
}

impl<B: EventBus> Outbox<B> {
    /// An outbox from `store` to `bus`.
    pub fn new(store: Arc<dyn EventStore>, bus: B) -> Self {
        Self { store, bus, published: 0 }
    }

    /// The outbox as a subscription named `name` (its checkpoint and lease), reading pages of up to
    /// 1000 events and checking for new commits every 100 ms at the latest (a backend with commit
    /// notifications wakes it at once). Narrow what it publishes with [`Subscription::filter`].
    pub fn subscription(store: Arc<dyn EventStore>, bus: B, name: impl Into<String>) -> Subscription<Self> {
        let mut config = SubscriptionConfig::default();
        config.page_size = 1000;
        config.poll_interval = Duration::from_millis(100);
        // A restarted outbox takes over from a crashed one as soon as its lease is free.
        config.lease_retry = Duration::from_millis(200);
        Subscription::checkpointed(Arc::clone(&store), name, Self::new(store, bus)).config(config)
    }

    /// How many events this outbox handed to the bus since it was made (duplicates included).
    #[must_use]
    pub fn published(&self) -> u64 {
        self.published
    }
}

impl<B> fmt::Debug for Outbox<B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Outbox").field("published", &self.published).finish_non_exhaustive()
    }
}

#[async_trait]
impl<B: EventBus> CheckpointedHandler for Outbox<B> {
    async fn load_checkpoint(&mut self, handler: &str) -> Result<Option<GlobalPosition>, EventStoreError> {
        self.store.load_checkpoint(handler).await
    }

    async fn apply(&mut self, handler: &str, events: &[RecordedEvent]) -> Result<(), ApplyError> {
        let Some(last) = events.last() else { return Ok(()) };
        self.bus.publish(events).await.map_err(|error| {
            ApplyError::Store(EventStoreError::unavailable(
                format!("publish {} events from position {} to the bus", events.len(), events[0].position),
                error,
            ))
        })?;
        self.published += events.len() as u64;
        self.store.save_checkpoint(handler, last.position).await?;
        Ok(())
    }

    async fn reset(&mut self, handler: &str) -> Result<(), ApplyError> {
        // A reset republishes the whole log: harmless, the bus and the consumers drop copies by event id.
        self.store.delete_checkpoint(handler).await?;
        Ok(())
    }
}
