//! [`RepositoryConfig`]: snapshot policy, conflict retries, codec and transient-failure retries.

use std::time::Duration;

use composable_rust_core::CodecId;

use crate::snapshot_policy::SnapshotPolicy;

#[cfg(doc)]
use super::Repository;
#[cfg(doc)]
use composable_rust_core::EventStoreError;

/// How a [`Repository`] treats one aggregate type. Build it from [`RepositoryConfig::default`].
///
/// ```
/// use composable_rust_core::CodecId;
/// use composable_rust_runtime::{RepositoryConfig, SnapshotPolicy};
///
/// let config = RepositoryConfig::default()
///     .with_snapshot_policy(SnapshotPolicy::every(500))
///     .with_max_conflict_retries(5)
///     .with_codec(CodecId::Json);
/// assert_eq!(config.max_conflict_retries, 5);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct RepositoryConfig {
    /// When to save snapshots. Default: every 100 events.
    pub snapshot_policy: SnapshotPolicy,
    /// How often a command is reloaded and decided again after a concurrency conflict before the
    /// conflict is returned. Default: 3 (so at most 4 attempts).
    pub max_conflict_retries: u32,
    /// The codec new events and snapshots are written with. Default: bincode. Stored data always
    /// decodes with the codec recorded next to it, so changing this needs no migration.
    pub codec: CodecId,
    /// How often a load or an append that failed because the store was unavailable
    /// ([`EventStoreError::is_transient`]) is retried before the command gives up. Default: 8, about 7 s of
    /// waiting in all, enough for a server restart. An append is retried with the same event ids, so one
    /// that did land the first time is not written again.
    pub transient_retries: u32,
    /// The wait before the first retry of a transient failure; it doubles with each retry, up to two
    /// seconds. Default: 50 ms.
    pub retry_backoff: Duration,
}

impl RepositoryConfig {
    /// Sets the snapshot policy.
    #[must_use]
    pub fn with_snapshot_policy(mut self, policy: SnapshotPolicy) -> Self {
        self.snapshot_policy = policy;
        self
    }

    /// Sets how many times a conflicting command is retried.
    #[must_use]
    pub fn with_max_conflict_retries(mut self, retries: u32) -> Self {
        self.max_conflict_retries = retries;
        self
    }

    /// Sets the codec for new events and snapshots.
    #[must_use]
    pub fn with_codec(mut self, codec: CodecId) -> Self {
        self.codec = codec;
        self
    }

    /// Sets how many times a transient store failure is retried, and the first wait.
    #[must_use]
    pub fn with_transient_retries(mut self, retries: u32, first_backoff: Duration) -> Self {
        self.transient_retries = retries;
        self.retry_backoff = first_backoff;
        self
    }

    /// The wait before retry number `retry` (from 1) of a transient failure.
    pub(crate) fn backoff(&self, retry: u32) -> Duration {
        let factor = 1_u32.checked_shl(retry.saturating_sub(1)).unwrap_or(u32::MAX);
        self.retry_backoff.saturating_mul(factor).min(MAX_BACKOFF)
    }
}

/// The longest wait between retries of a transient failure.
const MAX_BACKOFF: Duration = Duration::from_secs(2);

impl Default for RepositoryConfig {
    fn default() -> Self {
        Self {
            snapshot_policy: SnapshotPolicy::default(),
            max_conflict_retries: 3,
            codec: CodecId::Bincode,
            transient_retries: 8,
            retry_backoff: Duration::from_millis(50),
        }
    }
}
