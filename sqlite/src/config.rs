//! [`SqliteConfig`]: the tunables of a [`SqliteEventStore`](crate::SqliteEventStore), with documented defaults.

use std::time::Duration;

use composable_rust_core::Durability;

/// Settings for [`SqliteEventStore::open_with`](crate::SqliteEventStore::open_with).
///
/// ```
/// use std::time::Duration;
/// use composable_rust_sqlite::{Durability, SqliteConfig};
///
/// let mut config = SqliteConfig::default();
/// config.durability = Durability::Normal;
/// assert_eq!(config.busy_timeout, Duration::from_secs(5));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct SqliteConfig {
    /// How long a writer waits for another process's write transaction before failing with
    /// [`EventStoreError::Unavailable`](composable_rust_core::EventStoreError::Unavailable) ("database is
    /// locked"; transient, so the caller may retry). Default: 5 seconds. Writers in the same process never reach it:
    /// they queue, in order, for the store's single write connection instead.
    pub busy_timeout: Duration,
    /// The number of read connections (WAL lets them read while a write is in progress). Default: 4.
    pub read_connections: u32,
    /// The `synchronous` setting in WAL mode: [`Durability::Full`] (the default) is `synchronous = FULL`, an
    /// fsync of the WAL per commit; [`Durability::Normal`] is `synchronous = NORMAL`, a flush at checkpoints
    /// (docs/decisions.md, "SQLite", has the measurements behind the default).
    pub durability: Durability,
}

impl Default for SqliteConfig {
    fn default() -> Self {
        Self { busy_timeout: Duration::from_secs(5), read_connections: 4, durability: Durability::Full }
    }
}
