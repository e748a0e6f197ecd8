//! [`OrderEvent`]: everything that has happened to an order, as stored under versioned type names.

use composable_rust::Event;
use serde::{Deserialize, Serialize};

use super::rules::add_totals;
use super::{Cents, LineItem};

/// Everything that has happened to an order. Each case is stored under a versioned type name
/// ([`Event::event_type`]); a change to a case's shape gets a new `.vN` and an upcaster.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum OrderEvent {
    /// `OrderPlaced.v1`: the order exists, with its customer and items.
    OrderPlaced {
        /// Who the order is for.
        customer: String,
        /// The lines, in the order given.
        items: Vec<LineItem>,
    },
    /// `OrderItemAdded.v1`: a line was added to a placed order.
    OrderItemAdded {
        /// The new line.
        item: LineItem,
    },
    /// `OrderCancelled.v1`: the order was cancelled. Final.
    OrderCancelled {
        /// Why.
        reason: String,
    },
    /// `OrderShipped.v1`: the order left the warehouse. Final.
    OrderShipped {
        /// The carrier's tracking number.
        tracking_number: String,
    },
}

impl Event for OrderEvent {
    fn event_type(&self) -> &'static str {
        match self {
            Self::OrderPlaced { .. } => "OrderPlaced.v1",
            Self::OrderItemAdded { .. } => "OrderItemAdded.v1",
            Self::OrderCancelled { .. } => "OrderCancelled.v1",
            Self::OrderShipped { .. } => "OrderShipped.v1",
        }
    }
}

impl OrderEvent {
    /// A one-line human description, for `history`.
    #[must_use]
    pub fn describe(&self) -> String {
        match self {
            Self::OrderPlaced { customer, items } => {
                let total = add_totals(Cents::ZERO, items).unwrap_or(Cents::new(u64::MAX));
                let count = if items.len() == 1 { "1 item".to_owned() } else { format!("{} items", items.len()) };
                format!("for {customer}: {count}, total {total}")
            }
            Self::OrderItemAdded { item } => {
                format!("{} x {} at {}", item.quantity, item.sku, item.unit_price)
            }
            Self::OrderCancelled { reason } => format!("reason: {reason}"),
            Self::OrderShipped { tracking_number } => format!("tracking number {tracking_number}"),
        }
    }
}
