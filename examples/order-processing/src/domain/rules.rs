//! [`Order`] as an [`Aggregate`]: `decide` checks a command against the state and returns its events or
//! a [`Rejection`]; `apply` folds one event into the state.

use composable_rust::Aggregate;

use super::{Cents, ItemProblem, ItemRequest, LineItem, Order, OrderCommand, OrderEvent, OrderStatus, Rejection};

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
pub(super) fn add_totals<'a>(start: Cents, items: impl IntoIterator<Item = &'a LineItem>) -> Result<Cents, Rejection> {
    let overflow = Rejection::TotalOverflow { max: Cents::new(u64::MAX) };
    items.into_iter().try_fold(start, |sum, item| {
        item.total().and_then(|line| sum.checked_add(line)).ok_or_else(|| overflow.clone())
    })
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
