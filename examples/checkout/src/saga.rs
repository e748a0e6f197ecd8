//! The checkout saga: reserve the stock, charge the payment, confirm the order; release the stock and
//! cancel the order when a step fails or the payment does not answer in time.
//!
//! One run per order, stream `checkout-<order id>`. Its events record every step, and the ones named
//! `...Requested` are its commands to the other services: the outbox publishes them, and the service
//! that owns the aggregate applies each at most once (its idempotency key is the event id).
//!
//! ```text
//! OrderPlaced ──► Started + StockReservationRequested                          [Reserving]
//! StockReserved ──► PaymentRequested (timer "payment": 30 s)                   [Charging]
//! PaymentCharged ──► ConfirmationRequested (timer stopped)                     [Confirmed]
//! StockReservationRefused ──► CancellationRequested                            [Cancelled]
//! PaymentDeclined | timer ──► StockReleaseRequested + CancellationRequested    [Cancelled]
//! PaymentCharged after a cancel ──► RefundRequested                           [Cancelled]
//! anything else (a repeat, a late answer) ──► nothing
//! ```

use std::time::Duration;

use composable_rust::RecordedEvent;
use composable_rust::bus::{Reacts, Timer};
use composable_rust::prelude::*;
use serde::{Deserialize, Serialize};

use crate::decode;
use crate::inventory::StockEvent;
use crate::order::{Line, OrderEvent};
use crate::payment::PaymentEvent;

/// How long the saga waits for the payment service before it gives up and compensates.
pub const PAYMENT_TIMEOUT: Duration = Duration::from_secs(30);

/// Where a checkout is.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum Step {
    /// Not started.
    #[default]
    NotStarted,
    /// Waiting for the stock.
    Reserving,
    /// Waiting for the payment.
    Charging,
    /// Done: the order is confirmed.
    Confirmed,
    /// Done: the order is cancelled and what was taken is given back.
    Cancelled,
}

/// The progress of one checkout (stream `checkout-<order id>`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checkout {
    /// Where it is.
    pub step: Step,
    /// The order, once started.
    pub order_id: String,
    /// What was ordered, once started.
    pub line: Option<Line>,
}

/// What the saga reacts to: the other services' events, and its own deadline.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CheckoutInput {
    /// The order was placed.
    OrderPlaced {
        /// The order.
        order_id: String,
        /// What was ordered.
        line: Line,
    },
    /// The stock is held.
    StockReserved,
    /// The stock is short.
    StockRefused {
        /// Why.
        reason: String,
    },
    /// The payment went through.
    PaymentCharged,
    /// The payment was refused.
    PaymentDeclined {
        /// Why.
        reason: String,
    },
    /// The payment did not answer within [`PAYMENT_TIMEOUT`].
    PaymentTimedOut,
}

/// The steps of a checkout; the `...Requested` ones are commands to other services.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum CheckoutEvent {
    /// A checkout began for this order.
    Started {
        /// The order.
        order_id: String,
        /// What was ordered.
        line: Line,
    },
    /// Command to the inventory: hold the stock.
    StockReservationRequested {
        /// The order.
        order_id: String,
        /// The product.
        sku: String,
        /// How many.
        quantity: u32,
    },
    /// Command to the payment service: charge the order.
    PaymentRequested {
        /// The order.
        order_id: String,
        /// How much.
        amount_cents: u64,
    },
    /// Command to the order: it is confirmed.
    ConfirmationRequested {
        /// The order.
        order_id: String,
    },
    /// Compensation, to the inventory: give back the order's stock.
    StockReleaseRequested {
        /// The order.
        order_id: String,
        /// The product.
        sku: String,
    },
    /// Compensation, to the order: it is cancelled.
    CancellationRequested {
        /// The order.
        order_id: String,
        /// Why.
        reason: String,
    },
    /// Compensation, to the payment service: a charge arrived after the order was cancelled.
    RefundRequested {
        /// The order.
        order_id: String,
    },
}

impl Event for CheckoutEvent {
    fn event_type(&self) -> &'static str {
        match self {
            Self::Started { .. } => "CheckoutStarted.v1",
            Self::StockReservationRequested { .. } => "StockReservationRequested.v1",
            Self::PaymentRequested { .. } => "PaymentRequested.v1",
            Self::ConfirmationRequested { .. } => "OrderConfirmationRequested.v1",
            Self::StockReleaseRequested { .. } => "StockReleaseRequested.v1",
            Self::CancellationRequested { .. } => "OrderCancellationRequested.v1",
            Self::RefundRequested { .. } => "RefundRequested.v1",
        }
    }
}

/// The saga refuses nothing: an input that does not fit its step is ignored (no events).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("never")]
pub enum CheckoutError {}

impl Aggregate for Checkout {
    const CATEGORY: &'static str = "checkout";
    const EVENT_TYPES: &'static [&'static str] = &[
        "CheckoutStarted.v1",
        "StockReservationRequested.v1",
        "PaymentRequested.v1",
        "OrderConfirmationRequested.v1",
        "StockReleaseRequested.v1",
        "OrderCancellationRequested.v1",
        "RefundRequested.v1",
    ];
    const SNAPSHOT_SCHEMA_VERSION: u32 = 1;
    type Event = CheckoutEvent;
    type Command = CheckoutInput;
    type Error = CheckoutError;

    fn apply(&mut self, event: &CheckoutEvent) {
        match event {
            CheckoutEvent::Started { order_id, line } => {
                self.order_id.clone_from(order_id);
                self.line = Some(line.clone());
                self.step = Step::Reserving;
            }
            CheckoutEvent::PaymentRequested { .. } => self.step = Step::Charging,
            CheckoutEvent::ConfirmationRequested { .. } => self.step = Step::Confirmed,
            CheckoutEvent::CancellationRequested { .. } => self.step = Step::Cancelled,
            CheckoutEvent::StockReservationRequested { .. }
            | CheckoutEvent::StockReleaseRequested { .. }
            | CheckoutEvent::RefundRequested { .. } => {}
        }
    }

    fn decide(&self, input: &CheckoutInput) -> Result<Vec<CheckoutEvent>, CheckoutError> {
        let order_id = self.order_id.clone();
        let Some(line) = &self.line else {
            return Ok(match input {
                CheckoutInput::OrderPlaced { order_id, line } => vec![
                    CheckoutEvent::Started { order_id: order_id.clone(), line: line.clone() },
                    CheckoutEvent::StockReservationRequested {
                        order_id: order_id.clone(),
                        sku: line.sku.clone(),
                        quantity: line.quantity,
                    },
                ],
                _ => Vec::new(),
            });
        };
        let compensate = |reason: &str| {
            vec![
                CheckoutEvent::StockReleaseRequested { order_id: order_id.clone(), sku: line.sku.clone() },
                CheckoutEvent::CancellationRequested { order_id: order_id.clone(), reason: reason.to_owned() },
            ]
        };
        Ok(match (self.step, input) {
            (Step::Reserving, CheckoutInput::StockReserved) => {
                vec![CheckoutEvent::PaymentRequested { order_id, amount_cents: line.amount_cents }]
            }
            (Step::Reserving, CheckoutInput::StockRefused { reason }) => {
                vec![CheckoutEvent::CancellationRequested { order_id, reason: format!("out of stock: {reason}") }]
            }
            (Step::Charging, CheckoutInput::PaymentCharged) => vec![CheckoutEvent::ConfirmationRequested { order_id }],
            (Step::Charging, CheckoutInput::PaymentDeclined { reason }) => {
                compensate(&format!("payment declined: {reason}"))
            }
            (Step::Charging, CheckoutInput::PaymentTimedOut) => compensate("payment timed out"),
            (Step::Cancelled, CheckoutInput::PaymentCharged) => vec![CheckoutEvent::RefundRequested { order_id }],
            _ => Vec::new(),
        })
    }
}

/// The name of the saga's payment deadline.
pub const PAYMENT_TIMER: &str = "payment";

impl Reacts for Checkout {
    fn react(event: &RecordedEvent) -> Option<(StreamId, CheckoutInput)> {
        let (order_id, input) = match event.stream_id.category() {
            "order" => match decode::<OrderEvent>(event, "order")? {
                OrderEvent::Placed { order_id, line } => {
                    (order_id.clone(), CheckoutInput::OrderPlaced { order_id, line })
                }
                _ => return None,
            },
            "stock" => match decode::<StockEvent>(event, "stock")? {
                StockEvent::Reserved { order_id, .. } => (order_id, CheckoutInput::StockReserved),
                StockEvent::ReservationRefused { order_id, reason, .. } => {
                    (order_id, CheckoutInput::StockRefused { reason })
                }
                _ => return None,
            },
            "payment" => match decode::<PaymentEvent>(event, "payment")? {
                PaymentEvent::Charged { order_id, .. } => (order_id, CheckoutInput::PaymentCharged),
                PaymentEvent::Declined { order_id, reason } => (order_id, CheckoutInput::PaymentDeclined { reason }),
                PaymentEvent::Refunded { .. } => return None,
            },
            _ => return None,
        };
        Some((Checkout::stream_id(&order_id).ok()?, input))
    }

    fn timer(event: &CheckoutEvent) -> Option<Timer<CheckoutInput>> {
        match event {
            CheckoutEvent::PaymentRequested { .. } => Some(Timer::Start {
                name: PAYMENT_TIMER,
                after: PAYMENT_TIMEOUT,
                command: CheckoutInput::PaymentTimedOut,
            }),
            CheckoutEvent::ConfirmationRequested { .. } | CheckoutEvent::CancellationRequested { .. } => {
                Some(Timer::Stop { name: PAYMENT_TIMER })
            }
            _ => None,
        }
    }
}
