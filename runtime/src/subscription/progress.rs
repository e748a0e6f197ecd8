//! Where a subscription is: [`Phase`], [`Progress`] and the [`RunReport`] of a finished run.

use composable_rust_core::GlobalPosition;

#[cfg(doc)]
use super::{Subscription, SubscriptionHandle, WhenLocked};

/// Where a running subscription is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Spawned, not yet reading.
    Starting,
    /// Another instance holds the lease; retrying ([`WhenLocked::Wait`]).
    WaitingForLease,
    /// Reading pages behind the end of the log.
    CatchingUp,
    /// At the end of the log, waiting for commits.
    Live,
    /// Waiting to retry after a backend error.
    Retrying,
    /// Stopped (asked to, or caught up in [`Subscription::run_to_end`]).
    Stopped,
    /// Stopped by an error; [`SubscriptionHandle::join`] returns it.
    Failed,
}

/// A snapshot of a subscription's progress, from [`SubscriptionHandle::progress`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Progress {
    /// Where the subscription is.
    pub phase: Phase,
    /// The last position the handler recorded (`None`: nothing yet).
    pub checkpoint: Option<GlobalPosition>,
    /// Events handed to the handler and recorded by this run.
    pub handled: u64,
    /// Events retention had removed after the checkpoint that this run skipped
    /// ([`ArchivedEvents::Skip`](super::ArchivedEvents::Skip)).
    pub skipped_archived: u64,
}

/// What a finished run did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RunReport {
    /// Events handed to the handler and recorded by this run.
    pub handled: u64,
    /// The handler's checkpoint at the end (`None`: nothing handled ever).
    pub checkpoint: Option<GlobalPosition>,
    /// Events retention had removed after the checkpoint that this run skipped
    /// ([`ArchivedEvents::Skip`](super::ArchivedEvents::Skip)).
    pub skipped_archived: u64,
}
