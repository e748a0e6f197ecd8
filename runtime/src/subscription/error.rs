//! Why a subscription stopped: [`SubscriptionError`], and [`SubscriptionStopped`] for a wait that ended
//! with the subscription.

use composable_rust_core::{BoxError, EventStoreError, GlobalPosition, StreamId, Version};
use thiserror::Error;

use super::Phase;
#[cfg(doc)]
use super::SubscriptionHandle;

/// Why a subscription stopped or a reset failed.
#[derive(Debug, Error)]
pub enum SubscriptionError {
    /// The handler failed on an event. The checkpoint stands before this event.
    #[error(
        "handler {handler:?} failed on event {event_type} at stream {stream_id} version {version} (global position \
         {position}); its checkpoint stays before this event: fix the handler or the read model and start it again, \
         or reset it to rebuild"
    )]
    HandlerFailed {
        /// The handler's name.
        handler: String,
        /// The stream of the failing event.
        stream_id: StreamId,
        /// The failing event's version in its stream.
        version: Version,
        /// The failing event's global position.
        position: GlobalPosition,
        /// The failing event's type.
        event_type: String,
        /// The handler's error.
        #[source]
        source: BoxError,
    },
    /// Another instance holds the handler's lease and the subscription was configured not to wait.
    #[error(
        "handler {handler:?} is already running in another instance (its lease is held): stop that instance, or \
         configure WhenLocked::Wait to stand by"
    )]
    AlreadyRunning {
        /// The handler's name.
        handler: String,
    },
    /// The event store refused an operation in a way that retrying does not fix (schema, invalid input).
    #[error("subscription {handler:?} stopped: the event store refused an operation")]
    Store {
        /// The handler's name.
        handler: String,
        /// The store's error.
        #[source]
        source: EventStoreError,
    },
    /// The read model could not be cleared for a rebuild.
    #[error("handler {handler:?} could not clear its read model for a rebuild; its checkpoint may already be reset")]
    Reset {
        /// The handler's name.
        handler: String,
        /// The handler's error.
        #[source]
        source: BoxError,
    },
    /// Retention removed events after the handler's checkpoint, so the handler would miss them. Nothing was
    /// handled past the checkpoint.
    #[error(
        "subscription {handler:?} stopped: retention removed {removed} events after its checkpoint ({}), up to \
         position {horizon}, so its handler would miss them\nthey are in the archive of the retention run that removed \
         them (eventstore-admin retention runs): feed them to the handler from there and move its checkpoint \
         past them, or opt in to skipping them with SubscriptionConfig::archived = ArchivedEvents::Skip",
        .checkpoint.map_or_else(|| "none yet".to_owned(), |c| format!("position {c}"))
    )]
    EventsArchived {
        /// The handler's name.
        handler: String,
        /// Its checkpoint.
        checkpoint: Option<GlobalPosition>,
        /// The store's removal horizon (the greatest position removed).
        horizon: GlobalPosition,
        /// How many events after the checkpoint were removed.
        removed: u64,
    },
    /// The subscription's task panicked.
    #[error("the task of subscription {handler:?} panicked; see the panic message in the log")]
    Panicked {
        /// The handler's name.
        handler: String,
    },
}

/// A subscription stopped before the condition a caller waited for held; [`SubscriptionHandle::join`]
/// says why.
#[derive(Debug, Clone, Error)]
#[error(
    "subscription {handler:?} stopped ({phase:?}) before the awaited condition held; join its handle for the reason"
)]
pub struct SubscriptionStopped {
    /// The handler's name.
    pub handler: String,
    /// The phase it ended in.
    pub phase: Phase,
}
