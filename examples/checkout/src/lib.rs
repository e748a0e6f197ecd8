//! A checkout across three services and a saga, each its own process, connected through NATS JetStream.
//!
//! An order is placed ([`order`]), its stock is reserved ([`inventory`]), its payment is charged
//! ([`payment`]) and the order is confirmed; a refused payment (or one that does not answer in time)
//! releases the stock and cancels the order. The [`saga`] decides each step; [`service`] runs one of them
//! as a process: its own event store, an outbox to the bus, and a `Reactor` fed by the bus.
//!
//! The walkthrough is the example's README.

pub mod inventory;
pub mod order;
pub mod payment;
pub mod saga;
pub mod service;

use composable_rust::{Event, RecordedEvent};

/// `event` as an `E`, when it belongs to a stream of `category`; a payload that does not decode is
/// logged and skipped (it cannot become valid by being delivered again).
pub(crate) fn decode<E: Event>(event: &RecordedEvent, category: &str) -> Option<E> {
    if event.stream_id.category() != category {
        return None;
    }
    match E::from_recorded(event) {
        Ok(decoded) => Some(decoded),
        Err(error) => {
            tracing::error!(event = %event.describe(), %error, "skipped an event that does not decode");
            None
        }
    }
}
