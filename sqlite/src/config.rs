//! [`SqliteConfig`]: the tunables of a [`SqliteEventStore`](crate::SqliteEventStore), with documented defaults.

use std::time::Duration;

/// How hard a commit works to survive a crash: SQLite's `synchronous` setting in WAL mode.
///
/// Both settings keep every acknowledged append across a **process** crash: a commit has been written to
/// the write-ahead log (in the operating system's cache) before `append` returns. They differ on a power
/// loss or operating system crash. See `docs/decisions.md` ("SQLite") for the measurements behind the
/// default.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Durability {
    /// `synchronous = FULL`: every commit is flushed to disk (fsync of the WAL) before `append` returns,
    /// so acknowledged events also survive a power loss. The same promise PostgreSQL makes by default.
    #[default]
    Full,
    /// `synchronous = NORMAL`: the WAL is flushed only at checkpoints. Acknowledged events survive a
    /// process crash, but the last commits may be lost on a power loss or OS crash (the database stays
    /// consistent). Faster for one-event appends.
    Normal,
}

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
    /// The `synchronous` setting. Default: [`Durability::Full`].
    pub durability: Durability,
}

impl Default for SqliteConfig {
    fn default() -> Self {
        Self { busy_timeout: Duration::from_secs(5), read_connections: 4, durability: Durability::Full }
    }
}
