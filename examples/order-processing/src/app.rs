//! The wiring: orders driven through a runtime [`Store`](composable_rust::Store), the way a
//! Composable Architecture application is.
//!
//! The order logic is a reducer: [`EventSourced<Order>`](EventSourced) runs the [`Order`] aggregate one
//! visible step at a time, and [`OrderApp`] puts it in an application. For one command:
//!
//! ```text
//! AppAction::Execute ──► AggregateAction::Command ──► EventStoreRequest::Load(order-a1)   (first command only)
//!                                                      │
//!     Loaded { order, version } ◄──────────────────────┘
//!        │  Order::decide(command)
//!        ├── Err(rejection) ─────────────────────────────────► Rejected   → Outcome::Rejected
//!        └── events ──► EventStoreRequest::Append(order-a1, Exact(version), events + metadata)
//!                          ├── stored ──────────────────────► Appended   → Outcome::Accepted
//!                          │                                  (+ SaveSnapshot request when the policy says so)
//!                          ├── another writer won ──────────► Conflicted → reload, decide again (bounded)
//!                          └── the store failed ────────────► Failed     → Outcome::Failed
//! ```
//!
//! The reducer does no I/O: each request is a value the `Store` hands to its event store, and the answer
//! comes back as the next action. So a `TestStore` test asserts the exact load, the exact append (stream,
//! expected version, events, metadata) and the snapshot, and can answer any of them with a conflict or an
//! outage (see the tests at the bottom of this file).
//!
//! [`OrderApp`] is composed left to right with [`ReducerExt::scope`]: [`EventSourced<Order>`](EventSourced)
//! runs on [`AppState::orders`] for the actions [`order_steps`] picks out, and then the parent,
//! [`RecordOutcomes`], reads the order each final step left behind and records an [`Outcome`]. The child
//! runs before the parent (the rule of every builder that attaches a child), so the parent always sees the
//! order after the step. [`order_steps`] is also where a user's [`AppAction::Execute`] becomes an
//! [`AggregateAction::Command`] with the correlation id and actor in its [`Metadata`], so the command
//! reaches the aggregate in the same reduction, without an extra `Effect::send`.

use composable_rust::aggregate::{
    AggregateAction, AggregateEnvironment, AggregateFailure, Aggregates, LoadedAggregate, RepositoryConfig,
};
use composable_rust::compose::{ActionCase, Scoped};
use composable_rust::{Effect, EventSourced, Metadata, Reducer, ReducerExt, Version};
use uuid::Uuid;

use crate::domain::{Order, OrderCommand, OrderEvent, OrderId, Rejection};

/// The name stored as the actor of every event this program writes.
pub const ACTOR: &str = "order-processing";

/// What [`OrderApp`] handles.
#[derive(Clone, Debug, PartialEq)]
pub enum AppAction {
    /// Run `command` on `order`; the events it causes carry `correlation_id` and [`ACTOR`] in their metadata.
    Execute {
        /// The order the command is for.
        order: OrderId,
        /// What to do.
        command: OrderCommand,
        /// Groups the events of one user request; `history` shows it.
        correlation_id: Uuid,
    },
    /// A step of [`EventSourced<Order>`](EventSourced): the command itself, the order loaded, the
    /// events appended, a conflict, a rejection or a failure. Fed back by the event store requests.
    Order(AggregateAction<Order>),
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
        /// The version a snapshot was saved at, when the snapshot policy asked for one.
        snapshot: Option<Version>,
    },
    /// The order refused the command; nothing was written.
    Rejected(Rejection),
    /// The event store failed, or other writers kept winning; its message names the cause and what to do.
    Failed(AggregateFailure),
}

/// An order with the stream version that state reflects, as `demo` and `rebuild` compare them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KnownOrder {
    /// The order's state.
    pub order: Order,
    /// The version of its stream (its number of events).
    pub version: Version,
}

impl From<&LoadedAggregate<Order>> for KnownOrder {
    fn from(loaded: &LoadedAggregate<Order>) -> Self {
        Self { order: loaded.state.clone(), version: loaded.version }
    }
}

/// The state of [`OrderApp`]: what this process has done so far.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct AppState {
    /// The state of [`EventSourced<Order>`](EventSourced): every order a command was sent for, as last
    /// loaded or changed, with the command running on it and the ones waiting.
    pub orders: Aggregates<Order>,
    /// Every outcome, in the order they came back.
    pub outcomes: Vec<(OrderId, Outcome)>,
}

impl AppState {
    /// The order `id` as this process last loaded or changed it, if it did.
    #[must_use]
    pub fn order(&self, id: &OrderId) -> Option<KnownOrder> {
        self.orders.loaded(id.stream_id()).map(KnownOrder::from)
    }
}

/// The reducer of the order-processing application. Pure: all I/O is in the event store requests of the
/// [`EventSourced<Order>`](EventSourced) reducer it runs.
#[derive(Debug)]
pub struct OrderApp {
    orders: EventSourced<Order>,
    reducer: Scoped<RecordOutcomes, EventSourced<Order>>,
}

impl OrderApp {
    /// The application with `config`: the snapshot policy, how many conflicts a command retries, and the
    /// codec new events are written with.
    #[must_use]
    pub fn new(config: RepositoryConfig) -> Self {
        Self::with_orders(EventSourced::with_config(config))
    }

    fn with_orders(orders: EventSourced<Order>) -> Self {
        let reducer = RecordOutcomes.scope(|s| &mut s.orders, order_steps(), |env| env, orders.clone());
        Self { orders, reducer }
    }

    /// The aggregate reducer commands run through: tests use it to build the requests they expect.
    #[must_use]
    pub fn orders(&self) -> &EventSourced<Order> {
        &self.orders
    }
}

impl Default for OrderApp {
    fn default() -> Self {
        Self::with_orders(EventSourced::default())
    }
}

impl Clone for OrderApp {
    fn clone(&self) -> Self {
        Self::with_orders(self.orders.clone())
    }
}

impl Reducer for OrderApp {
    type State = AppState;
    type Action = AppAction;
    type Environment = AggregateEnvironment;

    fn reduce(&self, state: &mut AppState, action: AppAction, env: &AggregateEnvironment) -> Effect<AppAction> {
        self.reducer.reduce(state, action, env)
    }
}

/// How [`AppAction`] carries the actions of [`EventSourced<Order>`](EventSourced): a user's
/// [`AppAction::Execute`] is a new command, stamped with its correlation id and [`ACTOR`]; an
/// [`AppAction::Order`] is a step fed back by the aggregate's own effects, and what those effects are
/// wrapped into.
#[must_use]
pub fn order_steps() -> ActionCase<AppAction, AggregateAction<Order>> {
    ActionCase::new(
        |action| {
            Some(match action {
                AppAction::Execute { order, command, correlation_id } => {
                    let metadata = Metadata::correlated(correlation_id).with_actor(ACTOR);
                    AggregateAction::command(order.stream_id().clone(), command, metadata)
                }
                AppAction::Order(step) => step,
            })
        },
        AppAction::Order,
    )
}

/// The parent of [`OrderApp`]: records the [`Outcome`] of each command when its last step arrives. It runs
/// after [`EventSourced<Order>`](EventSourced) has applied that step, so it reads the order as the step
/// left it.
#[derive(Debug, Clone, Copy, Default)]
pub struct RecordOutcomes;

impl Reducer for RecordOutcomes {
    type State = AppState;
    type Action = AppAction;
    type Environment = AggregateEnvironment;

    fn reduce(&self, state: &mut AppState, action: AppAction, _env: &AggregateEnvironment) -> Effect<AppAction> {
        if let AppAction::Order(step) = action
            && let Some(outcome) = outcome_of(&state.orders, step)
        {
            state.outcomes.push(outcome);
        }
        Effect::None
    }
}

/// The outcome `step` (`Appended`, `Rejected` or `Failed`) ends a command with, read from `orders` after
/// the step; `None` for other steps.
fn outcome_of(orders: &Aggregates<Order>, step: AggregateAction<Order>) -> Option<(OrderId, Outcome)> {
    // Every stream in `orders` was named by an `OrderId` in `AppAction::Execute`.
    let id = OrderId::from_stream_id(step.stream_id())?;
    let outcome = match step {
        AggregateAction::Appended { stream_id, events, version } => match orders.loaded(&stream_id) {
            Some(loaded) => Outcome::Accepted {
                order: loaded.state.clone(),
                version,
                // Versions only grow with events: a snapshot at this version was asked for by this step.
                snapshot: (!events.is_empty() && loaded.snapshot_version == Some(version)).then_some(version),
                events,
            },
            // `EventSourced` keeps the order loaded from `Loaded` to `Appended`; this cannot happen.
            None => Outcome::Failed(AggregateFailure::Append(format!(
                "the events were appended (the order is at version {version}), but order {id} is no longer in \
                 memory (a bug in order-processing; please report it); `order-processing show {id}` shows it"
            ))),
        },
        AggregateAction::Rejected { error, .. } => Outcome::Rejected(error),
        AggregateAction::Failed { error, .. } => Outcome::Failed(error),
        // This program sends no command with an idempotency key, so none is ever `AlreadyApplied`.
        _ => return None,
    };
    Some((id, outcome))
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use chrono::{TimeZone, Utc};
    use composable_rust::aggregate::RunningCommand;
    use composable_rust::testing::{InMemoryEventStore, TestClock, TestStore};
    use composable_rust::{
        Aggregate, EventStoreError, EventStoreRequest, ExpectedVersion, Repository, SnapshotPolicy, StreamId,
    };

    use super::*;
    use crate::domain::{Cents, ItemProblem, ItemRequest, LineItem, OrderStatus};

    type Step = AggregateAction<Order>;

    const CORRELATION: Uuid = Uuid::from_u128(0x6f1c_2a3b_0000_4000_8000_0000_0000_0001);

    fn id(text: &str) -> OrderId {
        OrderId::new(text).unwrap()
    }

    fn v(n: u64) -> Version {
        Version::new(n)
    }

    /// The metadata every event of these tests carries.
    fn metadata() -> Metadata {
        Metadata::correlated(CORRELATION).with_actor(ACTOR)
    }

    fn place(customer: &str, items: &[(&str, i64, i64)]) -> OrderCommand {
        OrderCommand::Place {
            customer: customer.to_owned(),
            items: items.iter().map(|&(sku, quantity, cents)| ItemRequest::new(sku, quantity, cents)).collect(),
        }
    }

    fn line(sku: &str, quantity: u32, cents: u64) -> LineItem {
        LineItem { sku: sku.to_owned(), quantity, unit_price: Cents::new(cents) }
    }

    /// Ada orders two notebooks at $12.50.
    fn ada() -> OrderCommand {
        place("Ada", &[("notebook", 2, 1250)])
    }

    /// What [`ada`] appends.
    fn ada_placed() -> OrderEvent {
        OrderEvent::OrderPlaced { customer: "Ada".into(), items: vec![line("notebook", 2, 1250)] }
    }

    fn add_pencils() -> OrderCommand {
        OrderCommand::AddItem { item: ItemRequest::new("pencil", 12, 80) }
    }

    fn pencils_added() -> OrderEvent {
        OrderEvent::OrderItemAdded { item: line("pencil", 12, 80) }
    }

    fn execute(order: &OrderId, command: OrderCommand) -> AppAction {
        AppAction::Execute { order: order.clone(), command, correlation_id: CORRELATION }
    }

    fn running(command: OrderCommand, attempts: u32) -> Option<RunningCommand<Order>> {
        Some(RunningCommand { attempts, ..RunningCommand::new(command, metadata()) })
    }

    fn loaded(order: Order, version: u64) -> LoadedAggregate<Order> {
        LoadedAggregate { state: order, version: v(version), snapshot_version: None }
    }

    /// `order` after `events`.
    fn applied(mut order: Order, events: &[OrderEvent]) -> Order {
        for event in events {
            order.apply(event);
        }
        order
    }

    struct Fixture {
        store: TestStore<OrderApp>,
        events: InMemoryEventStore,
        /// Stamps snapshots, in the `TestStore` and in the reducer's environment alike.
        env: AggregateEnvironment,
        app: OrderApp,
    }

    /// A test store over an in-memory event store and a test clock, with `config`.
    fn fixture(config: RepositoryConfig) -> Fixture {
        let events = InMemoryEventStore::new();
        let clock = TestClock::starting_at(Utc.with_ymd_and_hms(2026, 11, 30, 9, 0, 0).unwrap());
        let env = AggregateEnvironment::new(Arc::new(clock.clone()));
        let app = OrderApp::new(config);
        let store = TestStore::builder(app.clone(), AppState::default(), env.clone())
            .event_store(Arc::new(events.clone()))
            .clock(clock)
            .build();
        Fixture { store, events, env, app }
    }

    /// A fixture with the default configuration (a snapshot every 100 events: none in these tests).
    fn orders() -> Fixture {
        fixture(RepositoryConfig::default())
    }

    /// Sends `command` for `order` and asserts the steps up to its decision: the command starts at once
    /// when the order is loaded; otherwise the order is loaded first, and must be a new one (every test
    /// starts with an empty event store).
    #[track_caller]
    fn send_and_load(store: &mut TestStore<OrderApp>, order: &OrderId, command: OrderCommand) {
        let s = order.stream_id().clone();
        if store.state().orders.loaded(&s).is_some() {
            store.send(execute(order, command.clone()), |a| a.orders.slot_mut(&s).running = running(command, 1));
            return;
        }
        store.send(execute(order, command.clone()), |a| a.orders.slot_mut(&s).running = running(command.clone(), 0));
        store.receive_request(EventStoreRequest::load(s.clone()));
        store.receive(
            AppAction::Order(Step::Loaded { stream_id: s.clone(), loaded: loaded(Order::default(), 0) }),
            |a| {
                let slot = a.orders.slot_mut(&s);
                slot.loaded = Some(loaded(Order::default(), 0));
                slot.running = running(command, 1);
            },
        );
    }

    /// Sends a command the order accepts and asserts every step: the load if needed, the append of
    /// exactly `events` at the order's version, and the outcome. Returns the order after it.
    #[track_caller]
    fn accept(store: &mut TestStore<OrderApp>, order: &OrderId, command: OrderCommand, events: &[OrderEvent]) -> Order {
        send_and_load(store, order, command);
        let s = order.stream_id().clone();
        let before = store.state().orders.loaded(&s).cloned().unwrap_or_else(|| loaded(Order::default(), 0));
        let after = applied(before.state.clone(), events);
        let version = before.version.advanced_by(events.len() as u64);
        store.receive_append(&s, ExpectedVersion::Exact(before.version), events.to_vec(), &metadata());
        let appended = Step::Appended { stream_id: s.clone(), events: events.to_vec(), version };
        store.receive(AppAction::Order(appended), |a| {
            let slot = a.orders.slot_mut(&s);
            slot.running = None;
            slot.loaded = Some(LoadedAggregate { state: after.clone(), version, ..before });
            let outcome = Outcome::Accepted { order: after.clone(), version, events: events.to_vec(), snapshot: None };
            a.outcomes.push((order.clone(), outcome));
        });
        after
    }

    /// Sends a command the order must refuse with `rejection`, asserting that it is decided without any
    /// append (an append would be an unasserted request) and comes back as a rejection.
    #[track_caller]
    fn reject(store: &mut TestStore<OrderApp>, order: &OrderId, command: OrderCommand, rejection: Rejection) {
        send_and_load(store, order, command);
        let s = order.stream_id().clone();
        store.receive(AppAction::Order(Step::Rejected { stream_id: s.clone(), error: rejection.clone() }), |a| {
            a.orders.slot_mut(&s).running = None;
            a.outcomes.push((order.clone(), Outcome::Rejected(rejection)));
        });
    }

    #[test]
    fn a_command_is_a_load_request_before_anything_runs() {
        let mut state = AppState::default();
        let effect =
            OrderApp::default().reduce(&mut state, execute(&id("a1"), ada()), &AggregateEnvironment::default());
        let Effect::EventStore(operation) = effect else { panic!("expected an event store request, got {effect:?}") };
        assert_eq!(operation.request(), &EventStoreRequest::load(StreamId::new("order-a1").unwrap()));
        assert!(state.orders.is_busy(), "the command runs until the order is loaded");
        assert!(state.outcomes.is_empty());
    }

    #[test]
    fn placing_an_order_loads_it_then_appends_order_placed_with_the_correlation_id_and_actor() {
        let Fixture { mut store, events, .. } = orders();
        let a1 = id("a1");
        let s = a1.stream_id().clone();
        store.send(execute(&a1, ada()), |a| a.orders.slot_mut(&s).running = running(ada(), 0));
        store.receive_request(EventStoreRequest::load(s.clone()));
        store.receive(
            AppAction::Order(Step::Loaded { stream_id: s.clone(), loaded: loaded(Order::default(), 0) }),
            |a| {
                let slot = a.orders.slot_mut(&s);
                slot.loaded = Some(loaded(Order::default(), 0));
                slot.running = running(ada(), 1);
            },
        );
        store.receive_append(&s, ExpectedVersion::Exact(v(0)), [ada_placed()], &metadata());
        let placed = Order {
            status: OrderStatus::Placed,
            customer: "Ada".into(),
            items: vec![line("notebook", 2, 1250)],
            total: Cents::new(2500),
            ..Order::default()
        };
        let appended = Step::Appended { stream_id: s.clone(), events: vec![ada_placed()], version: v(1) };
        store.receive(AppAction::Order(appended), |a| {
            let slot = a.orders.slot_mut(&s);
            slot.running = None;
            slot.loaded = Some(loaded(placed.clone(), 1));
            let outcome =
                Outcome::Accepted { order: placed.clone(), version: v(1), events: vec![ada_placed()], snapshot: None };
            a.outcomes.push((a1.clone(), outcome));
        });
        store.finish();
        let stored = events.events(&s);
        assert_eq!(stored.len(), 1);
        assert_eq!(stored[0].event_type, "OrderPlaced.v1");
    }

    #[test]
    fn adding_an_item_to_a_loaded_order_appends_without_loading_again() {
        let Fixture { mut store, .. } = orders();
        let a1 = id("a1");
        let s = a1.stream_id().clone();
        let placed = accept(&mut store, &a1, ada(), &[ada_placed()]);
        store.send(execute(&a1, add_pencils()), |a| a.orders.slot_mut(&s).running = running(add_pencils(), 1));
        store.receive_append(&s, ExpectedVersion::Exact(v(1)), [pencils_added()], &metadata());
        let grown = applied(placed, &[pencils_added()]);
        assert_eq!(grown.total, Cents::new(2500 + 960));
        store.receive(
            AppAction::Order(Step::Appended { stream_id: s.clone(), events: vec![pencils_added()], version: v(2) }),
            |a| {
                let slot = a.orders.slot_mut(&s);
                slot.running = None;
                slot.loaded = Some(loaded(grown.clone(), 2));
                let outcome = Outcome::Accepted {
                    order: grown.clone(),
                    version: v(2),
                    events: vec![pencils_added()],
                    snapshot: None,
                };
                a.outcomes.push((a1.clone(), outcome));
            },
        );
        store.finish();
    }

    #[test]
    fn a_rejected_command_appends_nothing_and_records_the_rejection() {
        let Fixture { mut store, events, .. } = orders();
        let a1 = id("a1");
        let s = a1.stream_id().clone();
        accept(&mut store, &a1, ada(), &[ada_placed()]);
        let zero = OrderCommand::AddItem { item: ItemRequest::new("pen", 0, 100) };
        store.send(execute(&a1, zero.clone()), |a| a.orders.slot_mut(&s).running = running(zero, 1));
        let rejection =
            Rejection::InvalidItem { line: 1, sku: "pen".into(), problem: ItemProblem::QuantityNotPositive(0) };
        store.receive(AppAction::Order(Step::Rejected { stream_id: s.clone(), error: rejection.clone() }), |a| {
            a.orders.slot_mut(&s).running = None;
            a.outcomes.push((a1.clone(), Outcome::Rejected(rejection)));
        });
        store.finish();
        assert_eq!(events.events(&s).len(), 1, "only the placement was stored");
    }

    #[test]
    fn a_conflict_reloads_the_order_and_appends_again_at_the_new_version() {
        let Fixture { mut store, events, .. } = orders();
        let a1 = id("a1");
        let s = a1.stream_id().clone();
        let placed = accept(&mut store, &a1, ada(), &[ada_placed()]);

        // Another process adds ink meanwhile, through the direct `Repository` API: this store's copy of
        // the order is now one version behind.
        let ink = OrderEvent::OrderItemAdded { item: line("ink", 3, 725) };
        let other = Repository::<Order>::new(Arc::new(events.clone()));
        let add_ink = OrderCommand::AddItem { item: ItemRequest::new("ink", 3, 725) };
        store.block_on(other.execute(&s, add_ink, Metadata::default())).unwrap();

        store.send(execute(&a1, add_pencils()), |a| a.orders.slot_mut(&s).running = running(add_pencils(), 1));
        // Answered from the store, the stale append would fail just so; the reply states it.
        let conflict = EventStoreError::ConcurrencyConflict {
            stream_id: s.clone(),
            expected: ExpectedVersion::Exact(v(1)),
            actual: v(2),
        };
        store.receive_append(&s, ExpectedVersion::Exact(v(1)), [pencils_added()], &metadata()).reply(Err(conflict));
        let conflicted =
            Step::Conflicted { stream_id: s.clone(), expected: ExpectedVersion::Exact(v(1)), actual: v(2) };
        store.receive(AppAction::Order(conflicted), |a| a.orders.slot_mut(&s).loaded = None);
        store.receive_request(EventStoreRequest::load(s.clone()));
        let with_ink = applied(placed, std::slice::from_ref(&ink));
        store.receive(
            AppAction::Order(Step::Loaded { stream_id: s.clone(), loaded: loaded(with_ink.clone(), 2) }),
            |a| {
                let slot = a.orders.slot_mut(&s);
                slot.loaded = Some(loaded(with_ink.clone(), 2));
                slot.running = running(add_pencils(), 2);
            },
        );
        store.receive_append(&s, ExpectedVersion::Exact(v(2)), [pencils_added()], &metadata());
        let both = applied(with_ink, &[pencils_added()]);
        store.receive(
            AppAction::Order(Step::Appended { stream_id: s.clone(), events: vec![pencils_added()], version: v(3) }),
            |a| {
                let slot = a.orders.slot_mut(&s);
                slot.running = None;
                slot.loaded = Some(loaded(both.clone(), 3));
                let outcome = Outcome::Accepted {
                    order: both.clone(),
                    version: v(3),
                    events: vec![pencils_added()],
                    snapshot: None,
                };
                a.outcomes.push((a1.clone(), outcome));
            },
        );
        store.finish();
        let types: Vec<_> = events.events(&s).iter().map(|e| e.event_type.to_string()).collect();
        assert_eq!(types, ["OrderPlaced.v1", "OrderItemAdded.v1", "OrderItemAdded.v1"]);
    }

    #[test]
    fn the_snapshot_policy_asks_for_a_snapshot_at_its_threshold_that_loads_back_the_same_order() {
        let Fixture { mut store, events, env, app } =
            fixture(RepositoryConfig::default().with_snapshot_policy(SnapshotPolicy::every(2)));
        let a1 = id("a1");
        let s = a1.stream_id().clone();
        let placed = accept(&mut store, &a1, ada(), &[ada_placed()]);

        // The second event reaches the interval: the append is followed by a snapshot at version 2.
        store.send(execute(&a1, add_pencils()), |a| a.orders.slot_mut(&s).running = running(add_pencils(), 1));
        store.receive_append(&s, ExpectedVersion::Exact(v(1)), [pencils_added()], &metadata());
        let grown = applied(placed, &[pencils_added()]);
        store.receive(
            AppAction::Order(Step::Appended { stream_id: s.clone(), events: vec![pencils_added()], version: v(2) }),
            |a| {
                let slot = a.orders.slot_mut(&s);
                slot.running = None;
                slot.loaded =
                    Some(LoadedAggregate { state: grown.clone(), version: v(2), snapshot_version: Some(v(2)) });
                let outcome = Outcome::Accepted {
                    order: grown.clone(),
                    version: v(2),
                    events: vec![pencils_added()],
                    snapshot: Some(v(2)),
                };
                a.outcomes.push((a1.clone(), outcome));
            },
        );
        store.receive_request(app.orders().snapshot_request(&s, &grown, v(2), &env).unwrap());
        store.finish();

        let loaded = store.block_on(Repository::<Order>::new(Arc::new(events.clone())).load(&s)).unwrap();
        assert_eq!(loaded.metrics.snapshot_version, Some(v(2)));
        assert_eq!(loaded.metrics.events_replayed, 0);
        assert_eq!(loaded.state, grown);
    }

    #[test]
    fn a_placed_order_can_grow_and_ship() {
        let Fixture { mut store, .. } = orders();
        let a1 = id("a1");
        accept(&mut store, &a1, ada(), &[ada_placed()]);
        accept(&mut store, &a1, add_pencils(), &[pencils_added()]);
        let ship = OrderCommand::Ship { tracking_number: "1Z999".into() };
        let shipped = accept(&mut store, &a1, ship, &[OrderEvent::OrderShipped { tracking_number: "1Z999".into() }]);
        assert_eq!(shipped.status, OrderStatus::Shipped);
        assert_eq!(shipped.total, Cents::new(2500 + 960));
        store.finish();
    }

    #[test]
    fn a_placed_order_can_be_cancelled_with_a_reason() {
        let Fixture { mut store, .. } = orders();
        let a1 = id("a1");
        accept(&mut store, &a1, ada(), &[ada_placed()]);
        let cancel = OrderCommand::Cancel { reason: "changed my mind".into() };
        let cancelled =
            accept(&mut store, &a1, cancel, &[OrderEvent::OrderCancelled { reason: "changed my mind".into() }]);
        assert_eq!(cancelled.status, OrderStatus::Cancelled);
        assert_eq!(cancelled.cancel_reason.as_deref(), Some("changed my mind"));
        store.finish();
    }

    #[test]
    fn place_rejects_bad_input_and_writes_nothing() {
        let Fixture { mut store, events, .. } = orders();
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
            reject(&mut store, &a1, command, rejection);
        }
        assert!(events.all_events().is_empty());

        accept(&mut store, &a1, ada(), &[ada_placed()]);
        reject(&mut store, &a1, ada(), Rejection::AlreadyExists { status: OrderStatus::Placed });
        store.finish();
    }

    #[test]
    fn only_an_existing_order_can_be_changed() {
        let Fixture { mut store, events, .. } = orders();
        let ghost = id("ghost");
        for command in [
            OrderCommand::Cancel { reason: "r".into() },
            OrderCommand::Ship { tracking_number: "t".into() },
            OrderCommand::AddItem { item: ItemRequest::new("pen", 1, 1) },
        ] {
            let verb = command.verb();
            reject(&mut store, &ghost, command, Rejection::UnknownOrder { verb });
        }
        store.finish();
        assert!(events.all_events().is_empty());
    }

    #[test]
    fn a_shipped_order_cannot_be_cancelled_shipped_again_or_extended() {
        let Fixture { mut store, .. } = orders();
        let a1 = id("a1");
        accept(&mut store, &a1, ada(), &[ada_placed()]);
        let ship = OrderCommand::Ship { tracking_number: "1Z".into() };
        accept(&mut store, &a1, ship, &[OrderEvent::OrderShipped { tracking_number: "1Z".into() }]);
        let closed = |verb| Rejection::Closed { verb, status: OrderStatus::Shipped };
        reject(&mut store, &a1, OrderCommand::Cancel { reason: "late".into() }, closed("cancel"));
        reject(&mut store, &a1, OrderCommand::Ship { tracking_number: "2".into() }, closed("ship"));
        let add = OrderCommand::AddItem { item: ItemRequest::new("pen", 1, 1) };
        reject(&mut store, &a1, add, closed("add an item to"));
        store.finish();
    }

    #[test]
    fn a_cancelled_order_cannot_be_shipped_or_cancelled_again() {
        let Fixture { mut store, .. } = orders();
        let a1 = id("a1");
        accept(&mut store, &a1, ada(), &[ada_placed()]);
        let cancel = OrderCommand::Cancel { reason: "duplicate".into() };
        accept(&mut store, &a1, cancel, &[OrderEvent::OrderCancelled { reason: "duplicate".into() }]);
        let closed = |verb| Rejection::Closed { verb, status: OrderStatus::Cancelled };
        reject(&mut store, &a1, OrderCommand::Ship { tracking_number: "1Z".into() }, closed("ship"));
        reject(&mut store, &a1, OrderCommand::Cancel { reason: "again".into() }, closed("cancel"));
        store.finish();
    }

    #[test]
    fn cancel_and_ship_need_text_and_adding_items_keeps_the_rules() {
        let Fixture { mut store, .. } = orders();
        let a1 = id("a1");
        let gold = line("gold", 1, i64::MAX.unsigned_abs());
        let placed = OrderEvent::OrderPlaced { customer: "Ada".into(), items: vec![gold.clone(), gold] };
        accept(&mut store, &a1, place("Ada", &[("gold", 1, i64::MAX), ("gold", 1, i64::MAX)]), &[placed]);
        let empty = |field| Rejection::InvalidText { field, problem: "must not be empty" };
        reject(&mut store, &a1, OrderCommand::Cancel { reason: "  ".into() }, empty("reason"));
        reject(&mut store, &a1, OrderCommand::Ship { tracking_number: String::new() }, empty("tracking number"));
        let zero = OrderCommand::AddItem { item: ItemRequest::new("pen", 0, 1) };
        let problem = ItemProblem::QuantityNotPositive(0);
        reject(&mut store, &a1, zero, Rejection::InvalidItem { line: 1, sku: "pen".into(), problem });
        let overflow = OrderCommand::AddItem { item: ItemRequest::new("gold", 1, i64::MAX) };
        reject(&mut store, &a1, overflow, Rejection::TotalOverflow { max: Cents::new(u64::MAX) });
        store.finish();
    }

    #[test]
    fn an_outage_fails_the_command_and_the_next_one_loads_the_order_again() {
        let Fixture { mut store, .. } = orders();
        let a1 = id("a1");
        let s = a1.stream_id().clone();
        let placed = accept(&mut store, &a1, ada(), &[ada_placed()]);
        store.send(execute(&a1, add_pencils()), |a| a.orders.slot_mut(&s).running = running(add_pencils(), 1));
        store
            .receive_append(&s, ExpectedVersion::Exact(v(1)), [pencils_added()], &metadata())
            .reply(Err(EventStoreError::backend("append to order-a1", "connection reset by peer")));
        let error = AggregateFailure::Append("could not append to order-a1: connection reset by peer".into());
        store.receive(AppAction::Order(Step::Failed { stream_id: s.clone(), error: error.clone() }), |a| {
            let slot = a.orders.slot_mut(&s);
            slot.running = None;
            slot.loaded = None;
            a.outcomes.push((a1.clone(), Outcome::Failed(error)));
        });
        // Whether the append landed is unknown after a failure, so the retry starts with a load.
        store.send(execute(&a1, add_pencils()), |a| a.orders.slot_mut(&s).running = running(add_pencils(), 0));
        store.receive_request(EventStoreRequest::load(s.clone()));
        store.receive(
            AppAction::Order(Step::Loaded { stream_id: s.clone(), loaded: loaded(placed.clone(), 1) }),
            |a| {
                let slot = a.orders.slot_mut(&s);
                slot.loaded = Some(loaded(placed.clone(), 1));
                slot.running = running(add_pencils(), 1);
            },
        );
        store.receive_append(&s, ExpectedVersion::Exact(v(1)), [pencils_added()], &metadata());
        let grown = applied(placed, &[pencils_added()]);
        store.receive(
            AppAction::Order(Step::Appended { stream_id: s.clone(), events: vec![pencils_added()], version: v(2) }),
            |a| {
                let slot = a.orders.slot_mut(&s);
                slot.running = None;
                slot.loaded = Some(loaded(grown.clone(), 2));
                let outcome = Outcome::Accepted {
                    order: grown.clone(),
                    version: v(2),
                    events: vec![pencils_added()],
                    snapshot: None,
                };
                a.outcomes.push((a1.clone(), outcome));
            },
        );
        store.finish();
    }
}
