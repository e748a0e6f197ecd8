//! [`Delivery`]: an event handed to a consumer, with the [`Ack`] that settles it.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use composable_rust_core::{RecordedEvent, async_trait};

use crate::error::BusError;

/// One event delivered to a consumer. The bus delivers it again unless it is acknowledged
/// ([`Ack::ack`]) within the consumer's ack wait, so acknowledge only once its effect is stored.
///
/// Deliveries compare by their event, sequence and attempt, not by their acknowledgement handle, so that
/// a reducer's actions that hold one can be asserted in a `TestStore`.
#[derive(Clone)]
pub struct Delivery {
    /// The event as it was committed (shared: actions that hold a delivery stay small and cheap to clone).
    pub event: Arc<RecordedEvent>,
    /// Its position on the bus (JetStream's stream sequence; the in-memory bus's index from 1). Events
    /// from several event stores share one bus, so this, not the event's global position, orders the bus.
    pub sequence: u64,
    /// Which delivery this is: 1 the first time, more after a redelivery.
    pub attempt: u64,
    /// Settles the delivery.
    pub ack: Ack,
}

impl Delivery {
    /// A delivery whose acknowledgement does nothing: for tests that feed a reducer by hand.
    #[must_use]
    pub fn unacknowledged(event: RecordedEvent) -> Self {
        Self { event: Arc::new(event), sequence: 0, attempt: 1, ack: Ack::none() }
    }
}

impl PartialEq for Delivery {
    fn eq(&self, other: &Self) -> bool {
        self.event == other.event && self.sequence == other.sequence && self.attempt == other.attempt
    }
}

impl fmt::Debug for Delivery {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Delivery")
            .field("event", &format_args!("{} {} v{}", self.event.event_type, self.event.stream_id, self.event.version))
            .field("id", &self.event.id)
            .field("sequence", &self.sequence)
            .field("attempt", &self.attempt)
            .finish()
    }
}

/// How a bus settles a delivery. Implemented by each bus; users call [`Ack`].
#[async_trait]
pub trait Acknowledge: Send + Sync + 'static {
    /// The delivery was handled: never deliver it again to this group.
    async fn ack(&self) -> Result<(), BusError>;
    /// The delivery could not be handled now: deliver it again after `delay`.
    async fn nak(&self, delay: Duration) -> Result<(), BusError>;
}

/// The handle that settles a [`Delivery`]. Cheap to clone; settling twice is harmless.
#[derive(Clone)]
pub struct Ack(Option<Arc<dyn Acknowledge>>);

impl Ack {
    /// An acknowledgement through `acknowledge`.
    pub fn new(acknowledge: impl Acknowledge) -> Self {
        Self(Some(Arc::new(acknowledge)))
    }

    /// An acknowledgement that does nothing.
    #[must_use]
    pub fn none() -> Self {
        Self(None)
    }

    /// The delivery was handled.
    ///
    /// # Errors
    /// [`BusError::Ack`] when the bus could not be told; it then delivers the event again later.
    pub async fn ack(&self) -> Result<(), BusError> {
        match &self.0 {
            Some(acknowledge) => acknowledge.ack().await,
            None => Ok(()),
        }
    }

    /// The delivery should come again after `delay`.
    ///
    /// # Errors
    /// [`BusError::Ack`] when the bus could not be told; it then delivers the event again after its ack wait.
    pub async fn nak(&self, delay: Duration) -> Result<(), BusError> {
        match &self.0 {
            Some(acknowledge) => acknowledge.nak(delay).await,
            None => Ok(()),
        }
    }
}

impl fmt::Debug for Ack {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.0.is_some() { "Ack(..)" } else { "Ack(none)" })
    }
}
