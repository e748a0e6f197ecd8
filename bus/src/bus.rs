//! The [`EventBus`] trait: publish committed events, consume them in groups.

use std::fmt;
use std::time::Duration;

use chrono::{DateTime, Utc};
use composable_rust_core::{RecordedEvent, async_trait};
use futures::stream::BoxStream;

use crate::delivery::Delivery;
use crate::error::{BusError, check_name};

/// The deliveries of one consumer, in bus order, until the consumer is dropped. An `Err` item is a
/// problem with one message or a lost connection; the stream goes on after it.
pub type Deliveries = BoxStream<'static, Result<Delivery, BusError>>;

/// Carries committed events between processes: publish on one side, consume in groups on the other.
///
/// Two implementations: [`JetStreamBus`](crate::JetStreamBus) (NATS JetStream) for real deployments and
/// [`InMemoryBus`](crate::InMemoryBus) for tests. Both promise the same:
/// - events are de-duplicated by [`EventId`](composable_rust_core::EventId) (JetStream: within its
///   duplicate window);
/// - a batch is published in the order given, and `publish` returns once the bus has stored all of it;
/// - a consumer group is durable: consumers of one group share its events (each event goes to one of
///   them), and an event not acknowledged in time is delivered again.
#[async_trait]
pub trait EventBus: Send + Sync + fmt::Debug + 'static {
    /// Publishes `events` in order and waits until the bus has stored every one.
    ///
    /// # Errors
    /// [`BusError::Publish`] naming the first event that was not stored; events before it may be, and
    /// so may events of other streams after it, but never a later event of its own stream. Publish the
    /// whole batch again: what is stored already is dropped as a duplicate, and each stream's order holds.
    async fn publish(&self, events: &[RecordedEvent]) -> Result<PublishReport, BusError>;

    /// Joins the consumer group `config.group` (creating it at `config.start` if it is new) and returns
    /// its deliveries.
    ///
    /// # Errors
    /// [`BusError::Consume`] when the group cannot be created or read, [`BusError::InvalidName`] for a
    /// group name the bus cannot use.
    async fn consume(&self, config: &ConsumerConfig) -> Result<Deliveries, BusError>;
}

#[async_trait]
impl<B: EventBus + ?Sized> EventBus for std::sync::Arc<B> {
    async fn publish(&self, events: &[RecordedEvent]) -> Result<PublishReport, BusError> {
        (**self).publish(events).await
    }

    async fn consume(&self, config: &ConsumerConfig) -> Result<Deliveries, BusError> {
        (**self).consume(config).await
    }
}

/// What a [`EventBus::publish`] stored.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PublishReport {
    /// Events stored now.
    pub stored: usize,
    /// Events the bus already had (same event id), so dropped.
    pub duplicates: usize,
}

/// Where a new consumer group starts. An existing group always continues where it left off.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartAt {
    /// The oldest event the bus keeps.
    Beginning,
    /// Only events published after the group is created.
    New,
    /// The event at this bus sequence ([`Delivery::sequence`]) and after: a replay from a position.
    Sequence(u64),
    /// The first event the bus stored at or after this time, and after.
    Time(DateTime<Utc>),
}

/// A consumer group: its durable name, what it reads, where it starts, how much it takes at once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsumerConfig {
    /// The group's durable name: every consumer with this name shares its events.
    pub group: String,
    /// The stream categories (`order` for `order-42`) to deliver; empty for all.
    pub categories: Vec<String>,
    /// Where a new group starts. Default: [`StartAt::Beginning`].
    pub start: StartAt,
    /// How many deliveries may wait for their acknowledgement; the bus stops delivering to the group
    /// when this many do (backpressure). Default: 256.
    pub max_in_flight: usize,
    /// How long a delivery may stay unacknowledged before the bus delivers it again. Default: 30 s.
    pub ack_wait: Duration,
}

impl ConsumerConfig {
    /// The group `group`, reading every category from the beginning.
    #[must_use]
    pub fn group(group: impl Into<String>) -> Self {
        Self {
            group: group.into(),
            categories: Vec::new(),
            start: StartAt::Beginning,
            max_in_flight: 256,
            ack_wait: Duration::from_secs(30),
        }
    }

    /// Delivers only events of streams in `category` (may be called for several).
    #[must_use]
    pub fn category(mut self, category: impl Into<String>) -> Self {
        self.categories.push(category.into());
        self
    }

    /// Starts a new group at `start`.
    #[must_use]
    pub fn start_at(mut self, start: StartAt) -> Self {
        self.start = start;
        self
    }

    /// Sets [`ConsumerConfig::max_in_flight`].
    #[must_use]
    pub fn max_in_flight(mut self, max_in_flight: usize) -> Self {
        self.max_in_flight = max_in_flight.max(1);
        self
    }

    /// Sets [`ConsumerConfig::ack_wait`].
    #[must_use]
    pub fn ack_wait(mut self, ack_wait: Duration) -> Self {
        self.ack_wait = ack_wait;
        self
    }

    /// Whether this group reads `event`.
    #[must_use]
    pub fn wants(&self, event: &RecordedEvent) -> bool {
        self.categories.is_empty() || self.categories.iter().any(|c| c == event.stream_id.category())
    }

    pub(crate) fn check(&self) -> Result<(), BusError> {
        check_name("consumer group", &self.group, false)
    }
}
