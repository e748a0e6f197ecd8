//! The order domain, pure: money, line items, commands, events, the order state and its rules.
//!
//! [`Order`] is an [`Aggregate`]. Nothing here does I/O, reads the clock or makes ids. `decide` checks a
//! command against the current state and returns the events it causes, or a [`Rejection`] that says why
//! not; `apply` folds one event into the state. Replaying an order's events through `apply` rebuilds it,
//! which is how an order survives a restart.
//!
//! Commands carry unchecked input (an [`ItemRequest`] holds whatever numbers the user typed); events
//! carry facts that passed the rules (a [`LineItem`] has a positive quantity and price by construction).

use std::fmt;
use std::str::FromStr;

use composable_rust::{Aggregate, Event, StreamId};
use serde::{Deserialize, Serialize};
use thiserror::Error;

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

/// The longest text (customer, reason, tracking number, SKU) an order accepts, in characters.
pub const MAX_TEXT_LEN: usize = 200;

/// Why a piece of text is refused, if it is.
fn text_problem(value: &str) -> Option<&'static str> {
    if value.trim().is_empty() {
        Some("must not be empty")
    } else if value.chars().count() > MAX_TEXT_LEN {
        Some("is longer than 200 characters")
    } else if value.chars().any(char::is_control) {
        Some("must not contain control characters")
    } else {
        None
    }
}

fn check_text(field: &'static str, value: &str) -> Result<String, Rejection> {
    match text_problem(value) {
        Some(problem) => Err(Rejection::InvalidText { field, problem }),
        None => Ok(value.trim().to_owned()),
    }
}

/// Checks one requested line (`line` is its 1-based position) and turns it into a [`LineItem`].
fn check_item(line: usize, request: &ItemRequest) -> Result<LineItem, Rejection> {
    let invalid = |problem| Rejection::InvalidItem { line, sku: request.sku.clone(), problem };
    if let Some(problem) = text_problem(&request.sku) {
        return Err(invalid(ItemProblem::BadSku(problem)));
    }
    if request.quantity <= 0 {
        return Err(invalid(ItemProblem::QuantityNotPositive(request.quantity)));
    }
    let quantity =
        u32::try_from(request.quantity).map_err(|_| invalid(ItemProblem::QuantityTooLarge(request.quantity)))?;
    let unit_price = match u64::try_from(request.unit_price_cents) {
        Ok(cents) if cents > 0 => Cents::new(cents),
        _ => return Err(invalid(ItemProblem::PriceNotPositive(request.unit_price_cents))),
    };
    Ok(LineItem { sku: request.sku.trim().to_owned(), quantity, unit_price })
}

/// Adds the lines' totals to `start`, refusing overflow.
fn add_totals<'a>(start: Cents, items: impl IntoIterator<Item = &'a LineItem>) -> Result<Cents, Rejection> {
    let overflow = Rejection::TotalOverflow { max: Cents::new(u64::MAX) };
    items.into_iter().try_fold(start, |sum, item| {
        item.total().and_then(|line| sum.checked_add(line)).ok_or_else(|| overflow.clone())
    })
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

impl Aggregate for Order {
    const CATEGORY: &'static str = "order";
    const EVENT_TYPES: &'static [&'static str] =
        &["OrderPlaced.v1", "OrderItemAdded.v1", "OrderCancelled.v1", "OrderShipped.v1"];
    const SNAPSHOT_SCHEMA_VERSION: u32 = 1;
    type Event = OrderEvent;
    type Command = OrderCommand;
    type Error = Rejection;

    /// Checks `command` against this state and returns the events it causes.
    ///
    /// The rules: the order must exist (except for `place`, where it must not), a shipped or cancelled
    /// order changes no more, texts must be non-empty, quantities and prices positive, and the total must
    /// fit in 64 bits of cents.
    fn decide(&self, command: &OrderCommand) -> Result<Vec<OrderEvent>, Rejection> {
        let verb = command.verb();
        match (self.status, command) {
            (OrderStatus::New, OrderCommand::Place { customer, items }) => {
                let customer = check_text("customer", customer)?;
                if items.is_empty() {
                    return Err(Rejection::NoItems);
                }
                let items =
                    items.iter().enumerate().map(|(i, item)| check_item(i + 1, item)).collect::<Result<Vec<_>, _>>()?;
                add_totals(Cents::ZERO, &items)?;
                Ok(vec![OrderEvent::OrderPlaced { customer, items }])
            }
            (status, OrderCommand::Place { .. }) => Err(Rejection::AlreadyExists { status }),
            (OrderStatus::New, _) => Err(Rejection::UnknownOrder { verb }),
            (status @ (OrderStatus::Shipped | OrderStatus::Cancelled), _) => Err(Rejection::Closed { verb, status }),
            (OrderStatus::Placed, OrderCommand::AddItem { item }) => {
                let item = check_item(1, item)?;
                add_totals(self.total, [&item])?;
                Ok(vec![OrderEvent::OrderItemAdded { item }])
            }
            (OrderStatus::Placed, OrderCommand::Cancel { reason }) => {
                Ok(vec![OrderEvent::OrderCancelled { reason: check_text("reason", reason)? }])
            }
            (OrderStatus::Placed, OrderCommand::Ship { tracking_number }) => {
                Ok(vec![OrderEvent::OrderShipped { tracking_number: check_text("tracking number", tracking_number)? }])
            }
        }
    }

    /// Folds one event into the state. Never fails: events are facts that passed `decide`.
    fn apply(&mut self, event: &OrderEvent) {
        match event {
            OrderEvent::OrderPlaced { customer, items } => {
                self.status = OrderStatus::Placed;
                self.customer.clone_from(customer);
                self.items.clone_from(items);
                // `decide` refused totals that overflow, so saturation never changes a stored order.
                self.total = add_totals(Cents::ZERO, items).unwrap_or(Cents::new(u64::MAX));
            }
            OrderEvent::OrderItemAdded { item } => {
                self.total = add_totals(self.total, [item]).unwrap_or(Cents::new(u64::MAX));
                self.items.push(item.clone());
            }
            OrderEvent::OrderCancelled { reason } => {
                self.status = OrderStatus::Cancelled;
                self.cancel_reason = Some(reason.clone());
            }
            OrderEvent::OrderShipped { tracking_number } => {
                self.status = OrderStatus::Shipped;
                self.tracking_number = Some(tracking_number.clone());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn placed() -> Order {
        let events = Order::default()
            .decide(&OrderCommand::Place {
                customer: "Ada".into(),
                items: vec![ItemRequest::new("widget", 2, 1250), ItemRequest::new("gadget", 1, 999)],
            })
            .unwrap();
        Order::from_events(&events)
    }

    fn after(mut order: Order, command: OrderCommand) -> Order {
        for event in order.decide(&command).unwrap() {
            order.apply(&event);
        }
        order
    }

    #[test]
    fn placing_records_the_customer_items_and_total() {
        let order = placed();
        assert_eq!(order.status, OrderStatus::Placed);
        assert_eq!(order.customer, "Ada");
        assert_eq!(order.total, Cents::new(2 * 1250 + 999));
        assert_eq!(order.items[0], LineItem { sku: "widget".into(), quantity: 2, unit_price: Cents::new(1250) });
    }

    #[test]
    fn cents_display_as_dollars_with_separators() {
        assert_eq!(Cents::new(0).to_string(), "$0.00");
        assert_eq!(Cents::new(5).to_string(), "$0.05");
        assert_eq!(Cents::new(123_456_789).to_string(), "$1,234,567.89");
        assert_eq!(format!("{:>8}", Cents::new(1250)), "  $12.50");
    }

    #[test]
    fn item_arguments_parse_and_report_bad_shapes() {
        assert_eq!("widget:2:1250".parse(), Ok(ItemRequest::new("widget", 2, 1250)));
        assert_eq!("a:b:3:-4".parse(), Ok(ItemRequest::new("a:b", 3, -4)));
        assert_eq!("widget:2".parse::<ItemRequest>(), Err(ItemSyntaxError::Shape("widget:2".into())));
        assert!(matches!(
            "widget:two:5".parse::<ItemRequest>(),
            Err(ItemSyntaxError::NotANumber { field: "quantity", .. })
        ));
        assert!(matches!(
            "widget:2:12.50".parse::<ItemRequest>(),
            Err(ItemSyntaxError::NotANumber { field: "unit price", .. })
        ));
    }

    #[test]
    fn place_requires_items_a_customer_and_positive_numbers() {
        let new = Order::default();
        let place = |customer: &str, items: Vec<ItemRequest>| {
            new.decide(&OrderCommand::Place { customer: customer.into(), items })
        };
        assert_eq!(place("Ada", vec![]), Err(Rejection::NoItems));
        assert_eq!(
            place("  ", vec![ItemRequest::new("w", 1, 1)]),
            Err(Rejection::InvalidText { field: "customer", problem: "must not be empty" })
        );
        let item_problem = |item| match place("Ada", vec![ItemRequest::new("ok", 1, 1), item]) {
            Err(Rejection::InvalidItem { line: 2, problem, .. }) => problem,
            other => panic!("expected an item rejection, got {other:?}"),
        };
        assert_eq!(item_problem(ItemRequest::new("w", 0, 100)), ItemProblem::QuantityNotPositive(0));
        assert_eq!(item_problem(ItemRequest::new("w", -3, 100)), ItemProblem::QuantityNotPositive(-3));
        assert_eq!(item_problem(ItemRequest::new("w", 1 << 40, 100)), ItemProblem::QuantityTooLarge(1 << 40));
        assert_eq!(item_problem(ItemRequest::new("w", 1, 0)), ItemProblem::PriceNotPositive(0));
        assert_eq!(item_problem(ItemRequest::new("w", 1, -5)), ItemProblem::PriceNotPositive(-5));
        assert_eq!(item_problem(ItemRequest::new("", 1, 5)), ItemProblem::BadSku("must not be empty"));
    }

    #[test]
    fn totals_that_overflow_are_rejected() {
        let huge = ItemRequest::new("gold", i64::from(u32::MAX), i64::MAX);
        let err = Order::default().decide(&OrderCommand::Place { customer: "Ada".into(), items: vec![huge] });
        assert!(matches!(err, Err(Rejection::TotalOverflow { .. })), "{err:?}");

        let big = ItemRequest::new("gold", 1, i64::MAX);
        let err = Order::default().decide(&OrderCommand::Place {
            customer: "Ada".into(),
            items: vec![big.clone(), big.clone(), big.clone()],
        });
        assert!(matches!(err, Err(Rejection::TotalOverflow { .. })), "{err:?}");

        let mut order =
            after(Order::default(), OrderCommand::Place { customer: "Ada".into(), items: vec![big.clone()] });
        order = after(order, OrderCommand::AddItem { item: big.clone() });
        assert!(matches!(order.decide(&OrderCommand::AddItem { item: big }), Err(Rejection::TotalOverflow { .. })));
    }

    #[test]
    fn only_a_placed_order_can_be_cancelled_shipped_or_extended() {
        let new = Order::default();
        for command in [
            OrderCommand::Cancel { reason: "r".into() },
            OrderCommand::Ship { tracking_number: "t".into() },
            OrderCommand::AddItem { item: ItemRequest::new("w", 1, 1) },
        ] {
            assert_eq!(new.decide(&command), Err(Rejection::UnknownOrder { verb: command.verb() }));
        }
        assert_eq!(
            placed().decide(&OrderCommand::Place { customer: "Bob".into(), items: vec![ItemRequest::new("w", 1, 1)] }),
            Err(Rejection::AlreadyExists { status: OrderStatus::Placed })
        );
    }

    #[test]
    fn a_shipped_order_cannot_be_cancelled_or_shipped_again() {
        let shipped = after(placed(), OrderCommand::Ship { tracking_number: "1Z999".into() });
        assert_eq!(shipped.tracking_number.as_deref(), Some("1Z999"));
        assert_eq!(
            shipped.decide(&OrderCommand::Cancel { reason: "late".into() }),
            Err(Rejection::Closed { verb: "cancel", status: OrderStatus::Shipped })
        );
        assert_eq!(
            shipped.decide(&OrderCommand::Ship { tracking_number: "2".into() }),
            Err(Rejection::Closed { verb: "ship", status: OrderStatus::Shipped })
        );
    }

    #[test]
    fn a_cancelled_order_cannot_be_shipped() {
        let cancelled = after(placed(), OrderCommand::Cancel { reason: "changed my mind".into() });
        assert_eq!(cancelled.status, OrderStatus::Cancelled);
        assert_eq!(
            cancelled.decide(&OrderCommand::Ship { tracking_number: "1Z".into() }).unwrap_err().to_string(),
            "cannot ship an order that is already cancelled"
        );
    }

    #[test]
    fn cancel_and_ship_need_a_reason_and_a_tracking_number() {
        let order = placed();
        assert!(matches!(
            order.decide(&OrderCommand::Cancel { reason: String::new() }),
            Err(Rejection::InvalidText { field: "reason", .. })
        ));
        assert!(matches!(
            order.decide(&OrderCommand::Ship { tracking_number: "a\nb".into() }),
            Err(Rejection::InvalidText { field: "tracking number", problem: "must not contain control characters" })
        ));
    }

    #[test]
    fn adding_an_item_grows_the_total() {
        let order = after(placed(), OrderCommand::AddItem { item: ItemRequest::new("bolt", 10, 5) });
        assert_eq!(order.items.len(), 3);
        assert_eq!(order.total, Cents::new(2 * 1250 + 999 + 50));
    }

    #[test]
    fn order_ids_map_to_order_streams_and_back() {
        let id = OrderId::new("A-1_b").unwrap();
        assert_eq!(id.stream_id().as_str(), "order-A-1_b");
        assert_eq!(OrderId::from_stream_id(id.stream_id()), Some(id));
        assert_eq!(OrderId::from_stream_id(&StreamId::new("counter-1").unwrap()), None);
        for bad in ["", "a b", "x".repeat(41).as_str(), "é"] {
            assert!(OrderId::new(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn event_types_are_versioned() {
        let events = [
            OrderEvent::OrderPlaced { customer: "a".into(), items: vec![] },
            OrderEvent::OrderItemAdded { item: LineItem { sku: "s".into(), quantity: 1, unit_price: Cents::new(1) } },
            OrderEvent::OrderCancelled { reason: "r".into() },
            OrderEvent::OrderShipped { tracking_number: "t".into() },
        ];
        let types: Vec<_> = events.iter().map(Event::event_type).collect();
        assert_eq!(types, Order::EVENT_TYPES);
    }
}
