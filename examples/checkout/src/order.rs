//! The order: placed by a customer, then confirmed or cancelled by the checkout saga.

use composable_rust::RecordedEvent;
use composable_rust::bus::Reacts;
use composable_rust::prelude::*;
use serde::{Deserialize, Serialize};

use crate::decode;
use crate::saga::CheckoutEvent;

/// What was ordered: one product line, to keep the example short.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Line {
    /// The product.
    pub sku: String,
    /// How many.
    pub quantity: u32,
    /// The price of the whole line.
    pub amount_cents: u64,
}

/// Where an order is.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum OrderStatus {
    /// Not placed yet.
    #[default]
    New,
    /// Placed; the checkout runs.
    Placed,
    /// Stock reserved and payment charged.
    Confirmed,
    /// Stopped by the checkout; nothing is reserved or charged any more.
    Cancelled,
}

/// An order (stream `order-<id>`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Order {
    /// Where it is.
    pub status: OrderStatus,
    /// What was ordered, once placed.
    pub line: Option<Line>,
}

/// What can be asked of an order. Each names the order, so that its events can.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OrderCommand {
    /// Place it (the customer).
    Place {
        /// The order.
        order_id: String,
        /// What is ordered.
        line: Line,
    },
    /// Confirm it (the saga, once paid).
    Confirm {
        /// The order.
        order_id: String,
    },
    /// Cancel it (the saga, when a step failed).
    Cancel {
        /// The order.
        order_id: String,
        /// Why.
        reason: String,
    },
}

/// What happened to an order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum OrderEvent {
    /// The customer placed it.
    Placed {
        /// The order.
        order_id: String,
        /// What was ordered.
        line: Line,
    },
    /// It is paid and its stock reserved.
    Confirmed {
        /// The order.
        order_id: String,
    },
    /// It will not be fulfilled.
    Cancelled {
        /// The order.
        order_id: String,
        /// Why.
        reason: String,
    },
}

impl Event for OrderEvent {
    fn event_type(&self) -> &'static str {
        match self {
            Self::Placed { .. } => "OrderPlaced.v1",
            Self::Confirmed { .. } => "OrderConfirmed.v1",
            Self::Cancelled { .. } => "OrderCancelled.v1",
        }
    }
}

/// Why an order refused a command.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OrderError {
    /// Placing an order that exists.
    #[error("the order is already placed")]
    AlreadyPlaced,
    /// Confirming or cancelling an order that was never placed.
    #[error("the order was never placed")]
    NotPlaced,
    /// Confirming a cancelled order or cancelling a confirmed one.
    #[error("the order is already {0:?}")]
    Closed(OrderStatus),
}

impl Aggregate for Order {
    const CATEGORY: &'static str = "order";
    const EVENT_TYPES: &'static [&'static str] = &["OrderPlaced.v1", "OrderConfirmed.v1", "OrderCancelled.v1"];
    const SNAPSHOT_SCHEMA_VERSION: u32 = 1;
    type Event = OrderEvent;
    type Command = OrderCommand;
    type Error = OrderError;

    fn apply(&mut self, event: &OrderEvent) {
        match event {
            OrderEvent::Placed { line, .. } => {
                self.status = OrderStatus::Placed;
                self.line = Some(line.clone());
            }
            OrderEvent::Confirmed { .. } => self.status = OrderStatus::Confirmed,
            OrderEvent::Cancelled { .. } => self.status = OrderStatus::Cancelled,
        }
    }

    fn decide(&self, command: &OrderCommand) -> Result<Vec<OrderEvent>, OrderError> {
        match (command, self.status) {
            (OrderCommand::Place { order_id, line }, OrderStatus::New) => {
                Ok(vec![OrderEvent::Placed { order_id: order_id.clone(), line: line.clone() }])
            }
            (OrderCommand::Place { .. }, _) => Err(OrderError::AlreadyPlaced),
            (_, OrderStatus::New) => Err(OrderError::NotPlaced),
            // Repeats change nothing: a saga may ask twice.
            (OrderCommand::Confirm { .. }, OrderStatus::Confirmed)
            | (OrderCommand::Cancel { .. }, OrderStatus::Cancelled) => Ok(Vec::new()),
            (OrderCommand::Confirm { order_id }, OrderStatus::Placed) => {
                Ok(vec![OrderEvent::Confirmed { order_id: order_id.clone() }])
            }
            (OrderCommand::Cancel { order_id, reason }, OrderStatus::Placed) => {
                Ok(vec![OrderEvent::Cancelled { order_id: order_id.clone(), reason: reason.clone() }])
            }
            (_, status) => Err(OrderError::Closed(status)),
        }
    }
}

impl Reacts for Order {
    fn react(event: &RecordedEvent) -> Option<(StreamId, OrderCommand)> {
        match decode::<CheckoutEvent>(event, "checkout")? {
            CheckoutEvent::ConfirmationRequested { order_id } => {
                Some((Order::stream_id(&order_id).ok()?, OrderCommand::Confirm { order_id }))
            }
            CheckoutEvent::CancellationRequested { order_id, reason } => {
                Some((Order::stream_id(&order_id).ok()?, OrderCommand::Cancel { order_id, reason }))
            }
            _ => None,
        }
    }
}
