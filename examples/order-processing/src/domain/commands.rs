//! What a user asks of an order ([`OrderCommand`], with unchecked [`ItemRequest`]s) and why the order
//! may refuse it ([`Rejection`]).

use std::str::FromStr;

use serde::{Deserialize, Serialize};
use thiserror::Error;

use super::{Cents, OrderStatus};
#[cfg(doc)]
use {super::Order, composable_rust::Aggregate};

/// One line of an order as the user asked for it: unchecked numbers, parsed from `SKU:QUANTITY:UNIT_PRICE`
/// where the unit price is in cents (`widget:2:1250` is two widgets at $12.50).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ItemRequest {
    /// The stock keeping unit.
    pub sku: String,
    /// How many; must be positive.
    pub quantity: i64,
    /// The price of one, in cents; must be positive.
    pub unit_price_cents: i64,
}

impl ItemRequest {
    /// A request for `quantity` of `sku` at `unit_price_cents` each.
    pub fn new(sku: impl Into<String>, quantity: i64, unit_price_cents: i64) -> Self {
        Self { sku: sku.into(), quantity, unit_price_cents }
    }
}

/// Why an `--item` argument could not be read (before any rule is checked).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ItemSyntaxError {
    /// The text did not have three `:`-separated parts.
    #[error("expected SKU:QUANTITY:UNIT_PRICE_CENTS (for example widget:2:1250), got {0:?}")]
    Shape(String),
    /// The quantity or price was not a whole number.
    #[error("the {field} in {text:?} is not a whole number")]
    NotANumber {
        /// `quantity` or `unit price`.
        field: &'static str,
        /// The whole argument.
        text: String,
    },
}

impl FromStr for ItemRequest {
    type Err = ItemSyntaxError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        // The SKU may itself contain ':', so split the two numbers off the end.
        let mut parts = text.rsplitn(3, ':');
        let (Some(price), Some(quantity), Some(sku)) = (parts.next(), parts.next(), parts.next()) else {
            return Err(ItemSyntaxError::Shape(text.to_owned()));
        };
        let number = |field, value: &str| {
            value.trim().parse::<i64>().map_err(|_| ItemSyntaxError::NotANumber { field, text: text.to_owned() })
        };
        Ok(Self {
            sku: sku.to_owned(),
            quantity: number("quantity", quantity)?,
            unit_price_cents: number("unit price", price)?,
        })
    }
}

/// What a user asks an order to do. Checked by [`Aggregate::decide`] on [`Order`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum OrderCommand {
    /// Place a new order for `customer` with one or more items.
    Place {
        /// Who the order is for.
        customer: String,
        /// The lines of the order.
        items: Vec<ItemRequest>,
    },
    /// Add one item to a placed order that has not shipped or been cancelled.
    AddItem {
        /// The line to add.
        item: ItemRequest,
    },
    /// Cancel a placed order that has not shipped.
    Cancel {
        /// Why it is cancelled.
        reason: String,
    },
    /// Ship a placed order.
    Ship {
        /// The carrier's tracking number.
        tracking_number: String,
    },
}

impl OrderCommand {
    /// The verb used in messages: `place`, `add an item to`, `cancel`, `ship`.
    #[must_use]
    pub const fn verb(&self) -> &'static str {
        match self {
            Self::Place { .. } => "place",
            Self::AddItem { .. } => "add an item to",
            Self::Cancel { .. } => "cancel",
            Self::Ship { .. } => "ship",
        }
    }
}

/// Why a command was refused. Nothing is written when a command is rejected.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum Rejection {
    /// `place` for an id that already has an order.
    #[error("the order already exists (it is {status}); place a new order under another id")]
    AlreadyExists {
        /// The existing order's status.
        status: OrderStatus,
    },
    /// Any command but `place` for an order that does not exist.
    #[error("there is no such order to {verb}; `order-processing list` shows the orders")]
    UnknownOrder {
        /// The command's verb.
        verb: &'static str,
    },
    /// A command for an order that is cancelled or shipped, which no longer changes.
    #[error("cannot {verb} an order that is already {status}")]
    Closed {
        /// The command's verb.
        verb: &'static str,
        /// `shipped` or `cancelled`.
        status: OrderStatus,
    },
    /// `place` without items.
    #[error("an order needs at least one item: pass --item SKU:QUANTITY:UNIT_PRICE_CENTS")]
    NoItems,
    /// A text field is empty, too long or has control characters.
    #[error("the {field} {problem}")]
    InvalidText {
        /// `customer`, `reason`, `tracking number` or `SKU`.
        field: &'static str,
        /// What is wrong with it.
        problem: &'static str,
    },
    /// A line item breaks a rule.
    #[error("item {line} ({sku}): {problem}")]
    InvalidItem {
        /// 1-based position of the item in the command.
        line: usize,
        /// The item's SKU, as given.
        sku: String,
        /// Which rule it breaks.
        problem: ItemProblem,
    },
    /// The order's total would not fit in 64 bits of cents.
    #[error("the order total would overflow (the largest total is {max}); split the order")]
    TotalOverflow {
        /// The largest total an order can have.
        max: Cents,
    },
}

/// The rule a line item breaks.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ItemProblem {
    /// Quantity zero or negative.
    #[error("quantity must be positive, got {0}")]
    QuantityNotPositive(i64),
    /// Quantity above `u32::MAX`.
    #[error("quantity {0} is too large (at most {max})", max = u32::MAX)]
    QuantityTooLarge(i64),
    /// Price zero or negative.
    #[error("unit price must be positive (in cents), got {0}")]
    PriceNotPositive(i64),
    /// The SKU is empty, too long or has control characters.
    #[error("the SKU {0}")]
    BadSku(&'static str),
}
