//! [`SeenEvents`]: the idempotent-consumer helper for handlers that are not aggregates.

use std::collections::{HashSet, VecDeque};

use composable_rust_core::EventId;

/// Remembers the ids of the last `capacity` events a consumer handled, so that a redelivery (the bus
/// delivers at least once) is recognised and skipped.
///
/// This is the cheap, in-process half of idempotency: it forgets on restart and past `capacity`. The
/// durable half is to make the consumer's own write carry the event id: an aggregate does so with
/// `AggregateAction::command_once(stream, event.id, ..)` (what [`Reactor`](crate::Reactor) does), so a
/// repeated command finds its events already stored; a read model stores the last event id or version it
/// applied per row in the same transaction.
///
/// ```
/// use composable_rust_bus::SeenEvents;
/// use composable_rust_core::EventId;
///
/// let mut seen = SeenEvents::new(2);
/// let (a, b, c) = (EventId::generate(), EventId::generate(), EventId::generate());
/// assert!(seen.first_time(a));
/// assert!(!seen.first_time(a), "a redelivery is recognised");
/// assert!(seen.first_time(b));
/// assert!(seen.first_time(c)); // forgets a: the window holds two
/// assert!(seen.first_time(a));
/// ```
#[derive(Debug, Clone)]
pub struct SeenEvents {
    capacity: usize,
    order: VecDeque<EventId>,
    ids: HashSet<EventId>,
}

impl SeenEvents {
    /// A window of the last `capacity` ids (at least one).
    #[must_use]
    pub fn new(capacity: usize) -> Self {
        let capacity = capacity.max(1);
        Self { capacity, order: VecDeque::with_capacity(capacity), ids: HashSet::with_capacity(capacity) }
    }

    /// Records `id`; `true` when it was not in the window (handle the event), `false` for a repeat (skip).
    pub fn first_time(&mut self, id: EventId) -> bool {
        if !self.ids.insert(id) {
            return false;
        }
        self.order.push_back(id);
        if self.order.len() > self.capacity {
            if let Some(oldest) = self.order.pop_front() {
                self.ids.remove(&oldest);
            }
        }
        true
    }
}
