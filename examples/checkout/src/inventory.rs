//! The stock of one product: reserved for orders, released when an order is cancelled.

use std::collections::BTreeMap;

use composable_rust::RecordedEvent;
use composable_rust::bus::Reacts;
use composable_rust::prelude::*;
use serde::{Deserialize, Serialize};

use crate::decode;
use crate::saga::CheckoutEvent;

/// The stock of one product (stream `stock-<sku>`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stock {
    /// Units neither sold nor reserved.
    pub available: u32,
    /// Units held for each order.
    pub reserved: BTreeMap<String, u32>,
}

/// What can be asked of the stock.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StockCommand {
    /// Add units (the warehouse).
    Restock {
        /// The product.
        sku: String,
        /// How many.
        quantity: u32,
    },
    /// Hold units for an order (the saga).
    Reserve {
        /// The product.
        sku: String,
        /// The order.
        order_id: String,
        /// How many.
        quantity: u32,
    },
    /// Give back what an order held (the saga's compensation).
    Release {
        /// The product.
        sku: String,
        /// The order.
        order_id: String,
    },
}

/// What happened to the stock. A refused reservation is an event, not an error: the saga must hear it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum StockEvent {
    /// Units were added.
    Restocked {
        /// The product.
        sku: String,
        /// How many.
        quantity: u32,
    },
    /// Units are held for an order.
    Reserved {
        /// The product.
        sku: String,
        /// The order.
        order_id: String,
        /// How many.
        quantity: u32,
    },
    /// There was not enough.
    ReservationRefused {
        /// The product.
        sku: String,
        /// The order.
        order_id: String,
        /// Why.
        reason: String,
    },
    /// An order's units are available again.
    Released {
        /// The product.
        sku: String,
        /// The order.
        order_id: String,
        /// How many.
        quantity: u32,
    },
}

impl Event for StockEvent {
    fn event_type(&self) -> &'static str {
        match self {
            Self::Restocked { .. } => "StockRestocked.v1",
            Self::Reserved { .. } => "StockReserved.v1",
            Self::ReservationRefused { .. } => "StockReservationRefused.v1",
            Self::Released { .. } => "StockReleased.v1",
        }
    }
}

/// The stock refuses nothing: shortages are [`StockEvent::ReservationRefused`] events.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("never")]
pub enum StockError {}

impl Aggregate for Stock {
    const CATEGORY: &'static str = "stock";
    const EVENT_TYPES: &'static [&'static str] =
        &["StockRestocked.v1", "StockReserved.v1", "StockReservationRefused.v1", "StockReleased.v1"];
    const SNAPSHOT_SCHEMA_VERSION: u32 = 1;
    type Event = StockEvent;
    type Command = StockCommand;
    type Error = StockError;

    fn apply(&mut self, event: &StockEvent) {
        match event {
            StockEvent::Restocked { quantity, .. } => self.available += quantity,
            StockEvent::Reserved { order_id, quantity, .. } => {
                self.available = self.available.saturating_sub(*quantity);
                self.reserved.insert(order_id.clone(), *quantity);
            }
            StockEvent::ReservationRefused { .. } => {}
            StockEvent::Released { order_id, quantity, .. } => {
                self.available += quantity;
                self.reserved.remove(order_id);
            }
        }
    }

    fn decide(&self, command: &StockCommand) -> Result<Vec<StockEvent>, StockError> {
        Ok(match command {
            StockCommand::Restock { sku, quantity } => {
                vec![StockEvent::Restocked { sku: sku.clone(), quantity: *quantity }]
            }
            // Held already: a repeated request changes nothing.
            StockCommand::Reserve { order_id, .. } if self.reserved.contains_key(order_id) => Vec::new(),
            StockCommand::Reserve { sku, order_id, quantity } if *quantity <= self.available => {
                vec![StockEvent::Reserved { sku: sku.clone(), order_id: order_id.clone(), quantity: *quantity }]
            }
            StockCommand::Reserve { sku, order_id, quantity } => vec![StockEvent::ReservationRefused {
                sku: sku.clone(),
                order_id: order_id.clone(),
                reason: format!("{quantity} wanted, {} available", self.available),
            }],
            StockCommand::Release { sku, order_id } => match self.reserved.get(order_id) {
                Some(quantity) => {
                    vec![StockEvent::Released { sku: sku.clone(), order_id: order_id.clone(), quantity: *quantity }]
                }
                None => Vec::new(),
            },
        })
    }
}

impl Reacts for Stock {
    fn react(event: &RecordedEvent) -> Option<(StreamId, StockCommand)> {
        match decode::<CheckoutEvent>(event, "checkout")? {
            CheckoutEvent::StockReservationRequested { order_id, sku, quantity } => {
                Some((Stock::stream_id(&sku).ok()?, StockCommand::Reserve { sku, order_id, quantity }))
            }
            CheckoutEvent::StockReleaseRequested { order_id, sku } => {
                Some((Stock::stream_id(&sku).ok()?, StockCommand::Release { sku, order_id }))
            }
            _ => None,
        }
    }
}
