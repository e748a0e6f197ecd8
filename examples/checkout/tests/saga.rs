//! The checkout saga as a reducer, step by step in a `TestStore`: the happy path, each compensation, the
//! payment timeout on the test clock, and redeliveries. Every command the saga issues is an append to its
//! stream, asserted with `receive_append`; `finish` fails on any command, action or timer left unasserted.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests fail loudly on unexpected errors")]

use std::sync::Arc;

use checkout::inventory::StockEvent;
use checkout::order::{Line, OrderEvent};
use checkout::payment::PaymentEvent;
use checkout::saga::{Checkout, CheckoutEvent, CheckoutInput, PAYMENT_TIMEOUT, PAYMENT_TIMER, Step};
use composable_rust::aggregate::{LoadedAggregate, RunningCommand};
use composable_rust::bus::{Delivery, Reactions, Reactor, ReactorAction, deadline_command_id};
use composable_rust::event::CodecId;
use composable_rust::prelude::*;
use composable_rust::{EventId, GlobalPosition, RecordedEvent};
use uuid::Uuid;

type Saga = TestStore<Reactor<Checkout>>;
type Action = ReactorAction<Checkout>;

const ORDER: &str = "o-1";

fn line() -> Line {
    Line { sku: "apple".into(), quantity: 2, amount_cents: 500 }
}

fn saga() -> Saga {
    saga_and_store().0
}

fn saga_and_store() -> (Saga, InMemoryEventStore) {
    let clock = TestClock::new();
    let events = InMemoryEventStore::new();
    let env = AggregateEnvironment::new(Arc::new(clock.clone()));
    let saga = TestStore::builder(Reactor::<Checkout>::default(), Reactions::default(), env)
        .event_store(Arc::new(events.clone()))
        .clock(clock)
        .build();
    (saga, events)
}

fn stream() -> StreamId {
    Checkout::stream_id(ORDER).unwrap()
}

/// `event` as another service committed it: version 1 of `stream`, correlated with the order.
fn committed(stream: &str, event: &impl Event) -> RecordedEvent {
    let new = event.to_new_event(CodecId::Json, Metadata::correlated(Uuid::from_u128(42))).unwrap();
    RecordedEvent {
        id: EventId::generate(),
        stream_id: StreamId::new(stream).unwrap(),
        version: Version::new(1),
        position: GlobalPosition::new(1),
        event_type: new.event_type.as_str().into(),
        codec: new.codec,
        payload: new.payload.into(),
        metadata: new.metadata,
        recorded_at: chrono::Utc::now(),
        tags: Vec::new(),
    }
}

fn placed() -> RecordedEvent {
    committed("order-o-1", &OrderEvent::Placed { order_id: ORDER.into(), line: line() })
}

fn reserved() -> RecordedEvent {
    committed("stock-apple", &StockEvent::Reserved { sku: "apple".into(), order_id: ORDER.into(), quantity: 2 })
}

fn charged() -> RecordedEvent {
    committed("payment-o-1", &PaymentEvent::Charged { order_id: ORDER.into(), amount_cents: 500 })
}

fn checkout(step: Step) -> Checkout {
    Checkout { step, order_id: ORDER.into(), line: Some(line()) }
}

/// What the saga's instance looks like while it runs `input` for `cause`, decided `attempts` times.
fn running(
    input: CheckoutInput,
    metadata: Metadata,
    command_id: Uuid,
    attempts: u32,
) -> Option<RunningCommand<Checkout>> {
    Some(RunningCommand { attempts, ..RunningCommand::new(input, metadata).with_command_id(command_id) })
}

/// Sends `action` (a delivery of `cause` or a deadline) that the saga turns into `input`, and asserts each
/// step: the load when the instance is new, the append of `issued` (the commands) at `before`, and the
/// state `after`. Returns nothing: the delivery is acknowledged by an effect that sends no action.
#[track_caller]
#[allow(
    clippy::too_many_arguments,
    reason = "one saga step: cause, input, metadata, key, commands, states before and after"
)]
fn react(
    saga: &mut Saga,
    action: Action,
    input: CheckoutInput,
    metadata: Metadata,
    command_id: Uuid,
    issued: Vec<CheckoutEvent>,
    before: (Checkout, u64),
    after: Checkout,
) {
    let s = stream();
    let first = before.1 == 0 && saga.state().aggregates.loaded(&s).is_none();
    let delivery = match &action {
        ReactorAction::Delivered(delivery) => Some(delivery.clone()),
        _ => None,
    };
    let (input2, metadata2) = (input.clone(), metadata.clone());
    saga.send(action, move |r| {
        r.unsettled.entry(s.clone()).or_default().push_back(delivery);
        r.aggregates.slot_mut(&s).running = running(input2, metadata2, command_id, u32::from(!first));
    });
    let s = stream();
    if first {
        saga.receive_request(EventStoreRequest::load(s.clone()));
        let fresh = LoadedAggregate { state: Checkout::default(), version: Version::INITIAL, snapshot_version: None };
        let (input3, metadata3) = (input.clone(), metadata.clone());
        saga.receive(Action::Aggregate(AggregateAction::Loaded { stream_id: s.clone(), loaded: fresh }), move |r| {
            let slot = r.aggregates.slot_mut(&s);
            slot.loaded =
                Some(LoadedAggregate { state: Checkout::default(), version: Version::INITIAL, snapshot_version: None });
            slot.running = running(input3, metadata3, command_id, 1);
        });
    }
    let s = stream();
    if !issued.is_empty() {
        saga.receive_append(&s, ExpectedVersion::Exact(Version::new(before.1)), issued.clone(), &metadata);
    }
    let version = Version::new(before.1 + issued.len() as u64);
    let appended = AggregateAction::Appended { stream_id: s.clone(), events: issued, version };
    saga.receive(Action::Aggregate(appended), move |r| {
        let slot = r.aggregates.slot_mut(&s);
        slot.running = None;
        slot.loaded = Some(LoadedAggregate { state: after, version, snapshot_version: None });
        r.unsettled.remove(&s);
    });
}

/// Delivers `cause`, which the saga turns into `input` and answers with `issued`.
#[track_caller]
fn deliver(
    saga: &mut Saga,
    cause: &RecordedEvent,
    input: CheckoutInput,
    issued: Vec<CheckoutEvent>,
    before: (Checkout, u64),
    after: Checkout,
) {
    let action = Action::Delivered(Delivery::unacknowledged(cause.clone()));
    react(saga, action, input, Metadata::caused_by(cause), cause.id.as_uuid(), issued, before, after);
}

fn order_placed() -> CheckoutInput {
    CheckoutInput::OrderPlaced { order_id: ORDER.into(), line: line() }
}

/// Places the order: the saga starts and asks for the stock.
#[track_caller]
fn place_order(saga: &mut Saga) {
    deliver(
        saga,
        &placed(),
        order_placed(),
        vec![
            CheckoutEvent::Started { order_id: ORDER.into(), line: line() },
            CheckoutEvent::StockReservationRequested { order_id: ORDER.into(), sku: "apple".into(), quantity: 2 },
        ],
        (Checkout::default(), 0),
        checkout(Step::Reserving),
    );
}

/// Places the order and reserves its stock: the saga is charging, its payment timer running.
#[track_caller]
fn up_to_charging(saga: &mut Saga) -> RecordedEvent {
    place_order(saga);
    let reserved = reserved();
    deliver(
        saga,
        &reserved,
        CheckoutInput::StockReserved,
        vec![CheckoutEvent::PaymentRequested { order_id: ORDER.into(), amount_cents: 500 }],
        (checkout(Step::Reserving), 2),
        checkout(Step::Charging),
    );
    reserved
}

#[test]
fn a_paid_order_is_confirmed_and_the_payment_timer_is_stopped() {
    let mut saga = saga();
    up_to_charging(&mut saga);
    pay(&mut saga);
    // `finish` fails on a timer still running: the confirmation stopped it.
    saga.finish();
}

#[test]
fn commands_carry_the_triggering_event_as_causation_and_its_correlation_id() {
    let (mut saga, events) = saga_and_store();
    let reserved = up_to_charging(&mut saga);
    saga.skip_in_flight_effects(); // the payment timer
    saga.finish();
    let stored = events.events(&stream());
    let payment_request = stored.last().unwrap();
    assert_eq!(payment_request.event_type, "PaymentRequested.v1");
    assert_eq!(payment_request.metadata.causation_id, Some(reserved.id.as_uuid()));
    assert_eq!(payment_request.metadata.correlation_id, Some(Uuid::from_u128(42)));
    assert_eq!(
        payment_request.id,
        EventId::derived(reserved.id.as_uuid(), 0),
        "the command's id derives from its cause"
    );
}

#[test]
fn a_declined_payment_releases_the_stock_and_cancels_the_order() {
    let mut saga = saga();
    up_to_charging(&mut saga);
    let declined = committed("payment-o-1", &PaymentEvent::Declined { order_id: ORDER.into(), reason: "limit".into() });
    deliver(
        &mut saga,
        &declined,
        CheckoutInput::PaymentDeclined { reason: "limit".into() },
        vec![
            CheckoutEvent::StockReleaseRequested { order_id: ORDER.into(), sku: "apple".into() },
            CheckoutEvent::CancellationRequested { order_id: ORDER.into(), reason: "payment declined: limit".into() },
        ],
        (checkout(Step::Charging), 3),
        checkout(Step::Cancelled),
    );
    saga.finish();
}

#[test]
fn refused_stock_cancels_the_order_and_charges_nothing() {
    let mut saga = saga();
    place_order(&mut saga);
    let refused = committed(
        "stock-apple",
        &StockEvent::ReservationRefused { sku: "apple".into(), order_id: ORDER.into(), reason: "0 left".into() },
    );
    deliver(
        &mut saga,
        &refused,
        CheckoutInput::StockRefused { reason: "0 left".into() },
        vec![CheckoutEvent::CancellationRequested { order_id: ORDER.into(), reason: "out of stock: 0 left".into() }],
        (checkout(Step::Reserving), 2),
        checkout(Step::Cancelled),
    );
    saga.finish();
}

#[test]
fn a_payment_that_does_not_answer_in_time_is_compensated_and_a_late_charge_is_refunded() {
    let mut saga = saga();
    let reserved = up_to_charging(&mut saga);
    saga.advance(PAYMENT_TIMEOUT - std::time::Duration::from_secs(1));
    // Nothing yet: one second before the deadline.
    let command_id = deadline_command_id(&stream(), PAYMENT_TIMER, Version::new(3));
    let deadline = Action::Deadline {
        stream_id: stream(),
        name: PAYMENT_TIMER,
        command_id,
        command: CheckoutInput::PaymentTimedOut,
        metadata: Metadata::caused_by(&reserved),
    };
    saga.advance(std::time::Duration::from_secs(1));
    // The deadline arrives as an action; the saga reacts to it like to a delivery, without one to settle.
    let s = stream();
    saga.receive(deadline.clone(), |r| {
        r.unsettled.entry(s.clone()).or_default().push_back(None);
        r.aggregates.slot_mut(&s).running =
            running(CheckoutInput::PaymentTimedOut, Metadata::caused_by(&reserved), command_id, 1);
    });
    let compensation = vec![
        CheckoutEvent::StockReleaseRequested { order_id: ORDER.into(), sku: "apple".into() },
        CheckoutEvent::CancellationRequested { order_id: ORDER.into(), reason: "payment timed out".into() },
    ];
    saga.receive_append(
        &s,
        ExpectedVersion::Exact(Version::new(3)),
        compensation.clone(),
        &Metadata::caused_by(&reserved),
    );
    saga.receive(
        Action::Aggregate(AggregateAction::Appended {
            stream_id: s.clone(),
            events: compensation,
            version: Version::new(5),
        }),
        |r| {
            let slot = r.aggregates.slot_mut(&s);
            slot.running = None;
            slot.loaded = Some(LoadedAggregate {
                state: checkout(Step::Cancelled),
                version: Version::new(5),
                snapshot_version: None,
            });
            r.unsettled.remove(&s);
        },
    );

    // The payment service answers after all: the money goes back.
    deliver(
        &mut saga,
        &charged(),
        CheckoutInput::PaymentCharged,
        vec![CheckoutEvent::RefundRequested { order_id: ORDER.into() }],
        (checkout(Step::Cancelled), 5),
        checkout(Step::Cancelled),
    );
    saga.finish();
}

#[test]
fn a_redelivered_event_issues_no_command_again() {
    let (mut saga, events) = saga_and_store();
    let reserved = up_to_charging(&mut saga);
    // The bus delivers StockReserved again (a lost ack): the saga is past that step and asks nothing.
    deliver(
        &mut saga,
        &reserved,
        CheckoutInput::StockReserved,
        Vec::new(),
        (checkout(Step::Charging), 3),
        checkout(Step::Charging),
    );
    let placed_again = placed();
    deliver(
        &mut saga,
        &placed_again,
        order_placed(),
        Vec::new(),
        (checkout(Step::Charging), 3),
        checkout(Step::Charging),
    );
    saga.skip_in_flight_effects(); // the payment timer
    saga.finish();
    assert_eq!(events.events(&stream()).len(), 3, "Started, StockReservationRequested, PaymentRequested: each once");
}

#[test]
fn a_restarted_saga_re_arms_its_running_deadline_for_the_time_left() {
    let (mut saga, events) = saga_and_store();
    up_to_charging(&mut saga);
    // The process dies with the payment timer running.
    saga.skip_in_flight_effects();
    saga.finish();
    let history = events.events(&stream());
    let payment_request = history.last().cloned().unwrap();
    assert_eq!(payment_request.event_type, "PaymentRequested.v1");

    // It comes back ten seconds before the deadline.
    let due = payment_request.recorded_at + chrono::Duration::from_std(PAYMENT_TIMEOUT).unwrap();
    let mut restarted = restarted(&events, due - chrono::Duration::seconds(10));
    restarted.send(Action::Resume, |_| {});
    restarted.receive_request(resume_read());
    // One page: the category holds this instance's three events, and the last one started the timer.
    restarted.receive(Action::Resuming { pending: std::collections::BTreeMap::new(), page: Ok(history) }, |_| {});
    restarted.advance(std::time::Duration::from_secs(9));
    let command_id = deadline_command_id(&stream(), PAYMENT_TIMER, Version::new(3));
    let metadata = payment_request.metadata.clone();
    let deadline = Action::Deadline {
        stream_id: stream(),
        name: PAYMENT_TIMER,
        command_id,
        command: CheckoutInput::PaymentTimedOut,
        metadata: metadata.clone(),
    };
    restarted.advance(std::time::Duration::from_secs(1));
    let s = stream();
    let m = metadata.clone();
    restarted.receive(deadline, |r| {
        r.unsettled.entry(s.clone()).or_default().push_back(None);
        r.aggregates.slot_mut(&s).running = running(CheckoutInput::PaymentTimedOut, m, command_id, 0);
    });
    // The instance loads from its stream (it was charging), then compensates as if the process had not died.
    restarted.receive_request(EventStoreRequest::load(s.clone()));
    let charging =
        LoadedAggregate { state: checkout(Step::Charging), version: Version::new(3), snapshot_version: None };
    let (s2, m2) = (s.clone(), metadata.clone());
    restarted.receive(
        Action::Aggregate(AggregateAction::Loaded { stream_id: s.clone(), loaded: charging.clone() }),
        move |r| {
            let slot = r.aggregates.slot_mut(&s2);
            slot.loaded = Some(charging);
            slot.running = running(CheckoutInput::PaymentTimedOut, m2, command_id, 1);
        },
    );
    let compensation = vec![
        CheckoutEvent::StockReleaseRequested { order_id: ORDER.into(), sku: "apple".into() },
        CheckoutEvent::CancellationRequested { order_id: ORDER.into(), reason: "payment timed out".into() },
    ];
    restarted.receive_append(&s, ExpectedVersion::Exact(Version::new(3)), compensation.clone(), &metadata);
    let s3 = s.clone();
    restarted.receive(
        Action::Aggregate(AggregateAction::Appended {
            stream_id: s.clone(),
            events: compensation,
            version: Version::new(5),
        }),
        move |r| {
            let slot = r.aggregates.slot_mut(&s3);
            slot.running = None;
            slot.loaded = Some(LoadedAggregate {
                state: checkout(Step::Cancelled),
                version: Version::new(5),
                snapshot_version: None,
            });
            r.unsettled.remove(&s3);
        },
    );
    restarted.finish();
}

#[test]
fn a_restarted_saga_does_not_re_arm_a_stopped_deadline() {
    let (mut saga, events) = saga_and_store();
    up_to_charging(&mut saga);
    pay(&mut saga);
    saga.finish();
    let history = events.events(&stream());
    let mut restarted = restarted(&events, history.last().unwrap().recorded_at);
    restarted.send(Action::Resume, |_| {});
    restarted.receive_request(resume_read());
    restarted.receive(Action::Resuming { pending: std::collections::BTreeMap::new(), page: Ok(history) }, |_| {});
    // `finish` fails on a timer left running: the confirmation stopped it, so none was armed.
    restarted.advance(PAYMENT_TIMEOUT * 2);
    restarted.finish();
}

/// The read a resuming saga makes: its category from the start, one page.
fn resume_read() -> EventStoreRequest {
    EventStoreRequest::ReadAll {
        after: GlobalPosition::START,
        filter: composable_rust::event_store::LogFilter::all().category("checkout"),
        limit: composable_rust::bus::RESUME_PAGE,
    }
}

/// The payment service charges the order: the saga confirms it and stops its payment timer.
#[track_caller]
fn pay(saga: &mut Saga) {
    deliver(
        saga,
        &charged(),
        CheckoutInput::PaymentCharged,
        vec![CheckoutEvent::ConfirmationRequested { order_id: ORDER.into() }],
        (checkout(Step::Charging), 3),
        checkout(Step::Confirmed),
    );
}

/// A saga started again on the events of an earlier one, its clock at `now`.
fn restarted(events: &InMemoryEventStore, now: chrono::DateTime<chrono::Utc>) -> Saga {
    let clock = TestClock::starting_at(now);
    let env = AggregateEnvironment::new(Arc::new(clock.clone()));
    TestStore::builder(Reactor::<Checkout>::default(), Reactions::default(), env)
        .event_store(Arc::new(events.clone()))
        .clock(clock)
        .build()
}
