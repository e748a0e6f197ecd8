//! The order domain, pure: money, line items, commands, events, the order state and its rules.
//!
//! [`Order`] is an [`Aggregate`]. Nothing here does I/O, reads the clock or makes ids. `decide` checks a
//! command against the current state and returns the events it causes, or a [`Rejection`] that says why
//! not; `apply` folds one event into the state. Replaying an order's events through `apply` rebuilds it,
//! which is how an order survives a restart.
//!
//! Commands carry unchecked input (an [`ItemRequest`] holds whatever numbers the user typed); events
//! carry facts that passed the rules (a [`LineItem`] has a positive quantity and price by construction).

#[cfg(doc)]
use composable_rust::Aggregate;

mod commands;
mod events;
mod rules;
mod state;
mod values;

pub use commands::{ItemProblem, ItemRequest, ItemSyntaxError, OrderCommand, Rejection};
pub use events::OrderEvent;
pub use rules::MAX_TEXT_LEN;
pub use state::{LineItem, Order, OrderStatus};
pub use values::{Cents, InvalidOrderId, OrderId};

#[cfg(test)]
mod tests {
    use composable_rust::{Aggregate, Event, StreamId};

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
