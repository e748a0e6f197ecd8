//! [`Reactor`]: an aggregate driven by delivered events; a saga (process manager) is one of these.
//!
//! Each delivery becomes at most one command ([`Reacts::react`]), applied once whatever the number of
//! deliveries (its idempotency key is the event id), and the delivery is acknowledged when the command's
//! outcome is stored. A saga's commands to other aggregates are the events it records (carried to them by
//! the outbox and the bus); its timeouts are [`Timer`]s on the store's clock.

use std::collections::{BTreeMap, VecDeque};
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use composable_rust_core::{
    Aggregate, Effect, EffectId, EventStoreOperation, GlobalPosition, LogFilter, Metadata, RecordedEvent, Reducer,
    StreamId, Version,
};
use composable_rust_runtime::{AggregateAction, AggregateEnvironment, Aggregates, EventSourced};
use serde::Serialize;
use serde::de::DeserializeOwned;
use uuid::Uuid;

use crate::bus::{ConsumerConfig, EventBus};
use crate::delivery::Delivery;
use crate::effect::deliveries;

/// How long a refused or failed delivery waits before the bus hands it out again.
const REDELIVERY_DELAY: Duration = Duration::from_secs(1);

/// Events of the category read per page while resuming deadlines ([`ReactorAction::Resume`]).
pub const RESUME_PAGE: usize = 1000;

/// An [`Aggregate`] that reacts to events: which command an event means to it, and which deadlines its
/// own events start and stop.
///
/// A saga is an aggregate whose stream is one run of the business process (`checkout-<order id>`): its
/// state is the progress, its events record each step it took, including the commands it issues to other
/// aggregates (`StockReservationRequested`), and `decide` is its reaction.
pub trait Reacts: Aggregate {
    /// The instance (stream) that `event` concerns and the command it means to it; `None` when the event
    /// does not concern this aggregate (it is acknowledged and skipped).
    fn react(event: &RecordedEvent) -> Option<(StreamId, Self::Command)>;

    /// A deadline that the recorded `event` starts or stops. None by default.
    fn timer(event: &Self::Event) -> Option<Timer<Self::Command>> {
        let _ = event;
        None
    }
}

/// A deadline of a [`Reacts`] aggregate: when it passes, `command` is sent to the instance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Timer<C> {
    /// Sends `command` after `after` on the store's clock, unless stopped first; restarts a running
    /// timer of the same name.
    Start {
        /// The timer's name within the instance.
        name: &'static str,
        /// How long until it fires.
        after: Duration,
        /// What it sends.
        command: C,
    },
    /// Stops the timer `name` of the instance.
    Stop {
        /// The timer's name within the instance.
        name: &'static str,
    },
}

/// Runs a [`Reacts`] aggregate as a reducer: deliveries in, commands applied once, deliveries settled.
///
/// ```text
/// Delivered(d) ──react──► Aggregate(command_once(stream, d.event.id, command, caused_by(d.event)))
///                           │  (EventSourced: load, decide, append; see its documentation)
///                           ▼
///        Appended ──► ack d; start/stop the timers of the new events ── Deadline ──► command_once(..)
///        Rejected | AlreadyApplied ──► ack d (nothing to do, or done before)
///        Failed ──► nak d (delivered again after a second)
/// ```
///
/// Commands of one instance run one at a time in delivery order, so the n-th outcome of a stream settles
/// the n-th delivery sent to it.
///
/// With a source ([`Reactor::listening`]), [`ReactorAction::Start`] joins the bus through the long-running
/// [`deliveries`] effect and [`ReactorAction::Stop`] cancels it; without one, a test sends
/// [`ReactorAction::Delivered`] itself. A process sends [`ReactorAction::Resume`] once at start-up too, so
/// that the deadlines running when it last stopped fire.
pub struct Reactor<A: Aggregate> {
    inner: EventSourced<A>,
    source: Option<(Arc<dyn EventBus>, ConsumerConfig)>,
}

impl<A: Aggregate> Reactor<A> {
    /// The reducer over `inner` (its repository configuration: codec, snapshots, retries).
    #[must_use]
    pub fn new(inner: EventSourced<A>) -> Self {
        Self { inner, source: None }
    }

    /// Reads its deliveries from `bus` as the consumer group `consumer` once started
    /// ([`ReactorAction::Start`]).
    #[must_use]
    pub fn listening(mut self, bus: Arc<dyn EventBus>, consumer: ConsumerConfig) -> Self {
        self.source = Some((bus, consumer));
        self
    }

    /// The id under which the deliveries effect runs.
    #[must_use]
    pub fn listening_id() -> EffectId {
        EffectId::new(format!("reactor/{}/deliveries", A::CATEGORY))
    }

    /// The [`EventSourced`] reducer inside, e.g. to build the append requests a test expects.
    #[must_use]
    pub fn aggregate(&self) -> &EventSourced<A> {
        &self.inner
    }
}

impl<A: Aggregate> Default for Reactor<A> {
    fn default() -> Self {
        Self::new(EventSourced::new())
    }
}

impl<A: Aggregate> fmt::Debug for Reactor<A> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Reactor")
            .field("inner", &self.inner)
            .field("source", &self.source.as_ref().map(|(bus, consumer)| (bus, &consumer.group)))
            .finish()
    }
}

/// The id under which the timer `name` of `stream_id` runs (cancel it with [`Effect::cancel`]).
#[must_use]
pub fn timer_id(stream_id: &StreamId, name: &str) -> EffectId {
    EffectId::new(format!("timer/{stream_id}/{name}"))
}

/// The idempotency key of the deadline `name` started by the event at `version` of `stream_id`: a
/// deadline that fires twice (two processes, a restart) is applied once.
#[must_use]
pub fn deadline_command_id(stream_id: &StreamId, name: &str, version: Version) -> Uuid {
    Uuid::new_v5(&Uuid::NAMESPACE_OID, format!("deadline/{stream_id}/{name}/{version}").as_bytes())
}

/// The state of a [`Reactor`]: the instances, and the deliveries whose commands have not finished.
pub struct Reactions<A: Aggregate> {
    /// The loaded instances (see [`Aggregates`]).
    pub aggregates: Aggregates<A>,
    /// Per instance, in order, the delivery of each command sent to it and not finished (`None` for a
    /// deadline's command, which has no delivery).
    pub unsettled: BTreeMap<StreamId, VecDeque<Option<Delivery>>>,
}

impl<A: Aggregate> Reactions<A> {
    /// Whether a command is running or waiting on any instance.
    #[must_use]
    pub fn is_busy(&self) -> bool {
        self.unsettled.values().any(|queue| !queue.is_empty())
    }
}

impl<A: Aggregate> Default for Reactions<A> {
    fn default() -> Self {
        Self { aggregates: Aggregates::default(), unsettled: BTreeMap::new() }
    }
}

impl<A: Aggregate + Clone> Clone for Reactions<A>
where
    A::Command: Clone,
{
    fn clone(&self) -> Self {
        Self { aggregates: self.aggregates.clone(), unsettled: self.unsettled.clone() }
    }
}

impl<A: Aggregate + PartialEq> PartialEq for Reactions<A>
where
    A::Command: PartialEq,
{
    fn eq(&self, other: &Self) -> bool {
        self.aggregates == other.aggregates && self.unsettled == other.unsettled
    }
}

impl<A: Aggregate + fmt::Debug> fmt::Debug for Reactions<A>
where
    A::Command: fmt::Debug,
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Reactions").field("aggregates", &self.aggregates).field("unsettled", &self.unsettled).finish()
    }
}

/// The actions of a [`Reactor`].
pub enum ReactorAction<A: Aggregate> {
    /// Join the bus (when the reactor has a source, see [`Reactor::listening`]).
    Start,
    /// Leave the bus; deliveries in hand still finish.
    Stop,
    /// An event from the bus (or a subscription) to react to.
    Delivered(Delivery),
    /// A [`Timer`] fired: `command` goes to the instance, at most once for `command_id`.
    Deadline {
        /// The instance.
        stream_id: StreamId,
        /// The timer's name.
        name: &'static str,
        /// The idempotency key ([`deadline_command_id`]).
        command_id: Uuid,
        /// What the timer sends.
        command: A::Command,
        /// The metadata of the command that started the timer (its correlation id is carried on).
        metadata: Metadata,
    },
    /// A step of a command on an instance (see [`AggregateAction`]).
    Aggregate(AggregateAction<A>),
    /// Re-arms the deadlines that were running when the process stopped: reads the category's events from
    /// the start, finds each instance's timers started and not stopped, and arms each for the time left
    /// until it is due (`recorded_at` of the event that started it plus its duration, on the store's clock;
    /// at once if that has passed). Send it once at start-up, with [`ReactorAction::Start`]. A deadline that
    /// had fired before is harmless: its command is applied at most once ([`deadline_command_id`]).
    Resume,
    /// A page of the category read while resuming: the deadlines found running so far, and the page.
    Resuming {
        /// Deadlines started and not stopped in the pages read before, by instance and timer name.
        pending: BTreeMap<(StreamId, &'static str), PendingDeadline<A::Command>>,
        /// The events of this page, or why the read failed (resuming starts again a second later).
        page: Result<Vec<RecordedEvent>, String>,
    },
}

/// A deadline found running while resuming (see [`ReactorAction::Resume`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingDeadline<C> {
    /// When it is due: the starting event's `recorded_at` plus the timer's duration.
    pub due: DateTime<Utc>,
    /// Its idempotency key ([`deadline_command_id`] of the starting event's version).
    pub command_id: Uuid,
    /// What it sends.
    pub command: C,
    /// The metadata of the event that started it (its correlation id is carried on).
    pub metadata: Metadata,
}

impl<A> Reducer for Reactor<A>
where
    A: Reacts + Clone + Serialize + DeserializeOwned,
    A::Command: Clone,
    A::Event: Clone,
{
    type State = Reactions<A>;
    type Action = ReactorAction<A>;
    type Environment = AggregateEnvironment;

    fn reduce(
        &self,
        state: &mut Reactions<A>,
        action: ReactorAction<A>,
        env: &AggregateEnvironment,
    ) -> Effect<Self::Action> {
        match action {
            ReactorAction::Start => match &self.source {
                Some((bus, consumer)) => deliveries(Arc::clone(bus), consumer.clone(), ReactorAction::Delivered)
                    .cancellable(Self::listening_id()),
                None => {
                    tracing::warn!(
                        category = A::CATEGORY,
                        "a reactor without a source was started; it will only handle deliveries sent to it"
                    );
                    Effect::None
                }
            },
            ReactorAction::Stop => Effect::cancel(Self::listening_id()),
            ReactorAction::Delivered(delivery) => {
                let Some((stream_id, command)) = A::react(&delivery.event) else {
                    return settle(&delivery, Settle::Ack);
                };
                let metadata = Metadata::caused_by(&delivery.event);
                let command_id = delivery.event.id.as_uuid();
                state.unsettled.entry(stream_id.clone()).or_default().push_back(Some(delivery));
                self.forward(state, AggregateAction::command_once(stream_id, command_id, command, metadata), env)
            }
            ReactorAction::Deadline { stream_id, command_id, command, metadata, .. } => {
                state.unsettled.entry(stream_id.clone()).or_default().push_back(None);
                self.forward(state, AggregateAction::command_once(stream_id, command_id, command, metadata), env)
            }
            ReactorAction::Resume => Self::read_page(GlobalPosition::START, BTreeMap::new()),
            ReactorAction::Resuming { mut pending, page } => {
                let events = match page {
                    Ok(events) => events,
                    Err(error) => {
                        tracing::warn!(category = A::CATEGORY, %error, "could not read the deadlines to resume; retrying");
                        return Effect::delay(REDELIVERY_DELAY, ReactorAction::Resume);
                    }
                };
                for recorded in &events {
                    self.collect_deadline(&mut pending, recorded);
                }
                match events.last() {
                    Some(last) if events.len() == RESUME_PAGE => Self::read_page(last.position, pending),
                    _ => Effect::merge(pending.into_iter().map(|((stream_id, name), deadline)| {
                        let left = (deadline.due - env.clock.now()).to_std().unwrap_or(Duration::ZERO);
                        let fire = ReactorAction::Deadline {
                            stream_id: stream_id.clone(),
                            name,
                            command_id: deadline.command_id,
                            command: deadline.command,
                            metadata: deadline.metadata,
                        };
                        Effect::delay(left, fire).cancel_in_flight(timer_id(&stream_id, name))
                    })),
                }
            }
            ReactorAction::Aggregate(action) => {
                if !action.is_final() {
                    return self.forward(state, action, env);
                }
                let stream_id = action.stream_id().clone();
                let timers = match &action {
                    AggregateAction::Appended { events, version, .. } => {
                        let metadata = state
                            .aggregates
                            .slot(&stream_id)
                            .and_then(|slot| slot.running.as_ref())
                            .map(|running| running.metadata.clone())
                            .unwrap_or_default();
                        timers::<A>(&stream_id, events, *version, &metadata)
                    }
                    _ => Effect::None,
                };
                let how = if matches!(action, AggregateAction::Failed { .. }) { Settle::Nak } else { Settle::Ack };
                let queue = state.unsettled.entry(stream_id.clone()).or_default();
                let delivery = queue.pop_front().flatten();
                if queue.is_empty() {
                    state.unsettled.remove(&stream_id);
                }
                let settled = delivery.map_or(Effect::None, |delivery| settle(&delivery, how));
                Effect::merge([self.forward(state, action, env), timers, settled])
            }
        }
    }
}

impl<A> Reactor<A>
where
    A: Reacts + Clone + Serialize + DeserializeOwned,
    A::Command: Clone,
    A::Event: Clone,
{
    /// Reads the page of the category after `after` while resuming.
    fn read_page(
        after: GlobalPosition,
        pending: BTreeMap<(StreamId, &'static str), PendingDeadline<A::Command>>,
    ) -> Effect<ReactorAction<A>> {
        let filter = LogFilter::all().category(A::CATEGORY);
        Effect::event_store(EventStoreOperation::read_all(after, filter, RESUME_PAGE, move |result| {
            ReactorAction::Resuming { pending, page: result.map_err(|e| e.to_string()) }
        }))
    }

    /// Records the deadline `recorded` starts, or forgets the one it stops.
    fn collect_deadline(
        &self,
        pending: &mut BTreeMap<(StreamId, &'static str), PendingDeadline<A::Command>>,
        recorded: &RecordedEvent,
    ) {
        let event = match self.inner.decoder().decode(recorded) {
            Ok(Some(event)) => event,
            Ok(None) => return,
            Err(error) => {
                // The instance cannot load either; its commands fail and say why. Nothing to re-arm.
                tracing::warn!(event = %recorded.describe(), %error, "skipped while resuming deadlines");
                return;
            }
        };
        match A::timer(&event) {
            Some(Timer::Start { name, after, command }) => {
                let due = chrono::Duration::from_std(after).map_or(DateTime::<Utc>::MAX_UTC, |after| {
                    recorded.recorded_at.checked_add_signed(after).unwrap_or(DateTime::<Utc>::MAX_UTC)
                });
                let deadline = PendingDeadline {
                    due,
                    command_id: deadline_command_id(&recorded.stream_id, name, recorded.version),
                    command,
                    metadata: recorded.metadata.clone(),
                };
                pending.insert((recorded.stream_id.clone(), name), deadline);
            }
            Some(Timer::Stop { name }) => {
                pending.remove(&(recorded.stream_id.clone(), name));
            }
            None => {}
        }
    }

    fn forward(
        &self,
        state: &mut Reactions<A>,
        action: AggregateAction<A>,
        env: &AggregateEnvironment,
    ) -> Effect<ReactorAction<A>> {
        self.inner.reduce(&mut state.aggregates, action, env).map(ReactorAction::Aggregate)
    }
}

/// The timer effects of `events`, appended so that the last one is at `version`.
fn timers<A: Reacts>(
    stream_id: &StreamId,
    events: &[A::Event],
    version: Version,
    metadata: &Metadata,
) -> Effect<ReactorAction<A>>
where
    A::Command: Send,
{
    let first = version.get().saturating_sub(events.len() as u64);
    Effect::merge(events.iter().enumerate().filter_map(|(i, event)| {
        let timer = A::timer(event)?;
        Some(match timer {
            Timer::Start { name, after, command } => {
                let at = Version::new(first + i as u64 + 1);
                let deadline = ReactorAction::Deadline {
                    stream_id: stream_id.clone(),
                    name,
                    command_id: deadline_command_id(stream_id, name, at),
                    command,
                    metadata: metadata.clone(),
                };
                Effect::delay(after, deadline).cancel_in_flight(timer_id(stream_id, name))
            }
            Timer::Stop { name } => Effect::cancel(timer_id(stream_id, name)),
        })
    }))
}

#[derive(Clone, Copy)]
enum Settle {
    Ack,
    Nak,
}

fn settle<A: Send + 'static>(delivery: &Delivery, how: Settle) -> Effect<A> {
    let ack = delivery.ack.clone();
    let event_id = delivery.event.id;
    Effect::run(move |_| async move {
        let settled = match how {
            Settle::Ack => ack.ack().await,
            Settle::Nak => ack.nak(REDELIVERY_DELAY).await,
        };
        if let Err(error) = settled {
            tracing::warn!(%event_id, %error, "could not settle a delivery; the bus will deliver it again");
        }
    })
}

impl<A: Aggregate + Clone> Clone for ReactorAction<A>
where
    A::Command: Clone,
    A::Event: Clone,
    A::Error: Clone,
{
    fn clone(&self) -> Self {
        match self {
            Self::Start => Self::Start,
            Self::Stop => Self::Stop,
            Self::Delivered(delivery) => Self::Delivered(delivery.clone()),
            Self::Deadline { stream_id, name, command_id, command, metadata } => Self::Deadline {
                stream_id: stream_id.clone(),
                name,
                command_id: *command_id,
                command: command.clone(),
                metadata: metadata.clone(),
            },
            Self::Aggregate(action) => Self::Aggregate(action.clone()),
            Self::Resume => Self::Resume,
            Self::Resuming { pending, page } => Self::Resuming { pending: pending.clone(), page: page.clone() },
        }
    }
}

impl<A: Aggregate + PartialEq> PartialEq for ReactorAction<A>
where
    A::Command: PartialEq,
    A::Event: PartialEq,
    A::Error: PartialEq,
{
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (Self::Start, Self::Start) | (Self::Stop, Self::Stop) => true,
            (Self::Delivered(a), Self::Delivered(b)) => a == b,
            (
                Self::Deadline { stream_id: s1, name: n1, command_id: i1, command: c1, metadata: m1 },
                Self::Deadline { stream_id: s2, name: n2, command_id: i2, command: c2, metadata: m2 },
            ) => s1 == s2 && n1 == n2 && i1 == i2 && c1 == c2 && m1 == m2,
            (Self::Aggregate(a), Self::Aggregate(b)) => a == b,
            (Self::Resume, Self::Resume) => true,
            (Self::Resuming { pending: p1, page: e1 }, Self::Resuming { pending: p2, page: e2 }) => {
                p1 == p2 && e1 == e2
            }
            _ => false,
        }
    }
}

impl<A: Aggregate + fmt::Debug> fmt::Debug for ReactorAction<A>
where
    A::Command: fmt::Debug,
    A::Event: fmt::Debug,
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Start => f.write_str("Start"),
            Self::Stop => f.write_str("Stop"),
            Self::Delivered(delivery) => f.debug_tuple("Delivered").field(delivery).finish(),
            Self::Deadline { stream_id, name, command_id, command, metadata } => f
                .debug_struct("Deadline")
                .field("stream_id", stream_id)
                .field("name", name)
                .field("command_id", command_id)
                .field("command", command)
                .field("metadata", metadata)
                .finish(),
            Self::Aggregate(action) => f.debug_tuple("Aggregate").field(action).finish(),
            Self::Resume => f.write_str("Resume"),
            Self::Resuming { pending, page } => {
                f.debug_struct("Resuming").field("pending", pending).field("page", page).finish()
            }
        }
    }
}
