//! [`InMemoryBus`]: the [`EventBus`] in process memory, for tests and single-process development.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};
use std::time::Duration;

use chrono::{DateTime, Utc};
use composable_rust_core::{EventId, RecordedEvent, async_trait};
use futures::StreamExt;
use tokio::sync::watch;
use tokio::time::Instant;

use crate::bus::{ConsumerConfig, Deliveries, EventBus, PublishReport, StartAt};
use crate::delivery::{Ack, Acknowledge, Delivery};
use crate::error::BusError;

/// The [`EventBus`] in memory, with JetStream's semantics: de-duplication by event id (forever, not
/// within a window), durable groups whose consumers share the events, redelivery of what is not
/// acknowledged within the ack wait or is refused, and at most `max_in_flight` unacknowledged
/// deliveries per group. Clones share the bus.
#[derive(Clone, Default)]
pub struct InMemoryBus {
    shared: Arc<Shared>,
}

#[derive(Default)]
struct Shared {
    state: Mutex<State>,
    changed: watch::Sender<u64>,
}

#[derive(Default)]
struct State {
    log: Vec<(RecordedEvent, DateTime<Utc>)>,
    ids: HashSet<EventId>,
    groups: HashMap<String, Group>,
}

struct Group {
    config: ConsumerConfig,
    /// Index in the log of the next event never delivered.
    next: usize,
    /// Delivered, not acknowledged: sequence -> (redeliver after, attempts so far).
    in_flight: BTreeMap<u64, (Instant, u64)>,
}

impl InMemoryBus {
    /// An empty bus.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Every event on the bus, in bus order.
    #[must_use]
    pub fn events(&self) -> Vec<RecordedEvent> {
        self.shared.lock().log.iter().map(|(event, _)| event.clone()).collect()
    }

    /// How many deliveries of `group` wait for their acknowledgement.
    #[must_use]
    pub fn in_flight(&self, group: &str) -> usize {
        self.shared.lock().groups.get(group).map_or(0, |g| g.in_flight.len())
    }
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // The state stays consistent at every await-free step, so a panicking holder leaves it usable.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn wake(&self) {
        self.changed.send_modify(|n| *n = n.wrapping_add(1));
    }
}

impl fmt::Debug for InMemoryBus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = self.shared.lock();
        f.debug_struct("InMemoryBus").field("events", &state.log.len()).field("groups", &state.groups.len()).finish()
    }
}

/// What a group's consumer should do next.
enum Next {
    Deliver(Delivery),
    WaitUntil(Option<Instant>),
}

impl State {
    fn next_for(&mut self, name: &str, bus: &Arc<Shared>) -> Next {
        let now = Instant::now();
        let Some(group) = self.groups.get_mut(name) else { return Next::WaitUntil(None) };
        let ack_wait = group.config.ack_wait;
        // A delivery whose ack wait passed (or that was refused) goes out again first.
        if let Some((&sequence, &(_, attempts))) = group.in_flight.iter().find(|(_, (due, _))| *due <= now) {
            group.in_flight.insert(sequence, (now + ack_wait, attempts + 1));
            let event = self.log[index_of(sequence)].0.clone();
            return Next::Deliver(delivery(bus, name, event, sequence, attempts + 1));
        }
        if group.in_flight.len() < group.config.max_in_flight {
            while let Some((event, _)) = self.log.get(group.next) {
                group.next += 1;
                if group.config.wants(event) {
                    let sequence = group.next as u64;
                    group.in_flight.insert(sequence, (now + ack_wait, 1));
                    return Next::Deliver(delivery(bus, name, event.clone(), sequence, 1));
                }
            }
        }
        Next::WaitUntil(group.in_flight.values().map(|(due, _)| *due).min())
    }
}

fn index_of(sequence: u64) -> usize {
    usize::try_from(sequence).unwrap_or(usize::MAX).saturating_sub(1)
}

fn delivery(bus: &Arc<Shared>, group: &str, event: RecordedEvent, sequence: u64, attempt: u64) -> Delivery {
    let ack = MemoryAck { bus: Arc::downgrade(bus), group: group.to_owned(), sequence };
    Delivery { event: Arc::new(event), sequence, attempt, ack: Ack::new(ack) }
}

#[async_trait]
impl EventBus for InMemoryBus {
    async fn publish(&self, events: &[RecordedEvent]) -> Result<PublishReport, BusError> {
        let mut report = PublishReport::default();
        {
            let mut state = self.shared.lock();
            let now = Utc::now();
            for event in events {
                if state.ids.insert(event.id) {
                    state.log.push((event.clone(), now));
                    report.stored += 1;
                } else {
                    report.duplicates += 1;
                }
            }
        }
        self.shared.wake();
        Ok(report)
    }

    async fn consume(&self, config: &ConsumerConfig) -> Result<Deliveries, BusError> {
        config.check()?;
        {
            let mut state = self.shared.lock();
            let next = match config.start {
                StartAt::Beginning => 0,
                StartAt::New => state.log.len(),
                StartAt::Sequence(sequence) => index_of(sequence),
                StartAt::Time(time) => state.log.iter().position(|(_, at)| *at >= time).unwrap_or(state.log.len()),
            };
            let group = Group { config: config.clone(), next, in_flight: BTreeMap::new() };
            state.groups.entry(config.group.clone()).or_insert(group);
        }
        let bus = Arc::clone(&self.shared);
        let changes = self.shared.changed.subscribe();
        let group = config.group.clone();
        let deliveries = futures::stream::unfold((bus, changes, group), |(bus, mut changes, group)| async move {
            loop {
                changes.mark_unchanged();
                let next = bus.lock().next_for(&group, &bus);
                match next {
                    Next::Deliver(delivery) => return Some((Ok(delivery), (bus, changes, group))),
                    Next::WaitUntil(due) => {
                        let sleep =
                            tokio::time::sleep_until(due.unwrap_or_else(|| Instant::now() + Duration::from_secs(3600)));
                        tokio::select! {
                            changed = changes.changed() => if changed.is_err() { return None },
                            () = sleep => {}
                        }
                    }
                }
            }
        });
        Ok(deliveries.boxed())
    }
}

struct MemoryAck {
    bus: Weak<Shared>,
    group: String,
    sequence: u64,
}

impl MemoryAck {
    fn settle(&self, settle: impl FnOnce(&mut BTreeMap<u64, (Instant, u64)>)) {
        if let Some(bus) = self.bus.upgrade() {
            if let Some(group) = bus.lock().groups.get_mut(&self.group) {
                settle(&mut group.in_flight);
            }
            bus.wake();
        }
    }
}

#[async_trait]
impl Acknowledge for MemoryAck {
    async fn ack(&self) -> Result<(), BusError> {
        self.settle(|in_flight| {
            in_flight.remove(&self.sequence);
        });
        Ok(())
    }

    async fn nak(&self, delay: Duration) -> Result<(), BusError> {
        self.settle(|in_flight| {
            if let Some((due, _)) = in_flight.get_mut(&self.sequence) {
                *due = Instant::now() + delay;
            }
        });
        Ok(())
    }
}
