//! [`Repository`]: loads, changes and snapshots event-sourced [`Aggregate`]s through an [`EventStore`].
//!
//! - Load: the latest snapshot (if present, decodable and of the current schema version) plus a replay
//!   of the events after it, streamed from the store and decoded through the configured upcasters.
//! - Execute a command: load, [`Aggregate::decide`], append with `ExpectedVersion::Exact(loaded
//!   version)`. On a concurrency conflict, reload and decide again, up to
//!   [`RepositoryConfig::max_conflict_retries`] times. A domain error appends nothing.
//! - Snapshot: after a successful append, when the [`SnapshotPolicy`] says so, the new state is
//!   encoded and saved in a background task; the caller's result never waits for it and a failed write
//!   is only logged. [`Repository::flush_snapshots`] waits for them (tests, shutdown, short-lived CLIs).

use std::fmt;
use std::sync::Arc;

use composable_rust_core::{Aggregate, EventDecoder, EventStore, Upcasters};
use serde::Serialize;
use serde::de::DeserializeOwned;

#[cfg(doc)]
use crate::snapshot_policy::SnapshotPolicy;

mod config;
mod error;
mod execute;
mod load;
mod retry;
mod snapshots;

pub use config::RepositoryConfig;
pub use error::{LoadError, RepositoryError};
pub use execute::Executed;
pub use load::{IgnoredSnapshot, LoadMetrics, Loaded, SnapshotIgnoreReason};
use snapshots::PendingSnapshots;

/// Settings shared by every clone of a repository and by the effects it builds.
struct Shared<A: Aggregate> {
    config: RepositoryConfig,
    decoder: EventDecoder<A::Event>,
}

/// Loads aggregates of type `A`, executes their commands and snapshots them. Cheap to clone.
///
/// The state is stored in snapshots with serde, hence the `Serialize + DeserializeOwned` bound; turn
/// snapshots off with [`SnapshotPolicy::Never`] if the state should never be persisted.
///
/// See `docs/aggregates.md` for a guide; the crate-level example shows a full round trip.
pub struct Repository<A: Aggregate> {
    store: Arc<dyn EventStore>,
    shared: Arc<Shared<A>>,
    pending: PendingSnapshots,
}

impl<A: Aggregate> Clone for Repository<A> {
    fn clone(&self) -> Self {
        Self { store: Arc::clone(&self.store), shared: Arc::clone(&self.shared), pending: self.pending.clone() }
    }
}

impl<A: Aggregate> fmt::Debug for Repository<A> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Repository")
            .field("aggregate", &A::CATEGORY)
            .field("store", &self.store)
            .field("config", &self.shared.config)
            .field("decoder", &self.shared.decoder)
            .finish_non_exhaustive()
    }
}

impl<A> Repository<A>
where
    A: Aggregate + Serialize + DeserializeOwned,
{
    /// A repository over `store` with the default [`RepositoryConfig`] and no upcasters.
    #[must_use]
    pub fn new(store: Arc<dyn EventStore>) -> Self {
        Self::with_config(store, RepositoryConfig::default())
    }

    /// A repository over `store` with `config` and no upcasters.
    #[must_use]
    pub fn with_config(store: Arc<dyn EventStore>, config: RepositoryConfig) -> Self {
        let shared = Shared { config, decoder: EventDecoder::for_aggregate::<A>() };
        Self { store, shared: Arc::new(shared), pending: PendingSnapshots::default() }
    }

    /// Uses `upcasters` for stored events of older types (see [`Upcasters`]).
    #[must_use]
    pub fn with_upcasters(self, upcasters: Upcasters<A::Event>) -> Self {
        let shared = Shared {
            config: self.shared.config.clone(),
            decoder: EventDecoder::for_aggregate::<A>().with_upcasters(upcasters),
        };
        Self { store: self.store, shared: Arc::new(shared), pending: self.pending }
    }

    /// The configuration in use.
    #[must_use]
    pub fn config(&self) -> &RepositoryConfig {
        &self.shared.config
    }

    /// The event store this repository reads and writes.
    #[must_use]
    pub fn store(&self) -> &Arc<dyn EventStore> {
        &self.store
    }
}
