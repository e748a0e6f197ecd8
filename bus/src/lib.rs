//! The composable-rust event bus: committed events carried to other processes on NATS JetStream, and
//! reducers (sagas among them) driven by the events they receive.
//!
//! PostgreSQL (or SQLite) stays the system of record; the bus carries copies. Four pieces:
//! - [`EventBus`]: publish events (de-duplicated by event id) and consume them in durable groups, with
//!   [`JetStreamBus`] on NATS JetStream and [`InMemoryBus`] for tests. Subjects are
//!   `<prefix>.<category>.<stream id>`.
//! - [`Outbox`]: a checkpointed subscription that publishes what the event store committed, at least
//!   once, in order, resuming from its checkpoint.
//! - [`deliveries`] and [`subscription_deliveries`]: long-running effects that turn the bus (or a
//!   subscription) into actions of a `Store`, cancellable like any effect.
//! - [`Reactor`] over a [`Reacts`] aggregate: each delivered event becomes one command applied at most
//!   once (idempotent by event id), with [`Timer`]s on the store's clock. A saga is such an aggregate; see
//!   `docs/sagas.md` and the checkout example. [`SeenEvents`] is the idempotent-consumer helper for other
//!   handlers.
//!
//! ```
//! use std::sync::Arc;
//! use composable_rust_bus::{ConsumerConfig, EventBus, InMemoryBus, Outbox};
//! use composable_rust_core::{CodecId, EventStore, ExpectedVersion, Metadata, NewEvent, StreamId};
//! use composable_rust_testing::InMemoryEventStore;
//! use futures::StreamExt;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let store: Arc<dyn EventStore> = Arc::new(InMemoryEventStore::new());
//! let bus = InMemoryBus::new();
//! let placed = NewEvent::new("OrderPlaced.v1", CodecId::Json, b"{}".to_vec(), Metadata::default());
//! store.append(&StreamId::new("order-1")?, ExpectedVersion::NoStream, vec![placed]).await?;
//!
//! // The outbox publishes what is committed; a consumer group reads it.
//! Outbox::subscription(Arc::clone(&store), bus.clone(), "outbox").run_to_end().await?;
//! let mut deliveries = bus.consume(&ConsumerConfig::group("billing").category("order")).await?;
//! let delivery = deliveries.next().await.ok_or("no delivery")??;
//! assert_eq!(delivery.event.stream_id.as_str(), "order-1");
//! delivery.ack.ack().await?;
//! # Ok(()) }
//! ```
//!
//! The guarantees and the failure cases, each with the test that shows it: `docs/event-bus.md`.

mod bus;
mod dedup;
mod delivery;
mod effect;
mod error;
mod jetstream;
mod memory;
mod outbox;
mod reactor;
mod wire;

pub use bus::{ConsumerConfig, Deliveries, EventBus, PublishReport, StartAt};
pub use dedup::SeenEvents;
pub use delivery::{Ack, Acknowledge, Delivery};
pub use effect::{deliveries, subscription_deliveries};
pub use error::BusError;
pub use jetstream::{JetStreamBus, JetStreamConfig, StreamOrder};
pub use memory::InMemoryBus;
pub use outbox::Outbox;
pub use reactor::{
    PendingDeadline, RESUME_PAGE, Reactions, Reactor, ReactorAction, Reacts, Timer, deadline_command_id, timer_id,
};
