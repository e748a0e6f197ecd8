//! The value types of the domain: money ([`Cents`]) and order ids ([`OrderId`]).

use std::fmt;
use std::str::FromStr;

use composable_rust::{Aggregate, StreamId};
use serde::{Deserialize, Serialize};
use thiserror::Error;

use super::Order;

/// An amount of money in cents. Arithmetic is checked; it is shown as `$1,234.56`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Cents(u64);

impl Cents {
    /// No money.
    pub const ZERO: Self = Self(0);

    /// Wraps an amount in cents.
    #[must_use]
    pub const fn new(cents: u64) -> Self {
        Self(cents)
    }

    /// The amount in cents.
    #[must_use]
    pub const fn get(self) -> u64 {
        self.0
    }

    /// `self + other`, or `None` on overflow.
    #[must_use]
    pub const fn checked_add(self, other: Self) -> Option<Self> {
        match self.0.checked_add(other.0) {
            Some(sum) => Some(Self(sum)),
            None => None,
        }
    }

    /// `self * quantity`, or `None` on overflow.
    #[must_use]
    pub const fn checked_mul(self, quantity: u32) -> Option<Self> {
        match self.0.checked_mul(quantity as u64) {
            Some(product) => Some(Self(product)),
            None => None,
        }
    }
}

impl fmt::Display for Cents {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let dollars = (self.0 / 100).to_string();
        let mut grouped = String::with_capacity(dollars.len() + dollars.len() / 3);
        for (i, digit) in dollars.chars().enumerate() {
            if i > 0 && (dollars.len() - i) % 3 == 0 {
                grouped.push(',');
            }
            grouped.push(digit);
        }
        // `pad` so that callers can align amounts in columns with `{:>12}`.
        f.pad(&format!("${grouped}.{:02}", self.0 % 100))
    }
}

/// The id of an order: 1 to 40 ASCII letters, digits, `_` or `-`. Its events live in stream `order-{id}`.
///
/// ```
/// use order_processing::OrderId;
///
/// let id: OrderId = "a1b2c3".parse()?;
/// assert_eq!(id.stream_id().as_str(), "order-a1b2c3");
/// assert!("has space".parse::<OrderId>().is_err());
/// # Ok::<(), order_processing::domain::InvalidOrderId>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct OrderId {
    id: String,
    stream: StreamId,
}

/// An order id that breaks the naming rule.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("invalid order id {0:?}: use 1 to 40 ASCII letters, digits, '_' or '-'")]
pub struct InvalidOrderId(pub String);

impl OrderId {
    /// The longest order id, in characters.
    pub const MAX_LEN: usize = 40;

    /// Checks `id` and makes an order id of it.
    ///
    /// # Errors
    /// [`InvalidOrderId`] when `id` is empty, longer than 40 characters, or has other characters than
    /// ASCII letters, digits, `_` and `-`.
    pub fn new(id: impl Into<String>) -> Result<Self, InvalidOrderId> {
        let id = id.into();
        let well_formed = !id.is_empty()
            && id.len() <= Self::MAX_LEN
            && id.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
        match Order::stream_id(&id) {
            Ok(stream) if well_formed => Ok(Self { id, stream }),
            _ => Err(InvalidOrderId(id.chars().take(64).collect())),
        }
    }

    /// The order id of an order stream (`order-42` gives `42`); `None` for other streams.
    #[must_use]
    pub fn from_stream_id(stream: &StreamId) -> Option<Self> {
        let id = stream.as_str().strip_prefix(Order::CATEGORY)?.strip_prefix(StreamId::CATEGORY_SEPARATOR)?;
        Self::new(id).ok()
    }

    /// The id as text.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.id
    }

    /// The stream that holds this order's events: `order-{id}`.
    #[must_use]
    pub fn stream_id(&self) -> &StreamId {
        &self.stream
    }
}

impl fmt::Display for OrderId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(&self.id)
    }
}

impl FromStr for OrderId {
    type Err = InvalidOrderId;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::new(s)
    }
}

impl TryFrom<String> for OrderId {
    type Error = InvalidOrderId;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::new(value)
    }
}

impl From<OrderId> for String {
    fn from(id: OrderId) -> Self {
        id.id
    }
}
