//! The state of an order, rebuilt from its events: [`Order`], its [`OrderStatus`] and its [`LineItem`]s.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::Cents;

/// The lifecycle of an order. A new (never placed) order is [`OrderStatus::New`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum OrderStatus {
    /// Not placed yet: the order has no events.
    #[default]
    New,
    /// Placed; items can still be added, and it can be shipped or cancelled.
    Placed,
    /// Shipped with a tracking number. Final.
    Shipped,
    /// Cancelled with a reason. Final.
    Cancelled,
}

impl OrderStatus {
    /// The lower-case name used in output and in `list --status`.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::New => "new",
            Self::Placed => "placed",
            Self::Shipped => "shipped",
            Self::Cancelled => "cancelled",
        }
    }
}

impl fmt::Display for OrderStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
    }
}

/// One line of a placed order: a SKU, a positive quantity and a positive unit price.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LineItem {
    /// The stock keeping unit.
    pub sku: String,
    /// How many (at least 1).
    pub quantity: u32,
    /// The price of one (at least one cent).
    pub unit_price: Cents,
}

impl LineItem {
    /// `quantity * unit_price`, or `None` on overflow.
    #[must_use]
    pub fn total(&self) -> Option<Cents> {
        self.unit_price.checked_mul(self.quantity)
    }
}

/// The state of one order, rebuilt from its events. `Order::default()` is an order that was never placed.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Order {
    /// Where the order is in its lifecycle.
    pub status: OrderStatus,
    /// Who the order is for (empty while [`OrderStatus::New`]).
    pub customer: String,
    /// The lines, in the order they were placed or added.
    pub items: Vec<LineItem>,
    /// The sum of the lines' totals.
    pub total: Cents,
    /// Set once shipped.
    pub tracking_number: Option<String>,
    /// Set once cancelled.
    pub cancel_reason: Option<String>,
}
