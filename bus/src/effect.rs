//! Long-running effects that turn the bus, or a subscription to the event store, into actions: what a
//! TCA user knows as `Effect.run` over an async sequence, cancelled with `.cancellable(id:)`.

use std::sync::Arc;
use std::time::Duration;

use composable_rust_core::{ActionSink, BoxError, Effect, EventStore, LogFilter, RecordedEvent, async_trait};
use composable_rust_runtime::{EventHandler, Subscription};
use futures::StreamExt;
use tokio::sync::oneshot;

use crate::bus::{ConsumerConfig, EventBus};
use crate::delivery::{Ack, Acknowledge, Delivery};
use crate::error::BusError;

/// An effect that joins the consumer group `config` on `bus` and sends `to_action(delivery)` for every
/// delivery, until it is cancelled. Make it cancellable (`.cancellable(id)`) and cancel it to leave.
///
/// The reducer acknowledges each delivery ([`Delivery::ack`]) once it has stored what the event caused;
/// unacknowledged deliveries come again after the group's ack wait, and at most
/// [`ConsumerConfig::max_in_flight`] are handed out at a time, which is the backpressure between the bus
/// and the store. A lost connection or a refused consumer is logged and retried after a pause that
/// doubles from 100 ms to 5 s.
///
/// ```
/// use composable_rust_bus::{ConsumerConfig, Delivery, InMemoryBus, deliveries};
/// use composable_rust_core::{Effect, EffectId};
///
/// #[derive(Debug, Clone, PartialEq)]
/// enum Action { Start, Stop, Delivered(Delivery) }
///
/// fn reduce(action: Action, bus: &InMemoryBus) -> Effect<Action> {
///     let id = EffectId::new("payments");
///     match action {
///         Action::Start => deliveries(bus.clone(), ConsumerConfig::group("payments").category("order"), Action::Delivered)
///             .cancellable(id),
///         Action::Stop => Effect::cancel(id),
///         Action::Delivered(_delivery) => Effect::None, // handle, then acknowledge
///     }
/// }
/// # let _ = reduce(Action::Stop, &InMemoryBus::new());
/// ```
pub fn deliveries<A, B>(
    bus: B,
    config: ConsumerConfig,
    to_action: impl Fn(Delivery) -> A + Send + Sync + 'static,
) -> Effect<A>
where
    A: Send + 'static,
    B: EventBus,
{
    Effect::run(move |sink: ActionSink<A>| async move {
        let mut pause = RetryPause::default();
        loop {
            match bus.consume(&config).await {
                Ok(mut stream) => {
                    while let Some(item) = stream.next().await {
                        match item {
                            Ok(delivery) => {
                                pause.reset();
                                sink.send(to_action(delivery));
                            }
                            Err(error @ BusError::Malformed { .. }) => {
                                tracing::error!(group = %config.group, %error, "skipped a message that is not an event");
                            }
                            Err(error) => {
                                tracing::warn!(group = %config.group, %error, "the bus connection failed; reading on");
                            }
                        }
                    }
                    tracing::warn!(group = %config.group, "the bus ended the consumer; joining again");
                }
                Err(error) => {
                    tracing::warn!(group = %config.group, %error, source = ?std::error::Error::source(&error), "could not join the consumer group; retrying");
                }
            }
            tokio::time::sleep(pause.next()).await;
        }
    })
}

/// An effect that runs a subscription named `name` on `store` (events matching `filter`, from its
/// checkpoint) and sends `to_action(delivery)` for each event, one at a time: the next event is read only
/// when the reducer has acknowledged this one, and the checkpoint moves only then. A refused delivery
/// ([`Ack::nak`]) is sent again after its delay. Cancel it to stop the subscription.
///
/// For a process that reacts to its own store's events without a bus (one process); across processes use
/// [`deliveries`].
pub fn subscription_deliveries<A>(
    store: Arc<dyn EventStore>,
    name: impl Into<String>,
    filter: LogFilter,
    to_action: impl Fn(Delivery) -> A + Send + Sync + 'static,
) -> Effect<A>
where
    A: Send + 'static,
{
    let name = name.into();
    Effect::try_run(move |sink: ActionSink<A>| async move {
        let handler = Handover { sink, to_action: Box::new(to_action), sequence: 0 };
        let handle = Subscription::new(store, name, handler).filter(filter).spawn();
        // Dropping the handle (the effect cancelled) stops the subscription.
        handle.join().await.map(|_| ()).map_err(BoxError::from)
    })
}

/// Hands each event of a subscription to the store and waits for its acknowledgement.
struct Handover<A> {
    sink: ActionSink<A>,
    to_action: Box<dyn Fn(Delivery) -> A + Send + Sync>,
    sequence: u64,
}

#[async_trait]
impl<A: Send + 'static> EventHandler for Handover<A> {
    async fn handle(&mut self, event: &RecordedEvent) -> Result<(), BoxError> {
        self.sequence += 1;
        let mut attempt = 1;
        loop {
            let (settled, outcome) = oneshot::channel();
            let ack = Ack::new(OneShotAck(std::sync::Mutex::new(Some(settled))));
            let delivery = Delivery { event: Arc::new(event.clone()), sequence: self.sequence, attempt, ack };
            self.sink.send((self.to_action)(delivery));
            match outcome.await {
                Ok(Settled::Ack) => return Ok(()),
                Ok(Settled::Nak(delay)) => tokio::time::sleep(delay).await,
                Err(_) => {
                    return Err(
                        format!("the store dropped the delivery of event {} unsettled; stopping", event.id).into()
                    );
                }
            }
            attempt += 1;
        }
    }
}

enum Settled {
    Ack,
    Nak(Duration),
}

struct OneShotAck(std::sync::Mutex<Option<oneshot::Sender<Settled>>>);

impl OneShotAck {
    fn settle(&self, settled: Settled) {
        let sender = self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner).take();
        if let Some(sender) = sender {
            let _ = sender.send(settled);
        }
    }
}

#[async_trait]
impl Acknowledge for OneShotAck {
    async fn ack(&self) -> Result<(), BusError> {
        self.settle(Settled::Ack);
        Ok(())
    }

    async fn nak(&self, delay: Duration) -> Result<(), BusError> {
        self.settle(Settled::Nak(delay));
        Ok(())
    }
}

/// Waits between reconnection attempts: 100 ms, doubling to 5 s, back to 100 ms after a success.
#[derive(Debug)]
pub(crate) struct RetryPause(Duration);

impl Default for RetryPause {
    fn default() -> Self {
        Self(Duration::from_millis(100))
    }
}

impl RetryPause {
    pub(crate) fn reset(&mut self) {
        *self = Self::default();
    }

    pub(crate) fn next(&mut self) -> Duration {
        let now = self.0;
        self.0 = (self.0 * 2).min(Duration::from_secs(5));
        now
    }
}
