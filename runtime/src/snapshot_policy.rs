//! [`SnapshotPolicy`]: when the repository saves a snapshot of an aggregate.

use std::num::NonZeroU64;

use composable_rust_core::Version;

/// When the [`Repository`](crate::Repository) saves a snapshot after a successful append.
///
/// Snapshots are a cache that bounds load time; they never change what a load returns. The default
/// takes one whenever 100 events have been appended since the snapshot the aggregate was loaded from.
///
/// ```
/// use composable_rust_core::Version;
/// use composable_rust_runtime::SnapshotPolicy;
///
/// let policy = SnapshotPolicy::every(50);
/// assert!(!policy.is_due(Some(Version::new(100)), Version::new(149)));
/// assert!(policy.is_due(Some(Version::new(100)), Version::new(150)));
/// assert!(policy.is_due(None, Version::new(60)), "no usable snapshot: counted from the start");
/// assert!(!SnapshotPolicy::Never.is_due(None, Version::new(1_000_000)));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SnapshotPolicy {
    /// Never save snapshots; every load replays the whole stream.
    Never,
    /// Save a snapshot once this many events lie between the last snapshot and the stream's end.
    EveryEvents(NonZeroU64),
}

impl SnapshotPolicy {
    /// The default interval: a snapshot every 100 events.
    pub const DEFAULT_INTERVAL: u64 = 100;

    /// A snapshot every `events` events; `0` means [`SnapshotPolicy::Never`].
    #[must_use]
    pub const fn every(events: u64) -> Self {
        match NonZeroU64::new(events) {
            Some(n) => Self::EveryEvents(n),
            None => Self::Never,
        }
    }

    /// Whether a snapshot is due for a stream now at `version` whose latest usable snapshot is at
    /// `last_snapshot` (`None` when there was none, or it was ignored).
    ///
    /// Counting from the last usable snapshot rather than from multiples of the interval means a stream
    /// whose snapshot was corrupt or outdated gets a fresh one on its next write.
    #[must_use]
    pub fn is_due(self, last_snapshot: Option<Version>, version: Version) -> bool {
        match self {
            Self::Never => false,
            Self::EveryEvents(interval) => {
                let since = version.get().saturating_sub(last_snapshot.map_or(0, Version::get));
                since >= interval.get()
            }
        }
    }
}

impl Default for SnapshotPolicy {
    fn default() -> Self {
        Self::every(Self::DEFAULT_INTERVAL)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_is_every_hundred_events() {
        assert_eq!(SnapshotPolicy::default(), SnapshotPolicy::every(100));
        assert!(!SnapshotPolicy::default().is_due(None, Version::new(99)));
        assert!(SnapshotPolicy::default().is_due(None, Version::new(100)));
        assert_eq!(SnapshotPolicy::every(0), SnapshotPolicy::Never);
    }

    #[test]
    fn a_batch_crossing_the_interval_is_due() {
        let policy = SnapshotPolicy::every(10);
        assert!(policy.is_due(Some(Version::new(10)), Version::new(23)));
        assert!(!policy.is_due(Some(Version::new(20)), Version::new(23)));
    }
}
