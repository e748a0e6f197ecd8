//! How a subscription reads, waits, leases and backs off: [`SubscriptionConfig`] and its parts.

use std::time::Duration;

use composable_rust_core::LogFilter;

#[cfg(doc)]
use super::{Subscription, SubscriptionError};
#[cfg(doc)]
use composable_rust_core::CheckpointedHandler;

/// What a second instance of a running handler does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum WhenLocked {
    /// Retry the lease every [`SubscriptionConfig::lease_retry`] until the other instance stops (the
    /// default): a standby that takes over.
    #[default]
    Wait,
    /// Stop at once with [`SubscriptionError::AlreadyRunning`].
    Fail,
}

/// What a subscription does when retention removed events after its checkpoint, which it has not handled
/// (its checkpoint lies below the store's
/// [removal horizon](composable_rust_core::backend::EventRetention::removal_horizon)).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ArchivedEvents {
    /// Stop with [`SubscriptionError::EventsArchived`], naming how many events are gone (the default): the
    /// read model would silently lack them. Restore them from the archive, or opt in to skipping.
    #[default]
    Fail,
    /// Go on without them: log a warning with their count and add it to [`Progress::skipped_archived`](super::Progress::skipped_archived)
    /// and [`RunReport::skipped_archived`](super::RunReport::skipped_archived). For read models that only
    /// need recent events (a dashboard of the last days).
    Skip,
}

/// Exponential backoff between attempts after a backend error: `initial`, doubled each time up to `max`,
/// back to `initial` after a successful read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    /// The first wait.
    pub initial: Duration,
    /// The longest wait.
    pub max: Duration,
}

impl Default for Backoff {
    /// 100 ms, doubling up to 10 s.
    fn default() -> Self {
        Self { initial: Duration::from_millis(100), max: Duration::from_secs(10) }
    }
}

/// How a [`Subscription`] reads and waits. Every field has a documented default.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct SubscriptionConfig {
    /// Which events the handler gets (default: all). Filtering happens in the store's query.
    pub filter: LogFilter,
    /// Events per read and per [`CheckpointedHandler::apply`] call, so also per checkpoint save and per
    /// transaction (default 500).
    pub page_size: usize,
    /// How long a live subscription waits for a commit notification before reading anyway (default
    /// 500 ms). Without notifications from the store this is the polling interval; with them it bounds
    /// the delay after a missed notification.
    pub poll_interval: Duration,
    /// What a second instance does while the handler's lease is held (default [`WhenLocked::Wait`]).
    pub when_locked: WhenLocked,
    /// How often a waiting instance retries the lease (default 1 s).
    pub lease_retry: Duration,
    /// How often a running instance renews its lease and checks that it still holds it (default 5 s).
    /// Renewals run alongside the work, so a page that takes longer than this is renewed while it runs,
    /// and a renewal that finds the lease lost stops the page. The lease's lifetime derives from it:
    /// [`SubscriptionConfig::lease_ttl`], three intervals. Values under 1 ms count as 1 ms.
    pub lease_check_interval: Duration,
    /// Waits between attempts after a backend error (default [`Backoff::default`]).
    pub backoff: Backoff,
    /// What to do about events retention removed after the checkpoint (default [`ArchivedEvents::Fail`]).
    pub archived: ArchivedEvents,
}

impl SubscriptionConfig {
    /// How many check intervals a lease lives without a renewal.
    const LEASE_TTL_IN_CHECKS: u32 = 3;

    /// The shortest renewal interval; a zero interval would renew in a busy loop.
    const MIN_LEASE_CHECK_INTERVAL: Duration = Duration::from_millis(1);

    /// The lifetime this subscription asks for when it takes its lease
    /// ([`SubscriptionStore::try_acquire_lease`](composable_rust_core::backend::SubscriptionStore::try_acquire_lease)): three
    /// [`lease_check_interval`](SubscriptionConfig::lease_check_interval)s (15 s by default).
    ///
    /// A live instance renews every interval, so its lease outlasts two renewals that come late or fail
    /// to get through (a busy database) before a standby may take it; an instance that died without
    /// releasing (a crash, a lost machine) holds up its standby for at most this long. Backends whose
    /// leases end with a connection or a process (PostgreSQL, in-memory) ignore it.
    ///
    /// ```
    /// use std::time::Duration;
    /// use composable_rust_runtime::SubscriptionConfig;
    ///
    /// let mut config = SubscriptionConfig::default();
    /// config.lease_check_interval = Duration::from_millis(100);
    /// assert_eq!(config.lease_ttl(), Duration::from_millis(300));
    /// ```
    #[must_use]
    pub fn lease_ttl(&self) -> Duration {
        self.lease_renewal_interval().saturating_mul(Self::LEASE_TTL_IN_CHECKS)
    }

    /// The interval between renewals: the check interval, at least 1 ms.
    pub(super) fn lease_renewal_interval(&self) -> Duration {
        self.lease_check_interval.max(Self::MIN_LEASE_CHECK_INTERVAL)
    }
}

impl Default for SubscriptionConfig {
    fn default() -> Self {
        Self {
            filter: LogFilter::all(),
            page_size: 500,
            poll_interval: Duration::from_millis(500),
            when_locked: WhenLocked::Wait,
            lease_retry: Duration::from_secs(1),
            lease_check_interval: Duration::from_secs(5),
            backoff: Backoff::default(),
            archived: ArchivedEvents::Fail,
        }
    }
}
