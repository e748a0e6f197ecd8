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

use composable_rust_core::{Aggregate, Effect, EffectId, Metadata, RecordedEvent, Reducer, StreamId, Version};
use composable_rust_runtime::{AggregateAction, AggregateEnvironment, Aggregates, EventSourced};
use serde::Serialize;
use serde::de::DeserializeOwned;
use uuid::Uuid;

use crate::bus::{ConsumerConfig, EventBus};
use crate::delivery::Delivery;
use crate::effect::deliveries;

/// How long a refused or failed delivery waits before the bus hands it out again.
const REDELIVERY_DELAY: Duration = Duration::from_secs(1);

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
/// [`ReactorAction::Delivered`] itself.
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
        }
    }
}
