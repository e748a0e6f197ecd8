//! The payment of one order: charged, declined, or refunded when the order was cancelled meanwhile.

use composable_rust::RecordedEvent;
use composable_rust::bus::Reacts;
use composable_rust::prelude::*;
use serde::{Deserialize, Serialize};

use crate::decode;
use crate::saga::CheckoutEvent;

/// Charges above this are declined: the example's stand-in for a card that is refused.
pub const CARD_LIMIT_CENTS: u64 = 100_000;

/// Where a payment is.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum Payment {
    /// Nothing asked yet.
    #[default]
    None,
    /// Charged this much.
    Charged(u64),
    /// Refused.
    Declined,
    /// Charged, then given back.
    Refunded,
}

/// What can be asked of a payment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PaymentCommand {
    /// Charge the order's amount.
    Charge {
        /// The order.
        order_id: String,
        /// How much.
        amount_cents: u64,
    },
    /// Give a charge back (the saga, when the order was cancelled before the charge arrived).
    Refund {
        /// The order.
        order_id: String,
    },
}

/// What happened to a payment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum PaymentEvent {
    /// The money was taken.
    Charged {
        /// The order.
        order_id: String,
        /// How much.
        amount_cents: u64,
    },
    /// The card refused.
    Declined {
        /// The order.
        order_id: String,
        /// Why.
        reason: String,
    },
    /// The money was given back.
    Refunded {
        /// The order.
        order_id: String,
        /// How much.
        amount_cents: u64,
    },
}

impl Event for PaymentEvent {
    fn event_type(&self) -> &'static str {
        match self {
            Self::Charged { .. } => "PaymentCharged.v1",
            Self::Declined { .. } => "PaymentDeclined.v1",
            Self::Refunded { .. } => "PaymentRefunded.v1",
        }
    }
}

/// A payment refuses nothing: a refusal is [`PaymentEvent::Declined`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("never")]
pub enum PaymentError {}

impl Aggregate for Payment {
    const CATEGORY: &'static str = "payment";
    const EVENT_TYPES: &'static [&'static str] = &["PaymentCharged.v1", "PaymentDeclined.v1", "PaymentRefunded.v1"];
    const SNAPSHOT_SCHEMA_VERSION: u32 = 1;
    type Event = PaymentEvent;
    type Command = PaymentCommand;
    type Error = PaymentError;

    fn apply(&mut self, event: &PaymentEvent) {
        *self = match event {
            PaymentEvent::Charged { amount_cents, .. } => Self::Charged(*amount_cents),
            PaymentEvent::Declined { .. } => Self::Declined,
            PaymentEvent::Refunded { .. } => Self::Refunded,
        };
    }

    fn decide(&self, command: &PaymentCommand) -> Result<Vec<PaymentEvent>, PaymentError> {
        Ok(match (command, self) {
            (PaymentCommand::Charge { order_id, amount_cents }, Self::None) if *amount_cents > CARD_LIMIT_CENTS => {
                vec![PaymentEvent::Declined {
                    order_id: order_id.clone(),
                    reason: format!("{amount_cents} cents is over the card limit of {CARD_LIMIT_CENTS}"),
                }]
            }
            (PaymentCommand::Charge { order_id, amount_cents }, Self::None) => {
                vec![PaymentEvent::Charged { order_id: order_id.clone(), amount_cents: *amount_cents }]
            }
            (PaymentCommand::Refund { order_id }, Self::Charged(amount_cents)) => {
                vec![PaymentEvent::Refunded { order_id: order_id.clone(), amount_cents: *amount_cents }]
            }
            // Charged, declined or refunded already: a repeated request changes nothing.
            _ => Vec::new(),
        })
    }
}

impl Reacts for Payment {
    fn react(event: &RecordedEvent) -> Option<(StreamId, PaymentCommand)> {
        match decode::<CheckoutEvent>(event, "checkout")? {
            CheckoutEvent::PaymentRequested { order_id, amount_cents } => {
                Some((Payment::stream_id(&order_id).ok()?, PaymentCommand::Charge { order_id, amount_cents }))
            }
            CheckoutEvent::RefundRequested { order_id } => {
                Some((Payment::stream_id(&order_id).ok()?, PaymentCommand::Refund { order_id }))
            }
            _ => None,
        }
    }
}
