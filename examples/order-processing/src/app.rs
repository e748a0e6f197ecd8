//! The wiring: orders driven through a runtime [`Store`](composable_rust::Store), the way a
//! Composable Architecture application is.
//!
//! [`OrderApp`] is a reducer. Its actions are a command for an order ([`AppAction::Execute`]) and the
//! outcome fed back when the command has run ([`AppAction::Executed`]). For a command it does no I/O: it
//! returns an [`Effect::EventStore`] built by [`Repository::execute_operation`], and the store's runtime
//! runs it against the event store it was built with: load the order (latest snapshot plus the events
//! after it), [`Aggregate::decide`](composable_rust::Aggregate::decide), append the events with
//! optimistic concurrency (retrying on a conflict), maybe take a snapshot. The result comes back as an
//! [`AppAction::Executed`], which the reducer records in [`AppState`].

use std::collections::BTreeMap;
use std::error::Error as StdError;

use composable_rust::{Effect, Metadata, Reducer, Version};
use composable_rust::{Executed, Repository, RepositoryError};
use uuid::Uuid;

use crate::domain::{Order, OrderCommand, OrderEvent, OrderId, Rejection};

/// The name stored as the actor of every event this program writes.
pub const ACTOR: &str = "order-processing";

/// What [`OrderApp`] handles.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AppAction {
    /// Run `command` on `order`; the events it causes carry `correlation_id` in their metadata.
    Execute {
        /// The order the command is for.
        order: OrderId,
        /// What to do.
        command: OrderCommand,
        /// Groups the events of one user request; `history` shows it.
        correlation_id: Uuid,
    },
    /// The outcome of an [`AppAction::Execute`], fed back by the event store effect.
    Executed {
        /// The order the command was for.
        order: OrderId,
        /// What happened.
        outcome: Outcome,
    },
}

/// What became of a command.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The order accepted the command and its events were appended.
    Accepted {
        /// The order after the new events.
        order: Order,
        /// The stream's version after the append.
        version: Version,
        /// The events appended, in order.
        events: Vec<OrderEvent>,
        /// The version a snapshot was started for, when the snapshot policy asked for one.
        snapshot: Option<Version>,
    },
    /// The order refused the command; nothing was written.
    Rejected(Rejection),
    /// The event store failed, or other writers kept winning; nothing was written. The message names the
    /// cause and what to do.
    Failed(String),
}

impl Outcome {
    /// Turns the repository's result into an outcome a reducer can store and a test can compare.
    #[must_use]
    pub fn from_result(result: Result<Executed<Order>, RepositoryError<Rejection>>) -> Self {
        match result {
            Ok(executed) => Self::Accepted {
                order: executed.state,
                version: executed.version,
                events: executed.events,
                snapshot: executed.snapshot_started,
            },
            Err(RepositoryError::Domain(rejection)) => Self::Rejected(rejection),
            Err(error) => Self::Failed(error_chain(&error)),
        }
    }
}

/// An error and its sources, joined with `: `, so that no cause is lost when it is printed.
#[must_use]
pub fn error_chain(error: &(dyn StdError + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        // `#[error(transparent)]` wrappers repeat their source's message; print it once.
        if !text.ends_with(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

/// An order as this process last saw it, with the stream version that state reflects.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KnownOrder {
    /// The order's state.
    pub order: Order,
    /// The version of its stream (its number of events).
    pub version: Version,
}

/// The state of [`OrderApp`]: what this process has done so far.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AppState {
    /// Commands sent whose outcome has not come back yet.
    pub in_flight: usize,
    /// Every order a command of this process changed, as the repository returned it.
    pub orders: BTreeMap<OrderId, KnownOrder>,
    /// Every outcome, in the order they came back.
    pub outcomes: Vec<(OrderId, Outcome)>,
}

/// What [`OrderApp`] needs from the outside world: the repository that runs commands.
#[derive(Debug, Clone)]
pub struct AppEnvironment {
    /// Loads, changes and snapshots orders. Its effects run against the `Store`'s event store.
    pub repository: Repository<Order>,
}

/// The reducer of the order-processing application. Pure: all I/O is in the effects it returns.
#[derive(Debug, Clone, Copy, Default)]
pub struct OrderApp;

impl Reducer for OrderApp {
    type State = AppState;
    type Action = AppAction;
    type Environment = AppEnvironment;

    fn reduce(&self, state: &mut AppState, action: AppAction, env: &AppEnvironment) -> Effect<AppAction> {
        match action {
            AppAction::Execute { order, command, correlation_id } => {
                state.in_flight += 1;
                let stream = order.stream_id().clone();
                let metadata = Metadata::correlated(correlation_id).with_actor(ACTOR);
                Effect::event_store(env.repository.execute_operation(stream, command, metadata, move |result| {
                    AppAction::Executed { order, outcome: Outcome::from_result(result) }
                }))
            }
            AppAction::Executed { order, outcome } => {
                state.in_flight = state.in_flight.saturating_sub(1);
                if let Outcome::Accepted { order: accepted, version, .. } = &outcome {
                    state.orders.insert(order.clone(), KnownOrder { order: accepted.clone(), version: *version });
                }
                state.outcomes.push((order, outcome));
                Effect::None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use composable_rust::testing::{InMemoryEventStore, TestStore};
    use composable_rust::{Aggregate, EventStoreRequest, StreamId};
    use composable_rust::{RepositoryConfig, SnapshotPolicy};

    use super::*;
    use crate::domain::{Cents, ItemProblem, ItemRequest, OrderStatus};

    const CORRELATION: Uuid = Uuid::from_u128(0x6f1c_2a3b_0000_4000_8000_0000_0000_0001);

    fn id(text: &str) -> OrderId {
        OrderId::new(text).unwrap()
    }

    fn place(customer: &str, items: &[(&str, i64, i64)]) -> OrderCommand {
        OrderCommand::Place {
            customer: customer.to_owned(),
            items: items.iter().map(|&(sku, quantity, cents)| ItemRequest::new(sku, quantity, cents)).collect(),
        }
    }

    fn ada() -> OrderCommand {
        place("Ada", &[("notebook", 2, 1250)])
    }

    fn execute(order: &OrderId, command: OrderCommand) -> AppAction {
        AppAction::Execute { order: order.clone(), command, correlation_id: CORRELATION }
    }

    /// A test store over an in-memory event store, with a snapshot every `snapshot_every` events.
    fn test_store(snapshot_every: u64) -> (TestStore<OrderApp>, InMemoryEventStore, Repository<Order>) {
        let events = InMemoryEventStore::new();
        let config = RepositoryConfig::default().with_snapshot_policy(SnapshotPolicy::every(snapshot_every));
        let repository = Repository::with_config(Arc::new(events.clone()), config);
        let environment = AppEnvironment { repository: repository.clone() };
        let store = TestStore::builder(OrderApp, AppState::default(), environment)
            .event_store(Arc::new(events.clone()))
            .build();
        (store, events, repository)
    }

    /// Sends a command the order accepts, asserting every step; returns the order after it.
    #[track_caller]
    fn accept(store: &mut TestStore<OrderApp>, order: &OrderId, command: OrderCommand) -> Order {
        let known = store.state().orders.get(order).cloned();
        let mut state = known.as_ref().map(|k| k.order.clone()).unwrap_or_default();
        let version = known.map_or(Version::INITIAL, |k| k.version);
        let events = state.handle(&command).unwrap();
        let new_version = version.advanced_by(events.len() as u64);
        store.send(execute(order, command), |s| s.in_flight += 1);
        let outcome = Outcome::Accepted { order: state.clone(), version: new_version, events, snapshot: None };
        store.receive(AppAction::Executed { order: order.clone(), outcome: outcome.clone() }, |s| {
            s.in_flight -= 1;
            s.orders.insert(order.clone(), KnownOrder { order: state.clone(), version: new_version });
            s.outcomes.push((order.clone(), outcome));
        });
        state
    }

    /// Sends a command the order must refuse with `rejection`, and checks that nothing was written.
    #[track_caller]
    fn reject(
        store: &mut TestStore<OrderApp>,
        events: &InMemoryEventStore,
        order: &OrderId,
        command: OrderCommand,
        rejection: Rejection,
    ) {
        let before = events.all_events();
        store.send(execute(order, command), |s| s.in_flight += 1);
        let outcome = Outcome::Rejected(rejection);
        store.receive(AppAction::Executed { order: order.clone(), outcome: outcome.clone() }, |s| {
            s.in_flight -= 1;
            s.outcomes.push((order.clone(), outcome));
        });
        assert_eq!(events.all_events(), before, "a rejected command wrote events");
    }

    #[test]
    fn a_command_becomes_an_inspectable_event_store_effect() {
        let repository = Repository::new(Arc::new(InMemoryEventStore::new()));
        let mut state = AppState::default();
        let effect = OrderApp.reduce(&mut state, execute(&id("a1"), ada()), &AppEnvironment { repository });
        assert_eq!(state.in_flight, 1);
        let Effect::EventStore(operation) = effect else { panic!("expected an event store effect, got {effect:?}") };
        assert!(matches!(
            operation.request(),
            EventStoreRequest::Custom { stream_id, .. } if stream_id == &StreamId::new("order-a1").unwrap()
        ));
    }

    #[test]
    fn placing_an_order_appends_order_placed_with_the_correlation_id() {
        let (mut store, events, _) = test_store(100);
        let order = accept(&mut store, &id("a1"), ada());
        assert_eq!(order.total, Cents::new(2500));
        let stored = events.events(&StreamId::new("order-a1").unwrap());
        assert_eq!(stored.len(), 1);
        assert_eq!(stored[0].event_type, "OrderPlaced.v1");
        assert_eq!(stored[0].metadata.correlation_id, Some(CORRELATION));
        assert_eq!(stored[0].metadata.actor.as_deref(), Some(ACTOR));
        store.finish();
    }

    #[test]
    fn a_placed_order_can_grow_and_ship() {
        let (mut store, events, _) = test_store(100);
        let a1 = id("a1");
        accept(&mut store, &a1, ada());
        accept(&mut store, &a1, OrderCommand::AddItem { item: ItemRequest::new("pencil", 12, 80) });
        let shipped = accept(&mut store, &a1, OrderCommand::Ship { tracking_number: "1Z999".into() });
        assert_eq!(shipped.status, OrderStatus::Shipped);
        assert_eq!(shipped.total, Cents::new(2500 + 960));
        let types: Vec<_> = events.all_events().iter().map(|e| e.event_type.clone()).collect();
        assert_eq!(types, ["OrderPlaced.v1", "OrderItemAdded.v1", "OrderShipped.v1"]);
        store.finish();
    }

    #[test]
    fn a_placed_order_can_be_cancelled_with_a_reason() {
        let (mut store, _, _) = test_store(100);
        let a1 = id("a1");
        accept(&mut store, &a1, ada());
        let cancelled = accept(&mut store, &a1, OrderCommand::Cancel { reason: "changed my mind".into() });
        assert_eq!(cancelled.status, OrderStatus::Cancelled);
        assert_eq!(cancelled.cancel_reason.as_deref(), Some("changed my mind"));
        store.finish();
    }

    #[test]
    fn place_rejects_bad_input_and_writes_nothing() {
        let (mut store, events, _) = test_store(100);
        let a1 = id("a1");
        let invalid_item = |line, sku: &str, problem| Rejection::InvalidItem { line, sku: sku.into(), problem };
        let cases = [
            (place("Ada", &[]), Rejection::NoItems),
            (place(" ", &[("pen", 1, 1)]), Rejection::InvalidText { field: "customer", problem: "must not be empty" }),
            (place("Ada", &[("pen", 0, 100)]), invalid_item(1, "pen", ItemProblem::QuantityNotPositive(0))),
            (
                place("Ada", &[("ok", 1, 1), ("pen", -2, 100)]),
                invalid_item(2, "pen", ItemProblem::QuantityNotPositive(-2)),
            ),
            (place("Ada", &[("pen", 1, 0)]), invalid_item(1, "pen", ItemProblem::PriceNotPositive(0))),
            (place("Ada", &[("pen", 1, -100)]), invalid_item(1, "pen", ItemProblem::PriceNotPositive(-100))),
            (place("Ada", &[("", 1, 100)]), invalid_item(1, "", ItemProblem::BadSku("must not be empty"))),
            (
                place("Ada", &[("gold", i64::from(u32::MAX), i64::MAX)]),
                Rejection::TotalOverflow { max: Cents::new(u64::MAX) },
            ),
            (
                place("Ada", &[("gold", 1, i64::MAX), ("gold", 1, i64::MAX), ("gold", 1, i64::MAX)]),
                Rejection::TotalOverflow { max: Cents::new(u64::MAX) },
            ),
        ];
        for (command, rejection) in cases {
            reject(&mut store, &events, &a1, command, rejection);
        }
        assert!(events.all_events().is_empty());

        accept(&mut store, &a1, ada());
        reject(&mut store, &events, &a1, ada(), Rejection::AlreadyExists { status: OrderStatus::Placed });
        store.finish();
    }

    #[test]
    fn only_an_existing_order_can_be_changed() {
        let (mut store, events, _) = test_store(100);
        let ghost = id("ghost");
        for command in [
            OrderCommand::Cancel { reason: "r".into() },
            OrderCommand::Ship { tracking_number: "t".into() },
            OrderCommand::AddItem { item: ItemRequest::new("pen", 1, 1) },
        ] {
            let verb = command.verb();
            reject(&mut store, &events, &ghost, command, Rejection::UnknownOrder { verb });
        }
        store.finish();
    }

    #[test]
    fn a_shipped_order_cannot_be_cancelled_shipped_again_or_extended() {
        let (mut store, events, _) = test_store(100);
        let a1 = id("a1");
        accept(&mut store, &a1, ada());
        accept(&mut store, &a1, OrderCommand::Ship { tracking_number: "1Z".into() });
        let closed = |verb| Rejection::Closed { verb, status: OrderStatus::Shipped };
        reject(&mut store, &events, &a1, OrderCommand::Cancel { reason: "late".into() }, closed("cancel"));
        reject(&mut store, &events, &a1, OrderCommand::Ship { tracking_number: "2".into() }, closed("ship"));
        let add = OrderCommand::AddItem { item: ItemRequest::new("pen", 1, 1) };
        reject(&mut store, &events, &a1, add, closed("add an item to"));
        store.finish();
    }

    #[test]
    fn a_cancelled_order_cannot_be_shipped_or_cancelled_again() {
        let (mut store, events, _) = test_store(100);
        let a1 = id("a1");
        accept(&mut store, &a1, ada());
        accept(&mut store, &a1, OrderCommand::Cancel { reason: "duplicate".into() });
        let closed = |verb| Rejection::Closed { verb, status: OrderStatus::Cancelled };
        reject(&mut store, &events, &a1, OrderCommand::Ship { tracking_number: "1Z".into() }, closed("ship"));
        reject(&mut store, &events, &a1, OrderCommand::Cancel { reason: "again".into() }, closed("cancel"));
        store.finish();
    }

    #[test]
    fn cancel_and_ship_need_text_and_adding_items_keeps_the_rules() {
        let (mut store, events, _) = test_store(100);
        let a1 = id("a1");
        accept(&mut store, &a1, place("Ada", &[("gold", 1, i64::MAX), ("gold", 1, i64::MAX)]));
        let empty = |field| Rejection::InvalidText { field, problem: "must not be empty" };
        reject(&mut store, &events, &a1, OrderCommand::Cancel { reason: "  ".into() }, empty("reason"));
        reject(
            &mut store,
            &events,
            &a1,
            OrderCommand::Ship { tracking_number: String::new() },
            empty("tracking number"),
        );
        let zero = OrderCommand::AddItem { item: ItemRequest::new("pen", 0, 1) };
        let problem = ItemProblem::QuantityNotPositive(0);
        reject(&mut store, &events, &a1, zero, Rejection::InvalidItem { line: 1, sku: "pen".into(), problem });
        let overflow = OrderCommand::AddItem { item: ItemRequest::new("gold", 1, i64::MAX) };
        reject(&mut store, &events, &a1, overflow, Rejection::TotalOverflow { max: Cents::new(u64::MAX) });
        store.finish();
    }

    #[test]
    fn the_snapshot_policy_saves_a_snapshot_that_loads_back_the_same_order() {
        let (mut store, events, repository) = test_store(2);
        let a1 = id("a1");
        accept(&mut store, &a1, ada());
        // The second event reaches the interval: the outcome says a snapshot was started at version 2.
        let command = OrderCommand::AddItem { item: ItemRequest::new("pencil", 12, 80) };
        let mut expected = store.state().orders[&a1].order.clone();
        let new_events = expected.handle(&command).unwrap();
        store.send(execute(&a1, command), |s| s.in_flight += 1);
        let outcome = Outcome::Accepted {
            order: expected.clone(),
            version: Version::new(2),
            events: new_events,
            snapshot: Some(Version::new(2)),
        };
        store.receive(AppAction::Executed { order: a1.clone(), outcome: outcome.clone() }, |s| {
            s.in_flight -= 1;
            s.orders.insert(a1.clone(), KnownOrder { order: expected.clone(), version: Version::new(2) });
            s.outcomes.push((a1.clone(), outcome));
        });
        store.finish();

        let loaded = store.block_on(async {
            repository.flush_snapshots().await;
            repository.load(a1.stream_id()).await.unwrap()
        });
        assert_eq!(loaded.metrics.snapshot_version, Some(Version::new(2)));
        assert_eq!(loaded.metrics.events_replayed, 0);
        assert_eq!(loaded.state, expected);
        assert_eq!(events.all_events().len(), 2);
    }
}
